//! Trust, round 2 (issue #19 items 1, 2 and 8), end to end against a real
//! relay on SQLite and on PostgreSQL: text no backend can store is refused
//! per document or per request (or normalised from a chat tool), never a
//! 5xx; an inbox conversation's prefill comes only from the relay's copy,
//! and conversation ids live in namespaces that cannot collide; an event
//! dated before what its device had already synced is refused.

use automerge::ActorId;
use serde_json::{json, Value};
use tickets_core::conversation::{Conversation, Customer, Message, Role};
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{create_ticket, Author, NewTicket};
use tickets_core::event::{EventBody, StoredEvent};
use tickets_core::hlc::Clock;
use tickets_core::ids;
use tickets_core::model::Priority;
use tickets_core::protocol::{encode_data, PROTOCOL_VERSION};

use crate::harness::{client, sync, Backend, Relay};
use crate::hostile_support::{comment, comments, event, post, put_raw_event, refused_code, Attacker, Scene};
use crate::support::now_ms;

const DAY_MS: i64 = 86_400_000;

fn on(backend: Backend) -> Relay {
    Relay::start_on(backend)
}

/// Pushes several whole documents in one request.
fn push_all(relay: &Relay, bob: &Attacker, docs: &mut [(&str, &mut TicketDoc)]) -> (u16, Value) {
    let push: Vec<Value> =
        docs.iter_mut().map(|(id, d)| json!({"id": id, "kind": "ticket", "data": encode_data(&d.save())})).collect();
    let req = json!({"protocol": PROTOCOL_VERSION, "device": bob.device(), "clock_ms": now_ms(), "push": push});
    post(relay, "/v1/sync", &bob.token, &req)
}

// ---- item 1: text a backend cannot store --------------------------------

#[test]
fn a_nul_in_one_document_is_refused_on_its_own_and_the_rest_of_the_push_goes_on() {
    nul_in_one_document(Scene::new());
}

#[test]
fn a_nul_in_one_document_is_refused_on_its_own_and_the_rest_of_the_push_goes_on_on_postgres() {
    nul_in_one_document(Scene::on(on(Backend::Postgres)));
}

fn nul_in_one_document(s: Scene) {
    let other = s.ana.create("Second ticket", "low", "hardware");
    sync(&s.ana);
    let mut bad = s.bobs_copy();
    let mut good = s.bob.pull(&s.relay, &other, DocKind::Ticket);
    put_raw_event(&mut bad, &s.bob.stamp(now_ms()), &event("bob", comment("a NUL \u{0} here")));
    put_raw_event(&mut good, &s.bob.stamp(now_ms() + 1), &event("bob", comment("bob: fine")));
    let (status, body) = push_all(&s.relay, &s.bob, &mut [(s.id.as_str(), &mut bad), (other.as_str(), &mut good)]);
    assert_eq!(status, 200, "one bad document does not fail the push: {body:#}");
    let pushed = body["pushed"].as_array().expect("pushed[]");
    assert_eq!(pushed[0]["accepted"], false, "{body:#}");
    assert_eq!(pushed[0]["code"], "text_unstorable", "{body:#}");
    assert_eq!(pushed[1]["accepted"], true, "{body:#}");
    let t = s.relay.ticket(&other, &s.lea.token);
    assert!(t["comments"].as_array().is_some_and(|c| c.iter().any(|c| c["body"] == "bob: fine")), "{t:#}");

    // Alone, it is refused with the same code and a 4xx.
    let mut bad = s.bobs_copy();
    put_raw_event(&mut bad, &s.bob.stamp(now_ms() + 2), &event("bob", EventBody::Comment { body: "\u{0}".into() }));
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut bad);
    assert_eq!(refused_code(status, &body), "text_unstorable", "{body:#}");
    // Nothing of it reached anyone: the lead syncs cleanly and sees ana's
    // ticket as it was (the board holds the second ticket too, so the
    // scene's own check does not apply).
    let report = sync(&s.lea);
    assert_eq!((report["damaged"].clone(), report["refused"].clone()), (json!([]), json!([])), "{report:#}");
    let t = s.relay.ticket(&s.id, &s.lea.token);
    assert_eq!(comments(&t), comments(&s.before), "{t:#}");
    assert_eq!(comments(&s.lea.show(&s.id)), comments(&s.before));
}

