//! Table-driven SLA rules: one `check` and many small cases whose expected
//! figures are worked out by hand in the comments.
//!
//! Every instant is written and printed in UTC as `MM-DD HH:MM[:SS[.mmm]]`
//! (the year 2026 is implied). Unless a case says otherwise, a ticket is
//! created on Monday 03-02 at 09:00 and the settings are [`standard`]:
//!
//! | priority | first response | resolution |
//! |----------|----------------|------------|
//! | urgent   | 15m            | 4h         |
//! | high     | 1h             | 8h         |
//! | medium   | 4h             | 1d         |
//! | low      | 1d             | none       |
//!
//! with the default 75% warning, so urgent warns at 11m15s and 3h.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Timelike};
use proptest::prelude::*;

use super::*;
use crate::duration::{format_duration, parse_duration};
use crate::model::Priority::{High, Low, Medium, Urgent};
use crate::model::Status::{Closed, InProgress, Open, Resolved};

// ---------------------------------------------------------------- helpers

/// `"03-02 09:00"`, `"03-02 09:11:15"`, `"03-02 09:00:07.500"` or with a
/// year, `"2027-01-01 00:00"`, read as UTC.
fn at(text: &str) -> i64 {
    let full = if text.len() > 5 && text.as_bytes()[2] == b'-' { format!("2026-{text}") } else { text.to_string() };
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&full, f).ok())
        .unwrap_or_else(|| panic!("bad instant in test: {text}"))
        .and_utc()
        .timestamp_millis()
}

fn show_instant(ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else { return format!("{ms}ms") };
    let mut text =
        t.format(if t.format("%Y").to_string() == "2026" { "%m-%d %H:%M" } else { "%Y-%m-%d %H:%M" }).to_string();
    if t.second() != 0 || t.timestamp_subsec_millis() != 0 {
        text += &t.format(":%S").to_string();
    }
    if t.timestamp_subsec_millis() != 0 {
        text += &format!(".{:03}", t.timestamp_subsec_millis());
    }
    text
}

/// One line per metric; absent fields are left out.
fn show(m: &Metric) -> String {
    let mut parts = vec![m.state.to_string()];
    if let Some(t) = m.target_secs {
        parts.push(format!("target={}", format_duration(t)));
    }
    parts.push(format!("elapsed={}", format_duration(m.elapsed_secs)));
    for (name, instant) in [("warn", m.warn_at_ms), ("due", m.due_at_ms), ("breached", m.breached_at_ms)] {
        if let Some(t) = instant {
            parts.push(format!("{name}={}", show_instant(t)));
        }
    }
    if let Some(o) = m.overrun_secs {
        parts.push(format!("overrun={}", format_duration(o)));
    }
    if let Some(t) = m.stopped_at_ms {
        parts.push(format!("stopped={}", show_instant(t)));
    }
    parts.join(" ")
}

struct Ticket(SlaInput);

fn ticket(created: &str, priority: Priority) -> Ticket {
    ticket_at(at(created), priority)
}

fn ticket_at(created: i64, priority: Priority) -> Ticket {
    Ticket(SlaInput {
        created_at_ms: created,
        first_response_at_ms: None,
        priority_changes: vec![(created, priority)],
        status_changes: vec![(created, Open)],
    })
}

impl Ticket {
    fn status(mut self, t: &str, status: Status) -> Ticket {
        self.0.status_changes.push((at(t), status));
        self
    }
    fn priority(mut self, t: &str, priority: Priority) -> Ticket {
        self.0.priority_changes.push((at(t), priority));
        self
    }
    fn respond(mut self, t: &str) -> Ticket {
        self.0.first_response_at_ms = Some(at(t));
        self
    }
}

/// Targets as `(priority, first response, resolution)`, `"-"` for none.
fn policy(targets: &[(Priority, &str, &str)]) -> SlaPolicy {
    let secs = |text: &str| (text != "-").then(|| parse_duration(text).expect("valid duration in test"));
    let targets: BTreeMap<Priority, Targets> = targets
        .iter()
        .map(|&(p, fr, res)| (p, Targets { first_response_secs: secs(fr), resolution_secs: secs(res) }))
        .collect();
    SlaPolicy { targets, ..SlaPolicy::default() }
}

fn standard() -> SlaPolicy {
    policy(&[(Urgent, "15m", "4h"), (High, "1h", "8h"), (Medium, "4h", "1d"), (Low, "1d", "-")])
}

fn only(policy: SlaPolicy) -> SlaSettings {
    SlaSettings { epochs: vec![(at("01-01 00:00"), policy)], skew_ms: 0 }
}

fn epochs(list: Vec<(&str, SlaPolicy)>) -> SlaSettings {
    SlaSettings { epochs: list.into_iter().map(|(from, p)| (at(from), p)).collect(), skew_ms: 0 }
}

