//! The relay's HTTP API as an OpenAPI 3.1 document, `GET /v1/openapi.json`.
//!
//! Paths come from the `#[utoipa::path]` attribute on each handler in
//! [`crate::http`], response schemas from the handlers' own response types.
//! The sync wire types live in `tickets-core`, which knows nothing of
//! OpenAPI: they are described here by mirror types named like them, which
//! only this document uses. Every operation declares a `default` response
//! with the `{error, code}` schema in `application/json`, so a client (or
//! schemathesis) can hold every error body to it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error body of the relay (`tickets_core::protocol::ErrorBody`).
#[derive(ToSchema)]
#[schema(as = ErrorBody)]
#[allow(dead_code)]
pub struct ErrorDoc {
    /// What was wrong, and what to do next.
    error: String,
    /// A stable machine-readable code, e.g. `unauthorized`, `too_large`,
    /// `text_unstorable` (a query parameter holding U+0000).
    code: String,
}

/// One document's data (`tickets_core::protocol::DocData`).
#[derive(ToSchema)]
#[schema(as = DocData)]
#[allow(dead_code)]
pub struct DocDataDoc {
    /// The ticket id.
    id: String,
    /// `ticket` or `notes`.
    kind: String,
    /// Base64 of Automerge bytes.
    data: String,
}

/// A ticket's JSON object, as `tickets show --json` prints it
/// (`tickets_core::json::TicketJson` with live SLA figures). Only the
/// fields a board reads are described; the object carries the others too.
#[derive(ToSchema)]
#[schema(as = Ticket)]
#[allow(dead_code)]
pub struct TicketDoc {
    id: String,
    subject: String,
    priority: String,
    status: String,
    assignee: Option<String>,
    created_at: String,
    sla: SlaDoc,
}

/// A ticket's SLA at the response's instant (`tickets_core::json::SlaJson`).
#[derive(ToSchema)]
#[schema(as = Sla)]
#[allow(dead_code)]
pub struct SlaDoc {
    /// `{state, target_secs, due_at, warn_at, breached_at, overrun_secs,
    /// stopped_at, elapsed_secs}`.
    #[schema(value_type = Object)]
    first_response: (),
    #[schema(value_type = Object)]
    resolution: (),
    /// `red`, `yellow`, `green`, `met` or `none`.
    color: String,
    /// The clock that decides the colour: `first_response` or
    /// `resolution`; null when every clock met its target or none has one.
    clock: Option<String>,
    /// The badge's words: `First response 23m overdue`, `Resolution 3h 5m
    /// left`, `Met` or `No SLA`.
    label: String,
    /// True while computed by a node rather than by the relay.
    provisional: bool,
    computed_at: String,
}

/// What a device asks to pull (`tickets_core::protocol::PullRequest`).
#[derive(ToSchema)]
#[schema(as = PullRequest)]
#[allow(dead_code)]
pub struct PullRequestDoc {
    /// The relay sequence number up to which the device holds everything.
    cursor: u64,
    /// False until the device has finished its first pull.
    bootstrapped: Option<bool>,
    /// Where a bootstrap resumes: `{after_id, after_kind, target}`.
    #[schema(value_type = Option<Object>)]
    bootstrap: Option<()>,
}

/// `POST /v1/sync` request (`tickets_core::protocol::SyncRequest`).
#[derive(ToSchema)]
#[schema(as = SyncRequest)]
#[allow(dead_code)]
pub struct SyncRequestDoc {
    /// The protocol version; this relay speaks 1.
    protocol: u32,
    /// The device's registered Automerge actor, 32 hex digits.
    device: String,
    /// The device's wall clock when it sent the request (epoch ms).
    clock_ms: i64,
    /// Documents' new changes.
    push: Option<Vec<DocDataDoc>>,
    /// Absent: push only.
    pull: Option<PullRequestDoc>,
    /// The inbox's own cursor, `{cursor}`; absent: no inbox page.
    #[schema(value_type = Option<Object>)]
    inbox: Option<()>,
}

/// What the token's agent may do (`tickets_core::protocol::Access`).
#[derive(ToSchema)]
#[schema(as = Access)]
#[allow(dead_code)]
pub struct AccessDoc {
    agent: String,
    role: String,
    internal_notes: bool,
}

