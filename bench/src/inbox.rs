//! The inbox's figures (issue #13): webhook ingest on a real relay, a
//! device's first sync of 10 000 conversations of 20 messages, then idle
//! syncs and one after a few new messages.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{node_for, time, wants, Config, Relay, Report};

const MESSAGES: usize = 20;
/// Webhook clients posting at once (Chatwoot delivers from several workers).
const CLIENTS: usize = 4;

fn generic_conversation(i: usize) -> Vec<u8> {
    let messages: Vec<Value> = (0..MESSAGES)
        .map(|m| {
            json!({"id": format!("{i}-{m}"), "role": if m % 3 == 2 { "agent" } else { "customer" },
                "from": if m % 3 == 2 { "agent" } else { "customer" },
                "text": format!("message {m} of conversation {i}: my order has not arrived, the tracking page shows nothing since Monday"),
                "at": 1_764_000_000 + (i * 100 + m) as i64})
        })
        .collect();
    json!({"id": format!("bench-{i}"), "channel": "whatsapp", "customer": {"name": format!("Customer {i}")},
        "messages": messages})
    .to_string()
    .into_bytes()
}

fn chatwoot_message(conversation: usize, id: usize) -> Vec<u8> {
    json!({"event": "message_created", "id": id, "content": format!("follow-up {id}"), "message_type": "incoming",
        "created_at": 1_764_100_000 + id as i64, "private": false, "sender": {"name": "Customer"},
        "conversation": {"id": conversation, "channel": "Channel::Whatsapp", "meta": {"sender": {"name": "Customer"}}}})
    .to_string()
    .into_bytes()
}

/// Posts `bodies` with [`CLIENTS`] clients; deliveries per second.
fn post_all(url: &str, bodies: Vec<Vec<u8>>) -> Result<f64> {
    let n = bodies.len();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let failures = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| -> usize {
                    let client = reqwest::blocking::Client::new();
                    let mut failed = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { return failed };
                        let ok = client
                            .post(url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .is_ok_and(|r| r.status().is_success());
                        failed += usize::from(!ok);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(usize::MAX)).sum::<usize>()
    });
    if failures != 0 {
        bail!("{failures} of {n} webhook deliveries failed");
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

pub fn run(cfg: &Config, bin: &Path, work: &Path, report: &mut Report) -> Result<()> {
    if !wants(cfg, "inbox") {
        return Ok(());
    }
    let n = if cfg.quick { 300 } else { 10_000 };
    let relay = Relay::start(bin, &work.join("relay-inbox"))?;
    let generic: Value = serde_json::from_str(
        &relay.cli(&["inbox", "add", "web", "--kind", "generic", "--url", &relay.url, "--json"])?,
    )?;
    let chatwoot: Value = serde_json::from_str(
        &relay.cli(&["inbox", "add", "cw", "--kind", "chatwoot", "--url", &relay.url, "--json"])?,
    )?;
    let (generic, chatwoot) = (
        generic["url"].as_str().context("generic url")?.to_string(),
        chatwoot["url"].as_str().context("chatwoot url")?.to_string(),
    );

    // Idle syncs at a tenth of the conversations first, to show they stay
    // flat as the inbox grows.
    let tenth = n / 10;
    let early = relay.agent("ivy", "agent")?;
    let r1 = post_all(&generic, (0..tenth).map(generic_conversation).collect())?;
    let mut small = node_for(&relay, &work.join("inbox-small"), &early)?;
    small.sync(&mut |_| {})?;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let (t, rep) = time(|| Ok(small.sync(&mut |_| {})?))?;
        if rep.inbox != 0 || rep.rounds != 1 {
            bail!("an idle sync moved {} conversations in {} rounds", rep.inbox, rep.rounds);
        }
        idle.push(t);
    }
    report.add(&format!("idle sync with {tenth} inbox conversations"), "ms", &mut idle, Some(("<=", 50.0)));
    let r2 = post_all(&generic, (tenth..n).map(generic_conversation).collect())?;
    let rate = n as f64 / (tenth as f64 / r1 + (n - tenth) as f64 / r2);
    report.single(
        &format!("webhook ingest, {n} new conversations of {MESSAGES} messages"),
        "/s",
        rate,
        Some((">=", 500.0)),
    );
    post_all(&chatwoot, (0..200).map(|c| chatwoot_message(c, 1_000_000 + c)).collect())?;
    let more = if cfg.quick { 500 } else { 4000 };
    let rate = post_all(&chatwoot, (0..more).map(|i| chatwoot_message(i % 200, 2_000_000 + i)).collect())?;
    report.single(
        &format!("webhook ingest, Chatwoot message_created into 200 conversations ({more})"),
        "/s",
        rate,
        Some((">=", 500.0)),
    );

    let token = relay.agent("ina", "agent")?;
    let mut node = node_for(&relay, &work.join("inbox-node"), &token)?;
    let (t, rep) = time(|| Ok(node.sync(&mut |_| {})?))?;
    let expected = n + 200;
    if rep.inbox != expected {
        bail!("first inbox sync brought {} of {expected} conversations", rep.inbox);
    }
    report.single(&format!("first inbox sync, {expected} conversations (~{MESSAGES} messages each)"), "ms", t, None);
    let (t, listed) = time(|| Ok(node.inbox()?))?;
    if listed.len() != expected {
        bail!("the device lists {} conversations", listed.len());
    }
    report.single(&format!("`tickets inbox` read of {expected} conversations"), "ms", t, None);
    let mut idle = Vec::new();
    for _ in 0..20 {
        let (t, rep) = time(|| Ok(node.sync(&mut |_| {})?))?;
        if rep.inbox != 0 || rep.rounds != 1 {
            bail!("an idle sync moved {} conversations in {} rounds", rep.inbox, rep.rounds);
        }
        idle.push(t);
    }
    report.add(&format!("idle sync with {expected} inbox conversations"), "ms", &mut idle, Some(("<=", 50.0)));
    post_all(&chatwoot, (0..10).map(|i| chatwoot_message(i, 3_000_000 + i)).collect())?;
    let (t, rep) = time(|| Ok(node.sync(&mut |_| {})?))?;
    if rep.inbox != 10 {
        bail!("a sync after 10 new messages brought {} conversations", rep.inbox);
    }
    report.single("sync after 10 new messages in 10 conversations", "ms", t, Some(("<=", 50.0)));
    report.single("relay peak RSS, inbox", "MiB", relay.peak_rss_mb(), None);
    Ok(())
}
