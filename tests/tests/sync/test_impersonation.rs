//! No impersonation: the relay refuses a change signed by a device of
//! another agent, the node records and shows the refusal, and the rest of
//! the sync goes on (SPEC §3).

use rusqlite::params;
use serde_json::json;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{apply_edit, Author, Edit};
use tickets_core::hlc::Clock;
use tickets_core::protocol::encode_data;

use crate::harness::{bodies, client, sync, Relay};
use crate::support::{now_ms, Home};

/// A document's stored bytes on a node.
fn doc_bytes(h: &Home, id: &str, kind: &str) -> Vec<u8> {
    let c = rusqlite::Connection::open(h.db()).expect("open node.db");
    c.query_row("SELECT bytes FROM docs WHERE id = ?1 AND kind = ?2", params![id, kind], |r| r.get(0))
        .expect("the document is stored")
}

#[test]
fn a_change_signed_by_another_agents_device_is_refused_and_the_rest_lands() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let bob = relay.agent("bob", "agent", &[]);
    let target = lea.create("Router keeps rebooting", "low", "network");
    let other = lea.create("Paper tray", "low", "hardware");
    sync(&lea);
    sync(&ana);
    sync(&bob);

    // ana edits offline and does not sync.
    ana.run(&["edit", &target, "--priority", "urgent"]).ok();
    ana.run(&["comment", &target, "ana: written on ana's device"]).ok();
    // bob makes an edit of his own, then passes ana's document off as his.
    bob.run(&["comment", &other, "bob: my own edit"]).ok();
    {
        let stolen = doc_bytes(&ana, &target, "ticket");
        let c = rusqlite::Connection::open(bob.db()).expect("open bob's node.db");
        let n = c
            .execute("UPDATE docs SET bytes = ?1, dirty = 1 WHERE id = ?2 AND kind = 'ticket'", params![stolen, target])
            .expect("plant the document");
        assert_eq!(n, 1);
    }

    let report = sync(&bob);
    let refused = report["refused"].as_array().expect("refused[]");
    assert_eq!(refused.len(), 1, "one refusal: {report:#}");
    assert_eq!(refused[0]["ticket"], target.as_str());
    let reason = refused[0]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("not registered to agent 'bob'") || reason.contains("author"), "{reason}");
    assert!(report["pushed"].as_u64() >= Some(1), "bob's own edit was pushed: {report:#}");

    let shown = bob.show(&target);
    let refusals = shown["refusals"].as_array().expect("show --json lists the refusal");
    assert!(refusals.iter().any(|r| r["reason"] == reason.as_str()), "{refusals:#?}");
    let out = bob.run(&["show", &target]).ok();
    assert!(out.to_lowercase().contains("refused"), "the text view shows the refusal:\n{out}");
    assert_eq!(bob.run(&["status", "--json"]).json()["refused"], 1);

    // The relay has bob's edit and not ana's.
    let t = relay.ticket(&target, &lea.token);
    assert_eq!(t["priority"], "low");
    assert!(bodies(&t, "comments").is_empty(), "{t:#}");
    assert_eq!(bodies(&relay.ticket(&other, &lea.token), "comments"), ["bob: my own edit"]);
    sync(&lea);
    assert!(bodies(&lea.show(&target), "comments").is_empty(), "the refused change reached no one");

    // From ana's own device the same change is hers to make.
    let report = sync(&ana);
    assert_eq!(report["refused"].as_array().map(Vec::len), Some(0), "{report:#}");
    let t = relay.ticket(&target, &lea.token);
    assert_eq!(t["priority"], "urgent");
    assert_eq!(bodies(&t, "comments"), ["ana: written on ana's device"]);

    // bob's refused copy does not block the ticket: his next edit of it lands.
    sync(&bob);
    bob.run(&["comment", &target, "bob: after the refusal"]).ok();
    let report = sync(&bob);
    assert_eq!(report["refused"].as_array().map(Vec::len), Some(0), "{report:#}");
    assert_eq!(report["pending"], 0, "{report:#}");
    let want = ["ana: written on ana's device", "bob: after the refusal"];
    assert_eq!(bodies(&relay.ticket(&target, &lea.token), "comments"), want);
    sync(&ana);
    assert_eq!(bodies(&ana.show(&target), "comments"), want);
}

/// A change that bob's own device signs but that lies about who wrote it
/// (`agent`) or about the clock it was stamped by (`replica`), pushed
/// straight to the API; returns the status and body.
fn forged_push(
    relay: &Relay,
    bob: &crate::harness::Agent,
    id: &str,
    agent: &str,
    replica: Option<String>,
) -> (u16, String) {
    let device = bob.run(&["status", "--json"]).json()["actor"].as_str().expect("actor").to_string();
    let mut doc = TicketDoc::load(id.parse().expect("a uuid"), DocKind::Ticket, &doc_bytes(bob, id, "ticket"))
        .expect("bob's copy loads");
    let actor = device.as_str().try_into().expect("an actor id");
    doc.set_actor(&actor);
    let view = tickets_core::view::materialize(&doc, None).expect("materialize");
    let mut clock = Clock::new(replica.unwrap_or_else(|| tickets_core::ids::replica_of(&actor)));
    let author = Author { agent: agent.to_string(), actor };
    apply_edit(&mut doc, &mut None, &view, &author, &mut clock, now_ms(), &Edit::Comment("forged".into()))
        .expect("the edit applies");
    doc.commit(now_ms());
    let body = json!({"protocol": 1, "device": device, "clock_ms": now_ms(),
        "push": [{"id": id, "kind": "ticket", "data": encode_data(&doc.save())}]});
    let resp =
        client().post(format!("{}/v1/sync", relay.url())).bearer_auth(&bob.token).json(&body).send().expect("POST");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

#[test]
fn a_change_naming_another_author_or_another_devices_clock_is_refused() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let bob = relay.agent("bob", "agent", &[]);
    let id = lea.create("Fax machine", "low", "hardware");
    sync(&lea);
    sync(&bob);

    let (status, body) = forged_push(&relay, &bob, &id, "ana", None);
    assert_eq!(status, 403, "an event naming ana, from bob's device: {body}");
    assert!(body.contains("author"), "{body}");

    let ana_actor = ana.run(&["status", "--json"]).json()["actor"].as_str().expect("actor").to_string();
    let ana_replica = tickets_core::ids::replica_of(&ana_actor.as_str().try_into().expect("an actor id"));
    let (status, body) = forged_push(&relay, &bob, &id, "bob", Some(ana_replica));
    assert_eq!(status, 403, "an event stamped by ana's clock, from bob's device: {body}");
    assert!(body.contains("clock stamp"), "{body}");

    // An honest change from bob's device through the same path is accepted.
    let (status, body) = forged_push(&relay, &bob, &id, "bob", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(bodies(&relay.ticket(&id, &lea.token), "comments"), ["forged"], "only the honest one landed");
}
