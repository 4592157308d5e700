//! The timeline shows an edit that set what was already there as
//! `(unchanged)`, not as a change from a value to itself. A device never
//! writes such an edit itself (it names the edit it saw, and refuses to set
//! the current value), but an edit from a client that named none (as
//! events did before they carried `prev`) is replayed against the merged
//! value. Here bob's program pushes one through the relay, as any client
//! holding a token could: priority set to `high` on a ticket created `high`.

use automerge::ActorId;
use tickets_core::doc::DocKind;
use tickets_core::event::{EventBody, Field};

use crate::harness::{sync, Relay};
use crate::hostile_support::{event, put_raw_event, Attacker};
use crate::support::{history, now_ms};

#[test]
fn an_edit_to_the_value_already_there_shows_as_unchanged() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let bob_token = relay.add_agent("bob", "agent", &[]);
    let id = ana.create("Printer jams", "high", "hardware");
    sync(&ana);

    let bob = Attacker::register(&relay, &bob_token, ActorId::from([0xb0; 16].as_slice()));
    let mut doc = bob.pull(&relay, &id, DocKind::Ticket);
    let same = EventBody::Set { field: Field::Priority, to: Some("high".into()), prev: None };
    put_raw_event(&mut doc, &bob.stamp(now_ms()), &event("bob", same));
    let (status, body) = bob.push(&relay, &id, DocKind::Ticket, &mut doc);
    assert_eq!(status, 200, "an edit naming no earlier one is accepted: {body:#}");
    sync(&ana);
    ana.run(&["edit", &id, "--priority", "urgent"]).ok();

    let t = ana.show(&id);
    let moves: Vec<(&str, &str, &str)> = history(&t, "priority")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("none");
            (s("by"), s("from"), s("to"))
        })
        .collect();
    assert_eq!(moves, [("bob", "high", "high"), ("ana", "high", "urgent")], "{t:#}");

    let text = ana.run(&["show", &id]).ok();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("priority:")).collect();
    assert_eq!(lines.len(), 2, "two priority lines in the timeline:\n{text}");
    assert!(lines[0].contains("bob priority: high (unchanged)"), "bob's edit changed nothing:\n{text}");
    assert!(lines[1].contains("ana priority: high → urgent"), "ana's is a change:\n{text}");
    assert!(!text.contains("high → high"), "no change from a value to itself:\n{text}");
}
