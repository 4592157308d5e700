//! The app's API over the local node: what it writes the CLI reads, what
//! the CLI writes the open page hears about, and bad input refused with a
//! code (and the field at fault).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::app_process::{wait_event, AppProcess};
use crate::support::Home;

fn create(app: &AppProcess, body: Value) -> String {
    let (status, v) = app.send(Method::POST, "/v1/tickets", Some(body));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["ticket"]["id"], v["id"]);
    v["id"].as_str().expect("an id").to_string()
}

#[test]
fn a_ticket_created_in_the_app_is_listed_by_the_cli() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let subject = "Printer <img src=x onerror=alert(1)>";
    let id = create(
        &app,
        json!({"subject": subject, "priority": "high", "category": "hardware", "description": "Tray 2", "assignee": null}),
    );
    let listed = home.list(&[]);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["id"].as_str(), listed[0]["subject"].as_str()), (Some(id.as_str()), Some(subject)));
    let (status, shown) = app.get(&format!("/v1/tickets/{}", &id[..8]));
    assert_eq!(status, 200, "an id prefix finds the ticket");
    let without_sla = |mut t: Value| {
        t.as_object_mut().map(|o| o.remove("sla"));
        t
    };
    assert_eq!(without_sla(shown), without_sla(home.show(&id)), "the app's object is `show --json`'s");
}

#[test]
fn the_list_filters_unassigned_tickets_and_several_colours_and_pages() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let mine = create(&app, json!({"subject": "Mine", "priority": "low", "category": "a", "assignee": "ana"}));
    let free = create(&app, json!({"subject": "Free", "priority": "low", "category": "a"}));
    let ids = |query: &str| -> Vec<String> {
        let (status, v) = app.get(&format!("/v1/tickets?{query}"));
        assert_eq!(status, 200, "{query}: {v}");
        v["tickets"].as_array().expect("tickets").iter().map(|t| t["id"].as_str().unwrap_or("").to_string()).collect()
    };
    assert_eq!(ids("assignee=none"), vec![free.clone()]);
    assert_eq!(ids("assignee=ana"), vec![mine.clone()]);
    assert_eq!(ids("assignee=ana,none&sort=subject"), vec![free.clone(), mine.clone()]);
    assert_eq!(ids("sla=yellow,red"), Vec::<String>::new());
    assert_eq!(ids("sla=none,green&sort=-subject"), vec![mine.clone(), free.clone()]);
    assert_eq!(ids("limit=1&offset=1&sort=subject"), vec![mine]);
    let (_, page) = app.get("/v1/tickets?limit=1");
    assert_eq!((page["total"].as_u64(), page["counts"]["none"].as_u64()), (Some(2), Some(2)), "{page}");
    assert!(page["now"].is_string());
    let (status, bad) = app.get("/v1/tickets?sla=purple");
    assert_eq!((status, bad["code"].as_str(), bad["field"].as_str()), (400, Some("bad_query"), Some("sla")), "{bad}");
}

#[test]
fn a_cli_command_in_another_process_reaches_the_open_event_stream() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let id = create(&app, json!({"subject": "Printer jams", "priority": "high", "category": "hardware"}));
    let events = app.events();
    home.run(&["comment", &id, "Replaced the toner"]).ok();
    let data = wait_event(&events, "changed", Duration::from_secs(5));
    let v: Value = serde_json::from_str(&data).expect("JSON data");
    assert!(v["seq"].as_u64().is_some(), "{data}");
    let (_, t) = app.get(&format!("/v1/tickets/{id}"));
    assert_eq!(t["comments"][0]["body"], "Replaced the toner");
}

#[test]
fn status_changes_reach_the_cli_and_closed_is_final() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let id = create(&app, json!({"subject": "Printer jams", "priority": "high", "category": "hardware"}));
    let path = format!("/v1/tickets/{id}");
    let (status, v) = app.send(Method::PATCH, &path, Some(json!({"status": "in-progress", "assignee": "ana"})));
    assert_eq!(status, 200, "{v}");
    let shown = home.show(&id);
    assert_eq!((shown["status"].as_str(), shown["assignee"].as_str()), (Some("in-progress"), Some("ana")));
    let (status, v) = app.send(Method::PATCH, &path, Some(json!({"assignee": null})));
    assert_eq!(status, 200, "{v}");
    assert!(home.show(&id)["assignee"].is_null(), "null unassigns");
    let (status, v) = app.send(Method::PATCH, &path, Some(json!({"status": "closed"})));
    assert_eq!(status, 200, "{v}");
    let (status, v) = app.send(Method::PATCH, &path, Some(json!({"status": "open"})));
    assert_eq!((status, v["code"].as_str(), v["field"].as_str()), (409, Some("closed"), Some("status")), "{v}");
    let (status, v) = app.send(Method::PATCH, &path, Some(json!({"priority": "low"})));
    assert_eq!((status, v["code"].as_str()), (409, Some("closed")), "{v}");
    assert_eq!(home.show(&id)["status"], "closed", "the refused transition changed nothing");
    let (status, v) = app.send(Method::POST, &format!("{path}/comments"), Some(json!({"text": "Still allowed"})));
    assert_eq!(status, 201, "comments on a closed ticket: {v}");
    assert_eq!(v["ticket"]["comments"][0]["body"], "Still allowed");
}

