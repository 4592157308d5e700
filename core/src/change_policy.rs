//! What one pushed change may do: an allow-list, checked operation by
//! operation.
//!
//! A device writes exactly three shapes of operation, and the relay accepts
//! these and nothing else from an agent's own change:
//! - **a new event**: a string put under a *new* key of the `events` map,
//!   the key a clock stamp of the author's own device that is not later
//!   than the relay's receipt time plus [`STAMP_AHEAD_MS_MAX`], the value an
//!   event whose author (`by`) is the authenticated agent, of a kind that
//!   belongs in this document (internal notes only in the notes document);
//! - **text splices** in the ticket's `description` (inserted characters and
//!   deleted ones), nothing else in that object;
//! - nothing at all in the root, and no new object anywhere.
//!
//! Everything else is refused with a [`RefusalCode`]: overwriting or
//! deleting an existing event (the key already has a value), any root
//! change, a nested object, counters and marks, a note-kind event in the
//! public document. The deterministic genesis and conversation prefill are
//! not checked here: they are recomputed byte for byte by the ingest.

use std::collections::HashSet;

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ScalarValue};

use crate::doc::DocKind;
use crate::event::{EventBody, StoredEvent};
use crate::hlc::Hlc;
use crate::ids;
use crate::text;
use crate::view::{BODY_BYTES_MAX, SUBJECT_BYTES_MAX};

pub use crate::hlc::{CLOCK_OFFSET_MS_MAX, STAMP_AHEAD_MS_MAX};

/// How far before its receipt an event may say it was written (a device
/// offline for longer has its old events refused, not dated decades back).
pub const EVENT_AGE_MS_MAX: i64 = 366 * 24 * 3600 * 1000;

