//! The materialized ticket: what a replica shows, computed from the merged
//! documents by replaying every event in clock-stamp order (SPEC §1.1).
//!
//! The replay is a pure function of the set of events, so replicas that hold
//! the same events show the same ticket whatever order they arrived in.

use std::collections::HashMap;

use uuid::Uuid;

use crate::conversation::ConversationLink;
use crate::doc::TicketDoc;
use crate::error::DocError;
use crate::event::{EventBody, Field, StoredEvent};
use crate::hlc::Hlc;
use crate::model::{check_name, parse_assignee, Priority, Status};
use crate::sla::SlaInput;

/// Longest subject accepted, in bytes.
pub const SUBJECT_BYTES_MAX: usize = 500;
/// Longest description, comment or note body accepted, in bytes.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// A comment or an internal note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: Hlc,
    pub by: String,
    pub body: String,
}

/// How a history entry fared in the merged replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// A concurrent edit with a later stamp won over this one.
    Superseded,
    /// Invalid at its place in the merged order (e.g. out of closed).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: Hlc,
    pub by: String,
    /// `created`, `subject`, `priority`, `category`, `assignee`, `status`,
    /// `description`.
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub outcome: Outcome,
    /// Why an entry was superseded or ignored, in words.
    pub note: Option<String>,
}

/// The ticket as shown, minus live SLA figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    pub id: Uuid,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    pub category: String,
    pub status: Status,
    pub assignee: Option<String>,
    pub created_at: Hlc,
    pub created_by: String,
    /// The priority the first creation set (the SLA timeline starts there).
    pub created_priority: Priority,
    pub updated_at: Hlc,
    /// The latest stamp in the ticket and its notes (what a replica's clock
    /// observes before editing); unlike `updated_at`, it counts notes.
    pub last_stamp: Hlc,
    pub conversation: Option<ConversationLink>,
    pub comments: Vec<Entry>,
    /// `None` when the notes document is not available to this replica.
    pub internal_notes: Option<Vec<Entry>>,
    pub history: Vec<HistoryEntry>,
    /// Entries that could not be used (malformed data from a replica).
    pub problems: Vec<String>,
    /// The key of the edit currently shown for each field.
    pub current_edits: Vec<(Field, String)>,
    /// When each event was written by its device's own clock, by stamp key
    /// (events that carry it; see [`TicketView::written_ms`]).
    pub written: HashMap<String, i64>,
}

struct Winner {
    key: String,
    /// The history entry to mark if this edit loses; `None` for the values
    /// of the first creation, which are summarized by its `created` entry.
    history_index: Option<usize>,
}

struct Replay {
    history: Vec<HistoryEntry>,
    problems: Vec<String>,
    winners: HashMap<Field, Winner>,
    subject: Option<String>,
    priority: Option<Priority>,
    category: Option<String>,
    assignee: Option<String>,
    status: Status,
    /// What each edit set, by field and edit key, so that an edit's "from"
    /// is the value its author saw (its `prev`), not the one it happened to
    /// overwrite in the merged order.
    set_values: HashMap<(Field, String), Option<String>>,
    /// Who closed the ticket and when, to say why a later edit is ignored.
    closed_by: Option<(String, Hlc)>,
}

impl Replay {
    /// The value the author of an edit saw: the value set by the edit its
    /// `prev` names, or (for a creation, or an edit whose `prev` is not in
    /// the document) the value current at its place in the merged order.
    fn seen_value(&self, field: Field, prev: Option<&str>) -> Option<String> {
        match prev.and_then(|k| self.set_values.get(&(field, k.to_string()))) {
            Some(v) => v.clone(),
            None => self.current(field),
        }
    }

    /// Why a transition out of closed is ignored, naming who closed.
    fn closed_note(&self, e: &crate::model::TransitionError) -> String {
        match &self.closed_by {
            Some((who, at)) => {
                format!("ignored: ticket closed by {who} at {}; closed is final", crate::time::iso(at.wall_ms))
            }
            None => format!("ignored: {e}"),
        }
    }

    fn current(&self, field: Field) -> Option<String> {
        match field {
            Field::Subject => self.subject.clone(),
            Field::Priority => self.priority.map(|p| p.as_str().to_string()),
            Field::Category => self.category.clone(),
            Field::Assignee => self.assignee.clone(),
            Field::Status => Some(self.status.as_str().to_string()),
        }
    }

