//! The relay's storage seam: [`RelayStore`], a narrow trait in domain
//! verbs that every backend implements, and the types it speaks.
//!
//! A backend only stores and queries. What the relay decides lives once,
//! above the trait: the push pipeline (decode, merge, authorize, index,
//! commit, merge again on conflict) in [`crate::push`], pull pages and the
//! rule "notes only to agents permitted to read them" in [`crate::pull`]
//! and [`crate::board`]. [`testing`] is the conformance suite every backend
//! passes (run by `relay/tests/conformance.rs`).
//!
//! - [`sqlite`]: the default backend, one SQLite file (schema and
//!   migrations, admin, documents and the log, board, export in modules of
//!   their own).
//! - [`postgres`]: several instances over one PostgreSQL database.
//! - [`inbox`]: the inbox's verbs ([`InboxStore`], a part of every
//!   [`RelayStore`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use automerge::ActorId;
use serde::Serialize;
use tickets_core::index::{self, IndexEntry, ListQuery};
use tickets_core::ingest::Principal;
use tickets_core::protocol::{PushResult, Settings};
use tickets_core::sla::SlaSettings;

pub mod inbox;
mod open;
pub mod postgres;
pub mod sqlite;
pub mod testing;

pub use inbox::InboxStore;
pub use open::{RelayConn, RelayDb, PG_BACKUP_HINT};
pub use sqlite::{Conn, Db, BACKUP_PAGES_PER_STEP, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Db { path: PathBuf, source: rusqlite::Error },
    #[error("no relay database at {0} (start one with `tickets relay serve --db PATH`)")]
    Missing(PathBuf),
    #[error("database {0} is not a tickets relay database of a known version")]
    Foreign(PathBuf),
    #[error("agent '{0}' already exists")]
    AgentExists(String),
    #[error("no agent named '{0}'")]
    NoAgent(String),
    #[error("device is registered to agent '{0}'")]
    DeviceTaken(String),
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    /// The database cannot be reached (or refused the relay): retry later.
    #[error("the database {what} cannot be reached: {why}")]
    Unavailable { what: String, why: String },
    #[error("database {what}: {why}")]
    Postgres { what: String, why: String },
    #[error("{0} is not possible on PostgreSQL: use pg_dump and pg_restore")]
    Unsupported(String),
    /// A push kept finding its tickets written by others between its read
    /// and its commit (see [`crate::push::COMMIT_ATTEMPTS_MAX`]).
    #[error("the tickets of this push are being written by others at the same moment; send it again")]
    Contended,
}

/// An agent as stored (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    pub name: String,
    pub role: String,
    pub team: Option<String>,
    pub internal_notes: bool,
    pub revoked: bool,
    pub devices: usize,
}

impl AgentRow {
    pub fn may_read_notes(&self) -> bool {
        self.internal_notes || self.role == "lead" || self.role == "admin"
    }

    pub fn is_lead(&self) -> bool {
        self.role == "lead" || self.role == "admin"
    }
}

/// Everything the relay knows of the agent behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: AgentRow,
    pub actors: HashSet<ActorId>,
}

impl Caller {
    pub fn principal(&self) -> Principal {
        Principal {
            agent: self.agent.name.clone(),
            actors: self.actors.clone(),
            internal_notes: self.agent.may_read_notes(),
        }
    }
}

/// The outcome of one push request.
pub struct PushOutcome {
    pub results: Vec<PushResult>,
    /// Refusals by kind, for the status code and metrics.
    pub forbidden: usize,
    pub invalid: usize,
    pub accepted: usize,
    pub changes: usize,
}

/// The heads of the change log: every change, and ticket documents only
/// (what an agent without the notes permission follows, so that nothing it
/// can see moves when a note is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heads {
    pub all: u64,
    pub tickets: u64,
}

impl Heads {
    /// The head an agent follows.
    pub fn for_reader(&self, notes_ok: bool) -> u64 {
        if notes_ok {
            self.all
        } else {
            self.tickets
        }
    }
}

/// What an export selects: created_at in [from_ms, to_ms), statuses and
/// categories (empty: any), and whether internal notes are included.
#[derive(Debug, Clone)]
pub struct ExportFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub statuses: Vec<String>,
    pub categories: Vec<String>,
    pub notes: bool,
}

/// An event's effective time: when its device says it was written,
/// corrected by the device's measured clock offset, and never later than
/// the moment the relay received it.
pub fn effective_time(written_ms: i64, offset_ms: i64, received_ms: i64) -> i64 {
    written_ms.saturating_sub(offset_ms).min(received_ms)
}

