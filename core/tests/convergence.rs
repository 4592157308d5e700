//! Convergence (SPEC §1.1), property-tested: replicas that have seen the
//! same edits show the same ticket, byte for byte, whatever order the edits
//! arrived in.
//!
//! Each case runs 3 to 5 replicas of one ticket (ticket document plus notes
//! document), every device with its own actor, clock and wall-clock offset
//! (hours apart). Random edits of every kind are interleaved with random
//! delivery: changes since the receiver's heads are put in flight, a random
//! subset of them is delivered in a random order (some twice, some late, some
//! before the changes they depend on), and sometimes whole documents merge or
//! a device restarts from its saved bytes. At the end everything is delivered
//! everywhere and every replica must hold the same heads and show the same
//! JSON, notes included. In a share of the cases several devices create the
//! ticket offline from the same conversation (SPEC §1.2) instead of starting
//! from one creation.
//!
//! `PROPTEST_CASES` overrides the number of cases of every property here.

use std::collections::BTreeMap;

use automerge::{ActorId, Change};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tickets_core::conversation::Conversation;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{self, Applied, Author, Edit, EditError, NewTicket};
use tickets_core::hlc::Clock;
use tickets_core::ids;
use tickets_core::json::{wall_time, TicketJson};
use tickets_core::model::{Priority, Status};
use tickets_core::view::{self, Outcome, TicketView};
use tickets_core::DocError;
use uuid::Uuid;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;
const REPLICAS_MAX: usize = 5;

/// Cases per property unless `PROPTEST_CASES` says otherwise. Measured on
/// 2 shared cores in a debug build (dependencies at opt-level 2): 2,000
/// cases of the main property take about 25 s and 500 typing cases about
/// 7 s, run side by side, so the file stays well under a minute.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => ProptestConfig::default().cases,
        Err(_) => default_cases,
    };
    ProptestConfig { cases, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------
// Operations.

const SUBJECTS: [&str; 4] = ["Printer jams", "Printer jams again", "Imprimante bloquée ✓", "VPN down"];
const CATEGORIES: [&str; 3] = ["hardware", "network", "billing"];
const ASSIGNEES: [Option<&str>; 5] = [None, Some("ana"), Some("ben"), Some("team:field"), Some("team:desk")];
const TYPED: [&str; 7] = ["x", "hello ", "é", "🙂", "\n", "ab", "日本"];

#[derive(Debug, Clone)]
enum EditOp {
    Subject(usize),
    Priority(usize),
    Category(usize),
    Assignee(usize),
    Status(usize),
    Comment,
    Note,
    /// Insert typed text at a character position (modulo the length).
    Type {
        at: u16,
        text: usize,
    },
    /// Delete up to `len` characters from a character position.
    Delete {
        at: u16,
        len: u8,
    },
}

#[derive(Debug, Clone)]
enum Op {
    /// Replica `r` edits, `dt_ms` after the previous operation.
    Edit { r: usize, dt_ms: u32, op: EditOp },
    /// `from` puts the changes `to` lacks in flight; `keep` picks a subset.
    Send { from: usize, to: usize, keep: u64 },
    /// Replica `to` receives the in-flight messages picked by `pick`, in an
    /// order shuffled by `order`, one by one or as one batch; with `dup`
    /// they also stay in flight to arrive again later.
    Deliver { to: usize, pick: u64, order: u64, batch: bool, dup: bool },
    /// Whole-document merge of `from` into `to`.
    Merge { from: usize, to: usize },
    /// Replica `r` restarts from its saved documents.
    Reload { r: usize },
}

fn edit_op() -> impl Strategy<Value = EditOp> {
    prop_oneof![
        2 => (0..SUBJECTS.len()).prop_map(EditOp::Subject),
        3 => (0..Priority::ALL.len()).prop_map(EditOp::Priority),
        2 => (0..CATEGORIES.len()).prop_map(EditOp::Category),
        3 => (0..ASSIGNEES.len()).prop_map(EditOp::Assignee),
        4 => (0..Status::ALL.len()).prop_map(EditOp::Status),
        3 => Just(EditOp::Comment),
        2 => Just(EditOp::Note),
        3 => (any::<u16>(), 0..TYPED.len()).prop_map(|(at, text)| EditOp::Type { at, text }),
        1 => (any::<u16>(), 1..8u8).prop_map(|(at, len)| EditOp::Delete { at, len }),
    ]
}

fn dt_ms() -> impl Strategy<Value = u32> {
    // Often the same millisecond (ties between replicas), often seconds,
    // sometimes an hour.
    prop_oneof![3 => Just(0u32), 4 => 1..5_000u32, 1 => 1..3_600_000u32]
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REPLICAS_MAX;
    prop_oneof![
        10 => (r.clone(), dt_ms(), edit_op()).prop_map(|(r, dt_ms, op)| Op::Edit { r, dt_ms, op }),
        4 => (r.clone(), r.clone(), prop_oneof![Just(u64::MAX), any::<u64>()])
            .prop_map(|(from, to, keep)| Op::Send { from, to, keep }),
        4 => (r.clone(), prop_oneof![Just(u64::MAX), any::<u64>()], any::<u64>(), any::<bool>(), prop::bool::weighted(0.3))
            .prop_map(|(to, pick, order, batch, dup)| Op::Deliver { to, pick, order, batch, dup }),
        1 => (r.clone(), r.clone()).prop_map(|(from, to)| Op::Merge { from, to }),
        1 => r.prop_map(|r| Op::Reload { r }),
    ]
}

/// Wall-clock offsets, hours apart (the same offset twice makes ties).
fn offset() -> impl Strategy<Value = i64> {
    (-3i64..=3).prop_map(|h| h * HOUR)
}

// ---------------------------------------------------------------------------
// Replicas and the network.

struct Replica {
    author: Author,
    clock: Clock,
    offset_ms: i64,
    doc: TicketDoc,
    notes: Option<TicketDoc>,
}

impl Replica {
    fn view(&self) -> TicketView {
        view::materialize(&self.doc, self.notes.as_ref()).expect("every replica materializes")
    }

    fn json(&self) -> String {
        serde_json::to_string(&TicketJson::from_view(&self.view(), &wall_time)).expect("serializes")
    }

    fn notes_mut(&mut self) -> &mut TicketDoc {
        let id = self.doc.id();
        self.notes.get_or_insert_with(|| TicketDoc::genesis(id, DocKind::Notes))
    }
}

struct Msg {
    to: usize,
    kind: DocKind,
    change: Change,
}

/// What the replicas were asked to do, to check nothing is lost.
#[derive(Default)]
struct Ledger {
    comments: Vec<String>,
    notes: Vec<String>,
    closed: bool,
    /// Devices that created the ticket from the conversation themselves.
    creators: usize,
    description_edits: usize,
}

struct World {
    replicas: Vec<Replica>,
    inflight: Vec<Msg>,
    /// True time, milliseconds after T0.
    now: i64,
    ledger: Ledger,
}

fn ticket_id() -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001)
}