/// Berlin office hours, Monday to Friday 09:00-17:00 local, closed on Good
/// Friday (04-03) and Easter Monday (04-06). Berlin is UTC+1 until Sunday
/// 03-29 02:00 local, then UTC+2: 09:00-17:00 local is 08:00-16:00Z in
/// March before the change and 07:00-15:00Z after it.
fn berlin_office() -> Calendar {
    Calendar {
        time_zone: "Europe/Berlin".into(),
        weekly: (0..5).map(|weekday| WeeklyInterval { weekday, start_min: 9 * 60, end_min: 17 * 60 }).collect(),
        holidays: vec!["2026-04-03".into(), "2026-04-06".into()],
    }
}

/// Open all Sunday long (local), closed the rest of the week: the length of
/// a Sunday shows the DST change directly.
fn berlin_sundays() -> Calendar {
    Calendar {
        time_zone: "Europe/Berlin".into(),
        weekly: vec![WeeklyInterval { weekday: 6, start_min: 0, end_min: 1440 }],
        holidays: vec![],
    }
}

fn with_calendar(mut policy: SlaPolicy, calendar: Calendar) -> SlaPolicy {
    policy.calendar = Some(calendar);
    policy
}

#[track_caller]
fn check(ticket: Ticket, settings: &SlaSettings, now: &str, first_response: &str, resolution: &str) {
    let report = compute(&ticket.0, settings, at(now));
    assert_eq!(
        (show(&report.first_response).as_str(), show(&report.resolution).as_str()),
        (first_response, resolution),
        "\n  input: {:?}\n  now: {now}",
        ticket.0
    );
}

// ---------------------------------------------------------------- 24x7

#[test]
fn running_clock_turns_yellow_then_red_exactly() {
    let s = only(standard());
    // 5 minutes in: warn at 75% of 15m = 11m15s, due at 15m; resolution
    // warns at 3h and is due at 4h.
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:05",
        "green target=15m elapsed=5m warn=03-02 09:11:15 due=03-02 09:15",
        "green target=4h elapsed=5m warn=03-02 12:00 due=03-02 13:00",
    );
    // One millisecond before the threshold: still green.
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:11:14.999",
        "green target=15m elapsed=11m 14s warn=03-02 09:11:15 due=03-02 09:15",
        "green target=4h elapsed=11m 14s warn=03-02 12:00 due=03-02 13:00",
    );
    // Exactly at the threshold: 675s * 100 >= 900s * 75.
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:11:15",
        "yellow target=15m elapsed=11m 15s warn=03-02 09:11:15 due=03-02 09:15",
        "green target=4h elapsed=11m 15s warn=03-02 12:00 due=03-02 13:00",
    );
    // Exactly at the target: red, overrun zero.
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:15",
        "red target=15m elapsed=15m warn=03-02 09:11:15 due=03-02 09:15 breached=03-02 09:15 overrun=0s",
        "green target=4h elapsed=15m warn=03-02 12:00 due=03-02 13:00",
    );
}

#[test]
fn thresholds_are_exact_to_the_millisecond() {
    // 10s at 75% warns at 7.5s, not at a whole second.
    let s = only(policy(&[(Urgent, "10s", "-")]));
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:00:07.499",
        "green target=10s elapsed=7s warn=03-02 09:00:07.500 due=03-02 09:00:10",
        "none elapsed=7s",
    );
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:00:07.500",
        "yellow target=10s elapsed=7s warn=03-02 09:00:07.500 due=03-02 09:00:10",
        "none elapsed=7s",
    );
}

#[test]
fn warn_percent_extremes() {
    // 0%: yellow from creation.
    let mut zero = standard();
    zero.warn_percent = 0;
    check(
        ticket("03-02 09:00", Urgent),
        &only(zero),
        "03-02 09:00",
        "yellow target=15m elapsed=0s warn=03-02 09:00 due=03-02 09:15",
        "yellow target=4h elapsed=0s warn=03-02 09:00 due=03-02 13:00",
    );
    // 100% and above: the warning coincides with the due instant.
    for percent in [100, 200] {
        let mut full = standard();
        full.warn_percent = percent;
        check(
            ticket("03-02 09:00", Urgent),
            &only(full),
            "03-02 09:14",
            "green target=15m elapsed=14m warn=03-02 09:15 due=03-02 09:15",
            "green target=4h elapsed=14m warn=03-02 13:00 due=03-02 13:00",
        );
    }
}

