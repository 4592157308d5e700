//! The storage conformance suite: one set of cases, run against every
//! backend of [`RelayStore`] (`backends.rs` lists them). Real nodes sync
//! with the relay's sync exchange (no HTTP) on a fresh connection per
//! request, as the server does.

use std::cell::RefCell;
use std::collections::BTreeSet;

use tickets_core::edit::{Edit, NewTicket};
use tickets_core::index::ListQuery;
use tickets_core::model::{Priority, Status};
use tickets_core::protocol::{SyncRequest, SyncResponse};
use tickets_core::sla::{SlaPolicy, SlaSettings, Targets};
use tickets_node::sync::{SyncError, Transport};
use tickets_node::{Node, WallClock};
use tickets_relay::store::{
    Commit, ExportFilter, PageWrite, PullQuery, PullRow, PullSink, RelayStore, Snapshot, StoreError,
};
use tickets_relay::{auth, sync as relay_sync};

mod backends;
mod delegate;
mod inbox;
#[path = "../support/pg.rs"]
mod pg;

use backends::Backend;
pub use inbox::{inbox_concurrent_deliveries_merge, inbox_scope_and_cursor, inbox_stale_write_conflicts};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The relay's sync exchange on a new connection of `backend`, as the
/// server runs it; `wrap` may wrap the connection (see [`Interleave`]).
struct Direct<'a> {
    backend: &'a dyn Backend,
    token_hash: String,
    /// Runs once, just before the next commit of a push page.
    before_commit: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
    /// Every request sent, for replaying.
    sent: RefCell<Vec<SyncRequest>>,
}

impl<'a> Direct<'a> {
    fn new(backend: &'a dyn Backend, token_hash: &str) -> Direct<'a> {
        Direct {
            backend,
            token_hash: token_hash.to_string(),
            before_commit: RefCell::new(None),
            sent: RefCell::new(Vec::new()),
        }
    }

    fn exchange(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let now = now_ms();
        let mut conn = delegate::Interleave { inner: self.backend.connect(), before_commit: self.before_commit.take() };
        let caller = conn.caller(&self.token_hash).expect("caller lookup").expect("a known agent");
        relay_sync::check(&caller, req, now).expect("a registered device");
        Ok(relay_sync::handle_sync(&mut conn, &caller, req, now).expect("a sync exchange").response)
    }
}

impl Transport for Direct<'_> {
    fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        self.sent.borrow_mut().push(req.clone());
        self.exchange(req)
    }
}

/// An agent with one device: its node and its token hash.
struct Agent {
    _home: tempfile::TempDir,
    node: Node,
    token_hash: String,
}

fn agent(b: &dyn Backend, name: &str, role: &str, notes: bool) -> Agent {
    let home = tempfile::tempdir().expect("temporary folder");
    let token_hash = auth::token_hash(&format!("tk_{name}"));
    let mut c = b.connect();
    c.add_agent(name, role, None, notes, &token_hash, 0).expect("agent");
    let actor = Node::new_actor();
    c.register_device(&actor.to_hex_string(), name, 0).expect("device");
    let node = Node::init_with_actor(&home.path().join(name), name, actor, WallClock::default()).expect("node");
    Agent { _home: home, node, token_hash }
}

impl Agent {
    fn sync(&mut self, b: &dyn Backend) {
        let t = Direct::new(b, &self.token_hash);
        self.node.sync_over(&t, &mut |_| {}).expect("sync");
    }

    fn create(&mut self, subject: &str, priority: Priority) -> String {
        self.create_described(subject, priority, "details")
    }

    fn create_described(&mut self, subject: &str, priority: Priority, description: &str) -> String {
        let t = NewTicket {
            subject: subject.into(),
            priority,
            category: "general".into(),
            description: Some(description.into()),
            assignee: None,
        };
        self.node.create(&t, None, false).expect("create")
    }
}

