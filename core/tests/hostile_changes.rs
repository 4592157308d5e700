//! A corpus of hostile changes, crafted with the automerge crate the way an
//! agent holding one valid token could craft them, and the legitimate shape
//! of every command beside them. Each case is pushed to the relay's ingest
//! (the pure function the relay runs) on top of a ticket another agent
//! made, and must be accepted or refused with the expected code.

use std::collections::HashSet;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ScalarValue, ROOT};
use tickets_core::conversation::Conversation;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{self, Author, Edit, NewTicket};
use tickets_core::event::{EventBody, StoredEvent};
use tickets_core::hlc::{Clock, Hlc};
use tickets_core::ids;
use tickets_core::ingest::{ingest, Principal, RefusalCode};
use tickets_core::model::{Priority, Status};
use tickets_core::view;
use uuid::Uuid;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const MIN: i64 = 60_000;

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}
const ANA: u8 = 0x0a;
const LEA: u8 = 0x1e;
const MAL: u8 = 0x0e;

fn principal(agent: &str, n: u8, notes: bool) -> Principal {
    Principal { agent: agent.into(), actors: HashSet::from([actor(n)]), internal_notes: notes }
}

fn mallory() -> Principal {
    principal("mallory", MAL, false)
}

/// What the relay holds: a ticket ana created, with a comment and a status
/// change, and (from lea) an internal note.
struct World {
    id: Uuid,
    ticket: Vec<u8>,
    notes: Vec<u8>,
}

fn conversation() -> Conversation {
    let json = br#"{"id":"wa-77","channel":"whatsapp","customer":{"name":"Rita"},
        "messages":[{"from":"Rita","role":"customer","text":"My order is late","at":"2026-01-01T00:00:00Z"}]}"#;
    Conversation::parse(json).expect("a valid conversation")
}

fn world(from_conversation: bool) -> World {
    let conv = conversation();
    let id = if from_conversation { ids::conversation_ticket_id(&conv.id) } else { Uuid::from_u128(0xabc) };
    let ana = Author { agent: "ana".into(), actor: actor(ANA) };
    let mut clock = Clock::new(ids::replica_of(&ana.actor));
    let new = NewTicket {
        subject: "Printer jams".into(),
        priority: Priority::High,
        category: "hardware".into(),
        description: Some("Floor 2".into()),
        assignee: None,
    };
    let mut doc =
        edit::create_ticket(id, &ana, &mut clock, T0, &new, from_conversation.then_some(&conv)).expect("creates");
    let mut notes = None;
    for (i, e) in [Edit::Comment("On my way".into()), Edit::Status(Status::InProgress)].iter().enumerate() {
        let v = view::materialize(&doc, None).expect("materializes");
        edit::apply_edit(&mut doc, &mut notes, &v, &ana, &mut clock, T0 + (i as i64 + 1) * MIN, e).expect("edits");
    }
    let lea = Author { agent: "lea".into(), actor: actor(LEA) };
    let mut lclock = Clock::new(ids::replica_of(&lea.actor));
    let v = view::materialize(&doc, None).expect("materializes");
    edit::apply_edit(&mut doc, &mut notes, &v, &lea, &mut lclock, T0 + 3 * MIN, &Edit::Note("VIP".into()))
        .expect("notes");
    let mut notes = notes.expect("a notes document");
    World { id, ticket: doc.save(), notes: notes.save() }
}

/// The stored document as an attacker (or an honest device) holds it.
fn held(w: &World, kind: DocKind, as_actor: u8) -> TicketDoc {
    let bytes = if kind == DocKind::Ticket { &w.ticket } else { &w.notes };
    let mut d = TicketDoc::load(w.id, kind, bytes).expect("loads");
    d.set_actor(&actor(as_actor));
    d
}

/// The changes `d` has beyond `heads`.
fn changes_beyond_heads(d: &mut TicketDoc, heads: &[automerge::ChangeHash]) -> Vec<u8> {
    d.changes_since(heads).iter().flat_map(|c| c.raw_bytes().to_vec()).collect()
}

/// The changes `d` has beyond what the relay holds, as a device pushes them.
fn changes_beyond(w: &World, kind: DocKind, d: &mut TicketDoc) -> Vec<u8> {
    let held = held(w, kind, MAL).heads_owned();
    d.changes_since(&held).iter().flat_map(|c| c.raw_bytes().to_vec()).collect()
}

