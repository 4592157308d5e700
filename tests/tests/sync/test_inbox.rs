//! The inbox (SPEC §10) with real processes: Chatwoot-shaped webhook
//! deliveries (fixtures from Chatwoot's documentation, repeated and out of
//! order) posted to a real relay, pulled by real nodes, listed by `tickets
//! inbox`, made into one ticket by two offline devices at once; a
//! team-scoped inbox never reaches another team's device files; the bad
//! input of issue #13.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{client, files_containing, kill9, spawn_tickets, sync, wait_for, Relay};
use crate::support::Home;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/chatwoot").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `tickets relay inbox add NAME --kind KIND [extra] --json`: the webhook URL.
fn add_inbox(relay: &Relay, name: &str, kind: &str, extra: &[&str]) -> String {
    let url = relay.url();
    let mut args = vec!["inbox", "add", name, "--kind", kind, "--url", url.as_str(), "--json"];
    args.extend_from_slice(extra);
    let v = relay.admin(&args).json();
    let webhook = v["url"].as_str().expect("the webhook URL").to_string();
    assert!(webhook.starts_with(&format!("{url}/v1/inbox/wh_")), "{v}");
    webhook
}

/// POSTs a body; (status, JSON answer).
fn post(url: &str, body: Vec<u8>) -> (u16, Value) {
    let resp =
        client().post(url).header("content-type", "application/json").body(body).send().expect("POST the webhook");
    let status = resp.status().as_u16();
    let text = resp.text().expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON answer, got {status} {text:?}")))
}

fn inbox(h: &Home) -> Vec<Value> {
    h.run(&["inbox", "--json"]).json().as_array().cloned().expect("an array")
}

