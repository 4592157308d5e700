//! What a new user tripped on with a real relay (issue #14): refusals that
//! printed `null` and exited 0, a URL without a scheme, `--json` errors in
//! plain text, a watcher that never said it was back, bare-number durations,
//! a restore under a serving relay, metrics without HELP, colour codes in a
//! log file, and the small ones.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{client, sync, wait_for, Relay};
use crate::support::{assert_mentions, tickets_bin, Home};

/// How long a watcher may take to notice the relay went away or came back
/// (its retries back off to at most 10 s).
const WATCH_NOTICE: Duration = Duration::from_secs(30);

#[test]
fn board_refusals_reach_the_user_as_one_line_and_exit_1_json_included() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    for (flag, value) in [("--sort", "nonsense"), ("--status", "opne")] {
        let out = lea.run(&["board", flag, value]).fails();
        assert_mentions(&out, value);
        assert_mentions(&out, "refused");
        let out = lea.run(&["board", flag, value, "--json"]).fails();
        let v = out.json();
        assert_eq!(v["code"], "bad_request", "{v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(value)), "{v}");
    }
    // The board itself still works.
    lea.run(&["board", "--json"]).json();
}

#[test]
fn init_refuses_a_url_without_a_scheme_at_once_and_names_why_a_relay_is_unreachable() {
    let relay = Relay::start();
    let token = relay.add_agent("ana", "agent", &[]);
    let h = Home::empty();
    let bare = relay.addr.to_string();
    let out = h.run(&["init", "--relay", &bare, "--token", &token]).fails();
    assert_mentions(&out, "not a relay URL");
    assert_mentions(&out, &format!("http://{bare}"));
    assert!(!out.stderr.contains("builder error") && !out.stderr.contains("pending"), "{out:#?}");
    assert!(!h.db().exists(), "nothing was created");
    let out = h.run(&["init", "--relay", &bare, "--token", &token, "--json"]).fails();
    assert_eq!(out.json()["code"], "bad_url");

    // Nothing listens on a port just freed: the cause is named, and the hint
    // is about the relay, not about pending edits a new node cannot have.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let out = h.run(&["init", "--relay", &format!("http://{closed}"), "--token", &token]).fails();
    assert_mentions(&out, "connection refused");
    assert_mentions(&out, "relay is running");
    assert!(!out.stderr.contains("pending"), "{out:#?}");
    h.run(&["init", "--relay", &relay.url(), "--token", &token]).ok();
}

/// A `tickets sync --watch` whose stderr is read as it comes.
struct Watcher {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    fn start(home: &Home) -> Watcher {
        let mut child = Command::new(tickets_bin())
            .arg("--home")
            .arg(home.path())
            .args(["sync", "--watch"])
            .env("NO_COLOR", "1")
            .env_remove("TICKETS_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the watcher");
        let pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Watcher { child, stderr }
    }

    fn said(&self, what: &str) -> bool {
        self.stderr.lock().map(|s| s.contains(what)).unwrap_or(false)
    }

