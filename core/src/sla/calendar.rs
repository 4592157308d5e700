//! Business hours: checking a [`Calendar`] and turning it into the open
//! stretches of real time it describes.
//!
//! Opening hours are wall-clock times in the calendar's zone, but the SLA
//! counts real seconds: a 00:00-24:00 day is 23 hours long on the spring DST
//! change and 25 on the autumn one. Every boundary is therefore mapped to the
//! first instant whose local time is at or after it, which is defined for
//! every wall time: inside a DST gap it is the end of the gap, and for a wall
//! time that happens twice it is the first occurrence.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::{Calendar, WeeklyInterval};

/// Most weekly intervals a calendar may hold (a few per day is normal).
pub const CALENDAR_INTERVALS_MAX: usize = 7 * 48;
/// Most holiday dates a calendar may hold (decades of public holidays).
pub const CALENDAR_HOLIDAYS_MAX: usize = 4_096;

const MINUTES_PER_DAY: u16 = 1_440;

/// Why a calendar cannot be used. The SLA engine then counts 24x7, so the
/// settings screen must call [`Calendar::validate`] before saving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown time zone '{0}' (expected an IANA name such as Europe/Berlin)")]
    UnknownTimeZone(String),
    #[error("invalid holiday '{0}' (expected a date as YYYY-MM-DD)")]
    BadHoliday(String),
    #[error(
        "invalid opening interval on weekday {weekday} from minute {start_min} to {end_min} \
         (weekday 0 to 6, start before end, end at most 1440)"
    )]
    BadInterval { weekday: u8, start_min: u16, end_min: u16 },
    #[error("calendar has no opening hours")]
    NoOpeningHours,
    #[error("too many {field} ({len}, at most {max})")]
    TooMany { field: &'static str, len: usize, max: usize },
}

impl Calendar {
    /// Checks the zone name, every interval and every holiday date.
    pub fn validate(&self) -> Result<(), CalendarError> {
        CompiledCalendar::new(self).map(|_| ())
    }
}

/// A calendar checked and arranged for fast lookups.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCalendar {
    tz: Tz,
    /// Merged, sorted, disjoint `[start_min, end_min)` per weekday, Monday first.
    by_weekday: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl CompiledCalendar {
    pub(crate) fn new(calendar: &Calendar) -> Result<CompiledCalendar, CalendarError> {
        if calendar.weekly.len() > CALENDAR_INTERVALS_MAX {
            return Err(CalendarError::TooMany {
                field: "opening intervals",
                len: calendar.weekly.len(),
                max: CALENDAR_INTERVALS_MAX,
            });
        }
        if calendar.holidays.len() > CALENDAR_HOLIDAYS_MAX {
            return Err(CalendarError::TooMany {
                field: "holidays",
                len: calendar.holidays.len(),
                max: CALENDAR_HOLIDAYS_MAX,
            });
        }
        let tz: Tz =
            calendar.time_zone.parse().map_err(|_| CalendarError::UnknownTimeZone(calendar.time_zone.clone()))?;

        let mut by_weekday: [Vec<(u16, u16)>; 7] = Default::default();
        for &WeeklyInterval { weekday, start_min, end_min } in &calendar.weekly {
            let day = by_weekday.get_mut(usize::from(weekday));
            match day {
                Some(day) if start_min < end_min && end_min <= MINUTES_PER_DAY => day.push((start_min, end_min)),
                _ => return Err(CalendarError::BadInterval { weekday, start_min, end_min }),
            }
        }
        for day in &mut by_weekday {
            *day = merge(std::mem::take(day));
        }
        if by_weekday.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoOpeningHours);
        }

        let holidays = calendar
            .holidays
            .iter()
            .map(|text| parse_date(text).ok_or_else(|| CalendarError::BadHoliday(text.clone())))
            .collect::<Result<_, _>>()?;

        Ok(CompiledCalendar { tz, by_weekday, holidays })
    }

    /// The local date at an instant.
    pub(crate) fn local_date(&self, ms: i64) -> Option<NaiveDate> {
        self.tz.timestamp_millis_opt(ms).single().map(|t| t.date_naive())
    }

    /// The first instant of a local date (see the module docs for gaps).
    pub(crate) fn day_start(&self, date: NaiveDate) -> i64 {
        self.first_instant_at(date.and_time(NaiveTime::MIN))
    }

    /// Open stretches of a local date as real-time `[start, end)` in
    /// milliseconds, in order. Empty on holidays. A stretch that lies inside a
    /// DST gap maps to nothing and is left out.
    pub(crate) fn open_on(&self, date: NaiveDate, out: &mut Vec<(i64, i64)>) {
        out.clear();
        if self.holidays.contains(&date) {
            return;
        }
        let weekday = chrono::Datelike::weekday(&date).num_days_from_monday() as usize;
        for &(start_min, end_min) in &self.by_weekday[weekday] {
            let start = self.first_instant_at(at_minute(date, start_min));
            let end = self.first_instant_at(at_minute(date, end_min));
            if start < end {
                out.push((start, end));
            }
        }
    }

    /// The first instant whose local wall time is at or after `local`.
    fn first_instant_at(&self, local: NaiveDateTime) -> i64 {
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => t.timestamp_millis(),
            chrono::LocalResult::Ambiguous(a, b) => a.timestamp_millis().min(b.timestamp_millis()),
            chrono::LocalResult::None => self.gap_end(local),
        }
    }

    /// The end of the DST gap that `local` falls into, found by bisection on
    /// whole seconds (zone offsets and transitions are whole seconds).
    ///
    /// Real offsets lie within ±26 hours, so the wall time read as UTC, moved
    /// by 27 hours either way, brackets the answer.
    fn gap_end(&self, local: NaiveDateTime) -> i64 {
        const BRACKET_SECS: i64 = 27 * 3_600;
        let naive_secs = local.and_utc().timestamp();
        let at_or_after = |secs: i64| self.tz.timestamp_opt(secs, 0).single().is_some_and(|t| t.naive_local() >= local);
        let mut lo = naive_secs.saturating_sub(BRACKET_SECS);
        let mut hi = naive_secs.saturating_add(BRACKET_SECS);
        // Invariant: `at_or_after(hi)` holds and `at_or_after(lo)` does not.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if at_or_after(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi.saturating_mul(1_000)
    }
}

