//! What no local user, log reader or look-alike name may get (issue #19):
//! escape sequences from people never reach a terminal raw (`--json`
//! stays exact), files holding tokens, tickets or notes are private
//! whatever the umask (and made so again when loosened), no webhook
//! secret or token appears in the relay's log, and a name confusable with
//! an existing one is refused on SQLite and on PostgreSQL.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

use crate::harness::{client, sync, Backend, Relay};
use crate::support::tickets_bin;

/// OSC 52 (write the clipboard), CSI 2J (clear the screen), an OSC 8 link
/// hiding its target, a bell, a C1 CSI and a right-to-left override.
const HOSTILE: &str =
    "pwn\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\\u{9b}31m\u{202e}gpj.exe";

/// Fails if `text` holds any character that steers a terminal.
fn assert_no_steering(what: &str, text: &str) {
    let steering: Vec<char> = text
        .chars()
        .filter(|c| {
            matches!(*c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(steering.is_empty(), "{what} printed raw control characters {steering:?}:\n{text}");
}

/// [`assert_no_steering`], and the escape shows as visible text.
fn assert_harmless(what: &str, text: &str) {
    assert_no_steering(what, text);
    assert!(text.contains("\\u{1b}]52;"), "{what} does not show the escape as text:\n{text}");
}

/// A webhook delivery of the generic kind.
fn post(url: &str, body: &Value) -> u16 {
    let resp = client().post(url).header("content-type", "application/json").body(body.to_string()).send();
    resp.expect("POST the webhook").status().as_u16()
}

#[test]
fn escape_sequences_from_people_never_reach_the_terminal_and_json_stays_exact() {
    let relay = Relay::start_on(Backend::Sqlite);
    // An agent name may hold a bidirectional override (it is no control
    // character to the name check).
    let agent = "ana\u{202e}xx";
    let ana = relay.agent(agent, "lead", &[]);
    let id = ana.run(&["create", "--subject", HOSTILE, "--priority", "high", "--category", "hardware"]).ok();
    let id = id.trim().to_string();
    ana.run(&["comment", &id, HOSTILE]).ok();
    let v = relay.admin(&["inbox", "add", "shop", "--kind", "generic", "--url", &relay.url(), "--json"]).json();
    let webhook = v["url"].as_str().expect("a webhook URL").to_string();
    let delivery = json!({"id": "c1", "channel": "web", "customer": {"name": HOSTILE},
        "messages": [{"id": "m1", "role": "customer", "text": HOSTILE, "at": "2026-11-01T10:00:00Z"}]});
    assert_eq!(post(&webhook, &delivery), 200);

    let synced = ana.run(&["sync"]).out();
    assert_eq!(synced.code, 0, "{synced:?}");
    for (what, args) in [
        ("list", vec!["list"]),
        ("show", vec!["show", id.as_str()]),
        ("board", vec!["board"]),
        ("inbox", vec!["inbox"]),
    ] {
        let out = ana.run(&args).out();
        assert_eq!(out.code, 0, "{what}: {out:?}");
        assert_harmless(what, &out.stdout);
        assert_no_steering(&format!("{what} (stderr)"), &out.stderr);
    }
    let shown = ana.run(&["show", &id]).ok();
    assert!(shown.contains("ana\\u{202e}xx"), "the agent's name is shown with its override visible:\n{shown}");

    // --json is exact.
    let listed = ana.run(&["list", "--json"]).json();
    assert_eq!(listed[0]["subject"].as_str(), Some(HOSTILE));
    let t = ana.run(&["show", &id, "--json"]).json();
    assert_eq!(t["comments"][0]["body"].as_str(), Some(HOSTILE));
    assert_eq!(t["created_by"].as_str(), Some(agent));
    let inbox = ana.run(&["inbox", "--json"]).json();
    assert_eq!(inbox[0]["customer"].as_str(), Some(HOSTILE), "{inbox}");
}

/// `tickets ARGS` run under `umask 022`, as a shell of a typical user.
fn under_umask_022<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new("sh");
    c.args(["-c", "umask 022; exec \"$@\"", "sh"]).arg(tickets_bin()).args(args).env("NO_COLOR", "1");
    c
}

fn ok(mut c: Command) -> Output {
    let out = c.output().expect("run tickets");
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `tickets relay serve` under umask 022, killed on drop.
struct Served(Child, String);

impl Served {
    fn start(db: &Path) -> Served {
        let mut c = under_umask_022([OsStr::new("relay"), OsStr::new("serve"), OsStr::new("--db"), db.as_os_str()]);
        let mut child = c.args(["--listen", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().expect("serve");
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        while !line.contains("relay listening on") {
            line.clear();
            assert!(reader.read_line(&mut line).expect("read") > 0, "the relay stopped before listening");
        }
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("an address").to_string();
        Served(child, url)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn relay_cmd(db: &Path, args: &[&str]) -> Command {
    let mut all: Vec<&OsStr> = vec![OsStr::new("relay")];
    all.extend(args.iter().map(OsStr::new));
    all.extend([OsStr::new("--db"), db.as_os_str()]);
    under_umask_022(all)
}

fn node_cmd(home: &Path, args: &[&str]) -> Command {
    let mut all: Vec<&OsStr> = vec![OsStr::new("--home"), home.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    under_umask_022(all)
}

#[test]
fn files_with_tokens_and_tickets_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("relay.db");
    let relay = Served::start(&db);
    let lead = ok(relay_cmd(&db, &["agent", "add", "lea", "--role", "lead"]));
    let token = String::from_utf8_lossy(&lead.stdout).trim().to_string();
    ok(relay_cmd(&db, &["category", "add", "hardware"]));
    let home = dir.path().join("lea");
    ok(node_cmd(&home, &["init", "--relay", &relay.1, "--token", &token]));
    ok(node_cmd(&home, &["create", "--subject", "Printer", "--priority", "high", "--category", "hardware"]));
    ok(node_cmd(&home, &["sync"]));

    assert_eq!(mode(&home), 0o700, "the node's folder");
    for name in ["node.db", "node.db-wal", "node.db-shm"] {
        let p = home.join(name);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{name}");
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("relay.db{suffix}"));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "relay.db{suffix}");
        }
    }
    let backup = dir.path().join("backup.db");
    ok(relay_cmd(&db, &["backup", backup.to_str().expect("utf-8")]));
    assert_eq!(mode(&backup), 0o600, "the backup");

    let csv = dir.path().join("export-csv");
    ok(node_cmd(&home, &["export", "--format", "csv", "-o", csv.to_str().expect("utf-8")]));
    assert_eq!(mode(&csv), 0o700, "the CSV export's folder");
    for name in ["tickets.csv", "comments.csv", "history.csv"] {
        assert_eq!(mode(&csv.join(name)), 0o600, "{name}");
    }
    for format in ["json", "ndjson"] {
        let file = dir.path().join(format!("export.{format}"));
        ok(node_cmd(&home, &["export", "--format", format, "-o", file.to_str().expect("utf-8")]));
        assert_eq!(mode(&file), 0o600, "the {format} export");
    }

    // Loosened by hand (or copied under another umask): private again on
    // the next start.
    drop(relay);
    chmod(&home, 0o755);
    chmod(&home.join("node.db"), 0o644);
    chmod(&db, 0o644);
    ok(node_cmd(&home, &["list"]));
    assert_eq!((mode(&home), mode(&home.join("node.db"))), (0o700, 0o600), "the node was not made private again");
    ok(relay_cmd(&db, &["agent", "list"]));
    assert_eq!(mode(&db), 0o600, "the relay database was not made private again");
    let relay = Served::start(&db);
    chmod(&db, 0o666);
    drop(relay);
    let _again = Served::start(&db);
    assert_eq!(mode(&db), 0o600, "a relay started on a loosened database");
}

#[test]
fn the_relay_log_names_the_inbox_never_its_secret_or_a_token() {
    let relay = Relay::start_on(Backend::Sqlite);
    let ana = relay.agent("ana", "agent", &[]);
    let v = relay.admin(&["inbox", "add", "shop", "--kind", "generic", "--url", &relay.url(), "--json"]).json();
    let webhook = v["url"].as_str().expect("a webhook URL").to_string();
    let secret = webhook.rsplit('/').next().expect("a secret").to_string();
    assert!(secret.starts_with("wh_"), "{webhook}");
    let delivery = json!({"id": "c1", "customer": {"name": "Quentin"},
        "messages": [{"id": "m1", "role": "customer", "text": "hello", "at": "2026-11-01T10:00:00Z"}]});
    assert_eq!(post(&webhook, &delivery), 200);
    assert_eq!(post(&webhook, &json!({"not": "a delivery"})), 400);
    assert_eq!(post(&format!("{}/v1/inbox/wh_{}", relay.url(), "0".repeat(48)), &delivery), 404);
    sync(&ana);
    let log = crate::harness::wait_for("the webhook's log lines", std::time::Duration::from_secs(10), || {
        let log = relay.log();
        (log.matches("/v1/inbox/").count() >= 3).then_some(log)
    });
    assert!(!log.contains(&secret), "the webhook secret is in the relay's log:\n{log}");
    assert!(!log.contains(&"0".repeat(48)), "a guessed secret is in the relay's log:\n{log}");
    assert!(!log.contains(&ana.token), "an agent's token is in the relay's log:\n{log}");
    assert!(log.contains("inbox=shop"), "the log does not name the inbox:\n{log}");
}

/// The look-alike checks, on one backend.
fn look_alikes_are_refused(backend: Backend) {
    let relay = Relay::start_on(backend);
    relay.add_agent("lea", "agent", &["--team", "field"]);
    let out = relay.admin(&["agent", "add", "l\u{435}a", "--role", "agent"]).fails();
    assert!(out.stderr.contains("looks like the existing agent 'lea'"), "{backend:?}: {}", out.stderr);
    assert!(out.stderr.contains("U+0435"), "the refusal spells out the look-alike: {}", out.stderr);
    assert!(out.stderr.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")), "{}", out.stderr);
    let v = relay.admin(&["agent", "add", "LEA", "--role", "agent", "--json"]).fails().json();
    assert_eq!(v["code"], "confusable_name", "{v}");
    let out = relay.admin(&["agent", "add", "bob", "--role", "agent", "--team", "fie1d"]).fails();
    assert!(out.stderr.contains("existing team 'field'"), "{backend:?}: {}", out.stderr);
    let out = relay.admin(&["category", "add", "h\u{430}rdware"]).fails();
    assert!(out.stderr.contains("existing category 'hardware'"), "{backend:?}: {}", out.stderr);
    let agents = relay.admin(&["agent", "list", "--json"]).json();
    let names: Vec<&str> = agents.as_array().expect("agents").iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, vec!["lea"], "{backend:?}: a refused name was stored");
    // NFC: a decomposed é is stored composed, and the same name again is
    // the same category, not a look-alike.
    relay.admin(&["category", "add", "Cafe\u{301}"]).ok();
    relay.admin(&["category", "add", "Caf\u{e9}"]).ok();
    let cats = relay.admin(&["category", "list", "--json"]).json();
    let cafes = cats.as_array().expect("categories").iter().filter(|c| c.as_str() == Some("Caf\u{e9}")).count();
    assert_eq!(cafes, 1, "{backend:?}: {cats}");
    assert!(!cats.to_string().contains("e\u{301}"), "{backend:?}: a name was stored decomposed: {cats}");
}

#[test]
fn look_alike_names_are_refused_on_sqlite() {
    look_alikes_are_refused(Backend::Sqlite);
}

#[test]
fn look_alike_names_are_refused_on_postgresql() {
    look_alikes_are_refused(Backend::Postgres);
}
