//! A hostile client: an agent with one valid token and no node. It registers
//! a device of its own, pulls documents through `POST /v1/sync`, crafts
//! changes with the automerge crate (as `core/tests/hostile_changes.rs`
//! does) and pushes them back, as any program holding the token could.
//!
//! [`Scene`] is the world each hostile test starts from: ana made a ticket
//! with a comment and synced, the lead pulled it, and bob (a plain agent)
//! holds the relay's copy. [`Scene::assert_unharmed`] is what "refused and
//! harmless" means end to end.

use automerge::ActorId;
use serde_json::{json, Value};
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::event::{EventBody, StoredEvent};
use tickets_core::hlc::Hlc;
use tickets_core::ids;
use tickets_core::protocol::{decode_data, encode_data, SyncResponse, PROTOCOL_VERSION};
use uuid::Uuid;

use crate::harness::{client, converged, sync, Agent, Relay};
use crate::support::now_ms;

/// The comment ana writes on her ticket, which attacks try to rewrite.
pub const ANA_COMMENT: &str = "ana: replaced the fuser, printing again";
pub const SUBJECT: &str = "Printer jams on floor 2";

/// Bootstrap pages an attacker reads before giving up on finding a ticket.
const PULL_PAGES_MAX: usize = 20;

/// An HTTP exchange with the relay: the status and the JSON body.
pub fn post(relay: &Relay, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let resp = client().post(format!("{}{path}", relay.url())).bearer_auth(token).json(body).send().expect("POST");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("POST {path}: {status} with a body that is not JSON: {text}"));
    (status, v)
}

/// A device of bob's, spoken for through the API only.
pub struct Attacker {
    pub token: String,
    pub actor: ActorId,
}

impl Attacker {
    /// Registers `actor` to the token's agent; panics unless the relay says
    /// yes (an attacker's own, new device).
    pub fn register(relay: &Relay, token: &str, actor: ActorId) -> Attacker {
        let (status, body) = register(relay, token, &actor.to_hex_string());
        assert_eq!(status, 200, "registering the attacker's own device: {body}");
        Attacker { token: token.to_string(), actor }
    }

    pub fn device(&self) -> String {
        self.actor.to_hex_string()
    }

    /// The relay's copy of a ticket document, through a bootstrap pull, as
    /// this device holds it: edits made on it are signed by its actor.
    pub fn pull(&self, relay: &Relay, id: &str, kind: DocKind) -> TicketDoc {
        let mut bootstrap: Option<Value> = None;
        for _ in 0..PULL_PAGES_MAX {
            let mut pull = json!({"cursor": 0, "bootstrapped": false});
            if let Some(pos) = &bootstrap {
                pull["bootstrap"] = pos.clone();
            }
            let req =
                json!({"protocol": PROTOCOL_VERSION, "device": self.device(), "clock_ms": now_ms(), "pull": pull});
            let (status, body) = post(relay, "/v1/sync", &self.token, &req);
            assert_eq!(status, 200, "bootstrap pull: {body}");
            let resp: SyncResponse = serde_json::from_value(body).expect("a sync response");
            let page = resp.pull.expect("a pull page");
            if let Some(d) = page.docs.iter().find(|d| d.id == id && d.kind == kind.as_str()) {
                let bytes = decode_data(&d.data).expect("base64 document data");
                let mut doc = TicketDoc::load(uuid(id), kind, &bytes).expect("the relay's copy loads");
                doc.set_actor(&self.actor);
                return doc;
            }
            match page.bootstrap {
                Some(pos) if page.more => bootstrap = Some(serde_json::to_value(pos).expect("position")),
                _ => break,
            }
        }
        panic!("the relay did not send {id} ({}) to a bootstrapping device", kind.as_str())
    }

    /// Pushes a whole document under `id`; returns the status and response.
    pub fn push(&self, relay: &Relay, id: &str, kind: DocKind, doc: &mut TicketDoc) -> (u16, Value) {
        let req = json!({"protocol": PROTOCOL_VERSION, "device": self.device(), "clock_ms": now_ms(),
            "push": [{"id": id, "kind": kind.as_str(), "data": encode_data(&doc.save())}]});
        post(relay, "/v1/sync", &self.token, &req)
    }

    /// A clock stamp of this device's own replica.
    pub fn stamp(&self, wall_ms: i64) -> String {
        Hlc::new(u64::try_from(wall_ms).unwrap_or(0), 0, ids::replica_of(&self.actor)).encode()
    }
}

/// `POST /v1/sync/register` of `device` with `token`.
pub fn register(relay: &Relay, token: &str, device: &str) -> (u16, Value) {
    post(relay, "/v1/sync/register", token, &json!({"protocol": PROTOCOL_VERSION, "device": device}))
}

pub fn uuid(id: &str) -> Uuid {
    id.parse().expect("a ticket id")
}

/// An encoded event by `by`.
pub fn event(by: &str, body: EventBody) -> String {
    StoredEvent::new(by, body).encode()
}

pub fn comment(body: &str) -> EventBody {
    EventBody::Comment { body: body.into() }
}

/// A raw put of `value` under `key` in the document's events map,
/// committed as one change.
pub fn put_raw_event(doc: &mut TicketDoc, key: &str, value: &str) {
    use automerge::transaction::Transactable;
    let events = events_obj(doc);
    doc.automerge().put(&events, key, value).expect("put an event");
    doc.commit(now_ms());
}

pub fn events_obj(doc: &mut TicketDoc) -> automerge::ObjId {
    use automerge::ReadDoc;
    match doc.automerge().get(automerge::ROOT, "events") {
        Ok(Some((_, o))) => o,
        other => panic!("the document has no events map: {other:?}"),
    }
}

