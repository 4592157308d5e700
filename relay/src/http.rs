//! The relay's HTTP API: routes, the one error type, and the server loop.
//!
//! Every handler does its SQLite work on a blocking thread, on a pooled
//! connection, when the work semaphore lets it; no connection is held across
//! an `.await`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tickets_core::index::ListQuery;
use tickets_core::protocol::{
    ErrorBody, ErrorCode, RegisterRequest, RegisterResponse, SyncRequest, PROTOCOL_VERSION, REQUEST_BODY_BYTES_MAX,
    WATCH_HOLD_SECS,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth;
use crate::metrics::Metrics;
use crate::store::{Caller, Heads, RelayDb, StoreError};

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub db: RelayDb,
    pub metrics: Arc<Metrics>,
    /// The latest change sequence number; watchers wait on it.
    pub seq: Arc<watch::Sender<Heads>>,
    pub shutdown: watch::Receiver<bool>,
    /// Store work running at once. The work is CPU and SQLite on a few
    /// cores: a burst of requests queues here, in arrival order, instead
    /// of running hundreds at once on cold connections (slower for all,
    /// and each with its own page cache).
    pub work: Arc<tokio::sync::Semaphore>,
    /// inbox: the latest inbox sequence number; watchers wake on it too.
    pub inbox: Arc<watch::Sender<u64>>,
    /// Write rates per agent and per inbox (this instance's buckets).
    pub rates: Arc<crate::rate::Rates>,
}

/// Requests doing store work at once, per core (at least 8).
const WORK_PER_CORE: usize = 4;

impl AppState {
    pub fn new(db: impl Into<RelayDb>) -> Result<(AppState, watch::Sender<bool>), StoreError> {
        let db = db.into();
        // On a thread of its own: a backend may run a runtime of its own,
        // which cannot be entered from the server's.
        let (heads, inbox_head) = std::thread::scope(|s| {
            s.spawn(|| db.with(|c| Ok::<_, StoreError>((c.heads()?, crate::inbox::store::head(c)?)))).join()
        })
        .map_err(|_| StoreError::Damaged("reading the heads failed".into()))??;
        let (seq, _) = watch::channel(heads);
        let (inbox, _) = watch::channel(inbox_head); // inbox
        let (stop_tx, stop_rx) = watch::channel(false);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let work = Arc::new(tokio::sync::Semaphore::new((cores * WORK_PER_CORE).max(8)));
        Ok((
            AppState {
                db,
                metrics: Arc::new(Metrics::default()),
                seq: Arc::new(seq),
                shutdown: stop_rx,
                work,
                inbox: Arc::new(inbox),
                rates: Arc::new(crate::rate::Rates::default()),
            },
            stop_tx,
        ))
    }
}

/// The relay's one error type: a 4xx says exactly what was wrong with the
/// input; a 5xx says nothing inside and is logged once.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    /// Seconds for a `Retry-After` header (a 429).
    retry_after: Option<u64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { status, code, message: message.into(), retry_after: None }
    }

    /// 429 `rate_limited`, with `Retry-After: secs`.
    pub fn rate_limited(secs: u64, message: impl Into<String>) -> AppError {
        AppError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: ErrorCode::RateLimited,
            message: message.into(),
            retry_after: Some(secs),
        }
    }

    fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    fn unauthorized() -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "missing, unknown or revoked bearer token")
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %e, "internal error");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error")
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } | StoreError::Contended => {
                tracing::warn!(error = %e, "database unavailable");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the relay's database cannot be reached or is busy for now; retry shortly",
                )
            }
            e => AppError::internal(e),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message);
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        resp
    }
}

fn body_error(r: BytesRejection) -> AppError {
    let status = r.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::new(
            status,
            ErrorCode::TooLarge,
            format!("request body is larger than {REQUEST_BODY_BYTES_MAX} bytes; send smaller pages"),
        );
    }
    // tower-http's body timeout surfaces as a failure to buffer the body.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&r);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return AppError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::BodyTimeout,
                format!(
                    "the request body sent nothing for {} s; send it again",
                    crate::edge::REQUEST_BODY_TIMEOUT_SECS
                ),
            );
        }
        source = e.source();
    }
    AppError::new(status, ErrorCode::BadBody, format!("unreadable request body: {}", r.body_text()))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Runs blocking store work off the async threads, when its turn comes.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let _turn = state.work.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(f).await.map_err(AppError::internal)?
}

