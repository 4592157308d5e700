//! Deterministic simulation of the whole sync system (CONVENTIONS, Tests; in
//! the manner of samod's test harness and TigerBeetle's VOPR).
//!
//! Each seed builds three or four real nodes (SQLite files in a temporary
//! folder, device clocks up to three hours wrong) and one real relay store,
//! all in one thread and on one virtual clock. Nodes reach the relay through
//! a simulated network that calls the relay's sync exchange directly (no
//! HTTP, no tokio) and, driven by the seeded RNG, drops requests, applies
//! requests but loses their responses, delivers requests twice, delivers
//! stale requests late (reordering), and cuts nodes off for a while.
//!
//! Three phases:
//! - **random**: creates (some from one conversation on several nodes, some
//!   forced), field edits, assignments, status changes (refused reopens of
//!   closed tickets included), description typing, comments, internal notes
//!   (refused locally where the node knows it may not write them), syncs,
//!   partitions, late deliveries, node restarts, SLA target changes and
//!   grants and revocations of the internal-notes permission on the relay,
//!   with time moving on; every local command's outcome is checked as it
//!   happens, and after each sync a node whose agent may not read notes must
//!   hold none in its files;
//!
//!   Among them, a hostile device: `mallory`, a plain agent with a registered
//!   actor and no node, at random steps takes the relay's copy of a random
//!   ticket (pulled afresh through the sync exchange, or the copy she pulled
//!   last) and pushes one hostile change, drawn from the attack shapes of
//!   issue #15 (overwrite or delete an event, write the root, a nested
//!   object, a far-future stamp, another agent's name, another device's
//!   stamp, another device's actor, an upper-case ticket id, a note in the
//!   public document, a notes document she may not write, a comment over
//!   the operator's per-comment limit), through the same
//!   `deliver` path as honest devices. Every such push must be refused with
//!   the attack's code. Her choices come from a stream of their own, so a
//!   seed's honest operations are the ones it had without her;
//! - **heal**: the network calms down, late requests land, every node syncs
//!   until nothing moves;
//! - **check**: every node and the relay hold the same tickets and the same
//!   document heads; every node shows every ticket byte for byte alike (the
//!   live `sla` figures and the device's own `refusals` record aside, and
//!   notes only where permitted) and shows the relay's SLA figures; the
//!   relay's objects match apart from times (the relay shows effective
//!   times); no accepted comment or note is lost or duplicated, every node
//!   shows each at its author's device time (virtual time plus that
//!   device's offset when it wrote it, not its ordering stamp), and every
//!   accepted change is in the history; one conversation gives one ticket;
//!   and no note body is anywhere in the files of a node whose agent may not
//!   read notes; and nothing mallory sent is in any node's files, in the
//!   relay's database or in any ticket.
//!
//! `SIM_SEEDS=n` runs seeds `0..n` (default [`SEEDS_DEFAULT`]); `SIM_SEED=n`
//! replays exactly one seed; `SIM_SEED_FIRST=k` starts the range at `k` (to
//! explore new seeds); `SIM_OPS=n` runs n operations per seed. A failure
//! names its seed and the command that replays it, and shows the operations
//! that led to it (`SIM_TRACE_LINES=n` shows more; `SIM_KEEP=1` keeps its
//! databases).
//!
//! Ticket ids come from `Node::create` (random v4 uuids, as in the product),
//! so a replay reproduces the same operations and faults but with other ids;
//! everything else (device actors, clocks, faults, choices) is seeded.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType, ReadDoc, ROOT};
use serde_json::Value;
use tickets_core::change_policy::RefusalCode;
use tickets_core::conversation::{Conversation, Customer, Message, Role};
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{create_ticket, Author, Edit, EditError, NewTicket};
use tickets_core::event::{EventBody, StoredEvent};
use tickets_core::hlc::{Clock, Hlc};
use tickets_core::ids;
use tickets_core::model::{Priority, Status};
use tickets_core::protocol::{
    decode_data, encode_data, DocData, PullRequest, SyncRequest, SyncResponse, PROTOCOL_VERSION,
};
use tickets_core::sla::Targets;
use tickets_node::store::Store;
use tickets_node::sync::{SyncError, SyncReport, Transport};
use tickets_node::{EditOutcome, ListQuery, Node, NodeError, WallClock, DB_FILE};
use tickets_relay::store::Conn;
use tickets_relay::{auth, sync as relay_sync, Db};
use uuid::Uuid;

/// Seeds per run unless `SIM_SEEDS` says otherwise.
const SEEDS_DEFAULT: u64 = 1000;
/// Random operations per seed.
const OPS_MIN: usize = 15;
const OPS_MAX: usize = 35;
const NODES_MAX: usize = 4;
/// Conversations a seed's agents may create tickets from.
const CONVERSATIONS: usize = 2;
/// Earlier requests the network keeps to deliver late.
const STALE_REQUESTS_MAX: usize = 8;
/// A sync that needs more rounds than this is stuck.
const ROUNDS_PER_SYNC_MAX: usize = 50;
/// Passes of every node syncing, after the faults stop, within which the
/// system must come to rest.
const HEAL_PASSES_MAX: usize = 3;
/// Operations shown when a seed fails (`SIM_TRACE_LINES` to see more).
const TRACE_LINES_SHOWN: usize = 80;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const CLOCK_SKEW_MAX: i64 = 3 * HOUR;

const CATEGORIES: [&str; 3] = ["billing", "hardware", "network"];
const SUBJECTS: [&str; 5] = ["Printer jams", "VPN down", "Imprimante bloquée ✓", "Refund request", "Login loop"];
const ASSIGNEES: [Option<&str>; 5] = [None, Some("lena"), Some("omar"), Some("pia"), Some("team:field")];
const TYPED: [&str; 6] = ["x", "hello ", "é", "🙂", "\n", "日本"];
/// Every note body starts with this, so a file is scanned quickly.
const NOTE_MARK: &str = "NOTE#";
/// The operator's per-comment limit in the simulation, in bytes (the
/// honest devices' comments are far shorter; mallory's oversized one is
/// not).
const SIM_COMMENT_BYTES: u64 = 1024;

/// Percent of random-phase steps at which mallory attacks.
const HOSTILE_PERCENT: u32 = 20;
/// Percent of attacks made on a copy pulled afresh (else on the last one).
const HOSTILE_FRESH_PERCENT: u32 = 70;
/// Everything mallory writes carries this, so files are scanned for it.
const HOSTILE_MARK: &str = "MALLORY#";

/// The agents of every seed: (name, role, team, internal notes granted).
/// `lena` is a lead (reads notes whatever the grant); `omar` starts with the
/// grant and `pia` without; the simulation grants and revokes both.
const AGENTS: [(&str, &str, &str, bool); 3] =
    [("lena", "lead", "desk", false), ("omar", "agent", "field", true), ("pia", "agent", "field", false)];

// ---------------------------------------------------------------------------
// The test.

#[test]
fn simulation() {
    let seeds = seeds_from_env();
    let started = Instant::now();
    // Seeds are independent and each runs start to finish on one thread, so
    // spreading them over the cores changes nothing but the time taken.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, seeds.len().max(1));
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let total = Mutex::new(Stats::default());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if !failures.lock().expect("failures").is_empty() {
                    break;
                }
                let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                match run_reporting(seed) {
                    Ok(stats) => total.lock().expect("stats").add(&stats),
                    Err(report) => failures.lock().expect("failures").push((seed, report)),
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures");
    failures.sort();
    if let Some((_, report)) = failures.first() {
        panic!("{report}");
    }
    let total = total.into_inner().expect("stats");
    let counts: Vec<String> = total.0.iter().map(|(what, n)| format!("{n} {what}")).collect();
    eprintln!("simulation: {} seeds in {:.1}s: {}", seeds.len(), started.elapsed().as_secs_f64(), counts.join(", "));
}

/// Runs one seed; a failure comes back as a report that names the seed,
/// shows what led to it and says how to replay it.
fn run_reporting(seed: u64) -> Result<Stats, String> {
    TRACE.with(|t| t.borrow_mut().clear());
    std::panic::catch_unwind(|| run(seed)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(no message)".into());
        let trace = TRACE.with(|t| {
            let t = t.borrow();
            let shown = std::env::var("SIM_TRACE_LINES").ok().and_then(|n| n.parse().ok()).unwrap_or(TRACE_LINES_SHOWN);
            t[t.len().saturating_sub(shown)..].join("\n  ")
        });
        format!(
            "simulation failed with seed {seed}: {message}\n\
             last operations:\n  {trace}\n\
             replay: SIM_SEED={seed} cargo test -p tickets-relay --test simulation"
        )
    })
}

