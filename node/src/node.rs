//! The node: a home folder with one SQLite database, and every local
//! command as one transaction over it.

use std::path::{Path, PathBuf};

use automerge::ActorId;
use serde::Serialize;
use tickets_core::conversation::Conversation;
use tickets_core::doc::{DocKind, TicketDoc};
use tickets_core::edit::{self, Applied, Author, Edit, NewTicket};
use tickets_core::hlc::{Clock, Hlc};
use tickets_core::ids;
use tickets_core::index::{self, IndexEntry};
use tickets_core::limits::{self, Limits};
use tickets_core::model::{check_name, Status};
use tickets_core::sla::SlaSettings;
use tickets_core::view;
use uuid::Uuid;

use crate::bulk::{BulkEdit, BulkOutcome, BulkRefusal, BULK_IDS_MAX};
use crate::clock::WallClock;
use crate::error::NodeError;
use crate::store::{ListedRow, Store, Tx};
use crate::views::{SavedView, ViewError};
use tickets_core::index::ListQuery;

/// The database file inside a node's home folder.
pub const DB_FILE: &str = "node.db";

/// Meta keys.
const M_AGENT: &str = "agent";
const M_ACTOR: &str = "actor";
const M_CLOCK: &str = "clock";
pub(crate) const M_CATEGORIES: &str = "categories";
/// The relay's agent names, from the last sync (assignees are checked
/// against them and the teams).
pub(crate) const M_AGENTS: &str = "agents";
pub(crate) const M_SLA: &str = "sla_settings";
pub(crate) const M_NOTES: &str = "notes_permitted";
pub(crate) const M_RELAY: &str = "relay_url";
pub(crate) const M_LAST_SYNC: &str = "last_sync";
/// The relay's limits, from the last sync (the defaults before it).
pub(crate) const M_LIMITS: &str = "limits";

/// What `status` reports of a node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub home: PathBuf,
    pub agent: String,
    pub actor: String,
    pub relay: Option<String>,
    pub tickets: usize,
    pub pending: usize,
    /// Documents whose local changes the relay refused.
    pub refused: usize,
    pub last_sync: Option<String>,
    /// Documents set aside because what the relay sent for them could not
    /// be used.
    pub damaged: usize,
    /// Tickets someone else assigned to this agent that they have not
    /// opened since.
    pub new_for_you: usize,
}

/// A page of tickets as the board API answers it (`GET /v1/tickets`).
#[derive(Debug, Clone, Serialize)]
pub struct ListPage {
    /// Each ticket's JSON object (as `tickets show --json`).
    pub tickets: Vec<serde_json::Value>,
    pub total: usize,
    pub counts: tickets_core::index::SlaCounts,
    pub now: String,
    /// The next instant at which some ticket changes colour.
    pub next_change_at: Option<String>,
}

pub struct Node {
    store: Store,
    home: PathBuf,
    agent: String,
    actor: ActorId,
    clock: Clock,
    wall: WallClock,
}

/// How an edit command went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOutcome {
    Changed,
    Unchanged,
}

impl Node {
    /// Creates a local-only node for `agent` in `home`.
    pub fn init(home: &Path, agent: &str, wall: WallClock) -> Result<Node, NodeError> {
        Node::init_with_actor(home, agent, Node::new_actor(), wall)
    }

    /// A fresh random device actor.
    pub fn new_actor() -> ActorId {
        ActorId::from(Uuid::new_v4().as_bytes().as_slice())
    }

    /// Creates a node whose device actor was chosen (and registered) before.
    pub fn init_with_actor(home: &Path, agent: &str, actor: ActorId, wall: WallClock) -> Result<Node, NodeError> {
        let agent = check_name("agent", agent).map_err(|e| NodeError::Edit(e.into()))?;
        if home.join(DB_FILE).exists() {
            return Err(NodeError::AlreadyInitialized(home.to_path_buf()));
        }
        // The folder and its database hold the relay token, tickets and
        // notes: private whatever the umask.
        crate::home::create_private_dir(home).map_err(|source| NodeError::Io { path: home.to_path_buf(), source })?;
        crate::home::restrict(home, crate::home::PRIVATE_DIR_MODE)
            .map_err(|source| NodeError::Io { path: home.to_path_buf(), source })?;
        let mut store = Store::create(&home.join(DB_FILE))?;
        let tx = store.tx()?;
        tx.set_meta(M_AGENT, &agent)?;
        tx.set_meta(M_ACTOR, &actor.to_hex_string())?;
        tx.set_meta(M_CLOCK, "0.0")?;
        // A local-only node belongs to its agent alone: internal notes are
        // allowed until a relay says otherwise.
        tx.set_meta(M_NOTES, "1")?;
        tx.commit()?;
        Node::open(home, wall)
    }

