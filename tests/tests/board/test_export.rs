//! `tickets export` through the real binary (SPEC §4): csv, json and
//! ndjson, read back with real parsers (the `csv` crate, serde_json and
//! Python's `csv` module); `--from/--to` (inclusive dates), repeatable
//! `--status` and `--category`; hostile text; who may export and what
//! internal notes an export carries; a download cut mid-way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{entries, id_of, ids, Device, Proxy, Relay, Rule};
use crate::support::{assert_mentions, record, stable};

/// Text that a spreadsheet would run as a formula, with every CSV special.
const HOSTILE_SUBJECT: &str = "=HYPERLINK(\"http://evil.example/?a=1,2\",\"click\")";
const HOSTILE_DESCRIPTION: &str = "Line one, with \"quotes\"\nLine two; ünïcødé 🎫 中文 עברית\n=1+1";
const HOSTILE_COMMENT: &str = "+33 6 12 34 56 78, \"call back\"\nafter 5pm";
const UNICODE_COMMENT: &str = "@here ünïcødé — 🎫, done";
const MINUS_SUBJECT: &str = "-5 degrees, \"cold\" room ❄";
const HOSTILE_NOTE: &str = "-internal: \"VIP\", do not share\nsecond line";
const PLAIN_SUBJECT: &str = "Plain subject, with comma";

/// A CSV cell as the export must write it: text a spreadsheet would run
/// as a formula gets a leading apostrophe.
fn neutralized(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// A relay holding tickets created on three days, hostile text, comments,
/// an internal note and a concurrent edit between two nodes.
pub struct World {
    pub relay: Relay,
    pub lead_token: String,
    pub agent_token: String,
    pub ana: Device,
    pub lea: Device,
    /// Created 48 h ago (one of them resolved then), and 24 h ago.
    pub old: Vec<String>,
    pub yesterday: String,
    /// Hostile subject, description, comments and an internal note.
    pub hostile: String,
    pub minus: String,
    pub plain: String,
    /// Concurrently edited on two nodes: one edit superseded, one ignored.
    pub conflict: String,
}

impl World {
    pub fn build() -> World {
        let relay = Relay::start();
        let lead_token = relay.agent("lea", "lead");
        let agent_token = relay.agent("ana", "agent");
        let bob_token = relay.agent("bob", "agent");
        for c in ["hardware", "billing", "network"] {
            relay.category(c);
        }
        relay.sla("urgent", "30m", "4h");
        relay.sla("high", "1h", "8h");
        relay.sla("medium", "4h", "1d");

        // A device that worked offline two days ago and yesterday, and
        // syncs now with a right clock: the relay keeps the old times.
        let mut bob = Device::register_with_offset(&relay.url, &bob_token, Some("-48h"));
        let old1 = bob.create("Old printer", "high", "hardware");
        let old2 = bob.create("Old refund", "medium", "billing");
        bob.run(&["status", &old2, "resolved"]).ok();
        bob.offset = Some("-24h".into());
        let yesterday = bob.create("Yesterday's router", "low", "network");
        bob.offset = None;
        bob.sync();

        let ana = Device::register(&relay.url, &agent_token);
        let lea = Device::register(&relay.url, &lead_token);
        let hostile = ana.create_with(&[
            "--subject",
            HOSTILE_SUBJECT,
            "--priority",
            "urgent",
            "--category",
            "hardware",
            "--description",
            HOSTILE_DESCRIPTION,
        ]);
        ana.run(&["comment", &hostile, HOSTILE_COMMENT]).ok();
        ana.run(&["comment", &hostile, UNICODE_COMMENT]).ok();
        // A value starting with '-' goes after '=' (or '--'), as clap expects.
        let minus_arg = format!("--subject={MINUS_SUBJECT}");
        let minus = ana.create_with(&[&minus_arg, "--priority", "medium", "--category", "billing"]);
        ana.run(&["status", &minus, "resolved"]).ok();
        let plain = ana.create(PLAIN_SUBJECT, "low", "network");
        ana.run(&["status", &plain, "in-progress"]).ok();
        let conflict = ana.create("Concurrent edits", "high", "hardware");
        ana.sync();
        lea.sync();
        lea.run(&["note", &hostile, "--", HOSTILE_NOTE]).ok();
        lea.run(&["comment", &plain, "Lead's reply"]).ok();
        // Offline on both nodes: ana closes, then lea (later, not having
        // seen it) reopens to in-progress; both change the priority.
        ana.run(&["edit", &conflict, "--priority", "urgent"]).ok();
        ana.run(&["status", &conflict, "closed"]).ok();
        lea.run(&["edit", &conflict, "--priority", "low"]).ok();
        lea.run(&["status", &conflict, "in-progress"]).ok();
        ana.sync();
        lea.sync();
        ana.sync();
        World {
            relay,
            lead_token,
            agent_token,
            ana,
            lea,
            old: vec![old1, old2],
            yesterday,
            hostile,
            minus,
            plain,
            conflict,
        }
    }

    /// Every ticket on the relay, as a lead sees it.
    pub fn truth(&self) -> BTreeMap<String, Value> {
        self.relay.tickets_by_id(&self.lead_token)
    }
}

/// The UTC date of a ticket's `created_at`.
fn day(t: &Value) -> String {
    t["created_at"].as_str().expect("created_at")[..10].to_string()
}

/// `tickets export --format F ARGS -o PATH --json` on a device; returns the
/// count it reports.
fn export(d: &Device, format: &str, path: &Path, args: &[&str]) -> u64 {
    let p = path.to_str().expect("a UTF-8 path");
    let mut all = vec!["export", "--format", format, "-o", p, "--json"];
    all.extend_from_slice(args);
    let out = d.run(&all).json();
    out["tickets"].as_u64().unwrap_or_else(|| panic!("export --json printed {out}"))
}

/// A JSON export's array.
fn read_json(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Array(v)) => v,
        other => panic!("{} is not a JSON array: {other:?}", path.display()),
    }
}

