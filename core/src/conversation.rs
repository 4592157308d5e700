//! Conversations exported from an inbox, and the description prefill made
//! from them (SPEC §1.2).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A conversation file is read whole; bound it.
pub const CONVERSATION_BYTES_MAX: usize = 8 * 1024 * 1024;
/// How many of the latest messages the prefill quotes.
pub const PREFILL_MESSAGES: usize = 5;

#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub customer: Option<Customer>,
    #[serde(default)]
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub from: Option<String>,
    pub role: Role,
    pub text: String,
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
}

/// What a ticket keeps of its conversation (stored as JSON in the ticket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationLink {
    pub id: String,
    pub channel: String,
    pub customer: String,
    /// The first agent reply already in the conversation: first response is
    /// met at that instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_reply_at_ms: Option<i64>,
}

/// A conversation prefill as a pushed ticket holds it: the description text
/// and the link, as the deterministic prefill change wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefill {
    pub text: String,
    pub link: ConversationLink,
    /// The link exactly as stored (JSON).
    pub link_json: String,
}

/// The namespace of a conversation file's own id: `file:ID`. A file's id
/// can never be an inbox's (`chatwoot:NAME:ID`, `generic:NAME:ID`), so a
/// file cannot squat an inbox conversation or its ticket.
pub const FILE_PREFIX: &str = "file:";
/// The namespaces of the inbox's conversations (see [`crate::inbox`]).
pub const INBOX_PREFIXES: [&str; 2] = ["chatwoot:", "generic:"];

/// Whether `id` names an inbox conversation, whose prefill only the
/// relay's copy may give.
pub fn is_inbox_id(id: &str) -> bool {
    INBOX_PREFIXES.iter().any(|p| id.starts_with(p))
}

/// A conversation file's id in its namespace: `file:ID` (an id already in
/// it is kept as it is).
pub fn file_id(id: &str) -> String {
    let id = id.trim();
    if id.starts_with(FILE_PREFIX) {
        id.to_string()
    } else {
        format!("{FILE_PREFIX}{id}")
    }
}

