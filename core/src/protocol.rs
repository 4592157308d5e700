//! The sync protocol's wire types (version [`PROTOCOL_VERSION`]): a
//! serialization boundary, versioned, shared by node and relay.
//!
//! One endpoint, `POST /v1/sync`, carries both directions in rounds: each
//! request pushes a page of local documents' new changes and asks for a page
//! of what changed on the relay since the device's cursor. A node loops until
//! it has nothing to push and the relay has nothing more to send, so an idle
//! sync is one small request whatever the number of tickets.
//!
//! Pull has two modes. A fresh device (cursor 0) **bootstraps**: it pages
//! through compacted documents in id order, then adopts the relay's sequence
//! number as its cursor. A device with a cursor **catches up**: it receives
//! only the changes logged after its cursor, grouped per document.
//! Document data is Automerge bytes (a saved document, or concatenated
//! changes) in base64; both load with `load_incremental`.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of these types.
pub const PROTOCOL_VERSION: u32 = 1;
/// The relay refuses request bodies larger than this (413).
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// A node fills a push page up to this many bytes of document data.
pub const PUSH_PAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// A node pushes at most this many documents per request.
pub const PUSH_PAGE_DOCS_MAX: usize = 1000;
/// The relay fills a pull page up to about this many bytes.
pub const PULL_PAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The relay sends at most this many documents per pull page.
pub const PULL_PAGE_DOCS_MAX: usize = 1000;
/// A node stops a sync after this many rounds and says so; the next sync
/// resumes where it stopped.
pub const SYNC_ROUNDS_MAX: usize = 100_000;
/// How long the relay holds a watch request open when nothing changes.
pub const WATCH_HOLD_SECS: u64 = 25;

/// One document's data, either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocData {
    pub id: String,
    /// `ticket` or `notes`.
    pub kind: String,
    /// Base64 of Automerge bytes.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    /// The device's Automerge actor, in hex.
    pub device: String,
    /// The device's wall clock when it sent the request (epoch ms), from
    /// which the relay measures the device's clock offset.
    pub clock_ms: i64,
    #[serde(default)]
    pub push: Vec<DocData>,
    /// `None`: push only.
    #[serde(default)]
    pub pull: Option<PullRequest>,
    /// The inbox's own cursor (SPEC §10); `None` (an older node): no inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxPull>,
}

/// Asks for the inbox conversations changed after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPull {
    /// The inbox sequence number up to which this device holds everything.
    pub cursor: u64,
}

/// One page of inbox conversations, each whole as the relay holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPage {
    pub conversations: Vec<crate::inbox::InboxConversation>,
    /// Adopt this cursor once the page is stored.
    pub cursor: u64,
    /// More is waiting: ask again.
    pub more: bool,
}

/// The relay sends at most this many inbox conversations per page.
pub const INBOX_PAGE_CONVERSATIONS_MAX: usize = 1000;
/// The relay fills an inbox page up to about this many bytes.
pub const INBOX_PAGE_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// The relay sequence number up to which this device holds everything.
    pub cursor: u64,
    /// False until the device has finished its first (bootstrap) pull; a
    /// device that has not bootstraps whatever its cursor.
    #[serde(default)]
    pub bootstrapped: bool,
    /// While bootstrapping: the last (id, kind) received, and the sequence
    /// number the bootstrap started at.
    #[serde(default)]
    pub bootstrap: Option<BootstrapPos>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapPos {
    pub after_id: String,
    pub after_kind: String,
    pub target: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u32,
    /// The relay's wall clock (epoch ms).
    pub relay_ms: i64,
    pub pushed: Vec<PushResult>,
    #[serde(default)]
    pub pull: Option<PullPage>,
    /// The settings nodes validate against (sent when asked to pull).
    #[serde(default)]
    pub settings: Option<Settings>,
    /// What this device's agent may do, as of now.
    pub access: Access,
    /// The relay database's epoch. A new epoch means the relay was restored
    /// from a backup: the device pulls everything again and pushes
    /// everything it has (the relay ignores what it already holds).
    #[serde(default)]
    pub epoch: String,
    /// Set when the whole push was refused (the status is then 403 or 400,
    /// and the body still carries the per-document results and the pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The code of `error` (`forbidden` or `invalid_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The inbox page, when the request asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxPage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResult {
    pub id: String,
    pub kind: String,
    pub accepted: bool,
    /// Why a refused document was refused.
    #[serde(default)]
    pub reason: Option<String>,
    /// The refusal's stable code (see `change_policy::RefusalCode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The relay's heads for the document after the push (hex hashes).
    #[serde(default)]
    pub heads: Vec<String>,
    /// For an accepted document (ticket or notes): the relay's SLA input for
    /// its ticket, so the pushing device shows authoritative figures at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<RawSlaInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullPage {
    pub docs: Vec<DocData>,
    /// Adopt this cursor once the page is stored.
    pub cursor: u64,
    /// Continue bootstrapping from here (`None`: bootstrap done or not
    /// bootstrapping).
    #[serde(default)]
    pub bootstrap: Option<BootstrapPos>,
    /// More is waiting: ask again.
    pub more: bool,
    /// The authoritative SLA object of each ticket in this page, by id.
    #[serde(default)]
    pub sla: Vec<(String, RawSlaInput)>,
}

