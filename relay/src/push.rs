//! The push pipeline, once for every backend: decode each pushed document,
//! merge it onto the stored copy and authorize it (the allow-list in
//! `ingest`), index each touched ticket, commit the page, and merge again
//! what others wrote meanwhile.
//!
//! 1. one snapshot: the stored copies of both documents of every ticket
//!    the page touches (with the sequence numbers of their last change),
//!    their event times and the SLA settings;
//! 2. without any lock, on all cores: merge and authorize each item, save
//!    the merged documents, then materialize each touched ticket and
//!    compute its index row;
//!    (any document over the operator's limits is refused on its own,
//!    before loading when its size alone says so);
//! 3. commit the page with the sequence numbers it read. A ticket another
//!    request wrote meanwhile (two devices pushing it at the same moment)
//!    makes the commit write nothing: its items are merged again onto a new
//!    snapshot of it, and the page is committed again.

use std::collections::{HashMap, HashSet};

use tickets_core::change_policy::{self, Floors, SyncFloor};
use tickets_core::conversation::{is_inbox_id, ConversationLink};
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::hlc::Hlc;
use tickets_core::inbox::{self, InboxConversation};
use tickets_core::index;
use tickets_core::ingest::{self, Refusal, RefusalCode};
use tickets_core::limits::{self, Limits};
use tickets_core::par::parallel_map;
use tickets_core::protocol::{
    decode_data, DocData, PullPage, PushResult, RawSlaInput, SyncRequest, PUSH_PAGE_BYTES_MAX, PUSH_PAGE_DOCS_MAX,
};
use tickets_core::sla::SlaSettings;
use tickets_core::view;
use uuid::Uuid;

use crate::store::{
    effective_time, parse_sla_settings, Caller, Commit, DocWrite, Expect, PageWrite, PushOutcome, RelayStore, Snapshot,
    StoreError, TicketSnapshot,
};

/// Commits tried before a push gives up (each after merging again what
/// others wrote to its tickets meanwhile).
pub const COMMIT_ATTEMPTS_MAX: usize = 16;

/// A pushed document merged and authorized, with the bytes to store when
/// it brought new changes.
struct Merged {
    ing: ingest::Ingested,
    bytes: Option<Vec<u8>>,
}

/// A ticket's index row computed from its documents.
struct Indexed {
    entry: index::IndexEntry,
    notes_json: Option<String>,
}

/// Applies one push page of `device` (whose clock is `offset_ms` ahead of
/// the relay's) at `now`, with no floor (see [`push_above`]).
pub fn push<S: RelayStore + ?Sized>(
    store: &mut S,
    caller: &Caller,
    device: &str,
    offset_ms: i64,
    items: &[DocData],
    now: i64,
) -> Result<PushOutcome, StoreError> {
    push_above(store, caller, device, offset_ms, None, items, now)
}