/// The settings devices receive, from what each backend stores: the teams
/// and the agents' names are derived from the directory (active agents with
/// their teams), one query instead of two, and in one order on both
/// backends.
pub(crate) fn settings_of(
    categories: Vec<String>,
    sla: SlaSettings,
    directory: Vec<tickets_core::protocol::DirectoryEntry>,
    limits: tickets_core::limits::Limits,
) -> tickets_core::protocol::Settings {
    let teams: std::collections::BTreeSet<&String> = directory.iter().filter_map(|d| d.team.as_ref()).collect();
    let teams = teams.into_iter().cloned().collect();
    let agents = directory.iter().map(|d| d.name.clone()).collect();
    tickets_core::protocol::Settings { categories, teams, agents, directory, sla, limits }
}

/// The operator's limits as stored (none stored: the defaults).
pub(crate) fn parse_limits(json: Option<&str>) -> Result<tickets_core::limits::Limits, StoreError> {
    match json {
        Some(j) => serde_json::from_str(j).map_err(|e| StoreError::Damaged(format!("limits: {e}"))),
        None => Ok(tickets_core::limits::Limits::default()),
    }
}

pub(crate) fn parse_sla_settings(json: Option<&str>) -> Result<SlaSettings, StoreError> {
    match json {
        Some(j) => serde_json::from_str(j).map_err(|e| StoreError::Damaged(format!("SLA settings: {e}"))),
        None => Ok(SlaSettings::default()),
    }
}

// ---- the documents and the log --------------------------------------------

/// One stored document: its bytes and the sequence number of its last
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    pub bytes: Vec<u8>,
    pub seq: i64,
}

/// What the relay holds of one ticket, as a push reads it before merging.
#[derive(Debug, Clone, Default)]
pub struct TicketSnapshot {
    pub ticket: Option<StoredDoc>,
    pub notes: Option<StoredDoc>,
    /// The effective time of each of its events, by event key.
    pub times: HashMap<String, i64>,
    /// Its SLA input as indexed (JSON text), if it is indexed.
    pub sla_input: Option<String>,
}

/// The tickets a push touches and the SLA settings, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The SLA settings as stored (JSON text).
    pub settings: Option<String>,
    pub tickets: HashMap<String, TicketSnapshot>,
}

/// A ticket and the sequence numbers its documents had when read (`None`:
/// the document did not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub id: String,
    pub ticket: Option<i64>,
    pub notes: Option<i64>,
}

/// One document written by a page: the bytes as pushed (appended to the
/// log) and the merged document (stored), with the events it brought.
#[derive(Debug, Clone)]
pub struct DocWrite {
    pub id: String,
    pub kind: String,
    pub log: Vec<u8>,
    pub bytes: Vec<u8>,
    /// (event key, effective time): kept only where the key is new.
    pub events: Vec<(String, i64)>,
}

/// A push page as computed, to be committed at once or not at all.
#[derive(Debug, Clone)]
pub struct PageWrite {
    pub device: String,
    pub now: i64,
    /// The SLA settings the index rows were computed with.
    pub settings: Option<String>,
    /// Every ticket the page read, as it read it.
    pub expect: Vec<Expect>,
    pub docs: Vec<DocWrite>,
    /// Index rows with the notes' JSON.
    pub index: Vec<(IndexEntry, Option<String>)>,
}

/// What [`RelayStore::commit_page`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Everything was written; the heads after the commit.
    Done(Heads),
    /// Nothing was written: these tickets changed since they were read, or
    /// (`settings`) the SLA settings did.
    Conflict { ids: Vec<String>, settings: bool },
}

/// What a pull page reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullQuery {
    /// Documents after (`after_id`, `after_kind`) in (id, kind) order;
    /// ticket documents only unless `notes`.
    Docs { after_id: String, after_kind: String, notes: bool, limit: usize },
    /// Log entries after sequence number `after`, in order; ticket
    /// documents only unless `notes`.
    Changes { after: u64, notes: bool, limit: usize },
}

/// One row of a pull read: a document (`seq` 0, `device` empty) or a log
/// entry.
#[derive(Debug, Clone)]
pub struct PullRow {
    pub seq: u64,
    pub id: String,
    pub kind: String,
    pub device: String,
    pub bytes: Vec<u8>,
}

/// Where a backend delivers a pull read, all of it from one snapshot:
/// first the heads, then rows until [`PullSink::row`] says stop, then the
/// SLA inputs of the tickets [`PullSink::sla_wanted`] names.
pub trait PullSink {
    fn heads(&mut self, heads: Heads);
    /// One row; `false` stops the read.
    fn row(&mut self, row: PullRow) -> bool;
    fn sla_wanted(&self) -> Vec<String>;
    fn sla(&mut self, id: String, input: String);
}

/// One ticket as the board and exports read it: its view's JSON, its SLA
/// input and its notes' JSON (whoever asks: [`crate::board`] drops the
/// notes for agents without the permission).
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub id: String,
    pub view: String,
    pub sla_input: String,
    pub notes: Option<String>,
}

