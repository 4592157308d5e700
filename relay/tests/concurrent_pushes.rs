//! Pushes of one ticket from many devices at the same moment, on real
//! threads against one relay database: the relay merges each push outside
//! its write lock, so a push may find that another one wrote the same
//! ticket after it read it. Nothing may be lost either way: every device's
//! comment ends up in the relay's copy, in its index row, and on every
//! device.

use std::sync::{Arc, Barrier};

use tickets_core::edit::{Edit, NewTicket};
use tickets_core::model::{Priority, Status};
use tickets_core::protocol::{SyncRequest, SyncResponse};
use tickets_node::sync::{SyncError, Transport};

use tickets_node::{Node, WallClock};
use tickets_relay::{auth, sync as relay_sync, Db};

const DEVICES: usize = 8;
const ROUNDS: usize = 6;

/// The relay's sync exchange without HTTP, on a connection of its own per
/// request, as the server runs it.
struct Direct {
    db: Db,
    token_hash: String,
}

impl Transport for Direct {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let run = |c: &mut tickets_relay::store::Conn| -> Result<SyncResponse, tickets_relay::StoreError> {
            let caller = c.caller(&self.token_hash)?.expect("a known agent");
            relay_sync::check(&caller, req, now).expect("registered device");
            Ok(relay_sync::handle_sync(c, &caller, req, now)?.response)
        };
        Ok(self.db.with(run).expect("a sync exchange never fails"))
    }
}

#[test]
fn simultaneous_pushes_of_one_ticket_lose_nothing() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = Db::open(&dir.path().join("relay.db"), true).expect("relay database");
    let mut nodes = Vec::new();
    for i in 0..DEVICES {
        let name = format!("agent{i}");
        let token_hash = auth::token_hash(&format!("tk_{name}"));
        let mut c = db.conn().expect("connection");
        c.add_agent(&name, "agent", None, false, &token_hash, 0).expect("agent");
        let actor = Node::new_actor();
        c.register_device(&actor.to_hex_string(), &name, 0).expect("device");
        let node = Node::init_with_actor(&dir.path().join(&name), &name, actor, WallClock::default()).expect("node");
        nodes.push((node, Direct { db: db.clone(), token_hash }));
    }
    let id = {
        let (node, relay) = &mut nodes[0];
        let ticket = NewTicket {
            subject: "printer on fire".into(),
            priority: Priority::High,
            category: "hardware".into(),
            description: Some("smoke".into()),
            assignee: None,
        };
        let id = node.create(&ticket, None, false).expect("create");
        node.sync_over(relay, &mut |_| {}).expect("first push");
        id
    };
    for (node, relay) in &mut nodes {
        node.sync_over(relay, &mut |_| {}).expect("bootstrap");
    }

    let mut expected = Vec::new();
    for round in 0..ROUNDS {
        for (i, (node, _)) in nodes.iter_mut().enumerate() {
            let text = format!("round {round} from device {i}");
            let mut edits = vec![Edit::Comment(text.clone())];
            if i == round % DEVICES {
                edits.push(Edit::Status(Status::InProgress));
            }
            node.edit(&id, &edits).expect("comment");
            expected.push(text);
        }
        // Every device pushes at the same moment.
        let barrier = Arc::new(Barrier::new(DEVICES));
        std::thread::scope(|s| {
            for (node, relay) in nodes.iter_mut() {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    node.sync_over(relay, &mut |_| {}).expect("concurrent sync");
                });
            }
        });
    }
    for (node, relay) in &mut nodes {
        node.sync_over(relay, &mut |_| {}).expect("catch up");
    }

    let bodies = |v: &serde_json::Value| -> Vec<String> {
        v["comments"]
            .as_array()
            .expect("comments")
            .iter()
            .filter_map(|c| c["body"].as_str().map(String::from))
            .collect()
    };
    let relay_view = db.conn().expect("connection").ticket(&id, 0, false).expect("read").expect("indexed");
    let on_relay = bodies(&relay_view);
    for text in &expected {
        assert!(on_relay.contains(text), "the relay's index lost '{text}'");
    }
    assert_eq!(relay_view["status"], "in-progress");
    for (i, (node, _)) in nodes.iter_mut().enumerate() {
        let shown = bodies(&node.show(&id).expect("show"));
        for text in &expected {
            assert!(shown.contains(text), "device {i} lacks '{text}'");
        }
        assert_eq!(shown.len(), on_relay.len(), "device {i} and the relay differ");
    }
}
