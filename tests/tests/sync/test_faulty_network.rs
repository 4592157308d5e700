//! Sync through a network that cuts connections in the middle of request
//! and response bodies: repeated `tickets sync` runs eventually succeed, and
//! nothing is lost or duplicated (SPEC §3).

use serde_json::Value;

use crate::harness::{bodies, import_many, integrity, node_ids, relay_ids, sync, Relay, Rng};
use crate::proxy::Proxy;
use crate::support::Home;

const TICKETS: usize = 300;
/// Rounds of comments from both nodes after the first push.
const ROUNDS: usize = 3;
/// How many `tickets sync` runs a node may need on the faulty link.
const SYNC_RUNS_MAX: usize = 25;

/// Runs `tickets sync --json` until one succeeds with nothing pending;
/// returns how many runs it took.
fn sync_until_clean(h: &Home, who: &str) -> usize {
    for run in 1..=SYNC_RUNS_MAX {
        let out = h.run(&["sync", "--json"]).out();
        if out.code == 0 && out.json()["pending"] == 0 {
            return run;
        }
        assert!(out.code == 0 || out.code == 1, "{who}: sync run {run} ended with {}: {}", out.code, out.stderr);
    }
    panic!("{who}: no clean sync in {SYNC_RUNS_MAX} runs through the faulty proxy");
}

/// The sorted comment bodies of a ticket.
fn sorted_comments(t: &Value) -> Vec<String> {
    let mut c = bodies(t, "comments");
    c.sort();
    c
}

#[test]
fn sync_through_a_link_that_cuts_bodies_loses_and_duplicates_nothing() {
    let seed = Rng::seed_from_env_or_clock("SYNC_PROXY_SEED");
    let relay = Relay::start();
    let proxy = Proxy::start(relay.addr, seed);
    let lea = relay.agent("lea", "lead", &[]);
    let ana_token = relay.add_agent("ana", "agent", &[]);
    let bob_token = relay.add_agent("bob", "agent", &[]);
    let ana = relay.node_at(&proxy.url(), &ana_token);
    let bob = relay.node_at(&proxy.url(), &bob_token);

    import_many(&ana, TICKETS, "cut");
    let ids = node_ids(&ana);
    let picked: Vec<&String> = ids.iter().step_by(TICKETS / 5).collect();
    for id in &picked {
        ana.run(&["comment", id, "ana: first visit"]).ok();
    }

    proxy.set_faulty(true);
    let runs = sync_until_clean(&ana, "ana");
    eprintln!("ana pushed through the faulty link in {runs} run(s)");
    assert_eq!(relay_ids(&relay, &lea.token), ids, "every ticket reached the relay, once");
    for id in &picked {
        assert_eq!(bodies(&relay.ticket(id, &lea.token), "comments"), ["ana: first visit"], "comments exactly once");
    }

    sync_until_clean(&bob, "bob");
    assert_eq!(node_ids(&bob), ids, "bob pulled every ticket, once");
    // Rounds of edits on both sides, each pushed and pulled over the link.
    let mut want = vec!["ana: first visit".to_string()];
    for round in 1..=ROUNDS {
        for id in &picked {
            bob.run(&["comment", id, &format!("bob: round {round}")]).ok();
            ana.run(&["comment", id, &format!("ana: round {round}")]).ok();
        }
        want.extend([format!("bob: round {round}"), format!("ana: round {round}")]);
        sync_until_clean(&bob, "bob");
        sync_until_clean(&ana, "ana");
    }
    sync_until_clean(&bob, "bob");
    want.sort();
    for id in &picked {
        assert_eq!(sorted_comments(&relay.ticket(id, &lea.token)), want, "on the relay");
        assert_eq!(sorted_comments(&ana.show(id)), want, "on ana's node");
        assert_eq!(sorted_comments(&bob.show(id)), want, "on bob's node");
    }
    assert_eq!(node_ids(&ana), ids);
    assert_eq!(node_ids(&bob), ids);
    let (connections, cut_requests, cut_responses) = proxy.stats();
    eprintln!("{connections} connections, {cut_requests} cut in a request, {cut_responses} in a response");
    assert!(cut_requests > 0 && cut_responses > 0, "too few cuts to prove anything (seed {seed})");

    // Past the faulty link, the lead's node sees the same.
    sync(&lea);
    assert_eq!(node_ids(&lea), ids);
    for id in &picked {
        assert_eq!(sorted_comments(&lea.show(id)), want);
    }
    assert_eq!(relay.integrity(), "ok");
    for db in [ana.db(), bob.db()] {
        assert_eq!(integrity(&db), "ok", "{}", db.display());
    }
}