pub(crate) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let token = auth::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .ok_or_else(AppError::unauthorized)?;
    let hash = auth::token_hash(token);
    let db = state.db.clone();
    blocking(state, move || db.with(|c| c.caller(&hash).map_err(AppError::from)?.ok_or_else(AppError::unauthorized)))
        .await
}

/// The caller of a route behind [`require_caller`].
#[derive(Clone)]
pub(crate) struct Authed(pub Caller);

/// Checks the bearer token before anything reads the request body: an
/// unauthenticated upload costs its headers, never its bytes.
pub(crate) async fn require_caller(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, AppError> {
    let caller = authenticate(&state, req.headers()).await?;
    req.extensions_mut().insert(Authed(caller));
    Ok(next.run(req).await)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::bad_request(format!("malformed request body: {e}")))
}

fn check_protocol(v: u32) -> Result<(), AppError> {
    if v != PROTOCOL_VERSION {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ProtocolVersion,
            format!("protocol version {v} is not supported; this relay speaks version {PROTOCOL_VERSION}"),
        ));
    }
    Ok(())
}

/// `GET /healthz`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The sync protocol version this relay speaks.
    protocol: u32,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the relay is up", body = Health),
        (status = 503, description = "the relay's database cannot be reached (PostgreSQL)", body = crate::openapi::ErrorDoc), (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, AppError> {
    // On PostgreSQL the database is another machine: a relay that cannot
    // reach it answers 503 (a load balancer then sends requests to the
    // others) until it can again.
    if let RelayDb::Postgres(_) = &state.db {
        let db = state.db.clone();
        tokio::task::spawn_blocking(move || db.with(|c| c.heads())).await.map_err(AppError::internal)??;
    }
    Ok(Json(Health { status: "ok", protocol: PROTOCOL_VERSION }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "counters and latency histograms", body = String,
        content_type = "text/plain"), (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.db.clone();
    let gauges = blocking(&state, move || db.with(|c| Ok(crate::metrics::StoreGauges::read(c, now_ms())?))).await;
    let mut text = state.metrics.render();
    // Without the store's gauges, the counters still answer.
    match gauges {
        Ok(g) => g.render(&mut text),
        Err(e) => tracing::warn!(error = ?e, "metrics: store gauges unavailable"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[utoipa::path(post, path = "/v1/sync/register", tag = "sync", security(("bearer" = [])),
    request_body = crate::openapi::RegisterRequestDoc,
    responses((status = 200, description = "the device is bound to the token's agent", body = crate::openapi::RegisterResponseDoc),
        (status = 401, description = "missing, unknown or revoked bearer token", body = crate::openapi::ErrorDoc),
        (status = 409, description = "the device belongs to another agent", body = crate::openapi::ErrorDoc),
        (status = 413, description = "the body is over the size limit", body = crate::openapi::ErrorDoc),
        (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(Authed(caller)): Extension<Authed>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RegisterResponse>, AppError> {
    let body = body.map_err(body_error)?;
    let req: RegisterRequest = parse_json(&body)?;
    check_protocol(req.protocol)?;
    if automerge::ActorId::try_from(req.device.as_str()).is_err() || req.device.len() != 32 {
        return Err(AppError::bad_request("device must be a 16-byte actor id in hex"));
    }
    if let Some(agent) = req.agent.as_deref().filter(|a| *a != caller.agent.name) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::WrongAgent,
            format!("this device belongs to agent '{agent}' but the token is agent '{}'s", caller.agent.name),
        ));
    }
    let db = state.db.clone();
    let agent = caller.agent.clone();
    let settings = blocking(&state, move || {
        db.with(|c| {
            c.register_device(&req.device, &agent.name, now_ms()).map_err(|e| match e {
                StoreError::DeviceTaken(other) => AppError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::DeviceTaken,
                    format!("this device is already registered to agent '{other}'"),
                ),
                e => AppError::from(e),
            })?;
            Ok(c.settings()?)
        })
    })
    .await?;
    Ok(Json(RegisterResponse {
        protocol: PROTOCOL_VERSION,
        access: crate::sync::access(&caller),
        team: caller.agent.team.clone(),
        settings,
    }))
}

#[utoipa::path(post, path = "/v1/sync", tag = "sync", security(("bearer" = [])),
    request_body = crate::openapi::SyncRequestDoc,
    responses((status = 200, description = "pushed documents' results and a pull page", body = crate::openapi::SyncResponseDoc),
        (status = 400, description = "malformed request, other protocol, or every pushed document invalid \
            (then the body also carries the sync response's fields)", body = crate::openapi::ErrorDoc),
        (status = 403, description = "unregistered device, or every pushed document forbidden \
            (then the body also carries the sync response's fields)", body = crate::openapi::ErrorDoc),
        (status = 401, description = "missing, unknown or revoked bearer token", body = crate::openapi::ErrorDoc),
        (status = 413, description = "the body is over the size limit", body = crate::openapi::ErrorDoc),
        (status = 429, description = "the agent is over its write rate: retry after `Retry-After` seconds", body = crate::openapi::ErrorDoc),
        (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn sync(
    State(state): State<AppState>,
    Extension(Authed(caller)): Extension<Authed>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let started = Instant::now();
    Metrics::add(&state.metrics.sync_requests, 1);
    let body = body.map_err(body_error)?;
    Metrics::add(&state.metrics.sync_bytes_in, body.len() as u64);
    let req: SyncRequest = parse_json(&body)?;
    crate::sync::check(&caller, &req, now_ms()).map_err(|r| {
        let (status, code) = r.status_and_code();
        AppError::new(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), code, r.message())
    })?;
    state.rates.check_push(&state, &caller, req.push.len()).await?;
    let db = state.db.clone();
    let handled =
        blocking(&state, move || db.with(|c| Ok(crate::sync::handle_sync(c, &caller, &req, now_ms())?))).await?;
    state.seq.send_if_modified(|s| {
        let next = Heads { all: s.all.max(handled.heads.all), tickets: s.tickets.max(handled.heads.tickets) };
        let changed = next != *s;
        *s = next;
        changed
    });
    Metrics::add(&state.metrics.docs_applied, handled.accepted as u64);
    Metrics::add(&state.metrics.changes_applied, handled.changes as u64);
    Metrics::add(&state.metrics.refusals, handled.refused as u64);
    let status = StatusCode::from_u16(handled.status).unwrap_or(StatusCode::OK);
    // A refused push still carries its per-document results and pull page,
    // and, like every error body, a code (`forbidden`, `invalid_data`).
    let bytes = serde_json::to_vec(&handled.response).map_err(AppError::internal)?;
    Metrics::add(&state.metrics.sync_bytes_out, bytes.len() as u64);
    state.metrics.sync_latency.observe(started.elapsed());
    Ok((status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Long poll: answers as soon as the relay's sequence passes `cursor`, or
/// after a while with the same sequence.
#[utoipa::path(get, path = "/v1/sync/watch", tag = "sync", security(("bearer" = [])),
    params(("cursor" = Option<u64>, Query, description = "the sequence the caller holds everything up to"),
        ("inbox" = Option<u64>, Query, description = "the inbox sequence the caller has seen")),
    responses((status = 200, description = "the relay's sequence, once past `cursor` or after a while", body = WatchAnswer),
        (status = 401, description = "missing, unknown or revoked bearer token", body = crate::openapi::ErrorDoc), (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn watch_changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<WatchAnswer>, AppError> {
    // An agent without the notes permission waits on ticket changes only:
    // a note written elsewhere neither wakes it nor moves what it sees.
    let notes_ok = authenticate(&state, &headers).await?.agent.may_read_notes();
    let mut cursor = 0u64;
    let mut inbox_seen: Option<u64> = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "cursor" {
            cursor = v.parse().map_err(|_| AppError::bad_request("cursor must be a whole number"))?;
        }
        if k == "inbox" {
            inbox_seen = Some(v.parse().map_err(|_| AppError::bad_request("inbox must be a whole number"))?);
        }
    }
    let _watching = Metrics::watching(&state.metrics);
    let mut rx = state.seq.subscribe();
    let mut inbox = state.inbox.subscribe(); // inbox: a new message wakes watchers too
    inbox.mark_unchanged();
    let mut stop = state.shutdown.clone();
    let deadline = tokio::time::sleep(Duration::from_secs(WATCH_HOLD_SECS));
    tokio::pin!(deadline);
    loop {
        let current = rx.borrow_and_update().for_reader(notes_ok);
        let inbox_head = *state.inbox.borrow();
        if current > cursor || inbox_seen.is_some_and(|seen| inbox_head > seen) {
            return Ok(Json(WatchAnswer { seq: current, inbox: inbox_head }));
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { break },
            r = inbox.changed() => if r.is_ok() { break },
            _ = &mut deadline => break,
            _ = stop.changed() => break,
        }
    }
    let current = rx.borrow().for_reader(notes_ok);
    Ok(Json(WatchAnswer { seq: current, inbox: *state.inbox.borrow() }))
}

/// `GET /v1/sync/watch`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct WatchAnswer {
    /// The relay's latest change sequence number.
    seq: u64,
    /// The inbox's latest sequence number (answered at once when past the
    /// `inbox` parameter).
    inbox: u64,
}

/// Parses the board's query string. Filters repeat (`status=open&status=
/// resolved`) or take commas.
pub fn board_query(query: Option<&str>) -> Result<ListQuery, AppError> {
    query_text(query)?;
    let mut q = ListQuery::from_pairs(form_urlencoded::parse(query.unwrap_or_default().as_bytes()))
        .map_err(|e| AppError::bad_request(e.message))?;
    // A board page is bounded: the relay keeps no unbounded response.
    q.limit = Some(q.limit.unwrap_or(BOARD_PAGE_MAX).min(BOARD_PAGE_MAX));
    Ok(q)
}

/// Every parameter of a query string (names and values, once decoded) is
/// text every backend can store ([`tickets_core::text`]), checked before a
/// query is built: a `%00` is a 400, never a database error.
pub fn query_text(query: Option<&str>) -> Result<(), AppError> {
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let name: String = k.chars().take(64).map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect();
        tickets_core::text::check(&format!("query parameter '{name}'"), &k)
            .and_then(|()| tickets_core::text::check(&format!("query parameter '{name}'"), &v))
            .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, ErrorCode::TextUnstorable, e.to_string()))?;
    }
    Ok(())
}

/// The most a board query's `limit` or `offset` may say.
pub const BOARD_NUMBER_MAX: usize = tickets_core::index::QUERY_NUMBER_MAX;

/// The most tickets one board response carries.
pub const BOARD_PAGE_MAX: usize = 5000;

/// `GET /v1/tickets`: one page of the board.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BoardResponse {
    /// Each ticket's JSON object (as `tickets show --json`).
    #[schema(value_type = Vec<crate::openapi::TicketDoc>)]
    tickets: Vec<serde_json::Value>,
    total: usize,
    counts: Counts,
    now: String,
    /// The next instant at which some ticket changes colour.
    next_change_at: Option<String>,
}

/// Tickets per SLA colour, over the whole board.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Counts {
    green: u64,
    yellow: u64,
    red: u64,
    /// Tickets whose clocks all stopped in time.
    met: u64,
    none: u64,
}

impl From<tickets_core::index::SlaCounts> for Counts {
    fn from(c: tickets_core::index::SlaCounts) -> Counts {
        Counts { green: c.green, yellow: c.yellow, red: c.red, met: c.met, none: c.none }
    }
}

#[utoipa::path(get, path = "/v1/tickets", tag = "board", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "statuses, comma-separated or repeated"),
        ("priority" = Option<String>, Query, description = "priorities, comma-separated or repeated"),
        ("category" = Option<String>, Query, description = "categories, comma-separated or repeated"),
        ("assignee" = Option<String>, Query, description = "assignees, comma-separated or repeated; `none` for unassigned"),
        ("sla" = Option<String>, Query, description = "colours, any of them: green, yellow, red, met or none, comma-separated or repeated"),
        ("search" = Option<String>, Query, description = "words in subjects, descriptions, customer names and comments (any case, accents and punctuation; subject matches first), or an id prefix"),
        ("sort" = Option<String>, Query, description = "a sort key, `-` first for descending"),
        ("limit" = Option<u64>, Query, maximum = 9223372036854775807_u64, description = "page size (at most 5000)"),
        ("offset" = Option<u64>, Query, maximum = 9223372036854775807_u64, description = "tickets to skip"),
    ),
    responses((status = 200, description = "one page of the board", body = BoardResponse),
        (status = 400, description = "a filter, sort or number that cannot be read, or text no backend can store (`text_unstorable`)", body = crate::openapi::ErrorDoc),
        (status = 401, description = "missing, unknown or revoked bearer token", body = crate::openapi::ErrorDoc), (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn tickets(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let caller = authenticate(&state, &headers).await?;
    let q = board_query(query.as_deref())?;
    let db = state.db.clone();
    let notes_ok = caller.agent.may_read_notes();
    let resp = blocking(&state, move || {
        db.with(|c| {
            let now = now_ms();
            let (tickets, total) = c.tickets(&q, now, notes_ok)?;
            Ok(BoardResponse {
                tickets,
                total,
                counts: c.color_counts(now)?.into(),
                now: tickets_core::time::iso_i64(now),
                next_change_at: c.next_color_change(now)?.map(tickets_core::time::iso_i64),
            })
        })
    })
    .await?;
    state.metrics.board_latency.observe(started.elapsed());
    Ok(Json(resp).into_response())
}

#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "board", security(("bearer" = [])),
    params(("id" = String, Path, description = "a ticket id or a unique prefix of one")),
    responses((status = 200, description = "the ticket's JSON object (as `tickets show --json`)", body = crate::openapi::TicketDoc),
        (status = 400, description = "not an id", body = crate::openapi::ErrorDoc),
        (status = 401, description = "missing, unknown or revoked bearer token", body = crate::openapi::ErrorDoc),
        (status = 404, description = "no ticket matches", body = crate::openapi::ErrorDoc),
        (status = 409, description = "the prefix matches several tickets", body = crate::openapi::ErrorDoc),
        (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let caller = authenticate(&state, &headers).await?;
    let UrlPath(id) = id.map_err(|e| AppError::new(StatusCode::BAD_REQUEST, ErrorCode::BadPath, e.body_text()))?;
    let prefix = id.trim().to_ascii_lowercase();
    if prefix.is_empty() || prefix.len() > 36 || !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(AppError::bad_request("a ticket id is hex digits and dashes"));
    }
    let db = state.db.clone();
    let notes_ok = caller.agent.may_read_notes();
    blocking(&state, move || {
        db.with(|c| {
            let ids = c.ids_with_prefix(&prefix, 2)?;
            let id = match ids.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(AppError::new(
                        StatusCode::NOT_FOUND,
                        ErrorCode::NotFound,
                        format!("no ticket matches '{prefix}'"),
                    ))
                }
                _ => {
                    return Err(AppError::new(
                        StatusCode::CONFLICT,
                        ErrorCode::Ambiguous,
                        format!("'{prefix}' matches several tickets; give more of the id"),
                    ))
                }
            };
            c.ticket(&id, now_ms(), notes_ok)?
                .map(Json)
                .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such ticket"))
        })
    })
    .await
}

/// The team lead's dashboard: the UI shared with the node's app
/// (`tickets-web`), read-only here; it signs in with a bearer token.
#[utoipa::path(get, path = "/", tag = "board",
    responses((status = 200, description = "the lead's dashboard, one HTML page (its scripts and styles under /assets/)", body = String,
        content_type = "text/html"), (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn dashboard() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        tickets_web::index_html(tickets_web::Host::Relay),
    )
}

/// The dashboard loads nothing from outside the relay and runs no inline
/// script; no other site may frame it.
const DASHBOARD_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// One of the dashboard's scripts or its style sheet.
#[utoipa::path(get, path = "/assets/{name}", tag = "board",
    params(("name" = String, Path, description = "a file name, such as app.js")),
    responses((status = 200, description = "the file", body = String, content_type = "text/javascript"),
        (status = 404, description = "no such asset", body = crate::openapi::ErrorDoc),
        (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn asset(name: Result<UrlPath<String>, PathRejection>) -> Result<Response, AppError> {
    let UrlPath(name) = name.map_err(|e| AppError::new(StatusCode::BAD_REQUEST, ErrorCode::BadPath, e.body_text()))?;
    let (content_type, bytes) = tickets_web::asset(&name).ok_or_else(|| {
        AppError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no asset '{name}'; the dashboard is at /"))
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

/// Who the token belongs to, and the relay's current sequence.
#[utoipa::path(get, path = "/v1/me", tag = "board", security(("bearer" = [])),
    responses((status = 200, description = "the token's agent", body = Me), (status = 401, description = "missing, unknown or revoked bearer token", body = crate::openapi::ErrorDoc), (status = "default", description = "any error: what was wrong, and a stable code", body = crate::openapi::ErrorDoc)))]
pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Me>, AppError> {
    let caller = authenticate(&state, &headers).await?;
    let seq = state.seq.borrow().for_reader(caller.agent.may_read_notes());
    Ok(Json(Me {
        internal_notes: caller.agent.may_read_notes(),
        agent: caller.agent.name,
        role: caller.agent.role,
        team: caller.agent.team,
        seq,
    }))
}

/// `GET /v1/me`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Me {
    agent: String,
    /// agent, lead or admin.
    role: String,
    team: Option<String>,
    /// Whether the agent may read internal notes.
    internal_notes: bool,
    /// The relay's latest change sequence number.
    seq: u64,
}

async fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; the API is described at /v1/openapi.json",
    )
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}

pub fn router(state: AppState) -> Router {
    // Routes that read a request body check the token first, in a layer
    // that runs before the body extractor. The others authenticate at the
    // top of their handler and never read a body.
    let uploads = Router::new()
        .route("/v1/sync", post(sync))
        .route("/v1/sync/register", post(register))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_caller));
    Router::new()
        .route("/", get(dashboard))
        .route("/assets/{name}", get(asset))
        .route("/v1/me", get(me))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(crate::openapi::document))
        .route("/v1/sync/watch", get(watch_changes))
        .route("/v1/tickets", get(tickets))
        .route("/v1/tickets/{id}", get(ticket))
        .route("/v1/export", get(crate::export::export))
        .route(
            "/v1/inbox/{secret}",
            post(crate::inbox::webhook::deliver)
                .layer(DefaultBodyLimit::max(tickets_core::inbox::WEBHOOK_BODY_BYTES_MAX + 1)),
        )
        .merge(uploads)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
            crate::edge::REQUEST_BODY_TIMEOUT_SECS,
        )))
        .layer(axum::middleware::from_fn(crate::edge::check_request))
        .layer(axum::middleware::map_response_with_state(state.clone(), count_errors))
        .layer(axum::middleware::from_fn(log_requests))
        .with_state(state)
}

