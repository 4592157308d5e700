//! The node's SQLite store: documents plus materialized index tables.
//!
//! All SQL of the node lives here. Every command runs in one transaction
//! ([`Store::tx`]); list, filter, sort and search read the `tickets` index
//! table and never load a document.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

use tickets_core::index::{self, IndexEntry, ListQuery, ListSql, SlaColumns, SqlArg};

use crate::error::NodeError;

/// Bumped when the schema changes; a node refuses a database it does not know.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE docs (
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    bytes BLOB NOT NULL,
    -- Heads the relay is known to hold (for sync); NULL: never synced.
    synced_heads BLOB,
    -- 1 while the document has local changes the relay has not confirmed;
    -- 2 when the relay refused them (kept, shown, retried after an edit).
    dirty INTEGER NOT NULL DEFAULT 1,
    -- Bumped on every local save, so a sync marks a document clean only if
    -- no command changed it meanwhile.
    rev INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, kind)
) WITHOUT ROWID;
-- The index: one narrow row per ticket with what list, filter and sort
-- read, so scans and index lookups stay cheap at 100k tickets.
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
    -- Colour rank fixed by stopped or breached metrics (0 none .. 3 red) and
    -- the instants at which running metrics turn yellow and red: colours
    -- move with time as range queries on these columns.
    sla_static INTEGER NOT NULL DEFAULT 0,
    fr_warn INTEGER, fr_due INTEGER, res_warn INTEGER, res_due INTEGER,
    -- 0 when the SLA input is the relay's (authoritative), 1 when computed here.
    sla_provisional INTEGER NOT NULL DEFAULT 1,
    -- By how much (ms) a stopped clock was breached, for the SLA order.
    sla_late INTEGER
);
-- What a ticket shows, read only for the rows a list returns.
CREATE TABLE ticket_views (
    id TEXT PRIMARY KEY,
    -- The ticket's JSON object without live SLA figures or notes.
    view_json TEXT NOT NULL,
    -- The internal notes' JSON, only while this device may read them.
    notes_json TEXT,
    -- What the SLA engine needs, so figures are computed without documents.
    sla_input TEXT NOT NULL
);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_updated ON tickets (updated_at);
CREATE INDEX tickets_status ON tickets (status, created_at);
CREATE INDEX tickets_priority ON tickets (priority_rank, created_at);
CREATE INDEX tickets_assignee ON tickets (assignee);
CREATE INDEX tickets_category ON tickets (category);
CREATE INDEX tickets_conversation ON tickets (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE TABLE refusals (
    seq INTEGER PRIMARY KEY,
    ticket_id TEXT,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX refusals_ticket ON refusals (ticket_id);
";

/// A row as listed: the stored JSON and the SLA input.
#[derive(Debug, Clone)]
pub struct ListedRow {
    pub id: String,
    pub view_json: String,
    pub sla_input: String,
    pub notes_json: Option<String>,
    pub provisional: bool,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Maps a SQLite error to the node's error with the database path.
pub(crate) trait DbContext<T> {
    fn db(self, path: &Path) -> Result<T, NodeError>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn db(self, path: &Path) -> Result<T, NodeError> {
        self.map_err(|source| match &source {
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) =>
            {
                NodeError::Corrupt { path: path.to_path_buf(), message: source.to_string() }
            }
            _ => NodeError::Db { path: path.to_path_buf(), source },
        })
    }
}

/// Indexes for the push queue, colour filters and the SLA sort, created
/// when missing. The push queue is walked in (kind, id) order, so its index
/// has that order: a page is an index range, never a sort of every dirty
/// document (which made a 100k cold push quadratic). Likewise the default
/// list order, newest first with ties by id (`tickets_created_id`): an
/// imported node holds thousands of tickets created in the same
/// millisecond, and sorting that tie for every page cost 40 ms at 100 000.
const INDEXES: &str = "
DROP INDEX IF EXISTS docs_dirty;
CREATE INDEX IF NOT EXISTS docs_push_queue ON docs (kind, id) WHERE dirty = 1;
CREATE INDEX IF NOT EXISTS tickets_fr_due ON tickets (fr_due) WHERE fr_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_res_due ON tickets (res_due) WHERE res_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_fr_warn ON tickets (fr_warn) WHERE fr_warn IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_res_warn ON tickets (res_warn) WHERE res_warn IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_sla_static ON tickets (sla_static);
CREATE INDEX IF NOT EXISTS tickets_sla_none ON tickets (sla_static) WHERE sla_static = 0 AND fr_due IS NULL AND res_due IS NULL;
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    bytes BLOB NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (id, kind, at)
);
CREATE INDEX IF NOT EXISTS tickets_due ON tickets (
    coalesce(min(coalesce(fr_due, res_due), coalesce(res_due, fr_due)), 9223372036854775807));
DROP INDEX IF EXISTS tickets_created;
CREATE INDEX IF NOT EXISTS tickets_created_id ON tickets (created_at, id);
CREATE TABLE IF NOT EXISTS ticket_search (id TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID;
";

/// Meta key of the [`index::INDEX_FORMAT`] the rows were indexed with.
const M_INDEX_FORMAT: &str = "index_format";

/// Columns added to `tickets` within a schema version: added when missing.
fn add_columns(conn: &Connection, path: &Path) -> Result<(), NodeError> {
    let has: bool = conn
        .query_row("SELECT count(*) FROM pragma_table_info('tickets') WHERE name = 'sla_late'", [], |r| r.get(0))
        .db(path)?;
    if !has {
        conn.execute_batch("ALTER TABLE tickets ADD COLUMN sla_late INTEGER").db(path)?;
    }
    Ok(())
}

fn configure(conn: &Connection, path: &Path) -> Result<(), NodeError> {
    conn.busy_timeout(std::time::Duration::from_secs(10)).db(path)?;
    conn.pragma_update(None, "journal_mode", "WAL").db(path)?;
    conn.pragma_update(None, "synchronous", "NORMAL").db(path)?;
    conn.pragma_update(None, "foreign_keys", "ON").db(path)?;
    // Deleted content (purged internal notes) is overwritten, not left in
    // free pages of the file.
    conn.pragma_update(None, "secure_delete", "ON").db(path)?;
    Ok(())
}

impl Store {
    /// Creates a new database; fails if one exists.
    pub fn create(path: &Path) -> Result<Store, NodeError> {
        if path.exists() {
            return Err(NodeError::AlreadyInitialized(path.to_path_buf()));
        }
        // Created empty and private first: SQLite would create it 0644
        // less the umask, and its -wal and -shm take the database's mode.
        crate::home::create_private_file(path).map_err(|source| NodeError::Io { path: path.to_path_buf(), source })?;
        let conn = Connection::open(path).db(path)?;
        configure(&conn, path)?;
        conn.execute_batch(SCHEMA).db(path)?;
        conn.execute_batch(INDEXES).db(path)?;
        crate::inbox::schema(&conn, path)?; // inbox: its own table
        crate::views::schema(&conn, path)?; // saved views: their own table
        crate::new_for_you::schema(&conn, path)?; // new for you: its own table
        conn.pragma_update(None, "user_version", SCHEMA_VERSION).db(path)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![M_INDEX_FORMAT, index::INDEX_FORMAT.to_string()],
        )
        .db(path)?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// Opens an existing database, checking that it is one of ours.
    pub fn open(path: &Path) -> Result<Store, NodeError> {
        if !path.exists() {
            return Err(NodeError::NotInitialized(path.to_path_buf()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).db(path)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).db(path)?;
        if version != SCHEMA_VERSION {
            return Err(NodeError::Corrupt {
                path: path.to_path_buf(),
                message: format!("unknown schema version {version} (this node knows {SCHEMA_VERSION})"),
            });
        }
        configure(&conn, path)?;
        add_columns(&conn, path)?;
        conn.execute_batch(INDEXES).db(path)?;
        crate::inbox::schema(&conn, path)?; // inbox: its own table
        crate::views::schema(&conn, path)?; // saved views: their own table
        crate::new_for_you::schema(&conn, path)?; // new for you: its own table
        Ok(Store { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the database file without any trace of deleted content
    /// (SQLite can leave stale copies of cells in the unused space of pages
    /// it rebuilt, even with secure_delete), then empties the write-ahead
    /// log. Run after purging internal notes.
    pub fn scrub(&self) -> Result<(), NodeError> {
        self.conn.execute_batch("VACUUM").db(&self.path)?;
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).db(&self.path)
    }

    /// Starts the one transaction of a command.
    pub fn tx(&mut self) -> Result<Tx<'_>, NodeError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(&self.path)?;
        Ok(Tx { tx, path: &self.path })
    }
}

pub struct Tx<'a> {
    tx: Transaction<'a>,
    path: &'a Path,
}

impl Tx<'_> {
    // inbox: `crate::inbox` keeps its own table in this transaction.
    pub(crate) fn inbox_sql(&self) -> (&Transaction<'_>, &Path) {
        (&self.tx, self.path)
    }

    // Saved views and "new for you" keep their SQL in their own modules,
    // on this transaction, as the inbox does.
    pub(crate) fn sql(&self) -> (&Transaction<'_>, &Path) {
        (&self.tx, self.path)
    }

    pub fn commit(self) -> Result<(), NodeError> {
        self.tx.commit().db(self.path)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, NodeError> {
        self.tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().db(self.path)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), NodeError> {
        self.tx
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .db(self.path)?;
        Ok(())
    }

    pub fn load_doc(&self, id: &str, kind: &str) -> Result<Option<Vec<u8>>, NodeError> {
        self.tx
            .query_row("SELECT bytes FROM docs WHERE id = ?1 AND kind = ?2", params![id, kind], |r| r.get(0))
            .optional()
            .db(self.path)
    }

    /// Stores a document edited locally: it is dirty until the relay has it.
    pub fn save_doc(&self, id: &str, kind: &str, bytes: &[u8]) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached(
                "INSERT INTO docs (id, kind, bytes, dirty) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (id, kind) DO UPDATE SET bytes = excluded.bytes, dirty = 1, rev = rev + 1",
            )
            .db(self.path)?;
        st.execute(params![id, kind, bytes]).db(self.path)?;
        Ok(())
    }

    pub fn upsert_index(&self, row: &IndexEntry, notes_json: Option<&str>, provisional: bool) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached(
                "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank, assignee,
                    created_at, updated_at, conversation_id, sla_static, fr_warn, fr_due, res_warn, res_due,
                    sla_provisional, sla_late)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                 ON CONFLICT (id) DO UPDATE SET subject_lc = excluded.subject_lc, priority = excluded.priority,
                    priority_rank = excluded.priority_rank, category = excluded.category, status = excluded.status,
                    status_rank = excluded.status_rank, assignee = excluded.assignee, created_at = excluded.created_at,
                    updated_at = excluded.updated_at, conversation_id = excluded.conversation_id,
                    sla_static = excluded.sla_static, fr_warn = excluded.fr_warn, fr_due = excluded.fr_due,
                    res_warn = excluded.res_warn, res_due = excluded.res_due, sla_provisional = excluded.sla_provisional,
                    sla_late = excluded.sla_late",
            )
            .db(self.path)?;
        st.execute(params![
            row.id,
            row.subject.to_lowercase(),
            row.priority,
            row.priority_rank,
            row.category,
            row.status,
            row.status_rank,
            row.assignee,
            row.created_at,
            row.updated_at,
            row.conversation_id,
            row.sla.fixed_rank,
            row.sla.fr_warn,
            row.sla.fr_due,
            row.sla.res_warn,
            row.sla.res_due,
            provisional as i64,
            row.sla.late_ms,
        ])
        .db(self.path)?;
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO ticket_search (id, text) VALUES (?1, ?2)")
            .db(self.path)?
            .execute(params![row.id, row.search_text])
            .db(self.path)?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO ticket_views (id, view_json, notes_json, sla_input) VALUES (?1, ?2, ?3, ?4)",
            )
            .db(self.path)?
            .execute(params![row.id, row.view_json, notes_json, row.sla_input])
            .db(self.path)?;
        Ok(())
    }

    /// Ids starting with `prefix` (at most `max`).
    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Result<Vec<String>, NodeError> {
        let mut st = self
            .tx
            .prepare_cached("SELECT id FROM tickets WHERE id >= ?1 AND id < ?1 || x'ff' ORDER BY id LIMIT ?2")
            .db(self.path)?;
        let rows = st.query_map(params![prefix, max as i64], |r| r.get(0)).db(self.path)?;
        rows.collect::<Result<Vec<String>, _>>().db(self.path)
    }

    pub fn ticket_of_conversation(&self, conversation_id: &str) -> Result<Option<String>, NodeError> {
        self.tx
            .query_row(
                "SELECT id FROM tickets WHERE conversation_id = ?1 ORDER BY created_at LIMIT 1",
                [conversation_id],
                |r| r.get(0),
            )
            .optional()
            .db(self.path)
    }

    pub fn row(&self, id: &str) -> Result<Option<ListedRow>, NodeError> {
        self.tx
            .prepare_cached(
                "SELECT v.id, v.view_json, v.sla_input, v.notes_json, t.sla_provisional
                 FROM ticket_views v JOIN tickets t ON t.id = v.id WHERE v.id = ?1",
            )
            .db(self.path)?
            .query_row([id], |r| {
                Ok(ListedRow {
                    id: r.get(0)?,
                    view_json: r.get(1)?,
                    sla_input: r.get(2)?,
                    notes_json: r.get(3)?,
                    provisional: r.get::<_, i64>(4)? != 0,
                })
            })
            .optional()
            .db(self.path)
    }

    /// Runs a list query at instant `now` (for SLA colours); returns the
    /// rows and the number of matches beyond any limit. The narrow index
    /// table answers the query; views are read only for the rows returned.
    pub fn list(&self, q: &ListQuery, now: i64) -> Result<(Vec<ListedRow>, usize), NodeError> {
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
        // SQLite rejects named parameters that a statement does not use.
        let used = |sql: &str| -> Vec<(&str, &dyn rusqlite::ToSql)> {
            values
                .iter()
                .filter(|(n, _)| sql.contains(n.as_str()))
                .map(|(n, v)| (n.as_str(), v as &dyn rusqlite::ToSql))
                .collect()
        };
        let ids: Vec<String> = {
            let mut st = self.tx.prepare(&sql).db(self.path)?;
            let rows = st.query_map(used(&sql).as_slice(), |r| r.get(0)).db(self.path)?;
            rows.collect::<Result<Vec<_>, _>>().db(self.path)?
        };
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(r) = self.row(id)? {
                rows.push(r);
            }
        }
        let total = if q.limit.is_some_and(|l| rows.len() >= l) {
            let mut st = self.tx.prepare(&count_sql).db(self.path)?;
            let n: i64 = st.query_row(used(&count_sql).as_slice(), |r| r.get(0)).db(self.path)?;
            n as usize
        } else {
            rows.len()
        };
        Ok((rows, total))
    }

    pub fn add_refusal(&self, ticket_id: Option<&str>, kind: &str, reason: &str, at: i64) -> Result<(), NodeError> {
        self.tx
            .execute(
                "INSERT INTO refusals (ticket_id, kind, reason, at) VALUES (?1, ?2, ?3, ?4)",
                params![ticket_id, kind, reason, at],
            )
            .db(self.path)?;
        Ok(())
    }

    /// Keeps a pulled document that could not be used aside (with why), and
    /// records it on its ticket like a refusal, so `show` and `sync` say so.
    pub fn quarantine(&self, id: &str, kind: &str, bytes: &[u8], reason: &str, at: i64) -> Result<(), NodeError> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO quarantine (id, kind, bytes, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, kind, bytes, reason, at],
            )
            .db(self.path)?;
        self.add_refusal(Some(id), kind, reason, at)
    }

    /// Refusals recorded for a ticket: (kind, reason, at).
    pub fn refusals(&self, ticket_id: &str) -> Result<Vec<(String, String, i64)>, NodeError> {
        let mut st = self
            .tx
            .prepare_cached("SELECT kind, reason, at FROM refusals WHERE ticket_id = ?1 ORDER BY seq")
            .db(self.path)?;
        let rows = st.query_map([ticket_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).db(self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(self.path)
    }

    pub fn count_tickets(&self) -> Result<usize, NodeError> {
        let n: i64 = self.tx.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)).db(self.path)?;
        Ok(n as usize)
    }

    /// Documents set aside because what arrived for them could not be
    /// used (see [`Tx::quarantine`]).
    pub fn count_quarantined(&self) -> Result<usize, NodeError> {
        let n: i64 = self.tx.query_row("SELECT count(DISTINCT id) FROM quarantine", [], |r| r.get(0)).db(self.path)?;
        Ok(n as usize)
    }

    /// Tickets per SLA colour at `now`, as the relay's board counts them.
    pub fn color_counts(&self, now: i64) -> Result<index::SlaCounts, NodeError> {
        let count = |filter: &str| -> Result<u64, NodeError> {
            let sql = format!("SELECT count(*) FROM tickets WHERE {filter}");
            let mut st = self.tx.prepare_cached(&sql).db(self.path)?;
            let n: i64 = if filter.contains(":now") {
                st.query_row(rusqlite::named_params! {":now": now}, |r| r.get(0))
            } else {
                st.query_row([], |r| r.get(0))
            }
            .db(self.path)?;
            Ok(n as u64)
        };
        let total = self.count_tickets()? as u64;
        let red = count(index::SLA_RED_SQL)?;
        let yellow = count(index::SLA_YELLOW_SQL)?;
        let none = count(index::SLA_NONE_SQL)?;
        let met = count(index::SLA_MET_SQL)?;
        let green = total.saturating_sub(red + yellow + none + met);
        Ok(index::SlaCounts { green, yellow, red, met, none })
    }

    /// The earliest instant after `now` at which some ticket changes colour.
    pub fn next_color_change(&self, now: i64) -> Result<Option<i64>, NodeError> {
        let mut best: Option<i64> = None;
        for col in ["fr_warn", "fr_due", "res_warn", "res_due"] {
            let sql = format!("SELECT min({col}) FROM tickets WHERE {col} > ?1");
            let v: Option<i64> = self.tx.query_row(&sql, [now], |r| r.get(0)).db(self.path)?;
            if let Some(v) = v {
                best = Some(best.map_or(v, |b: i64| b.min(v)));
            }
        }
        Ok(best)
    }

    pub fn count_dirty(&self) -> Result<usize, NodeError> {
        let n: i64 = self.tx.query_row("SELECT count(*) FROM docs WHERE dirty = 1", [], |r| r.get(0)).db(self.path)?;
        Ok(n as usize)
    }

    pub fn count_refused(&self) -> Result<usize, NodeError> {
        let n: i64 = self.tx.query_row("SELECT count(*) FROM docs WHERE dirty = 2", [], |r| r.get(0)).db(self.path)?;
        Ok(n as usize)
    }

    /// A page of documents with unconfirmed local changes, tickets before
    /// notes: (id, kind, bytes, synced heads, rev).
    #[allow(clippy::type_complexity)]
    pub fn dirty_docs(
        &self,
        after: Option<&(String, String)>,
        limit: usize,
    ) -> Result<Vec<(String, String, Vec<u8>, Option<String>, i64)>, NodeError> {
        // Two statements rather than one with an `OR`, so that both are a
        // range of the docs_push_queue index.
        const COLS: &str = "SELECT id, kind, bytes, synced_heads, rev FROM docs WHERE dirty = 1";
        const ORDER: &str = "ORDER BY kind DESC, id DESC LIMIT ?3";
        let (sql, aid, akind) = match after {
            Some((id, kind)) => (format!("{COLS} AND (kind, id) < (?2, ?1) {ORDER}"), id.as_str(), kind.as_str()),
            None => (format!("{COLS} AND ?1 = ?2 {ORDER}"), "", ""),
        };
        let mut st = self.tx.prepare_cached(&sql).db(self.path)?;
        let rows = st
            .query_map(params![aid, akind, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .db(self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(self.path)
    }

    /// Marks a document as held by the relay, unless a command changed it
    /// since it was read for the push.
    pub fn mark_synced(&self, id: &str, kind: &str, rev: i64, heads: &str) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached("UPDATE docs SET synced_heads = ?4, dirty = CASE WHEN rev = ?3 THEN 0 ELSE dirty END WHERE id = ?1 AND kind = ?2")
            .db(self.path)?;
        st.execute(params![id, kind, rev, heads]).db(self.path)?;
        Ok(())
    }

    /// Marks a document's local changes as refused by the relay.
    pub fn mark_refused(&self, id: &str, kind: &str, rev: i64, resend_whole: bool) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached(
                "UPDATE docs SET dirty = CASE WHEN rev = ?3 THEN 2 ELSE dirty END,
                    synced_heads = CASE WHEN ?4 THEN NULL ELSE synced_heads END
                 WHERE id = ?1 AND kind = ?2",
            )
            .db(self.path)?;
        st.execute(params![id, kind, rev, resend_whole]).db(self.path)?;
        Ok(())
    }

    /// Stores a document merged with pulled data, keeping its dirty state.
    pub fn save_pulled(&self, id: &str, kind: &str, bytes: &[u8]) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached(
                "INSERT INTO docs (id, kind, bytes, dirty) VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT (id, kind) DO UPDATE SET bytes = excluded.bytes",
            )
            .db(self.path)?;
        st.execute(params![id, kind, bytes]).db(self.path)?;
        Ok(())
    }

    /// Records the relay's known heads of a document with no local changes.
    pub fn set_synced_if_clean(&self, id: &str, kind: &str, heads: &str) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached("UPDATE docs SET synced_heads = ?3 WHERE id = ?1 AND kind = ?2 AND dirty = 0")
            .db(self.path)?;
        st.execute(params![id, kind, heads]).db(self.path)?;
        Ok(())
    }

    /// Marks every document to be pushed whole on the next sync.
    pub fn mark_all_dirty(&self) -> Result<(), NodeError> {
        self.tx.execute("UPDATE docs SET dirty = 1, synced_heads = NULL", []).db(self.path)?;
        Ok(())
    }

    /// Whether a ticket's documents hold changes still on their way to the
    /// relay. (Changes it refused are not: they will never count there, so
    /// they do not hold back its authoritative figures.)
    pub fn has_pending_changes(&self, id: &str) -> Result<bool, NodeError> {
        let n: i64 = self
            .tx
            .query_row("SELECT count(*) FROM docs WHERE id = ?1 AND dirty = 1", [id], |r| r.get(0))
            .db(self.path)?;
        Ok(n > 0)
    }

    /// Sets a ticket's SLA input and columns (the relay's, once synced).
    pub fn set_sla(&self, id: &str, input: &str, cols: &SlaColumns, provisional: bool) -> Result<(), NodeError> {
        let mut st = self
            .tx
            .prepare_cached(
                "UPDATE tickets SET sla_static = ?3, fr_warn = ?4, fr_due = ?5, res_warn = ?6,
                    res_due = ?7, sla_provisional = ?8, sla_late = ?9 WHERE id = ?1 AND ?2 IS NOT NULL",
            )
            .db(self.path)?;
        st.execute(params![
            id,
            input,
            cols.fixed_rank,
            cols.fr_warn,
            cols.fr_due,
            cols.res_warn,
            cols.res_due,
            provisional as i64,
            cols.late_ms
        ])
        .db(self.path)?;
        self.tx
            .prepare_cached("UPDATE ticket_views SET sla_input = ?2 WHERE id = ?1")
            .db(self.path)?
            .execute(params![id, input])
            .db(self.path)?;
        Ok(())
    }

    /// Re-indexes every ticket from its stored JSON and SLA input when the
    /// rows were indexed by an older [`index::INDEX_FORMAT`] (a database
    /// from before the SLA order kept overdue deadlines and before search
    /// text): SLA columns and search text, no document loaded. Returns
    /// whether it did (then the transaction has something to commit).
    pub fn reindex_if_stale(&self, settings: &tickets_core::sla::SlaSettings, now: i64) -> Result<bool, NodeError> {
        let format: i64 = self.get_meta(M_INDEX_FORMAT)?.and_then(|f| f.parse().ok()).unwrap_or(1);
        if format >= index::INDEX_FORMAT {
            return Ok(false);
        }
        let rows: Vec<(String, String, String, bool)> = {
            let mut st = self
                .tx
                .prepare(
                    "SELECT v.id, v.view_json, v.sla_input, t.sla_provisional FROM ticket_views v
                     JOIN tickets t ON t.id = v.id",
                )
                .db(self.path)?;
            let r =
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0))).db(self.path)?;
            r.collect::<Result<Vec<_>, _>>().db(self.path)?
        };
        let mut search =
            self.tx.prepare_cached("INSERT OR REPLACE INTO ticket_search (id, text) VALUES (?1, ?2)").db(self.path)?;
        for (id, view_json, input, provisional) in &rows {
            // A row that cannot be read keeps what it had (nothing stored
            // is lost); the document re-indexes it at its next change.
            if let Ok(text) = tickets_core::search::search_text_of_json(view_json) {
                search.execute(params![id, text]).db(self.path)?;
            }
            if let Ok(i) = serde_json::from_str::<index::SlaInputJson>(input) {
                let cols = index::sla_columns(&i.into(), settings, now);
                self.set_sla(id, input, &cols, *provisional)?;
            }
        }
        self.set_meta(M_INDEX_FORMAT, &index::INDEX_FORMAT.to_string())?;
        Ok(true)
    }

    /// Every ticket's (id, SLA input), to recompute colours after a
    /// settings change.
    pub fn sla_inputs(&self) -> Result<Vec<(String, String, bool)>, NodeError> {
        let mut st = self
            .tx
            .prepare("SELECT v.id, v.sla_input, t.sla_provisional FROM ticket_views v JOIN tickets t ON t.id = v.id")
            .db(self.path)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))).db(self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(self.path)
    }

    /// Removes every internal note from this device: documents, index
    /// copies, and (with secure_delete and a checkpoint) the freed pages.
    pub fn purge_notes(&self) -> Result<usize, NodeError> {
        let n = self.tx.execute("DELETE FROM docs WHERE kind = 'notes'", []).db(self.path)?;
        self.tx.execute("UPDATE ticket_views SET notes_json = NULL WHERE notes_json IS NOT NULL", []).db(self.path)?;
        Ok(n)
    }
}

