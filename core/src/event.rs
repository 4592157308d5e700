//! The events that make up a ticket's timeline, and their stored encoding.
//!
//! Each event is one entry of the document's `events` map: the key is the
//! event's clock stamp (unique per replica, sorting like the stamp) and the
//! value is a compact JSON string. One string per event keeps documents
//! small (one operation instead of one per field) and makes the encoding
//! explicit and versioned. Decoding never panics: an entry that does not
//! decode is reported by the view as a problem and otherwise ignored.

use serde::{Deserialize, Serialize};

/// Encoding version written into every event.
pub const EVENT_VERSION: u32 = 1;

/// Fields whose edits are last-writer-wins by clock stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    Subject,
    Priority,
    Category,
    Assignee,
    Status,
}

impl Field {
    pub const ALL: [Field; 5] = [Field::Subject, Field::Priority, Field::Category, Field::Assignee, Field::Status];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::Priority => "priority",
            Field::Category => "category",
            Field::Assignee => "assignee",
            Field::Status => "status",
        }
    }
}

/// What happened. Values are kept as text here and validated by the view,
/// so a malformed value from another replica is flagged, not fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "kebab-case")]
pub enum EventBody {
    Create {
        subject: String,
        priority: String,
        category: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
    },
    Set {
        field: Field,
        /// `None` clears the field (only valid for the assignee).
        #[serde(default)]
        to: Option<String>,
        /// Key of the edit of this field that the author's replica showed
        /// as current when the edit was made; how the view tells a
        /// concurrent (superseded) edit from a sequential one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prev: Option<String>,
    },
    Description,
    Comment {
        body: String,
    },
    Note {
        body: String,
    },
}

/// An event as stored: who, and what. Its order is the map key (a clock
/// stamp); `at` is when its device's own clock says it was written, which
/// is what people read and what the SLA counts (the stamp may have been
/// pushed ahead by a faster clock elsewhere; see [`crate::hlc`]). Events
/// written before `at` existed fall back to the stamp's wall time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub v: u32,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(flatten)]
    pub body: EventBody,
}

impl StoredEvent {
    pub fn new(by: impl Into<String>, body: EventBody) -> StoredEvent {
        StoredEvent { v: EVENT_VERSION, by: by.into(), at: None, body }
    }

    /// The event with the time its device's clock read when it was written.
    pub fn written_at(mut self, at_ms: i64) -> StoredEvent {
        self.at = Some(at_ms);
        self
    }

    pub fn is_creation(&self) -> bool {
        matches!(self.body, EventBody::Create { .. })
    }

    pub fn encode(&self) -> String {
        // Serializing plain strings and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(s: &str) -> Result<StoredEvent, String> {
        let ev: StoredEvent = serde_json::from_str(s).map_err(|e| format!("undecodable event: {e}"))?;
        if ev.v != EVENT_VERSION {
            return Err(format!("unknown event version {}", ev.v));
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let ev = StoredEvent::new(
            "ana",
            EventBody::Set { field: Field::Status, to: Some("resolved".into()), prev: Some("k".into()) },
        );
        let s = ev.encode();
        assert_eq!(StoredEvent::decode(&s), Ok(ev));
        assert!(StoredEvent::decode("{").is_err());
        assert!(StoredEvent::decode(r#"{"v":9,"by":"a","k":"description"}"#).is_err());
        assert!(StoredEvent::decode(r#"{"v":1,"by":"a","k":"explode"}"#).is_err());
        assert!(StoredEvent::decode(r#"{"v":1,"by":"a","k":"set","field":"colour","to":"x"}"#).is_err());
    }
}
