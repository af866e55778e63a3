//! Prometheus metrics, written by hand in the text exposition format (version 0.0.4): a few
//! counters and one histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::pool::Pool;

/// Upper bounds of the latency buckets, in seconds: from a cached health check to a long
/// compression waiting in a full queue.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at most each bound (not yet cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// Requests by (route, status).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    compressions: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
}

impl Metrics {
    pub fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((route.to_string(), status)).or_default() += 1;
        drop(requests);
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = latency.entry(route.to_string()).or_default();
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            histogram.counts[i] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// One finished compression: its target-LLM tokens before and after.
    pub fn record_compression(&self, origin_tokens: usize, compressed_tokens: usize) {
        self.compressions.fetch_add(1, Ordering::Relaxed);
        self.tokens_in
            .fetch_add(origin_tokens as u64, Ordering::Relaxed);
        self.tokens_out
            .fetch_add(compressed_tokens as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, pool: &Pool) -> String {
        let mut out = String::new();
        out.push_str("# HELP abridge_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE abridge_requests_total counter\n");
        for ((route, status), count) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "abridge_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP abridge_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE abridge_request_duration_seconds histogram\n");
        for (route, histogram) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "abridge_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "abridge_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 abridge_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 abridge_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        let counters = [
            (
                "abridge_compressions_total",
                "Compressions finished (API calls and proxied messages).",
                &self.compressions,
            ),
            (
                "abridge_tokens_in_total",
                "Target-LLM tokens given to compression.",
                &self.tokens_in,
            ),
            (
                "abridge_tokens_out_total",
                "Target-LLM tokens left after compression.",
                &self.tokens_out,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            (
                "abridge_queue_depth",
                "Compressions waiting for a worker.",
                pool.queued(),
            ),
            ("abridge_workers_busy", "Compressions running.", pool.busy()),
            (
                "abridge_workers",
                "Compressions that can run at once.",
                pool.size(),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_counters_cumulative_buckets_and_gauges() {
        let metrics = Metrics::default();
        metrics.record_request("/v1/compress", 200, Duration::from_millis(300));
        metrics.record_request("/v1/compress", 200, Duration::from_secs(3));
        metrics.record_request("/v1/compress", 400, Duration::from_millis(1));
        metrics.record_request("/healthz", 200, Duration::from_secs(500));
        metrics.record_compression(100, 40);
        let text = metrics.render(&Pool::new(2, 8));
        for line in [
            "abridge_requests_total{route=\"/v1/compress\",status=\"200\"} 2",
            "abridge_requests_total{route=\"/v1/compress\",status=\"400\"} 1",
            "abridge_request_duration_seconds_bucket{route=\"/v1/compress\",le=\"0.005\"} 1",
            "abridge_request_duration_seconds_bucket{route=\"/v1/compress\",le=\"0.25\"} 1",
            "abridge_request_duration_seconds_bucket{route=\"/v1/compress\",le=\"0.5\"} 2",
            "abridge_request_duration_seconds_bucket{route=\"/v1/compress\",le=\"5\"} 3",
            "abridge_request_duration_seconds_bucket{route=\"/v1/compress\",le=\"+Inf\"} 3",
            "abridge_request_duration_seconds_count{route=\"/v1/compress\"} 3",
            "abridge_request_duration_seconds_bucket{route=\"/healthz\",le=\"120\"} 0",
            "abridge_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1",
            "abridge_tokens_in_total 100",
            "abridge_tokens_out_total 40",
            "abridge_compressions_total 1",
            "abridge_queue_depth 0",
            "abridge_workers 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
