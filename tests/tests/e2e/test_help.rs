//! What `--help` and a bad import tell a new user (issue #14): every flag
//! described, required flags shown as required, the conversation and import
//! formats with an example, and every bad import record named.

use serde_json::json;

use crate::support::{assert_mentions, record, Home};

/// Every command a user can ask `--help` of.
const COMMANDS: &[&[&str]] = &[
    &["init"],
    &["create"],
    &["list"],
    &["show"],
    &["edit"],
    &["assign"],
    &["status"],
    &["comment"],
    &["note"],
    &["import"],
    &["sync"],
    &["board"],
    &["export"],
    &["demo"],
    &["relay", "serve"],
    &["relay", "agent", "add"],
    &["relay", "agent", "list"],
    &["relay", "agent", "revoke"],
    &["relay", "agent", "grant"],
    &["relay", "sla", "set"],
    &["relay", "sla", "warn"],
    &["relay", "sla", "calendar"],
    &["relay", "sla", "show"],
    &["relay", "category", "add"],
    &["relay", "category", "remove"],
    &["relay", "category", "list"],
    &["relay", "backup"],
    &["relay", "restore"],
];

/// The flags and arguments of a `-h` page that have no description.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut missing = Vec::new();
    let mut in_list = false;
    for (i, line) in lines.iter().enumerate() {
        if *line == "Options:" || *line == "Arguments:" {
            in_list = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_list = false;
            continue;
        }
        let item = line.trim_start();
        if !in_list || !(item.starts_with('-') || item.starts_with('<') || item.starts_with('[')) {
            continue;
        }
        // The description follows after two or more spaces, or (when the
        // page is too narrow) on the next line, indented deeper.
        let next_is_text = lines.get(i + 1).is_some_and(|n| !n.trim().is_empty() && indent(n) > indent(line));
        if !item.contains("  ") && !next_is_text {
            missing.push(item.to_string());
        }
    }
    missing
}

#[test]
fn every_flag_of_every_command_has_a_description() {
    let h = Home::empty();
    for cmd in COMMANDS {
        let mut args = cmd.to_vec();
        args.push("-h");
        let help = h.run(&args).ok();
        let missing = undescribed(&help);
        assert!(missing.is_empty(), "`tickets {}` has undescribed flags {missing:?}:\n{help}", cmd.join(" "));
    }
}

#[test]
fn create_shows_its_required_flags_and_the_conversation_format() {
    let h = Home::empty();
    let short = h.run(&["create", "-h"]).ok();
    let usage = short.lines().find(|l| l.starts_with("Usage:")).unwrap_or_default();
    for flag in ["--subject <SUBJECT>", "--priority <PRIORITY>", "--category <CATEGORY>"] {
        assert!(usage.contains(flag) && !usage.contains(&format!("[{flag}]")), "{flag} not required in {usage}");
    }
    let long = h.run(&["create", "--help"]).ok();
    for part in ["\"messages\"", "\"role\": \"customer\"", "\"at\"", "\"channel\"", "\"customer\": {\"name\""] {
        assert!(long.contains(part), "create --help lacks {part}:\n{long}");
    }
    let import = h.run(&["import", "--help"]).ok();
    for part in ["\"subject\"", "\"priority\"", "\"category\"", "\"status\"", "\"assignee\"", "NDJSON"] {
        assert!(import.contains(part), "import --help lacks {part}:\n{import}");
    }
}

#[test]
fn import_names_every_bad_record_up_to_a_limit() {
    let h = Home::new();
    let bad = |i: usize| json!({"subject": format!("b{i}"), "priority": "extreme", "category": "x"}).to_string();
    let mut lines = vec![record("good", "low", "x").to_string()];
    lines.extend((0..3).map(bad));
    lines.push("{not json".to_string());
    let path = h.file("few.ndjson", &lines.join("\n"));
    let out = h.run(&["import", path.to_str().expect("utf-8")]).fails();
    for n in 2..=5 {
        assert_mentions(&out, &format!("record {n}:"));
    }
    assert_mentions(&out, "nothing was imported");

    let many: Vec<String> = (0..27).map(bad).collect();
    let path = h.file("many.ndjson", &many.join("\n"));
    let out = h.run(&["import", path.to_str().expect("utf-8")]).fails();
    assert_mentions(&out, "record 20:");
    assert!(!out.stderr.contains("record 21:"), "{}", out.stderr);
    assert_mentions(&out, "and 7 more");
    let out = h.run(&["import", path.to_str().expect("utf-8"), "--json"]).fails();
    assert_eq!(out.json()["code"], "bad_import");
    assert!(h.list(&[]).is_empty());
}
