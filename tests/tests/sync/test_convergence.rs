//! Offline edits on several nodes converge through the relay (SPEC §1.1,
//! §1.2, §3): every replica shows the same ticket, the later edit wins, the
//! losing edit stays in the history, closed is final, and one conversation
//! gives one ticket.

use serde_json::{json, Value};

use crate::harness::{bodies, converged, sync, without_times, Backend, Relay, Rng};
use crate::support::{history, ms, Home};

/// Operations of the random convergence test.
const STEPS: usize = 60;

/// Every node's `show --json` of `id`, without what may differ by device;
/// asserts they are identical, and equal to the relay's object but for the
/// instants (the relay shows each event at its effective time: the device's
/// stamp corrected by the clock offset it measured, which on one machine is
/// the request's latency).
fn assert_converged(relay: &Relay, lead_token: &str, id: &str, nodes: &[&Home]) -> Value {
    let first = converged(&nodes[0].show(id));
    for (i, n) in nodes.iter().enumerate().skip(1) {
        assert_eq!(converged(&n.show(id)), first, "node {i} differs from node 0");
    }
    let on_relay = converged(&relay.ticket(id, lead_token));
    assert_eq!(without_times(&on_relay), without_times(&first), "the relay's ticket differs from the nodes'");
    let skew = (ms(&on_relay["created_at"]) - ms(&first["created_at"])).abs();
    assert!(skew < 5_000, "the relay's effective creation time is {skew} ms off the node's");
    first
}

/// (by, to, outcome) of a field's history entries, in order.
fn changes(t: &Value, field: &str) -> Vec<(String, String, String)> {
    history(t, field)
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("by"), s("to"), s("outcome"))
        })
        .collect()
}

#[test]
fn concurrent_offline_edits_on_three_nodes_converge_and_the_later_edit_wins() {
    concurrent_offline_edits_on_three_nodes_converge_and_the_later_edit_wins_on(Relay::start());
}

#[test]
fn concurrent_offline_edits_on_three_nodes_converge_and_the_later_edit_wins_on_postgres() {
    concurrent_offline_edits_on_three_nodes_converge_and_the_later_edit_wins_on(Relay::start_on(Backend::Postgres));
}

