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
/// `TICKETS_CLOCK_OFFSET`), after making its folder and database private
/// again if something loosened them (see [`tighten_home`]).
pub fn open(home: &Path) -> Result<Node, NodeError> {
    warn_once(tighten_home(home));
    Node::open(home, WallClock::from_env()?)
}

/// The mode of every file holding tokens, tickets or notes: the owner
/// reads and writes, nobody else anything.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// The mode of the folders that hold such files.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `path` and any missing parents as private folders (0700),
/// whatever the umask. Folders that already exist are left as they are.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, PRIVATE_DIR_MODE);
    b.create(path)
}

/// Creates (or truncates) `path` as a private file (0600), whatever the
/// umask; a file that was there with a looser mode is made private too.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, PRIVATE_FILE_MODE);
    let f = o.open(path)?;
    restrict(path, PRIVATE_FILE_MODE)?;
    Ok(f)
}

/// Makes `path` no more open than `mode` if it exists and others may
/// read, write or enter it; `Ok(false)` when there was nothing to do.
pub fn restrict(path: &Path, mode: u32) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            // Nothing there (or a file where a folder should be, which
            // opening reports by itself): nothing to make private.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        // A symbolic link's own mode means nothing; what it points to may
        // be anyone's, so it is left alone.
        if meta.file_type().is_symlink() || meta.permissions().mode() & 0o777 & !mode == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.permissions().mode() & mode))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(false)
    }
}

/// Makes the node's folder 0700 and its database (with SQLite's `-wal`
/// and `-shm`) 0600 again when something loosened them, say a copy made
/// under another umask. Returns a warning for each one that could not be
/// made private (e.g. owned by another user).
pub fn tighten_home(home: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let db = home.join(crate::DB_FILE);
    let mut targets = vec![(home.to_path_buf(), PRIVATE_DIR_MODE)];
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        targets.push((PathBuf::from(p), PRIVATE_FILE_MODE));
    }
    for (path, mode) in targets {
        if let Err(e) = restrict(&path, mode) {
            warnings.push(format!(
                "{} may be readable by other users and could not be made private ({e}); `chmod {mode:o} {}` fixes it",
                path.display(),
                path.display()
            ));
        }
    }
    warnings
}

/// Prints each warning on stderr, once per process (the app opens the
/// node for every request).
fn warn_once(warnings: Vec<String>) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if warnings.is_empty() || WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
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
        NodeError::View(v) => v.code(),
        NodeError::BadBulk(_) => "invalid",
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
        NodeError::View(v) => v.hint(),
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
