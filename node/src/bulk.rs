//! Bulk edits: one assignee, priority, status or category for a selection
//! of tickets, in one SQLite transaction.
//!
//! Each ticket is decided on its own: an id that matches nothing or more
//! than one ticket, a closed ticket, or a value the relay's taxonomy does
//! not hold refuses that ticket with a code, and the others apply. A
//! ticket's own edits are all or nothing. Only a storage failure undoes
//! the whole selection.

use serde::Serialize;
use tickets_core::edit::Edit;
use tickets_core::model::{Priority, Status};

use crate::error::NodeError;

/// Most tickets one bulk edit may name.
pub const BULK_IDS_MAX: usize = 10_000;

/// What a bulk edit sets; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkEdit {
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<String>>,
    pub priority: Option<Priority>,
    pub status: Option<Status>,
    pub category: Option<String>,
}

impl BulkEdit {
    /// Whether it sets nothing.
    pub fn is_empty(&self) -> bool {
        self.edits().is_empty()
    }

    /// The edits in the order they apply to each ticket: the status last,
    /// so that closing a ticket in the same bulk edit does not refuse the
    /// other fields.
    pub fn edits(&self) -> Vec<Edit> {
        let mut out = Vec::new();
        if let Some(c) = &self.category {
            out.push(Edit::Category(c.clone()));
        }
        if let Some(p) = self.priority {
            out.push(Edit::Priority(p));
        }
        if let Some(a) = &self.assignee {
            out.push(Edit::Assignee(a.clone()));
        }
        if let Some(s) = self.status {
            out.push(Edit::Status(s));
        }
        out
    }
}

/// One ticket a bulk edit refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkRefusal {
    /// The ticket's full id, or the text given when it matched none or
    /// several.
    pub id: String,
    /// `not_found`, `ambiguous`, `closed`, `unknown_category`,
    /// `unknown_assignee` or `invalid`.
    pub code: String,
    pub error: String,
}

/// How a bulk edit went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BulkOutcome {
    /// Full ids of the tickets that now hold the values, in the order
    /// given (each once), including those that already did.
    pub applied: Vec<String>,
    /// Those of `applied` that already held the values (nothing written).
    pub unchanged: Vec<String>,
    pub refused: Vec<BulkRefusal>,
}

impl BulkOutcome {
    /// Whether every ticket applied.
    pub fn all_applied(&self) -> bool {
        self.refused.is_empty()
    }
}

/// The code a refusal of one ticket carries.
pub(crate) fn refusal_code(e: &NodeError) -> &'static str {
    match e {
        NodeError::Edit(tickets_core::edit::EditError::Transition(_)) => "closed",
        NodeError::Edit(_) => "invalid",
        other => crate::home::code(other),
    }
}

