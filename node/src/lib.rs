//! The agent's node: a thin IO shell around the core.
//!
//! - [`node`]: the node's commands, each one SQLite transaction.
//! - [`store`]: all SQL of the node: documents and index tables.
//! - [`sync`]: the sync client (register, push/pull rounds, watch).
//! - [`inbox`]: the recent inbox conversations kept on the device.
//! - [`home`]: the home folder, opening a node, short ids, and each
//!   error's code and hint, shared by the CLI and the app.
//! - [`import`]: reading and checking import files.
//! - [`directory`]: the relay's taxonomy, agents and teams, and this
//!   agent's role, as last synced (for the app, offline too).
//! - [`clock`]: the node's reading of time, with `TICKETS_CLOCK_OFFSET`.
//! - [`error`]: the node's errors.
//! - [`bulk`]: bulk edits of a selection of tickets.
//! - [`views`]: saved views (a list's filters, sort and search by name).
//! - [`new_for_you`]: tickets someone else assigned to this agent, until
//!   opened.

pub mod bulk;
pub mod clock;
pub mod directory;
pub mod error;
pub mod home;
pub mod import;
pub mod inbox;
pub mod new_for_you;
pub mod node;
pub mod store;
pub mod sync;
pub mod views;

pub use bulk::{BulkEdit, BulkOutcome, BulkRefusal};
pub use clock::WallClock;
pub use error::NodeError;
pub use node::{EditOutcome, ListPage, Node, NodeStatus, DB_FILE};
pub use store::ChangeWatch;
pub use tickets_core::index::{ListQuery, SortKey};
pub use views::{SavedView, ViewError};