/// An NDJSON export: one object per line.
fn read_ndjson(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1));
            assert!(v.is_object(), "line {} is not an object", i + 1);
            v
        })
        .collect()
}

/// A CSV file read with the `csv` crate: its header and rows. Also checks
/// the bytes: UTF-8 without a byte-order mark, CRLF line ends (RFC 4180),
/// and every row as wide as the header.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()));
    assert!(!text.starts_with('\u{feff}'), "{} starts with a byte-order mark", path.display());
    let first = text.split_inclusive('\n').next().unwrap_or_default();
    assert!(first.ends_with("\r\n"), "{}: the header line does not end in CRLF: {first:?}", path.display());
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().expect("a CSV header").iter().map(str::to_string).collect();
    let rows: Vec<Vec<String>> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(rec.len(), header.len(), "{}: a row as wide as the header", path.display());
            rec.iter().map(str::to_string).collect()
        })
        .collect();
    (header, rows)
}

/// Rows of a CSV file as maps from column to cell.
fn csv_maps(path: &Path) -> Vec<BTreeMap<String, String>> {
    let (header, rows) = read_csv(path);
    rows.into_iter().map(|r| header.iter().cloned().zip(r).collect()).collect()
}

const PYTHON_CSV: &str = r#"
import csv, json, os, sys
d = sys.argv[1]
def read(name):
    with open(os.path.join(d, name), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]
th, tr = read("tickets.csv")
ch, cr = read("comments.csv")
kind, body, subject = ch.index("kind"), ch.index("body"), th.index("subject")
print(json.dumps({
    "header": th,
    "tickets": len(tr),
    "comments": sum(1 for r in cr if r[kind] == "comment"),
    "notes": sum(1 for r in cr if r[kind] == "internal_note"),
    "other_kinds": sum(1 for r in cr if r[kind] not in ("comment", "internal_note")),
    "widths": sorted(set(len(r) for r in tr)),
    "subjects": sorted(r[subject] for r in tr),
    "bodies": sorted(r[body] for r in cr),
}))
"#;

