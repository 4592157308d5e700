//! The inbox (SPEC §10): chat tools post conversations to a webhook URL
//! with a secret in its path; the relay merges them (by message id, in
//! [`tickets_core::inbox`]) and devices pull them with their own cursor.
//!
//! - [`store`]: webhook ingest (merge, and merge again when another write
//!   of the conversation landed first), the operator's commands, the pull
//!   page and its scope rules, on any backend: the SQL is behind the seam,
//!   [`crate::store::InboxStore`] (SQLite and PostgreSQL).
//! - [`webhook`]: `POST /v1/inbox/{secret}`.
//!
//! The conversation table is its own log: every change of a conversation
//! gives its row the next inbox sequence number, handed out in commit order
//! without gaps on both backends, so a device's cursor never skips a row.

pub mod store;
pub mod webhook;
