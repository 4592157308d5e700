//! The relay's SQLite store. All SQL of the relay lives here.
//!
//! Tables: `agents` and `devices` (who may do what, which actors are
//! whose), `docs` (each document's compacted bytes and the sequence number
//! of its last change), `changes` (the log of every change in arrival order:
//! the sequence numbers devices keep as cursors), `event_times` (each
//! event's effective time, fixed when the relay first received it),
//! `tickets` (the index with authoritative SLA instants) and `settings`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use automerge::ActorId;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::hlc::Hlc;
use tickets_core::index::{self, IndexEntry, ListQuery, ListSql, SqlArg};
use tickets_core::ingest::{self, Principal, Refusal, RefusalCode};
use tickets_core::par::parallel_map;
use tickets_core::protocol::{
    decode_data, encode_data, BootstrapPos, DirectoryEntry, DocData, PullPage, PullRequest, PushResult, RawSlaInput,
    Settings, PULL_PAGE_BYTES_MAX, PULL_PAGE_DOCS_MAX,
};
use tickets_core::sla::{SlaPolicy, SlaSettings};
use tickets_core::view;
use uuid::Uuid;

pub const SCHEMA_VERSION: i64 = 3;

/// From schema 2: SLA inputs move out of `ticket_views` into their own
/// narrow table (a pull read each one past a ticket's whole JSON).
const MIGRATE_2_TO_3: &str = "
CREATE TABLE sla_inputs (
    id TEXT PRIMARY KEY,
    input TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO sla_inputs (id, input) SELECT id, sla_input FROM ticket_views;
ALTER TABLE ticket_views DROP COLUMN sla_input;
PRAGMA user_version = 3;
";

const SCHEMA: &str = "
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    team TEXT,
    internal_notes INTEGER NOT NULL DEFAULT 0,
    token_hash TEXT NOT NULL UNIQUE,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE devices (
    actor TEXT PRIMARY KEY,
    agent TEXT NOT NULL REFERENCES agents (name),
    registered_at INTEGER NOT NULL,
    last_seen INTEGER,
    -- Device clock minus relay clock, measured at its last sync.
    offset_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_agent ON devices (agent);
CREATE TABLE docs (
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    bytes BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (id, kind)
) WITHOUT ROWID;
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    device TEXT NOT NULL,
    bytes BLOB NOT NULL
);
CREATE TABLE event_times (
    id TEXT NOT NULL,
    key TEXT NOT NULL,
    effective_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (id, key)
) WITHOUT ROWID;
-- The board's index: one narrow row per ticket with what filters, sorts
-- and colour queries read; the ticket's JSON lives in ticket_views and is
-- read only for the rows a query returns.
CREATE TABLE tickets (
    id TEXT NOT NULL UNIQUE,
    subject_lc TEXT NOT NULL,
    priority TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    assignee TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    conversation_id TEXT,
    sla_static INTEGER NOT NULL DEFAULT 0,
    fr_warn INTEGER, fr_due INTEGER, res_warn INTEGER, res_due INTEGER
);
CREATE TABLE ticket_views (
    id TEXT PRIMARY KEY,
    view_json TEXT NOT NULL,
    notes_json TEXT
);
-- What the SLA engine needs of each ticket, apart from the large JSON: a
-- pull sends it for every ticket in its page, and recomputing SLA reads
-- every row.
CREATE TABLE sla_inputs (
    id TEXT PRIMARY KEY,
    input TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_status ON tickets (status, created_at);
CREATE INDEX tickets_fr_due ON tickets (fr_due) WHERE fr_due IS NOT NULL;
CREATE INDEX tickets_res_due ON tickets (res_due) WHERE res_due IS NOT NULL;
CREATE INDEX tickets_fr_warn ON tickets (fr_warn) WHERE fr_warn IS NOT NULL;
CREATE INDEX tickets_res_warn ON tickets (res_warn) WHERE res_warn IS NOT NULL;
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
";

/// Indexes for the board's colour filters, counts and SLA sort.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS changes_ticket_seq ON changes (seq) WHERE kind = 'ticket';
CREATE INDEX IF NOT EXISTS tickets_sla_static ON tickets (sla_static);
CREATE INDEX IF NOT EXISTS tickets_sla_none ON tickets (sla_static) WHERE sla_static = 0 AND fr_due IS NULL AND res_due IS NULL;
CREATE INDEX IF NOT EXISTS tickets_due ON tickets (
    coalesce(min(coalesce(fr_due, res_due), coalesce(res_due, fr_due)), 9223372036854775807));
";

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
}

trait Ctx<T> {
    fn db(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn db(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Db { path: path.to_path_buf(), source })
    }
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

/// The relay's database: a path, a small pool of idle connections (each
/// keeps its page cache warm between requests), and the gate that queues
/// the relay's own writers.
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    gate: Arc<Mutex<()>>,
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
    /// Opens the relay database, creating it when `create` is set.
    pub fn open(path: &Path, create: bool) -> Result<Db, StoreError> {
        if !path.exists() && !create {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let db = Db { path: path.to_path_buf(), idle: Arc::default(), gate: Arc::default() };
        let c = db.conn()?;
        let version: i64 = c.c.pragma_query_value(None, "user_version", |r| r.get(0)).db(path)?;
        match version {
            0 => {
                let tables: i64 = c.c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).db(path)?;
                if tables != 0 {
                    return Err(StoreError::Foreign(path.to_path_buf()));
                }
                c.c.execute_batch(SCHEMA).db(path)?;
                c.c.pragma_update(None, "user_version", SCHEMA_VERSION).db(path)?;
                c.new_epoch()?;
            }
            2 => {
                // Checked again inside the write transaction: another process
                // opening the same file may have upgraded it meanwhile.
                let mut c = c;
                let tx = c.c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(path)?;
                let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).db(path)?;
                if version == 2 {
                    tx.execute_batch(MIGRATE_2_TO_3).db(path)?;
                }
                tx.commit().db(path)?;
                c.c.execute_batch(INDEXES).db(path)?;
                return Ok(db);
            }
            SCHEMA_VERSION => {}
            _ => return Err(StoreError::Foreign(path.to_path_buf())),
        }
        // Indexes added within a schema version: created when missing.
        c.c.execute_batch(INDEXES).db(path)?;
        Ok(db)
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
    c: Connection,
    path: PathBuf,
    /// Held while this process writes: writers queue here in order instead
    /// of polling SQLite's lock.
    gate: Arc<Mutex<()>>,
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

    // ---- agents -----------------------------------------------------------

    pub fn add_agent(
        &mut self,
        name: &str,
        role: &str,
        team: Option<&str>,
        notes: bool,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let exists: Option<String> =
            tx.query_row("SELECT name FROM agents WHERE name = ?1", [name], |r| r.get(0)).optional().db(&path)?;
        if exists.is_some() {
            return Err(StoreError::AgentExists(name.to_string()));
        }
        tx.execute(
            "INSERT INTO agents (name, role, team, internal_notes, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, role, team, notes as i64, token_hash, now],
        )
        .db(&path)?;
        tx.commit().db(&path)
    }

    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let mut st = self.c.prepare(&format!("SELECT {AGENT_COLS} FROM agents a ORDER BY a.name")).db(&self.path)?;
        let rows = st.query_map([], agent_row).db(&self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(&self.path)
    }

    /// Revokes an agent: its token stops working at once.
    pub fn revoke_agent(&mut self, name: &str) -> Result<(), StoreError> {
        let n = self.c.execute("UPDATE agents SET revoked = 1 WHERE name = ?1", [name]).db(&self.path)?;
        if n == 0 {
            return Err(StoreError::NoAgent(name.to_string()));
        }
        Ok(())
    }

    /// Grants or withdraws the internal-notes permission.
    pub fn set_notes_permission(&mut self, name: &str, allowed: bool) -> Result<(), StoreError> {
        let n = self
            .c
            .execute("UPDATE agents SET internal_notes = ?2 WHERE name = ?1", params![name, allowed as i64])
            .db(&self.path)?;
        if n == 0 {
            return Err(StoreError::NoAgent(name.to_string()));
        }
        Ok(())
    }

    /// The caller behind a token hash, if the token is valid and not revoked.
    pub fn caller(&self, token_hash: &str) -> Result<Option<Caller>, StoreError> {
        let agent = self
            .c
            .query_row(
                &format!("SELECT {AGENT_COLS} FROM agents a WHERE a.token_hash = ?1 AND a.revoked = 0"),
                [token_hash],
                agent_row,
            )
            .optional()
            .db(&self.path)?;
        let Some(agent) = agent else { return Ok(None) };
        let mut st = self.c.prepare_cached("SELECT actor FROM devices WHERE agent = ?1").db(&self.path)?;
        let actors = st
            .query_map([&agent.name], |r| r.get::<_, String>(0))
            .db(&self.path)?
            .filter_map(|a| a.ok().and_then(|h| ActorId::try_from(h.as_str()).ok()))
            .collect();
        Ok(Some(Caller { agent, actors }))
    }

    /// Registers a device actor to an agent (idempotent for the same agent).
    /// The actor is stored in its canonical form (lower-case hex), so any
    /// other spelling of a registered actor finds its owner.
    pub fn register_device(&mut self, actor: &str, agent: &str, now: i64) -> Result<(), StoreError> {
        let canonical = ActorId::try_from(actor).map(|a| a.to_hex_string()).unwrap_or_else(|_| actor.to_string());
        let actor = canonical.as_str();
        let path = self.path.clone();
        let tx = self.tx()?;
        let owner: Option<String> =
            tx.query_row("SELECT agent FROM devices WHERE actor = ?1", [actor], |r| r.get(0)).optional().db(&path)?;
        match owner {
            Some(o) if o != agent => return Err(StoreError::DeviceTaken(o)),
            Some(_) => {}
            None => {
                // Clock stamps name a device by its actor's first 8 bytes: an
                // actor sharing them with a registered one could stamp events
                // as that device (and take its stamp keys), so it is refused.
                let twin: Option<String> = tx
                    .query_row(
                        "SELECT agent FROM devices WHERE substr(actor, 1, 16) = substr(?1, 1, 16) LIMIT 1",
                        [actor],
                        |r| r.get(0),
                    )
                    .optional()
                    .db(&path)?;
                if let Some(o) = twin {
                    return Err(StoreError::DeviceTaken(o));
                }
                tx.execute(
                    "INSERT INTO devices (actor, agent, registered_at) VALUES (?1, ?2, ?3)",
                    params![actor, agent, now],
                )
                .db(&path)?;
            }
        }
        tx.commit().db(&path)
    }

    pub fn touch_device(&mut self, actor: &str, offset_ms: i64, now: i64) -> Result<(), StoreError> {
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.c
            .execute(
                "UPDATE devices SET last_seen = ?2, offset_ms = ?3 WHERE actor = ?1",
                params![actor, now, offset_ms],
            )
            .db(&self.path)?;
        Ok(())
    }

    // ---- settings ---------------------------------------------------------

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional().db(&self.path)
    }

    fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.c
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .db(&self.path)?;
        Ok(())
    }

    /// The database's epoch: a random id that changes when a backup is
    /// restored, so devices know the relay's sequence numbers started over
    /// and resynchronize from scratch.
    pub fn epoch(&self) -> Result<String, StoreError> {
        Ok(self.setting("epoch")?.unwrap_or_default())
    }

    pub fn new_epoch(&self) -> Result<String, StoreError> {
        let e = uuid::Uuid::new_v4().simple().to_string();
        self.put_setting("epoch", &e)?;
        Ok(e)
    }

    pub fn settings(&self) -> Result<Settings, StoreError> {
        let categories = self.setting("categories")?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
        let sla = self.sla_settings()?;
        let mut st = self
            .c
            .prepare_cached("SELECT DISTINCT team FROM agents WHERE team IS NOT NULL AND revoked = 0 ORDER BY team")
            .db(&self.path)?;
        let teams = st.query_map([], |r| r.get(0)).db(&self.path)?.collect::<Result<Vec<String>, _>>().db(&self.path)?;
        let mut st =
            self.c.prepare_cached("SELECT name, team FROM agents WHERE revoked = 0 ORDER BY name").db(&self.path)?;
        let directory = st
            .query_map([], |r| Ok(DirectoryEntry { name: r.get(0)?, team: r.get(1)? }))
            .db(&self.path)?
            .collect::<Result<Vec<DirectoryEntry>, _>>()
            .db(&self.path)?;
        let agents = directory.iter().map(|d| d.name.clone()).collect();
        Ok(Settings { categories, teams, agents, directory, sla })
    }

    pub fn sla_settings(&self) -> Result<SlaSettings, StoreError> {
        match self.setting("sla")? {
            Some(j) => serde_json::from_str(&j).map_err(|e| StoreError::Damaged(format!("SLA settings: {e}"))),
            None => Ok(SlaSettings::default()),
        }
    }

    pub fn set_categories(&mut self, categories: &[String]) -> Result<(), StoreError> {
        self.put_setting("categories", &serde_json::to_string(categories).unwrap_or_else(|_| "[]".into()))
    }

    /// Adds a settings epoch starting `now` (earlier epochs keep applying to
    /// the past, so breaches already recorded stay), then recomputes every
    /// ticket's SLA instants from the index alone.
    pub fn update_sla(&mut self, now: i64, change: impl FnOnce(&mut SlaPolicy)) -> Result<SlaPolicy, StoreError> {
        let mut settings = self.sla_settings()?;
        let mut policy = settings.epochs.last().map(|(_, p)| p.clone()).unwrap_or_default();
        change(&mut policy);
        settings.epochs.retain(|(from, _)| *from < now);
        settings.epochs.push((now, policy.clone()));
        let path = self.path.clone();
        let tx = self.tx()?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ('sla', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [serde_json::to_string(&settings).unwrap_or_default()],
        )
        .db(&path)?;
        recompute_sla(&tx, &path, &settings, now)?;
        tx.commit().db(&path)?;
        Ok(policy)
    }

    // ---- sync -------------------------------------------------------------

    /// The heads of the change log: every change, and ticket documents
    /// only (what an agent without the notes permission follows, so that
    /// nothing it can see moves when a note is written).
    pub fn heads(&self) -> Result<Heads, StoreError> {
        let tickets: Option<i64> =
            self.c.query_row("SELECT max(seq) FROM changes WHERE kind = 'ticket'", [], |r| r.get(0)).db(&self.path)?;
        Ok(Heads { all: self.max_seq()?, tickets: tickets.unwrap_or(0) as u64 })
    }

    pub fn max_seq(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self.c.query_row("SELECT max(seq) FROM changes", [], |r| r.get(0)).db(&self.path)?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Applies one push page in one transaction. `offset_ms` is the device's
    /// clock offset measured at this request.
    ///
    /// Three steps, so that concurrent pushes share the cores and hold the
    /// write lock only to write:
    /// 1. from one read snapshot: decode each item, read the stored copies
    ///    of both documents of every ticket it touches (bytes and the
    ///    sequence number of their last change), their event times and the
    ///    SLA settings;
    /// 2. without any lock, on all cores: merge and authorize each item,
    ///    save the merged documents, then materialize each touched ticket
    ///    and compute its index row;
    /// 3. under the write gate, in one transaction: for each ticket whose
    ///    documents nobody wrote since step 1, write what was computed; a
    ///    ticket another request wrote meanwhile (two devices pushing it at
    ///    the same moment) is merged again onto what is now stored.
    pub fn push(
        &mut self,
        caller: &Caller,
        device: &str,
        offset_ms: i64,
        items: &[DocData],
        now: i64,
    ) -> Result<PushOutcome, StoreError> {
        let principal = caller.principal();
        let path = self.path.clone();

        // 1. Read.
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut decoded: Vec<Result<Vec<u8>, Refusal>> = Vec::with_capacity(items.len());
        let mut snapshot: HashMap<String, Snapshot> = HashMap::new();
        let settings_text: Option<String>;
        {
            let read = self.c.transaction().db(&path)?;
            settings_text = sla_settings_text(&read, &path)?;
            for item in items {
                if !seen.insert((item.id.as_str(), item.kind.as_str())) {
                    decoded.push(Err(Refusal::new(RefusalCode::Duplicate, "the same document twice in one push")));
                    continue;
                }
                decoded.push(decode_data(&item.data).map_err(|e| Refusal::new(RefusalCode::CorruptData, e)));
                // (A bad id or kind is refused by ingest, which names it.)
                let valid = DocKind::parse(&item.kind).is_some() && Uuid::parse_str(&item.id).is_ok();
                if valid && !snapshot.contains_key(&item.id) {
                    snapshot.insert(item.id.clone(), Snapshot::read(&read, &path, &item.id)?);
                }
            }
            read.commit().db(&path)?;
        }
        let settings = parse_sla_settings(settings_text.as_deref())?;

        // 2. Merge, authorize, save and index, on all cores.
        let merge = |item: &DocData, data: &[u8], stored: Option<&[u8]>| -> Result<Merged, Refusal> {
            let mut ing = ingest::ingest(&item.id, &item.kind, stored, data, &principal, now)?;
            let bytes = match (ing.new_changes, ing.whole_save.take()) {
                (0, _) => None,
                (_, Some(b)) => Some(b),
                (_, None) => Some(ing.doc.save()),
            };
            Ok(Merged { ing, bytes })
        };
        let jobs: Vec<(&DocData, Result<Vec<u8>, Refusal>)> = items.iter().zip(decoded).collect();
        let merged: Vec<(Vec<u8>, Result<Merged, Refusal>)> = parallel_map(jobs, |(item, data)| match data {
            Ok(data) => {
                let stored = snapshot.get(&item.id).and_then(|s| s.bytes(&item.kind));
                let m = merge(item, &data, stored);
                (data, m)
            }
            Err(r) => (Vec::new(), Err(r)),
        })
        .ok_or_else(|| StoreError::Damaged("a merge worker failed".into()))?;
        // Each accepted document by (id, kind), and the tickets to index:
        // those with an item that brought new changes.
        let mut accepted: HashMap<(&str, &str), &Merged> = HashMap::new();
        let mut touched: Vec<&str> = Vec::new();
        let mut seen_ids: HashSet<&str> = HashSet::new();
        for (item, (_, m)) in items.iter().zip(&merged) {
            let Ok(m) = m else { continue };
            accepted.insert((item.id.as_str(), item.kind.as_str()), m);
            if m.ing.new_changes > 0 && seen_ids.insert(item.id.as_str()) {
                touched.push(item.id.as_str());
            }
        }
        let merged_doc = |id: &str, kind: DocKind| accepted.get(&(id, kind.as_str())).map(|m| &m.ing.doc);
        let indexed: Vec<Result<Option<Indexed>, StoreError>> = parallel_map(touched.clone(), |id| {
            let Some(snap) = snapshot.get(id) else { return Ok(None) };
            // Each document as merged in this push, or else as stored.
            let load = |kind: DocKind| match merged_doc(id, kind) {
                Some(_) => Ok(None),
                None => snap.load(id, kind),
            };
            let (stored_ticket, stored_notes) = (load(DocKind::Ticket)?, load(DocKind::Notes)?);
            let notes = merged_doc(id, DocKind::Notes).or(stored_notes.as_ref());
            let Some(ticket) = merged_doc(id, DocKind::Ticket).or(stored_ticket.as_ref()) else { return Ok(None) };
            let mut times = snap.times.clone();
            for kind in [DocKind::Ticket, DocKind::Notes] {
                let Some(m) = accepted.get(&(id, kind.as_str())) else { continue };
                for e in &m.ing.new_events {
                    times.entry(e.key.clone()).or_insert_with(|| effective_time(e.written_ms, offset_ms, now));
                }
            }
            Ok(index_row(ticket, notes, &times, &settings, now))
        })
        .ok_or_else(|| StoreError::Damaged("an index worker failed".into()))?;
        let mut rows: HashMap<&str, Option<Indexed>> = HashMap::new();
        for (id, r) in touched.iter().zip(indexed) {
            rows.insert(id, r?);
        }

        // 3. Write.
        let _writing = self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = self.c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(&path)?;
        let settings_now = sla_settings_text(&tx, &path)?;
        let settings_same = settings_now == settings_text;
        let settings = if settings_same { settings } else { parse_sla_settings(settings_now.as_deref())? };
        // Tickets whose documents are as they were read (computed work
        // stands) or were written meanwhile (merged again, below).
        let mut fresh: HashMap<&str, bool> = HashMap::new();
        for (item, _) in items.iter().zip(&merged) {
            if fresh.contains_key(item.id.as_str()) {
                continue;
            }
            let Some(snap) = snapshot.get(&item.id) else { continue };
            fresh.insert(item.id.as_str(), settings_same && snap.unchanged(&tx, &path, &item.id)?);
        }
        let mut out = PushOutcome { results: Vec::new(), forbidden: 0, invalid: 0, accepted: 0, changes: 0 };
        let mut reindex_again: Vec<&str> = Vec::new();
        for (item, (data, result)) in items.iter().zip(merged) {
            let is_fresh = fresh.get(item.id.as_str()).copied().unwrap_or(true);
            let result = match result {
                // (A refusal too may depend on the stored copy: changes whose
                // dependencies it now holds.)
                _ if !is_fresh && !data.is_empty() => {
                    let stored = stored_copy(&tx, &path, &item.id, &item.kind)?;
                    merge(item, &data, stored.as_ref().map(|(b, _)| b.as_slice()))
                }
                r => r,
            };
            let m = match result {
                Ok(m) => m,
                Err(r) => {
                    if r.is_forbidden() {
                        out.forbidden += 1;
                    } else {
                        out.invalid += 1;
                    }
                    out.results.push(PushResult {
                        id: item.id.clone(),
                        kind: item.kind.clone(),
                        accepted: false,
                        reason: Some(r.reason().to_string()),
                        code: Some(r.code.as_str().to_string()),
                        heads: Vec::new(),
                        sla: None,
                    });
                    continue;
                }
            };
            out.accepted += 1;
            if let Some(bytes) = &m.bytes {
                out.changes += m.ing.new_changes;
                // The log keeps the pushed bytes as they came (a compact save
                // or concatenated changes): both load with load_incremental,
                // and data the device already had is ignored on arrival.
                tx.prepare_cached("INSERT INTO changes (id, kind, device, bytes) VALUES (?1, ?2, ?3, ?4)")
                    .db(&path)?
                    .execute(params![item.id, item.kind, device, data])
                    .db(&path)?;
                let seq = tx.last_insert_rowid();
                tx.prepare_cached(
                    "INSERT INTO docs (id, kind, bytes, seq) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id, kind) DO UPDATE SET bytes = excluded.bytes, seq = excluded.seq",
                )
                .db(&path)?
                .execute(params![item.id, item.kind, bytes, seq])
                .db(&path)?;
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO event_times (id, key, effective_ms, received_ms) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .db(&path)?;
                for e in &m.ing.new_events {
                    st.execute(params![item.id, e.key, effective_time(e.written_ms, offset_ms, now), now]).db(&path)?;
                }
                if !is_fresh && !reindex_again.contains(&item.id.as_str()) {
                    reindex_again.push(item.id.as_str());
                }
            }
            out.results.push(PushResult {
                id: item.id.clone(),
                kind: item.kind.clone(),
                accepted: true,
                reason: None,
                code: None,
                heads: m.ing.heads.iter().map(|h| h.to_string()).collect(),
                sla: None,
            });
        }
        for (id, row) in &rows {
            if fresh.get(id).copied().unwrap_or(false) {
                if let Some(row) = row {
                    upsert_ticket(&tx, &path, &row.entry, row.notes_json.as_deref())?;
                }
            }
        }
        for id in reindex_again {
            if let Some(t) = load_doc(&tx, &path, id, DocKind::Ticket)? {
                let notes = load_doc(&tx, &path, id, DocKind::Notes)?;
                reindex(&tx, &path, &t, notes.as_ref(), &settings, now)?;
            }
        }
        // Each accepted document comes back with its ticket's SLA input, so
        // the device shows the authoritative figures at once (a note
        // reindexed the ticket on the device too).
        for r in out.results.iter_mut().filter(|r| r.accepted) {
            let computed = rows
                .get(r.id.as_str())
                .filter(|_| fresh.get(r.id.as_str()).copied().unwrap_or(false))
                .and_then(|row| row.as_ref().map(|row| row.entry.sla_input.clone()));
            let input = match computed {
                Some(i) => Some(i),
                None => tx
                    .prepare_cached("SELECT input FROM sla_inputs WHERE id = ?1")
                    .db(&path)?
                    .query_row([&r.id], |row| row.get::<_, String>(0))
                    .optional()
                    .db(&path)?,
            };
            r.sla = input.and_then(RawSlaInput::from_text);
        }
        tx.commit().db(&path)?;
        Ok(out)
    }

    /// One pull page for a device.
    pub fn pull(&mut self, caller: &Caller, device: &str, req: &PullRequest) -> Result<PullPage, StoreError> {
        let notes_ok = caller.agent.may_read_notes();
        let path = self.path.clone();
        // A read transaction: one consistent snapshot for the whole page.
        let tx = self.c.transaction().db(&path)?;
        let mut docs = Vec::new();
        let mut bytes_total = 0usize;
        let mut ticket_ids: Vec<String> = Vec::new();
        let page = if !req.bootstrapped || req.bootstrap.is_some() {
            // An agent without the notes permission follows ticket changes
            // only: its cursor never moves because of a note.
            let head_sql = if notes_ok {
                "SELECT max(seq) FROM changes"
            } else {
                "SELECT max(seq) FROM changes WHERE kind = 'ticket'"
            };
            let target = match &req.bootstrap {
                Some(b) => b.target,
                None => {
                    let n: Option<i64> = tx.query_row(head_sql, [], |r| r.get(0)).db(&path)?;
                    n.unwrap_or(0) as u64
                }
            };
            let (after_id, after_kind) = match &req.bootstrap {
                Some(b) => (b.after_id.clone(), b.after_kind.clone()),
                None => (String::new(), String::new()),
            };
            let mut st = tx
                .prepare_cached(
                    "SELECT id, kind, bytes FROM docs WHERE (id, kind) > (?1, ?2) AND (?3 OR kind = 'ticket')
                     ORDER BY id, kind LIMIT ?4",
                )
                .db(&path)?;
            let mut rows =
                st.query(params![after_id, after_kind, notes_ok, (PULL_PAGE_DOCS_MAX + 1) as i64]).db(&path)?;
            let mut last: Option<(String, String)> = None;
            let mut full = false;
            while let Some(r) = rows.next().db(&path)? {
                if docs.len() >= PULL_PAGE_DOCS_MAX || bytes_total >= PULL_PAGE_BYTES_MAX {
                    full = true;
                    break;
                }
                let id: String = r.get(0).db(&path)?;
                let kind: String = r.get(1).db(&path)?;
                let b: Vec<u8> = r.get(2).db(&path)?;
                bytes_total += b.len();
                // Ids sorted: a ticket's notes come just before its ticket.
                if ticket_ids.last() != Some(&id) {
                    ticket_ids.push(id.clone());
                }
                last = Some((id.clone(), kind.clone()));
                docs.push(DocData { id, kind, data: encode_data(&b) });
            }
            match (full, last) {
                (true, Some((after_id, after_kind))) => PullPage {
                    docs,
                    cursor: 0,
                    bootstrap: Some(BootstrapPos { after_id, after_kind, target }),
                    more: true,
                    sla: Vec::new(),
                },
                _ => {
                    let max: Option<i64> = tx.query_row(head_sql, [], |r| r.get(0)).db(&path)?;
                    PullPage {
                        docs,
                        cursor: target,
                        bootstrap: None,
                        more: max.unwrap_or(0) as u64 > target,
                        sla: Vec::new(),
                    }
                }
            }
        } else {
            let mut st = tx
                .prepare_cached(if notes_ok {
                    "SELECT seq, id, kind, device, bytes FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                } else {
                    "SELECT seq, id, kind, device, bytes FROM changes WHERE seq > ?1 AND kind = 'ticket'
                     ORDER BY seq LIMIT ?2"
                })
                .db(&path)?;
            let limit = 20_000i64;
            let mut rows = st.query(params![req.cursor as i64, limit]).db(&path)?;
            let mut cursor = req.cursor;
            let mut grouped: Vec<((String, String), Vec<u8>)> = Vec::new();
            let mut index: HashMap<(String, String), usize> = HashMap::new();
            let mut n = 0i64;
            let mut more = false;
            while let Some(r) = rows.next().db(&path)? {
                if bytes_total >= PULL_PAGE_BYTES_MAX || grouped.len() >= PULL_PAGE_DOCS_MAX {
                    more = true;
                    break;
                }
                n += 1;
                let seq: i64 = r.get(0).db(&path)?;
                cursor = seq as u64;
                let id: String = r.get(1).db(&path)?;
                let kind: String = r.get(2).db(&path)?;
                let from: String = r.get(3).db(&path)?;
                // A device gets its own changes back only for notes: it may
                // have purged them (revocation) after sending them, in a
                // request that landed late.
                if (from == device && kind != "notes") || (kind == "notes" && !notes_ok) {
                    continue;
                }
                let b: Vec<u8> = r.get(4).db(&path)?;
                bytes_total += b.len();
                let key = (id, kind);
                match index.get(&key) {
                    Some(&i) => grouped[i].1.extend_from_slice(&b),
                    None => {
                        index.insert(key.clone(), grouped.len());
                        grouped.push((key, b));
                    }
                }
            }
            if n >= limit {
                more = true;
            }
            let mut listed: HashSet<String> = HashSet::new();
            for ((id, kind), b) in grouped {
                if listed.insert(id.clone()) {
                    ticket_ids.push(id.clone());
                }
                docs.push(DocData { id, kind, data: encode_data(&b) });
            }
            PullPage { docs, cursor, bootstrap: None, more, sla: Vec::new() }
        };
        let mut page = page;
        {
            // The SLA input of every ticket whose ticket or notes document is
            // in the page: a pulled note reindexes its ticket on the device,
            // which then shows the relay's figures again.
            let mut st = tx.prepare_cached("SELECT input FROM sla_inputs WHERE id = ?1").db(&path)?;
            for id in ticket_ids {
                let input: Option<String> = st.query_row([&id], |r| r.get(0)).optional().db(&path)?;
                if let Some(v) = input.and_then(RawSlaInput::from_text) {
                    page.sla.push((id, v));
                }
            }
        }
        tx.commit().db(&path)?;
        Ok(page)
    }

    // ---- board ------------------------------------------------------------

    /// Authoritative ticket objects matching a query, and the match count.
    pub fn tickets(
        &self,
        q: &ListQuery,
        now: i64,
        notes_ok: bool,
    ) -> Result<(Vec<serde_json::Value>, usize), StoreError> {
        let settings = self.sla_settings()?;
        let ListSql { filter, tail, args } = q.to_sql(now);
        let sql = format!("SELECT id FROM tickets{filter}{tail}");
        let count_sql = format!("SELECT count(*) FROM tickets{filter}");
        let values: Vec<(String, rusqlite::types::Value)> = args
            .into_iter()
            .map(|(n, a)| {
                let v = match a {
                    SqlArg::Int(i) => rusqlite::types::Value::Integer(i),
                    SqlArg::Text(t) => rusqlite::types::Value::Text(t),
                };
                (n, v)
            })
            .collect();
        let used = |sql: &str| -> Vec<(&str, &dyn rusqlite::ToSql)> {
            values
                .iter()
                .filter(|(n, _)| sql.contains(n.as_str()))
                .map(|(n, v)| (n.as_str(), v as &dyn rusqlite::ToSql))
                .collect()
        };
        let ids: Vec<String> = {
            let mut st = self.c.prepare(&sql).db(&self.path)?;
            let r = st.query_map(used(&sql).as_slice(), |r| r.get(0)).db(&self.path)?;
            r.collect::<Result<Vec<_>, _>>().db(&self.path)?
        };
        let mut view = self
            .c
            .prepare_cached(
                "SELECT v.view_json, s.input, v.notes_json FROM ticket_views v JOIN sla_inputs s ON s.id = v.id
                 WHERE v.id = ?1",
            )
            .db(&self.path)?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            let row = view
                .query_row([id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                })
                .optional()
                .db(&self.path)?;
            rows.extend(row);
        }
        let mut out = Vec::with_capacity(rows.len());
        for (v, s, n) in rows {
            let notes = if notes_ok { Some(n.unwrap_or_else(|| "[]".into())) } else { None };
            out.push(index::live_object(&v, &s, notes.as_deref(), &settings, now, false).map_err(StoreError::Damaged)?);
        }
        let total = if q.limit.is_some_and(|l| out.len() >= l) {
            let mut st = self.c.prepare(&count_sql).db(&self.path)?;
            let n: i64 = st.query_row(used(&count_sql).as_slice(), |r| r.get(0)).db(&self.path)?;
            n as usize
        } else {
            out.len()
        };
        Ok((out, total))
    }

    /// One page of an export, in id order after `after`: each ticket's
    /// object with live SLA figures (and notes when permitted).
    pub fn export_page(
        &self,
        f: &ExportFilter,
        after: &str,
        limit: usize,
        now: i64,
        settings: &SlaSettings,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.export_rows(f, after, limit)?
            .into_iter()
            .map(|r| {
                index::live_object(&r.view, &r.sla_input, r.notes.as_deref(), settings, now, false)
                    .map_err(StoreError::Damaged)
            })
            .collect()
    }

    /// Like [`Conn::export_page`], as JSON text per ticket (no parsing).
    pub fn export_page_text(
        &self,
        f: &ExportFilter,
        after: &str,
        limit: usize,
        now: i64,
        settings: &SlaSettings,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.export_rows(f, after, limit)?
            .into_iter()
            .map(|r| {
                index::live_text(&r.view, &r.sla_input, r.notes.as_deref(), settings, now, false)
                    .map(|t| (r.id, t))
                    .map_err(StoreError::Damaged)
            })
            .collect()
    }

    /// The stored rows of one export page (notes as `[]` when permitted but
    /// none were written, absent when not permitted).
    fn export_rows(&self, f: &ExportFilter, after: &str, limit: usize) -> Result<Vec<ExportRow>, StoreError> {
        let (sql, args) = export_sql(f, after, limit);
        let mut st = self.c.prepare_cached(&sql).db(&self.path)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                let notes: Option<String> = r.get(2)?;
                Ok(ExportRow {
                    view: r.get(0)?,
                    sla_input: r.get(1)?,
                    notes: f.notes.then(|| notes.unwrap_or_else(|| "[]".into())),
                    id: r.get(3)?,
                })
            })
            .db(&self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(&self.path)
    }

    /// How many tickets an export will carry.
    pub fn export_count(&self, f: &ExportFilter) -> Result<u64, StoreError> {
        let mut args = Vec::new();
        let sql = format!("SELECT count(*) FROM tickets t WHERE {}", export_filter(f, &mut args));
        let n: i64 = self.c.query_row(&sql, rusqlite::params_from_iter(args.iter()), |r| r.get(0)).db(&self.path)?;
        Ok(n as u64)
    }

    /// One ticket's authoritative object, by exact id.
    pub fn ticket(&self, id: &str, now: i64, notes_ok: bool) -> Result<Option<serde_json::Value>, StoreError> {
        let row = self
            .c
            .prepare_cached(
                "SELECT v.view_json, s.input, v.notes_json FROM ticket_views v JOIN sla_inputs s ON s.id = v.id
                 WHERE v.id = ?1",
            )
            .db(&self.path)?
            .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
            .optional()
            .db(&self.path)?;
        let Some((v, s, n)) = row else { return Ok(None) };
        let settings = self.sla_settings()?;
        let notes = if notes_ok { Some(n.unwrap_or_else(|| "[]".into())) } else { None };
        index::live_object(&v, &s, notes.as_deref(), &settings, now, false).map(Some).map_err(StoreError::Damaged)
    }

    /// Gives this connection SQLite's default 2 MiB page cache (for reads
    /// that touch every page once, such as exports).
    pub fn use_small_cache(&self) -> Result<(), StoreError> {
        self.c.pragma_update(None, "cache_size", -2048).db(&self.path)
    }

    /// Starts a read transaction: every query until [`Conn::end_read`] sees
    /// one snapshot of the database (an export is one consistent picture).
    pub fn begin_read(&self) -> Result<(), StoreError> {
        self.c.execute_batch("BEGIN DEFERRED").db(&self.path)?;
        // A deferred transaction takes its snapshot at its first read.
        self.c.query_row("SELECT count(*) FROM settings", [], |r| r.get::<_, i64>(0)).db(&self.path)?;
        Ok(())
    }

    pub fn end_read(&self) -> Result<(), StoreError> {
        self.c.execute_batch("COMMIT").db(&self.path)
    }

    /// Ids starting with a prefix (at most `max`).
    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .c
            .prepare_cached("SELECT id FROM tickets WHERE id >= ?1 AND id < ?1 || x'ff' ORDER BY id LIMIT ?2")
            .db(&self.path)?;
        let rows = st.query_map(params![prefix, max as i64], |r| r.get(0)).db(&self.path)?;
        rows.collect::<Result<Vec<String>, _>>().db(&self.path)
    }

    /// Counts of tickets per live SLA colour, by the one definition in
    /// core (`json::ticket_color`, as SQL in `index`): red, yellow, met and
    /// none through their indexes, green as the rest (the five split every
    /// ticket exactly once).
    pub fn color_counts(&self, now: i64) -> Result<index::SlaCounts, StoreError> {
        let count = |filter: &str| -> Result<u64, StoreError> {
            let sql = format!("SELECT count(*) FROM tickets WHERE {filter}");
            let mut st = self.c.prepare_cached(&sql).db(&self.path)?;
            let n: i64 = if filter.contains(":now") {
                st.query_row(rusqlite::named_params! {":now": now}, |r| r.get(0))
            } else {
                st.query_row([], |r| r.get(0))
            }
            .db(&self.path)?;
            Ok(n as u64)
        };
        let total: i64 = self.c.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)).db(&self.path)?;
        let red = count(index::SLA_RED_SQL)?;
        let yellow = count(index::SLA_YELLOW_SQL)?;
        let none = count(index::SLA_NONE_SQL)?;
        let met = count(index::SLA_MET_SQL)?;
        let green = (total as u64).saturating_sub(red + yellow + none + met);
        Ok(index::SlaCounts { green, yellow, red, met, none })
    }

    /// The earliest instant after `now` at which some ticket changes colour.
    pub fn next_color_change(&self, now: i64) -> Result<Option<i64>, StoreError> {
        let mut best: Option<i64> = None;
        for col in ["fr_warn", "fr_due", "res_warn", "res_due"] {
            let sql = format!("SELECT min({col}) FROM tickets WHERE {col} > ?1");
            let v: Option<i64> = self.c.query_row(&sql, [now], |r| r.get(0)).db(&self.path)?;
            if let Some(v) = v {
                best = Some(best.map_or(v, |b: i64| b.min(v)));
            }
        }
        Ok(best)
    }

    /// Devices whose last sync was at or after `since` (a metrics gauge).
    pub fn devices_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        let n: i64 = self
            .c
            .query_row("SELECT count(*) FROM devices WHERE last_seen >= ?1", [since], |r| r.get(0))
            .db(&self.path)?;
        Ok(n as u64)
    }

    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).db(&self.path)
    }

    /// Copies the database to `dest` with SQLite's online backup, page batch
    /// by page batch, while the relay keeps serving; `progress(done, total)`
    /// is called between batches. `dest` must not exist: a backup never
    /// overwrites anything.
    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(i32, i32)) -> Result<(), StoreError> {
        let mut out = Connection::open(dest).db(dest)?;
        {
            let b = rusqlite::backup::Backup::new(&self.c, &mut out).db(dest)?;
            loop {
                let r = b.step(BACKUP_PAGES_PER_STEP).db(dest)?;
                let p = b.progress();
                progress(p.pagecount - p.remaining, p.pagecount);
                match r {
                    rusqlite::backup::StepResult::Done => break,
                    // Other connections hold the database briefly: yield and
                    // carry on.
                    _ => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        }
        let ok: String = out.query_row("PRAGMA integrity_check", [], |r| r.get(0)).db(dest)?;
        if ok != "ok" {
            return Err(StoreError::Damaged(format!("backup failed its integrity check: {ok}")));
        }
        Ok(())
    }
}

/// Pages copied per backup step between which writers get the database.
pub const BACKUP_PAGES_PER_STEP: i32 = 1024;

/// The SQL of one export page: (view_json, sla_input, notes_json, id) of
/// the tickets after `after` in id order.
fn export_sql(f: &ExportFilter, after: &str, limit: usize) -> (String, Vec<rusqlite::types::Value>) {
    let mut args: Vec<rusqlite::types::Value> = vec![after.to_string().into()];
    // Pages walk the id index (keyset pagination); the filter's `+` terms
    // keep SQLite from walking the created_at index instead, which would
    // re-read and sort every matching row for every page.
    let filter = export_filter(f, &mut args);
    args.push((limit as i64).into());
    let sql = format!(
        "SELECT v.view_json, s.input, v.notes_json, t.id FROM tickets t JOIN ticket_views v ON v.id = t.id
         JOIN sla_inputs s ON s.id = t.id
         WHERE t.id > ?1 AND {filter} ORDER BY t.id LIMIT ?{}",
        args.len()
    );
    (sql, args)
}

/// The WHERE terms of an export's filter over `tickets t`, binding numbered
/// parameters after those already in `args`.
fn export_filter(f: &ExportFilter, args: &mut Vec<rusqlite::types::Value>) -> String {
    args.push(f.from_ms.into());
    let from = args.len();
    args.push(f.to_ms.into());
    let mut sql = format!("+t.created_at >= ?{from} AND +t.created_at < ?{}", from + 1);
    for (col, values) in [("status", &f.statuses), ("category", &f.categories)] {
        if values.is_empty() {
            continue;
        }
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                args.push(v.clone().into());
                format!("?{}", args.len())
            })
            .collect();
        sql.push_str(&format!(" AND +t.{col} IN ({})", marks.join(", ")));
    }
    sql
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

