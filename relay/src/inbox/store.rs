//! The inbox's SQL (SQLite). See the module docs in [`crate::inbox`].

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tickets_core::inbox::{
    parse_delivery, Delivery, InboxConversation, InboxError as DeliveryError, InboxKind, RECENT_MS,
};
use tickets_core::protocol::{InboxPage, InboxPull, INBOX_PAGE_BYTES_MAX, INBOX_PAGE_CONVERSATIONS_MAX};

use crate::store::{Caller, Conn, RelayStore, StoreError};

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

/// Rows an inbox pull reads at most per page (filtered ones included).
const INBOX_PAGE_SCAN_MAX: i64 = 5000;

#[derive(Debug, thiserror::Error)]
pub enum InboxStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("inbox '{0}' already exists")]
    Exists(String),
    #[error("no inbox named '{0}'")]
    NoInbox(String),
    #[error("no inbox has this URL (removed, or the secret is wrong)")]
    UnknownSecret,
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("conversation '{0}' came through inbox '{1}'; an inbox cannot change another's conversation")]
    OtherInbox(String, String),
}

fn db(path: &std::path::Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Db { path: path.to_path_buf(), source }
}

/// Creates the inbox's tables when missing.
/// The SQLite connection under `conn`: the inbox's tables live there only,
/// for now (a PostgreSQL relay answers [`StoreError::InboxNeedsSqlite`]).
fn sqlite<S: RelayStore + ?Sized>(conn: &mut S) -> Result<&mut Conn, StoreError> {
    conn.as_sqlite().ok_or(StoreError::InboxNeedsSqlite)
}

pub fn schema(c: &Connection, path: &std::path::Path) -> Result<(), StoreError> {
    c.execute_batch(SCHEMA).map_err(db(path))
}

/// A new webhook secret: `wh_` and 256 random bits in hex.
pub fn new_secret() -> String {
    let token = crate::auth::new_token();
    format!("wh_{}", token.trim_start_matches("tk_"))
}

/// An inbox's name goes into conversation ids (`chatwoot:NAME:ID`): letters,
/// digits, '.', '_' and '-' only.
pub fn check_inbox_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(format!("inbox name '{name}' must be 1 to 64 letters, digits, '.', '_' or '-'"));
    }
    Ok(n.to_string())
}

/// An inbox as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct InboxRow {
    pub name: String,
    pub kind: String,
    pub team: Option<String>,
    pub conversations: u64,
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored; `changed` is false for a repeat.
    Stored {
        id: String,
        changed: bool,
        seq: u64,
    },
    Ignored {
        event: String,
    },
}

pub fn add_inbox<S: RelayStore + ?Sized>(
    conn: &mut S,
    name: &str,
    kind: InboxKind,
    team: Option<&str>,
    secret_hash: &str,
    now: i64,
) -> Result<(), InboxStoreError> {
    let (c, path) = sqlite(conn)?.inbox_sql();
    let n = c
        .execute(
            "INSERT INTO inboxes (name, kind, team, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![name, kind.as_str(), team, secret_hash, now],
        )
        .map_err(db(path))?;
    if n == 0 {
        return Err(InboxStoreError::Exists(name.to_string()));
    }
    Ok(())
}

/// Removes an inbox: its URL stops working at once. Its conversations stay
/// until they age out.
pub fn remove_inbox<S: RelayStore + ?Sized>(conn: &mut S, name: &str) -> Result<(), InboxStoreError> {
    let (c, path) = sqlite(conn)?.inbox_sql();
    let n = c.execute("DELETE FROM inboxes WHERE name = ?1", [name]).map_err(db(path))?;
    if n == 0 {
        return Err(InboxStoreError::NoInbox(name.to_string()));
    }
    Ok(())
}

pub fn inboxes<S: RelayStore + ?Sized>(conn: &mut S) -> Result<Vec<InboxRow>, InboxStoreError> {
    let (c, path) = sqlite(conn)?.inbox_sql();
    let mut st = c
        .prepare(
            "SELECT i.name, i.kind, i.team, (SELECT count(*) FROM inbox_conversations c WHERE c.inbox = i.name)
             FROM inboxes i ORDER BY i.name",
        )
        .map_err(db(path))?;
    let rows = st
        .query_map([], |r| {
            Ok(InboxRow {
                name: r.get(0)?,
                kind: r.get(1)?,
                team: r.get(2)?,
                conversations: r.get::<_, i64>(3)? as u64,
            })
        })
        .map_err(db(path))?;
    Ok(rows.collect::<Result<Vec<_>, _>>().map_err(db(path))?)
}

