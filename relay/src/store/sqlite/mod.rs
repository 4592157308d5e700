//! The SQLite backend, the relay's default: one file, a small pool of
//! connections, and one writer at a time (the gate). All of its SQL lives
//! in this module's files, each found by its name:
//!
//! - [`schema`]: the tables, their migrations and [`Db::open`];
//! - [`admin`]: agents, devices, settings, integrity and backups;
//! - [`log`]: documents and the change log (push snapshots and commits,
//!   pull reads, the heads);
//! - [`board`]: the ticket index as the board queries it;
//! - [`export`]: export pages;
//! - [`files`]: the modes of the database's files and backups (0600);
//! - [`inbox`]: the inbox's tables (`inboxes`, `inbox_conversations`).
//!
//! Tables: `agents` and `devices` (who may do what, which actors are
//! whose), `docs` (each document's compacted bytes and the sequence number
//! of its last change), `changes` (the log of every change in commit order:
//! the sequence numbers devices keep as cursors), `event_times` (each
//! event's effective time, fixed when the relay first received it),
//! `tickets` (the index with authoritative SLA instants) and `settings`.
//!
//! Cursors are exact: a commit holds the gate and SQLite's write lock from
//! its first sequence number to its commit, so sequence order is commit
//! order and a reader never sees a later number before an earlier one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Transaction};

use super::{AgentRow, StoreError};

mod admin;
mod board;
mod export;
pub mod files;
mod floor;
mod inbox;
mod log;
mod schema;

pub use admin::BACKUP_PAGES_PER_STEP;
pub use schema::SCHEMA_VERSION;

pub(super) trait Ctx<T> {
    fn db(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn db(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Db { path: path.to_path_buf(), source })
    }
}

/// The relay's database: a path, a small pool of idle connections (each
/// keeps its page cache warm between requests), and the gate that queues
/// the relay's own writers.
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    pub(super) gate: Arc<Mutex<()>>,
}

/// Idle connections kept open; more are opened while many requests run at
/// once and closed afterwards.
const POOL_IDLE_MAX: usize = 8;
/// Pages the write-ahead log may reach before a pooled connection's commit
/// checkpoints it itself (SQLite's default is 1 000).
const WAL_PAGES_MAX: i64 = 16_000;
/// Page cache per connection (SQLite's default is 2 MiB; a 100k-ticket
/// relay's hot B-tree pages need more, and the pool bounds the total).
const CACHE_KIB: i64 = 16 * 1024;

impl Db {
    fn at(path: &Path) -> Db {
        Db { path: path.to_path_buf(), idle: Arc::default(), gate: Arc::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection of its own (commands, tests); the server uses
    /// [`Db::with`].
    pub fn conn(&self) -> Result<Conn, StoreError> {
        let c = Connection::open(&self.path).db(&self.path)?;
        c.busy_timeout(std::time::Duration::from_secs(30)).db(&self.path)?;
        c.pragma_update(None, "journal_mode", "WAL").db(&self.path)?;
        c.pragma_update(None, "synchronous", "NORMAL").db(&self.path)?;
        c.pragma_update(None, "cache_size", -CACHE_KIB).db(&self.path)?;
        Ok(Conn { c, path: self.path.clone(), gate: self.gate.clone() })
    }

    /// Copies what the write-ahead log holds into the database file,
    /// without waiting for readers or blocking writers.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.with(|c| c.c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).db(&c.path))
    }

    /// Runs `f` on a pooled connection. The connection goes back to the
    /// pool only when `f` left no transaction open.
    pub fn with<R, E: From<StoreError>>(&self, f: impl FnOnce(&mut Conn) -> Result<R, E>) -> Result<R, E> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut conn = match pooled {
            Some(c) => Conn { c, path: self.path.clone(), gate: self.gate.clone() },
            None => {
                let conn = self.conn()?;
                // The server checkpoints in the background (see
                // `http::checkpoints`); this bound only stops the log
                // growing without end should that fall behind.
                conn.c.pragma_update(None, "wal_autocheckpoint", WAL_PAGES_MAX).db(&self.path)?;
                conn
            }
        };
        let out = f(&mut conn);
        let Conn { c, .. } = conn;
        if c.is_autocommit() {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < POOL_IDLE_MAX {
                    idle.push(c);
                }
            }
        }
        out
    }
}

pub struct Conn {
    pub(super) c: Connection,
    pub(super) path: PathBuf,
    /// Held while this process writes: writers queue here in order instead
    /// of polling SQLite's lock.
    gate: Arc<Mutex<()>>,
}

fn agent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRow> {
    Ok(AgentRow {
        name: r.get(0)?,
        role: r.get(1)?,
        team: r.get(2)?,
        internal_notes: r.get::<_, i64>(3)? != 0,
        revoked: r.get::<_, i64>(4)? != 0,
        devices: r.get::<_, i64>(5)? as usize,
    })
}

const AGENT_COLS: &str = "a.name, a.role, a.team, a.internal_notes, a.revoked,
    (SELECT count(*) FROM devices d WHERE d.agent = a.name)";

impl Conn {
    fn tx(&mut self) -> Result<Transaction<'_>, StoreError> {
        self.c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(&self.path)
    }
}

/// The verbs above the seam, on a SQLite connection (what the server, the
/// commands and the tests call).
impl Conn {
    /// Applies one push page (see [`crate::push::push`]).
    pub fn push(
        &mut self,
        caller: &super::Caller,
        device: &str,
        offset_ms: i64,
        items: &[tickets_core::protocol::DocData],
        now: i64,
    ) -> Result<super::PushOutcome, StoreError> {
        crate::push::push(self, caller, device, offset_ms, items, now)
    }

