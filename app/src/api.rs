//! The JSON endpoints (see /tmp/app-contract.md, shared with the UI): reads
//! in the same shapes as the relay's board API, writes as the CLI's
//! commands. Each handler reads and checks its input, then runs one node
//! operation with [`AppState::with_node`].

use std::collections::BTreeSet;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tickets_core::conversation::Conversation;
use tickets_core::edit::{Edit, NewTicket};
use tickets_core::index::ListQuery;
use tickets_core::model::{Priority, Status};
use tickets_node::EditOutcome;

use crate::error::ApiError;
use crate::AppState;

/// The largest request body: a ticket's text is at most 64 KB; a
/// conversation file sent to the app is bounded here (the CLI takes larger
/// ones with `tickets create --conversation FILE`).
pub const REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;

/// The most tickets one list page carries, and the default.
pub const PAGE_MAX: usize = 500;
pub const PAGE_DEFAULT: usize = 50;

/// Bytes per chunk of a proxied export.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

pub async fn index() -> Html<String> {
    Html(tickets_web::index_html(tickets_web::Host::App))
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match tickets_web::asset(&name) {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], bytes).into_response()
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no asset '{name}'")).into_response(),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
}

/// Reads a JSON body within [`REQUEST_BODY_BYTES_MAX`].
async fn read_json(body: Body) -> Result<Value, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request is larger than {REQUEST_BODY_BYTES_MAX} bytes"),
        )
    })?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "the body must be a JSON object"));
    }
    Ok(v)
}

/// The fields of a body, refusing any not in `allowed` (allow-list).
fn fields(v: Value, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(map) = v else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "the body must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::field(
            "unknown_field",
            k,
            format!("unknown field '{k}' (expected {})", allowed.join(", ")),
        ));
    }
    Ok(map)
}

/// A string field; `None` when absent or null.
fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field("invalid", key, format!("{key} must be a string"))),
    }
}

fn required(map: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    text(map, key)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::field("invalid", key, format!("{key} must not be empty")))
}

fn priority(s: &str) -> Result<Priority, ApiError> {
    s.parse().map_err(|e: tickets_core::InputError| ApiError::field("invalid", "priority", e.to_string()))
}

/// A ticket id or a prefix of one, as the path names it.
fn ticket_id(id: &str) -> Result<String, ApiError> {
    let p = id.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 36 || !p.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_id", "a ticket id is hex digits and dashes"));
    }
    Ok(p)
}

/// `GET /v1/me`.
pub async fn me(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let profile = state.with_node(|node| Ok(node.profile()?)).await?;
    let sync_state = state.sync.borrow().state;
    let registered = profile.relay.is_some();
    let role = profile.role.clone().unwrap_or_else(|| "agent".into());
    Ok(Json(json!({
        "agent": profile.agent,
        "role": role,
        "team": profile.team,
        "internal_notes": profile.internal_notes,
        "export": registered && (role == "lead" || role == "admin"),
        "host": "app",
        "relay": profile.relay,
        // No relay to reach now: never registered, --offline, or the last
        // attempt failed.
        "offline": !state.syncing || sync_state == "offline",
    })))
}

/// `GET /v1/tickets`: one page, the board's shape.
pub async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let mut q = ListQuery::from_pairs(form_urlencoded::parse(query.unwrap_or_default().as_bytes()))
        .map_err(|e| ApiError::field("bad_query", &e.field, e.message))?;
    q.limit = Some(q.limit.unwrap_or(PAGE_DEFAULT).min(PAGE_MAX));
    let page = state.with_node(move |node| Ok(node.list_page(&q)?)).await?;
    Ok(Json(serde_json::to_value(page).map_err(ApiError::internal)?))
}

/// `GET /v1/tickets/{id}`: the `show --json` object. This is the page's
/// detail view: the ticket is opened, so it is no longer new for the agent.
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = ticket_id(&id)?;
    Ok(Json(state.with_node(move |node| Ok(node.open_ticket(&id)?)).await?))
}