/// Every log entry after `after`, read as a pull reads them.
#[derive(Default)]
struct Collect {
    rows: Vec<PullRow>,
    heads: tickets_relay::store::Heads,
}

impl PullSink for Collect {
    fn heads(&mut self, heads: tickets_relay::store::Heads) {
        self.heads = heads;
    }
    fn row(&mut self, row: PullRow) -> bool {
        self.rows.push(row);
        true
    }
    fn sla_wanted(&self) -> Vec<String> {
        Vec::new()
    }
    fn sla(&mut self, _: String, _: String) {}
}

fn log_after(c: &mut dyn RelayStore, after: u64, notes: bool) -> Collect {
    let mut out = Collect::default();
    c.read_pull(&PullQuery::Changes { after, notes, limit: 1_000_000 }, &mut out).expect("pull read");
    out
}

// ---- the cases -------------------------------------------------------------

/// Sequence numbers are 1, 2, 3, … with no gap, in the order a reader
/// sees them, and the head is the last; a fresh device that pulls from
/// cursor 0 ends with every ticket.
pub fn gapless_cursors(b: &dyn Backend) {
    let mut agents: Vec<Agent> = (0..3).map(|i| agent(b, &format!("a{i}"), "agent", false)).collect();
    let mut ids = BTreeSet::new();
    for round in 0..3 {
        for (i, a) in agents.iter_mut().enumerate() {
            ids.insert(a.create(&format!("ticket {round} of {i}"), Priority::Medium));
            a.sync(b);
        }
    }
    let mut c = b.connect();
    let log = log_after(&mut *c, 0, true);
    let seqs: Vec<u64> = log.rows.iter().map(|r| r.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "sequence numbers with a gap or out of order");
    assert_eq!(log.heads.all, seqs.len() as u64);
    assert_eq!(c.heads().expect("heads").all, seqs.len() as u64);
    // From any cursor, exactly the entries after it.
    for k in [0, 1, seqs.len() as u64 / 2, seqs.len() as u64] {
        let rest = log_after(&mut *c, k, true);
        assert_eq!(rest.rows.len() as u64, seqs.len() as u64 - k);
    }
    let mut fresh = agent(b, "fresh", "lead", true);
    fresh.sync(b);
    let (list, _) = fresh.node.list(&ListQuery::default()).expect("list");
    let got: BTreeSet<String> = list.iter().filter_map(|t| t["id"].as_str().map(String::from)).collect();
    assert_eq!(got, ids);
}

/// The same push page twice: accepted both times, logged once.
pub fn idempotent_repush(b: &dyn Backend) {
    let mut a = agent(b, "ann", "agent", false);
    let id = a.create("printer on fire", Priority::High);
    let t = Direct::new(b, &a.token_hash);
    a.node.sync_over(&t, &mut |_| {}).expect("sync");
    let head = b.connect().heads().expect("heads");
    let pushes: Vec<SyncRequest> = t.sent.borrow().iter().filter(|r| !r.push.is_empty()).cloned().collect();
    assert!(!pushes.is_empty(), "the sync pushed nothing");
    for req in &pushes {
        let resp = t.exchange(req).expect("replay");
        assert!(resp.pushed.iter().all(|r| r.accepted), "{:?}", resp.pushed);
    }
    assert_eq!(b.connect().heads().expect("heads"), head, "a re-push logged its changes again");
    assert!(b.connect().ticket_row(&id).expect("row").is_some());
}

