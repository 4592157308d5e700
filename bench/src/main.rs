//! The benchmark suite (not a test): a real relay process (`tickets relay
//! serve`), real loopback HTTP, and nodes holding realistic tickets
//! (~500-character descriptions, 5 comments, a few status changes, internal
//! notes on one in five).
//!
//! ```text
//! cargo build --release -p tickets-cli -p tickets-bench
//! target/release/tickets-bench            # the full suite (several minutes)
//! target/release/tickets-bench --quick    # a smoke run at small N
//! ```
//!
//! Each figure prints one line (median, min, max over its runs) and the suite
//! writes a JSON summary to `target/bench-sync.json` (or `--out PATH`).

mod app_bench;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tickets_core::doc::TicketDoc;
use tickets_core::edit::{self, Author, Edit, NewTicket};
use tickets_core::hlc::Clock;
use tickets_core::ids;
use tickets_core::model::{Priority, Status};
use tickets_core::protocol::{encode_data, DocData, PullRequest, SyncRequest, PROTOCOL_VERSION};
use tickets_core::view;
use tickets_node::sync::Transport;
use tickets_node::{Node, WallClock};

mod inbox;

struct Config {
    quick: bool,
    out: PathBuf,
    only: Option<Vec<String>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "printer", "vpn", "laptop", "invoice", "refund", "password", "email", "screen", "battery", "network", "login",
    "crash", "slow", "broken", "upgrade", "license", "backup", "phone", "wifi", "keyboard", "delivery", "order",
];

fn words(rng: &mut Rng, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 16);
    while s.len() < chars {
        s.push_str(WORDS[rng.below(WORDS.len())]);
        s.push(' ');
    }
    s
}

/// One realistic ticket, built in memory with the node's author and clock.
fn make_ticket(i: usize, author: &Author, clock: &mut Clock, now: i64) -> Result<(TicketDoc, Option<TicketDoc>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
    let new = NewTicket {
        subject: format!("{} {} #{i}", WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]),
        priority: Priority::ALL[rng.below(4)],
        category: ["hardware", "network", "billing", "accounts"][rng.below(4)].into(),
        description: Some(words(&mut rng, 500)),
        assignee: None,
    };
    let id = uuid_from(&mut rng);
    let mut doc = edit::create_ticket(id, author, clock, now, &new, None)?;
    let mut notes = None;
    let mut edits = vec![Edit::Status(Status::InProgress)];
    for _ in 0..5 {
        edits.push(Edit::Comment(words(&mut rng, 200)));
    }
    if i.is_multiple_of(3) {
        edits.push(Edit::Status(Status::Resolved));
    }
    if i.is_multiple_of(5) {
        edits.push(Edit::Note(words(&mut rng, 120)));
    }
    for e in &edits {
        let v = view::materialize(&doc, notes.as_ref())?;
        edit::apply_edit(&mut doc, &mut notes, &v, author, clock, now, e)?;
    }
    Ok((doc, notes))
}

fn uuid_from(rng: &mut Rng) -> uuid::Uuid {
    let hi = rng.next() as u128;
    let lo = rng.next() as u128;
    uuid::Uuid::from_u128((hi << 64) | lo)
}

/// Fills a node with `n` generated tickets, on all cores.
fn fill(node: &mut Node, n: usize, offset: usize) -> Result<()> {
    let author = Author { agent: node.agent().to_string(), actor: node.actor().clone() };
    let threads = std::thread::available_parallelism().map(|p| p.get()).unwrap_or(2);
    let now = now_ms();
    let chunk = 2000;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let per = (end - start).div_ceil(threads);
        let mut batch: Vec<(TicketDoc, Option<TicketDoc>)> = Vec::with_capacity(end - start);
        let results: Vec<Result<Vec<_>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let author = author.clone();
                    s.spawn(move || {
                        let mut clock = Clock::new(ids::replica_of(&author.actor));
                        let lo = start + t * per;
                        let hi = (lo + per).min(end);
                        (lo..hi).map(|i| make_ticket(offset + i, &author, &mut clock, now)).collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("generator panicked"))))
                .collect()
        });
        for r in results {
            batch.extend(r?);
        }
        node.store_prepared(&mut batch)?;
        start = end;
    }
    Ok(())
}

