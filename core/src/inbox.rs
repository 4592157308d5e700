//! The inbox (SPEC §10): webhook deliveries from chat tools turned into
//! normalized conversation updates, and the merge of those updates into the
//! conversation a relay stores and devices keep.
//!
//! Sans-IO: bytes in, values out. Two kinds of inbox:
//! - **chatwoot**: Chatwoot's `conversation_created`, `message_created` and
//!   `conversation_status_changed` events as Chatwoot documents them
//!   (fixtures in `tests/fixtures/chatwoot/`). `incoming` (0) messages are the
//!   customer's, `outgoing` (1) the agent's; private notes, `activity` (2)
//!   and `template` (3) messages (bots' forms) are not a person speaking and
//!   are left out. Any other event is ignored, so Chatwoot does not retry it.
//! - **generic**: the §1.2 conversation object, whole or with only its new
//!   messages.
//!
//! A delivery is merged by message id: a repeat changes nothing, and
//! deliveries that arrive out of order end in time order.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::conversation::{Conversation, Customer, Message, Prefill, Role};

/// A webhook body larger than this is refused whole (413).
pub const WEBHOOK_BODY_BYTES_MAX: usize = 256 * 1024;
/// A conversation keeps its latest this many messages; older ones drop out.
pub const MESSAGES_PER_CONVERSATION_MAX: usize = 200;
/// A message's text is cut to this many bytes (at a character boundary).
pub const MESSAGE_TEXT_BYTES_MAX: usize = 16 * 1024;
/// Names (customer, channel, sender) are cut to this many bytes.
pub const NAME_BYTES_MAX: usize = 256;
/// A conversation id (after the `chatwoot:NAME:` prefix) at most this long.
pub const CONVERSATION_ID_BYTES_MAX: usize = 256;
/// Devices keep conversations active within this many days, plus any with an
/// open ticket.
pub const RECENT_DAYS: i64 = 14;
pub const RECENT_MS: i64 = RECENT_DAYS * 86_400_000;

const NS_MESSAGE: Uuid = Uuid::from_u128(0x3b5e_91d2_7c04_4f8a_a6e1_0d97_24c3_b85f);

/// Which shape an inbox's webhook speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxKind {
    Chatwoot,
    Generic,
}

impl InboxKind {
    pub fn parse(s: &str) -> Option<InboxKind> {
        match s {
            "chatwoot" => Some(InboxKind::Chatwoot),
            "generic" => Some(InboxKind::Generic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InboxKind::Chatwoot => "chatwoot",
            InboxKind::Generic => "generic",
        }
    }
}

/// One message as an inbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxMessage {
    pub id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Plain text as the chat tool sent it: HTML stays text, never markup.
    pub text: String,
    pub at_ms: i64,
}

/// What one delivery says about one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub conversation_id: String,
    pub channel: Option<String>,
    pub customer: Option<String>,
    pub status: Option<String>,
    pub messages: Vec<InboxMessage>,
}

/// What a webhook delivery means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Update(Update),
    /// An event this product does not use (answered 200 so the chat tool
    /// does not retry it for ever).
    Ignored {
        event: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    #[error("the body is larger than {WEBHOOK_BODY_BYTES_MAX} bytes")]
    TooLarge,
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
}

fn shape(s: impl Into<String>) -> InboxError {
    InboxError::Shape(s.into())
}

/// A conversation as the relay stores it and devices keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxConversation {
    pub id: String,
    /// The inbox it arrived through.
    pub inbox: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// In time order (ties by id), at most [`MESSAGES_PER_CONVERSATION_MAX`].
    #[serde(default)]
    pub messages: Vec<InboxMessage>,
    /// When the relay first received the conversation (relay ms).
    pub created_ms: i64,
    /// When the relay last received something new for it (relay ms): what
    /// "recent" is measured by, whatever times the chat tool sent.
    pub active_ms: i64,
}