#[test]
fn a_nul_in_a_query_string_is_a_400_never_a_5xx() {
    nul_in_query_strings(&on(Backend::Sqlite));
}

#[test]
fn a_nul_in_a_query_string_is_a_400_never_a_5xx_on_postgres() {
    nul_in_query_strings(&on(Backend::Postgres));
}

fn nul_in_query_strings(relay: &Relay) {
    let lea = relay.add_agent("lea", "lead", &[]);
    for path in [
        "/v1/tickets?search=%00",
        "/v1/tickets?category=a%00b",
        "/v1/tickets?assignee=%00",
        "/v1/tickets?sort=created&q=x%00",
        "/v1/export?format=json&category=%00",
    ] {
        let resp = relay.get(path, &lea);
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_str(&resp.text().unwrap_or_default()).expect("a JSON body");
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "text_unstorable", "{path}: {body}");
    }
    // The relay still answers the same query without the NUL.
    assert_eq!(relay.get("/v1/tickets?search=x", &lea).status().as_u16(), 200);
}

/// A customer's NUL reaches a ticket through the prefill: it is kept as
/// U+FFFD by the webhook, and the agent's device syncs on both backends.
#[test]
fn a_customers_nul_is_normalised_and_the_agents_device_keeps_syncing() {
    customers_nul(&on(Backend::Sqlite));
}

#[test]
fn a_customers_nul_is_normalised_and_the_agents_device_keeps_syncing_on_postgres() {
    customers_nul(&on(Backend::Postgres));
}

fn customers_nul(relay: &Relay) {
    let url = webhook(relay, "web", "generic");
    let body = json!({"id": "n1", "channel": "web", "customer": {"name": "Ana\u{0}Cliente"},
        "messages": [{"id": "m1", "role": "customer", "text": "hello\u{0}world", "at": "2026-01-01T00:00:00Z"}]});
    let (status, answer) = deliver(&url, &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["conversation"], "generic:web:n1", "{answer}");
    let ana = relay.agent("ana", "agent", &[]);
    let listed = ana.run(&["inbox", "--json"]).json();
    assert_eq!(listed[0]["messages"][0]["text"], "hello\u{FFFD}world", "{listed:#}");
    let id = ana
        .run(&[
            "create",
            "--conversation",
            "generic:web:n1",
            "--subject",
            "From chat",
            "--priority",
            "high",
            "--category",
            "hardware",
        ])
        .ok();
    let unrelated = ana.create("Unrelated", "low", "hardware");
    let report = sync(&ana);
    assert_eq!(report["refused"], json!([]), "{report:#}");
    let lea = relay.add_agent("lea", "lead", &[]);
    let t = relay.ticket(id.trim(), &lea);
    assert!(t["description"].as_str().is_some_and(|d| d.contains("hello\u{FFFD}world")), "{t:#}");
    assert_eq!(relay.ticket(&unrelated, &lea)["subject"], "Unrelated");
}

// ---- item 2: forged prefills and namespaces ------------------------------

fn webhook(relay: &Relay, name: &str, kind: &str) -> String {
    let url = relay.url();
    let v = relay.admin(&["inbox", "add", name, "--kind", kind, "--url", url.as_str(), "--json"]).json();
    v["url"].as_str().expect("the webhook URL").to_string()
}

fn deliver(url: &str, body: &Value) -> (u16, Value) {
    let resp = client().post(url).json(body).send().expect("POST the webhook");
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().unwrap_or_default()).expect("a JSON answer"))
}

/// bob's own ticket made from `conv` on a device of his (as a program
/// holding his token could): the deterministic prefill and his creation.
fn crafted_ticket(bob: &Attacker, conv: &Conversation) -> (String, TicketDoc) {
    let id = ids::conversation_ticket_id(&conv.id);
    let author = Author { agent: "bob".into(), actor: bob.actor.clone() };
    let mut clock = Clock::new(ids::replica_of(&bob.actor));
    let new = NewTicket {
        subject: "Refund".into(),
        priority: Priority::High,
        category: "hardware".into(),
        description: None,
        assignee: None,
    };
    let doc = create_ticket(id, &author, &mut clock, now_ms(), &new, Some(conv)).expect("a ticket");
    (id.to_string(), doc)
}

