//! SLA colours move with time alone (SPEC §2): with targets of a few
//! seconds, a ticket nobody touches turns yellow, then red, on the relay's
//! board; a ticket answered and resolved in time shows `met`; the red board
//! lists exactly the red tickets, in the CLI and the API; a node's own
//! figures are provisional until its first sync.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{id_of, ids, sorted, wait_for, Device, Relay};
use crate::support::{ms, now_ms};

/// Urgent targets: yellow at 2 s (50%), red at 4 s, resolution red at 8 s.
const URGENT_FIRST_RESPONSE_MS: i64 = 4_000;
const URGENT_RESOLUTION_MS: i64 = 8_000;

/// The colour a running first-response metric must have at `now`.
fn expected_colour(metric: &Value, now: i64) -> &'static str {
    if now < ms(&metric["warn_at"]) {
        "green"
    } else if now < ms(&metric["due_at"]) {
        "yellow"
    } else {
        "red"
    }
}

#[test]
fn colours_move_with_time_alone_and_the_red_board_lists_exactly_the_red_tickets() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let agent_token = relay.agent("ana", "agent");
    relay.category("hardware");
    relay.sla("urgent", "4s", "8s");
    relay.sla("medium", "1s", "2s");
    relay.sla("high", "1h", "8h");
    relay.admin(&["sla", "warn", "50"]);
    let ana = Device::register(&relay.url, &agent_token);
    let lea = Device::register(&relay.url, &lead_token);

    let untouched = ana.create("Untouched urgent", "urgent", "hardware");
    // Offline, the node's own figures are marked provisional.
    assert_eq!(ana.show(&untouched)["sla"]["provisional"], true, "before the first sync");
    let answered = ana.create("Answered and resolved in time", "urgent", "hardware");
    ana.run(&["comment", &answered, "On my way"]).ok();
    ana.run(&["status", &answered, "resolved"]).ok();
    let quick = ana.create("Medium with second targets", "medium", "hardware");
    let calm = ana.create("High with hour targets", "high", "hardware");
    let no_target = ana.create("Low without targets", "low", "hardware");
    ana.sync();
    let shown = ana.show(&untouched);
    assert_eq!(shown["sla"]["provisional"], false, "after a sync the node shows the relay's figures: {shown}");

    // The relay's instants are exact: created + 50% and created + 100%.
    let first = relay.tickets_by_id(&lead_token)[&untouched].clone();
    let created = ms(&first["created_at"]);
    let fr = &first["sla"]["first_response"];
    let res = &first["sla"]["resolution"];
    assert_eq!(ms(&fr["warn_at"]) - created, URGENT_FIRST_RESPONSE_MS / 2, "{fr}");
    assert_eq!(ms(&fr["due_at"]) - created, URGENT_FIRST_RESPONSE_MS, "{fr}");
    assert_eq!(ms(&res["due_at"]) - created, URGENT_RESOLUTION_MS, "{res}");

    // Watch the untouched ticket with no edit at all: every answer agrees
    // with the relay's clock, and the colours run green, yellow, red.
    let mut seen: Vec<String> = Vec::new();
    let last = wait_for("the untouched ticket to turn red", Duration::from_secs(20), || {
        let board = relay.board(&lead_token, "limit=5000");
        let now = ms(&board["now"]);
        let t = board["tickets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| id_of(t) == untouched))
            .cloned()
            .ok_or("the ticket is not on the board")?;
        let colour = t["sla"]["color"].as_str().unwrap_or_default().to_string();
        assert_eq!(colour, expected_colour(&t["sla"]["first_response"], now), "colour at {now}: {t}");
        if seen.last() != Some(&colour) {
            seen.push(colour.clone());
        }
        if colour == "red" {
            Ok(t)
        } else {
            Err(format!("{colour} at {}", board["now"]))
        }
    });
    assert_eq!(seen, ["green", "yellow", "red"], "colours seen in order");
    assert_eq!(last["updated_at"], first["updated_at"], "nothing was written meanwhile");
    assert_eq!(last["history"], first["history"], "nothing was written meanwhile");
    assert_eq!(last["sla"]["first_response"]["state"], "red");
    assert_eq!(last["sla"]["first_response"]["breached_at"], fr["due_at"], "breached at the due instant");

    // Everything else, now that the untouched ticket is red.
    let all = relay.tickets_by_id(&lead_token);
    let a = &all[&answered]["sla"];
    assert_eq!(a["first_response"]["state"], "met", "{a}");
    assert_eq!(a["resolution"]["state"], "met", "{a}");
    assert!(a["first_response"]["stopped_at"].is_string(), "{a}");
    assert_ne!(a["color"], "red", "{a}");
    assert_eq!(all[&quick]["sla"]["color"], "red", "medium targets of 1 s and 2 s are long gone");
    assert_eq!(all[&calm]["sla"]["color"], "green");
    let n = &all[&no_target]["sla"];
    assert_eq!(
        (n["first_response"]["state"].as_str(), n["resolution"]["state"].as_str()),
        (Some("none"), Some("none"))
    );
    assert_eq!(n["color"], "none");
    assert!(n["resolution"]["target_secs"].is_null() && n["resolution"]["due_at"].is_null(), "never a guess: {n}");

    let red = sorted(&[&untouched, &quick]);
    let mut by_colour: Vec<String> = all.values().filter(|t| t["sla"]["color"] == "red").map(id_of).collect();
    by_colour.sort();
    assert_eq!(by_colour, red, "the red tickets of the full board");
    let api = relay.board(&lead_token, "sla=red");
    assert_eq!(ids(&api["tickets"]), red, "GET /v1/tickets?sla=red");
    assert_eq!(api["counts"]["red"], 2, "{}", api["counts"]);
    assert_eq!(api["total"], 2);
    assert_eq!(ids(&relay.board(&lead_token, "sla=yellow")["tickets"]), Vec::<String>::new(), "nothing is yellow");
    let cli = lea.run(&["board", "--sla", "red", "--json"]).json();
    assert_eq!(ids(&cli), red, "tickets board --sla red --json");
    // A plain agent's node reads the same board.
    assert_eq!(ids(&ana.run(&["board", "--sla", "red", "--json"]).json()), red);

    // The node's colours move with time too, from the relay's input.
    let node = ana.show(&untouched);
    assert_eq!(
        (node["sla"]["color"].as_str(), node["sla"]["provisional"].as_bool()),
        (Some("red"), Some(false)),
        "{node}"
    );
    assert_eq!(ids(&ana.run(&["list", "--sla", "red", "--json"]).json()), red, "list --sla red on the node");

    // A priority whose target is already exceeded breaches the ticket as of
    // the instant it crossed that target.
    let low_created = ms(&all[&no_target]["created_at"]);
    let wait = low_created + URGENT_FIRST_RESPONSE_MS + 200 - now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    ana.run(&["edit", &no_target, "--priority", "urgent"]).ok();
    ana.sync();
    let t = relay.tickets_by_id(&lead_token)[&no_target].clone();
    let m = &t["sla"]["first_response"];
    assert_eq!((m["state"].as_str(), t["sla"]["color"].as_str()), (Some("red"), Some("red")), "{t}");
    assert_eq!(ms(&m["breached_at"]) - low_created, URGENT_FIRST_RESPONSE_MS, "breached when it crossed: {m}");

    // Raising the targets later never erases a recorded breach.
    relay.sla("urgent", "1h", "2h");
    let t = relay.tickets_by_id(&lead_token)[&untouched].clone();
    assert_eq!(t["sla"]["first_response"]["breached_at"], fr["due_at"], "{}", t["sla"]);
    assert_eq!(t["sla"]["color"], "red", "{}", t["sla"]);
}
