//! Benchmark of the node's local commands at scale (not a test).
//!
//! Builds a node holding `BENCH_TICKETS` tickets (default 100 000) in a
//! temporary folder through the library API — `Node::init`, then
//! `Node::import` in batches, which also measures import throughput — and
//! then times, in process with `Instant`, the commands an agent runs all day:
//! a local edit including its SQLite commit (create, status change, comment),
//! a bulk re-assign of 500 tickets in one transaction, and `list` with
//! filters, sort, search and a limit.
//!
//! Every figure is the median, min and max of at least `BENCH_RUNS` runs
//! (default 50). One line per figure goes to stdout and a JSON summary to
//! `target/bench-node.json`.
//!
//! ```text
//! cargo bench -p tickets-node --bench node_ops
//! BENCH_TICKETS=2000 cargo bench -p tickets-node --bench node_ops   # smoke run
//! ```
//!
//! `BENCH_HOME=DIR` builds the node in DIR (which must not hold one) and
//! keeps it, to look into with `sqlite3` afterwards.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickets_core::edit::{Edit, NewTicket};
use tickets_core::model::{Priority, Status};
use tickets_node::import::ImportRecord;
use tickets_node::{BulkEdit, ListQuery, Node, SortKey, WallClock};

/// Goals from the brief, per figure kind.
const EDIT_GOAL_MS: f64 = 10.0;
const LIST_GOAL_MS: f64 = 100.0;
const IMPORT_GOAL_PER_SEC: f64 = 500.0;
/// A bulk re-assign of `BULK_TICKETS` tickets, one transaction.
const BULK_GOAL_MS: f64 = 1000.0;
const BULK_TICKETS: usize = 500;
/// Runs of the bulk figure (each writes 500 tickets).
const BULK_RUNS_MAX: usize = 10;

/// Tickets per import call: each is one transaction, as one `tickets import`
/// of a file this size would be.
const IMPORT_BATCH: usize = 5_000;

const WORDS: &[&str] = &[
    "printer", "vpn", "laptop", "invoice", "refund", "password", "email", "screen", "battery", "network", "login",
    "crash", "slow", "broken", "upgrade", "license", "backup", "phone", "wifi", "keyboard", "delivery", "order",
    "account", "billing", "shipping", "update", "error", "timeout", "sync", "report",
];
const CATEGORIES: &[&str] =
    &["hardware", "network", "billing", "accounts", "email", "software", "shipping", "facilities", "security", "other"];

/// A small deterministic generator, so every run builds the same node.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn record(rng: &mut Rng, i: usize) -> ImportRecord {
    let subject = format!("{} {} {} #{i}", rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS));
    let description: Vec<&str> = (0..30).map(|_| rng.pick(WORDS)).collect();
    let priority = Priority::ALL[rng.below(4)];
    // A realistic backlog: most tickets are done, a good share still open.
    let status = match rng.below(100) {
        0..=29 => Status::Open,
        30..=44 => Status::InProgress,
        45..=74 => Status::Resolved,
        _ => Status::Closed,
    };
    let assignee = match rng.below(10) {
        0..=1 => None,
        2 => Some(format!("team:{}", rng.pick(&["field", "desk", "billing", "network"]))),
        _ => Some(format!("agent{}", rng.below(25))),
    };
    ImportRecord {
        ticket: NewTicket {
            subject,
            priority,
            category: rng.pick(CATEGORIES).to_string(),
            description: Some(description.join(" ")),
            assignee,
        },
        status: Some(status),
    }
}

fn env_usize(key: &str, default: usize) -> usize {
    match std::env::var(key) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{key} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

/// Median, min and max of a series of timings.
struct Stats {
    name: String,
    runs: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    goal_ms: f64,
}

impl Stats {
    fn of(name: &str, mut samples: Vec<Duration>, goal_ms: f64) -> Stats {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = samples.len();
        let median = if n % 2 == 1 { ms(samples[n / 2]) } else { (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0 };
        Stats {
            name: name.to_string(),
            runs: n,
            median_ms: median,
            min_ms: ms(samples[0]),
            max_ms: ms(samples[n - 1]),
            goal_ms,
        }
    }

    fn met(&self) -> bool {
        self.median_ms <= self.goal_ms
    }

    fn print(&self) {
        println!(
            "{:<44} median {:>8.3} ms  min {:>8.3} ms  max {:>8.3} ms  ({} runs; goal <= {} ms: {})",
            self.name,
            self.median_ms,
            self.min_ms,
            self.max_ms,
            self.runs,
            self.goal_ms,
            if self.met() { "met" } else { "MISSED" }
        );
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name, "runs": self.runs, "median_ms": self.median_ms, "min_ms": self.min_ms,
            "max_ms": self.max_ms, "goal_ms": self.goal_ms, "goal_met": self.met(),
        })
    }
}