/// Applies one push page of `device` whose previous completed sync started
/// at `floor`: its new events may not be dated before it (see
/// [`check_with_relay`]).
pub fn push_above<S: RelayStore + ?Sized>(
    store: &mut S,
    caller: &Caller,
    device: &str,
    offset_ms: i64,
    floor: Option<SyncFloor>,
    items: &[DocData],
    now: i64,
) -> Result<PushOutcome, StoreError> {
    let principal = caller.principal();

    // 1. Decode, and read what is stored.
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut decoded: Vec<Result<Vec<u8>, Refusal>> = Vec::with_capacity(items.len());
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        if !seen.insert((item.id.as_str(), item.kind.as_str())) {
            decoded.push(Err(Refusal::new(RefusalCode::Duplicate, "the same document twice in one push")));
            continue;
        }
        decoded.push(decode_data(&item.data).map_err(|e| Refusal::new(RefusalCode::CorruptData, e)));
        // (A bad id or kind is refused by ingest, which names it.)
        let valid = DocKind::parse(&item.kind).is_some() && Uuid::parse_str(&item.id).is_ok();
        if valid && !ids.contains(&item.id) {
            ids.push(item.id.clone());
        }
    }
    let mut snap = store.snapshot(&ids)?;
    let mut settings = parse_sla_settings(snap.settings.as_deref())?;
    let limits = store.limits()?;
    over_limits_unread(items, &mut decoded, &snap, &limits);

    // 2. Merge, authorize, save and index, on all cores.
    let all: Vec<usize> = (0..items.len()).collect();
    let mut merged: Vec<Result<Merged, Refusal>> = Vec::with_capacity(items.len());
    for m in merge_items(items, &decoded, &all, &snap, &principal, now)? {
        merged.push(m);
    }
    over_limits_merged(&all, &mut merged, &limits);
    check_with_relay(store, items, &mut merged, &all, floor, offset_ms)?;
    let mut rows = index_tickets(items, &merged, &all, &snap, &settings, offset_ms, now)?;

    // 3. Commit; merge again what others wrote meanwhile.
    for _ in 0..COMMIT_ATTEMPTS_MAX {
        let page = page_write(items, &decoded, &merged, &rows, &snap, device, offset_ms, now);
        let (redo, settings_changed) = match store.commit_page(&page)? {
            Commit::Done(_) => return Ok(outcome(items, merged, &rows, &snap)),
            Commit::Conflict { ids: changed, settings } => (if settings { ids.clone() } else { changed }, settings),
        };
        let fresh = store.snapshot(&redo)?;
        snap.settings = fresh.settings;
        if settings_changed {
            settings = parse_sla_settings(snap.settings.as_deref())?;
        }
        for (id, t) in fresh.tickets {
            snap.tickets.insert(id, t);
        }
        let again: Vec<usize> = (0..items.len()).filter(|&i| redo.contains(&items[i].id)).collect();
        let remerged = merge_items(items, &decoded, &again, &snap, &principal, now)?;
        for (&i, m) in again.iter().zip(remerged) {
            merged[i] = m;
        }
        over_limits_merged(&again, &mut merged, &limits);
        check_with_relay(store, items, &mut merged, &again, floor, offset_ms)?;
        for id in &redo {
            rows.remove(id);
        }
        rows.extend(index_tickets(items, &merged, &again, &snap, &settings, offset_ms, now)?);
    }
    Err(StoreError::Contended)
}

/// The operator's document limits, before anything is loaded: pushed data
/// larger than the byte limit, or a stored copy already over it (the limit
/// was lowered, or the copy predates it), is refused without merging, so a
/// huge document never costs the relay its memory.
fn over_limits_unread(items: &[DocData], decoded: &mut [Result<Vec<u8>, Refusal>], snap: &Snapshot, limits: &Limits) {
    for (item, d) in items.iter().zip(decoded.iter_mut()) {
        let Ok(data) = d else { continue };
        let stored = snap.tickets.get(&item.id).and_then(|t| stored_bytes(t, &item.kind)).map_or(0, <[u8]>::len);
        if let Err(over) = limits::check_doc_bytes(data.len().max(stored), limits) {
            *d = Err(over.into());
        }
    }
}

/// The operator's document limits on what a merge made: the saved bytes,
/// the comments held, and each new comment's size. A document over one is
/// refused on its own; the rest of the push goes on.
fn over_limits_merged(which: &[usize], merged: &mut [Result<Merged, Refusal>], limits: &Limits) {
    for &i in which {
        let Ok(m) = &merged[i] else { continue };
        let Some(bytes) = &m.bytes else { continue };
        let new: HashSet<&str> = m.ing.new_events.iter().map(|e| e.key.as_str()).collect();
        let events = m.ing.doc.raw_events();
        let checked = limits::check_doc_bytes(bytes.len(), limits)
            .and_then(|()| limits::check_events(events.iter().map(|(k, v)| (k.as_str(), v.as_deref())), &new, limits));
        if let Err(over) = checked {
            merged[i] = Err(over.into());
        }
    }
}