/// The heads of the change log (see [`Conn::heads`]).
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

/// An event's effective time: when its device says it was written,
/// corrected by the device's measured clock offset, and never later than
/// the moment the relay received it.
pub fn effective_time(written_ms: i64, offset_ms: i64, received_ms: i64) -> i64 {
    written_ms.saturating_sub(offset_ms).min(received_ms)
}

/// The SLA settings as stored (JSON text), inside a transaction.
fn sla_settings_text(tx: &Transaction<'_>, path: &Path) -> Result<Option<String>, StoreError> {
    tx.query_row("SELECT value FROM settings WHERE key = 'sla'", [], |r| r.get(0)).optional().db(path)
}

fn parse_sla_settings(json: Option<&str>) -> Result<SlaSettings, StoreError> {
    match json {
        Some(j) => serde_json::from_str(j).map_err(|e| StoreError::Damaged(format!("SLA settings: {e}"))),
        None => Ok(SlaSettings::default()),
    }
}

/// One stored row of an export page.
struct ExportRow {
    id: String,
    view: String,
    sla_input: String,
    notes: Option<String>,
}

/// A pushed document merged and authorized, with the bytes to store when
/// it brought new changes.
struct Merged {
    ing: ingest::Ingested,
    bytes: Option<Vec<u8>>,
}

