//! SLA engine: a pure function of a ticket's merged timeline, the SLA
//! settings and "now". No stored counters: node and relay run this same code.
//!
//! - this file: the vocabulary (settings, input, report);
//! - [`engine`]: the rules, [`compute`];
//! - `clock`: the elapsed-time function of a clock and its inverse;
//! - [`calendar`]: business hours and their DST-correct real-time stretches;
//! - `policy`: the settings timeline, "what is in force at instant t".
//!
//! All instants are epoch milliseconds; targets and durations are seconds.
//! Elapsed time is counted in milliseconds, so thresholds are exact: a
//! 10-second target with a 75% warning turns yellow at 7.5 seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Priority, Status};

pub mod calendar;
mod clock;
pub mod engine;
mod policy;
#[cfg(test)]
mod tests;

pub use calendar::CalendarError;
pub use engine::compute;

/// Warning threshold used when settings do not say: yellow at 75%.
pub const WARN_PERCENT_DEFAULT: u8 = 75;

/// Targets for one priority. `None`: no target, state `none`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub first_response_secs: Option<u64>,
    pub resolution_secs: Option<u64>,
}

/// One weekly opening interval in the calendar's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyInterval {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    /// Minutes after local midnight, start inclusive, end exclusive (end <= 1440).
    pub start_min: u16,
    pub end_min: u16,
}

/// Business hours: weekly intervals in an IANA zone plus holiday dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub time_zone: String,
    pub weekly: Vec<WeeklyInterval>,
    /// Local dates (YYYY-MM-DD) on which nothing is open.
    pub holidays: Vec<String>,
}

/// SLA settings in force from an instant on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub targets: BTreeMap<Priority, Targets>,
    /// Yellow once this share of the target has elapsed.
    pub warn_percent: u8,
    pub calendar: Option<Calendar>,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy { targets: BTreeMap::new(), warn_percent: WARN_PERCENT_DEFAULT, calendar: None }
    }
}

/// The settings timeline: each policy applies from its instant until the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaSettings {
    pub epochs: Vec<(i64, SlaPolicy)>,
    /// On a device: its clock minus the relay's, in ms, the frame its
    /// instants and these epochs are in. Calendars are read in the relay's
    /// time, so business hours open when they really do whatever the
    /// device's clock says. Zero on the relay (and then not written).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skew_ms: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// What the engine needs of a ticket, in effective epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaInput {
    pub created_at_ms: i64,
    pub first_response_at_ms: Option<i64>,
    pub priority_changes: Vec<(i64, Priority)>,
    pub status_changes: Vec<(i64, Status)>,
}

/// Where one metric stands. Running clocks are green, yellow or red; stopped
/// ones met or breached; `None` when no target applies and none was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlaState {
    Green,
    Yellow,
    Red,
    Met,
    Breached,
    None,
}

impl SlaState {
    /// The lower-case name used in views, CSV and index tables.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::Green => "green",
            SlaState::Yellow => "yellow",
            SlaState::Red => "red",
            SlaState::Met => "met",
            SlaState::Breached => "breached",
            SlaState::None => "none",
        }
    }
}

impl std::fmt::Display for SlaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SLA metric at "now".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub state: SlaState,
    /// Target in force at now (or at the stop); `None` when none applies.
    pub target_secs: Option<u64>,
    /// Running clocks only: the instant the state turns red if nothing else
    /// happens (the breach instant once red). Exact, for index range queries.
    pub due_at_ms: Option<i64>,
    /// Running clocks only: the instant the state turns yellow if nothing
    /// else happens (in the past when already yellow); never after `due_at_ms`.
    pub warn_at_ms: Option<i64>,
    /// The first breach, kept whatever changes later.
    pub breached_at_ms: Option<i64>,
    /// Once breached: elapsed minus target, in whole seconds.
    pub overrun_secs: Option<u64>,
    /// When the clock stopped (for good, or paused while resolved).
    pub stopped_at_ms: Option<i64>,
    /// Counted (business) time up to now or the stop, in whole seconds.
    pub elapsed_secs: u64,
}

impl Metric {
    /// Moves every instant by `by` ms (durations stay).
    pub fn shift(&mut self, by: i64) {
        for t in [&mut self.due_at_ms, &mut self.warn_at_ms, &mut self.breached_at_ms, &mut self.stopped_at_ms] {
            *t = t.map(|t| t.saturating_add(by));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaReport {
    pub first_response: Metric,
    pub resolution: Metric,
}
