//! Usage errors, bad values and a damaged database: refused with a clear
//! message, never a panic (the helper checks every run for one).

use crate::support::{assert_mentions, Home};

#[test]
fn usage_errors_exit_2() {
    let h = Home::new();
    for args in [
        vec!["frobnicate"],
        vec!["list", "--colour"],
        vec!["create", "--subject"],
        vec!["show"],
        vec!["comment", "abc"],
        vec!["list", "--limit", "ten"],
        vec!["list", "--limit", "-1"],
    ] {
        h.run(&args).usage_error();
    }
}

#[test]
fn help_and_version_succeed() {
    let h = Home::empty();
    let out = h.run(&["--help"]).ok();
    for cmd in ["init", "create", "list", "show", "edit", "assign", "status", "comment", "note", "import"] {
        assert!(out.contains(cmd), "--help lists {cmd}");
    }
    assert!(h.run(&["--version"]).ok().starts_with("tickets "));
    assert!(h.run(&["create", "--help"]).ok().contains("--conversation"));
}

#[test]
fn unknown_values_are_user_errors() {
    let h = Home::new();
    let id = h.create("a", "low", "x");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["list", "--status", "pending"], "pending"),
        (vec!["list", "--priority", "p1"], "p1"),
        (vec!["list", "--sort", "colour"], "colour"),
        (vec!["list", "--sla", "purple"], "purple"),
        (vec!["edit", &id, "--priority", "p1"], "p1"),
        (vec!["status", &id, "pending"], "pending"),
        (vec!["comment", &id, ""], "comment"),
        (vec!["note", &id, ""], "note"),
    ];
    for (args, what) in cases {
        let out = h.run(&args).fails();
        assert_mentions(&out, what);
    }
    let huge = "c".repeat(64 * 1024 + 1);
    assert_mentions(&h.run(&["comment", &id, &huge]).fails(), "over the limit");
    assert_eq!(h.show(&id)["comments"], serde_json::json!([]));
}

/// Every command a user may run on a damaged node.
fn every_command(h: &Home) -> Vec<Vec<String>> {
    let import = h.file("one.json", r#"[{"subject":"a","priority":"low","category":"x"}]"#);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&["list"]),
        s(&["list", "--json", "--status", "open", "--sort", "-priority"]),
        s(&["show", "0"]),
        s(&["create", "--subject", "s", "--priority", "low", "--category", "x"]),
        s(&["status"]),
        s(&["status", "0", "closed"]),
        s(&["comment", "0", "hi"]),
        vec!["import".into(), import.display().to_string()],
    ]
}

#[track_caller]
fn assert_refused_as_damaged(h: &Home) {
    for args in every_command(h) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = h.run(&args).out();
        assert_ne!(out.code, 0, "`{}` on a damaged database succeeded", args.join(" "));
        // With --json the error is a JSON object on stdout (checked by `out`).
        let said = if args.contains(&"--json") { &out.stdout } else { &out.stderr };
        if !args.contains(&"--json") {
            assert!(out.stdout.is_empty(), "{out:?}");
        }
        assert!(said.contains("node.db"), "the message names the database: {said}");
    }
}

#[test]
fn a_database_overwritten_with_garbage_is_refused() {
    let h = Home::new();
    h.create("a", "low", "x");
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(h.db(), garbage).expect("overwrite");
    let _ = std::fs::remove_file(h.path().join("node.db-wal"));
    let _ = std::fs::remove_file(h.path().join("node.db-shm"));
    assert_refused_as_damaged(&h);
    assert_mentions(&h.run(&["list"]).fails(), "damaged");
}

#[test]
fn an_empty_or_truncated_database_is_refused() {
    let h = Home::new();
    for i in 0..40 {
        h.create(&format!("ticket {i} {}", "x".repeat(200)), "low", "x");
    }
    let bytes = std::fs::read(h.db()).expect("read db");
    assert!(bytes.len() > 8192, "a database of several pages");
    std::fs::write(h.db(), &bytes[..bytes.len() / 2]).expect("truncate");
    for args in [vec!["list", "--json"], vec!["create", "--subject", "s", "--priority", "low", "--category", "x"]] {
        let out = h.run(&args).out();
        assert_ne!(out.code, 0, "`{}` on a truncated database", args.join(" "));
    }
    std::fs::write(h.db(), b"").expect("empty");
    assert_refused_as_damaged(&h);
}

#[test]
fn a_home_that_is_a_file_is_refused() {
    let h = Home::empty();
    std::fs::write(h.path(), "not a folder").expect("write");
    h.run(&["init", "--agent", "ana"]).fails();
    h.run(&["list"]).fails();
}
