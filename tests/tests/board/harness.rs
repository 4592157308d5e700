//! A real relay process on port 0, the operator's commands against its
//! database, agents' devices registered with it, the board API over HTTP,
//! and a TCP proxy that cuts or holds requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{is_uuid, tickets_bin, Home, Run};

/// How long a relay may take to print its address.
const RELAY_START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `tickets relay serve` process with its database in a temporary folder;
/// killed when dropped.
pub struct Relay {
    child: Child,
    pub url: String,
    /// The operator's folder: it holds the relay database.
    ops: Home,
    db: PathBuf,
    log: Arc<Mutex<String>>,
    http: reqwest::blocking::Client,
}

impl Relay {
    /// Starts a relay on an empty database and waits for its address.
    pub fn start() -> Relay {
        let ops = Home::empty();
        let root = ops.path().parent().expect("a home has a parent folder").to_path_buf();
        let db = root.join("relay.db");
        let mut child = Command::new(tickets_bin())
            .args(["relay", "serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .env("NO_COLOR", "1")
            .env_remove("TICKETS_HOME")
            .env_remove("TICKETS_CLOCK_OFFSET")
            .env_remove("TICKETS_RELAY_DB")
            .env_remove("TICKETS_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the relay starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        // Keeps draining stderr after the address line, so the relay never
        // blocks on a full pipe, and keeps it for failure messages.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("relay listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default().to_string();
                    let _ = tx.send(url);
                }
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let url = match rx.recv_timeout(RELAY_START_TIMEOUT) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the relay did not print its address; stderr:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        assert!(url.starts_with("http://127.0.0.1:"), "relay address {url:?}");
        let http =
            reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client");
        Relay { child, url, ops, db, log, http }
    }

    /// What the relay wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `tickets relay ARGS --db DB`, expected to succeed; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let mut all = vec!["relay"];
        all.extend_from_slice(args);
        let db = self.db.to_str().expect("a UTF-8 path");
        all.extend_from_slice(&["--db", db]);
        self.ops.run(&all).ok()
    }

    /// Adds an agent; returns its token.
    pub fn agent(&self, name: &str, role: &str) -> String {
        let token = self.admin(&["agent", "add", name, "--role", role]).trim().to_string();
        assert!(token.len() >= 16 && !token.contains(char::is_whitespace), "agent add printed {token:?}, not a token");
        token
    }

    pub fn category(&self, name: &str) {
        self.admin(&["category", "add", name]);
    }

    /// Sets the targets of one priority.
    pub fn sla(&self, priority: &str, first_response: &str, resolution: &str) {
        self.admin(&[
            "sla",
            "set",
            "--priority",
            priority,
            "--first-response",
            first_response,
            "--resolution",
            resolution,
        ]);
    }

    /// `GET path` with a bearer token: the status and the JSON body.
    pub fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let (status, text) = self.get_text(token, path);
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: body is not JSON ({e}):\n{text}"));
        (status, v)
    }

    /// `GET path` with a bearer token: the status and the raw body.
    pub fn get_text(&self, token: &str, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}\nrelay log:\n{}", self.log()));
        let status = resp.status().as_u16();
        (status, resp.text().unwrap_or_else(|e| panic!("GET {path}: body: {e}")))
    }

    /// `GET /v1/tickets?QUERY`, expected to answer 200.
    pub fn board(&self, token: &str, query: &str) -> Value {
        let path = if query.is_empty() { "/v1/tickets".to_string() } else { format!("/v1/tickets?{query}") };
        let (status, v) = self.get(token, &path);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Every ticket on the board (no filter), by id.
    pub fn tickets_by_id(&self, token: &str) -> std::collections::BTreeMap<String, Value> {
        let b = self.board(token, "limit=5000");
        b["tickets"].as_array().expect("tickets[]").iter().map(|t| (id_of(t), t.clone())).collect()
    }

    /// Kills the relay at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An agent's device: a node home registered with a relay, optionally with
/// a wrong clock (`TICKETS_CLOCK_OFFSET`) on every command.
pub struct Device {
    pub home: Home,
    pub offset: Option<String>,
}

impl Device {
    /// `tickets init --relay URL --token TOKEN` in a fresh home.
    pub fn register(url: &str, token: &str) -> Device {
        Device::register_with_offset(url, token, None)
    }

    pub fn register_with_offset(url: &str, token: &str, offset: Option<&str>) -> Device {
        let d = Device { home: Home::empty(), offset: offset.map(str::to_string) };
        d.run(&["init", "--relay", url, "--token", token]).ok();
        d
    }

    /// `tickets --home HOME ARGS…` with this device's clock offset.
    pub fn run(&self, args: &[&str]) -> Run {
        let run = self.home.run(args);
        match &self.offset {
            Some(o) => run.env("TICKETS_CLOCK_OFFSET", o),
            None => run,
        }
    }

    /// Creates a ticket; returns its id.
    pub fn create(&self, subject: &str, priority: &str, category: &str) -> String {
        self.create_with(&["--subject", subject, "--priority", priority, "--category", category])
    }

    /// `tickets create ARGS`; returns the id.
    pub fn create_with(&self, args: &[&str]) -> String {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        let out = self.run(&all).ok();
        let id = out.trim().to_string();
        assert!(is_uuid(&id), "create printed {out:?}, not an id");
        id
    }

    /// `tickets sync --json`, expected to succeed with nothing refused or
    /// left pending.
    pub fn sync(&self) -> Value {
        let r = self.run(&["sync", "--json"]).json();
        assert_eq!(r["refused"].as_array().map(Vec::len), Some(0), "sync refused something: {r}");
        assert_eq!(r["pending"], 0, "sync left documents pending: {r}");
        r
    }

    pub fn show(&self, id: &str) -> Value {
        self.run(&["show", id, "--json"]).json()
    }

    /// A path next to the home (nothing is created there).
    pub fn path_next_to_home(&self, name: &str) -> PathBuf {
        self.home.path().parent().expect("a home has a parent folder").join(name)
    }
}

pub fn id_of(t: &Value) -> String {
    t["id"].as_str().unwrap_or_else(|| panic!("no id in {t}")).to_string()
}

/// The ids of a list of ticket objects, sorted.
pub fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        list.as_array().unwrap_or_else(|| panic!("{list} is not a list")).iter().map(id_of).collect();
    v.sort();
    v
}

