//! The SLA rules: from a ticket's timeline, the settings and "now" to the two
//! metrics of an [`SlaReport`].
//!
//! Each metric is decided in three steps:
//! 1. the clock: the stretches in which the status lets it run, cut at the
//!    instant it stops for good (the first response, or the close);
//! 2. the breach: the timeline is split wherever the target may change (a
//!    priority change or a new settings epoch); in each piece the target in
//!    force is compared with the elapsed time, and the first crossing is the
//!    breach, kept whatever comes later;
//! 3. for a running clock, the instants at which it will turn yellow and red
//!    if nothing else happens, found by running the clock forward.

use crate::model::{Priority, Status};

use super::clock::Clock;
use super::policy::{Epochs, MetricKind};
use super::{Metric, SlaInput, SlaReport, SlaSettings, SlaState};

/// Earliest instant the engine reasons about: 0001-01-01T00:00:00Z.
/// Instants outside the range are garbage; clamping them keeps every date
/// conversion inside chrono's range and every sum far from overflow.
pub const INSTANT_MIN_MS: i64 = -62_135_596_800_000;
/// Latest instant the engine reasons about: 9999-12-31T23:59:59.999Z.
pub const INSTANT_MAX_MS: i64 = 253_402_300_799_999;

pub(crate) fn clamp_instant(ms: i64) -> i64 {
    ms.clamp(INSTANT_MIN_MS, INSTANT_MAX_MS)
}

pub fn compute(input: &SlaInput, settings: &SlaSettings, now_ms: i64) -> SlaReport {
    // Business hours are read in the relay's time: a device's instants (and
    // its settings' epochs) move back by its skew, and the results forward.
    // Without a calendar the engine is the same in every frame.
    let skew = settings.skew_ms;
    if skew != 0 && settings.epochs.iter().any(|(_, p)| p.calendar.is_some()) {
        let back = |t: i64| t.saturating_sub(skew);
        let input = SlaInput {
            created_at_ms: back(input.created_at_ms),
            first_response_at_ms: input.first_response_at_ms.map(back),
            priority_changes: input.priority_changes.iter().map(|(t, p)| (back(*t), *p)).collect(),
            status_changes: input.status_changes.iter().map(|(t, s)| (back(*t), *s)).collect(),
        };
        let settings =
            SlaSettings { epochs: settings.epochs.iter().map(|(t, p)| (back(*t), p.clone())).collect(), skew_ms: 0 };
        let mut report = compute(&input, &settings, back(now_ms));
        for m in [&mut report.first_response, &mut report.resolution] {
            m.shift(skew);
        }
        return report;
    }
    let ticket = Ticket::new(input, now_ms);
    let epochs = Epochs::new(settings);
    SlaReport {
        first_response: metric(&ticket, &epochs, MetricKind::FirstResponse),
        resolution: metric(&ticket, &epochs, MetricKind::Resolution),
    }
}

/// The ticket's facts, cleaned: every instant clamped into the engine's range
/// and to no earlier than creation, events after "now" dropped (they have not
/// happened yet), lists sorted stably so that of two events at one instant
/// the later one in the input wins.
struct Ticket {
    created: i64,
    now: i64,
    /// Sorted; the first entry applies from creation whatever its time.
    priorities: Vec<(i64, Priority)>,
    /// Finished stretches in which the status let the clocks run.
    runs: Vec<(i64, i64)>,
    /// Set when the status lets the clocks run at "now" (or at the close).
    active_since: Option<i64>,
    /// When the clocks last stopped running; meaningful when not active.
    last_stop: i64,
    closed_at: Option<i64>,
    response_at: Option<i64>,
}

