//! Device registration: an actor is one device of one agent, in its one
//! canonical spelling, and no actor may share the first 8 bytes (the
//! replica id its clock stamps carry) with another registered device.

use tickets_relay::{auth, Db, StoreError};

#[test]
fn an_actor_cannot_borrow_another_devices_replica_or_spelling() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = Db::open(&dir.path().join("relay.db"), true).expect("relay database");
    let mut c = db.conn().expect("connection");
    c.add_agent("ana", "agent", None, false, &auth::token_hash("tk_ana"), 0).expect("ana");
    c.add_agent("bob", "agent", None, false, &auth::token_hash("tk_bob"), 0).expect("bob");
    let ana = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    c.register_device(ana, "ana", 0).expect("ana's device");
    c.register_device(ana, "ana", 0).expect("registering again is idempotent");
    let taken = |r: Result<(), StoreError>| matches!(r, Err(StoreError::DeviceTaken(o)) if o == "ana");
    assert!(taken(c.register_device(&ana.to_uppercase(), "bob", 0)), "the upper-case spelling is ana's device");
    let same_replica = format!("{}{}", &ana[..16], "ffffffffffffffff");
    assert!(taken(c.register_device(&same_replica, "bob", 0)), "an actor sharing ana's replica id is refused");
    c.register_device("ffffffffffffffff0a1b2c3d4e5f6071", "bob", 0).expect("an unrelated actor registers");
}

/// The settings every device receives carry the directory: each active
/// agent's name and team, and nothing else of them (no token, no role).
#[test]
fn devices_receive_the_agents_names_and_teams_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = Db::open(&dir.path().join("relay.db"), true).expect("relay database");
    let mut c = db.conn().expect("connection");
    c.add_agent("ana", "agent", Some("field"), false, &auth::token_hash("tk_ana_secret"), 0).expect("ana");
    c.add_agent("lea", "lead", None, true, &auth::token_hash("tk_lea_secret"), 0).expect("lea");
    let settings = c.settings().expect("settings");
    let names: Vec<(&str, Option<&str>)> =
        settings.directory.iter().map(|d| (d.name.as_str(), d.team.as_deref())).collect();
    assert_eq!(names, vec![("ana", Some("field")), ("lea", None)]);
    assert_eq!(settings.agents, vec!["ana".to_string(), "lea".to_string()]);
    let wire = serde_json::to_string(&settings).expect("settings as JSON");
    for secret in ["tk_ana_secret", &auth::token_hash("tk_ana_secret"), "\"lead\"", "\"role\""] {
        assert!(!wire.contains(secret), "the settings sent to devices carry {secret}: {wire}");
    }
}
