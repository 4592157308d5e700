//! The node's copy of the inbox (SPEC §10): recent conversations pulled
//! from the relay with their own cursor, kept so that an agent can make a
//! ticket from one offline. The SQL lives here, on the node's transaction,
//! in a table of its own.

use rusqlite::{params, Connection, OptionalExtension};
use tickets_core::inbox::{InboxConversation, RECENT_MS};
use tickets_core::protocol::InboxPage;

use crate::error::NodeError;
use crate::store::{DbContext, Tx};

/// The inbox's cursor in `meta`.
pub(crate) const M_INBOX_CURSOR: &str = "inbox_cursor";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox_conversations (
    id TEXT PRIMARY KEY,
    -- When the relay last received something new for it (relay ms).
    active_ms INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_conversations_active ON inbox_conversations (active_ms);
";

/// Creates the inbox's table when missing (called when the store opens).
pub(crate) fn schema(c: &Connection, path: &std::path::Path) -> Result<(), NodeError> {
    c.execute_batch(SCHEMA).db(path)
}

/// A conversation as `tickets inbox` lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub conversation: InboxConversation,
    /// The ticket made from it on this device, if any.
    pub ticket: Option<String>,
}

impl Listed {
    /// The object `tickets inbox --json` lists and the app's `GET
    /// /v1/inbox` answers: who, where, the last message, the age at `now`
    /// (ms), the ticket made from it here, and every message.
    pub fn to_json(&self, now: i64) -> serde_json::Value {
        let c = &self.conversation;
        let message = |m: &tickets_core::inbox::InboxMessage| {
            serde_json::json!({
                "id": m.id, "role": m.role, "from": m.from, "text": m.text,
                "at": tickets_core::time::iso_i64(m.at_ms),
            })
        };
        serde_json::json!({
            "id": c.id,
            "inbox": c.inbox,
            "customer": c.customer,
            "channel": c.channel,
            "status": c.status,
            "last_message": c.last_message().map(|m| serde_json::json!({
                "role": m.role, "from": m.from, "text": m.text,
                "at": tickets_core::time::iso_i64(m.at_ms),
            })),
            "last_activity_at": tickets_core::time::iso_i64(c.active_ms),
            "age_secs": (now.saturating_sub(c.active_ms) / 1000).max(0),
            "ticket": self.ticket,
            "messages_count": c.messages.len(),
            "messages": c.messages.iter().map(message).collect::<Vec<_>>(),
        })
    }
}

impl Tx<'_> {
    pub fn inbox_cursor(&self) -> Result<u64, NodeError> {
        Ok(self.get_meta(M_INBOX_CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0))
    }

    /// Stores a pulled page (each conversation whole, replacing this
    /// device's copy) and its cursor.
    pub fn apply_inbox_page(&self, page: &InboxPage) -> Result<(), NodeError> {
        let (tx, path) = self.inbox_sql();
        let mut st = tx
            .prepare_cached(
                "INSERT INTO inbox_conversations (id, active_ms, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET active_ms = excluded.active_ms, json = excluded.json",
            )
            .db(path)?;
        for c in &page.conversations {
            let json = serde_json::to_string(c).map_err(|e| NodeError::Corrupt {
                path: path.to_path_buf(),
                message: format!("inbox conversation {}: {e}", c.id),
            })?;
            st.execute(params![c.id, c.active_ms, json]).db(path)?;
        }
        self.set_meta(M_INBOX_CURSOR, &page.cursor.to_string())
    }

    /// Forgets conversations that aged out: nothing new for
    /// [`RECENT_MS`] and no open ticket made from them here.
    pub fn prune_inbox(&self, now: i64) -> Result<usize, NodeError> {
        let (tx, path) = self.inbox_sql();
        tx.execute(
            "DELETE FROM inbox_conversations WHERE active_ms < ?1 AND NOT EXISTS (
                SELECT 1 FROM tickets t WHERE t.conversation_id = inbox_conversations.id
                AND t.status IN ('open', 'in-progress'))",
            [now.saturating_sub(RECENT_MS)],
        )
        .db(path)
    }

    /// The conversations this device holds, latest activity first.
    pub fn inbox(&self) -> Result<Vec<Listed>, NodeError> {
        let (tx, path) = self.inbox_sql();
        let mut st = tx
            .prepare(
                "SELECT c.json, (SELECT t.id FROM tickets t WHERE t.conversation_id = c.id ORDER BY t.created_at LIMIT 1)
                 FROM inbox_conversations c ORDER BY c.active_ms DESC, c.id",
            )
            .db(path)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))).db(path)?;
        let mut out = Vec::new();
        for row in rows {
            let (json, ticket) = row.db(path)?;
            // A row this version cannot read is skipped, not fatal.
            if let Ok(conversation) = serde_json::from_str::<InboxConversation>(&json) {
                out.push(Listed { conversation, ticket });
            }
        }
        Ok(out)
    }

    /// One conversation of the inbox, by its id.
    pub fn inbox_conversation(&self, id: &str) -> Result<Option<InboxConversation>, NodeError> {
        let (tx, path) = self.inbox_sql();
        let json: Option<String> = tx
            .query_row("SELECT json FROM inbox_conversations WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .db(path)?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| NodeError::Corrupt {
                path: path.to_path_buf(),
                message: format!("inbox conversation {id}: {e}"),
            })
        })
        .transpose()
    }
}

impl crate::node::Node {
    /// The inbox conversations this device holds, latest first.
    pub fn inbox(&mut self) -> Result<Vec<Listed>, NodeError> {
        let tx = self.store_tx()?;
        let out = tx.inbox()?;
        tx.commit()?;
        Ok(out)
    }

    /// One inbox conversation, as the §1.2 object a ticket is made from
    /// (the same prefill as its file would give).
    pub fn inbox_conversation(&mut self, id: &str) -> Result<Option<InboxConversation>, NodeError> {
        let tx = self.store_tx()?;
        let out = tx.inbox_conversation(id.trim())?;
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use tickets_core::inbox::{InboxConversation, RECENT_MS};
    use tickets_core::protocol::InboxPage;

    use crate::store::Store;

    #[test]
    fn aged_out_conversations_are_pruned_unless_a_ticket_is_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::create(&dir.path().join("node.db")).expect("store");
        let tx = store.tx().expect("tx");
        let conv = |id: &str, at: i64| InboxConversation::new(id, "i", at);
        let page = InboxPage {
            conversations: vec![conv("old", 0), conv("kept", 0), conv("new", RECENT_MS)],
            cursor: 3,
            more: false,
        };
        tx.apply_inbox_page(&page).expect("apply");
        tx.inbox_sql()
            .0
            .execute(
                "INSERT INTO tickets (id, subject_lc, priority, priority_rank, category, status, status_rank,
                    created_at, updated_at, conversation_id) VALUES ('t', 's', 'high', 3, 'c', 'open', 0, 0, 0, 'kept')",
                [],
            )
            .expect("a ticket");
        assert_eq!(tx.prune_inbox(RECENT_MS + 1).expect("prune"), 1);
        let left: Vec<String> = tx.inbox().expect("list").into_iter().map(|l| l.conversation.id).collect();
        assert_eq!(left, ["new", "kept"]);
        assert_eq!(tx.inbox_cursor().expect("cursor"), 3);
    }
}
