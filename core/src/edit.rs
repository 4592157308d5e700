//! Local edits: what a user's command does to a ticket's documents.
//!
//! Every edit is validated here first (a refused edit writes nothing), then
//! recorded as one event under a fresh clock stamp and committed as one
//! Automerge change signed by the device's actor.

use automerge::ActorId;
use uuid::Uuid;

use crate::conversation::{Conversation, ConversationError};
use crate::doc::{DocKind, TicketDoc};
use crate::error::{DocError, InputError};
use crate::event::{EventBody, Field, StoredEvent};
use crate::hlc::Clock;
use crate::model::{check_name, parse_assignee, Priority, Status, TransitionError};
use crate::view::{check_body, check_subject, TicketView};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Doc(#[from] DocError),
}

/// Who is editing: the agent's name and the device's actor.
#[derive(Debug, Clone)]
pub struct Author {
    pub agent: String,
    pub actor: ActorId,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub subject: String,
    pub priority: Priority,
    pub category: String,
    pub description: Option<String>,
    pub assignee: Option<String>,
}

/// One edit of an existing ticket.
#[derive(Debug, Clone)]
pub enum Edit {
    Subject(String),
    Priority(Priority),
    Category(String),
    Assignee(Option<String>),
    Status(Status),
    Description(String),
    Comment(String),
    Note(String),
}

/// Whether an edit changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The field already had that value; nothing was written.
    Unchanged,
}

/// Creates a ticket's document. `id` comes from the caller (random), or from
/// the conversation (derived) when one is given.
pub fn create_ticket(
    id: Uuid,
    author: &Author,
    clock: &mut Clock,
    now_ms: i64,
    new: &NewTicket,
    conversation: Option<&Conversation>,
) -> Result<TicketDoc, EditError> {
    check_subject(&new.subject)?;
    let category = check_name("category", &new.category)?;
    let assignee = new.assignee.as_deref().map(parse_assignee).transpose()?;
    let description = new.description.clone().unwrap_or_default();
    check_body("description", &description)?;

    let mut doc = TicketDoc::genesis(id, DocKind::Ticket);
    let mut own_text = description;
    if let Some(c) = conversation {
        let prefill = c.prefill()?;
        let link = serde_json::to_string(&c.link()?).map_err(|e| DocError::Schema(e.to_string()))?;
        doc.apply_prefill(&prefill, &link)?;
        if !own_text.is_empty() {
            own_text.push_str("\n\n");
        }
    }
    doc.set_actor(&author.actor);
    if !own_text.is_empty() {
        doc.prepend_description(&own_text)?;
    }
    let at = clock.tick(now_ms.max(0) as u64);
    let ev = StoredEvent::new(
        &author.agent,
        EventBody::Create { subject: new.subject.clone(), priority: new.priority.as_str().into(), category, assignee },
    )
    .written_at(now_ms);
    doc.put_event(&at, &ev)?;
    doc.commit(now_ms);
    Ok(doc)
}

/// Applies one edit. `view` is the ticket as currently materialized from
/// `doc` (and `notes`); `notes` is created on the first note.
pub fn apply_edit(
    doc: &mut TicketDoc,
    notes: &mut Option<TicketDoc>,
    view: &TicketView,
    author: &Author,
    clock: &mut Clock,
    now_ms: i64,
    edit: &Edit,
) -> Result<Applied, EditError> {
    // Validate and decide first: nothing is written for a refused edit.
    // Closed is final for every field, as for the status (SPEC §1).
    let field_name = match edit {
        Edit::Subject(_) => Some("subject"),
        Edit::Priority(_) => Some("priority"),
        Edit::Category(_) => Some("category"),
        Edit::Assignee(_) => Some("assignee"),
        Edit::Description(_) => Some("description"),
        Edit::Status(_) | Edit::Comment(_) | Edit::Note(_) => None,
    };
    if let Some(field) = field_name {
        view.status.check_field_edit(field)?;
    }
    let body = match edit {
        Edit::Subject(s) => {
            check_subject(s)?;
            set_body(view, Field::Subject, Some(s.clone()), &view.subject)
        }
        Edit::Priority(p) => set_body(view, Field::Priority, Some(p.as_str().into()), view.priority.as_str()),
        Edit::Category(c) => {
            let c = check_name("category", c)?;
            set_body(view, Field::Category, Some(c), &view.category)
        }
        Edit::Assignee(a) => {
            let a = a.as_deref().map(parse_assignee).transpose()?;
            if a == view.assignee {
                None
            } else {
                Some(EventBody::Set { field: Field::Assignee, to: a, prev: view.current_edit_key(Field::Assignee) })
            }
        }
        Edit::Status(s) => {
            view.status.check_transition(*s)?;
            set_body(view, Field::Status, Some(s.as_str().into()), view.status.as_str())
        }
        Edit::Description(d) => {
            check_body("description", d)?;
            (view.description != *d).then_some(EventBody::Description)
        }
        Edit::Comment(b) | Edit::Note(b) => {
            if b.trim().is_empty() {
                return Err(InputError::Empty(if matches!(edit, Edit::Note(_)) { "note" } else { "comment" }).into());
            }
            check_body("comment", b)?;
            Some(if matches!(edit, Edit::Note(_)) {
                EventBody::Note { body: b.clone() }
            } else {
                EventBody::Comment { body: b.clone() }
            })
        }
    };
    let Some(body) = body else {
        return Ok(Applied::Unchanged);
    };

    // An edit made after seeing the ticket must carry a later stamp than
    // everything in it, whatever this device's wall clock says.
    clock.observe(view.max_stamp(), now_ms);
    let at = clock.tick(now_ms.max(0) as u64);
    let ev = StoredEvent::new(&author.agent, body).written_at(now_ms);
    if let Edit::Note(_) = edit {
        let n = notes.get_or_insert_with(|| TicketDoc::genesis(doc.id(), DocKind::Notes));
        n.set_actor(&author.actor);
        n.put_event(&at, &ev)?;
        n.commit(now_ms);
        return Ok(Applied::Changed);
    }
    doc.set_actor(&author.actor);
    if let Edit::Description(d) = edit {
        doc.update_description(d)?;
    }
    doc.put_event(&at, &ev)?;
    doc.commit(now_ms);
    Ok(Applied::Changed)
}

fn set_body(view: &TicketView, field: Field, to: Option<String>, current: &str) -> Option<EventBody> {
    if to.as_deref() == Some(current) {
        return None;
    }
    Some(EventBody::Set { field, to, prev: view.current_edit_key(field) })
}