/// Why a pushed document was refused, as a stable code the device records
/// and matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// The id is not a ticket id in its canonical form (lower-case UUID).
    NonCanonicalId,
    /// The document kind is not `ticket` or `notes`.
    UnknownKind,
    /// The bytes are not Automerge data, or are damaged.
    CorruptData,
    /// The data depends on changes the relay does not have.
    MissingDeps,
    /// The merged document no longer has the shape of a ticket document.
    BadShape,
    /// A change is signed by an actor not registered to the agent.
    Impersonation,
    /// A change claims to be the genesis or a prefill but is not.
    ForgedGenesis,
    /// The agent may not write internal notes.
    NotesForbidden,
    /// An operation outside the allow-list (root, nested object, counter,
    /// mark, an object the schema does not have).
    OpNotAllowed,
    /// An operation overwrites an existing event.
    EventOverwrite,
    /// An operation deletes an event.
    EventDelete,
    /// An event's key is not a clock stamp of the author's own device.
    EventStamp,
    /// An event's stamp or time lies outside the accepted bounds.
    EventTime,
    /// An event names another author.
    EventAuthor,
    /// An event does not decode, or breaks a limit.
    EventInvalid,
    /// A note in the public document, or a ticket event in the notes one.
    WrongDocument,
    /// The same document twice in one push.
    Duplicate,
    /// The document would be over the operator's byte limit
    /// ([`crate::limits`]).
    DocTooLarge,
    /// The document would hold more comments than the limit.
    TooManyComments,
    /// A new comment is over the per-comment limit.
    CommentTooLarge,
    /// Text a backend cannot store (U+0000) in an event or the description.
    TextUnstorable,
    /// An event dated before what its device had already synced (minus
    /// [`FLOOR_TOLERANCE_MS`]), or a creation dated before its inbox
    /// conversation reached the relay.
    EventBackdated,
    /// A conversation prefill that is not what the relay's copy of that
    /// inbox conversation gives.
    PrefillForged,
    /// A ticket claims an inbox conversation the relay does not hold.
    ConversationUnknown,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::NonCanonicalId => "non_canonical_id",
            RefusalCode::UnknownKind => "unknown_kind",
            RefusalCode::CorruptData => "corrupt_data",
            RefusalCode::MissingDeps => "missing_deps",
            RefusalCode::BadShape => "bad_shape",
            RefusalCode::Impersonation => "impersonation",
            RefusalCode::ForgedGenesis => "forged_genesis",
            RefusalCode::NotesForbidden => "notes_forbidden",
            RefusalCode::OpNotAllowed => "op_not_allowed",
            RefusalCode::EventOverwrite => "event_overwrite",
            RefusalCode::EventDelete => "event_delete",
            RefusalCode::EventStamp => "event_stamp",
            RefusalCode::EventTime => "event_time",
            RefusalCode::EventAuthor => "event_author",
            RefusalCode::EventInvalid => "event_invalid",
            RefusalCode::WrongDocument => "wrong_document",
            RefusalCode::Duplicate => "duplicate",
            RefusalCode::DocTooLarge => crate::limits::LimitCode::DocTooLarge.as_str(),
            RefusalCode::TooManyComments => crate::limits::LimitCode::TooManyComments.as_str(),
            RefusalCode::CommentTooLarge => crate::limits::LimitCode::CommentTooLarge.as_str(),
            RefusalCode::TextUnstorable => "text_unstorable",
            RefusalCode::EventBackdated => "event_backdated",
            RefusalCode::PrefillForged => "prefill_forged",
            RefusalCode::ConversationUnknown => "conversation_unknown",
        }
    }

    pub fn parse(s: &str) -> Option<RefusalCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub const ALL: [RefusalCode; 24] = [
        RefusalCode::NonCanonicalId,
        RefusalCode::UnknownKind,
        RefusalCode::CorruptData,
        RefusalCode::MissingDeps,
        RefusalCode::BadShape,
        RefusalCode::Impersonation,
        RefusalCode::ForgedGenesis,
        RefusalCode::NotesForbidden,
        RefusalCode::OpNotAllowed,
        RefusalCode::EventOverwrite,
        RefusalCode::EventDelete,
        RefusalCode::EventStamp,
        RefusalCode::EventTime,
        RefusalCode::EventAuthor,
        RefusalCode::EventInvalid,
        RefusalCode::WrongDocument,
        RefusalCode::Duplicate,
        RefusalCode::DocTooLarge,
        RefusalCode::TooManyComments,
        RefusalCode::CommentTooLarge,
        RefusalCode::TextUnstorable,
        RefusalCode::EventBackdated,
        RefusalCode::PrefillForged,
        RefusalCode::ConversationUnknown,
    ];

    /// A forbidden write (403) rather than invalid data (400).
    pub fn is_forbidden(self) -> bool {
        matches!(
            self,
            RefusalCode::Impersonation
                | RefusalCode::ForgedGenesis
                | RefusalCode::NotesForbidden
                | RefusalCode::OpNotAllowed
                | RefusalCode::EventOverwrite
                | RefusalCode::EventDelete
                | RefusalCode::EventStamp
                | RefusalCode::EventAuthor
                | RefusalCode::WrongDocument
                | RefusalCode::PrefillForged
                | RefusalCode::ConversationUnknown
        )
    }
}

/// Why a document was refused: data, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, reason: impl Into<String>) -> Refusal {
        Refusal { code, reason: reason.into() }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn is_forbidden(&self) -> bool {
        self.code.is_forbidden()
    }
}

/// The document's objects an agent's change may touch, as operation ids.
pub struct Objects {
    /// The `events` map (`None` only for a malformed document).
    pub events: Option<OpId>,
    /// The description Text (ticket documents only).
    pub description: Option<OpId>,
}

/// What the checks need besides the change.
pub struct Context<'a> {
    pub kind: DocKind,
    pub agent: &'a str,
    /// The relay's receipt time.
    pub now_ms: i64,
    /// Event keys the document held before this push, and keys of events
    /// already accepted from earlier changes of this push.
    pub existing_keys: &'a HashSet<String>,
    /// Whether the document already has a creation event (a second one is
    /// only allowed on a conversation's ticket, which two devices may
    /// create offline at once).
    pub has_creation: bool,
    pub is_conversation: bool,
}

