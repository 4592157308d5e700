//! The SLA order and search, end to end on both backends: an overdue
//! ticket that someone touched stays first in `tickets list --sort sla`,
//! `tickets board` and `GET /v1/tickets?sort=sla`, its badge names the late
//! clock; search ignores case, accents and punctuation and reads
//! descriptions and comments, subject matches first.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{sync, wait_for, Backend, Relay};

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|t| t["id"].as_str().unwrap_or_default().to_string()).collect()
}

/// Creates a medium hardware ticket; returns its id.
fn create(home: &crate::support::Home, subject: &str, description: &str) -> String {
    let mut args = vec!["create", "--subject", subject, "--priority", "medium", "--category", "hardware"];
    if !description.is_empty() {
        args.extend(["--description", description]);
    }
    home.run(&args).ok().trim().to_string()
}

fn board(relay: &Relay, token: &str, query: &str) -> Vec<Value> {
    let resp = relay.get(&format!("/v1/tickets?{query}"), token);
    assert_eq!(resp.status().as_u16(), 200, "GET /v1/tickets?{query}");
    let v: Value = resp.json().expect("board JSON");
    v["tickets"].as_array().cloned().unwrap_or_default()
}

fn a_touched_overdue_ticket_sorts_first(backend: Backend) {
    let relay = Relay::start_on(backend);
    relay.admin(&["sla", "set", "--priority", "urgent", "--first-response", "2s", "--resolution", "1h"]).ok();
    relay.admin(&["sla", "set", "--priority", "high", "--first-response", "1h", "--resolution", "8h"]).ok();
    relay.admin(&["sla", "set", "--priority", "medium", "--first-response", "2h", "--resolution", "1d"]).ok();
    let lea = relay.agent("lea", "lead", &[]);
    let calm = lea.create("Medium with hours left", "medium", "hardware");
    let soon = lea.create("High with an hour left", "high", "hardware");
    let late = lea.create("Urgent and overdue", "urgent", "hardware");
    let none = lea.create("Low without targets", "low", "hardware");
    sync(&lea);
    wait_for("the urgent ticket's first response to be overdue on the relay", Duration::from_secs(20), || {
        let t = relay.ticket(&late, &lea.token);
        (t["sla"]["first_response"]["state"] == "red").then_some(())
    });
    // Someone touches it once it is overdue: both ends re-index it.
    lea.run(&["assign", &late, "lea"]).ok();
    sync(&lea);

    let expected = vec![late.clone(), soon.clone(), calm.clone(), none.clone()];
    assert_eq!(ids(&board(&relay, &lea.token, "sort=sla")), expected, "GET /v1/tickets?sort=sla");
    let cli_board: Vec<Value> = lea.run(&["board", "--json"]).json().as_array().cloned().unwrap_or_default();
    assert_eq!(ids(&cli_board), expected, "tickets board --json");
    assert_eq!(ids(&lea.list(&["--sort", "sla"])), expected, "tickets list --sort sla");

    // The badge names the late clock, in the API and in both tables.
    let first = &board(&relay, &lea.token, "sort=sla")[0];
    assert_eq!(first["sla"]["clock"], "first_response", "{first}");
    let label = first["sla"]["label"].as_str().unwrap_or_default().to_string();
    assert!(label.starts_with("First response ") && label.ends_with(" overdue"), "{label}");
    assert_eq!(board(&relay, &lea.token, "sort=sla")[3]["sla"]["label"], "No SLA");
    for args in [&["board"][..], &["list", "--sort", "sla"][..]] {
        let out = lea.run(args).env("COLUMNS", "100").ok();
        // The first row after the header: one line per ticket, no rules.
        let first_row = out.lines().skip_while(|l| !l.starts_with("ID ")).nth(1).unwrap_or_default();
        assert!(first_row.contains("Urgent and overdue"), "{args:?}:\n{out}");
        assert!(first_row.contains("First response ") && first_row.contains(" overdue"), "{args:?}:\n{out}");
        assert!(!out.contains('─'), "{args:?} draws no line between rows:\n{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 100), "{args:?} fits 100 columns:\n{out}");
    }
}

#[test]
fn a_touched_overdue_ticket_sorts_first_on_sqlite() {
    a_touched_overdue_ticket_sorts_first(Backend::Sqlite);
}

#[test]
fn a_touched_overdue_ticket_sorts_first_on_postgres() {
    a_touched_overdue_ticket_sorts_first(Backend::Postgres);
}

fn search_ignores_case_accents_and_punctuation(backend: Backend) {
    let relay = Relay::start_on(backend);
    let lea = relay.agent("lea", "lead", &[]);
    let described = create(&lea, "Guest network", "The Wi-Fi in the lobby is down");
    let subject = create(&lea, "WIFI drops every hour", "since Monday");
    let cafe = create(&lea, "Printer in the Café", "paper jam");
    let commented = create(&lea, "Laptop slow", "");
    lea.run(&["comment", &commented, "Customer says the wi.fi is fine; it's the disk"]).ok();
    let other = create(&lea, "Password reset", "locked out");
    sync(&lea);

    // Subject matches first, then the others (newest first among each).
    let want_wifi = vec![subject.clone(), commented.clone(), described.clone()];
    assert_eq!(ids(&board(&relay, &lea.token, "search=wifi&sort=-created")), want_wifi, "relay ?search=wifi");
    assert_eq!(ids(&lea.list(&["--search", "wifi"])), want_wifi, "list --search wifi");
    assert_eq!(ids(&board(&relay, &lea.token, "search=cafe&sort=-created")), vec![cafe.clone()], "relay ?search=cafe");
    assert_eq!(ids(&lea.list(&["--search", "CAFÉ"])), vec![cafe.clone()], "list --search CAFÉ");
    assert_eq!(ids(&board(&relay, &lea.token, "search=wi-fi%20LOBBY")), vec![described.clone()], "two words");
    // An id prefix still finds its ticket.
    let prefix = &other[..8];
    assert_eq!(ids(&board(&relay, &lea.token, &format!("search={prefix}"))), vec![other.clone()], "id prefix");
    assert_eq!(ids(&lea.list(&["--search", prefix])), vec![other], "list --search PREFIX");
    assert!(board(&relay, &lea.token, "search=%25_").is_empty(), "wildcards are text");
}

#[test]
fn search_ignores_case_accents_and_punctuation_on_sqlite() {
    search_ignores_case_accents_and_punctuation(Backend::Sqlite);
}

#[test]
fn search_ignores_case_accents_and_punctuation_on_postgres() {
    search_ignores_case_accents_and_punctuation(Backend::Postgres);
}