/// Times `f` `runs` times after one warm-up call.
fn time<T>(runs: usize, mut f: impl FnMut(usize) -> T) -> Vec<Duration> {
    std::hint::black_box(f(usize::MAX));
    (0..runs)
        .map(|i| {
            let t = Instant::now();
            std::hint::black_box(f(i));
            t.elapsed()
        })
        .collect()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn ids_of(rows: &[Value]) -> Vec<String> {
    rows.iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter that
    // this harness does not support, so say so rather than ignore it.
    if let Some(a) = std::env::args().skip(1).find(|a| a != "--bench") {
        eprintln!("node_ops takes no arguments (got {a:?}); use BENCH_TICKETS and BENCH_RUNS");
    }
    let tickets = env_usize("BENCH_TICKETS", 100_000).max(1);
    let runs = env_usize("BENCH_RUNS", 50).max(1);
    let dir = tempfile::tempdir().expect("a temp dir");
    // BENCH_HOME keeps the node afterwards, to look into it with sqlite3.
    let home = match std::env::var_os("BENCH_HOME") {
        Some(h) => PathBuf::from(h),
        None => dir.path().join("node"),
    };
    let mut node = Node::init(&home, "bench", WallClock::default()).expect("init a node");

    println!("node_ops: {tickets} tickets, {runs} runs per figure, home {}", home.display());

    // Import, in batches of one transaction each.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let t = Instant::now();
    let records: Vec<ImportRecord> = (0..tickets).map(|i| record(&mut rng, i)).collect();
    let generate = t.elapsed();
    let mut batch_secs = Vec::new();
    let t = Instant::now();
    for batch in records.chunks(IMPORT_BATCH) {
        let b = Instant::now();
        let n = node.import(batch, &mut |_| {}).expect("import a batch");
        assert_eq!(n, batch.len());
        batch_secs.push(b.elapsed().as_secs_f64());
    }
    let import_secs = t.elapsed().as_secs_f64();
    let per_sec = tickets as f64 / import_secs;
    let batch_rates: Vec<f64> =
        records.chunks(IMPORT_BATCH).zip(&batch_secs).map(|(b, s)| b.len() as f64 / s).collect();
    let first_rate = batch_rates.first().copied().unwrap_or(0.0);
    let last_rate = batch_rates.last().copied().unwrap_or(0.0);
    let db_bytes = dir_bytes(&home);
    println!(
        "{:<44} {per_sec:>10.0} tickets/s  ({tickets} in {import_secs:.1} s, batches of {IMPORT_BATCH}: first {first_rate:.0}/s, last {last_rate:.0}/s; goal >= {IMPORT_GOAL_PER_SEC}/s: {})",
        "import throughput",
        if per_sec >= IMPORT_GOAL_PER_SEC { "met" } else { "MISSED" }
    );
    println!(
        "{:<44} {:>10.1} MiB  ({:.0} bytes/ticket; records generated in {:.2} s)",
        "database size",
        db_bytes as f64 / (1024.0 * 1024.0),
        db_bytes as f64 / tickets as f64,
        generate.as_secs_f64()
    );
    drop(records);
    let layout = storage_layout(&home, tickets);
    println!("{:<44} {layout}", "storage per ticket");

    // Opening the node is what every CLI command pays first.
    let open = Stats::of(
        "open node (per CLI command)",
        time(runs, |_| Node::open(&home, WallClock::default()).expect("open")),
        EDIT_GOAL_MS,
    );
    open.print();

    // Tickets to edit: open ones spread over the node, found once up front.
    let open_q = ListQuery { statuses: vec!["open".into()], ..ListQuery::default() };
    let (open_rows, _) = node.list(&open_q).expect("list open tickets");
    let open_ids = ids_of(&open_rows);
    assert!(open_ids.len() > runs + 1, "the node holds enough open tickets to edit ({})", open_ids.len());
    drop(open_rows);
    let stride = open_ids.len() / (runs + 2);
    // Run i edits the (i+1)-th ticket of the spread; the warm-up the 0th.
    let target = |i: usize| -> &str {
        let slot = if i == usize::MAX { 0 } else { i + 1 };
        &open_ids[(slot * stride) % open_ids.len()]
    };

    let mut stats = vec![open];
    let new = NewTicket {
        subject: "Printer on fire in room 4".into(),
        priority: Priority::High,
        category: "hardware".into(),
        description: Some("Smoke coming out of tray 2".into()),
        assignee: None,
    };
    stats.push(Stats::of(
        "edit: create (incl. commit)",
        time(runs, |_| node.create(&new, None, false).expect("create")),
        EDIT_GOAL_MS,
    ));
    stats.push(Stats::of(
        "edit: status change (incl. commit)",
        time(runs, |i| node.edit(target(i), &[Edit::Status(Status::InProgress)]).expect("status")),
        EDIT_GOAL_MS,
    ));
    stats.push(Stats::of(
        "edit: comment (incl. commit)",
        time(runs, |i| node.edit(target(i), &[Edit::Comment(format!("looked at it, run {i}"))]).expect("comment")),
        EDIT_GOAL_MS,
    ));
    stats.push(Stats::of(
        "edit: comment by 8-char prefix, own process",
        time(runs, |i| {
            let mut n = Node::open(&home, WallClock::default()).expect("open");
            n.edit(&target(i)[..8], &[Edit::Comment("again".into())]).expect("comment")
        }),
        EDIT_GOAL_MS,
    ));

    // The list's `Apply` on a selection: 500 tickets spread over the node
    // re-assigned in one transaction, alternating between two agents so
    // that every run writes each ticket.
    let bulk_ids: Vec<String> = (0..BULK_TICKETS).map(|k| open_ids[(k * 7919 + 3) % open_ids.len()].clone()).collect();
    stats.push(Stats::of(
        "bulk: re-assign 500 tickets (one commit)",
        time(runs.min(BULK_RUNS_MAX), |i| {
            let who = if i % 2 == 0 { "agent1" } else { "agent2" };
            let set = BulkEdit { assignee: Some(Some(who.into())), ..BulkEdit::default() };
            let out = node.bulk_edit(&bulk_ids, &set).expect("bulk edit");
            assert!(out.all_applied(), "{:?}", out.refused.first());
        }),
        BULK_GOAL_MS,
    ));

    let queries: Vec<(&str, ListQuery)> = vec![
        (
            "list: status=open sort -priority limit 50",
            ListQuery {
                statuses: vec!["open".into()],
                sort: Some((SortKey::Priority, true)),
                limit: Some(50),
                ..ListQuery::default()
            },
        ),
        ("list: default (-created) limit 50", ListQuery { limit: Some(50), ..ListQuery::default() }),
        (
            "list: search 'printer' limit 50",
            ListQuery { search: Some("printer".into()), limit: Some(50), ..ListQuery::default() },
        ),
        // Text that matches one ticket: nothing ends the scan early.
        (
            "list: search rare text limit 50",
            ListQuery { search: Some("#4242".into()), limit: Some(50), ..ListQuery::default() },
        ),
        (
            "list: search rare text, sort subject, limit 50",
            ListQuery {
                search: Some("#4242".into()),
                sort: Some((SortKey::Subject, false)),
                limit: Some(50),
                ..ListQuery::default()
            },
        ),
        (
            "list: search id prefix limit 50",
            ListQuery { search: Some(open_ids[7][..4].to_string()), limit: Some(50), ..ListQuery::default() },
        ),
        (
            "list: status=open,in-progress category assignee -updated 50",
            ListQuery {
                statuses: vec!["open".into(), "in-progress".into()],
                categories: vec!["hardware".into()],
                assignees: vec!["agent3".into()],
                sort: Some((SortKey::Updated, true)),
                limit: Some(50),
                ..ListQuery::default()
            },
        ),
        (
            "list: sla=red sort sla limit 50",
            ListQuery {
                sla_ranks: vec![3],
                sort: Some((SortKey::Sla, false)),
                limit: Some(50),
                ..ListQuery::default()
            },
        ),
    ];
    for (name, q) in &queries {
        stats.push(Stats::of(name, time(runs, |_| node.list(q).expect("list")), LIST_GOAL_MS));
    }
    for s in &stats[1..] {
        s.print();
    }

    // Where a list's time goes: the same SQL run alone on a second
    // connection (rows, then the count behind "N of M shown"); the rest of
    // a `list` is parsing stored JSON and computing live SLA figures.
    let mut breakdown = Vec::new();
    for (name, q) in &queries {
        match sql_split(&home, q, node.now_ms(), runs.min(10)) {
            Ok((rows_ms, count_ms)) => {
                println!("  {name:<42} SQL rows {rows_ms:>8.3} ms, SQL count {count_ms:>8.3} ms (medians)");
                breakdown.push(json!({"name": name, "sql_rows_ms": rows_ms, "sql_count_ms": count_ms}));
            }
            Err(e) => println!("  {name:<42} SQL split unavailable: {e}"),
        }
    }

    // How much of a `list` is SQL and how much is building JSON objects:
    // the same query without a limit shows how it scales with matches.
    let t = Instant::now();
    let (all_open, total_open) = node.list(&open_q).expect("list");
    let unlimited = t.elapsed();
    println!(
        "{:<44} {:>10.1} ms  ({} rows; informational: `list --status open --json` prints every match)",
        "list: status=open, no limit",
        unlimited.as_secs_f64() * 1000.0,
        total_open
    );
    drop(all_open);

    let summary = json!({
        "bench": "node_ops",
        "tickets": tickets,
        "runs": runs,
        "import": {
            "tickets_per_sec": per_sec, "seconds": import_secs, "batch": IMPORT_BATCH,
            "first_batch_per_sec": first_rate, "last_batch_per_sec": last_rate,
            "goal_per_sec": IMPORT_GOAL_PER_SEC, "goal_met": per_sec >= IMPORT_GOAL_PER_SEC,
        },
        "database_bytes": db_bytes,
        "list_open_unlimited_ms": unlimited.as_secs_f64() * 1000.0,
        "figures": stats.iter().map(Stats::json).collect::<Vec<_>>(),
        "list_sql_split": breakdown,
    });
    let out = target_dir().join("bench-node.json");
    match std::fs::write(&out, serde_json::to_string_pretty(&summary).unwrap_or_default()) {
        Ok(()) => println!("summary written to {}", out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", out.display()),
    }
}

/// Medians of the list query's row SQL and count SQL, in milliseconds.
fn sql_split(home: &Path, q: &ListQuery, now: i64, runs: usize) -> Result<(f64, f64), rusqlite::Error> {
    use tickets_core::index::{ListSql, SqlArg};
    let conn = rusqlite::Connection::open_with_flags(
        home.join(tickets_node::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let ListSql { filter, tail, args } = q.to_sql(now);
    let values: Vec<(String, rusqlite::types::Value)> = args
        .into_iter()
        .map(|(n, a)| match a {
            SqlArg::Int(i) => (n, rusqlite::types::Value::Integer(i)),
            SqlArg::Text(t) => (n, rusqlite::types::Value::Text(t)),
        })
        .collect();
    let run = |sql: &str| -> Result<Duration, rusqlite::Error> {
        let bind: Vec<(&str, &dyn rusqlite::ToSql)> = values
            .iter()
            .filter(|(n, _)| sql.contains(n.as_str()))
            .map(|(n, v)| (n.as_str(), v as &dyn rusqlite::ToSql))
            .collect();
        let t = Instant::now();
        let mut st = conn.prepare(sql)?;
        let mut rows = st.query(bind.as_slice())?;
        while let Some(r) = rows.next()? {
            std::hint::black_box(r.get::<_, rusqlite::types::Value>(0)?);
        }
        Ok(t.elapsed())
    };
    let rows_sql = format!("SELECT id FROM tickets{filter}{tail}");
    let count_sql = format!("SELECT count(*) FROM tickets{filter}");
    let median = |sql: &str| -> Result<f64, rusqlite::Error> {
        let mut v = (0..runs.max(1)).map(|_| run(sql)).collect::<Result<Vec<_>, _>>()?;
        v.sort();
        Ok(v[v.len() / 2].as_secs_f64() * 1000.0)
    };
    Ok((median(&rows_sql)?, median(&count_sql)?))
}

/// Where the database's bytes go: files on disk and the payload columns,
/// per ticket.
fn storage_layout(home: &Path, tickets: usize) -> String {
    let db = home.join(tickets_node::DB_FILE);
    let file = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = file(&db.with_extension("db-wal"));
    let main = file(&db);
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let sums = rusqlite::Connection::open_with_flags(&db, flags).and_then(|c| {
        let docs: i64 = c.query_row("SELECT coalesce(sum(length(bytes)), 0) FROM docs", [], |r| r.get(0))?;
        let (view, sla): (i64, i64) = c.query_row(
            "SELECT coalesce(sum(length(view_json)), 0), coalesce(sum(length(sla_input)), 0) FROM ticket_views",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((docs, view, sla))
    });
    let per = |b: u64| b as f64 / tickets as f64;
    match sums {
        Ok((docs, view, sla)) => format!(
            "node.db {:.0} B, WAL {:.0} B; payload: automerge {:.0} B, view_json {:.0} B, sla_input {:.0} B",
            per(main),
            per(wal),
            per(docs as u64),
            per(view as u64),
            per(sla as u64)
        ),
        Err(e) => format!("node.db {:.0} B, WAL {:.0} B (payload sizes unavailable: {e})", per(main), per(wal)),
    }
}

/// The workspace's `target` folder (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"),
    }
}