/// The relay's `--db`: a SQLite file in `dir`, or with `BENCH_PG_PORT` set,
/// a fresh database in the PostgreSQL server on that port of 127.0.0.1
/// (user `postgres`, made with `createdb`).
fn relay_db(dir: &Path) -> Result<PathBuf> {
    let Ok(port) = std::env::var("BENCH_PG_PORT") else { return Ok(dir.join("relay.db")) };
    // Numbered: several relays' folders share a name (`conc-0/relay`,
    // `conc-1/relay`, ...).
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "bench_{}_{}_{}",
        std::process::id(),
        MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("db").replace('-', "_")
    );
    let out = Command::new("createdb").args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name]).output()?;
    if !out.status.success() {
        bail!("createdb {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(PathBuf::from(format!("postgres://postgres@127.0.0.1:{port}/{name}")))
}

struct Relay {
    child: Child,
    url: String,
    db: PathBuf,
    bin: PathBuf,
}

impl Relay {
    fn start(bin: &Path, dir: &Path) -> Result<Relay> {
        std::fs::create_dir_all(dir)?;
        let relay = Relay::start_on(bin, relay_db(dir)?)?;
        // The suite measures how fast the relay takes pushes and webhooks,
        // not the operator's write rates: a plain agent's 10 000-ticket
        // cold push and the inbox's ingest run past the default rates.
        // Lifted before any request reads them (they are read on demand).
        relay.cli(&["limits", "set", "--agent-writes-per-min", "1000000", "--inbox-writes-per-min", "1000000"])?;
        Ok(relay)
    }

    /// Another relay instance on `db` (a PostgreSQL URL another instance
    /// already serves).
    fn start_on(bin: &Path, db: PathBuf) -> Result<Relay> {
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["relay", "serve", "--db"])
            .arg(&db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the relay")?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::blocking::get(format!("{url}/healthz")).is_err() {
            if Instant::now() > deadline {
                bail!("relay did not come up");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Relay { child, url, db, bin: bin.to_path_buf() })
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin).args(["relay"]).args(args).arg("--db").arg(&self.db).output()?;
        if !out.status.success() {
            bail!("tickets relay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn agent(&self, name: &str, role: &str) -> Result<String> {
        self.cli(&["agent", "add", name, "--role", role])
    }

    /// Peak resident memory of the relay process so far, in MiB.
    fn peak_rss_mb(&self) -> f64 {
        proc_kb(self.child.id(), "VmHWM") as f64 / 1024.0
    }

    fn rss_mb(&self) -> f64 {
        proc_kb(self.child.id(), "VmRSS") as f64 / 1024.0
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node as an agent runs it, the `tickets` process: a fresh home pulls
/// everything from the relay; its peak RSS is sampled until it exits.
fn cli_cold_pull_rss(bin: &Path, relay: &Relay, home: &Path) -> Result<f64> {
    let token = relay.agent("rss", "lead")?;
    let init = Command::new(bin)
        .args(["init", "--relay", &relay.url, "--token", &token])
        .env("TICKETS_HOME", home)
        .output()?;
    if !init.status.success() {
        bail!("tickets init: {}", String::from_utf8_lossy(&init.stderr));
    }
    let mut child = Command::new(bin)
        .args(["sync", "--json"])
        .env("TICKETS_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut peak = 0;
    loop {
        peak = peak.max(proc_kb(child.id(), "VmHWM"));
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("tickets sync failed: {status}");
            }
            return Ok(peak as f64 / 1024.0);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn proc_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn self_peak_rss_mb() -> f64 {
    proc_kb(std::process::id(), "VmHWM") as f64 / 1024.0
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A fresh node registered with the relay for the token's agent.
fn node_for(relay: &Relay, dir: &Path, token: &str) -> Result<Node> {
    let actor = Node::new_actor();
    let remote = tickets_node::sync::Remote::new(&relay.url, token)?;
    let resp = tickets_node::sync::register_actor(&remote, &actor)?;
    let mut node = Node::init_with_actor(dir, &resp.access.agent, actor, WallClock::default())?;
    node.register(&relay.url, token)?;
    Ok(node)
}

#[derive(Default)]
struct Report {
    figures: Vec<Value>,
}

impl Report {
    fn add(&mut self, name: &str, unit: &str, samples: &mut [f64], goal: Option<(&str, f64)>) {
        samples.sort_by(|a, b| a.total_cmp(b));
        let median = samples[samples.len() / 2];
        let (min, max) = (samples[0], samples[samples.len() - 1]);
        let p99 = samples[((samples.len() as f64 * 0.99).ceil() as usize).saturating_sub(1).min(samples.len() - 1)];
        let verdict = match goal {
            Some(("<=", g)) => {
                if median <= g {
                    "meets"
                } else {
                    "MISSES"
                }
            }
            Some((">=", g)) => {
                if median >= g {
                    "meets"
                } else {
                    "MISSES"
                }
            }
            _ => "",
        };
        let goal_text = goal.map(|(op, g)| format!("goal {op} {g}")).unwrap_or_default();
        println!(
            "{name:<48} median {median:>10.2} {unit:<6} min {min:>10.2}  max {max:>10.2}  p99 {p99:>10.2}  (n={}) {goal_text} {verdict}",
            samples.len()
        );
        self.figures.push(json!({"name": name, "unit": unit, "median": median, "min": min, "max": max, "p99": p99,
            "runs": samples.len(), "goal": goal.map(|(op, g)| format!("{op} {g}")), "verdict": verdict}));
    }

    fn single(&mut self, name: &str, unit: &str, value: f64, goal: Option<(&str, f64)>) {
        self.add(name, unit, &mut [value], goal);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((ms(t.elapsed()), v))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut cfg = Config { quick: false, out: PathBuf::from("target/bench-sync.json"), only: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => cfg.quick = true,
            "--out" => cfg.out = PathBuf::from(args.next().context("--out PATH")?),
            "--only" => cfg.only = Some(args.next().context("--only a,b")?.split(',').map(String::from).collect()),
            other => bail!("unknown argument {other} (use --quick, --out PATH, --only push,pull,edits,idle,watch,concurrent,board,inbox,app)"),
        }
    }
    let bin = std::env::var_os("TICKETS_BIN").map(PathBuf::from).unwrap_or_else(|| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("tickets"))).unwrap_or_default()
    });
    if !bin.exists() {
        bail!("no tickets binary at {} (cargo build --release -p tickets-cli, or set TICKETS_BIN)", bin.display());
    }
    let work = std::env::temp_dir().join(format!("tickets-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut report = Report::default();
    let result = run(&cfg, &bin, &work, &mut report);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    let summary = json!({
        "machine": {"cores": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0)},
        "backend": if std::env::var("BENCH_PG_PORT").is_ok() { "postgres" } else { "sqlite" },
        "quick": cfg.quick,
        "figures": report.figures,
    });
    if let Some(parent) = cfg.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cfg.out, serde_json::to_vec_pretty(&summary)?)?;
    println!("summary written to {}", cfg.out.display());
    Ok(())
}

fn wants(cfg: &Config, name: &str) -> bool {
    cfg.only.as_ref().is_none_or(|o| o.iter().any(|x| x == name))
}

fn run(cfg: &Config, bin: &Path, work: &Path, report: &mut Report) -> Result<()> {
    let n = if cfg.quick { 300 } else { 10_000 };
    let runs = if cfg.quick { 2 } else { 5 };

    // A node holding N tickets, kept as a template to copy for every run.
    let template = work.join("template");
    if wants(cfg, "push") || wants(cfg, "pull") || wants(cfg, "edits") {
        let relay = Relay::start(bin, &work.join("relay-template"))?;
        let token = relay.agent("ana", "agent")?;
        let mut node = node_for(&relay, &template, &token)?;
        let (gen_ms, ()) = time(|| fill(&mut node, n, 0))?;
        println!("(generated {n} tickets in {:.1}s)", gen_ms / 1000.0);
    }

    if wants(cfg, "push") || wants(cfg, "pull") || wants(cfg, "edits") {
        let mut push = Vec::new();
        let mut pull = Vec::new();
        let mut edits = Vec::new();
        let mut relay_rss = 0.0f64;
        let mut node_rss = 0.0f64;
        for r in 0..runs {
            let relay = Relay::start(bin, &work.join(format!("relay-{r}")))?;
            let ta = relay.agent("ana", "agent")?;
            let tb = relay.agent("ben", "lead")?;
            let home_a = work.join(format!("a-{r}"));
            copy_dir(&template, &home_a)?;
            let mut a = Node::open(&home_a, WallClock::default())?;
            // The template was registered with another relay (as "ana"):
            // register this copy's actor with this one.
            a.register(&relay.url, &ta)?;
            let (t, rep) = time(|| Ok(a.sync(&mut |_| {})?))?;
            if rep.pushed < n {
                bail!("cold push pushed {} of {n}", rep.pushed);
            }
            push.push(t);
            let mut b = node_for(&relay, &work.join(format!("b-{r}")), &tb)?;
            let (t, rep) = time(|| Ok(b.sync(&mut |_| {})?))?;
            if rep.pulled < n {
                bail!("cold pull pulled {} of {n}", rep.pulled);
            }
            pull.push(t);
            // K edits on A reaching B.
            let ids: Vec<String> = a
                .list(&tickets_core::index::ListQuery { limit: Some(100), ..Default::default() })?
                .0
                .iter()
                .filter_map(|t| t["id"].as_str().map(String::from))
                .collect();
            for id in &ids {
                a.edit(id, &[Edit::Comment(format!("bench edit {r}"))])?;
            }
            let (t, _) = time(|| {
                a.sync(&mut |_| {})?;
                let rep = b.sync(&mut |_| {})?;
                if rep.pulled < ids.len() {
                    bail!("only {} of {} edits arrived", rep.pulled, ids.len());
                }
                Ok(())
            })?;
            edits.push(t);
            relay_rss = relay_rss.max(relay.peak_rss_mb());
            if r == 0 {
                node_rss = cli_cold_pull_rss(bin, &relay, &work.join("cli-node"))?;
            }
        }
        report.add(&format!("cold push {n} tickets"), "ms", &mut push, Some(("<=", 8000.0)));
        report.add(&format!("cold pull {n} tickets to a fresh node"), "ms", &mut pull, Some(("<=", 8000.0)));
        report.add(&format!("100 edits reach another node (N={n})"), "ms", &mut edits, Some(("<=", 300.0)));
        report.single(&format!("relay peak RSS, push+pull of {n}"), "MiB", relay_rss, None);
        report.single(&format!("node peak RSS, `tickets sync` cold pull of {n}"), "MiB", node_rss, None);
    }

    if wants(cfg, "idle") {
        // `BENCH_IDLE_SIZES=1000,10000,50000` measures other sizes.
        let sizes: Vec<usize> = match std::env::var("BENCH_IDLE_SIZES") {
            Ok(s) => s.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
            Err(_) if cfg.quick => vec![100, 300],
            Err(_) => vec![1000, 10_000, 100_000],
        };
        let relay = Relay::start(bin, &work.join("relay-idle"))?;
        let token = relay.agent("ida", "agent")?;
        let mut node = node_for(&relay, &work.join("idle"), &token)?;
        let mut have = 0;
        for size in sizes {
            fill(&mut node, size - have, 1_000_000 + have)?;
            have = size;
            let (t, _) = time(|| Ok(node.sync(&mut |_| {})?))?;
            if size >= 100_000 {
                report.single(&format!("cold push {size} tickets"), "ms", t, Some(("<=", 90_000.0)));
                report.single(
                    &format!("relay peak RSS after pushing {size}"),
                    "MiB",
                    relay.peak_rss_mb(),
                    Some(("<=", 300.0)),
                );
            }
            let mut idle = Vec::new();
            for _ in 0..20 {
                let (t, rep) = time(|| Ok(node.sync(&mut |_| {})?))?;
                if rep.pushed + rep.pulled != 0 {
                    bail!("idle sync moved data");
                }
                idle.push(t);
            }
            report.add(&format!("idle sync at {size} tickets"), "ms", &mut idle, Some(("<=", 50.0)));
        }
        if wants(cfg, "board") {
            let lead = relay.agent("lee", "lead")?;
            relay.cli(&["sla", "set", "--priority", "urgent", "--first-response", "1s", "--resolution", "1h"])?;
            relay.cli(&["sla", "set", "--priority", "high", "--first-response", "1h", "--resolution", "1d"])?;
            let client = reqwest::blocking::Client::new();
            let mut board = Vec::new();
            for _ in 0..20 {
                let (t, ()) = time(|| {
                    let r = client
                        .get(format!("{}/v1/tickets?sla=red&sort=sla&limit=50", relay.url))
                        .bearer_auth(&lead)
                        .send()?;
                    if !r.status().is_success() {
                        bail!("board answered {}", r.status());
                    }
                    let _: Value = r.json()?;
                    Ok(())
                })?;
                board.push(t);
            }
            report.add(&format!("board query, red filter, {have} tickets"), "ms", &mut board, Some(("<=", 50.0)));
            let before = relay.rss_mb();
            let (t, bytes) = time(|| {
                let mut r = client
                    .get(format!("{}/v1/export?format=csv-bundle", relay.url))
                    .bearer_auth(&lead)
                    .timeout(Duration::from_secs(600))
                    .send()?;
                let mut sink = std::io::sink();
                Ok(r.copy_to(&mut sink)?)
            })?;
            let growth = relay.peak_rss_mb() - before;
            report.single(
                &format!("CSV export (tickets, comments, history) of {have} tickets"),
                "ms",
                t,
                Some(("<=", 10_000.0)),
            );
            report.single("CSV export size", "MiB", bytes as f64 / 1048576.0, None);
            report.single("relay RSS growth during export", "MiB", growth.max(0.0), Some(("<=", 50.0)));
            let (t, _) = time(|| {
                let mut r = client
                    .get(format!("{}/v1/export?format=ndjson", relay.url))
                    .bearer_auth(&lead)
                    .timeout(Duration::from_secs(600))
                    .send()?;
                Ok(r.copy_to(&mut std::io::sink())?)
            })?;
            report.single(&format!("NDJSON export of {have} tickets"), "ms", t, Some(("<=", 10_000.0)));
        }
    }

    if wants(cfg, "watch") {
        let relay = Relay::start(bin, &work.join("relay-watch"))?;
        let ta = relay.agent("wa", "agent")?;
        let tb = relay.agent("wb", "agent")?;
        let mut a = node_for(&relay, &work.join("wa"), &ta)?;
        fill(&mut a, 50, 5_000_000)?;
        a.sync(&mut |_| {})?;
        let home_b = work.join("wb");
        let mut b = node_for(&relay, &home_b, &tb)?;
        b.sync(&mut |_| {})?;
        let id = a.list(&tickets_core::index::ListQuery { limit: Some(1), ..Default::default() })?.0[0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let watcher = std::thread::spawn(move || {
            let _ = b.sync_watch(&|| !s2.load(Ordering::Relaxed), &mut |_| {});
        });
        std::thread::sleep(Duration::from_millis(500));
        let mut reader = Node::open(&home_b, WallClock::default())?;
        let mut lat = Vec::new();
        for i in 0..if cfg.quick { 5 } else { 40 } {
            let text = format!("watch probe {i}");
            let t0 = Instant::now();
            a.edit(&id, &[Edit::Comment(text.clone())])?;
            a.sync(&mut |_| {})?;
            loop {
                let v = reader.show(&id)?;
                if v["comments"].as_array().is_some_and(|c| c.iter().any(|c| c["body"] == text.as_str())) {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    bail!("watch: an edit did not arrive within 10 s");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            lat.push(ms(t0.elapsed()));
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        let mut l2 = lat.clone();
        report.add("watch latency (edit+push on A to visible on B)", "ms", &mut lat, Some(("<=", 200.0)));
        l2.sort_by(|a, b| a.total_cmp(b));
        let p99 = l2[((l2.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
        report.single("watch latency p99", "ms", p99, Some(("<=", 1000.0)));
    }

    if wants(cfg, "concurrent") {
        concurrent(cfg, bin, work, report)?;
    }
    inbox::run(cfg, bin, work, report)?;
    if wants(cfg, "app") {
        app_bench::run(cfg, bin, work, report)?;
    }
    report.single("bench process peak RSS (nodes + generator)", "MiB", self_peak_rss_mb(), None);
    Ok(())
}

/// One device of the concurrent-agents figure: its relay endpoint, its
/// author, and the changes of its 10 edits.
struct Device {
    remote: tickets_node::sync::Remote,
    actor: String,
    push: Vec<DocData>,
}

/// What one burst of the concurrent-agents figure measured.
struct Burst {
    /// Each device's whole sync, in ms.
    latencies: Vec<f64>,
    errors: usize,
    pulled_max: usize,
    relay_rss: f64,
    /// One device's pull of everything the burst wrote, alone (ms, 5 runs).
    alone: Vec<f64>,
    /// A real node catching up on the burst: (ms, documents).
    catch_up: (f64, usize),
}

fn concurrent(cfg: &Config, bin: &Path, work: &Path, report: &mut Report) -> Result<()> {
    let agents = if cfg.quick { 20 } else { 200 };
    let runs =
        std::env::var("BENCH_BURST_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(if cfg.quick { 1 } else { 5 });
    let mut p99s = Vec::new();
    let (mut errors, mut pulled_max, mut rss) = (0, 0, 0.0f64);
    let (mut all, mut alone, mut catch_up, mut caught) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for r in 0..runs {
        let b = burst(cfg, bin, &work.join(format!("conc-{r}")))?;
        let mut l = b.latencies.clone();
        if !l.is_empty() {
            l.sort_by(|a, b| a.total_cmp(b));
            p99s.push(l[((l.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)]);
        }
        errors += b.errors;
        pulled_max = pulled_max.max(b.pulled_max);
        rss = rss.max(b.relay_rss);
        all.extend(b.latencies);
        alone.extend(b.alone);
        catch_up.push(b.catch_up.0);
        caught = caught.max(b.catch_up.1);
    }
    report.single(&format!("{agents} concurrent agents: failed syncs"), "count", errors as f64, Some(("<=", 0.0)));
    if !all.is_empty() {
        report.add(&format!("{agents} concurrent agents: sync (push 10 edits, pull all)"), "ms", &mut all, None);
        report.add(&format!("{agents} concurrent agents: p99 sync per burst"), "ms", &mut p99s, Some(("<=", 2000.0)));
    }
    report.single(
        &format!("{agents} concurrent agents: most documents one device pulled"),
        "docs",
        pulled_max as f64,
        None,
    );
    let instances = if std::env::var("BENCH_PG_PORT").is_ok() { 2 } else { 1 };
    report.single(
        &format!("relay peak RSS per instance, concurrent agents ({instances} instance(s))"),
        "MiB",
        rss,
        Some(("<=", 150.0)),
    );
    report.add("one device's pull of a burst's edits, alone (relay + HTTP)", "ms", &mut alone, None);
    report.add(&format!("one device merging a burst's edits (up to {caught} documents)"), "ms", &mut catch_up, None);
    Ok(())
}

/// One burst on a fresh relay.
/// 200 agents, each on its own device already in sync with a shared base of
/// tickets, each edit 10 tickets of that base offline, then all sync at once:
/// one request pushing the 10 edited documents' new changes and pulling,
/// then pull pages until the device has everything.
///
/// The devices speak the node's protocol through the node's own HTTP client
/// (`Remote`), but do not merge what they pull into a local store: in the
/// field each device has its own CPU, while here 200 devices would share the
/// relay's two cores and the figure would measure them, not the relay. What
/// one device spends merging such a pull is measured next, alone, with a real
/// node catching up on the same 2 000 edits.
fn burst(cfg: &Config, bin: &Path, work: &Path) -> Result<Burst> {
    let agents = if cfg.quick { 20 } else { 200 };
    let base_n = if cfg.quick { 200 } else { 2000 };
    let relay = Relay::start(bin, &work.join("relay"))?;
    // On PostgreSQL, a second instance on the same database: the devices
    // alternate instances (as behind a round-robin load balancer).
    let second =
        if std::env::var("BENCH_PG_PORT").is_ok() { Some(Relay::start_on(bin, relay.db.clone())?) } else { None };
    // The shared base, pushed by one node; a lead's node is in sync with it.
    let seed_token = relay.agent("seed", "agent")?;
    let mut seed = node_for(&relay, &work.join("seed"), &seed_token)?;
    let author = Author { agent: "seed".into(), actor: seed.actor().clone() };
    let mut clock = Clock::new(ids::replica_of(&author.actor));
    let now = now_ms();
    let mut base: Vec<TicketDoc> = Vec::with_capacity(base_n);
    let mut batch = Vec::with_capacity(base_n);
    for i in 0..base_n {
        let (mut doc, notes) = make_ticket(7_000_000 + i, &author, &mut clock, now)?;
        base.push(doc.fork_with(&author.actor));
        batch.push((doc, notes));
    }
    seed.store_prepared(&mut batch)?;
    let cursor = seed.sync(&mut |_| {})?.cursor;
    let lead_token = relay.agent("lead", "lead")?;
    let mut lead = node_for(&relay, &work.join("lead"), &lead_token)?;
    lead.sync(&mut |_| {})?;

    // Each device edits 10 tickets of the base (chosen at random, so some
    // tickets are edited by several agents at once) and keeps the changes
    // its node would push: those since the heads the relay holds.
    let mut rng = Rng(0x5eed);
    let mut devices = Vec::with_capacity(agents);
    for i in 0..agents {
        let name = format!("c{i}");
        let token = relay.agent(&name, "agent")?;
        let url = match &second {
            Some(b) if i % 2 == 1 => &b.url,
            _ => &relay.url,
        };
        let remote = tickets_node::sync::Remote::new(url, &token)?;
        let actor = Node::new_actor();
        tickets_node::sync::register_actor(&remote, &actor)?;
        let author = Author { agent: name, actor: actor.clone() };
        let mut clock = Clock::new(ids::replica_of(&actor));
        let mut picked = std::collections::BTreeSet::new();
        while picked.len() < 10 {
            picked.insert(rng.below(base_n));
        }
        let mut push = Vec::new();
        for j in picked {
            let synced = base[j].heads();
            let mut doc = base[j].fork_with(&actor);
            let mut notes = None;
            let v = view::materialize(&doc, None)?;
            let e = if i % 2 == 0 {
                Edit::Comment(format!("agent {i} was here: {}", words(&mut rng, 120)))
            } else {
                Edit::Assignee(Some(author.agent.clone()))
            };
            edit::apply_edit(&mut doc, &mut notes, &v, &author, &mut clock, now_ms(), &e)?;
            let mut data = Vec::new();
            for c in doc.changes_since(&synced) {
                data.extend_from_slice(c.raw_bytes());
            }
            push.push(DocData { id: doc.id().to_string(), kind: "ticket".into(), data: encode_data(&data) });
        }
        devices.push(Device { remote, actor: actor.to_hex_string(), push });
    }

    let results: Vec<Result<(f64, usize)>> = std::thread::scope(|s| {
        let hs: Vec<_> = devices
            .iter()
            .map(|d| {
                s.spawn(move || -> Result<(f64, usize)> {
                    let t0 = Instant::now();
                    let mut push = d.push.clone();
                    let mut cursor = cursor;
                    let mut pulled = 0usize;
                    loop {
                        let req = SyncRequest {
                            protocol: PROTOCOL_VERSION,
                            device: d.actor.clone(),
                            clock_ms: now_ms(),
                            push: std::mem::take(&mut push),
                            pull: Some(PullRequest { cursor, bootstrapped: true, bootstrap: None }),
                            inbox: None,
                        };
                        let resp = d.remote.sync(&req)?;
                        if let Some(e) = resp.error {
                            bail!("relay refused: {e}");
                        }
                        if resp.pushed.iter().any(|p| !p.accepted) {
                            bail!("an edit was refused");
                        }
                        let Some(page) = resp.pull else { bail!("no pull page") };
                        pulled += page.docs.len();
                        cursor = page.cursor;
                        if !page.more {
                            break;
                        }
                    }
                    Ok((ms(t0.elapsed()), pulled))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))).collect()
    });
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut pulled_max = 0;
    for r in results {
        match r {
            Ok((t, pulled)) => {
                lat.push(t);
                pulled_max = pulled_max.max(pulled);
            }
            Err(e) => {
                errors += 1;
                eprintln!("concurrent agent failed: {e:#}");
            }
        }
    }
    let relay_rss = relay.peak_rss_mb().max(second.as_ref().map_or(0.0, Relay::peak_rss_mb));
    // The relay's cost of one device's pull of everything the burst wrote,
    // measured alone (no push, no merging on the device).
    let mut alone = Vec::new();
    for _ in 0..5 {
        let d = &devices[0];
        let (t, ()) = time(|| {
            let mut cursor = cursor;
            loop {
                let req = SyncRequest {
                    protocol: PROTOCOL_VERSION,
                    device: d.actor.clone(),
                    clock_ms: now_ms(),
                    push: Vec::new(),
                    pull: Some(PullRequest { cursor, bootstrapped: true, bootstrap: None }),
                    inbox: None,
                };
                let Some(page) = d.remote.sync(&req)?.pull else { bail!("no pull page") };
                cursor = page.cursor;
                if !page.more {
                    return Ok(());
                }
            }
        })?;
        alone.push(t);
    }

    // What one device spends merging what the others pushed: a real node,
    // in sync before the burst, catching up alone.
    let (t, rep) = time(|| Ok(lead.sync(&mut |_| {})?))?;
    if rep.pulled == 0 {
        bail!("the lead's node pulled nothing after the burst");
    }
    Ok(Burst { latencies: lat, errors, pulled_max, relay_rss, alone, catch_up: (t, rep.pulled) })
}
