//! The inbox in the app (issue #13): Chatwoot-shaped deliveries posted to a
//! real relay, pulled by the agent's node, listed by `GET /v1/inbox` as
//! `tickets inbox --json` lists them, pre-filled by `GET
//! /v1/inbox/{id}/prefill`, and made into one ticket by `POST /v1/tickets`
//! with `conversation_id`, exactly as `tickets create --conversation ID`
//! makes it on another device.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};

use crate::app_process::AppProcess;
use crate::harness::{Device, Relay};

const ID: &str = "chatwoot:support:10";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/chatwoot").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A relay with a Chatwoot inbox that received the fixtures' conversation.
fn relay_with_a_conversation() -> Relay {
    let relay = Relay::start();
    relay.sla("high", "1h", "1d");
    relay.category("billing");
    let added: Value = serde_json::from_str(
        &relay.admin(&["inbox", "add", "support", "--kind", "chatwoot", "--url", &relay.url, "--json"]),
    )
    .expect("inbox add --json");
    let webhook = added["url"].as_str().expect("the webhook URL").to_string();
    let http = reqwest::blocking::Client::new();
    for f in ["conversation_created.json", "message_created.incoming.json", "message_created.html.json"] {
        let resp = http
            .post(&webhook)
            .header("content-type", "application/json")
            .body(fixture(f))
            .send()
            .expect("POST the webhook");
        assert_eq!(resp.status().as_u16(), 200, "{f}");
    }
    relay
}

fn without_age(mut v: Value) -> Value {
    for c in v.as_array_mut().into_iter().flatten() {
        c.as_object_mut().map(|o| o.remove("age_secs"));
    }
    v
}

#[test]
fn an_inbox_conversation_is_listed_prefilled_and_made_into_one_ticket_as_the_cli_makes_it() {
    let relay = relay_with_a_conversation();
    let ana = Device::register(&relay.url, &relay.agent("ana", "agent"));
    let bob = Device::register(&relay.url, &relay.agent("bob", "agent"));
    ana.sync();
    bob.sync();
    let app = AppProcess::start(&ana.home.path(), &["--offline"]);

    let (status, listed) = app.get("/v1/inbox");
    assert_eq!(status, 200, "{listed}");
    let cli = ana.run(&["inbox", "--json"]).json();
    assert_eq!(without_age(listed["conversations"].clone()), without_age(cli), "the app lists what the CLI lists");
    let c = &listed["conversations"][0];
    assert_eq!((c["id"].as_str(), c["customer"].as_str(), c["ticket"].as_str()), (Some(ID), Some("jane"), None));
    assert!(c["last_message"]["text"].is_string() && c["messages_count"].as_u64() > Some(0), "{c}");

    let path = format!("/v1/inbox/{}/prefill", ID.replace(':', "%3A"));
    let (status, pre) = app.get(&path);
    assert_eq!(status, 200, "{pre}");
    assert_eq!((pre["existing"].clone(), pre["conversation_id"].as_str()), (Value::Null, Some(ID)), "{pre}");
    assert!(pre["subject"].as_str().is_some_and(|s| !s.is_empty()), "{pre}");
    assert!(pre["description"].as_str().is_some_and(|d| d.contains("jane")), "{pre}");

    let body = json!({"subject": pre["subject"], "description": "", "priority": "high", "category": "billing",
        "conversation_id": ID});
    let (status, created) = app.send(Method::POST, "/v1/tickets", Some(body.clone()));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_string();
    // A second one is refused and points at the first (one ticket per
    // conversation), as `tickets create --conversation` refuses it.
    let (status, again) = app.send(Method::POST, "/v1/tickets", Some(body));
    assert_eq!(
        (status, again["code"].as_str(), again["id"].as_str()),
        (409, Some("conversation_has_ticket"), Some(id.as_str()))
    );
    let tickets = ana.run(&["list", "--json"]).json();
    assert_eq!(tickets.as_array().map(Vec::len), Some(1), "{tickets}");
    assert_eq!(tickets[0]["conversation_id"], ID, "{tickets}");
    let (_, listed) = app.get("/v1/inbox");
    assert_eq!(listed["conversations"][0]["ticket"], id.as_str(), "the conversation links its ticket: {listed}");
    let (_, pre) = app.get(&path);
    assert_eq!(pre["existing"], id.as_str(), "{pre}");

    // The CLI on another device makes the same ticket from the same
    // conversation: description (prefill) and first-response state alike.
    let other = bob.create_with(&[
        "--subject",
        pre["subject"].as_str().unwrap_or("x"),
        "--priority",
        "high",
        "--category",
        "billing",
        "--conversation",
        ID,
    ]);
    let (mine, theirs) = (ana.show(&id), bob.show(&other));
    for field in ["description", "conversation_id", "subject", "priority"] {
        assert_eq!(mine[field], theirs[field], "{field}: app {mine} / cli {theirs}");
    }
    assert_eq!(mine["sla"]["first_response"]["state"], theirs["sla"]["first_response"]["state"]);
}

#[test]
fn an_unknown_or_doubly_named_conversation_is_refused_and_nothing_is_made() {
    let relay = relay_with_a_conversation();
    let ana = Device::register(&relay.url, &relay.agent("ana", "agent"));
    ana.sync();
    let app = AppProcess::start(&ana.home.path(), &["--offline"]);
    let (status, e) = app.get("/v1/inbox/chatwoot%3Asupport%3A99/prefill");
    assert_eq!(
        (status, e["code"].as_str(), e["field"].as_str()),
        (404, Some("not_found"), Some("conversation_id")),
        "{e}"
    );
    assert!(e["hint"].is_string(), "{e}");
    let base = json!({"subject": "s", "priority": "high", "category": "billing"});
    let mut unknown = base.clone();
    unknown["conversation_id"] = json!("chatwoot:support:99");
    let (status, e) = app.send(Method::POST, "/v1/tickets", Some(unknown));
    assert_eq!((status, e["field"].as_str()), (404, Some("conversation_id")), "{e}");
    let mut both = base.clone();
    both["conversation_id"] = json!(ID);
    both["conversation"] = json!({"id": "x", "messages": [{"role": "customer", "text": "hi"}]});
    let (status, e) = app.send(Method::POST, "/v1/tickets", Some(both));
    assert_eq!((status, e["field"].as_str()), (400, Some("conversation_id")), "{e}");
    let mut wrong_type = base;
    wrong_type["conversation_id"] = json!(10);
    let (status, _) = app.send(Method::POST, "/v1/tickets", Some(wrong_type));
    assert_eq!(status, 400);
    assert_eq!(ana.run(&["list", "--json"]).json().as_array().map(Vec::len), Some(0), "nothing was created");
}