fn texts(conv: &Value) -> Vec<String> {
    conv["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Conversations in the relay's database.
fn stored_conversations(relay: &Relay) -> i64 {
    let c = rusqlite::Connection::open(relay.db()).expect("open the relay database");
    c.query_row("SELECT count(*) FROM inbox_conversations", [], |r| r.get(0)).expect("count")
}

#[test]
fn chatwoot_deliveries_reach_devices_in_order_and_two_offline_devices_make_one_ticket() {
    main_flow(&mut [Relay::start()]);
}

/// The same on PostgreSQL: two instances of one database, deliveries sent
/// to both in turn, ana's device on one and bob's on the other.
#[test]
fn on_postgres_deliveries_to_two_instances_reach_devices_on_both_and_make_one_ticket() {
    main_flow(&mut Relay::start_postgres(2));
}

/// Chatwoot deliveries (repeated, out of order) to the relay's instances in
/// turn → devices on the first and last instance → one ticket made offline
/// on both.
fn main_flow(relays: &mut [Relay]) {
    let relay = &relays[0];
    relay.admin(&["sla", "set", "--priority", "high", "--first-response", "1h"]).ok();
    let lead = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let bob_token = relay.add_agent("bob", "agent", &[]);
    let bob = relays[relays.len() - 1].node_with_token(&bob_token);
    sync(&bob);
    let url = add_inbox(relay, "support", "chatwoot", &[]);
    let path = url.trim_start_matches(&relay.url()).to_string();
    let urls: Vec<String> = relays.iter().map(|r| format!("{}{path}", r.url())).collect();

    // The agent's reply arrives before the customer's message it answers
    // (out of order), one message twice, and a private note and an
    // activity message that are not part of the conversation.
    for (i, (f, changed)) in [
        ("conversation_created.json", true),
        ("message_created.outgoing.json", true),
        ("message_created.incoming.json", true),
        ("message_created.incoming.json", false),
        ("message_created.private.json", false),
        ("message_created.activity.json", false),
        ("message_created.html.json", true),
        ("conversation_status_changed.json", true),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, v) = post(&urls[i % urls.len()], fixture(f));
        assert_eq!(status, 200, "{f}: {v}");
        assert_eq!(v["conversation"], "chatwoot:support:10", "{f}: {v}");
        assert_eq!(v["changed"], changed, "{f}: {v}");
    }

    let id = "chatwoot:support:10";
    for n in [&*ana, &bob] {
        let s = sync(n);
        assert_eq!(s["inbox"], 1, "{s}");
        let listed = inbox(n);
        assert_eq!(listed.len(), 1, "{listed:?}");
        let c = &listed[0];
        assert_eq!(
            (c["id"].as_str(), c["customer"].as_str(), c["channel"].as_str()),
            (Some(id), Some("jane"), Some("webwidget"))
        );
        assert_eq!(
            texts(c),
            [
                "My order #1042 never arrived",
                "hi, it is still not here",
                "Sorry Jane, I am checking with the courier <b>now</b>",
                "<script>alert(1)</script> also the box was <i>wet</i>",
            ],
            "in time order, once each, without the private note, the activity or the bot's form"
        );
        assert_eq!(c["last_message"]["text"], "<script>alert(1)</script> also the box was <i>wet</i>", "HTML is text");
        assert!(c["ticket"].is_null());
        assert_eq!(c["status"], "resolved", "conversation_status_changed");
    }
    // The table shows the markup as text too.
    let table = ana.run(&["inbox"]).ok();
    assert!(table.contains("<script>alert(1)</script>") && table.contains("jane"), "{table}");

    // Both devices offline (the relay is down) create a ticket from the
    // conversation at the same time.
    for r in relays.iter_mut() {
        r.kill9();
    }
    let create = |h: &Home, who: &str| {
        spawn_tickets(
            h,
            &[
                "create",
                "--conversation",
                id,
                "--subject",
                &format!("Order 1042 lost ({who})"),
                "--priority",
                "high",
                "--category",
                "billing",
            ],
        )
    };
    let (a, b) = (create(&ana, "ana"), create(&bob, "bob"));
    let ids: Vec<String> = [a, b]
        .into_iter()
        .map(|s| {
            let f = crate::harness::finish(s, Duration::from_secs(60));
            assert_eq!(f.code, Some(0), "{f:#?}");
            f.stdout.trim().to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1], "a conversation's ticket id is the same on every device");
    let ticket = ids[0].clone();
    assert_eq!(inbox(&ana)[0]["ticket"], ticket.as_str(), "the inbox links the ticket made from it");
    ana.run(&["comment", &ticket, "ana: on it"]).ok();
    bob.run(&["comment", &ticket, "bob: on it"]).ok();
    // A second ticket for it is refused locally, with the existing id.
    let again = ana
        .run(&["create", "--conversation", id, "--subject", "x", "--priority", "low", "--category", "billing"])
        .out();
    assert_eq!((again.code, again.stdout.trim()), (1, ticket.as_str()), "{again:?}");

    for r in relays.iter_mut() {
        r.restart();
    }
    let relay = &relays[0];
    for n in [&*ana, &bob, &ana, &lead] {
        sync(n);
    }
    for n in [&*ana, &bob, &lead] {
        let mine: Vec<Value> = n.list(&[]).into_iter().filter(|t| t["conversation_id"] == id).collect();
        assert_eq!(mine.len(), 1, "one ticket for the conversation: {mine:?}");
    }
    let t = relay.ticket(&ticket, &lead.token);
    let d = t["description"].as_str().expect("a description");
    assert!(d.contains("Customer: jane") && d.contains("Channel: webwidget"), "{d}");
    assert!(d.contains("(agent): Sorry Jane") && d.contains("<script>alert(1)</script>"), "prefilled: {d}");
    assert_eq!(d.matches("Customer: jane").count(), 1, "one prefill, not one per device: {d}");
    assert_eq!(t["sla"]["first_response"]["state"], "met", "the agent's reply in the conversation: {t}");
    let comments = crate::harness::bodies(&t, "comments");
    assert!(
        comments.contains(&"ana: on it".to_string()) && comments.contains(&"bob: on it".to_string()),
        "{comments:?}"
    );
}

#[test]
fn a_team_inbox_never_reaches_another_teams_device_and_a_watching_node_gets_new_messages() {
    let relay = Relay::start();
    let sam = relay.agent("sam", "agent", &["--team", "sales"]);
    let fay = relay.agent("fay", "agent", &["--team", "field"]);
    let url = add_inbox(&relay, "shop", "generic", &["--team", "sales"]);
    const SECRET_TEXT: &str = "my card number is in this sentence";
    let body = serde_json::json!({
        "id": "wa-77", "channel": "whatsapp", "customer": {"name": "Quentin Quartz"},
        "messages": [{"id": "m1", "role": "customer", "text": SECRET_TEXT, "at": "2026-11-01T10:00:00Z"}]
    });
    assert_eq!(post(&url, body.to_string().into_bytes()).0, 200);

    let watch = spawn_tickets(&sam, &["sync", "--watch"]);
    wait_for("the conversation on sam's watching node", Duration::from_secs(10), || {
        (inbox(&sam).len() == 1).then_some(())
    });
    sync(&fay);
    assert!(inbox(&fay).is_empty(), "fay is not in the inbox's team");
    assert_eq!(files_containing(&fay.path(), "Quentin Quartz"), Vec::<String>::new(), "no byte of it on fay's device");
    assert_eq!(files_containing(&fay.path(), SECRET_TEXT), Vec::<String>::new(), "no byte of it on fay's device");

    // Only the new message, as the generic kind allows: the watcher wakes.
    let more = serde_json::json!({"id": "wa-77", "messages": [
        {"id": "m2", "role": "agent", "from": "sam", "text": "we never ask for it", "at": "2026-11-01T10:01:00Z"}]});
    assert_eq!(post(&url, more.to_string().into_bytes()).0, 200);
    wait_for("the new message on sam's watching node", Duration::from_secs(10), || {
        (texts(&inbox(&sam)[0]).len() == 2).then_some(())
    });
    kill9(watch);
    assert!(
        !files_containing(&sam.path(), "Quentin Quartz").is_empty(),
        "sam's device holds it (the check can see it)"
    );
    sync(&fay);
    assert_eq!(files_containing(&fay.path(), "Quentin Quartz"), Vec::<String>::new());
}

#[test]
fn bad_webhook_input_is_refused_with_what_was_wrong_and_nothing_is_stored() {
    let relay = Relay::start();
    let url = add_inbox(&relay, "support", "chatwoot", &[]);
    let good = fixture("message_created.incoming.json");

    // A wrong secret: 404, nothing stored.
    // The last hex digit changed (to another digit, whatever it was).
    let last = if url.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &url[..url.len() - 1]);
    assert_ne!(wrong, url);
    let (status, v) = post(&wrong, good.clone());
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")), "{v}");
    assert_eq!(post(&format!("{}/v1/inbox/nonsense", relay.url()), good.clone()).0, 404);
    assert_eq!(stored_conversations(&relay), 0);

    for (body, status, code, says) in [
        (&b"{\"event\": "[..], 400, "malformed_json", "not JSON"),
        (b"[1, 2]", 400, "unknown_shape", "object"),
        (b"{\"hello\": 1}", 400, "unknown_shape", "\"event\""),
        (b"{\"event\": \"message_created\", \"id\": 5}", 400, "unknown_shape", "\"conversation\""),
    ] {
        let (s, v) = post(&url, body.to_vec());
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(says)), "{v} should say {says}");
    }
    let big = format!("{{\"event\": \"message_created\", \"content\": \"{}\"}}", "x".repeat(300 * 1024));
    let (s, v) = post(&url, big.into_bytes());
    assert_eq!((s, v["code"].as_str()), (413, Some("too_large")), "{v}");
    assert_eq!(stored_conversations(&relay), 0, "nothing stored from a refused request");

    // An event we do not use: 200 so the chat tool stops retrying.
    let (s, v) = post(&url, br#"{"event": "contact_updated", "id": 3, "name": "x"}"#.to_vec());
    assert_eq!((s, v["status"].as_str()), (200, Some("ignored")), "{v}");
    assert_eq!(stored_conversations(&relay), 0);

    assert_eq!(post(&url, good.clone()).0, 200);
    assert_eq!(stored_conversations(&relay), 1);
    let listed = relay.admin(&["inbox", "list", "--json"]).json();
    assert_eq!(listed[0]["conversations"], 1, "{listed}");

    // A removed inbox's URL stops at once (the relay keeps running).
    relay.admin(&["inbox", "remove", "support"]).ok();
    assert_eq!(post(&url, fixture("message_created.outgoing.json")).0, 404);
    let out = relay.admin(&["inbox", "remove", "support"]).fails();
    assert!(out.stderr.contains("no inbox named 'support'"), "{out:?}");
    let out = relay.admin(&["inbox", "add", "bad name:x", "--kind", "chatwoot"]).fails();
    assert!(out.stderr.contains("letters, digits"), "{out:?}");
}