fn seeds_from_env() -> Vec<u64> {
    let var = |name: &str| -> Option<u64> {
        let v = std::env::var(name).ok()?;
        Some(v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not '{v}'")))
    };
    if let Some(seed) = var("SIM_SEED") {
        return vec![seed];
    }
    let first = var("SIM_SEED_FIRST").unwrap_or(0);
    (first..first + var("SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect()
}

/// One seed, start to finish.
fn run(seed: u64) -> Stats {
    let mut sim = Sim::new(seed);
    sim.join();
    sim.random_phase();
    sim.heal();
    sim.check();
    std::mem::take(&mut sim.net.stats)
}

thread_local! {
    /// What the current seed did, shown when it fails.
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn trace(line: String) {
    TRACE.with(|t| t.borrow_mut().push(line));
}

/// How often each thing happened, summed over seeds: shows that the
/// scenarios are reached.
#[derive(Debug, Default)]
struct Stats(BTreeMap<&'static str, u64>);

impl Stats {
    fn bump(&mut self, what: &'static str, n: u64) {
        *self.0.entry(what).or_default() += n;
    }

    fn add(&mut self, other: &Stats) {
        for (what, n) in &other.0 {
            self.bump(what, *n);
        }
    }
}

// ---------------------------------------------------------------------------
// The world.

struct Sim {
    rng: fastrand::Rng,
    /// Relay time; each node reads it plus its own offset.
    clock: Arc<AtomicI64>,
    relay: Conn,
    relay_path: PathBuf,
    agents: Vec<Agent>,
    nodes: Vec<SimNode>,
    net: Network,
    conversations: Vec<Conversation>,
    /// Every ticket created, in creation order (choices iterate this, not
    /// the random ids, so that a replay makes the same choices).
    tickets: Vec<String>,
    /// Tickets created with `force` for a conversation that had one.
    forced: HashSet<String>,
    /// Conversations some node made a ticket from.
    converted: BTreeSet<usize>,
    /// Comments and notes that a node accepted locally.
    written: Vec<Written>,
    /// Changes that a node accepted locally, as history entries: (ticket,
    /// field, to, by).
    changed: Vec<(String, &'static str, Option<String>, String)>,
    /// When the relay's SLA targets changed (relay time).
    target_changes: Vec<i64>,
    /// Operation counter (orders writes and revocations).
    seq: usize,
    hostile: Hostile,
    /// The folder of every database, removed with the simulation unless it
    /// fails with `SIM_KEEP` set.
    dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("SIM_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            trace(format!("databases kept in {}", self.dir.path().display()));
        }
    }
}

struct Agent {
    name: &'static str,
    role: &'static str,
    token_hash: String,
    /// The relay's internal-notes grant (a lead reads notes regardless).
    granted: bool,
    /// The operation at which the agent last lost the right to read notes.
    revoked_at: Option<usize>,
}

impl Agent {
    fn may_read_notes(&self) -> bool {
        self.granted || self.role == "lead" || self.role == "admin"
    }
}

struct SimNode {
    node: Node,
    agent: usize,
    home: PathBuf,
    /// The device clock's error.
    offset_ms: i64,
    /// The relay is out of reach until this instant.
    partitioned_until: i64,
    /// What the last response this node received said of notes (before any:
    /// a local-only node may write notes).
    believes_notes: bool,
    /// How many responses told the node that its agent may not read notes
    /// (each one purges the notes on the device).
    purges: u64,
    /// The node heard of a notes grant but has not finished pulling
    /// everything again (its sync was cut short).
    repull_pending: bool,
    /// The device clock was set differently at a restart.
    clock_changed: bool,
}

struct Written {
    ticket: String,
    body: String,
    note: bool,
    agent: usize,
    seq: usize,
    /// The relay had already revoked the agent's notes permission (the
    /// node had not heard yet).
    revoked_before: bool,
    /// The writing device's own clock when it wrote the entry (virtual
    /// time plus the device's offset at that moment).
    device_ms: i64,
}

#[derive(Debug)]
enum Op {
    Create {
        node: usize,
        new: NewTicket,
        conversation: Option<usize>,
        force: bool,
    },
    Edit {
        node: usize,
        ticket: String,
        edit: Edit,
    },
    Sync {
        node: usize,
    },
    Partition {
        node: usize,
        until: i64,
    },
    DeliverLate,
    SetNotes {
        agent: usize,
        allowed: bool,
    },
    /// The relay operator changes an SLA target (a new settings epoch).
    SetTarget {
        priority: Priority,
        first_response_secs: Option<u64>,
        resolution_secs: Option<u64>,
    },
    /// The node's process ends and starts again from its database, maybe
    /// with its device clock set differently (corrected, or wrong anew).
    Restart {
        node: usize,
        offset_ms: i64,
    },
    Advance {
        ms: i64,
    },
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = fastrand::Rng::with_seed(seed);
        let dir = scratch_dir();
        let clock = Arc::new(AtomicI64::new(T0));
        let relay_path = dir.path().join("relay.db");
        let db = Db::open(&relay_path, true).expect("relay database");
        let mut relay = db.conn().expect("relay connection");
        relay.set_categories(&CATEGORIES.map(String::from)).expect("categories");
        let limits = tickets_core::limits::Limits { comment_bytes: SIM_COMMENT_BYTES, ..Default::default() };
        tickets_relay::store::RelayStore::set_limits(&mut relay, &limits).expect("limits");
        relay
            .update_sla(T0, |p| {
                let t = |fr: i64, res: i64| Targets {
                    first_response_secs: Some((fr / SECOND) as u64),
                    resolution_secs: Some((res / SECOND) as u64),
                };
                p.targets.insert(Priority::Urgent, t(15 * MINUTE, 4 * HOUR));
                p.targets.insert(Priority::High, t(HOUR, 8 * HOUR));
                p.targets.insert(Priority::Medium, t(4 * HOUR, 2 * 24 * HOUR));
            })
            .expect("SLA settings");
        let agents: Vec<Agent> = AGENTS
            .iter()
            .map(|&(name, role, team, granted)| {
                let token_hash = auth::token_hash(&format!("tk_sim_{name}"));
                relay.add_agent(name, role, Some(team), granted, &token_hash, T0).expect("add agent");
                Agent { name, role, token_hash, granted, revoked_at: None }
            })
            .collect();
        let count = rng.usize(3..=NODES_MAX);
        let mut nodes = Vec::new();
        for i in 0..count {
            // A fourth node is a second device of one of the plain agents.
            let agent = if i < agents.len() { i } else { rng.usize(1..agents.len()) };
            let name = agents[agent].name;
            // Seeded actors rather than `Node::new_actor()`: they order
            // concurrent edits (clock ties), so a replay needs the same ones.
            let actor = ActorId::from(rng.u128(..).to_be_bytes());
            let actor_hex = actor.to_hex_string();
            relay.register_device(&actor_hex, name, T0).expect("register device");
            // Every run has one device 2 h ahead and one 3 h behind (their
            // stamps drag the others' ordering clocks, never their times);
            // the rest are drawn.
            let drawn = rng.i64(-CLOCK_SKEW_MAX..=CLOCK_SKEW_MAX);
            let offset = match i {
                0 => 2 * HOUR,
                1 => -3 * HOUR,
                _ => drawn,
            };
            let home = dir.path().join(format!("node{i}"));
            let node = Node::init_with_actor(&home, name, actor, WallClock::virtual_time(clock.clone(), offset))
                .expect("node init");
            trace(format!("node {i}: agent {name}, actor {}, clock offset {}s", actor_hex, offset / SECOND));
            nodes.push(SimNode {
                node,
                agent,
                home,
                offset_ms: offset,
                partitioned_until: i64::MIN,
                believes_notes: true,
                purges: 0,
                repull_pending: false,
                clock_changed: false,
            });
        }
        let conversations = (0..CONVERSATIONS).map(|k| conversation(k, &mut rng)).collect();
        let hostile = Hostile::new(&mut relay, seed);
        let net = Network::new(&mut rng);
        trace(format!("network: {:?}", net.faults));
        Sim {
            rng,
            clock,
            relay,
            relay_path,
            agents,
            nodes,
            net,
            conversations,
            tickets: Vec::new(),
            forced: HashSet::new(),
            converted: BTreeSet::new(),
            written: Vec::new(),
            changed: Vec::new(),
            target_changes: Vec::new(),
            seq: 0,
            hostile,
            dir,
        }
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::Relaxed)
    }

    fn advance(&mut self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::Relaxed);
    }

    // ---- phases ------------------------------------------------------------

    /// Every node syncs once over a calm network, as `tickets init --relay`
    /// does: it learns the taxonomy and whether its agent may write notes.
    fn join(&mut self) {
        for i in 0..self.nodes.len() {
            self.sync(i).unwrap_or_else(|e| panic!("node {i}: first sync failed: {e}"));
        }
        self.net.faults_on = true;
    }

    fn random_phase(&mut self) {
        let ops = match std::env::var("SIM_OPS").ok().and_then(|v| v.trim().parse().ok()) {
            Some(n) => n,
            None => self.rng.usize(OPS_MIN..=OPS_MAX),
        };
        for _ in 0..ops {
            self.seq += 1;
            self.net.stats.bump("ops", 1);
            let op = self.next_op();
            trace(format!("t+{}s {op:?}", (self.now() - T0) / SECOND));
            self.apply(op);
            if self.hostile.rng.u32(0..100) < HOSTILE_PERCENT {
                self.attack();
            }
            let step = self.rng.i64(0..=2 * MINUTE);
            self.advance(step);
        }
    }

    /// No more faults: requests still in flight land, partitions end, and
    /// every node syncs until nothing moves.
    fn heal(&mut self) {
        trace("heal".into());
        self.net.faults_on = false;
        for n in &mut self.nodes {
            n.partitioned_until = i64::MIN;
        }
        while !self.net.stale.is_empty() {
            self.deliver_late();
        }
        // Two passes carry everything everywhere (the first pushes, the
        // second pulls what later nodes pushed); the last one must be quiet.
        for pass in 1.. {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let r = self.sync(i).unwrap_or_else(|e| panic!("healing pass {pass}: node {i} could not sync: {e}"));
                assert!(r.pending == 0 && !r.incomplete, "healing pass {pass}: node {i} did not finish: {r:?}");
                // A refusal is movement too: a note written after a revocation
                // the node had not heard of is refused once, then purged.
                moved |= r.pushed > 0 || r.pulled > 0 || !r.refused.is_empty();
                let step = self.rng.i64(0..=MINUTE);
                self.advance(step);
            }
            if !moved {
                break;
            }
            assert!(pass < HEAL_PASSES_MAX, "documents still move after {pass} calm passes");
        }
    }

    fn check(&mut self) {
        assert_eq!(self.relay.integrity_check().expect("relay integrity check"), "ok", "relay database damaged");
        let relay = self.relay_objects(self.now());
        let ids: BTreeSet<String> = relay.keys().cloned().collect();
        let created: BTreeSet<String> = self.tickets.iter().cloned().collect();
        assert_eq!(ids, created, "the relay does not hold exactly the tickets that were created");
        let relay_heads = self.relay_heads();
        let shows: Vec<BTreeMap<String, Value>> = (0..self.nodes.len()).map(|i| self.node_objects(i)).collect();
        for (i, objects) in shows.iter().enumerate() {
            let mine: BTreeSet<String> = objects.keys().cloned().collect();
            assert_eq!(mine, ids, "node {i} does not hold the relay's tickets");
            let status = self.nodes[i].node.status().expect("node status");
            assert_eq!(status.refused, 0, "node {i} holds refused documents after healing");
            self.check_heads(i, &relay_heads);
            self.check_sla(i, objects);
        }
        self.check_shows(&relay, &shows);
        self.check_written(&relay, &shows);
        self.check_changed(&relay);
        self.check_conversations(&relay);
        for i in 0..self.nodes.len() {
            if !self.permitted(i) {
                self.check_no_notes_on_disk(i, "after healing");
            }
        }
        self.check_nothing_hostile(&relay, &shows, &relay_heads);
    }

    /// Nothing mallory sent is anywhere: not in a ticket as the relay or a
    /// node shows it, not in any file of a node or of the relay, and no
    /// document is stored under an id that is not one of the tickets.
    fn check_nothing_hostile(
        &mut self,
        relay: &BTreeMap<String, Value>,
        shows: &[BTreeMap<String, Value>],
        relay_heads: &BTreeMap<(String, String), Vec<String>>,
    ) {
        let replica = ids::replica_of(&self.hostile.actor);
        let objects = std::iter::once(("the relay".to_string(), relay))
            .chain(shows.iter().enumerate().map(|(i, o)| (format!("node {i}"), o)));
        for (who, tickets) in objects {
            for (id, v) in tickets {
                let text = v.to_string();
                assert!(
                    !text.contains(HOSTILE_MARK) && !text.contains("mallory") && !text.contains(&replica),
                    "{who}: ticket {id} shows something mallory sent: {v:#}"
                );
            }
        }
        for (id, kind) in relay_heads.keys() {
            assert!(self.tickets.contains(id), "the relay stores a {kind} document under '{id}', not a ticket's id");
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for home in self.nodes.iter().map(|n| n.home.clone()).chain(self.relay_path.parent().map(Path::to_path_buf)) {
            for entry in std::fs::read_dir(&home).expect("read a database folder") {
                let path = entry.expect("a folder entry").path();
                let name = file_name(&path);
                if name.starts_with(DB_FILE) || name.starts_with("relay.db") {
                    files.push(path);
                }
            }
        }
        for path in files {
            let raw = std::fs::read(&path).expect("read a database file");
            assert!(
                find(&raw, HOSTILE_MARK.as_bytes()).is_none(),
                "{} holds bytes of a push mallory sent",
                path.display()
            );
        }
        self.net.stats.bump("hostile checks", 1);
    }

    /// Every node shows every ticket alike, byte for byte, and as the relay
    /// does apart from times.
    fn check_shows(&self, relay: &BTreeMap<String, Value>, shows: &[BTreeMap<String, Value>]) {
        let reference = (0..self.nodes.len()).find(|&i| self.permitted(i)).expect("the lead's node reads notes");
        for (id, relay_object) in relay {
            let theirs = &shows[reference][id];
            // `sla` is live; `refusals` is the device's own record of what the
            // relay refused it, not ticket data.
            // `new_for_you` is a device's own state, like its refusals.
            let full = canonical(theirs, &["sla", "refusals", "new_for_you"]);
            // `updated_at` follows the public ticket only, so readers with
            // and without the notes permission agree on it.
            let hidden = ["sla", "refusals", "new_for_you", "internal_notes"];
            let public = canonical(theirs, &hidden);
            for (i, objects) in shows.iter().enumerate() {
                let permitted = self.permitted(i);
                assert_eq!(
                    objects[id].get("internal_notes").is_some(),
                    permitted,
                    "node {i} ({}): ticket {id} shows notes iff permitted",
                    self.agent_of(i).name
                );
                let (mine, expected) = if permitted {
                    (canonical(&objects[id], &["sla", "refusals", "new_for_you"]), &full)
                } else {
                    (canonical(&objects[id], &hidden), &public)
                };
                assert_eq!(&mine, expected, "ticket {id}: node {i} and node {reference} differ");
            }
            // The relay shows effective times; everything else must match.
            let times =
                ["sla", "refusals", "new_for_you", "at", "created_at", "updated_at", "resolved_at", "closed_at"];
            assert_eq!(
                canonical(relay_object, &times),
                canonical(theirs, &times),
                "ticket {id}: the relay and node {reference} differ (times aside)"
            );
        }
    }

    /// A synced node shows the relay's SLA figures, moved into its own clock
    /// frame: the relay's `sla` with every instant shifted by the node's
    /// clock error (the simulation hands responses over without delay, so
    /// the skew the node measures is exactly that error).
    fn check_sla(&self, i: usize, objects: &BTreeMap<String, Value>) {
        let relay = self.relay_objects(self.now());
        let offset = self.nodes[i].offset_ms;
        for (id, v) in objects {
            // A node shows the relay's figures in its own clock frame.
            assert_eq!(
                v["sla"],
                shifted(&relay[id]["sla"], offset),
                "node {i}: ticket {id} does not show the relay's SLA (in its clock frame, {offset} ms off)"
            );
        }
    }

    // ---- operations --------------------------------------------------------

    fn next_op(&mut self) -> Op {
        let node = self.rng.usize(..self.nodes.len());
        match self.rng.u32(0..100) {
            0..=11 => self.create_op(node),
            12..=51 => {
                let known = self.known_tickets(node);
                if known.is_empty() {
                    return Op::Sync { node };
                }
                let (ticket, view) = &known[self.rng.usize(..known.len())];
                let edit = self.random_edit(view);
                Op::Edit { node, ticket: ticket.clone(), edit }
            }
            52..=81 => Op::Sync { node },
            82..=86 => Op::Advance { ms: self.rng.i64(MINUTE..=8 * HOUR) },
            87..=89 => Op::Partition { node, until: self.now() + self.rng.i64(10 * MINUTE..=4 * HOUR) },
            90..=92 => Op::DeliverLate,
            93 => {
                let offset_ms = match self.rng.bool() {
                    true => self.nodes[node].offset_ms,
                    false => self.rng.i64(-CLOCK_SKEW_MAX..=CLOCK_SKEW_MAX),
                };
                Op::Restart { node, offset_ms }
            }
            94 => Op::SetTarget {
                priority: pick(&mut self.rng, &Priority::ALL),
                first_response_secs: self.rng.bool().then(|| self.rng.u64(1..=8) * 15 * 60),
                resolution_secs: self.rng.bool().then(|| self.rng.u64(1..=48) * 3600),
            },
            95..=99 => Op::SetNotes { agent: self.rng.usize(1..self.agents.len()), allowed: self.rng.bool() },
            _ => Op::Sync { node },
        }
    }

    fn create_op(&mut self, node: usize) -> Op {
        let rng = &mut self.rng;
        let category = if rng.u32(0..100) < 3 { "unlisted".to_string() } else { pick(rng, &CATEGORIES).to_string() };
        let new = NewTicket {
            subject: pick(rng, &SUBJECTS).to_string(),
            priority: pick(rng, &Priority::ALL),
            category,
            description: rng.bool().then(|| format!("typed on node {node}")),
            assignee: pick(rng, &ASSIGNEES).map(String::from),
        };
        let conversation = (rng.u32(0..100) < 40).then(|| rng.usize(..CONVERSATIONS));
        let force = conversation.is_some() && rng.u32(0..100) < 15;
        Op::Create { node, new, conversation, force }
    }

    fn random_edit(&mut self, view: &Value) -> Edit {
        let rng = &mut self.rng;
        match rng.u32(0..100) {
            0..=9 => Edit::Subject(pick(rng, &SUBJECTS).to_string()),
            10..=19 => Edit::Priority(pick(rng, &Priority::ALL)),
            20..=27 => Edit::Category(pick(rng, &CATEGORIES).to_string()),
            28..=37 => Edit::Assignee(pick(rng, &ASSIGNEES).map(String::from)),
            38..=57 => Edit::Status(pick(rng, &Status::ALL)),
            58..=69 => {
                let mut chars: Vec<char> = view["description"].as_str().unwrap_or_default().chars().collect();
                let at = rng.usize(..=chars.len());
                if rng.u32(0..100) < 30 && at < chars.len() {
                    let end = (at + rng.usize(1..=4)).min(chars.len());
                    chars.drain(at..end);
                } else {
                    chars.splice(at..at, pick(rng, &TYPED).chars());
                }
                Edit::Description(chars.into_iter().collect())
            }
            70..=84 => Edit::Comment(format!("comment {}-{}", self.seq, rng.u32(..1000))),
            _ => Edit::Note(format!("{NOTE_MARK}{} secret {}", self.seq, rng.u32(..1000))),
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Create { node, new, conversation, force } => self.create(node, &new, conversation, force),
            Op::Edit { node, ticket, edit } => self.edit(node, &ticket, edit),
            Op::Sync { node } => match self.sync(node) {
                Ok(_) => {
                    if !self.permitted(node) {
                        self.check_no_notes_on_disk(node, "after a sync");
                    }
                }
                Err(SyncError::Transport { .. }) => {}
                Err(e) => panic!("node {node}: sync failed with more than a network error: {e}"),
            },
            Op::Partition { node, until } => self.nodes[node].partitioned_until = until,
            Op::DeliverLate => self.deliver_late(),
            Op::SetNotes { agent, allowed } => self.set_notes(agent, allowed),
            Op::SetTarget { priority, first_response_secs, resolution_secs } => {
                let now = self.now();
                self.relay
                    .update_sla(now, |p| {
                        p.targets.insert(priority, Targets { first_response_secs, resolution_secs });
                    })
                    .expect("update SLA settings");
                self.target_changes.push(now);
                self.net.stats.bump("SLA target changes", 1);
            }
            Op::Restart { node, offset_ms } => self.restart(node, offset_ms),
            Op::Advance { ms } => self.advance(ms),
        }
    }

    fn create(&mut self, node: usize, new: &NewTicket, conversation: Option<usize>, force: bool) {
        let conv = conversation.map(|k| self.conversations[k].clone());
        let unlisted = !CATEGORIES.contains(&new.category.as_str());
        let exists = conv
            .as_ref()
            .is_some_and(|c| self.listed(node).values().any(|v| v["conversation_id"].as_str() == Some(c.id.as_str())));
        // The category is checked first; then a conversation that has a
        // ticket here already refuses a second one unless forced.
        let duplicate = exists && !force;
        let result = self.nodes[node].node.create(new, conv.as_ref(), force);
        match result {
            Err(NodeError::UnknownCategory(..)) if unlisted => self.net.stats.bump("unlisted categories refused", 1),
            Err(NodeError::ConversationExists { .. }) if !unlisted && duplicate => {
                self.net.stats.bump("second tickets for a conversation refused", 1)
            }
            Ok(id) if !unlisted && !duplicate => {
                trace(format!("  created {id}"));
                if let (Some(c), Some(k)) = (&conv, conversation) {
                    self.converted.insert(k);
                    let derived = ids::conversation_ticket_id(c.id.trim()).to_string();
                    if id != derived {
                        assert!(
                            force && exists,
                            "node {node}: a ticket from a conversation got id {id}, not {derived}"
                        );
                        self.forced.insert(id.clone());
                        self.net.stats.bump("forced tickets", 1);
                    } else if self.tickets.contains(&id) {
                        self.net.stats.bump("conversation tickets made on two nodes", 1);
                    }
                }
                let by = self.agent_of(node).name.to_string();
                self.changed.push((id.clone(), "created", Some(new.subject.clone()), by));
                if !self.tickets.contains(&id) {
                    self.tickets.push(id);
                    self.net.stats.bump("tickets", 1);
                }
            }
            r => panic!(
                "node {node}: create (unlisted category: {unlisted}, conversation ticket exists here: {exists}, \
                 force: {force}) gave {r:?}"
            ),
        }
    }

    fn edit(&mut self, node: usize, ticket: &str, edit: Edit) {
        let before = self.nodes[node].node.show(ticket).expect("show a known ticket");
        let closed = before["status"].as_str() == Some(Status::Closed.as_str());
        let believes_notes = self.nodes[node].believes_notes;
        let repull_pending = self.nodes[node].repull_pending;
        let result = self.nodes[node].node.edit(ticket, std::slice::from_ref(&edit));
        match (&edit, result) {
            (Edit::Status(to), Err(NodeError::Edit(EditError::Transition(_)))) if closed && *to != Status::Closed => {
                self.net.stats.bump("reopens of closed tickets refused", 1)
            }
            // Closed is final for every field, comments and notes aside.
            (e, Err(NodeError::Edit(EditError::Transition(_))))
                if closed && !matches!(e, Edit::Status(_) | Edit::Comment(_) | Edit::Note(_)) =>
            {
                self.net.stats.bump("field edits of closed tickets refused", 1)
            }
            (Edit::Note(_), Err(NodeError::NotesForbidden(_))) if !believes_notes => {
                self.net.stats.bump("notes refused locally", 1)
            }
            // Granted again after a revocation purged its notes, a device
            // refuses new notes until it has pulled the old ones back (a
            // fresh notes document would reuse the sequence numbers its
            // purged one holds on the relay).
            (Edit::Note(_), Err(NodeError::NotesRestoring)) if repull_pending => {
                self.net.stats.bump("notes refused while the notes are re-pulled", 1)
            }
            (Edit::Status(to), Ok(_)) if closed && *to != Status::Closed => {
                panic!("node {node}: ticket {ticket} left closed for {to}")
            }
            (Edit::Note(_), Ok(_)) if !believes_notes => {
                panic!("node {node}: wrote a note although the relay said its agent may not")
            }
            (Edit::Comment(body) | Edit::Note(body), Ok((_, outcome))) => {
                assert_eq!(outcome, EditOutcome::Changed, "node {node}: a comment or note changed nothing");
                let note = matches!(edit, Edit::Note(_));
                let agent = self.nodes[node].agent;
                let revoked_before = !self.agents[agent].may_read_notes();
                let seq = self.seq;
                let device_ms = self.now() + self.nodes[node].offset_ms;
                self.net.stats.bump(if note { "notes written" } else { "comments written" }, 1);
                self.written.push(Written {
                    ticket: ticket.to_string(),
                    body: body.clone(),
                    note,
                    agent,
                    seq,
                    revoked_before,
                    device_ms,
                });
            }
            (_, Ok((_, EditOutcome::Unchanged))) => {}
            (_, Ok((_, EditOutcome::Changed))) => {
                let (field, to) = match &edit {
                    Edit::Subject(s) => ("subject", Some(s.clone())),
                    Edit::Priority(p) => ("priority", Some(p.as_str().to_string())),
                    Edit::Category(c) => ("category", Some(c.clone())),
                    Edit::Assignee(a) => ("assignee", a.clone()),
                    Edit::Status(s) => ("status", Some(s.as_str().to_string())),
                    Edit::Description(_) => ("description", None),
                    Edit::Comment(_) | Edit::Note(_) => unreachable!("handled above"),
                };
                let by = self.agent_of(node).name.to_string();
                self.changed.push((ticket.to_string(), field, to, by));
            }
            (_, Err(e)) => panic!("node {node}: edit {edit:?} of {ticket} was refused: {e}"),
        }
    }

    /// One sync of a node over the simulated network.
    fn sync(&mut self, i: usize) -> Result<SyncReport, SyncError> {
        self.net.stats.bump("syncs", 1);
        let now = self.now();
        let Sim { nodes, agents, relay, net, rng, clock, .. } = self;
        let n = &mut nodes[i];
        let link = Link {
            node: i,
            purges: n.purges,
            token_hash: &agents[n.agent].token_hash,
            partitioned: n.partitioned_until > now,
            relay: RefCell::new(relay),
            net: RefCell::new(net),
            rng: RefCell::new(rng),
            clock,
            rounds: Cell::new(0),
            notes: Cell::new(None),
        };
        let result = n.node.sync_over(&link, &mut |_| {});
        if let Some(notes) = link.notes.get() {
            // A grant makes the node pull everything again, within this sync
            // if it runs to the end.
            n.repull_pending |= notes && !n.believes_notes;
            n.believes_notes = notes;
            if !notes {
                n.purges += 1;
            }
        }
        if result.is_ok() {
            n.repull_pending = false;
        }
        if let Ok(r) = &result {
            self.net.stats.bump("notes documents purged", r.purged_notes as u64);
            self.net.stats.bump("documents refused by the relay", r.refused.len() as u64);
            // A refused write is never dropped silently: `show` tells.
            for refused in &r.refused {
                let shown = self.nodes[i].node.show(&refused.ticket).expect("show a refused ticket");
                let listed = shown["refusals"].as_array().is_some_and(|l| l.iter().any(|x| x["kind"] == refused.kind));
                assert!(listed, "node {i}: the relay refused {refused:?} but `show` does not say so");
            }
        }
        match &result {
            Ok(r) => trace(format!(
                "  node {i} synced: pushed {}, pulled {}, refused {}, purged {}, rounds {}",
                r.pushed,
                r.pulled,
                r.refused.len(),
                r.purged_notes,
                r.rounds
            )),
            Err(e) => trace(format!("  node {i} sync failed: {e}")),
        }
        result
    }

    /// A request that was held up in the network reaches the relay now; its
    /// response goes nowhere.
    fn deliver_late(&mut self) {
        if self.net.stale.is_empty() {
            return;
        }
        let k = self.rng.usize(..self.net.stale.len());
        let Some(Late { node, req, purges }) = self.net.stale.remove(k) else { return };
        // BUG: a late request can carry notes that its device has purged
        // since (revocation), and if the agent is permitted again when it
        // lands, after the device re-pulled everything, the relay logs those
        // notes as changes from that device, and `Conn::pull` never sends a
        // device its own changes: the device misses notes everyone else has.
        // Until fixed, such requests land without their notes documents.
        // (Fixed: the relay now sends a device its own notes changes too.)
        if self.nodes[node].purges != purges && req.push.iter().any(|d| d.kind == DocKind::Notes.as_str()) {
            self.net.stats.bump("late notes pushes after a purge", 1);
        }
        self.net.stats.bump("late deliveries", 1);
        let now = self.now();
        let token_hash = &self.agents[self.nodes[node].agent].token_hash;
        let outcome = deliver(&mut self.relay, token_hash, &req, now);
        trace(format!("  late request of node {node} ({} docs pushed): {}", req.push.len(), outcome.is_ok()));
    }

    /// mallory attacks: one hostile change to one ticket, pushed through
    /// the relay's sync exchange, which must refuse it with the attack's
    /// code. She reads the relay's clock (her own is right).
    fn attack(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let now = self.now();
        let fresh = self.hostile.held.is_empty() || self.hostile.rng.u32(0..100) < HOSTILE_FRESH_PERCENT;
        if fresh {
            self.hostile_pull(now);
        }
        // In creation order, not by random id, so that a replay picks alike.
        let held: Vec<String> = self.tickets.iter().filter(|id| self.hostile.held.contains_key(*id)).cloned().collect();
        if held.is_empty() {
            self.net.stats.bump("hostile steps with no ticket to attack", 1);
            return;
        }
        let id = pick(&mut self.hostile.rng, &held);
        let attack = pick(&mut self.hostile.rng, &Attack::ALL);
        self.hostile.sent += 1;
        let mark = format!("{HOSTILE_MARK}{}", self.hostile.sent);
        let honest = {
            let k = self.hostile.rng.usize(..self.nodes.len());
            (self.nodes[k].node.actor().clone(), self.agent_of(k).name)
        };
        if let Attack::Backdated = attack {
            self.hostile_complete_sync(now);
        }
        let (push_id, kind, data) = self.hostile.craft(&id, attack, &mark, honest, now);
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device: self.hostile.actor.to_hex_string(),
            clock_ms: now,
            push: vec![DocData { id: push_id, kind: kind.as_str().into(), data: encode_data(&data) }],
            pull: None,
            inbox: None,
        };
        let resp = deliver(&mut self.relay, &self.hostile.token_hash, &req, now)
            .unwrap_or_else(|e| panic!("mallory's {attack:?} push was not answered with results: {e}"));
        let result = resp.pushed.first().unwrap_or_else(|| panic!("no result for mallory's {attack:?} push"));
        let code = result.code.as_deref().and_then(RefusalCode::parse);
        trace(format!(
            "  mallory: {attack:?} on {id} ({} copy): accepted {}, code {:?}",
            if fresh { "fresh" } else { "stale" },
            result.accepted,
            result.code
        ));
        assert!(!result.accepted, "mallory's {attack:?} on {id} was accepted");
        let code = code.unwrap_or_else(|| panic!("mallory's {attack:?} was refused without a known code: {result:?}"));
        assert!(
            attack.codes().contains(&code),
            "mallory's {attack:?} on {id} was refused with {code:?}, expected one of {:?}: {:?}",
            attack.codes(),
            result.reason
        );
        let whole = if code.is_forbidden() { "forbidden" } else { "invalid_data" };
        assert_eq!(resp.code.as_deref(), Some(whole), "the whole push is refused as {whole}: {resp:?}");
        self.net.stats.bump("hostile pushes refused", 1);
        self.net.stats.bump(attack.name(), 1);
        if code == RefusalCode::CorruptData {
            self.net.stats.bump("hostile changes refused as corrupt (a reused sequence number)", 1);
        }
    }

    /// mallory completes a sync (caught up, nothing pushed): her device's
    /// floor moves to that sync's start.
    fn hostile_complete_sync(&mut self, now: i64) {
        let head = tickets_relay::store::RelayStore::heads(&self.relay).expect("heads").all;
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device: self.hostile.actor.to_hex_string(),
            clock_ms: now,
            push: Vec::new(),
            pull: Some(PullRequest { cursor: head, bootstrapped: true, bootstrap: None }),
            inbox: None,
        };
        deliver(&mut self.relay, &self.hostile.token_hash, &req, now).expect("mallory's caught-up sync");
    }

    /// mallory pulls every document she may read (a bootstrap from scratch)
    /// through the sync exchange.
    fn hostile_pull(&mut self, now: i64) {
        let mut held = BTreeMap::new();
        let mut bootstrap = None;
        for _ in 0..ROUNDS_PER_SYNC_MAX {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device: self.hostile.actor.to_hex_string(),
                clock_ms: now,
                push: Vec::new(),
                pull: Some(PullRequest { cursor: 0, bootstrapped: false, bootstrap: bootstrap.take() }),
                inbox: None,
            };
            let resp = deliver(&mut self.relay, &self.hostile.token_hash, &req, now)
                .unwrap_or_else(|e| panic!("mallory's pull failed: {e}"));
            let page = resp.pull.expect("a pull page");
            for d in page.docs {
                assert_eq!(d.kind, DocKind::Ticket.as_str(), "mallory, who may not read notes, was sent {}", d.kind);
                held.insert(d.id, decode_data(&d.data).expect("document data from the relay"));
            }
            match page.bootstrap {
                Some(pos) if page.more => bootstrap = Some(pos),
                _ => break,
            }
        }
        self.net.stats.bump("hostile pulls", 1);
        self.hostile.held = held;
    }

    fn restart(&mut self, i: usize, offset_ms: i64) {
        let n = &mut self.nodes[i];
        n.clock_changed |= n.offset_ms != offset_ms;
        n.offset_ms = offset_ms;
        let wall = WallClock::virtual_time(self.clock.clone(), offset_ms);
        // Everything the node knows must come back from its database: the
        // clock state, the cursor, what is dirty, the notes permission.
        n.node = Node::open(&n.home, wall).expect("reopen node");
        self.net.stats.bump("restarts", 1);
    }

    fn set_notes(&mut self, agent: usize, allowed: bool) {
        let a = &mut self.agents[agent];
        let could = a.may_read_notes();
        self.relay.set_notes_permission(a.name, allowed).expect("set notes permission");
        a.granted = allowed;
        if could && !a.may_read_notes() {
            a.revoked_at = Some(self.seq);
        }
        self.net.stats.bump("permission changes", 1);
    }

    // ---- reading state -----------------------------------------------------

    fn agent_of(&self, node: usize) -> &Agent {
        &self.agents[self.nodes[node].agent]
    }

    /// Whether the node's agent may read notes, as the relay says now.
    fn permitted(&self, node: usize) -> bool {
        self.agent_of(node).may_read_notes()
    }

    /// The node's tickets as listed, in creation order.
    fn known_tickets(&mut self, node: usize) -> Vec<(String, Value)> {
        let mut objects = self.listed(node);
        self.tickets.iter().filter_map(|id| objects.remove(id).map(|v| (id.clone(), v))).collect()
    }

    /// The node's tickets as `list` shows them (cheaper than `show` of each).
    fn listed(&mut self, node: usize) -> BTreeMap<String, Value> {
        let (list, _) = self.nodes[node].node.list(&ListQuery::default()).expect("list");
        list.into_iter().map(|v| (v["id"].as_str().expect("listed id").to_string(), v)).collect()
    }

    /// The node's tickets: `show` of each listed id.
    fn node_objects(&mut self, node: usize) -> BTreeMap<String, Value> {
        let n = &mut self.nodes[node].node;
        let (list, _) = n.list(&ListQuery::default()).expect("list");
        list.iter()
            .map(|v| {
                let id = v["id"].as_str().expect("listed id").to_string();
                let shown = n.show(&id).unwrap_or_else(|e| panic!("node {node}: show {id}: {e}"));
                (id, shown)
            })
            .collect()
    }

    /// The relay's authoritative objects, notes included.
    fn relay_objects(&self, now: i64) -> BTreeMap<String, Value> {
        let (list, _) = self.relay.tickets(&ListQuery::default(), now, true).expect("relay tickets");
        list.into_iter().map(|v| (v["id"].as_str().expect("relay id").to_string(), v)).collect()
    }

    /// Heads of every document the relay holds, by (id, kind). Read with
    /// plain SQL: the relay's store has no call that returns documents.
    fn relay_heads(&self) -> BTreeMap<(String, String), Vec<String>> {
        let c = rusqlite::Connection::open(&self.relay_path).expect("open relay database");
        let mut st = c.prepare("SELECT id, kind, bytes FROM docs").expect("relay docs");
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?)))
            .expect("relay docs")
            .map(|r| r.expect("relay doc row"))
            .collect::<Vec<_>>();
        rows.into_iter()
            .map(|(id, kind, bytes)| {
                let heads = doc_heads(&id, &kind, &bytes);
                ((id, kind), heads)
            })
            .collect()
    }

    fn check_heads(&self, i: usize, relay: &BTreeMap<(String, String), Vec<String>>) {
        let permitted = self.permitted(i);
        let mut store = Store::open(&self.nodes[i].home.join(DB_FILE)).expect("open node database");
        let tx = store.tx().expect("node transaction");
        for id in &self.tickets {
            for kind in [DocKind::Ticket, DocKind::Notes] {
                let mine = tx.load_doc(id, kind.as_str()).expect("load doc").map(|b| doc_heads(id, kind.as_str(), &b));
                let theirs = relay.get(&(id.clone(), kind.as_str().to_string()));
                if kind == DocKind::Notes && !permitted {
                    assert!(mine.is_none(), "node {i} keeps the notes of {id} without permission");
                    continue;
                }
                assert_eq!(mine.as_ref(), theirs, "node {i}: heads of {id}/{} differ from the relay's", kind.as_str());
            }
        }
    }

    /// Every change a node accepted is in the merged history (applied,
    /// superseded or ignored, but there): history is never rewritten.
    fn check_changed(&self, relay: &BTreeMap<String, Value>) {
        let mut expected: BTreeMap<(&str, &str, Option<&str>, &str), usize> = BTreeMap::new();
        for (ticket, field, to, by) in &self.changed {
            *expected.entry((ticket.as_str(), *field, to.as_deref(), by.as_str())).or_default() += 1;
        }
        for ((ticket, field, to, by), n) in expected {
            let found = relay[ticket]["history"].as_array().map_or(0, |h| {
                h.iter().filter(|e| e["field"] == field && e["to"].as_str() == to && e["by"] == by).count()
            });
            assert!(
                found >= n,
                "ticket {ticket}: {by}'s {n} change(s) of {field} to {to:?} left {found} in its history"
            );
        }
    }

    fn check_written(&self, relay: &BTreeMap<String, Value>, shows: &[BTreeMap<String, Value>]) {
        let count = |v: &Value, list: &str, body: &str| -> usize {
            v[list].as_array().map_or(0, |a| a.iter().filter(|e| e["body"].as_str() == Some(body)).count())
        };
        for w in &self.written {
            let list = if w.note { "internal_notes" } else { "comments" };
            let agent = &self.agents[w.agent];
            // A note written by an agent who lost the permission before the
            // note reached the relay is refused and purged: the relay
            // refuses it and the device forgets it (SPEC 1.3, 3).
            let may_be_lost = w.note && (w.revoked_before || agent.revoked_at.is_some_and(|r| r >= w.seq));
            let on_relay = count(&relay[&w.ticket], list, &w.body);
            assert!(
                on_relay == 1 || (may_be_lost && on_relay == 0),
                "the relay holds {on_relay} copies of {list} entry '{}' ({}), written by {}",
                w.body,
                w.ticket,
                agent.name
            );
            for (i, objects) in shows.iter().enumerate() {
                if w.note && !self.permitted(i) {
                    continue;
                }
                let here = count(&objects[&w.ticket], list, &w.body);
                assert_eq!(here, on_relay, "node {i} holds {here} copies of '{}', the relay {on_relay}", w.body);
                // Every node shows the entry at its author's device time,
                // not at its ordering stamp (which other devices' clocks,
                // 2 h ahead for one, drag forward).
                let entry = objects[&w.ticket][list].as_array().and_then(|a| a.iter().find(|e| e["body"] == *w.body));
                if let Some(e) = entry {
                    let shown = e["at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                    assert_eq!(
                        shown.map(|t| t.timestamp_millis()),
                        Some(w.device_ms),
                        "node {i} shows '{}' by {} at {}, not at its author's device time {}",
                        w.body,
                        agent.name,
                        e["at"],
                        tickets_core::time::iso_i64(w.device_ms)
                    );
                }
            }
        }
    }

    fn check_conversations(&self, relay: &BTreeMap<String, Value>) {
        for (k, c) in self.conversations.iter().enumerate() {
            let derived = ids::conversation_ticket_id(c.id.trim()).to_string();
            let mut of_conversation: Vec<&String> = relay
                .iter()
                .filter(|(id, v)| v["conversation_id"].as_str() == Some(c.id.as_str()) && !self.forced.contains(*id))
                .map(|(id, _)| id)
                .collect();
            of_conversation.sort();
            let expected: Vec<&String> = if self.converted.contains(&k) { vec![&derived] } else { Vec::new() };
            assert_eq!(of_conversation, expected, "conversation {} does not give exactly one ticket", c.id);
        }
    }

    /// No byte of any note body in the node's database files.
    fn check_no_notes_on_disk(&mut self, i: usize, when: &str) {
        let bodies: Vec<&str> = self.written.iter().filter(|w| w.note).map(|w| w.body.as_str()).collect();
        if bodies.is_empty() {
            return;
        }
        if self.agents[self.nodes[i].agent].revoked_at.is_some() {
            self.net.stats.bump("note scans of nodes after a revocation", 1);
        }
        let home = &self.nodes[i].home;
        for entry in std::fs::read_dir(home).expect("read node home") {
            let path = entry.expect("node home entry").path();
            if !file_name(&path).starts_with(DB_FILE) {
                continue;
            }
            let raw = std::fs::read(&path).expect("read node database file");
            if find(&raw, NOTE_MARK.as_bytes()).is_none() {
                continue;
            }
            // BUG: purged note bodies stay in the file. `purge_notes`
            // deletes with secure_delete on, but SQLite leaves stale copies
            // of cells in the unallocated space of b-tree pages (rebuilding a
            // page does not scrub it), and a checkpoint writes those pages
            // to node.db. Until fixed (VACUUM after a purge, say), that
            // space is blanked before the scan: live cells, overflow and
            // free pages and every WAL frame are still searched.
            // (Fixed: a purge now rewrites the file with VACUUM.)
            let bytes = raw.clone();
            if bodies.iter().any(|b| find(&raw, b.as_bytes()).is_some() && find(&bytes, b.as_bytes()).is_none()) {
                self.net.stats.bump("note bodies left in unallocated page space (BUG)", 1);
            }
            for body in &bodies {
                assert!(
                    find(&bytes, body.as_bytes()).is_none(),
                    "{when}: node {i} (agent {}, may not read notes) has note '{body}' in {}",
                    self.agent_of(i).name,
                    file_name(&path)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The hostile device.

/// mallory: a plain agent with one registered device and no node, holding
/// only what the relay sends her and the automerge crate.
struct Hostile {
    /// Her own stream of choices (see the header).
    rng: fastrand::Rng,
    token_hash: String,
    actor: ActorId,
    /// The ticket documents of her last pull, by id.
    held: BTreeMap<String, Vec<u8>>,
    /// Pushes sent (numbers the marks).
    sent: u64,
}

/// The shapes of attack of issue #15, and a few more.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// An existing event rewritten as another agent's words.
    Overwrite,
    /// An existing event deleted.
    Delete,
    /// A root key written (the events map replaced, the id changed, a key
    /// added).
    RootPut,
    /// A nested object (in the events map, the description or the root).
    Nested,
    /// A new event under a far-future clock stamp.
    FarFuture,
    /// A new event naming another agent as its author.
    OtherName,
    /// A new event under another device's clock stamp.
    OtherStamp,
    /// A change signed by another agent's device actor.
    OtherActor,
    /// Her own comment, pushed under an upper-case spelling of the id.
    UpperCaseId,
    /// A note-kind event in the public document.
    PublicNote,
    /// A note of her own in the ticket's notes document, which she may not
    /// write.
    NotesDocument,
    /// A comment of her own over the operator's per-comment limit.
    Oversized,
    /// Her own comment holding U+0000 (text no backend can store).
    Nul,
    /// A ticket of her own claiming an inbox conversation, with invented
    /// customer words and an agent reply (a forged prefill).
    ForgedPrefill,
    /// Her own comment dated 30 days back, after a completed sync.
    Backdated,
}

impl Attack {
    const ALL: [Attack; 15] = [
        Attack::Overwrite,
        Attack::Delete,
        Attack::RootPut,
        Attack::Nested,
        Attack::FarFuture,
        Attack::OtherName,
        Attack::OtherStamp,
        Attack::OtherActor,
        Attack::UpperCaseId,
        Attack::PublicNote,
        Attack::NotesDocument,
        Attack::Oversized,
        Attack::Nul,
        Attack::ForgedPrefill,
        Attack::Backdated,
    ];

    /// The codes the relay may refuse it with.
    fn codes(self) -> &'static [RefusalCode] {
        use RefusalCode as C;
        match self {
            Attack::Overwrite => &[C::EventOverwrite],
            Attack::Delete => &[C::EventDelete],
            Attack::RootPut | Attack::Nested => &[C::OpNotAllowed],
            Attack::FarFuture => &[C::EventTime],
            Attack::OtherName => &[C::EventAuthor],
            // (Her stamp could in principle equal one the relay holds.)
            Attack::OtherStamp => &[C::EventStamp, C::EventOverwrite],
            // A stale copy may lack changes of that actor which the relay
            // has, and then the forged change reuses a sequence number.
            Attack::OtherActor => &[C::Impersonation, C::CorruptData],
            Attack::UpperCaseId => &[C::NonCanonicalId],
            Attack::PublicNote => &[C::WrongDocument],
            Attack::NotesDocument => &[C::NotesForbidden],
            Attack::Oversized => &[C::CommentTooLarge],
            Attack::Nul => &[C::TextUnstorable],
            Attack::ForgedPrefill => &[C::ConversationUnknown],
            Attack::Backdated => &[C::EventBackdated],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Attack::Overwrite => "hostile overwrites",
            Attack::Delete => "hostile deletes",
            Attack::RootPut => "hostile root writes",
            Attack::Nested => "hostile nested objects",
            Attack::FarFuture => "hostile far-future stamps",
            Attack::OtherName => "hostile events in another's name",
            Attack::OtherStamp => "hostile events under another device's stamp",
            Attack::OtherActor => "hostile changes signed by another device",
            Attack::UpperCaseId => "hostile upper-case ids",
            Attack::PublicNote => "hostile notes in the public document",
            Attack::NotesDocument => "hostile notes documents",
            Attack::Oversized => "hostile comments over the size limit",
            Attack::Nul => "hostile NUL characters",
            Attack::ForgedPrefill => "hostile forged prefills",
            Attack::Backdated => "hostile back-dated events",
        }
    }
}

impl Hostile {
    fn new(relay: &mut Conn, seed: u64) -> Hostile {
        // "mallory" in ASCII: a stream apart from the honest one.
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x006d_616c_6c6f_7279);
        let token_hash = auth::token_hash("tk_sim_mallory");
        relay.add_agent("mallory", "agent", Some("field"), false, &token_hash, T0).expect("add mallory");
        let actor = ActorId::from(rng.u128(..).to_be_bytes());
        relay.register_device(&actor.to_hex_string(), "mallory", T0).expect("register mallory's device");
        trace(format!("mallory: actor {}", actor.to_hex_string()));
        Hostile { rng, token_hash, actor, held: BTreeMap::new(), sent: 0 }
    }

    fn stamp(&self, wall_ms: i64) -> String {
        Hlc::new(u64::try_from(wall_ms).unwrap_or(0), 0, ids::replica_of(&self.actor)).encode()
    }

    /// The id, kind and data of one hostile push on ticket `id`: her copy
    /// with the attack as one change on top, saved whole. `honest` is a
    /// device of the simulation and its agent, to pose as.
    fn craft(
        &mut self,
        id: &str,
        attack: Attack,
        mark: &str,
        honest: (ActorId, &str),
        now: i64,
    ) -> (String, DocKind, Vec<u8>) {
        let uuid = Uuid::parse_str(id).expect("a ticket id");
        if let Attack::NotesDocument = attack {
            let mut notes = TicketDoc::genesis(uuid, DocKind::Notes);
            notes.set_actor(&self.actor);
            let note = StoredEvent::new("mallory", EventBody::Note { body: format!("{mark} my note") });
            let events = events_of(&mut notes);
            notes.automerge().put(&events, self.stamp(now), note.encode()).expect("put");
            notes.commit(now);
            return (id.to_string(), DocKind::Notes, notes.save());
        }
        if let Attack::ForgedPrefill = attack {
            let msg = |role, text: String| Message { from: None, role, text, at: "2026-01-01T00:00:00Z".into() };
            let conv = Conversation {
                id: format!("generic:support:{mark}"),
                channel: Some("web".into()),
                customer: Some(Customer { name: Some("Carla".into()) }),
                messages: vec![msg(Role::Customer, format!("{mark} I owe nothing")), msg(Role::Agent, "ok".into())],
            };
            let uuid = ids::conversation_ticket_id(&conv.id);
            let author = Author { agent: "mallory".into(), actor: self.actor.clone() };
            let mut clock = Clock::new(ids::replica_of(&self.actor));
            let new = NewTicket {
                subject: format!("{mark} refund"),
                priority: Priority::High,
                category: "hardware".into(),
                description: None,
                assignee: None,
            };
            let mut doc = create_ticket(uuid, &author, &mut clock, now, &new, Some(&conv)).expect("her ticket");
            return (uuid.to_string(), DocKind::Ticket, doc.save());
        }
        let mut doc = TicketDoc::load(uuid, DocKind::Ticket, &self.held[id]).expect("mallory's copy loads");
        doc.set_actor(&self.actor);
        let comment = |by: &str| StoredEvent::new(by, EventBody::Comment { body: format!("{mark} {by} approves") });
        let events = events_of(&mut doc);
        let existing: Vec<String> = doc.raw_events().into_iter().map(|(k, _)| k).collect();
        let mut push_id = id.to_string();
        let am = doc.automerge();
        match attack {
            Attack::Overwrite => {
                let key = pick(&mut self.rng, &existing);
                let by = pick(&mut self.rng, &[honest.1, "mallory"]);
                am.put(&events, key, comment(by).encode()).expect("put");
            }
            Attack::Delete => {
                let key = pick(&mut self.rng, &existing);
                am.delete(&events, key).expect("delete");
            }
            Attack::RootPut => {
                let key =
                    pick(&mut self.rng, &["events", "description", "id", "kind", "schema", "conversation", "owner"]);
                am.put(ROOT, key, mark).expect("put");
            }
            Attack::Nested => {
                let obj = match self.rng.u32(0..3) {
                    0 => am.put_object(&events, self.stamp(now), ObjType::Map).expect("put_object"),
                    1 => {
                        let text = match am.get(ROOT, "description") {
                            Ok(Some((_, o))) => o,
                            other => panic!("mallory's copy of {id} has no description: {other:?}"),
                        };
                        am.insert_object(&text, 0, ObjType::Map).expect("insert_object")
                    }
                    _ => am.put_object(ROOT, "admin", ObjType::Map).expect("put_object"),
                };
                am.put(&obj, "mark", mark).expect("put");
            }
            Attack::FarFuture => {
                let key = Hlc::new(9_999_999_999_999_999, 999_999, ids::replica_of(&self.actor)).encode();
                am.put(&events, key, comment("mallory").encode()).expect("put");
            }
            Attack::OtherName => {
                am.put(&events, self.stamp(now), comment(honest.1).encode()).expect("put");
            }
            Attack::OtherStamp => {
                let key = Hlc::new(u64::try_from(now).unwrap_or(0), 0, ids::replica_of(&honest.0)).encode();
                am.put(&events, key, comment("mallory").encode()).expect("put");
            }
            Attack::OtherActor => {
                am.set_actor(honest.0.clone());
                let key = Hlc::new(u64::try_from(now).unwrap_or(0), 0, ids::replica_of(&honest.0)).encode();
                am.put(&events, key, comment(honest.1).encode()).expect("put");
            }
            Attack::UpperCaseId => {
                am.put(&events, self.stamp(now), comment("mallory").encode()).expect("put");
                let upper = id.to_uppercase();
                push_id = if upper != id { upper } else { format!("{{{id}}}") };
            }
            Attack::PublicNote => {
                let note = StoredEvent::new("mallory", EventBody::Note { body: format!("{mark} leaked") });
                am.put(&events, self.stamp(now), note.encode()).expect("put");
            }
            Attack::Oversized => {
                let body = format!("{mark} {}", "x".repeat(SIM_COMMENT_BYTES as usize));
                let ev = StoredEvent::new("mallory", EventBody::Comment { body });
                am.put(&events, self.stamp(now), ev.encode()).expect("put");
            }
            Attack::Nul => {
                let nul = StoredEvent::new("mallory", EventBody::Comment { body: format!("{mark} \u{0}") });
                am.put(&events, self.stamp(now), nul.encode()).expect("put");
            }
            Attack::Backdated => {
                let old = comment("mallory").written_at(now - 30 * 86_400_000);
                am.put(&events, self.stamp(now), old.encode()).expect("put");
            }
            Attack::NotesDocument | Attack::ForgedPrefill => unreachable!("crafted above"),
        }
        doc.commit(now);
        (push_id, DocKind::Ticket, doc.save())
    }
}

fn events_of(doc: &mut TicketDoc) -> automerge::ObjId {
    match doc.automerge().get(ROOT, "events") {
        Ok(Some((_, o))) => o,
        other => panic!("a document without an events map: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The network.

#[derive(Debug, Clone, Copy)]
struct Faults {
    /// Percent of requests lost before the relay sees them.
    drop_request: u32,
    /// Percent of requests the relay applies whose response is lost.
    drop_response: u32,
    /// Percent of requests delivered twice.
    duplicate: u32,
    /// Percent of requests of which a copy stays in the network, to arrive
    /// late.
    keep_late: u32,
}

struct Network {
    faults: Faults,
    faults_on: bool,
    stale: VecDeque<Late>,
    stats: Stats,
}

impl Network {
    /// Each seed draws its own weather: some calm, some stormy.
    fn new(rng: &mut fastrand::Rng) -> Network {
        let faults = Faults {
            drop_request: rng.u32(0..=20),
            drop_response: rng.u32(0..=20),
            duplicate: rng.u32(0..=15),
            keep_late: rng.u32(0..=30),
        };
        Network { faults, faults_on: false, stale: VecDeque::new(), stats: Stats::default() }
    }
}

/// A request held up in the network.
struct Late {
    node: usize,
    req: SyncRequest,
    /// The node's purge count when it sent the request.
    purges: u64,
}

/// A node's connection to the relay for one sync.
struct Link<'a> {
    node: usize,
    /// The node's purge count (see [`SimNode::purges`]).
    purges: u64,
    token_hash: &'a str,
    partitioned: bool,
    relay: RefCell<&'a mut Conn>,
    net: RefCell<&'a mut Network>,
    rng: RefCell<&'a mut fastrand::Rng>,
    clock: &'a AtomicI64,
    rounds: Cell<usize>,
    /// The notes permission of the last response handed to the node.
    notes: Cell<Option<bool>>,
}

impl Transport for Link<'_> {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let rounds = self.rounds.get() + 1;
        self.rounds.set(rounds);
        assert!(rounds <= ROUNDS_PER_SYNC_MAX, "node {}: a sync did not finish in {rounds} rounds", self.node);
        let mut net = self.net.borrow_mut();
        let mut rng = self.rng.borrow_mut();
        let mut relay = self.relay.borrow_mut();
        // Every exchange takes a little time, between the node reading its
        // clock for the request and the relay handling it; the node reads
        // the response at the relay's instant (plus its offset).
        let step = rng.i64(1..=800);
        let now = self.clock.fetch_add(step, Ordering::Relaxed) + step;
        net.stats.bump("requests", 1);
        let cut = |why: &str| SyncError::Transport { url: "sim://relay".into(), message: why.into() };
        if self.partitioned {
            return Err(cut("partitioned"));
        }
        if !net.faults_on {
            return self.handed(deliver(&mut relay, self.token_hash, req, now));
        }
        let f = net.faults;
        if rng.u32(0..100) < f.keep_late {
            if net.stale.len() >= STALE_REQUESTS_MAX {
                net.stale.pop_front();
            }
            net.stale.push_back(Late { node: self.node, req: req.clone(), purges: self.purges });
        }
        if rng.u32(0..100) < f.drop_request {
            net.stats.bump("dropped requests", 1);
            return Err(cut("request lost"));
        }
        let resp = deliver(&mut relay, self.token_hash, req, now);
        if rng.u32(0..100) < f.drop_response {
            net.stats.bump("lost responses", 1);
            return Err(cut("response lost"));
        }
        if rng.u32(0..100) < f.duplicate {
            net.stats.bump("duplicated", 1);
            let again = deliver(&mut relay, self.token_hash, req, now);
            if rng.bool() {
                return self.handed(again);
            }
        }
        self.handed(resp)
    }
}

impl Link<'_> {
    fn handed(&self, r: Result<SyncResponse, SyncError>) -> Result<SyncResponse, SyncError> {
        if let Ok(resp) = &r {
            self.notes.set(Some(resp.access.internal_notes));
        }
        r
    }
}