/// Two devices push edits of one ticket; the second read the ticket before
/// the first committed. Its commit finds the ticket changed, merges again,
/// and nothing is lost: both comments are in the relay's ticket, and the
/// log holds both pushes.
pub fn conflict_remerge(b: &dyn Backend) {
    let mut a = agent(b, "ann", "agent", false);
    let mut z = agent(b, "zed", "agent", false);
    let id = a.create("printer on fire", Priority::High);
    a.sync(b);
    z.sync(b);
    a.node.edit(&id, &[Edit::Comment("from ann".into())]).expect("edit");
    z.node.edit(&id, &[Edit::Comment("from zed".into()), Edit::Status(Status::InProgress)]).expect("edit");
    let head = b.connect().heads().expect("heads").all;
    {
        let ta = Direct::new(b, &a.token_hash);
        let tz = Direct::new(b, &z.token_hash);
        let node_a = &mut a.node;
        let ta = &ta;
        *tz.before_commit.borrow_mut() = Some(Box::new(move || {
            node_a.sync_over(ta, &mut |_| {}).expect("the interleaved sync");
        }));
        z.node.sync_over(&tz, &mut |_| {}).expect("sync");
        assert!(tz.before_commit.borrow().is_none(), "the interleaved push never ran");
    }
    let c = b.connect();
    let t = tickets_relay::board::ticket(&*c, &id, now_ms(), false).expect("read").expect("indexed");
    let bodies: Vec<&str> =
        t["comments"].as_array().expect("comments").iter().filter_map(|c| c["body"].as_str()).collect();
    assert!(bodies.contains(&"from ann") && bodies.contains(&"from zed"), "{bodies:?}");
    assert_eq!(t["status"], "in-progress");
    assert_eq!(c.heads().expect("heads").all, head + 2);
    a.sync(b);
    z.sync(b);
    for n in [&mut a.node, &mut z.node] {
        assert_eq!(n.show(&id).expect("show")["comments"].as_array().map(Vec::len), Some(2));
    }
}

/// A commit whose ticket changed since its snapshot writes nothing and
/// names the ticket.
pub fn stale_commit_conflicts(b: &dyn Backend) {
    let mut a = agent(b, "ann", "agent", false);
    let id = a.create("printer on fire", Priority::High);
    a.sync(b);
    let mut c = b.connect();
    let snap: Snapshot = c.snapshot(std::slice::from_ref(&id)).expect("snapshot");
    a.node.edit(&id, &[Edit::Comment("meanwhile".into())]).expect("edit");
    a.sync(b);
    let head = c.heads().expect("heads");
    let t = &snap.tickets[&id];
    let page = PageWrite {
        device: "00".repeat(16),
        now: now_ms(),
        settings: snap.settings.clone(),
        expect: vec![tickets_relay::store::Expect {
            id: id.clone(),
            ticket: t.ticket.as_ref().map(|d| d.seq),
            notes: t.notes.as_ref().map(|d| d.seq),
        }],
        docs: vec![tickets_relay::store::DocWrite {
            id: id.clone(),
            kind: "ticket".into(),
            log: vec![1, 2, 3],
            bytes: vec![1, 2, 3],
            events: Vec::new(),
        }],
        index: Vec::new(),
    };
    assert_eq!(c.commit_page(&page).expect("commit"), Commit::Conflict { ids: vec![id.clone()], settings: false });
    assert_eq!(c.heads().expect("heads"), head, "a refused commit wrote to the log");
}

