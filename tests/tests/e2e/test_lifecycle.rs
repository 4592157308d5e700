//! Status transitions: anything but closed may move anywhere; closed is
//! terminal (SPEC §1).

use crate::support::{assert_mentions, history, stable, Home};

fn statuses(t: &serde_json::Value) -> Vec<(String, String)> {
    history(t, "status")
        .iter()
        .map(|e| (e["from"].as_str().unwrap_or("").to_string(), e["to"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn open_statuses_move_freely_and_resolved_reopens() {
    let h = Home::new();
    let id = h.create("Wifi", "medium", "network");
    for s in ["in-progress", "resolved", "open", "resolved", "in-progress", "open", "closed"] {
        h.run(&["status", &id, s]).ok();
        assert_eq!(h.show(&id)["status"], s);
    }
    let t = h.show(&id);
    let want: Vec<(String, String)> = [
        ("open", "in-progress"),
        ("in-progress", "resolved"),
        ("resolved", "open"),
        ("open", "resolved"),
        ("resolved", "in-progress"),
        ("in-progress", "open"),
        ("open", "closed"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses(&t), want);
}

#[test]
fn closed_is_terminal_and_a_refusal_writes_nothing() {
    let h = Home::new();
    let id = h.create("Wifi", "medium", "network");
    h.run(&["status", &id, "closed"]).ok();
    let before = stable(&h.show(&id));
    for s in ["open", "in-progress", "resolved"] {
        let out = h.run(&["status", &id, s]).fails();
        assert_mentions(&out, "closed");
        // Only the live SLA figures may differ between two `show`s.
        assert_eq!(stable(&h.show(&id)), before, "a refused transition out of closed wrote nothing");
    }
    let out = h.run(&["status", &id, "closed"]).ok();
    assert!(out.contains("nothing changed"), "closing a closed ticket is a no-op: {out}");
    assert_eq!(statuses(&h.show(&id)).len(), 1);
}

#[test]
fn an_imported_closed_ticket_is_terminal_too() {
    let h = Home::new();
    let n = h.import_ndjson(&[serde_json::json!({
        "subject": "old", "priority": "low", "category": "x", "status": "closed"
    })]);
    assert_eq!(n, 1);
    let id = h.list(&[])[0]["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(h.show(&id)["status"], "closed");
    h.run(&["status", &id, "open"]).fails();
}

#[test]
fn status_arguments_are_checked() {
    let h = Home::new();
    let id = h.create("Wifi", "medium", "network");
    for bad in ["done", "reopened", "", "OPEN-ish"] {
        let out = h.run(&["status", &id, bad]).fails();
        assert_mentions(&out, "status");
    }
    let out = h.run(&["status", &id]).fails();
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(h.show(&id)["status"], "open");
    // Spellings a user may type for in-progress.
    h.run(&["status", &id, "IN-PROGRESS"]).ok();
    assert_eq!(h.show(&id)["status"], "in-progress");
}

#[test]
fn status_without_arguments_shows_the_node() {
    let h = Home::new();
    h.create("a", "low", "x");
    h.create("b", "low", "x");
    let out = h.run(&["status"]).ok();
    assert!(out.contains("ana") && out.contains("local only"), "{out}");
    let st = h.run(&["status", "--json"]).json();
    assert_eq!(st["tickets"], 2);
    assert_eq!(st["last_sync"], serde_json::Value::Null);
}
