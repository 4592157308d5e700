//! End-to-end tests of the relay and sync: a real `tickets relay serve`
//! process on port 0, real agent nodes in temporary folders, real SQLite
//! files, and the relay's HTTP API spoken directly where a node never would.
//!
//! One runner (this file) with one module per area. [`support`] (shared with
//! the node suite) runs the `tickets` binary and checks every run for panics
//! and the exit-code contract; [`harness`] runs the relay as a process (port
//! 0, killed on drop, its stderr checked for panics) and holds the
//! sync-specific tools; [`proxy`] is a TCP proxy that cuts connections.
//! Nothing waits on a fixed sleep: tests poll with deadlines.
//!
//! - `test_convergence`: offline edits on three nodes converge (also random
//!   ones, seeded); the later edit wins and the loser is marked superseded;
//!   closed wins over a concurrent reopen; one ticket per conversation; two
//!   devices of one agent; skewed device clocks.
//! - `test_notes`: internal notes never reach a device without permission
//!   (raw database bytes checked), arrive on a grant, leave on a revoke.
//! - `test_crash`: `kill -9` of the relay or of the node in the middle of a
//!   sync of thousands of tickets; idle sync cost.
//! - `test_faulty_network`: a proxy that cuts requests and responses
//!   mid-body.
//! - `test_impersonation`: changes signed by another agent's device, or
//!   naming another author or another device's clock.
//! - `test_hostile`: what an agent with one valid token could craft with
//!   the automerge crate and push (overwrites, deletes, root writes,
//!   upper-case ids, far-future stamps) is refused with its code and
//!   harms no one.
//! - `test_bad_input`: malformed requests straight to the HTTP API, and
//!   relays speaking another protocol version.
//! - `test_watch`: `sync --watch`, relay restarts, SIGTERM.
//! - `test_offline`: working with the relay down, retries that back off,
//!   registering a local-only node later.
//! - `test_status`: `/metrics`, `tickets status` and `sync --dry-run`.
//! - `test_quarantine_cli`: what `sync` (text and `--json`) and `show` say
//!   about a pulled document the node kept aside.
//! - `test_inbox`: Chatwoot-shaped webhooks (repeated, out of order) to
//!   `tickets inbox` on devices, one ticket from two offline devices, a
//!   team-scoped inbox absent from another team's files, bad webhook input;
//!   the main flow on two PostgreSQL instances too, deliveries to both at
//!   once, a watcher on one woken by a delivery to the other.
//! - `test_sla_order`: the SLA order of a touched overdue ticket and
//!   search by words, on SQLite and PostgreSQL.
//! - `test_limits`: the operator's limits set on a serving relay: a
//!   comment too large, too many comments, a ticket too large, each refused
//!   alone with its code and then locally; an agent over its write rate
//!   (429, Retry-After, the sync pushes later) and a lead without one; an
//!   inbox over its rate. On SQLite and PostgreSQL.
//! - `test_postgres`: several relay instances on one PostgreSQL database
//!   (a throwaway cluster per run): nodes on different instances converge,
//!   a watcher on one instance wakes for an edit pushed to another.
//!   A representative set (convergence, notes privacy, hostile pushes,
//!   watch, bad input) also runs on a PostgreSQL relay: the same bodies,
//!   in tests named `..._on_postgres`; `TICKETS_TEST_PG=1` puts every
//!   `Relay::start()` on PostgreSQL (by hand: tests that read the relay's
//!   SQLite file then fail saying so).
//! - `test_new_for_you`: a ticket another agent assigned is marked new
//!   after the sync that brings it, until `show`; bulk assigns checked
//!   against the relay's agents.
//! - `test_timeline_unchanged`: an edit to the value already there
//!   shows as `(unchanged)`.
//!
//! Bugs found here were pinned by failing tests, then fixed; the tests stay
//! next to the behaviour they guard.

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

mod harness;
mod hostile_support;
#[allow(dead_code)]
#[path = "../../../relay/tests/support/pg.rs"]
mod pg;
mod proxy;

mod test_bad_input;
mod test_convergence;
mod test_crash;
mod test_faulty_network;
mod test_hostile;
mod test_impersonation;
mod test_inbox;
mod test_limits;
mod test_new_for_you;
mod test_notes;
mod test_offline;
mod test_postgres;
mod test_quarantine_cli;
mod test_sla_order;
mod test_status;
mod test_timeline_unchanged;
mod test_trust_round2;
mod test_watch;