/// An event a change adds, with the time its device says it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub key: String,
    pub written_ms: i64,
    pub is_creation: bool,
}

/// Checks every operation of one change made by one of the agent's own
/// devices. Returns the events it adds.
pub fn check_change(change: &Change, objects: &Objects, cx: &Context<'_>) -> Result<Vec<NewEvent>, Refusal> {
    let actor = change.actor_id().clone();
    let expanded = change.decode();
    let mut out = Vec::new();
    let mut inserted = 0usize;
    for op in &expanded.operations {
        let obj = match &op.obj {
            ObjectId::Root => {
                return Err(Refusal::new(RefusalCode::OpNotAllowed, "a change writes to the document's root"));
            }
            ObjectId::Id(o) => o,
        };
        if Some(obj) == objects.events.as_ref() {
            out.push(check_event_op(op, &actor, cx, &out)?);
        } else if Some(obj) == objects.description.as_ref() {
            inserted += check_text_op(op)?;
            if inserted > TEXT_INSERT_BYTES_MAX {
                return Err(Refusal::new(
                    RefusalCode::EventInvalid,
                    "a change inserts more text into the description than one edit may",
                ));
            }
        } else {
            return Err(Refusal::new(
                RefusalCode::OpNotAllowed,
                "a change writes to an object that a ticket document does not have",
            ));
        }
    }
    Ok(out)
}

/// What a whole document holds, read from its state (see
/// [`TicketDoc::state_for_policy`](crate::doc::TicketDoc::state_for_policy)).
pub struct DocState {
    /// The actor of every value (conflicting ones included) under the root.
    pub root_writers: Vec<ActorId>,
    /// Each event: key, value when a string, the actor that wrote it, and
    /// how many values the key holds.
    pub events: Vec<(String, Option<String>, Option<ActorId>, usize)>,
    pub text: Option<TextState>,
}

/// The description as a document holds it.
pub struct TextState {
    pub bytes: usize,
    /// Elements that are not characters (objects).
    pub objects: usize,
    pub marks: usize,
}

/// The allow-list for a whole document new to the relay whose every change
/// is the author's own (or the recomputed genesis and prefill): nobody else
/// has written to it, so there is nothing of anyone else's to overwrite or
/// delete, and what the author may leave in it is checked on its state,
/// with the same rules as a change's operations. This is the cold push's
/// path: decoding every change of a fresh document would cost more than
/// loading it (see BENCHMARKS.md).
pub fn check_new_document(
    state: &DocState,
    authors: &std::collections::HashSet<ActorId>,
    cx: &Context<'_>,
) -> Result<Vec<NewEvent>, Refusal> {
    if state.root_writers.iter().any(|a| authors.contains(a)) {
        return Err(Refusal::new(RefusalCode::OpNotAllowed, "a change writes to the document's root"));
    }
    let mut out: Vec<NewEvent> = Vec::new();
    for (key, value, actor, values) in &state.events {
        let short: String = key.chars().take(80).collect();
        let Some(actor) = actor.as_ref().filter(|a| authors.contains(*a)) else {
            return Err(Refusal::new(RefusalCode::OpNotAllowed, format!("event {short} was not written by a device")));
        };
        let Some(value) = value else {
            return Err(Refusal::new(RefusalCode::OpNotAllowed, format!("event {short} is not a string")));
        };
        if *values != 1 {
            return Err(Refusal::new(RefusalCode::EventOverwrite, format!("event {short} has {values} values")));
        }
        let e = check_event(key.clone(), value, actor, cx, &out)?;
        out.push(e);
    }
    if let Some(t) = &state.text {
        if t.objects > 0 || t.marks > 0 {
            return Err(Refusal::new(
                RefusalCode::OpNotAllowed,
                "a change makes more than a text edit in the description",
            ));
        }
        if t.bytes > TEXT_INSERT_BYTES_MAX + PREFILL_BYTES_MAX {
            return Err(Refusal::new(
                RefusalCode::EventInvalid,
                "a change inserts more text into the description than one edit may",
            ));
        }
    }
    Ok(out)
}

