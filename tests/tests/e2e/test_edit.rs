//! edit, assign, comment and note, and the history they leave: who, when,
//! from, to (SPEC §1).

use serde_json::Value;

use crate::support::{assert_mentions, history, ms, now_ms, Home};

/// Checks the one history entry of `field` and returns it.
#[track_caller]
fn one_change(t: &Value, field: &str, by: &str, from: Value, to: Value, window: (i64, i64)) {
    let entries = history(t, field);
    assert_eq!(entries.len(), 1, "one {field} entry in {}", t["history"]);
    let e = entries[0];
    assert_eq!(e["by"], by, "who: {e}");
    assert_eq!(e["from"], from, "from: {e}");
    assert_eq!(e["to"], to, "to: {e}");
    let at = ms(&e["at"]);
    assert!(window.0 - 1000 <= at && at <= window.1 + 1000, "when: {e} not within the command's run");
}

#[test]
fn every_field_change_is_recorded_with_who_when_from_to() {
    let h = Home::with_agent("bo");
    let id = h.create("Printer jams", "high", "hardware");
    let t0 = now_ms();
    h.run(&["edit", &id, "--subject", "Printer on fire", "--priority", "urgent", "--category", "facilities"]).ok();
    h.run(&["assign", &id, "ana"]).ok();
    h.run(&["status", &id, "in-progress"]).ok();
    let t1 = now_ms();
    let t = h.show(&id);
    assert_eq!((t["subject"].as_str(), t["priority"].as_str()), (Some("Printer on fire"), Some("urgent")));
    assert_eq!((t["category"].as_str(), t["assignee"].as_str()), (Some("facilities"), Some("ana")));
    assert_eq!(t["status"], "in-progress");
    one_change(&t, "subject", "bo", "Printer jams".into(), "Printer on fire".into(), (t0, t1));
    one_change(&t, "priority", "bo", "high".into(), "urgent".into(), (t0, t1));
    one_change(&t, "category", "bo", "hardware".into(), "facilities".into(), (t0, t1));
    one_change(&t, "assignee", "bo", Value::Null, "ana".into(), (t0, t1));
    one_change(&t, "status", "bo", "open".into(), "in-progress".into(), (t0, t1));
    let times: Vec<i64> = t["history"].as_array().expect("history").iter().map(|e| ms(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "history in time order: {}", t["history"]);
}

#[test]
fn assign_to_agent_team_and_none() {
    let h = Home::new();
    let id = h.create("Laptop", "low", "hardware");
    h.run(&["assign", &id, "bo"]).ok();
    assert_eq!(h.show(&id)["assignee"], "bo");
    h.run(&["assign", &id, "team:field"]).ok();
    assert_eq!(h.show(&id)["assignee"], "team:field");
    h.run(&["assign", &id, "--none"]).ok();
    let t = h.show(&id);
    assert_eq!(t["assignee"], Value::Null);
    let moves: Vec<(Value, Value)> =
        history(&t, "assignee").iter().map(|e| (e["from"].clone(), e["to"].clone())).collect();
    assert_eq!(
        moves,
        vec![(Value::Null, "bo".into()), ("bo".into(), "team:field".into()), ("team:field".into(), Value::Null),]
    );
}

#[test]
fn assign_refuses_bad_assignees() {
    let h = Home::new();
    let id = h.create("Laptop", "low", "hardware");
    h.run(&["assign", &id]).usage_error();
    h.run(&["assign", &id, "bo", "--none"]).usage_error();
    assert_mentions(&h.run(&["assign", &id, "team:"]).fails(), "team");
    h.run(&["assign", &id, &"a".repeat(65)]).fails();
    assert_eq!(h.show(&id)["assignee"], Value::Null);
}

#[test]
fn description_edit_replaces_the_text() {
    let h = Home::new();
    let id = h.create("Mail", "low", "email");
    h.run(&["edit", &id, "--description", "Outlook crashes on start"]).ok();
    let t = h.show(&id);
    assert_eq!(t["description"], "Outlook crashes on start");
    assert_eq!(t["subject"], "Mail");
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    let h = Home::new();
    let id = h.create("Mail", "low", "email");
    let before = h.show(&id);
    let out = h.run(&["edit", &id, "--priority", "low", "--subject", "Mail"]).ok();
    assert!(out.contains("nothing changed"), "{out}");
    h.run(&["status", &id, "open"]).ok();
    let after = h.show(&id);
    assert_eq!(before["history"], after["history"]);
    assert_eq!(before["updated_at"], after["updated_at"]);
}

#[test]
fn edit_without_fields_is_refused() {
    let h = Home::new();
    let id = h.create("Mail", "low", "email");
    let out = h.run(&["edit", &id]).fails();
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_mentions(&h.run(&["edit", &id, "--priority", "asap"]).fails(), "asap");
    assert_mentions(&h.run(&["edit", &id, "--subject", " "]).fails(), "subject");
    assert_eq!(h.show(&id)["priority"], "low");
}

#[test]
fn history_is_only_ever_appended() {
    let h = Home::new();
    let id = h.create("Phone", "low", "telecom");
    let mut seen: Vec<Value> = Vec::new();
    for args in [
        vec!["edit", &id, "--priority", "high"],
        vec!["assign", &id, "bo"],
        vec!["status", &id, "resolved"],
        vec!["status", &id, "open"],
        vec!["edit", &id, "--priority", "medium"],
    ] {
        h.run(&args).ok();
        let now: Vec<Value> = h.show(&id)["history"].as_array().expect("history").clone();
        assert!(now.len() > seen.len(), "`{}` added to the history", args.join(" "));
        assert_eq!(now[..seen.len()], seen[..], "earlier history is kept as it was");
        seen = now;
    }
}

#[test]
fn edit_commands_print_the_ticket_with_json() {
    let h = Home::new();
    let id = h.create("Phone", "low", "telecom");
    let t = h.run(&["edit", &id, "--priority", "high", "--json"]).json();
    assert_eq!((t["id"].as_str(), t["priority"].as_str()), (Some(id.as_str()), Some("high")));
    let t = h.run(&["assign", &id, "bo", "--json"]).json();
    assert_eq!(t["assignee"], "bo");
    let t = h.run(&["status", &id, "resolved", "--json"]).json();
    assert_eq!(t["status"], "resolved");
    let t = h.run(&["comment", &id, "done", "--json"]).json();
    assert_eq!(t["comments"][0]["body"], "done");
}