    pub fn open(home: &Path, wall: WallClock) -> Result<Node, NodeError> {
        let path = home.join(DB_FILE);
        let mut store = Store::open(&path)?;
        let tx = store.tx()?;
        let corrupt = |m: &str| NodeError::Corrupt { path: path.clone(), message: m.to_string() };
        let agent = tx.get_meta(M_AGENT)?.ok_or_else(|| corrupt("no agent recorded"))?;
        let actor_hex = tx.get_meta(M_ACTOR)?.ok_or_else(|| corrupt("no device actor recorded"))?;
        let actor = ActorId::try_from(actor_hex.as_str()).map_err(|_| corrupt("device actor is not hex"))?;
        let (wall_ms, counter) = tx
            .get_meta(M_CLOCK)?
            .and_then(|c| {
                let (w, n) = c.split_once('.')?;
                Some((w.parse().ok()?, n.parse().ok()?))
            })
            .ok_or_else(|| corrupt("clock state unreadable"))?;
        // Rows indexed by an older format are re-indexed once, here.
        let settings = sla_settings_of(&tx)?;
        if tx.reindex_if_stale(&settings, wall.now_ms())? {
            tx.commit()?;
        } else {
            drop(tx);
        }
        let mut clock = Clock::restore(ids::replica_of(&actor), wall_ms, counter);
        // A clock dragged past any honest bound (before the bound existed)
        // would refuse every edit: it starts again from this device's time.
        clock.forget_if_ahead(wall.now_ms());
        Ok(Node { store, home: home.to_path_buf(), agent, actor, clock, wall })
    }

    pub fn agent(&self) -> &str {
        &self.agent
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn now_ms(&self) -> i64 {
        self.wall.now_ms()
    }

    fn author(&self) -> Author {
        Author { agent: self.agent.clone(), actor: self.actor.clone() }
    }

    /// Resolves a unique id prefix to a ticket id.
    pub fn resolve(&mut self, prefix: &str) -> Result<String, NodeError> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.is_empty() {
            return Err(NodeError::NotFound(prefix.to_string()));
        }
        let tx = self.store.tx()?;
        let ids = tx.ids_with_prefix(&p, 2)?;
        match ids.len() {
            0 => Err(NodeError::NotFound(prefix.to_string())),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => {
                let count = tx.ids_with_prefix(&p, 1000)?.len();
                Err(NodeError::Ambiguous { prefix: prefix.to_string(), count })
            }
        }
    }

    fn check_category(tx: &Tx<'_>, category: &str) -> Result<(), NodeError> {
        let Some(json) = tx.get_meta(M_CATEGORIES)? else { return Ok(()) };
        let known: Vec<String> = serde_json::from_str(&json).unwrap_or_default();
        if known.is_empty() || known.iter().any(|k| k == category.trim()) {
            return Ok(());
        }
        Err(NodeError::UnknownCategory(category.trim().to_string(), known.join(", ")))
    }