fn key(wall: i64, n: u8) -> String {
    Hlc::new(wall as u64, 0, ids::replica_of(&actor(n))).encode()
}

fn event(by: &str, body: EventBody, at: Option<i64>) -> String {
    let mut e = StoredEvent::new(by, body);
    e.at = at;
    e.encode()
}

fn comment(body: &str) -> EventBody {
    EventBody::Comment { body: body.into() }
}

/// Key of the first event of the stored ticket whose encoded value
/// contains `needle`.
fn existing_key(d: &TicketDoc, needle: &str) -> String {
    d.raw_events().into_iter().find(|(_, v)| v.as_deref().is_some_and(|v| v.contains(needle))).expect("event").0
}

fn events_obj(am: &AutoCommit) -> automerge::ObjId {
    match am.get(ROOT, "events") {
        Ok(Some((_, o))) => o,
        other => panic!("events: {other:?}"),
    }
}

fn text_obj(am: &AutoCommit) -> automerge::ObjId {
    match am.get(ROOT, "description") {
        Ok(Some((_, o))) => o,
        other => panic!("description: {other:?}"),
    }
}

/// A raw put of `value` under `key` in the events map, by mallory.
fn put_event(d: &mut TicketDoc, key: &str, value: &str) {
    let am = d.automerge();
    let ev = events_obj(am);
    am.put(&ev, key, value).expect("put");
    d.commit(T0 + 10 * MIN);
}

struct Case {
    name: &'static str,
    kind: DocKind,
    who: Principal,
    /// `None`: the document is new to the relay.
    existing: bool,
    conversation: bool,
    /// Builds the pushed data.
    push: fn(&World) -> (String, Vec<u8>),
    want: Result<(), RefusalCode>,
}

fn check(c: Case) {
    let w = world(c.conversation);
    let (id, data) = (c.push)(&w);
    let stored = match (c.existing, c.kind) {
        (false, _) => None,
        (true, DocKind::Ticket) => Some(w.ticket.as_slice()),
        (true, DocKind::Notes) => Some(w.notes.as_slice()),
    };
    let got = ingest(&id, c.kind.as_str(), stored, &data, &c.who, T0 + 20 * MIN);
    match (&got, c.want) {
        (Ok(_), Ok(())) => {}
        (Err(r), Err(code)) if r.code == code => {
            assert!(!r.reason.is_empty(), "{}: a refusal says why", c.name);
        }
        (Ok(_), Err(code)) => panic!("{}: accepted, but should be refused with {code:?}", c.name),
        (Err(r), _) => panic!("{}: refused with {:?} ({}), want {:?}", c.name, r.code, r.reason, c.want),
    }
}

fn ticket_id(w: &World) -> String {
    w.id.to_string()
}

/// mallory's own edit through the product's code path.
fn own_edit(w: &World, e: Edit, kind: DocKind) -> Vec<u8> {
    let mut d = held(w, DocKind::Ticket, MAL);
    let mut notes = Some(held(w, DocKind::Notes, MAL));
    let v = view::materialize(&d, notes.as_ref()).expect("materializes");
    let who = Author { agent: "mallory".into(), actor: actor(MAL) };
    let mut clock = Clock::new(ids::replica_of(&who.actor));
    edit::apply_edit(&mut d, &mut notes, &v, &who, &mut clock, T0 + 10 * MIN, &e).expect("edits");
    match kind {
        DocKind::Ticket => changes_beyond(w, kind, &mut d),
        DocKind::Notes => {
            let mut n = notes.expect("notes");
            changes_beyond(w, kind, &mut n)
        }
    }
}

