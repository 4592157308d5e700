//! The relay as a real process, nodes registered with it, and small tools
//! the sync tests share: polling with a deadline, the lead's HTTP view of the
//! relay, Prometheus counters, `PRAGMA integrity_check`, a seeded RNG.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tickets_core::protocol::Settings;

use crate::support::{tickets_bin, Home, Run};

/// Categories every test relay knows, so registered nodes accept them.
pub const CATEGORIES: [&str; 3] = ["hardware", "billing", "network"];

/// How long a relay may take to print its address after it is spawned.
const RELAY_START_SECS: u64 = 30;

/// A `tickets relay serve` process on a database in a temporary folder.
/// Killed on drop; its stderr is kept, and a panic in it fails the test.
pub struct Relay {
    dir: TempDir,
    /// What `--db` says: the SQLite file, or a PostgreSQL URL.
    db_arg: String,
    /// Runs the operator's `tickets relay ...` commands.
    admin: Home,
    pub addr: SocketAddr,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

/// The database a test's relay runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// SQLite, or PostgreSQL when `TICKETS_TEST_PG=1` (the whole suite on
    /// PostgreSQL, by hand; tests that read the relay's SQLite file itself
    /// then fail with a message saying so).
    pub fn from_env() -> Backend {
        match std::env::var("TICKETS_TEST_PG").as_deref() {
            Ok("1") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

impl Relay {
    /// A new relay on a fresh database (see [`Backend::from_env`]), on a
    /// free port, with the test categories.
    pub fn start() -> Relay {
        Relay::start_on(Backend::from_env())
    }

    /// A new relay on a fresh database of `backend`: a SQLite file, or a
    /// database of its own in this run's PostgreSQL cluster.
    pub fn start_on(backend: Backend) -> Relay {
        match backend {
            Backend::Sqlite => Relay::start_sqlite(),
            Backend::Postgres => Relay::start_postgres(1).remove(0),
        }
    }

    /// A new relay on a fresh SQLite file.
    pub fn start_sqlite() -> Relay {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = dir.path().join("relay.db");
        let log = Arc::new(Mutex::new(String::new()));
        let (child, addr) =
            spawn_relay(&db, "127.0.0.1:0", &log).unwrap_or_else(|out| panic!("relay did not start:\n{out}"));
        let db_arg = db.to_str().expect("utf-8 path").to_string();
        let relay = Relay { dir, db_arg, admin: Home::empty(), addr, child: Some(child), log };
        for c in CATEGORIES {
            relay.admin(&["category", "add", c]).ok();
        }
        relay
    }

    /// `n` relay instances on one fresh PostgreSQL database (in this test
    /// run's throwaway cluster), with the test categories.
    pub fn start_postgres(n: usize) -> Vec<Relay> {
        Relay::start_postgres_at(&crate::pg::fresh_database(), n)
    }

    /// `n` relay instances on the PostgreSQL database at `url`.
    pub fn start_postgres_at(url: &str, n: usize) -> Vec<Relay> {
        let url = url.to_string();
        let relays: Vec<Relay> = (0..n)
            .map(|_| {
                let log = Arc::new(Mutex::new(String::new()));
                let (child, addr) = spawn_relay(Path::new(&url), "127.0.0.1:0", &log)
                    .unwrap_or_else(|out| panic!("relay did not start:\n{out}"));
                let dir = tempfile::tempdir().expect("a temp dir");
                Relay { dir, db_arg: url.clone(), admin: Home::empty(), addr, child: Some(child), log }
            })
            .collect();
        for c in CATEGORIES {
            relays[0].admin(&["category", "add", c]).ok();
        }
        relays
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The relay process's id (to read its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("a running relay")
    }

    /// The relay's SQLite file (a test that reads it runs on SQLite only).
    pub fn db(&self) -> PathBuf {
        assert!(!self.is_postgres(), "this test reads the relay's SQLite file: it runs on SQLite only");
        self.dir.path().join("relay.db")
    }

    pub fn is_postgres(&self) -> bool {
        self.db_arg.starts_with("postgres://") || self.db_arg.starts_with("postgresql://")
    }

    /// SQLite's `PRAGMA integrity_check` of the relay's file; "ok" on
    /// PostgreSQL, which checks its own pages.
    pub fn integrity(&self) -> String {
        if self.is_postgres() {
            "ok".into()
        } else {
            integrity(&self.db())
        }
    }

    /// Everything the relay printed on stderr so far, over all its runs.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `within` for the exit; returns its status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("the relay is running");
        let sent = Command::new("kill").args(["-TERM", &c.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = c.try_wait().expect("wait for the relay") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the relay did not exit within {within:?} of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the relay again on the same database and the same port (nodes
    /// keep the URL they registered with). The port may take a moment to
    /// come free.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the relay before restarting it");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawn_relay(Path::new(&self.db_arg), &self.addr.to_string(), &self.log) {
                Ok((child, addr)) => {
                    assert_eq!(addr, self.addr);
                    self.child = Some(child);
                    return;
                }
                Err(out) if Instant::now() < deadline && out.contains("cannot listen") => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(out) => panic!("relay did not restart on {}:\n{out}", self.addr),
            }
        }
    }

    /// `tickets relay ARGS --db DB`.
    pub fn admin(&self, args: &[&str]) -> Run {
        let mut all = vec!["relay"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--db", &self.db_arg]);
        self.admin.run(&all)
    }

    /// Adds an agent; returns its token.
    pub fn add_agent(&self, name: &str, role: &str, extra: &[&str]) -> String {
        let mut args = vec!["agent", "add", name, "--role", role];
        args.extend_from_slice(extra);
        let token = self.admin(&args).ok().trim().to_string();
        assert!(!token.is_empty() && !token.contains(char::is_whitespace), "agent add printed {token:?}");
        token
    }

    /// A node home registered with this relay with `token`.
    pub fn node_with_token(&self, token: &str) -> Home {
        self.node_at(&self.url(), token)
    }

    /// A node registered through `url` (a proxy in front of this relay).
    pub fn node_at(&self, url: &str, token: &str) -> Home {
        let h = Home::empty();
        h.run(&["init", "--relay", url, "--token", token]).ok();
        h
    }

    /// A new agent and a node of theirs, registered and synced once.
    pub fn agent(&self, name: &str, role: &str, extra: &[&str]) -> Agent {
        let token = self.add_agent(name, role, extra);
        let home = self.node_with_token(&token);
        sync(&home);
        Agent { home, token, name: name.to_string() }
    }

    /// An HTTP GET with a bearer token.
    pub fn get(&self, path: &str, token: &str) -> reqwest::blocking::Response {
        client().get(format!("{}{path}", self.url())).bearer_auth(token).send().expect("GET the relay")
    }

    /// The authoritative tickets as `GET /v1/tickets` lists them (one page,
    /// up to the relay's page limit), sorted by id.
    pub fn tickets(&self, token: &str) -> Vec<Value> {
        let resp = self.get("/v1/tickets?limit=5000&sort=created", token);
        assert_eq!(resp.status().as_u16(), 200, "GET /v1/tickets");
        let v: Value = resp.json().expect("tickets JSON");
        let mut list = v["tickets"].as_array().cloned().expect("tickets[]");
        assert_eq!(v["total"].as_u64(), Some(list.len() as u64), "one page holds every ticket");
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        list
    }

    /// One authoritative ticket.
    pub fn ticket(&self, id: &str, token: &str) -> Value {
        let resp = self.get(&format!("/v1/tickets/{id}"), token);
        assert_eq!(resp.status().as_u16(), 200, "GET /v1/tickets/{id}");
        resp.json().expect("ticket JSON")
    }

    /// A counter of `GET /metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let text = client().get(format!("{}/metrics", self.url())).send().expect("GET /metrics").text().expect("text");
        counter(&text, name)
    }

    pub fn healthy(&self) -> bool {
        client().get(format!("{}/healthz", self.url())).send().is_ok_and(|r| r.status().is_success())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
        if !std::thread::panicking() {
            let log = self.log();
            assert!(!log.contains("panicked"), "the relay panicked:\n{log}");
        }
    }
}

/// An agent's node and token.
pub struct Agent {
    pub home: Home,
    pub token: String,
    pub name: String,
}

impl std::ops::Deref for Agent {
    type Target = Home;
    fn deref(&self) -> &Home {
        &self.home
    }
}

/// Spawns `tickets relay serve`, its stderr appended to `log`; waits for
/// its address. On failure returns what this run printed.
fn spawn_relay(db: &Path, listen: &str, log: &Arc<Mutex<String>>) -> Result<(Child, SocketAddr), String> {
    let mut child = Command::new(tickets_bin())
        .args(["relay", "serve", "--db"])
        .arg(db)
        .args(["--listen", listen])
        .env("NO_COLOR", "1")
        // As deploy/tickets-relay.service runs it.
        .env("MALLOC_ARENA_MAX", "2")
        .env_remove("TICKETS_RELAY_DB")
        .env_remove("TICKETS_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the relay");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let this_run = Arc::new(Mutex::new(String::new()));
    let (log2, run2) = (log.clone(), this_run.clone());
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            for l in [&log2, &run2] {
                if let Ok(mut l) = l.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
            if let Some(rest) = line.strip_prefix("relay listening on http://") {
                if let Some(t) = tx.take() {
                    let _ = t.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        }
        // Dropping `tx` here tells the waiter that the process ended early.
    });
    let printed = || this_run.lock().map(|l| l.clone()).unwrap_or_default();
    let failed = |mut child: Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(why)
    };
    match rx.recv_timeout(Duration::from_secs(RELAY_START_SECS)) {
        Ok(addr) => match addr.parse() {
            Ok(a) => Ok((child, a)),
            Err(_) => failed(child, format!("unparsable address {addr:?}\n{}", printed())),
        },
        Err(mpsc::RecvTimeoutError::Disconnected) => failed(child, printed()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            failed(child, format!("no address within {RELAY_START_SECS}s\n{}", printed()))
        }
    }
}

/// A blocking HTTP client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("an HTTP client")
}

/// The value of a counter in Prometheus text.
pub fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in:\n{text}"))
}

