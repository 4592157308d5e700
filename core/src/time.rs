//! Formatting of instants. Every time the product prints or exports is
//! ISO-8601 UTC with milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2026-11-24T00:40:45.123Z` for epoch milliseconds; out-of-range values
/// (only possible from corrupt data) print as the epoch.
pub fn iso(ms: u64) -> String {
    iso_i64(i64::try_from(ms).unwrap_or(i64::MAX))
}

pub fn iso_i64(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
