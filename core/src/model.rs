//! Scalar vocabulary of a ticket: priority, status, assignee and the
//! lifecycle rule between statuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// Ticket priority, ordered from least to most pressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Rank used by index tables so that sorting by priority is numeric.
    pub fn rank(self) -> i64 {
        self as i64
    }
}

impl FromStr for Priority {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            "urgent" => Ok(Priority::Urgent),
            _ => Err(InputError::UnknownPriority(s.to_string())),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ticket status. `Closed` is terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Open,
    InProgress,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Open, Status::InProgress, Status::Resolved, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in-progress",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Whether the resolution clock runs in this status.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::InProgress)
    }

    /// The lifecycle rule: anything but `Closed` may move to any other
    /// status; nothing leaves `Closed`.
    pub fn check_transition(self, to: Status) -> Result<(), TransitionError> {
        if self == Status::Closed && to != Status::Closed {
            return Err(TransitionError::OutOfClosed { to });
        }
        Ok(())
    }

    /// Whether a field other than the status (subject, priority, category,
    /// assignee, description) may still change: not once closed.
    pub fn check_field_edit(self, field: &'static str) -> Result<(), TransitionError> {
        if self == Status::Closed {
            return Err(TransitionError::FieldOfClosed { field });
        }
        Ok(())
    }
}

impl FromStr for Status {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Status::Open),
            "in-progress" | "in_progress" | "inprogress" => Ok(Status::InProgress),
            "resolved" => Ok(Status::Resolved),
            "closed" => Ok(Status::Closed),
            _ => Err(InputError::UnknownStatus(s.to_string())),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("ticket is closed; closed is final and cannot move to {to}")]
    OutOfClosed { to: Status },
    /// Closed is final for every field, not only the status; comments and
    /// internal notes stay allowed.
    #[error("ticket is closed; closed is final and its {field} cannot change (comments and notes are still allowed)")]
    FieldOfClosed { field: &'static str },
}

/// Names of agents, teams and categories: non-empty, printable, bounded.
pub const NAME_BYTES_MAX: usize = 64;

pub fn check_name(kind: &'static str, s: &str) -> Result<String, InputError> {
    let t = s.trim();
    if t.is_empty() || t.len() > NAME_BYTES_MAX || t.chars().any(|c| c.is_control()) {
        return Err(InputError::BadName { kind, value: s.to_string() });
    }
    Ok(t.to_string())
}

/// Who a ticket is assigned to: an agent (`alice`) or a team (`team:field`).
/// "No assignee" is `Option::None` at the use site.
pub fn parse_assignee(s: &str) -> Result<String, InputError> {
    let t = s.trim();
    if let Some(team) = t.strip_prefix("team:") {
        let team = check_name("team", team)?;
        return Ok(format!("team:{team}"));
    }
    check_name("agent", t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_terminal() {
        for to in Status::ALL {
            let r = Status::Closed.check_transition(to);
            assert_eq!(r.is_ok(), to == Status::Closed, "closed -> {to}");
        }
        for from in [Status::Open, Status::InProgress, Status::Resolved] {
            for to in Status::ALL {
                assert!(from.check_transition(to).is_ok(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn parse_round_trips() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("critical".parse::<Priority>().is_err());
        assert_eq!(parse_assignee(" team:field ").as_deref(), Ok("team:field"));
        assert!(parse_assignee("team:").is_err());
    }
}
