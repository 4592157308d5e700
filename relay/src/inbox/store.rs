//! The inbox's operations on any backend: webhook ingest (read, merge in
//! [`tickets_core::inbox`], write if unchanged since read, else read and
//! merge again), the operator's commands, and the pull page with its scope
//! rules. The SQL lives behind the seam ([`crate::store::InboxStore`]). See
//! the module docs in [`crate::inbox`].

use tickets_core::inbox::{
    generic_id, parse_delivery, Delivery, InboxConversation, InboxError as DeliveryError, InboxKind, RECENT_MS,
};
use tickets_core::protocol::{InboxPage, InboxPull, INBOX_PAGE_BYTES_MAX, INBOX_PAGE_CONVERSATIONS_MAX};

pub use crate::store::inbox::InboxRow;
use crate::store::inbox::{ConversationCommit, ConversationWrite, InboxQuery};
use crate::store::{Caller, RelayStore, StoreError};

/// Rows an inbox pull reads at most per page (filtered ones included).
const INBOX_PAGE_SCAN_MAX: usize = 5000;
/// Times a delivery reads and merges again when another write of its
/// conversation landed between its read and its write.
pub const INGEST_ATTEMPTS_MAX: usize = 16;
/// A ticket in one of these statuses keeps its conversation on devices
/// after the conversation aged out.
const OPEN_STATUSES: &[&str] = &["open", "in-progress"];

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
    if !conn.add_inbox(name, kind.as_str(), team, secret_hash, now)? {
        return Err(InboxStoreError::Exists(name.to_string()));
    }
    Ok(())
}

/// Removes an inbox: its URL stops working at once. Its conversations stay
/// until they age out.
pub fn remove_inbox<S: RelayStore + ?Sized>(conn: &mut S, name: &str) -> Result<(), InboxStoreError> {
    if !conn.remove_inbox(name)? {
        return Err(InboxStoreError::NoInbox(name.to_string()));
    }
    Ok(())
}

pub fn inboxes<S: RelayStore + ?Sized>(conn: &mut S) -> Result<Vec<InboxRow>, InboxStoreError> {
    Ok(conn.inboxes()?)
}

/// One webhook delivery: finds the inbox by its secret, reads the body as
/// that inbox's kind, merges it into the stored conversation and gives the
/// conversation the next inbox sequence number if anything changed. When
/// another delivery of the conversation (on this instance or another) wrote
/// it between this one's read and its write, this one reads and merges
/// again, so no message is lost and a repeat is stored once. Nothing is
/// stored from a refused delivery.
pub fn ingest<S: RelayStore + ?Sized>(
    conn: &mut S,
    secret_hash: &str,
    body: &[u8],
    now: i64,
) -> Result<Ingested, InboxStoreError> {
    ingest_naming(conn, secret_hash, body, now, &mut None)
}