#[test]
fn bad_input_is_refused_with_a_code_and_the_field() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let cases = [
        (json!({"priority": "high", "category": "a"}), 400, "invalid", Some("subject")),
        (json!({"subject": " ", "priority": "high", "category": "a"}), 400, "invalid", Some("subject")),
        (json!({"subject": "x".repeat(501), "priority": "high", "category": "a"}), 400, "invalid", Some("subject")),
        (json!({"subject": "S", "priority": "meh", "category": "a"}), 400, "invalid", Some("priority")),
        (json!({"subject": "S", "priority": "high"}), 400, "invalid", Some("category")),
        (
            json!({"subject": "S", "priority": "high", "category": "a", "colour": "red"}),
            400,
            "unknown_field",
            Some("colour"),
        ),
        (json!({"subject": 7, "priority": "high", "category": "a"}), 400, "invalid", Some("subject")),
        (
            json!({"subject": "S", "priority": "high", "category": "a", "conversation": {"id": ""}}),
            400,
            "bad_conversation",
            Some("conversation"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (s, v) = app.send(Method::POST, "/v1/tickets", Some(body.clone()));
        assert_eq!((s, v["code"].as_str(), v["field"].as_str()), (status, Some(code), field), "{body}: {v}");
    }
    let not_json = app
        .request(Method::POST, "/v1/tickets")
        .header("Content-Type", "application/json")
        .body("{\"subject\": ")
        .send()
        .expect("POST");
    assert_eq!(not_json.status().as_u16(), 400);
    assert_eq!(not_json.json::<Value>().expect("JSON")["code"], "bad_json");
    let huge = app
        .request(Method::POST, "/v1/tickets")
        .header("Content-Type", "application/json")
        .body(format!("{{\"subject\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)))
        .send()
        .expect("POST");
    assert_eq!(huge.status().as_u16(), 413);
    assert!(home.list(&[]).is_empty(), "nothing was created");
    let (status, v) = app.get("/v1/tickets/00000000");
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")), "{v}");
    let (status, v) = app.get("/v1/tickets/not-an-id");
    assert_eq!((status, v["code"].as_str()), (400, Some("bad_id")), "{v}");
    let (status, v) = app.send(Method::DELETE, "/v1/tickets", None);
    assert_eq!((status, v["code"].as_str()), (405, Some("method_not_allowed")), "{v}");
    let (status, v) = app.send(Method::PATCH, "/v1/tickets/00000000", Some(json!({})));
    assert_eq!((status, v["code"].as_str()), (400, Some("nothing_to_edit")), "{v}");
}

#[test]
fn a_conversation_makes_one_ticket_and_the_second_attempt_points_at_it() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let conversation = json!({"id": "wa-4711", "channel": "whatsapp", "customer": {"name": "Maria Lopez"},
        "messages": [{"from": "Maria Lopez", "role": "customer", "text": "My refund never arrived", "at": "2026-11-24T09:15:00Z"}]});
    let (status, pre) = app.send(Method::POST, "/v1/conversations/prefill", Some(conversation.clone()));
    assert_eq!(status, 200, "{pre}");
    assert_eq!((pre["existing"].clone(), pre["conversation_id"].as_str()), (Value::Null, Some("file:wa-4711")));
    assert_eq!(pre["subject"], "My refund never arrived");
    assert!(pre["description"].as_str().unwrap_or("").contains("Maria Lopez"), "{pre}");
    let body = json!({"subject": "Refund", "priority": "medium", "category": "billing", "conversation": conversation});
    let id = create(&app, body.clone());
    let (status, v) = app.send(Method::POST, "/v1/tickets", Some(body));
    assert_eq!(
        (status, v["code"].as_str(), v["id"].as_str()),
        (409, Some("conversation_has_ticket"), Some(id.as_str()))
    );
    let (_, pre) = app.send(Method::POST, "/v1/conversations/prefill", Some(conversation));
    assert_eq!(pre["existing"].as_str(), Some(id.as_str()));
    let (status, v) = app.send(Method::POST, "/v1/conversations/prefill", Some(json!({"id": "x", "messages": 3})));
    assert_eq!((status, v["field"].as_str()), (400, Some("conversation")), "{v}");
    assert_eq!(home.list(&[]).len(), 1);
}

#[test]
fn event_streams_are_bounded_and_a_closed_one_frees_its_slot() {
    let home = Home::new();
    let app = AppProcess::start(&home.path(), &[]);
    let open = |n: usize| -> Vec<reqwest::blocking::Response> {
        (0..n).map(|_| app.request(Method::GET, "/v1/events").send().expect("GET /v1/events")).collect()
    };
    let streams = open(32);
    assert!(streams.iter().all(|r| r.status().as_u16() == 200));
    let (status, v) = app.get("/v1/events");
    assert_eq!((status, v["code"].as_str()), (503, Some("too_many_streams")), "{v}");
    drop(streams);
    crate::harness::wait_for("a closed stream to free its slot", Duration::from_secs(10), || {
        let resp = app.request(Method::GET, "/v1/events").send().map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(s.to_string()),
        }
    });
}
