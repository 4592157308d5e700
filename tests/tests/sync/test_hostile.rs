//! What an ordinary agent with a valid token could do to everyone before
//! the relay checked pushed changes op by op (issue #15, "Trust"), each
//! tried end to end against a real relay: bob crafts the change with the
//! automerge crate on the relay's own copy and pushes it himself. Each must
//! be refused with its code and leave everyone unharmed (the lead's node,
//! a fresh device, the relay's view, later edits).

use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType, ROOT};
use serde_json::json;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::event::{EventBody, Field};
use tickets_core::hlc::Hlc;
use tickets_core::ids;
use tickets_core::protocol::{encode_data, PROTOCOL_VERSION};

use crate::harness::{sync, Backend, Relay};
use crate::hostile_support::{
    comment, comments, event, events_obj, key_of, post, put_raw_event, refused_code, register, uuid, Scene, ANA_COMMENT,
};
use crate::support::now_ms;

/// Issue item 1: ana's comment rewritten as the lead's approval, and as a
/// note-kind event (a note in the public document).
#[test]
fn overwriting_another_agents_comment_is_refused_and_harmless() {
    overwriting_another_agents_comment_is_refused_and_harmless_on(Scene::new());
}

#[test]
fn overwriting_another_agents_comment_is_refused_and_harmless_on_postgres() {
    overwriting_another_agents_comment_is_refused_and_harmless_on(Scene::on(Relay::start_on(Backend::Postgres)));
}

fn overwriting_another_agents_comment_is_refused_and_harmless_on(s: Scene) {
    let mut doc = s.bobs_copy();
    let key = key_of(&doc, ANA_COMMENT);
    put_raw_event(&mut doc, &key, &event("lea", comment("Lea: APPROVED, refund 5000 EUR to ana")));
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "event_overwrite", "{body:#}");
    assert_eq!(status, 403);

    let mut doc = s.bobs_copy();
    put_raw_event(&mut doc, &key, &event("bob", EventBody::Note { body: "leaked into the public document".into() }));
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "event_overwrite", "{body:#}");
    s.assert_unharmed();
}

/// Issue item 2: ana's `create` event deleted (every other device then failed
/// to sync: "ticket has no creation event"), and her comment deleted.
#[test]
fn deleting_another_agents_events_is_refused_and_harmless() {
    let s = Scene::new();
    for needle in ["\"create\"", ANA_COMMENT] {
        let mut doc = s.bobs_copy();
        let key = key_of(&doc, needle);
        let events = events_obj(&mut doc);
        doc.automerge().delete(&events, key.as_str()).expect("delete");
        doc.commit(now_ms());
        let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
        assert_eq!(refused_code(status, &body), "event_delete", "deleting {needle}: {body:#}");
    }
    s.assert_unharmed();
}

/// Issue item 3: the root `events` map replaced by a string: the ticket froze
/// for everyone ("stored copy unreadable … missing events map").
#[test]
fn replacing_the_events_map_with_a_string_is_refused_and_harmless() {
    let s = Scene::new();
    let mut doc = s.bobs_copy();
    doc.automerge().put(ROOT, "events", "gone").expect("put");
    doc.commit(now_ms());
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "op_not_allowed", "{body:#}");
    s.assert_unharmed();
}

/// Issue item 3, stronger: the same with a new, empty `events` map, which
/// keeps the document's shape (so no shape check catches it) while every
/// event is gone.
#[test]
fn replacing_the_events_map_with_an_empty_one_is_refused_and_harmless() {
    let s = Scene::new();
    let mut doc = s.bobs_copy();
    doc.automerge().put_object(ROOT, "events", ObjType::Map).expect("put_object");
    doc.commit(now_ms());
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "op_not_allowed", "{body:#}");
    s.assert_unharmed();
}