/// [`ingest`], which also sets `inbox` to the name of the inbox the secret
/// belongs to as soon as it is known: the request log names the inbox,
/// never the secret in the URL.
pub fn ingest_naming<S: RelayStore + ?Sized>(
    conn: &mut S,
    secret_hash: &str,
    body: &[u8],
    now: i64,
    inbox_name: &mut Option<String>,
) -> Result<Ingested, InboxStoreError> {
    let Some(inbox) = conn.inbox_by_secret(secret_hash)? else { return Err(InboxStoreError::UnknownSecret) };
    let name = inbox.name;
    *inbox_name = Some(name.clone());
    let kind = InboxKind::parse(&inbox.kind)
        .ok_or_else(|| StoreError::Damaged(format!("inbox {name} has kind {}", inbox.kind)))?;
    let mut update = match parse_delivery(kind, &name, body)? {
        Delivery::Update(u) => u,
        Delivery::Ignored { event } => return Ok(Ingested::Ignored { event }),
    };
    if let Some(id) = legacy_generic_id(conn, kind, &name, &update.conversation_id)? {
        update.conversation_id = id;
    }
    for _ in 0..INGEST_ATTEMPTS_MAX {
        let stored = conn.conversation(&update.conversation_id)?;
        let (mut conv, expect) = match stored {
            Some(s) if s.inbox != name => {
                return Err(InboxStoreError::OtherInbox(update.conversation_id.clone(), s.inbox))
            }
            Some(s) => match serde_json::from_str::<InboxConversation>(&s.json) {
                Ok(c) => (c, Some(s.seq)),
                Err(e) => {
                    return Err(StoreError::Damaged(format!("conversation {}: {e}", update.conversation_id)).into())
                }
            },
            None => (InboxConversation::new(&update.conversation_id, &name, now), None),
        };
        let changed = conv.merge(&update) || expect.is_none();
        if !changed {
            return Ok(Ingested::Stored { id: update.conversation_id, changed: false, seq: expect.unwrap_or(0) });
        }
        conv.active_ms = now;
        let json = serde_json::to_string(&conv).map_err(|e| StoreError::Damaged(e.to_string()))?;
        let write = ConversationWrite {
            id: &update.conversation_id,
            secret_hash,
            inbox: &name,
            team: inbox.team.as_deref(),
            active_ms: now,
            json: &json,
            expect,
        };
        match conn.put_conversation(&write)? {
            ConversationCommit::Done(seq) => {
                return Ok(Ingested::Stored { id: update.conversation_id, changed: true, seq })
            }
            ConversationCommit::NoInbox => return Err(InboxStoreError::UnknownSecret),
            ConversationCommit::Conflict => continue,
        }
    }
    Err(StoreError::Contended.into())
}

/// A generic inbox's conversation stored before ids had namespaces keeps
/// its id (`ID`, not `generic:NAME:ID`), so its later messages join it and
/// its ticket stays linked: the bare id is used when this inbox already
/// holds a conversation under it and none under the namespaced id.
fn legacy_generic_id<S: RelayStore + ?Sized>(
    conn: &mut S,
    kind: InboxKind,
    inbox: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let Some(bare) = id.strip_prefix(&generic_id(inbox, "")) else { return Ok(None) };
    if kind != InboxKind::Generic || conn.conversation(id)?.is_some() {
        return Ok(None);
    }
    Ok(conn.conversation(bare)?.filter(|s| s.inbox == inbox).map(|_| bare.to_string()))
}

/// The inbox's head: the latest inbox sequence number.
pub fn head<S: RelayStore + ?Sized>(conn: &mut S) -> Result<u64, StoreError> {
    conn.inbox_head()
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
    let q = InboxQuery {
        after: req.cursor,
        team: caller.agent.team.as_deref(),
        active_since: now.saturating_sub(RECENT_MS),
        open_statuses: OPEN_STATUSES,
        scan_max: INBOX_PAGE_SCAN_MAX,
    };
    let mut page = InboxPage { conversations: Vec::new(), cursor: req.cursor, more: false };
    let mut bytes = 0usize;
    let mut read = 0usize;
    let head = conn.read_inbox(&q, &mut |seq, json| {
        if page.conversations.len() >= INBOX_PAGE_CONVERSATIONS_MAX || bytes >= INBOX_PAGE_BYTES_MAX {
            page.more = true;
            return false;
        }
        read += 1;
        page.cursor = seq;
        bytes += json.len();
        match serde_json::from_str::<InboxConversation>(&json) {
            Ok(conv) => page.conversations.push(conv),
            Err(e) => tracing::warn!(seq, error = %e, "inbox conversation unreadable; skipped"),
        }
        true
    })?;
    if read >= INBOX_PAGE_SCAN_MAX {
        page.more = true;
    }
    if !page.more {
        // Everything after the cursor was filtered out or sent: the device
        // holds everything it may have up to the head (of the same snapshot).
        page.cursor = page.cursor.max(head);
    }
    Ok(page)
}
