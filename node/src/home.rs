//! What every front end of a node needs in the same words: where the home
//! folder is, opening the node in it, a short form of ticket ids, and the
//! stable code and the next step for each error a user meets. The CLI and
//! the app (`tickets app`) both use these, so that a refusal reads the same
//! in a terminal and in a browser.

use std::path::{Path, PathBuf};

use crate::{Node, NodeError, WallClock};

/// The home folder: `explicit` (`--home` or `TICKETS_HOME`) or
/// `~/.tickets`; `None` when neither is given and `HOME` is not set.
pub fn home_folder(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".tickets")))
}

/// Opens the node in `home` with this device's clock (and any
/// `TICKETS_CLOCK_OFFSET`).
pub fn open(home: &Path) -> Result<Node, NodeError> {
    Node::open(home, WallClock::from_env()?)
}

/// The first 8 characters of a ticket id: what tables and messages show.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The stable code of a node error, for scripts (`--json`) and the app's
/// JSON errors.
pub fn code(e: &NodeError) -> &'static str {
    match e {
        NodeError::NotInitialized(_) => "not_initialized",
        NodeError::AlreadyInitialized(_) => "already_initialized",
        NodeError::NotFound(_) => "not_found",
        NodeError::Ambiguous { .. } => "ambiguous",
        NodeError::ConversationExists { .. } => "conversation_exists",
        NodeError::Edit(_) => "refused_edit",
        NodeError::UnknownCategory(..) => "unknown_category",
        NodeError::UnknownAssignee { .. } => "unknown_assignee",
        NodeError::NotesForbidden(_) => "forbidden",
        NodeError::NotesRestoring => "notes_restoring",
        NodeError::Import { .. } | NodeError::ImportFile(_) => "bad_import",
        NodeError::BadClockOffset(_) => "bad_clock_offset",
        NodeError::Doc { .. } | NodeError::Corrupt { .. } => "damaged",
        NodeError::OverLimit(o) => o.code.as_str(),
        // Storage errors, and variants added later.
        _ => "error",
    }
}

/// A hint for the errors a user meets most.
pub fn hint(e: &NodeError) -> Option<String> {
    match e {
        NodeError::NotInitialized(_) => Some("create one with `tickets init --agent NAME` (or pass --home DIR)".into()),
        NodeError::Ambiguous { .. } => Some("`tickets list --search PREFIX` shows the matching ids".into()),
        NodeError::NotFound(_) => Some("`tickets list` shows the tickets on this node".into()),
        NodeError::ConversationExists { .. } => Some("pass --force to create another ticket anyway".into()),
        NodeError::UnknownCategory(..) => {
            Some("ask the relay operator to add it: `tickets relay category add NAME`".into())
        }
        NodeError::UnknownAssignee { assignee, known } => Some(match closest(assignee, known) {
            Some(near) => format!("did you mean '{near}'? (`tickets sync` refreshes the agents and teams)"),
            None => {
                let shown: Vec<&str> = known.iter().take(10).map(String::as_str).collect();
                let more = if known.len() > shown.len() { ", ..." } else { "" };
                format!("the relay knows {}{more}; `tickets sync` refreshes the list", shown.join(", "))
            }
        }),
        NodeError::NotesForbidden(agent) => Some(format!(
            "ask a lead or admin to run `tickets relay agent grant {agent} --internal-notes`, then `tickets sync`"
        )),
        NodeError::OverLimit(o) => Some(match o.code {
            tickets_core::limits::LimitCode::CommentTooLarge => {
                "shorten it or split it into several comments; the relay's operator sets the limit (`tickets relay limits`)"
                    .into()
            }
            _ => "start a new ticket for the rest of this conversation; the relay's operator sets the limits \
                  (`tickets relay limits`)"
                .into(),
        }),
        NodeError::Edit(tickets_core::edit::EditError::Transition(_)) => {
            Some("create a new ticket for new work on a closed one".into())
        }
        _ => None,
    }
}

/// The known name nearest to a typo (`bbo` → `bob`, `team:feild` →
/// `team:field`), if one is within two edits.
pub fn closest<'a>(typed: &str, known: &'a [String]) -> Option<&'a str> {
    let distance = |a: &str, b: &str| -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    let typed = typed.trim().to_lowercase();
    known
        .iter()
        .map(|k| (distance(&typed, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_eight_characters_or_the_whole_id() {
        assert_eq!(short_id("0123456789abcdef"), "01234567");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn the_closest_name_is_within_two_edits() {
        let known = vec!["bob".to_string(), "team:field".to_string()];
        assert_eq!(closest("bbo", &known), Some("bob"));
        assert_eq!(closest("team:feild", &known), Some("team:field"));
        assert_eq!(closest("zzzzzz", &known), None);
    }
}
