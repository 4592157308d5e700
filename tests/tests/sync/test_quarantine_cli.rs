//! What `tickets sync` and `tickets show` say about a pulled document the
//! node kept aside (quarantined). The relay's allow-list keeps such
//! documents out; this plays a relay that let one through (an older relay,
//! a restored database): a change deleting a ticket's creation event is
//! written straight into the relay's SQLite file, as
//! `relay/tests/quarantine.rs` does in-process.

use automerge::transaction::Transactable;
use automerge::{ActorId, ReadDoc};
use tickets_core::doc::{DocKind, TicketDoc};

use crate::harness::{sync, Relay};
use crate::hostile_support::{events_obj, uuid};
use crate::support::now_ms;

/// Appends to the relay's log a change by `actor` deleting every event of
/// ticket `id` (its creation event among them), and stores the result.
fn damage(relay: &Relay, id: &str, actor: &ActorId) {
    let raw = rusqlite::Connection::open(relay.db()).expect("open the relay's file");
    raw.busy_timeout(std::time::Duration::from_secs(30)).expect("busy timeout");
    let bytes: Vec<u8> = raw
        .query_row("SELECT bytes FROM docs WHERE id = ?1 AND kind = 'ticket'", [id], |r| r.get(0))
        .expect("the relay's copy");
    let mut doc = TicketDoc::load(uuid(id), DocKind::Ticket, &bytes).expect("loads");
    let before = doc.heads();
    doc.set_actor(actor);
    let events = events_obj(&mut doc);
    let keys: Vec<String> = doc.automerge().keys(&events).collect();
    for k in keys {
        doc.automerge().delete(&events, k.as_str()).expect("delete an event");
    }
    doc.commit(now_ms());
    let change: Vec<u8> = doc.changes_since(&before).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    raw.execute(
        "INSERT INTO changes (id, kind, device, bytes) VALUES (?1, 'ticket', ?2, ?3)",
        rusqlite::params![id, actor.to_hex_string(), change],
    )
    .expect("append to the log");
    let seq = raw.last_insert_rowid();
    raw.execute(
        "UPDATE docs SET bytes = ?2, seq = ?3 WHERE id = ?1 AND kind = 'ticket'",
        rusqlite::params![id, doc.save(), seq],
    )
    .expect("store the document");
}

#[test]
fn sync_and_show_name_a_document_the_node_kept_aside() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let lea = relay.agent("lea", "lead", &[]);
    // A second device of the lead's, to read the same pull as JSON.
    let lea2 = relay.node_with_token(&lea.token);
    let broken = ana.create("will be damaged", "high", "hardware");
    let fine = ana.create("stays fine", "low", "hardware");
    sync(&ana);
    sync(&lea);
    sync(&lea2);

    let actor = ana.run(&["status", "--json"]).json()["actor"].as_str().expect("actor").to_string();
    let actor: ActorId = actor.as_str().try_into().expect("an actor id");
    damage(&relay, &broken, &actor);
    ana.run(&["comment", &fine, "after the damage"]).ok();
    sync(&ana);

    let short = &broken[..8];
    let out = lea.run(&["sync"]).out();
    assert_eq!(out.code, 0, "the sync goes on past the damaged document: {out:#?}");
    let line = out.stdout.lines().find(|l| l.trim_start().starts_with("damaged")).unwrap_or_else(|| {
        panic!("`tickets sync` prints no `damaged` line: {out:#?}");
    });
    assert!(line.contains(short), "the damaged line names the ticket {short}: {line}");
    assert!(!out.stdout.contains(&fine[..8]), "only the damaged ticket is named: {}", out.stdout);
    let shown = lea.run(&["show", &broken]).ok();
    assert!(shown.contains("damaged"), "`tickets show` says the ticket is damaged:\n{shown}");
    assert!(shown.contains("will be damaged"), "and still shows it as it was:\n{shown}");
    assert!(lea.run(&["show", &fine]).ok().contains("after the damage"), "the rest of the pull arrived");

    let report = sync(&lea2);
    let damaged = report["damaged"].as_array().unwrap_or_else(|| panic!("no damaged[] in {report:#}"));
    assert_eq!(damaged.len(), 1, "{report:#}");
    assert_eq!(damaged[0]["ticket"], broken.as_str(), "{report:#}");
    assert!(damaged[0]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{report:#}");
}