const CONVERSATION: &str = r#"{"id": "mail-981", "channel": "email", "customer": {"name": "Jo"},
  "messages": [
    {"role": "customer", "text": "VPN drops every hour", "at": "2025-12-31T08:00:00Z"},
    {"role": "agent", "from": "sam", "text": "Which client version?", "at": "2025-12-31T08:10:00Z"},
    {"role": "customer", "text": "4.2", "at": "2025-12-31T08:12:00Z"}
  ]}"#;

/// Actor of replica `i`: distinct first bytes, so distinct replica ids.
fn actor(i: usize) -> ActorId {
    let mut bytes = [0x5au8; 16];
    bytes[0] = 0x10 + i as u8;
    ActorId::from(bytes.as_slice())
}

impl World {
    /// Replica 0 creates the ticket; the others start from a copy of it.
    /// With `creators`, the ticket comes from a conversation and every
    /// replica flagged there (replica 0 always) creates it on its own,
    /// offline, with its own subject, priority and description.
    fn new(offsets: &[i64], creators: Option<&[bool]>) -> World {
        let conversation = creators.map(|_| Conversation::parse(CONVERSATION.as_bytes()).expect("conversation"));
        let id = match &conversation {
            Some(c) => ids::conversation_ticket_id(&c.id),
            None => ticket_id(),
        };
        let mut ledger = Ledger::default();
        let mut replicas: Vec<Replica> = Vec::new();
        for (i, &offset_ms) in offsets.iter().enumerate() {
            let a = actor(i);
            let author = Author { agent: format!("agent{i}"), actor: a.clone() };
            let mut clock = Clock::new(ids::replica_of(&a));
            let creates = i == 0 || creators.is_some_and(|c| c.get(i).copied().unwrap_or(false));
            let doc = match replicas.first_mut() {
                Some(first) if !creates => first.doc.fork_with(&a),
                _ => {
                    let new = NewTicket {
                        subject: SUBJECTS[i % SUBJECTS.len()].into(),
                        priority: Priority::ALL[i % Priority::ALL.len()],
                        category: CATEGORIES[0].into(),
                        description: (i % 3 != 2).then(|| format!("Seen by agent{i}.")),
                        assignee: None,
                    };
                    ledger.creators += 1;
                    edit::create_ticket(id, &author, &mut clock, T0 + offset_ms, &new, conversation.as_ref())
                        .expect("creates")
                }
            };
            replicas.push(Replica { author, clock, offset_ms, doc, notes: None });
        }
        World { replicas, inflight: Vec::new(), now: 0, ledger }
    }

