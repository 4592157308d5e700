//! "New for you": tickets that someone else assigned to this node's agent
//! and that the agent has not opened since.
//!
//! A ticket becomes new for the agent when a sync brings it assigned to
//! them, it was not assigned to them on this device before, and the
//! assignment that holds was made by another agent (an agent's own
//! assignment, even from another device, is no news to them). The first
//! pull of a device brings its whole backlog, which is not news either, so
//! nothing is marked before the device has bootstrapped. Opening the
//! ticket (`tickets show`, the app's detail view) clears the mark, and so
//! does a pulled change that assigns it away. The SQL lives here, on the
//! node's transaction, in a table of its own.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};
use tickets_core::index::IndexEntry;

use crate::error::NodeError;
use crate::store::{DbContext, Tx};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS new_for_you (
    id TEXT NOT NULL,
    agent TEXT NOT NULL,
    -- Who made the assignment, and when this device learned of it.
    assigned_by TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (agent, id)
) WITHOUT ROWID;
";

/// Creates the table when missing (called when the store opens).
pub(crate) fn schema(c: &Connection, path: &std::path::Path) -> Result<(), NodeError> {
    c.execute_batch(SCHEMA).db(path)
}

/// Who made the assignment that holds in a ticket's JSON object: the last
/// applied `assignee` entry of its history, else its creator (a ticket
/// created with an assignee).
pub fn assigned_by(ticket: &serde_json::Value) -> Option<String> {
    let history = ticket["history"].as_array();
    let applied = |h: &&serde_json::Value| h["outcome"].as_str().is_none_or(|o| o == "applied");
    let last = history.into_iter().flatten().filter(applied).rfind(|h| h["field"] == "assignee");
    match last {
        Some(h) => h["by"].as_str().map(str::to_string),
        None => ticket["created_by"].as_str().map(str::to_string),
    }
}

impl Tx<'_> {
    /// Notes what a pulled ticket means for `agent` before its index row
    /// is rewritten with `entry`: marks it new when someone else assigned
    /// it to them, clears the mark when it is no longer theirs. Returns
    /// true when it was newly marked. `bootstrapped`: whether this device
    /// had pulled its backlog before this page.
    pub(crate) fn note_pulled_assignment(
        &self,
        agent: &str,
        entry: &IndexEntry,
        bootstrapped: bool,
        now: i64,
    ) -> Result<bool, NodeError> {
        let (tx, path) = self.sql();
        if entry.assignee.as_deref() != Some(agent) {
            tx.prepare_cached("DELETE FROM new_for_you WHERE agent = ?1 AND id = ?2")
                .db(path)?
                .execute(params![agent, entry.id])
                .db(path)?;
            return Ok(false);
        }
        if !bootstrapped {
            return Ok(false);
        }
        let before: Option<Option<String>> = tx
            .prepare_cached("SELECT assignee FROM tickets WHERE id = ?1")
            .db(path)?
            .query_row([&entry.id], |r| r.get(0))
            .optional()
            .db(path)?;
        if before.flatten().as_deref() == Some(agent) {
            return Ok(false);
        }
        let Ok(view) = serde_json::from_str::<serde_json::Value>(&entry.view_json) else { return Ok(false) };
        let Some(by) = assigned_by(&view).filter(|by| by != agent) else { return Ok(false) };
        let n = tx
            .prepare_cached(
                "INSERT INTO new_for_you (id, agent, assigned_by, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (agent, id) DO NOTHING",
            )
            .db(path)?
            .execute(params![entry.id, agent, by, now])
            .db(path)?;
        Ok(n > 0)
    }

    /// Clears a ticket's mark; true when it had one.
    pub(crate) fn mark_seen(&self, agent: &str, id: &str) -> Result<bool, NodeError> {
        let (tx, path) = self.sql();
        let n = tx.execute("DELETE FROM new_for_you WHERE agent = ?1 AND id = ?2", params![agent, id]).db(path)?;
        Ok(n > 0)
    }

    /// The ids new for `agent` (few: a person reads them down to none).
    pub(crate) fn new_for_you(&self, agent: &str) -> Result<HashSet<String>, NodeError> {
        let (tx, path) = self.sql();
        let mut st = tx.prepare_cached("SELECT id FROM new_for_you WHERE agent = ?1").db(path)?;
        let rows = st.query_map([agent], |r| r.get(0)).db(path)?;
        rows.collect::<Result<HashSet<String>, _>>().db(path)
    }

    /// How many tickets are new for `agent` (of those still on this
    /// device: a ticket that left it is not counted).
    pub(crate) fn count_new_for_you(&self, agent: &str) -> Result<usize, NodeError> {
        let (tx, path) = self.sql();
        let n: i64 = tx
            .query_row(
                "SELECT count(*) FROM new_for_you n JOIN tickets t ON t.id = n.id WHERE n.agent = ?1",
                [agent],
                |r| r.get(0),
            )
            .db(path)?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_assignment_that_holds_names_who_made_it() {
        let t = |history: serde_json::Value| json!({"created_by": "lea", "history": history});
        assert_eq!(assigned_by(&t(json!([{"field": "created", "by": "lea"}]))).as_deref(), Some("lea"));
        assert_eq!(
            assigned_by(&t(json!([
                {"field": "created", "by": "lea"},
                {"field": "assignee", "by": "bob", "to": "ana"},
                {"field": "status", "by": "ana", "to": "open"}
            ])))
            .as_deref(),
            Some("bob")
        );
        // A superseded assignment is not the one that holds.
        assert_eq!(
            assigned_by(&t(json!([
                {"field": "assignee", "by": "bob", "to": "ana", "outcome": "applied"},
                {"field": "assignee", "by": "ana", "to": "ana", "outcome": "superseded"}
            ])))
            .as_deref(),
            Some("bob")
        );
    }
}