/// Python's `csv` module's reading of a CSV export folder.
pub fn python_csv_counts(dir: &Path) -> Value {
    let out = Command::new("python3").arg("-c").arg(PYTHON_CSV).arg(dir).output().unwrap_or_else(|e| {
        panic!("python3 is needed to read the CSV export with Python's csv module ({e}); install python3")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}

#[test]
fn json_and_ndjson_exports_carry_every_ticket_and_filter_by_inclusive_dates_status_and_category() {
    let w = World::build();
    let truth = w.truth();
    assert_eq!(truth.len(), 7);
    let dir = w.lea.path_next_to_home("exports");
    std::fs::create_dir_all(&dir).expect("a folder for exports");

    // Everything: the same objects as the board, plus the lead's notes.
    let all_json = dir.join("all.json");
    assert_eq!(export(&w.lea, "json", &all_json, &[]), 7);
    let all = read_json(&all_json);
    let exported: BTreeMap<String, Value> = all.iter().map(|t| (id_of(t), t.clone())).collect();
    assert_eq!(exported.keys().collect::<Vec<_>>(), truth.keys().collect::<Vec<_>>(), "ids");
    for (id, t) in &exported {
        assert_eq!(stable(t), stable(&truth[id]), "the exported object is the relay's object");
        for k in ["history", "comments", "internal_notes"] {
            assert!(t[k].is_array(), "{k} in {t}");
        }
        for m in ["first_response", "resolution"] {
            for f in ["state", "target_secs", "due_at", "breached_at", "stopped_at"] {
                assert!(t["sla"][m].get(f).is_some(), "sla.{m}.{f} in {t}");
            }
        }
    }
    let h = &exported[&w.hostile];
    assert_eq!(h["subject"], HOSTILE_SUBJECT, "JSON keeps text as typed");
    assert_eq!(h["description"], HOSTILE_DESCRIPTION);
    assert_eq!(h["comments"][0]["body"], HOSTILE_COMMENT);
    assert_eq!(h["comments"][1]["body"], UNICODE_COMMENT);
    assert_eq!(h["internal_notes"][0]["body"], HOSTILE_NOTE, "a lead's export has internal notes");
    assert_eq!(h["sla"]["first_response"]["state"], "met", "ana answered at once: {}", h["sla"]);
    assert_eq!(h["sla"]["first_response"]["target_secs"], 1800);
    assert_eq!(exported[&w.old[0]]["sla"]["first_response"]["state"], "red", "unanswered for 48 h of a 1 h target");
    assert!(exported[&w.old[0]]["sla"]["first_response"]["breached_at"].is_string());

    let ndjson_all = dir.join("all.ndjson");
    assert_eq!(export(&w.lea, "ndjson", &ndjson_all, &[]), 7);
    let lines = read_ndjson(&ndjson_all);
    assert_eq!(lines.len(), 7, "one line per ticket");
    for t in &lines {
        assert_eq!(stable(t), stable(&exported[&id_of(t)]), "ndjson objects are the json objects");
    }

    // Three distinct days: two days ago, yesterday, today.
    let (d_old, d_yesterday, d_today) = (day(&truth[&w.old[0]]), day(&truth[&w.yesterday]), day(&truth[&w.hostile]));
    assert_eq!(day(&truth[&w.old[1]]), d_old);
    assert!(d_old < d_yesterday && d_yesterday < d_today, "{d_old} < {d_yesterday} < {d_today}");

    let expect = |keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        truth.values().filter(|t| keep(t)).map(id_of).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (vec!["--from", d_old.as_str(), "--to", d_old.as_str()], expect(&|t| day(t) == d_old)),
        (vec!["--from", d_yesterday.as_str(), "--to", d_yesterday.as_str()], vec![w.yesterday.clone()]),
        (vec!["--from", d_yesterday.as_str()], expect(&|t| day(t) >= d_yesterday)),
        (vec!["--to", d_yesterday.as_str()], expect(&|t| day(t) <= d_yesterday)),
        (vec!["--from", d_old.as_str(), "--to", d_today.as_str()], truth.keys().cloned().collect()),
        (vec!["--from", "2000-01-01", "--to", "2000-12-31"], vec![]),
        (
            vec!["--status", "open", "--status", "resolved"],
            expect(&|t| t["status"] == "open" || t["status"] == "resolved"),
        ),
        (vec!["--status", "closed"], vec![w.conflict.clone()]),
        (vec!["--category", "billing", "--category", "network"], expect(&|t| t["category"] != "hardware")),
        (
            vec!["--status", "open", "--category", "hardware", "--from", d_today.as_str()],
            expect(&|t| t["status"] == "open" && t["category"] == "hardware" && day(t) == d_today),
        ),
    ];
    assert_eq!(cases[0].1.len(), 2, "both tickets of two days ago");
    assert_eq!(cases[6].1.len(), 5, "open: old printer, yesterday, hostile; resolved: old refund, minus");
    for (i, (args, want)) in cases.iter().enumerate() {
        let (format, path) = if i % 2 == 0 {
            ("json", dir.join(format!("{i}.json")))
        } else {
            ("ndjson", dir.join(format!("{i}.ndjson")))
        };
        let n = export(&w.lea, format, &path, args);
        let got = if format == "json" { read_json(&path) } else { read_ndjson(&path) };
        let got_ids = ids(&Value::Array(got));
        assert_eq!(&got_ids, want, "export {format} {args:?}");
        assert_eq!(n as usize, want.len(), "the count export reports for {args:?}");
    }

    // A range that ends before it starts is refused, and leaves no file.
    let bad = dir.join("bad.json");
    let out = w
        .lea
        .run(&[
            "export",
            "--format",
            "json",
            "--from",
            d_today.as_str(),
            "--to",
            d_old.as_str(),
            "-o",
            bad.to_str().expect("utf-8"),
        ])
        .fails();
    assert_mentions(&out, "from");
    assert!(!bad.exists());
    let out =
        w.lea.run(&["export", "--format", "json", "--from", "yesterday", "-o", bad.to_str().expect("utf-8")]).fails();
    assert_mentions(&out, "YYYY-MM-DD");
    assert!(!bad.exists());
    let out =
        w.lea.run(&["export", "--format", "json", "--status", "bogus", "-o", bad.to_str().expect("utf-8")]).fails();
    assert_mentions(&out, "bogus");
    assert!(!bad.exists());
    assert!(!entries(&dir).iter().any(|e| e.starts_with('.')), "no partial file left: {:?}", entries(&dir));
}

#[test]
fn csv_export_round_trips_hostile_text_and_keeps_superseded_and_ignored_history() {
    let w = World::build();
    let base = w.lea.path_next_to_home("exports");
    std::fs::create_dir_all(&base).expect("a folder for exports");
    let json_path = base.join("all.json");
    export(&w.lea, "json", &json_path, &[]);
    let json: BTreeMap<String, Value> = read_json(&json_path).into_iter().map(|t| (id_of(&t), t)).collect();
    let dir = base.join("csv");
    assert_eq!(export(&w.lea, "csv", &dir, &[]), 7);
    assert_eq!(entries(&dir), ["comments.csv", "history.csv", "tickets.csv"]);
    assert_eq!(entries(&base), ["all.json", "csv"], "no partial folder left next to the export");

    // tickets.csv: one row per ticket, scalar fields and SLA columns.
    let tickets = csv_maps(&dir.join("tickets.csv"));
    assert_eq!(tickets.len(), 7, "one row per ticket");
    for col in [
        "sla_color",
        "first_response_state",
        "first_response_target_secs",
        "first_response_due_at",
        "first_response_breached_at",
        "resolution_state",
        "resolution_target_secs",
        "resolution_due_at",
        "resolution_breached_at",
    ] {
        assert!(tickets[0].contains_key(col), "tickets.csv has {col}: {:?}", tickets[0].keys());
    }
    for row in &tickets {
        let t = &json[&row["id"]];
        let text = |v: &Value| {
            v.as_str().map(neutralized).unwrap_or_else(|| if v.is_null() { String::new() } else { v.to_string() })
        };
        for col in ["subject", "description", "priority", "category", "status", "created_at", "created_by"] {
            assert_eq!(row[col], text(&t[col]), "tickets.csv {col} of {}", row["id"]);
        }
        assert_eq!(row["assignee"], text(&t["assignee"]));
        assert_eq!(row["comments"], t["comments"].as_array().map_or(0, Vec::len).to_string());
        for m in ["first_response", "resolution"] {
            for f in ["state", "target_secs", "due_at", "breached_at"] {
                assert_eq!(row[&format!("{m}_{f}")], text(&t["sla"][m][f]), "{m}_{f} of {}", row["id"]);
            }
        }
        assert_eq!(row["sla_color"], text(&t["sla"]["color"]));
        chrono::DateTime::parse_from_rfc3339(&row["created_at"]).expect("ISO-8601 created_at");
        assert!(row["created_at"].ends_with('Z'), "UTC: {}", row["created_at"]);
    }
    let by_id: BTreeMap<&str, &BTreeMap<String, String>> = tickets.iter().map(|r| (r["id"].as_str(), r)).collect();
    let hostile = by_id[w.hostile.as_str()];
    assert_eq!(hostile["subject"], format!("'{HOSTILE_SUBJECT}"), "a formula is neutralized, the text kept");
    assert_eq!(hostile["description"], HOSTILE_DESCRIPTION, "commas, quotes, newlines and unicode round-trip");
    assert_eq!(by_id[w.minus.as_str()]["subject"], format!("'{MINUS_SUBJECT}"));
    assert_eq!(by_id[w.plain.as_str()]["subject"], PLAIN_SUBJECT);
    assert_eq!(by_id[w.old[0].as_str()]["first_response_state"], "red");
    assert_eq!(by_id[w.old[1].as_str()]["resolution_state"], "met", "resolved 48 h ago within a day");
    assert!(!by_id[w.old[1].as_str()]["resolved_at"].is_empty(), "resolved_at of a resolved ticket");

    // comments.csv: comments and internal notes, told apart.
    let comments = csv_maps(&dir.join("comments.csv"));
    let count = |key: &str| json.values().map(|t| t[key].as_array().map_or(0, Vec::len)).sum::<usize>();
    assert_eq!(comments.len(), count("comments") + count("internal_notes"));
    assert!(comments.iter().all(|c| c["kind"] == "comment" || c["kind"] == "internal_note"), "{comments:?}");
    let of_hostile: Vec<(&str, &str, &str)> = comments
        .iter()
        .filter(|c| c["ticket_id"] == w.hostile)
        .map(|c| (c["kind"].as_str(), c["author"].as_str(), c["body"].as_str()))
        .collect();
    let (c1, c2, n1) = (neutralized(HOSTILE_COMMENT), neutralized(UNICODE_COMMENT), neutralized(HOSTILE_NOTE));
    assert_eq!(
        of_hostile,
        [("comment", "ana", c1.as_str()), ("comment", "ana", c2.as_str()), ("internal_note", "lea", n1.as_str())]
    );
    for c in &comments {
        chrono::DateTime::parse_from_rfc3339(&c["at"]).expect("ISO-8601 comment time");
    }

    // history.csv: every entry, with the concurrent edits' outcomes.
    let history = csv_maps(&dir.join("history.csv"));
    assert_eq!(history.len(), json.values().map(|t| t["history"].as_array().map_or(0, Vec::len)).sum::<usize>());
    let c = &json[&w.conflict];
    assert_eq!((c["status"].as_str(), c["priority"].as_str()), (Some("closed"), Some("low")), "{c}");
    let outcome = |field: &str, to: &str| {
        c["history"]
            .as_array()
            .expect("history")
            .iter()
            .find(|h| h["field"] == field && h["to"] == to)
            .map(|h| h["outcome"].clone())
    };
    assert_eq!(outcome("priority", "urgent"), Some("superseded".into()), "{}", c["history"]);
    assert_eq!(outcome("status", "in-progress"), Some("ignored".into()), "{}", c["history"]);
    let rows: Vec<(&str, &str, &str, &str)> = history
        .iter()
        .filter(|h| h["ticket_id"] == w.conflict && (h["field"] == "priority" || h["field"] == "status"))
        .map(|h| (h["field"].as_str(), h["by"].as_str(), h["to"].as_str(), h["note"].as_str()))
        .collect();
    assert!(
        rows.iter()
            .any(|(f, by, to, note)| (*f, *by, *to) == ("priority", "ana", "urgent") && note.starts_with("superseded")),
        "a superseded row in history.csv: {rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(f, by, to, note)| (*f, *by, *to) == ("status", "lea", "in-progress") && note.starts_with("ignored")),
        "an ignored row in history.csv: {rows:?}"
    );
    assert!(
        rows.iter().any(|(f, by, to, note)| (*f, *by, *to) == ("status", "ana", "closed") && note.is_empty()),
        "the applied close in history.csv: {rows:?}"
    );

    // Python's csv module reads the same tables.
    let py = python_csv_counts(&dir);
    assert_eq!(py["header"].as_array().map(Vec::len), Some(by_id[w.hostile.as_str()].len()), "{}", py["header"]);
    assert_eq!(py["header"][0], "id", "no byte-order mark before the first column");
    assert_eq!(py["tickets"], 7);
    assert_eq!(py["comments"].as_u64(), Some(count("comments") as u64));
    assert_eq!(py["notes"].as_u64(), Some(count("internal_notes") as u64));
    assert_eq!(py["other_kinds"], 0);
    assert_eq!(py["widths"].as_array().map(Vec::len), Some(1), "every row as wide: {}", py["widths"]);
    let mut subjects: Vec<String> = tickets.iter().map(|r| r["subject"].clone()).collect();
    subjects.sort();
    assert_eq!(py["subjects"], serde_json::json!(subjects), "Python reads the subjects the csv crate reads");
    let mut bodies: Vec<String> = comments.iter().map(|r| r["body"].clone()).collect();
    bodies.sort();
    assert_eq!(py["bodies"], serde_json::json!(bodies), "Python reads the bodies the csv crate reads");
}

#[test]
fn only_leads_export_and_internal_notes_stay_with_permitted_readers() {
    let w = World::build();
    let place = w.ana.path_next_to_home("out");
    std::fs::create_dir_all(&place).expect("a folder");
    for (format, name) in [("json", "x.json"), ("ndjson", "x.ndjson"), ("csv", "x-csv")] {
        let path = place.join(name);
        let out = w.ana.run(&["export", "--format", format, "-o", path.to_str().expect("utf-8")]).fails();
        assert_mentions(&out, "lead");
        assert!(!path.exists(), "a refused {format} export left {}", path.display());
        assert_eq!(entries(&place), Vec::<String>::new(), "a refused {format} export left files behind");
    }

    // The agent-level API view of the ticket has no internal notes...
    let (status, agent_view) = w.relay.get(&w.agent_token, &format!("/v1/tickets/{}", w.hostile));
    assert_eq!(status, 200, "{agent_view}");
    assert!(agent_view.get("internal_notes").is_none(), "{agent_view}");
    assert!(!agent_view.to_string().contains("do not share"), "the note's text reached an agent: {agent_view}");
    let (_, agent_board) = w.relay.get_text(&w.agent_token, "/v1/tickets");
    assert!(!agent_board.contains("do not share"), "the note's text is on an agent's board");
    let node = w.ana.show(&w.hostile);
    assert!(node.get("internal_notes").is_none(), "an agent's node has no notes: {node}");
    // ...while the lead's export of that same ticket has them.
    let path = w.lea.path_next_to_home("hostile.ndjson");
    export(&w.lea, "ndjson", &path, &["--category", "hardware", "--status", "open"]);
    let t = read_ndjson(&path).into_iter().find(|t| id_of(t) == w.hostile).expect("the hostile ticket is exported");
    assert_eq!(t["internal_notes"][0]["body"], HOSTILE_NOTE, "{t}");
    assert_eq!(stable(&t)["comments"], stable(&agent_view)["comments"], "the same comments for both");
}

#[test]
fn an_export_cut_mid_way_leaves_no_file_at_the_output_path() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let agent_token = relay.agent("ana", "agent");
    relay.category("hardware");
    relay.sla("high", "1h", "8h");
    let ana = Device::register(&relay.url, &agent_token);
    let long = "x".repeat(400);
    let records: Vec<Value> = (0..300)
        .map(|i| {
            let mut r = record(&format!("Bulk ticket {i}"), "high", "hardware");
            r["description"] = Value::from(format!("{long} {i}"));
            r
        })
        .collect();
    assert_eq!(ana.home.import_ndjson(&records), 300);
    ana.sync();

    // The lead's device talks to the relay through a proxy that closes the
    // connection 8 KiB into any export response.
    let proxy = Proxy::start(&relay.url, Rule::CutExports { after: 8 * 1024 });
    let lea = Device::register(&proxy.url, &lead_token);
    let place = lea.path_next_to_home("out");
    std::fs::create_dir_all(&place).expect("a folder");
    for (format, name) in [("json", "cut.json"), ("ndjson", "cut.ndjson"), ("csv", "cut-csv")] {
        let path = place.join(name);
        let cuts = proxy.cuts.load(std::sync::atomic::Ordering::SeqCst);
        let out = lea.run(&["export", "--format", format, "-o", path.to_str().expect("utf-8")]).fails();
        assert!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst) > cuts, "the proxy cut the {format} download");
        assert!(!path.exists(), "a cut {format} export left {}", path.display());
        assert_eq!(entries(&place), Vec::<String>::new(), "a cut {format} export left files behind");
        assert!(out.stderr.contains("export"), "the error says the export was cut: {}", out.stderr);
    }

    // The same exports straight from the relay are whole.
    let direct = Device::register(&relay.url, &lead_token);
    let path = place.join("whole.ndjson");
    assert_eq!(export(&direct, "ndjson", &path, &[]), 300);
    assert_eq!(read_ndjson(&path).len(), 300);
    let dir = place.join("whole-csv");
    assert_eq!(export(&direct, "csv", &dir, &[]), 300);
    assert_eq!(read_csv(&dir.join("tickets.csv")).1.len(), 300);
}

