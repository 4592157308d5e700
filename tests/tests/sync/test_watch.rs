//! `tickets sync --watch` keeps a node current while it runs, across relay
//! restarts; the relay stops promptly on SIGTERM even with watchers
//! connected (SPEC §3, README).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{
    bodies, files_containing, finish, import_many, kill9, node_ids, relay_ids, spawn_tickets, sync, wait_for, Backend,
    Relay,
};
use crate::support::Home;

/// How long an edit may take to reach a watching node. The spec says about a
/// second; the margin keeps the test robust on a loaded machine.
const WATCH_DELIVERY: Duration = Duration::from_secs(5);
/// After a relay restart the watcher is backing off; it must come back.
const WATCH_RECOVERY: Duration = Duration::from_secs(30);

fn has_comment(h: &Home, id: &str, body: &str) -> bool {
    bodies(&h.show(id), "comments").iter().any(|c| c == body)
}

#[test]
fn a_watching_node_gets_edits_within_seconds_and_keeps_working_across_a_relay_restart() {
    a_watching_node_gets_edits_within_seconds_and_keeps_working_across_a_relay_restart_on(Relay::start());
}

#[test]
fn a_watching_node_gets_edits_within_seconds_and_keeps_working_across_a_relay_restart_on_postgres() {
    a_watching_node_gets_edits_within_seconds_and_keeps_working_across_a_relay_restart_on(Relay::start_on(
        Backend::Postgres,
    ));
}

fn a_watching_node_gets_edits_within_seconds_and_keeps_working_across_a_relay_restart_on(mut relay: Relay) {
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let bob = relay.agent("bob", "agent", &[]);
    let id = bob.create("Scanner offline", "high", "hardware");
    sync(&bob);
    sync(&ana);
    let watch = spawn_tickets(&ana, &["sync", "--watch"]);

    // Another agent's edit arrives without ana doing anything.
    bob.run(&["comment", &id, "bob: first"]).ok();
    sync(&bob);
    let started = Instant::now();
    wait_for("bob's comment on ana's watching node", WATCH_DELIVERY, || {
        has_comment(&ana, &id, "bob: first").then_some(())
    });
    eprintln!("delivered to the watching node in {:?}", started.elapsed());

    // ana's own edit goes out without a manual sync.
    ana.run(&["comment", &id, "ana: pushed by the watcher"]).ok();
    wait_for("ana's comment on the relay", WATCH_DELIVERY, || {
        bodies(&relay.ticket(&id, &lea.token), "comments")
            .contains(&"ana: pushed by the watcher".to_string())
            .then_some(())
    });

    // The relay goes away and comes back on the same address.
    relay.kill9();
    ana.run(&["comment", &id, "ana: typed while the relay was down"]).ok();
    relay.restart();
    bob.run(&["comment", &id, "bob: after the restart"]).ok();
    sync(&bob);
    wait_for("bob's comment after the restart", WATCH_RECOVERY, || {
        has_comment(&ana, &id, "bob: after the restart").then_some(())
    });
    wait_for("ana's offline comment on the relay", WATCH_RECOVERY, || {
        let c = bodies(&relay.ticket(&id, &lea.token), "comments");
        c.contains(&"ana: typed while the relay was down".to_string()).then_some(())
    });
    let killed = kill9(watch);
    assert!(!killed.stderr.contains("error: "), "the watcher did not give up: {killed:#?}");
    let status = ana.run(&["status", "--json"]).json();
    assert_eq!(status["pending"], 0, "{status}");
    assert!(status["last_sync"].is_string(), "{status}");
}

#[test]
fn sigterm_stops_the_relay_promptly_with_watchers_connected() {
    let mut relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    // Read before the watcher starts: it may finish its first sync before a
    // `status` started after it has read anything.
    let first_sync = ana.run(&["status", "--json"]).json()["last_sync"].clone();
    let watch = spawn_tickets(&ana, &["sync", "--watch"]);
    // A raw long poll held open by the relay (it would wait 25 s).
    let mut poll = TcpStream::connect(relay.addr).expect("connect");
    write!(
        poll,
        "GET /v1/sync/watch?cursor=999999 HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\r\n",
        relay.addr, ana.token
    )
    .expect("send the long poll");
    poll.flush().expect("flush");
    // The watching node has synced once and is long-polling.
    wait_for("the watcher's first sync", Duration::from_secs(10), || {
        (ana.run(&["status", "--json"]).json()["last_sync"] != first_sync).then_some(())
    });

    let started = Instant::now();
    let status = relay.terminate(Duration::from_secs(10));
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0:\n{}", relay.log());
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    assert!(relay.log().contains("relay stopped"), "{}", relay.log());
    // The long poll was answered or closed, not left hanging.
    poll.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut answer = Vec::new();
    let read = poll.read_to_end(&mut answer);
    assert!(read.is_ok(), "the long poll was left hanging: {read:?}");
    kill9(watch);
}

#[test]
fn sigterm_in_the_middle_of_a_sync_finishes_the_request_in_flight_and_loses_nothing() {
    let mut relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    import_many(&ana, 2000, "term");
    let local = node_ids(&ana);
    let requests = relay.metric("tickets_sync_requests_total");
    let child = spawn_tickets(&ana, &["sync", "--json"]);
    wait_for("the first push page", Duration::from_secs(60), || {
        (relay.metric("tickets_sync_requests_total") > requests).then_some(())
    });
    let status = relay.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0:\n{}", relay.log());
    assert_eq!(relay.integrity(), "ok");
    relay.restart();
    let first = finish(child, Duration::from_secs(120));
    assert!(matches!(first.code, Some(0) | Some(1)), "{first:#?}");
    assert_eq!(sync(&ana)["pending"], 0);
    assert_eq!(relay_ids(&relay, &lea.token), local, "every ticket reached the relay, once");
}

#[test]
fn a_watching_node_drops_its_notes_soon_after_the_permission_is_revoked() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &["--internal-notes"]);
    let id = ana.create("Alarm panel", "high", "hardware");
    ana.run(&["note", &id, "note-e2a9: the code is 0000"]).ok();
    sync(&ana);
    let first_sync = ana.run(&["status", "--json"]).json()["last_sync"].clone();
    let watch = spawn_tickets(&ana, &["sync", "--watch"]);
    wait_for("the watcher's first sync", Duration::from_secs(10), || {
        (ana.run(&["status", "--json"]).json()["last_sync"] != first_sync).then_some(())
    });
    relay.admin(&["agent", "revoke", "ana", "--internal-notes"]).ok();
    // The relay holds a long poll 25 s; a sync within a minute is generous.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut purged = false;
    while !purged && Instant::now() < deadline {
        purged = files_containing(&ana.path(), "note-e2a9").is_empty();
        std::thread::sleep(Duration::from_millis(200));
    }
    kill9(watch);
    assert!(purged, "the revoked notes are still on the watching device a minute later");
}
