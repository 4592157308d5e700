//! SLA engine: a pure function of a ticket's merged timeline, the SLA
//! settings and "now". No stored counters: node and relay run this same code.
//!
//! PLACEHOLDER BODY — being implemented (see `compute`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Priority, Status};

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
        SlaPolicy { targets: BTreeMap::new(), warn_percent: 75, calendar: None }
    }
}

/// The settings timeline: each policy applies from its instant until the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaSettings {
    pub epochs: Vec<(i64, SlaPolicy)>,
}

/// What the engine needs of a ticket, in effective epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaInput {
    pub created_at_ms: i64,
    pub first_response_at_ms: Option<i64>,
    pub priority_changes: Vec<(i64, Priority)>,
    pub status_changes: Vec<(i64, Status)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlaState {
    Green,
    Yellow,
    Red,
    Met,
    Breached,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub state: SlaState,
    pub target_secs: Option<u64>,
    pub due_at_ms: Option<i64>,
    pub warn_at_ms: Option<i64>,
    pub breached_at_ms: Option<i64>,
    pub overrun_secs: Option<u64>,
    pub stopped_at_ms: Option<i64>,
    pub elapsed_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaReport {
    pub first_response: Metric,
    pub resolution: Metric,
}

pub fn compute(_input: &SlaInput, _settings: &SlaSettings, _now_ms: i64) -> SlaReport {
    let none = Metric {
        state: SlaState::None,
        target_secs: None,
        due_at_ms: None,
        warn_at_ms: None,
        breached_at_ms: None,
        overrun_secs: None,
        stopped_at_ms: None,
        elapsed_secs: 0,
    };
    SlaReport { first_response: none.clone(), resolution: none }
}
