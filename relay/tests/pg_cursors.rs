//! Exact cursors with concurrent writers on PostgreSQL: a writer that has
//! taken its sequence number but not committed holds back every later
//! writer, so no reader ever sees a number above one still invisible (a
//! device whose cursor passed it would skip that change for ever).
//!
//! The same holds for a watcher: a device's long poll (`GET
//! /v1/sync/watch`) on a real relay instance does not move past a held
//! writer, and wakes once it commits. A variant that hands numbers out
//! outside the writer's transaction (as a PostgreSQL `SEQUENCE` does) is
//! shown to be caught by the same check.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tickets_core::edit::NewTicket;
use tickets_core::model::Priority;
use tickets_core::protocol::{SyncRequest, SyncResponse};
use tickets_node::sync::{Remote, SyncError, Transport};
use tickets_node::{Node, WallClock};
use tickets_relay::store::postgres::PgDb;
use tickets_relay::store::{PullQuery, PullRow, PullSink};
use tickets_relay::{auth, sync as relay_sync, AppState};

#[path = "support/pg.rs"]
mod pg;

struct Direct<'a> {
    db: &'a PgDb,
    token_hash: String,
}

impl Transport for Direct<'_> {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut c = self.db.conn().expect("connection");
        let caller = c.caller(&self.token_hash).expect("caller").expect("a known agent");
        relay_sync::check(&caller, req, now).expect("registered device");
        Ok(relay_sync::handle_sync(&mut c, &caller, req, now).expect("a sync exchange").response)
    }
}

#[derive(Default)]
struct Seqs(Vec<u64>);

impl PullSink for Seqs {
    fn heads(&mut self, _: tickets_relay::store::Heads) {}
    fn row(&mut self, row: PullRow) -> bool {
        self.0.push(row.seq);
        true
    }
    fn sla_wanted(&self) -> Vec<String> {
        Vec::new()
    }
    fn sla(&mut self, _: String, _: String) {}
}

fn seqs_after(db: &PgDb, after: u64) -> Vec<u64> {
    let mut out = Seqs::default();
    db.conn()
        .expect("connection")
        .read_pull(&PullQuery::Changes { after, notes: true, limit: 10_000 }, &mut out)
        .expect("read");
    out.0
}

fn node(db: &PgDb, dir: &std::path::Path, name: &str) -> (Node, String) {
    let token_hash = auth::token_hash(&format!("tk_{name}"));
    let c = db.conn().expect("connection");
    c.add_agent(name, "agent", None, false, &token_hash, 0).expect("agent");
    let actor = Node::new_actor();
    c.register_device(&actor.to_hex_string(), name, 0).expect("device");
    (Node::init_with_actor(&dir.join(name), name, actor, WallClock::default()).expect("node"), token_hash)
}

fn ticket(subject: &str) -> NewTicket {
    NewTicket {
        subject: subject.into(),
        priority: Priority::Low,
        category: "general".into(),
        description: None,
        assignee: None,
    }
}