/// Notes reach only agents permitted to read them: not in a bootstrap, not
/// in a catch-up, not on the board, not in an export; a note moves the
/// head such an agent follows not at all.
pub fn notes_filter(b: &dyn Backend) {
    let mut lead = agent(b, "lea", "lead", true);
    let mut plain = agent(b, "pat", "agent", false);
    lead.sync(b);
    let id = lead.create("a ticket with a hidden side", Priority::Low);
    lead.node.edit(&id, &[Edit::Note("the secret".into())]).expect("note");
    lead.sync(b);
    let heads = b.connect().heads().expect("heads");
    assert!(heads.all > heads.tickets, "the note is not in the log: {heads:?}");
    plain.sync(b);
    let shown = plain.node.show(&id).expect("show");
    assert!(!shown.to_string().contains("the secret"), "{shown}");
    // A catch-up after another note.
    lead.node.edit(&id, &[Edit::Note("another secret".into())]).expect("note");
    lead.sync(b);
    assert_eq!(b.connect().heads().expect("heads").tickets, heads.tickets, "a note moved the tickets head");
    plain.sync(b);
    assert!(!plain.node.show(&id).expect("show").to_string().contains("secret"));
    let c = b.connect();
    let row = tickets_relay::board::ticket(&*c, &id, now_ms(), false).expect("read").expect("row");
    assert!(!row.to_string().contains("secret"), "{row}");
    let row = tickets_relay::board::ticket(&*c, &id, now_ms(), true).expect("read").expect("row");
    assert!(row.to_string().contains("another secret"), "{row}");
    let f = ExportFilter { from_ms: 0, to_ms: i64::MAX, statuses: vec![], categories: vec![], notes: false };
    let page = tickets_relay::board::export_page(&*c, &f, "", 10, now_ms(), &SlaSettings::default()).expect("export");
    assert!(!serde_json::Value::from(page).to_string().contains("secret"));
    // A lead's devices get the notes.
    let mut other = agent(b, "leo", "lead", true);
    other.sync(b);
    assert!(other.node.show(&id).expect("show").to_string().contains("another secret"));
}

/// Colour counts split every ticket once and agree with the colour
/// filters; the next colour change is the earliest instant ahead.
pub fn board_colour_queries(b: &dyn Backend) {
    let t0 = now_ms();
    let policy = SlaPolicy {
        targets: [(Priority::High, Targets { first_response_secs: Some(1000), resolution_secs: None })].into(),
        warn_percent: 50,
        calendar: None,
    };
    let settings = SlaSettings { epochs: vec![(t0 - 1_000_000, policy)], ..SlaSettings::default() };
    b.connect().set_sla_settings(&settings, t0).expect("SLA");
    let mut a = agent(b, "ann", "agent", false);
    for i in 0..2 {
        a.create(&format!("urgent {i}"), Priority::High);
    }
    a.create("whenever", Priority::Low);
    a.sync(b);
    let c = b.connect();
    for (offset_s, colour, rank) in [(100, "green", 1), (700, "yellow", 2), (2000, "red", 3)] {
        let now = t0 + offset_s * 1000;
        let counts = c.color_counts(now).expect("counts");
        let by = |r: i64| -> usize {
            let q = ListQuery { sla_ranks: vec![r], ..ListQuery::default() };
            c.ticket_rows(&q, now).expect("query").0.len()
        };
        assert_eq!(counts.green + counts.yellow + counts.red + counts.met + counts.none, 3, "{counts:?}");
        assert_eq!(counts.none, 1, "{counts:?}");
        assert_eq!(by(rank), 2, "at +{offset_s} s the two high tickets are {colour}: {counts:?}");
        assert_eq!(by(0), 1);
        for r in 1..=4 {
            if r != rank {
                assert_eq!(by(r), 0, "colour {r} at +{offset_s} s");
            }
        }
    }
    let next = c.next_color_change(t0 + 100_000).expect("next").expect("a change ahead");
    assert!(next > t0 + 100_000 && next <= t0 + 600_000, "{next}");
}