/// The longest conversation prefill (five messages and a header) a new
/// document's description may hold besides what its author typed.
pub const PREFILL_BYTES_MAX: usize = 6 * BODY_BYTES_MAX;

fn check_event_op(
    op: &automerge::legacy::Op,
    actor: &ActorId,
    cx: &Context<'_>,
    earlier: &[NewEvent],
) -> Result<NewEvent, Refusal> {
    let key = match &op.key {
        Key::Map(k) => k.to_string(),
        Key::Seq(_) => return Err(Refusal::new(RefusalCode::OpNotAllowed, "a list operation on the events map")),
    };
    let short: String = key.chars().take(80).collect();
    let value = match &op.action {
        OpType::Put(ScalarValue::Str(s)) => s.to_string(),
        OpType::Delete => {
            return Err(Refusal::new(RefusalCode::EventDelete, format!("a change deletes event {short}")));
        }
        OpType::Make(_) => {
            return Err(Refusal::new(RefusalCode::OpNotAllowed, format!("event {short} is an object, not a string")));
        }
        _ => return Err(Refusal::new(RefusalCode::OpNotAllowed, format!("event {short} is not a string"))),
    };
    if op.insert {
        return Err(Refusal::new(RefusalCode::OpNotAllowed, "an insert into the events map"));
    }
    if !op.pred.is_empty() || cx.existing_keys.contains(&key) || earlier.iter().any(|e| e.key == key) {
        return Err(Refusal::new(RefusalCode::EventOverwrite, format!("a change overwrites event {short}")));
    }
    check_event(key, &value, actor, cx, earlier)
}

