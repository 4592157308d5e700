//! The operator's limits (`tickets relay limits`), set on a serving relay:
//! a document over a limit is refused on its own with its code (the rest of
//! the push applied), and once synced the node refuses the same edit
//! locally before writing anything; an agent over its write rate gets 429
//! with `Retry-After`, its sync says so and pushes later; an inbox over its
//! rate gets 429. Each on SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{
    bodies, client, import_many, kill9, relay_ids, spawn_tickets, sync, wait_for, Agent, Backend, Relay, Rng,
};
use crate::hostile_support::register;
use crate::support::now_ms;

/// The comment limit the operator sets in these tests, in bytes.
const COMMENT_BYTES: usize = 1_000;
/// The comment count limit the operator sets.
const COMMENTS: usize = 3;
/// The document limit the operator sets, in bytes, and the size and
/// number of comments (incompressible text) that break it.
const DOC_BYTES: usize = 16 * 1024;
const BIG_COMMENT_BYTES: usize = 9_000;
const BIG_COMMENTS: usize = 3;
/// The agents' rate the operator sets, and the tickets pushed at once.
const AGENT_WRITES_PER_MIN: usize = 60;
const FIRST_PUSH: usize = AGENT_WRITES_PER_MIN + 5;
/// The inbox's rate the operator sets, and the deliveries posted at once.
const INBOX_WRITES_PER_MIN: usize = 5;
const DELIVERIES: usize = 8;

/// ana (a plain agent) with two synced tickets, and a lead's token.
struct Two {
    relay: Relay,
    ana: Agent,
    lead: String,
    a: String,
    b: String,
}

fn two(relay: Relay) -> Two {
    let ana = relay.agent("ana", "agent", &[]);
    let lead = relay.add_agent("lea", "lead", &[]);
    let a = ana.create("Printer jams on floor 2", "high", "hardware");
    let b = ana.create("VPN drops every hour", "low", "network");
    let r = sync(&ana);
    assert_eq!(r["pushed"].as_u64(), Some(2), "{r}");
    Two { relay, ana, lead, a, b }
}

/// Text that does not compress (so a saved document is as large as it).
fn noise(rng: &mut Rng, n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n).map(|_| ALPHABET[rng.range(0, ALPHABET.len() as u64) as usize] as char).collect()
}

/// The one refusal of a sync report: (ticket, code).
fn refused(report: &Value) -> Vec<(String, String)> {
    report["refused"]
        .as_array()
        .expect("refused[]")
        .iter()
        .map(|r| (r["ticket"].as_str().unwrap_or_default().into(), r["code"].as_str().unwrap_or_default().into()))
        .collect()
}

/// The push sent a refused document for `bad` and an accepted one for
/// `good`, and the relay holds `good`'s new comment and none of `bad`'s.
fn refused_alone(t: &Two, report: &Value, code: &str, good_comment: &str) {
    assert_eq!(refused(report), vec![(t.a.clone(), code.to_string())], "{report}");
    assert_eq!(report["pushed"].as_u64(), Some(1), "the rest of the push was applied: {report}");
    let b = t.relay.ticket(&t.b, &t.lead);
    assert_eq!(bodies(&b, "comments"), vec![good_comment.to_string()], "{b}");
    let a = t.relay.ticket(&t.a, &t.lead);
    assert_eq!(bodies(&a, "comments"), Vec::<String>::new(), "nothing of the refused document: {a}");
}

/// A local edit refused with `code` (exit 1, nothing written).
fn refused_locally(h: &Agent, id: &str, text: &str, words: &str) {
    let before = bodies(&h.show(id), "comments").len();
    let out = h.run(&["comment", id, text]).fails();
    assert!(out.stderr.contains(words), "{}", out.stderr);
    assert!(out.stderr.contains("hint:") && out.stderr.contains("tickets relay limits"), "{}", out.stderr);
    assert_eq!(bodies(&h.show(id), "comments").len(), before, "a refused comment writes nothing");
}

#[test]
fn a_comment_over_the_limit_is_refused_alone_then_locally() {
    a_comment_over_the_limit_is_refused_alone_then_locally_on(Relay::start());
}

#[test]
fn a_comment_over_the_limit_is_refused_alone_then_locally_on_postgres() {
    a_comment_over_the_limit_is_refused_alone_then_locally_on(Relay::start_on(Backend::Postgres));
}

