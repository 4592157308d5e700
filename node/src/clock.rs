//! The node's reading of time: the system clock plus an optional offset
//! from `TICKETS_CLOCK_OFFSET` (`+2h`, `-90m`), applied to every time the
//! node reads, so that wrong device clocks can be reproduced on purpose.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::NodeError;

pub const CLOCK_OFFSET_ENV: &str = "TICKETS_CLOCK_OFFSET";

#[derive(Debug, Clone, Default)]
pub struct WallClock {
    offset_ms: i64,
    /// A virtual time source (the deterministic simulation); `None` reads
    /// the system clock.
    source: Option<Arc<AtomicI64>>,
}

impl WallClock {
    pub fn with_offset_ms(offset_ms: i64) -> WallClock {
        WallClock { offset_ms, source: None }
    }

    /// A clock that reads a shared virtual time (plus an offset).
    pub fn virtual_time(source: Arc<AtomicI64>, offset_ms: i64) -> WallClock {
        WallClock { offset_ms, source: Some(source) }
    }

    /// Reads the offset from the environment; an unreadable offset is an
    /// error rather than silently ignored.
    pub fn from_env() -> Result<WallClock, NodeError> {
        match std::env::var(CLOCK_OFFSET_ENV) {
            Ok(s) if !s.trim().is_empty() => Ok(WallClock::with_offset_ms(parse_offset(&s)?)),
            _ => Ok(WallClock::default()),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let sys = match &self.source {
            Some(v) => v.load(Ordering::Relaxed),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0),
        };
        sys.saturating_add(self.offset_ms)
    }
}

/// The largest clock offset accepted: ten years either way. Anything beyond
/// is a typo, and would stamp edits with times no calendar can print.
pub const CLOCK_OFFSET_SECS_MAX: u64 = 3650 * 86_400;

/// `+2h`, `-90m`, `30s`, `+1d2h`, `0`: a signed duration in milliseconds.
pub fn parse_offset(s: &str) -> Result<i64, NodeError> {
    let t = s.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1i64, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    // No offset at all is a valid offset.
    let rest = rest.trim();
    if !rest.is_empty()
        && rest.trim_end_matches(['d', 'h', 'm', 's']).chars().all(|c| c == '0')
        && rest.starts_with('0')
    {
        return Ok(0);
    }
    let secs = tickets_core::duration::parse_duration(rest).map_err(|_| NodeError::BadClockOffset(s.to_string()))?;
    if secs > CLOCK_OFFSET_SECS_MAX {
        return Err(NodeError::BadClockOffset(s.to_string()));
    }
    let secs = i64::try_from(secs).map_err(|_| NodeError::BadClockOffset(s.to_string()))?;
    secs.checked_mul(1000).map(|ms| ms * sign).ok_or_else(|| NodeError::BadClockOffset(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+2h").ok(), Some(7_200_000));
        assert_eq!(parse_offset("-90m").ok(), Some(-5_400_000));
        assert!(parse_offset("soon").is_err());
        assert!(parse_offset("+").is_err());
        assert_eq!(parse_offset("+0s").ok(), Some(0));
        assert_eq!(parse_offset("0").ok(), Some(0));
        assert_eq!(parse_offset("-0m").ok(), Some(0));
        assert!(parse_offset("+100000000d").is_err());
    }
}
