//! Hybrid logical clock: wall time in milliseconds, a counter, and a stable
//! replica id that breaks ties.
//!
//! The clock never reads the wall clock itself: callers pass `now_ms`. Its
//! guarantee is the one merges rely on: a timestamp issued after observing
//! another is strictly greater than it, whatever the wall clocks say.

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
        if wall.len() != 16 || counter.len() != 6 {
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

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn last(&self) -> (u64, u32) {
        (self.last_wall_ms, self.last_counter)
    }

    /// Takes note of a stamp seen in data from another replica so that the
    /// next stamp issued here is later than it.
    pub fn observe(&mut self, seen: &Hlc) {
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
        slow.observe(&seen);
        let next = slow.tick(1_000_000);
        assert!(next > seen);
        assert_eq!(next.wall_ms, seen.wall_ms);
        assert_eq!(next.counter, seen.counter + 1);
    }

    #[test]
    fn malformed_stamps_are_rejected() {
        for bad in ["", "1.2.3", "000000000000000x.000000.aa", "0000000000000001.000000.", "0000000000000001.000000.ZZ"]
        {
            assert!(bad.parse::<Hlc>().is_err(), "{bad}");
        }
    }
}
