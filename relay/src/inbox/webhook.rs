//! `POST /v1/inbox/{secret}`: a chat tool's webhook delivery.
//!
//! Chat tools cannot always add headers, so the secret is in the path. A
//! wrong or removed secret is 404 and stores nothing (the secret is looked
//! up again under the write lock, so a removal takes effect at once); a
//! body over
//! [`WEBHOOK_BODY_BYTES_MAX`] is 413; one that is not JSON or not of the
//! inbox's shape is 400 saying what was wrong; an event this product does
//! not use is 200 (`"ignored"`), so the chat tool does not retry it. An
//! inbox over its write rate (`tickets relay limits`) is 429 with
//! `Retry-After`, before any store work.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tickets_core::inbox::{InboxError as DeliveryError, WEBHOOK_BODY_BYTES_MAX};
use tickets_core::protocol::ErrorCode;

use super::store::{self, InboxStoreError, Ingested};
use crate::http::{AppError, AppState};

/// The answer to an accepted delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivered {
    /// `stored` (merged; `changed` false for a repeat) or `ignored`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    /// The ignored event's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no inbox has this URL: it was removed, or the secret is wrong",
    )
}

fn too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooLarge,
        format!("the webhook body is larger than {WEBHOOK_BODY_BYTES_MAX} bytes; send one event per request"),
    )
}

/// A secret as `tickets relay inbox add` makes it: `wh_` and hex.
fn plausible(secret: &str) -> bool {
    secret.len() <= 128 && secret.starts_with("wh_") && secret[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[utoipa::path(post, path = "/v1/inbox/{secret}", tag = "inbox",
    params(("secret" = String, Path, description = "the secret printed by `tickets relay inbox add`")),
    request_body(content = Object, description = "a Chatwoot webhook event, or the SPEC §1.2 conversation object"),
    responses((status = 200, description = "stored (merged by message id) or ignored", body = Delivered),
        (status = 400, description = "not JSON, or not of the inbox's shape: what was wrong", body = crate::openapi::ErrorDoc),
        (status = 404, description = "no inbox has this URL", body = crate::openapi::ErrorDoc),
        (status = 409, description = "the conversation came through another inbox", body = crate::openapi::ErrorDoc),
        (status = 413, description = "the body is over the webhook size limit", body = crate::openapi::ErrorDoc),
        (status = 429, description = "the inbox is over its write rate: retry after `Retry-After` seconds", body = crate::openapi::ErrorDoc),
        (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub async fn deliver(
    State(state): State<AppState>,
    UrlPath(secret): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut inbox = None;
    let mut resp = receive(state, secret, body, &mut inbox).await.into_response();
    if let Some(name) = inbox {
        resp.extensions_mut().insert(LoggedInbox(name));
    }
    resp
}

/// The inbox a delivery came through, for the request log, which shows it
/// instead of the secret in the path.
#[derive(Debug, Clone)]
pub struct LoggedInbox(pub String);

async fn receive(
    state: AppState,
    secret: String,
    body: Result<Bytes, BytesRejection>,
    inbox: &mut Option<String>,
) -> Result<Json<Delivered>, AppError> {
    if !plausible(&secret) {
        return Err(not_found());
    }
    let hash = crate::auth::token_hash(&secret);
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
        Err(r) => {
            return Err(AppError::new(
                r.status(),
                ErrorCode::BadBody,
                format!("unreadable request body: {}", r.body_text()),
            ))
        }
    };
    if body.len() > WEBHOOK_BODY_BYTES_MAX {
        return Err(too_large());
    }
    // The inbox's write rate, before any store work (429, Retry-After).
    state.rates.check_delivery(&state, &hash).await?;
    let db = state.db.clone();
    let now = crate::http::now_ms();
    let (name, ingested) = crate::http::blocking(&state, move || {
        db.with(|c| {
            let mut name = None;
            let ingested = store::ingest_naming(c, &hash, &body, now, &mut name).map_err(|e| match e {
                InboxStoreError::UnknownSecret => not_found(),
                InboxStoreError::Delivery(DeliveryError::TooLarge) => too_large(),
                InboxStoreError::Delivery(e @ DeliveryError::Json(_)) => {
                    AppError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, e.to_string())
                }
                InboxStoreError::Delivery(e @ DeliveryError::Shape(_)) => {
                    AppError::new(StatusCode::BAD_REQUEST, ErrorCode::UnknownShape, e.to_string())
                }
                e @ InboxStoreError::OtherInbox(..) => {
                    AppError::new(StatusCode::CONFLICT, ErrorCode::OtherInbox, e.to_string())
                }
                // A database away or busy is 503, so the chat tool retries.
                InboxStoreError::Store(e) => AppError::from(e),
                e => AppError::internal(e),
            });
            Ok::<_, AppError>((name, ingested))
        })
    })
    .await?;
    *inbox = name;
    let ingested = ingested?;
    Ok(Json(match ingested {
        Ingested::Stored { id, changed, seq } => {
            if changed {
                state.inbox.send_if_modified(|s| {
                    let moved = seq > *s;
                    *s = (*s).max(seq);
                    moved
                });
            }
            Delivered { status: "stored", conversation: Some(id), changed: Some(changed), event: None }
        }
        Ingested::Ignored { event } => {
            Delivered { status: "ignored", conversation: None, changed: None, event: Some(event) }
        }
    }))
}
