//! The app's one error type: every refusal is a 4xx/5xx with a JSON body
//! `{"error": MESSAGE, "code": CODE}`, plus `"field"` when one input field
//! is at fault, `"hint"` when there is a next step, and `"id"` when the
//! refusal points at an existing ticket. A 5xx says nothing inside and is
//! logged once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tickets_core::edit::EditError;
use tickets_core::model::TransitionError;
use tickets_core::InputError;
use tickets_node::sync::SyncError;
use tickets_node::NodeError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub hint: Option<String>,
    /// The ticket a refusal points at (a conversation's existing ticket).
    pub id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None, hint: None, id: None }
    }

    /// A 400 about one input field.
    pub fn field(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).at(field)
    }

    pub fn at(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the app's terminal shows why")
    }
}

/// The input field an input error is about.
fn input_field(e: &InputError) -> &'static str {
    match e {
        InputError::UnknownPriority(_) => "priority",
        InputError::UnknownStatus(_) => "status",
        InputError::BadName { kind: "agent" | "team", .. } => "assignee",
        InputError::BadName { kind, .. } => kind,
        InputError::TooLong { field, .. } | InputError::Empty(field) | InputError::Unstorable { field } => field,
        InputError::BadDuration(_) => "duration",
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let hint = tickets_node::home::hint(&e);
        let message = e.to_string();
        let mut out = match &e {
            NodeError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            NodeError::Ambiguous { .. } => ApiError::new(StatusCode::CONFLICT, "ambiguous", message),
            NodeError::ConversationExists { ticket, .. } => {
                let mut a = ApiError::new(StatusCode::CONFLICT, "conversation_has_ticket", message).at("conversation");
                a.id = Some(ticket.clone());
                a
            }
            NodeError::Edit(EditError::Input(i)) => ApiError::field("invalid", input_field(i), message),
            NodeError::Edit(EditError::Transition(t)) => {
                let field = match t {
                    TransitionError::OutOfClosed { .. } => "status",
                    TransitionError::FieldOfClosed { field } => field,
                };
                ApiError::new(StatusCode::CONFLICT, "closed", message).at(field)
            }
            NodeError::Edit(EditError::Conversation(_)) => ApiError::field("bad_conversation", "conversation", message),
            NodeError::UnknownCategory(..) => ApiError::field("unknown_category", "category", message),
            NodeError::UnknownAssignee { .. } => ApiError::field("unknown_assignee", "assignee", message),
            NodeError::NotesForbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            NodeError::NotesRestoring => ApiError::new(StatusCode::CONFLICT, "notes_restoring", message),
            NodeError::BadClockOffset(_) => ApiError::new(StatusCode::CONFLICT, "bad_clock_offset", message),
            NodeError::View(v) => {
                use tickets_node::ViewError;
                match v {
                    ViewError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
                    ViewError::BadName(_) => ApiError::field("bad_view_name", "name", message),
                    ViewError::BadFilter { .. } | ViewError::TooManyFilters => {
                        ApiError::field("bad_filter", "query", message)
                    }
                    ViewError::TooMany => ApiError::new(StatusCode::CONFLICT, "limit", message),
                }
            }
            NodeError::BadBulk(_) => ApiError::field("invalid", "ids", message),
            // Over the relay's limits (as last synced): nothing was written.
            NodeError::OverLimit(o) => match o.code {
                tickets_core::limits::LimitCode::CommentTooLarge => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, o.code.as_str(), message).at("text")
                }
                _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, o.code.as_str(), message),
            },
            _ => return ApiError::internal(message),
        };
        out.hint = hint;
        out
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> ApiError {
        match e {
            SyncError::Node(n) => n.into(),
            SyncError::NotRegistered => ApiError::new(
                StatusCode::CONFLICT,
                "not_registered",
                "this node is not registered with a relay; register with `tickets init --relay URL --token TOKEN`",
            ),
            SyncError::Transport { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "offline",
                format!("the relay cannot be reached ({e}); try again when online"),
            ),
            SyncError::Unauthorized => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "unauthorized",
                "the relay no longer accepts this device's token; ask the relay operator for a new one",
            ),
            SyncError::Refused { status: 403, message, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            SyncError::Refused { status: 400, message, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
            }
            other => ApiError::new(StatusCode::BAD_GATEWAY, "relay_error", other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.message, "code": self.code});
        if let Some(f) = self.field {
            body["field"] = f.into();
        }
        if let Some(h) = self.hint {
            body["hint"] = h.into();
        }
        if let Some(id) = self.id {
            body["id"] = id.into();
        }
        (self.status, axum::Json(body)).into_response()
    }
}