/// Reads ticket ids from text (stdin): one per line or separated by any
/// whitespace; empty text gives none.
pub fn ids_from_text(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_applies_after_the_other_fields() {
        let e = BulkEdit {
            assignee: Some(Some("ana".into())),
            priority: Some(Priority::High),
            status: Some(Status::Closed),
            category: Some("hardware".into()),
        };
        let kinds: Vec<&str> = e
            .edits()
            .iter()
            .map(|e| match e {
                Edit::Category(_) => "category",
                Edit::Priority(_) => "priority",
                Edit::Assignee(_) => "assignee",
                Edit::Status(_) => "status",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["category", "priority", "assignee", "status"]);
        assert!(BulkEdit::default().is_empty());
        assert!(!BulkEdit { assignee: Some(None), ..BulkEdit::default() }.is_empty());
    }

    #[test]
    fn ids_come_one_per_line_or_between_spaces() {
        assert_eq!(ids_from_text("3f2a\n9b1c  77aa\r\n\n\tdd01\n"), ["3f2a", "9b1c", "77aa", "dd01"]);
        assert!(ids_from_text("  \n").is_empty());
    }
}

/// Bulk edits on a node over a real SQLite file.
#[cfg(test)]
mod node_tests {
    use tickets_core::edit::{Edit, NewTicket};
    use tickets_core::model::{Priority, Status};

    use super::{BulkEdit, BULK_IDS_MAX};
    use crate::{Node, NodeError, WallClock};

    fn node() -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let mut node =
            Node::init(&dir.path().join("ana"), "ana", WallClock::with_offset_ms(0)).unwrap_or_else(|e| panic!("{e}"));
        // The relay's taxonomy, as a sync leaves it.
        let tx = node.store_tx().unwrap_or_else(|e| panic!("{e}"));
        tx.set_meta(crate::node::M_CATEGORIES, r#"["hardware","billing"]"#).unwrap_or_else(|e| panic!("{e}"));
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        (dir, node)
    }

    fn create(node: &mut Node, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let new = NewTicket {
                    subject: format!("ticket {i}"),
                    priority: Priority::Low,
                    category: "hardware".into(),
                    description: None,
                    assignee: None,
                };
                node.create(&new, None, false).unwrap_or_else(|e| panic!("create: {e}"))
            })
            .collect()
    }

    fn field(node: &mut Node, id: &str, f: &str) -> serde_json::Value {
        node.show(id).unwrap_or_else(|e| panic!("{e}"))[f].clone()
    }

    #[test]
    fn refused_tickets_are_named_with_a_code_and_the_others_apply() {
        let (_dir, mut node) = node();
        let ids = create(&mut node, 20);
        // 20 ids over 16 hex digits: two share their first character.
        let shared = ids
            .iter()
            .find(|a| ids.iter().filter(|b| b[..1] == a[..1]).count() > 1)
            .map(|a| a[..1].to_string())
            .unwrap_or_else(|| panic!("no shared first digit"));
        let (open1, open2, closed) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
        node.edit(&closed, &[Edit::Status(Status::Closed)]).unwrap_or_else(|e| panic!("{e}"));
        let given =
            vec![open1[..8].to_string(), "ffffffff-none".to_string(), closed.clone(), shared.clone(), open2.clone()];
        let edit =
            BulkEdit { assignee: Some(Some("bob".into())), priority: Some(Priority::Urgent), ..BulkEdit::default() };
        let out = node.bulk_edit(&given, &edit).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.applied, vec![open1.clone(), open2.clone()]);
        let refused: Vec<(&str, &str)> = out.refused.iter().map(|r| (r.id.as_str(), r.code.as_str())).collect();
        assert_eq!(
            refused,
            vec![("ffffffff-none", "not_found"), (closed.as_str(), "closed"), (shared.as_str(), "ambiguous")]
        );
        assert!(!out.all_applied());
        for id in [&open1, &open2] {
            assert_eq!(field(&mut node, id, "assignee"), "bob");
            assert_eq!(field(&mut node, id, "priority"), "urgent");
        }
        assert_eq!(field(&mut node, &closed, "assignee"), serde_json::Value::Null);
        assert_eq!(field(&mut node, &closed, "priority"), "low");
        // Nothing else moved.
        for id in &ids[3..] {
            assert_eq!(field(&mut node, id, "priority"), "low", "{id}");
        }
    }

    #[test]
    fn a_value_outside_the_taxonomy_refuses_every_ticket_by_name() {
        let (_dir, mut node) = node();
        let ids = create(&mut node, 3);
        let edit = BulkEdit { category: Some("plumbing".into()), ..BulkEdit::default() };
        let out = node.bulk_edit(&ids, &edit).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.applied.is_empty());
        assert_eq!(out.refused.len(), 3);
        assert!(out.refused.iter().all(|r| r.code == "unknown_category" && r.error.contains("plumbing")));
        for id in &ids {
            assert_eq!(field(&mut node, id, "category"), "hardware");
        }
    }

    #[test]
    fn a_ticket_already_so_applies_unchanged_and_a_repeated_id_counts_once() {
        let (_dir, mut node) = node();
        let ids = create(&mut node, 2);
        node.edit(&ids[0], &[Edit::Status(Status::Resolved)]).unwrap_or_else(|e| panic!("{e}"));
        let given = vec![ids[0].clone(), ids[1].clone(), ids[0][..6].to_string()];
        let out = node
            .bulk_edit(&given, &BulkEdit { status: Some(Status::Resolved), ..BulkEdit::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.applied, vec![ids[0].clone(), ids[1].clone()]);
        assert_eq!(out.unchanged, vec![ids[0].clone()]);
        assert!(out.all_applied());
        // Closing in the same edit as another field: the field first.
        let out = node
            .bulk_edit(
                &ids,
                &BulkEdit { status: Some(Status::Closed), priority: Some(Priority::High), ..BulkEdit::default() },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.all_applied(), "{out:?}");
        assert_eq!(field(&mut node, &ids[1], "priority"), "high");
        assert_eq!(field(&mut node, &ids[1], "status"), "closed");
    }

    #[test]
    fn an_empty_or_oversized_bulk_edit_is_refused_whole() {
        let (_dir, mut node) = node();
        let ids = create(&mut node, 1);
        let set = BulkEdit { priority: Some(Priority::High), ..BulkEdit::default() };
        assert!(matches!(node.bulk_edit(&ids, &BulkEdit::default()), Err(NodeError::BadBulk(_))));
        assert!(matches!(node.bulk_edit(&[], &set), Err(NodeError::BadBulk(_))));
        let many = vec![ids[0].clone(); BULK_IDS_MAX + 1];
        assert!(matches!(node.bulk_edit(&many, &set), Err(NodeError::BadBulk(_))));
        assert_eq!(field(&mut node, &ids[0], "priority"), "low");
    }
}