    fn text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sync_json_with_the_relay_down_is_a_json_error_and_watch_says_lost_and_back() {
    let mut relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let watcher = Watcher::start(&ana);
    wait_for("the watcher's first line", Duration::from_secs(10), || watcher.said("watching").then_some(()));
    relay.kill9();

    let out = ana.run(&["sync", "--json"]).fails();
    let v = out.json();
    assert_eq!(v["code"], "unreachable", "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("connection refused")), "{v}");
    assert!(v["hint"].as_str().is_some_and(|h| h.contains("nothing is lost")), "{v}");

    wait_for("the watcher saying the relay is lost", WATCH_NOTICE, || {
        watcher.said("connection to the relay lost").then_some(())
    });
    relay.restart();
    wait_for("the watcher saying it is back", WATCH_NOTICE, || watcher.said("reconnected").then_some(()));
    let text = watcher.text();
    assert_eq!(text.matches("connection to the relay lost").count(), 1, "said once, not per retry:\n{text}");
}

#[test]
fn durations_need_a_unit_and_take_the_common_spellings() {
    let relay = Relay::start();
    let out = relay.admin(&["sla", "set", "--priority", "high", "--first-response", "2"]).fails();
    assert_mentions(&out, "unit");
    for (text, secs) in [("3min", 180), ("1h 30m", 5_400), ("90sec", 90), ("2hours", 7_200), ("1day", 86_400)] {
        relay.admin(&["sla", "set", "--priority", "high", "--first-response", text]).ok();
        let policy = relay.admin(&["sla", "show", "--json"]).json();
        assert_eq!(policy["targets"]["high"]["first_response_secs"], secs, "{text}: {policy}");
    }
}

#[test]
fn restore_refuses_while_a_relay_serves_the_database() {
    let mut relay = Relay::start();
    relay.add_agent("ana", "agent", &[]);
    let backup = relay.db().with_file_name("backup.db");
    relay.admin(&["backup", backup.to_str().expect("utf-8")]).ok();
    let out = relay.admin(&["restore", backup.to_str().expect("utf-8")]).fails();
    assert_mentions(&out, "a relay is serving");
    assert_mentions(&out, "stop the relay first");
    assert!(relay.healthy(), "the serving relay is untouched");
    relay.kill9();
    let out = relay.admin(&["restore", backup.to_str().expect("utf-8")]).ok();
    assert!(out.contains("restored"), "{out}");
}

/// Checks the Prometheus text: every sample belongs to a family declared
/// with both HELP and TYPE before it. Returns the family names.
fn check_exposition(text: &str) -> Vec<String> {
    let mut help = std::collections::BTreeSet::new();
    let mut typed = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!doc.trim().is_empty(), "empty HELP: {line}");
            help.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            typed.insert(name.to_string(), kind.to_string());
        } else {
            assert!(!line.starts_with('#'), "unexpected comment {line}");
            let sample = line.split(['{', ' ']).next().unwrap_or_default();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| sample.strip_suffix(s).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram")))
                .unwrap_or(sample);
            assert!(help.contains(family), "{family} has no HELP (sample {line})");
            assert!(typed.contains_key(family), "{family} has no TYPE (sample {line})");
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        }
    }
    typed.into_keys().collect()
}

fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_have_help_and_type_and_the_gauges_an_operator_alerts_on() {
    let relay = Relay::start();
    relay.admin(&["sla", "set", "--priority", "urgent", "--first-response", "1h"]).ok();
    let ana = relay.agent("ana", "agent", &[]);
    ana.create("printer", "urgent", "hardware");
    ana.create("no sla", "low", "hardware");
    sync(&ana);
    let watcher = Watcher::start(&ana);
    let metrics =
        || client().get(format!("{}/metrics", relay.url())).send().and_then(|r| r.text()).expect("GET /metrics");
    let text = wait_for("a connected watcher in /metrics", Duration::from_secs(20), || {
        let t = metrics();
        (sample(&t, "tickets_watchers").unwrap_or(0.0) >= 1.0).then_some(t)
    });
    let families = check_exposition(&text);
    for f in ["tickets_board_seconds", "tickets_sync_seconds", "tickets_sla_tickets", "tickets_devices_recent"] {
        assert!(families.iter().any(|x| x == f), "{f} missing:\n{text}");
    }
    assert_eq!(sample(&text, "tickets_sla_tickets{color=\"green\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "tickets_sla_tickets{color=\"red\"}"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "tickets_devices_recent"), Some(1.0), "{text}");
    drop(watcher);
}

#[test]
fn a_relay_log_written_to_a_file_has_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("relay.db");
    let log_path = dir.path().join("relay.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    // NO_COLOR would hide the bug: a file must get plain text without it.
    let mut child = Command::new(tickets_bin())
        .args(["relay", "serve", "--db"])
        .arg(&db)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("NO_COLOR")
        .env("TICKETS_LOG", "debug,automerge=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the relay");
    let url = format!("http://127.0.0.1:{port}");
    wait_for("the relay to answer", Duration::from_secs(30), || {
        client().get(format!("{url}/v1/tickets")).send().ok().filter(|r| r.status().as_u16() == 401)
    });
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(text.contains("relay started"), "{text}");
    assert!(!text.contains('\x1b'), "colour codes in a log file:\n{text:?}");
}

#[test]
fn a_category_added_twice_says_it_already_exists() {
    let relay = Relay::start();
    assert!(relay.admin(&["category", "add", "toner"]).ok().contains("added"));
    let again = relay.admin(&["category", "add", "toner"]).ok();
    assert!(again.contains("already exists"), "{again}");
}

#[test]
fn grant_without_the_permission_shows_the_whole_command() {
    let relay = Relay::start();
    relay.add_agent("ana", "agent", &[]);
    let out = relay.admin(&["agent", "grant", "ana"]).fails();
    assert_mentions(&out, "tickets relay agent grant ana --internal-notes");
    relay.admin(&["agent", "grant", "ana", "--internal-notes"]).ok();
}

#[test]
fn a_refused_note_says_who_can_grant_the_permission_and_how() {
    let relay = Relay::start();
    let ana = relay.agent("ana", "agent", &[]);
    let id = ana.create("printer", "high", "hardware");
    let out = ana.run(&["note", &id, "vip"]).fails();
    assert_mentions(&out, "ask a lead or admin");
    assert_mentions(&out, "tickets relay agent grant ana --internal-notes");
}

#[test]
fn the_star_of_a_provisional_sla_is_explained_under_the_table() {
    let relay = Relay::start();
    relay.admin(&["sla", "set", "--priority", "high", "--first-response", "1h"]).ok();
    let ana = relay.agent("ana", "agent", &[]);
    ana.create("offline one", "high", "hardware");
    let table = ana.run(&["list"]).ok();
    assert!(table.contains('*'), "{table}");
    assert!(table.contains("* provisional"), "no legend for the `*`:\n{table}");
}

#[test]
fn an_export_whose_from_is_after_its_to_is_refused() {
    let relay = Relay::start();
    let lea = relay.agent("lea", "lead", &[]);
    let dest = lea.path().join("x.json");
    let dest = dest.to_str().expect("utf-8");
    let out =
        lea.run(&["export", "--format", "json", "--from", "2026-11-30", "--to", "2026-11-01", "-o", dest]).fails();
    assert_mentions(&out, "--from");
    assert!(!std::path::Path::new(dest).exists());
}

#[test]
fn relay_commands_do_not_list_a_home_they_ignore() {
    for args in [vec!["relay", "agent", "add", "--help"], vec!["relay", "serve", "--help"], vec!["relay", "--help"]] {
        let help = Home::empty().run(&args).ok();
        assert!(!help.contains("--home"), "{args:?} lists --home:\n{help}");
    }
    assert!(Home::empty().run(&["list", "--help"]).ok().contains("--home"), "node commands keep it");
}

#[test]
fn a_synced_node_checks_assignees_against_the_relays_agents_and_teams() {
    let relay = Relay::start();
    relay.add_agent("bob", "agent", &["--team", "field"]);
    let ana = relay.agent("ana", "agent", &[]);
    let out = ana
        .run(&["create", "--subject", "s", "--priority", "low", "--category", "hardware", "--assignee", "bbo"])
        .fails();
    assert_mentions(&out, "'bbo' is not an agent or team");
    assert_mentions(&out, "did you mean 'bob'");
    let id = ana.create("printer", "high", "hardware");
    let out = ana.run(&["assign", &id, "team:feild"]).fails();
    assert_mentions(&out, "did you mean 'team:field'");
    assert_eq!(ana.run(&["assign", &id, "team:feild", "--json"]).fails().json()["code"], "unknown_assignee");
    ana.run(&["assign", &id, "team:field"]).ok();
    ana.run(&["assign", &id, "bob"]).ok();
    // An agent added later is known after the next sync.
    relay.add_agent("cy", "agent", &[]);
    ana.run(&["assign", &id, "cy"]).fails();
    sync(&ana);
    ana.run(&["assign", &id, "cy"]).ok();
    // A node that never synced accepts any name.
    Home::new().run(&["create", "--subject", "s", "--priority", "low", "--category", "x", "--assignee", "bbo"]).ok();
}

/// A listener that answers every connection with `reply` (maybe nothing)
/// and closes it: what an `https://` URL meets at a port speaking plain
/// HTTP, or at one that hangs up.
fn answers_and_closes(reply: &'static [u8]) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(reply);
        }
    });
    addr
}

/// `cannot reach the relay` names the cause for a host name that resolves
/// nowhere (`.invalid`, RFC 2606) and for TLS failing (an `https://` URL
/// whose port speaks plain HTTP, or closes at once).
#[test]
fn init_names_an_unresolvable_host_and_a_failed_tls_handshake() {
    let h = Home::empty();
    let out = h.run(&["init", "--relay", "http://relay.invalid:8080", "--token", "tk_x"]).fails();
    assert_mentions(&out, "cannot reach the relay");
    assert_mentions(&out, "does not resolve");
    let out = h.run(&["init", "--relay", "http://relay.invalid:8080", "--token", "tk_x", "--json"]).fails();
    let v = out.json();
    assert!(v["error"].as_str().is_some_and(|e| e.contains("does not resolve")), "{v}");

    for (what, reply) in
        [("plain HTTP", &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"[..]), ("a close", b"")]
    {
        let addr = answers_and_closes(reply);
        let out = h.run(&["init", "--relay", &format!("https://{addr}"), "--token", "tk_x"]).fails();
        assert!(out.stderr.contains("TLS failed"), "{what} at an https:// URL: {out:#?}");
    }
    assert!(!h.db().exists(), "nothing was created");
}