/// The rules for one new event, whichever way it was found: its key is a
/// canonical stamp of `actor`'s device, within the time bounds, and its
/// value is a canonical event by the agent, of a kind this document holds,
/// within the limits.
fn check_event(
    key: String,
    value: &str,
    actor: &ActorId,
    cx: &Context<'_>,
    earlier: &[NewEvent],
) -> Result<NewEvent, Refusal> {
    let short: String = key.chars().take(80).collect();
    let stamp =
        key.parse::<Hlc>().ok().filter(|h| h.encode() == key).ok_or_else(|| {
            Refusal::new(RefusalCode::EventStamp, format!("event key '{short}' is not a clock stamp"))
        })?;
    if stamp.replica != ids::replica_of(actor) {
        return Err(Refusal::new(
            RefusalCode::EventStamp,
            format!("event {short} carries another device's clock stamp"),
        ));
    }
    let wall = i64::try_from(stamp.wall_ms).unwrap_or(i64::MAX);
    if wall > cx.now_ms.saturating_add(STAMP_AHEAD_MS_MAX) {
        return Err(Refusal::new(
            RefusalCode::EventTime,
            format!(
                "event {short} is stamped more than {} days ahead of the relay's clock",
                STAMP_AHEAD_MS_MAX / DAY_MS
            ),
        ));
    }
    if value.len() > EVENT_BYTES_MAX {
        return Err(Refusal::new(RefusalCode::EventInvalid, format!("event {short} is too large")));
    }
    let ev = StoredEvent::decode(value)
        .map_err(|e| Refusal::new(RefusalCode::EventInvalid, format!("event {short}: {e}")))?;
    // Exactly the encoding devices write: no unknown fields, nothing extra
    // stored for ever in every replica.
    if ev.encode() != value {
        return Err(Refusal::new(RefusalCode::EventInvalid, format!("event {short} is not in its canonical encoding")));
    }
    if ev.by != cx.agent {
        return Err(Refusal::new(
            RefusalCode::EventAuthor,
            format!("event {short} names '{}' as its author but was written by '{}'", ev.by, cx.agent),
        ));
    }
    let written_ms = ev.at.unwrap_or(wall);
    if written_ms > wall || written_ms < cx.now_ms.saturating_sub(EVENT_AGE_MS_MAX) {
        return Err(Refusal::new(
            RefusalCode::EventTime,
            format!("event {short} says it was written at an impossible time ({written_ms} ms)"),
        ));
    }
    let is_note = matches!(ev.body, EventBody::Note { .. });
    if is_note != (cx.kind == DocKind::Notes) {
        return Err(Refusal::new(
            RefusalCode::WrongDocument,
            format!(
                "event {short}: {} in the {} document",
                if is_note { "an internal note" } else { "a ticket event" },
                cx.kind.as_str()
            ),
        ));
    }
    check_event_text(&short, &ev.body)?;
    let invalid = |what: String| Refusal::new(RefusalCode::EventInvalid, format!("event {short}: {what}"));
    let is_creation = matches!(ev.body, EventBody::Create { .. });
    match &ev.body {
        EventBody::Create { subject, priority, category, assignee } => {
            if subject.len() > SUBJECT_BYTES_MAX
                || priority.len() > NAME_BYTES_MAX
                || category.len() > NAME_BYTES_MAX
                || assignee.as_ref().is_some_and(|a| a.len() > NAME_BYTES_MAX)
            {
                return Err(invalid("a field is too long".into()));
            }
            let again = cx.has_creation || earlier.iter().any(|e| e.is_creation);
            if again && !cx.is_conversation {
                return Err(Refusal::new(
                    RefusalCode::EventOverwrite,
                    format!("event {short} creates a ticket that already exists"),
                ));
            }
        }
        EventBody::Set { to, prev, .. } => {
            if to.as_ref().is_some_and(|t| t.len() > SUBJECT_BYTES_MAX) || prev.as_ref().is_some_and(|p| p.len() > 128)
            {
                return Err(invalid("value too long".into()));
            }
        }
        EventBody::Comment { body } | EventBody::Note { body } => {
            if body.len() > BODY_BYTES_MAX {
                return Err(invalid("body too long".into()));
            }
        }
        EventBody::Description => {}
    }
    Ok(NewEvent { key, written_ms, is_creation })
}

/// Every text field of an event holds only what every backend can store
/// ([`crate::text`]): a NUL stored on one backend would stop the ticket's
/// every later write on another.
fn check_event_text(short: &str, body: &EventBody) -> Result<(), Refusal> {
    let fields: Vec<(&str, &str)> = match body {
        EventBody::Create { subject, priority, category, assignee } => {
            let mut f = vec![("subject", subject.as_str()), ("priority", priority), ("category", category)];
            f.extend(assignee.as_deref().map(|a| ("assignee", a)));
            f
        }
        EventBody::Set { to, prev, .. } => {
            to.as_deref().map(|t| ("value", t)).into_iter().chain(prev.as_deref().map(|p| ("prev", p))).collect()
        }
        EventBody::Comment { body } | EventBody::Note { body } => vec![("body", body.as_str())],
        EventBody::Description => Vec::new(),
    };
    for (what, value) in fields {
        text::check(&format!("event {short}'s {what}"), value).map_err(unstorable)?;
    }
    Ok(())
}

/// The refusal for text a backend cannot store.
pub fn unstorable(e: text::Unstorable) -> Refusal {
    Refusal::new(RefusalCode::TextUnstorable, e.to_string())
}

/// How far before a device's floor (the start of its previous completed
/// sync) one of its new events may be dated: edits made while that sync's
/// first page was on the way, and the device's clock offset measured
/// again (it drifts between syncs).
pub const FLOOR_TOLERANCE_MS: i64 = 10 * 60 * 1000;

