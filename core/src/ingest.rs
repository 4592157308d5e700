//! What the relay does with a pushed document, as a pure function: merge
//! the bytes into the relay's copy and decide whether the agent may make
//! these changes. Nothing is stored unless the whole document passes.
//!
//! A pushed document is refused when
//! - its bytes are not Automerge data, or depend on changes the relay lacks;
//! - a new change is signed by an actor not registered to the agent (no
//!   impersonation), except the deterministic genesis and conversation
//!   prefill changes, which are recomputed and must match exactly;
//! - it writes internal notes without the permission, or puts a note in the
//!   public ticket document (which would reach every device);
//! - an event of the agent's actors names another author, or the document's
//!   root no longer has the shape of a ticket.

use std::collections::HashSet;

use automerge::{ActorId, Change, ChangeHash, ObjId as ExId};

use uuid::Uuid;

use crate::doc::{DocKind, TicketDoc};
use crate::event::{EventBody, StoredEvent};
use crate::hlc::Hlc;
use crate::ids;

/// The authenticated agent behind a push.
#[derive(Debug, Clone)]
pub struct Principal {
    pub agent: String,
    /// Actors of the agent's registered devices.
    pub actors: HashSet<ActorId>,
    pub internal_notes: bool,
}

/// Why a document was refused: data, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The agent may not make this write (403).
    Forbidden(String),
    /// The data is not a valid tickets document (400).
    Invalid(String),
}

impl Refusal {
    pub fn reason(&self) -> &str {
        match self {
            Refusal::Forbidden(r) | Refusal::Invalid(r) => r,
        }
    }
}

/// A pushed document that passed.
pub struct Ingested {
    pub doc: TicketDoc,
    /// How many changes are new to the relay.
    pub new_changes: usize,
    /// The pushed bytes when they were a whole compact save of a document
    /// new to the relay: stored as they are, with no second save.
    pub whole_save: Option<Vec<u8>>,
    /// Keys of events that are new to the relay.
    pub new_event_keys: Vec<String>,
    pub heads: Vec<ChangeHash>,
}

