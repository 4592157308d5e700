//! The named limits on what one ticket document may hold and how fast one
//! agent or one inbox may write, as the relay's operator sets them
//! (`tickets relay limits`), with generous defaults.
//!
//! Documents: the bytes of the stored (saved) document, the number of
//! comments it holds (internal notes in a notes document), and the bytes of
//! one comment. The relay refuses a pushed document that would break one of
//! them, on its own, with a [`LimitCode`]; a node refuses the same edit
//! before writing anything, with the limits the relay last sent (these
//! defaults before its first sync), so an agent learns at once instead of
//! at the next sync.
//!
//! Rates: writes per minute per agent (documents pushed) and per inbox
//! (webhook deliveries), enforced by the relay as token buckets (see
//! `relay/src/rate.rs`).

use serde::{Deserialize, Serialize};

use crate::event::{EventBody, StoredEvent};
use crate::view::BODY_BYTES_MAX;

/// Default: the most bytes a stored ticket document may take. A typical
/// ticket is a few KiB; this holds thousands of ordinary comments, and a
/// ticket at the limit still fits one pull page.
pub const DOC_BYTES_DEFAULT: u64 = crate::protocol::PULL_PAGE_BYTES_MAX as u64;
/// Default: the most comments (notes, in a notes document) one document
/// may hold.
pub const COMMENTS_DEFAULT: u64 = 2_000;
/// Default: the most bytes one comment or note may take (the hard limit of
/// any body).
pub const COMMENT_BYTES_DEFAULT: u64 = BODY_BYTES_MAX as u64;
/// Default: documents one agent (role `agent`) may push per minute. The
/// bucket holds one minute's worth, so a device back from days offline
/// with a few thousand tickets' edits pushes them in its first sync; a
/// script flooding 50 000 tickets through one agent's token takes minutes
/// instead of seconds. Leads and admins have no rate, so a lead's bulk
/// import passes.
pub const AGENT_WRITES_PER_MIN_DEFAULT: u64 = 6_000;
/// Default: webhook deliveries one inbox may make per minute.
pub const INBOX_WRITES_PER_MIN_DEFAULT: u64 = 3_000;

/// The highest document limit an operator may set: a document this large
/// is already what every device downloads whole.
pub const DOC_BYTES_CEILING: u64 = 64 * 1024 * 1024;
/// The highest comment count an operator may set.
pub const COMMENTS_CEILING: u64 = 100_000;
/// The highest rate an operator may set (per minute).
pub const WRITES_PER_MIN_CEILING: u64 = 1_000_000;

/// The limits in force, as the relay stores them and sends them to devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub doc_bytes: u64,
    pub comments: u64,
    pub comment_bytes: u64,
    pub agent_writes_per_min: u64,
    pub inbox_writes_per_min: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            doc_bytes: DOC_BYTES_DEFAULT,
            comments: COMMENTS_DEFAULT,
            comment_bytes: COMMENT_BYTES_DEFAULT,
            agent_writes_per_min: AGENT_WRITES_PER_MIN_DEFAULT,
            inbox_writes_per_min: INBOX_WRITES_PER_MIN_DEFAULT,
        }
    }
}

/// A limit an operator tried to set out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be between {min} and {max}, not {value}")]
pub struct BadLimit {
    pub name: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl Limits {
    /// Every limit within its range (1 up to its ceiling; a comment never
    /// over the hard body limit).
    pub fn check(&self) -> Result<(), BadLimit> {
        let ranges: [(&'static str, u64, u64); 5] = [
            ("doc-bytes", self.doc_bytes, DOC_BYTES_CEILING),
            ("comments", self.comments, COMMENTS_CEILING),
            ("comment-bytes", self.comment_bytes, BODY_BYTES_MAX as u64),
            ("agent-writes-per-min", self.agent_writes_per_min, WRITES_PER_MIN_CEILING),
            ("inbox-writes-per-min", self.inbox_writes_per_min, WRITES_PER_MIN_CEILING),
        ];
        for (name, value, max) in ranges {
            if value < 1 || value > max {
                return Err(BadLimit { name, value, min: 1, max });
            }
        }
        Ok(())
    }
}

/// Which document limit was broken: a stable code the relay answers with
/// (per document in a push) and the node names in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitCode {
    DocTooLarge,
    TooManyComments,
    CommentTooLarge,
}

impl LimitCode {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitCode::DocTooLarge => "doc_too_large",
            LimitCode::TooManyComments => "too_many_comments",
            LimitCode::CommentTooLarge => "comment_too_large",
        }
    }
}

/// A document over a limit: which, how much, and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct OverLimit {
    pub code: LimitCode,
    pub value: u64,
    pub max: u64,
}

impl OverLimit {
    fn message(&self) -> String {
        match self.code {
            LimitCode::DocTooLarge => {
                format!("the ticket would take {} bytes, over the limit of {} bytes", self.value, self.max)
            }
            LimitCode::TooManyComments => {
                format!("the ticket would hold {} comments, over the limit of {}", self.value, self.max)
            }
            LimitCode::CommentTooLarge => {
                format!("a comment of {} bytes is over the limit of {} bytes", self.value, self.max)
            }
        }
    }
}