/// Where a device's previous completed sync started, on both clocks: the
/// relay's, and the device's own reading then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncFloor {
    pub relay_ms: i64,
    pub device_ms: i64,
}

/// The floors a pushed document's new events are held to: `sync` the start
/// of the device's previous completed sync (`None` before it completed
/// one), `creation_ms` when an inbox conversation the ticket links first
/// reached the relay (relay time; a device cannot have made a ticket from
/// it earlier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Floors {
    pub sync: Option<SyncFloor>,
    pub creation_ms: Option<i64>,
}

/// Refuses a document whose new events are dated below a floor. An event
/// its device says it wrote before the device's previous completed sync
/// started (minus [`FLOOR_TOLERANCE_MS`]) would have been pushed by that
/// sync, so it is back-dated: back-dating is how a comment turns a
/// breached first response into met. It is below the floor only if it is
/// on both clocks: on the relay's (its time corrected by the device's
/// offset now, `offset_ms`, the time the SLA counts) and on the device's
/// own (against its reading when that sync started), so an honest device
/// whose clock was set right between writing and syncing is not refused.
/// A creation dated before its inbox conversation reached the relay is
/// back-dated too (a second creation taking the ticket's creator).
pub fn check_floors(events: &[NewEvent], floors: Floors, offset_ms: i64) -> Result<(), Refusal> {
    for e in events {
        let relay_ms = e.written_ms.saturating_sub(offset_ms);
        let short: String = e.key.chars().take(80).collect();
        if let Some(f) = floors.sync {
            let below = |t: i64, floor: i64| t < floor.saturating_sub(FLOOR_TOLERANCE_MS);
            if below(relay_ms, f.relay_ms) && below(e.written_ms, f.device_ms) {
                return Err(Refusal::new(
                    RefusalCode::EventBackdated,
                    format!(
                        "event {short} is dated {} s before this device's previous completed sync",
                        f.relay_ms.saturating_sub(relay_ms) / 1000
                    ),
                ));
            }
        }
        if let (true, Some(floor)) = (e.is_creation, floors.creation_ms) {
            if relay_ms < floor.saturating_sub(FLOOR_TOLERANCE_MS) {
                return Err(Refusal::new(
                    RefusalCode::EventBackdated,
                    format!("creation {short} is dated before its conversation reached the relay"),
                ));
            }
        }
    }
    Ok(())
}

/// The description Text takes inserted characters (one character, or one
/// grapheme, per element) and deletions only. Returns the bytes inserted.
fn check_text_op(op: &automerge::legacy::Op) -> Result<usize, Refusal> {
    let refuse = || Refusal::new(RefusalCode::OpNotAllowed, "a change makes more than a text edit in the description");
    match (&op.action, op.insert, &op.key) {
        (OpType::Put(ScalarValue::Str(s)), true, Key::Seq(_)) if !s.is_empty() && s.len() <= TEXT_ELEMENT_BYTES_MAX => {
            text::check("the description", s).map_err(unstorable)?;
            Ok(s.len())
        }
        (OpType::Delete, false, Key::Seq(ElementId::Id(_))) if !op.pred.is_empty() => Ok(0),
        _ => Err(refuse()),
    }
}

/// The longest encoded event accepted (a body at its limit, and its
/// envelope).
pub const EVENT_BYTES_MAX: usize = BODY_BYTES_MAX + 4 * 1024;
/// The longest priority, category or assignee name in a creation.
pub const NAME_BYTES_MAX: usize = 200;
/// The most text one change may insert into the description (what one
/// device may type there at once).
pub const TEXT_INSERT_BYTES_MAX: usize = BODY_BYTES_MAX;
/// The longest text element (a character or a grapheme cluster).
pub const TEXT_ELEMENT_BYTES_MAX: usize = 64;

const DAY_MS: i64 = 24 * 3600 * 1000;