fn concurrent_offline_edits_on_three_nodes_converge_and_the_later_edit_wins_on(relay: Relay) {
    let ana = relay.agent("ana", "agent", &["--team", "field"]);
    let bob = relay.agent("bob", "agent", &["--team", "field"]);
    let cid = relay.agent("cid", "lead", &[]);
    let id = ana.create("Printer jams", "medium", "hardware");
    ana.run(&["edit", &id, "--description", "The printer on floor 2 jams daily"]).ok();
    sync(&ana);
    sync(&bob);
    sync(&cid);
    assert_eq!(bob.show(&id)["subject"], "Printer jams");

    // Offline, in this real-time order: ana, then bob, then cid.
    ana.run(&["status", &id, "in-progress"]).ok();
    ana.run(&["assign", &id, "ana"]).ok();
    ana.run(&["edit", &id, "--priority", "high"]).ok();
    ana.run(&["comment", &id, "ana: on my way"]).ok();
    ana.run(&["edit", &id, "--description", "The printer on floor 3 jams daily"]).ok();
    bob.run(&["status", &id, "resolved"]).ok();
    bob.run(&["assign", &id, "bob"]).ok();
    bob.run(&["edit", &id, "--priority", "urgent"]).ok();
    bob.run(&["comment", &id, "bob: fixed it remotely"]).ok();
    bob.run(&["edit", &id, "--description", "The laser printer on floor 2 jams daily, since Monday"]).ok();
    cid.run(&["assign", &id, "team:field"]).ok();
    cid.run(&["edit", &id, "--priority", "low"]).ok();
    cid.run(&["comment", &id, "cid: customer called back"]).ok();

    // Delivered in the opposite order: the timestamps decide, not arrival.
    for n in [&cid, &bob, &ana, &cid, &bob] {
        sync(n);
    }
    let t = assert_converged(&relay, &cid.token, &id, &[&ana, &bob, &cid]);
    assert_eq!(t["status"], "resolved", "bob's status is the latest");
    assert_eq!(t["assignee"], "team:field", "cid's assignee is the latest");
    assert_eq!(t["priority"], "low", "cid's priority is the latest");
    assert_eq!(
        t["description"], "The laser printer on floor 3 jams daily, since Monday",
        "concurrent text edits merge character by character"
    );
    assert_eq!(
        bodies(&t, "comments"),
        ["ana: on my way", "bob: fixed it remotely", "cid: customer called back"],
        "every comment once, in time order"
    );
    let s = |v: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        v.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
    };
    let priority = changes(&t, "priority");
    for want in s(&[("ana", "high", "superseded"), ("bob", "urgent", "superseded"), ("cid", "low", "applied")]) {
        assert!(priority.contains(&want), "priority history lacks {want:?}: {priority:?}");
    }
    let status = changes(&t, "status");
    for want in s(&[("ana", "in-progress", "superseded"), ("bob", "resolved", "applied")]) {
        assert!(status.contains(&want), "status history lacks {want:?}: {status:?}");
    }
    let assignee = changes(&t, "assignee");
    for want in s(&[("ana", "ana", "superseded"), ("bob", "bob", "superseded"), ("cid", "team:field", "applied")]) {
        assert!(assignee.contains(&want), "assignee history lacks {want:?}: {assignee:?}");
    }
    let lists: Vec<Value> = [&ana, &bob, &cid].iter().map(|n| converged(&Value::Array(n.list(&[])))).collect();
    assert!(lists.iter().all(|l| *l == lists[0]), "list --json is the same on every node");
    // A further round changes nothing anywhere.
    for n in [&ana, &bob, &cid] {
        let r = sync(n);
        assert_eq!((r["pushed"].as_u64(), r["pending"].as_u64()), (Some(0), Some(0)), "{r}");
    }
    assert_eq!(assert_converged(&relay, &cid.token, &id, &[&ana, &bob, &cid]), t);
}

#[test]
fn closed_wins_over_a_concurrent_reopen() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let bob = relay.agent("bob", "agent", &[]);
    let lea = relay.add_agent("lea", "lead", &[]);
    let id = ana.create("Refund", "low", "billing");
    ana.run(&["status", &id, "resolved"]).ok();
    sync(&ana);
    sync(&bob);
    assert_eq!(bob.show(&id)["status"], "resolved");

    // Offline: ana closes; a moment later bob, not knowing, reopens.
    ana.run(&["status", &id, "closed"]).ok();
    bob.run(&["status", &id, "open"]).ok();
    for n in [&bob, &ana, &bob] {
        sync(n);
    }
    let t = assert_converged(&relay, &lea, &id, &[&ana, &bob]);
    assert_eq!(t["status"], "closed", "closed is final: {t:#}");
    let status = changes(&t, "status");
    assert!(status.contains(&("ana".into(), "closed".into(), "applied".into())), "{status:?}");
    assert!(status.contains(&("bob".into(), "open".into(), "ignored".into())), "bob's reopen is ignored: {status:?}");
    // And now that bob has seen the close, a reopen is refused locally.
    bob.run(&["status", &id, "open"]).fails();
}

fn conversation(id: &str) -> String {
    json!({
        "id": id,
        "channel": "whatsapp",
        "customer": {"name": "Maria Lopez"},
        "messages": [
            {"from": "Maria Lopez", "role": "customer", "text": "I was charged twice", "at": "2026-01-05T09:00:00Z"},
            {"from": "Maria Lopez", "role": "customer", "text": "Please refund one", "at": "2026-01-05T09:01:00Z"},
        ]
    })
    .to_string()
}

