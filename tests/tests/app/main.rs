//! End-to-end tests of the node's app (`tickets app`): the real `tickets`
//! binary serving on loopback, driven over real HTTP with reqwest, beside
//! real `tickets` commands on the same home and, for sync, a real relay
//! process. The page itself is tested in a browser by `tests/browser`.
//!
//! - `app_process`: starting `tickets app --no-open`, reading the printed
//!   URL, requests with and without the session, the event stream, SIGTERM.
//! - `test_security`: 401 without the session, 403 for a foreign `Host`,
//!   the printed URL working once for a session token that is no cookie
//!   (the one cookie opens no API; two apps take nothing from each other),
//!   writes from another origin refused with nothing written, the CSP
//!   header, the browser opened on a private page (no secret in its
//!   argv), the port kept across restarts and a stale tab's styled page.
//! - `test_api`: create, list filters, patch, closed is final, comments and
//!   notes, bad input, and CLI commands seen on the open event stream.
//! - `test_inbox`: `GET /v1/inbox` as `tickets inbox --json`, the prefill
//!   of an inbox conversation, and `POST /v1/tickets` with
//!   `conversation_id` making the ticket `tickets create --conversation`
//!   makes; unknown or doubly named conversations refused.
//! - `test_sync`: the background sync pushes the app's edits to another
//!   node, the directory offline, `offline` when the relay stops.

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../board/harness.rs"]
mod harness;

mod app_process;

mod test_api;
mod test_inbox;
mod test_security;
mod test_sync;
