//! End-to-end tests of the operator's path: backup while a sync runs, and
//! restore, with real `tickets` processes and a real relay.
//!
//! - `test_new_user`: what a new user tripped on with a relay (issue #14).
//! - `test_trust`: terminal output, file modes, the relay's log and
//!   look-alike names (issue #19).

#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "../sync/harness.rs"]
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
#[path = "../../../relay/tests/support/pg.rs"]
mod pg;

mod test_new_user;
mod test_trust;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::tickets_bin;

/// A relay process on a port of its own, killed on drop.
struct Relay {
    child: Child,
    url: String,
    db: PathBuf,
}

impl Relay {
    fn start(db: &Path, port: u16) -> Relay {
        let mut child = Command::new(tickets_bin())
            .args(["relay", "serve", "--db"])
            .arg(db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the relay");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).expect("the relay says where it listens");
        // Keep draining the relay's log so it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Relay { child, url, db: db.to_path_buf() }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(tickets_bin()).arg("relay").args(args).arg("--db").arg(&self.db).output().expect("run");
        assert!(out.status.success(), "tickets relay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn total(&self, token: &str) -> u64 {
        let v: serde_json::Value = reqwest::blocking::Client::new()
            .get(format!("{}/v1/tickets?limit=1", self.url))
            .bearer_auth(token)
            .send()
            .and_then(|r| r.json())
            .expect("board answers");
        v["total"].as_u64().expect("a total")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a port")
}

fn node(home: &Path, args: &[&str]) -> String {
    let out = Command::new(tickets_bin()).arg("--home").arg(home).args(args).output().expect("run");
    assert!(out.status.success(), "tickets {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).expect("open");
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check")
}

fn relay_ticket_rows(db: &Path) -> u64 {
    let c = rusqlite::Connection::open(db).expect("open");
    c.query_row("SELECT count(*) FROM tickets", [], |r| r.get::<_, i64>(0)).expect("count") as u64
}

#[test]
fn backup_while_syncing_opens_checks_and_serves_then_restore_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let relay = Relay::start(&dir.path().join("relay.db"), port);
    let ana = relay.cli(&["agent", "add", "ana", "--role", "agent"]);
    let lea = relay.cli(&["agent", "add", "lea", "--role", "lead"]);
    let home = dir.path().join("ana");
    node(&home, &["init", "--relay", &relay.url, "--token", &ana]);
    let n = 3000;
    let records: String = (0..n)
        .map(|i| {
            format!(
                "{{\"subject\":\"ticket {i}\",\"priority\":\"medium\",\"category\":\"hardware\",\"description\":\"{}\"}}\n",
                "words ".repeat(80)
            )
        })
        .collect();
    let file = dir.path().join("tickets.ndjson");
    std::fs::write(&file, records).expect("write");
    node(&home, &["import", file.to_str().expect("utf-8")]);

    // Back up while the node pushes its 3 000 tickets.
    let mut sync = Command::new(tickets_bin())
        .arg("--home")
        .arg(&home)
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sync");
    let deadline = Instant::now() + Duration::from_secs(60);
    while relay_ticket_rows(&relay.db) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let backup = dir.path().join("backup.db");
    relay.cli(&["backup", backup.to_str().expect("utf-8")]);
    let status = sync.wait().expect("sync ends");
    assert!(status.success(), "the sync failed while a backup ran");
    assert_eq!(relay.total(&lea), n, "the relay holds every ticket after the sync");

    // The backup opens, passes its integrity check, and a relay started on
    // it serves the tickets it holds.
    assert_eq!(integrity(&backup), "ok");
    let in_backup = relay_ticket_rows(&backup);
    assert!(in_backup > 0, "the backup was taken mid-sync and holds some tickets");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&backup, &copy).expect("copy");
    let on_copy = Relay::start(&copy, free_port());
    assert_eq!(on_copy.total(&lea), in_backup, "a relay on the backup serves what the backup holds");
    drop(on_copy);

    // Restore the backup in place: the node notices the new epoch and
    // pushes again what the restored relay lacks.
    drop(relay);
    let out = Command::new(tickets_bin())
        .args(["relay", "restore"])
        .arg(&backup)
        .arg("--db")
        .arg(dir.path().join("relay.db"))
        .output()
        .expect("restore");
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let relay = Relay::start(&dir.path().join("relay.db"), port);
    node(&home, &["sync"]);
    assert_eq!(relay.total(&lea), n, "after a restore, the node's next sync brings back every ticket");
    assert_eq!(integrity(&relay.db), "ok");
}

#[test]
fn backup_refuses_to_overwrite_and_restore_refuses_a_damaged_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = Relay::start(&dir.path().join("relay.db"), free_port());
    let existing = dir.path().join("exists.db");
    std::fs::write(&existing, b"keep me").expect("write");
    let out = Command::new(tickets_bin())
        .args(["relay", "backup"])
        .arg(&existing)
        .arg("--db")
        .arg(&relay.db)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");
    let out = Command::new(tickets_bin())
        .args(["relay", "restore"])
        .arg(&existing)
        .arg("--db")
        .arg(dir.path().join("other.db"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("other.db").exists());
}

#[test]
fn configuration_precedence_is_flag_then_environment_then_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, format!("home = \"{}\"\n", dir.path().join("from-file").display())).expect("write");
    let init = |env_home: Option<&Path>, flag_home: Option<&Path>| {
        let mut c = Command::new(tickets_bin());
        c.env_remove("TICKETS_HOME").arg("--config").arg(&file);
        if let Some(h) = env_home {
            c.env("TICKETS_HOME", h);
        }
        if let Some(h) = flag_home {
            c.arg("--home").arg(h);
        }
        let out = c.args(["init", "--agent", "ana"]).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    init(None, None);
    assert!(dir.path().join("from-file/node.db").exists(), "the file names the home");
    init(Some(&dir.path().join("from-env")), None);
    assert!(dir.path().join("from-env/node.db").exists(), "the environment wins over the file");
    init(Some(&dir.path().join("from-env2")), Some(&dir.path().join("from-flag")));
    assert!(dir.path().join("from-flag/node.db").exists(), "a flag wins over both");
    assert!(!dir.path().join("from-env2").exists());
    std::fs::write(&file, "colour = \"red\"\n").expect("write");
    let out = Command::new(tickets_bin()).arg("--config").arg(&file).arg("list").output().expect("run");
    assert_eq!(out.status.code(), Some(1), "an unknown key is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}
