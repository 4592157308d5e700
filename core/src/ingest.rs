//! What the relay does with a pushed document, as a pure function: merge
//! the bytes into the relay's copy and decide whether the agent may make
//! these changes. Nothing is stored unless the whole document passes.
//!
//! A pushed document is refused, with a [`RefusalCode`], when
//! - its id is not a canonical ticket id, or its kind unknown;
//! - its bytes are not Automerge data, or depend on changes the relay lacks;
//! - a new change is signed by an actor not registered to the agent (no
//!   impersonation), except the deterministic genesis and conversation
//!   prefill changes, which are recomputed and must match exactly;
//! - it writes internal notes without the permission;
//! - any operation of the agent's own changes is not on the allow-list of
//!   [`crate::change_policy`] (a new event of their own, a text splice).

use std::collections::HashSet;

use automerge::{ActorId, Change, ChangeHash};

use uuid::Uuid;

use crate::change_policy::{self, Context};
pub use crate::change_policy::{NewEvent, Refusal, RefusalCode};
use crate::conversation::{ConversationLink, Prefill};
use crate::doc::{DocKind, TicketDoc};
use crate::error::DocError;
use crate::event::StoredEvent;
use crate::ids;

/// The authenticated agent behind a push.
#[derive(Debug, Clone)]
pub struct Principal {
    pub agent: String,
    /// Actors of the agent's registered devices.
    pub actors: HashSet<ActorId>,
    pub internal_notes: bool,
}

/// A pushed document that passed.
pub struct Ingested {
    pub doc: TicketDoc,
    /// How many changes are new to the relay.
    pub new_changes: usize,
    /// The pushed bytes when they were a whole compact save of a document
    /// new to the relay: stored as they are, with no second save.
    pub whole_save: Option<Vec<u8>>,
    /// Events that are new to the relay, with the time their device says
    /// each was written.
    pub new_events: Vec<NewEvent>,
    pub heads: Vec<ChangeHash>,
    /// The conversation prefill this push brought (the relay checks an
    /// inbox conversation's against its own copy: [`crate::inbox::check_prefill`]).
    pub prefill: Option<Prefill>,
}

