//! `GET /v1/events`: server-sent events that tell the page to refresh.
//!
//! `event: changed` (`data: {"seq": N}`) whenever the node's store changed,
//! by the app itself, by a CLI command in another process or by the
//! background sync: one thread asks SQLite's `PRAGMA data_version` on a
//! read-only connection of its own every [`CHANGE_POLL`], which reads a
//! counter in shared memory (no query of the tables, no file read while
//! nothing changes). `event: sync` with the sync status whenever the sync
//! state changes. A comment line every [`KEEP_ALIVE`] keeps the stream
//! open through idle proxies; the page itself never polls.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use crate::background::SyncState;
use crate::error::ApiError;
use crate::AppState;

/// How often the store is asked whether it changed: a change shows on an
/// open page well within a second.
pub const CHANGE_POLL: Duration = Duration::from_millis(250);

/// A comment line this often keeps an idle stream open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Event streams open at once (a page holds one; tabs and reloads add
/// more for a while). One more is refused with 503.
pub const EVENT_STREAMS_MAX: usize = 32;

/// Starts the thread that notices store changes; it ends soon after `stop`
/// is set.
pub fn spawn_change_watch(state: &AppState, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    let db = state.home.join(tickets_node::DB_FILE);
    let watch = tickets_node::ChangeWatch::open(&db).map_err(std::io::Error::other)?;
    let tx = state.changes.clone();
    Ok(std::thread::spawn(move || {
        let mut last = watch.version().ok();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(CHANGE_POLL);
            match watch.version() {
                Ok(v) if Some(v) != last => {
                    last = Some(v);
                    tx.send_modify(|seq| *seq += 1);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot tell whether the node changed: {e}"),
            }
        }
    }))
}

enum Next {
    Changed(u64),
    Sync,
    End,
}

struct Streams {
    /// Held while the stream is open.
    _slot: tokio::sync::OwnedSemaphorePermit,
    changes: watch::Receiver<u64>,
    sync: watch::Receiver<SyncState>,
    shutdown: watch::Receiver<bool>,
    state: AppState,
}

pub async fn stream(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!("{EVENT_STREAMS_MAX} event streams are open already; close a tab of the app"),
        )
    })?;
    let mut changes = state.changes.subscribe();
    changes.mark_unchanged();
    let mut sync = state.sync.subscribe();
    sync.mark_unchanged();
    let shutdown = state.shutdown.clone();
    let start = Streams { _slot: slot, changes, sync, shutdown, state };
    let events = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            if *s.shutdown.borrow() {
                return None;
            }
            let next = tokio::select! {
                r = s.changes.changed() => match r {
                    Ok(()) => Next::Changed(*s.changes.borrow_and_update()),
                    Err(_) => Next::End,
                },
                r = s.sync.changed() => match r {
                    Ok(()) => {
                        s.sync.borrow_and_update();
                        Next::Sync
                    }
                    Err(_) => Next::End,
                },
                _ = s.shutdown.changed() => Next::End,
            };
            let event = match next {
                Next::End => return None,
                Next::Changed(seq) => Event::default().event("changed").data(format!("{{\"seq\":{seq}}}")),
                Next::Sync => match crate::background::current(&s.state).await {
                    Ok(status) => match Event::default().event("sync").json_data(&status) {
                        Ok(e) => e,
                        Err(_) => continue,
                    },
                    Err(_) => continue,
                },
            };
            return Some((Ok(event), s));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
