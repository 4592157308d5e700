//! Saved views: a name for a list's filters, sort and search, kept per
//! agent in the node's database so that a view chosen once sticks (in the
//! CLI as `tickets list --view NAME`, in the app beside the fixed views).
//!
//! A view is stored as the same key/value pairs a list query is read from
//! (`ListQuery::from_pairs`, the app's URL parameters), so the CLI, the app
//! and the database share one form. Only filter, sort and search keys are
//! kept: a page or a limit is where a person was, not what they look at.
//! The SQL lives here, on the node's transaction, in a table of its own.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tickets_core::index::ListQuery;
use unicode_normalization::UnicodeNormalization;

use crate::error::NodeError;
use crate::store::{DbContext, Tx};

/// Longest view name, in characters (after NFC normalization).
pub const VIEW_NAME_CHARS_MAX: usize = 64;
/// Most saved views per agent on one node.
pub const VIEWS_MAX: usize = 100;
/// Most key/value pairs in one view.
pub const VIEW_PAIRS_MAX: usize = 32;
/// Longest value of one pair, in bytes.
pub const VIEW_VALUE_BYTES_MAX: usize = 1024;

/// The keys a saved view may hold, in the words of the list's filters.
pub const VIEW_KEYS: &[&str] = &["status", "priority", "category", "assignee", "sla", "search", "sort"];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS saved_views (
    agent TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The pairs as a JSON array of [key, value] arrays.
    pairs TEXT NOT NULL,
    saved_at INTEGER NOT NULL,
    PRIMARY KEY (agent, name)
) WITHOUT ROWID;
";

/// Creates the saved views' table when missing (called when the store
/// opens).
pub(crate) fn schema(c: &Connection, path: &std::path::Path) -> Result<(), NodeError> {
    c.execute_batch(SCHEMA).db(path)
}

/// Why a view was refused; each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("view name '{0}' must be 1 to {VIEW_NAME_CHARS_MAX} characters without control characters")]
    BadName(String),
    #[error("no saved view named '{0}'")]
    NotFound(String),
    /// A filter the list does not know, or a value it refuses: `field` is
    /// the filter's name.
    #[error("filter '{field}': {message}")]
    BadFilter { field: String, message: String },
    #[error("a view holds at most {VIEW_PAIRS_MAX} filters")]
    TooManyFilters,
    #[error("this node keeps at most {VIEWS_MAX} saved views; delete one first")]
    TooMany,
}

impl ViewError {
    /// The stable code of the refusal, for scripts and the app.
    pub fn code(&self) -> &'static str {
        match self {
            ViewError::BadName(_) => "bad_view_name",
            ViewError::NotFound(_) => "not_found",
            ViewError::BadFilter { .. } => "bad_filter",
            ViewError::TooManyFilters | ViewError::TooMany => "limit",
        }
    }

    /// The next step, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            ViewError::NotFound(_) => Some("`tickets view list` shows the saved views".into()),
            ViewError::BadFilter { field, .. } if !VIEW_KEYS.contains(&field.as_str()) => {
                Some(format!("a view may hold {}", VIEW_KEYS.join(", ")))
            }
            _ => None,
        }
    }
}

/// A saved view: its name and the list's key/value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedView {
    pub name: String,
    /// `[key, value]` pairs, as `ListQuery::from_pairs` and the app's URL
    /// read them (`new URLSearchParams(view.filters)` in a page).
    pub filters: Vec<(String, String)>,
    /// When it was last saved (RFC 3339).
    pub saved_at: String,
}

impl SavedView {
    /// The list query the view stands for.
    pub fn query(&self) -> Result<ListQuery, ViewError> {
        check_pairs(&self.filters)
    }
}

/// The canonical form of a view name: trimmed, NFC, 1 to
/// [`VIEW_NAME_CHARS_MAX`] characters, no control characters.
pub fn canonical_name(name: &str) -> Result<String, ViewError> {
    let n: String = name.trim().nfc().collect();
    let chars = n.chars().count();
    if chars == 0 || chars > VIEW_NAME_CHARS_MAX || n.chars().any(char::is_control) {
        return Err(ViewError::BadName(name.chars().take(VIEW_NAME_CHARS_MAX + 1).collect()));
    }
    Ok(n)
}

