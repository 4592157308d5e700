//! The node's app (`tickets app`, SPEC §8) in a real headless Chromium:
//! a real relay process, an agent's and a lead's nodes, a `tickets app
//! --no-open` on each, and `tests/browser/app.mjs` (playwright-core driving
//! Debian's /usr/bin/chromium only by roles and accessible names);
//! `tests/browser/inbox.mjs` the Inbox view, from a Chatwoot webhook to
//! the ticket made from it.
//!
//! The script asks this harness to stop and start the relay by printing
//! `@relay stop` / `@relay start` and waiting for `ok` on its stdin.

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../sync/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../../../relay/tests/support/pg.rs"]
mod pg;

mod app;
mod test_app;
mod test_inbox;
mod test_workday;