    /// One pull page for a device (see [`crate::pull::pull`]).
    pub fn pull(
        &mut self,
        caller: &super::Caller,
        device: &str,
        req: &tickets_core::protocol::PullRequest,
    ) -> Result<tickets_core::protocol::PullPage, StoreError> {
        crate::pull::pull(self, caller, device, req)
    }

    /// Authoritative ticket objects matching a query, and the match count.
    pub fn tickets(
        &self,
        q: &tickets_core::index::ListQuery,
        now: i64,
        notes_ok: bool,
    ) -> Result<(Vec<serde_json::Value>, usize), StoreError> {
        crate::board::tickets(self, q, now, notes_ok)
    }

    /// One ticket's authoritative object, by exact id.
    pub fn ticket(&self, id: &str, now: i64, notes_ok: bool) -> Result<Option<serde_json::Value>, StoreError> {
        crate::board::ticket(self, id, now, notes_ok)
    }

    /// One page of an export (see [`crate::board::export_page`]).
    pub fn export_page(
        &self,
        f: &super::ExportFilter,
        after: &str,
        limit: usize,
        now: i64,
        settings: &tickets_core::sla::SlaSettings,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        crate::board::export_page(self, f, after, limit, now, settings)
    }

    /// One page of an export as JSON text per ticket.
    pub fn export_page_text(
        &self,
        f: &super::ExportFilter,
        after: &str,
        limit: usize,
        now: i64,
        settings: &tickets_core::sla::SlaSettings,
    ) -> Result<Vec<(String, String)>, StoreError> {
        crate::board::export_page_text(self, f, after, limit, now, settings)
    }
}

impl super::RelayStore for Conn {
    fn snapshot(&mut self, ids: &[String]) -> Result<super::Snapshot, StoreError> {
        Conn::snapshot(self, ids)
    }
    fn commit_page(&mut self, page: &super::PageWrite) -> Result<super::Commit, StoreError> {
        Conn::commit_page(self, page)
    }
    fn heads(&self) -> Result<super::Heads, StoreError> {
        Conn::heads(self)
    }
    fn read_pull(&mut self, q: &super::PullQuery, sink: &mut dyn super::PullSink) -> Result<(), StoreError> {
        Conn::read_pull(self, q, sink)
    }
    fn caller(&self, token_hash: &str) -> Result<Option<super::Caller>, StoreError> {
        Conn::caller(self, token_hash)
    }
    fn add_agent(
        &mut self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        Conn::add_agent(self, name, role, team, notes, token_hash, now)
    }
    fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        Conn::agents(self)
    }
    fn revoke_agent(&mut self, name: &str) -> Result<(), StoreError> {
        Conn::revoke_agent(self, name)
    }
    fn set_notes_permission(&mut self, name: &str, allowed: bool) -> Result<(), StoreError> {
        Conn::set_notes_permission(self, name, allowed)
    }
    fn register_device(&mut self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError> {
        Conn::register_device(self, actor, agent, now)
    }
    fn touch_device(&mut self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError> {
        Conn::touch_device(self, actor, offset_ms, now)
    }
    fn sync_floor(&mut self, actor: &str, now: i64, device_ms: i64) -> Result<Option<super::SyncFloor>, StoreError> {
        Conn::sync_floor(self, actor, now, device_ms)
    }
    fn complete_sync(&mut self, actor: &str) -> Result<(), StoreError> {
        Conn::complete_sync(self, actor)
    }
    fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        Conn::devices_seen_since(self, since)
    }
    fn epoch(&self) -> Result<String, StoreError> {
        Conn::epoch(self)
    }
    fn settings(&self) -> Result<tickets_core::protocol::Settings, StoreError> {
        Conn::settings(self)
    }
    fn sla_settings(&self) -> Result<tickets_core::sla::SlaSettings, StoreError> {
        Conn::sla_settings(self)
    }
    fn set_categories(&mut self, categories: &[String]) -> Result<(), StoreError> {
        Conn::set_categories(self, categories)
    }
    fn limits(&self) -> Result<tickets_core::limits::Limits, StoreError> {
        crate::store::parse_limits(self.setting("limits")?.as_deref())
    }
    fn set_limits(&mut self, limits: &tickets_core::limits::Limits) -> Result<(), StoreError> {
        self.put_setting("limits", &serde_json::to_string(limits).map_err(|e| StoreError::Damaged(e.to_string()))?)
    }
    fn set_sla_settings(&mut self, settings: &tickets_core::sla::SlaSettings, now: i64) -> Result<(), StoreError> {
        Conn::set_sla_settings(self, settings, now)
    }
    fn ticket_rows(
        &self,
        q: &tickets_core::index::ListQuery,
        now: i64,
    ) -> Result<(Vec<super::TicketRow>, usize), StoreError> {
        Conn::ticket_rows(self, q, now)
    }
    fn ticket_row(&self, id: &str) -> Result<Option<super::TicketRow>, StoreError> {
        Conn::ticket_row(self, id)
    }
    fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError> {
        Conn::ids_with_prefix(self, prefix, max)
    }
    fn color_counts(&self, now: i64) -> Result<tickets_core::index::SlaCounts, StoreError> {
        Conn::color_counts(self, now)
    }
    fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError> {
        Conn::next_color_change(self, now)
    }
    fn begin_read(&mut self) -> Result<(), StoreError> {
        Conn::begin_read(self)
    }
    fn end_read(&mut self) -> Result<(), StoreError> {
        Conn::end_read(self)
    }
    fn export_count(&self, f: &super::ExportFilter) -> Result<u64, StoreError> {
        Conn::export_count(self, f)
    }
    fn export_rows(
        &self,
        f: &super::ExportFilter,
        after: &str,
        limit: usize,
    ) -> Result<Vec<super::TicketRow>, StoreError> {
        Conn::export_rows(self, f, after, limit)
    }
}