/// Merges and authorizes the items at `which` onto their stored copies.
fn merge_items(
    items: &[DocData],
    decoded: &[Result<Vec<u8>, Refusal>],
    which: &[usize],
    snap: &Snapshot,
    principal: &ingest::Principal,
    now: i64,
) -> Result<Vec<Result<Merged, Refusal>>, StoreError> {
    parallel_map(which.to_vec(), |i| {
        let item = &items[i];
        let data = decoded[i].as_ref().map_err(Clone::clone)?;
        let stored = snap.tickets.get(&item.id).and_then(|t| stored_bytes(t, &item.kind));
        let mut ing = ingest::ingest(&item.id, &item.kind, stored, data, principal, now)?;
        let bytes = match (ing.new_changes, ing.whole_save.take()) {
            (0, _) => None,
            (_, Some(b)) => Some(b),
            (_, None) => Some(ing.doc.save()),
        };
        Ok(Merged { ing, bytes })
    })
    .ok_or_else(|| StoreError::Damaged("a merge worker failed".into()))
}

/// The checks that need what the relay holds besides the ticket: an inbox
/// conversation's prefill must be what the relay's copy of it gives (and
/// a ticket claiming an inbox conversation the relay does not hold is
/// refused), and new events may not be dated below the device's floor, or
/// a creation before its conversation reached the relay
/// ([`change_policy::check_floors`]). A document that fails is refused on
/// its own; the rest of the page goes on.
fn check_with_relay<S: RelayStore + ?Sized>(
    store: &mut S,
    items: &[DocData],
    merged: &mut [Result<Merged, Refusal>],
    which: &[usize],
    floor: Option<SyncFloor>,
    offset_ms: i64,
) -> Result<(), StoreError> {
    for &i in which {
        let Ok(m) = &merged[i] else { continue };
        if m.ing.new_changes == 0 {
            continue;
        }
        let claims = m.ing.prefill.is_some() || m.ing.new_events.iter().any(|e| e.is_creation);
        let link: Option<ConversationLink> = match (claims, items[i].kind == DocKind::Ticket.as_str()) {
            (true, true) => m.ing.doc.conversation_json().and_then(|j| serde_json::from_str(&j).ok()),
            _ => None,
        };
        // The relay's copy decides for an inbox id, and for any id its inbox
        // holds (a generic inbox's conversation from before namespaces).
        let copy: Option<InboxConversation> = match &link {
            Some(l) => match store.conversation(&l.id)? {
                Some(c) => Some(
                    serde_json::from_str(&c.json)
                        .map_err(|e| StoreError::Damaged(format!("conversation {}: {e}", short(&l.id))))?,
                ),
                None => None,
            },
            None => None,
        };
        let verdict = match (&m.ing.prefill, &copy) {
            (Some(p), Some(c)) if !inbox::check_prefill(c, p) => Err(Refusal::new(
                RefusalCode::PrefillForged,
                format!("the prefill of conversation '{}' is not what the relay's copy of it gives", short(&p.link.id)),
            )),
            (Some(p), None) if is_inbox_id(&p.link.id) => Err(Refusal::new(
                RefusalCode::ConversationUnknown,
                format!("the relay holds no inbox conversation '{}'", short(&p.link.id)),
            )),
            _ => Ok(()),
        };
        let floors = Floors { sync: floor, creation_ms: copy.as_ref().map(|c| c.created_ms) };
        if let Err(r) = verdict.and_then(|()| change_policy::check_floors(&m.ing.new_events, floors, offset_ms)) {
            merged[i] = Err(r);
        }
    }
    Ok(())
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Whether this request ends a sync: the device is caught up (its pull,
/// past the bootstrap, has nothing more) and its push page was not full (a
/// node fills every page but its last). The device then holds nothing
/// older that it has not pushed, which is what its floor says.
pub fn completes_sync(req: &SyncRequest, pulled: Option<&PullPage>) -> bool {
    let caught_up = match (&req.pull, pulled) {
        (Some(p), Some(page)) => p.bootstrapped && p.bootstrap.is_none() && page.bootstrap.is_none() && !page.more,
        _ => false,
    };
    let bytes: usize = req.push.iter().map(|d| d.data.len() / 4 * 3).sum();
    caught_up && req.push.len() < PUSH_PAGE_DOCS_MAX && bytes < PUSH_PAGE_BYTES_MAX
}

fn stored_bytes<'a>(t: &'a TicketSnapshot, kind: &str) -> Option<&'a [u8]> {
    match DocKind::parse(kind)? {
        DocKind::Ticket => t.ticket.as_ref().map(|d| d.bytes.as_slice()),
        DocKind::Notes => t.notes.as_ref().map(|d| d.bytes.as_slice()),
    }
}