impl InboxConversation {
    pub fn new(id: &str, inbox: &str, now: i64) -> InboxConversation {
        InboxConversation {
            id: id.to_string(),
            inbox: inbox.to_string(),
            channel: None,
            customer: None,
            status: None,
            messages: Vec::new(),
            created_ms: now,
            active_ms: now,
        }
    }

    /// Merges one delivery; true if anything changed. A repeated delivery
    /// changes nothing, and the result does not depend on delivery order
    /// for messages (by id, kept in time order). Names and status take the
    /// latest delivery's value when it carries one.
    pub fn merge(&mut self, u: &Update) -> bool {
        let before = self.clone();
        for (field, v) in
            [(&mut self.channel, &u.channel), (&mut self.customer, &u.customer), (&mut self.status, &u.status)]
        {
            if let Some(v) = v {
                *field = Some(v.clone());
            }
        }
        for m in &u.messages {
            if !self.messages.iter().any(|have| have.id == m.id) {
                self.messages.push(m.clone());
            }
        }
        self.messages.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        let extra = self.messages.len().saturating_sub(MESSAGES_PER_CONVERSATION_MAX);
        self.messages.drain(..extra);
        *self != before
    }

    pub fn last_message(&self) -> Option<&InboxMessage> {
        self.messages.last()
    }

