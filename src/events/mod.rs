//! Live events out of the box: senders that read the events outbox (written by the store in
//! the same transaction as the data each event describes) and deliver it — to an MQTT broker
//! ([`mqtt`]) and to webhooks ([`webhook`]) — at least once, in `seq` order, each sink with
//! its own cursor advanced only after its receiver acknowledged. The HTTP API's
//! `/api/v1/events` (Server-Sent Events) tails the same outbox.
//!
//! Input: `[events]` ([`EventsConfig`]) and the database path. Output: deliveries, and
//! per-sink figures ([`EventsMetrics`]) for `/metrics`. Each sender runs on its own thread with
//! its own database connection: it never waits for, or makes wait, the store's writer beyond
//! SQLite's short write of a cursor. See docs/events.md, "Delivery".

pub mod backoff;
pub mod metrics;
pub mod mqtt;
pub mod outbox;
pub mod webhook;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::error;

use crate::config::EventsConfig;
pub use metrics::{EventsMetrics, SinkStats};
pub use outbox::{Outbox, OutboxError, OutboxRow};

/// Every event kind (docs/events.md).
pub const KINDS: &[&str] = &[
    "line_crossing",
    "zone_enter",
    "zone_leave",
    "queue_length",
    "queue_wait",
    "alert",
    "camera",
    "counts",
];

/// How often an idle sender looks for new outbox rows.
pub const POLL: Duration = Duration::from_millis(250);

/// Why a sender could not start.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// The outbox could not be opened or read.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The TLS settings of `mqtts` cannot be used.
    #[error("events.mqtt: TLS: {0}")]
    Tls(String),
    /// A thread or runtime could not be created.
    #[error("cannot start an event sender: {0}")]
    Thread(#[source] std::io::Error),
}

/// The running senders.
#[derive(Debug)]
pub struct Senders {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<()>)>,
    sinks: Vec<Arc<SinkStats>>,
}

impl Senders {
    /// Starts a sender per configured sink, reading `db`; figures go to `metrics`.
    pub fn start(
        cfg: &EventsConfig,
        db: &Path,
        metrics: &EventsMetrics,
    ) -> Result<Senders, SenderError> {
        let mut senders = Senders {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            sinks: Vec::new(),
        };
        if let Some(m) = &cfg.mqtt {
            let stats = metrics.sink(mqtt::SINK);
            senders.sinks.push(Arc::clone(&stats));
            let t = mqtt::spawn(cfg, m, db.to_path_buf(), stats, Arc::clone(&senders.stop))?;
            senders.threads.push((mqtt::SINK.to_string(), t));
        }
        for hook in &cfg.webhooks {
            let name = webhook::sink_name(&hook.id);
            let stats = metrics.sink(&name);
            senders.sinks.push(Arc::clone(&stats));
            let t = webhook::spawn(
                cfg,
                hook,
                db.to_path_buf(),
                stats,
                Arc::clone(&senders.stop),
            )?;
            senders.threads.push((name, t));
        }
        Ok(senders)
    }

    /// Waits (at most `limit`) until every sink has delivered what the outbox holds — at
    /// shutdown, after the store's last commit — then stops them.
    pub fn drain_and_stop(self, limit: Duration) {
        let deadline = Instant::now() + limit;
        // Two looks at the outbox by each sender after the last commit.
        std::thread::sleep(POLL * 2);
        while Instant::now() < deadline
            && self
                .sinks
                .iter()
                .any(|s| s.backlog.load(Ordering::Relaxed) > 0)
        {
            std::thread::sleep(POLL / 5);
        }
        self.stop();
    }

    /// Stops every sender (each saves its cursor; MQTT publishes `offline`) and joins them.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (name, t) in self.threads.drain(..) {
            if t.join().is_err() {
                error!(sink = %name, "Event sender panicked.");
            }
        }
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.stop_now();
    }
}