impl Ticket {
    fn new(input: &SlaInput, now_ms: i64) -> Ticket {
        let created = clamp_instant(input.created_at_ms);
        let now = clamp_instant(now_ms).max(created);
        let clean = |t: i64| clamp_instant(t).max(created);

        let mut priorities: Vec<(i64, Priority)> = input.priority_changes.iter().map(|&(t, p)| (clean(t), p)).collect();
        priorities.sort_by_key(|&(t, _)| t);
        if let Some(first) = priorities.first_mut() {
            first.0 = created;
        }
        priorities.retain(|&(t, _)| t <= now);

        let mut statuses: Vec<(i64, Status)> =
            input.status_changes.iter().map(|&(t, s)| (clean(t), s)).filter(|&(t, _)| t <= now).collect();
        statuses.sort_by_key(|&(t, _)| t);

        // A ticket is born open, so the clocks run from creation until the
        // status says otherwise. Nothing leaves closed: the walk ends there.
        let mut runs = Vec::new();
        let mut active_since = Some(created);
        let mut last_stop = created;
        let mut closed_at = None;
        for (t, status) in statuses {
            match (active_since, status.is_active()) {
                (Some(start), false) => {
                    if start < t {
                        runs.push((start, t));
                    }
                    active_since = None;
                    last_stop = t;
                }
                (None, true) => active_since = Some(t),
                _ => {}
            }
            if status == Status::Closed {
                closed_at = Some(t);
                break;
            }
        }

        let response_at = input.first_response_at_ms.map(clean).filter(|&t| t <= now);
        Ticket { created, now, priorities, runs, active_since, last_stop, closed_at, response_at }
    }

    fn priority_at(&self, t: i64) -> Option<Priority> {
        let after = self.priorities.partition_point(|&(at, _)| at <= t);
        after.checked_sub(1).and_then(|i| self.priorities.get(i)).map(|&(_, p)| p)
    }
}

/// How a clock stands at "now".
enum Phase {
    /// The status lets it run (it may still be outside business hours).
    Running,
    /// It has stopped, for good or until a reopen, at `stopped_at`; the rules
    /// are judged up to `judged_until`.
    Stopped { stopped_at: i64, judged_until: i64 },
}

fn metric(ticket: &Ticket, epochs: &Epochs, kind: MetricKind) -> Metric {
    // The response stops the first-response clock unless the close came first.
    let response = match kind {
        MetricKind::FirstResponse => ticket.response_at.filter(|&r| ticket.closed_at.is_none_or(|c| r <= c)),
        MetricKind::Resolution => None,
    };
    let phase = match (response, ticket.closed_at, ticket.active_since) {
        (Some(r), _, _) => Phase::Stopped { stopped_at: r, judged_until: r },
        (None, Some(closed), _) => Phase::Stopped { stopped_at: ticket.last_stop, judged_until: closed },
        (None, None, Some(_)) => Phase::Running,
        // Paused (resolved): changes during the pause still count, so the
        // rules are judged up to now.
        (None, None, None) => Phase::Stopped { stopped_at: ticket.last_stop, judged_until: ticket.now },
    };
    let until = match phase {
        Phase::Running => ticket.now,
        Phase::Stopped { judged_until, .. } => judged_until,
    };

    let mut runs = ticket.runs.clone();
    if let Some(start) = ticket.active_since {
        runs.push((start, INSTANT_MAX_MS));
    }
    if let Phase::Stopped { judged_until, .. } = phase {
        runs.retain_mut(|run| {
            run.1 = run.1.min(judged_until);
            run.0 < run.1
        });
    }
    let mut clock = Clock::new(ticket.created, runs, epochs);

    // Instants at which the target may change, each starting a segment.
    let mut starts: Vec<i64> = std::iter::once(ticket.created)
        .chain(ticket.priorities.iter().map(|&(t, _)| t).filter(|&t| t > ticket.created && t <= until))
        .chain(epochs.changes_within(ticket.created, until))
        .collect();
    starts.sort_unstable();
    starts.dedup();

    let target_ms_at = |t: i64| epochs.target_at(t, kind, ticket.priority_at(t)).map(|s| s.saturating_mul(1_000));
    let breach = first_breach(&mut clock, &starts, until, target_ms_at);

    let elapsed = clock.elapsed_at(until);
    let target_secs = epochs.target_at(until, kind, ticket.priority_at(until));
    let target_ms = target_secs.map(|s| s.saturating_mul(1_000));
    let overrun_secs = breach.map(|b| {
        // Against the lower of the broken target and the current one: a
        // raised target never shrinks the record of by how much it was
        // missed, and the overrun never jumps back as time goes on.
        let reference = target_ms.map_or(b.target_ms, |t| t.min(b.target_ms));
        elapsed.saturating_sub(reference) / 1_000
    });

    let mut metric = Metric {
        state: SlaState::None,
        target_secs,
        due_at_ms: None,
        warn_at_ms: None,
        breached_at_ms: breach.map(|b| b.at),
        overrun_secs,
        stopped_at_ms: match phase {
            Phase::Running => None,
            Phase::Stopped { stopped_at, .. } => Some(stopped_at),
        },
        elapsed_secs: elapsed / 1_000,
    };
    if breach.is_none() && target_ms.is_none() {
        return metric;
    }
    let Phase::Running = phase else {
        metric.state = if breach.is_some() { SlaState::Breached } else { SlaState::Met };
        return metric;
    };

    // The running clock: where it stands now and when it will turn yellow and
    // red if nothing else happens. The segment now is in starts at the last
    // start; later segments begin where a future settings epoch does, with
    // the priority of now.
    let priority = ticket.priority_at(ticket.now);
    let segment_start = starts.last().copied().unwrap_or(ticket.created);
    let segments: Vec<(i64, Option<u64>, u8)> = std::iter::once(segment_start)
        .chain(epochs.changes_within(ticket.now, INSTANT_MAX_MS))
        .map(|a| {
            let target = epochs.target_at(a, kind, priority).map(|s| s.saturating_mul(1_000));
            (a, target, epochs.warn_percent_at(a))
        })
        .collect();

    let warn_now = target_ms.map(|t| warn_threshold_ms(t, epochs.warn_percent_at(ticket.now)));
    let yellow_now = warn_now.is_some_and(|w| elapsed >= w);
    let due = match breach {
        Some(b) => Some(b.at),
        None => first_turn(&mut clock, &segments, |target, _| target),
    };
    let warn = match warn_now {
        // Already yellow: the instant elapsed time crossed the current
        // threshold, in the past, like a breach after a lowered target.
        Some(w) if yellow_now => clock.reach(w, ticket.now),
        Some(_) => first_turn(&mut clock, &segments, warn_threshold_ms),
        None => None,
    };
    metric.due_at_ms = due;
    // Red outranks yellow, so the warning never comes after the due instant.
    metric.warn_at_ms = match (warn, due) {
        (Some(w), Some(d)) => Some(w.min(d)),
        (None, Some(d)) => Some(d),
        (w, None) => w,
    };
    metric.state = if breach.is_some() {
        SlaState::Red
    } else if yellow_now {
        SlaState::Yellow
    } else {
        SlaState::Green
    };
    metric
}