/// Checks a view's pairs: known keys only, values the list accepts, within
/// the limits. Returns the query they make.
pub fn check_pairs(pairs: &[(String, String)]) -> Result<ListQuery, ViewError> {
    if pairs.len() > VIEW_PAIRS_MAX {
        return Err(ViewError::TooManyFilters);
    }
    for (k, v) in pairs {
        if !VIEW_KEYS.contains(&k.as_str()) {
            let shown: String = k.chars().take(64).map(|c| if c.is_control() { '?' } else { c }).collect();
            return Err(ViewError::BadFilter {
                field: shown,
                message: format!("not a filter a view can hold ({})", VIEW_KEYS.join(", ")),
            });
        }
        if v.len() > VIEW_VALUE_BYTES_MAX || v.chars().any(char::is_control) {
            return Err(ViewError::BadFilter {
                field: k.clone(),
                message: format!("the value must be at most {VIEW_VALUE_BYTES_MAX} bytes without control characters"),
            });
        }
    }
    ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ViewError::BadFilter { field: e.field, message: e.message })
}

impl Tx<'_> {
    /// Saves (or replaces) a view of `agent`; true when it replaced one.
    pub(crate) fn save_view(
        &self,
        agent: &str,
        name: &str,
        pairs: &[(String, String)],
        at: i64,
    ) -> Result<bool, NodeError> {
        let (tx, path) = self.sql();
        let exists: bool = tx
            .query_row("SELECT 1 FROM saved_views WHERE agent = ?1 AND name = ?2", params![agent, name], |_| Ok(()))
            .optional()
            .db(path)?
            .is_some();
        if !exists {
            let n: i64 =
                tx.query_row("SELECT count(*) FROM saved_views WHERE agent = ?1", [agent], |r| r.get(0)).db(path)?;
            if n as usize >= VIEWS_MAX {
                return Err(ViewError::TooMany.into());
            }
        }
        let json = serde_json::to_string(pairs).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO saved_views (agent, name, pairs, saved_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (agent, name) DO UPDATE SET pairs = excluded.pairs, saved_at = excluded.saved_at",
            params![agent, name, json, at],
        )
        .db(path)?;
        Ok(exists)
    }

    /// `agent`'s saved views, by name.
    pub(crate) fn views(&self, agent: &str) -> Result<Vec<SavedView>, NodeError> {
        let (tx, path) = self.sql();
        let mut st = tx
            .prepare_cached("SELECT name, pairs, saved_at FROM saved_views WHERE agent = ?1 ORDER BY name")
            .db(path)?;
        let rows = st
            .query_map([agent], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
            .db(path)?;
        let rows = rows.collect::<Result<Vec<_>, _>>().db(path)?;
        Ok(rows.into_iter().map(|(name, pairs, at)| view_of(name, &pairs, at)).collect())
    }

    /// One of `agent`'s saved views.
    pub(crate) fn view(&self, agent: &str, name: &str) -> Result<Option<SavedView>, NodeError> {
        let (tx, path) = self.sql();
        let row = tx
            .query_row(
                "SELECT name, pairs, saved_at FROM saved_views WHERE agent = ?1 AND name = ?2",
                params![agent, name],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
            )
            .optional()
            .db(path)?;
        Ok(row.map(|(name, pairs, at)| view_of(name, &pairs, at)))
    }

    /// Deletes one of `agent`'s views; false when there was none.
    pub(crate) fn delete_view(&self, agent: &str, name: &str) -> Result<bool, NodeError> {
        let (tx, path) = self.sql();
        let n = tx.execute("DELETE FROM saved_views WHERE agent = ?1 AND name = ?2", params![agent, name]).db(path)?;
        Ok(n > 0)
    }
}

