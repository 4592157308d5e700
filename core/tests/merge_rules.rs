//! Merge rules of SPEC §1.1 and §1.2, table-driven: one `check_*` helper per
//! area and many small cases whose expectations are stated by hand.
//!
//! Every case runs whole replicas of one ticket (ticket document plus notes
//! document, each device with its own actor, clock and wall-clock offset)
//! and exchanges their edits in several orders and ways (changes since
//! heads, whole-document merge, save and load). Wherever replicas have seen
//! the same edits their `show --json` object must be byte for byte the same,
//! so every check ends by comparing all of them.

use automerge::transaction::Transactable;
use automerge::{ActorId, ChangeHash, ObjType, ReadDoc, ROOT};
use serde_json::{json, Value};
use tickets_core::conversation::Conversation;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{self, Applied, Author, Edit, EditError, NewTicket};
use tickets_core::hlc::{Clock, Hlc};
use tickets_core::ids;
use tickets_core::json::{wall_time, TicketJson};
use tickets_core::model::{Priority, Status};
use tickets_core::view::{self, HistoryEntry, Outcome, TicketView};
use tickets_core::DocError;
use uuid::Uuid;

/// 2026-01-01T00:00:00Z, the true time every case starts at.
const T0: i64 = 1_767_225_600_000;
const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

// Actors whose first eight bytes differ, so every device has its own
// replica id; the tie-break order is cora < ana < ben < dan by design of
// the bytes below (0x0a < 0x0b < 0x0c < 0x0d, cora is 0x01).
const CORA: (&str, u8) = ("cora", 0x01);
const ANA: (&str, u8) = ("ana", 0x0a);
const BEN: (&str, u8) = ("ben", 0x0b);
const DAN: (&str, u8) = ("dan", 0x0d);
const MALLORY: (&str, u8) = ("mallory", 0x0e);

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

/// One device holding a replica of the ticket.
struct Replica {
    author: Author,
    clock: Clock,
    /// How far this device's wall clock is off the true time.
    offset_ms: i64,
    doc: TicketDoc,
    notes: Option<TicketDoc>,
}

fn new_ticket(subject: &str) -> NewTicket {
    NewTicket {
        subject: subject.into(),
        priority: Priority::Medium,
        category: "hardware".into(),
        description: Some("The printer on floor 2 jams.".into()),
        assignee: None,
    }
}

impl Replica {
    fn device(who: (&str, u8), offset_ms: i64, doc: TicketDoc, notes: Option<TicketDoc>) -> Replica {
        let a = actor(who.1);
        Replica {
            clock: Clock::new(ids::replica_of(&a)),
            author: Author { agent: who.0.into(), actor: a },
            offset_ms,
            doc,
            notes,
        }
    }

    /// Creates a ticket on a device at true time `at`.
    fn create(
        who: (&str, u8),
        offset_ms: i64,
        at: i64,
        id: Uuid,
        new: &NewTicket,
        conversation: Option<&Conversation>,
    ) -> Replica {
        let mut r = Replica::device(who, offset_ms, TicketDoc::genesis(id, DocKind::Ticket), None);
        r.doc = edit::create_ticket(id, &r.author, &mut r.clock, at + offset_ms, new, conversation)
            .expect("valid creation");
        r
    }

    /// The usual starting point: cora creates "Printer jams" at T0.
    fn origin() -> Replica {
        Replica::create(CORA, 0, T0, Uuid::from_u128(0x7157), &new_ticket("Printer jams"), None)
    }

    /// Another device that received everything this one has.
    fn fork(&mut self, who: (&str, u8), offset_ms: i64) -> Replica {
        let a = actor(who.1);
        let doc = self.doc.fork_with(&a);
        let notes = self.notes.as_mut().map(|n| n.fork_with(&a));
        Replica::device(who, offset_ms, doc, notes)
    }

    /// Another device that loaded this one's saved documents.
    fn load_copy(&mut self, who: (&str, u8), offset_ms: i64) -> Replica {
        let id = self.doc.id();
        let doc = TicketDoc::load(id, DocKind::Ticket, &self.doc.save()).expect("loads");
        let notes = self.notes.as_mut().map(|n| TicketDoc::load(id, DocKind::Notes, &n.save()).expect("loads"));
        Replica::device(who, offset_ms, doc, notes)
    }

    fn view(&self) -> TicketView {
        view::materialize(&self.doc, self.notes.as_ref()).expect("materializes")
    }

    fn json(&self) -> String {
        serde_json::to_string(&TicketJson::from_view(&self.view(), &wall_time)).expect("serializes")
    }

    fn value(&self) -> Value {
        serde_json::from_str(&self.json()).expect("json")
    }

    fn heads(&mut self) -> (Vec<ChangeHash>, Option<Vec<ChangeHash>>) {
        (self.doc.heads(), self.notes.as_mut().map(|n| n.heads()))
    }

    /// Edits at true time `at` (the device adds its own offset).
    fn try_edit(&mut self, at: i64, e: Edit) -> Result<Applied, EditError> {
        let v = self.view();
        edit::apply_edit(&mut self.doc, &mut self.notes, &v, &self.author, &mut self.clock, at + self.offset_ms, &e)
    }

    fn edit(&mut self, at: i64, e: Edit) {
        let what = format!("{e:?}");
        match self.try_edit(at, e) {
            Ok(Applied::Changed) => {}
            other => panic!("{} could not apply {what}: {other:?}", self.author.agent),
        }
    }

    /// Receives what `from` has and this replica lacks, as a sync would:
    /// the changes since this replica's heads.
    fn receive(&mut self, from: &mut Replica) {
        let heads = self.doc.heads();
        let changes = from.doc.changes_since(&heads);
        self.doc.apply_changes(changes).expect("complete change set applies");
        if let Some(theirs) = from.notes.as_mut() {
            let id = self.doc.id();
            let mine = self.notes.get_or_insert_with(|| TicketDoc::genesis(id, DocKind::Notes));
            let heads = mine.heads();
            mine.apply_changes(theirs.changes_since(&heads)).expect("complete change set applies");
        }
    }

    /// Whole-document merge of `from` into this replica.
    fn merge(&mut self, from: &mut Replica) {
        self.doc.merge(&mut from.doc).expect("merges");
        if let Some(theirs) = from.notes.as_mut() {
            match self.notes.as_mut() {
                Some(mine) => mine.merge(theirs).expect("merges"),
                None => self.notes = Some(theirs.fork_with(&self.author.actor)),
            }
        }
    }
}

/// Both replicas receive each other's changes.
fn sync(a: &mut Replica, b: &mut Replica) {
    a.receive(b);
    b.receive(a);
}

/// Asserts that every replica shows the same ticket and holds the same heads.
fn assert_same(case: &str, replicas: &mut [&mut Replica]) {
    let first_json = replicas[0].json();
    let first_heads = replicas[0].heads();
    for (i, r) in replicas.iter_mut().enumerate().skip(1) {
        assert_eq!(r.heads(), first_heads, "{case}: replica {i} has other heads");
        assert_eq!(r.json(), first_json, "{case}: replica {i} shows another ticket");
    }
}

/// The history entry of `field` written by `by` (each agent edits a field
/// once per case).
fn entry<'a>(v: &'a TicketView, by: &str, field: &str) -> &'a HistoryEntry {
    let found: Vec<&HistoryEntry> = v.history.iter().filter(|h| h.by == by && h.field == field).collect();
    assert_eq!(found.len(), 1, "expected one {field} entry by {by}: {:#?}", v.history);
    found[0]
}

// ---------------------------------------------------------------------------
// Concurrent edits of last-writer-wins fields.

struct Concurrent {
    name: &'static str,
    /// Edits cora makes (one second apart) before ana and ben fork.
    setup: Vec<Edit>,
    /// ana's edit: (true time after T0 + 1 min, edit).
    a: (i64, Edit),
    b: (i64, Edit),
    /// Wall-clock offsets of ana and ben.
    offsets: (i64, i64),
    field: &'static str,
    want: Value,
    a_outcome: Outcome,
    b_outcome: Outcome,
    /// Words the loser's history note must contain.
    note: Option<&'static str>,
}