/// Merges pushed bytes into the relay's copy (`existing`, saved bytes) and
/// checks every new change against the principal: changes of the agent's
/// own devices operation by operation ([`change_policy`]), the genesis and
/// prefill by recomputing them, anything else refused. `now_ms` is the
/// relay's receipt time.
pub fn ingest(
    id: &str,
    kind: &str,
    existing: Option<&[u8]>,
    data: &[u8],
    who: &Principal,
    now_ms: i64,
) -> Result<Ingested, Refusal> {
    let uuid = parse_ticket_id(id)?;
    let kind = DocKind::parse(kind)
        .ok_or_else(|| Refusal::new(RefusalCode::UnknownKind, format!("unknown document kind '{}'", short(kind))))?;
    if kind == DocKind::Notes && !who.internal_notes {
        return Err(Refusal::new(
            RefusalCode::NotesForbidden,
            format!("agent '{}' may not write internal notes", who.agent),
        ));
    }
    if data.is_empty() {
        return Err(Refusal::new(RefusalCode::CorruptData, "empty document data"));
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
            .map_err(|e| Refusal::new(RefusalCode::BadShape, format!("stored copy unreadable: {e}")))?,
        (None, None) => TicketDoc::genesis(uuid, kind),
    };
    let old_heads = if loaded_whole { Vec::new() } else { doc.heads() };
    let had_link = existing.is_some() && doc.conversation_json().is_some();
    let mut old_keys: HashSet<String> = HashSet::new();
    let mut has_creation = false;
    if existing.is_some() {
        for (k, v) in doc.raw_events() {
            has_creation |= v.as_deref().and_then(|v| StoredEvent::decode(v).ok()).is_some_and(|e| e.is_creation());
            old_keys.insert(k);
        }
    }
    if !loaded_whole {
        doc.load_incremental(data).map_err(|e| match e {
            DocError::MissingDeps => {
                Refusal::new(RefusalCode::MissingDeps, "the data depends on changes the relay does not have")
            }
            e => Refusal::new(RefusalCode::CorruptData, format!("corrupt document data: {e}")),
        })?;
    }
    if loaded_whole {
        return ingest_new_document(uuid, kind, doc, data, who, now_ms);
    }
    let new_changes = doc.changes_since(&old_heads);
    if new_changes.is_empty() {
        let heads = doc.heads();
        return Ok(Ingested { doc, new_changes: 0, new_events: Vec::new(), heads, whole_save: None, prefill: None });
    }

    doc.check_identity()
        .map_err(|e| Refusal::new(RefusalCode::BadShape, format!("not a valid {} document: {e}", kind.as_str())))?;
    // The genesis is recomputed only when a change needs it.
    let mut genesis_cache: Option<Vec<ChangeHash>> = None;
    let mut genesis = || genesis_cache.get_or_insert_with(|| TicketDoc::genesis(uuid, kind).heads_owned()).clone();
    let objects = doc.policy_objects();
    let is_conversation = doc.conversation_json().is_some();
    let mut new_events: Vec<NewEvent> = Vec::new();
    let mut prefill: Option<Prefill> = None;
    for change in &new_changes {
        let actor = change.actor_id();
        if who.actors.contains(actor) {
            let cx = Context {
                kind,
                agent: &who.agent,
                now_ms,
                existing_keys: &old_keys,
                has_creation: has_creation || new_events.iter().any(|e| e.is_creation),
                is_conversation,
            };
            let added = change_policy::check_change(change, &objects, &cx)?;
            if let Some(dup) = added.iter().find(|e| new_events.iter().any(|n| n.key == e.key)) {
                return Err(Refusal::new(
                    RefusalCode::EventOverwrite,
                    format!("two changes write event {}", short(&dup.key)),
                ));
            }
            new_events.extend(added);
            continue;
        }
        let prefill_may_come = existing.is_none() || had_link;
        let genesis = genesis();
        let found = not_the_authors(
            uuid,
            kind,
            who,
            &genesis,
            prefill_may_come,
            actor,
            change.seq(),
            change.deps(),
            &change.hash(),
            || Some(change.clone()),
        )?;
        prefill = prefill.or(found);
    }
    // The allow-list keeps the root as the genesis made it; the shape is
    // still checked, as a second line.
    doc.check_shape()
        .map_err(|e| Refusal::new(RefusalCode::BadShape, format!("not a valid {} document: {e}", kind.as_str())))?;
    // A ticket document new to the relay holds its creation (or it would
    // sit unindexed on the relay and be quarantined by every device).
    if existing.is_none() && kind == DocKind::Ticket && !new_events.iter().any(|e| e.is_creation) {
        return Err(Refusal::new(RefusalCode::BadShape, "a new ticket document has no creation event"));
    }
    let new_change_count = new_changes.len();
    let heads = doc.heads();
    let whole_save = loaded_whole.then(|| data.to_vec());
    Ok(Ingested { doc, new_changes: new_change_count, new_events, heads, whole_save, prefill })
}

/// A whole document new to the relay: who made each change is read from
/// the changes' metadata (cheap); a change of the author's own devices is
/// checked on the document's state ([`change_policy::check_new_document`]),
/// the genesis and prefill are recomputed, anything else is refused.
fn ingest_new_document(
    uuid: Uuid,
    kind: DocKind,
    mut doc: TicketDoc,
    data: &[u8],
    who: &Principal,
    now_ms: i64,
) -> Result<Ingested, Refusal> {
    doc.check_identity()
        .map_err(|e| Refusal::new(RefusalCode::BadShape, format!("not a valid {} document: {e}", kind.as_str())))?;
    let genesis = TicketDoc::genesis(uuid, kind).heads_owned();
    let metas = doc.changes_meta_since(&[]);
    let mut prefill: Option<Prefill> = None;
    for m in &metas {
        if who.actors.contains(&m.actor) {
            continue;
        }
        let found = not_the_authors(uuid, kind, who, &genesis, true, &m.actor, m.seq, &m.deps, &m.hash, || {
            doc.change_by_hash(&m.hash)
        })?;
        prefill = prefill.or(found);
    }
    // The whole description (prefill included) was written by this push.
    if kind == DocKind::Ticket {
        crate::text::check("the description", &doc.description()).map_err(change_policy::unstorable)?;
    }
    let no_keys = HashSet::new();
    let cx = Context {
        kind,
        agent: &who.agent,
        now_ms,
        existing_keys: &no_keys,
        has_creation: false,
        is_conversation: doc.conversation_json().is_some(),
    };
    let new_events = change_policy::check_new_document(&doc.state_for_policy(), &who.actors, &cx)?;
    doc.check_shape()
        .map_err(|e| Refusal::new(RefusalCode::BadShape, format!("not a valid {} document: {e}", kind.as_str())))?;
    if kind == DocKind::Ticket && !new_events.iter().any(|e| e.is_creation) {
        return Err(Refusal::new(RefusalCode::BadShape, "a new ticket document has no creation event"));
    }
    let heads = doc.heads();
    Ok(Ingested { doc, new_changes: metas.len(), new_events, heads, whole_save: Some(data.to_vec()), prefill })
}