#[test]
fn first_response() {
    let s = only(standard());
    // Answered after 10 minutes of a 15-minute target: met.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:10"),
        &s,
        "03-02 10:00",
        "met target=15m elapsed=10m stopped=03-02 09:10",
        "green target=4h elapsed=1h warn=03-02 12:00 due=03-02 13:00",
    );
    // Answered after 20 minutes: breached at 09:15 by 5 minutes.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:20"),
        &s,
        "03-02 10:00",
        "breached target=15m elapsed=20m breached=03-02 09:15 overrun=5m stopped=03-02 09:20",
        "green target=4h elapsed=1h warn=03-02 12:00 due=03-02 13:00",
    );
    // Answered exactly at the target is not before it: breached by zero.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:15"),
        &s,
        "03-02 10:00",
        "breached target=15m elapsed=15m breached=03-02 09:15 overrun=0s stopped=03-02 09:15",
        "green target=4h elapsed=1h warn=03-02 12:00 due=03-02 13:00",
    );
    // A reply held by the conversation the ticket came from can predate the
    // ticket: it counts as answered at creation.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 08:00"),
        &s,
        "03-02 09:05",
        "met target=15m elapsed=0s stopped=03-02 09:00",
        "green target=4h elapsed=5m warn=03-02 12:00 due=03-02 13:00",
    );
}

#[test]
fn closed_without_response() {
    let s = only(standard());
    // Closed at 09:10, before the 09:15 breach: both met.
    check(
        ticket("03-02 09:00", Urgent).status("03-02 09:10", Closed),
        &s,
        "03-02 10:00",
        "met target=15m elapsed=10m stopped=03-02 09:10",
        "met target=4h elapsed=10m stopped=03-02 09:10",
    );
    // Closed at 09:30: first response had breached at 09:15.
    check(
        ticket("03-02 09:00", Urgent).status("03-02 09:30", Closed),
        &s,
        "03-02 10:00",
        "breached target=15m elapsed=30m breached=03-02 09:15 overrun=15m stopped=03-02 09:30",
        "met target=4h elapsed=30m stopped=03-02 09:30",
    );
    // A response after the close comes too late to stop anything.
    check(
        ticket("03-02 09:00", Urgent).status("03-02 09:30", Closed).respond("03-02 09:40"),
        &s,
        "03-02 10:00",
        "breached target=15m elapsed=30m breached=03-02 09:15 overrun=15m stopped=03-02 09:30",
        "met target=4h elapsed=30m stopped=03-02 09:30",
    );
}

#[test]
fn pause_and_reopen() {
    let s = only(standard());
    // Resolved 10:00-12:00 does not count: at 13:30, 1h + 1h30m = 2h30m.
    // Another 30m (14:00) reaches the 3h warning, 1h30m (15:00) the target.
    check(
        ticket("03-02 09:00", Urgent)
            .respond("03-02 09:05")
            .status("03-02 10:00", Resolved)
            .status("03-02 12:00", Open),
        &s,
        "03-02 13:30",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "green target=4h elapsed=2h 30m warn=03-02 14:00 due=03-02 15:00",
    );
    check(
        ticket("03-02 09:00", Urgent)
            .respond("03-02 09:05")
            .status("03-02 10:00", Resolved)
            .status("03-02 12:00", Open),
        &s,
        "03-02 14:00",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "yellow target=4h elapsed=3h warn=03-02 14:00 due=03-02 15:00",
    );
    // While resolved the clock is stopped: met, stopped at the resolution.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:05").status("03-02 10:00", Resolved),
        &s,
        "03-02 12:00",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "met target=4h elapsed=1h stopped=03-02 10:00",
    );
    // Resolved after the 13:00 breach: breached while paused...
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:05").status("03-02 14:00", Resolved),
        &s,
        "03-02 15:00",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "breached target=4h elapsed=5h breached=03-02 13:00 overrun=1h stopped=03-02 14:00",
    );
    // ...and red again once reopened, the breach kept: 5h + 30m.
    check(
        ticket("03-02 09:00", Urgent)
            .respond("03-02 09:05")
            .status("03-02 14:00", Resolved)
            .status("03-02 16:00", InProgress),
        &s,
        "03-02 16:30",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "red target=4h elapsed=5h 30m warn=03-02 12:00 due=03-02 13:00 breached=03-02 13:00 overrun=1h 30m",
    );
    // The first-response clock pauses too: 10m before the pause, then it
    // resumes at 10:00 and reaches 11m15s at 10:01:15 and 15m at 10:05.
    check(
        ticket("03-02 09:00", Urgent).status("03-02 09:10", Resolved),
        &s,
        "03-02 10:00",
        "met target=15m elapsed=10m stopped=03-02 09:10",
        "met target=4h elapsed=10m stopped=03-02 09:10",
    );
    check(
        ticket("03-02 09:00", Urgent).status("03-02 09:10", Resolved).status("03-02 10:00", Open),
        &s,
        "03-02 10:10",
        "red target=15m elapsed=20m warn=03-02 10:01:15 due=03-02 10:05 breached=03-02 10:05 overrun=5m",
        "green target=4h elapsed=20m warn=03-02 12:50 due=03-02 13:50",
    );
}

