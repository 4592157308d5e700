//! Write rates: a token bucket per agent (documents pushed) and per inbox
//! (webhook deliveries), refilled at the operator's writes per minute
//! (`tickets relay limits`), holding at most a minute's worth.
//!
//! A request is let through when its bucket holds what it costs, or, for a
//! request costing more than a whole minute (a push page of 1000 documents
//! against a rate of 600), when the bucket is full; either way its whole
//! cost is taken, so the bucket may go below zero and the next request
//! waits until it has paid that back. The average rate is the operator's
//! either way, and no request is too large ever to pass.
//!
//! The buckets live in the relay process: with several relay instances on
//! one PostgreSQL database, each instance keeps its own, so an agent whose
//! requests are spread over N instances may write up to N times the rate.
//! That is the documented bound (a store-backed bucket would add a write to
//! every request of every device).

use std::collections::HashMap;
use std::sync::Mutex;

use tickets_core::limits::Limits;

use crate::http::{AppError, AppState};
use crate::store::Caller;

/// Buckets kept per kind. Past this many, full buckets (which hold nothing
/// a fresh one would not) are forgotten first, then all of them: a flood of
/// made-up webhook secrets cannot grow the map without bound.
pub const BUCKETS_MAX: usize = 10_000;
/// The longest `Retry-After` the relay answers with.
pub const RETRY_AFTER_SECS_MAX: u64 = 3_600;

const MINUTE_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// One kind of buckets (agents, or inboxes), by key.
#[derive(Debug, Default)]
pub struct Buckets {
    map: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    /// Takes `cost` writes from `key`'s bucket at `now_ms` against a rate
    /// of `per_min` writes per minute; `Err(seconds)` to wait before the
    /// request would pass, and nothing taken.
    pub fn take(&self, key: &str, cost: u64, per_min: u64, now_ms: i64) -> Result<(), u64> {
        let Ok(mut map) = self.map.lock() else { return Ok(()) };
        let capacity = per_min.max(1) as f64;
        let per_ms = capacity / MINUTE_MS;
        if map.len() >= BUCKETS_MAX && !map.contains_key(key) {
            map.retain(|_, b| refilled(b, per_ms, capacity, now_ms) < capacity);
            if map.len() >= BUCKETS_MAX {
                map.clear();
            }
        }
        let b = map.entry(key.to_string()).or_insert(Bucket { tokens: capacity, at_ms: now_ms });
        b.tokens = refilled(b, per_ms, capacity, now_ms);
        b.at_ms = b.at_ms.max(now_ms);
        let cost = cost as f64;
        let need = cost.min(capacity);
        if b.tokens + 1e-9 >= need {
            b.tokens -= cost;
            return Ok(());
        }
        let wait_s = ((need - b.tokens) / per_ms / 1000.0).ceil();
        Err((wait_s as u64).clamp(1, RETRY_AFTER_SECS_MAX))
    }
}

/// What a bucket holds at `now_ms` (a clock that went back refills
/// nothing).
fn refilled(b: &Bucket, per_ms: f64, capacity: f64, now_ms: i64) -> f64 {
    let elapsed = now_ms.saturating_sub(b.at_ms).max(0) as f64;
    (b.tokens + elapsed * per_ms).min(capacity)
}

/// How long the relay uses the limits it read before reading them again:
/// a rate check costs no store work, and `tickets relay limits set` takes
/// effect on a serving relay within this time.
pub const LIMITS_FRESH_MS: i64 = 1_000;

/// The relay's buckets, and the limits last read.
#[derive(Debug, Default)]
pub struct Rates {
    pub agents: Buckets,
    pub inboxes: Buckets,
    read: Mutex<Option<(Limits, i64)>>,
}

impl Rates {
    /// The limits, as read from the store at most [`LIMITS_FRESH_MS`] ago.
    pub async fn limits(&self, state: &AppState) -> Result<Limits, AppError> {
        let now = crate::http::now_ms();
        if let Ok(read) = self.read.lock() {
            if let Some((l, at)) = *read {
                if (0..LIMITS_FRESH_MS).contains(&now.saturating_sub(at)) {
                    return Ok(l);
                }
            }
        }
        let db = state.db.clone();
        let l = crate::http::blocking(state, move || db.with(|c| Ok::<_, AppError>(c.limits()?))).await?;
        if let Ok(mut read) = self.read.lock() {
            *read = Some((l, now));
        }
        Ok(l)
    }

    /// A push of `docs` documents by `caller` at `now_ms`: `Err` is the
    /// 429 to answer. Leads and admins have no rate (a lead's bulk import
    /// passes); an agent's every pushed document counts as one write.
    pub async fn check_push(&self, state: &AppState, caller: &Caller, docs: usize) -> Result<(), AppError> {
        if docs == 0 || caller.agent.is_lead() {
            return Ok(());
        }
        let per_min = self.limits(state).await?.agent_writes_per_min;
        self.agents.take(&caller.agent.name, docs as u64, per_min, crate::http::now_ms()).map_err(|secs| {
            AppError::rate_limited(
                secs,
                format!(
                    "agent '{}' is over its write rate of {per_min} documents a minute; retry in {secs} s",
                    caller.agent.name
                ),
            )
        })
    }

    /// One webhook delivery to the inbox whose secret hashes to `hash`.
    pub async fn check_delivery(&self, state: &AppState, hash: &str) -> Result<(), AppError> {
        let per_min = self.limits(state).await?.inbox_writes_per_min;
        self.inboxes.take(hash, 1, per_min, crate::http::now_ms()).map_err(|secs| {
            AppError::rate_limited(
                secs,
                format!("this inbox is over its rate of {per_min} deliveries a minute; retry in {secs} s"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_writes_passes_then_the_next_waits_for_its_refill() {
        let b = Buckets::default();
        for _ in 0..60 {
            assert_eq!(b.take("ana", 1, 60, 0), Ok(()));
        }
        assert_eq!(b.take("ana", 1, 60, 0), Err(1));
        assert_eq!(b.take("ana", 1, 60, 1_000), Ok(()));
        assert_eq!(b.take("bob", 1, 60, 1_000), Ok(()), "each key has its own bucket");
    }

    #[test]
    fn a_request_larger_than_a_minute_passes_on_a_full_bucket_and_is_paid_back() {
        let b = Buckets::default();
        assert_eq!(b.take("ana", 1000, 600, 0), Ok(()));
        // 400 in debt, and a page of 1000 needs the whole 600: 1000 writes
        // at 10 a second.
        assert_eq!(b.take("ana", 1000, 600, 0), Err(100));
        assert_eq!(b.take("ana", 1000, 600, 100_000), Ok(()));
    }

    #[test]
    fn made_up_keys_never_grow_the_map_past_its_bound() {
        let b = Buckets::default();
        for i in 0..(BUCKETS_MAX + 10) {
            let _ = b.take(&format!("k{i}"), 1, 60, 0);
        }
        assert!(b.map.lock().map(|m| m.len()).unwrap_or(0) <= BUCKETS_MAX);
    }
}