/// The index rows of the tickets whose items at `which` brought new
/// changes: each document as merged in this push, or else as stored.
fn index_tickets(
    items: &[DocData],
    merged: &[Result<Merged, Refusal>],
    which: &[usize],
    snap: &Snapshot,
    settings: &SlaSettings,
    offset_ms: i64,
    now: i64,
) -> Result<HashMap<String, Option<Indexed>>, StoreError> {
    let mut accepted: HashMap<(&str, &str), &Merged> = HashMap::new();
    for (item, m) in items.iter().zip(merged) {
        if let Ok(m) = m {
            accepted.insert((item.id.as_str(), item.kind.as_str()), m);
        }
    }
    let mut touched: Vec<&str> = Vec::new();
    for &i in which {
        let id = items[i].id.as_str();
        if matches!(&merged[i], Ok(m) if m.ing.new_changes > 0) && !touched.contains(&id) {
            touched.push(id);
        }
    }
    let merged_doc = |id: &str, kind: DocKind| accepted.get(&(id, kind.as_str())).map(|m| &m.ing.doc);
    let indexed: Vec<Result<Option<Indexed>, StoreError>> = parallel_map(touched.clone(), |id| {
        let Some(snap) = snap.tickets.get(id) else { return Ok(None) };
        let load = |kind: DocKind| match merged_doc(id, kind) {
            Some(_) => Ok(None),
            None => stored_bytes(snap, kind.as_str()).map(|b| load_stored(id, kind, b)).transpose(),
        };
        let (stored_ticket, stored_notes) = (load(DocKind::Ticket)?, load(DocKind::Notes)?);
        let notes = merged_doc(id, DocKind::Notes).or(stored_notes.as_ref());
        let Some(ticket) = merged_doc(id, DocKind::Ticket).or(stored_ticket.as_ref()) else { return Ok(None) };
        let mut times = snap.times.clone();
        for kind in [DocKind::Ticket, DocKind::Notes] {
            let Some(m) = accepted.get(&(id, kind.as_str())) else { continue };
            for e in &m.ing.new_events {
                times.entry(e.key.clone()).or_insert_with(|| effective_time(e.written_ms, offset_ms, now));
            }
        }
        Ok(index_row(ticket, notes, &times, settings, now))
    })
    .ok_or_else(|| StoreError::Damaged("an index worker failed".into()))?;
    let mut rows = HashMap::new();
    for (id, r) in touched.iter().zip(indexed) {
        rows.insert(id.to_string(), r?);
    }
    Ok(rows)
}