#[test]
fn a_writer_holding_its_sequence_number_holds_back_every_reader() {
    let url = pg::fresh_database();
    let db = PgDb::open(&url, true).expect("relay database");
    let dir = tempfile::tempdir().expect("temporary folder");
    let (mut a, token_a) = node(&db, dir.path(), "ann");
    a.create(&ticket("before"), None, false).expect("create");
    a.sync_over(&Direct { db: &db, token_hash: token_a.clone() }, &mut |_| {}).expect("sync");
    let h0 = db.conn().expect("connection").heads().expect("heads").all;
    assert!(h0 > 0);

    // A writer takes the next number as the relay's commit does, last in
    // its transaction, and does not commit yet.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (held, conn) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).expect("connect");
    let conn_task = rt.spawn(conn);
    rt.block_on(held.batch_execute("BEGIN")).expect("begin");
    let held_seq: i64 = rt
        .block_on(held.query_one("UPDATE log_head SET seq = seq + 1 RETURNING seq", &[]))
        .expect("take a number")
        .get(0);
    assert_eq!(held_seq as u64, h0 + 1);
    let row_id = "00000000-0000-4000-8000-000000000000";
    rt.block_on(held.execute(
        "INSERT INTO changes (seq, id, kind, device, bytes) VALUES ($1, $2, 'ticket', 'held', '\\x00')",
        &[&held_seq, &row_id],
    ))
    .expect("log row");

    // Another device pushes meanwhile: its commit waits for the held one.
    let (mut b, token_b) = node(&db, dir.path(), "bob");
    b.create(&ticket("during"), None, false).expect("create");
    let pushed = AtomicBool::new(false);
    std::thread::scope(|s| {
        let pusher = s.spawn(|| {
            b.sync_over(&Direct { db: &db, token_hash: token_b.clone() }, &mut |_| {}).expect("sync");
            pushed.store(true, Ordering::SeqCst);
        });
        // Wait (bounded) until the push is blocked on the head row's lock.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = rt
                .block_on(held.query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[]))
                .expect("locks")
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(!pushed.load(Ordering::SeqCst), "the push committed past a writer holding its number");
            assert!(Instant::now() < deadline, "the push never reached its commit");
            std::thread::sleep(Duration::from_millis(20));
        }
        // No reader moves past the held writer: the head and the log stop
        // at h0 while it is open.
        assert_eq!(db.conn().expect("connection").heads().expect("heads").all, h0);
        assert_eq!(seqs_after(&db, 0).last().copied(), Some(h0));
        assert!(seqs_after(&db, h0).is_empty());
        assert!(!pushed.load(Ordering::SeqCst));

        rt.block_on(held.batch_execute("COMMIT")).expect("commit");
        pusher.join().expect("the pushing device");
    });
    // Now both, in commit order, without a gap.
    let after = seqs_after(&db, h0);
    assert!(after.len() >= 2, "{after:?}");
    let expected: Vec<u64> = (h0 + 1..=h0 + after.len() as u64).collect();
    assert_eq!(after, expected);
    assert_eq!(db.conn().expect("connection").heads().expect("heads").all, *expected.last().unwrap_or(&0));
    drop(held);
    conn_task.abort();
}

/// The inbox's own sequence, the same way: a delivery whose writer holds
/// the next inbox number uncommitted holds back every later delivery (on
/// any instance), and no inbox pull moves its cursor past it.
#[test]
fn an_inbox_writer_holding_its_number_holds_back_every_inbox_reader() {
    use tickets_core::inbox::InboxKind;
    use tickets_core::protocol::InboxPull;
    use tickets_relay::inbox::store as inbox;
    use tickets_relay::store::InboxStore;

    let url = pg::fresh_database();
    let db = PgDb::open(&url, true).expect("relay database");
    // A second instance: a pool of its own on the same database.
    let other = PgDb::open(&url, true).expect("relay database");
    let msg = |conv: &str| {
        serde_json::json!({"id": conv, "messages": [
            {"id": "1", "role": "customer", "text": "hi", "at": "2026-01-01T00:00:00Z"}]})
        .to_string()
        .into_bytes()
    };
    let now = 1_800_000_000_000i64;
    inbox::add_inbox(&mut db.conn().expect("connection"), "all", InboxKind::Generic, None, "h", 0).expect("inbox");
    inbox::ingest(&mut db.conn().expect("connection"), "h", &msg("before"), now).expect("delivery");
    let caller = {
        let c = db.conn().expect("connection");
        c.add_agent("ann", "agent", None, false, "hash-ann", 0).expect("agent");
        c.caller("hash-ann").expect("caller").expect("ann")
    };
    let cursor_after = |after: u64| {
        let page = inbox::pull(&mut db.conn().expect("connection"), &caller, &InboxPull { cursor: after }, now)
            .expect("inbox pull");
        (page.conversations.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), page.cursor)
    };
    assert_eq!(cursor_after(0), (vec!["generic:all:before".to_string()], 1));

    // A writer takes the next inbox number as a delivery does, last in its
    // transaction, and does not commit yet.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (held, conn) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).expect("connect");
    let conn_task = rt.spawn(conn);
    rt.block_on(held.batch_execute("BEGIN")).expect("begin");
    let held_seq: i64 =
        rt.block_on(held.query_one("UPDATE inbox_head SET seq = seq + 1 RETURNING seq", &[])).expect("number").get(0);
    assert_eq!(held_seq, 2);
    let json = serde_json::to_string(&tickets_core::inbox::InboxConversation::new("held", "all", now)).expect("json");
    rt.block_on(held.execute(
        "INSERT INTO inbox_conversations (id, inbox, team, active_ms, seq, json) VALUES ('held', 'all', NULL, $1, $2, $3)",
        &[&now, &held_seq, &json],
    ))
    .expect("conversation row");

    let delivered = AtomicBool::new(false);
    std::thread::scope(|s| {
        let delivering = s.spawn(|| {
            let got =
                inbox::ingest(&mut other.conn().expect("connection"), "h", &msg("during"), now).expect("delivery");
            delivered.store(true, Ordering::SeqCst);
            got
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = rt
                .block_on(held.query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[]))
                .expect("locks")
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(!delivered.load(Ordering::SeqCst), "a delivery committed past a writer holding its number");
            assert!(Instant::now() < deadline, "the delivery never reached its write");
            std::thread::sleep(Duration::from_millis(20));
        }
        // No reader moves past the held writer.
        assert_eq!(db.conn().expect("connection").inbox_head().expect("head"), 1);
        assert_eq!(cursor_after(1), (Vec::new(), 1));
        assert!(!delivered.load(Ordering::SeqCst));
        rt.block_on(held.batch_execute("COMMIT")).expect("commit");
        let got = delivering.join().expect("the delivering instance");
        assert_eq!(got, inbox::Ingested::Stored { id: "generic:all:during".into(), changed: true, seq: 3 });
    });
    // Now both, in commit order, without a gap.
    assert_eq!(cursor_after(1), (vec!["held".to_string(), "generic:all:during".to_string()], 3));
    drop(held);
    conn_task.abort();
}

