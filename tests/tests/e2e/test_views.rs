//! Saved views: `tickets view save|list|delete` and `tickets list --view`,
//! kept in the node's database across processes; a view with a filter the
//! list does not know is refused with the filter's name.

use serde_json::Value;

use crate::support::{assert_mentions, Home};

fn subjects(home: &Home, args: &[&str]) -> Vec<String> {
    home.subjects(args)
}

#[test]
fn a_saved_view_sticks_and_flags_refine_it() {
    let home = Home::new();
    for (s, p) in [("b urgent", "urgent"), ("a urgent", "urgent"), ("c low", "low")] {
        home.create(s, p, "hardware");
    }
    let a = home.list(&["--search", "a urgent"]);
    let a_id = a[0]["id"].as_str().unwrap_or_default().to_string();
    home.run(&["status", &a_id, "resolved"]).ok();
    let saved = home.run(&["view", "save", "Urgent", "--priority", "urgent", "--sort", "subject", "--json"]).json();
    assert_eq!(saved["name"], "Urgent");
    assert_eq!(saved["filters"], serde_json::json!([["priority", "urgent"], ["sort", "subject"]]));
    // Each command is a new process: the view was kept in the node.
    assert_eq!(subjects(&home, &["--view", "Urgent"]), ["a urgent", "b urgent"]);
    assert_eq!(subjects(&home, &["--view", "Urgent", "--status", "open"]), ["b urgent"]);
    assert_eq!(subjects(&home, &["--view", "Urgent", "--sort", "-subject"]), ["b urgent", "a urgent"]);
    assert_eq!(subjects(&home, &["--view", "Urgent", "--priority", "low"]), ["c low"]);
    let table = home.run(&["list", "--view", "Urgent"]).ok();
    assert!(table.contains("a urgent") && !table.contains("c low"), "{table}");
    // Saving under the same name replaces it.
    home.run(&["view", "save", "Urgent", "--filter", "priority=urgent", "--filter", "status=open"]).ok();
    assert_eq!(subjects(&home, &["--view", "Urgent"]), ["b urgent"]);
    home.run(&["view", "save", "Low", "--priority", "low"]).ok();
    let listed = home.run(&["view", "list", "--json"]).json();
    let names: Vec<&str> = listed.as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, ["Low", "Urgent"]);
    assert!(home.run(&["view", "list"]).ok().contains("priority=urgent status=open"));
    home.run(&["view", "delete", "Urgent"]).ok();
    let out = home.run(&["list", "--view", "Urgent"]).fails();
    assert_mentions(&out, "no saved view named 'Urgent'");
    let out = home.run(&["view", "delete", "Urgent", "--json"]).fails();
    assert_eq!(out.json()["code"], "not_found");
}

#[test]
fn a_view_with_an_unknown_filter_or_a_bad_value_is_refused_by_the_filters_name() {
    let home = Home::new();
    let out = home.run(&["view", "save", "Odd", "--status", "open", "--filter", "mood=calm", "--json"]).fails();
    let v = out.json();
    assert_eq!(v["code"], "bad_filter");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("'mood'")), "{v}");
    let out = home.run(&["view", "save", "Odd", "--status", "pending"]).fails();
    assert_mentions(&out, "filter 'status'");
    let out = home.run(&["view", "save", "Odd", "--sort", "mood"]).fails();
    assert_mentions(&out, "filter 'sort'");
    let out = home.run(&["view", "save", "Odd", "--filter", "limit=5"]).fails();
    assert_mentions(&out, "filter 'limit'");
    let out = home.run(&["view", "save", "Odd", "--filter", "status"]).fails();
    assert_mentions(&out, "KEY=VALUE");
    for name in ["", "   ", "tab\there", &"x".repeat(65)] {
        let out = home.run(&["view", "save", name, "--status", "open", "--json"]).fails();
        assert_eq!(out.json()["code"], "bad_view_name", "{name:?}");
    }
    // 64 characters, two bytes each, is a fine name.
    home.run(&["view", "save", &"é".repeat(64)]).ok();
    let listed = home.run(&["view", "list", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "only the good view was saved: {listed}");
    assert_eq!(listed[0]["filters"], Value::Array(vec![]));
}