/// One webhook delivery: finds the inbox by its secret, reads the body as
/// that inbox's kind, merges it into the stored conversation and gives the
/// conversation the next inbox sequence number if anything changed. Nothing
/// is stored from a refused delivery.
pub fn ingest<S: RelayStore + ?Sized>(
    conn: &mut S,
    secret_hash: &str,
    body: &[u8],
    now: i64,
) -> Result<Ingested, InboxStoreError> {
    let gate = sqlite(conn)?.inbox_gate();
    let (c, path) = sqlite(conn)?.inbox_sql();
    let inbox: Option<(String, String, Option<String>)> = c
        .query_row("SELECT name, kind, team FROM inboxes WHERE secret_hash = ?1", [secret_hash], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(db(path))?;
    let Some((name, kind, team)) = inbox else { return Err(InboxStoreError::UnknownSecret) };
    let kind = InboxKind::parse(&kind).ok_or_else(|| StoreError::Damaged(format!("inbox {name} has kind {kind}")))?;
    let update = match parse_delivery(kind, &name, body)? {
        Delivery::Update(u) => u,
        Delivery::Ignored { event } => return Ok(Ingested::Ignored { event }),
    };
    let _writing = gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db(path))?;
    // The inbox is read again under the write lock: one removed meanwhile
    // stores nothing.
    let still: Option<String> = tx
        .query_row("SELECT name FROM inboxes WHERE secret_hash = ?1", [secret_hash], |r| r.get(0))
        .optional()
        .map_err(db(path))?;
    if still.as_deref() != Some(name.as_str()) {
        return Err(InboxStoreError::UnknownSecret);
    }
    let stored: Option<(String, i64, String)> = tx
        .query_row("SELECT inbox, seq, json FROM inbox_conversations WHERE id = ?1", [&update.conversation_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(db(path))?;
    let mut conv = match stored {
        Some((owner, _, _)) if owner != name => {
            return Err(InboxStoreError::OtherInbox(update.conversation_id.clone(), owner))
        }
        Some((_, seq, json)) => match serde_json::from_str::<InboxConversation>(&json) {
            Ok(c) => (c, Some(seq)),
            Err(e) => return Err(StoreError::Damaged(format!("conversation {}: {e}", update.conversation_id)).into()),
        },
        None => (InboxConversation::new(&update.conversation_id, &name, now), None),
    };
    let changed = conv.0.merge(&update) || conv.1.is_none();
    if !changed {
        return Ok(Ingested::Stored { id: update.conversation_id, changed: false, seq: conv.1.unwrap_or(0) as u64 });
    }
    conv.0.active_ms = now;
    let json = serde_json::to_string(&conv.0).map_err(|e| StoreError::Damaged(e.to_string()))?;
    let seq: i64 = tx
        .query_row("SELECT coalesce(max(seq), 0) + 1 FROM inbox_conversations", [], |r| r.get(0))
        .map_err(db(path))?;
    tx.execute(
        "INSERT INTO inbox_conversations (id, inbox, team, active_ms, seq, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET team = excluded.team, active_ms = excluded.active_ms,
             seq = excluded.seq, json = excluded.json",
        params![conv.0.id, name, team, now, seq, json],
    )
    .map_err(db(path))?;
    tx.commit().map_err(db(path))?;
    Ok(Ingested::Stored { id: update.conversation_id, changed: true, seq: seq as u64 })
}

/// The inbox's head: the latest inbox sequence number.
pub fn head<S: RelayStore + ?Sized>(conn: &mut S) -> Result<u64, StoreError> {
    let Some(conn) = conn.as_sqlite() else {
        return Ok(0); // no inbox on PostgreSQL yet: nothing to wait for
    };
    let (c, path) = conn.inbox_sql();
    let n: Option<i64> = c.query_row("SELECT max(seq) FROM inbox_conversations", [], |r| r.get(0)).map_err(db(path))?;
    Ok(n.unwrap_or(0) as u64)
}

/// The conversations changed after the device's cursor that its agent may
/// have: of the last [`RECENT_MS`] or with an open ticket, and of a
/// team-scoped inbox only for that team's agents and leads. Rows it may not
/// have move the cursor without being sent, so an idle pull reads nothing.
pub fn pull<S: RelayStore + ?Sized>(
    conn: &mut S,
    caller: &Caller,
    req: &InboxPull,
    now: i64,
) -> Result<InboxPage, StoreError> {
    let (c, path) = sqlite(conn)?.inbox_sql();
    // One read snapshot: the head read at the end is the one the page saw.
    let tx = c.transaction().map_err(db(path))?;
    let mut st = tx
        .prepare_cached(
            "SELECT c.seq, c.json FROM inbox_conversations c
             WHERE c.seq > ?1 AND (c.team IS NULL OR c.team = ?2)
               AND (c.active_ms >= ?3 OR EXISTS (SELECT 1 FROM tickets t
                    WHERE t.conversation_id = c.id AND t.status IN ('open', 'in-progress')))
             ORDER BY c.seq LIMIT ?4",
        )
        .map_err(db(path))?;
    let since = now.saturating_sub(RECENT_MS);
    let mut rows =
        st.query(params![req.cursor as i64, caller.agent.team, since, INBOX_PAGE_SCAN_MAX]).map_err(db(path))?;
    let mut page = InboxPage { conversations: Vec::new(), cursor: req.cursor, more: false };
    let mut bytes = 0usize;
    let mut read = 0i64;
    while let Some(r) = rows.next().map_err(db(path))? {
        if page.conversations.len() >= INBOX_PAGE_CONVERSATIONS_MAX || bytes >= INBOX_PAGE_BYTES_MAX {
            page.more = true;
            break;
        }
        read += 1;
        let seq: i64 = r.get(0).map_err(db(path))?;
        let json: String = r.get(1).map_err(db(path))?;
        page.cursor = seq as u64;
        bytes += json.len();
        match serde_json::from_str::<InboxConversation>(&json) {
            Ok(conv) => page.conversations.push(conv),
            Err(e) => tracing::warn!(seq, error = %e, "inbox conversation unreadable; skipped"),
        }
    }
    drop(rows);
    drop(st);
    if read >= INBOX_PAGE_SCAN_MAX {
        page.more = true;
    }
    if !page.more {
        // Everything after the cursor was filtered out or sent: the device
        // holds everything it may have up to the head.
        let head: Option<i64> =
            tx.query_row("SELECT max(seq) FROM inbox_conversations", [], |r| r.get(0)).map_err(db(path))?;
        page.cursor = page.cursor.max(head.unwrap_or(0) as u64);
    }
    tx.commit().map_err(db(path))?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tickets_core::inbox::RECENT_MS;

    use super::*;
    use crate::store::{AgentRow, Db};

    fn caller(team: Option<&str>) -> Caller {
        Caller {
            agent: AgentRow {
                name: "a".into(),
                role: "agent".into(),
                team: team.map(str::to_string),
                internal_notes: false,
                revoked: false,
                devices: 0,
            },
            actors: HashSet::new(),
        }
    }

    fn message(conv: &str, msg: u32) -> Vec<u8> {
        serde_json::json!({"id": conv, "messages": [
            {"id": msg.to_string(), "role": "customer", "text": format!("m{msg}"), "at": "2026-01-01T00:00:00Z"}]})
        .to_string()
        .into_bytes()
    }

    fn ids(page: &InboxPage) -> Vec<&str> {
        page.conversations.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn devices_get_recent_conversations_of_their_team_and_an_idle_pull_reads_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(&dir.path().join("r.db"), true).expect("db");
        let mut c = db.conn().expect("conn");
        add_inbox(&mut c, "all", InboxKind::Generic, None, "h-all", 0).expect("add");
        add_inbox(&mut c, "sales", InboxKind::Generic, Some("sales"), "h-sales", 0).expect("add");
        let day = 86_400_000;
        ingest(&mut c, "h-all", &message("old", 1), 0).expect("old");
        ingest(&mut c, "h-all", &message("new", 1), 10 * day).expect("new");
        ingest(&mut c, "h-sales", &message("lead", 1), 10 * day).expect("sales");
        let now = 15 * day;
        assert!(now > RECENT_MS && now - 10 * day < RECENT_MS);
        let field = pull(&mut c, &caller(Some("field")), &InboxPull { cursor: 0 }, now).expect("pull");
        assert_eq!(ids(&field), ["new"], "not the aged-out one, not another team's");
        let sales = pull(&mut c, &caller(Some("sales")), &InboxPull { cursor: 0 }, now).expect("pull");
        assert_eq!(ids(&sales), ["new", "lead"]);
        assert_eq!((field.cursor, sales.cursor), (3, 3), "the cursor passes what was filtered out");
        let idle = pull(&mut c, &caller(Some("sales")), &InboxPull { cursor: 3 }, now).expect("pull");
        assert!(idle.conversations.is_empty() && !idle.more && idle.cursor == 3);
        // A repeat changes nothing, not even the sequence.
        assert_eq!(
            ingest(&mut c, "h-sales", &message("lead", 1), now).expect("repeat"),
            Ingested::Stored { id: "lead".into(), changed: false, seq: 3 }
        );
        // A new message moves the conversation after the cursor.
        ingest(&mut c, "h-sales", &message("lead", 2), now).expect("more");
        let next = pull(&mut c, &caller(Some("sales")), &InboxPull { cursor: 3 }, now).expect("pull");
        assert_eq!((ids(&next), next.cursor), (vec!["lead"], 4));
        assert_eq!(next.conversations[0].messages.len(), 2);
        // An inbox cannot write into another's conversation.
        assert!(matches!(ingest(&mut c, "h-all", &message("lead", 9), now), Err(InboxStoreError::OtherInbox(..))));
    }
}