/// One structured log line per request (watch long polls and health checks
/// at debug level, the rest at info).
async fn log_requests(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = logged_path(req.uri().path());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if path == "/v1/sync/watch" || path == "/healthz" {
        tracing::debug!(%method, %path, status, ms, "request");
    } else if let Some(inbox) = resp.extensions().get::<crate::inbox::webhook::LoggedInbox>() {
        tracing::info!(%method, %path, inbox = %inbox.0, status, ms, "request");
    } else {
        tracing::info!(%method, %path, status, ms, "request");
    }
    resp
}

/// A request's path as logged: a webhook's path is its secret, so it is
/// shown as `/v1/inbox/{secret}` (the log line names the inbox instead).
/// No other route carries a secret in its path; tokens travel in headers,
/// which are never logged.
fn logged_path(path: &str) -> String {
    match path.strip_prefix("/v1/inbox/") {
        Some(rest) if !rest.is_empty() => "/v1/inbox/{secret}".to_string(),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod log_tests {
    #[test]
    fn a_webhook_secret_is_never_logged() {
        assert_eq!(super::logged_path("/v1/inbox/wh_0123abcd"), "/v1/inbox/{secret}");
        assert_eq!(super::logged_path("/v1/inbox/wh_0123/extra"), "/v1/inbox/{secret}");
        assert_eq!(super::logged_path("/v1/tickets"), "/v1/tickets");
    }
}

async fn count_errors(State(state): State<AppState>, resp: Response) -> Response {
    if resp.status().is_client_error() {
        Metrics::add(&state.metrics.client_errors, 1);
    } else if resp.status().is_server_error() {
        Metrics::add(&state.metrics.server_errors, 1);
    }
    resp
}

/// Serves on `listener` until `shutdown` resolves, then lets requests in
/// flight finish (watchers are released at once).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(checkpoints(state.clone()));
    if let RelayDb::Postgres(db) = &state.db {
        tokio::spawn(crate::store::postgres::watch::follow_heads(
            db.clone(),
            state.seq.clone(),
            state.inbox.clone(),
            state.shutdown.clone(),
        ));
    }
    let app = router(state);
    crate::edge::serve_connections(listener, app, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await
}

/// How often the relay moves written pages from its write-ahead log into
/// the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints the write-ahead log in the background after writes, so that
/// no request's commit pays for one (a checkpoint syncs the disk, and a
/// commit holds the relay's write gate: every writer would wait on it).
async fn checkpoints(state: AppState) {
    let mut seq = state.seq.subscribe();
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            changed = seq.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        // Writes that land while this checkpoint runs wake the next one.
        seq.mark_unchanged();
        let db = state.db.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || db.checkpoint()).await {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_5xx_body_says_nothing_of_the_inside() {
        let join = tokio::task::spawn_blocking(|| -> () { panic!("secret detail at store.rs:42") }).await;
        let Err(e) = join else { panic!("the task was meant to panic") };
        let resp = AppError::internal(e).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap_or_default();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body, ErrorBody::new(ErrorCode::Internal, "internal error"));
    }
}