fn check_concurrent(c: Concurrent) {
    let name = c.name;
    let mut origin = Replica::origin();
    for (i, e) in c.setup.into_iter().enumerate() {
        origin.edit(T0 + (i as i64 + 1) * SEC, e);
    }
    let mut ana = origin.fork(ANA, c.offsets.0);
    let mut ben = origin.fork(BEN, c.offsets.1);
    let mut obs1 = origin.fork(DAN, 0);
    let mut obs2 = origin.load_copy(DAN, 0);
    ana.edit(T0 + MIN + c.a.0, c.a.1);
    ben.edit(T0 + MIN + c.b.0, c.b.1);

    // Arrival orders: ana's first, ben's first, whole-document merges, and
    // a device that starts from a saved copy of ben's merged replica.
    obs1.receive(&mut ana);
    obs1.receive(&mut ben);
    obs2.merge(&mut ben);
    obs2.merge(&mut ana);
    origin.receive(&mut ben);
    origin.receive(&mut ana);
    sync(&mut ana, &mut ben);
    let mut obs3 = ben.load_copy(DAN, 0);

    let v = ana.view();
    assert_eq!(ana.value()[c.field], c.want, "{name}: merged {}", c.field);
    let a = entry(&v, "ana", c.field);
    let b = entry(&v, "ben", c.field);
    assert_eq!(a.outcome, c.a_outcome, "{name}: ana's entry {a:#?}");
    assert_eq!(b.outcome, c.b_outcome, "{name}: ben's entry {b:#?}");
    for h in [a, b] {
        match h.outcome {
            Outcome::Applied => assert_eq!(h.note, None, "{name}: {h:#?}"),
            _ => {
                let note = h.note.as_deref().unwrap_or_default();
                assert!(!note.is_empty(), "{name}: a loser says why: {h:#?}");
                if let Some(words) = c.note {
                    assert!(note.contains(words), "{name}: note {note:?} lacks {words:?}");
                }
            }
        }
    }
    assert!(v.problems.is_empty(), "{name}: {:?}", v.problems);
    assert_same(name, &mut [&mut ana, &mut ben, &mut obs1, &mut obs2, &mut obs3, &mut origin]);
}

fn st(s: Status) -> Edit {
    Edit::Status(s)
}

#[test]
fn concurrent_status_edits_resolve_to_the_later_stamp() {
    use Outcome::{Applied as A, Ignored as I, Superseded as S};
    use Status::*;
    let case = |name, setup: Vec<Edit>, a: (i64, Status), b: (i64, Status), want: &str, ao, bo, note| Concurrent {
        name,
        setup,
        a: (a.0, st(a.1)),
        b: (b.0, st(b.1)),
        offsets: (0, 0),
        field: "status",
        want: json!(want),
        a_outcome: ao,
        b_outcome: bo,
        note,
    };
    #[rustfmt::skip]
    let cases = vec![
        //   name                                           setup                  ana (ms, status)         ben (ms, status)           merged         ana ben  loser's note
        case("later ben wins",                              vec![],                (10 * SEC, Resolved),   (20 * SEC, InProgress), "in-progress", S, A, Some("superseded")),
        case("later ana wins",                              vec![],                (20 * SEC, Resolved),   (10 * SEC, InProgress), "resolved",    A, S, Some("ana")),
        case("same instant: replica id breaks the tie",     vec![],                (5 * SEC, Resolved),    (5 * SEC, InProgress),  "in-progress", S, A, None),
        // The same value twice: the earlier edit's value stands, so it did
        // take effect and is not marked superseded.
        case("same value twice: the later one is current",  vec![],                (SEC, Resolved),        (2 * SEC, Resolved),    "resolved",    A, A, None),
        case("later resolve after close is ignored",        vec![],                (10 * SEC, Closed),     (20 * SEC, Resolved),   "closed",      A, I, Some("closed")),
        case("earlier resolve, then close",                 vec![],                (20 * SEC, Closed),     (10 * SEC, Resolved),   "closed",      A, S, None),
        case("reopen stamped after close is ignored",       vec![st(Resolved)],    (10 * SEC, Closed),     (20 * SEC, Open),       "closed",      A, I, Some("closed")),
        case("in-progress stamped after close is ignored",  vec![st(Resolved)],    (10 * SEC, Closed),     (20 * SEC, InProgress), "closed",      A, I, Some("closed")),
        // The reopen is valid at its place (resolved -> open) and applies;
        // the concurrent close, stamped later, then wins over it.
        case("reopen stamped before close, then close",     vec![st(Resolved)],    (20 * SEC, Closed),     (10 * SEC, Open),       "closed",      A, S, Some("ana")),
        case("both close",                                  vec![st(InProgress)],  (10 * SEC, Closed),     (20 * SEC, Closed),     "closed",      A, A, None),
        case("close stamped after a resolve",               vec![st(InProgress)],  (30 * SEC, Closed),     (29 * SEC, Resolved),   "closed",      A, S, None),
        case("one millisecond apart",                       vec![st(InProgress)],  (1_001, Open),          (1_000, Resolved),      "open",        A, S, None),
    ];
    for c in cases {
        check_concurrent(c);
    }
}

#[test]
fn concurrent_field_edits_resolve_to_the_later_stamp() {
    use Outcome::{Applied as A, Superseded as S};
    let case = |name, field, a: (i64, Edit), b: (i64, Edit), offsets, want: Value, ao, bo| Concurrent {
        name,
        setup: vec![],
        a,
        b,
        offsets,
        field,
        want,
        a_outcome: ao,
        b_outcome: bo,
        note: Some("superseded by a concurrent edit"),
    };
    let p = Edit::Priority;
    let subj = |s: &str| Edit::Subject(s.into());
    let cat = |s: &str| Edit::Category(s.into());
    let asg = |s: Option<&str>| Edit::Assignee(s.map(str::to_string));
    #[rustfmt::skip]
    let cases = vec![
        case("priority, ben later", "priority", (1, p(Priority::High)), (2, p(Priority::Low)), (0, 0), json!("low"), S, A),
        case("priority, ana later", "priority", (9, p(Priority::Urgent)), (2, p(Priority::Low)), (0, 0), json!("urgent"), A, S),
        // Concurrent edits follow the stamps, and so the wall clocks: ben's
        // clock runs an hour ahead, so his edit is "later".
        case("priority, ben's clock an hour ahead", "priority", (30 * MIN, p(Priority::High)), (0, p(Priority::Low)), (0, HOUR), json!("low"), S, A),
        case("subject, ana later", "subject", (5 * SEC, subj("Printer on fire")), (SEC, subj("Printer jams daily")), (0, 0), json!("Printer on fire"), A, S),
        case("category, ben later", "category", (SEC, cat("network")), (2 * SEC, cat("billing")), (0, 0), json!("billing"), S, A),
        case("assignee agent vs team, team later", "assignee", (SEC, asg(Some("ana"))), (2 * SEC, asg(Some("team:field"))), (0, 0), json!("team:field"), S, A),
        case("assignee team vs agent, agent later", "assignee", (3 * SEC, asg(Some("ana"))), (2 * SEC, asg(Some("team:field"))), (0, 0), json!("ana"), A, S),
        case("assignee same instant: replica id breaks the tie", "assignee", (SEC, asg(Some("ana"))), (SEC, asg(Some("ben"))), (0, 0), json!("ben"), S, A),
        // ben's clock is two hours behind: his concurrent edit is older.
        case("assignee, ben's clock two hours behind", "assignee", (SEC, asg(Some("ana"))), (HOUR, asg(Some("ben"))), (0, -2 * HOUR), json!("ana"), A, S),
    ];
    for c in cases {
        check_concurrent(c);
    }
}

#[test]
fn clearing_the_assignee_concurrently() {
    use Outcome::{Applied as A, Superseded as S};
    for (name, a_at, b_at, want, ao, bo) in
        [("clear later", 2 * SEC, SEC, Value::Null, A, S), ("clear earlier", SEC, 2 * SEC, json!("team:desk"), S, A)]
    {
        check_concurrent(Concurrent {
            name,
            setup: vec![Edit::Assignee(Some("cora".into()))],
            a: (a_at, Edit::Assignee(None)),
            b: (b_at, Edit::Assignee(Some("team:desk".into()))),
            offsets: (0, 0),
            field: "assignee",
            want,
            a_outcome: ao,
            b_outcome: bo,
            note: None,
        });
    }
}

// ---------------------------------------------------------------------------
// Sequential edits: an edit made after seeing another wins, whatever the
// wall clocks say, and the earlier one is not superseded.

struct Causal {
    name: &'static str,
    /// Wall-clock offsets of ana (edits first) and ben (edits after seeing
    /// ana's edit).
    offsets: (i64, i64),
    field: &'static str,
    first: Edit,
    then: Edit,
    want: Value,
}

fn check_causal(c: Causal) {
    let name = c.name;
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, c.offsets.0);
    let mut ben = origin.fork(BEN, c.offsets.1);
    let mut obs = origin.fork(DAN, 0);
    ana.edit(T0 + MIN, c.first);
    ben.receive(&mut ana);
    ben.edit(T0 + 2 * MIN, c.then);
    // Every arrival order: the observer hears ben first (his changes bring
    // ana's along), the origin merges ana's then ben's, ana syncs.
    obs.receive(&mut ben);
    origin.merge(&mut ana);
    origin.merge(&mut ben);
    sync(&mut ana, &mut ben);

    let v = ana.view();
    let a = entry(&v, "ana", c.field).clone();
    let b = entry(&v, "ben", c.field).clone();
    assert_eq!(ana.value()[c.field], c.want, "{name}");
    assert!(b.at > a.at, "{name}: ben's stamp {} must follow ana's {}", b.at, a.at);
    assert_eq!(a.outcome, Outcome::Applied, "{name}: sequential, not superseded: {a:#?}");
    assert_eq!(a.note, None, "{name}");
    assert_eq!(b.outcome, Outcome::Applied, "{name}: {b:#?}");
    assert_eq!(b.from, a.to, "{name}: ben changed ana's value");
    assert_same(name, &mut [&mut ana, &mut ben, &mut obs, &mut origin]);
}