/// The id a node made before conversation ids had namespaces: a file's id
/// as it was written (`None` for an id that is not a file's, or whose bare
/// form names an inbox conversation, which a file may not stand for).
pub fn legacy_file_id(id: &str) -> Option<&str> {
    id.strip_prefix(FILE_PREFIX).filter(|rest| !rest.trim().is_empty() && !is_inbox_id(rest))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("conversation file is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("conversation id is empty")]
    EmptyId,
    #[error("conversation file is larger than {CONVERSATION_BYTES_MAX} bytes")]
    TooLarge,
    #[error("message {index} has an invalid time '{at}' (expected RFC 3339)")]
    BadTime { index: usize, at: String },
    #[error(transparent)]
    Unstorable(#[from] crate::text::Unstorable),
}

struct Parsed<'a> {
    msg: &'a Message,
    at_ms: i64,
}

impl Conversation {
    /// Reads a conversation file (the shape README.md gives under "A conversation file"); its id goes into the
    /// file namespace ([`file_id`]). Text no backend can store is refused
    /// (an agent can fix a file; nothing is stored yet).
    pub fn parse(bytes: &[u8]) -> Result<Conversation, ConversationError> {
        if bytes.len() > CONVERSATION_BYTES_MAX {
            return Err(ConversationError::TooLarge);
        }
        let mut c: Conversation = serde_json::from_slice(bytes).map_err(|e| ConversationError::Json(e.to_string()))?;
        if c.id.trim().is_empty() {
            return Err(ConversationError::EmptyId);
        }
        c.check_text()?;
        c.id = file_id(&c.id);
        c.timed()?;
        Ok(c)
    }

    fn check_text(&self) -> Result<(), crate::text::Unstorable> {
        use crate::text::check;
        check("the conversation id", &self.id)?;
        check("the channel", self.channel.as_deref().unwrap_or(""))?;
        check("the customer's name", self.customer.as_ref().and_then(|c| c.name.as_deref()).unwrap_or(""))?;
        for (i, m) in self.messages.iter().enumerate() {
            check(&format!("message {i}'s sender"), m.from.as_deref().unwrap_or(""))?;
            check(&format!("message {i}'s text"), &m.text)?;
        }
        Ok(())
    }

    fn timed(&self) -> Result<Vec<Parsed<'_>>, ConversationError> {
        let mut out = Vec::with_capacity(self.messages.len());
        for (index, msg) in self.messages.iter().enumerate() {
            let at = DateTime::parse_from_rfc3339(msg.at.trim())
                .map_err(|_| ConversationError::BadTime { index, at: msg.at.clone() })?;
            out.push(Parsed { msg, at_ms: at.timestamp_millis() });
        }
        // Messages are quoted in time order whatever order the file has;
        // the sort is stable so equal times keep file order.
        out.sort_by_key(|p| p.at_ms);
        Ok(out)
    }

    fn customer_name(&self) -> String {
        self.customer
            .as_ref()
            .and_then(|c| c.name.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "unknown customer".to_string())
    }

    fn channel_name(&self) -> String {
        self.channel.clone().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "unknown".into())
    }

    /// The link kept in the ticket.
    pub fn link(&self) -> Result<ConversationLink, ConversationError> {
        let timed = self.timed()?;
        Ok(ConversationLink {
            id: self.id.trim().to_string(),
            channel: self.channel_name(),
            customer: self.customer_name(),
            agent_reply_at_ms: timed.iter().find(|p| p.msg.role == Role::Agent).map(|p| p.at_ms),
        })
    }

    /// The description prefill: customer, channel and the last five messages.
    pub fn prefill(&self) -> Result<String, ConversationError> {
        let timed = self.timed()?;
        let mut s = format!(
            "Customer: {}\nChannel: {}\nConversation: {}\n",
            self.customer_name(),
            self.channel_name(),
            self.id.trim()
        );
        let skip = timed.len().saturating_sub(PREFILL_MESSAGES);
        if timed.is_empty() {
            s.push_str("\n(no messages)\n");
        } else {
            s.push_str(&format!("\nLast {} of {} messages:\n", timed.len() - skip, timed.len()));
        }
        for p in &timed[skip..] {
            let who = p.msg.from.clone().unwrap_or_else(|| match p.msg.role {
                Role::Customer => self.customer_name(),
                Role::Agent => "agent".into(),
            });
            let role = match p.msg.role {
                Role::Customer => "customer",
                Role::Agent => "agent",
            };
            let at = DateTime::<Utc>::from_timestamp_millis(p.at_ms)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default();
            s.push_str(&format!("[{at}] {who} ({role}): {}\n", p.msg.text.trim_end()));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_quotes_last_five_in_time_order() {
        let msgs: Vec<String> = (0..7)
            .rev()
            .map(|i| {
                let role = if i == 3 { "agent" } else { "customer" };
                format!(r#"{{"from":"p{i}","role":"{role}","text":"m{i}","at":"2026-01-01T00:0{i}:00Z"}}"#)
            })
            .collect();
        let json = format!(
            r#"{{"id":"c1","channel":"whatsapp","customer":{{"name":"Ana"}},"messages":[{}]}}"#,
            msgs.join(",")
        );
        let c = Conversation::parse(json.as_bytes()).expect("valid");
        let p = c.prefill().expect("prefill");
        assert!(p.contains("Customer: Ana") && p.contains("Channel: whatsapp"));
        assert!(!p.contains("m0") && !p.contains("m1"));
        let pos: Vec<usize> = (2..7).map(|i| p.find(&format!("m{i}")).expect("quoted")).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
        let link = c.link().expect("link");
        assert_eq!(link.agent_reply_at_ms, Some(1_767_225_780_000));
    }

    #[test]
    fn a_files_id_is_in_the_file_namespace() {
        let c = Conversation::parse(br#"{"id":" chatwoot:support:98 ","messages":[]}"#).expect("valid");
        assert_eq!(c.id, "file:chatwoot:support:98");
        assert!(!is_inbox_id(&c.id));
        assert_eq!(Conversation::parse(br#"{"id":"file:x","messages":[]}"#).expect("valid").id, "file:x");
        assert_eq!(legacy_file_id("file:wa-1"), Some("wa-1"));
        assert_eq!(legacy_file_id("file:generic:web:1"), None, "a file never stands for an inbox's conversation");
        let nul = br#"{"id":"x","messages":[{"role":"customer","text":"a\u0000b","at":"2026-01-01T00:00:00Z"}]}"#;
        assert!(matches!(Conversation::parse(nul), Err(ConversationError::Unstorable(_))));
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(Conversation::parse(b"{").is_err());
        assert!(Conversation::parse(br#"{"id":"  ","messages":[]}"#).is_err());
        assert!(
            Conversation::parse(br#"{"id":"x","messages":[{"role":"customer","text":"t","at":"yesterday"}]}"#).is_err()
        );
        assert!(Conversation::parse(
            br#"{"id":"x","messages":[{"role":"bot","text":"t","at":"2026-01-01T00:00:00Z"}]}"#
        )
        .is_err());
    }
}