/// A relay instance on `url`, served on a loopback port until dropped.
struct Served {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(db: PgDb) -> Served {
        let (state, stop) = AppState::new(db).expect("relay state");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
                addr_tx.send(listener.local_addr().expect("its address")).expect("send the address");
                tickets_relay::serve(listener, state, stop, async move {
                    let _ = stop_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).expect("the relay's address");
        Served { url: format!("http://{addr}"), stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a watcher and a reader saw while a writer held its number.
struct Seen {
    /// The head before the held writer.
    h0: u64,
    /// The held writer's number.
    held: u64,
    /// The watcher's answer while the writer was open, if it answered.
    watch_while_held: Option<u64>,
    /// The log after `h0` as a reader saw it while the writer was open.
    read_while_held: Vec<u64>,
    /// The watcher's answer once the writer committed.
    watch_after: u64,
    /// The log after `h0` once everything committed.
    read_after: Vec<u64>,
}

/// Holds a writer open on a served relay while another device pushes
/// through that relay and a third watches it from cursor `h0`. With
/// `like_a_sequence`, the held writer's number is taken outside its
/// transaction (committed at once, as `nextval` is), the allocator the
/// relay must not have.
fn hold_a_writer_while_watching(like_a_sequence: bool) -> Seen {
    let url = pg::fresh_database();
    let db = PgDb::open(&url, true).expect("relay database");
    let dir = tempfile::tempdir().expect("temporary folder");
    let (mut a, token_a) = node(&db, dir.path(), "ann");
    a.create(&ticket("before"), None, false).expect("create");
    a.sync_over(&Direct { db: &db, token_hash: token_a }, &mut |_| {}).expect("sync");
    let h0 = db.conn().expect("connection").heads().expect("heads").all;
    let (mut b, _) = node(&db, dir.path(), "bob");
    let (_, _) = node(&db, dir.path(), "cat");
    let relay = Served::start(db.clone());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (held, conn) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).expect("connect");
    let conn_task = rt.spawn(conn);
    let take = "UPDATE log_head SET seq = seq + 1 RETURNING seq";
    let held_seq: i64 = if like_a_sequence {
        let n = rt.block_on(held.query_one(take, &[])).expect("take a number").get(0);
        rt.block_on(held.batch_execute("BEGIN")).expect("begin");
        n
    } else {
        rt.block_on(held.batch_execute("BEGIN")).expect("begin");
        rt.block_on(held.query_one(take, &[])).expect("take a number").get(0)
    };
    rt.block_on(held.execute(
        "INSERT INTO changes (seq, id, kind, device, bytes) VALUES ($1, $2, 'ticket', 'held', '\\x00')",
        &[&held_seq, &"00000000-0000-4000-8000-000000000001"],
    ))
    .expect("log row");

    b.create(&ticket("during"), None, false).expect("create");
    let pushed = AtomicBool::new(false);
    let bob = Remote::new(&relay.url, "tk_bob").expect("bob's remote");
    let seen = std::thread::scope(|s| {
        let pusher = s.spawn(|| {
            b.sync_over(&bob, &mut |_| {}).expect("sync");
            pushed.store(true, Ordering::SeqCst);
        });
        // Wait (bounded) until the push waits on the head row's lock (or,
        // numbers taken outside the transaction, has committed past it).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = rt
                .block_on(held.query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[]))
                .expect("locks")
                .get(0);
            if if like_a_sequence { pushed.load(Ordering::SeqCst) } else { waiting > 0 } {
                break;
            }
            assert!(like_a_sequence || !pushed.load(Ordering::SeqCst), "the push committed past the held writer");
            assert!(Instant::now() < deadline, "the push neither committed nor waited");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A device watches from h0 (cat: an agent of its own).
        let (tx, rx) = std::sync::mpsc::channel();
        let cat = Remote::new(&relay.url, "tk_cat").expect("cat's remote");
        s.spawn(move || {
            let _ = tx.send(cat.watch(h0).expect("watch"));
        });
        let read_while_held = seqs_after(&db, h0);
        // The instance re-reads the head every HEADS_REREAD_SECS whatever
        // the notifications say: give that path one turn while held.
        let hold = Duration::from_secs(tickets_relay::store::postgres::watch::HEADS_REREAD_SECS + 1);
        let watch_while_held = rx.recv_timeout(hold).ok();

        rt.block_on(held.batch_execute("COMMIT")).expect("commit");
        pusher.join().expect("the pushing device");
        let watch_after = match watch_while_held {
            Some(seq) => seq,
            None => rx.recv_timeout(Duration::from_secs(30)).expect("the watcher woke after the commit"),
        };
        Seen {
            h0,
            held: held_seq as u64,
            watch_while_held,
            read_while_held,
            watch_after,
            read_after: seqs_after(&db, h0),
        }
    });
    drop(held);
    conn_task.abort();
    seen
}

#[test]
fn a_watcher_does_not_move_past_a_writer_holding_its_number_and_wakes_when_it_commits() {
    let seen = hold_a_writer_while_watching(false);
    assert_eq!(seen.held, seen.h0 + 1);
    assert_eq!(seen.watch_while_held, None, "the watcher answered while a lower number was invisible");
    assert!(seen.read_while_held.is_empty(), "{:?}", seen.read_while_held);
    // Woken once the writer committed, with the change: a device at the
    // watcher's answer has everything up to it, without a gap.
    assert!(seen.watch_after > seen.h0, "{}", seen.watch_after);
    let expected: Vec<u64> = (seen.h0 + 1..=seen.h0 + seen.read_after.len() as u64).collect();
    assert_eq!(seen.read_after, expected);
    assert!(seen.read_after.contains(&seen.held));
    assert!(seen.read_after.len() >= 2, "{:?}", seen.read_after);
}

/// The check above is not vacuous: numbers handed out outside the writer's
/// transaction (a PostgreSQL `SEQUENCE`) let the watcher and a reader move
/// past the held writer, which a device would then skip for ever.
#[test]
fn the_same_check_catches_numbers_taken_outside_the_transaction() {
    let seen = hold_a_writer_while_watching(true);
    let past = seen.watch_while_held.expect("the watcher moved past the held writer");
    assert!(past > seen.held, "{past} {}", seen.held);
    assert!(
        !seen.read_while_held.is_empty() && !seen.read_while_held.contains(&seen.held),
        "{:?} {}",
        seen.read_while_held,
        seen.held
    );
}
