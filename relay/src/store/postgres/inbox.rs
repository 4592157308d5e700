//! The inbox's tables on PostgreSQL (`inboxes`, `inbox_conversations`,
//! `inbox_head`), with several instances writing at once.
//!
//! Exact cursors, as for the ticket log (see [`super::log`]): a
//! conversation's inbox sequence number comes from the one `inbox_head` row,
//! `UPDATE inbox_head SET seq = seq + 1 RETURNING seq`, taken as the last
//! step before the row is written and the transaction commits. The row lock
//! is held to commit, so the next writer gets its number only after this one
//! committed: sequence order is commit order, a rolled-back write gives its
//! number back, and a reader's snapshot that holds number `s` holds every
//! number below it. A device never skips a conversation that another
//! instance commits late.
//!
//! Two writes of one conversation (two instances receiving deliveries of it
//! at once) are serialized by a transaction advisory lock on its id, under
//! which the write checks the sequence number the merge read; the loser
//! reads again and merges again above the seam, so no message is lost.

use super::PgConn;
use crate::store::inbox::{
    ConversationCommit, ConversationWrite, InboxQuery, InboxRef, InboxRow, InboxStore, StoredConversation,
};
use crate::store::StoreError;

/// The lock key space of conversation ids (`pg_advisory_xact_lock(ns, hash)`).
const CONVERSATION_LOCK_NS: i32 = 0x696e_6278; // "inbx"

/// Rows an inbox pull fetches from the server at a time.
const INBOX_ROWS_PER_BATCH: i32 = 100;

/// The NOTIFY channel a conversation's write signals (the payload is the
/// new inbox head); watchers on every instance re-read the head on it.
pub const INBOX_CHANNEL: &str = "tickets_inbox";

/// The inbox's tables (part of schema 2; created by the upgrade from 1).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE inboxes (
    name text PRIMARY KEY,
    kind text NOT NULL,
    team text,
    secret_hash text NOT NULL UNIQUE,
    created_at bigint NOT NULL
);
CREATE TABLE inbox_conversations (
    id text COLLATE "C" PRIMARY KEY,
    inbox text NOT NULL,
    team text,
    active_ms bigint NOT NULL,
    seq bigint NOT NULL UNIQUE,
    json text NOT NULL
);
CREATE INDEX inbox_conversations_inbox ON inbox_conversations (inbox);
CREATE TABLE inbox_head (
    one integer PRIMARY KEY CHECK (one = 1),
    seq bigint NOT NULL
);
INSERT INTO inbox_head VALUES (1, 0);
CREATE INDEX tickets_conversation ON tickets (conversation_id) WHERE conversation_id IS NOT NULL;
"#;

impl InboxStore for PgConn {
    fn add_inbox(
        &mut self,
        name: &str,
        kind: &str,
        team: Option<&str>,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self.run(async |c| {
            c.execute(
                "INSERT INTO inboxes (name, kind, team, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &kind, &team, &secret_hash, &now],
            )
            .await
        })?;
        Ok(n != 0)
    }

    fn remove_inbox(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.run(async |c| c.execute("DELETE FROM inboxes WHERE name = $1", &[&name]).await)?;
        Ok(n != 0)
    }