/// A ticket's SLA input as JSON text, passed through as it is stored: the
/// relay sends thousands per pull page and parsing each one only to write
/// it out again was a fifth of a pull's cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawSlaInput(pub Box<serde_json::value::RawValue>);

impl RawSlaInput {
    /// Wraps stored JSON text; `None` if it is not JSON.
    pub fn from_text(text: String) -> Option<RawSlaInput> {
        serde_json::value::RawValue::from_string(text).ok().map(RawSlaInput)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawSlaInput {
    fn eq(&self, other: &RawSlaInput) -> bool {
        self.get() == other.get()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub agent: String,
    pub role: String,
    pub internal_notes: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub categories: Vec<String>,
    pub teams: Vec<String>,
    /// The relay's active agents, by name only, so that a node can check an
    /// assignee as it checks a category (an older relay sends none).
    #[serde(default)]
    pub agents: Vec<String>,
    /// The same agents with their teams, for the app's assignee field: names
    /// and teams only, never tokens or roles (an older relay sends none).
    #[serde(default)]
    pub directory: Vec<DirectoryEntry>,
    pub sla: crate::sla::SlaSettings,
    /// The limits in force (an older relay sends none: the defaults).
    #[serde(default)]
    pub limits: crate::limits::Limits,
}

/// One active agent as devices see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub name: String,
    pub team: Option<String>,
}

/// `POST /v1/sync/register`: binds a device actor to the token's agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub protocol: u32,
    pub device: String,
    /// The agent the device belongs to, when it already belongs to one: the
    /// relay refuses, without binding the device, a token of another agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub protocol: u32,
    pub access: Access,
    pub team: Option<String>,
    pub settings: Settings,
}

/// Error bodies of the relay: `{"error": "...", "code": "..."}`. The
/// code is one of [`ErrorCode`] (kept as text on the wire, so that a node
/// reads a code added by a newer relay as "unknown" instead of failing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, error: impl Into<String>) -> ErrorBody {
        ErrorBody { error: error.into(), code: code.as_str().to_string() }
    }

    /// The body's code, when this build knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $name:ident = $text:literal,)*) => {
        /// Every stable code of the relay's error bodies: the relay answers
        /// with these and the node matches on them (never on the English
        /// message, which may be reworded).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $name,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The code as it is on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $text,)*
                }
            }

            /// The code of a wire string (`None` for a code this build does
            /// not know).
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s {
                    $($text => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// A malformed request: query parameters, JSON body or fields.
    BadRequest = "bad_request",
    /// The request body could not be read.
    BadBody = "bad_body",
    /// A path parameter is not valid (or not UTF-8 once decoded).
    BadPath = "bad_path",
    /// The request line or headers are not valid HTTP/1.1.
    BadRequestHead = "bad_request_head",
    /// Missing, unknown or revoked bearer token.
    Unauthorized = "unauthorized",
    /// The caller may not do this (a push whose every document was
    /// forbidden, an export by an agent who is not a lead).
    Forbidden = "forbidden",
    /// The device belongs to another agent than the token's.
    WrongAgent = "wrong_agent",
    /// The device is already registered to another agent.
    DeviceTaken = "device_taken",
    /// The device is not registered to the token's agent.
    DeviceUnregistered = "device_unregistered",
    /// An id is not in its canonical form.
    NonCanonicalId = "non_canonical_id",
    /// The device's clock is too far from the relay's.
    ClockSkew = "clock_skew",
    /// The request speaks another protocol version.
    ProtocolVersion = "protocol_version",
    /// A push whose every document was invalid.
    InvalidData = "invalid_data",
    /// No such ticket or endpoint.
    NotFound = "not_found",
    /// A ticket id prefix matches several tickets.
    Ambiguous = "ambiguous",
    /// The endpoint does not take this method.
    MethodNotAllowed = "method_not_allowed",
    /// The request body is over the size limit.
    TooLarge = "too_large",
    /// The request body stalled.
    BodyTimeout = "body_timeout",
    /// The request URI is over the limit.
    UriTooLong = "uri_too_long",
    /// The request head is over the limits.
    HeadersTooLarge = "headers_too_large",
    /// The relay failed; the body says nothing more (it is logged).
    Internal = "internal",
    /// The relay's database cannot be reached for now: retry later.
    Unavailable = "unavailable",
    /// A webhook body that is not JSON.
    MalformedJson = "malformed_json",
    /// A webhook body that is JSON but not a delivery this inbox reads.
    UnknownShape = "unknown_shape",
    /// A conversation that came through another inbox.
    OtherInbox = "other_inbox",
    /// Over the agent's or the inbox's write rate: retry after the
    /// `Retry-After` header's seconds (429).
    RateLimited = "rate_limited",
    /// Text a backend cannot store (U+0000), in a query parameter.
    TextUnstorable = "text_unstorable",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn encode_data(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode_data(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("document data is not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_reads_back_from_its_wire_text() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            assert!(c.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{c}");
        }
        assert_eq!(ErrorCode::parse("a_code_from_a_newer_relay"), None);
        let body: ErrorBody = serde_json::from_str(r#"{"error":"reworded","code":"clock_skew"}"#).unwrap();
        assert_eq!(body.error_code(), Some(ErrorCode::ClockSkew));
    }
}