/// What the relay's HTTP handler does with a request, minus HTTP: the
/// caller is looked up afresh (permissions change), the request checked,
/// the exchange run. A refused push still answers with a body (403/400), as
/// the HTTP client reads it; a store error is a 500, which must not happen.
fn deliver(relay: &mut Conn, token_hash: &str, req: &SyncRequest, now: i64) -> Result<SyncResponse, SyncError> {
    let caller = relay.caller(token_hash).unwrap_or_else(|e| panic!("relay: looking up the caller failed: {e}"));
    let Some(caller) = caller else { return Err(SyncError::Unauthorized) };
    if let Err(refusal) = relay_sync::check(&caller, req, now) {
        let (status, code) = refusal.status_and_code();
        return Err(SyncError::Refused { status, message: refusal.message(), code: Some(code) });
    }
    match relay_sync::handle_sync(relay, &caller, req, now) {
        Ok(handled) => Ok(handled.response),
        Err(e) => panic!("relay failed on a sync request (a 500): {e}"),
    }
}

// ---------------------------------------------------------------------------
// Helpers.

/// A folder for one seed's databases, on tmpfs where there is one: the files
/// are scratch, and on a busy disk the fsyncs SQLite makes at checkpoints
/// take longer than the simulation itself.
fn scratch_dir() -> tempfile::TempDir {
    let builder = tempfile::Builder::new().prefix("tickets-sim-").to_owned();
    let shm = Path::new("/dev/shm");
    shm.is_dir()
        .then(|| builder.tempdir_in(shm).ok())
        .flatten()
        .unwrap_or_else(|| builder.tempdir().expect("temporary folder"))
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())].clone()
}