#[test]
fn an_edit_made_after_seeing_another_wins_whatever_the_clocks() {
    let two_h = 2 * HOUR;
    let asg = |s: Option<&str>| Edit::Assignee(s.map(str::to_string));
    let cases = vec![
        Causal {
            name: "priority, first editor's clock 2 h ahead",
            offsets: (two_h, 0),
            field: "priority",
            first: Edit::Priority(Priority::High),
            then: Edit::Priority(Priority::Low),
            want: json!("low"),
        },
        Causal {
            name: "priority, second editor's clock 2 h behind",
            offsets: (0, -two_h),
            field: "priority",
            first: Edit::Priority(Priority::Urgent),
            then: Edit::Priority(Priority::Medium),
            want: json!("medium"),
        },
        Causal {
            name: "priority, clocks 5 h apart both ways",
            offsets: (3 * HOUR, -2 * HOUR),
            field: "priority",
            first: Edit::Priority(Priority::Low),
            then: Edit::Priority(Priority::Urgent),
            want: json!("urgent"),
        },
        Causal {
            name: "status, first editor 2 h ahead",
            offsets: (two_h, 0),
            field: "status",
            first: st(Status::Resolved),
            then: st(Status::InProgress),
            want: json!("in-progress"),
        },
        Causal {
            name: "status close after a resolve made 2 h ahead",
            offsets: (two_h, 0),
            field: "status",
            first: st(Status::Resolved),
            then: st(Status::Closed),
            want: json!("closed"),
        },
        Causal {
            name: "assignee cleared after a set made 2 h ahead",
            offsets: (two_h, 0),
            field: "assignee",
            first: asg(Some("team:field")),
            then: asg(None),
            want: Value::Null,
        },
        Causal {
            name: "subject, first editor 2 h ahead",
            offsets: (two_h, 0),
            field: "subject",
            first: Edit::Subject("Printer jams badly".into()),
            then: Edit::Subject("Printer fixed?".into()),
            want: json!("Printer fixed?"),
        },
        Causal {
            name: "category, both clocks right",
            offsets: (0, 0),
            field: "category",
            first: Edit::Category("network".into()),
            then: Edit::Category("hardware-2".into()),
            want: json!("hardware-2"),
        },
    ];
    for c in cases {
        check_causal(c);
    }
}

#[test]
fn a_chain_of_seen_edits_across_skewed_clocks() {
    // ana +2 h, ben correct, dan -3 h: each edits after seeing the previous
    // one; the last one wins everywhere and nothing is superseded.
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, 2 * HOUR);
    let mut ben = origin.fork(BEN, 0);
    let mut dan = origin.fork(DAN, -3 * HOUR);
    ana.edit(T0 + MIN, Edit::Priority(Priority::High));
    ben.receive(&mut ana);
    ben.edit(T0 + 2 * MIN, Edit::Priority(Priority::Low));
    dan.receive(&mut ben);
    dan.edit(T0 + 3 * MIN, Edit::Priority(Priority::Urgent));
    ana.receive(&mut dan);
    ana.edit(T0 + 4 * MIN, Edit::Priority(Priority::Medium));
    for r in [&mut ben, &mut dan, &mut origin] {
        r.receive(&mut ana);
    }
    let v = origin.view();
    assert_eq!(v.priority, Priority::Medium);
    let prio: Vec<&HistoryEntry> = v.history.iter().filter(|h| h.field == "priority").collect();
    assert!(prio.iter().all(|h| h.outcome == Outcome::Applied), "{prio:#?}");
    let moves: Vec<(&str, &str)> =
        prio.iter().map(|h| (h.from.as_deref().unwrap_or(""), h.to.as_deref().unwrap_or(""))).collect();
    assert_eq!(moves, [("medium", "high"), ("high", "low"), ("low", "urgent"), ("urgent", "medium")]);
    assert!(prio.windows(2).all(|w| w[0].at < w[1].at), "{prio:#?}");
    assert_same("chain", &mut [&mut origin, &mut ana, &mut ben, &mut dan]);
}

#[test]
fn each_event_keeps_its_own_devices_time_whatever_stamp_orders_it() {
    // ana +2 h, dan -3 h. dan sees ana's comment, so his next stamp orders
    // after it (2 h ahead of the true time, 5 h ahead of his clock), yet
    // his comment says when his own clock wrote it: a fast clock elsewhere
    // never becomes this device's notion of now.
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, 2 * HOUR);
    let mut dan = origin.fork(DAN, -3 * HOUR);
    ana.edit(T0 + MIN, Edit::Comment("from ana".into()));
    dan.receive(&mut ana);
    dan.edit(T0 + 2 * MIN, Edit::Comment("from dan".into()));
    origin.receive(&mut dan);
    ana.receive(&mut dan);
    let v = origin.view();
    let bodies: Vec<&str> = v.comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["from ana", "from dan"], "the comment made after seeing the other sorts after it");
    assert_eq!(v.written_ms(&v.comments[0].at), T0 + MIN + 2 * HOUR, "ana's own clock");
    assert_eq!(v.written_ms(&v.comments[1].at), T0 + 2 * MIN - 3 * HOUR, "dan's own clock");
    assert!(v.comments[1].at.wall_ms as i64 > T0 + 2 * HOUR, "dan's stamp passed ana's");
    assert_same("own times", &mut [&mut origin, &mut ana, &mut dan]);
}