/// `POST /v1/tickets`.
pub async fn create(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let map = fields(
        read_json(body).await?,
        &["subject", "description", "priority", "category", "assignee", "conversation", "conversation_id", "force"],
    )?;
    // An inbox conversation by its id, as `tickets create --conversation ID`.
    let inbox_id = text(&map, "conversation_id")?.map(|s| s.trim().to_string());
    if let Some(id) = &inbox_id {
        if !matches!(map.get("conversation"), None | Some(Value::Null)) {
            return Err(ApiError::field(
                "invalid",
                "conversation_id",
                "send either conversation (a conversation object) or conversation_id (an inbox conversation), not both",
            ));
        }
        if id.is_empty() {
            return Err(ApiError::field("invalid", "conversation_id", "conversation_id must not be empty"));
        }
    }
    let conversation = match map.get("conversation") {
        None | Some(Value::Null) => None,
        Some(c) => Some(conversation_of(c)?),
    };
    let new = NewTicket {
        subject: required(&map, "subject")?,
        priority: priority(&required(&map, "priority")?)?,
        category: required(&map, "category")?,
        description: text(&map, "description")?.filter(|d| !d.is_empty()),
        assignee: text(&map, "assignee")?.filter(|a| !a.trim().is_empty()),
    };
    let force = match map.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::field("invalid", "force", "force must be true or false")),
    };
    let (id, ticket) = state
        .with_node(move |node| {
            let conversation = match inbox_id {
                Some(id) => Some(inbox_conversation(node, &id)?.to_conversation()),
                None => conversation,
            };
            let id = node.create(&new, conversation.as_ref(), force)?;
            let ticket = node.show(&id)?;
            Ok((id, ticket))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "ticket": ticket}))).into_response())
}

/// A conversation object (SPEC §1.2) checked as `create --conversation`
/// checks a file.
fn conversation_of(v: &Value) -> Result<Conversation, ApiError> {
    let bytes = serde_json::to_vec(v).map_err(ApiError::internal)?;
    Conversation::parse(&bytes).map_err(|e| ApiError::field("bad_conversation", "conversation", e.to_string()))
}

/// An inbox conversation this device holds, or 404 saying how to get it.
fn inbox_conversation(
    node: &mut tickets_node::Node,
    id: &str,
) -> Result<tickets_core::inbox::InboxConversation, ApiError> {
    node.inbox_conversation(id)?.ok_or_else(|| {
        let mut e = ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("'{id}' is not a conversation in this device's inbox"),
        )
        .at("conversation_id");
        e.hint = Some("a sync brings the inbox; GET /v1/inbox lists its conversation ids".into());
        e
    })
}

/// `GET /v1/inbox`: the device's recent conversations, latest activity
/// first, each as `tickets inbox --json` lists it.
pub async fn inbox(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (now, listed) = state.with_node(|node| Ok((node.now_ms(), node.inbox()?))).await?;
    let conversations: Vec<Value> = listed.iter().map(|l| l.to_json(now)).collect();
    Ok(Json(json!({"conversations": conversations, "now": tickets_core::time::iso_i64(now)})))
}

/// `GET /v1/inbox/{id}/prefill`: what `POST /v1/conversations/prefill`
/// answers, for a conversation of the device's inbox.
pub async fn inbox_prefill(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = id.trim().to_string();
    let c = state.with_node(move |node| Ok(inbox_conversation(node, &id)?.to_conversation())).await?;
    prefill_answer(&state, c).await
}

/// `POST /v1/conversations/prefill`: what the form shows for a
/// conversation, and the ticket already made from it, if any.
pub async fn prefill(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let c = conversation_of(&read_json(body).await?)?;
    prefill_answer(&state, c).await
}

async fn prefill_answer(state: &AppState, c: Conversation) -> Result<Json<Value>, ApiError> {
    let description = c.prefill().map_err(|e| ApiError::field("bad_conversation", "conversation", e.to_string()))?;
    let subject = c
        .messages
        .iter()
        .find(|m| m.role == tickets_core::conversation::Role::Customer)
        .or(c.messages.first())
        .and_then(|m| m.text.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(|line| line.chars().take(120).collect::<String>())
        .unwrap_or_else(|| format!("Conversation {}", c.id.trim()));
    let conversation_id = c.id.trim().to_string();
    let lookup = conversation_id.clone();
    let existing = state.with_node(move |node| Ok(node.ticket_of_conversation(&lookup)?)).await?;
    Ok(Json(json!({
        "existing": existing,
        "conversation_id": conversation_id,
        "subject": subject,
        "description": description,
    })))
}

/// The edits a PATCH body asks for: fields first, the status last (so that
/// closing a ticket and fixing its category in one request both happen).
fn edits_of(map: &Map<String, Value>) -> Result<Vec<Edit>, ApiError> {
    let mut edits = Vec::new();
    if let Some(s) = text(map, "subject")? {
        edits.push(Edit::Subject(s));
    }
    if let Some(d) = text(map, "description")? {
        edits.push(Edit::Description(d));
    }
    if let Some(p) = text(map, "priority")? {
        edits.push(Edit::Priority(priority(&p)?));
    }
    if let Some(c) = text(map, "category")? {
        edits.push(Edit::Category(c));
    }
    if map.contains_key("assignee") {
        edits.push(Edit::Assignee(text(map, "assignee")?.filter(|a| !a.trim().is_empty())));
    }
    if let Some(s) = text(map, "status")? {
        let s: Status =
            s.parse().map_err(|e: tickets_core::InputError| ApiError::field("invalid", "status", e.to_string()))?;
        edits.push(Edit::Status(s));
    }
    if edits.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "nothing_to_edit",
            "nothing to edit: send any of status, assignee, priority, category, subject, description",
        ));
    }
    Ok(edits)
}

