//! Bugs found by this suite, each pinned by a test that failed before its fix.
//! were ignored until fixed; they now guard against the bugs coming back. Run
//! them with the rest of the suite.

use serde_json::json;

use crate::support::{assert_mentions, ms, now_ms, record, Home};

#[test]
fn ndjson_errors_name_the_real_line_after_leading_blank_lines() {
    let h = Home::new();
    let text =
        format!("\n\n{}\n{}\n", record("a", "low", "x"), json!({"subject": "b", "priority": "bad", "category": "x"}));
    let path = h.file("lead.ndjson", &text);
    let out = h.run(&["import", path.to_str().expect("utf-8 path")]).fails();
    // The bad record is on line 4 of the file.
    assert_mentions(&out, "record 4");
}

#[test]
fn an_absurd_clock_offset_is_refused_and_does_not_poison_the_node() {
    let h = Home::new();
    let id = h.create("before", "low", "x");
    // A typo'd offset (~274 000 years) is past any time the node can print.
    let out = h.run(&["comment", &id, "typo"]).env("TICKETS_CLOCK_OFFSET", "+100000000d").out();
    assert_eq!(out.code, 1, "an offset beyond representable time is refused: {out:?}");
    assert_mentions(&out, "TICKETS_CLOCK_OFFSET");
    // Whatever happened above, a later command without an offset stamps now.
    let later = h.create("after", "low", "x");
    let shift = ms(&h.show(&later)["created_at"]) - now_ms();
    assert!(shift.abs() < 60_000, "created_at of a ticket made without an offset is now, off by {shift} ms");
}

#[test]
fn a_zero_clock_offset_is_accepted() {
    let h = Home::new();
    for zero in ["+0s", "0", "-0m"] {
        h.run(&["list"]).env("TICKETS_CLOCK_OFFSET", zero).ok();
    }
}

#[test]
fn a_zero_limit_table_does_not_claim_nothing_matches() {
    let h = Home::new();
    h.create("a", "low", "x");
    h.create("b", "low", "x");
    // A limit of zero is refused with a clear error rather than an empty
    // table that claims nothing matches.
    let out = h.run(&["list", "--limit", "0"]).out();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.stdout.contains("no tickets match"), "2 tickets match, none shown:\n{}", out.stdout);
    assert!(out.stderr.contains("--limit"), "{}", out.stderr);
}

#[test]
fn a_database_of_the_previous_schema_gets_a_clear_error_or_is_migrated() {
    let h = Home::new();
    let id = h.create("made by an older tickets", "low", "x");
    // Mark the file as made by an older schema (version 1, before the index
    // split into narrow rows and views).
    let conn = rusqlite::Connection::open(h.db()).expect("open node.db");
    conn.execute_batch("PRAGMA user_version = 1;").expect("rewind the schema");
    drop(conn);
    for args in [vec!["list"], vec!["show", &id], vec!["comment", &id, "hi"]] {
        let out = h.run(&args).out();
        if out.code != 0 {
            assert!(
                !out.stderr.contains("no such column") && !out.stderr.contains("has no column"),
                "`{}` leaks a raw SQL error instead of naming the schema version:\n{}",
                args.join(" "),
                out.stderr
            );
            assert_mentions(&out, "schema");
        }
    }
}

#[test]
fn text_that_starts_with_a_hyphen_is_text_not_a_flag() {
    let h = Home::new();
    let id = h
        .run(&["create", "--subject", "-5 degrees in the server room", "--priority", "high", "--category", "x"])
        .ok()
        .trim()
        .to_string();
    h.run(&["comment", &id, "-- still cold"]).ok();
    h.run(&["edit", &id, "--description", "- the AC is off"]).ok();
    let t = h.show(&id);
    assert_eq!(t["subject"], "-5 degrees in the server room");
    assert_eq!(t["description"], "- the AC is off");
    assert_eq!(t["comments"][0]["body"], "-- still cold");
    let found = h.run(&["list", "--search", "-5 degrees", "--json"]).ok();
    assert!(found.contains(&id), "{found}");
}
