//! What the HTTP API counts about itself: connections open and refused, requests answered,
//! answers that failed or timed out, queries cancelled; exported on `/metrics`.
//!
//! Input: the server loop, the request middleware and the query streams. Output: atomics read
//! at scrape time by a [`prometheus_client`] collector (no label).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The API's own counters.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections closed at once because [`super::MAX_CONNECTIONS`] were open.
    pub connections_refused: AtomicU64,
    /// Requests answered (any status).
    pub requests: AtomicU64,
    /// Answers with a 5xx status (timeouts included).
    pub server_errors: AtomicU64,
    /// Database queries stopped before their end: the client left, or a deadline passed.
    pub queries_cancelled: AtomicU64,
    /// Wrong tokens received (bearer or login form).
    pub wrong_tokens: AtomicU64,
    /// Requests refused (429) from clients that sent too many wrong tokens.
    pub throttled: AtomicU64,
}

impl ApiCounters {
    /// Adds one to `c`.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The `/metrics` collector over these counters.
    pub fn collector(self: &Arc<Self>) -> Box<dyn Collector> {
        Box::new(CountersCollector(Arc::clone(self)))
    }
}

#[derive(Debug)]
struct CountersCollector(Arc<ApiCounters>);

impl Collector for CountersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let c = &self.0;
        let series: [(&str, &str, MetricType, &AtomicU64); 7] = [
            (
                "storetrack_api_connections",
                "HTTP connections open.",
                MetricType::Gauge,
                &c.connections,
            ),
            (
                "storetrack_api_connections_refused",
                "HTTP connections closed at once because the connection limit was reached.",
                MetricType::Counter,
                &c.connections_refused,
            ),
            (
                "storetrack_api_requests",
                "HTTP requests answered.",
                MetricType::Counter,
                &c.requests,
            ),
            (
                "storetrack_api_server_errors",
                "HTTP answers with a 5xx status (a timed-out request is one).",
                MetricType::Counter,
                &c.server_errors,
            ),
            (
                "storetrack_api_queries_cancelled",
                "Database queries stopped early: the client left or a deadline passed.",
                MetricType::Counter,
                &c.queries_cancelled,
            ),
            (
                "storetrack_api_wrong_tokens",
                "Wrong tokens received (a bearer token or the login form's).",
                MetricType::Counter,
                &c.wrong_tokens,
            ),
            (
                "storetrack_api_throttled",
                "Requests refused (429) from a client that sent too many wrong tokens.",
                MetricType::Counter,
                &c.throttled,
            ),
        ];
        for (name, help, kind, value) in series {
            let v = value.load(Ordering::Relaxed);
            let m = encoder.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => ConstCounter::new(v).encode(m)?,
                _ => ConstGauge::new(v as i64).encode(m)?,
            }
        }
        Ok(())
    }
}