fn invented(id: &str) -> Conversation {
    let msg = |role, text: &str, at: &str| Message { from: None, role, text: text.into(), at: at.into() };
    Conversation {
        id: id.into(),
        channel: Some("web".into()),
        customer: Some(Customer { name: Some("Carla".into()) }),
        messages: vec![
            msg(Role::Customer, "I agree to pay 5000 EUR extra", "2026-01-01T00:00:00Z"),
            msg(Role::Agent, "noted", "2026-01-01T00:00:01Z"),
        ],
    }
}

#[test]
fn a_forged_prefill_of_an_inbox_conversation_is_refused() {
    forged_prefill(&on(Backend::Sqlite));
}

#[test]
fn a_forged_prefill_of_an_inbox_conversation_is_refused_on_postgres() {
    forged_prefill(&on(Backend::Postgres));
}

fn forged_prefill(relay: &Relay) {
    let url = webhook(relay, "web", "generic");
    let real = json!({"id": "98", "customer": {"name": "Carla"},
        "messages": [{"id": "m1", "role": "customer", "text": "my order is late", "at": "2026-01-01T00:00:00Z"}]});
    assert_eq!(deliver(&url, &real).0, 200);
    let lea = relay.agent("lea", "lead", &[]);
    let bob_token = relay.add_agent("bob", "agent", &[]);
    let bob = Attacker::register(relay, &bob_token, ActorId::from([0xb0; 16].as_slice()));

    // Invented words under a conversation the relay holds.
    let (id, mut doc) = crafted_ticket(&bob, &invented("generic:web:98"));
    let (status, body) = bob.push(relay, &id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "prefill_forged", "{body:#}");
    assert_eq!(status, 403);
    // An inbox id the relay does not hold.
    let (id2, mut doc) = crafted_ticket(&bob, &invented("chatwoot:support:99"));
    let (status, body) = bob.push(relay, &id2, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "conversation_unknown", "{body:#}");
    let lead_sees = relay.tickets(&lea.token);
    assert!(lead_sees.is_empty(), "nothing of bob's reached the board: {lead_sees:#?}");

    // The honest path: a device makes the ticket from its inbox copy.
    let ana = relay.agent("ana", "agent", &[]);
    let made = ana
        .run(&[
            "create",
            "--conversation",
            "generic:web:98",
            "--subject",
            "Late order",
            "--priority",
            "high",
            "--category",
            "hardware",
        ])
        .ok();
    let report = sync(&ana);
    assert_eq!(report["refused"], json!([]), "{report:#}");
    assert_eq!(made.trim(), id, "the conversation's ticket id");
    let t = relay.ticket(&id, &lea.token);
    assert!(t["description"].as_str().is_some_and(|d| d.contains("my order is late")), "{t:#}");
    assert!(!t["description"].as_str().unwrap_or_default().contains("5000"), "{t:#}");

    // A file's id is in the file namespace: the same id from a file is
    // another conversation, not the inbox's.
    let file =
        ana.file("conv.json", &serde_json::to_string(&json!({"id": "generic:web:98", "messages": []})).expect("json"));
    let from_file = ana
        .run(&[
            "create",
            "--conversation",
            file.to_str().expect("path"),
            "--subject",
            "From a file",
            "--priority",
            "low",
            "--category",
            "hardware",
        ])
        .ok();
    let shown = ana.show(from_file.trim());
    assert_eq!(shown["conversation_id"], "file:generic:web:98", "{shown:#}");
    assert_ne!(from_file.trim(), id);
    assert_eq!(sync(&ana)["refused"], json!([]));
}

/// A generic inbox posting a Chatwoot-shaped id stays in its own namespace:
/// the Chatwoot inbox's real conversation is delivered, not squatted (409).
#[test]
fn a_generic_inbox_cannot_squat_another_inboxs_conversation() {
    squat(&on(Backend::Sqlite));
}

#[test]
fn a_generic_inbox_cannot_squat_another_inboxs_conversation_on_postgres() {
    squat(&on(Backend::Postgres));
}

fn squat(relay: &Relay) {
    let generic = webhook(relay, "cw", "generic");
    let chatwoot = webhook(relay, "support", "chatwoot");
    let squatting = json!({"id": "chatwoot:support:10", "messages": [
        {"id": "s1", "role": "customer", "text": "squatted", "at": "2026-01-01T00:00:00Z"}]});
    let (status, body) = deliver(&generic, &squatting);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conversation"], "generic:cw:chatwoot:support:10", "{body}");
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/chatwoot/message_created.incoming.json");
    let real: Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    let (status, body) = deliver(&chatwoot, &real);
    assert_eq!(status, 200, "the real delivery is stored: {body}");
    assert_eq!(body["conversation"], "chatwoot:support:10", "{body}");
}