#[test]
fn the_legitimate_shape_of_every_command_passes() {
    let ok = |name, push: fn(&World) -> (String, Vec<u8>)| Case {
        name,
        kind: DocKind::Ticket,
        who: mallory(),
        existing: true,
        conversation: false,
        push,
        want: Ok(()),
    };
    check(ok("comment", |w| (ticket_id(w), own_edit(w, Edit::Comment("fixed".into()), DocKind::Ticket))));
    check(ok("status", |w| (ticket_id(w), own_edit(w, Edit::Status(Status::Resolved), DocKind::Ticket))));
    check(ok("priority", |w| (ticket_id(w), own_edit(w, Edit::Priority(Priority::Urgent), DocKind::Ticket))));
    check(ok("assignee", |w| (ticket_id(w), own_edit(w, Edit::Assignee(Some("team:field".into())), DocKind::Ticket))));
    check(ok("subject", |w| (ticket_id(w), own_edit(w, Edit::Subject("Printer jams daily".into()), DocKind::Ticket))));
    check(ok("category", |w| (ticket_id(w), own_edit(w, Edit::Category("network".into()), DocKind::Ticket))));
    check(ok("description", |w| {
        (ticket_id(w), own_edit(w, Edit::Description("Floor 3, not 2".into()), DocKind::Ticket))
    }));
    check(ok("a re-send of what the relay holds", |w| (ticket_id(w), w.ticket.clone())));
    check(Case {
        name: "a note by a permitted agent",
        kind: DocKind::Notes,
        who: principal("mallory", MAL, true),
        existing: true,
        conversation: false,
        push: |w| (ticket_id(w), own_edit(w, Edit::Note("call back at 5".into()), DocKind::Notes)),
        want: Ok(()),
    });
    check(Case {
        name: "a new ticket, whole",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: false,
        conversation: false,
        push: |_| {
            let who = Author { agent: "mallory".into(), actor: actor(MAL) };
            let mut clock = Clock::new(ids::replica_of(&who.actor));
            let new = NewTicket {
                subject: "Mine".into(),
                priority: Priority::Low,
                category: "misc".into(),
                description: Some("text".into()),
                assignee: Some("mallory".into()),
            };
            let id = Uuid::from_u128(0xdef);
            let mut d = edit::create_ticket(id, &who, &mut clock, T0, &new, None).expect("creates");
            (id.to_string(), d.save())
        },
        want: Ok(()),
    });
    check(Case {
        name: "the same conversation's ticket created on another device",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: true,
        conversation: true,
        push: |w| {
            let who = Author { agent: "mallory".into(), actor: actor(MAL) };
            let mut clock = Clock::new(ids::replica_of(&who.actor));
            let new = NewTicket {
                subject: "Late order".into(),
                priority: Priority::Medium,
                category: "billing".into(),
                description: None,
                assignee: None,
            };
            let mut d = edit::create_ticket(w.id, &who, &mut clock, T0 + 5 * MIN, &new, Some(&conversation()))
                .expect("creates");
            (ticket_id(w), d.save())
        },
        want: Ok(()),
    });
}