/// The edited ticket, and this agent's edits that did not take effect.
fn edited(node: &mut tickets_node::Node, id: &str, edits: &[Edit]) -> Result<Value, ApiError> {
    let (id, _outcome): (String, EditOutcome) = node.edit(id, edits)?;
    let ticket = node.show(&id)?;
    let not_applied = tickets_node::node::own_not_applied(node.agent(), &ticket);
    let mut out = json!({"ticket": ticket});
    if !not_applied.is_empty() {
        out["not_applied"] = serde_json::to_value(not_applied).map_err(ApiError::internal)?;
    }
    Ok(out)
}

/// `PATCH /v1/tickets/{id}`.
pub async fn patch(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> Result<Json<Value>, ApiError> {
    let id = ticket_id(&id)?;
    let map =
        fields(read_json(body).await?, &["status", "assignee", "priority", "category", "subject", "description"])?;
    let edits = edits_of(&map)?;
    Ok(Json(state.with_node(move |node| edited(node, &id, &edits)).await?))
}

async fn add_text(state: AppState, id: String, body: Body, note: bool) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let map = fields(read_json(body).await?, &["text"])?;
    let text = required(&map, "text")?;
    let edit = if note { Edit::Note(text) } else { Edit::Comment(text) };
    let out = state.with_node(move |node| edited(node, &id, &[edit])).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `POST /v1/tickets/{id}/comments`.
pub async fn comment(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> Result<Response, ApiError> {
    add_text(state, id, body, false).await
}

/// `POST /v1/tickets/{id}/notes`: 403 without the permission.
pub async fn note(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> Result<Response, ApiError> {
    add_text(state, id, body, true).await
}

/// `GET /v1/directory`: the taxonomy and the people, as last synced.
pub async fn directory(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let d = state.with_node(|node| Ok(node.directory()?)).await?;
    // Teams named by agents count even if the relay's list lacks them.
    let teams: BTreeSet<String> =
        d.teams.iter().cloned().chain(d.agents.iter().filter_map(|a| a.team.clone())).collect();
    Ok(Json(json!({
        "categories": d.categories,
        "agents": d.agents,
        "teams": teams,
        "priorities": ["low", "medium", "high", "urgent"],
        "statuses": ["open", "in-progress", "resolved", "closed"],
    })))
}

/// `GET /v1/export`: the relay's export, streamed through with the node's
/// token (leads and admins).
pub async fn export(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let profile = state.with_node(|node| Ok(node.profile()?)).await?;
    if profile.relay.is_none() {
        return Err(ApiError::from(tickets_node::sync::SyncError::NotRegistered));
    }
    if !matches!(profile.role.as_deref(), Some("lead" | "admin")) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "exports are for leads and admins"));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| ["format", "table", "from", "to", "status", "category"].contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Result<Vec<(header::HeaderName, String)>, ApiError>>();
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let home = state.home.clone();
    tokio::task::spawn_blocking(move || {
        let started = (|| {
            let mut node = tickets_node::home::open(&home)?;
            let remote = node.remote()?.ok_or(tickets_node::sync::SyncError::NotRegistered)?;
            remote.get_stream("/v1/export", &pairs)
        })();
        let (mut resp, _total) = match started {
            Ok(r) => r,
            Err(e) => {
                let _ = head_tx.send(Err(ApiError::from(e)));
                return;
            }
        };
        let keep =
            [header::CONTENT_TYPE, header::CONTENT_DISPOSITION, header::HeaderName::from_static("x-total-count")];
        let head = keep
            .into_iter()
            .filter_map(|name| {
                let v = resp.headers().get(name.as_str())?.to_str().ok()?.to_string();
                Some((name, v))
            })
            .collect();
        if head_tx.send(Ok(head)).is_err() {
            return;
        }
        let mut buf = vec![0u8; EXPORT_CHUNK_BYTES];
        loop {
            match std::io::Read::read(&mut resp, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if body_tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = body_tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let head = head_rx.await.map_err(ApiError::internal)??;
    let stream = futures_util::stream::unfold(body_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Body::from_stream(stream).into_response();
    for (name, value) in head {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

/// `POST /v1/tickets/bulk`: one assignee, priority, status or category for
/// several tickets, in one local transaction (`{ids, assignee?, priority?,
/// status?, category?}`). Each ticket is applied or refused on its own; the
/// answer lists both (`{applied, unchanged, refused: [{id, code, error}]}`).
pub async fn bulk(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let map = fields(read_json(body).await?, &["ids", "assignee", "priority", "status", "category"])?;
    let Some(Value::Array(given)) = map.get("ids") else {
        return Err(ApiError::field("invalid", "ids", "ids must be a list of ticket ids"));
    };
    if given.is_empty() {
        return Err(ApiError::field("invalid", "ids", "select at least one ticket"));
    }
    if given.len() > tickets_node::bulk::BULK_IDS_MAX {
        return Err(ApiError::field(
            "too_many",
            "ids",
            format!("at most {} tickets in one bulk edit", tickets_node::bulk::BULK_IDS_MAX),
        ));
    }
    let ids = given
        .iter()
        .map(|v| match v {
            Value::String(s) => ticket_id(s).map_err(|e| e.at("ids")),
            _ => Err(ApiError::field("invalid", "ids", "each id must be a string")),
        })
        .collect::<Result<Vec<String>, ApiError>>()?;
    let mut edit = tickets_node::bulk::BulkEdit::default();
    if map.contains_key("assignee") {
        edit.assignee = Some(text(&map, "assignee")?.filter(|a| !a.trim().is_empty()));
    }
    if let Some(p) = text(&map, "priority")? {
        edit.priority = Some(priority(&p)?);
    }
    if let Some(s) = text(&map, "status")? {
        edit.status =
            Some(s.parse().map_err(|e: tickets_core::InputError| ApiError::field("invalid", "status", e.to_string()))?);
    }
    if let Some(c) = text(&map, "category")?.filter(|c| !c.trim().is_empty()) {
        edit.category = Some(c);
    }
    if edit.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "nothing_to_edit",
            "nothing to edit: send any of assignee, priority, status, category",
        ));
    }
    let outcome = state.with_node(move |node| Ok(node.bulk_edit(&ids, &edit)?)).await?;
    Ok(Json(serde_json::to_value(outcome).map_err(ApiError::internal)?))
}

/// A saved view as the page uses it: its filters as a query string (the
/// list API's own parameters, as in the page's address).
fn view_json(v: &tickets_node::views::SavedView) -> Value {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(v.filters.iter()).finish();
    json!({"name": v.name, "query": query, "saved_at": v.saved_at})
}

/// `GET /v1/views`: the saved views, by name.
pub async fn views(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let views = state.with_node(|node| Ok(node.views()?)).await?;
    Ok(Json(json!({"views": views.iter().map(view_json).collect::<Vec<_>>()})))
}

/// `POST /v1/views`: `{name, query}` saves (or replaces) a named view.
pub async fn save_view(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let map = fields(read_json(body).await?, &["name", "query"])?;
    let name = required(&map, "name")?;
    let query = text(&map, "query")?.unwrap_or_default();
    // Paging is where one is in a view, not part of it.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .filter(|(k, _)| k != "offset" && k != "limit")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let saved = state.with_node(move |node| Ok(node.save_view(&name, &pairs)?)).await?;
    Ok((StatusCode::CREATED, Json(view_json(&saved))).into_response())
}

/// `DELETE /v1/views/{name}`.
pub async fn delete_view(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let deleted = name.clone();
    state.with_node(move |node| Ok(node.delete_view(&name)?)).await?;
    Ok(Json(json!({"deleted": deleted})))
}