    /// Applies one field edit in merged order. `prev` is the edit its author
    /// saw as current; `None` for values set by a creation.
    fn set(&mut self, at: &Hlc, by: &str, field: Field, to: Option<String>, prev: Option<&str>, record: bool) {
        let valid = validate(field, to.as_deref());
        let from = self.seen_value(field, prev);
        let mut entry = HistoryEntry {
            at: at.clone(),
            by: by.to_string(),
            field: field.as_str().to_string(),
            from: from.clone(),
            to: to.clone(),
            outcome: Outcome::Applied,
            note: None,
        };
        let value = match valid {
            Ok(v) => {
                self.set_values.insert((field, at.encode()), to.clone());
                v
            }
            Err(why) => {
                self.problems.push(format!("{}: {why}", at.encode()));
                entry.outcome = Outcome::Ignored;
                entry.note = Some(format!("ignored: {why}"));
                self.history.push(entry);
                return;
            }
        };
        if let Value::Status(to_status) = value {
            if let Err(e) = self.status.check_transition(to_status) {
                entry.outcome = Outcome::Ignored;
                entry.note = Some(self.closed_note(&e));
                self.history.push(entry);
                return;
            }
        }
        // The edit applies. If the current winner is not the edit this one's
        // author saw, the two were concurrent and the current one loses,
        // unless both set the same value: then the earlier one's value
        // stands and it did take effect.
        let same_value = to == self.current(field);
        if let Some(w) = self.winners.get(&field).filter(|_| !same_value) {
            if prev != Some(w.key.as_str()) {
                if let Some(h) = w.history_index.and_then(|i| self.history.get_mut(i)) {
                    h.outcome = Outcome::Superseded;
                    h.note =
                        Some(format!("superseded by a concurrent edit by {by} at {}", crate::time::iso(at.wall_ms)));
                }
            }
        }
        match value {
            Value::Subject(s) => self.subject = Some(s),
            Value::Priority(p) => self.priority = Some(p),
            Value::Category(c) => self.category = Some(c),
            Value::Assignee(a) => self.assignee = a,
            Value::Status(s) => {
                if s == Status::Closed && self.status != Status::Closed {
                    self.closed_by = Some((by.to_string(), at.clone()));
                }
                self.status = s
            }
        }
        let history_index = record.then_some(self.history.len());
        self.winners.insert(field, Winner { key: at.encode(), history_index });
        if record {
            self.history.push(entry);
        }
    }
}

enum Value {
    Subject(String),
    Priority(Priority),
    Category(String),
    Assignee(Option<String>),
    Status(Status),
}

fn validate(field: Field, to: Option<&str>) -> Result<Value, String> {
    let need = |to: Option<&str>| to.map(str::to_string).ok_or_else(|| format!("{} cannot be cleared", field.as_str()));
    match field {
        Field::Subject => {
            let s = need(to)?;
            check_subject(&s).map_err(|e| e.to_string())?;
            Ok(Value::Subject(s))
        }
        Field::Priority => need(to)?.parse().map(Value::Priority).map_err(|e: crate::InputError| e.to_string()),
        Field::Category => check_name("category", &need(to)?).map(Value::Category).map_err(|e| e.to_string()),
        Field::Assignee => match to {
            None => Ok(Value::Assignee(None)),
            Some(a) => parse_assignee(a).map(|a| Value::Assignee(Some(a))).map_err(|e| e.to_string()),
        },
        Field::Status => need(to)?.parse().map(Value::Status).map_err(|e: crate::InputError| e.to_string()),
    }
}

/// Checks a subject as typed or received.
pub fn check_subject(s: &str) -> Result<(), crate::InputError> {
    if s.trim().is_empty() {
        return Err(crate::InputError::Empty("subject"));
    }
    if s.len() > SUBJECT_BYTES_MAX {
        return Err(crate::InputError::TooLong { field: "subject", len: s.len(), max: SUBJECT_BYTES_MAX });
    }
    storable("subject", s)
}

/// Text typed on a device is checked at once (`tickets`, the app, an
/// import) with the relay's rule, so it never waits to be refused there.
fn storable(field: &'static str, s: &str) -> Result<(), crate::InputError> {
    crate::text::check(field, s).map_err(|_| crate::InputError::Unstorable { field })
}