impl From<OverLimit> for crate::change_policy::Refusal {
    fn from(o: OverLimit) -> Self {
        use crate::change_policy::RefusalCode;
        let code = match o.code {
            LimitCode::DocTooLarge => RefusalCode::DocTooLarge,
            LimitCode::TooManyComments => RefusalCode::TooManyComments,
            LimitCode::CommentTooLarge => RefusalCode::CommentTooLarge,
        };
        crate::change_policy::Refusal::new(code, o.to_string())
    }
}

/// One comment's (or note's) body against the per-comment limit.
pub fn check_comment(body_bytes: usize, limits: &Limits) -> Result<(), OverLimit> {
    let value = body_bytes as u64;
    if value > limits.comment_bytes {
        return Err(OverLimit { code: LimitCode::CommentTooLarge, value, max: limits.comment_bytes });
    }
    Ok(())
}

/// A document's stored size against the byte limit.
pub fn check_doc_bytes(bytes: usize, limits: &Limits) -> Result<(), OverLimit> {
    let value = bytes as u64;
    if value > limits.doc_bytes {
        return Err(OverLimit { code: LimitCode::DocTooLarge, value, max: limits.doc_bytes });
    }
    Ok(())
}

/// A document's comment count against its limit.
pub fn check_comments(count: usize, limits: &Limits) -> Result<(), OverLimit> {
    let value = count as u64;
    if value > limits.comments {
        return Err(OverLimit { code: LimitCode::TooManyComments, value, max: limits.comments });
    }
    Ok(())
}

/// A merged document's events against the comment limits: how many
/// comments (or notes) it holds, and the body of each event whose key is in
/// `new_keys` (what this push adds: an older comment stays readable when an
/// operator lowers the limit). `events` is the document's raw events.
pub fn check_events<'a>(
    events: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    new_keys: &std::collections::HashSet<&str>,
    limits: &Limits,
) -> Result<(), OverLimit> {
    let mut comments = 0usize;
    for (key, value) in events {
        let Some(ev) = value.and_then(|v| StoredEvent::decode(v).ok()) else { continue };
        let body = match &ev.body {
            EventBody::Comment { body } | EventBody::Note { body } => body,
            _ => continue,
        };
        comments += 1;
        if new_keys.contains(key) {
            check_comment(body.len(), limits)?;
        }
    }
    check_comments(comments, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits { doc_bytes: 100, comments: 2, comment_bytes: 10, ..Limits::default() }
    }

    #[test]
    fn defaults_are_within_their_ranges_and_zero_is_not() {
        assert_eq!(Limits::default().check(), Ok(()));
        let zero = Limits { comments: 0, ..Limits::default() };
        assert_eq!(zero.check().map_err(|e| e.name), Err("comments"));
        let huge = Limits { comment_bytes: BODY_BYTES_MAX as u64 + 1, ..Limits::default() };
        assert_eq!(huge.check().map_err(|e| e.name), Err("comment-bytes"));
    }

    #[test]
    fn each_document_limit_refuses_one_over_with_its_code() {
        let l = small();
        assert_eq!(check_comment(10, &l), Ok(()));
        assert_eq!(check_comment(11, &l).map_err(|e| e.code), Err(LimitCode::CommentTooLarge));
        assert_eq!(check_doc_bytes(100, &l), Ok(()));
        assert_eq!(check_doc_bytes(101, &l).map_err(|e| e.code), Err(LimitCode::DocTooLarge));
        assert_eq!(check_comments(2, &l), Ok(()));
        assert_eq!(check_comments(3, &l).map_err(|e| e.code), Err(LimitCode::TooManyComments));
    }

    #[test]
    fn only_new_comments_are_held_to_the_comment_size() {
        let l = small();
        let long = StoredEvent::new("ana", EventBody::Comment { body: "x".repeat(20) }).encode();
        let short = StoredEvent::new("ana", EventBody::Comment { body: "hi".into() }).encode();
        let old = [("k1", Some(long.as_str()))];
        let none = std::collections::HashSet::new();
        assert_eq!(check_events(old, &none, &l), Ok(()));
        let new: std::collections::HashSet<&str> = ["k1"].into();
        assert_eq!(check_events(old, &new, &l).map_err(|e| e.code), Err(LimitCode::CommentTooLarge));
        let three = [("a", Some(short.as_str())), ("b", Some(short.as_str())), ("c", Some(short.as_str()))];
        assert_eq!(check_events(three, &none, &l).map_err(|e| e.code), Err(LimitCode::TooManyComments));
    }

    #[test]
    fn limits_from_an_older_relay_read_as_the_defaults() {
        let l: Limits = serde_json::from_str(r#"{"comments": 5}"#).unwrap_or_default();
        assert_eq!(l, Limits { comments: 5, ..Limits::default() });
    }
}