    /// The §1.2 conversation object, from which a ticket is made exactly as
    /// from a conversation file.
    pub fn to_conversation(&self) -> Conversation {
        Conversation {
            id: self.id.clone(),
            channel: self.channel.clone(),
            customer: Some(Customer { name: self.customer.clone() }),
            messages: self
                .messages
                .iter()
                .map(|m| Message {
                    from: m.from.clone(),
                    role: m.role,
                    text: m.text.clone(),
                    at: DateTime::<Utc>::from_timestamp_millis(m.at_ms)
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// Whether devices keep it at `now` (apart from an open ticket).
    pub fn is_recent(&self, now: i64) -> bool {
        self.active_ms >= now.saturating_sub(RECENT_MS)
    }
}

/// Reads one webhook delivery for the inbox `inbox` of kind `kind`.
pub fn parse_delivery(kind: InboxKind, inbox: &str, body: &[u8]) -> Result<Delivery, InboxError> {
    if body.len() > WEBHOOK_BODY_BYTES_MAX {
        return Err(InboxError::TooLarge);
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|e| InboxError::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(shape("the body must be a JSON object"));
    }
    // A customer's words are kept: what no backend can store (U+0000) is
    // replaced, not refused, so a chat tool's retry would not fail again.
    crate::text::normalise_json(&mut v);
    match kind {
        InboxKind::Chatwoot => chatwoot(inbox, &v),
        InboxKind::Generic => generic(inbox, &v).map(Delivery::Update),
    }
}

/// The id a device and the relay give a generic inbox's conversation: in
/// the inbox's own namespace, so a generic inbox cannot post another
/// inbox's (or a file's) conversation id.
pub fn generic_id(inbox: &str, id: &str) -> String {
    format!("generic:{inbox}:{id}")
}

/// Whether `prefill` is what `copy` (the relay's conversation) gives: the
/// prefill and link a device makes from the conversation as it held it,
/// which is the relay's copy as it was when the device last synced, so
/// the relay's messages up to some point in time. Recomputed and compared
/// byte for byte, so every quoted message and the agent reply that meets
/// first response are ones the relay holds.
pub fn check_prefill(copy: &InboxConversation, prefill: &Prefill) -> bool {
    let mut held = copy.clone();
    let full = copy.messages.len();
    // From the whole copy down to none: the device held the messages up to
    // the last one it quotes; later ones arrived after it synced.
    for n in (0..=full).rev() {
        held.messages.truncate(n);
        let conv = held.to_conversation();
        let (Ok(text), Ok(link)) = (conv.prefill(), conv.link()) else { continue };
        if text == prefill.text && link == prefill.link {
            return true;
        }
    }
    false
}

/// The id a device and the relay give a Chatwoot conversation.
pub fn chatwoot_id(inbox: &str, id: &str) -> String {
    format!("chatwoot:{inbox}:{id}")
}

fn chatwoot(inbox: &str, v: &Value) -> Result<Delivery, InboxError> {
    let event = match v.get("event") {
        Some(Value::String(e)) => e.clone(),
        Some(_) => return Err(shape("\"event\" must be a string")),
        None => {
            return Err(shape("no \"event\" field: is this a Chatwoot webhook? (expected e.g. \"message_created\")"))
        }
    };
    match event.as_str() {
        "conversation_created" | "conversation_status_changed" => {
            let mut u = chatwoot_conversation(inbox, v, "the conversation")?;
            let messages = match v.get("messages") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.iter().collect(),
                Some(_) => return Err(shape("\"messages\" must be an array")),
            };
            for (i, m) in messages.into_iter().enumerate() {
                if let Some(msg) = chatwoot_message(m).map_err(|e| shape(format!("messages[{i}]: {e}")))? {
                    u.messages.push(msg);
                }
            }
            Ok(Delivery::Update(u))
        }
        "message_created" => {
            let conv = match v.get("conversation") {
                Some(c @ Value::Object(_)) => c,
                _ => return Err(shape("message_created without a \"conversation\" object")),
            };
            let mut u = chatwoot_conversation(inbox, conv, "\"conversation\"")?;
            if u.channel.is_none() {
                u.channel = text_at(v, &["inbox", "name"]).map(|s| clip(&s, NAME_BYTES_MAX));
            }
            if u.customer.is_none() {
                u.customer = text_at(v, &["contact", "name"]).map(|s| clip(&s, NAME_BYTES_MAX));
            }
            u.messages.extend(chatwoot_message(v).map_err(|e| shape(format!("the message: {e}")))?);
            Ok(Delivery::Update(u))
        }
        _ => Ok(Delivery::Ignored { event }),
    }
}

fn chatwoot_conversation(inbox: &str, c: &Value, what: &str) -> Result<Update, InboxError> {
    // Chatwoot's webhook conversation carries its display id as `id`; the
    // sample in Chatwoot's documentation calls it `display_id`.
    let id = c
        .get("display_id")
        .and_then(id_text)
        .or_else(|| c.get("id").and_then(id_text))
        .ok_or_else(|| shape(format!("{what} has no \"id\" (a number or a string)")))?;
    if id.len() > CONVERSATION_ID_BYTES_MAX {
        return Err(shape(format!("{what}'s id is longer than {CONVERSATION_ID_BYTES_MAX} bytes")));
    }
    let channel = text_at(c, &["channel"]).map(|ch| clip(&channel_name(&ch), NAME_BYTES_MAX));
    let customer = text_at(c, &["meta", "sender", "name"]).map(|s| clip(&s, NAME_BYTES_MAX));
    let status = text_at(c, &["status"]).map(|s| clip(&s, NAME_BYTES_MAX));
    Ok(Update { conversation_id: chatwoot_id(inbox, &id), channel, customer, status, messages: Vec::new() })
}

/// `Channel::WebWidget` → `webwidget`, `Channel::Whatsapp` → `whatsapp`.
fn channel_name(raw: &str) -> String {
    raw.trim().strip_prefix("Channel::").unwrap_or(raw.trim()).to_lowercase()
}

/// One Chatwoot message; `None` for those left out (private, activity,
/// template).
fn chatwoot_message(m: &Value) -> Result<Option<InboxMessage>, String> {
    if !m.is_object() {
        return Err("must be an object".into());
    }
    if m.get("private").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let role = match m.get("message_type") {
        Some(Value::String(s)) => match s.as_str() {
            "incoming" => Some(Role::Customer),
            "outgoing" => Some(Role::Agent),
            "activity" | "template" => None,
            other => return Err(format!("\"message_type\" '{other}' is not incoming, outgoing, activity or template")),
        },
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => Some(Role::Customer),
            Some(1) => Some(Role::Agent),
            Some(2) | Some(3) => None,
            _ => return Err(format!("\"message_type\" {n} is not 0 (incoming), 1 (outgoing), 2 or 3")),
        },
        _ => return Err("no \"message_type\" (incoming/outgoing or 0/1)".into()),
    };
    let Some(role) = role else { return Ok(None) };
    let id = m.get("id").and_then(id_text).ok_or("no \"id\" (a number or a string)")?;
    let at_ms = time_ms(m.get("created_at").ok_or("no \"created_at\"")?)?;
    let text = match m.get("content") {
        Some(Value::String(s)) => clip(s, MESSAGE_TEXT_BYTES_MAX),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err("\"content\" must be a string".into()),
    };
    let from = text_at(m, &["sender", "name"]).map(|s| clip(&s, NAME_BYTES_MAX));
    Ok(Some(InboxMessage { id, role, from, text, at_ms }))
}

/// The generic §1.2 object. Messages without an `id` get one derived from
/// their content, so a repeated delivery is recognised.
#[derive(Deserialize)]
struct GenericConversation {
    id: Value,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    customer: Option<Customer>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    messages: Vec<GenericMessage>,
}

#[derive(Deserialize)]
struct GenericMessage {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    from: Option<String>,
    role: Role,
    text: String,
    at: Value,
}

fn generic(inbox: &str, v: &Value) -> Result<Update, InboxError> {
    let g: GenericConversation = serde_json::from_value(v.clone())
        .map_err(|e| shape(format!("not a conversation object as in SPEC §1.2 ({e})")))?;
    let id = id_text(&g.id).ok_or_else(|| shape("\"id\" must be a non-empty string or a number"))?;
    if id.len() > CONVERSATION_ID_BYTES_MAX {
        return Err(shape(format!("\"id\" is longer than {CONVERSATION_ID_BYTES_MAX} bytes")));
    }
    let mut messages = Vec::with_capacity(g.messages.len());
    for (i, m) in g.messages.iter().enumerate() {
        let at_ms = time_ms(&m.at).map_err(|e| shape(format!("messages[{i}]: {e}")))?;
        let text = clip(&m.text, MESSAGE_TEXT_BYTES_MAX);
        let from = m.from.as_deref().map(|s| clip(s, NAME_BYTES_MAX));
        let id = match m.id.as_ref().map(id_text) {
            Some(Some(id)) => id,
            Some(None) => return Err(shape(format!("messages[{i}]: \"id\" must be a non-empty string or a number"))),
            None => {
                let role = if m.role == Role::Agent { "agent" } else { "customer" };
                let key = format!("{at_ms}\n{role}\n{}\n{text}", from.as_deref().unwrap_or(""));
                Uuid::new_v5(&NS_MESSAGE, key.as_bytes()).to_string()
            }
        };
        messages.push(InboxMessage { id, role: m.role, from, text, at_ms });
    }
    let clip_opt = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(|s| clip(s.trim(), NAME_BYTES_MAX));
    Ok(Update {
        conversation_id: generic_id(inbox, &id),
        channel: clip_opt(g.channel),
        customer: clip_opt(g.customer.and_then(|c| c.name)),
        status: clip_opt(g.status),
        messages,
    })
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// An instant as chat tools send it: epoch seconds (a number or digits),
/// RFC 3339, or Chatwoot's `2020-03-03 13:05:57 UTC`.
fn time_ms(v: &Value) -> Result<i64, String> {
    // Between 1970 and 9999: anything else is not a message time.
    const SECS_MAX: f64 = 253_402_300_799.0;
    let from_secs = |s: f64| {
        if s.is_finite() && (0.0..=SECS_MAX).contains(&s) {
            Ok((s * 1000.0).round() as i64)
        } else {
            Err(format!("time {s} is not epoch seconds between 1970 and 9999"))
        }
    };
    match v {
        Value::Number(n) => from_secs(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return from_secs(s.parse::<f64>().unwrap_or(f64::NAN));
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.timestamp_millis());
            }
            for fmt in ["%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M:%S%.f UTC", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Ok(t.and_utc().timestamp_millis());
                }
            }
            Err(format!("time '{}' is neither RFC 3339 nor epoch seconds", clip(s, 64)))
        }
        _ => Err("a time must be RFC 3339 text or epoch seconds".into()),
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests;