#[derive(Debug, Clone, Copy)]
struct Breach {
    at: i64,
    target_ms: u64,
}

/// The first breach up to `until` (inclusive). `starts` are the instants at
/// which segments of constant target begin, sorted, the first at creation.
///
/// In a segment with target T, the clock is breached at the first instant
/// elapsed time reaches T. If it had already reached T when the segment began
/// (the target was just lowered), the breach is dated at that earlier instant,
/// as the rules ask.
fn first_breach(
    clock: &mut Clock,
    starts: &[i64],
    until: i64,
    target_ms_at: impl Fn(i64) -> Option<u64>,
) -> Option<Breach> {
    for (i, &start) in starts.iter().enumerate() {
        let Some(target_ms) = target_ms_at(start) else { continue };
        let next = starts.get(i + 1).copied();
        let Some(at) = clock.reach(target_ms, next.unwrap_or(until)) else { continue };
        let inside = match next {
            Some(next) => at < next,
            None => at <= until,
        };
        if inside {
            return Some(Breach { at, target_ms });
        }
    }
    None
}

/// The first instant from the segments' starts on at which elapsed time
/// reaches `threshold(target, warn_percent)` of the segment in force. A
/// threshold already passed when a segment begins turns at the segment's
/// start, since that is when the colour changes on screen.
fn first_turn(
    clock: &mut Clock,
    segments: &[(i64, Option<u64>, u8)],
    threshold: impl Fn(u64, u8) -> u64,
) -> Option<i64> {
    for (i, &(start, target, warn_percent)) in segments.iter().enumerate() {
        let Some(target) = target else { continue };
        let end = segments.get(i + 1).map_or(i64::MAX, |s| s.0);
        if let Some(at) = clock.reach(threshold(target, warn_percent), end) {
            if at < end {
                return Some(at.max(start));
            }
        }
    }
    None
}

/// Elapsed milliseconds at which a clock turns yellow: the least E with
/// `E * 100 >= target * warn_percent`.
fn warn_threshold_ms(target_ms: u64, warn_percent: u8) -> u64 {
    let product = u128::from(target_ms) * u128::from(warn_percent);
    u64::try_from(product.div_ceil(100)).unwrap_or(u64::MAX)
}