#[test]
fn a_conversation_taken_offline_on_two_devices_is_one_ticket_everywhere() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let bob = relay.agent("bob", "agent", &[]);
    let cid = relay.agent("cid", "lead", &[]);
    let chat = r#"conv-wa-4711"#;
    let mut ids = Vec::new();
    for (n, who) in [(&ana, "ana"), (&bob, "bob")] {
        let file = n.file("chat.json", &conversation(chat));
        let id = n
            .run(&[
                "create",
                "--subject",
                "Charged twice",
                "--priority",
                "high",
                "--category",
                "billing",
                "--conversation",
                file.to_str().expect("utf-8 path"),
                "--description",
                &format!("{who} took this chat"),
            ])
            .ok()
            .trim()
            .to_string();
        n.run(&["comment", &id, &format!("{who}: refund issued")]).ok();
        ids.push(id);
    }
    for n in [&ana, &bob, &cid, &ana] {
        sync(n);
    }
    for (name, n) in [("ana", &ana), ("bob", &bob), ("cid", &cid)] {
        let mine: Vec<Value> =
            n.list(&[]).into_iter().filter(|t| t["conversation_id"] == format!("file:{chat}")).collect();
        assert_eq!(mine.len(), 1, "{name} has one ticket for the conversation: {mine:#?}");
        let t = n.show(mine[0]["id"].as_str().expect("id"));
        let d = t["description"].as_str().expect("description");
        for want in ["ana took this chat", "bob took this chat", "Maria Lopez", "Please refund one"] {
            assert!(d.contains(want), "{name}'s description lacks {want:?}:\n{d}");
        }
        let mut c = bodies(&t, "comments");
        c.sort();
        assert_eq!(c, ["ana: refund issued", "bob: refund issued"], "{name}: both comments, once each");
    }
    let id = ana.list(&[])[0]["id"].as_str().expect("id").to_string();
    assert_converged(&relay, &cid.token, &id, &[&ana, &bob, &cid]);
    let on_relay: Vec<Value> =
        relay.tickets(&cid.token).into_iter().filter(|t| t["conversation_id"] == format!("file:{chat}")).collect();
    assert_eq!(on_relay.len(), 1, "the relay holds one ticket for the conversation");
    assert!(ids.contains(&id), "the ticket is the one the devices created: {ids:?} vs {id}");
    // The ticket came by sync, and still counts as the conversation's.
    let file = cid.file("chat.json", &conversation(chat));
    let again = cid.run(&[
        "create",
        "--subject",
        "Again",
        "--priority",
        "low",
        "--category",
        "billing",
        "--conversation",
        file.to_str().expect("utf-8 path"),
    ]);
    let out = again.out();
    assert_ne!(out.code, 0, "a second ticket for the conversation is refused: {out:?}");
    assert!(out.stdout.contains(&id) || out.stderr.contains(&id[..8]), "the existing ticket is named: {out:?}");
}

#[test]
fn an_edit_made_after_seeing_another_wins_whatever_the_wall_clocks_say() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let bob = relay.add_agent("bob", "agent", &[]);
    // bob's device clock is two hours slow.
    let slow = Home::empty();
    slow.run(&["init", "--relay", &relay.url(), "--token", &bob]).env("TICKETS_CLOCK_OFFSET", "-2h").ok();
    let run = |args: &[&str]| slow.run(args).env("TICKETS_CLOCK_OFFSET", "-2h").ok();
    let id = ana.create("Badge reader", "low", "hardware");
    ana.run(&["edit", &id, "--priority", "high"]).ok();
    ana.run(&["assign", &id, "ana"]).ok();
    sync(&ana);
    run(&["sync"]);
    // bob has seen ana's edits; his later edits win though stamped earlier.
    run(&["edit", &id, "--priority", "urgent"]);
    run(&["assign", &id, "bob"]);
    run(&["sync"]);
    sync(&ana);
    let t = assert_converged(&relay, &lea.token, &id, &[&ana, &slow]);
    assert_eq!((t["priority"].as_str(), t["assignee"].as_str()), (Some("urgent"), Some("bob")), "{t:#}");
    let priority = changes(&t, "priority");
    assert!(priority.iter().all(|(_, _, outcome)| outcome == "applied"), "nothing was concurrent: {priority:?}");
}

