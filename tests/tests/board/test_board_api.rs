//! `GET /v1/tickets/{id}` (SPEC §6): the authoritative object of one ticket,
//! as a plain agent and as a lead see it.

use crate::harness::{id_of, Device, Relay};

#[test]
fn an_agent_sees_a_ticket_without_internal_notes_and_a_lead_with_them() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let agent_token = relay.agent("ana", "agent");
    relay.category("hardware");
    let ana = Device::register(&relay.url, &agent_token);
    let lea = Device::register(&relay.url, &lead_token);
    let id = ana.create("Printer jams", "high", "hardware");
    ana.run(&["comment", &id, "Public reply"]).ok();
    ana.sync();
    lea.sync();
    lea.run(&["note", &id, "Secret: VIP customer"]).ok();
    lea.sync();

    let (status, agent_view) = relay.get(&agent_token, &format!("/v1/tickets/{}", &id[..8]));
    assert_eq!(status, 200, "{agent_view}");
    assert_eq!(id_of(&agent_view), id, "a unique prefix finds the ticket");
    assert!(agent_view.get("internal_notes").is_none(), "an agent's view has no internal_notes: {agent_view}");
    assert!(!agent_view.to_string().contains("VIP customer"), "the note's text reaches an agent: {agent_view}");
    assert_eq!(agent_view["comments"][0]["body"], "Public reply");
    let (status, lead_view) = relay.get(&lead_token, &format!("/v1/tickets/{id}"));
    assert_eq!(status, 200, "{lead_view}");
    assert_eq!(lead_view["internal_notes"][0]["body"], "Secret: VIP customer", "{lead_view}");
    assert_eq!(lead_view["internal_notes"][0]["author"], "lea");

    let (status, missing) = relay.get(&lead_token, "/v1/tickets/00000000");
    assert_eq!((status, missing["code"].as_str()), (404, Some("not_found")), "{missing}");
    let (status, bad) = relay.get(&lead_token, "/v1/tickets/not-an-id");
    assert_eq!(status, 400, "{bad}");
    let (status, _) = relay.get("wrong-token", &format!("/v1/tickets/{id}"));
    assert_eq!(status, 401);
}

/// The relay finds the ticket of `/v1/tickets/{id}` with the board's search
/// (subject text OR id prefix, newest first, limit 1): a newer ticket whose
/// subject quotes the id ("duplicate of …") is returned instead.
#[test]

fn a_ticket_is_found_by_its_id_even_when_another_subject_quotes_it() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    relay.category("hardware");
    let lea = Device::register(&relay.url, &lead_token);
    let original = lea.create("Printer jams", "high", "hardware");
    let duplicate = lea.create(&format!("Duplicate of {original}"), "low", "hardware");
    lea.sync();
    let (status, t) = relay.get(&lead_token, &format!("/v1/tickets/{original}"));
    assert_eq!(status, 200, "{t}");
    assert_ne!(id_of(&t), duplicate, "GET /v1/tickets/{original} returned the duplicate {duplicate}");
    assert_eq!(id_of(&t), original);
}

/// `GET /v1/tickets?assignee=none` lists unassigned tickets (beside names,
/// either), and `sla=A,B` any of several colours (core's `ListQuery`,
/// shared with the node's app).
#[test]
fn the_board_filters_unassigned_tickets_and_several_sla_colours() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    relay.category("hardware");
    relay.sla("high", "1h", "8h");
    let lea = Device::register(&relay.url, &lead_token);
    let timed = lea.create("Printer jams", "high", "hardware");
    let untimed = lea.create("Toner low", "low", "hardware");
    let mine =
        lea.create_with(&["--subject", "Fax", "--priority", "low", "--category", "hardware", "--assignee", "lea"]);
    lea.sync();
    let ids_of = |query: &str| {
        let mut ids: Vec<String> =
            relay.board(&lead_token, query)["tickets"].as_array().into_iter().flatten().map(id_of).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(ids_of("assignee=none"), sorted(vec![&timed, &untimed]));
    assert_eq!(ids_of("assignee=lea,none"), sorted(vec![&timed, &untimed, &mine]));
    assert_eq!(ids_of("assignee=lea"), vec![mine.clone()]);
    assert_eq!(ids_of("sla=green"), vec![timed.clone()]);
    assert_eq!(ids_of("sla=green,none"), sorted(vec![&timed, &untimed, &mine]));
    assert_eq!(ids_of("sla=yellow,red"), Vec::<String>::new());
    let (status, bad) = relay.get(&lead_token, "/v1/tickets?sla=yellow,purple");
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")), "{bad}");
}