/// A conversation as exported from an inbox; the same file on every node.
fn conversation(k: usize, rng: &mut fastrand::Rng) -> Conversation {
    let messages: Vec<Value> = (0..rng.usize(1..=7))
        .map(|m| {
            let agent = rng.u32(0..100) < 25;
            serde_json::json!({
                "from": if agent { "desk" } else { "customer" },
                "role": if agent { "agent" } else { "customer" },
                "text": format!("message {m} of conversation {k}"),
                "at": format!("2025-12-31T2{}:{:02}:00Z", m % 4, rng.u32(0..60)),
            })
        })
        .collect();
    let json = serde_json::json!({
        "id": format!("conv-{k}"),
        "channel": pick(rng, &["whatsapp", "email"]),
        "customer": {"name": format!("Customer {k}")},
        "messages": messages,
    });
    Conversation::parse(json.to_string().as_bytes()).expect("conversation")
}

fn doc_heads(id: &str, kind: &str, bytes: &[u8]) -> Vec<String> {
    let uuid = Uuid::parse_str(id).expect("document id");
    let kind = DocKind::parse(kind).expect("document kind");
    let mut doc = TicketDoc::load(uuid, kind, bytes).expect("stored document loads");
    let mut heads: Vec<String> = doc.heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

/// A JSON value with every instant in it moved by `ms`.
fn shifted(v: &Value, ms: i64) -> Value {
    match v {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Value::String(tickets_core::time::iso_i64(t.timestamp_millis() + ms)),
            Err(_) => v.clone(),
        },
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), shifted(x, ms))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(|x| shifted(x, ms)).collect()),
        _ => v.clone(),
    }
}

/// A JSON object as compact text without the given keys (at any depth).
fn canonical(v: &Value, without: &[&str]) -> String {
    fn strip(v: &mut Value, without: &[&str]) {
        match v {
            Value::Object(o) => {
                o.retain(|k, _| !without.contains(&k.as_str()));
                o.values_mut().for_each(|x| strip(x, without));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| strip(x, without)),
            _ => {}
        }
    }
    let mut v = v.clone();
    strip(&mut v, without);
    serde_json::to_string(&v).expect("json")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
