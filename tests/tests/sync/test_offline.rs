//! A node works with no relay; a sync that cannot reach it, or gets server
//! errors, backs off, fails with a clear message, and loses nothing
//! (SPEC §3).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{bodies, fake_relay, finish, registered, spawn_tickets, sync, Finished, Relay};
use crate::support::{assert_mentions, Home};

/// A failed sync: exit 1, one `error:` line and a hint.
#[track_caller]
fn assert_clear_failure(f: &Finished, mentions: &str) {
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(f.stdout.is_empty(), "{f:#?}");
    let lines: Vec<&str> = f.stderr.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("error: ") && lines[1].starts_with("hint: "), "{f:#?}");
    assert!(lines[0].contains(mentions), "{f:#?}");
    assert!(lines[1].contains("nothing is lost"), "{f:#?}");
}

#[test]
fn with_the_relay_down_a_node_works_and_sync_backs_off_then_fails_clearly() {
    let mut relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let id = ana.create("Projector", "medium", "hardware");
    sync(&ana);
    relay.kill9();

    // Every local command works offline.
    let offline = ana.create("Typed offline", "high", "network");
    ana.run(&["comment", &id, "offline comment"]).ok();
    ana.run(&["status", &id, "in-progress"]).ok();
    ana.run(&["assign", &id, "ana"]).ok();
    assert_eq!(ana.list(&[]).len(), 2);
    assert_eq!(ana.show(&id)["status"], "in-progress");
    assert_eq!(ana.run(&["status", "--json"]).json()["pending"], 2);

    // A relay that answers 503 to every sync, noting when each came.
    let hits = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = hits.clone();
    let failing = fake_relay(move |_, path| {
        if path == "/v1/sync/register" {
            return (200, registered());
        }
        seen.lock().expect("hits").push(Instant::now());
        (503, r#"{"error":"internal error","code":"internal"}"#.to_string())
    });
    let other = Home::empty();
    other.run(&["init", "--relay", &failing, "--token", "tok"]).ok();
    other.create("Never lost", "low", "hardware");

    // Both syncs retry with backoff; run them side by side.
    let down = spawn_tickets(&ana, &["sync"]);
    let erroring = spawn_tickets(&other, &["sync"]);
    assert_clear_failure(&finish(down, Duration::from_secs(90)), "cannot reach the relay");
    assert_clear_failure(&finish(erroring, Duration::from_secs(90)), "503");
    let times = hits.lock().expect("hits").clone();
    assert!(times.len() >= 3, "the sync retried: {} attempt(s)", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.last() > gaps.first(), "retries back off: {gaps:?}");
    assert_eq!(other.run(&["status", "--json"]).json()["pending"], 1, "the local ticket stays pending");

    relay.restart();
    let report = sync(&ana);
    assert_eq!((report["pushed"].as_u64(), report["pending"].as_u64()), (Some(2), Some(0)), "{report}");
    let t = relay.ticket(&id, &lea.token);
    assert_eq!((t["status"].as_str(), t["assignee"].as_str()), (Some("in-progress"), Some("ana")));
    assert_eq!(bodies(&t, "comments"), ["offline comment"]);
    assert_eq!(relay.ticket(&offline, &lea.token)["subject"], "Typed offline");
}

#[test]
fn a_local_only_node_registers_later_and_pushes_what_it_has() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let token = relay.add_agent("ana", "agent", &[]);
    let h = Home::with_agent("ana");
    let id = h.create("Made before any relay", "medium", "hardware");
    h.run(&["comment", &id, "still local"]).ok();
    let out = h.run(&["sync"]).fails();
    assert_mentions(&out, "not registered");

    let out = h.run(&["init", "--relay", &relay.url(), "--token", "not-a-token"]).fails();
    assert_mentions(&out, "token");

    h.run(&["init", "--relay", &relay.url(), "--token", &token]).ok();
    let report = sync(&h);
    assert_eq!((report["pushed"].as_u64(), report["pending"].as_u64()), (Some(1), Some(0)), "{report}");
    let t = relay.ticket(&id, &lea.token);
    assert_eq!(t["created_by"], "ana");
    assert_eq!(bodies(&t, "comments"), ["still local"]);
}

#[test]
fn a_token_of_another_agent_is_refused_without_binding_the_device_to_that_agent() {
    let relay = Relay::start();
    let ana = relay.add_agent("ana", "agent", &[]);
    let bob = relay.add_agent("bob", "agent", &[]);
    let h = Home::with_agent("ana");
    h.create("Made before any relay", "medium", "hardware");
    let out = h.run(&["init", "--relay", &relay.url(), "--token", &bob]).fails();
    assert_mentions(&out, "bob");
    let agents = relay.admin(&["agent", "list", "--json"]).json();
    let devices =
        |name: &str| agents.as_array().and_then(|a| a.iter().find(|x| x["name"] == name)).map(|x| x["devices"].clone());
    assert_eq!(devices("bob"), Some(serde_json::json!(0)), "ana's device was bound to bob: {agents}");
    // The mistake must not lock the device out.
    h.run(&["init", "--relay", &relay.url(), "--token", &ana]).ok();
    assert_eq!(sync(&h)["pending"], 0);
}
