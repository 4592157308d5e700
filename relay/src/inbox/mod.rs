//! The inbox (SPEC §10): chat tools post conversations to a webhook URL
//! with a secret in its path; the relay merges them (by message id, in
//! [`tickets_core::inbox`]) and devices pull them with their own cursor.
//!
//! - [`store`]: the inbox's own tables (`inboxes`, `inbox_conversations`)
//!   and their SQL: webhook ingest, the operator's commands, the pull page.
//! - [`webhook`]: `POST /v1/inbox/{secret}`.
//!
//! The conversation table is its own log: every change of a conversation
//! gives its row the next inbox sequence number, allocated inside the
//! writing transaction (SQLite has one writer at a time), so numbers are
//! handed out in commit order and a device's cursor never skips a row.

pub mod store;
pub mod webhook;