/// The key of the first event whose stored value contains `needle`.
pub fn key_of(doc: &TicketDoc, needle: &str) -> String {
    doc.raw_events()
        .into_iter()
        .find(|(_, v)| v.as_deref().is_some_and(|v| v.contains(needle)))
        .unwrap_or_else(|| panic!("no event holds {needle:?}"))
        .0
}

/// The refusal code of the one pushed document, after checking that the
/// whole push was refused with a 4xx that names a code.
#[track_caller]
pub fn refused_code(status: u16, body: &Value) -> String {
    assert!((400..500).contains(&status), "a hostile push must be refused with a 4xx, got {status}: {body:#}");
    assert!(body["error"].is_string() && body["code"].is_string(), "a refusal says what and why: {body:#}");
    let pushed = body["pushed"].as_array().expect("pushed[]");
    assert_eq!(pushed.len(), 1, "{body:#}");
    assert_eq!(pushed[0]["accepted"], false, "{body:#}");
    assert!(!pushed[0]["reason"].as_str().unwrap_or_default().is_empty(), "a refusal gives a reason: {body:#}");
    pushed[0]["code"].as_str().unwrap_or_default().to_string()
}

/// ana's ticket with ana's comment, seen by the lead; bob with a device of
/// his own and nothing else.
pub struct Scene {
    pub relay: Relay,
    pub lea: Agent,
    pub ana: Agent,
    pub bob: Attacker,
    pub id: String,
    /// The lead's `show --json` of the ticket before any attack.
    pub before: Value,
}

impl Scene {
    pub fn new() -> Scene {
        Scene::on(Relay::start())
    }

    /// The scene on `relay`, fresh.
    pub fn on(relay: Relay) -> Scene {
        let lea = relay.agent("lea", "lead", &[]);
        let ana = relay.agent("ana", "agent", &[]);
        let bob_token = relay.add_agent("bob", "agent", &[]);
        let id = ana.create(SUBJECT, "high", "hardware");
        ana.run(&["comment", &id, ANA_COMMENT]).ok();
        sync(&ana);
        sync(&lea);
        let before = lea.show(&id);
        assert_eq!(before["created_by"], "ana");
        assert_eq!(comments(&before), [("ana".to_string(), ANA_COMMENT.to_string())]);
        let bob = Attacker::register(&relay, &bob_token, ActorId::from([0xb0; 16].as_slice()));
        Scene { relay, lea, ana, bob, id, before }
    }

    /// bob's copy of the public ticket document.
    pub fn bobs_copy(&self) -> TicketDoc {
        self.bob.pull(&self.relay, &self.id, DocKind::Ticket)
    }

    /// Nothing bob sent reached anyone, and everyone keeps working:
    /// (a) the lead's node syncs cleanly and shows the ticket as before;
    /// (b) a fresh device of the lead's syncs with exit 0 and shows it alike;
    /// (c) the relay's `GET /v1/tickets/{id}` shows it as before, and the
    /// board lists this one ticket;
    /// (d) the lead and ana still edit it and see each other's edits.
    /// Call it once per scene: (d) adds a comment of the lead's.
    #[track_caller]
    pub fn assert_unharmed(&self) {
        let want = converged(&self.before);
        let report = sync(&self.lea);
        assert_eq!(report["damaged"], json!([]), "the lead's node quarantined something: {report:#}");
        assert_eq!(report["refused"], json!([]), "{report:#}");
        let lead = self.lea.show(&self.id);
        assert_intact("the lead's node", &lead);
        assert_eq!(converged(&lead), want, "the lead's node shows the ticket changed");

        let fresh = self.relay.node_with_token(&self.lea.token);
        let report = sync(&fresh);
        assert_eq!(report["damaged"], json!([]), "a fresh device quarantined something: {report:#}");
        let shown = fresh.show(&self.id);
        assert_intact("a fresh device", &shown);
        assert_eq!(converged(&shown), want, "a fresh device shows the ticket otherwise than the lead");

        let t = self.relay.ticket(&self.id, &self.lea.token);
        assert_intact("the relay", &t);
        let board = self.relay.tickets(&self.lea.token);
        assert_eq!(board.len(), 1, "the board lists one ticket: {board:#?}");
        assert_eq!(board[0]["id"], self.id.as_str());
        assert_eq!(board[0]["status"], self.before["status"]);

        self.lea.run(&["comment", &self.id, "lea: thanks"]).ok();
        sync(&self.lea);
        sync(&self.ana);
        let seen = comments(&self.ana.show(&self.id));
        let want_comments = [("ana", ANA_COMMENT), ("lea", "lea: thanks")].map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(seen, want_comments, "ana and the lead still edit the ticket");
    }
}

/// The ticket as ana made it: her subject, her creation, her one comment.
#[track_caller]
fn assert_intact(who: &str, t: &Value) {
    assert_eq!(t["subject"], SUBJECT, "{who}: {t:#}");
    assert_eq!(t["created_by"], "ana", "{who}: {t:#}");
    assert_eq!(t["status"], "open", "{who}: {t:#}");
    assert_eq!(comments(t), [("ana".to_string(), ANA_COMMENT.to_string())], "{who}: {t:#}");
    assert!(t.get("internal_notes").is_none_or(|n| n.as_array().is_some_and(Vec::is_empty)), "{who}: {t:#}");
}

/// (author, body) of each comment, in order.
pub fn comments(t: &Value) -> Vec<(String, String)> {
    t["comments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                    (s("author"), s("body"))
                })
                .collect()
        })
        .unwrap_or_default()
}