    fn inboxes(&mut self) -> Result<Vec<InboxRow>, StoreError> {
        let rows = self.run(async |c| {
            c.query(
                "SELECT i.name, i.kind, i.team, (SELECT count(*) FROM inbox_conversations c WHERE c.inbox = i.name)
                 FROM inboxes i ORDER BY i.name",
                &[],
            )
            .await
        })?;
        Ok(rows
            .iter()
            .map(|r| InboxRow {
                name: r.get(0),
                kind: r.get(1),
                team: r.get(2),
                conversations: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    fn inbox_by_secret(&mut self, secret_hash: &str) -> Result<Option<InboxRef>, StoreError> {
        let row = self.run(async |c| {
            c.query_opt("SELECT name, kind, team FROM inboxes WHERE secret_hash = $1", &[&secret_hash]).await
        })?;
        Ok(row.map(|r| InboxRef { name: r.get(0), kind: r.get(1), team: r.get(2) }))
    }

    fn conversation(&mut self, id: &str) -> Result<Option<StoredConversation>, StoreError> {
        let row = self.run(async |c| {
            c.query_opt("SELECT inbox, seq, json FROM inbox_conversations WHERE id = $1", &[&id]).await
        })?;
        Ok(row.map(|r| StoredConversation { inbox: r.get(0), seq: r.get::<_, i64>(1) as u64, json: r.get(2) }))
    }

    fn put_conversation(&mut self, w: &ConversationWrite<'_>) -> Result<ConversationCommit, StoreError> {
        self.run(async |c| {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&CONVERSATION_LOCK_NS, &w.id]).await?;
            // The inbox is read again inside the write: one removed
            // meanwhile stores nothing.
            let still: Option<String> = tx
                .query_opt("SELECT name FROM inboxes WHERE secret_hash = $1", &[&w.secret_hash])
                .await?
                .map(|r| r.get(0));
            if still.as_deref() != Some(w.inbox) {
                tx.rollback().await?;
                return Ok(ConversationCommit::NoInbox);
            }
            let stored: Option<i64> =
                tx.query_opt("SELECT seq FROM inbox_conversations WHERE id = $1", &[&w.id]).await?.map(|r| r.get(0));
            if stored.map(|s| s as u64) != w.expect {
                tx.rollback().await?;
                return Ok(ConversationCommit::Conflict);
            }
            // Last: the number, under the head row's lock until commit.
            let seq: i64 = tx.query_one("UPDATE inbox_head SET seq = seq + 1 RETURNING seq", &[]).await?.get(0);
            tx.execute(
                "INSERT INTO inbox_conversations (id, inbox, team, active_ms, seq, json)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET team = excluded.team, active_ms = excluded.active_ms,
                     seq = excluded.seq, json = excluded.json",
                &[&w.id, &w.inbox, &w.team, &w.active_ms, &seq, &w.json],
            )
            .await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&INBOX_CHANNEL, &seq.to_string()]).await?;
            tx.commit().await?;
            Ok(ConversationCommit::Done(seq as u64))
        })
    }

    fn inbox_head(&mut self) -> Result<u64, StoreError> {
        let seq: i64 = self.run(async |c| Ok(c.query_one("SELECT seq FROM inbox_head", &[]).await?.get(0)))?;
        Ok(seq as u64)
    }

    fn read_inbox(&mut self, q: &InboxQuery<'_>, row: &mut dyn FnMut(u64, String) -> bool) -> Result<u64, StoreError> {
        let open: Vec<&str> = q.open_statuses.to_vec();
        self.run(async |c| {
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let head: i64 = tx.query_one("SELECT seq FROM inbox_head", &[]).await?.get(0);
            // A portal: rows arrive in batches, and the read stops where
            // the page is full (a conversation's JSON may be large).
            let portal = tx
                .bind(
                    "SELECT c.seq, c.json FROM inbox_conversations c
                     WHERE c.seq > $1 AND (c.team IS NULL OR c.team = $2)
                       AND (c.active_ms >= $3 OR EXISTS (SELECT 1 FROM tickets t
                            WHERE t.conversation_id = c.id AND t.status = ANY($5)))
                     ORDER BY c.seq LIMIT $4",
                    &[&(q.after as i64), &q.team, &q.active_since, &(q.scan_max as i64), &open],
                )
                .await?;
            'read: loop {
                let rows = tx.query_portal(&portal, INBOX_ROWS_PER_BATCH).await?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    if !row(r.get::<_, i64>(0) as u64, r.get(1)) {
                        break 'read;
                    }
                }
            }
            tx.commit().await?;
            Ok(head as u64)
        })
    }
}
