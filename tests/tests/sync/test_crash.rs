//! A sync interrupted by `kill -9` of the relay or of the node loses
//! nothing, corrupts nothing, and the next sync resumes without redoing the
//! pages already confirmed (SPEC §3).

use std::time::Duration;

use crate::harness::{
    finish, import_many, integrity, kill9, node_ids, relay_ids, spawn_tickets, sync, wait_for, Relay,
};

/// Enough tickets for several push pages (1000 documents each).
const TICKETS: usize = 3000;
const PAGE_DOCS: u64 = 1000;

#[test]
fn the_relay_killed_mid_sync_loses_nothing_and_the_sync_resumes() {
    let mut relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    import_many(&ana, TICKETS, "crash");
    let local = node_ids(&ana);

    let requests = relay.metric("tickets_sync_requests_total");
    let child = spawn_tickets(&ana, &["sync", "--json"]);
    // The node sends a push page only after it committed the previous round:
    // once the second page arrives, the first is confirmed on both ends.
    wait_for("the second push page", Duration::from_secs(60), || {
        (relay.metric("tickets_sync_requests_total") >= requests + 2).then_some(())
    });
    let applied = relay.metric("tickets_docs_applied_total");
    relay.kill9();
    assert!(applied < TICKETS as u64, "the sync finished before the kill; nothing was interrupted");
    assert_eq!(relay.integrity(), "ok", "the relay database after kill -9");
    relay.restart();

    // The node retries with backoff and may finish on its own; whatever it
    // did, the next sync completes.
    let first = finish(child, Duration::from_secs(120));
    assert!(matches!(first.code, Some(0) | Some(1)), "the interrupted sync exits 0 or 1: {first:#?}");
    let report = sync(&ana);
    assert_eq!(report["pending"], 0, "{report}");
    let redone = relay.metric("tickets_docs_applied_total");
    assert!(
        redone <= TICKETS as u64 - PAGE_DOCS,
        "the restarted relay took {redone} documents: confirmed pages were pushed again"
    );
    assert_eq!(relay_ids(&relay, &lea.token), local, "every ticket reached the relay, once");
    sync(&lea);
    assert_eq!(node_ids(&lea), local, "a second node pulls every ticket");
    assert_eq!(relay.integrity(), "ok");
    assert_eq!(integrity(&ana.db()), "ok");
    assert_eq!(integrity(&lea.db()), "ok");
    assert!(relay.healthy());

    // Sync cost follows what changed: an idle sync of these thousands of
    // tickets is one small exchange, and one edited ticket costs one ticket.
    let traffic = |relay: &Relay| {
        ["tickets_sync_requests_total", "tickets_sync_bytes_in_total", "tickets_sync_bytes_out_total"]
            .map(|c| relay.metric(c))
    };
    let before = traffic(&relay);
    sync(&ana);
    let idle = traffic(&relay);
    assert!(idle[0] - before[0] <= 2, "an idle sync took {} requests", idle[0] - before[0]);
    assert!(idle[1] - before[1] + idle[2] - before[2] < 16 * 1024, "an idle sync moved {before:?} -> {idle:?}");
    ana.run(&["comment", &local[0], "one more"]).ok();
    sync(&ana);
    let one = traffic(&relay);
    assert!(one[1] - idle[1] < 64 * 1024, "one comment pushed {} bytes", one[1] - idle[1]);
}

#[test]
fn the_node_killed_mid_sync_loses_nothing() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    import_many(&ana, TICKETS, "lid");
    let local = node_ids(&ana);

    let requests = relay.metric("tickets_sync_requests_total");
    let child = spawn_tickets(&ana, &["sync"]);
    wait_for("the second push page", Duration::from_secs(60), || {
        (relay.metric("tickets_sync_requests_total") >= requests + 2).then_some(())
    });
    let killed = kill9(child);
    assert_eq!(killed.code, None, "the sync was still running when killed: {killed:#?}");
    assert_eq!(integrity(&ana.db()), "ok", "the node database after kill -9");
    let status = ana.run(&["status", "--json"]).json();
    let pending = status["pending"].as_u64().expect("pending");
    assert!(
        pending > 0 && pending <= TICKETS as u64 - PAGE_DOCS,
        "the first page is confirmed, the rest pending: {status}"
    );

    let report = sync(&ana);
    assert_eq!(report["pending"], 0, "{report}");
    assert_eq!(relay_ids(&relay, &lea.token), local, "every ticket reached the relay, once");
    sync(&lea);
    assert_eq!(node_ids(&lea), local);

    // A new device bootstrapping page by page, killed after the first page.
    let cid_token = relay.add_agent("cid", "lead", &[]);
    let cid = relay.node_with_token(&cid_token);
    let requests = relay.metric("tickets_sync_requests_total");
    let child = spawn_tickets(&cid, &["sync"]);
    wait_for("the second pull page", Duration::from_secs(60), || {
        (relay.metric("tickets_sync_requests_total") >= requests + 2).then_some(())
    });
    let killed = kill9(child);
    assert_eq!(killed.code, None, "the bootstrap was still running when killed: {killed:#?}");
    assert_eq!(integrity(&cid.db()), "ok");
    let report = sync(&cid);
    let pulled = report["pulled"].as_u64().expect("pulled");
    assert!(pulled <= TICKETS as u64 - PAGE_DOCS, "the resumed bootstrap pulled {pulled}: a finished page again");
    assert_eq!(node_ids(&cid), local, "the resumed bootstrap has every ticket, once");
    assert_eq!(relay.integrity(), "ok");
    assert_eq!(integrity(&ana.db()), "ok");
}
