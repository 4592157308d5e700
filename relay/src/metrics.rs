//! Counters and latency histograms, rendered as Prometheus text.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    fn render(&self, name: &str, out: &mut String) {
        out.push_str(&format!("# TYPE {name} histogram\n"));
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
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
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
        self.sync_latency.render("tickets_sync_seconds", &mut out);
        self.board_latency.render("tickets_board_seconds", &mut out);
        out
    }
}
