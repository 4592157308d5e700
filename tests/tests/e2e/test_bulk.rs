//! Bulk edits from the command line: several ids (or `-` for stdin) in one
//! `assign`, `status` or `priority`; each refused ticket named with a code,
//! the others applied, exit 1 when any was refused.

use serde_json::Value;

use crate::support::{assert_mentions, stable, Home};

fn short(id: &str) -> &str {
    &id[..8]
}

/// `n` tickets; returns their ids.
fn tickets(home: &Home, n: usize) -> Vec<String> {
    (0..n).map(|i| home.create(&format!("ticket {i}"), "low", "hardware")).collect()
}

fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or("").into())
        .collect()
}

#[test]
fn a_bulk_assign_names_each_refused_ticket_and_applies_the_others() {
    let home = Home::new();
    let ids = tickets(&home, 4);
    let (a, b, closed, untouched) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    home.run(&["status", closed, "closed"]).ok();
    let closed_before = stable(&home.show(closed));
    let untouched_before = stable(&home.show(untouched));
    let out = home.run(&["assign", short(a), "nope", closed, b, "bob"]).out();
    assert_eq!(out.code, 1, "{out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&format!("{}: updated", short(a)).as_str()), "{}", out.stdout);
    assert!(lines.contains(&format!("{}: updated", short(b)).as_str()), "{}", out.stdout);
    assert!(lines.iter().any(|l| l.starts_with("nope: refused (not_found)")), "{}", out.stdout);
    assert!(lines.iter().any(|l| l.starts_with(&format!("{}: refused (closed)", short(closed)))), "{}", out.stdout);
    assert_mentions(&out, "2 of 4 tickets refused");
    for id in [a, b] {
        assert_eq!(home.show(id)["assignee"], "bob");
    }
    assert_eq!(stable(&home.show(closed)), closed_before, "the closed ticket is as it was");
    assert_eq!(stable(&home.show(untouched)), untouched_before, "a ticket not named is as it was");
}

#[test]
fn bulk_json_lists_applied_and_refused_with_codes() {
    let home = Home::new();
    let ids = tickets(&home, 20);
    // 20 ids over 16 hex digits: two share their first character.
    let shared =
        ids.iter().map(|a| &a[..1]).find(|p| ids.iter().filter(|b| b.starts_with(*p)).count() > 1).unwrap_or("0");
    let lone = ids.iter().find(|i| !i.starts_with(shared)).unwrap_or_else(|| panic!("a ticket outside {shared}"));
    let out = home.run(&["priority", lone, "ffff0000", shared, "urgent", "--json"]).out();
    assert_eq!(out.code, 1, "{out:#?}");
    let v = out.json();
    assert_eq!(ids_of(&v["applied"]), vec![lone.clone()]);
    let refused: Vec<(String, String)> = v["refused"]
        .as_array()
        .unwrap_or_else(|| panic!("refused[]: {v}"))
        .iter()
        .map(|r| {
            assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
            (r["id"].as_str().unwrap_or("").into(), r["code"].as_str().unwrap_or("").into())
        })
        .collect();
    assert_eq!(
        refused,
        vec![("ffff0000".to_string(), "not_found".to_string()), (shared.to_string(), "ambiguous".to_string())]
    );
    assert_eq!(v["code"], "refused");
    assert_eq!(home.show(lone)["priority"], "urgent");
    let others: Vec<Value> = home.list(&[]).into_iter().filter(|t| t["id"] != lone.as_str()).collect();
    assert!(others.iter().all(|t| t["priority"] == "low"), "only the named ticket changed");
    // All applied: exit 0, no error.
    let v = home.run(&["status", &ids[0], &ids[1], "in-progress", "--json"]).json();
    assert_eq!(ids_of(&v["applied"]), vec![ids[0].clone(), ids[1].clone()]);
    assert_eq!(v["refused"], serde_json::json!([]));
    assert!(v.get("error").is_none(), "{v}");
}

#[test]
fn a_dash_reads_the_ids_from_stdin() {
    let home = Home::new();
    let ids = tickets(&home, 3);
    let text = format!("{}\n{}  {}\r\n\n", ids[0], short(&ids[1]), ids[2]);
    let v = home.run(&["status", "-", "resolved", "--json"]).stdin(&text).json();
    assert_eq!(ids_of(&v["applied"]), ids);
    assert!(home.list(&[]).iter().all(|t| t["status"] == "resolved"));
    let v = home.run(&["assign", "-", "--none", "--json"]).stdin(&ids[0]).json();
    assert_eq!(ids_of(&v["applied"]), vec![ids[0].clone()]);
    // `-` must be alone, and stdin must hold ids.
    let out = home.run(&["priority", "-", &ids[0], "high"]).stdin(&ids[1]).fails();
    assert_mentions(&out, "only id");
    let out = home.run(&["priority", "-", "high"]).stdin(" \n").fails();
    assert_mentions(&out, "no ids");
    assert!(home.list(&[]).iter().all(|t| t["priority"] == "low"));
}

#[test]
fn a_bad_value_refuses_the_whole_command_before_anything_changes() {
    let home = Home::new();
    let ids = tickets(&home, 2);
    let before = stable(&Value::Array(home.list(&[])));
    let out = home.run(&["priority", &ids[0], &ids[1], "huge"]).fails();
    assert_mentions(&out, "huge");
    let out = home.run(&["status", &ids[0], &ids[1], "pending"]).fails();
    assert_mentions(&out, "pending");
    let out = home.run(&["assign", &ids[0], &ids[1], "team:"]).out();
    assert_eq!(out.code, 1);
    assert_eq!(stable(&Value::Array(home.list(&[]))), before);
}
