//! The app's background sync with a real relay: the app's edits reach
//! another node, another node's edits reach the open page, the directory
//! is kept for offline use, and a stopped relay shows as `offline`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::app_process::{wait_event, AppProcess};
use crate::harness::{wait_for, Device, Relay};

/// How long a change may take to go through the relay to another node.
const SYNC_LIMIT: Duration = Duration::from_secs(20);

fn sync_state(app: &AppProcess) -> Value {
    let (status, v) = app.get("/v1/sync/status");
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn the_background_sync_pushes_the_apps_edits_and_says_offline_when_the_relay_stops() {
    let mut relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let ana_token = relay.admin(&["agent", "add", "ana", "--role", "agent", "--team", "field"]).trim().to_string();
    relay.category("hardware");
    let ana = Device::register(&relay.url, &ana_token);
    let lea = Device::register(&relay.url, &lead_token);
    let app = AppProcess::start(&ana.home.path(), &[]);

    let (_, me) = app.get("/v1/me");
    assert_eq!(
        (me["role"].as_str(), me["team"].as_str(), me["export"].as_bool()),
        (Some("agent"), Some("field"), Some(false))
    );
    let (_, dir) = app.get("/v1/directory");
    assert_eq!(dir["categories"], json!(["hardware"]), "{dir}");
    assert_eq!(dir["agents"], json!([{"name": "ana", "team": "field"}, {"name": "lea", "team": null}]), "{dir}");
    assert_eq!(dir["teams"], json!(["field"]), "{dir}");
    assert!(!dir.to_string().contains(&ana_token), "the directory carries no token");

    let (status, created) = app.send(
        Method::POST,
        "/v1/tickets",
        Some(json!({"subject": "Printer jams", "priority": "high", "category": "hardware", "assignee": "team:field"})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_string();
    wait_for("the lead's node to pull the app's ticket", SYNC_LIMIT, || {
        lea.sync();
        let t = lea.run(&["list", "--json"]).json();
        if t.as_array().is_some_and(|l| l.iter().any(|x| x["id"] == id.as_str())) {
            Ok(())
        } else {
            Err(t.to_string())
        }
    });
    let synced = wait_for("the app to say synced", SYNC_LIMIT, || {
        let s = sync_state(&app);
        if s["state"] == "synced" && s["pending"] == 0 && s["last_sync_at"].is_string() {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert!(synced["error"].is_null(), "{synced}");

    // Another agent's edit reaches the open page without a reload.
    let events = app.events();
    lea.run(&["comment", &id, "On my way"]).ok();
    lea.sync();
    wait_event(&events, "changed", SYNC_LIMIT);
    wait_for("the lead's comment on the app's node", SYNC_LIMIT, || {
        let (_, t) = app.get(&format!("/v1/tickets/{id}"));
        if t["comments"][0]["body"] == "On my way" {
            Ok(())
        } else {
            Err(t["comments"].to_string())
        }
    });
    let (status, v) = app.get("/v1/export?format=json");
    assert_eq!((status, v["code"].as_str()), (403, Some("forbidden")), "a plain agent's export: {v}");

    relay.kill();
    let (status, _) = app.send(Method::POST, "/v1/sync/now", None);
    assert_eq!(status, 202);
    let offline = wait_for("the app to say offline", SYNC_LIMIT, || {
        let s = sync_state(&app);
        if s["state"] == "offline" {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert!(offline["error"].is_string(), "{offline}");
    let (_, dir_offline) = app.get("/v1/directory");
    assert_eq!(dir_offline, dir, "the directory works offline");
    let (status, v) = app.send(
        Method::POST,
        "/v1/tickets",
        Some(json!({"subject": "Offline ticket", "priority": "low", "category": "hardware"})),
    );
    assert_eq!(status, 201, "created offline: {v}");
    assert!(sync_state(&app)["pending"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(app.terminate(), Some(0), "SIGTERM ends the app (and its sync) with exit 0");
}

#[test]
fn an_offline_app_does_not_sync_and_says_local() {
    let relay = Relay::start();
    let token = relay.agent("ana", "lead");
    relay.category("hardware");
    let ana = Device::register(&relay.url, &token);
    let app = AppProcess::start(&ana.home.path(), &["--offline"]);
    let (status, v) = app.send(
        Method::POST,
        "/v1/tickets",
        Some(json!({"subject": "Kept here", "priority": "low", "category": "hardware"})),
    );
    assert_eq!(status, 201, "{v}");
    let s = sync_state(&app);
    assert_eq!((s["state"].as_str(), s["pending"].as_u64()), (Some("local"), Some(1)), "{s}");
    let (status, v) = app.send(Method::POST, "/v1/sync/now", None);
    assert_eq!((status, v["code"].as_str()), (409, Some("local")), "{v}");
    let (_, me) = app.get("/v1/me");
    assert_eq!((me["export"].as_bool(), me["offline"].as_bool()), (Some(true), Some(true)), "{me}");
    assert_eq!(app.terminate(), Some(0));
}

#[test]
fn a_leads_export_is_streamed_from_the_relay_and_refused_offline() {
    let mut relay = Relay::start();
    let token = relay.agent("lea", "lead");
    relay.category("hardware");
    let lea = Device::register(&relay.url, &token);
    let id = lea.create("Printer jams", "high", "hardware");
    lea.sync();
    let app = AppProcess::start(&lea.home.path(), &[]);
    let resp = app.request(Method::GET, "/v1/export?format=ndjson&ignored=x").send().expect("GET /v1/export");
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(ct.contains("ndjson"), "content type {ct}");
    let text = resp.text().unwrap_or_default();
    let first: Value = serde_json::from_str(text.lines().next().unwrap_or_default()).expect("an NDJSON line");
    assert_eq!(first["id"].as_str(), Some(id.as_str()), "{text}");
    relay.kill();
    let (status, v) = app.get("/v1/export?format=json");
    assert_eq!((status, v["code"].as_str()), (503, Some("offline")), "{v}");
}
