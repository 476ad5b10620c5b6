//! The webhook sender: each outbox row of the kinds a webhook asks for is POSTed to it, one
//! event per request, in `seq` order, the next only after the previous was accepted (2xx).
//!
//! Input: one `[[events.webhooks]]`, the `[events]` retry settings, the database path, a stop
//! flag. Output: requests; the cursor `webhook:<id>` advanced past each row answered 2xx (or
//! refused for good, below); figures in [`SinkStats`]. Runs on its own thread with a blocking
//! client (ureq over rustls+ring: one request at a time is all this needs).
//!
//! Each request carries the exact outbox line as its body and these headers:
//! `X-Storetrack-Event-Id`, `X-Storetrack-Timestamp` (Unix seconds of this attempt) and, with
//! a secret, `X-Storetrack-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! `<timestamp>.<body>` keyed by the secret ([`signature`]). A transport error, a timeout,
//! 5xx, 408 and 429 are retried (same body, same `event_id`) with exponential backoff and
//! jitter, holding back the rows after it; any other 4xx is a refusal for good: the event is
//! skipped, counted and logged, so one event the receiver will never take does not stop all
//! the others.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::{info, warn};

use super::backoff;
use super::metrics::SinkStats;
use super::outbox::{Outbox, OutboxRow};
use super::{POLL, SenderError};
use crate::backoff::Backoff;
use crate::config::{EventsConfig, WebhookConfig};
use crate::redact;

/// Header: the event's id.
pub const EVENT_ID_HEADER: &str = "X-Storetrack-Event-Id";
/// Header: Unix seconds of the attempt (signed with the body).
pub const TIMESTAMP_HEADER: &str = "X-Storetrack-Timestamp";
/// Header: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Storetrack-Signature";
/// Rows read from the outbox at a time.
const BATCH: usize = 100;
/// The cursor is written at most this often while events flow (and at stop).
const SAVE_EVERY: Duration = Duration::from_millis(500);

/// The cursor (and metrics) name of webhook `id`.
pub fn sink_name(id: &str) -> String {
    format!("webhook:{id}")
}

/// `sha256=<hex>`: HMAC-SHA256 keyed by `secret` of `<timestamp>.<body>`.
pub fn signature(secret: &str, timestamp: &str, body: &str) -> String {
    // Any key length is valid for HMAC.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// 2xx.
    Delivered,
    /// A 4xx other than 408 and 429: never retried.
    Refused(u16),
    /// Worth another attempt (the reason, for the log).
    Retry(String),
}

struct Hook {
    cfg: WebhookConfig,
    sink: String,
    agent: ureq::Agent,
    outbox: Outbox,
    stats: Arc<SinkStats>,
    cursor: i64,
    saved: i64,
    saved_at: Instant,
}

/// Starts webhook `hook`'s sender on its own thread; it runs until `stop` is set.
pub fn spawn(
    events: &EventsConfig,
    hook: &WebhookConfig,
    db: PathBuf,
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, SenderError> {
    let sink = sink_name(&hook.id);
    let outbox = Outbox::open(&db)?;
    let cursor = outbox.cursor(&sink)?;
    stats.cursor.store(cursor, Ordering::Relaxed);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(events.timeout_ms)))
        .http_status_as_error(false)
        .user_agent(concat!("storetrack/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let backoff = backoff::new(
        events.retry_initial_ms,
        events.retry_max_ms,
        &backoff::seed(&sink),
    );
    info!(sink = %sink, url = %redact::url(&hook.url), cursor, "Webhook sender starting.");
    let mut h = Hook {
        cfg: hook.clone(),
        sink,
        agent,
        outbox,
        stats,
        cursor,
        saved: cursor,
        saved_at: Instant::now(),
    };
    std::thread::Builder::new()
        .name(format!("events-{}", hook.id))
        .spawn(move || h.run(backoff, &stop))
        .map_err(SenderError::Thread)
}

