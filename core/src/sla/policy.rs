//! The settings timeline, arranged for "what is in force at instant t".

use std::cell::OnceCell;

use crate::model::Priority;

use super::calendar::CompiledCalendar;
use super::{SlaPolicy, SlaSettings, WARN_PERCENT_DEFAULT};

/// Which of the two SLA clocks a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    FirstResponse,
    Resolution,
}

struct Epoch<'a> {
    from: i64,
    policy: &'a SlaPolicy,
    /// `None` both without a calendar and with an invalid one: an invalid
    /// calendar counts 24x7 rather than stopping every clock. Compiled on
    /// first use, since a long settings history mostly holds epochs that no
    /// given ticket lives through.
    calendar: OnceCell<Option<CompiledCalendar>>,
}

/// Policies sorted by the instant they take effect. Two policies from the same
/// instant: the later one in the settings wins.
pub(crate) struct Epochs<'a> {
    list: Vec<Epoch<'a>>,
}

impl<'a> Epochs<'a> {
    pub(crate) fn new(settings: &'a SlaSettings) -> Epochs<'a> {
        let mut list: Vec<Epoch<'a>> = settings
            .epochs
            .iter()
            .map(|(from, policy)| Epoch { from: *from, policy, calendar: OnceCell::new() })
            .collect();
        list.sort_by_key(|e| e.from);
        Epochs { list }
    }

    /// The epoch in force at `t`; the first one also covers all time before it.
    fn at(&self, t: i64) -> Option<&Epoch<'a>> {
        let after = self.list.partition_point(|e| e.from <= t);
        self.list.get(after.saturating_sub(1))
    }

    /// The first instant after `t` at which another policy takes effect.
    pub(crate) fn next_change_after(&self, t: i64) -> i64 {
        let after = self.list.partition_point(|e| e.from <= t);
        self.list.get(after).map_or(i64::MAX, |e| e.from)
    }

    /// Instants in `(after, until]` at which another policy takes effect,
    /// in order, each once.
    pub(crate) fn changes_within(&self, after: i64, until: i64) -> Vec<i64> {
        let mut changes: Vec<i64> =
            self.list.iter().map(|e| e.from).filter(|&from| after < from && from <= until).collect();
        changes.dedup();
        changes
    }

    pub(crate) fn calendar_at(&self, t: i64) -> Option<&CompiledCalendar> {
        let epoch = self.at(t)?;
        epoch
            .calendar
            .get_or_init(|| epoch.policy.calendar.as_ref().and_then(|c| CompiledCalendar::new(c).ok()))
            .as_ref()
    }

    /// The target in seconds for a priority at `t`, if one is configured.
    pub(crate) fn target_at(&self, t: i64, kind: MetricKind, priority: Option<Priority>) -> Option<u64> {
        let targets = self.at(t)?.policy.targets.get(&priority?)?;
        match kind {
            MetricKind::FirstResponse => targets.first_response_secs,
            MetricKind::Resolution => targets.resolution_secs,
        }
    }

    pub(crate) fn warn_percent_at(&self, t: i64) -> u8 {
        self.at(t).map_or(WARN_PERCENT_DEFAULT, |e| e.policy.warn_percent)
    }
}