fn a_comment_over_the_limit_is_refused_alone_then_locally_on(relay: Relay) {
    let t = two(relay);
    t.relay.admin(&["limits", "set", "--comment-bytes", &COMMENT_BYTES.to_string()]).ok();
    // ana's node still holds the defaults: it writes the comment, the
    // relay refuses that document alone.
    t.ana.run(&["comment", &t.a, &"x".repeat(COMMENT_BYTES + 1)]).ok();
    t.ana.run(&["comment", &t.b, "a short one"]).ok();
    let r = sync(&t.ana);
    refused_alone(&t, &r, "comment_too_large", "a short one");
    // Synced, the node knows the limit and refuses before writing.
    refused_locally(&t.ana, &t.b, &"y".repeat(COMMENT_BYTES + 1), "over the limit of 1000 bytes");
    t.ana.run(&["comment", &t.b, &"z".repeat(COMMENT_BYTES)]).ok();
    let out = t.ana.run(&["comment", &t.b, &"y".repeat(COMMENT_BYTES + 1), "--json"]).out();
    assert_eq!(out.code, 1, "{out:?}");
    let err: Value = serde_json::from_str(&out.stdout).expect("a JSON error");
    assert_eq!(err["code"], "comment_too_large", "{err}");
}

#[test]
fn a_ticket_over_the_comment_count_is_refused_alone_then_locally() {
    a_ticket_over_the_comment_count_is_refused_alone_then_locally_on(Relay::start());
}

#[test]
fn a_ticket_over_the_comment_count_is_refused_alone_then_locally_on_postgres() {
    a_ticket_over_the_comment_count_is_refused_alone_then_locally_on(Relay::start_on(Backend::Postgres));
}

fn a_ticket_over_the_comment_count_is_refused_alone_then_locally_on(relay: Relay) {
    let t = two(relay);
    t.relay.admin(&["limits", "set", "--comments", &COMMENTS.to_string()]).ok();
    for i in 0..=COMMENTS {
        t.ana.run(&["comment", &t.a, &format!("comment {i}")]).ok();
    }
    t.ana.run(&["comment", &t.b, "only one here"]).ok();
    let r = sync(&t.ana);
    refused_alone(&t, &r, "too_many_comments", "only one here");
    refused_locally(&t.ana, &t.a, "one more", "over the limit of 3");
}

#[test]
fn a_ticket_over_the_byte_limit_is_refused_alone_then_locally() {
    a_ticket_over_the_byte_limit_is_refused_alone_then_locally_on(Relay::start());
}

#[test]
fn a_ticket_over_the_byte_limit_is_refused_alone_then_locally_on_postgres() {
    a_ticket_over_the_byte_limit_is_refused_alone_then_locally_on(Relay::start_on(Backend::Postgres));
}

fn a_ticket_over_the_byte_limit_is_refused_alone_then_locally_on(relay: Relay) {
    let t = two(relay);
    t.relay.admin(&["limits", "set", "--doc-bytes", &DOC_BYTES.to_string()]).ok();
    let mut rng = Rng::new(19);
    for _ in 0..BIG_COMMENTS {
        t.ana.run(&["comment", &t.a, &noise(&mut rng, BIG_COMMENT_BYTES)]).ok();
    }
    t.ana.run(&["comment", &t.b, "small"]).ok();
    let r = sync(&t.ana);
    refused_alone(&t, &r, "doc_too_large", "small");
    refused_locally(&t.ana, &t.a, "one more", "over the limit of 16384 bytes");
}

#[test]
fn an_agent_over_its_write_rate_gets_429_and_its_sync_pushes_later() {
    an_agent_over_its_write_rate_gets_429_and_its_sync_pushes_later_on(Relay::start());
}

#[test]
fn an_agent_over_its_write_rate_gets_429_and_its_sync_pushes_later_on_postgres() {
    an_agent_over_its_write_rate_gets_429_and_its_sync_pushes_later_on(Relay::start_on(Backend::Postgres));
}