    fn n(&self) -> usize {
        self.replicas.len()
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.n();
        match op {
            Op::Edit { r, dt_ms, op } => {
                self.now += i64::from(*dt_ms);
                self.edit(r % n, op)?;
            }
            Op::Send { from, to, keep } => {
                let (from, to) = (from % n, to % n);
                if from != to {
                    self.send(from, to, *keep);
                }
            }
            Op::Deliver { to, pick, order, batch, dup } => self.deliver(to % n, *pick, *order, *batch, *dup)?,
            Op::Merge { from, to } => {
                let (from, to) = (from % n, to % n);
                if from != to {
                    let (a, b) = two(&mut self.replicas, to, from);
                    a.doc.merge(&mut b.doc).map_err(fail)?;
                    if let Some(theirs) = b.notes.as_mut() {
                        a.notes_mut().merge(theirs).map_err(fail)?;
                    }
                }
            }
            Op::Reload { r } => {
                let r = &mut self.replicas[r % n];
                let id = r.doc.id();
                r.doc = TicketDoc::load(id, DocKind::Ticket, &r.doc.save()).map_err(fail)?;
                if let Some(notes) = r.notes.as_mut() {
                    r.notes = Some(TicketDoc::load(id, DocKind::Notes, &notes.save()).map_err(fail)?);
                }
            }
        }
        Ok(())
    }