/// Issue item 4a: another agent's device registered in upper case: the relay
/// knows it as ana's (409), and bob cannot push changes signed by it under
/// either spelling (which would have let him take sequence numbers of ana's
/// device and speak as it).
#[test]
fn registering_another_agents_device_in_upper_case_is_refused() {
    let s = Scene::new();
    let ana_device = s.ana.run(&["status", "--json"]).json()["actor"].as_str().expect("actor").to_string();
    let upper = ana_device.to_uppercase();
    assert_ne!(upper, ana_device);
    let (status, body) = register(&s.relay, &s.bob.token, &upper);
    assert_eq!((status, body["code"].as_str()), (409, Some("device_taken")), "{body:#}");

    let ana_actor: ActorId = ana_device.as_str().try_into().expect("an actor id");
    let mut doc = s.bobs_copy();
    doc.set_actor(&ana_actor);
    let stamp = Hlc::new(u64::try_from(now_ms()).unwrap_or(0), 0, ids::replica_of(&ana_actor)).encode();
    put_raw_event(&mut doc, &stamp, &event("bob", comment("bob, signed as ana's device")));
    let data = encode_data(&doc.save());
    for device in [&upper, &ana_device] {
        let req = json!({"protocol": PROTOCOL_VERSION, "device": device, "clock_ms": now_ms(),
            "push": [{"id": s.id, "kind": "ticket", "data": data}]});
        let (status, body) = post(&s.relay, "/v1/sync", &s.bob.token, &req);
        assert!(status == 400 || status == 403, "bob pushing as {device}: {status} {body:#}");
        let code = body["code"].as_str().unwrap_or_default();
        assert!(["non_canonical_id", "device_unregistered"].contains(&code), "{body:#}");
    }
    s.assert_unharmed();
    // ana's device is still hers alone: her next edit lands.
    s.ana.run(&["comment", &s.id, "ana: still my device"]).ok();
    let report = sync(&s.ana);
    assert_eq!(report["refused"], json!([]), "{report:#}");
    let t = s.relay.ticket(&s.id, &s.lea.token);
    assert_eq!(comments(&t).last().map(|(a, b)| (a.as_str(), b.as_str())), Some(("ana", "ana: still my device")));
}

/// Issue item 4b: a document pushed under the upper-case spelling of ana's
/// ticket id (the genesis, then bob's own `create` and `closed`): refused,
/// and the board still shows ana's open ticket.
#[test]
fn a_document_under_an_upper_case_ticket_id_is_refused_and_harmless() {
    let s = Scene::new();
    let mut doc = TicketDoc::genesis(uuid(&s.id), DocKind::Ticket);
    doc.set_actor(&s.bob.actor);
    let t = now_ms();
    let create = EventBody::Create {
        subject: "Closed by bob".into(),
        priority: "low".into(),
        category: "hardware".into(),
        assignee: Some("bob".into()),
    };
    put_raw_event(&mut doc, &s.bob.stamp(t), &event("bob", create));
    let closed = EventBody::Set { field: Field::Status, to: Some("closed".into()), prev: None };
    put_raw_event(&mut doc, &s.bob.stamp(t + 1), &event("bob", closed));
    let upper = s.id.to_uppercase();
    let (status, body) = s.bob.push(&s.relay, &upper, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "non_canonical_id", "{body:#}");
    assert_eq!(status, 400);
    s.assert_unharmed();
}

/// Issue item 5: an event stamped `9999999999999999.999999.<replica>`: every
/// device that pulled it refused every local edit afterwards.
#[test]
fn a_far_future_clock_stamp_is_refused_and_harmless() {
    a_far_future_clock_stamp_is_refused_and_harmless_on(Scene::new());
}

#[test]
fn a_far_future_clock_stamp_is_refused_and_harmless_on_postgres() {
    a_far_future_clock_stamp_is_refused_and_harmless_on(Scene::on(Relay::start_on(Backend::Postgres)));
}

fn a_far_future_clock_stamp_is_refused_and_harmless_on(s: Scene) {
    let mut doc = s.bobs_copy();
    let stamp = Hlc::new(9_999_999_999_999_999, 999_999, ids::replica_of(&s.bob.actor)).encode();
    put_raw_event(&mut doc, &stamp, &event("bob", comment("bob: I win every last-writer-wins")));
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "event_time", "{body:#}");
    s.assert_unharmed();

    // The control: the same comment under an honest stamp, through the same
    // path, is bob's to write.
    let mut doc = s.bobs_copy();
    put_raw_event(&mut doc, &s.bob.stamp(now_ms()), &event("bob", comment("bob: honest")));
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(status, 200, "an honest comment through the same path: {body:#}");
    sync(&s.lea);
    let shown = s.lea.show(&s.id);
    assert_eq!(comments(&shown).last().map(|(a, b)| (a.as_str(), b.as_str())), Some(("bob", "bob: honest")));
}
