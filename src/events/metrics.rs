//! What each sink counts: backlog (outbox rows past its cursor), events delivered, failed
//! attempts, events skipped (deleted by retention before delivery, or refused for good by a
//! webhook), and whether it is connected; exported on `/metrics` with the label `sink`.
//!
//! Input: the senders (and the API's SSE streams) update plain atomics. Output: a
//! [`prometheus_client`] collector reading them at scrape time.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// One sink's figures (`mqtt`, `webhook:<id>`).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// The sink's name (cursor key and metric label).
    pub sink: String,
    /// Outbox rows past the sink's cursor, at its last look.
    pub backlog: AtomicI64,
    /// Events acknowledged by the receiver (a redelivery counts again).
    pub delivered: AtomicU64,
    /// Failed attempts: connection lost or refused, request failed or timed out, 5xx, 408, 429.
    pub failures: AtomicU64,
    /// Events never delivered: deleted by retention first, or refused for good (4xx).
    pub skipped: AtomicU64,
    /// 1 while connected (MQTT) or while the last request was answered, delivered or refused for
    /// good with a 4xx (webhook).
    pub connected: AtomicI64,
    /// Outbox `seq` delivered up to (the cursor).
    pub cursor: AtomicI64,
}

impl SinkStats {
    /// Figures of `sink`, all zero.
    pub fn new(sink: &str) -> Self {
        Self {
            sink: sink.to_string(),
            ..Self::default()
        }
    }

    /// Adds `n` to `c`.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Every sink's figures, for `/metrics`; also the live SSE clients.
#[derive(Debug, Default)]
pub struct EventsMetrics {
    sinks: Mutex<Vec<Arc<SinkStats>>>,
    /// `/api/v1/events` streams open.
    pub sse_clients: AtomicI64,
    /// `/api/v1/events` requests refused because the stream limit was reached.
    pub sse_refused: AtomicU64,
}

impl EventsMetrics {
    /// A new sink's figures, registered for export.
    pub fn sink(&self, name: &str) -> Arc<SinkStats> {
        let s = Arc::new(SinkStats::new(name));
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&s));
        s
    }

    /// The registered sinks.
    pub fn sinks(&self) -> Vec<Arc<SinkStats>> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `/metrics` collector over these figures.
    pub fn collector(self: &Arc<Self>) -> Box<dyn Collector> {
        Box::new(EventsCollector(Arc::clone(self)))
    }
}

type SinkValue = fn(&SinkStats) -> i64;

/// Per-sink series: name (counters without `_total`: the encoder adds it), help, type, value.
const PER_SINK: &[(&str, &str, MetricType, SinkValue)] = &[
    (
        "storetrack_events_backlog",
        "Outbox events past the sink's cursor (not yet delivered).",
        MetricType::Gauge,
        |s| s.backlog.load(Ordering::Relaxed),
    ),
    (
        "storetrack_events_delivered",
        "Events acknowledged by the sink (MQTT PUBACK, webhook 2xx); redeliveries count again.",
        MetricType::Counter,
        |s| s.delivered.load(Ordering::Relaxed) as i64,
    ),
    (
        "storetrack_events_failures",
        "Failed delivery attempts (connection lost or refused, timeout, 5xx, 408, 429).",
        MetricType::Counter,
        |s| s.failures.load(Ordering::Relaxed) as i64,
    ),
    (
        "storetrack_events_skipped",
        "Events never delivered: deleted by retention before delivery, or refused by a webhook with a 4xx.",
        MetricType::Counter,
        |s| s.skipped.load(Ordering::Relaxed) as i64,
    ),
    (
        "storetrack_events_connected",
        "1 while the sink is connected (MQTT) or its last request was answered, 2xx or 4xx (webhook).",
        MetricType::Gauge,
        |s| s.connected.load(Ordering::Relaxed),
    ),
];

#[derive(Debug)]
struct EventsCollector(Arc<EventsMetrics>);

impl Collector for EventsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let sinks = self.0.sinks();
        for (name, help, kind, value) in PER_SINK {
            let mut m = encoder.encode_descriptor(name, help, None, *kind)?;
            for s in &sinks {
                let labels = [("sink", s.sink.as_str())];
                let family = m.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => {
                        ConstCounter::new(value(s).max(0) as u64).encode(family)?
                    }
                    _ => ConstGauge::new(value(s)).encode(family)?,
                }
            }
        }
        let m = encoder.encode_descriptor(
            "storetrack_events_sse_clients",
            "/api/v1/events streams open.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.0.sse_clients.load(Ordering::Relaxed)).encode(m)?;
        let m = encoder.encode_descriptor(
            "storetrack_events_sse_refused",
            "/api/v1/events requests refused (503) because the stream limit was reached.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.0.sse_refused.load(Ordering::Relaxed)).encode(m)?;
        Ok(())
    }
}