#[test]
fn closed_stops_for_good() {
    let s = only(standard());
    // Resolved then closed: the clock stopped when it was resolved.
    check(
        ticket("03-02 09:00", Urgent)
            .respond("03-02 09:05")
            .status("03-02 10:00", Resolved)
            .status("03-02 11:00", Closed),
        &s,
        "03-02 12:00",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "met target=4h elapsed=1h stopped=03-02 10:00",
    );
    // Nothing leaves closed: a later reopen in the input is ignored.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:05").status("03-02 10:00", Closed).status("03-02 11:00", Open),
        &s,
        "03-02 12:00",
        "met target=15m elapsed=5m stopped=03-02 09:05",
        "met target=4h elapsed=1h stopped=03-02 10:00",
    );
}

#[test]
fn priority_changes() {
    let s = only(standard());
    // Medium to urgent at 11:00 with 2h elapsed. Resolution: 4h applies,
    // 3h at 12:00 is exactly the warning. First response: 2h already exceeds
    // 15m, so it breached at 09:15, when elapsed time crossed 15m.
    check(
        ticket("03-02 09:00", Medium).priority("03-02 11:00", Urgent),
        &s,
        "03-02 12:00",
        "red target=15m elapsed=3h warn=03-02 09:11:15 due=03-02 09:15 breached=03-02 09:15 overrun=2h 45m",
        "yellow target=4h elapsed=3h warn=03-02 12:00 due=03-02 13:00",
    );
    // Urgent to low at 09:10, before any breach: low's 1d first-response
    // target applies (warn at 18h); low has no resolution target.
    check(
        ticket("03-02 09:00", Urgent).priority("03-02 09:10", Low),
        &s,
        "03-02 10:00",
        "green target=1d elapsed=1h warn=03-03 03:00 due=03-03 09:00",
        "none elapsed=1h",
    );
    // Breach at 09:15, then downgraded to low at 09:30: still red, the breach
    // and its overrun against the broken 15m are kept.
    check(
        ticket("03-02 09:00", Urgent).priority("03-02 09:30", Low),
        &s,
        "03-02 10:00",
        "red target=1d elapsed=1h warn=03-02 09:15 due=03-02 09:15 breached=03-02 09:15 overrun=45m",
        "none elapsed=1h",
    );
    // ...and breached once answered.
    check(
        ticket("03-02 09:00", Urgent).priority("03-02 09:30", Low).respond("03-02 10:30"),
        &s,
        "03-02 11:00",
        "breached target=1d elapsed=1h 30m breached=03-02 09:15 overrun=1h 15m stopped=03-02 10:30",
        "none elapsed=2h",
    );
    // Resolution breached at 13:00, then downgraded to low, which has no
    // resolution target: still red, with no target to show.
    check(
        ticket("03-02 09:00", Urgent).priority("03-02 14:00", Low),
        &s,
        "03-02 15:00",
        "red target=1d elapsed=6h warn=03-02 09:15 due=03-02 09:15 breached=03-02 09:15 overrun=5h 45m",
        "red elapsed=6h warn=03-02 13:00 due=03-02 13:00 breached=03-02 13:00 overrun=2h",
    );
}

#[test]
fn settings_changes() {
    // Urgent first response raised to 1h from 09:30, after the 09:15 breach:
    // the breach stays, measured against the lower of 15m and 1h.
    let mut relaxed = standard();
    relaxed.targets.insert(Urgent, Targets { first_response_secs: Some(3_600), resolution_secs: Some(4 * 3_600) });
    let s = epochs(vec![("01-01 00:00", standard()), ("03-02 09:30", relaxed)]);
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 09:45",
        "red target=1h elapsed=45m warn=03-02 09:15 due=03-02 09:15 breached=03-02 09:15 overrun=30m",
        "green target=4h elapsed=45m warn=03-02 12:00 due=03-02 13:00",
    );

    // Medium first response lowered to 30m from 10:00, with 1h elapsed: it
    // breached at 09:30, when elapsed time crossed 30m.
    let mut strict = standard();
    strict.targets.insert(Medium, Targets { first_response_secs: Some(1_800), resolution_secs: Some(86_400) });
    let s = epochs(vec![("01-01 00:00", standard()), ("03-02 10:00", strict)]);
    check(
        ticket("03-02 09:00", Medium),
        &s,
        "03-02 10:15",
        "red target=30m elapsed=1h 15m warn=03-02 09:22:30 due=03-02 09:30 breached=03-02 09:30 overrun=45m",
        "green target=1d elapsed=1h 15m warn=03-03 03:00 due=03-03 09:00",
    );

    // A policy that takes effect at 12:00 with medium resolution 2h. At
    // 10:00 the clock is green, and will turn red (and yellow) at 12:00,
    // when the new target applies to 3h already elapsed.
    let mut future = standard();
    future.targets.insert(Medium, Targets { first_response_secs: Some(4 * 3_600), resolution_secs: Some(7_200) });
    let s = epochs(vec![("01-01 00:00", standard()), ("03-02 12:00", future)]);
    check(
        ticket("03-02 09:00", Medium).respond("03-02 09:05"),
        &s,
        "03-02 10:00",
        "met target=4h elapsed=5m stopped=03-02 09:05",
        "green target=1d elapsed=1h warn=03-02 12:00 due=03-02 12:00",
    );
    // At 12:00 it is red, dated when elapsed time crossed 2h (11:00).
    check(
        ticket("03-02 09:00", Medium).respond("03-02 09:05"),
        &s,
        "03-02 12:00",
        "met target=4h elapsed=5m stopped=03-02 09:05",
        "red target=2h elapsed=3h warn=03-02 10:30 due=03-02 11:00 breached=03-02 11:00 overrun=1h",
    );

    // The first policy also covers the time before it takes effect.
    check(
        ticket("03-02 09:00", Urgent),
        &epochs(vec![("2027-01-01 00:00", standard())]),
        "03-02 09:05",
        "green target=15m elapsed=5m warn=03-02 09:11:15 due=03-02 09:15",
        "green target=4h elapsed=5m warn=03-02 12:00 due=03-02 13:00",
    );
}