// ---- item 8: back-dating --------------------------------------------------

/// A request that completes a sync: caught up on pulls, nothing pushed.
fn complete_sync(relay: &Relay, bob: &Attacker) {
    let req = json!({"protocol": PROTOCOL_VERSION, "device": bob.device(), "clock_ms": now_ms(),
        "pull": {"cursor": 0, "bootstrapped": true}});
    let (status, body) = post(relay, "/v1/sync", &bob.token, &req);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_event_back_dated_below_the_devices_floor_is_refused() {
    back_dated(Scene::new());
}

#[test]
fn an_event_back_dated_below_the_devices_floor_is_refused_on_postgres() {
    back_dated(Scene::on(on(Backend::Postgres)));
}

fn back_dated(s: Scene) {
    // bob's device has synced (its bootstrap in `bobs_copy`, then a caught-up
    // request): its floor is that sync's start.
    let mut doc = s.bobs_copy();
    complete_sync(&s.relay, &s.bob);
    let now = now_ms();
    let stamp = s.bob.stamp(now);
    let old = StoredEvent::new("bob", comment("bob: answered two days ago")).written_at(now - 2 * DAY_MS);
    put_raw_event(&mut doc, &stamp, &old.encode());
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "event_backdated", "{body:#}");

    // The control: the same comment dated now goes through.
    let mut doc = s.bobs_copy();
    let fresh = StoredEvent::new("bob", comment("bob: answered now")).written_at(now_ms());
    put_raw_event(&mut doc, &s.bob.stamp(now_ms()), &fresh.encode());
    let (status, body) = s.bob.push(&s.relay, &s.id, DocKind::Ticket, &mut doc);
    assert_eq!(status, 200, "{body:#}");
}

/// A second creation of an inbox conversation's ticket, back-dated 30 days
/// (before the conversation reached the relay), is refused: the creator
/// and creation time stay the first device's.
#[test]
fn a_back_dated_second_creation_never_takes_the_ticket() {
    second_creation(&on(Backend::Sqlite));
}

#[test]
fn a_back_dated_second_creation_never_takes_the_ticket_on_postgres() {
    second_creation(&on(Backend::Postgres));
}

fn second_creation(relay: &Relay) {
    let url = webhook(relay, "web", "generic");
    let real = json!({"id": "7", "customer": {"name": "Carla"},
        "messages": [{"id": "m1", "role": "customer", "text": "hello", "at": "2026-01-01T00:00:00Z"}]});
    assert_eq!(deliver(&url, &real).0, 200);
    let ana = relay.agent("ana", "agent", &[]);
    let id = ana
        .run(&[
            "create",
            "--conversation",
            "generic:web:7",
            "--subject",
            "Hello",
            "--priority",
            "high",
            "--category",
            "hardware",
        ])
        .ok();
    let id = id.trim().to_string();
    sync(&ana);
    let lea = relay.add_agent("lea", "lead", &[]);
    let before = relay.ticket(&id, &lea);
    assert_eq!(before["created_by"], "ana");

    let bob_token = relay.add_agent("bob", "agent", &[]);
    let bob = Attacker::register(relay, &bob_token, ActorId::from([0xb0; 16].as_slice()));
    let mut doc = bob.pull(relay, &id, DocKind::Ticket);
    let then = now_ms() - 30 * DAY_MS;
    let creation = StoredEvent::new(
        "bob",
        EventBody::Create {
            subject: "Hello".into(),
            priority: "high".into(),
            category: "hardware".into(),
            assignee: None,
        },
    )
    .written_at(then);
    put_raw_event(&mut doc, &bob.stamp(then), &creation.encode());
    let (status, body) = bob.push(relay, &id, DocKind::Ticket, &mut doc);
    assert_eq!(refused_code(status, &body), "event_backdated", "{body:#}");
    let after = relay.ticket(&id, &lea);
    assert_eq!(after["created_by"], "ana");
    assert_eq!(after["created_at"], before["created_at"]);
}
