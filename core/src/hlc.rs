//! Hybrid logical clock: wall time in milliseconds, a counter, and a stable
//! replica id that breaks ties.
//!
//! The clock never reads the wall clock itself: callers pass `now_ms`. Its
//! guarantee is the one merges rely on: a timestamp issued after observing
//! another is strictly greater than it, whatever the wall clocks say.
//!
//! A stamp orders; it does not tell the time. After observing a stamp from
//! a device whose clock runs 2 h fast, this device's stamps run 2 h ahead
//! too (they must, to order after it), so the time people read and the SLA
//! counts is each event's own `at` (the device's physical reading), never
//! the stamp. And a stamp further ahead of this device's clock than
//! [`OBSERVE_AHEAD_MS_MAX`] is not observed at all: it cannot drag this
//! clock past the stamp format's range or out of any honest bound.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// One timestamp. Ordered by (wall, counter, replica).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hlc {
    pub wall_ms: u64,
    pub counter: u32,
    pub replica: String,
}

/// Replica ids are short lowercase hex strings.
pub const REPLICA_CHARS_MAX: usize = 32;
/// The counter is encoded in six digits; past this the wall part moves on.
pub const COUNTER_MAX: u32 = 999_999;
/// The largest difference between a device's clock and the relay's that
/// the relay accepts (either way); beyond it the device is asked to set its
/// clock right.
pub const CLOCK_OFFSET_MS_MAX: i64 = 7 * 24 * 3600 * 1000;
/// How far an event's stamp may run ahead of the relay's clock when the
/// relay receives it. An honest stamp is never later than the fastest
/// accepted device's clock, so this only stops forged far-future stamps.
pub const STAMP_AHEAD_MS_MAX: i64 = CLOCK_OFFSET_MS_MAX + 10 * 60 * 1000;
/// How far ahead of this device's own clock an observed stamp may be: the
/// relay's bound plus this device's own largest accepted offset. Beyond it
/// the stamp is not observed (a relay that let it through must not brick
/// devices).
pub const OBSERVE_AHEAD_MS_MAX: u64 = (STAMP_AHEAD_MS_MAX + CLOCK_OFFSET_MS_MAX) as u64;

impl Hlc {
    pub fn new(wall_ms: u64, counter: u32, replica: impl Into<String>) -> Hlc {
        Hlc { wall_ms, counter, replica: replica.into() }
    }

    /// Key text that sorts like the timestamp itself:
    /// `0001732400000000.000000.ab12cd34ef56ab78`.
    pub fn encode(&self) -> String {
        format!("{:016}.{:06}.{}", self.wall_ms, self.counter, self.replica)
    }
}

impl Ord for Hlc {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.wall_ms, self.counter, &self.replica).cmp(&(other.wall_ms, other.counter, &other.replica))
    }
}

impl PartialOrd for Hlc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed clock stamp '{0}'")]
pub struct HlcParseError(pub String);

impl FromStr for Hlc {
    type Err = HlcParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HlcParseError(s.chars().take(80).collect());
        let mut parts = s.splitn(3, '.');
        let wall = parts.next().ok_or_else(err)?;
        let counter = parts.next().ok_or_else(err)?;
        let replica = parts.next().ok_or_else(err)?;
        if wall.len() != 16
            || counter.len() != 6
            || !wall.bytes().all(|b| b.is_ascii_digit())
            || !counter.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        if replica.is_empty()
            || replica.len() > REPLICA_CHARS_MAX
            || !replica.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err());
        }
        Ok(Hlc {
            wall_ms: wall.parse().map_err(|_| err())?,
            counter: counter.parse().map_err(|_| err())?,
            replica: replica.to_string(),
        })
    }
}

/// The state of one replica's clock: the greatest timestamp it has issued
/// or observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    replica: String,
    last_wall_ms: u64,
    last_counter: u32,
}

impl Clock {
    pub fn new(replica: impl Into<String>) -> Clock {
        Clock { replica: replica.into(), last_wall_ms: 0, last_counter: 0 }
    }

    /// Restores a clock from its persisted last stamp.
    pub fn restore(replica: impl Into<String>, last_wall_ms: u64, last_counter: u32) -> Clock {
        Clock { replica: replica.into(), last_wall_ms, last_counter }
    }

