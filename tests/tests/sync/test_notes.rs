//! Internal notes never reach a device whose agent may not read them, not
//! even as stray bytes in its database files; a grant brings them on the
//! next sync and a revocation removes them (SPEC §1.3, §3).

use crate::harness::{bodies, files_containing, sync, Backend, Relay};
use crate::support::assert_mentions;

const SECRET: &str = "note-7f3a9c: VIP customer, refund approved by finance";
const LATER_SECRET: &str = "note-51be02: legal hold, do not close";

#[test]
fn notes_stay_off_an_unpermitted_device_arrive_on_grant_and_leave_on_revoke() {
    notes_stay_off_an_unpermitted_device_arrive_on_grant_and_leave_on_revoke_on(Relay::start());
}

#[test]
fn notes_stay_off_an_unpermitted_device_arrive_on_grant_and_leave_on_revoke_on_postgres() {
    notes_stay_off_an_unpermitted_device_arrive_on_grant_and_leave_on_revoke_on(Relay::start_on(Backend::Postgres));
}

fn notes_stay_off_an_unpermitted_device_arrive_on_grant_and_leave_on_revoke_on(relay: Relay) {
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &[]);
    let id = lea.create("Refund for Maria", "high", "billing");
    lea.run(&["comment", &id, "public words"]).ok();
    lea.run(&["note", &id, SECRET]).ok();
    sync(&lea);
    // The check reads raw bytes: make sure it finds the note where it is.
    assert!(!files_containing(&lea.path(), SECRET).is_empty(), "the lead's device holds the note in its files");

    // An agent without the permission: the ticket, not the note.
    sync(&ana);
    let t = ana.show(&id);
    assert_eq!(bodies(&t, "comments"), ["public words"]);
    assert!(t.get("internal_notes").is_none(), "show --json omits internal_notes: {t:#}");
    assert!(ana.list(&[])[0].get("internal_notes").is_none(), "list --json omits internal_notes");
    assert_eq!(files_containing(&ana.path(), SECRET), Vec::<String>::new(), "no byte of the note on ana's device");
    assert_eq!(files_containing(&ana.path(), "note-7f3a9c"), Vec::<String>::new());
    let out = ana.run(&["note", &id, "ana tries a note"]).fails();
    assert_mentions(&out, "note");
    assert_eq!(sync(&ana)["refused"].as_array().map(Vec::len), Some(0), "nothing was queued for the relay");
    assert_eq!(bodies(&relay.ticket(&id, &lea.token), "internal_notes"), [SECRET]);
    let via_api = relay.ticket(&id, &ana.token);
    assert!(via_api.get("internal_notes").is_none() && !via_api.to_string().contains("7f3a9c"), "{via_api:#}");
    let board = relay.get("/v1/tickets", &ana.token).text().expect("board");
    assert!(!board.contains("7f3a9c"), "the board API leaks the note to ana");

    // Granted: the withheld note arrives with the next sync.
    relay.admin(&["agent", "grant", "ana", "--internal-notes"]).ok();
    sync(&ana);
    assert_eq!(bodies(&ana.show(&id), "internal_notes"), [SECRET]);
    assert!(!files_containing(&ana.path(), SECRET).is_empty());
    ana.run(&["note", &id, "ana-note-9d41: called the bank"]).ok();
    sync(&ana);
    sync(&lea);
    assert_eq!(bodies(&lea.show(&id), "internal_notes"), [SECRET, "ana-note-9d41: called the bank"]);

    // Revoked: the next sync removes every note from the device, and a note
    // written meanwhile never arrives.
    relay.admin(&["agent", "revoke", "ana", "--internal-notes"]).ok();
    lea.run(&["note", &id, LATER_SECRET]).ok();
    sync(&lea);
    let report = sync(&ana);
    assert!(report["purged_notes"].as_u64() >= Some(1), "the sync reports the removal: {report}");
    let t = ana.show(&id);
    assert!(t.get("internal_notes").is_none(), "{t:#}");
    assert_eq!(bodies(&t, "comments"), ["public words"], "public data stays");
    for needle in [SECRET, "note-7f3a9c", "ana-note-9d41", LATER_SECRET, "note-51be02"] {
        assert_eq!(files_containing(&ana.path(), needle), Vec::<String>::new(), "{needle:?} left on ana's device");
    }
    ana.run(&["note", &id, "ana tries again"]).fails();
    assert_eq!(bodies(&relay.ticket(&id, &lea.token), "internal_notes").len(), 3, "the relay keeps every note");
}

#[test]
fn revoking_the_agent_refuses_its_token_and_removes_its_notes() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &["--internal-notes"]);
    let id = lea.create("Server room door", "urgent", "hardware");
    lea.run(&["note", &id, SECRET]).ok();
    sync(&lea);
    sync(&ana);
    assert_eq!(bodies(&ana.show(&id), "internal_notes"), [SECRET]);

    relay.admin(&["agent", "revoke", "ana"]).ok();
    let out = ana.run(&["sync"]).fails();
    assert_mentions(&out, "token");
    assert_eq!(files_containing(&ana.path(), SECRET), Vec::<String>::new(), "the note left ana's device");
    assert!(ana.show(&id).get("internal_notes").is_none());
    let resp = relay.get("/v1/tickets", &ana.token);
    assert_eq!(resp.status().as_u16(), 401, "a revoked token gets 401");
}

#[test]
fn a_note_typed_offline_before_a_revocation_is_refused_visibly() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let ana = relay.agent("ana", "agent", &["--internal-notes"]);
    let id = ana.create("Gate code", "medium", "hardware");
    sync(&ana);
    ana.run(&["note", &id, "ana-offline-3c1e: code is 4711"]).ok();
    relay.admin(&["agent", "revoke", "ana", "--internal-notes"]).ok();

    let out = ana.run(&["sync"]).ok();
    let line = format!("refused {} (notes): ", &id[..8]);
    assert!(out.contains("refused 1") && out.contains(&line), "the sync output names the refusal:\n{out}");
    let t = ana.show(&id);
    let refusals = t["refusals"].as_array().expect("show --json lists the refusal");
    assert!(refusals.iter().any(|r| r["kind"] == "notes"), "{t:#}");
    assert_eq!(files_containing(&ana.path(), "ana-offline-3c1e"), Vec::<String>::new());
    let on_relay = relay.ticket(&id, &lea.token);
    assert!(bodies(&on_relay, "internal_notes").is_empty(), "{on_relay:#}");
}