/// A ticket's index row computed from its documents.
struct Indexed {
    entry: IndexEntry,
    notes_json: Option<String>,
}

/// What a push read of one ticket before merging: both documents' stored
/// bytes with the sequence numbers of their last change, and the effective
/// times of its events.
struct Snapshot {
    ticket: Option<(Vec<u8>, i64)>,
    notes: Option<(Vec<u8>, i64)>,
    times: HashMap<String, i64>,
}

impl Snapshot {
    fn read(tx: &Transaction<'_>, path: &Path, id: &str) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            ticket: stored_copy(tx, path, id, DocKind::Ticket.as_str())?,
            notes: stored_copy(tx, path, id, DocKind::Notes.as_str())?,
            times: event_times(tx, path, id)?,
        })
    }

    fn bytes(&self, kind: &str) -> Option<&[u8]> {
        match DocKind::parse(kind)? {
            DocKind::Ticket => self.ticket.as_ref().map(|(b, _)| b.as_slice()),
            DocKind::Notes => self.notes.as_ref().map(|(b, _)| b.as_slice()),
        }
    }

    fn load(&self, id: &str, kind: DocKind) -> Result<Option<TicketDoc>, StoreError> {
        self.bytes(kind.as_str()).map(|b| load_stored(id, kind, b)).transpose()
    }

    /// Whether both documents are still as read.
    fn unchanged(&self, tx: &Transaction<'_>, path: &Path, id: &str) -> Result<bool, StoreError> {
        let seq = |kind: DocKind| -> Result<Option<i64>, StoreError> {
            tx.prepare_cached("SELECT seq FROM docs WHERE id = ?1 AND kind = ?2")
                .db(path)?
                .query_row(params![id, kind.as_str()], |r| r.get(0))
                .optional()
                .db(path)
        };
        Ok(seq(DocKind::Ticket)? == self.ticket.as_ref().map(|(_, s)| *s)
            && seq(DocKind::Notes)? == self.notes.as_ref().map(|(_, s)| *s))
    }
}