/// Notices commits to a node's database by any other connection (another
/// process's command, the app's own requests, a sync): SQLite's
/// `PRAGMA data_version` on a connection of its own, which only reads a
/// counter in shared memory, so asking often costs next to nothing.
pub struct ChangeWatch {
    conn: Connection,
    path: PathBuf,
}

impl ChangeWatch {
    /// Opens a read-only connection to the node's database.
    pub fn open(db: &Path) -> Result<ChangeWatch, NodeError> {
        if !db.exists() {
            return Err(NodeError::NotInitialized(db.to_path_buf()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(db, flags).db(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).db(db)?;
        Ok(ChangeWatch { conn, path: db.to_path_buf() })
    }

    /// A number that differs from the last one read whenever another
    /// connection committed in between.
    pub fn version(&self) -> Result<i64, NodeError> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).db(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite picks for a list query, one line per step.
    fn plan(store: &Store, q: &ListQuery) -> Vec<String> {
        let ListSql { filter, tail, args } = q.to_sql(0);
        let sql = format!("EXPLAIN QUERY PLAN SELECT id FROM tickets{filter}{tail}");
        let values: Vec<(String, rusqlite::types::Value)> = args
            .into_iter()
            .filter(|(n, _)| sql.contains(n.as_str()))
            .map(|(n, a)| match a {
                SqlArg::Int(i) => (n, rusqlite::types::Value::Integer(i)),
                SqlArg::Text(t) => (n, rusqlite::types::Value::Text(t)),
            })
            .collect();
        let params: Vec<(&str, &dyn rusqlite::ToSql)> =
            values.iter().map(|(n, v)| (n.as_str(), v as &dyn rusqlite::ToSql)).collect();
        let mut st = store.conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let rows = st.query_map(params.as_slice(), |r| r.get::<_, String>(3));
        rows.and_then(|r| r.collect::<Result<Vec<_>, _>>()).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn the_default_list_order_is_read_from_an_index_not_sorted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let store = Store::create(&dir.path().join("node.db")).unwrap_or_else(|e| panic!("a store: {e}"));
        for q in [
            ListQuery { limit: Some(50), ..ListQuery::default() },
            ListQuery { limit: Some(50), offset: Some(25_000), ..ListQuery::default() },
        ] {
            let steps = plan(&store, &q);
            assert!(!steps.iter().any(|s| s.contains("TEMP B-TREE")), "{q:?} sorts: {steps:?}");
        }
    }

    #[test]
    fn a_search_scans_the_table_once_instead_of_walking_the_creation_index() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let store = Store::create(&dir.path().join("node.db")).unwrap_or_else(|e| panic!("a store: {e}"));
        let q = ListQuery { search: Some("3f2a".into()), limit: Some(50), ..ListQuery::default() };
        let steps = plan(&store, &q);
        // Matches are ranked (subject first) and sorted, never found by
        // walking the creation order and testing each row in turn.
        assert!(steps.iter().any(|s| s.contains("SCAN ticket_search")), "{steps:?}");
        assert!(steps.iter().any(|s| s.contains("TEMP B-TREE FOR ORDER BY")), "{steps:?}");
    }
}

#[cfg(test)]
mod reindex_tests {
    use super::*;
    use tickets_core::model::Priority;
    use tickets_core::sla::{SlaPolicy, SlaSettings, Targets};

    /// A database written before the SLA order kept overdue deadlines: a
    /// breached running clock without its due instant, no search text. On
    /// open it is re-indexed from the stored JSON and SLA input, once.
    #[test]
    fn rows_of_an_older_index_format_are_reindexed_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let path = dir.path().join("node.db");
        let created: i64 = 1_000_000_000_000;
        {
            let mut store = Store::create(&path).unwrap_or_else(|e| panic!("a store: {e}"));
            let tx = store.tx().unwrap_or_else(|e| panic!("tx: {e}"));
            tx.tx
                .execute_batch(&format!(
                    "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank,
                        created_at, updated_at, sla_static) VALUES ('t1', 'wi-fi down', 'urgent', 3, 'c', 'open', 0,
                        {created}, {created}, 3);
                     INSERT INTO ticket_views (id, view_json, sla_input) VALUES ('t1',
                        '{{\"id\":\"t1\",\"subject\":\"Wi-Fi down\",\"description\":\"Café\",\"comments\":[]}}',
                        '{{\"c\":{created},\"fr\":null,\"p\":[[{created},\"urgent\"]],\"s\":[[{created},\"open\"]]}}');
                     DELETE FROM meta WHERE key = 'index_format';"
                ))
                .unwrap_or_else(|e| panic!("an old row: {e}"));
            tx.commit().unwrap_or_else(|e| panic!("commit: {e}"));
        }
        let targets = Targets { first_response_secs: Some(900), resolution_secs: Some(4 * 3600) };
        let policy = SlaPolicy { targets: [(Priority::Urgent, targets)].into(), ..SlaPolicy::default() };
        let settings = SlaSettings { epochs: vec![(0, policy)], skew_ms: 0 };
        let mut store = Store::open(&path).unwrap_or_else(|e| panic!("open: {e}"));
        let tx = store.tx().unwrap_or_else(|e| panic!("tx: {e}"));
        let now = created + 24 * 3_600_000;
        assert_eq!(tx.reindex_if_stale(&settings, now).ok(), Some(true));
        let (due, text): (Option<i64>, String) = tx
            .tx
            .query_row(
                "SELECT t.fr_due, s.text FROM tickets t JOIN ticket_search s ON s.id = t.id WHERE t.id = 't1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("the row: {e}"));
        assert_eq!(due, Some(created + 900_000), "the overdue first response keeps its due instant");
        assert_eq!(text, "wifi down | cafe");
        assert_eq!(tx.reindex_if_stale(&settings, now).ok(), Some(false), "once");
    }
}
