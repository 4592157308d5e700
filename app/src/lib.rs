//! The node's app: a small HTTP server on loopback over the local node,
//! serving the web UI (`tickets_web`) and the JSON API the UI reads and
//! writes. `tickets app` runs it.
//!
//! - [`session`]: the per-start secret (it works once), the session token
//!   it is exchanged for (a header, never a cookie), the `Host` check,
//!   same-origin writes and the security headers (every request).
//! - [`api`]: the JSON endpoints; each one opens the node and runs one node
//!   operation, the same ones the CLI runs, on a blocking thread.
//! - [`events`]: `GET /v1/events`, server-sent events when the node's store
//!   changes (noticed with SQLite's `data_version`, whoever wrote) or the
//!   sync state does.
//! - [`background`]: the background sync (the node's `sync_watch`) and the
//!   sync state the header shows.
//! - [`pending`]: the count of edits waiting to be pushed (the header's).
//! - [`error`]: the one error type, JSON `{"error", "code"}`.
//!
//! **The app has no second path to SQLite**: every read and write goes
//! through `tickets_node::Node` (and, for the count of waiting edits, the
//! node's own store API), so a ticket created in the browser and one
//! created with `tickets create` are the same transaction.

pub mod api;
pub mod background;
pub mod error;
pub mod events;
pub mod pending;
pub mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::background::SyncState;
use crate::error::ApiError;

/// How the app runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's home folder.
    pub home: PathBuf,
    /// Sync with the relay in the background (registered and not
    /// `--offline`).
    pub sync: bool,
}

/// Node operations running at once: each holds SQLite's write lock for one
/// short transaction, so more would only queue inside SQLite.
pub const WORK_MAX: usize = 4;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub(crate) home: PathBuf,
    /// The printed URL's secret, the session token, the page cookie's
    /// value ([`session::Keys`]).
    pub(crate) keys: Arc<session::Keys>,
    /// The page cookie's name, `tickets_page_PORT`.
    pub(crate) page_cookie: Arc<str>,
    /// `Host` values that name the listening address (lower case).
    pub(crate) hosts: Arc<[String]>,
    pub(crate) syncing: bool,
    /// Bumped whenever the node's store changed.
    pub(crate) changes: Arc<watch::Sender<u64>>,
    pub(crate) sync: Arc<watch::Sender<SyncState>>,
    /// Set by `POST /v1/sync/now`; the sync loop takes it.
    pub(crate) wake: Arc<AtomicBool>,
    /// Turns true when the app stops: open event streams end.
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) work: Arc<Semaphore>,
    /// Open event streams ([`events::EVENT_STREAMS_MAX`]).
    pub(crate) streams: Arc<Semaphore>,
}

impl AppState {
    /// Runs a node operation on a blocking thread with a node opened for
    /// it (see ARCHITECTURE.md: a node per request).
    pub(crate) async fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut tickets_node::Node) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _turn = self.work.acquire().await.map_err(ApiError::internal)?;
        let home = self.home.clone();
        tokio::task::spawn_blocking(move || {
            let mut node = tickets_node::home::open(&home)?;
            f(&mut node)
        })
        .await
        .map_err(ApiError::internal)?
    }
}

/// A configured app, before it serves.
pub struct App {
    state: AppState,
    addr: SocketAddr,
    /// The printed URL's secret (it works once).
    secret: String,
    stop: watch::Sender<bool>,
}

impl App {
    /// An app for the node in `config.home`, answering at `addr` (the
    /// listener's local address). Fails when there is no node there.
    pub fn new(config: Config, addr: SocketAddr) -> Result<App, tickets_node::NodeError> {
        // Opening the node checks that it exists and is readable now,
        // rather than on the first request.
        let mut node = tickets_node::home::open(&config.home)?;
        let last_sync = node.status()?.last_sync;
        drop(node);
        let (keys, secret) =
            session::Keys::new().map_err(|source| tickets_node::NodeError::Io { path: config.home.clone(), source })?;
        let (stop, shutdown) = watch::channel(false);
        let initial = SyncState::initial(config.sync, last_sync);
        let state = AppState {
            home: config.home,
            keys: Arc::new(keys),
            page_cookie: session::page_cookie_name(addr.port()).into(),
            hosts: session::allowed_hosts(addr).into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            syncing: config.sync,
            changes: Arc::new(watch::channel(0).0),
            sync: Arc::new(watch::channel(initial).0),
            wake: Arc::new(AtomicBool::new(false)),
            shutdown,
            work: Arc::new(Semaphore::new(WORK_MAX)),
            streams: Arc::new(Semaphore::new(events::EVENT_STREAMS_MAX)),
        };
        Ok(App { state, addr, secret, stop })
    }

    /// The URL to open: it carries this start's secret, which works once.
    pub fn url(&self) -> String {
        format!("http://{}/?{}={}", self.addr, session::QUERY, self.secret)
    }

    /// Serves until `shutdown` completes, then stops the background work
    /// and lets requests in flight finish. Event streams end at once.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop_flag = Arc::new(AtomicBool::new(false));
        let watcher = events::spawn_change_watch(&self.state, stop_flag.clone())?;
        let syncer = self.state.syncing.then(|| background::spawn(&self.state, stop_flag.clone()));
        let router = router(self.state.clone());
        let stop = self.stop;
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await;
        stop_flag.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        if let Some(s) = syncer {
            // The sync thread stops after the request in flight, if any; a
            // relay that does not answer is not waited for.
            background::join_bounded(s);
        }
        result
    }
}

/// Every route, behind the session guard.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(api::index))
        .route("/assets/{name}", get(api::asset))
        .route("/v1/me", get(api::me))
        .route("/v1/tickets", get(api::list).post(api::create))
        .route("/v1/tickets/bulk", post(api::bulk))
        .route("/v1/views", get(api::views).post(api::save_view))
        .route("/v1/views/{name}", axum::routing::delete(api::delete_view))
        .route("/v1/tickets/{id}", get(api::show).patch(api::patch))
        .route("/v1/tickets/{id}/comments", post(api::comment))
        .route("/v1/tickets/{id}/notes", post(api::note))
        .route("/v1/conversations/prefill", post(api::prefill))
        .route("/v1/inbox", get(api::inbox))
        .route("/v1/inbox/{id}/prefill", get(api::inbox_prefill))
        .route("/v1/directory", get(api::directory))
        .route("/v1/sync/status", get(background::status))
        .route("/v1/sync/now", post(background::now))
        .route("/v1/events", get(events::stream))
        .route("/v1/export", get(api::export))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), session::guard))
        .with_state(state)
}