/// Merges pushed bytes into the relay's copy (`existing`, saved bytes) and
/// checks every new change against the principal.
pub fn ingest(
    id: &str,
    kind: &str,
    existing: Option<&[u8]>,
    data: &[u8],
    who: &Principal,
) -> Result<Ingested, Refusal> {
    let uuid = Uuid::parse_str(id).map_err(|_| Refusal::Invalid(format!("'{id}' is not a ticket id")))?;
    let kind = DocKind::parse(kind).ok_or_else(|| Refusal::Invalid(format!("unknown document kind '{kind}'")))?;
    if kind == DocKind::Notes && !who.internal_notes {
        return Err(Refusal::Forbidden(format!("agent '{}' may not write internal notes", who.agent)));
    }
    if data.is_empty() {
        return Err(Refusal::Invalid("empty document data".into()));
    }
    // A document new to the relay usually arrives as a whole compact save:
    // load it directly (and keep its bytes) instead of replaying it onto a
    // genesis.
    let fresh = match existing {
        None => TicketDoc::load(uuid, kind, data).ok(),
        Some(_) => None,
    };
    let loaded_whole = fresh.is_some();
    let mut doc = match (fresh, existing) {
        (Some(d), _) => d,
        (None, Some(b)) => TicketDoc::load_stored(uuid, kind, b)
            .map_err(|e| Refusal::Invalid(format!("stored copy unreadable: {e}")))?,
        (None, None) => TicketDoc::genesis(uuid, kind),
    };
    let old_heads = if loaded_whole { Vec::new() } else { doc.heads() };
    let mut old_keys: HashSet<String> = HashSet::new();
    if existing.is_some() {
        old_keys.extend(doc.raw_events().into_iter().map(|(k, _)| k));
    }
    if !loaded_whole {
        doc.load_incremental(data).map_err(|e| Refusal::Invalid(format!("corrupt document data: {e}")))?;
    }
    let new_changes = doc.changes_meta_since(&old_heads);
    if new_changes.is_empty() {
        let heads = doc.heads();
        return Ok(Ingested { doc, new_changes: 0, new_event_keys: Vec::new(), heads, whole_save: None });
    }
    doc.check_shape().map_err(|e| Refusal::Invalid(format!("not a valid {} document: {e}", kind.as_str())))?;

    // The genesis is recomputed only when a change needs it.
    let mut genesis_cache: Option<Vec<ChangeHash>> = None;
    let mut genesis = || genesis_cache.get_or_insert_with(|| TicketDoc::genesis(uuid, kind).heads_owned()).clone();
    let genesis_actor = ids::genesis_actor(uuid, kind.as_str());
    for change in &new_changes {
        if who.actors.contains(&change.actor) {
            continue;
        }
        if change.actor == genesis_actor {
            let genesis = genesis();
            if genesis.first() != Some(&change.hash) {
                return Err(Refusal::Forbidden("a change claims to be the genesis but is not".into()));
            }
            continue;
        }
        if kind == DocKind::Ticket && change.seq == 1 && change.deps == genesis() {
            if let Some(full) = doc.change_by_hash(&change.hash) {
                if is_prefill(uuid, &full, &genesis()) {
                    continue;
                }
            }
        }
        return Err(Refusal::Forbidden(format!(
            "a change is signed by actor {} which is not registered to agent '{}'",
            change.actor.to_hex_string(),
            who.agent
        )));
    }
    let new_change_count = new_changes.len();

    let mut new_event_keys = Vec::new();
    for (key, raw, op) in doc.raw_events_with_ops() {
        if old_keys.contains(&key) {
            continue;
        }
        let ExId::Id(_, actor, _) = &op else { continue };
        new_event_keys.push(key.clone());
        let ev = raw
            .as_deref()
            .ok_or_else(|| "event is not a string".to_string())
            .and_then(StoredEvent::decode)
            .map_err(|e| Refusal::Invalid(format!("event {key}: {e}")))?;
        let stamp = key.parse::<Hlc>().map_err(|e| Refusal::Invalid(e.to_string()))?;
        if who.actors.contains(actor) {
            if ev.by != who.agent {
                return Err(Refusal::Forbidden(format!(
                    "event {key} names '{}' as its author but was written by '{}'",
                    ev.by, who.agent
                )));
            }
            if stamp.replica != ids::replica_of(actor) {
                return Err(Refusal::Forbidden(format!("event {key} carries another device's clock stamp")));
            }
        }
        let is_note = matches!(ev.body, EventBody::Note { .. });
        if is_note != (kind == DocKind::Notes) {
            return Err(Refusal::Invalid(format!(
                "event {key}: {} in the {} document",
                if is_note { "an internal note" } else { "a ticket event" },
                kind.as_str()
            )));
        }
    }
    let heads = doc.heads();
    let whole_save = loaded_whole.then(|| data.to_vec());
    Ok(Ingested { doc, new_changes: new_change_count, new_event_keys, heads, whole_save })
}

/// A conversation prefill is accepted from anyone when it is exactly what
/// its actor id promises: genesis plus this change alone holds the prefill
/// text and link from which the actor id is derived, and no events.
fn is_prefill(id: Uuid, change: &Change, genesis: &[ChangeHash]) -> bool {
    if change.seq() != 1 || change.deps() != genesis {
        return false;
    }
    let mut d = TicketDoc::genesis(id, DocKind::Ticket);
    if d.apply_changes(vec![change.clone()]).is_err() || !d.raw_events().is_empty() {
        return false;
    }
    let Some(link) = d.conversation_json() else { return false };
    let mut content = d.description();
    content.push('\u{0}');
    content.push_str(&link);
    ids::prefill_actor(id, &content) == *change.actor_id()
}