    fn edit(&mut self, i: usize, op: &EditOp) -> Result<(), TestCaseError> {
        let now = T0 + self.now;
        let r = &mut self.replicas[i];
        let v = r.view();
        let stamp = r.offset_ms + now;
        let e = match op {
            EditOp::Subject(k) => Edit::Subject(SUBJECTS[*k].into()),
            EditOp::Priority(k) => Edit::Priority(Priority::ALL[*k]),
            EditOp::Category(k) => Edit::Category(CATEGORIES[*k].into()),
            EditOp::Assignee(k) => Edit::Assignee(ASSIGNEES[*k].map(str::to_string)),
            EditOp::Status(k) => Edit::Status(Status::ALL[*k]),
            EditOp::Comment => Edit::Comment(format!("comment {} by {}", self.ledger.comments.len(), r.author.agent)),
            EditOp::Note => Edit::Note(format!("note {} by {}", self.ledger.notes.len(), r.author.agent)),
            EditOp::Type { at, text } => {
                let chars: Vec<char> = v.description.chars().collect();
                let at = usize::from(*at) % (chars.len() + 1);
                let mut s: String = chars[..at].iter().collect();
                s.push_str(TYPED[*text]);
                s.extend(&chars[at..]);
                Edit::Description(s)
            }
            EditOp::Delete { at, len } => {
                let chars: Vec<char> = v.description.chars().collect();
                if chars.is_empty() {
                    return Ok(());
                }
                let at = usize::from(*at) % chars.len();
                let end = (at + usize::from(*len)).min(chars.len());
                Edit::Description(chars[..at].iter().chain(&chars[end..]).collect())
            }
        };
        let got = edit::apply_edit(&mut r.doc, &mut r.notes, &v, &r.author, &mut r.clock, stamp, &e);
        match got {
            Ok(Applied::Changed) => {}
            Ok(Applied::Unchanged) => return Ok(()),
            // Refused locally out of closed: a user would see the error.
            Err(EditError::Transition(_)) => {
                prop_assert_eq!(v.status, Status::Closed);
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("edit {e:?} failed: {other}"))),
        }
        // Read your own writes: a new edit is stamped after everything seen,
        // so it shows at once.
        let after = r.view();
        match &e {
            Edit::Subject(s) => prop_assert_eq!(&after.subject, s),
            Edit::Priority(p) => prop_assert_eq!(after.priority, *p),
            Edit::Category(c) => prop_assert_eq!(&after.category, c),
            Edit::Assignee(a) => prop_assert_eq!(&after.assignee, a),
            Edit::Status(s) => {
                prop_assert_eq!(after.status, *s);
                self.ledger.closed |= *s == Status::Closed;
            }
            Edit::Description(d) => {
                prop_assert_eq!(&after.description, d);
                self.ledger.description_edits += 1;
            }
            Edit::Comment(b) => {
                prop_assert_eq!(after.comments.last().map(|c| &c.body), Some(b));
                self.ledger.comments.push(b.clone());
            }
            Edit::Note(b) => {
                let last = after.internal_notes.as_ref().and_then(|n| n.last()).map(|n| &n.body);
                prop_assert_eq!(last, Some(b));
                self.ledger.notes.push(b.clone());
            }
        }
        Ok(())
    }

    fn send(&mut self, from: usize, to: usize, keep: u64) {
        let (dst, src) = two(&mut self.replicas, to, from);
        let kept = |i: usize| keep & (1 << (i % 64)) != 0;
        let heads = dst.doc.heads();
        for (i, change) in src.doc.changes_since(&heads).into_iter().enumerate() {
            if kept(i) {
                self.inflight.push(Msg { to, kind: DocKind::Ticket, change });
            }
        }
        if let Some(notes) = src.notes.as_mut() {
            let heads = dst.notes.as_mut().map(|n| n.heads()).unwrap_or_default();
            for (i, change) in notes.changes_since(&heads).into_iter().enumerate() {
                if kept(i + 32) {
                    self.inflight.push(Msg { to, kind: DocKind::Notes, change });
                }
            }
        }
    }

    fn deliver(&mut self, to: usize, pick: u64, order: u64, batch: bool, dup: bool) -> Result<(), TestCaseError> {
        let mut picked: Vec<(u64, DocKind, Change)> = Vec::new();
        let mut left = Vec::new();
        for (i, m) in std::mem::take(&mut self.inflight).into_iter().enumerate() {
            if m.to == to && pick & (1 << (i % 64)) != 0 {
                // A cheap, deterministic shuffle key.
                let key = (i as u64 ^ order).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left((order % 64) as u32);
                picked.push((key, m.kind, m.change.clone()));
                if dup {
                    left.push(m);
                }
            } else {
                left.push(m);
            }
        }
        self.inflight = left;
        picked.sort_by_key(|p| p.0);
        let r = &mut self.replicas[to];
        let mut batches: BTreeMap<DocKind, Vec<Vec<Change>>> = BTreeMap::new();
        for (_, kind, change) in picked {
            let list = batches.entry(kind).or_default();
            match list.last_mut() {
                Some(b) if batch => b.push(change),
                _ => list.push(vec![change]),
            }
        }
        for (kind, list) in batches {
            for changes in list {
                let doc = match kind {
                    DocKind::Ticket => &mut r.doc,
                    DocKind::Notes => r.notes_mut(),
                };
                // Out of causal order: reported, completed later.
                pending_is_fine(doc.apply_changes(changes))?;
            }
        }
        // Whatever arrived, the replica still shows a ticket.
        view::materialize(&r.doc, r.notes.as_ref()).map_err(fail)?;
        Ok(())
    }

    /// Delivers everything everywhere, as complete syncs would.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        let n = self.n();
        // Two rounds over all ordered pairs spread every change to everyone.
        for _ in 0..2 {
            for from in 0..n {
                for to in 0..n {
                    if from == to {
                        continue;
                    }
                    let (dst, src) = two(&mut self.replicas, to, from);
                    let heads = dst.doc.heads();
                    pending_is_fine(dst.doc.apply_changes(src.doc.changes_since(&heads)))?;
                    if let Some(notes) = src.notes.as_mut() {
                        let mine = dst.notes_mut();
                        let heads = mine.heads();
                        pending_is_fine(mine.apply_changes(notes.changes_since(&heads)))?;
                    }
                }
            }
        }
        // Once everything is delivered nothing may still wait for a
        // dependency.
        for r in &mut self.replicas {
            r.doc.apply_changes(Vec::new()).map_err(fail)?;
            if let Some(notes) = r.notes.as_mut() {
                notes.apply_changes(Vec::new()).map_err(fail)?;
            }
        }
        Ok(())
    }

    fn check_converged(&mut self) -> Result<(), TestCaseError> {
        let first_json = self.replicas[0].json();
        let first_heads = self.replicas[0].doc.heads();
        let first_notes = self.replicas[0].notes.as_mut().map(|n| n.heads());
        for (i, r) in self.replicas.iter_mut().enumerate().skip(1) {
            prop_assert_eq!(&r.doc.heads(), &first_heads, "replica {} has other ticket heads", i);
            prop_assert_eq!(&r.notes.as_mut().map(|n| n.heads()), &first_notes, "replica {} has other notes heads", i);
            prop_assert_eq!(&r.json(), &first_json, "replica {} shows another ticket", i);
        }
        // A device that loads the saved documents shows the same too.
        let r = &mut self.replicas[0];
        let id = r.doc.id();
        let doc = TicketDoc::load(id, DocKind::Ticket, &r.doc.save()).map_err(fail)?;
        let notes = match r.notes.as_mut() {
            Some(n) => Some(TicketDoc::load(id, DocKind::Notes, &n.save()).map_err(fail)?),
            None => None,
        };
        let loaded = view::materialize(&doc, notes.as_ref()).map_err(fail)?;
        prop_assert_eq!(serde_json::to_string(&TicketJson::from_view(&loaded, &wall_time)).map_err(fail)?, first_json);
        self.check_rules()
    }

    /// What the merged ticket must show, from what was asked of the replicas.
    fn check_rules(&self) -> Result<(), TestCaseError> {
        let v = self.replicas[0].view();
        prop_assert!(v.problems.is_empty(), "problems: {:?}", v.problems);
        // Every comment and note kept, none twice, in stamp order.
        let mut comments: Vec<String> = v.comments.iter().map(|c| c.body.clone()).collect();
        prop_assert!(v.comments.windows(2).all(|w| w[0].at < w[1].at), "comments out of stamp order");
        comments.sort();
        let mut want = self.ledger.comments.clone();
        want.sort();
        prop_assert_eq!(comments, want);
        let notes = v.internal_notes.clone().unwrap_or_default();
        prop_assert!(notes.windows(2).all(|w| w[0].at < w[1].at), "notes out of stamp order");
        let mut notes: Vec<String> = notes.into_iter().map(|n| n.body).collect();
        notes.sort();
        let mut want = self.ledger.notes.clone();
        want.sort();
        prop_assert_eq!(notes, want);
        // One ticket however many devices created it; every creation is in
        // the history, the first one as the creation.
        let created = v.history.iter().filter(|h| h.field == "created").count();
        prop_assert_eq!(created, self.ledger.creators);
        prop_assert!(v.history.iter().filter(|h| h.field == "created").skip(1).all(|h| h.note.is_some()));
        if v.conversation.is_some() && self.ledger.description_edits == 0 {
            let prefill = Conversation::parse(CONVERSATION.as_bytes()).map_err(fail)?.prefill().map_err(fail)?;
            prop_assert_eq!(v.description.matches(prefill.as_str()).count(), 1, "prefill once");
            prop_assert!(v.description.ends_with(prefill.as_str()), "own texts before the prefill");
        }
        // Closed is terminal: once any replica closed, the merge is closed.
        if self.ledger.closed {
            prop_assert_eq!(v.status, Status::Closed);
        }
        // History is in stamp order; the last edit of a last-writer-wins
        // field (none of which can be ignored but status) is the value shown.
        prop_assert!(v.history.windows(2).all(|w| w[0].at <= w[1].at), "history out of stamp order");
        for (field, shown) in [
            ("subject", Some(v.subject.clone())),
            ("priority", Some(v.priority.as_str().to_string())),
            ("category", Some(v.category.clone())),
            ("assignee", v.assignee.clone()),
            ("status", Some(v.status.as_str().to_string())),
        ] {
            let last = v.history.iter().rev().find(|h| h.field == field && h.outcome != Outcome::Ignored);
            if let Some(h) = last {
                prop_assert_eq!(h.outcome, Outcome::Applied, "the latest {} edit is current: {:?}", field, h);
                prop_assert_eq!(&h.to, &shown, "{} shows the latest edit", field);
            }
            // An ignored edit is only ever a move out of closed (its `from`
            // is what its author saw; its note says the ticket was closed).
            for h in v.history.iter().filter(|h| h.field == field && h.outcome == Outcome::Ignored) {
                prop_assert_eq!(field, "status");
                prop_assert!(h.to.as_deref() != Some("closed"), "{:?}", h);
                prop_assert!(h.note.as_deref().is_some_and(|n| n.contains("closed")), "{:?}", h);
            }
        }
        Ok(())
    }
}

