//! Creating a node, and what every command says when there is none.

use crate::support::{assert_mentions, Home};

#[test]
fn init_makes_an_empty_node_usable_at_once() {
    let h = Home::empty();
    let out = h.run(&["init", "--agent", "ana"]).ok();
    assert!(out.contains("ana"), "init names the agent: {out}");
    assert!(h.db().is_file(), "init creates the database");
    assert_eq!(h.list(&[]), Vec::<serde_json::Value>::new());
    let st = h.run(&["status", "--json"]).json();
    assert_eq!(st["agent"], "ana");
    assert_eq!(st["tickets"], 0);
    assert!(st["relay"].is_null(), "a local-only node has no relay: {st}");
    h.create("first", "low", "general");
}

#[test]
fn init_json_reports_agent_and_actor() {
    let h = Home::empty();
    let v = h.run(&["init", "--agent", "bo", "--json"]).json();
    assert_eq!(v["agent"], "bo");
    assert!(v["actor"].as_str().is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_hexdigit())));
}

#[test]
fn init_twice_fails_and_keeps_the_node() {
    let h = Home::new();
    let id = h.create("keep me", "high", "general");
    let out = h.run(&["init", "--agent", "ana"]).fails();
    assert_mentions(&out, "already exists");
    let out = h.run(&["init", "--agent", "someone-else"]).fails();
    assert_mentions(&out, "already exists");
    assert_eq!(h.show(&id)["subject"], "keep me");
    assert_eq!(h.show(&id)["created_by"], "ana");
}

#[test]
fn init_needs_a_valid_agent_name() {
    let h = Home::empty();
    let out = h.run(&["init"]).fails();
    assert_mentions(&out, "--agent");
    h.run(&["init", "--agent", "   "]).fails();
    h.run(&["init", "--agent", &"x".repeat(65)]).fails();
    assert!(!h.db().exists(), "a refused init leaves no database");
}

#[test]
fn tickets_home_env_picks_the_node() {
    let h = Home::empty();
    h.run_with_env_home(&["init", "--agent", "cy"]).ok();
    let id = h.run_with_env_home(&["create", "--subject", "via env", "--priority", "low", "--category", "x"]).ok();
    assert_eq!(h.show(id.trim())["created_by"], "cy", "--home and TICKETS_HOME name the same node");
}

#[test]
fn every_command_on_a_missing_home_hints_at_init() {
    let h = Home::empty();
    let import = h.file("one.json", r#"[{"subject":"a","priority":"low","category":"x"}]"#);
    let import = import.to_str().expect("utf-8 path");
    let id = "0123";
    let commands: Vec<Vec<&str>> = vec![
        vec!["list"],
        vec!["list", "--json"],
        vec!["show", id],
        vec!["show", id, "--json"],
        vec!["create", "--subject", "s", "--priority", "low", "--category", "x"],
        vec!["edit", id, "--subject", "s"],
        vec!["assign", id, "bo"],
        vec!["status", id, "closed"],
        vec!["status"],
        vec!["comment", id, "hello"],
        vec!["note", id, "psst"],
        vec!["import", import],
    ];
    for args in commands {
        let out = h.run(&args).fails();
        // With --json the error and its hint are a JSON object on stdout.
        let said = if args.contains(&"--json") {
            assert_eq!(out.json()["code"], "not_initialized", "{}", out.stdout);
            out.json()["hint"].as_str().unwrap_or_default().to_string()
        } else {
            assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
            out.stderr.clone()
        };
        assert!(said.contains("tickets init"), "`{}` should hint at `tickets init`:\n{said}", args.join(" "));
    }
    assert!(!h.path().exists(), "no command but init creates the home");
}

#[test]
fn without_home_flag_the_node_lives_in_dot_tickets() {
    let h = Home::empty();
    let fake_home = h.path();
    std::fs::create_dir_all(&fake_home).expect("a fake HOME");
    let run = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::new(crate::support::tickets_bin());
        cmd.args(args).env("HOME", &fake_home).env("NO_COLOR", "1");
        cmd.env_remove("TICKETS_HOME").env_remove("TICKETS_CLOCK_OFFSET");
        cmd.output().expect("run tickets")
    };
    let out = run(&["init", "--agent", "dee"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fake_home.join(".tickets").join("node.db").is_file(), "the default home is ~/.tickets");
    let out = run(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(st["agent"], "dee");
}
