//! `list`: filters, search, sort, limits (SPEC §5).

use serde_json::json;

use crate::support::{record, Home};

/// Five tickets with distinct fields, imported in one go.
fn fixture() -> Home {
    let h = Home::new();
    let n = h.import_ndjson(&[
        json!({"subject": "Printer jams", "priority": "high", "category": "hardware", "status": "open", "assignee": "ana"}),
        json!({"subject": "VPN is down", "priority": "urgent", "category": "network", "status": "in-progress", "assignee": "team:field"}),
        json!({"subject": "Refund 50% please", "priority": "low", "category": "billing", "status": "resolved"}),
        json!({"subject": "Old printer toner", "priority": "medium", "category": "hardware", "status": "closed", "assignee": "bo"}),
        json!({"subject": "Invoice_copy", "priority": "medium", "category": "billing", "status": "open", "assignee": "team:field"}),
    ]);
    assert_eq!(n, 5);
    h
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn filters_select_exactly_the_matches() {
    let h = fixture();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--status", "open"], vec!["Invoice_copy", "Printer jams"]),
        (vec!["--status", "open", "--status", "resolved"], vec!["Invoice_copy", "Printer jams", "Refund 50% please"]),
        (vec!["--status", "closed"], vec!["Old printer toner"]),
        (vec!["--priority", "medium"], vec!["Invoice_copy", "Old printer toner"]),
        (vec!["--priority", "URGENT"], vec!["VPN is down"]),
        (vec!["--category", "billing"], vec!["Invoice_copy", "Refund 50% please"]),
        (vec!["--assignee", "team:field"], vec!["Invoice_copy", "VPN is down"]),
        (vec!["--assignee", "ana", "--assignee", "bo"], vec!["Old printer toner", "Printer jams"]),
        (vec!["--category", "hardware", "--status", "open"], vec!["Printer jams"]),
        (vec!["--category", "nowhere"], vec![]),
        (vec![], vec!["Invoice_copy", "Old printer toner", "Printer jams", "Refund 50% please", "VPN is down"]),
    ];
    for (args, want) in cases {
        assert_eq!(sorted(h.subjects(&args)), strings(&want), "list {}", args.join(" "));
    }
}

#[test]
fn search_matches_subject_text_and_id_prefixes() {
    let h = fixture();
    assert_eq!(sorted(h.subjects(&["--search", "printer"])), strings(&["Old printer toner", "Printer jams"]));
    assert_eq!(h.subjects(&["--search", "VPN IS"]), strings(&["VPN is down"]), "case-insensitive");
    assert_eq!(h.subjects(&["--search", "50%"]), strings(&["Refund 50% please"]), "% is literal");
    assert_eq!(h.subjects(&["--search", "e_c"]), strings(&["Invoice_copy"]), "_ is literal");
    assert!(h.subjects(&["--search", "%"]).len() == 1);
    assert!(h.subjects(&["--search", "no such thing"]).is_empty());
    for t in h.list(&[]) {
        let id = t["id"].as_str().expect("id");
        let found = h.list(&["--search", &id[..8]]);
        assert!(found.iter().any(|f| f["id"] == id), "an id prefix finds its ticket");
        assert_eq!(h.list(&["--search", &id.to_uppercase()]).len(), 1, "a full id finds exactly its ticket");
    }
    assert_eq!(h.subjects(&["--search", "printer", "--status", "open"]), strings(&["Printer jams"]));
}

