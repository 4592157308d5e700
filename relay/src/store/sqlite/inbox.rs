//! The inbox's tables on SQLite (`inboxes`, `inbox_conversations`).
//!
//! The conversation table is its own log: every change of a conversation
//! gives its row the next inbox sequence number, allocated inside the
//! writing transaction under the gate (SQLite has one writer at a time), so
//! numbers are handed out in commit order and a cursor never skips a row.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Conn, Ctx};
use crate::store::inbox::{
    ConversationCommit, ConversationWrite, InboxQuery, InboxRef, InboxRow, InboxStore, StoredConversation,
};
use crate::store::StoreError;

/// The inbox's tables, created when missing (called from `Db::open`).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inboxes (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    team TEXT,
    -- SHA-256 of the secret in the webhook URL (shown once, like a token).
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_conversations (
    id TEXT PRIMARY KEY,
    inbox TEXT NOT NULL,
    -- The inbox's team when it last changed: only that team's devices get it.
    team TEXT,
    -- When the relay last received something new for it.
    active_ms INTEGER NOT NULL,
    -- The inbox sequence number of its latest change (the devices' cursor).
    seq INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS inbox_conversations_seq ON inbox_conversations (seq);
CREATE INDEX IF NOT EXISTS tickets_conversation ON tickets (conversation_id) WHERE conversation_id IS NOT NULL;
";

/// Creates the inbox's tables when missing.
pub(super) fn schema(c: &Connection, path: &std::path::Path) -> Result<(), StoreError> {
    c.execute_batch(SCHEMA).db(path)
}

impl InboxStore for Conn {
    fn add_inbox(
        &mut self,
        name: &str,
        kind: &str,
        team: Option<&str>,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "INSERT INTO inboxes (name, kind, team, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO NOTHING",
                params![name, kind, team, secret_hash, now],
            )
            .db(&self.path)?;
        Ok(n != 0)
    }

    fn remove_inbox(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.c.execute("DELETE FROM inboxes WHERE name = ?1", [name]).db(&self.path)?;
        Ok(n != 0)
    }

    fn inboxes(&mut self) -> Result<Vec<InboxRow>, StoreError> {
        let mut st = self
            .c
            .prepare(
                "SELECT i.name, i.kind, i.team, (SELECT count(*) FROM inbox_conversations c WHERE c.inbox = i.name)
                 FROM inboxes i ORDER BY i.name",
            )
            .db(&self.path)?;
        let rows = st
            .query_map([], |r| {
                Ok(InboxRow {
                    name: r.get(0)?,
                    kind: r.get(1)?,
                    team: r.get(2)?,
                    conversations: r.get::<_, i64>(3)? as u64,
                })
            })
            .db(&self.path)?;
        rows.collect::<Result<Vec<_>, _>>().db(&self.path)
    }

    fn inbox_by_secret(&mut self, secret_hash: &str) -> Result<Option<InboxRef>, StoreError> {
        self.c
            .query_row("SELECT name, kind, team FROM inboxes WHERE secret_hash = ?1", [secret_hash], |r| {
                Ok(InboxRef { name: r.get(0)?, kind: r.get(1)?, team: r.get(2)? })
            })
            .optional()
            .db(&self.path)
    }

    fn conversation(&mut self, id: &str) -> Result<Option<StoredConversation>, StoreError> {
        self.c
            .query_row("SELECT inbox, seq, json FROM inbox_conversations WHERE id = ?1", [id], |r| {
                Ok(StoredConversation { inbox: r.get(0)?, seq: r.get::<_, i64>(1)? as u64, json: r.get(2)? })
            })
            .optional()
            .db(&self.path)
    }

    fn put_conversation(&mut self, w: &ConversationWrite<'_>) -> Result<ConversationCommit, StoreError> {
        let gate = self.gate.clone();
        let _writing = gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = self.path.clone();
        let tx = self.c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).db(&path)?;
        // The inbox is read again under the write lock: one removed
        // meanwhile stores nothing.
        let still: Option<String> = tx
            .query_row("SELECT name FROM inboxes WHERE secret_hash = ?1", [w.secret_hash], |r| r.get(0))
            .optional()
            .db(&path)?;
        if still.as_deref() != Some(w.inbox) {
            return Ok(ConversationCommit::NoInbox);
        }
        let stored: Option<i64> = tx
            .query_row("SELECT seq FROM inbox_conversations WHERE id = ?1", [w.id], |r| r.get(0))
            .optional()
            .db(&path)?;
        if stored.map(|s| s as u64) != w.expect {
            return Ok(ConversationCommit::Conflict);
        }
        let seq: i64 =
            tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM inbox_conversations", [], |r| r.get(0)).db(&path)?;
        tx.execute(
            "INSERT INTO inbox_conversations (id, inbox, team, active_ms, seq, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET team = excluded.team, active_ms = excluded.active_ms,
                 seq = excluded.seq, json = excluded.json",
            params![w.id, w.inbox, w.team, w.active_ms, seq, w.json],
        )
        .db(&path)?;
        tx.commit().db(&path)?;
        Ok(ConversationCommit::Done(seq as u64))
    }

    fn inbox_head(&mut self) -> Result<u64, StoreError> {
        let n: Option<i64> =
            self.c.query_row("SELECT max(seq) FROM inbox_conversations", [], |r| r.get(0)).db(&self.path)?;
        Ok(n.unwrap_or(0) as u64)
    }

    fn read_inbox(&mut self, q: &InboxQuery<'_>, row: &mut dyn FnMut(u64, String) -> bool) -> Result<u64, StoreError> {
        let path = self.path.clone();
        // One read snapshot: the head read at the end is the one the rows saw.
        let tx = self.c.transaction().db(&path)?;
        let open = serde_json::to_string(q.open_statuses).map_err(|e| StoreError::Damaged(e.to_string()))?;
        {
            let mut st = tx
                .prepare_cached(
                    "SELECT c.seq, c.json FROM inbox_conversations c
                     WHERE c.seq > ?1 AND (c.team IS NULL OR c.team = ?2)
                       AND (c.active_ms >= ?3 OR EXISTS (SELECT 1 FROM tickets t
                            WHERE t.conversation_id = c.id AND t.status IN (SELECT value FROM json_each(?5))))
                     ORDER BY c.seq LIMIT ?4",
                )
                .db(&path)?;
            let mut rows =
                st.query(params![q.after as i64, q.team, q.active_since, q.scan_max as i64, open]).db(&path)?;
            while let Some(r) = rows.next().db(&path)? {
                let seq: i64 = r.get(0).db(&path)?;
                let json: String = r.get(1).db(&path)?;
                if !row(seq as u64, json) {
                    break;
                }
            }
        }
        let head: Option<i64> = tx.query_row("SELECT max(seq) FROM inbox_conversations", [], |r| r.get(0)).db(&path)?;
        tx.commit().db(&path)?;
        Ok(head.unwrap_or(0) as u64)
    }
}