#[test]
fn no_target_is_none() {
    // No settings at all.
    check(ticket("03-02 09:00", Urgent), &SlaSettings::default(), "03-02 10:00", "none elapsed=1h", "none elapsed=1h");
    // Settings without this priority.
    check(
        ticket("03-02 09:00", Low),
        &only(policy(&[(Urgent, "15m", "4h")])),
        "03-02 10:00",
        "none elapsed=1h",
        "none elapsed=1h",
    );
    // No priority known.
    let mut unknown = ticket("03-02 09:00", Low);
    unknown.0.priority_changes.clear();
    check(unknown, &only(standard()), "03-02 10:00", "none elapsed=1h", "none elapsed=1h");
    // Stopped without a target: still none, with the stop shown.
    check(
        ticket("03-02 09:00", Low).respond("03-02 09:30").status("03-02 10:00", Closed),
        &only(policy(&[(Urgent, "15m", "4h")])),
        "03-02 11:00",
        "none elapsed=30m stopped=03-02 09:30",
        "none elapsed=1h stopped=03-02 10:00",
    );
}

// ---------------------------------------------------------------- calendars

#[test]
fn calendar_out_of_hours_and_weekend() {
    let s = only(with_calendar(standard(), berlin_office()));
    // Created Monday 07:00 local (06:00Z), before opening: nothing counts
    // until 09:00 local (08:00Z).
    check(
        ticket("03-02 06:00", Urgent),
        &s,
        "03-02 07:00",
        "green target=15m elapsed=0s warn=03-02 08:11:15 due=03-02 08:15",
        "green target=4h elapsed=0s warn=03-02 11:00 due=03-02 12:00",
    );
    // Created Friday 16:00 local (15:00Z), one business hour before the
    // weekend. High resolution 8h: 1h on Friday, then Monday from 08:00Z,
    // warn after 5 more hours (13:00Z), due after 7 (15:00Z).
    check(
        ticket("03-06 15:00", High).respond("03-06 15:30"),
        &s,
        "03-07 12:00",
        "met target=1h elapsed=30m stopped=03-06 15:30",
        "green target=8h elapsed=1h warn=03-09 13:00 due=03-09 15:00",
    );
    // Unanswered, high's 1h first response is reached at Friday's closing.
    check(
        ticket("03-06 15:00", High),
        &s,
        "03-07 12:00",
        "red target=1h elapsed=1h warn=03-06 15:45 due=03-06 16:00 breached=03-06 16:00 overrun=0s",
        "green target=8h elapsed=1h warn=03-09 13:00 due=03-09 15:00",
    );
}

/// A device whose clock is `skew` off sees every instant moved by its skew
/// and business hours where they really are: the relay's report, shifted.
#[test]
fn a_device_frame_reads_calendars_in_relay_time() {
    let relay = only(with_calendar(standard(), berlin_office()));
    for skew in [3 * 3_600_000, -3 * 3_600_000, 61_000, -90 * 60_000] {
        let mut device = relay.clone();
        for (from, _) in device.epochs.iter_mut() {
            *from += skew;
        }
        device.skew_ms = skew;
        for (created, responded, now) in
            [("03-02 06:00", None, "03-02 07:00"), ("03-06 15:00", Some("03-06 15:30"), "03-07 12:00")]
        {
            let mut t = ticket(created, High);
            if let Some(r) = responded {
                t = t.respond(r);
            }
            let expected = compute(&t.0, &relay, at(now));
            let moved = |v: i64| v + skew;
            let input = SlaInput {
                created_at_ms: moved(t.0.created_at_ms),
                first_response_at_ms: t.0.first_response_at_ms.map(moved),
                priority_changes: t.0.priority_changes.iter().map(|(at, p)| (moved(*at), *p)).collect(),
                status_changes: t.0.status_changes.iter().map(|(at, s)| (moved(*at), *s)).collect(),
            };
            let seen = compute(&input, &device, moved(at(now)));
            for (got, want) in
                [(&seen.first_response, &expected.first_response), (&seen.resolution, &expected.resolution)]
            {
                let mut want = want.clone();
                want.shift(skew);
                assert_eq!(got, &want, "skew {skew} ms, ticket created {created}");
            }
        }
    }
}

