//! The background sync: the node's `sync_watch` on a thread of its own
//! with its own node, as `tickets sync --watch` runs it, and the state the
//! page's header shows (`GET /v1/sync/status`, `event: sync`).
//!
//! States: `local` (never registered, or started with `--offline`),
//! `syncing` (the first round, or one asked for with `Sync now`), `synced`
//! (the last round reached the relay) and `offline` (it did not; the loop
//! backs off and retries, and local edits stay pending).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tickets_node::sync::WatchEvent;

use crate::error::ApiError;
use crate::AppState;

/// How long a stopping app waits for the sync thread's request in flight.
pub const SYNC_STOP_WAIT: Duration = Duration::from_secs(3);

/// After the loop fails for good (a revoked token), how long before it tries
/// again.
pub const SYNC_RESTART_DELAY: Duration = Duration::from_secs(30);

/// What the sync loop last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub state: &'static str,
    pub last_sync_at: Option<String>,
    pub error: Option<String>,
}

impl SyncState {
    pub fn initial(syncing: bool, last_sync_at: Option<String>) -> SyncState {
        SyncState { state: if syncing { "syncing" } else { "local" }, last_sync_at, error: None }
    }
}

/// `GET /v1/sync/status` and `event: sync`.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub state: &'static str,
    pub last_sync_at: Option<String>,
    /// Local edits not yet on the relay (edits, not documents: see
    /// `crate::pending`).
    pub pending: usize,
    pub error: Option<String>,
    /// Documents whose local changes the relay refused.
    pub refused: usize,
    /// Documents set aside because what arrived for them was unusable.
    pub damaged: usize,
    /// Tickets someone else assigned to this agent, not opened since.
    pub new_for_you: usize,
}

/// The sync state with the node's counts.
pub async fn current(state: &AppState) -> Result<SyncStatus, ApiError> {
    let s = state.sync.borrow().clone();
    let (st, edits) = state
        .with_node(|node| {
            let st = node.status()?;
            let db = node.home().join(tickets_node::DB_FILE);
            let edits = crate::pending::pending_edits(&db, node.actor(), st.pending)?;
            Ok((st, edits))
        })
        .await?;
    Ok(SyncStatus {
        state: s.state,
        last_sync_at: st.last_sync.or(s.last_sync_at),
        pending: edits,
        error: s.error,
        refused: st.refused,
        damaged: st.damaged,
        new_for_you: st.new_for_you,
    })
}

pub async fn status(State(state): State<AppState>) -> Result<Json<SyncStatus>, ApiError> {
    Ok(Json(current(&state).await?))
}

/// `POST /v1/sync/now`: wakes the sync loop (202); 409 on a node that does
/// not sync.
pub async fn now(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !state.syncing {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "local",
            "this app does not sync: the node is not registered with a relay, or the app was started with --offline",
        ));
    }
    state.wake.store(true, Ordering::Relaxed);
    state.sync.send_if_modified(|s| {
        let was = s.state;
        s.state = "syncing";
        was != "syncing"
    });
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"state": "syncing"}))).into_response())
}

/// Starts the sync thread; it ends soon after `stop` is set.
pub fn spawn(state: &AppState, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let home = state.home.clone();
    let tx = state.sync.clone();
    let wake = state.wake.clone();
    std::thread::spawn(move || {
        let update = |f: &dyn Fn(&mut SyncState)| {
            tx.send_if_modified(|s| {
                let before = s.clone();
                f(s);
                *s != before
            });
        };
        while !stop.load(Ordering::Relaxed) {
            let ended =
                tickets_node::home::open(&home).map_err(tickets_node::sync::SyncError::from).and_then(|mut node| {
                    node.sync_watch_with(
                        &|| !stop.load(Ordering::Relaxed),
                        &|| wake.swap(false, Ordering::Relaxed),
                        &mut |e| {
                            match e {
                                // A round of an idle, synced app is not news.
                                WatchEvent::Syncing => {}
                                WatchEvent::Done(Ok(_)) => update(&|s| {
                                    s.state = "synced";
                                    s.last_sync_at = Some(tickets_core::time::iso_i64(now_ms()));
                                    s.error = None;
                                }),
                                WatchEvent::Done(Err(e)) => {
                                    let message = e.to_string();
                                    update(&|s| {
                                        s.state = "offline";
                                        s.error = Some(message.clone());
                                    })
                                }
                            }
                        },
                    )
                });
            let Err(e) = ended else { break };
            // Not transient (a revoked token, a relay of another protocol):
            // say so, and try again later or when asked.
            tracing::warn!("background sync stopped: {e}");
            let message = e.to_string();
            update(&|s| {
                s.state = "offline";
                s.error = Some(message.clone());
            });
            let until = Instant::now() + SYNC_RESTART_DELAY;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) && !wake.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Waits for the sync thread at most [`SYNC_STOP_WAIT`].
pub fn join_bounded(handle: JoinHandle<()>) {
    let until = Instant::now() + SYNC_STOP_WAIT;
    while !handle.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if handle.is_finished() {
        let _ = handle.join();
    }
}
