//! An agent without the internal-notes permission must not learn when a
//! note is written: neither its pull cursor nor the head its watch waits on
//! moves because of a notes change; a ticket change still moves both.

use tickets_core::edit::{Edit, NewTicket};
use tickets_core::model::Priority;
use tickets_core::protocol::{PullRequest, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use tickets_node::sync::{SyncError, Transport};
use tickets_node::{Node, WallClock};
use tickets_relay::{auth, sync as relay_sync, Db};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

struct Direct {
    db: Db,
    token_hash: String,
}

impl Transport for Direct {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let now = now_ms();
        let run = |c: &mut tickets_relay::store::Conn| -> Result<SyncResponse, tickets_relay::StoreError> {
            let caller = c.caller(&self.token_hash)?.expect("a known agent");
            relay_sync::check(&caller, req, now).expect("registered device");
            Ok(relay_sync::handle_sync(c, &caller, req, now)?.response)
        };
        Ok(self.db.with(run).expect("a sync exchange never fails"))
    }
}

fn agent(db: &Db, dir: &std::path::Path, name: &str, role: &str, notes: bool) -> (Node, Direct) {
    let token_hash = auth::token_hash(&format!("tk_{name}"));
    let mut c = db.conn().expect("connection");
    c.add_agent(name, role, None, notes, &token_hash, 0).expect("agent");
    let actor = Node::new_actor();
    c.register_device(&actor.to_hex_string(), name, 0).expect("device");
    let node = Node::init_with_actor(&dir.join(name), name, actor, WallClock::default()).expect("node");
    (node, Direct { db: db.clone(), token_hash })
}

/// One incremental pull from `cursor` as `node`'s device: (cursor, docs).
fn pull(node: &Node, relay: &Direct, cursor: u64) -> (u64, usize) {
    let req = SyncRequest {
        protocol: PROTOCOL_VERSION,
        device: node.actor().to_hex_string(),
        clock_ms: now_ms(),
        push: Vec::new(),
        pull: Some(PullRequest { cursor, bootstrapped: true, bootstrap: None }),
        inbox: None,
    };
    let page = relay.sync(&req).expect("pull").pull.expect("a page");
    (page.cursor, page.docs.len())
}

#[test]
fn a_note_moves_nothing_an_agent_without_the_permission_sees() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = Db::open(&dir.path().join("relay.db"), true).expect("relay database");
    let (mut lea, lea_relay) = agent(&db, dir.path(), "lea", "lead", true);
    let (mut bob, bob_relay) = agent(&db, dir.path(), "bob", "agent", false);
    let ticket = NewTicket {
        subject: "printer".into(),
        priority: Priority::High,
        category: "hardware".into(),
        description: None,
        assignee: None,
    };
    let id = lea.create(&ticket, None, false).expect("create");
    lea.sync_over(&lea_relay, &mut |_| {}).expect("push");
    bob.sync_over(&bob_relay, &mut |_| {}).expect("bootstrap");
    let (cursor, _) = pull(&bob, &bob_relay, 0);
    let before = db.conn().expect("connection").heads().expect("heads");

    lea.edit(&id, &[Edit::Note("the customer is a VIP".into())]).expect("note");
    lea.sync_over(&lea_relay, &mut |_| {}).expect("push the note");
    let after = db.conn().expect("connection").heads().expect("heads");
    assert!(after.all > before.all, "the note is in the log");
    assert_eq!(after.for_reader(false), before.for_reader(false), "the head a plain agent watches did not move");
    assert!(after.for_reader(true) > before.for_reader(true), "a permitted agent's watch wakes");
    assert_eq!(pull(&bob, &bob_relay, cursor), (cursor, 0), "a plain agent's cursor did not move");

    lea.edit(&id, &[Edit::Comment("on my way".into())]).expect("comment");
    lea.sync_over(&lea_relay, &mut |_| {}).expect("push the comment");
    let (moved, docs) = pull(&bob, &bob_relay, cursor);
    assert!(moved > cursor && docs == 1, "a ticket change still reaches the plain agent");
    assert_eq!(db.conn().expect("connection").heads().expect("heads").for_reader(false), moved);
}