/// The page to commit: every document that brought new changes, every
/// index row, and every ticket as the page read it.
#[allow(clippy::too_many_arguments)]
fn page_write(
    items: &[DocData],
    decoded: &[Result<Vec<u8>, Refusal>],
    merged: &[Result<Merged, Refusal>],
    rows: &HashMap<String, Option<Indexed>>,
    snap: &Snapshot,
    device: &str,
    offset_ms: i64,
    now: i64,
) -> PageWrite {
    let mut expect: Vec<Expect> = snap
        .tickets
        .iter()
        .map(|(id, t)| Expect {
            id: id.clone(),
            ticket: t.ticket.as_ref().map(|d| d.seq),
            notes: t.notes.as_ref().map(|d| d.seq),
        })
        .collect();
    expect.sort_by(|a, b| a.id.cmp(&b.id));
    let mut docs = Vec::new();
    for ((item, data), m) in items.iter().zip(decoded).zip(merged) {
        let (Ok(data), Ok(m)) = (data, m) else { continue };
        let Some(bytes) = &m.bytes else { continue };
        docs.push(DocWrite {
            id: item.id.clone(),
            kind: item.kind.clone(),
            log: data.clone(),
            bytes: bytes.clone(),
            events: m
                .ing
                .new_events
                .iter()
                .map(|e| (e.key.clone(), effective_time(e.written_ms, offset_ms, now)))
                .collect(),
        });
    }
    let index = rows.values().flatten().map(|r| (r.entry.clone(), r.notes_json.clone())).collect();
    PageWrite { device: device.to_string(), now, settings: snap.settings.clone(), expect, docs, index }
}

/// The per-document results of a committed page. Each accepted document
/// comes back with its ticket's SLA input, so the device shows the
/// authoritative figures at once (a note reindexed the ticket on the
/// device too).
fn outcome(
    items: &[DocData],
    merged: Vec<Result<Merged, Refusal>>,
    rows: &HashMap<String, Option<Indexed>>,
    snap: &Snapshot,
) -> PushOutcome {
    let mut out = PushOutcome { results: Vec::new(), forbidden: 0, invalid: 0, accepted: 0, changes: 0 };
    for (item, m) in items.iter().zip(merged) {
        let m = match m {
            Ok(m) => m,
            Err(r) => {
                if r.is_forbidden() {
                    out.forbidden += 1;
                } else {
                    out.invalid += 1;
                }
                out.results.push(PushResult {
                    id: item.id.clone(),
                    kind: item.kind.clone(),
                    accepted: false,
                    reason: Some(r.reason().to_string()),
                    code: Some(r.code.as_str().to_string()),
                    heads: Vec::new(),
                    sla: None,
                });
                continue;
            }
        };
        out.accepted += 1;
        if m.bytes.is_some() {
            out.changes += m.ing.new_changes;
        }
        let input = match rows.get(&item.id) {
            Some(Some(row)) => Some(row.entry.sla_input.clone()),
            _ => snap.tickets.get(&item.id).and_then(|t| t.sla_input.clone()),
        };
        out.results.push(PushResult {
            id: item.id.clone(),
            kind: item.kind.clone(),
            accepted: true,
            reason: None,
            code: None,
            heads: m.ing.heads.iter().map(|h| h.to_string()).collect(),
            sla: input.and_then(RawSlaInput::from_text),
        });
    }
    out
}

/// A ticket's index row, every stamp at its effective time; `None` for a
/// ticket document without its creation yet (its first change still on
/// the way): it gets a row when the creation lands.
fn index_row(
    doc: &TicketDoc,
    notes: Option<&TicketDoc>,
    times: &HashMap<String, i64>,
    settings: &SlaSettings,
    now: i64,
) -> Option<Indexed> {
    let v = view::materialize(doc, notes).ok()?;
    let effective = |h: &Hlc| times.get(&h.encode()).copied().unwrap_or(i64::try_from(h.wall_ms).unwrap_or(i64::MAX));
    Some(Indexed {
        entry: index::index_entry(&v, settings, now, &effective),
        notes_json: index::notes_json(&v, &effective),
    })
}

/// A document this relay stored (checked when it arrived).
fn load_stored(id: &str, kind: DocKind, bytes: &[u8]) -> Result<TicketDoc, StoreError> {
    let uuid = Uuid::parse_str(id).map_err(|e| StoreError::Damaged(e.to_string()))?;
    TicketDoc::load_stored(uuid, kind, bytes).map_err(|e| StoreError::Damaged(format!("ticket {id}: {e}")))
}
