//! What this node knows of its relay's people and of its own agent, from
//! the last settings and access the relay sent (kept in the store, so it
//! works offline): the taxonomy, the agents with their teams, and this
//! agent's role, team and permissions.

use serde::Serialize;
use tickets_core::protocol::DirectoryEntry;

use crate::error::NodeError;
use crate::node::{Node, M_AGENTS, M_CATEGORIES, M_LAST_SYNC, M_NOTES, M_RELAY};
use crate::store::Tx;

/// Node meta: the relay's agents with their teams (JSON), from the last
/// settings.
pub(crate) const M_DIRECTORY: &str = "directory";
/// Node meta: the relay's teams (JSON), from the last settings.
pub(crate) const M_TEAMS: &str = "teams";

/// The taxonomy and the people an assignee may name; empty lists on a
/// node that never synced (which then accepts any category or assignee).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directory {
    pub categories: Vec<String>,
    pub agents: Vec<DirectoryEntry>,
    pub teams: Vec<String>,
}

/// This node's agent as the relay last described them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub agent: String,
    /// `agent`, `lead` or `admin`; none on a node never registered.
    pub role: Option<String>,
    pub team: Option<String>,
    pub internal_notes: bool,
    /// The relay's URL, when registered.
    pub relay: Option<String>,
    pub last_sync: Option<String>,
}

fn list<T: serde::de::DeserializeOwned>(tx: &Tx<'_>, key: &str) -> Result<Vec<T>, NodeError> {
    Ok(tx.get_meta(key)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
}

fn directory_of(tx: &Tx<'_>) -> Result<Directory, NodeError> {
    let mut agents: Vec<DirectoryEntry> = list(tx, M_DIRECTORY)?;
    if agents.is_empty() {
        // A relay from before the directory sends names only.
        agents = list::<String>(tx, M_AGENTS)?.into_iter().map(|name| DirectoryEntry { name, team: None }).collect();
    }
    Ok(Directory { categories: list(tx, M_CATEGORIES)?, agents, teams: list(tx, M_TEAMS)? })
}

impl Node {
    /// The taxonomy, agents and teams from the relay's last settings.
    pub fn directory(&mut self) -> Result<Directory, NodeError> {
        let tx = self.store_tx()?;
        directory_of(&tx)
    }

    /// This node's agent: role and team from the relay's last word, and
    /// whether they may read and write internal notes.
    pub fn profile(&mut self) -> Result<Profile, NodeError> {
        let agent = self.agent().to_string();
        let tx = self.store_tx()?;
        let team = directory_of(&tx)?.agents.into_iter().find(|a| a.name == agent).and_then(|a| a.team);
        Ok(Profile {
            role: tx.get_meta(crate::sync::M_ROLE)?.filter(|r| !r.is_empty()),
            team,
            internal_notes: tx.get_meta(M_NOTES)?.as_deref() == Some("1"),
            relay: tx.get_meta(M_RELAY)?,
            last_sync: tx.get_meta(M_LAST_SYNC)?,
            agent,
        })
    }
}
