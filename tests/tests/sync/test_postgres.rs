//! The relay on PostgreSQL, as real processes: several `tickets relay
//! serve` instances on one database (in this run's throwaway cluster), and
//! nodes registered with different instances.

use std::time::{Duration, Instant};

use crate::harness::{bodies, client, sync, Relay};

#[test]
fn nodes_on_three_instances_of_one_database_converge() {
    let relays = Relay::start_postgres(3);
    let ana = relays[0].agent("ana", "agent", &[]);
    let token_bob = relays[0].add_agent("bob", "agent", &[]);
    let bob = relays[1].node_with_token(&token_bob);
    sync(&bob);
    let token_lea = relays[0].add_agent("lea", "lead", &[]);
    let lea = relays[2].node_with_token(&token_lea);
    sync(&lea);

    let id = ana.create("Printer jams", "medium", "hardware");
    ana.run(&["comment", &id, "ana: first"]).ok();
    sync(&ana);
    sync(&bob);
    bob.run(&["comment", &id, "bob: second"]).ok();
    sync(&bob);
    sync(&lea);
    lea.run(&["note", &id, "lea: internal"]).ok();
    sync(&lea);
    sync(&ana);
    for (who, node) in [("ana", &*ana), ("bob", &bob), ("lea", &lea)] {
        let t = node.show(&id);
        assert_eq!(bodies(&t, "comments"), ["ana: first", "bob: second"], "{who}'s node");
    }
    // The notes rule holds on every instance.
    assert!(!ana.show(&id).to_string().contains("lea: internal"));
    assert!(lea.show(&id).to_string().contains("lea: internal"));
    for r in &relays {
        let t = r.ticket(&id, &token_lea);
        assert_eq!(bodies(&t, "comments"), ["ana: first", "bob: second"]);
        assert!(r.healthy());
    }
}

#[test]
fn a_watcher_on_one_instance_wakes_for_an_edit_pushed_to_another() {
    let relays = Relay::start_postgres(2);
    let ana = relays[0].agent("ana", "agent", &[]);
    let id = ana.create("Printer jams", "medium", "hardware");
    sync(&ana);
    let head: u64 = {
        let r = client()
            .get(format!("{}/v1/sync/watch?cursor=0", relays[1].url()))
            .bearer_auth(&ana.token)
            .send()
            .expect("watch");
        r.json::<serde_json::Value>().expect("json")["seq"].as_u64().expect("seq")
    };
    assert!(head > 0);
    let url = format!("{}/v1/sync/watch?cursor={head}", relays[1].url());
    let token = ana.token.clone();
    let started = Instant::now();
    let watcher = std::thread::spawn(move || {
        let r = client().get(url).bearer_auth(token).send().expect("watch");
        (r.json::<serde_json::Value>().expect("json")["seq"].as_u64().expect("seq"), Instant::now())
    });
    ana.run(&["comment", &id, "ana: wake up"]).ok();
    let pushed = Instant::now();
    sync(&ana);
    let (seq, woke) = watcher.join().expect("the watcher");
    assert!(seq > head, "the watcher on instance B answered without the edit pushed to A ({seq} <= {head})");
    let delay = woke.saturating_duration_since(pushed);
    eprintln!("instance B's watcher woke {delay:?} after the push to A (watching for {:?})", started.elapsed());
    assert!(delay < Duration::from_secs(10), "woke {delay:?} after the push");
}
