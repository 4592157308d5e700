//! The SQLite schema, its migrations, and opening a database (creating or
//! upgrading it).

use std::path::Path;

use super::{Ctx, Db, StoreError};

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
    fr_warn INTEGER, fr_due INTEGER, res_warn INTEGER, res_due INTEGER,
    -- By how much (ms) a stopped clock was breached, for the SLA order.
    sla_late INTEGER
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
CREATE TABLE IF NOT EXISTS ticket_search (id TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID;
";

impl Db {
    /// Opens the relay database, creating it when `create` is set.
    pub fn open(path: &Path, create: bool) -> Result<Db, StoreError> {
        if !path.exists() && !create {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        // Private whatever the umask: created so, and made so again if
        // something loosened it.
        if !path.exists() {
            super::files::create_private(path)
                .map_err(|e| StoreError::Unavailable { what: path.display().to_string(), why: e.to_string() })?;
        }
        for w in super::files::tighten(path) {
            eprintln!("warning: {w}");
        }
        let db = Db::at(path);
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
                super::board::add_columns(&c.c, path)?;
                c.c.execute_batch(INDEXES).db(path)?;
                super::inbox::schema(&c.c, path)?; // the inbox's own tables
                super::board::reindex_if_stale(&mut c)?;
                super::floor::schema(&c.c, path)?; // devices' floors
                return Ok(db);
            }
            SCHEMA_VERSION => {}
            _ => return Err(StoreError::Foreign(path.to_path_buf())),
        }
        // Columns and indexes added within a schema version: created when
        // missing; rows indexed by an older format re-indexed once.
        super::board::add_columns(&c.c, path)?;
        c.c.execute_batch(INDEXES).db(path)?;
        super::inbox::schema(&c.c, path)?; // the inbox's own tables
        let mut c = c;
        super::board::reindex_if_stale(&mut c)?;
        super::floor::schema(&c.c, path)?; // devices' floors
        Ok(db)
    }
}
