//! A device never stops syncing because of one bad document. The relay's
//! allow-list keeps such documents out; this test plays a relay that let
//! one through (an older relay, a restored database): a change deleting a
//! ticket's creation event is written straight into the relay's log. The
//! device pulling it keeps the document aside, shows the ticket as damaged,
//! reports it, and the rest of the sync (another ticket's comment) goes on.

use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{Edit, NewTicket};
use tickets_core::model::Priority;
use tickets_core::protocol::{SyncRequest, SyncResponse};
use tickets_node::sync::{SyncError, Transport};
use tickets_node::{Node, WallClock};
use tickets_relay::{auth, sync as relay_sync, Db};
use uuid::Uuid;

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

fn agent(db: &Db, dir: &std::path::Path, name: &str, role: &str) -> (Node, Direct) {
    let token_hash = auth::token_hash(&format!("tk_{name}"));
    let mut c = db.conn().expect("connection");
    c.add_agent(name, role, None, false, &token_hash, 0).expect("agent");
    let actor = Node::new_actor();
    c.register_device(&actor.to_hex_string(), name, 0).expect("device");
    let node = Node::init_with_actor(&dir.join(name), name, actor, WallClock::default()).expect("node");
    (node, Direct { db: db.clone(), token_hash })
}

fn ticket(subject: &str) -> NewTicket {
    NewTicket {
        subject: subject.into(),
        priority: Priority::High,
        category: "hardware".into(),
        description: None,
        assignee: None,
    }
}

#[test]
fn a_document_that_cannot_be_used_is_kept_aside_and_the_sync_goes_on() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("relay.db");
    let db = Db::open(&path, true).expect("relay database");
    let (mut ana, ana_relay) = agent(&db, dir.path(), "ana", "agent");
    let (mut lea, lea_relay) = agent(&db, dir.path(), "lea", "lead");
    let broken = ana.create(&ticket("will be broken"), None, false).expect("create");
    let fine = ana.create(&ticket("stays fine"), None, false).expect("create");
    ana.sync_over(&ana_relay, &mut |_| {}).expect("push");
    lea.sync_over(&lea_relay, &mut |_| {}).expect("bootstrap");

    // What a relay without the allow-list stored: ana's device deleting the
    // creation event of `broken`, appended to the log as a push would.
    let raw = rusqlite::Connection::open(&path).expect("open the relay's file");
    let bytes: Vec<u8> = raw
        .query_row("SELECT bytes FROM docs WHERE id = ?1 AND kind = 'ticket'", [&broken], |r| r.get(0))
        .expect("stored copy");
    let uuid = Uuid::parse_str(&broken).expect("uuid");
    let mut doc = TicketDoc::load(uuid, DocKind::Ticket, &bytes).expect("loads");
    let before = doc.heads();
    doc.set_actor(ana.actor());
    let am = doc.automerge();
    let events = match am.get(ROOT, "events") {
        Ok(Some((_, o))) => o,
        other => panic!("events: {other:?}"),
    };
    let keys: Vec<String> = am.keys(&events).collect();
    for k in keys {
        am.delete(&events, k.as_str()).expect("delete");
    }
    doc.commit(now_ms());
    let change: Vec<u8> = doc.changes_since(&before).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    raw.execute(
        "INSERT INTO changes (id, kind, device, bytes) VALUES (?1, 'ticket', ?2, ?3)",
        rusqlite::params![broken, ana.actor().to_hex_string(), change],
    )
    .expect("log");
    let seq = raw.last_insert_rowid();
    raw.execute(
        "UPDATE docs SET bytes = ?2, seq = ?3 WHERE id = ?1 AND kind = 'ticket'",
        rusqlite::params![broken, doc.save(), seq],
    )
    .expect("docs");
    drop(raw);

    ana.edit(&fine, &[Edit::Comment("after the damage".into())]).expect("comment");
    ana.sync_over(&ana_relay, &mut |_| {}).expect("push the comment");

    let report = lea.sync_over(&lea_relay, &mut |_| {}).expect("the sync goes on past the damaged document");
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].ticket, broken);
    let shown = lea.show(&fine).expect("show");
    assert_eq!(shown["comments"][0]["body"], "after the damage", "the rest of the page arrived");
    let damaged = lea.show(&broken).expect("the damaged ticket still shows as it was");
    assert_eq!(damaged["subject"], "will be broken");
    let said = damaged["refusals"].to_string();
    assert!(said.contains("damaged"), "the ticket says it is damaged: {said}");
    lea.edit(&broken, &[Edit::Comment("still editable here".into())]).expect("this device's copy still works");
    let again = lea.sync_over(&lea_relay, &mut |_| {}).expect("later syncs go on");
    assert!(again.damaged.iter().all(|d| d.ticket == broken), "{again:?}");
}

/// Defence in depth: a far-future clock stamp that a relay let through
/// (9999999999999999, past the stamp format's range once incremented) must
/// not stop a device editing: its clock never observes such a stamp.
#[test]
fn a_forged_far_future_stamp_that_got_through_does_not_stop_a_device_editing() {
    use tickets_core::event::{EventBody, StoredEvent};
    use tickets_core::hlc::Hlc;
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("relay.db");
    let db = Db::open(&path, true).expect("relay database");
    let (mut ana, ana_relay) = agent(&db, dir.path(), "ana", "agent");
    let (mut lea, lea_relay) = agent(&db, dir.path(), "lea", "lead");
    let id = ana.create(&ticket("printer"), None, false).expect("create");
    ana.sync_over(&ana_relay, &mut |_| {}).expect("push");

    let raw = rusqlite::Connection::open(&path).expect("open the relay's file");
    let bytes: Vec<u8> = raw
        .query_row("SELECT bytes FROM docs WHERE id = ?1 AND kind = 'ticket'", [&id], |r| r.get(0))
        .expect("stored copy");
    let uuid = Uuid::parse_str(&id).expect("uuid");
    let mut doc = TicketDoc::load(uuid, DocKind::Ticket, &bytes).expect("loads");
    let before = doc.heads();
    doc.set_actor(ana.actor());
    let stamp = Hlc::new(9_999_999_999_999_999, 999_999, tickets_core::ids::replica_of(ana.actor()));
    let forged = StoredEvent::new("ana", EventBody::Comment { body: "from the far future".into() });
    doc.put_event(&stamp, &forged).expect("put");
    doc.commit(now_ms());
    let change: Vec<u8> = doc.changes_since(&before).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
    raw.execute(
        "INSERT INTO changes (id, kind, device, bytes) VALUES (?1, 'ticket', ?2, ?3)",
        rusqlite::params![id, ana.actor().to_hex_string(), change],
    )
    .expect("log");
    let seq = raw.last_insert_rowid();
    raw.execute(
        "UPDATE docs SET bytes = ?2, seq = ?3 WHERE id = ?1 AND kind = 'ticket'",
        rusqlite::params![id, doc.save(), seq],
    )
    .expect("docs");
    drop(raw);

    lea.sync_over(&lea_relay, &mut |_| {}).expect("pull the forged stamp");
    lea.edit(&id, &[Edit::Comment("still works".into())]).expect("an edit of that ticket");
    lea.create(&ticket("and a new one"), None, false).expect("a new ticket");
    lea.sync_over(&lea_relay, &mut |_| {}).expect("and the relay takes them");
    let shown = lea.show(&id).expect("show");
    let bodies: Vec<&str> =
        shown["comments"].as_array().expect("comments").iter().filter_map(|c| c["body"].as_str()).collect();
    assert!(bodies.contains(&"still works"), "{bodies:?}");
}
