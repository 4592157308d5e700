//! End-to-end tests of the node CLI: the real `tickets` binary, real
//! temporary home folders, real SQLite files — run as a new user would.
//!
//! One runner (this file) with one module per area; shared helpers live in
//! [`support`]. Every invocation goes through `support::Run`, which fails the
//! test on any panic and checks the exit-code contract (0, 1 with one
//! `error:` line and maybe a `hint:`, 2 for usage errors).
//!
//! - `test_init`: creating a node, and commands on a home with no node.
//! - `test_create_show`: `create` and the `show --json` contract.
//! - `test_edit`: edit, assign, comment, note and the history they record.
//! - `test_ids`: unique, ambiguous and unknown id prefixes.
//! - `test_lifecycle`: status transitions; closed is terminal.
//! - `test_bad_input`: usage errors, bad values and a damaged database.
//! - `test_conversation`: tickets created from an inbox conversation.
//! - `test_list`: filters, search, sort and limits.
//! - `test_import`: bulk import, all or nothing.
//! - `test_clock`: `TICKETS_CLOCK_OFFSET`.
//! - `test_notes`: comments and internal notes stay apart.
//! - `test_processes`: closed pipes and concurrent processes on one home.
//! - `test_help`: every flag described, formats in `--help`, import errors.
//! - `test_bulk`: several ids (or stdin) in one assign, status or priority.
//! - `test_views`: saved views, `list --view`.
//! - `test_known_bugs`: bugs found here, pinned by ignored failing tests.

mod support;

mod test_bad_input;
mod test_bulk;
mod test_clock;
mod test_conversation;
mod test_create_show;
mod test_edit;
mod test_help;
mod test_ids;
mod test_import;
mod test_init;
mod test_known_bugs;
mod test_lifecycle;
mod test_list;
mod test_notes;
mod test_processes;
mod test_views;
