//! What the relay and the node say about sync: Prometheus counters on
//! `/metrics`, and the local backlog and last sync in `tickets status` and
//! `sync --dry-run` (SPEC §3, §6).

use serde_json::json;
use tickets_core::protocol::encode_data;

use crate::harness::{client, counter, sync, Relay};
use crate::support::{ms, now_ms, Home};

const COUNTERS: [&str; 8] = [
    "tickets_sync_requests_total",
    "tickets_sync_bytes_in_total",
    "tickets_sync_bytes_out_total",
    "tickets_docs_applied_total",
    "tickets_changes_applied_total",
    "tickets_refusals_total",
    "tickets_http_client_errors_total",
    "tickets_sync_seconds_count",
];

/// `/metrics`, checked for the Prometheus text format; the counters above.
fn metrics(relay: &Relay) -> Vec<u64> {
    let resp = client().get(format!("{}/metrics", relay.url())).send().expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(ct.starts_with("text/plain"), "content type {ct}");
    let text = resp.text().expect("text");
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "), "{line}");
        } else {
            let (_, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        }
    }
    COUNTERS.iter().map(|c| counter(&text, c)).collect()
}

/// Which counters grew from `a` to `b`.
fn grown(a: &[u64], b: &[u64]) -> Vec<&'static str> {
    COUNTERS.iter().zip(a.iter().zip(b)).filter(|(_, (x, y))| y > x).map(|(n, _)| *n).collect()
}

#[test]
fn metrics_move_with_syncs_and_refusals() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let before = metrics(&relay);
    for i in 0..3 {
        let id = ana.create(&format!("metered {i}"), "low", "hardware");
        ana.run(&["comment", &id, "a comment"]).ok();
    }
    sync(&ana);
    let after = metrics(&relay);
    let moved = grown(&before, &after);
    for c in [
        "tickets_sync_requests_total",
        "tickets_sync_bytes_in_total",
        "tickets_sync_bytes_out_total",
        "tickets_docs_applied_total",
        "tickets_changes_applied_total",
        "tickets_sync_seconds_count",
    ] {
        assert!(moved.contains(&c), "{c} did not move: {before:?} -> {after:?}");
    }
    assert_eq!(after[3] - before[3], 3, "three documents applied");
    assert!(!moved.contains(&"tickets_refusals_total"), "nothing was refused");

    // A refused push (notes without the permission) counts as a refusal and
    // a client error.
    let device = ana.run(&["status", "--json"]).json()["actor"].as_str().expect("actor").to_string();
    let id = ana.list(&[])[0]["id"].as_str().expect("id").to_string();
    let body = json!({"protocol": 1, "device": device, "clock_ms": now_ms(),
        "push": [{"id": id, "kind": "notes", "data": encode_data(b"x")}]});
    let resp =
        client().post(format!("{}/v1/sync", relay.url())).bearer_auth(&ana.token).json(&body).send().expect("POST");
    assert_eq!(resp.status().as_u16(), 403);
    let refused = metrics(&relay);
    assert_eq!(refused[5] - after[5], 1, "one refusal counted");
    assert!(refused[6] > after[6], "a 4xx counted");
}

#[test]
fn status_and_dry_run_report_the_backlog_and_the_last_sync() {
    let relay = Relay::start();
    let local = Home::with_agent("zed");
    local.create("offline only", "low", "hardware");
    let st = local.run(&["status", "--json"]).json();
    assert_eq!(
        (st["pending"].as_u64(), st["last_sync"].is_null(), st["relay"].is_null()),
        (Some(1), true, true),
        "{st}"
    );
    let out = local.run(&["sync", "--dry-run"]).ok();
    assert!(out.contains("would push 1 document") && out.contains("never"), "{out}");

    let ana = relay.agent("ana", "agent", &[]);
    let synced = ana.run(&["status", "--json"]).json();
    assert_eq!(synced["pending"], 0, "{synced}");
    assert_eq!(synced["relay"], relay.url().as_str());
    let first = ms(&synced["last_sync"]);
    assert!((now_ms() - first).abs() < 60_000, "last sync is recent: {synced}");

    let id = ana.create("one", "low", "hardware");
    ana.create("two", "low", "network");
    ana.run(&["comment", &id, "more"]).ok();
    let requests = relay.metric("tickets_sync_requests_total");
    let dry = ana.run(&["sync", "--dry-run", "--json"]).json();
    let st = ana.run(&["status", "--json"]).json();
    assert_eq!(dry, st, "sync --dry-run --json is the status");
    assert_eq!(st["pending"], 2, "two documents wait: {st}");
    assert_eq!(ms(&st["last_sync"]), first, "the last sync is unchanged");
    let text = ana.run(&["sync", "--dry-run"]).ok();
    assert!(text.contains("would push 2 document") && text.contains(&relay.url()), "{text}");
    let text = ana.run(&["status"]).ok();
    assert!(text.contains("pending 2") && text.contains("synced"), "{text}");
    assert_eq!(relay.metric("tickets_sync_requests_total"), requests, "a dry run sends nothing");

    let report = sync(&ana);
    assert_eq!((report["pushed"].as_u64(), report["pending"].as_u64()), (Some(2), Some(0)), "{report}");
    let st = ana.run(&["status", "--json"]).json();
    assert_eq!(st["pending"], 0);
    assert!(ms(&st["last_sync"]) >= first, "{st}");
    let text = ana.run(&["sync"]).ok();
    assert!(text.contains("pushed 0") && text.contains("pending 0"), "{text}");
}