/// The node's functions over real SQLite files: what a pull marks, what
/// opening clears.
#[cfg(test)]
mod node_tests {
    use tickets_core::doc::{DocKind, TicketDoc};
    use tickets_core::edit::{Edit, NewTicket};
    use tickets_core::model::Priority;
    use uuid::Uuid;

    use crate::{Node, WallClock};

    struct Nodes {
        _dir: tempfile::TempDir,
        ana: Node,
        bob: Node,
    }

    fn nodes() -> Nodes {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let init = |name: &str| {
            Node::init(&dir.path().join(name), name, WallClock::with_offset_ms(0))
                .unwrap_or_else(|e| panic!("node {name}: {e}"))
        };
        let (ana, bob) = (init("ana"), init("bob"));
        Nodes { ana, bob, _dir: dir }
    }

    fn create(node: &mut Node, assignee: Option<&str>) -> String {
        let new = NewTicket {
            subject: "Printer jams".into(),
            priority: Priority::High,
            category: "hardware".into(),
            description: None,
            assignee: assignee.map(str::to_string),
        };
        node.create(&new, None, false).unwrap_or_else(|e| panic!("create: {e}"))
    }

    /// Brings `from`'s copy of ticket `id` into `to` as a pull does: the
    /// mark is decided before the index row is rewritten.
    fn pull(from: &mut Node, to: &mut Node, id: &str, bootstrapped: bool) -> bool {
        let bytes = {
            let tx = from.store_tx().unwrap_or_else(|e| panic!("{e}"));
            tx.load_doc(id, DocKind::Ticket.as_str()).ok().flatten().unwrap_or_else(|| panic!("no doc {id}"))
        };
        let uuid = Uuid::parse_str(id).unwrap_or_else(|e| panic!("{e}"));
        let doc = TicketDoc::load_stored(uuid, DocKind::Ticket, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let agent = to.agent().to_string();
        let now = to.now_ms();
        let tx = to.store_tx().unwrap_or_else(|e| panic!("{e}"));
        let settings = crate::node::sla_settings_of(&tx).unwrap_or_else(|e| panic!("{e}"));
        let (entry, _, _) = crate::node::index_row(&doc, None, false, &settings, now).unwrap_or_else(|e| panic!("{e}"));
        let marked = tx.note_pulled_assignment(&agent, &entry, bootstrapped, now).unwrap_or_else(|e| panic!("{e}"));
        tx.save_pulled(id, DocKind::Ticket.as_str(), &bytes).unwrap_or_else(|e| panic!("{e}"));
        tx.upsert_index(&entry, None, true).unwrap_or_else(|e| panic!("{e}"));
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        marked
    }

    fn flag(node: &mut Node, id: &str) -> bool {
        let shown = node.show(id).unwrap_or_else(|e| panic!("{e}"));
        let (listed, _) = node.list(&crate::ListQuery::default()).unwrap_or_else(|e| panic!("{e}"));
        let in_list = listed.iter().find(|t| t["id"] == id).map(|t| t["new_for_you"].clone());
        assert_eq!(in_list, Some(shown["new_for_you"].clone()), "list and show agree");
        shown["new_for_you"].as_bool().unwrap_or_else(|| panic!("no new_for_you in {shown}"))
    }

    #[test]
    fn a_ticket_someone_else_assigned_is_new_until_opened() {
        let Nodes { mut ana, mut bob, .. } = nodes();
        let id = create(&mut bob, Some("ana"));
        assert!(pull(&mut bob, &mut ana, &id, true));
        assert!(flag(&mut ana, &id), "show alone does not clear it");
        assert_eq!(ana.new_for_you_count().ok(), Some(1));
        assert_eq!(ana.status().map(|s| s.new_for_you).ok(), Some(1));
        let opened = ana.open_ticket(&id[..8]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(opened["new_for_you"], false);
        assert!(!flag(&mut ana, &id));
        assert_eq!(ana.new_for_you_count().ok(), Some(0));
        // The same assignment pulled again is no news.
        assert!(!pull(&mut bob, &mut ana, &id, true));
        assert!(!flag(&mut ana, &id));
    }

    #[test]
    fn a_reassignment_away_clears_the_mark_and_one_back_sets_it_again() {
        let Nodes { mut ana, mut bob, .. } = nodes();
        let id = create(&mut bob, None);
        assert!(!pull(&mut bob, &mut ana, &id, true), "unassigned is not for ana");
        bob.edit(&id, &[Edit::Assignee(Some("ana".into()))]).unwrap_or_else(|e| panic!("{e}"));
        assert!(pull(&mut bob, &mut ana, &id, true));
        bob.edit(&id, &[Edit::Assignee(Some("team:field".into()))]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!pull(&mut bob, &mut ana, &id, true));
        assert!(!flag(&mut ana, &id), "no longer hers");
        bob.edit(&id, &[Edit::Assignee(Some("ana".into()))]).unwrap_or_else(|e| panic!("{e}"));
        assert!(pull(&mut bob, &mut ana, &id, true));
        assert!(ana.mark_seen(&id).unwrap_or_else(|e| panic!("{e}")));
        assert!(!ana.mark_seen(&id).unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn the_agents_own_assignments_and_the_first_pull_are_no_news() {
        let Nodes { mut ana, mut bob, .. } = nodes();
        // Ana on another device (here: a node also named ana) assigns herself.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut ana_phone = Node::init(&dir.path().join("phone"), "ana", WallClock::with_offset_ms(0))
            .unwrap_or_else(|e| panic!("{e}"));
        let own = create(&mut ana_phone, Some("ana"));
        assert!(!pull(&mut ana_phone, &mut ana, &own, true));
        // Made on this device by ana herself.
        let local = create(&mut ana, Some("ana"));
        assert!(!flag(&mut ana, &local));
        // A device's first pull brings its backlog.
        let backlog = create(&mut bob, Some("ana"));
        assert!(!pull(&mut bob, &mut ana, &backlog, false));
        assert_eq!(ana.new_for_you_count().ok(), Some(0));
    }
}
