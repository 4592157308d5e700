//! Automerge 0.12's queue of changes whose dependencies are missing, reduced
//! to what it does, and how `TicketDoc` keeps it from wedging a document.
//!
//! Automerge's behaviour (documented here, passing; not a bug to fix in
//! Automerge, but a trap for callers):
//! - `apply_changes` with a change whose dependency is absent returns `Ok`
//!   and keeps the change in an internal queue;
//! - `get_missing_deps(heads)` counts every queued change's missing
//!   dependencies, for as long as it stays queued: after one incomplete
//!   delivery, checking the document after a later, complete batch still
//!   reports missing dependencies (the cause of the former
//!   `an_incomplete_delivery_does_not_fail_later_complete_ones` bug);
//! - `save()` keeps queued changes (`SaveOptions::retain_orphans` defaults
//!   to true) and `load` of a document chunk followed by such changes
//!   succeeds and queues them again: stored, they come back on every load.
//!
//! `TicketDoc` therefore checks a batch before handing it over, refuses
//! loaded data that leaves changes queued, and drops queued changes from
//! bytes its own store saved.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc, ROOT};
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::DocError;
use uuid::Uuid;

fn doc_with(actor: u8) -> AutoCommit {
    AutoCommit::new().with_actor(ActorId::from([actor; 16].as_slice()))
}

#[test]
fn automerge_keeps_a_change_with_missing_deps_queued_and_reports_it_forever() {
    let mut a = doc_with(1);
    a.put(ROOT, "x", 1).expect("put");
    a.commit();
    let mut dan = a.fork().with_actor(ActorId::from([4; 16].as_slice()));
    let h = a.get_heads();
    a.put(ROOT, "x", 2).expect("put");
    a.commit();
    a.put(ROOT, "x", 3).expect("put");
    a.commit();
    // Only the last change: its dependency (x = 2) is missing.
    let all = a.get_changes(&h);
    let last = all.last().cloned().expect("a change");
    assert!(dan.apply_changes(vec![last]).is_ok(), "queued silently");
    let heads = dan.get_heads();
    assert_eq!(dan.get_missing_deps(&heads).len(), 1);

    // A complete batch from someone else applies, yet the document still
    // reports the old change's missing dependency.
    let mut ben = doc_with(2);
    ben.merge(&mut dan.fork()).expect("merge");
    let before = ben.get_heads();
    ben.put(ROOT, "y", 1).expect("put");
    ben.commit();
    dan.apply_changes(ben.get_changes(&before)).expect("applies");
    assert_eq!(dan.get(ROOT, "y").expect("get").map(|(v, _)| v.as_i64()), Some(Some(1)));
    let heads = dan.get_heads();
    assert_eq!(dan.get_missing_deps(&heads).len(), 1, "the queued change is still counted");

    // save() keeps the queued change; a load queues it again.
    let reloaded = AutoCommit::load(&dan.save()).expect("loads");
    assert_eq!(reloaded.get_missing_deps(&[]).len(), 1, "the queue survives save and load");
}

fn ticket_and_orphan() -> (Uuid, Vec<u8>, Vec<u8>) {
    let id = Uuid::from_u128(42);
    let mut doc = TicketDoc::genesis(id, DocKind::Ticket);
    let clean = doc.save();
    let mut ahead = doc.fork_with(&ActorId::from([7; 16].as_slice()));
    let h = ahead.heads();
    ahead.automerge().put(ROOT, "conversation", "one").expect("put");
    ahead.commit(0);
    ahead.automerge().put(ROOT, "conversation", "two").expect("put");
    ahead.commit(0);
    let changes = ahead.changes_since(&h);
    let orphan = changes.last().map(|c| c.raw_bytes().to_vec()).expect("a change");
    (id, clean, orphan)
}

#[test]
fn a_loaded_document_with_a_queued_change_is_refused() {
    let (id, clean, orphan) = ticket_and_orphan();
    let mut data = clean.clone();
    data.extend_from_slice(&orphan);
    assert!(AutoCommit::load(&data).is_ok(), "Automerge loads it, with the change queued");
    assert!(matches!(TicketDoc::load(id, DocKind::Ticket, &data), Err(DocError::MissingDeps)));
}

#[test]
fn stored_bytes_with_a_queued_change_load_without_it() {
    let (id, clean, orphan) = ticket_and_orphan();
    let mut stored = clean;
    stored.extend_from_slice(&orphan);
    let mut doc = TicketDoc::load_stored(id, DocKind::Ticket, &stored).expect("loads");
    // Later complete deliveries are not blamed for the old change.
    let mut other = TicketDoc::genesis(id, DocKind::Ticket).fork_with(&ActorId::from([9; 16].as_slice()));
    let h = other.heads();
    other.automerge().put(ROOT, "conversation", "three").expect("put");
    other.commit(0);
    let batch = other.changes_since(&h);
    assert!(doc.apply_changes(batch).is_ok());
    assert!(doc.load_incremental(&other.save()).is_ok());
}
