//! Tickets core: everything that decides, nothing that does IO.
//!
//! - [`model`]: priorities, statuses, the lifecycle rule, names.
//! - [`hlc`]: the hybrid logical clock that orders every edit.
//! - [`sla`]: the SLA engine, a pure function of timeline, settings and now.
//!
//! The core never reads the clock, never makes random ids and never touches
//! a disk or a socket: callers pass `now`, ids and bytes in.

pub mod error;
pub mod hlc;
pub mod model;
pub mod sla;

pub use error::{DocError, InputError};