    /// Checks an assignee against the agents and teams the relay last sent;
    /// a node that never received them (never synced, or an older relay)
    /// accepts any.
    fn check_assignee(tx: &Tx<'_>, assignee: Option<&str>) -> Result<(), NodeError> {
        let Some(assignee) = assignee.map(str::trim).filter(|a| !a.is_empty()) else { return Ok(()) };
        let list = |key: &str| -> Result<Vec<String>, NodeError> {
            Ok(tx.get_meta(key)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
        };
        let agents = list(M_AGENTS)?;
        if agents.is_empty() {
            return Ok(());
        }
        let teams = list(crate::directory::M_TEAMS)?;
        let known = match assignee.strip_prefix("team:") {
            Some(team) => teams.iter().any(|t| t == team.trim()),
            None => agents.iter().any(|a| a == assignee),
        };
        if known {
            return Ok(());
        }
        let mut names = agents;
        names.extend(teams.iter().map(|t| format!("team:{t}")));
        Err(NodeError::UnknownAssignee { assignee: assignee.to_string(), known: names })
    }

    /// Granted the notes permission again and not yet done pulling the
    /// notes back.
    fn notes_restoring(tx: &Tx<'_>) -> Result<bool, NodeError> {
        Ok(tx.get_meta(crate::sync::M_NOTES_RESTORING)?.as_deref() == Some("1"))
    }

    fn notes_permitted(tx: &Tx<'_>) -> Result<bool, NodeError> {
        Ok(tx.get_meta(M_NOTES)?.as_deref() == Some("1"))
    }

    /// The relay's limits as last synced (the defaults before the first
    /// sync, or from a relay that sends none).
    fn limits(tx: &Tx<'_>) -> Result<Limits, NodeError> {
        Ok(tx.get_meta(M_LIMITS)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
    }

    fn sla_settings(tx: &Tx<'_>) -> Result<SlaSettings, NodeError> {
        sla_settings_of(tx)
    }

    pub(crate) fn store_tx(&mut self) -> Result<Tx<'_>, NodeError> {
        self.store.tx()
    }

    pub(crate) fn checkpoint(&self) -> Result<(), NodeError> {
        self.store.scrub()
    }

    /// A transaction and the clock together, for work that observes
    /// stamps and persists the clock in the same transaction.
    pub(crate) fn tx_and_clock(&mut self) -> Result<(Tx<'_>, &mut Clock), NodeError> {
        Ok((self.store.tx()?, &mut self.clock))
    }

    pub(crate) fn save_clock_of(clock: &Clock, tx: &Tx<'_>) -> Result<(), NodeError> {
        let (w, n) = clock.last();
        tx.set_meta(M_CLOCK, &format!("{w}.{n}"))
    }

    /// Creates a ticket; returns its id.
    pub fn create(
        &mut self,
        new: &NewTicket,
        conversation: Option<&Conversation>,
        force: bool,
    ) -> Result<String, NodeError> {
        let now = self.now_ms();
        let author = self.author();
        let tx = self.store.tx()?;
        Self::check_category(&tx, &new.category)?;
        Self::check_assignee(&tx, new.assignee.as_deref())?;
        let id = match conversation {
            Some(c) => {
                // A file's ticket made before ids had namespaces links the
                // file's bare id: it is the same conversation.
                let legacy = match tickets_core::conversation::legacy_file_id(c.id.trim()) {
                    Some(bare) => tx.ticket_of_conversation(bare)?,
                    None => None,
                };
                if let Some(existing) = tx.ticket_of_conversation(c.id.trim())?.or(legacy) {
                    if !force {
                        return Err(NodeError::ConversationExists { conversation: c.id.clone(), ticket: existing });
                    }
                    // A forced second ticket for the same conversation gets
                    // its own identity; it is deliberate, not a duplicate.
                    Uuid::new_v4()
                } else {
                    ids::conversation_ticket_id(c.id.trim())
                }
            }
            None => Uuid::new_v4(),
        };
        let mut doc = edit::create_ticket(id, &author, &mut self.clock, now, new, conversation)?;
        let settings = Self::sla_settings(&tx)?;
        let notes_ok = Self::notes_permitted(&tx)?;
        let limits = Self::limits(&tx)?;
        store_ticket(&tx, &mut doc, None, notes_ok, &settings, now, Some(&limits))?;
        Self::save_clock_of(&self.clock, &tx)?;
        tx.commit()?;
        Ok(id.to_string())
    }

    fn load(tx: &Tx<'_>, id: &str, with_notes: bool) -> Result<(TicketDoc, Option<TicketDoc>), NodeError> {
        let uuid = Uuid::parse_str(id).map_err(|_| NodeError::NotFound(id.to_string()))?;
        let doc_err = |source| NodeError::Doc { id: id.to_string(), source };
        let bytes = tx.load_doc(id, DocKind::Ticket.as_str())?.ok_or_else(|| NodeError::NotFound(id.to_string()))?;
        let doc = TicketDoc::load_stored(uuid, DocKind::Ticket, &bytes).map_err(doc_err)?;
        let notes = if with_notes {
            match tx.load_doc(id, DocKind::Notes.as_str())? {
                Some(b) => Some(TicketDoc::load_stored(uuid, DocKind::Notes, &b).map_err(doc_err)?),
                None => None,
            }
        } else {
            None
        };
        Ok((doc, notes))
    }

    /// Applies edits to one ticket in one transaction: all or nothing.
    pub fn edit(&mut self, prefix: &str, edits: &[Edit]) -> Result<(String, EditOutcome), NodeError> {
        let id = self.resolve(prefix)?;
        let now = self.now_ms();
        let author = self.author();
        let tx = self.store.tx()?;
        for e in edits {
            match e {
                Edit::Category(c) => Self::check_category(&tx, c)?,
                Edit::Assignee(a) => Self::check_assignee(&tx, a.as_deref())?,
                Edit::Note(_) if !Self::notes_permitted(&tx)? => return Err(NodeError::NotesForbidden(author.agent)),
                // Right after a grant the device pulls the notes it may now
                // read; a note written before they arrive would start the
                // ticket's notes afresh and collide with this device's own
                // earlier notes on the relay.
                Edit::Note(_) if Self::notes_restoring(&tx)? => return Err(NodeError::NotesRestoring),
                _ => {}
            }
        }
        // The relay's limits, checked before anything is written: the agent
        // learns now, not at the next sync.
        let limits = Self::limits(&tx)?;
        for e in edits {
            if let Edit::Comment(b) | Edit::Note(b) = e {
                limits::check_comment(b.len(), &limits)?;
            }
        }
        let notes_ok = Self::notes_permitted(&tx)?;
        let (mut doc, mut notes) = Self::load(&tx, &id, notes_ok)?;
        let mut changed = false;
        let mut notes_changed = false;
        for e in edits {
            let v =
                view::materialize(&doc, notes.as_ref()).map_err(|source| NodeError::Doc { id: id.clone(), source })?;
            if edit::apply_edit(&mut doc, &mut notes, &v, &author, &mut self.clock, now, e)? == Applied::Changed {
                changed = true;
                notes_changed |= matches!(e, Edit::Note(_));
            }
        }
        if !changed {
            return Ok((id, EditOutcome::Unchanged));
        }
        let settings = Self::sla_settings(&tx)?;
        let none = std::collections::HashSet::new();
        let count = |d: &TicketDoc| {
            let events = d.raw_events();
            limits::check_events(events.iter().map(|(k, v)| (k.as_str(), v.as_deref())), &none, &limits)
        };
        if edits.iter().any(|e| matches!(e, Edit::Comment(_))) {
            count(&doc)?;
        }
        if notes_changed {
            if let Some(n) = notes.as_mut() {
                count(n)?;
                let bytes = n.save();
                limits::check_doc_bytes(bytes.len(), &limits)?;
                tx.save_doc(&id, DocKind::Notes.as_str(), &bytes)?;
            }
        }
        store_ticket(&tx, &mut doc, notes.as_ref(), notes_ok, &settings, now, Some(&limits))?;
        Self::save_clock_of(&self.clock, &tx)?;
        tx.commit()?;
        Ok((id, EditOutcome::Changed))
    }

    /// The ticket's JSON object with live SLA figures (and `new_for_you`).
    /// Reading it this way leaves the ticket new for its agent; opening it
    /// for a person to read is [`Node::open_ticket`].
    pub fn show(&mut self, prefix: &str) -> Result<serde_json::Value, NodeError> {
        self.show_marking(prefix, false)
    }

    /// Opens a ticket for its agent to read (`tickets show`, the app's
    /// detail view): as [`Node::show`], and the ticket is no longer new
    /// for them (`new_for_you` is false from now on).
    pub fn open_ticket(&mut self, prefix: &str) -> Result<serde_json::Value, NodeError> {
        self.show_marking(prefix, true)
    }

    fn show_marking(&mut self, prefix: &str, seen: bool) -> Result<serde_json::Value, NodeError> {
        let id = self.resolve(prefix)?;
        let now = self.now_ms();
        let path = self.store.path().to_path_buf();
        let tx = self.store.tx()?;
        let row = tx.row(&id)?.ok_or_else(|| NodeError::NotFound(prefix.to_string()))?;
        let settings = Self::sla_settings(&tx)?;
        let mut v = with_sla(&row, &settings, now, &path)?;
        let refusals = tx.refusals(&id)?;
        if !refusals.is_empty() {
            let list: Vec<serde_json::Value> = refusals
                .into_iter()
                .map(|(kind, reason, at)| {
                    serde_json::json!({"kind": kind, "reason": reason, "at": tickets_core::time::iso_i64(at)})
                })
                .collect();
            if let Some(o) = v.as_object_mut() {
                o.insert("refusals".into(), serde_json::Value::Array(list));
            }
        }
        let is_new = if seen {
            tx.mark_seen(&self.agent, &id)?;
            tx.commit()?;
            false
        } else {
            tx.new_for_you(&self.agent)?.contains(&id)
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("new_for_you".into(), serde_json::Value::Bool(is_new));
        }
        Ok(v)
    }

    /// Tickets matching a query, as JSON objects with live SLA figures, and
    /// the total number of matches (beyond any limit).
    pub fn list(&mut self, q: &ListQuery) -> Result<(Vec<serde_json::Value>, usize), NodeError> {
        let now = self.now_ms();
        let path = self.store.path().to_path_buf();
        let tx = self.store.tx()?;
        let settings = Self::sla_settings(&tx)?;
        let (rows, total) = tx.list(q, now)?;
        let mut out = rows.iter().map(|r| with_sla(r, &settings, now, &path)).collect::<Result<Vec<_>, _>>()?;
        flag_new_for_you(&mut out, &tx.new_for_you(&self.agent)?);
        Ok((out, total))
    }

    /// One page of a list query with what a board shows beside it: the
    /// total number of matches, tickets per SLA colour over the whole node,
    /// and the next instant a colour changes. One transaction.
    pub fn list_page(&mut self, q: &ListQuery) -> Result<ListPage, NodeError> {
        let now = self.now_ms();
        let path = self.store.path().to_path_buf();
        let tx = self.store.tx()?;
        let settings = Self::sla_settings(&tx)?;
        let (rows, total) = tx.list(q, now)?;
        let mut tickets = rows.iter().map(|r| with_sla(r, &settings, now, &path)).collect::<Result<Vec<_>, _>>()?;
        flag_new_for_you(&mut tickets, &tx.new_for_you(&self.agent)?);
        Ok(ListPage {
            tickets,
            total,
            counts: tx.color_counts(now)?,
            now: tickets_core::time::iso_i64(now),
            next_change_at: tx.next_color_change(now)?.map(tickets_core::time::iso_i64),
        })
    }

    /// The ticket already made from a conversation, if any.
    pub fn ticket_of_conversation(&mut self, conversation_id: &str) -> Result<Option<String>, NodeError> {
        let tx = self.store.tx()?;
        tx.ticket_of_conversation(conversation_id.trim())
    }

    /// Stores documents built elsewhere with this node's author and clock
    /// (bulk loads: benchmarks, migrations), in one transaction.
    pub fn store_prepared(&mut self, docs: &mut [(TicketDoc, Option<TicketDoc>)]) -> Result<(), NodeError> {
        let now = self.now_ms();
        let tx = self.store.tx()?;
        let settings = Self::sla_settings(&tx)?;
        let notes_ok = Self::notes_permitted(&tx)?;
        for (doc, notes) in docs.iter_mut() {
            if let Some(n) = notes.as_mut() {
                tx.save_doc(&n.id().to_string(), DocKind::Notes.as_str(), &n.save())?;
            }
            store_ticket(&tx, doc, notes.as_ref(), notes_ok, &settings, now, None)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Imports tickets in one transaction: every record is checked before
    /// anything is written, and one bad record imports nothing.
    pub fn import(
        &mut self,
        records: &[crate::import::ImportRecord],
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize, NodeError> {
        let now = self.now_ms();
        let author = self.author();
        let tx = self.store.tx()?;
        for (i, r) in records.iter().enumerate() {
            Self::check_category(&tx, &r.ticket.category)
                .map_err(|e| NodeError::Import { record: i + 1, message: e.to_string() })?;
        }
        let settings = Self::sla_settings(&tx)?;
        let notes_ok = Self::notes_permitted(&tx)?;
        for (i, r) in records.iter().enumerate() {
            let bad = |e: &dyn std::fmt::Display| NodeError::Import { record: i + 1, message: e.to_string() };
            let id = Uuid::new_v4();
            let mut doc =
                edit::create_ticket(id, &author, &mut self.clock, now, &r.ticket, None).map_err(|e| bad(&e))?;
            if let Some(status) = r.status.filter(|s| *s != Status::Open) {
                let v = view::materialize(&doc, None).map_err(|e| bad(&e))?;
                let mut none = None;
                edit::apply_edit(&mut doc, &mut none, &v, &author, &mut self.clock, now, &Edit::Status(status))
                    .map_err(|e| bad(&e))?;
            }
            store_ticket(&tx, &mut doc, None, notes_ok, &settings, now, None)?;
            progress(i + 1);
        }
        Self::save_clock_of(&self.clock, &tx)?;
        tx.commit()?;
        Ok(records.len())
    }

    /// Sets the same fields on several tickets in one transaction. Each id
    /// (or unique prefix) is decided on its own: one that matches nothing
    /// or several tickets, a closed ticket, or a value outside the relay's
    /// taxonomy is refused with a code and the others apply; see
    /// [`crate::bulk`]. Only a storage failure fails the whole call.
    pub fn bulk_edit(&mut self, ids: &[String], edit: &BulkEdit) -> Result<BulkOutcome, NodeError> {
        if edit.is_empty() {
            return Err(NodeError::BadBulk("nothing to set: give an assignee, priority, status or category".into()));
        }
        if ids.is_empty() {
            return Err(NodeError::BadBulk("no ticket ids given".into()));
        }
        if ids.len() > BULK_IDS_MAX {
            return Err(NodeError::BadBulk(format!(
                "at most {BULK_IDS_MAX} tickets per bulk edit ({} given)",
                ids.len()
            )));
        }
        let edits = edit.edits();
        let now = self.now_ms();
        let author = self.author();
        let tx = self.store.tx()?;
        // The values are the same for every ticket: checked once, and a
        // value outside the taxonomy refuses each ticket by name.
        let mut value_refusal: Option<(&'static str, String)> = None;
        for e in &edits {
            let checked = match e {
                Edit::Category(c) => Self::check_category(&tx, c),
                Edit::Assignee(a) => Self::check_assignee(&tx, a.as_deref()),
                _ => Ok(()),
            };
            if let Err(err) = checked {
                value_refusal = Some((crate::bulk::refusal_code(&err), err.to_string()));
                break;
            }
        }
        let settings = Self::sla_settings(&tx)?;
        let notes_ok = Self::notes_permitted(&tx)?;
        let mut out = BulkOutcome::default();
        let mut seen = std::collections::HashSet::new();
        let refuse = |out: &mut BulkOutcome, id: &str, err: &NodeError| {
            out.refused.push(BulkRefusal {
                id: id.to_string(),
                code: crate::bulk::refusal_code(err).to_string(),
                error: err.to_string(),
            })
        };
        for given in ids {
            let id = match resolve_in(&tx, given) {
                Ok(id) => id,
                Err(e @ (NodeError::NotFound(_) | NodeError::Ambiguous { .. })) => {
                    refuse(&mut out, given, &e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some((code, error)) = &value_refusal {
                out.refused.push(BulkRefusal { id, code: code.to_string(), error: error.clone() });
                continue;
            }
            let (mut doc, mut notes) = match Self::load(&tx, &id, notes_ok) {
                Ok(d) => d,
                Err(e @ NodeError::Doc { .. }) => {
                    refuse(&mut out, &id, &e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A ticket's edits are all or nothing: a refused one drops the
            // document with whatever the earlier ones changed in memory.
            let mut changed = false;
            let mut failed: Option<NodeError> = None;
            for e in &edits {
                let applied = view::materialize(&doc, notes.as_ref())
                    .map_err(|source| NodeError::Doc { id: id.clone(), source })
                    .and_then(|v| {
                        edit::apply_edit(&mut doc, &mut notes, &v, &author, &mut self.clock, now, e)
                            .map_err(NodeError::from)
                    });
                match applied {
                    Ok(Applied::Changed) => changed = true,
                    Ok(Applied::Unchanged) => {}
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
            }
            if let Some(err) = failed {
                refuse(&mut out, &id, &err);
                continue;
            }
            if changed {
                // Field edits add a few bytes: the document limit is the
                // relay's to enforce per document, not a reason to fail
                // the whole selection here.
                store_ticket(&tx, &mut doc, notes.as_ref(), notes_ok, &settings, now, None)?;
            } else {
                out.unchanged.push(id.clone());
            }
            out.applied.push(id);
        }
        Self::save_clock_of(&self.clock, &tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Saves a view for this agent under `name` (trimmed, NFC), replacing
    /// one of the same name. `filters` are the list's key/value pairs (see
    /// [`crate::views::VIEW_KEYS`]); an unknown key or a value the list
    /// refuses is refused with the filter's name, and nothing is saved.
    pub fn save_view(&mut self, name: &str, filters: &[(String, String)]) -> Result<SavedView, NodeError> {
        let name = crate::views::canonical_name(name)?;
        crate::views::check_pairs(filters)?;
        let now = self.now_ms();
        let tx = self.store.tx()?;
        tx.save_view(&self.agent, &name, filters, now)?;
        let saved = tx.view(&self.agent, &name)?.ok_or_else(|| ViewError::NotFound(name.clone()))?;
        tx.commit()?;
        Ok(saved)
    }

    /// This agent's saved views, by name.
    pub fn views(&mut self) -> Result<Vec<SavedView>, NodeError> {
        let tx = self.store.tx()?;
        tx.views(&self.agent)
    }

    /// One saved view by name (matched as saved: trimmed, NFC).
    pub fn view(&mut self, name: &str) -> Result<SavedView, NodeError> {
        let name = crate::views::canonical_name(name)?;
        let tx = self.store.tx()?;
        Ok(tx.view(&self.agent, &name)?.ok_or(ViewError::NotFound(name))?)
    }

    /// Deletes a saved view; an unknown name is refused.
    pub fn delete_view(&mut self, name: &str) -> Result<(), NodeError> {
        let name = crate::views::canonical_name(name)?;
        let tx = self.store.tx()?;
        if !tx.delete_view(&self.agent, &name)? {
            return Err(ViewError::NotFound(name).into());
        }
        tx.commit()
    }

    /// How many tickets someone else assigned to this agent that they have
    /// not opened since (see [`crate::new_for_you`]).
    pub fn new_for_you_count(&mut self) -> Result<usize, NodeError> {
        let tx = self.store.tx()?;
        tx.count_new_for_you(&self.agent)
    }

    /// Marks a ticket as seen by this agent without reading it; true when
    /// it was new for them.
    pub fn mark_seen(&mut self, prefix: &str) -> Result<bool, NodeError> {
        let id = self.resolve(prefix)?;
        let tx = self.store.tx()?;
        let was = tx.mark_seen(&self.agent, &id)?;
        tx.commit()?;
        Ok(was)
    }

    pub fn status(&mut self) -> Result<NodeStatus, NodeError> {
        let tx = self.store.tx()?;
        Ok(NodeStatus {
            home: self.home.clone(),
            agent: self.agent.clone(),
            actor: self.actor.to_hex_string(),
            relay: tx.get_meta(M_RELAY)?,
            tickets: tx.count_tickets()?,
            pending: tx.count_dirty()?,
            refused: tx.count_refused()?,
            last_sync: tx.get_meta(M_LAST_SYNC)?,
            damaged: tx.count_quarantined()?,
            new_for_you: tx.count_new_for_you(&self.agent)?,
        })
    }
}

/// An edit by this device's agent that did not take effect after a merge:
/// superseded by a concurrent edit, or ignored (e.g. out of closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    pub ticket: String,
    pub at: String,
    pub field: String,
    pub to: Option<String>,
    /// `superseded` or `ignored`.
    pub outcome: String,
    /// Why, in words.
    pub note: Option<String>,
}

impl NotApplied {
    /// "status → open ignored (ticket closed by bob at …)".
    pub fn describe(&self) -> String {
        let mut s = format!("{} → {} {}", self.field, self.to.as_deref().unwrap_or("none"), self.outcome);
        if let Some(n) = &self.note {
            // "ignored: ticket closed by …" reads "ignored (ticket closed by …)".
            let why =
                n.strip_prefix(self.outcome.as_str()).map(|r| r.trim_start_matches(':').trim_start()).unwrap_or(n);
            s.push_str(&format!(" ({why})"));
        }
        s
    }
}

/// `agent`'s edits listed as not applied in a ticket's JSON object.
pub fn own_not_applied(agent: &str, ticket: &serde_json::Value) -> Vec<NotApplied> {
    let id = ticket["id"].as_str().unwrap_or_default();
    ticket["not_applied"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["by"].as_str() == Some(agent))
        .map(|h| NotApplied {
            ticket: id.to_string(),
            at: h["at"].as_str().unwrap_or_default().to_string(),
            field: h["field"].as_str().unwrap_or_default().to_string(),
            to: h["to"].as_str().map(str::to_string),
            outcome: h["outcome"].as_str().unwrap_or_default().to_string(),
            note: h["note"].as_str().map(str::to_string),
        })
        .collect()
}

/// `agent`'s edits that a ticket's new JSON (`new_json`, about to be
/// stored) lists as not applied and its stored JSON did not: what a sync
/// tells the author. The stored row is read only when the new object has
/// such edits at all, which is rare.
pub(crate) fn newly_not_applied(tx: &Tx<'_>, agent: &str, new_json: &str) -> Result<Vec<NotApplied>, NodeError> {
    if !new_json.contains(r#""not_applied":["#) {
        return Ok(Vec::new());
    }
    let Ok(new) = serde_json::from_str::<serde_json::Value>(new_json) else { return Ok(Vec::new()) };
    let mine = own_not_applied(agent, &new);
    if mine.is_empty() {
        return Ok(mine);
    }
    // A ticket new to this device (a fresh device pulling everything) has
    // nothing new to tell: its author heard of it where they made the edit.
    let Some(row) = tx.row(&mine[0].ticket)? else { return Ok(Vec::new()) };
    let old = serde_json::from_str::<serde_json::Value>(&row.view_json)
        .map(|old| own_not_applied(agent, &old))
        .unwrap_or_default();
    let known = |n: &NotApplied| old.iter().any(|o| (&o.at, &o.field, &o.to) == (&n.at, &n.field, &n.to));
    Ok(mine.into_iter().filter(|n| !known(n)).collect())
}

/// The SLA settings last received from the relay (none on a local node).
pub(crate) fn sla_settings_of(tx: &Tx<'_>) -> Result<SlaSettings, NodeError> {
    Ok(tx.get_meta(M_SLA)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
}

/// Materializes a ticket and writes its document and index row; with
/// `limits`, refuses (writing nothing) a document over the byte limit.
fn store_ticket(
    tx: &Tx<'_>,
    doc: &mut TicketDoc,
    notes: Option<&TicketDoc>,
    notes_ok: bool,
    settings: &SlaSettings,
    now: i64,
    limits: Option<&Limits>,
) -> Result<(), NodeError> {
    let id = doc.id().to_string();
    let bytes = doc.save();
    if let Some(l) = limits {
        limits::check_doc_bytes(bytes.len(), l)?;
    }
    tx.save_doc(&id, DocKind::Ticket.as_str(), &bytes)?;
    reindex(tx, doc, notes, notes_ok, settings, now).map(|_| ())
}

/// Rewrites a ticket's index row from its documents.
pub(crate) fn reindex(
    tx: &Tx<'_>,
    doc: &TicketDoc,
    notes: Option<&TicketDoc>,
    notes_ok: bool,
    settings: &SlaSettings,
    now: i64,
) -> Result<Option<Hlc>, NodeError> {
    let (entry, notes_json, stamp) = index_row(doc, notes, notes_ok, settings, now)?;
    tx.upsert_index(&entry, notes_json.as_deref(), true)?;
    Ok(Some(stamp))
}

/// A ticket's index row (pure work, no store): the entry, the notes' JSON
/// for a permitted reader, and the latest stamp in the ticket.
pub(crate) fn index_row(
    doc: &TicketDoc,
    notes: Option<&TicketDoc>,
    notes_ok: bool,
    settings: &SlaSettings,
    now: i64,
) -> Result<(IndexEntry, Option<String>, Hlc), NodeError> {
    let v = view::materialize(doc, notes.filter(|_| notes_ok))
        .map_err(|source| NodeError::Doc { id: doc.id().to_string(), source })?;
    // A node shows each event at the time its own device's clock wrote it.
    let written = |h: &Hlc| v.written_ms(h);
    let entry = index::index_entry(&v, settings, now, &written);
    // A permitted reader sees the notes list even when it is empty.
    let notes_json = if notes_ok { Some(index::notes_json(&v, &written).unwrap_or_else(|| "[]".into())) } else { None };
    Ok((entry, notes_json, v.max_stamp().clone()))
}

/// Resolves a unique id prefix to a ticket id inside a transaction.
fn resolve_in(tx: &Tx<'_>, prefix: &str) -> Result<String, NodeError> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() {
        return Err(NodeError::NotFound(prefix.to_string()));
    }
    let ids = tx.ids_with_prefix(&p, 2)?;
    match ids.len() {
        0 => Err(NodeError::NotFound(prefix.to_string())),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        _ => {
            let count = tx.ids_with_prefix(&p, 1000)?.len();
            Err(NodeError::Ambiguous { prefix: prefix.to_string(), count })
        }
    }
}

/// Adds `new_for_you` to each listed ticket object.
fn flag_new_for_you(tickets: &mut [serde_json::Value], new: &std::collections::HashSet<String>) {
    for t in tickets {
        let is_new = t["id"].as_str().is_some_and(|id| new.contains(id));
        if let Some(o) = t.as_object_mut() {
            o.insert("new_for_you".into(), serde_json::Value::Bool(is_new));
        }
    }
}

/// A stored ticket object with live SLA figures added.
fn with_sla(row: &ListedRow, settings: &SlaSettings, now: i64, path: &Path) -> Result<serde_json::Value, NodeError> {
    index::live_object(&row.view_json, &row.sla_input, row.notes_json.as_deref(), settings, now, row.provisional)
        .map_err(|message| NodeError::Corrupt { path: path.to_path_buf(), message })
}
