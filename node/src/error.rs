//! Errors of the node, as a user meets them.

use std::path::PathBuf;

use tickets_core::edit::EditError;
use tickets_core::DocError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no node at {0}")]
    NotInitialized(PathBuf),
    #[error("a node already exists at {0}")]
    AlreadyInitialized(PathBuf),
    #[error("no ticket matches '{0}'")]
    NotFound(String),
    #[error("'{prefix}' matches {count} tickets; type more of the id")]
    Ambiguous { prefix: String, count: usize },
    #[error("conversation '{conversation}' already has ticket {ticket}")]
    ConversationExists { conversation: String, ticket: String },
    #[error("{0}")]
    Edit(#[from] EditError),
    /// Over one of the relay's limits (as last synced, else the defaults).
    #[error("{0}")]
    OverLimit(#[from] tickets_core::limits::OverLimit),
    #[error("ticket {id}: {source}")]
    Doc { id: String, source: DocError },
    #[error("category '{0}' is not in the relay's taxonomy ({1})")]
    UnknownCategory(String, String),
    #[error("assignee '{assignee}' is not an agent or team the relay knows")]
    UnknownAssignee { assignee: String, known: Vec<String> },
    #[error("agent '{0}' may not write internal notes")]
    NotesForbidden(String),
    #[error("internal notes are still being pulled from the relay; run `tickets sync` first")]
    NotesRestoring,
    #[error("import record {record}: {message}")]
    Import { record: usize, message: String },
    #[error("import file: {0}")]
    ImportFile(String),
    #[error("invalid clock offset '{0}' in TICKETS_CLOCK_OFFSET (expected e.g. +2h or -90m, at most 3650d)")]
    BadClockOffset(String),
    #[error("{0}")]
    View(#[from] crate::views::ViewError),
    #[error("{0}")]
    BadBulk(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("database {path}: {source}")]
    Db { path: PathBuf, source: rusqlite::Error },
    #[error("database {path} is damaged: {message}")]
    Corrupt { path: PathBuf, message: String },
}