/// Sorted copies of ids.
pub fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `limit`
/// with `what` and the last value seen.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The entries of a folder, by name (hidden ones included).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a folder entry").file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// What a [`Proxy`] does to the traffic it passes.
#[derive(Debug, Clone)]
pub enum Rule {
    /// The response to `GET /v1/export…` is cut (connection closed) after
    /// this many bytes.
    CutExports { after: usize },
    /// A request whose text contains this is held until [`Proxy::release`].
    Hold { request_contains: String },
}

/// A TCP proxy in front of a relay: every request passes through, except
/// for what its [`Rule`] does.
pub struct Proxy {
    pub url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    /// Export responses cut so far.
    pub cuts: Arc<AtomicUsize>,
    /// Requests held so far.
    pub held: Arc<AtomicUsize>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

/// What every connection of one proxy shares.
#[derive(Clone)]
struct Shared {
    upstream: String,
    rule: Rule,
    cuts: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Proxy {
    pub fn start(upstream: &str, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let addr = listener.local_addr().expect("the proxy's address");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            upstream: upstream.trim_start_matches("http://").to_string(),
            rule,
            cuts: Arc::new(AtomicUsize::new(0)),
            held: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new((Mutex::new(false), Condvar::new())),
        };
        let proxy = Proxy {
            url: format!("http://{addr}"),
            stop: stop.clone(),
            addr,
            cuts: shared.cuts.clone(),
            held: shared.held.clone(),
            gate: shared.gate.clone(),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(client, &shared);
                });
            }
        });
        proxy
    }

    /// Lets held requests (and any later ones) through.
    pub fn release(&self) {
        let (open, cv) = &*self.gate;
        if let Ok(mut o) = open.lock() {
            *o = true;
        }
        cv.notify_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One client connection: requests are forwarded as they come (a held one
/// once the gate opens); response bytes are forwarded until the cut, if
/// this connection carries an export and the rule cuts exports.
fn proxy_one(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut server = TcpStream::connect(&shared.upstream)?;
    let exporting = Arc::new(AtomicBool::new(false));
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let (exporting2, up_shared) = (exporting.clone(), shared.clone());
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.contains("GET /v1/export") {
                exporting2.store(true, Ordering::SeqCst);
            }
            if let Rule::Hold { request_contains } = &up_shared.rule {
                if text.contains(request_contains.as_str()) {
                    up_shared.held.fetch_add(1, Ordering::SeqCst);
                    let (open, cv) = &*up_shared.gate;
                    let mut o = open.lock().expect("the gate's lock");
                    while !*o {
                        o = cv.wait(o).expect("the gate's lock");
                    }
                }
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let cut_after = match shared.rule {
        Rule::CutExports { after } => Some(after),
        Rule::Hold { .. } => None,
    };
    let mut sent = 0usize;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let cutting = cut_after.filter(|_| exporting.load(Ordering::SeqCst));
        if let Some(after) = cutting {
            let room = after.saturating_sub(sent);
            if n >= room {
                let _ = client.write_all(&buf[..room]);
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
            sent += n;
        }
        client.write_all(&buf[..n])?;
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = up.join();
    Ok(())
}
