//! The elapsed-time function of one SLA clock and its inverse.
//!
//! A clock counts real milliseconds that are both inside a *run* (a stretch
//! in which the ticket's status lets the clock run) and inside business hours
//! of the calendar in force at that instant. Those counted stretches
//! (*pieces*) are produced lazily, in time order, only as far as a question
//! needs: a ticket open for a week with a calendar costs a week of days, not
//! a scan up to some far horizon.

use chrono::NaiveDate;

use super::calendar::{next_day, previous_day};
use super::policy::Epochs;

/// Most calendar days one clock may walk. It bounds the work of a single
/// `compute` on absurd input (a ticket open for millennia); past it the clock
/// stops counting, and an instant it would need beyond is reported as unknown.
/// Two hundred years is far more than any real ticket needs.
pub const CLOCK_CALENDAR_DAYS_MAX: u32 = 366 * 200;

/// A counted stretch `[start, end)` and the count before it.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: i64,
    end: i64,
    counted_before: u64,
}

impl Piece {
    fn counted_after(&self) -> u64 {
        self.counted_before.saturating_add(span(self.start, self.end))
    }
}

pub(crate) struct Clock<'a> {
    origin: i64,
    /// Disjoint `[start, end)` stretches in which the status lets the clock
    /// run, in order.
    runs: Vec<(i64, i64)>,
    epochs: &'a Epochs<'a>,
    pieces: Vec<Piece>,
    counted: u64,
    /// Every piece before this instant has been produced.
    frontier: i64,
    run_index: usize,
    /// The next local date to walk while inside one calendar slice.
    cursor: Option<NaiveDate>,
    days_left: u32,
    exhausted: bool,
    /// Reused buffer for the open stretches of one day.
    day: Vec<(i64, i64)>,
}

impl<'a> Clock<'a> {
    pub(crate) fn new(origin: i64, runs: Vec<(i64, i64)>, epochs: &'a Epochs<'a>) -> Clock<'a> {
        Clock {
            origin,
            runs,
            epochs,
            pieces: Vec::new(),
            counted: 0,
            frontier: origin,
            run_index: 0,
            cursor: None,
            days_left: CLOCK_CALENDAR_DAYS_MAX,
            exhausted: false,
            day: Vec::new(),
        }
    }

    /// Milliseconds counted in `[origin, t)`.
    pub(crate) fn elapsed_at(&mut self, t: i64) -> u64 {
        while self.frontier < t && self.extend() {}
        let after = self.pieces.partition_point(|p| p.start < t);
        match after.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(p) => p.counted_before.saturating_add(span(p.start, p.end.min(t))),
            None => 0,
        }
    }

    /// The first instant at which `counted` milliseconds have been counted,
    /// or `None` if that does not happen before `limit` (or ever, as far as
    /// the clock can tell). The answer may lie beyond `limit`; callers
    /// compare.
    pub(crate) fn reach(&mut self, counted: u64, limit: i64) -> Option<i64> {
        if counted == 0 {
            return Some(self.origin);
        }
        while self.counted < counted && self.frontier < limit && self.extend() {}
        if self.counted < counted {
            return None;
        }
        let index = self.pieces.partition_point(|p| p.counted_after() < counted);
        let piece = self.pieces.get(index)?;
        let into = i64::try_from(counted - piece.counted_before).ok()?;
        Some(piece.start.saturating_add(into))
    }

    /// Produces the next batch of pieces: a whole 24x7 slice or one calendar
    /// day. Returns `false` once nothing more can be produced.
    fn extend(&mut self) -> bool {
        if self.exhausted {
            return false;
        }
        while let Some(&(_, end)) = self.runs.get(self.run_index) {
            if end > self.frontier {
                break;
            }
            self.run_index += 1;
        }
        let Some(&(run_start, run_end)) = self.runs.get(self.run_index) else {
            self.exhausted = true;
            return false;
        };
        if self.frontier < run_start {
            self.frontier = run_start;
            self.cursor = None;
        }
        let from = self.frontier;
        let slice_end = run_end.min(self.epochs.next_change_after(from));
        let Some(calendar) = self.epochs.calendar_at(from) else {
            self.push(from, slice_end);
            self.frontier = slice_end;
            self.cursor = None;
            return true;
        };

        if self.days_left == 0 {
            self.exhausted = true;
            return false;
        }
        self.days_left -= 1;
        // Starting one local date early is harmless (its stretches are clipped
        // away) and avoids reasoning about zones whose midnight happens twice.
        let date = match self.cursor {
            Some(date) => Some(date),
            None => calendar.local_date(from).and_then(previous_day),
        };
        let Some(date) = date else {
            self.exhausted = true;
            return false;
        };
        let Some(next) = next_day(date) else {
            self.exhausted = true;
            return false;
        };
        let day_end = calendar.day_start(next);
        let mut day = std::mem::take(&mut self.day);
        calendar.open_on(date, &mut day);
        for &(start, end) in &day {
            self.push(start.max(from), end.min(slice_end));
        }
        self.day = day;
        // `from < slice_end` always holds here, but `max` then `min` cannot
        // panic the way `clamp` would if it ever did not.
        let reached = day_end.max(from).min(slice_end);
        self.frontier = reached;
        self.cursor = if reached >= slice_end { None } else { Some(next) };
        true
    }

    fn push(&mut self, start: i64, end: i64) {
        if start >= end {
            return;
        }
        let counted_before = self.counted;
        self.counted = self.counted.saturating_add(span(start, end));
        match self.pieces.last_mut() {
            // Touching pieces (24x7 across a settings change) are joined so
            // lookups stay short.
            Some(last) if last.end == start => last.end = end,
            _ => self.pieces.push(Piece { start, end, counted_before }),
        }
    }
}

/// Length of `[start, end)` in milliseconds, zero if reversed.
fn span(start: i64, end: i64) -> u64 {
    u64::try_from(end.saturating_sub(start)).unwrap_or(0)
}