#[test]
fn an_edit_that_did_not_take_effect_says_why_and_shows_what_its_author_saw() {
    let mut origin = Replica::origin();
    origin.edit(T0 + SEC, st(Status::Resolved));
    let mut ana = origin.fork(ANA, 0);
    let mut ben = origin.fork(BEN, 0);
    let mut obs = origin.fork(DAN, 0);
    // ben closes; ana, offline, reopens later with a comment, and both
    // change the priority from medium at about the same time.
    ben.edit(T0 + MIN, Edit::Priority(Priority::Low));
    ben.edit(T0 + MIN + SEC, st(Status::Closed));
    ana.edit(T0 + 30 * SEC, Edit::Priority(Priority::High));
    ana.edit(T0 + 2 * MIN, st(Status::Open));
    ana.edit(T0 + 2 * MIN + SEC, Edit::Comment("failed again after reboot".into()));
    sync(&mut ana, &mut ben);
    obs.receive(&mut ben);

    let v = ana.view();
    assert_eq!((v.status, v.priority, v.comments.len()), (Status::Closed, Priority::Low, 1));
    let reopen = entry(&v, "ana", "status");
    assert_eq!(reopen.outcome, Outcome::Ignored);
    // "from" is what ana saw when she reopened, not the close she could not see.
    assert_eq!((reopen.from.as_deref(), reopen.to.as_deref()), (Some("resolved"), Some("open")));
    let note = reopen.note.as_deref().unwrap_or_default();
    assert!(note.contains("ticket closed by ben at"), "{note}");
    let high = entry(&v, "ana", "priority");
    assert_eq!(high.outcome, Outcome::Superseded);
    let low = entry(&v, "ben", "priority");
    assert_eq!((low.from.as_deref(), low.to.as_deref()), (Some("medium"), Some("low")), "ben saw medium, not high");

    // The JSON lists every edit that did not take effect, the same on
    // every replica; a reader picks its own by `by`.
    let j = ana.value();
    let not_applied = j["not_applied"].as_array().cloned().unwrap_or_default();
    let mine: Vec<(&str, &str, &str)> = not_applied
        .iter()
        .filter(|h| h["by"] == "ana")
        .map(|h| {
            (h["field"].as_str().unwrap_or(""), h["to"].as_str().unwrap_or(""), h["outcome"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(mine, [("priority", "high", "superseded"), ("status", "open", "ignored")], "{j}");
    assert_same("not applied", &mut [&mut ana, &mut ben, &mut obs]);
}

// ---------------------------------------------------------------------------
// Local refusals write nothing.

struct Refusal {
    name: &'static str,
    setup: Vec<Edit>,
    /// Whether the closing arrives from another replica rather than being
    /// made locally.
    closed_remotely: bool,
    edit: Edit,
    want: fn(&Result<Applied, EditError>) -> bool,
}

fn check_refusal(c: Refusal) {
    let name = c.name;
    let mut origin = Replica::origin();
    let mut local = origin.fork(ANA, 0);
    for (i, e) in c.setup.into_iter().enumerate() {
        let at = T0 + (i as i64 + 1) * SEC;
        if c.closed_remotely {
            origin.edit(at, e);
        } else {
            local.edit(at, e);
        }
    }
    local.receive(&mut origin);
    // A note first, so that the notes document exists and must stay put too.
    local.edit(T0 + 30 * SEC, Edit::Note("checked the tray".into()));
    let heads = local.heads();
    let json = local.json();
    let clock = local.clock.last();
    let saved = local.doc.save();
    let got = local.try_edit(T0 + MIN, c.edit);
    assert!((c.want)(&got), "{name}: got {got:?}");
    assert_eq!(local.heads(), heads, "{name}: heads moved");
    assert_eq!(local.json(), json, "{name}: ticket changed");
    assert_eq!(local.clock.last(), clock, "{name}: clock moved");
    assert_eq!(local.doc.save(), saved, "{name}: document bytes changed");
}

#[test]
fn refused_local_edits_write_nothing() {
    fn out_of_closed(r: &Result<Applied, EditError>) -> bool {
        matches!(r, Err(EditError::Transition(_))) && r.as_ref().err().is_some_and(|e| e.to_string().contains("closed"))
    }
    fn input(r: &Result<Applied, EditError>) -> bool {
        matches!(r, Err(EditError::Input(_)))
    }
    fn unchanged(r: &Result<Applied, EditError>) -> bool {
        matches!(r, Ok(Applied::Unchanged))
    }
    let closed = || vec![st(Status::Closed)];
    let case = |name, setup, closed_remotely, edit, want| Refusal { name, setup, closed_remotely, edit, want };
    #[rustfmt::skip]
    let cases = vec![
        case("closed -> open",                      closed(), false, st(Status::Open), out_of_closed as fn(&_) -> bool),
        case("closed -> in-progress",               closed(), false, st(Status::InProgress), out_of_closed),
        case("closed -> resolved",                  closed(), false, st(Status::Resolved), out_of_closed),
        case("resolved, closed -> open",            vec![st(Status::Resolved), st(Status::Closed)], false, st(Status::Open), out_of_closed),
        case("closed elsewhere -> open",            closed(), true, st(Status::Open), out_of_closed),
        case("closed elsewhere -> resolved",        vec![st(Status::InProgress), st(Status::Closed)], true, st(Status::Resolved), out_of_closed),
        case("closed -> closed changes nothing",    closed(), false, st(Status::Closed), unchanged),
        case("priority of a closed ticket",         closed(), false, Edit::Priority(Priority::Urgent), out_of_closed),
        case("subject of a closed ticket",          closed(), false, Edit::Subject("New subject".into()), out_of_closed),
        case("category of a closed ticket",         closed(), true, Edit::Category("billing".into()), out_of_closed),
        case("assignee of a closed ticket",         closed(), true, Edit::Assignee(Some("ben".into())), out_of_closed),
        case("description of a closed ticket",      closed(), false, Edit::Description("rewritten".into()), out_of_closed),
        case("same priority changes nothing",       vec![], false, Edit::Priority(Priority::Medium), unchanged),
        case("same subject changes nothing",        vec![], false, Edit::Subject("Printer jams".into()), unchanged),
        case("no assignee again changes nothing",   vec![], false, Edit::Assignee(None), unchanged),
        case("same description changes nothing",   vec![], false, Edit::Description("The printer on floor 2 jams.".into()), unchanged),
        case("empty subject",                       vec![], false, Edit::Subject("   ".into()), input),
        case("subject too long",                    vec![], false, Edit::Subject("x".repeat(501)), input),
        case("empty category",                      vec![], false, Edit::Category(" ".into()), input),
        case("bad team",                            vec![], false, Edit::Assignee(Some("team:".into())), input),
        case("control character in assignee",       vec![], false, Edit::Assignee(Some("a\u{7}b".into())), input),
        case("empty comment",                       vec![], false, Edit::Comment(" \n ".into()), input),
        case("empty note",                          vec![], false, Edit::Note("".into()), input),
        case("huge comment",                        vec![], false, Edit::Comment("x".repeat(64 * 1024 + 1)), input),
        case("huge description",                    vec![], false, Edit::Description("y".repeat(64 * 1024 + 1)), input),
    ];
    for c in cases {
        check_refusal(c);
    }
}

#[test]
fn a_closed_ticket_still_takes_comments_and_notes() {
    // Closed is final for the lifecycle, not for the conversation.
    let mut r = Replica::origin();
    r.edit(T0 + SEC, st(Status::Closed));
    r.edit(T0 + 2 * SEC, Edit::Comment("thanks".into()));
    r.edit(T0 + 3 * SEC, Edit::Note("customer happy".into()));
    let v = r.view();
    assert_eq!((v.status, v.comments.len(), v.priority), (Status::Closed, 1, Priority::Medium));
    // Closed is final for every field, not only the status.
    let got = r.try_edit(T0 + 4 * SEC, Edit::Priority(Priority::Low));
    assert!(matches!(got, Err(EditError::Transition(_))), "{got:?}");
    assert!(got.err().is_some_and(|e| e.to_string().contains("closed is final")));
}

#[test]
fn after_a_merge_brings_a_close_the_replica_refuses_to_reopen() {
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, 0);
    let mut ben = origin.fork(BEN, 0);
    ana.edit(T0 + 2 * MIN, st(Status::Closed));
    // ben reopens concurrently, stamped earlier: his edit applies, then loses.
    ben.edit(T0 + MIN, st(Status::Resolved));
    ben.receive(&mut ana);
    assert_eq!(ben.view().status, Status::Closed);
    let heads = ben.heads();
    assert!(matches!(ben.try_edit(T0 + 3 * MIN, st(Status::Open)), Err(EditError::Transition(_))));
    assert_eq!(ben.heads(), heads);
}

// ---------------------------------------------------------------------------
// Comments and notes: all kept, ordered by stamp, never duplicated.

#[derive(Clone, Copy)]
enum Kind {
    Comment,
    Note,
}

struct Entries {
    name: &'static str,
    /// Wall-clock offsets of ana, ben and dan.
    offsets: [i64; 3],
    /// (replica 0..3, true time after T0, kind, body), made offline.
    writes: Vec<(usize, i64, Kind, &'static str)>,
    comments: Vec<&'static str>,
    notes: Vec<&'static str>,
}

fn check_entries(c: Entries) {
    let name = c.name;
    let mut origin = Replica::origin();
    let mut rs = [origin.fork(ANA, c.offsets[0]), origin.fork(BEN, c.offsets[1]), origin.fork(DAN, c.offsets[2])];
    for (i, at, kind, body) in &c.writes {
        let e = match kind {
            Kind::Comment => Edit::Comment(body.to_string()),
            Kind::Note => Edit::Note(body.to_string()),
        };
        rs[*i].edit(T0 + at, e);
    }
    let [mut a, mut b, mut d] = rs;
    // Every order of pairwise exchange, then again, then merges of
    // already-merged replicas: nothing may appear twice.
    let mut o1 = origin.fork(CORA, 0);
    o1.receive(&mut a);
    o1.receive(&mut b);
    o1.receive(&mut d);
    let mut o2 = origin.fork(CORA, 0);
    o2.merge(&mut d);
    o2.merge(&mut b);
    o2.merge(&mut a);
    let mut o3 = origin.fork(CORA, 0);
    o3.receive(&mut b);
    o3.merge(&mut d);
    o3.receive(&mut a);
    o3.merge(&mut b);
    o3.receive(&mut d);
    sync(&mut a, &mut b);
    sync(&mut b, &mut d);
    sync(&mut d, &mut a);
    sync(&mut a, &mut b);
    a.merge(&mut o2);
    b.merge(&mut o1);
    d.merge(&mut o3);
    o1.merge(&mut a);
    o2.merge(&mut b);

    let v = a.view();
    let comments: Vec<&str> = v.comments.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(comments, c.comments, "{name}: comments");
    let notes: Vec<&str> = v.internal_notes.as_deref().unwrap_or_default().iter().map(|e| e.body.as_str()).collect();
    assert_eq!(notes, c.notes, "{name}: notes");
    for list in [&v.comments, v.internal_notes.as_ref().unwrap_or(&Vec::new())] {
        assert!(list.windows(2).all(|w| w[0].at < w[1].at), "{name}: ordered by stamp, none twice");
    }
    assert!(v.problems.is_empty(), "{name}: {:?}", v.problems);
    assert_same(name, &mut [&mut a, &mut b, &mut d, &mut o1, &mut o2, &mut o3]);
}

#[test]
fn concurrent_comments_and_notes_are_all_kept_in_stamp_order() {
    use Kind::{Comment as C, Note as N};
    let s = SEC;
    let cases = vec![
        Entries {
            name: "interleaved comments",
            offsets: [0, 0, 0],
            writes: vec![(0, 10 * s, C, "a1"), (1, 20 * s, C, "b1"), (0, 30 * s, C, "a2"), (2, 25 * s, C, "d1")],
            comments: vec!["a1", "b1", "d1", "a2"],
            notes: vec![],
        },
        Entries {
            name: "the same text from two agents is two comments",
            offsets: [0, 0, 0],
            writes: vec![(0, 10 * s, C, "on my way"), (1, 11 * s, C, "on my way")],
            comments: vec!["on my way", "on my way"],
            notes: vec![],
        },
        Entries {
            name: "the same text twice from one agent is two comments",
            offsets: [0, 0, 0],
            writes: vec![(2, 10 * s, C, "ping"), (2, 10 * s, C, "ping")],
            comments: vec!["ping", "ping"],
            notes: vec![],
        },
        Entries {
            // ben's clock is 2 h behind: his first comment is stamped right
            // after the creation he saw (T0), before everyone else's.
            name: "a slow clock sorts before",
            offsets: [0, -2 * HOUR, HOUR],
            writes: vec![(0, 10 * s, C, "a1"), (1, 20 * s, C, "b1"), (2, 5 * s, C, "d1"), (1, 30 * s, C, "b2")],
            comments: vec!["b1", "b2", "a1", "d1"],
            notes: vec![],
        },
        Entries {
            name: "notes documents created on three devices merge",
            offsets: [0, 0, 0],
            writes: vec![(0, 10 * s, N, "n-a"), (1, 5 * s, N, "n-b"), (2, 15 * s, N, "n-d"), (1, 20 * s, N, "n-b2")],
            comments: vec![],
            notes: vec!["n-b", "n-a", "n-d", "n-b2"],
        },
        Entries {
            name: "comments and notes together",
            offsets: [0, 3 * HOUR, 0],
            writes: vec![
                (0, 10 * s, C, "a-c1"),
                (0, 11 * s, N, "a-n1"),
                (1, s, N, "b-n1"),
                (1, 2 * s, C, "b-c1"),
                (2, 12 * s, C, "d-c1"),
            ],
            comments: vec!["a-c1", "d-c1", "b-c1"],
            notes: vec!["a-n1", "b-n1"],
        },
        Entries {
            name: "only one device writes notes",
            offsets: [0, 0, 0],
            writes: vec![(2, 10 * s, N, "only"), (0, 11 * s, C, "c")],
            comments: vec!["c"],
            notes: vec!["only"],
        },
        Entries {
            name: "unicode bodies",
            offsets: [0, 0, 0],
            writes: vec![(0, 10 * s, C, "café ☕"), (1, 10 * s, C, "日本語 🙂"), (2, 10 * s, C, "x\ny")],
            comments: vec!["café ☕", "日本語 🙂", "x\ny"],
            notes: vec![],
        },
    ];
    for c in cases {
        check_entries(c);
    }
}

// ---------------------------------------------------------------------------
// Description: concurrent typing merges character by character.

fn check_description(name: &str, initial: &str, a_text: &str, b_text: &str, want: &[&str]) {
    let mut origin = Replica::origin();
    if initial != origin.view().description {
        origin.edit(T0 + SEC, Edit::Description(initial.into()));
    }
    let mut a = origin.fork(ANA, 0);
    let mut b = origin.fork(BEN, -HOUR);
    // An edit to the text already shown writes nothing; skip it.
    if a_text != initial {
        a.edit(T0 + MIN, Edit::Description(a_text.into()));
    }
    if b_text != initial {
        b.edit(T0 + MIN, Edit::Description(b_text.into()));
    }
    let mut o = origin.fork(DAN, 0);
    o.merge(&mut b);
    o.merge(&mut a);
    sync(&mut a, &mut b);
    let got = a.view().description;
    assert!(want.contains(&got.as_str()), "{name}: got {got:?}, want one of {want:?}");
    let v = a.view();
    let edits = v.history.iter().filter(|h| h.field == "description").count();
    let expected_edits = [initial != "The printer on floor 2 jams.", a_text != initial, b_text != initial]
        .into_iter()
        .filter(|changed| *changed)
        .count();
    assert_eq!(edits, expected_edits, "{name}: every description edit is in the history");
    assert_same(name, &mut [&mut a, &mut b, &mut o]);
}

#[test]
fn concurrent_description_typing_keeps_both_edits() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        //  name                            initial                   ana types                 ben types                       merged (one of)
        ("insert and append",              "Hello world",            "Hello brave world",      "Hello world!",                 &["Hello brave world!"]),
        ("prepend and append",             "middle",                 "start middle",           "middle end",                   &["start middle end"]),
        ("delete and insert elsewhere",    "one two three four",     "one three four",         "one two three four five",      &["one three four five"]),
        ("both delete different words",    "alpha beta gamma delta", "alpha gamma delta",      "alpha beta gamma",             &["alpha gamma"]),
        ("both delete the same word",      "keep drop keep",         "keep keep",              "keep keep",                    &["keep keep"]),
        ("two lines",                      "line 1\nline 2\n",       "line 1 (ana)\nline 2\n",  "line 1\nline 2 (ben)\n",        &["line 1 (ana)\nline 2 (ben)\n"]),
        ("unicode",                        "Café ☕ ok",              "Café ☕☕ ok",             "Ça Café ☕ ok",                 &["Ça Café ☕☕ ok"]),
        ("emoji and CJK",                  "日本",                   "日本語",                 "🙂日本",                       &["🙂日本語"]),
        // Both type at the very same place: both survive, in an order fixed
        // by the CRDT (the same on every replica).
        ("same spot",                      "ab",                     "aXb",                    "aYb",                          &["aXYb", "aYXb"]),
        ("empty start",                    "",                       "from ana",               "",                             &["from ana"]),
        ("both type into an empty text",   "",                       "A",                      "B",                            &["AB", "BA"]),
        ("one clears, one appends",        "short",                  "",                       "short tail",                   &[" tail"]),
    ];
    for (name, initial, a, b, want) in cases {
        check_description(name, initial, a, b, want);
    }
}

// ---------------------------------------------------------------------------
// Two offline creations from one conversation (SPEC §1.2).

const CONVERSATION: &str = r#"{
  "id": "wa-4711",
  "channel": "whatsapp",
  "customer": {"name": "Marta Ruiz"},
  "messages": [
    {"from": "Marta", "role": "customer", "text": "Hi, my printer jams", "at": "2025-12-31T20:00:00Z"},
    {"from": "Marta", "role": "customer", "text": "Every page", "at": "2025-12-31T20:01:00Z"},
    {"from": "Sam", "role": "agent", "text": "Which model?", "at": "2025-12-31T20:05:00Z"},
    {"from": "Marta", "role": "customer", "text": "LaserJet 4", "at": "2025-12-31T20:07:00Z"},
    {"from": "Marta", "role": "customer", "text": "Floor 2", "at": "2025-12-31T20:08:00Z"},
    {"from": "Marta", "role": "customer", "text": "Still jams", "at": "2025-12-31T23:00:00Z"}
  ]
}"#;

struct Twin {
    name: &'static str,
    /// Per agent (ana, ben): own description, subject, priority, true
    /// creation time after T0, wall-clock offset.
    ana: (Option<&'static str>, &'static str, Priority, i64, i64),
    ben: (Option<&'static str>, &'static str, Priority, i64, i64),
    want_subject: &'static str,
    want_priority: &'static str,
    want_created_by: &'static str,
}

fn check_twin_creation(c: Twin) {
    let name = c.name;
    let conv = Conversation::parse(CONVERSATION.as_bytes()).expect("conversation");
    let prefill = conv.prefill().expect("prefill");
    let id = ids::conversation_ticket_id(&conv.id);
    let create = |who, (desc, subject, priority, at, offset): (Option<&str>, &str, Priority, i64, i64)| {
        let new = NewTicket {
            subject: subject.into(),
            priority,
            category: "hardware".into(),
            description: desc.map(str::to_string),
            assignee: None,
        };
        Replica::create(who, offset, T0 + at, id, &new, Some(&conv))
    };
    let mut a = create(ANA, c.ana);
    let mut b = create(BEN, c.ben);
    a.edit(T0 + c.ana.3 + MIN, Edit::Comment("ana: asked for the model".into()));
    b.edit(T0 + c.ben.3 + MIN, Edit::Comment("ben: sent a technician".into()));
    b.edit(T0 + c.ben.3 + 2 * MIN, Edit::Note("ben: warranty expired".into()));

    let mut from_save = a.load_copy(DAN, 0);
    from_save.merge(&mut b);
    let mut via_changes = b.fork(CORA, 0);
    via_changes.receive(&mut a);
    sync(&mut a, &mut b);

    let v = a.view();
    let j = a.value();
    assert_eq!(j["conversation_id"], json!("file:wa-4711"), "{name}");
    assert_eq!(j["conversation"], json!({"channel": "whatsapp", "customer": "Marta Ruiz"}), "{name}");
    assert_eq!(v.description.matches(prefill.as_str()).count(), 1, "{name}: prefill once in {:?}", v.description);
    assert_eq!(v.description.matches("Customer: Marta Ruiz").count(), 1, "{name}");
    let prefill_at = v.description.find(prefill.as_str()).unwrap_or(0);
    let typed: Vec<&str> = [c.ana.0, c.ben.0].into_iter().flatten().collect();
    for own in &typed {
        // As often as it was typed: once, or twice when both typed the same.
        let times = typed.iter().filter(|t| *t == own).count();
        assert_eq!(v.description.matches(own).count(), times, "{name}: {own:?} in {:?}", v.description);
        assert!(v.description.find(own).unwrap_or(usize::MAX) < prefill_at, "{name}: own text comes first");
    }
    if c.ana.0.is_none() && c.ben.0.is_none() {
        assert_eq!(v.description, prefill, "{name}");
    }
    assert_eq!(v.subject, c.want_subject, "{name}");
    assert_eq!(v.priority.as_str(), c.want_priority, "{name}");
    assert_eq!(v.created_by, c.want_created_by, "{name}");
    let (first_at, first_off) = if c.want_created_by == "ana" { (c.ana.3, c.ana.4) } else { (c.ben.3, c.ben.4) };
    assert_eq!(v.created_at.wall_ms as i64, T0 + first_at + first_off, "{name}: created_at is the first creation's");
    assert_eq!(v.status, Status::Open, "{name}");
    let comments: Vec<&str> = v.comments.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(comments.len(), 2, "{name}: {comments:?}");
    assert!(comments.contains(&"ana: asked for the model") && comments.contains(&"ben: sent a technician"));
    assert_eq!(v.internal_notes.as_ref().map(Vec::len), Some(1), "{name}");
    let created: Vec<&HistoryEntry> = v.history.iter().filter(|h| h.field == "created").collect();
    assert_eq!(created.len(), 2, "{name}: both creations in the history");
    assert_eq!(created[0].by, c.want_created_by, "{name}");
    assert_eq!(created[0].note, None, "{name}");
    assert!(created[1].note.as_deref().unwrap_or_default().contains("merged"), "{name}: {:#?}", created[1]);
    assert_eq!(created[1].outcome, Outcome::Applied, "{name}");
    assert!(v.problems.is_empty(), "{name}: {:?}", v.problems);
    // The SLA sees the agent reply quoted in the conversation.
    assert!(v.conversation.as_ref().and_then(|l| l.agent_reply_at_ms).is_some(), "{name}");
    assert_same(name, &mut [&mut a, &mut b, &mut from_save, &mut via_changes]);
}

#[test]
fn one_conversation_created_offline_on_two_devices_is_one_ticket() {
    use Priority::*;
    let s = SEC;
    let cases = vec![
        Twin {
            name: "same subject, ana first",
            ana: (Some("Ana: customer called twice"), "Printer jams", High, 10 * s, 0),
            ben: (Some("Ben: on site tomorrow"), "Printer jams", High, 20 * s, 0),
            want_subject: "Printer jams",
            want_priority: "high",
            want_created_by: "ana",
        },
        Twin {
            name: "same subject, ben first",
            ana: (Some("Ana: customer called twice"), "Printer jams", High, 20 * s, 0),
            ben: (Some("Ben: on site tomorrow"), "Printer jams", High, 10 * s, 0),
            want_subject: "Printer jams",
            want_priority: "high",
            want_created_by: "ben",
        },
        Twin {
            name: "different subjects: the later creation's subject wins",
            ana: (Some("Ana text"), "Printer jams", Medium, 10 * s, 0),
            ben: (Some("Ben text"), "LaserJet 4 jams on floor 2", Medium, 20 * s, 0),
            want_subject: "LaserJet 4 jams on floor 2",
            want_priority: "medium",
            want_created_by: "ana",
        },
        Twin {
            name: "different subjects and priorities, ana later",
            ana: (Some("Ana text"), "Ana's subject", Urgent, 50 * s, 0),
            ben: (Some("Ben text"), "Ben's subject", Low, 20 * s, 0),
            want_subject: "Ana's subject",
            want_priority: "urgent",
            want_created_by: "ben",
        },
        Twin {
            // ana's clock is 2 h ahead: her creation is the later one.
            name: "ahead clock makes the later stamp",
            ana: (Some("Ana text"), "Ana's subject", High, 10 * s, 2 * HOUR),
            ben: (Some("Ben text"), "Ben's subject", High, 20 * s, 0),
            want_subject: "Ana's subject",
            want_priority: "high",
            want_created_by: "ben",
        },
        Twin {
            name: "only ana typed a description",
            ana: (Some("Only ana typed this"), "Printer jams", Medium, 10 * s, 0),
            ben: (None, "Printer jams", Medium, 20 * s, 0),
            want_subject: "Printer jams",
            want_priority: "medium",
            want_created_by: "ana",
        },
        Twin {
            name: "nobody typed a description",
            ana: (None, "Printer jams", Medium, 10 * s, 0),
            ben: (None, "Printer jams", Medium, 10 * s, 0),
            // Same instant: the replica id breaks the tie (ana < ben).
            want_subject: "Printer jams",
            want_priority: "medium",
            want_created_by: "ana",
        },
        Twin {
            name: "same own description text on both devices",
            ana: (Some("Same words"), "Printer jams", Medium, 10 * s, 0),
            ben: (Some("Same words"), "Printer jams", Medium, 11 * s, 0),
            want_subject: "Printer jams",
            want_priority: "medium",
            want_created_by: "ana",
        },
    ];
    for c in cases {
        check_twin_creation(c);
    }
}

#[test]
fn a_twin_creation_edited_afterwards_keeps_every_edit() {
    // After the two creations merge, an edit made on either device is
    // sequential to both and wins; the earlier creations stay applied.
    let conv = Conversation::parse(CONVERSATION.as_bytes()).expect("conversation");
    let id = ids::conversation_ticket_id(&conv.id);
    let mut a = Replica::create(ANA, 0, T0, id, &new_ticket("Printer jams"), Some(&conv));
    let mut b = Replica::create(BEN, 0, T0 + SEC, id, &new_ticket("Printer jams"), Some(&conv));
    a.edit(T0 + MIN, st(Status::InProgress));
    b.edit(T0 + MIN, Edit::Priority(Priority::High));
    sync(&mut a, &mut b);
    b.edit(T0 + 2 * MIN, st(Status::Resolved));
    a.receive(&mut b);
    let v = a.view();
    assert_eq!((v.status, v.priority), (Status::Resolved, Priority::High));
    assert!(v.history.iter().filter(|h| h.field == "status").all(|h| h.outcome == Outcome::Applied));
    assert_same("twin edited", &mut [&mut a, &mut b]);
}

// ---------------------------------------------------------------------------
// Malformed data from another replica is flagged, never fatal.

#[derive(Clone)]
enum Raw {
    Str(&'static str),
    Int(i64),
    Map,
}

struct Malformed {
    name: &'static str,
    kind: DocKind,
    /// `None`: a well-formed stamp key from mallory's clock.
    key: Option<&'static str>,
    value: Raw,
    /// Text the problem must contain.
    problem: &'static str,
    /// A history entry must show the entry as ignored.
    ignored_in_history: bool,
}

/// A stamp key from mallory's replica at `wall`.
fn mallory_key(wall: i64) -> String {
    Hlc::new(wall as u64, 0, ids::replica_of(&actor(MALLORY.1))).encode()
}

fn write_raw(doc: &mut TicketDoc, key: &str, value: &Raw) {
    doc.set_actor(&actor(MALLORY.1));
    let am = doc.automerge();
    let events = match am.get(ROOT, "events") {
        Ok(Some((_, o))) => o,
        other => panic!("events map: {other:?}"),
    };
    match value {
        Raw::Str(s) => am.put(&events, key, *s),
        Raw::Int(i) => am.put(&events, key, *i),
        Raw::Map => am.put_object(&events, key, ObjType::Map).map(|_| ()),
    }
    .expect("raw put");
    doc.commit(T0 + 5 * MIN);
}

fn check_malformed(c: Malformed) {
    let name = c.name;
    let mut origin = Replica::origin();
    origin.edit(T0 + SEC, Edit::Comment("first".into()));
    origin.edit(T0 + 2 * SEC, Edit::Note("a note".into()));
    let mut mallory = origin.fork(MALLORY, 0);
    let mut honest = origin.fork(ANA, 0);
    let before = origin.view();
    let key = c.key.map(str::to_string).unwrap_or_else(|| mallory_key(T0 + 5 * MIN));
    let target = match c.kind {
        DocKind::Ticket => &mut mallory.doc,
        DocKind::Notes => mallory.notes.as_mut().expect("notes exist"),
    };
    write_raw(target, &key, &c.value);
    honest.receive(&mut mallory);
    origin.merge(&mut mallory);

    let v = honest.view();
    assert!(v.problems.iter().any(|p| p.contains(c.problem)), "{name}: problems {:?} lack {:?}", v.problems, c.problem);
    // The rest of the ticket shows as before.
    assert_eq!(v.subject, before.subject, "{name}");
    assert_eq!(v.priority, before.priority, "{name}");
    assert_eq!(v.status, before.status, "{name}");
    assert_eq!(v.assignee, before.assignee, "{name}");
    assert_eq!(v.category, before.category, "{name}");
    assert_eq!(v.comments, before.comments, "{name}");
    assert_eq!(v.internal_notes, before.internal_notes, "{name}");
    assert_eq!(v.created_by, before.created_by, "{name}");
    let ignored = v.history.iter().filter(|h| h.outcome == Outcome::Ignored).count();
    assert_eq!(ignored, usize::from(c.ignored_in_history), "{name}: {:#?}", v.history);
    assert!(honest.value()["problems"].as_array().is_some_and(|p| !p.is_empty()), "{name}: problems in JSON");
    // Nothing stops honest work afterwards.
    honest.edit(T0 + 10 * MIN, Edit::Priority(Priority::Urgent));
    honest.edit(T0 + 11 * MIN, Edit::Comment("still works".into()));
    honest.edit(T0 + 12 * MIN, Edit::Note("so do notes".into()));
    origin.receive(&mut honest);
    mallory.receive(&mut honest);
    let v = honest.view();
    assert_eq!(v.priority, Priority::Urgent, "{name}");
    assert_eq!(v.comments.len(), 2, "{name}");
    assert_same(name, &mut [&mut honest, &mut origin, &mut mallory]);
}

#[test]
fn malformed_entries_from_another_replica_are_flagged_not_fatal() {
    let case = |name, kind, key, value, problem, ignored_in_history| Malformed {
        name,
        kind,
        key,
        value,
        problem,
        ignored_in_history,
    };
    use DocKind::{Notes, Ticket};
    use Raw::{Int, Map, Str};
    let ev = |json: &'static str| Str(json);
    #[rustfmt::skip]
    let cases = vec![
        case("value is not JSON",                Ticket, None, ev("{not json"), "undecodable event", false),
        case("value is JSON but not an object",  Ticket, None, ev("[1,2]"), "undecodable event", false),
        case("value is a number",                Ticket, None, Int(7), "not a string", false),
        case("value is a map",                   Ticket, None, Map, "not a string", false),
        case("unknown version",                  Ticket, None, ev(r#"{"v":9,"by":"mallory","k":"comment","body":"x"}"#), "unknown event version", false),
        case("unknown kind",                     Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"explode"}"#), "undecodable event", false),
        case("unknown field",                    Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"colour","to":"red"}"#), "undecodable event", false),
        case("unknown priority",                 Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"priority","to":"critical"}"#), "unknown priority 'critical'", true),
        case("unknown status",                   Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"status","to":"reopened"}"#), "unknown status", true),
        case("priority cleared",                 Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"priority","to":null}"#), "cannot be cleared", true),
        case("empty subject",                    Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"subject","to":"  "}"#), "subject", true),
        case("bad team",                         Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"assignee","to":"team:"}"#), "team", true),
        case("bad category",                     Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"set","field":"category","to":"a\u0001b"}"#), "category", true),
        case("empty agent name",                 Ticket, None, ev(r#"{"v":1,"by":"","k":"comment","body":"who?"}"#), "agent", false),
        case("note in the public document",      Ticket, None, ev(r#"{"v":1,"by":"mallory","k":"note","body":"leak"}"#), "internal note", false),
        case("key is not a stamp",               Ticket, Some("hello"), ev(r#"{"v":1,"by":"mallory","k":"comment","body":"x"}"#), "malformed clock stamp", false),
        case("key has upper-case replica",       Ticket, Some("0001767225900000.000000.ABCDEF"), ev(r#"{"v":1,"by":"m","k":"comment","body":"x"}"#), "malformed clock stamp", false),
        case("key with a short wall",            Ticket, Some("1767225900000.000000.0e0e"), ev(r#"{"v":1,"by":"m","k":"comment","body":"x"}"#), "malformed clock stamp", false),
        case("edit stamped before the creation", Ticket, Some("0000000000000001.000000.0e0e0e0e0e0e0e0e"), ev(r#"{"v":1,"by":"mallory","k":"set","field":"priority","to":"low"}"#), "edit before creation", false),
        case("garbage in the notes document",    Notes, None, ev("\u{0}\u{1}"), "undecodable event", false),
        case("notes key is not a stamp",         Notes, Some("x.y.z"), ev(r#"{"v":1,"by":"m","k":"note","body":"x"}"#), "malformed clock stamp", false),
        case("number in the notes document",     Notes, None, Int(1), "not a string", false),
    ];
    for c in cases {
        check_malformed(c);
    }
}

#[test]
fn malformed_creation_and_link_still_show_the_ticket() {
    // A second creation whose fields are bad, and a conversation link that
    // is not JSON: flagged, the rest shows.
    let mut origin = Replica::origin();
    let mut mallory = origin.fork(MALLORY, 0);
    let key = mallory_key(T0 + MIN);
    write_raw(
        &mut mallory.doc,
        &key,
        &Raw::Str(r#"{"v":1,"by":"mallory","k":"create","subject":"x","priority":"huge","category":"hardware"}"#),
    );
    mallory.doc.automerge().put(ROOT, "conversation", "not json").expect("put");
    mallory.doc.commit(T0 + MIN);
    origin.receive(&mut mallory);
    let v = origin.view();
    assert!(v.problems.iter().any(|p| p.contains("unknown priority")), "{:?}", v.problems);
    assert!(v.problems.iter().any(|p| p.contains("conversation link")), "{:?}", v.problems);
    assert_eq!(v.conversation, None);
    assert_eq!(v.priority, Priority::Medium);
    assert_eq!(v.subject, "x", "the later creation's valid subject still applies");
    assert_eq!(v.created_by, "cora");
    assert_same("malformed creation", &mut [&mut origin, &mut mallory]);
}

#[test]
fn corrupt_or_foreign_documents_are_refused_on_load() {
    let mut origin = Replica::origin();
    let id = origin.doc.id();
    let bytes = origin.doc.save();
    let cases: Vec<(&str, Uuid, DocKind, Vec<u8>)> = vec![
        ("empty", id, DocKind::Ticket, vec![]),
        ("truncated", id, DocKind::Ticket, bytes[..bytes.len() / 2].to_vec()),
        ("garbage", id, DocKind::Ticket, b"definitely not automerge".to_vec()),
        ("flipped byte", id, DocKind::Ticket, {
            let mut b = bytes.clone();
            let at = b.len() - 3;
            b[at] ^= 0xff;
            b
        }),
        ("another ticket's id", Uuid::from_u128(1), DocKind::Ticket, bytes.clone()),
        ("ticket bytes as notes", id, DocKind::Notes, bytes.clone()),
    ];
    for (name, id, kind, b) in cases {
        assert!(TicketDoc::load(id, kind, &b).is_err(), "{name}");
    }
    // A foreign document cannot be merged into this one.
    let mut other = TicketDoc::genesis(Uuid::from_u128(1), DocKind::Ticket);
    assert!(matches!(origin.doc.merge(&mut other), Err(DocError::Schema(_))));
    let mut notes = TicketDoc::genesis(id, DocKind::Notes);
    assert!(matches!(origin.doc.merge(&mut notes), Err(DocError::Schema(_))));
}

// ---------------------------------------------------------------------------
// Idempotence and out-of-order delivery.

/// Ways of delivering ana's edits to ben again and again.
#[derive(Debug, Clone, Copy)]
enum Again {
    ChangesTwice,
    AllChangesIncludingGenesis,
    MergeTwice,
    MergeWithOwnFork,
    MergeWithOwnSavedCopy,
    ReverseOrderInOneBatch,
    ChangesThenMerge,
}

fn check_idempotent(how: Again) {
    let name = format!("{how:?}");
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, 0);
    let mut ben = origin.fork(BEN, 0);
    ana.edit(T0 + SEC, st(Status::InProgress));
    ana.edit(T0 + 2 * SEC, Edit::Comment("a1".into()));
    ana.edit(T0 + 3 * SEC, Edit::Note("n1".into()));
    ana.edit(T0 + 4 * SEC, Edit::Description("The printer on floor 2 jams often.".into()));
    ben.edit(T0 + SEC, Edit::Comment("b1".into()));

    // The reference: delivered exactly once.
    let mut once = ben.fork(DAN, 0);
    once.receive(&mut ana);

    let heads = ben.doc.heads();
    let changes = ana.doc.changes_since(&heads);
    let all = ana.doc.changes_since(&[]);
    let notes_all = ana.notes.as_mut().expect("notes").changes_since(&[]);
    let id = ben.doc.id();
    let give_notes = |ben: &mut Replica, n: Vec<automerge::Change>| {
        let mine = ben.notes.get_or_insert_with(|| TicketDoc::genesis(id, DocKind::Notes));
        mine.apply_changes(n).expect("notes apply");
    };
    match how {
        Again::ChangesTwice => {
            ben.doc.apply_changes(changes.clone()).expect("apply");
            ben.doc.apply_changes(changes).expect("apply again");
            give_notes(&mut ben, notes_all.clone());
            give_notes(&mut ben, notes_all);
        }
        Again::AllChangesIncludingGenesis => {
            ben.doc.apply_changes(all.clone()).expect("apply");
            ben.doc.apply_changes(all).expect("apply");
            give_notes(&mut ben, notes_all);
        }
        Again::MergeTwice => {
            ben.merge(&mut ana);
            ben.merge(&mut ana);
        }
        Again::MergeWithOwnFork => {
            ben.merge(&mut ana);
            let mut f = ben.fork(DAN, 0);
            ben.merge(&mut f);
            f.merge(&mut ben);
        }
        Again::MergeWithOwnSavedCopy => {
            ben.merge(&mut ana);
            let mut copy = ben.load_copy(BEN, 0);
            ben.merge(&mut copy);
        }
        Again::ReverseOrderInOneBatch => {
            let mut rev = changes;
            rev.reverse();
            ben.doc.apply_changes(rev).expect("a batch is ordered causally on apply");
            let mut n = notes_all;
            n.reverse();
            give_notes(&mut ben, n);
        }
        Again::ChangesThenMerge => {
            ben.receive(&mut ana);
            ben.merge(&mut ana);
            ben.receive(&mut ana);
        }
    }
    let json = ben.json();
    let h = ben.heads();
    // Once more, every way: nothing changes.
    ben.receive(&mut ana);
    ben.merge(&mut ana);
    ben.receive(&mut once);
    assert_eq!(ben.heads(), h, "{name}");
    assert_eq!(ben.json(), json, "{name}");
    let v = ben.view();
    assert_eq!(v.comments.len(), 2, "{name}");
    assert_eq!(v.internal_notes.as_ref().map(Vec::len), Some(1), "{name}");
    assert_eq!(v.history.iter().filter(|h| h.field == "status").count(), 1, "{name}");
    assert_same(&name, &mut [&mut ben, &mut once]);
}

#[test]
fn delivering_or_merging_again_changes_nothing() {
    for how in [
        Again::ChangesTwice,
        Again::AllChangesIncludingGenesis,
        Again::MergeTwice,
        Again::MergeWithOwnFork,
        Again::MergeWithOwnSavedCopy,
        Again::ReverseOrderInOneBatch,
        Again::ChangesThenMerge,
    ] {
        check_idempotent(how);
    }
}

#[test]
fn merging_a_replica_with_its_own_fork_or_copy_is_a_no_op() {
    let mut r = Replica::origin();
    r.edit(T0 + SEC, Edit::Note("n".into()));
    r.edit(T0 + 2 * SEC, Edit::Comment("c".into()));
    let heads = r.heads();
    let json = r.json();
    let mut fork = r.fork(ANA, 0);
    let mut copy = r.load_copy(BEN, 0);
    r.merge(&mut fork);
    r.merge(&mut copy);
    r.receive(&mut fork);
    let all = r.doc.changes_since(&[]);
    r.doc.apply_changes(all).expect("own changes");
    assert_eq!(r.heads(), heads);
    assert_eq!(r.json(), json);
}

#[test]
fn a_change_whose_dependencies_are_missing_is_reported_and_completed_later() {
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, 0);
    let mut ben = origin.fork(BEN, 0);
    ana.edit(T0 + SEC, Edit::Comment("first".into()));
    let h1 = ana.doc.heads();
    ana.edit(T0 + 2 * SEC, Edit::Comment("second".into()));
    let second = ana.doc.changes_since(&h1);
    let heads = ben.doc.heads();
    let json = ben.json();
    let got = ben.doc.apply_changes(second);
    assert!(matches!(got, Err(DocError::MissingDeps)), "{got:?}");
    // Nothing shows until the missing change arrives ...
    assert_eq!(ben.doc.heads(), heads);
    assert_eq!(ben.json(), json);
    // ... and then both do.
    ben.receive(&mut ana);
    let bodies: Vec<String> = ben.view().comments.into_iter().map(|e| e.body).collect();
    assert_eq!(bodies, ["first", "second"]);
    assert_same("missing deps", &mut [&mut ben, &mut ana]);
}

// ---------------------------------------------------------------------------
// Former known bugs, each kept with its fix.

#[test]
fn stamps_stay_readable_past_a_million_ticks_in_one_millisecond() {
    // A clock that stands behind the latest stamp it observed, or a bulk
    // import that uses one `now` for every row, ticks only the counter.
    let a = actor(ANA.1);
    let author = Author { agent: "ana".into(), actor: a.clone() };
    let mut clock = Clock::restore(ids::replica_of(&a), T0 as u64, 999_999);
    let doc = edit::create_ticket(Uuid::from_u128(9), &author, &mut clock, T0, &new_ticket("Printer jams"), None)
        .expect("creates");
    let v = view::materialize(&doc, None);
    assert!(v.as_ref().is_ok_and(|v| v.problems.is_empty()), "the creator cannot read its own ticket: {v:?}");

    let mut clock = Clock::restore("0a", T0 as u64, 999_998);
    let stamps: Vec<Hlc> = (0..3).map(|_| clock.tick(T0 as u64)).collect();
    for s in &stamps {
        assert_eq!(s.encode().parse::<Hlc>().as_ref(), Ok(s), "round trip of {s}");
    }
    for w in stamps.windows(2) {
        assert!(w[0].encode() < w[1].encode(), "keys sort like stamps: {} {}", w[0], w[1]);
    }
}

// A document reads its genesis objects whatever the root points to now
// (`TicketDoc::load`), and `materialize` flags the overwrite.
#[test]
fn a_root_overwrite_from_another_replica_does_not_split_replicas() {
    for key in ["events", "description"] {
        let mut origin = Replica::origin();
        origin.edit(T0 + SEC, Edit::Comment("first".into()));
        let mut mallory = origin.fork(MALLORY, 0);
        let am = mallory.doc.automerge();
        if key == "events" {
            am.put_object(ROOT, "events", ObjType::Map).expect("put");
        } else {
            am.put(ROOT, "description", "a plain string").expect("put");
        }
        mallory.doc.commit(T0 + MIN);
        origin.receive(&mut mallory);
        let in_memory = origin.view();
        let id = origin.doc.id();
        let reloaded = TicketDoc::load(id, DocKind::Ticket, &origin.doc.save())
            .unwrap_or_else(|e| panic!("{key}: a reloaded replica no longer loads: {e}"));
        let v = view::materialize(&reloaded, None).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(v, in_memory, "{key}: same heads, same ticket");
        assert_eq!(v.comments.len(), 1, "{key}: the rest of the ticket shows");
        assert!(!v.problems.is_empty(), "{key}: the overwrite is flagged");
    }
}

// `TicketDoc::apply_changes` checks a batch before Automerge queues any of
// it (see core/tests/automerge_queue.rs for Automerge's own behaviour).
#[test]
fn an_incomplete_delivery_does_not_fail_later_complete_ones() {
    let mut origin = Replica::origin();
    let mut ana = origin.fork(ANA, 0);
    let mut ben = origin.fork(BEN, 0);
    let mut dan = origin.fork(DAN, 0);
    ana.edit(T0 + SEC, Edit::Comment("a1".into()));
    let h = ana.doc.heads();
    ana.edit(T0 + 2 * SEC, Edit::Comment("a2".into()));
    ben.edit(T0 + SEC, Edit::Comment("b1".into()));

    let a2 = ana.doc.changes_since(&h);
    assert!(matches!(dan.doc.apply_changes(a2), Err(DocError::MissingDeps)));
    // ben's change depends only on what dan has: it must apply cleanly.
    let heads = dan.doc.heads();
    let b1 = ben.doc.changes_since(&heads);
    let got = dan.doc.apply_changes(b1);
    assert!(got.is_ok(), "a complete batch is refused: {got:?}");
}

#[test]
fn the_sla_sees_the_priority_the_ticket_was_created_with() {
    use std::collections::BTreeMap;
    use tickets_core::sla::{self, SlaPolicy, SlaSettings, SlaState, Targets};
    let new = NewTicket { priority: Priority::Urgent, ..new_ticket("Server down") };
    let mut r = Replica::create(CORA, 0, T0, Uuid::from_u128(77), &new, None);
    r.edit(T0 + 3 * HOUR, Edit::Priority(Priority::Low));
    let input = r.view().sla_input(&wall_time);
    assert_eq!(input.priority_changes, vec![(T0, Priority::Urgent), (T0 + 3 * HOUR, Priority::Low)]);

    // What it costs: an urgent ticket breached after 1 h must stay breached
    // when it is downgraded later (SPEC §2: a breach is never erased).
    let target = |secs| Targets { first_response_secs: None, resolution_secs: Some(secs) };
    let policy = SlaPolicy {
        targets: BTreeMap::from([(Priority::Urgent, target(3_600)), (Priority::Low, target(2 * 86_400))]),
        ..SlaPolicy::default()
    };
    let settings = SlaSettings { epochs: vec![(0, policy)], skew_ms: 0 };
    let report = sla::compute(&input, &settings, T0 + 4 * HOUR);
    assert_eq!(report.resolution.breached_at_ms, Some(T0 + HOUR));
    assert_eq!(report.resolution.state, SlaState::Red);
}
