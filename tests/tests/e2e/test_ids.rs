//! Ids may be given as any unique prefix (SPEC §5).

use serde_json::Value;

use crate::support::{assert_mentions, record, stable, Home};

#[test]
fn unique_prefixes_work_for_every_command() {
    let h = Home::new();
    let id = h.create("Printer", "low", "hardware");
    let short = &id[..8];
    assert_eq!(h.show(short)["id"], id);
    assert_eq!(h.show(&id[..13].to_uppercase())["id"], id, "prefixes are case-insensitive");
    h.run(&["edit", short, "--priority", "high"]).ok();
    h.run(&["assign", short, "bo"]).ok();
    h.run(&["status", short, "in-progress"]).ok();
    h.run(&["comment", short, "on it"]).ok();
    h.run(&["note", short, "vip customer"]).ok();
    let t = h.show(&id);
    assert_eq!((t["priority"].as_str(), t["assignee"].as_str()), (Some("high"), Some("bo")));
    assert_eq!(t["status"], "in-progress");
    assert_eq!(t["comments"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["internal_notes"].as_array().map(Vec::len), Some(1));
}

/// With 17 tickets, two share a first hex digit (there are 16).
fn ambiguous_fixture() -> (Home, String, usize) {
    let h = Home::new();
    let records: Vec<_> = (0..17).map(|i| record(&format!("t{i}"), "low", "x")).collect();
    assert_eq!(h.import_ndjson(&records), 17);
    let ids: Vec<String> = h.list(&[]).iter().map(|t| t["id"].as_str().unwrap_or_default().to_string()).collect();
    let (prefix, count) = "0123456789abcdef"
        .chars()
        .map(|c| (c.to_string(), ids.iter().filter(|id| id.starts_with(c)).count()))
        .max_by_key(|(_, n)| *n)
        .expect("16 digits");
    assert!(count >= 2);
    (h, prefix, count)
}

#[test]
fn an_ambiguous_prefix_fails_and_changes_nothing() {
    let (h, prefix, count) = ambiguous_fixture();
    let before = stable(&Value::Array(h.list(&[])));
    let out = h.run(&["show", &prefix]).fails();
    assert_mentions(&out, &format!("matches {count} tickets"));
    for args in [
        vec!["status", &prefix, "closed"],
        vec!["edit", &prefix, "--subject", "x"],
        vec!["assign", &prefix, "bo"],
        vec!["comment", &prefix, "hello"],
        vec!["note", &prefix, "hello"],
    ] {
        let out = h.run(&args).fails();
        assert_mentions(&out, &prefix);
    }
    assert_eq!(stable(&Value::Array(h.list(&[]))), before, "nothing was written");
}

#[test]
fn unknown_ids_fail() {
    let h = Home::new();
    let id = h.create("Printer", "low", "hardware");
    let other = if id.starts_with('f') { "e" } else { "f" };
    let unknown = format!("{other}{}", &id[1..]);
    for bad in [unknown.as_str(), "zzz", "not-an-id", " "] {
        let out = h.run(&["show", bad]).fails();
        assert_mentions(&out, "no ticket matches");
        h.run(&["comment", bad, "hi"]).fails();
        h.run(&["status", bad, "closed"]).fails();
    }
    let out = h.run(&["show", ""]).fails();
    assert_mentions(&out, "no ticket");
    assert_eq!(h.show(&id)["status"], "open");
}