    /// Forgets a last stamp beyond [`OBSERVE_AHEAD_MS_MAX`] of `now_ms`
    /// (observed before that bound existed): such a clock could only issue
    /// stamps the relay refuses, or none at all past the format's range.
    pub fn forget_if_ahead(&mut self, now_ms: i64) {
        if self.last_wall_ms > (now_ms.max(0) as u64).saturating_add(OBSERVE_AHEAD_MS_MAX) {
            self.last_wall_ms = now_ms.max(0) as u64;
            self.last_counter = 0;
        }
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn last(&self) -> (u64, u32) {
        (self.last_wall_ms, self.last_counter)
    }

    /// Takes note of a stamp seen in data from another replica so that the
    /// next stamp issued here is later than it, unless it lies more than
    /// [`OBSERVE_AHEAD_MS_MAX`] ahead of `now_ms` (a forged stamp).
    pub fn observe(&mut self, seen: &Hlc, now_ms: i64) {
        if seen.wall_ms > (now_ms.max(0) as u64).saturating_add(OBSERVE_AHEAD_MS_MAX) {
            return;
        }
        if (seen.wall_ms, seen.counter) > (self.last_wall_ms, self.last_counter) {
            self.last_wall_ms = seen.wall_ms;
            self.last_counter = seen.counter.min(COUNTER_MAX);
        }
    }

    /// Issues a new stamp, strictly greater than every stamp issued or
    /// observed before.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.last_wall_ms {
            self.last_wall_ms = now_ms;
            self.last_counter = 0;
        } else {
            // Stamps encode the counter in six digits: past that the wall
            // part moves one millisecond ahead instead of overflowing.
            if self.last_counter >= COUNTER_MAX {
                self.last_wall_ms = self.last_wall_ms.saturating_add(1);
                self.last_counter = 0;
            } else {
                self.last_counter += 1;
            }
        }
        Hlc::new(self.last_wall_ms, self.last_counter, self.replica.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_sorts_like_timestamp() {
        let a = Hlc::new(5, 9, "aa");
        let b = Hlc::new(5, 10, "aa");
        let c = Hlc::new(40, 0, "00");
        let d = Hlc::new(40, 0, "01");
        let stamps = [&a, &b, &c, &d];
        for w in stamps.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].encode() < w[1].encode());
            assert_eq!(w[0].encode().parse::<Hlc>().as_ref(), Ok(w[0]));
        }
    }

    #[test]
    fn observed_stamps_are_exceeded_even_with_a_slow_wall_clock() {
        let mut fast = Clock::new("aa");
        let mut slow = Clock::new("bb");
        let two_hours = 2 * 3600 * 1000;
        let seen = fast.tick(1_000_000 + two_hours);
        slow.observe(&seen, 1_000_000);
        let next = slow.tick(1_000_000);
        assert!(next > seen);
        assert_eq!(next.wall_ms, seen.wall_ms);
        assert_eq!(next.counter, seen.counter + 1);
    }

    #[test]
    fn a_stamp_beyond_the_bound_is_not_observed() {
        let now = 1_700_000_000_000i64;
        let mut c = Clock::new("aa");
        c.observe(&Hlc::new(9_999_999_999_999_999, 999_999, "bb"), now);
        let next = c.tick(now as u64);
        assert_eq!(next.wall_ms, now as u64, "a forged far-future stamp does not move the clock");
        assert!(next.encode().parse::<Hlc>().is_ok());
        let near = Hlc::new(now as u64 + 2 * 3600 * 1000, 3, "bb");
        c.observe(&near, now);
        assert!(c.tick(now as u64) > near, "a stamp within the bound is still exceeded");
        let mut stuck = Clock::restore("aa", 9_999_999_999_999_999, 999_999);
        stuck.forget_if_ahead(now);
        assert_eq!(stuck.tick(now as u64).wall_ms, now as u64);
    }

    #[test]
    fn malformed_stamps_are_rejected() {
        for bad in [
            "",
            "1.2.3",
            "000000000000000x.000000.aa",
            "0000000000000001.000000.",
            "0000000000000001.000000.ZZ",
            "+001767225600000.000000.aa",
            "0001767225600000.+00000.aa",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad}");
        }
    }
}
