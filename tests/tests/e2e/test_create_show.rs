//! `create` and the `show --json` contract (SPEC §5).

use serde_json::Value;

use crate::support::{assert_mentions, history, is_uuid, ms, now_ms, Home};

#[test]
fn create_prints_only_the_id() {
    let h = Home::new();
    let out = h.run(&["create", "--subject", "Printer jams", "--priority", "high", "--category", "hardware"]).ok();
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    assert!(is_uuid(out.trim()), "{out:?}");
}

#[test]
fn show_json_carries_every_contract_field() {
    let h = Home::new();
    let before = now_ms();
    let out = h
        .run(&[
            "create",
            "--subject",
            "Printer jams",
            "--priority",
            "high",
            "--category",
            "hardware",
            "--description",
            "Paper tray 2",
        ])
        .ok();
    let after = now_ms();
    let id = out.trim();
    let t = h.show(id);
    assert_eq!(t["id"], id);
    assert_eq!(t["subject"], "Printer jams");
    assert_eq!(t["description"], "Paper tray 2");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["category"], "hardware");
    assert_eq!(t["status"], "open", "tickets are created open");
    assert_eq!(t["assignee"], Value::Null);
    assert_eq!(t["created_by"], "ana");
    assert_eq!(t["conversation_id"], Value::Null);
    let created = ms(&t["created_at"]);
    assert!(before - 1000 <= created && created <= after + 1000, "created_at {} is now", t["created_at"]);
    assert_eq!(t["comments"], Value::Array(vec![]));
    assert_eq!(t["internal_notes"], Value::Array(vec![]));
    assert!(t["history"].is_array());
    assert_eq!(history(&t, "created").len(), 1, "history starts with the creation: {}", t["history"]);
    let sla = &t["sla"];
    assert!(sla["provisional"].is_boolean(), "sla.provisional: {sla}");
    assert_eq!(sla["provisional"], true, "a node that never synced shows a provisional SLA");
    for metric in ["first_response", "resolution"] {
        let m = &sla[metric];
        assert!(m.is_object(), "sla.{metric}: {sla}");
        assert!(m["state"].is_string(), "sla.{metric}.state: {m}");
        for key in ["target_secs", "due_at", "breached_at"] {
            assert!(m.get(key).is_some(), "sla.{metric}.{key} is present (null when unknown): {m}");
        }
    }
    // With no SLA settings received from a relay there is no target: the
    // state is `none`, never a guess (SPEC §2).
    assert_eq!(sla["resolution"]["state"], "none");
    assert_eq!(sla["resolution"]["target_secs"], Value::Null);
}

#[test]
fn create_with_assignee_and_json_output() {
    let h = Home::new();
    let t = h
        .run(&[
            "create",
            "--subject",
            "VPN down",
            "--priority",
            "urgent",
            "--category",
            "network",
            "--assignee",
            "team:field",
            "--json",
        ])
        .json();
    assert!(is_uuid(t["id"].as_str().unwrap_or_default()));
    assert_eq!(t["assignee"], "team:field");
    assert_eq!(t["priority"], "urgent");
    assert_eq!(h.show(t["id"].as_str().unwrap_or_default())["subject"], "VPN down");
}

#[test]
fn show_as_text_names_the_ticket() {
    let h = Home::new();
    let id = h.create("Screen flickers", "medium", "hardware");
    h.run(&["comment", &id, "tried another cable"]).ok();
    let out = h.run(&["show", &id]).ok();
    assert!(out.contains("Screen flickers") && out.contains(&id), "{out}");
    assert!(out.contains("tried another cable"), "{out}");
    assert!(out.contains("open") && out.contains("medium") && out.contains("hardware"), "{out}");
}

#[test]
fn create_refuses_bad_or_missing_fields_and_writes_nothing() {
    let h = Home::new();
    // A missing required flag is a usage error (exit 2), named as such.
    for (args, mentions) in [
        (vec!["--priority", "low", "--category", "x"], "--subject"),
        (vec!["--subject", "s", "--category", "x"], "--priority"),
        (vec!["--subject", "s", "--priority", "low"], "--category"),
    ] {
        let mut all = vec!["create"];
        all.extend(args);
        let out = h.run(&all).usage_error();
        assert_mentions(&out, mentions);
    }
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--subject", "s", "--priority", "extreme", "--category", "x"], "extreme"),
        (vec!["--subject", "", "--priority", "low", "--category", "x"], "subject"),
        (vec!["--subject", "   ", "--priority", "low", "--category", "x"], "subject"),
        (vec!["--subject", "s", "--priority", "low", "--category", ""], "category"),
        (vec!["--subject", "s", "--priority", "low", "--category", "x", "--assignee", "team:"], "team"),
    ];
    for (args, mentions) in cases {
        let mut all = vec!["create"];
        all.extend(args);
        let out = h.run(&all).fails();
        assert_mentions(&out, mentions);
    }
    let long = "s".repeat(501);
    h.run(&["create", "--subject", &long, "--priority", "low", "--category", "x"]).fails();
    let huge = "d".repeat(64 * 1024 + 1);
    h.run(&["create", "--subject", "s", "--priority", "low", "--category", "x", "--description", &huge]).fails();
    assert!(h.list(&[]).is_empty(), "no refused create wrote a ticket");
}

#[test]
fn priorities_are_accepted_in_any_case() {
    let h = Home::new();
    for p in ["low", "medium", "high", "urgent"] {
        let id = h.create(&format!("p {p}"), &p.to_uppercase(), "x");
        assert_eq!(h.show(&id)["priority"], p);
    }
}