/// A change not signed by one of the author's devices passes only as the
/// ticket's genesis or, where a prefill may come (`prefill_may_come`: a new
/// ticket, or one that already links a conversation), as a prefill
/// recomputed byte for byte; anything else is impersonation.
#[allow(clippy::too_many_arguments)]
fn not_the_authors(
    uuid: Uuid,
    kind: DocKind,
    who: &Principal,
    genesis: &[ChangeHash],
    prefill_may_come: bool,
    actor: &ActorId,
    seq: u64,
    deps: &[ChangeHash],
    hash: &ChangeHash,
    full: impl FnOnce() -> Option<Change>,
) -> Result<Option<Prefill>, Refusal> {
    if *actor == ids::genesis_actor(uuid, kind.as_str()) {
        if genesis.first() != Some(hash) {
            return Err(Refusal::new(RefusalCode::ForgedGenesis, "a change claims to be the genesis but is not"));
        }
        return Ok(None);
    }
    if kind == DocKind::Ticket && seq == 1 && deps == genesis {
        // A prefill is never grafted onto a ticket that links no
        // conversation.
        if let Some(p) = prefill_may_come.then(full).flatten().and_then(|c| prefill_of(uuid, &c, genesis)) {
            // Text no backend can store is refused here, whoever signed it.
            crate::text::check("the conversation prefill", &p.text).map_err(change_policy::unstorable)?;
            crate::text::check("the conversation link", &p.link_json).map_err(change_policy::unstorable)?;
            return Ok(Some(p));
        }
        return Err(Refusal::new(
            RefusalCode::ForgedGenesis,
            "a change claims to be a conversation prefill but is not this ticket's",
        ));
    }
    Err(Refusal::new(
        RefusalCode::Impersonation,
        format!(
            "a change is signed by actor {} which is not registered to agent '{}'",
            actor.to_hex_string(),
            who.agent
        ),
    ))
}

/// A ticket id in its one canonical form (a lower-case hyphenated UUID):
/// any other spelling of an id is refused, never stored as a second key.
pub fn parse_ticket_id(id: &str) -> Result<Uuid, Refusal> {
    match Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(u),
        Ok(u) => Err(Refusal::new(
            RefusalCode::NonCanonicalId,
            format!("ticket id '{}' is not in canonical form; use '{u}'", short(id)),
        )),
        Err(_) => Err(Refusal::new(RefusalCode::NonCanonicalId, format!("'{}' is not a ticket id", short(id)))),
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// A conversation prefill is accepted from anyone when it is exactly the
/// change [`TicketDoc::apply_prefill`] makes for the text and link it holds,
/// recomputed byte for byte (so it holds no other operation); returns what
/// it holds. Where it may arrive is the caller's rule: with a new ticket,
/// or onto a ticket that already links a conversation; whether an inbox
/// conversation's prefill is the relay's copy's is the relay's check.
fn prefill_of(id: Uuid, change: &Change, genesis: &[ChangeHash]) -> Option<Prefill> {
    if change.seq() != 1 || change.deps() != genesis {
        return None;
    }
    let mut d = TicketDoc::genesis(id, DocKind::Ticket);
    if d.apply_changes(vec![change.clone()]).is_err() || !d.raw_events().is_empty() {
        return None;
    }
    let link_json = d.conversation_json()?;
    let link = serde_json::from_str::<ConversationLink>(&link_json).ok()?;
    let text = d.description();
    let mut again = TicketDoc::genesis(id, DocKind::Ticket);
    again.apply_prefill(&text, &link_json).ok()?;
    (again.heads_owned() == [change.hash()]).then_some(Prefill { text, link, link_json })
}