fn an_agent_over_its_write_rate_gets_429_and_its_sync_pushes_later_on(relay: Relay) {
    let ana = relay.agent("ana", "agent", &[]);
    let lead = relay.agent("lea", "lead", &[]);
    relay.admin(&["limits", "set", "--agent-writes-per-min", &AGENT_WRITES_PER_MIN.to_string()]).ok();
    // A full bucket lets one page larger than a minute's worth through...
    import_many(&ana, FIRST_PUSH, "first");
    let r = sync(&ana);
    assert_eq!(r["pushed"].as_u64(), Some(FIRST_PUSH as u64), "{r}");
    assert!(r.get("rate_limited_secs").is_none(), "{r}");
    // ... and the next push waits until it is paid back.
    let late = ana.create("Pushed after the wait", "low", "billing");
    let r = sync(&ana);
    let secs = r["rate_limited_secs"].as_u64().unwrap_or_else(|| panic!("the sync reports the 429: {r}"));
    assert!(secs >= 1, "{r}");
    assert_eq!(r["pending"].as_u64(), Some(1), "{r}");
    let text = ana.run(&["sync"]).ok();
    assert!(text.contains("rate limited") && text.contains("1 document(s) stay pending"), "{text}");
    assert!(!relay_ids(&relay, &lead.token).contains(&late), "nothing of a refused push is applied");

    // The relay's answer itself: 429, its code and Retry-After.
    let device = automerge::ActorId::random().to_hex_string();
    assert_eq!(register(&relay, &ana.token, &device).0, 200);
    let req = json!({"protocol": 1, "device": device, "clock_ms": now_ms(),
        "push": [{"id": late, "kind": "ticket", "data": "AAAA"}]});
    let resp =
        client().post(format!("{}/v1/sync", relay.url())).bearer_auth(&ana.token).json(&req).send().expect("POST");
    assert_eq!(resp.status().as_u16(), 429);
    let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    assert!(after.is_some_and(|s| s >= 1), "Retry-After: {:?}", resp.headers());
    let body: Value = resp.json().expect("a JSON error");
    assert_eq!(body["code"], "rate_limited", "{body}");

    // `sync --watch` pushes it once the relay lets it.
    let watch = spawn_tickets(&ana, &["sync", "--watch"]);
    wait_for("the held ticket on the relay", Duration::from_secs(60), || {
        relay_ids(&relay, &lead.token).contains(&late).then_some(())
    });
    kill9(watch);

    // A lead has no rate: a bulk import passes in one sync.
    import_many(&lead, 3 * FIRST_PUSH, "lead");
    let r = sync(&lead);
    assert_eq!(r["pushed"].as_u64(), Some(3 * FIRST_PUSH as u64), "{r}");
    assert!(r.get("rate_limited_secs").is_none(), "{r}");
}

#[test]
fn an_inbox_over_its_rate_gets_429_and_limits_show_what_was_set() {
    an_inbox_over_its_rate_gets_429_and_limits_show_what_was_set_on(Relay::start());
}

#[test]
fn an_inbox_over_its_rate_gets_429_and_limits_show_what_was_set_on_postgres() {
    an_inbox_over_its_rate_gets_429_and_limits_show_what_was_set_on(Relay::start_on(Backend::Postgres));
}

fn an_inbox_over_its_rate_gets_429_and_limits_show_what_was_set_on(relay: Relay) {
    let shown = relay.admin(&["limits", "show", "--json"]).json();
    assert_eq!(shown["inbox_writes_per_min"], 3000, "the default: {shown}");
    let url = relay.url();
    let v = relay.admin(&["inbox", "add", "shop", "--kind", "generic", "--url", &url, "--json"]).json();
    let webhook = v["url"].as_str().expect("the webhook URL").to_string();
    relay.admin(&["limits", "set", "--inbox-writes-per-min", &INBOX_WRITES_PER_MIN.to_string()]).ok();
    let shown = relay.admin(&["limits", "show", "--json"]).json();
    assert_eq!(shown["inbox_writes_per_min"], INBOX_WRITES_PER_MIN, "{shown}");
    assert_eq!(shown["comments"], 2000, "the others keep their values: {shown}");
    let bad = relay.admin(&["limits", "set", "--comments", "0"]).fails();
    assert!(bad.stderr.contains("comments must be between 1 and"), "{}", bad.stderr);

    let mut statuses = Vec::new();
    for i in 0..DELIVERIES {
        let body = json!({"id": format!("c{i}"), "messages": [
            {"id": "m1", "role": "customer", "text": format!("hello {i}"), "at": "2026-11-01T10:00:00Z"}]});
        let resp = client()
            .post(&webhook)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("POST the webhook");
        let status = resp.status().as_u16();
        if status == 429 {
            let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            assert!(after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "{:?}", resp.headers());
            let v: Value = resp.json().expect("a JSON error");
            assert_eq!(v["code"], "rate_limited", "{v}");
        }
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(ok, INBOX_WRITES_PER_MIN, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 429), "{statuses:?}");
    let lead = relay.agent("lea", "lead", &[]);
    let convs = lead.run(&["inbox", "--json"]).json();
    assert_eq!(convs.as_array().map(Vec::len), Some(INBOX_WRITES_PER_MIN), "nothing stored from a 429: {convs}");
}

/// The bounded relay, at a scaled-down size: deliveries of a webhook burst
/// and the threads posting them.
const BURST_DELIVERIES: usize = 2_000;
const BURST_THREADS: usize = 8;
/// The ticket one plain agent tries to build (the 99 MB one), in
/// comments of this size, this many per push.
const ATTEMPT_TICKET_BYTES: usize = 100 * 1024 * 1024;
const ATTEMPT_COMMENT_BYTES: usize = 60 * 1024;
const ATTEMPT_COMMENTS_PER_PUSH: usize = 64;
/// What the relay may hold in memory at its peak, and how long `/healthz`
/// may take, meanwhile.
const RSS_BYTES_MAX: u64 = 300 * 1024 * 1024;
const HEALTHZ_MS_MAX: u128 = 1_000;

