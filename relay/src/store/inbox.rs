//! The inbox's verbs of the storage seam (SPEC §10): inboxes, one
//! conversation's read and conditional write, the inbox head and the pull
//! read. Parsing, merging (in [`tickets_core::inbox`]), the re-merge on a
//! conflict and the scope rules (recent or with an open ticket, team) live
//! once, above, in [`crate::inbox::store`]; a backend stores and queries.
//!
//! Invariant every backend keeps, as for the ticket log: conversations get
//! their inbox sequence numbers in commit order without gaps, so a reader
//! whose snapshot holds number `n` holds every change up to `n`.

use serde::Serialize;

use super::StoreError;

/// An inbox as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct InboxRow {
    pub name: String,
    pub kind: String,
    pub team: Option<String>,
    pub conversations: u64,
}

/// An inbox as a delivery finds it by its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRef {
    pub name: String,
    pub kind: String,
    pub team: Option<String>,
}

/// A conversation as stored: the inbox it came through, the inbox sequence
/// number of its latest change, and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConversation {
    pub inbox: String,
    pub seq: u64,
    pub json: String,
}

/// A merged conversation to store, if it is still as it was read.
#[derive(Debug, Clone)]
pub struct ConversationWrite<'a> {
    pub id: &'a str,
    /// The delivering inbox's secret hash: looked up again inside the write,
    /// so an inbox removed meanwhile stores nothing.
    pub secret_hash: &'a str,
    pub inbox: &'a str,
    pub team: Option<&'a str>,
    pub active_ms: i64,
    pub json: &'a str,
    /// The sequence number it had when read (`None`: it did not exist).
    pub expect: Option<u64>,
}

/// What [`InboxStore::put_conversation`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationCommit {
    /// Written with this inbox sequence number.
    Done(u64),
    /// Nothing written: the conversation changed since it was read.
    Conflict,
    /// Nothing written: no inbox has this secret any more.
    NoInbox,
}

/// What an inbox pull reads: conversations changed after `after`, of the
/// team `team` or of no team, active since `active_since` or with a ticket
/// in one of `open_statuses`; at most `scan_max` rows, in sequence order.
#[derive(Debug, Clone)]
pub struct InboxQuery<'a> {
    pub after: u64,
    pub team: Option<&'a str>,
    pub active_since: i64,
    pub open_statuses: &'a [&'a str],
    pub scan_max: usize,
}

/// The inbox's storage, in domain verbs.
pub trait InboxStore {
    /// Adds an inbox; `false` if the name is taken.
    fn add_inbox(
        &mut self,
        name: &str,
        kind: &str,
        team: Option<&str>,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Removes an inbox (its conversations stay); `false` if there was none.
    fn remove_inbox(&mut self, name: &str) -> Result<bool, StoreError>;
    fn inboxes(&mut self) -> Result<Vec<InboxRow>, StoreError>;
    fn inbox_by_secret(&mut self, secret_hash: &str) -> Result<Option<InboxRef>, StoreError>;
    fn conversation(&mut self, id: &str) -> Result<Option<StoredConversation>, StoreError>;
    /// Writes a conversation with the next inbox sequence number, in one
    /// transaction, if its inbox still has the secret and the conversation
    /// still has the sequence number `expect` (writers of one conversation
    /// are serialized; see [`ConversationCommit`]).
    fn put_conversation(&mut self, w: &ConversationWrite<'_>) -> Result<ConversationCommit, StoreError>;
    /// The latest inbox sequence number.
    fn inbox_head(&mut self) -> Result<u64, StoreError>;
    /// One pull read from one snapshot: rows `(seq, json)` to `row` until
    /// it says stop; returns the head of that snapshot.
    fn read_inbox(&mut self, q: &InboxQuery<'_>, row: &mut dyn FnMut(u64, String) -> bool) -> Result<u64, StoreError>;
}