#[test]
fn random_offline_edits_and_syncs_on_three_nodes_converge() {
    let seed = Rng::seed_from_env_or_clock("SYNC_CONVERGENCE_SEED");
    let mut rng = Rng::new(seed);
    let relay = Relay::start();
    let nodes = [relay.agent("ana", "agent", &[]), relay.agent("bob", "agent", &[]), relay.agent("cid", "lead", &[])];
    let ids: Vec<String> = (0..3).map(|i| nodes[i].create(&format!("shared {i}"), "medium", "network")).collect();
    for n in nodes.iter().chain(nodes.iter()) {
        sync(n);
    }
    let mut comments: Vec<Vec<String>> = vec![Vec::new(); ids.len()];
    let pick = |rng: &mut Rng, from: &[&'static str]| from[rng.range(0, from.len() as u64) as usize];
    for step in 0..STEPS {
        let n = &nodes[rng.range(0, 3) as usize];
        let t = rng.range(0, ids.len() as u64) as usize;
        let id = ids[t].as_str();
        let out = match rng.range(0, 8) {
            0 => n.run(&["status", id, pick(&mut rng, &["open", "in-progress", "resolved", "closed"])]).out(),
            1 => n.run(&["assign", id, pick(&mut rng, &["ana", "bob", "team:field", "--none"])]).out(),
            2 => n.run(&["edit", id, "--priority", pick(&mut rng, &["low", "medium", "high", "urgent"])]).out(),
            3 | 4 => {
                let body = format!("{} step {step}", n.name);
                let out = n.run(&["comment", id, &body]).out();
                if out.code == 0 {
                    comments[t].push(body);
                }
                out
            }
            5 => n.run(&["edit", id, "--subject", &format!("subject from {} at {step}", n.name)]).out(),
            6 => n.run(&["edit", id, "--description", &format!("{} wrote this at step {step}", n.name)]).out(),
            _ => n.run(&["sync", "--json"]).out(),
        };
        // A refused transition (out of closed) is a user error, nothing else.
        assert!(out.code == 0 || out.code == 1, "step {step} (seed {seed}): {out:?}");
    }
    for n in nodes.iter().chain(nodes.iter()) {
        sync(n);
    }
    let homes: Vec<&Home> = nodes.iter().map(|a| &a.home).collect();
    for (t, id) in ids.iter().enumerate() {
        let v = assert_converged(&relay, &nodes[2].token, id, &homes);
        let mut got = bodies(&v, "comments");
        got.sort();
        comments[t].sort();
        assert_eq!(got, comments[t], "ticket {t}: every comment exactly once (seed {seed})");
    }
}

#[test]
fn two_devices_of_one_agent_share_their_edits() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let token = relay.add_agent("ana", "agent", &[]);
    let laptop = relay.node_with_token(&token);
    let phone = relay.node_with_token(&token);
    let agents = relay.admin(&["agent", "list", "--json"]).json();
    let ana = agents.as_array().and_then(|a| a.iter().find(|x| x["name"] == "ana")).expect("ana listed");
    assert_eq!(ana["devices"], 2, "{agents}");

    let id = laptop.create("Docking station", "medium", "hardware");
    laptop.run(&["comment", &id, "from the laptop"]).ok();
    sync(&laptop);
    sync(&phone);
    assert_eq!(bodies(&phone.show(&id), "comments"), ["from the laptop"]);
    phone.run(&["comment", &id, "from the phone"]).ok();
    phone.run(&["edit", &id, "--priority", "urgent"]).ok();
    laptop.run(&["comment", &id, "laptop, offline"]).ok();
    for n in [&phone, &laptop, &phone] {
        sync(n);
    }
    let t = assert_converged(&relay, &lea.token, &id, &[&laptop, &phone]);
    assert_eq!(t["priority"], "urgent");
    assert_eq!(bodies(&t, "comments"), ["from the laptop", "from the phone", "laptop, offline"]);
}