/// Checks a description, comment or note body.
pub fn check_body(field: &'static str, s: &str) -> Result<(), crate::InputError> {
    if s.len() > BODY_BYTES_MAX {
        return Err(crate::InputError::TooLong { field, len: s.len(), max: BODY_BYTES_MAX });
    }
    storable(field, s)
}

fn decoded_events(doc: &TicketDoc, problems: &mut Vec<String>) -> Vec<(Hlc, StoredEvent)> {
    let mut out = Vec::new();
    for (key, raw) in doc.raw_events() {
        let at = match key.parse::<Hlc>() {
            Ok(h) => h,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let Some(raw) = raw else {
            problems.push(format!("{key}: event is not a string"));
            continue;
        };
        match StoredEvent::decode(&raw) {
            Ok(ev) => out.push((at, ev)),
            Err(e) => problems.push(format!("{key}: {e}")),
        }
    }
    // Map keys already sort like stamps; sorting again states the rule
    // rather than relying on the map's order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Materializes a ticket from its document and, where this replica may read
/// them, its notes document.
pub fn materialize(doc: &TicketDoc, notes: Option<&TicketDoc>) -> Result<TicketView, DocError> {
    let mut problems = Vec::new();
    // A change that overwrote a root key is flagged; the ticket is still
    // read from its genesis objects (`TicketDoc::load`).
    if let Err(e) = doc.check_shape() {
        problems.push(format!("document root: {e}"));
    }
    let events = decoded_events(doc, &mut problems);
    let mut r = Replay {
        history: Vec::new(),
        problems,
        winners: HashMap::new(),
        subject: None,
        priority: None,
        category: None,
        assignee: None,
        status: Status::Open,
        set_values: HashMap::new(),
        closed_by: None,
    };
    let mut created: Option<(Hlc, String)> = None;
    let mut created_priority: Option<Priority> = None;
    let mut comments = Vec::new();
    let mut updated_at: Option<Hlc> = None;
    let mut written: HashMap<String, i64> = HashMap::new();
    written.extend(events.iter().filter_map(|(at, ev)| Some((at.encode(), ev.at?))));

    for (at, ev) in &events {
        let by = ev.by.as_str();
        if let Err(e) = check_name("agent", by) {
            r.problems.push(format!("{}: {e}", at.encode()));
            continue;
        }
        updated_at = Some(at.clone());
        match &ev.body {
            EventBody::Create { subject, priority, category, assignee } => {
                let again = created.is_some();
                if created.is_none() {
                    created = Some((at.clone(), by.to_string()));
                    created_priority = priority.parse().ok();
                }
                r.history.push(HistoryEntry {
                    at: at.clone(),
                    by: by.to_string(),
                    field: "created".into(),
                    from: None,
                    to: Some(subject.clone()),
                    outcome: Outcome::Applied,
                    note: again.then(|| "created again on another device; merged into this ticket".to_string()),
                });
                // A second creation (the same conversation on another device)
                // only touches the fields it sets differently.
                let fields = [
                    (Field::Subject, Some(subject.clone())),
                    (Field::Priority, Some(priority.clone())),
                    (Field::Category, Some(category.clone())),
                    (Field::Assignee, assignee.clone()),
                ];
                for (field, to) in fields {
                    if !again {
                        r.set(at, by, field, to, None, false);
                    } else if to.is_some() && to != r.current(field) {
                        r.set(at, by, field, to, None, true);
                    }
                }
            }
            EventBody::Set { field, to, prev } => {
                if created.is_none() {
                    r.problems.push(format!("{}: edit before creation", at.encode()));
                    continue;
                }
                r.set(at, by, *field, to.clone(), prev.as_deref(), true);
            }
            EventBody::Description => r.history.push(HistoryEntry {
                at: at.clone(),
                by: by.to_string(),
                field: "description".into(),
                from: None,
                to: None,
                outcome: Outcome::Applied,
                note: None,
            }),
            EventBody::Comment { body } => {
                comments.push(Entry { at: at.clone(), by: by.to_string(), body: body.clone() })
            }
            EventBody::Note { .. } => r.problems.push(format!("{}: internal note in the public document", at.encode())),
        }
    }

    let Some((created_at, created_by)) = created else {
        return Err(DocError::Schema("ticket has no creation event".into()));
    };
    // A creation always sets all three; a malformed creation leaves defaults
    // that are flagged in problems.
    let internal_notes = notes.map(|n| {
        let mut ps = Vec::new();
        let notes = decoded_events(n, &mut ps)
            .into_iter()
            .filter_map(|(at, ev)| match ev.body {
                EventBody::Note { body } => {
                    if let Some(w) = ev.at {
                        written.insert(at.encode(), w);
                    }
                    Some(Entry { at, by: ev.by, body })
                }
                _ => None,
            })
            .collect::<Vec<_>>();
        r.problems.extend(ps);
        notes
    });
    // `updated_at` follows the public ticket only: counting notes would make
    // it differ between readers with and without the notes permission, and
    // would tell everyone when a note was written. The clock still observes
    // notes, through `last_stamp`.
    let mut last_stamp = updated_at.clone().unwrap_or_else(|| created_at.clone());
    if let Some(n) = internal_notes.as_ref().and_then(|n| n.last()) {
        if n.at > last_stamp {
            last_stamp = n.at.clone();
        }
    }
    let conversation = doc.conversation_json().and_then(|j| match serde_json::from_str::<ConversationLink>(&j) {
        Ok(l) => Some(l),
        Err(e) => {
            r.problems.push(format!("conversation link: {e}"));
            None
        }
    });
    Ok(TicketView {
        id: doc.id(),
        subject: r.subject.unwrap_or_default(),
        description: doc.description(),
        priority: r.priority.unwrap_or(Priority::Medium),
        category: r.category.unwrap_or_default(),
        status: r.status,
        assignee: r.assignee,
        updated_at: updated_at.unwrap_or_else(|| created_at.clone()),
        last_stamp,
        created_at,
        created_by,
        created_priority: created_priority.unwrap_or(Priority::Medium),
        conversation,
        comments,
        internal_notes,
        current_edits: {
            let mut keys: Vec<(Field, String)> = r.winners.iter().map(|(f, w)| (*f, w.key.clone())).collect();
            keys.sort();
            keys
        },
        history: r.history,
        problems: r.problems,
        written,
    })
}

impl TicketView {
    /// When the event with stamp `h` was written, by its own device's clock
    /// (what a node shows and counts; the relay corrects it further). The
    /// stamp orders events and may run ahead of every clock involved (it
    /// passes every stamp its device had seen), so it is the fallback only
    /// for events written before they carried their time.
    pub fn written_ms(&self, h: &Hlc) -> i64 {
        match self.written.get(&h.encode()) {
            Some(ms) => *ms,
            None => i64::try_from(h.wall_ms).unwrap_or(i64::MAX),
        }
    }

    /// The latest stamp in the ticket, so a replica's clock can be moved past
    /// it before editing: an edit made after seeing another wins over it.
    pub fn max_stamp(&self) -> &Hlc {
        &self.last_stamp
    }

    /// The key of the edit currently shown for a field (for `prev`).
    pub fn current_edit_key(&self, field: Field) -> Option<String> {
        self.current_edits.iter().find(|(f, _)| *f == field).map(|(_, k)| k.clone())
    }

    /// The SLA engine's input, with each stamp mapped to an effective time
    /// (a node uses the stamp's wall time; the relay corrects it).
    pub fn sla_input(&self, effective: &dyn Fn(&Hlc) -> i64) -> SlaInput {
        let created = effective(&self.created_at);
        let mut priority_changes = vec![(created, self.created_priority)];
        let mut status_changes = vec![(created, Status::Open)];
        for h in self.history.iter().filter(|h| h.outcome == Outcome::Applied) {
            let t = effective(&h.at).max(created);
            match h.field.as_str() {
                "priority" => {
                    if let Some(p) = h.to.as_deref().and_then(|p| p.parse().ok()) {
                        priority_changes.push((t, p));
                    }
                }
                "status" => {
                    if let Some(s) = h.to.as_deref().and_then(|s| s.parse().ok()) {
                        status_changes.push((t, s));
                    }
                }
                _ => {}
            }
        }
        let first_comment = self.comments.first().map(|c| effective(&c.at).max(created));
        let from_conversation = self.conversation.as_ref().and_then(|c| c.agent_reply_at_ms).map(|t| t.max(created));
        let first_response_at_ms = match (first_comment, from_conversation) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        SlaInput { created_at_ms: created, first_response_at_ms, priority_changes, status_changes }
    }
}
