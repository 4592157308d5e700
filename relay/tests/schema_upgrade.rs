//! A relay database of an earlier schema opens, is upgraded in place, and
//! loses nothing: the same tickets with the same SLA inputs, and it takes
//! new pushes afterwards.

use tickets_core::doc::TicketDoc;
use tickets_core::edit::{self, Author, NewTicket};
use tickets_core::hlc::Clock;
use tickets_core::ids;
use tickets_core::model::Priority;
use tickets_core::protocol::{encode_data, DocData};
use tickets_relay::store::SCHEMA_VERSION;
use tickets_relay::{auth, Db};

fn ticket(author: &Author, clock: &mut Clock, n: u128, priority: Priority) -> DocData {
    let new = NewTicket {
        subject: format!("ticket {n}"),
        priority,
        category: "hardware".into(),
        description: Some("it broke".into()),
        assignee: None,
    };
    let mut doc: TicketDoc =
        edit::create_ticket(uuid::Uuid::from_u128(n), author, clock, 1_700_000_000_000, &new, None).expect("ticket");
    DocData { id: doc.id().to_string(), kind: "ticket".into(), data: encode_data(&doc.save()) }
}

#[test]
fn a_schema_2_database_is_upgraded_without_loss() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("relay.db");
    let db = Db::open(&path, true).expect("relay database");
    let token_hash = auth::token_hash("tk_ana");
    let actor = tickets_node::Node::new_actor();
    let author = Author { agent: "ana".into(), actor: actor.clone() };
    let mut clock = Clock::new(ids::replica_of(&actor));
    let mut c = db.conn().expect("connection");
    c.add_agent("ana", "agent", None, false, &token_hash, 0).expect("agent");
    c.register_device(&actor.to_hex_string(), "ana", 0).expect("device");
    c.update_sla(0, |p| {
        p.targets.insert(
            Priority::High,
            tickets_core::sla::Targets { first_response_secs: Some(3600), resolution_secs: Some(86_400) },
        );
    })
    .expect("SLA");
    let caller = c.caller(&token_hash).expect("lookup").expect("caller");
    let items: Vec<DocData> = (1..=5).map(|n| ticket(&author, &mut clock, n, Priority::High)).collect();
    let out = c.push(&caller, &actor.to_hex_string(), 0, &items, 1_700_000_000_000).expect("push");
    assert_eq!(out.accepted, 5);
    let now = 1_700_000_100_000;
    let before: Vec<serde_json::Value> =
        items.iter().map(|i| c.ticket(&i.id, now, false).expect("read").expect("indexed")).collect();
    drop(c);

    // Turn it back into the schema 2 layout: SLA inputs inside ticket_views.
    let raw = rusqlite::Connection::open(&path).expect("sqlite");
    raw.execute_batch(
        "ALTER TABLE ticket_views ADD COLUMN sla_input TEXT NOT NULL DEFAULT '';
         UPDATE ticket_views SET sla_input = (SELECT input FROM sla_inputs s WHERE s.id = ticket_views.id);
         DROP TABLE sla_inputs;
         PRAGMA user_version = 2;",
    )
    .expect("downgrade");
    drop(raw);

    let db = Db::open(&path, false).expect("an older database opens");
    let mut c = db.conn().expect("connection");
    let version: i64 = rusqlite::Connection::open(&path)
        .expect("sqlite")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    for (item, was) in items.iter().zip(&before) {
        let now_json = c.ticket(&item.id, now, false).expect("read").expect("still indexed");
        assert_eq!(&now_json, was, "ticket {} changed in the upgrade", item.id);
    }
    assert_eq!(c.integrity_check().expect("check"), "ok");
    let caller = c.caller(&token_hash).expect("lookup").expect("caller");
    let more = vec![ticket(&author, &mut clock, 6, Priority::High)];
    let out = c.push(&caller, &actor.to_hex_string(), 0, &more, now).expect("push after the upgrade");
    assert_eq!(out.accepted, 1);
    assert!(out.results[0].sla.is_some(), "the SLA input comes back from the new table");
    assert!(c.ticket(&more[0].id, now, false).expect("read").is_some());
}

#[path = "support/pg.rs"]
mod pg;

/// A PostgreSQL database of schema 1 (before the inbox) gets the inbox's
/// tables when an instance opens it, keeps its agents, and takes webhook
/// deliveries afterwards; instances opening it at once upgrade it once.
#[test]
fn a_postgres_schema_1_database_gets_the_inbox_tables() {
    use tickets_core::inbox::InboxKind;
    use tickets_relay::inbox::store as inbox;
    use tickets_relay::store::postgres::PgDb;
    use tickets_relay::store::InboxStore;

    let url = pg::fresh_database();
    let db = PgDb::open(&url, true).expect("relay database");
    db.conn().expect("connection").add_agent("ann", "agent", None, false, "hash-ann", 0).expect("agent");
    drop(db);
    // Turn it back into schema 1: no inbox tables.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (raw, conn) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).expect("connect");
    let conn_task = rt.spawn(conn);
    rt.block_on(raw.batch_execute(
        "DROP TABLE inboxes, inbox_conversations, inbox_head; DROP INDEX tickets_conversation;
         UPDATE meta SET value = '1' WHERE key = 'schema'",
    ))
    .expect("downgrade");

    let opened: Vec<PgDb> = std::thread::scope(|s| {
        let opening: Vec<_> = (0..3).map(|_| s.spawn(|| PgDb::open(&url, false))).collect();
        opening.into_iter().map(|o| o.join().expect("an opening instance").expect("an older database opens")).collect()
    });
    let version: String =
        rt.block_on(raw.query_one("SELECT value FROM meta WHERE key = 'schema'", &[])).expect("version").get(0);
    assert_eq!(version, "2");
    let mut c = opened[0].conn().expect("connection");
    assert_eq!(c.agents().expect("agents").len(), 1, "the upgrade lost an agent");
    inbox::add_inbox(&mut c, "all", InboxKind::Generic, None, "h", 0).expect("an inbox");
    let body =
        br#"{"id": "c1", "messages": [{"id": "1", "role": "customer", "text": "hi", "at": "2026-01-01T00:00:00Z"}]}"#;
    let got = inbox::ingest(&mut opened[2].conn().expect("connection"), "h", body, 1).expect("a delivery");
    assert_eq!(got, inbox::Ingested::Stored { id: "generic:all:c1".into(), changed: true, seq: 1 });
    assert_eq!(c.inbox_head().expect("head"), 1);
    drop(raw);
    conn_task.abort();
}