impl Hook {
    fn run(&mut self, mut backoff: Backoff, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let batch = match self.outbox.after(self.cursor, BATCH) {
                Ok(b) => b,
                Err(e) => {
                    warn!(sink = %self.sink, error = %e, "Webhook sender cannot read the outbox.");
                    sleep_unless(stop, POLL * 4);
                    continue;
                }
            };
            if batch.missed > 0 {
                warn!(sink = %self.sink, missed = batch.missed, cursor = self.cursor,
                      "Events deleted by retention before the webhook got them.");
                SinkStats::add(&self.stats.skipped, batch.missed);
                self.cursor += batch.missed as i64;
            }
            let idle = batch.rows.is_empty();
            for row in &batch.rows {
                if !self.deliver(row, &mut backoff, stop) {
                    break;
                }
                self.cursor = row.seq;
                self.save(false);
            }
            self.save(idle);
            if idle {
                sleep_unless(stop, POLL);
            }
        }
        self.save(true);
        info!(sink = %self.sink, cursor = self.cursor, "Webhook sender stopped.");
    }

    /// Sends `row` until it is delivered or refused (true), or `stop` is set (false).
    fn deliver(&self, row: &OutboxRow, backoff: &mut Backoff, stop: &AtomicBool) -> bool {
        if !self.cfg.kinds.is_empty() && !self.cfg.kinds.contains(&row.kind) {
            return true;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.post(row) {
                Outcome::Delivered => {
                    SinkStats::add(&self.stats.delivered, 1);
                    self.stats.connected.store(1, Ordering::Relaxed);
                    backoff.reset();
                    return true;
                }
                Outcome::Refused(status) => {
                    warn!(sink = %self.sink, status, event_id = %row.event_id, seq = row.seq,
                          "Webhook refused the event for good (4xx); skipped.");
                    SinkStats::add(&self.stats.skipped, 1);
                    self.stats.connected.store(1, Ordering::Relaxed);
                    return true;
                }
                Outcome::Retry(reason) => {
                    SinkStats::add(&self.stats.failures, 1);
                    self.stats.connected.store(0, Ordering::Relaxed);
                    let wait = backoff.next_wait();
                    warn!(sink = %self.sink, reason = %reason, seq = row.seq,
                          attempt = backoff.failures(), retry_in_ms = wait.as_millis() as u64,
                          "Webhook delivery failed; will retry.");
                    sleep_unless(stop, wait);
                }
            }
        }
    }

    /// One attempt.
    fn post(&self, row: &OutboxRow) -> Outcome {
        let ts = (crate::time::wall_ms() / 1000).to_string();
        let mut req = self
            .agent
            .post(self.cfg.url.as_str())
            .header("Content-Type", "application/json")
            .header(EVENT_ID_HEADER, &row.event_id)
            .header(TIMESTAMP_HEADER, &ts);
        if let Some(secret) = &self.cfg.secret {
            req = req.header(SIGNATURE_HEADER, &signature(secret, &ts, &row.json));
        }
        match req.send(row.json.as_str()) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Outcome::Delivered,
                    408 | 429 => Outcome::Retry(format!("HTTP {status}")),
                    400..=499 => Outcome::Refused(status),
                    _ => Outcome::Retry(format!("HTTP {status}")),
                }
            }
            // ureq's message may quote the URL: credentials masked.
            Err(e) => Outcome::Retry(redact::scrub(&e.to_string()).into_owned()),
        }
    }

    /// Saves the cursor if it moved, at most every [`SAVE_EVERY`] unless `now`; refreshes the
    /// backlog figure.
    fn save(&mut self, now: bool) {
        self.stats.cursor.store(self.cursor, Ordering::Relaxed);
        if self.cursor != self.saved && (now || self.saved_at.elapsed() >= SAVE_EVERY) {
            match self.outbox.save(&self.sink, self.cursor) {
                Ok(()) => self.saved = self.cursor,
                Err(e) => {
                    warn!(sink = %self.sink, error = %e, "Webhook sender cannot save its cursor.")
                }
            }
            self.saved_at = Instant::now();
            if let Ok(n) = self.outbox.backlog(self.cursor) {
                self.stats.backlog.store(n, Ordering::Relaxed);
            }
        } else if now && let Ok(n) = self.outbox.backlog(self.cursor) {
            self.stats.backlog.store(n, Ordering::Relaxed);
        }
    }
}

/// Sleeps `d`, waking early when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The same computed by Python: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("key", "1700000000", "{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
