//! "New for you": a ticket another agent assigned to this node's agent
//! is marked after the sync that brings it (in `sync`, `status` and
//! `list`), until the agent opens it with `show`. Also bulk edits checked
//! against the agents the relay knows.

use serde_json::Value;

use crate::harness::{sync, Relay};
use crate::support::{stable, Home};

fn new_ids(home: &Home) -> Vec<String> {
    let mut ids: Vec<String> = home
        .list(&[])
        .iter()
        .filter(|t| {
            assert!(t["new_for_you"].is_boolean(), "every listed ticket says new_for_you: {t}");
            t["new_for_you"] == true
        })
        .map(|t| t["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_ticket_another_agent_assigns_is_new_for_you_until_shown() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let _bob = relay.agent("bob", "agent", &[]);
    // Each node learns of the agents added after it registered.
    sync(&lea);
    sync(&ana);
    let created = lea
        .run(&[
            "create",
            "--subject",
            "Router down",
            "--priority",
            "high",
            "--category",
            "hardware",
            "--assignee",
            "ana",
        ])
        .ok();
    let t1 = created.trim().to_string();
    let t2 = lea.create("Printer jams", "low", "hardware");
    lea.run(&["assign", &t2, "ana"]).ok();
    let t3 = lea.create("Someone else's", "low", "hardware");
    lea.run(&["assign", &t3, "bob"]).ok();
    // Ana's own assignment of her own ticket is no news to her.
    let mine = ana.create("My own", "low", "hardware");
    ana.run(&["assign", &mine, "ana"]).ok();
    sync(&lea);

    let out = ana.run(&["sync"]).ok();
    assert!(out.contains("2 tickets newly assigned to you"), "{out}");
    assert_eq!(new_ids(&ana), sorted(vec![t1.clone(), t2.clone()]));
    assert_eq!(ana.show(&mine)["new_for_you"], false);
    let status = ana.run(&["status", "--json"]).json();
    assert_eq!(status["new_for_you"], 2);
    assert!(ana.run(&["status"]).ok().contains("2 tickets newly assigned to you"));
    let table = ana.run(&["list"]).ok();
    assert!(table.contains(&format!("• {}", &t1[..8])), "{table}");
    assert!(!table.contains(&format!("• {}", &mine[..8])), "{table}");

    // Opening one clears it; a sync with nothing new says nothing of it.
    ana.run(&["show", &t1[..8]]).ok();
    assert_eq!(new_ids(&ana), vec![t2.clone()]);
    assert!(ana.run(&["status"]).ok().contains("1 ticket newly assigned to you"));
    let out = ana.run(&["sync"]).ok();
    assert!(!out.contains("newly assigned"), "{out}");
    assert_eq!(new_ids(&ana), vec![t2.clone()], "a sync does not bring the opened ticket back");

    // Assigned away before she opened it: no longer hers, no longer new.
    lea.run(&["assign", &t2, "bob"]).ok();
    sync(&lea);
    let report = sync(&ana);
    assert_eq!(report["new_for_you"], 0, "{report}");
    assert!(new_ids(&ana).is_empty());
    let status = ana.run(&["status"]).ok();
    assert!(!status.contains("newly assigned"), "{status}");
}

#[test]
fn a_bulk_assign_to_an_agent_the_relay_does_not_know_refuses_each_ticket() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let _bob = relay.agent("bob", "agent", &[]);
    sync(&ana);
    let ids: Vec<String> = (0..3).map(|i| ana.create(&format!("t{i}"), "low", "hardware")).collect();
    let before = stable(&Value::Array(ana.list(&[])));
    let mut args = vec!["assign"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["zed", "--json"]);
    let out = ana.run(&args).out();
    assert_eq!(out.code, 1, "{out:#?}");
    let v = out.json();
    assert_eq!(v["applied"], serde_json::json!([]));
    let refused = v["refused"].as_array().cloned().unwrap_or_default();
    assert_eq!(refused.len(), 3, "{v}");
    for (r, id) in refused.iter().zip(&ids) {
        assert_eq!(r["id"], id.as_str());
        assert_eq!(r["code"], "unknown_assignee");
        assert!(r["error"].as_str().is_some_and(|e| e.contains("zed")), "{r}");
    }
    assert_eq!(stable(&Value::Array(ana.list(&[]))), before, "nothing changed");
    // The same selection to a known agent applies, and syncs.
    args.truncate(args.len() - 2);
    args.push("bob");
    ana.run(&args).ok();
    sync(&ana);
    for id in &ids {
        assert_eq!(relay.ticket(id, &ana.token)["assignee"], "bob");
    }
}
