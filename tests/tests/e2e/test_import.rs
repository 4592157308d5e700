//! `import`: a JSON array or NDJSON file, one transaction, all or nothing.

use serde_json::{json, Value};

use crate::support::{assert_mentions, record, Home};

fn import(h: &Home, name: &str, text: &str) -> crate::support::Run {
    let path = h.file(name, text);
    h.run(&["import", path.to_str().expect("utf-8 path")])
}

#[test]
fn a_json_array_imports_every_record_with_its_fields() {
    let h = Home::new();
    let records = json!([
        {"subject": "a", "priority": "low", "category": "x"},
        {"subject": "b", "description": "long story", "priority": "high", "category": "y",
         "status": "resolved", "assignee": "team:ops"},
        {"subject": "c", "priority": "urgent", "category": "x", "status": "in-progress", "assignee": "bo"},
    ]);
    let out = import(&h, "t.json", &records.to_string()).ok();
    assert!(out.contains("imported 3"), "{out}");
    let list = h.list(&["--sort", "subject"]);
    assert_eq!(list.len(), 3);
    let b = &list[1];
    assert_eq!(b["subject"], "b");
    assert_eq!(b["description"], "long story");
    assert_eq!((b["priority"].as_str(), b["category"].as_str()), (Some("high"), Some("y")));
    assert_eq!((b["status"].as_str(), b["assignee"].as_str()), (Some("resolved"), Some("team:ops")));
    assert_eq!(b["created_by"], "ana");
    assert_eq!(list[0]["status"], "open", "status defaults to open");
    assert_eq!(list[0]["assignee"], Value::Null);
    let ids: std::collections::BTreeSet<&str> = list.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids.len(), 3, "each record is its own ticket");
}

#[test]
fn ndjson_imports_and_skips_blank_lines() {
    let h = Home::new();
    let lines: Vec<String> = (0..25).map(|i| record(&format!("n{i}"), "medium", "x").to_string()).collect();
    let text = format!("{}\n\n{}\n", lines[..10].join("\n"), lines[10..].join("\r\n"));
    let out = import(&h, "t.ndjson", &text).ok();
    assert!(out.contains("imported 25"), "{out}");
    assert_eq!(h.list(&[]).len(), 25);
    // A second import adds to the first.
    let more = h.file("more.ndjson", &lines[..2].join("\n"));
    let v = h.run(&["import", more.to_str().expect("utf-8 path"), "--json"]).json();
    assert_eq!(v["imported"], 2);
    assert_eq!(h.list(&[]).len(), 27);
}

#[test]
fn one_bad_record_imports_nothing_and_is_named() {
    let h = Home::new();
    h.create("already here", "low", "x");
    let good = |s: &str| record(s, "low", "x").to_string();
    let bad_lines: Vec<(String, &str)> = vec![
        (json!({"subject": "c", "priority": "extreme", "category": "x"}).to_string(), "extreme"),
        (json!({"subject": "", "priority": "low", "category": "x"}).to_string(), "subject"),
        (json!({"subject": "c", "priority": "low"}).to_string(), "category"),
        (json!({"subject": "c", "priority": "low", "category": "x", "status": "done"}).to_string(), "done"),
        (json!({"subject": "c", "priority": "low", "category": "x", "colour": "red"}).to_string(), "colour"),
        (json!({"subject": "c", "priority": "low", "category": "x", "assignee": "team:"}).to_string(), "team"),
        ("{\"subject\": \"c\", ".to_string(), "record 3"),
        ("[1]".to_string(), "record 3"),
    ];
    for (bad, what) in bad_lines {
        let text = [good("a"), good("b"), bad.clone(), good("d"), good("e")].join("\n");
        let out = import(&h, "bad.ndjson", &text).fails();
        assert_mentions(&out, "record 3");
        assert_mentions(&out, what);
        assert_mentions(&out, "nothing was imported");
        assert_eq!(h.subjects(&[]), vec!["already here".to_string()], "nothing imported for {bad}");
    }
    let arr = json!([record("a", "low", "x"), {"subject": "b", "priority": "nope", "category": "x"}]);
    let out = import(&h, "bad.json", &arr.to_string()).fails();
    assert_mentions(&out, "record 2");
    assert_eq!(h.list(&[]).len(), 1);
}

#[test]
fn malformed_or_missing_files_are_refused() {
    let h = Home::new();
    for (name, text) in [
        ("garbage.json", "this is not json"),
        ("truncated.json", r#"[{"subject": "a", "priority": "low", "category": "x"}, {"#),
        ("object.json", r#"{"tickets": []}"#),
        ("empty.ndjson", ""),
        ("blank.ndjson", "\n\n  \n"),
        ("numbers.json", "[1, 2, 3]"),
    ] {
        let out = import(&h, name, text).fails();
        assert_mentions(&out, name);
    }
    let out = h.run(&["import", "no-such-file.json"]).fails();
    assert_mentions(&out, "no-such-file.json");
    h.run(&["import"]).usage_error();
    assert!(h.list(&[]).is_empty());
}
