//! What a new user ran into (issue #14), end to end with a real relay and
//! real `tickets` processes:
//! - an edit that lost to a concurrent one (Ana's reopen against Bob's
//!   close) is told to its author in `tickets sync`, at the top of `show`,
//!   in `show --json` and in the timeline; `show --json` stays the same on
//!   every replica;
//! - closed is final for every field, not only the status;
//! - `green` means the same on the dashboard's counts and in
//!   `tickets board --json`;
//! - every export format carries the same fields, read back with Python's
//!   own csv and json modules.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{id_of, wait_for, Device, Relay};

/// A ticket object without its live SLA figures and per-device refusals.
fn stable(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(o) = t.as_object_mut() {
        o.remove("sla");
        o.remove("refusals");
    }
    t
}

#[test]
fn a_reopen_that_lost_to_a_concurrent_close_is_told_to_its_author() {
    let relay = Relay::start();
    let ana_token = relay.agent("ana", "agent");
    let bob_token = relay.agent("bob", "agent");
    relay.category("hardware");
    let ana = Device::register(&relay.url, &ana_token);
    let bob = Device::register(&relay.url, &bob_token);

    let id = ana.create("Laptop does not boot", "high", "hardware");
    ana.run(&["status", &id, "resolved"]).ok();
    ana.sync();
    bob.sync();
    // Bob closes; Ana, offline, reopens afterwards with a comment.
    bob.run(&["status", &id, "closed"]).ok();
    bob.sync();
    ana.run(&["status", &id, "open"]).ok();
    ana.run(&["comment", &id, "failed again after reboot"]).ok();

    let out = ana.run(&["sync"]).ok();
    assert!(out.contains("1 of your edits did not take effect"), "sync tells the author:\n{out}");
    assert!(out.contains(&format!("ticket {}", &id[..8])), "{out}");
    assert!(out.contains("status → open ignored (ticket closed by bob at "), "{out}");
    // Told once: the next sync has nothing new to say.
    let again = ana.run(&["sync"]).ok();
    assert!(!again.contains("did not take effect"), "{again}");

    // The ticket is closed, the comment kept, and the reopen is in the
    // timeline, marked ignored, from what Ana saw.
    let t = ana.show(&id);
    assert_eq!(t["status"], "closed", "{t}");
    assert_eq!(t["comments"][0]["body"], "failed again after reboot");
    let reopen: Vec<&Value> = t["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["by"] == "ana" && h["field"] == "status" && h["to"] == "open")
        .collect();
    assert_eq!(reopen.len(), 1, "{t}");
    assert_eq!(reopen[0]["outcome"], "ignored");
    assert_eq!(reopen[0]["from"], "resolved", "from is what ana saw: {}", reopen[0]);
    assert!(reopen[0]["note"].as_str().is_some_and(|n| n.contains("closed by bob")), "{}", reopen[0]);
    let listed: Vec<&Value> = t["not_applied"].as_array().into_iter().flatten().collect();
    assert_eq!(listed.len(), 1, "show --json lists the edit that did not take effect: {t}");
    assert_eq!((&listed[0]["by"], &listed[0]["outcome"]), (&Value::from("ana"), &Value::from("ignored")));

    // The human `show`: the author reads it at the top; others do not.
    let shown = ana.run(&["show", &id]).ok();
    let first = shown.lines().next().unwrap_or_default();
    assert!(first.contains("1 of your edits did not take effect"), "at the top of show:\n{shown}");
    assert!(shown.contains("status → open ignored (ticket closed by bob at "), "{shown}");
    assert!(shown.contains("[ignored]"), "the timeline marks it:\n{shown}");
    bob.sync();
    let for_bob = bob.run(&["show", &id]).ok();
    assert!(!for_bob.contains("did not take effect"), "bob's own edits all took effect:\n{for_bob}");

    // Every replica shows the same object, apart from live figures.
    assert_eq!(stable(&bob.show(&id)), stable(&ana.show(&id)), "show --json differs between replicas");

    // Closed is final, for the status and for every other field, with the
    // same clear error; comments still go in.
    let refused = ana.run(&["status", &id, "open"]).fails().stderr;
    assert!(refused.contains("closed is final"), "{refused}");
    for args in [
        vec!["edit", id.as_str(), "--priority", "urgent"],
        vec!["edit", id.as_str(), "--subject", "Still broken"],
        vec!["assign", id.as_str(), "bob"],
    ] {
        let refused = ana.run(&args).fails().stderr;
        assert!(refused.contains("closed is final"), "{args:?}: {refused}");
    }
    ana.run(&["comment", &id, "ok, I will open a new ticket"]).ok();
    assert_eq!(ana.show(&id)["priority"], "high");
}

/// Tallies the tickets of `tickets board --json` by `sla.color`.
fn tally(tickets: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in tickets.as_array().expect("an array of tickets") {
        *out.entry(t["sla"]["color"].as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
    }
    out
}

#[test]
fn green_means_the_same_on_the_dashboard_and_in_tickets_board() {
    let relay = Relay::start();
    let lead = relay.agent("lea", "lead");
    relay.category("hardware");
    relay.sla("urgent", "1s", "1s");
    relay.sla("medium", "200s", "400s");
    relay.sla("high", "1h", "2h");
    // Yellow after 1% of a target: a medium ticket is yellow after 2 s.
    relay.admin(&["sla", "warn", "1"]);
    let lea = Device::register(&relay.url, &lead);

    let mut want: BTreeMap<String, &str> = BTreeMap::new();
    want.insert(lea.create("Running on time", "high", "hardware"), "green");
    let met = lea.create("Answered and resolved in time", "high", "hardware");
    lea.run(&["comment", &met, "done"]).ok();
    lea.run(&["status", &met, "resolved"]).ok();
    want.insert(met, "met");
    want.insert(lea.create("Past its warning", "medium", "hardware"), "yellow");
    want.insert(lea.create("Overdue", "urgent", "hardware"), "red");
    let breached = lea.create("Resolved after its target", "urgent", "hardware");
    want.insert(breached.clone(), "red");
    want.insert(lea.create("No target for low", "low", "hardware"), "none");
    lea.sync();
    wait_for("the urgent tickets to breach", Duration::from_secs(20), || {
        let c = &relay.board(&lead, "")["counts"];
        (c["red"] == 2 && c["yellow"] == 1).then_some(()).ok_or(format!("{c}"))
    });
    lea.run(&["comment", &breached, "late"]).ok();
    lea.run(&["status", &breached, "resolved"]).ok();
    lea.sync();

    let board = relay.board(&lead, "");
    let counts = &board["counts"];
    let cli = lea.run(&["board", "--json"]).json();
    let by_id: BTreeMap<String, &Value> = cli.as_array().expect("tickets").iter().map(|t| (id_of(t), t)).collect();
    for (id, colour) in &want {
        assert_eq!(by_id[id]["sla"]["color"], *colour, "{}: {}", by_id[id]["subject"], by_id[id]["sla"]);
    }
    let stopped = &by_id[&breached]["sla"]["resolution"];
    assert_eq!(stopped["state"], "breached", "{stopped}");
    let mut from_counts = BTreeMap::new();
    for c in ["green", "yellow", "red", "met", "none"] {
        let n = counts[c].as_u64().unwrap_or_else(|| panic!("counts.{c} in {counts}"));
        if n > 0 {
            from_counts.insert(c.to_string(), n);
        }
    }
    assert_eq!(from_counts, tally(&cli), "the dashboard's counts and `tickets board --json` agree");
    assert_eq!((counts["green"].as_u64(), counts["met"].as_u64()), (Some(1), Some(1)), "{counts}");

    // Each colour's filter lists exactly the tickets of that colour.
    for c in ["green", "yellow", "red", "met", "none"] {
        let listed = relay.board(&lead, &format!("sla={c}"));
        let n = listed["tickets"].as_array().map_or(0, Vec::len) as u64;
        assert_eq!(Some(n), counts[c].as_u64(), "sla={c}: {listed}");
    }
    let human = lea.run(&["board"]).ok();
    assert!(human.contains("1 green") && human.contains("1 met"), "{human}");
}

/// Reads every export with Python's own modules and prints, per format,
/// each ticket's scalar fields and history entries, with empty text as
/// null (CSV cannot tell them apart).
const PYTHON_EXPORTS: &str = r#"
import csv, json, os, sys
d = sys.argv[1]
SCALARS = ["id", "subject", "priority", "category", "status", "assignee", "created_at", "created_by",
           "updated_at", "resolved_at", "closed_at", "conversation_id"]
HISTORY = ["at", "by", "field", "from", "to", "outcome", "note"]
def norm(v):
    return None if v == "" else v
def from_object(t):
    out = {k: norm(t.get(k, "MISSING")) for k in SCALARS}
    out["history"] = [{k: norm(h.get(k, "MISSING")) for k in HISTORY} for h in t["history"]]
    return out
with open(os.path.join(d, "all.json"), encoding="utf-8") as f:
    js = {t["id"]: from_object(t) for t in json.load(f)}
with open(os.path.join(d, "all.ndjson"), encoding="utf-8") as f:
    nd = {t["id"]: from_object(t) for t in (json.loads(l) for l in f if l.strip())}
def rows(name):
    with open(os.path.join(d, "csv", name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
cs = {}
for r in rows("tickets.csv"):
    cs[r["id"]] = {k: norm(r.get(k, "MISSING")) for k in SCALARS}
    cs[r["id"]]["history"] = []
for r in rows("history.csv"):
    cs[r["ticket_id"]]["history"].append({k: norm(r.get(k, "MISSING")) for k in HISTORY})
print(json.dumps({"json": js, "ndjson": nd, "csv": cs}))
"#;

fn python_exports(dir: &Path) -> Value {
    let out = Command::new("python3").arg("-c").arg(PYTHON_EXPORTS).arg(dir).output().unwrap_or_else(|e| {
        panic!("python3 is needed to read the exports with Python's csv and json modules ({e}); install python3")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}

#[test]
fn every_export_format_carries_the_same_fields() {
    let relay = Relay::start();
    let lead = relay.agent("lea", "lead");
    let ana_token = relay.agent("ana", "agent");
    relay.category("hardware");
    let lea = Device::register(&relay.url, &lead);
    let ana = Device::register(&relay.url, &ana_token);

    let resolved = lea.create("Resolved one", "high", "hardware");
    lea.run(&["status", &resolved, "resolved"]).ok();
    let closed = lea.create("Closed one", "medium", "hardware");
    lea.run(&["status", &closed, "closed"]).ok();
    let conflict = lea.create("Conflicting edits", "low", "hardware");
    lea.run(&["assign", &conflict, "ana"]).ok();
    lea.sync();
    ana.sync();
    // ana raises the priority and reopens; lea, later, lowers the priority
    // and closes: ana's priority is superseded and her reopen stands
    // before the close.
    ana.run(&["edit", &conflict, "--priority", "high"]).ok();
    lea.run(&["edit", &conflict, "--priority", "medium"]).ok();
    lea.run(&["status", &conflict, "closed"]).ok();
    ana.run(&["status", &conflict, "in-progress"]).ok();
    lea.sync();
    ana.sync();
    lea.sync();

    let dir = lea.path_next_to_home("exports14");
    std::fs::create_dir_all(&dir).expect("a folder for exports");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    for (format, name) in [("json", "all.json"), ("ndjson", "all.ndjson"), ("csv", "csv")] {
        lea.run(&["export", "--format", format, "-o", &path(name)]).ok();
    }
    let got = python_exports(&dir);
    let (js, nd, cs) = (&got["json"], &got["ndjson"], &got["csv"]);
    assert_eq!(js.as_object().map(|o| o.len()), Some(3), "{js}");
    for (id, t) in js.as_object().expect("json by id") {
        for k in t.as_object().expect("fields").keys() {
            assert_eq!(t[k], nd[id][k], "{id}: {k} in json and ndjson");
            assert_eq!(t[k], cs[id][k], "{id}: {k} in json and csv");
            assert_ne!(t[k], "MISSING", "{id}: json lacks {k}");
        }
    }
    assert!(js[&resolved]["resolved_at"].is_string(), "{}", js[&resolved]);
    assert!(js[&closed]["closed_at"].is_string(), "{}", js[&closed]);
    let outcomes: Vec<&str> =
        js[&conflict]["history"].as_array().expect("history").iter().filter_map(|h| h["outcome"].as_str()).collect();
    assert!(outcomes.contains(&"superseded") || outcomes.contains(&"ignored"), "{}", js[&conflict]);
}
