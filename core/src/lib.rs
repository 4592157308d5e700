//! Tickets core: everything that decides, nothing that does IO.
//!
//! - [`model`]: priorities, statuses, the lifecycle rule, names.
//! - [`hlc`]: the hybrid logical clock that orders every edit.
//! - [`doc`]: a ticket's two Automerge documents (ticket, internal notes)
//!   and their deterministic genesis.
//! - [`event`]: the timeline's events and their stored encoding.
//! - [`edit`]: local edits, validated before anything is written.
//! - [`view`]: the materialized ticket, replayed from merged events.
//! - [`conversation`]: inbox conversations and the description prefill.
//! - [`inbox`]: webhook deliveries from chat tools, merged into conversations.
//! - [`ids`]: identities derived on every replica alike.
//! - [`export`]: export records (CSV rows, formula neutralization).
//! - [`index`]: what both ends keep per ticket in their index tables.
//! - [`search`]: the one normalisation of searched and indexed text.
//! - [`ingest`]: the relay's merge-and-authorize of a pushed document.
//! - [`change_policy`]: the allow-list of what one pushed change may do.
//! - [`limits`]: the operator's named limits per document, agent and inbox.
//! - [`protocol`]: the sync protocol's wire types and limits.
//! - [`sla`]: the SLA engine, a pure function of timeline, settings and now.
//! - [`duration`]: SLA target durations as people type and read them.
//! - [`json`]: the stable JSON object of a ticket.
//! - [`time`]: how instants are printed.
//! - [`text`]: the one rule for text crossing an edge (what a backend can store).
//! - [`par`]: a page's independent work spread over the cores.
//!
//! The core never reads the clock, never makes random ids and never touches
//! a disk or a socket: callers pass `now`, ids and bytes in.

pub mod change_policy;
pub mod conversation;
pub mod doc;
pub mod duration;
pub mod edit;
pub mod error;
pub mod event;
pub mod export;
pub mod hlc;
pub mod ids;
pub mod inbox;
pub mod index;
pub mod ingest;
pub mod json;
pub mod limits;
pub mod model;
pub mod par;
pub mod protocol;
pub mod search;
pub mod sla;
pub mod text;
pub mod time;
pub mod view;

pub use error::{DocError, InputError};
