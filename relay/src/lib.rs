//! The relay: an axum server over SQLite that merges everyone's edits,
//! decides who may see what, and computes the authoritative SLA state.
//!
//! - [`store`]: the storage seam ([`store::RelayStore`]) and its backends,
//!   which hold all SQL of the relay (agents, devices, documents, the change
//!   log, effective event times, the ticket index, settings).
//! - [`push`]: the push pipeline above the seam (merge, authorize, index,
//!   commit, merge again on conflict).
//! - [`pull`]: pull pages and the notes rule, above the seam.
//! - [`board`]: ticket objects for the board and exports, above the seam.
//! - [`sync`]: one sync exchange, independent of HTTP.
//! - [`inbox`]: conversations from chat tools' webhooks, their own tables
//!   and the inbox's pull page.
//! - [`export`]: streaming exports (CSV, JSON, NDJSON).
//! - [`auth`]: bearer tokens.
//! - [`names`]: agent, team and category names in NFC, look-alikes refused.
//! - [`http`]: the HTTP API, its routes and its error type.
//! - [`edge`]: the network edge: the accept loop, connection limits and
//!   timeouts, and the JSON answers to requests over the limits.
//! - [`openapi`]: the API's OpenAPI document, `GET /v1/openapi.json`.
//! - [`metrics`]: counters and latency histograms in Prometheus text.
//! - [`rate`]: write rates per agent and per inbox (token buckets).

pub mod auth;
pub mod board;
pub mod edge;
pub mod export;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod names;
pub mod openapi;
pub mod pull;
pub mod push;
pub mod rate;
pub mod store;
pub mod sync;

pub use http::{serve, AppState};
pub use store::{Db, StoreError};