/// The next date, `None` past the last date chrono can represent.
pub(crate) fn next_day(date: NaiveDate) -> Option<NaiveDate> {
    date.checked_add_days(Days::new(1))
}

pub(crate) fn previous_day(date: NaiveDate) -> Option<NaiveDate> {
    date.checked_sub_days(Days::new(1))
}

fn at_minute(date: NaiveDate, minute: u16) -> NaiveDateTime {
    // Minute 1440 is the next midnight; its date always exists because
    // calendar instants are kept far inside chrono's range.
    let midnight = date.and_time(NaiveTime::MIN);
    midnight + chrono::TimeDelta::minutes(i64::from(minute))
}

/// Sorts intervals and joins those that overlap or touch.
fn merge(mut intervals: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    intervals.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Strict `YYYY-MM-DD`: chrono alone would also take `2026-3-5`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar(zone: &str, weekly: &[(u8, u16, u16)], holidays: &[&str]) -> Calendar {
        Calendar {
            time_zone: zone.to_string(),
            weekly: weekly
                .iter()
                .map(|&(weekday, start_min, end_min)| WeeklyInterval { weekday, start_min, end_min })
                .collect(),
            holidays: holidays.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn check(cal: Calendar, expected: Result<(), CalendarError>) {
        assert_eq!(cal.validate(), expected, "{cal:?}");
    }

    #[test]
    fn validate_table() {
        let weekdays = &[(0, 540, 1020)];
        check(calendar("Europe/Berlin", weekdays, &["2026-12-25"]), Ok(()));
        check(calendar("UTC", &[(6, 0, 1440)], &[]), Ok(()));
        check(calendar("Mars/Olympus", weekdays, &[]), Err(CalendarError::UnknownTimeZone("Mars/Olympus".into())));
        check(calendar("europe/berlin", weekdays, &[]), Err(CalendarError::UnknownTimeZone("europe/berlin".into())));
        check(calendar("UTC", weekdays, &["2026-02-30"]), Err(CalendarError::BadHoliday("2026-02-30".into())));
        check(calendar("UTC", weekdays, &["2026-3-5"]), Err(CalendarError::BadHoliday("2026-3-5".into())));
        check(calendar("UTC", weekdays, &[""]), Err(CalendarError::BadHoliday("".into())));
        check(
            calendar("UTC", &[(7, 0, 60)], &[]),
            Err(CalendarError::BadInterval { weekday: 7, start_min: 0, end_min: 60 }),
        );
        check(
            calendar("UTC", &[(0, 60, 60)], &[]),
            Err(CalendarError::BadInterval { weekday: 0, start_min: 60, end_min: 60 }),
        );
        check(
            calendar("UTC", &[(0, 0, 1441)], &[]),
            Err(CalendarError::BadInterval { weekday: 0, start_min: 0, end_min: 1441 }),
        );
        check(calendar("UTC", &[], &[]), Err(CalendarError::NoOpeningHours));
        check(
            calendar("UTC", &vec![(0, 0, 1); CALENDAR_INTERVALS_MAX + 1], &[]),
            Err(CalendarError::TooMany {
                field: "opening intervals",
                len: CALENDAR_INTERVALS_MAX + 1,
                max: CALENDAR_INTERVALS_MAX,
            }),
        );
    }

    #[test]
    fn merge_joins_overlaps_and_touching() {
        assert_eq!(merge(vec![(600, 700), (540, 600), (650, 800), (900, 960)]), vec![(540, 800), (900, 960)]);
    }

    /// Open stretches of one date, as UTC `HH:MM` text.
    fn check_open(zone: &str, weekly: &[(u8, u16, u16)], date: &str, expected: &[(&str, &str)]) {
        let compiled = CompiledCalendar::new(&calendar(zone, weekly, &["2026-12-25"])).expect("valid calendar");
        let mut out = Vec::new();
        let date = parse_date(date).expect("valid date");
        compiled.open_on(date, &mut out);
        let utc =
            |ms: i64| chrono::DateTime::from_timestamp_millis(ms).expect("in range").format("%m-%d %H:%M").to_string();
        let got: Vec<(String, String)> = out.iter().map(|&(s, e)| (utc(s), utc(e))).collect();
        let expected: Vec<(String, String)> = expected.iter().map(|(s, e)| (s.to_string(), e.to_string())).collect();
        assert_eq!(got, expected, "{zone} {date}");
    }

    #[test]
    fn open_stretches_follow_dst() {
        // Berlin: CET (UTC+1) until 2026-03-29 02:00 local, then CEST (UTC+2)
        // until 2026-10-25 03:00 local.
        let all_day: Vec<(u8, u16, u16)> = (0..7).map(|d| (d, 0, 1440)).collect();
        // Saturday before the change: 24 hours, 23:00Z to 23:00Z.
        check_open("Europe/Berlin", &all_day, "2026-03-28", &[("03-27 23:00", "03-28 23:00")]);
        // Spring Sunday: local midnight to midnight is only 23 real hours.
        check_open("Europe/Berlin", &all_day, "2026-03-29", &[("03-28 23:00", "03-29 22:00")]);
        // Autumn Sunday: 25 real hours.
        check_open("Europe/Berlin", &all_day, "2026-10-25", &[("10-24 22:00", "10-25 23:00")]);
        // An opening at 02:30 on the spring Sunday does not exist on the wall;
        // it opens at the end of the gap, 03:00 CEST = 01:00Z.
        check_open("Europe/Berlin", &[(6, 150, 240)], "2026-03-29", &[("03-29 01:00", "03-29 02:00")]);
        // 02:30 happens twice on the autumn Sunday: the first one (CEST) opens,
        // and 04:00 CET closes, so the repeated hour counts: 2.5 real hours.
        check_open("Europe/Berlin", &[(6, 150, 240)], "2026-10-25", &[("10-25 00:30", "10-25 03:00")]);
        // A stretch entirely inside the gap is not open at all.
        check_open("Europe/Berlin", &[(6, 130, 170)], "2026-03-29", &[]);
        // Holidays are closed.
        check_open("Europe/Berlin", &all_day, "2026-12-25", &[]);
        // A 30-minute DST shift (Lord Howe: +10:30 to +11 on 2026-10-04 at 02:00).
        check_open("Australia/Lord_Howe", &[(6, 0, 1440)], "2026-10-04", &[("10-03 13:30", "10-04 13:00")]);
    }
}