#[test]
fn sort_orders_by_the_named_field() {
    let h = fixture();
    assert_eq!(
        h.subjects(&["--sort", "subject"]),
        strings(&["Invoice_copy", "Old printer toner", "Printer jams", "Refund 50% please", "VPN is down"])
    );
    assert_eq!(
        h.subjects(&["--sort", "-subject"]),
        strings(&["VPN is down", "Refund 50% please", "Printer jams", "Old printer toner", "Invoice_copy"])
    );
    let prio = |args: &[&str]| -> Vec<String> {
        h.list(args).iter().map(|t| t["priority"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(prio(&["--sort", "priority"]), strings(&["low", "medium", "medium", "high", "urgent"]));
    assert_eq!(prio(&["--sort", "-priority"]), strings(&["urgent", "high", "medium", "medium", "low"]));
    let status = |args: &[&str]| -> Vec<String> {
        h.list(args).iter().map(|t| t["status"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(status(&["--sort", "status"]), strings(&["open", "open", "in-progress", "resolved", "closed"]));
}

#[test]
fn newest_first_by_default_and_created_sorts() {
    let h = Home::new();
    for s in ["first", "second", "third"] {
        h.create(s, "low", "x");
    }
    assert_eq!(h.subjects(&[]), strings(&["third", "second", "first"]));
    assert_eq!(h.subjects(&["--sort", "-created"]), strings(&["third", "second", "first"]));
    assert_eq!(h.subjects(&["--sort", "created"]), strings(&["first", "second", "third"]));
    let first = h.list(&["--search", "first"])[0]["id"].as_str().unwrap_or_default().to_string();
    h.run(&["edit", &first, "--priority", "high"]).ok();
    assert_eq!(h.subjects(&["--sort", "-updated"])[0], "first");
}

#[test]
fn json_prints_every_match_unless_limited() {
    let h = Home::new();
    let records: Vec<_> = (0..60).map(|i| record(&format!("bulk {i:02}"), "low", "x")).collect();
    assert_eq!(h.import_ndjson(&records), 60);
    assert_eq!(h.list(&[]).len(), 60, "--json is not cut at the table's 50");
    assert_eq!(h.list(&["--limit", "7"]).len(), 7);
    assert_eq!(h.list(&["--limit", "1000"]).len(), 60);
    assert_eq!(h.subjects(&["--sort", "subject", "--limit", "3"]), strings(&["bulk 00", "bulk 01", "bulk 02"]));
    let table = h.run(&["list"]).ok();
    assert_eq!(table.matches("bulk ").count(), 50, "a table shows 50 unless told");
    assert!(table.contains("50 of 60"), "and says how many it left out:\n{table}");
    let table = h.run(&["list", "--limit", "5"]).ok();
    assert_eq!(table.matches("bulk ").count(), 5);
}

#[test]
fn json_prints_100_unless_told_and_says_so_on_stderr() {
    let h = Home::new();
    let records: Vec<_> = (0..120).map(|i| record(&format!("bulk {i:03}"), "low", "x")).collect();
    assert_eq!(h.import_ndjson(&records), 120);
    let out = h.run(&["list", "--json"]).out();
    assert_eq!(out.json().as_array().map(Vec::len), Some(100), "a default limit, the array unchanged");
    assert!(out.stderr.contains("100 of 120") && out.stderr.contains("--all"), "{}", out.stderr);
    let all = h.run(&["list", "--json", "--all"]).out();
    assert_eq!(all.json().as_array().map(Vec::len), Some(120));
    assert!(all.stderr.is_empty(), "{}", all.stderr);
    h.run(&["list", "--json", "--all", "--limit", "5"]).usage_error();
    // `list` as elsewhere: `relay sla list` is `relay sla show`.
    assert!(h.run(&["relay", "sla", "list", "--help"]).ok().contains("--json"));
}

#[test]
fn list_as_a_table() {
    let h = fixture();
    let out = h.run(&["list", "--status", "open", "--sort", "-priority"]).ok();
    let printer = out.find("Printer jams").expect("listed");
    let invoice = out.find("Invoice_copy").expect("listed");
    assert!(printer < invoice, "high before medium:\n{out}");
    assert!(!out.contains("VPN"), "{out}");
    for header in ["ID", "SUBJECT", "PRIORITY", "STATUS"] {
        assert!(out.contains(header), "{out}");
    }
    let none = h.run(&["list", "--category", "nowhere"]).ok();
    assert!(none.contains("no tickets match"), "{none}");
    let empty = Home::new();
    assert_eq!(empty.run(&["list", "--json"]).json(), json!([]));
}