/// Search finds words whatever their case, accents and punctuation, in the
/// subject or the description, subject matches first; the SLA order puts a
/// ticket that was already breached when it was indexed first. The same
/// rows in the same order on every backend.
pub fn board_search_and_sla_order(b: &dyn Backend) {
    use tickets_core::index::SortKey;
    let t0 = now_ms();
    let targets = |fr: u64, res: u64| Targets { first_response_secs: Some(fr), resolution_secs: Some(res) };
    let policy = SlaPolicy {
        targets: [(Priority::Urgent, targets(60, 3600)), (Priority::High, targets(600, 7200))].into(),
        warn_percent: 75,
        calendar: None,
    };
    let settings = SlaSettings { epochs: vec![(t0 - 1_000_000, policy)], ..SlaSettings::default() };
    b.connect().set_sla_settings(&settings, t0).expect("SLA");
    let mut a = agent(b, "ann", "agent", false);
    let high = a.create_described("Printer offline", Priority::High, "The Café's printer");
    let urgent = a.create_described("Wi-Fi down", Priority::Urgent, "in the lobby");
    let low = a.create_described("Password reset", Priority::Low, "forgot the WIFI password");
    a.sync(b);
    // Every row indexed again two minutes on: the urgent first response
    // (due after one) is breached by then.
    b.connect().set_sla_settings(&settings, t0 + 120_000).expect("SLA again");
    let c = b.connect();
    let ids = |q: ListQuery| -> Vec<String> {
        c.ticket_rows(&q, t0 + 130_000).expect("query").0.into_iter().map(|r| r.id).collect()
    };
    let sla = ListQuery { sort: Some((SortKey::Sla, false)), ..ListQuery::default() };
    assert_eq!(ids(sla), [urgent.clone(), high.clone(), low.clone()], "breached first, then time left, then none");
    let search = |text: &str| ListQuery {
        search: Some(text.into()),
        sort: Some((SortKey::Created, true)),
        ..ListQuery::default()
    };
    assert_eq!(ids(search("wifi")), [urgent.clone(), low.clone()], "subject match first");
    assert_eq!(ids(search("CAFE")), vec![high.clone()]);
    assert_eq!(ids(search("wi fi LOBBY")), vec![urgent.clone()]);
    assert_eq!(ids(search(&low[..6])), vec![low.clone()], "an id prefix");
    assert!(ids(search("%")).is_empty(), "a wildcard is text");
}

/// Export pages walk the tickets in id order, each once; the count and
/// the filters agree.
pub fn export_pages(b: &dyn Backend) {
    let mut a = agent(b, "ann", "agent", false);
    let mut ids: Vec<String> = (0..7).map(|i| a.create(&format!("ticket {i}"), Priority::Low)).collect();
    a.node.edit(&ids[3], &[Edit::Status(Status::InProgress)]).expect("edit");
    a.sync(b);
    ids.sort();
    let c = b.connect();
    let all = ExportFilter { from_ms: 0, to_ms: i64::MAX, statuses: vec![], categories: vec![], notes: false };
    assert_eq!(c.export_count(&all).expect("count"), 7);
    let mut after = String::new();
    let mut seen = Vec::new();
    loop {
        let page = c.export_rows(&all, &after, 3).expect("page");
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        seen.extend(page.iter().map(|r| r.id.clone()));
    }
    assert_eq!(seen, ids);
    let open = ExportFilter { statuses: vec!["in-progress".into()], ..all.clone() };
    assert_eq!(c.export_count(&open).expect("count"), 1);
    assert_eq!(c.export_rows(&open, "", 10).expect("page").len(), 1);
    let none = ExportFilter { to_ms: 1, ..all };
    assert_eq!(c.export_count(&none).expect("count"), 0);
}