#[test]
fn calendar_holidays() {
    let s = only(with_calendar(standard(), berlin_office()));
    // Created Thursday 04-02 16:00 local (CEST, 14:00Z): 1h on Thursday;
    // Good Friday, the weekend and Easter Monday are closed; Tuesday 04-07
    // opens 07:00Z: warn after 5h more (12:00Z), due after 7h (14:00Z).
    check(
        ticket("04-02 14:00", High).respond("04-02 14:30"),
        &s,
        "04-06 10:00",
        "met target=1h elapsed=30m stopped=04-02 14:30",
        "green target=8h elapsed=1h warn=04-07 12:00 due=04-07 14:00",
    );
}

#[test]
fn calendar_across_dst() {
    let s = only(with_calendar(standard(), berlin_office()));
    // Created Friday 03-27 15:00 CET (14:00Z), medium, resolution 1d = 24
    // business hours. Friday 14:00-16:00Z gives 2h. After Sunday's change
    // 09:00 local is 07:00Z: Monday 07:00-08:00Z makes 3h at now. Monday's
    // full day makes 10h, Tuesday's 18h at 15:00Z (the warning), and
    // Wednesday 07:00Z + 6h = 13:00Z reaches 24h.
    check(
        ticket("03-27 14:00", Medium).respond("03-27 14:10"),
        &s,
        "03-30 08:00",
        "met target=4h elapsed=10m stopped=03-27 14:10",
        "green target=1d elapsed=3h warn=03-31 15:00 due=04-01 13:00",
    );

    let sundays = only(with_calendar(standard(), berlin_sundays()));
    // Spring: Sunday 03-29 runs from 00:00 CET (03-28 23:00Z) to 24:00 CEST
    // (03-29 22:00Z), only 23 real hours. At 12:00Z, 13h have counted; 18h
    // are reached at 17:00Z; the 24th hour comes on the next Sunday, which
    // starts 04-04 22:00Z: due 23:00Z.
    check(
        ticket("03-28 12:00", Medium).respond("03-28 12:00"),
        &sundays,
        "03-29 12:00",
        "met target=4h elapsed=0s stopped=03-28 12:00",
        "green target=1d elapsed=13h warn=03-29 17:00 due=04-04 23:00",
    );
    // Autumn: Sunday 10-25 runs from 00:00 CEST (10-24 22:00Z) to 24:00 CET
    // (10-25 23:00Z), 25 real hours, so 24h fit in the same Sunday: due
    // 10-25 22:00Z (23:00 local), warning at 16:00Z.
    check(
        ticket("10-24 12:00", Medium).respond("10-24 12:00"),
        &sundays,
        "10-25 12:00",
        "met target=4h elapsed=0s stopped=10-24 12:00",
        "green target=1d elapsed=14h warn=10-25 16:00 due=10-25 22:00",
    );
}

#[test]
fn calendar_breach_after_priority_change_is_dated_in_business_time() {
    let s = only(with_calendar(standard(), berlin_office()));
    // Created Monday 16:00 local (15:00Z), medium. Made urgent on Tuesday at
    // 10:00Z with 1h (Monday) + 2h (Tuesday from 08:00Z) = 3h elapsed.
    // First response: 3h exceeds 15m, crossed Monday at 15:15Z. Resolution:
    // 3h is exactly urgent's warning, reached at the change; due 11:00Z.
    check(
        ticket("03-02 15:00", Medium).priority("03-03 10:00", Urgent),
        &s,
        "03-03 10:30",
        "red target=15m elapsed=3h 30m warn=03-02 15:11:15 due=03-02 15:15 breached=03-02 15:15 overrun=3h 15m",
        "yellow target=4h elapsed=3h 30m warn=03-03 10:00 due=03-03 11:00",
    );
}

#[test]
fn calendar_from_a_settings_change() {
    // 24x7 until Monday 07:00Z, office hours after: 06:00-07:00Z counts 1h,
    // then nothing until 08:00Z; warn after 2h more (10:00Z), due after 3h.
    let s = epochs(vec![("01-01 00:00", standard()), ("03-02 07:00", with_calendar(standard(), berlin_office()))]);
    check(
        ticket("03-02 06:00", Urgent).respond("03-02 06:05"),
        &s,
        "03-02 07:30",
        "met target=15m elapsed=5m stopped=03-02 06:05",
        "green target=4h elapsed=1h warn=03-02 10:00 due=03-02 11:00",
    );
}