/// A CSV export is three downloads (`table=tickets`, `comments`,
/// `history`), each read by the relay at its own moment: a sync that lands
/// between them gives a `comments.csv` with rows for a ticket that
/// `tickets.csv` of the same export does not have.
#[test]

fn the_three_files_of_a_csv_export_are_one_snapshot() {
    let relay = Relay::start();
    let lead_token = relay.agent("lea", "lead");
    let agent_token = relay.agent("ana", "agent");
    relay.category("hardware");
    let ana = Device::register(&relay.url, &agent_token);
    let first = ana.create("Before the export", "high", "hardware");
    ana.run(&["comment", &first, "Seen"]).ok();
    ana.sync();

    // The lead's export goes through a proxy that holds the comments table's
    // request until a new ticket has synced.
    let proxy = Proxy::start(&relay.url, Rule::Hold { request_contains: "table=comments".into() });
    let lea = Device::register(&proxy.url, &lead_token);
    let dir = lea.path_next_to_home("snapshot");
    let export = lea.run(&["export", "--format", "csv", "-o", dir.to_str().expect("utf-8")]);
    let running = std::thread::spawn(move || export.out());
    // (An export made of one request never holds: then there is no race.)
    crate::harness::wait_for("the comments request to be held", std::time::Duration::from_secs(20), || {
        if proxy.held.load(std::sync::atomic::Ordering::SeqCst) > 0 || running.is_finished() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    let second = ana.create("During the export", "high", "hardware");
    ana.run(&["comment", &second, "Arrived meanwhile"]).ok();
    ana.sync();
    proxy.release();
    let out = running.join().expect("the export thread");
    assert_eq!(out.code, 0, "{out:?}");

    let tickets: BTreeSet<String> = read_csv(&dir.join("tickets.csv")).1.into_iter().map(|r| r[0].clone()).collect();
    let (_, comments) = read_csv(&dir.join("comments.csv"));
    let (_, history) = read_csv(&dir.join("history.csv"));
    for (file, rows) in [("comments.csv", &comments), ("history.csv", &history)] {
        let strays: BTreeSet<&String> = rows.iter().map(|r| &r[0]).filter(|id| !tickets.contains(*id)).collect();
        assert!(
            strays.is_empty(),
            "{file} has rows for tickets not in tickets.csv: {strays:?} (tickets.csv: {tickets:?})"
        );
    }
}
