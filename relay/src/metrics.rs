//! Counters, gauges and latency histograms, rendered as Prometheus text.
//! Every family carries `# HELP` and `# TYPE` (`promtool check metrics`).
//!
//! Gauges an operator alerts on: tickets by live SLA colour and devices
//! seen in the last hour are read from the store's indexes at scrape time
//! ([`StoreGauges`]); connected watchers are counted as they come and go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::{RelayStore, StoreError};

/// "Seen recently" for the devices gauge.
pub const DEVICES_RECENT_MS: i64 = 3_600_000;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (i, b) in BUCKETS.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {}\n", self.counts[i].load(Ordering::Relaxed)));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!("{name}_sum {}\n", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6));
        out.push_str(&format!("{name}_count {count}\n"));
    }
}

#[derive(Default)]
pub struct Metrics {
    pub sync_requests: AtomicU64,
    pub sync_bytes_in: AtomicU64,
    pub sync_bytes_out: AtomicU64,
    pub docs_applied: AtomicU64,
    pub changes_applied: AtomicU64,
    pub refusals: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    pub sync_latency: Histogram,
    pub board_latency: Histogram,
    /// Watch long polls open right now.
    pub watchers: AtomicU64,
}

/// Counts one open watch long poll while it lives.
pub struct Watching(Arc<Metrics>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a watcher until the returned guard drops (when its long poll
    /// answers, or the client goes away and the handler is dropped).
    pub fn watching(metrics: &Arc<Metrics>) -> Watching {
        metrics.watchers.fetch_add(1, Ordering::Relaxed);
        Watching(metrics.clone())
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("tickets_sync_requests_total", "sync requests served", &self.sync_requests),
            ("tickets_sync_bytes_in_total", "request body bytes received by sync", &self.sync_bytes_in),
            ("tickets_sync_bytes_out_total", "response body bytes sent by sync", &self.sync_bytes_out),
            ("tickets_docs_applied_total", "pushed documents accepted", &self.docs_applied),
            ("tickets_changes_applied_total", "new changes stored", &self.changes_applied),
            ("tickets_refusals_total", "pushed documents refused", &self.refusals),
            ("tickets_http_client_errors_total", "4xx responses", &self.client_errors),
            ("tickets_http_server_errors_total", "5xx responses", &self.server_errors),
        ];
        for (name, help, c) in counters {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        self.sync_latency.render("tickets_sync_seconds", "time to answer a sync request", &mut out);
        self.board_latency.render("tickets_board_seconds", "time to answer a board request", &mut out);
        gauge(
            &mut out,
            "tickets_watchers",
            "devices connected by `tickets sync --watch` (open long polls)",
            &[("", self.watchers.load(Ordering::Relaxed))],
        );
        out
    }
}

/// One gauge family: `(labels, value)` samples, labels as `{k="v"}` or "".
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (labels, v) in samples {
        out.push_str(&format!("{name}{labels} {v}\n"));
    }
}

/// Gauges read from the store at scrape time, each one indexed count.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreGauges {
    /// Tickets with a running SLA clock: green, yellow, red.
    pub sla: [u64; 3],
    pub devices_recent: u64,
}

impl StoreGauges {
    pub fn read<S: RelayStore + ?Sized>(c: &S, now: i64) -> Result<StoreGauges, StoreError> {
        let counts = c.color_counts(now)?;
        let devices_recent = c.devices_seen_since(now - DEVICES_RECENT_MS)?;
        Ok(StoreGauges { sla: [counts.green, counts.yellow, counts.red], devices_recent })
    }

    /// Appends the gauges to a rendering of [`Metrics`].
    pub fn render(&self, out: &mut String) {
        let [green, yellow, red] = self.sla;
        gauge(
            out,
            "tickets_sla_tickets",
            "tickets with a running SLA clock, by live colour",
            &[("{color=\"green\"}", green), ("{color=\"yellow\"}", yellow), ("{color=\"red\"}", red)],
        );
        gauge(out, "tickets_devices_recent", "devices that synced in the last hour", &[("", self.devices_recent)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family in the text has HELP and TYPE before its samples, and
    /// every sample belongs to a declared family.
    fn check_families(text: &str) {
        let mut declared: std::collections::HashMap<String, (bool, bool)> = Default::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                declared.entry(rest.split(' ').next().unwrap_or("").to_string()).or_default().0 = true;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.entry(rest.split(' ').next().unwrap_or("").to_string()).or_default().1 = true;
            } else {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains_key(*f)))
                    .unwrap_or(name);
                assert_eq!(declared.get(family), Some(&(true, true)), "{line}: family without HELP and TYPE");
            }
        }
    }

    #[test]
    fn every_family_has_help_and_type() {
        let m = Arc::new(Metrics::default());
        m.sync_latency.observe(Duration::from_millis(3));
        let _w = Metrics::watching(&m);
        let mut text = m.render();
        StoreGauges { sla: [3, 2, 1], devices_recent: 4 }.render(&mut text);
        check_families(&text);
        assert!(text.contains("tickets_watchers 1\n"), "{text}");
        assert!(text.contains("tickets_sla_tickets{color=\"red\"} 1\n"), "{text}");
        drop(_w);
        assert!(m.render().contains("tickets_watchers 0\n"));
    }
}