#[test]
fn invalid_calendar_counts_24x7() {
    let mut bad_zone = berlin_office();
    bad_zone.time_zone = "Mars/Olympus".into();
    let mut bad_holiday = berlin_office();
    bad_holiday.holidays.push("2026-02-30".into());
    let mut bad_interval = berlin_office();
    bad_interval.weekly.push(WeeklyInterval { weekday: 9, start_min: 0, end_min: 60 });
    for calendar in [bad_zone, bad_holiday, bad_interval] {
        assert!(calendar.validate().is_err());
        // Created Monday 06:00Z, out of office hours, yet counting at once.
        check(
            ticket("03-02 06:00", Urgent),
            &only(with_calendar(standard(), calendar)),
            "03-02 06:05",
            "green target=15m elapsed=5m warn=03-02 06:11:15 due=03-02 06:15",
            "green target=4h elapsed=5m warn=03-02 09:00 due=03-02 10:00",
        );
    }
}

// ---------------------------------------------------------------- garbage

#[test]
fn odd_input_is_cleaned() {
    let s = only(standard());
    // Statuses unsorted and one before creation (read as at creation):
    // resolved at 09:00, reopened at 11:00. At 12:00 1h has counted.
    let mut t = ticket("03-02 09:00", Urgent);
    t.0.status_changes = vec![(at("03-02 11:00"), Open), (at("03-02 08:00"), Resolved)];
    check(
        t,
        &s,
        "03-02 12:00",
        "red target=15m elapsed=1h warn=03-02 11:11:15 due=03-02 11:15 breached=03-02 11:15 overrun=45m",
        "green target=4h elapsed=1h warn=03-02 14:00 due=03-02 15:00",
    );
    // Priorities unsorted, one before creation: low from creation, urgent
    // from 10:00. Low has no resolution target; urgent's 4h then counts
    // the 1h already elapsed.
    let mut t = ticket("03-02 09:00", Urgent);
    t.0.priority_changes = vec![(at("03-02 10:00"), Urgent), (at("03-02 08:00"), Low)];
    check(
        t,
        &s,
        "03-02 10:30",
        "red target=15m elapsed=1h 30m warn=03-02 09:11:15 due=03-02 09:15 breached=03-02 09:15 overrun=1h 15m",
        "green target=4h elapsed=1h 30m warn=03-02 12:00 due=03-02 13:00",
    );
    // "Now" before creation: as at creation.
    check(
        ticket("03-02 09:00", Urgent),
        &s,
        "03-02 08:00",
        "green target=15m elapsed=0s warn=03-02 09:11:15 due=03-02 09:15",
        "green target=4h elapsed=0s warn=03-02 12:00 due=03-02 13:00",
    );
    // Events after "now" have not happened yet.
    check(
        ticket("03-02 09:00", Urgent).respond("03-02 09:20").status("03-02 09:30", Closed),
        &s,
        "03-02 09:10",
        "green target=15m elapsed=10m warn=03-02 09:11:15 due=03-02 09:15",
        "green target=4h elapsed=10m warn=03-02 12:00 due=03-02 13:00",
    );
}