/// The effective times of a ticket's events, by event key.
fn event_times(tx: &Transaction<'_>, path: &Path, id: &str) -> Result<HashMap<String, i64>, StoreError> {
    let mut times = HashMap::new();
    let mut st = tx.prepare_cached("SELECT key, effective_ms FROM event_times WHERE id = ?1").db(path)?;
    let rows = st.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).db(path)?;
    for r in rows {
        let (k, t) = r.db(path)?;
        times.insert(k, t);
    }
    Ok(times)
}

/// A ticket's index row, every stamp at its effective time; `None` for a
/// ticket document without its creation yet (its first change still on
/// the way): it gets a row when the creation lands.
fn index_row(
    doc: &TicketDoc,
    notes: Option<&TicketDoc>,
    times: &HashMap<String, i64>,
    settings: &SlaSettings,
    now: i64,
) -> Option<Indexed> {
    let v = view::materialize(doc, notes).ok()?;
    let effective = |h: &Hlc| times.get(&h.encode()).copied().unwrap_or(i64::try_from(h.wall_ms).unwrap_or(i64::MAX));
    Some(Indexed {
        entry: index::index_entry(&v, settings, now, &effective),
        notes_json: index::notes_json(&v, &effective),
    })
}

/// A document's stored bytes and the sequence number of its last change.
fn stored_copy(tx: &Transaction<'_>, path: &Path, id: &str, kind: &str) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
    tx.prepare_cached("SELECT bytes, seq FROM docs WHERE id = ?1 AND kind = ?2")
        .db(path)?
        .query_row(params![id, kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db(path)
}

fn load_doc(tx: &Transaction<'_>, path: &Path, id: &str, kind: DocKind) -> Result<Option<TicketDoc>, StoreError> {
    let b: Option<Vec<u8>> = tx
        .query_row("SELECT bytes FROM docs WHERE id = ?1 AND kind = ?2", params![id, kind.as_str()], |r| r.get(0))
        .optional()
        .db(path)?;
    b.map(|b| load_stored(id, kind, &b)).transpose()
}

/// A document this relay stored (checked when it arrived).
fn load_stored(id: &str, kind: DocKind, bytes: &[u8]) -> Result<TicketDoc, StoreError> {
    let uuid = Uuid::parse_str(id).map_err(|e| StoreError::Damaged(e.to_string()))?;
    TicketDoc::load_stored(uuid, kind, bytes).map_err(|e| StoreError::Damaged(format!("ticket {id}: {e}")))
}

/// Rewrites a ticket's index row from its documents, with every stamp at
/// its effective time.
fn reindex(
    tx: &Transaction<'_>,
    path: &Path,
    doc: &TicketDoc,
    notes: Option<&TicketDoc>,
    settings: &SlaSettings,
    now: i64,
) -> Result<(), StoreError> {
    let times = event_times(tx, path, &doc.id().to_string())?;
    match index_row(doc, notes, &times, settings, now) {
        Some(row) => upsert_ticket(tx, path, &row.entry, row.notes_json.as_deref()),
        None => Ok(()),
    }
}

fn upsert_ticket(
    tx: &Transaction<'_>,
    path: &Path,
    e: &IndexEntry,
    notes_json: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank, assignee,
            created_at, updated_at, conversation_id, sla_static, fr_warn, fr_due, res_warn, res_due)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET subject_lc = excluded.subject_lc, priority = excluded.priority,
            priority_rank = excluded.priority_rank, category = excluded.category, status = excluded.status,
            status_rank = excluded.status_rank, assignee = excluded.assignee, created_at = excluded.created_at,
            updated_at = excluded.updated_at, conversation_id = excluded.conversation_id,
            sla_static = excluded.sla_static, fr_warn = excluded.fr_warn, fr_due = excluded.fr_due,
            res_warn = excluded.res_warn, res_due = excluded.res_due",
    )
    .db(path)?
    .execute(params![
        e.id,
        e.subject.to_lowercase(),
        e.priority,
        e.priority_rank,
        e.category,
        e.status,
        e.status_rank,
        e.assignee,
        e.created_at,
        e.updated_at,
        e.conversation_id,
        e.sla.fixed_rank,
        e.sla.fr_warn,
        e.sla.fr_due,
        e.sla.res_warn,
        e.sla.res_due,
    ])
    .db(path)?;
    tx.prepare_cached("INSERT OR REPLACE INTO ticket_views (id, view_json, notes_json) VALUES (?1, ?2, ?3)")
        .db(path)?
        .execute(params![e.id, e.view_json, notes_json])
        .db(path)?;
    tx.prepare_cached("INSERT OR REPLACE INTO sla_inputs (id, input) VALUES (?1, ?2)")
        .db(path)?
        .execute(params![e.id, e.sla_input])
        .db(path)?;
    Ok(())
}

/// Recomputes every ticket's SLA columns from its stored input.
fn recompute_sla(tx: &Transaction<'_>, path: &Path, settings: &SlaSettings, now: i64) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = {
        let mut st = tx.prepare("SELECT id, input FROM sla_inputs").db(path)?;
        let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db(path)?;
        r.collect::<Result<Vec<_>, _>>().db(path)?
    };
    let mut st = tx
        .prepare(
            "UPDATE tickets SET sla_static = ?2, fr_warn = ?3, fr_due = ?4, res_warn = ?5, res_due = ?6 WHERE id = ?1",
        )
        .db(path)?;
    for (id, input) in rows {
        let input: index::SlaInputJson =
            serde_json::from_str(&input).map_err(|e| StoreError::Damaged(format!("ticket {id}: {e}")))?;
        let c = index::sla_columns(&input.into(), settings, now);
        st.execute(params![id, c.fixed_rank, c.fr_warn, c.fr_due, c.res_warn, c.res_due]).db(path)?;
    }
    Ok(())
}