/// A stored row as a view. Pairs that no longer read as a list of pairs
/// (a damaged row) read as no filters; [`SavedView::query`] checks the rest.
fn view_of(name: String, pairs: &str, at: i64) -> SavedView {
    SavedView {
        name,
        filters: serde_json::from_str(pairs).unwrap_or_default(),
        saved_at: tickets_core::time::iso_i64(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names_are_trimmed_and_nfc_and_bounded() {
        // "Café" typed with a combining accent is the same name as with é.
        assert_eq!(canonical_name("  Cafe\u{301} ").ok().as_deref(), Some("Caf\u{e9}"));
        assert!(canonical_name("").is_err());
        assert!(canonical_name("   ").is_err());
        assert!(canonical_name("a\u{7}b").is_err());
        assert!(canonical_name("line\nbreak").is_err());
        assert!(canonical_name(&"x".repeat(VIEW_NAME_CHARS_MAX)).is_ok());
        assert!(canonical_name(&"x".repeat(VIEW_NAME_CHARS_MAX + 1)).is_err());
        // Characters, not bytes: 64 two-byte letters fit.
        assert!(canonical_name(&"é".repeat(VIEW_NAME_CHARS_MAX)).is_ok());
    }

    #[test]
    fn a_view_names_the_filter_it_refuses() {
        let field = |p: &[(&str, &str)]| match check_pairs(&pairs(p)) {
            Err(ViewError::BadFilter { field, .. }) => field,
            other => panic!("{p:?}: {other:?}"),
        };
        assert_eq!(field(&[("colour", "red")]), "colour");
        assert_eq!(field(&[("status", "open"), ("status", "pending")]), "status");
        assert_eq!(field(&[("priority", "huge")]), "priority");
        assert_eq!(field(&[("sla", "purple")]), "sla");
        assert_eq!(field(&[("sort", "mood")]), "sort");
        // A page or a limit is not part of a view.
        assert_eq!(field(&[("limit", "5")]), "limit");
        assert_eq!(field(&[("search", "a\u{0}b")]), "search");
    }

    #[test]
    fn a_view_reads_as_the_list_query_of_its_pairs() {
        let q = check_pairs(&pairs(&[
            ("status", "open,in-progress"),
            ("assignee", "none"),
            ("sort", "-priority"),
            ("search", "printer"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.statuses, vec!["open", "in-progress"]);
        assert!(q.unassigned);
        assert_eq!(q.search.as_deref(), Some("printer"));
        assert!(q.sort.is_some());
        assert!(matches!(
            check_pairs(&vec![("status".into(), "open".into()); VIEW_PAIRS_MAX + 1]),
            Err(ViewError::TooManyFilters)
        ));
    }
}

/// Saved views on a node over a real SQLite file.
#[cfg(test)]
mod node_tests {
    use super::{ViewError, VIEWS_MAX};
    use crate::{Node, NodeError, WallClock};

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn views_are_saved_listed_replaced_and_deleted_by_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let home = dir.path().join("ana");
        let mut node = Node::init(&home, "ana", WallClock::with_offset_ms(0)).unwrap_or_else(|e| panic!("{e}"));
        let saved = node
            .save_view(" Urgent cafe\u{301} ", &pairs(&[("priority", "urgent"), ("sort", "-created")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(saved.name, "Urgent caf\u{e9}");
        node.save_view("Mine", &pairs(&[("assignee", "ana")])).unwrap_or_else(|e| panic!("{e}"));
        // Saving under the same name replaces.
        node.save_view("Mine", &pairs(&[("assignee", "ana"), ("status", "open")])).unwrap_or_else(|e| panic!("{e}"));
        drop(node);
        // Views stick: a new process (here: opening the node again) has them.
        let mut node = Node::open(&home, WallClock::with_offset_ms(0)).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = node.views().unwrap_or_else(|e| panic!("{e}")).into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["Mine", "Urgent caf\u{e9}"]);
        let mine = node.view("Mine").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mine.filters, pairs(&[("assignee", "ana"), ("status", "open")]));
        assert_eq!(mine.query().map(|q| q.statuses).ok(), Some(vec!["open".to_string()]));
        node.delete_view("Mine").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(node.view("Mine"), Err(NodeError::View(ViewError::NotFound(_)))));
        assert!(matches!(node.delete_view("Mine"), Err(NodeError::View(ViewError::NotFound(_)))));
    }

    #[test]
    fn a_bad_view_is_refused_with_its_filter_and_nothing_is_saved() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut node =
            Node::init(&dir.path().join("ana"), "ana", WallClock::with_offset_ms(0)).unwrap_or_else(|e| panic!("{e}"));
        match node.save_view("Odd", &pairs(&[("status", "open"), ("mood", "calm")])) {
            Err(NodeError::View(ViewError::BadFilter { field, .. })) => assert_eq!(field, "mood"),
            other => panic!("{other:?}"),
        }
        match node.save_view("Odd", &pairs(&[("status", "waiting")])) {
            Err(e @ NodeError::View(ViewError::BadFilter { .. })) => assert!(e.to_string().contains("'status'"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(node.save_view("a\tb", &[]), Err(NodeError::View(ViewError::BadName(_)))));
        assert!(node.views().unwrap_or_else(|e| panic!("{e}")).is_empty());
        for i in 0..VIEWS_MAX {
            node.save_view(&format!("v{i}"), &[]).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(matches!(node.save_view("one more", &[]), Err(NodeError::View(ViewError::TooMany))));
        // Replacing one at the limit is fine.
        assert!(node.save_view("v0", &pairs(&[("sla", "red")])).is_ok());
    }
}