/// A line of /proc/PID/status in bytes (`VmHWM` is the peak RSS).
fn proc_status_bytes(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

#[test]
fn the_relay_stays_bounded_under_a_webhook_burst_and_a_100_mb_ticket_attempt() {
    use tickets_core::doc::DocKind;
    use tickets_core::event::{EventBody, StoredEvent};
    use tickets_core::hlc::Hlc;
    use tickets_core::protocol::encode_data;

    use crate::hostile_support::{put_raw_event, Attacker};

    let relay = Relay::start_sqlite();
    let ana = relay.agent("ana", "agent", &[]);
    let id = ana.create("The ticket that grows", "high", "hardware");
    sync(&ana);
    let bob = relay.add_agent("bob", "agent", &[]);
    let attacker = Attacker::register(&relay, &bob, automerge::ActorId::random());
    let url = relay.url();
    let v = relay.admin(&["inbox", "add", "shop", "--kind", "generic", "--url", &url, "--json"]).json();
    let webhook = v["url"].as_str().expect("the webhook URL").to_string();

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (slowest_ms, refused, pushed) = std::thread::scope(|s| {
        let health = s.spawn(|| {
            let mut slowest = 0u128;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                let ok = client().get(format!("{url}/healthz")).send().is_ok_and(|r| r.status().is_success());
                assert!(ok, "/healthz answers");
                slowest = slowest.max(started.elapsed().as_millis());
                std::thread::sleep(Duration::from_millis(50));
            }
            slowest
        });
        for t in 0..BURST_THREADS {
            let webhook = webhook.clone();
            s.spawn(move || {
                for i in (t..BURST_DELIVERIES).step_by(BURST_THREADS) {
                    let body = json!({"id": format!("burst-{i}"), "messages": [
                        {"id": "m1", "role": "customer", "text": format!("hello {i}"), "at": "2026-11-01T10:00:00Z"}]});
                    let resp = client()
                        .post(&webhook)
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .expect("POST the webhook");
                    let status = resp.status().as_u16();
                    assert!(status == 200 || status == 429, "a delivery: {status}");
                }
            });
        }
        // Comments of incompressible text, pushed onto the relay's copy
        // until the ticket would have grown to the attempted size.
        let mut rng = Rng::new(99);
        let (mut refused, mut pushed, mut n) = (0usize, 0usize, 0u32);
        while pushed < ATTEMPT_TICKET_BYTES {
            let mut doc = attacker.pull(&relay, &id, DocKind::Ticket);
            let heads = doc.heads();
            for _ in 0..ATTEMPT_COMMENTS_PER_PUSH {
                n += 1;
                let key =
                    Hlc::new(u64::try_from(now_ms()).unwrap_or(0), n, tickets_core::ids::replica_of(&attacker.actor))
                        .encode();
                let ev = StoredEvent::new("bob", EventBody::Comment { body: noise(&mut rng, ATTEMPT_COMMENT_BYTES) });
                put_raw_event(&mut doc, &key, &ev.encode());
            }
            let data: Vec<u8> = doc.changes_since(&heads).iter().flat_map(|c| c.raw_bytes().to_vec()).collect();
            pushed += data.len();
            let req = json!({"protocol": 1, "device": attacker.device(), "clock_ms": now_ms(),
                "push": [{"id": id, "kind": "ticket", "data": encode_data(&data)}]});
            let (status, body) = crate::hostile_support::post(&relay, "/v1/sync", &bob, &req);
            match body["pushed"][0]["code"].as_str() {
                None => assert_eq!(status, 200, "{body}"),
                Some(code) => {
                    assert_eq!(code, "doc_too_large", "{status}");
                    refused += 1;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (health.join().expect("the health thread"), refused, pushed)
    });
    let peak = proc_status_bytes(relay.pid(), "VmHWM");
    let (anon, file) = (proc_status_bytes(relay.pid(), "RssAnon"), proc_status_bytes(relay.pid(), "RssFile"));
    eprintln!(
        "relay peak RSS {} MiB (now {} MiB anonymous, {} MiB file), slowest /healthz {slowest_ms} ms, {} MiB pushed, {refused} pushes refused",
        peak >> 20,
        anon >> 20,
        file >> 20,
        pushed >> 20
    );
    assert!(refused > 0, "the ticket reached its byte limit");
    assert!(peak < RSS_BYTES_MAX, "the relay's peak RSS was {} MiB", peak >> 20);
    assert!(slowest_ms < HEALTHZ_MS_MAX, "/healthz took {slowest_ms} ms");
    let t = relay.ticket(&id, &relay.add_agent("lea", "lead", &[]));
    let held: usize = bodies(&t, "comments").iter().map(String::len).sum();
    assert!(held as u64 <= tickets_core::limits::DOC_BYTES_DEFAULT, "the relay holds {held} bytes of comments");
}