#[test]
fn a_watch_behind_the_inbox_is_answered_at_once() {
    // A message that lands between a device's sync and its next long poll
    // must not wait for the poll's hold time (25 s).
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let url = add_inbox(&relay, "support", "chatwoot", &[]);
    assert_eq!(post(&url, fixture("message_created.incoming.json")).0, 200);
    let quick = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client");
    let answer: Value = quick
        .get(format!("{}/v1/sync/watch?cursor=1000000&inbox=0", relay.url()))
        .bearer_auth(&ana.token)
        .send()
        .expect("answered well before the hold time")
        .json()
        .expect("JSON");
    assert_eq!(answer["inbox"], 1, "{answer}");
}

/// The head of the inbox as an instance sees it (a watch answered at once).
fn inbox_head(relay: &Relay, token: &str) -> u64 {
    let answer: Value = client()
        .get(format!("{}/v1/sync/watch?cursor=1000000&inbox=0", relay.url()))
        .bearer_auth(token)
        .send()
        .expect("watch")
        .json()
        .expect("JSON");
    answer["inbox"].as_u64().expect("the inbox head")
}

#[test]
fn on_postgres_deliveries_to_two_instances_at_once_lose_nothing_and_a_repeat_is_stored_once() {
    let relays = Relay::start_postgres(2);
    let ana = relays[1].agent("ana", "agent", &[]);
    let url = add_inbox(&relays[0], "shop", "generic", &[]);
    let path = url.trim_start_matches(&relays[0].url()).to_string();
    let urls: Vec<String> = relays.iter().map(|r| format!("{}{path}", r.url())).collect();
    let msg = |id: &str| {
        serde_json::json!({"id": "c1", "customer": {"name": "Quentin"}, "messages": [
            {"id": id, "role": "customer", "text": format!("text {id}"), "at": "2026-11-01T10:00:00Z"}]})
        .to_string()
        .into_bytes()
    };
    // Posts one body to each instance at the same moment: the answers.
    let at_once = |bodies: [Vec<u8>; 2]| -> Vec<Value> {
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let posts: Vec<_> = bodies
                .into_iter()
                .zip(&urls)
                .map(|(body, url)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let (status, v) = post(url, body);
                        assert_eq!(status, 200, "{v}");
                        v
                    })
                })
                .collect();
            posts.into_iter().map(|p| p.join().expect("a delivery")).collect()
        })
    };
    const ROUNDS: usize = 8;
    let mut expected = Vec::new();
    for round in 0..ROUNDS {
        // A repeat, delivered to both instances at once: stored once.
        let id = format!("r{round}");
        let answers = at_once([msg(&id), msg(&id)]);
        let changed = answers.iter().filter(|v| v["changed"] == true).count();
        assert_eq!(changed, 1, "round {round}: {answers:?}");
        expected.push(format!("text {id}"));
        // Two new messages, one to each instance at once: both kept.
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        let answers = at_once([msg(&a), msg(&b)]);
        assert!(answers.iter().all(|v| v["changed"] == true), "round {round}: {answers:?}");
        expected.extend([format!("text {a}"), format!("text {b}")]);
    }
    // One conversation, every message once, and one inbox sequence number
    // per change: the head on both instances is the number of changes.
    let changes = 3 * ROUNDS as u64;
    for r in &relays {
        wait_for("the inbox head on every instance", Duration::from_secs(10), || {
            (inbox_head(r, &ana.token) == changes).then_some(())
        });
    }
    assert_eq!(relays[1].admin(&["inbox", "list", "--json"]).json()[0]["conversations"], 1);
    sync(&ana);
    let listed = inbox(&ana);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let mut got = texts(&listed[0]);
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every message once");
}

#[test]
fn on_postgres_a_watcher_on_one_instance_wakes_for_a_delivery_to_another() {
    let relays = Relay::start_postgres(2);
    let sam = relays[1].agent("sam", "agent", &[]);
    let url = add_inbox(&relays[0], "shop", "generic", &[]);
    let watch = spawn_tickets(&sam, &["sync", "--watch"]);
    // The delivery comes once sam's device waits in its long poll on B.
    wait_for("sam's long poll on instance B", Duration::from_secs(15), || {
        (relays[1].metric("tickets_watchers") >= 1).then_some(())
    });
    let body = serde_json::json!({"id": "wa-1", "messages": [
        {"id": "m1", "role": "customer", "text": "hello from A", "at": "2026-11-01T10:00:00Z"}]});
    assert_eq!(post(&url, body.to_string().into_bytes()).0, 200);
    wait_for("the conversation on sam's watching node (on the other instance)", Duration::from_secs(15), || {
        (inbox(&sam).len() == 1).then_some(())
    });
    kill9(watch);
}