#[test]
fn extreme_values_never_panic() {
    let huge = SlaPolicy {
        targets: Priority::ALL
            .iter()
            .map(|&p| (p, Targets { first_response_secs: Some(u64::MAX), resolution_secs: Some(0) }))
            .collect(),
        warn_percent: u8::MAX,
        calendar: None,
    };
    let settings = [
        SlaSettings::default(),
        only(standard()),
        only(huge.clone()),
        only(with_calendar(huge, berlin_office())),
        SlaSettings {
            epochs: vec![(i64::MAX, standard()), (i64::MIN, with_calendar(standard(), berlin_sundays()))],
            skew_ms: 0,
        },
    ];
    let instants = [i64::MIN, -1, 0, at("03-02 09:00"), i64::MAX];
    for settings in &settings {
        for &created in &instants {
            for &now in &instants {
                for &other in &instants {
                    let mut t = ticket_at(created, Urgent);
                    t.0.first_response_at_ms = Some(other);
                    t.0.priority_changes.push((other, Low));
                    t.0.status_changes.push((other, Resolved));
                    let report = compute(&t.0, settings, now);
                    for m in [report.first_response, report.resolution] {
                        assert!(m.warn_at_ms <= m.due_at_ms || m.due_at_ms.is_none());
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- properties

fn arb_priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

fn arb_status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

/// Mostly instants within a few weeks of `BASE`, sometimes anything.
fn arb_instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => (0i64..40 * 86_400_000).prop_map(|d| at("03-02 09:00") + d),
        1 => any::<i64>(),
    ]
}

fn arb_calendar() -> impl Strategy<Value = Option<Calendar>> {
    let zone = prop::sample::select(vec!["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Nowhere"]);
    let interval = (0u8..8, 0u16..1440, 1u16..1442).prop_map(|(weekday, start_min, end_min)| WeeklyInterval {
        weekday,
        start_min,
        end_min,
    });
    let holiday = prop::sample::select(vec!["2026-03-03", "2026-03-29", "2026-04-06", "2026-13-01"]);
    proptest::option::of((zone, prop::collection::vec(interval, 0..5), prop::collection::vec(holiday, 0..3)).prop_map(
        |(zone, weekly, holidays)| Calendar {
            time_zone: zone.to_string(),
            weekly,
            holidays: holidays.into_iter().map(String::from).collect(),
        },
    ))
}

fn arb_policy() -> impl Strategy<Value = SlaPolicy> {
    let target = prop_oneof![
        1 => Just(None),
        6 => (1u64..3 * 86_400).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
        1 => Just(Some(0)),
    ];
    let targets = prop::collection::btree_map(
        arb_priority(),
        (target.clone(), target).prop_map(|(fr, res)| Targets { first_response_secs: fr, resolution_secs: res }),
        0..4,
    );
    (targets, prop_oneof![4 => Just(75u8), 1 => any::<u8>()], arb_calendar())
        .prop_map(|(targets, warn_percent, calendar)| SlaPolicy { targets, warn_percent, calendar })
}

fn arb_settings() -> impl Strategy<Value = SlaSettings> {
    prop::collection::vec((arb_instant(), arb_policy()), 0..3).prop_map(|epochs| SlaSettings { epochs, skew_ms: 0 })
}

fn arb_input() -> impl Strategy<Value = SlaInput> {
    (
        arb_instant(),
        proptest::option::of(arb_instant()),
        arb_priority(),
        prop::collection::vec((arb_instant(), arb_priority()), 0..4),
        prop::collection::vec((arb_instant(), arb_status()), 0..5),
    )
        .prop_map(|(created, response, first, priorities, statuses)| {
            let mut priority_changes = vec![(created, first)];
            priority_changes.extend(priorities);
            let mut status_changes = vec![(created, Open)];
            status_changes.extend(statuses);
            SlaInput { created_at_ms: created, first_response_at_ms: response, priority_changes, status_changes }
        })
}

/// For a running clock, the colour at `now` is the comparison of `now`
/// with the warning and due instants.
fn assert_colour_matches_instants(m: &Metric, now: i64) -> Result<(), TestCaseError> {
    let reached = |instant: Option<i64>| instant.is_some_and(|t| t <= now);
    match m.state {
        SlaState::Red => prop_assert!(reached(m.due_at_ms), "red but not due: {m:?}"),
        SlaState::Yellow => prop_assert!(reached(m.warn_at_ms) && !reached(m.due_at_ms), "{m:?}"),
        SlaState::Green => prop_assert!(!reached(m.warn_at_ms) && !reached(m.due_at_ms), "{m:?}"),
        SlaState::Met | SlaState::Breached | SlaState::None => {
            prop_assert!(m.due_at_ms.is_none() && m.warn_at_ms.is_none(), "{m:?}")
        }
    }
    if let (Some(w), Some(d)) = (m.warn_at_ms, m.due_at_ms) {
        prop_assert!(w <= d, "warning after due: {m:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn compute_never_panics_and_colours_match_instants(
        input in arb_input(),
        settings in arb_settings(),
        now in arb_instant(),
    ) {
        let report = compute(&input, &settings, now);
        let effective_now = engine::clamp_instant(now).max(engine::clamp_instant(input.created_at_ms));
        assert_colour_matches_instants(&report.first_response, effective_now)?;
        assert_colour_matches_instants(&report.resolution, effective_now)?;
    }

    /// With nothing happening after `now`, the colour flips exactly at the
    /// announced instants: not yet one millisecond before, and at them.
    #[test]
    fn announced_instants_are_exact(
        input in arb_input(),
        settings in arb_settings(),
        offset in 0i64..20 * 86_400_000,
    ) {
        let now = engine::clamp_instant(input.created_at_ms).saturating_add(offset);
        let mut input = input;
        input.priority_changes.retain(|&(t, _)| t <= now);
        input.status_changes.retain(|&(t, _)| t <= now);
        input.first_response_at_ms = input.first_response_at_ms.filter(|&t| t <= now);
        let report = compute(&input, &settings, now);
        let picks: [fn(&SlaReport) -> Metric; 2] = [|r| r.first_response.clone(), |r| r.resolution.clone()];
        for pick in picks {
            let m = pick(&report);
            if m.state != SlaState::Green && m.state != SlaState::Yellow {
                continue;
            }
            if let Some(due) = m.due_at_ms {
                prop_assert!(due > now);
                prop_assert_ne!(pick(&compute(&input, &settings, due - 1)).state, SlaState::Red);
                prop_assert_eq!(pick(&compute(&input, &settings, due)).state, SlaState::Red);
            }
            if let Some(warn) = m.warn_at_ms.filter(|&w| w > now) {
                let before = pick(&compute(&input, &settings, warn - 1)).state;
                prop_assert_eq!(before, SlaState::Green);
                let at_warn = pick(&compute(&input, &settings, warn)).state;
                prop_assert!(matches!(at_warn, SlaState::Yellow | SlaState::Red), "{:?}", at_warn);
            }
        }
    }
}