/// `POST /v1/sync` response (`tickets_core::protocol::SyncResponse`).
#[derive(ToSchema)]
#[schema(as = SyncResponse)]
#[allow(dead_code)]
pub struct SyncResponseDoc {
    protocol: u32,
    /// The relay's wall clock (epoch ms).
    relay_ms: i64,
    /// One result per pushed document: `{id, kind, accepted, reason, code, heads, sla}`;
    /// a refused document's `code` is one of the allow-list's refusal codes
    /// (among them `text_unstorable`: text no backend can store, U+0000;
    /// `event_backdated`: an event dated before its device's previous
    /// completed sync, or a creation before its conversation reached the
    /// relay; `prefill_forged`: an inbox conversation's prefill that is not
    /// the relay's copy's; `conversation_unknown`: a ticket claiming an
    /// inbox conversation the relay does not hold).
    #[schema(value_type = Vec<Object>)]
    pushed: Vec<()>,
    /// The pull page: `{docs, cursor, bootstrap, more, sla}`.
    #[schema(value_type = Option<Object>)]
    pull: Option<()>,
    /// Categories, teams and SLA settings.
    #[schema(value_type = Option<Object>)]
    settings: Option<()>,
    access: AccessDoc,
    /// The relay database's epoch.
    epoch: Option<String>,
    /// Set when every pushed document was refused (status 403 or 400).
    error: Option<String>,
    /// The code of `error`: `forbidden` or `invalid_data`.
    code: Option<String>,
    /// The inbox page when asked for: `{conversations, cursor, more}`.
    #[schema(value_type = Option<Object>)]
    inbox: Option<()>,
}

/// `POST /v1/sync/register` request (`tickets_core::protocol::RegisterRequest`).
#[derive(ToSchema)]
#[schema(as = RegisterRequest)]
#[allow(dead_code)]
pub struct RegisterRequestDoc {
    /// The protocol version; this relay speaks 1.
    protocol: u32,
    /// The device's Automerge actor, 32 hex digits.
    device: String,
    /// The agent the device already belongs to, if any.
    agent: Option<String>,
}

/// `POST /v1/sync/register` response (`tickets_core::protocol::RegisterResponse`).
#[derive(ToSchema)]
#[schema(as = RegisterResponse)]
#[allow(dead_code)]
pub struct RegisterResponseDoc {
    protocol: u32,
    access: AccessDoc,
    team: Option<String>,
    /// Categories, teams and SLA settings.
    #[schema(value_type = Object)]
    settings: (),
}

/// `GET /v1/export` (the handler lives in [`crate::export`]).
#[utoipa::path(get, path = "/v1/export", tag = "board", security(("bearer" = [])),
    params(
        ("format" = String, Query, description = "csv, json, ndjson or csv-bundle"),
        ("table" = Option<String>, Query, description = "with csv: tickets, comments or history"),
        ("from" = Option<String>, Query, description = "first day, YYYY-MM-DD"),
        ("to" = Option<String>, Query, description = "last day, YYYY-MM-DD"),
        ("status" = Option<String>, Query, description = "statuses, comma-separated"),
        ("category" = Option<String>, Query, description = "categories, comma-separated"),
    ),
    responses(
        (status = 200, description = "every matching ticket, streamed; `x-total-count` says how many", content(
            (String = "text/csv"),
            (Vec<Object> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "application/octet-stream"),
        )),
        (status = 400, description = "a parameter that cannot be read", body = ErrorDoc),
        (status = 401, description = "missing, unknown or revoked bearer token", body = ErrorDoc),
        (status = 403, description = "only leads and admins export", body = ErrorDoc),
        (status = "default", description = "any error: what was wrong, and a stable code", body = ErrorDoc),
    ))]
#[allow(dead_code)]
fn export() {}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "this OpenAPI document", body = Object),
        (status = "default", description = "any error: what was wrong, and a stable code", body = ErrorDoc)))]
pub async fn document() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_string()));
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tickets relay",
        description = "Sync, board and export API of the Tickets relay. Every error is JSON `{error, code}`.",
    ),
    paths(
        crate::http::dashboard,
        crate::http::asset,
        crate::http::healthz,
        crate::http::metrics,
        crate::http::me,
        crate::http::sync,
        crate::http::register,
        crate::http::watch_changes,
        crate::http::tickets,
        crate::http::ticket,
        export,
        document,
        crate::inbox::webhook::deliver,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "sync", description = "what nodes speak"),
        (name = "board", description = "the lead's view of the relay"),
        (name = "operations", description = "health, metrics, this document"),
        (name = "inbox", description = "chat tools' webhooks (the secret is in the path)"),
    )
)]
pub struct ApiDoc;

/// The bearer-token scheme every authenticated operation names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a token from `tickets relay agent add`"))
                    .build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().expect("the document serializes")).expect("json");
        for path in [
            "/",
            "/assets/{name}",
            "/healthz",
            "/metrics",
            "/v1/me",
            "/v1/sync",
            "/v1/sync/register",
            "/v1/sync/watch",
            "/v1/tickets",
            "/v1/tickets/{id}",
            "/v1/export",
            "/v1/openapi.json",
            "/v1/inbox/{secret}",
        ] {
            let ops = doc["paths"][path].as_object().unwrap_or_else(|| panic!("{path} is not described"));
            for (method, op) in ops {
                let default = &op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(default, "#/components/schemas/ErrorBody", "{method} {path}");
            }
        }
        let sla = &doc["components"]["schemas"]["Sla"]["properties"];
        assert!(sla["clock"].is_object() && sla["label"].is_object(), "the SLA badge's fields: {sla}");
        let error = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(error["required"], serde_json::json!(["error", "code"]));
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }
}
