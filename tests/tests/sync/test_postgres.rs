//! The relay on PostgreSQL, as real processes: several `tickets relay
//! serve` instances on one database (in this run's throwaway cluster), and
//! nodes registered with different instances.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{bodies, client, sync, wait_for, Relay};

/// A TCP proxy between the relay and PostgreSQL that can take the database
/// away: [`DbLink::cut`] closes every open connection and refuses new ones
/// until [`DbLink::restore`].
struct DbLink {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl DbLink {
    fn start(upstream: u16) -> DbLink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (down2, open2) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if down2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                if let (Ok(c), Ok(s), Ok(mut o)) = (client.try_clone(), server.try_clone(), open2.lock()) {
                    o.push(c);
                    o.push(s);
                }
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                std::thread::spawn(move || pipe(client, server));
                std::thread::spawn(move || pipe(s2, c2));
            }
        });
        DbLink { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        if let Ok(mut o) = self.open.lock() {
            for s in o.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

fn health(relay: &Relay) -> u16 {
    client().get(format!("{}/healthz", relay.url())).send().map(|r| r.status().as_u16()).unwrap_or(0)
}

#[test]
fn an_instance_answers_503_while_the_database_is_away_and_recovers_by_itself() {
    let direct = crate::pg::fresh_database();
    let cluster_port = crate::pg::cluster_port();
    let link = DbLink::start(cluster_port);
    let url = direct.replace(&format!(":{cluster_port}/"), &format!(":{}/", link.port));
    let relays = Relay::start_postgres_at(&url, 1);
    let relay = &relays[0];
    let ana = relay.agent("ana", "agent", &[]);
    let first = ana.create("Before the outage", "medium", "hardware");
    sync(&ana);
    assert_eq!(health(relay), 200);

    link.cut();
    wait_for("/healthz to say 503", Duration::from_secs(30), || (health(relay) == 503).then_some(()));
    let resp = relay.get("/v1/tickets", &ana.token);
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().expect("a JSON error body");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(!body["error"].as_str().unwrap_or_default().contains("127.0.0.1"), "{body}");

    link.restore();
    wait_for("/healthz to recover", Duration::from_secs(30), || (health(relay) == 200).then_some(()));
    let second = ana.create("After the outage", "medium", "hardware");
    sync(&ana);
    let lea_token = relay.add_agent("lea", "lead", &[]);
    let ids: Vec<String> =
        relay.tickets(&lea_token).iter().filter_map(|t| t["id"].as_str().map(String::from)).collect();
    assert!(ids.contains(&first) && ids.contains(&second), "{ids:?}");
}

#[test]
fn a_database_url_that_cannot_be_reached_is_one_line_and_a_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let out = std::process::Command::new(crate::support::tickets_bin())
        .args(["relay", "agent", "list", "--db", &format!("postgres://nobody:secret@127.0.0.1:{port}/none")])
        .env_remove("TICKETS_RELAY_DB")
        .output()
        .expect("run tickets");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(!err.contains("secret"), "the password was printed: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

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

/// A round-robin TCP balancer over relay instances: each connection goes to
/// the next instance that accepts it.
fn round_robin(upstreams: Vec<std::net::SocketAddr>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut next = 0usize;
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let server = (0..upstreams.len()).find_map(|k| {
                let u = upstreams[(next + k) % upstreams.len()];
                TcpStream::connect(u).ok()
            });
            next += 1;
            let Some(server) = server else { continue };
            let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            std::thread::spawn(move || pipe(client, server));
            std::thread::spawn(move || pipe(s2, c2));
        }
    });
    format!("http://{addr}")
}

#[test]
fn kill_9_of_an_instance_in_the_middle_of_a_2000_ticket_push_loses_nothing() {
    let mut relays = Relay::start_postgres(3);
    let balancer = round_robin(relays.iter().map(|r| r.addr).collect());
    let token = relays[0].add_agent("ana", "agent", &[]);
    let ana = relays[0].node_at(&balancer, &token);
    crate::harness::import_many(&ana, 2000, "bulk");
    let lea_token = relays[0].add_agent("lea", "lead", &[]);
    let pushing = crate::harness::spawn_tickets(&ana, &["sync"]);
    // Once some of the push has landed, kill an instance.
    wait_for("the first pages on the relay", Duration::from_secs(120), || {
        let n = relays[1].get("/v1/tickets?limit=1", &lea_token).json::<serde_json::Value>().ok()?["total"].as_u64()?;
        (n > 0).then_some(())
    });
    relays[0].kill9();
    let first = crate::harness::finish(pushing, Duration::from_secs(300));
    eprintln!("the sync that saw the kill exited {:?}", first.code);
    // Whatever that sync saw, the next ones finish the push.
    wait_for("a clean sync", Duration::from_secs(300), || (ana.run(&["sync"]).out().code == 0).then_some(()));
    let ids = crate::harness::relay_ids(&relays[1], &lea_token);
    assert_eq!(ids.len(), 2000);
    assert_eq!(crate::harness::relay_ids(&relays[2], &lea_token), ids);
    // A fresh device through the balancer gets every ticket.
    let fresh = relays[1].node_at(&balancer, &lea_token);
    sync(&fresh);
    assert_eq!(crate::harness::node_ids(&fresh).len(), 2000);
}

#[test]
fn eight_devices_push_through_three_instances_while_a_ninth_watches() {
    let relays = Relay::start_postgres(3);
    let balancer = round_robin(relays.iter().map(|r| r.addr).collect());
    let lea_token = relays[0].add_agent("lea", "lead", &[]);
    let watcher = relays[1].node_with_token(&lea_token);
    sync(&watcher);
    let watching = crate::harness::spawn_tickets(&watcher, &["sync", "--watch"]);
    let devices: Vec<_> = (0..8)
        .map(|i| {
            let token = relays[0].add_agent(&format!("dev{i}"), "agent", &[]);
            let h = relays[0].node_at(&balancer, &token);
            crate::harness::import_many(&h, 25, &format!("d{i}"));
            h
        })
        .collect();
    std::thread::scope(|s| {
        for h in &devices {
            s.spawn(move || sync(h));
        }
    });
    wait_for("every ticket on the watching device", Duration::from_secs(60), || {
        (crate::harness::node_ids(&watcher).len() == 200).then_some(())
    });
    drop(watching);
    let fresh = relays[2].node_with_token(&lea_token);
    sync(&fresh);
    assert_eq!(crate::harness::node_ids(&fresh).len(), 200);
}