/// The relay's storage, in domain verbs. Implementations store and query
/// only: authorization, merging and the notes rule are above.
///
/// Invariant every backend keeps: the log's sequence numbers are handed
/// out in commit order without gaps, so a reader that has seen sequence
/// `n` has seen every change up to `n` (cursors are exact).
///
/// The inbox's verbs are [`InboxStore`]'s, a part of every store.
pub use tickets_core::change_policy::SyncFloor;

pub trait RelayStore: InboxStore {
    // ---- documents and the log
    /// The SLA settings and what is stored of `ids`, from one snapshot.
    fn snapshot(&mut self, ids: &[String]) -> Result<Snapshot, StoreError>;
    /// Commits a page if every ticket it read is as it read it (and the SLA
    /// settings too); else writes nothing and names what changed.
    fn commit_page(&mut self, page: &PageWrite) -> Result<Commit, StoreError>;
    fn heads(&self) -> Result<Heads, StoreError>;
    /// One pull read (see [`PullSink`]).
    fn read_pull(&mut self, q: &PullQuery, sink: &mut dyn PullSink) -> Result<(), StoreError>;

    // ---- agents, devices and settings
    fn caller(&self, token_hash: &str) -> Result<Option<Caller>, StoreError>;
    fn add_agent(
        &mut self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    fn agents(&self) -> Result<Vec<AgentRow>, StoreError>;
    fn revoke_agent(&mut self, name: &str) -> Result<(), StoreError>;
    fn set_notes_permission(&mut self, name: &str, allowed: bool) -> Result<(), StoreError>;
    fn register_device(&mut self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError>;
    fn touch_device(&mut self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError>;
    /// A device's floor: when its previous completed sync started, on the
    /// relay's clock and on the device's (`None` before it completed one).
    /// Marks the start of the sync under way when none is (the first
    /// request after a completed sync): `device_ms`, the device's reading in
    /// the request, and on the relay's clock the time the request was sent
    /// by the device's offset measured before it (never later than `now`),
    /// so a request the network held for hours does not raise the floor
    /// above edits made meanwhile.
    fn sync_floor(&mut self, actor: &str, now: i64, device_ms: i64) -> Result<Option<SyncFloor>, StoreError>;
    /// The device completed a sync: its floor moves up to that sync's start.
    fn complete_sync(&mut self, actor: &str) -> Result<(), StoreError>;
    fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError>;
    fn epoch(&self) -> Result<String, StoreError>;
    fn settings(&self) -> Result<Settings, StoreError>;
    fn sla_settings(&self) -> Result<SlaSettings, StoreError>;
    fn set_categories(&mut self, categories: &[String]) -> Result<(), StoreError>;
    /// The operator's limits (the defaults until set).
    fn limits(&self) -> Result<tickets_core::limits::Limits, StoreError>;
    fn set_limits(&mut self, limits: &tickets_core::limits::Limits) -> Result<(), StoreError>;
    /// Stores new SLA settings and recomputes every ticket's SLA columns
    /// from its stored input, in one transaction.
    fn set_sla_settings(&mut self, settings: &SlaSettings, now: i64) -> Result<(), StoreError>;

    // ---- the board
    /// The rows matching a query (its sort and page) and the match count
    /// when the page is full.
    fn ticket_rows(&self, q: &ListQuery, now: i64) -> Result<(Vec<TicketRow>, usize), StoreError>;
    fn ticket_row(&self, id: &str) -> Result<Option<TicketRow>, StoreError>;
    fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError>;
    fn color_counts(&self, now: i64) -> Result<index::SlaCounts, StoreError>;
    fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError>;

    // ---- exports
    /// Starts a read-only snapshot that every query until [`RelayStore::end_read`]
    /// sees (an export is one consistent picture).
    fn begin_read(&mut self) -> Result<(), StoreError>;
    fn end_read(&mut self) -> Result<(), StoreError>;
    fn export_count(&self, f: &ExportFilter) -> Result<u64, StoreError>;
    /// One page in id order after `after`.
    fn export_rows(&self, f: &ExportFilter, after: &str, limit: usize) -> Result<Vec<TicketRow>, StoreError>;

    // ---- above the seam, for every backend (not for backends to override)
    /// Authoritative ticket objects matching a query (see [`crate::board`]).
    fn tickets(&self, q: &ListQuery, now: i64, notes_ok: bool) -> Result<(Vec<serde_json::Value>, usize), StoreError> {
        crate::board::tickets(self, q, now, notes_ok)
    }
    /// One ticket's authoritative object (see [`crate::board`]).
    fn ticket(&self, id: &str, now: i64, notes_ok: bool) -> Result<Option<serde_json::Value>, StoreError> {
        crate::board::ticket(self, id, now, notes_ok)
    }
}