/// Agents, devices and settings: added, refused twice, revoked, granted
/// notes; a device taken by another agent is refused.
pub fn admin_changes(b: &dyn Backend) {
    let mut c = b.connect();
    c.add_agent("ann", "agent", Some("support"), false, "hash-ann", 1).expect("add");
    assert!(matches!(c.add_agent("ann", "lead", None, true, "hash-2", 1), Err(StoreError::AgentExists(_))));
    let caller = c.caller("hash-ann").expect("caller").expect("ann");
    assert!(!caller.agent.may_read_notes());
    c.set_notes_permission("ann", true).expect("grant");
    assert!(c.caller("hash-ann").expect("caller").expect("ann").agent.may_read_notes());
    let actor = Node::new_actor().to_hex_string();
    c.register_device(&actor, "ann", 2).expect("register");
    c.register_device(&actor, "ann", 3).expect("register again");
    c.add_agent("bob", "agent", None, false, "hash-bob", 1).expect("add");
    assert!(matches!(c.register_device(&actor, "bob", 4), Err(StoreError::DeviceTaken(o)) if o == "ann"));
    assert_eq!(c.caller("hash-ann").expect("caller").expect("ann").actors.len(), 1);
    c.touch_device(&actor, 5, 100).expect("touch");
    assert_eq!(c.devices_seen_since(100).expect("seen"), 1);
    assert_eq!(c.devices_seen_since(101).expect("seen"), 0);
    c.set_categories(&["billing".into(), "hardware".into()]).expect("categories");
    let s = c.settings().expect("settings");
    assert_eq!(s.categories, vec!["billing".to_string(), "hardware".to_string()]);
    assert_eq!(s.teams, vec!["support".to_string()]);
    c.revoke_agent("bob").expect("revoke");
    assert!(c.caller("hash-bob").expect("caller").is_none());
    assert!(matches!(c.revoke_agent("nobody"), Err(StoreError::NoAgent(_))));
    let names: Vec<String> = c.agents().expect("agents").into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["ann", "bob"]);
    assert!(!c.epoch().expect("epoch").is_empty());
}

/// A device's floor: none before it completes a sync; the start of its
/// first request (both clocks) once it has; the start of the sync under way
/// is kept across its requests and becomes the floor when it completes.
pub fn device_floors(b: &dyn Backend) {
    use tickets_relay::store::SyncFloor;
    let mut c = b.connect();
    let actor = Node::new_actor().to_hex_string();
    assert_eq!(c.sync_floor(&actor, 100, 90).expect("floor"), None, "no completed sync yet");
    assert_eq!(c.sync_floor(&actor, 200, 190).expect("floor"), None, "the same sync goes on");
    c.complete_sync(&actor).expect("complete");
    // (An unregistered device has no measured offset: its reading counts as
    // the relay's time, never later than the arrival.)
    assert_eq!(c.sync_floor(&actor, 300, 295).expect("floor"), Some(SyncFloor { relay_ms: 90, device_ms: 90 }));
    c.complete_sync(&actor).expect("complete");
    c.complete_sync(&actor).expect("a second completion without a request changes nothing");
    assert_eq!(c.sync_floor(&actor, 400, 400).expect("floor"), Some(SyncFloor { relay_ms: 295, device_ms: 295 }));
    // A registered device's request is placed at the relay time it was sent,
    // by the offset measured before it: one the network held for an hour
    // starts its sync an hour back.
    c.add_agent("fay", "agent", None, false, "hash-fay", 1).expect("add");
    let held = Node::new_actor().to_hex_string();
    c.register_device(&held, "fay", 1).expect("register");
    c.touch_device(&held, 2_000, 1_000).expect("touch");
    let hour = 3_600_000;
    assert_eq!(c.sync_floor(&held, 10 * hour, 9 * hour + 2_000).expect("floor"), None);
    c.complete_sync(&held).expect("complete");
    assert_eq!(
        c.sync_floor(&held, 11 * hour, 11 * hour).expect("floor"),
        Some(SyncFloor { relay_ms: 9 * hour, device_ms: 9 * hour + 2_000 })
    );
    let other = Node::new_actor().to_hex_string();
    assert_eq!(c.sync_floor(&other, 500, 500).expect("floor"), None, "floors are per device");
}

/// Runs every case against one backend (a fresh database per case).
macro_rules! conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            conformance!(@cases $make; gapless_cursors, idempotent_repush, conflict_remerge, stale_commit_conflicts,
                notes_filter, board_colour_queries, board_search_and_sla_order, export_pages, admin_changes, inbox_scope_and_cursor,
                inbox_stale_write_conflicts, inbox_concurrent_deliveries_merge, device_floors);
        }
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                if let Some(b) = $make {
                    super::$case(&b);
                }
            }
        )*
    };
}

conformance!(sqlite, Some(backends::Sqlite::new()));
conformance!(postgres, Some(backends::Postgres::new()));