#[test]
fn hostile_changes_are_refused_with_their_code() {
    let bad = |name, push: fn(&World) -> (String, Vec<u8>), code| Case {
        name,
        kind: DocKind::Ticket,
        who: mallory(),
        existing: true,
        conversation: false,
        push,
        want: Err(code),
    };
    use RefusalCode as C;
    let cases = [
        bad(
            "overwrite another agent's comment as the lead's words",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = existing_key(&d, "On my way");
                put_event(&mut d, &k, &event("lea", comment("Lea: APPROVED, refund 5000 EUR"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventOverwrite,
        ),
        bad(
            "overwrite a comment with the attacker's own name",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = existing_key(&d, "On my way");
                put_event(&mut d, &k, &event("mallory", comment("rewritten"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventOverwrite,
        ),
        bad(
            "overwrite an event with a note kind in the public document",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = existing_key(&d, "On my way");
                put_event(&mut d, &k, &event("mallory", EventBody::Note { body: "x".into() }, None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventOverwrite,
        ),
        bad(
            "delete another agent's create event",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = existing_key(&d, "\"create\"");
                let am = d.automerge();
                let ev = events_obj(am);
                am.delete(&ev, k.as_str()).expect("delete");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventDelete,
        ),
        bad(
            "replace the root events map with a string",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                d.automerge().put(ROOT, "events", "gone").expect("put");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "a new root key",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                d.automerge().put(ROOT, "owner", "mallory").expect("put");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "a root conversation link",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                d.automerge().put(ROOT, "conversation", "{}").expect("put");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "an object nested in the events map",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let am = d.automerge();
                let ev = events_obj(am);
                am.put_object(&ev, key(T0 + 9 * MIN, MAL), ObjType::Map).expect("put");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "a counter in the events map",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let am = d.automerge();
                let ev = events_obj(am);
                am.put(&ev, key(T0 + 9 * MIN, MAL), ScalarValue::counter(1)).expect("put");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "an object inserted into the description",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let am = d.automerge();
                let t = text_obj(am);
                am.insert_object(&t, 0, ObjType::Map).expect("insert");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "a mark on the description",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let am = d.automerge();
                let t = text_obj(am);
                let mark = automerge::marks::Mark::new("bold".into(), true, 0, 3);
                am.mark(&t, mark, automerge::marks::ExpandMark::None).expect("mark");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "a description character overwritten in place",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let am = d.automerge();
                let t = text_obj(am);
                am.put(&t, 0, "X").expect("put");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
        bad(
            "a far-future clock stamp",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = Hlc::new(9_999_999_999_999_999, 999_999, ids::replica_of(&actor(MAL))).encode();
                put_event(&mut d, &k, &event("mallory", comment("I win"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventTime,
        ),
        bad(
            "a stamp just past the bound",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = key(T0 + 20 * MIN + tickets_core::hlc::STAMP_AHEAD_MS_MAX + MIN, MAL);
                put_event(&mut d, &k, &event("mallory", comment("later"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventTime,
        ),
        bad(
            "another device's clock stamp",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, &key(T0 + 9 * MIN, ANA), &event("mallory", comment("as ana's device"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventStamp,
        ),
        bad(
            "a key that is not a stamp",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, "zzz", &event("mallory", comment("x"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventStamp,
        ),
        bad(
            "a new event in the lead's name",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("lea", comment("APPROVED"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventAuthor,
        ),
        bad(
            "a written time later than its stamp",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", comment("x"), Some(T0 + 19 * MIN)));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventTime,
        ),
        bad(
            "a comment dated 1970",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", comment("x"), Some(0)));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventTime,
        ),
        bad(
            "an undecodable event",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), "{not json");
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventInvalid,
        ),
        bad(
            "a comment over the size limit",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let body = "x".repeat(tickets_core::view::BODY_BYTES_MAX + 1);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", comment(&body), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventInvalid,
        ),
        bad(
            "a note in the public document",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let body = EventBody::Note { body: "leak".into() };
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", body, None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::WrongDocument,
        ),
        bad(
            "a back-dated second creation hijacks the ticket",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let body = EventBody::Create {
                    subject: "mine now".into(),
                    priority: "low".into(),
                    category: "misc".into(),
                    assignee: Some("mallory".into()),
                };
                put_event(&mut d, &key(T0 - MIN, MAL), &event("mallory", body, None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventOverwrite,
        ),
        bad(
            "another agent's device actor",
            |w| {
                let mut d = held(w, DocKind::Ticket, ANA);
                put_event(&mut d, &key(T0 + 9 * MIN, ANA), &event("ana", comment("as ana"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::Impersonation,
        ),
        bad(
            "a change signed as the genesis actor",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                d.set_actor(&ids::genesis_actor(w.id, "ticket"));
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", comment("x"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::ForgedGenesis,
        ),
        bad(
            "changes whose dependencies the relay lacks",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", comment("one"), None));
                let mid = d.heads();
                put_event(&mut d, &key(T0 + 9 * MIN + 1, MAL), &event("mallory", comment("two"), None));
                let data = d.changes_since(&mid).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
                (ticket_id(w), data)
            },
            C::MissingDeps,
        ),
        bad("bytes that are not Automerge", |w| (ticket_id(w), b"\x85\x6f\x4a\x83garbage".to_vec()), C::CorruptData),
        bad(
            "an upper-case spelling of an existing ticket id",
            |w| (ticket_id(w).to_uppercase(), own_edit(w, Edit::Comment("x".into()), DocKind::Ticket)),
            C::NonCanonicalId,
        ),
        bad(
            "an id with braces",
            |w| (format!("{{{}}}", ticket_id(w)), own_edit(w, Edit::Comment("x".into()), DocKind::Ticket)),
            C::NonCanonicalId,
        ),
        bad(
            "two changes writing one key",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = key(T0 + 9 * MIN, MAL);
                put_event(&mut d, &k, &event("mallory", comment("one"), None));
                put_event(&mut d, &k, &event("mallory", comment("two"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventOverwrite,
        ),
        bad(
            "a conversation prefill grafted onto another ticket",
            |w| {
                let conv = conversation();
                let prefill = conv.prefill().expect("prefill");
                let mut link = conv.link().expect("link");
                link.agent_reply_at_ms = Some(T0);
                let link = serde_json::to_string(&link).expect("json");
                // The change a prefill of this content makes on this ticket's
                // genesis, as the prefill of a conversation's ticket is.
                let mut d = TicketDoc::genesis(w.id, DocKind::Ticket);
                let before = d.heads();
                d.apply_prefill(&prefill, &link).expect("prefill");
                (ticket_id(w), changes_beyond_heads(&mut d, &before))
            },
            C::ForgedGenesis,
        ),
        bad(
            "a stamp key spelled with a plus sign",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let k = format!("+{}", &key(T0 + 9 * MIN, MAL)[1..]);
                put_event(&mut d, &k, &event("mallory", comment("x"), None));
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventStamp,
        ),
        bad(
            "an event with an unknown field carried along",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let v = event("mallory", comment("x"), None).replacen('{', r#"{"junk":"aaaa","#, 1);
                put_event(&mut d, &key(T0 + 9 * MIN, MAL), &v);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::EventInvalid,
        ),
        bad(
            "a text element that is not a character",
            |w| {
                let mut d = held(w, DocKind::Ticket, MAL);
                let am = d.automerge();
                let t = text_obj(am);
                am.insert(&t, 0, "x".repeat(500)).expect("insert");
                d.commit(T0 + 10 * MIN);
                (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
            },
            C::OpNotAllowed,
        ),
    ];
    for c in cases {
        check(c);
    }
    check(Case {
        name: "notes from an agent without the permission",
        kind: DocKind::Notes,
        who: mallory(),
        existing: true,
        conversation: false,
        push: |w| (ticket_id(w), own_edit(w, Edit::Note("peek".into()), DocKind::Notes)),
        want: Err(C::NotesForbidden),
    });
    check(Case {
        name: "a ticket event in the notes document",
        kind: DocKind::Notes,
        who: principal("mallory", MAL, true),
        existing: true,
        conversation: false,
        push: |w| {
            let mut d = held(w, DocKind::Notes, MAL);
            put_event(&mut d, &key(T0 + 9 * MIN, MAL), &event("mallory", comment("public?"), None));
            (ticket_id(w), changes_beyond(w, DocKind::Notes, &mut d))
        },
        want: Err(C::WrongDocument),
    });
    check(Case {
        name: "overwriting the lead's note",
        kind: DocKind::Notes,
        who: principal("mallory", MAL, true),
        existing: true,
        conversation: false,
        push: |w| {
            let mut d = held(w, DocKind::Notes, MAL);
            let k = existing_key(&d, "VIP");
            put_event(&mut d, &k, &event("mallory", EventBody::Note { body: "not VIP".into() }, None));
            (ticket_id(w), changes_beyond(w, DocKind::Notes, &mut d))
        },
        want: Err(C::EventOverwrite),
    });
    check(Case {
        name: "a new document with an extra root key",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: false,
        conversation: false,
        push: |_| {
            let who = Author { agent: "mallory".into(), actor: actor(MAL) };
            let mut clock = Clock::new(ids::replica_of(&who.actor));
            let new = NewTicket {
                subject: "Mine".into(),
                priority: Priority::Low,
                category: "misc".into(),
                description: None,
                assignee: None,
            };
            let id = Uuid::from_u128(0xdef);
            let mut d = edit::create_ticket(id, &who, &mut clock, T0, &new, None).expect("creates");
            d.automerge().put(ROOT, "admin", true).expect("put");
            d.commit(T0);
            (id.to_string(), d.save())
        },
        want: Err(C::OpNotAllowed),
    });
    check(Case {
        name: "a new ticket document without its creation",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: false,
        conversation: false,
        push: |_| {
            let id = Uuid::from_u128(0xfeed);
            let mut d = TicketDoc::genesis(id, DocKind::Ticket);
            d.set_actor(&actor(MAL));
            d.update_description("orphan").expect("text");
            d.commit(T0);
            (id.to_string(), d.save())
        },
        want: Err(C::BadShape),
    });
    check(Case {
        name: "a creation with an oversized category",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: false,
        conversation: false,
        push: |_| {
            let id = Uuid::from_u128(0xfeef);
            let mut d = TicketDoc::genesis(id, DocKind::Ticket);
            d.set_actor(&actor(MAL));
            let body = EventBody::Create {
                subject: "s".into(),
                priority: "low".into(),
                category: "c".repeat(10_000),
                assignee: None,
            };
            put_event(&mut d, &key(T0, MAL), &event("mallory", body, Some(T0)));
            (id.to_string(), d.save())
        },
        want: Err(C::EventInvalid),
    });
    let w = world(false);
    let got = ingest(&w.id.to_string(), "Ticket", Some(&w.ticket), &w.ticket, &mallory(), T0);
    assert_eq!(got.err().map(|r| r.code), Some(C::UnknownKind));
}

#[test]
fn every_code_has_one_spelling() {
    for c in RefusalCode::ALL {
        assert_eq!(RefusalCode::parse(c.as_str()), Some(c));
    }
    let unique: HashSet<&str> = RefusalCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(unique.len(), RefusalCode::ALL.len());
}

/// A whole document new to the relay is checked on its state (the cold
/// push's path): the same shapes are refused there too.
#[test]
fn hostile_shapes_in_a_whole_new_document_are_refused_too() {
    type Mutate = fn(&mut TicketDoc);
    let fresh = |mutate: Mutate| -> (String, Vec<u8>) {
        let who = Author { agent: "mallory".into(), actor: actor(MAL) };
        let mut clock = Clock::new(ids::replica_of(&who.actor));
        let new = NewTicket {
            subject: "Mine".into(),
            priority: Priority::Low,
            category: "misc".into(),
            description: Some("some text".into()),
            assignee: None,
        };
        let id = Uuid::from_u128(0x5eed);
        let mut d = edit::create_ticket(id, &who, &mut clock, T0, &new, None).expect("creates");
        mutate(&mut d);
        (id.to_string(), d.save())
    };
    let cases: [(&str, Mutate, RefusalCode); 9] = [
        ("nothing wrong", |_| {}, RefusalCode::Duplicate),
        (
            "an object in the events map",
            |d| {
                let am = d.automerge();
                let ev = events_obj(am);
                am.put_object(&ev, key(T0 + MIN, MAL), ObjType::Map).expect("put");
                d.commit(T0 + MIN);
            },
            RefusalCode::OpNotAllowed,
        ),
        (
            "a mark on the description",
            |d| {
                let am = d.automerge();
                let t = text_obj(am);
                let mark = automerge::marks::Mark::new("bold".into(), true, 0, 3);
                am.mark(&t, mark, automerge::marks::ExpandMark::None).expect("mark");
                d.commit(T0 + MIN);
            },
            RefusalCode::OpNotAllowed,
        ),
        (
            "an object in the description",
            |d| {
                let am = d.automerge();
                let t = text_obj(am);
                am.insert_object(&t, 0, ObjType::Map).expect("insert");
                d.commit(T0 + MIN);
            },
            RefusalCode::OpNotAllowed,
        ),
        (
            "a root key",
            |d| {
                d.automerge().put(ROOT, "owner", "mallory").expect("put");
                d.commit(T0 + MIN);
            },
            RefusalCode::OpNotAllowed,
        ),
        (
            "an event in the lead's name",
            |d| put_event(d, &key(T0 + MIN, MAL), &event("lea", comment("APPROVED"), None)),
            RefusalCode::EventAuthor,
        ),
        (
            "a note in the public document",
            |d| put_event(d, &key(T0 + MIN, MAL), &event("mallory", EventBody::Note { body: "x".into() }, None)),
            RefusalCode::WrongDocument,
        ),
        (
            "a far-future stamp",
            |d| {
                let k = Hlc::new(9_999_999_999_999_999, 0, ids::replica_of(&actor(MAL))).encode();
                put_event(d, &k, &event("mallory", comment("x"), None));
            },
            RefusalCode::EventTime,
        ),
        (
            "another device's stamp",
            |d| put_event(d, &key(T0 + MIN, ANA), &event("mallory", comment("x"), None)),
            RefusalCode::EventStamp,
        ),
    ];
    for (name, mutate, code) in cases {
        let (id, data) = fresh(mutate);
        let got = ingest(&id, "ticket", None, &data, &mallory(), T0 + 20 * MIN);
        match got {
            Ok(_) if name == "nothing wrong" => {}
            Ok(_) => panic!("{name}: accepted, want {code:?}"),
            Err(r) => assert_eq!(r.code, code, "{name}: {}", r.reason),
        }
    }
}

/// Round 2 (issue #19): text no backend can store, an inbox prefill (whose
/// claim the ingest hands to the relay to check against its copy), and
/// events dated below a floor.
#[test]
fn round_two_shapes_are_refused_with_their_code() {
    use RefusalCode as C;
    check(Case {
        name: "a comment holding a NUL",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: true,
        conversation: false,
        push: |w| {
            let mut d = held(w, DocKind::Ticket, MAL);
            put_event(&mut d, &key(T0 + 10 * MIN, MAL), &event("mallory", comment("a\u{0}b"), Some(T0 + 10 * MIN)));
            (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
        },
        want: Err(C::TextUnstorable),
    });
    check(Case {
        name: "a subject edit holding a NUL",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: true,
        conversation: false,
        push: |w| {
            let mut d = held(w, DocKind::Ticket, MAL);
            let body =
                EventBody::Set { field: tickets_core::event::Field::Subject, to: Some("x\u{0}".into()), prev: None };
            put_event(&mut d, &key(T0 + 10 * MIN, MAL), &event("mallory", body, Some(T0 + 10 * MIN)));
            (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
        },
        want: Err(C::TextUnstorable),
    });
    check(Case {
        name: "a NUL typed into the description",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: true,
        conversation: false,
        push: |w| {
            let mut d = held(w, DocKind::Ticket, MAL);
            let am = d.automerge();
            let t = text_obj(am);
            am.splice_text(&t, 0, 0, "\u{0}").expect("splice");
            d.commit(T0 + 10 * MIN);
            (ticket_id(w), changes_beyond(w, DocKind::Ticket, &mut d))
        },
        want: Err(C::TextUnstorable),
    });
    check(Case {
        name: "a new document whose description holds a NUL",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: false,
        conversation: false,
        push: |_| {
            let (id, mut d) = mallorys_ticket(None, Some("typed \u{0}"));
            (id, d.save())
        },
        want: Err(C::TextUnstorable),
    });
    check(Case {
        name: "a prefill holding a NUL",
        kind: DocKind::Ticket,
        who: mallory(),
        existing: false,
        conversation: false,
        push: |_| {
            let (id, mut d) = mallorys_ticket(Some(invented("generic:web:98", "pay\u{0}")), None);
            (id, d.save())
        },
        want: Err(C::TextUnstorable),
    });
}

fn invented(id: &str, text: &str) -> Conversation {
    use tickets_core::conversation::{Customer, Message, Role};
    Conversation {
        id: id.into(),
        channel: Some("web".into()),
        customer: Some(Customer { name: Some("Carla".into()) }),
        messages: vec![Message { from: None, role: Role::Agent, text: text.into(), at: "2026-01-01T00:00:00Z".into() }],
    }
}

/// A ticket of mallory's own, new to the relay, maybe from a conversation.
fn mallorys_ticket(conv: Option<Conversation>, description: Option<&str>) -> (String, TicketDoc) {
    let who = Author { agent: "mallory".into(), actor: actor(MAL) };
    let mut clock = Clock::new(ids::replica_of(&who.actor));
    let new = NewTicket {
        subject: "Mine".into(),
        priority: Priority::Low,
        category: "misc".into(),
        description: None,
        assignee: None,
    };
    let id = conv.as_ref().map(|c| ids::conversation_ticket_id(&c.id)).unwrap_or(Uuid::from_u128(0x5eee));
    let mut d = edit::create_ticket(id, &who, &mut clock, T0, &new, conv.as_ref()).expect("creates");
    if let Some(text) = description {
        d.set_actor(&actor(MAL));
        d.update_description(text).expect("text");
        d.commit(T0);
    }
    (id.to_string(), d)
}

/// The ingest hands an inbox prefill's claim to the relay (which checks it
/// against its copy of the conversation), whoever made it; a prefill that
/// is not a recomputed prefill at all is still a forged genesis.
#[test]
fn an_inbox_prefill_is_handed_to_the_relay_to_check() {
    let (id, mut d) = mallorys_ticket(Some(invented("generic:web:98", "I agree to pay")), None);
    let got = ingest(&id, "ticket", None, &d.save(), &mallory(), T0 + MIN).expect("the shape is allowed");
    let p = got.prefill.expect("the prefill's claim");
    assert_eq!(p.link.id, "generic:web:98");
    assert!(p.text.contains("I agree to pay"));
    assert_eq!(p.link.agent_reply_at_ms, Some(T0), "the claimed first response");
    // Pushed as changes onto the genesis, the same claim comes out.
    let genesis = TicketDoc::genesis(Uuid::parse_str(&id).expect("id"), DocKind::Ticket).heads_owned();
    let data = changes_beyond_heads(&mut d, &genesis);
    let got = ingest(&id, "ticket", None, &data, &mallory(), T0 + MIN).expect("allowed");
    assert_eq!(got.prefill.map(|p| p.link.id), Some("generic:web:98".to_string()));
    // A ticket with no conversation claims nothing.
    let (id, mut d) = mallorys_ticket(None, None);
    assert!(ingest(&id, "ticket", None, &d.save(), &mallory(), T0 + MIN).expect("allowed").prefill.is_none());
}

/// The floors, as a table: (what, written at (device ms), creation?, device
/// offset now, floors, refused?).
#[test]
fn events_below_a_floor_are_back_dated() {
    use tickets_core::change_policy::{check_floors, Floors, NewEvent, SyncFloor, FLOOR_TOLERANCE_MS as TOL};
    let floor = T0 + 60 * MIN;
    let hour = 60 * MIN;
    // The device's clock was right when its previous sync started.
    let synced = Floors { sync: Some(SyncFloor { relay_ms: floor, device_ms: floor }), creation_ms: None };
    // It was an hour ahead then.
    let fast = Floors { sync: Some(SyncFloor { relay_ms: floor, device_ms: floor + hour }), creation_ms: None };
    let conv = Floors { sync: None, creation_ms: Some(floor) };
    let cases: &[(&str, i64, bool, i64, Floors, bool)] = &[
        ("no floor yet (never completed a sync)", T0, false, 0, Floors::default(), false),
        ("written after the floor", floor + MIN, false, 0, synced, false),
        ("written within the tolerance", floor - TOL + 1, false, 0, synced, false),
        ("written just beyond the tolerance", floor - TOL - 1, false, 0, synced, true),
        ("back-dated by a day", floor - 24 * hour, false, 0, synced, true),
        ("a fast device's honest time, corrected by its offset", floor + hour + 5 * MIN, false, hour, fast, false),
        ("a fast device back-dated on both clocks", floor - 2 * hour, false, hour, fast, true),
        ("set an hour ahead after writing (its own clock says after)", floor + 5 * MIN, false, hour, synced, false),
        ("set an hour back before writing (the relay's clock says after)", floor + 5 * MIN, false, -hour, fast, false),
        // (Its SLA time is its time corrected by that offset: after the floor.)
        (
            "a lie about the clock now leaves the SLA time after the floor",
            floor - 24 * hour,
            false,
            -7 * 24 * hour,
            synced,
            false,
        ),
        ("a comment before the conversation arrived (only creations are held to it)", T0, false, 0, conv, false),
        ("a creation before the conversation reached the relay", floor - 30 * 24 * hour, true, 0, conv, true),
        ("a creation after it", floor + MIN, true, 0, conv, false),
    ];
    for &(what, written_ms, is_creation, offset, floors, refused) in cases {
        let e = NewEvent { key: key(written_ms, MAL), written_ms, is_creation };
        let got = check_floors(&[e], floors, offset);
        assert_eq!(got.is_err(), refused, "{what}: {got:?}");
        if let Err(r) = got {
            assert_eq!(r.code, RefusalCode::EventBackdated, "{what}");
        }
    }
}