/// `tickets sync --json`, expected to succeed.
pub fn sync(h: &Home) -> Value {
    h.run(&["sync", "--json"]).json()
}

/// `PRAGMA integrity_check` of a database file.
pub fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).expect("open the database");
    c.busy_timeout(Duration::from_secs(30)).expect("busy timeout");
    c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).expect("integrity_check")
}

/// A ticket as every replica must show it: without the live `sla`, the
/// device-only `internal_notes` (permission-dependent), `refusals` and
/// `new_for_you` (whether this device's agent has opened it).
pub fn converged(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(converged).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !["sla", "internal_notes", "refusals", "new_for_you"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Bodies of a ticket's comments (or notes), in order.
pub fn bodies(t: &Value, field: &str) -> Vec<String> {
    t[field]
        .as_array()
        .map(|a| a.iter().map(|c| c["body"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

/// Polls `f` every 50 ms until it gives a value; panics after `timeout`.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Does `haystack` contain `needle` anywhere?
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The files of a node's home holding `needle` (node.db, -wal, -shm and any
/// other file there).
pub fn files_containing(home: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(home).expect("read the home folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read a database file");
            if contains_bytes(&bytes, needle.as_bytes()) {
                found.push(path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
            }
        }
    }
    found
}

/// xorshift64*: a small seeded RNG, so a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock, printed so a failure can be replayed.
    pub fn seed_from_env_or_clock(var: &str) -> u64 {
        let seed = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7)
        });
        eprintln!("{var}={seed}");
        seed
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// `v` with every ISO-8601 instant (`2026-01-05T09:00:00.000Z`), also those
/// inside longer strings, replaced by `<time>`.
pub fn without_times(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), without_times(v))).collect()),
        Value::String(s) => Value::String(mask_times(s)),
        other => other.clone(),
    }
}

