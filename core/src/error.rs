//! Errors of the core, one enum per fallible surface.

/// A value typed by a user or read from a file that the core cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("unknown priority '{0}' (expected low, medium, high or urgent)")]
    UnknownPriority(String),
    #[error("unknown status '{0}' (expected open, in-progress, resolved or closed)")]
    UnknownStatus(String),
    #[error("invalid {kind} name '{value}' (1 to 64 printable characters)")]
    BadName { kind: &'static str, value: String },
    #[error("invalid duration '{0}' (a number needs a unit, largest first: 90s, 45m, 3min, 4h, 2d, 1h30m)")]
    BadDuration(String),
    #[error("{field} is too long ({len} bytes, at most {max})")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Text no backend can store (see [`crate::text`]).
    #[error("{field} holds a character that cannot be stored (U+0000); remove it")]
    Unstorable { field: &'static str },
}

/// A stored or received Automerge document that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("empty document bytes")]
    Empty,
    #[error("corrupt document: {0}")]
    Corrupt(String),
    #[error("document is not a tickets document: {0}")]
    Schema(String),
    #[error("document is missing changes it depends on")]
    MissingDeps,
}

impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> Self {
        DocError::Corrupt(e.to_string())
    }
}