/// `MissingDeps` while delivering reports a change still waiting for one it
/// depends on, possibly from an earlier delivery (see
/// `merge_rules::an_incomplete_delivery_does_not_fail_later_complete_ones`);
/// the final check requires nothing left waiting.
fn pending_is_fine(r: Result<(), DocError>) -> Result<(), TestCaseError> {
    match r {
        Ok(()) | Err(DocError::MissingDeps) => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Two distinct replicas, mutably.
fn two(rs: &mut [Replica], a: usize, b: usize) -> (&mut Replica, &mut Replica) {
    assert_ne!(a, b);
    if a < b {
        let (x, y) = rs.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = rs.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

type Creators = Option<Vec<bool>>;

fn scenario() -> impl Strategy<Value = (Vec<i64>, Creators, Vec<Op>)> {
    (3..=REPLICAS_MAX).prop_flat_map(|n| {
        (
            prop::collection::vec(offset(), n),
            prop::option::weighted(0.3, prop::collection::vec(any::<bool>(), n)),
            prop::collection::vec(op(), 1..60),
        )
    })
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Random edits on 3 to 5 replicas, random partial, duplicated, delayed
    /// and reordered delivery, merges and restarts: once everything is
    /// delivered everywhere, every replica is the same.
    #[test]
    fn replicas_converge_whatever_the_delivery((offsets, creators, ops) in scenario()) {
        let mut w = World::new(&offsets, creators.as_deref());
        for op in &ops {
            w.run(op)?;
        }
        w.settle()?;
        w.check_converged()?;
    }
}

// ---------------------------------------------------------------------------
// Description typing: nothing typed is lost.

/// Replica clock offsets, and typing steps: (replica, position, text index, deliver).
type TypingScenario = (Vec<i64>, Vec<(usize, u16, usize, bool)>);

fn typing_scenario() -> impl Strategy<Value = TypingScenario> {
    (3..=REPLICAS_MAX).prop_flat_map(|n| {
        (
            prop::collection::vec(offset(), n),
            // (replica, position, text, sync this replica with a random
            // other one afterwards)
            prop::collection::vec((0..n, any::<u16>(), 0..TYPED.len(), prop::bool::weighted(0.2)), 1..40),
        )
    })
}

fn char_counts(s: &str) -> BTreeMap<char, usize> {
    let mut m = BTreeMap::new();
    for c in s.chars() {
        *m.entry(c).or_default() += 1;
    }
    m
}

proptest! {
    #![proptest_config(config(500))]

    /// Concurrent insertions anywhere in the description: after merging,
    /// every character anyone typed is there, exactly once.
    #[test]
    fn concurrent_typing_loses_nothing((offsets, typing) in typing_scenario()) {
        let mut w = World::new(&offsets, None);
        let mut want = char_counts(&w.replicas[0].view().description);
        for (k, (r, at, text, sync)) in typing.iter().enumerate() {
            w.now += 1_000;
            w.edit(*r, &EditOp::Type { at: *at, text: *text })?;
            for (c, n) in char_counts(TYPED[*text]) {
                *want.entry(c).or_default() += n;
            }
            if *sync {
                let other = (r + 1 + k) % w.n();
                if other != *r {
                    w.send(*r, other, u64::MAX);
                    w.deliver(other, u64::MAX, k as u64, true, false)?;
                }
            }
        }
        w.settle()?;
        w.check_converged()?;
        prop_assert_eq!(char_counts(&w.replicas[0].view().description), want);
    }
}