fn mask_times(s: &str) -> String {
    // YYYY-MM-DDTHH:MM:SS, then an optional fraction, then Z.
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= SHAPE.len()
            && SHAPE.iter().zip(&b[i..]).all(|(p, c)| if *p == b'd' { c.is_ascii_digit() } else { p == c });
        if fits {
            let mut j = i + SHAPE.len();
            if b.get(j) == Some(&b'.') {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            if b.get(j) == Some(&b'Z') {
                j += 1;
            }
            out.push_str("<time>");
            i = j;
        } else {
            let ch = s[i..].chars().next().expect("a char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// A `tickets` child process; killed on drop, so a failing test leaves no
/// process behind (a watcher would run forever).
pub struct Spawned(Option<Child>);

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tickets --home HOME ARGS…` as a child process, output piped.
pub fn spawn_tickets(home: &Home, args: &[&str]) -> Spawned {
    let child = Command::new(tickets_bin())
        .arg("--home")
        .arg(home.path())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("TICKETS_HOME")
        .env_remove("TICKETS_CLOCK_OFFSET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tickets");
    Spawned(Some(child))
}

/// What a finished child left.
#[derive(Debug)]
pub struct Finished {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Waits up to `timeout` for a child (killing it then and failing); checks
/// that it did not panic.
pub fn finish(mut spawned: Spawned, timeout: Duration) -> Finished {
    let mut child = spawned.0.take().expect("a running child");
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect the child");
            panic!("child still running after {timeout:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect the child");
    let f = Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    };
    assert!(!f.stderr.contains("panicked"), "the child panicked: {f:#?}");
    f
}

/// Kills a child (`kill -9`) and collects it.
pub fn kill9(mut spawned: Spawned) -> Finished {
    if let Some(c) = spawned.0.as_mut() {
        let _ = c.kill();
    }
    finish(spawned, Duration::from_secs(10))
}

/// NDJSON import records: `n` tickets with some description text.
pub fn import_many(h: &Home, n: usize, tag: &str) {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let priority = ["low", "medium", "high", "urgent"][i % 4];
            serde_json::json!({
                "subject": format!("{tag} ticket {i:05}"),
                "priority": priority,
                "category": CATEGORIES[i % CATEGORIES.len()],
                "description": format!("{tag} {i}: the customer reports a problem that needs a visit; {}", "details ".repeat(20)),
            })
            .to_string()
        })
        .collect();
    let path = h.file(&format!("{tag}.ndjson"), &lines.join("\n"));
    let out = h.run(&["import", path.to_str().expect("utf-8 path"), "--json"]).json();
    assert_eq!(out["imported"].as_u64(), Some(n as u64), "{out}");
}

/// Ids of every ticket on a node, sorted; asserts there are no duplicates.
pub fn node_ids(h: &Home) -> Vec<String> {
    let mut ids: Vec<String> = h.list(&[]).iter().map(|t| t["id"].as_str().expect("id").to_string()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a ticket is listed twice");
    ids
}

/// Ids of every ticket on the relay, sorted; asserts there are no duplicates.
pub fn relay_ids(relay: &Relay, lead_token: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        relay.tickets(lead_token).iter().map(|t| t["id"].as_str().expect("id").to_string()).collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "the relay lists a ticket twice");
    ids
}

/// A fake relay: answers each request with whatever `answer` gives for its
/// method and path, then closes the connection.
pub fn fake_relay(answer: impl Fn(&str, &str) -> (u16, String) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let _ = serve_one(conn, &answer);
        }
    });
    url
}

fn serve_one(conn: TcpStream, answer: &impl Fn(&str, &str) -> (u16, String)) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (status, text) = answer(&method, &path);
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )?;
    conn.flush()
}

/// A fake relay's answer to a registration: agent `ana`, protocol 1. Written
/// out (only the settings come from the wire types), as another relay would.
pub fn registered() -> String {
    let settings = serde_json::to_value(Settings::default()).expect("serialize settings");
    serde_json::json!({
        "protocol": 1,
        "access": {"agent": "ana", "role": "agent", "internal_notes": false},
        "team": null,
        "settings": settings,
    })
    .to_string()
}
