//! A relay with an empty database: no tickets, no categories, no SLA
//! settings. The board and every export format still answer, empty and
//! valid.

use crate::harness::{entries, Device, Relay};
use crate::test_export::{python_csv_counts, read_csv};

#[test]
fn board_and_exports_of_a_relay_without_tickets_are_empty_and_valid() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let lea = Device::register(&relay.url, &lead_token);
    lea.sync();

    let board = relay.board(&lead_token, "");
    assert_eq!(board["tickets"], serde_json::json!([]), "{board}");
    assert_eq!(board["total"], 0);
    assert_eq!(board["counts"], serde_json::json!({"green": 0, "yellow": 0, "red": 0, "met": 0, "none": 0}));
    assert!(board["next_change_at"].is_null(), "{board}");
    assert_eq!(relay.board(&lead_token, "sla=red")["tickets"], serde_json::json!([]));
    assert_eq!(lea.run(&["board", "--json"]).json(), serde_json::json!([]));
    assert_eq!(lea.run(&["board", "--sla", "red", "--json"]).json(), serde_json::json!([]));
    let table = lea.run(&["board"]).ok();
    assert!(table.contains("no tickets match"), "{table}");

    let json = lea.path_next_to_home("empty.json");
    let out = lea.run(&["export", "--format", "json", "-o", json.to_str().expect("utf-8"), "--json"]).json();
    assert_eq!(out["tickets"], 0, "{out}");
    let text = std::fs::read_to_string(&json).expect("the json export exists");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    assert_eq!(v, serde_json::json!([]));

    let ndjson = lea.path_next_to_home("empty.ndjson");
    lea.run(&["export", "--format", "ndjson", "-o", ndjson.to_str().expect("utf-8")]).ok();
    let text = std::fs::read_to_string(&ndjson).expect("the ndjson export exists");
    assert_eq!(text.lines().filter(|l| !l.trim().is_empty()).count(), 0, "{text:?}");

    let dir = lea.path_next_to_home("empty-csv");
    lea.run(&["export", "--format", "csv", "-o", dir.to_str().expect("utf-8")]).ok();
    assert_eq!(entries(&dir), ["comments.csv", "history.csv", "tickets.csv"]);
    let (header, rows) = read_csv(&dir.join("tickets.csv"));
    assert_eq!(header.first().map(String::as_str), Some("id"));
    assert!(header.iter().any(|h| h == "resolution_due_at"), "SLA columns even when empty: {header:?}");
    assert!(rows.is_empty());
    let (header, rows) = read_csv(&dir.join("comments.csv"));
    assert_eq!(header, ["ticket_id", "kind", "author", "at", "body"]);
    assert!(rows.is_empty());
    let (header, rows) = read_csv(&dir.join("history.csv"));
    assert_eq!(header, ["ticket_id", "at", "by", "field", "from", "to", "outcome", "note"]);
    assert!(rows.is_empty());
    let py = python_csv_counts(&dir);
    assert_eq!(
        (py["tickets"].as_u64(), py["comments"].as_u64(), py["notes"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{py}"
    );
}
