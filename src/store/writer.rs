//! The single writer thread: batches [`StoreMsg`]s into one transaction per flush interval, and
//! between flushes runs retention (see [`super::retention`]).
//!
//! Input: frames, track points and track ends from the tracker stage. Output: rows in
//! `frames_second`, `tracks` and `points`, the run's liveness time, and with it each camera's
//! figures for the run (`run_cameras`). A point is never
//! overwritten: a second point for the same (track, time) is not written and is counted
//! (`Stats::points_duplicate`), so `tracks.points` is exactly the number of stored rows. A point
//! with a non-finite number is refused and counted (`Stats::points_rejected`).
//!
//! Write failures: when the database refuses a batch as a whole (disk full, I/O, lock) the
//! batch is kept and retried with exponential backoff, never once per incoming message; the
//! channel is still drained, and beyond [`MAX_PENDING`] waiting messages the oldest are dropped
//! and counted, so the tracker and detector never stall on the store. When SQLite refuses a
//! row (a constraint), the batch is retried row by row: the bad row is dropped, counted and
//! logged once, and everything else commits.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tracing::{error, info, warn};

use super::analytics::AnalyticsRows;
use super::batch::{self, Applied, Mode};
use super::retention::Policy;
use super::upkeep::Upkeep;
use super::{Store, StoreError, run_cameras, runs};
use crate::messages::StoreMsg;
use crate::stats::{self, Stats};
use crate::time::wall_ms;

/// A batch is committed early once it holds this many messages.
const MAX_BATCH: usize = 20_000;
/// Messages kept while the database refuses writes; older ones are dropped (counted).
const MAX_PENDING: usize = 200_000;
/// First wait before retrying a refused batch; doubles per failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between retries of a refused batch.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// While writes keep failing, a reminder is logged this often.
const FAILING_REMINDER: Duration = Duration::from_secs(60);
/// With nothing to write, the run's liveness time is still refreshed this often, so the end
/// of a run that dies while idle is known to within this interval.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// How the writer runs.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Commit interval.
    pub flush_interval: Duration,
    /// What retention keeps.
    pub retention: Policy,
}

/// A spell of refused writes.
#[derive(Debug)]
struct Failing {
    since: Instant,
    backoff: Duration,
    retry_at: Instant,
    reminded: Instant,
    /// Counters when the spell began (the recovery line reports what it cost).
    dropped_points_before: u64,
    dropped_frames_before: u64,
}

pub(super) struct Writer {
    store: Store,
    /// (camera, tracker id) → tracks.id for tracks of this run.
    rows: HashMap<(Arc<str>, u64), i64>,
    pending: VecDeque<StoreMsg>,
    last_commit: Instant,
    warn: batch::Warnings,
    /// The first row SQLite refused is logged; the rest only counted.
    warned_failed_row: bool,
    /// The first drop of a spell of failed writes is logged; the rest only counted.
    warned_drop: bool,
    /// Some while the database refuses writes.
    failing: Option<Failing>,
    /// Bound of `pending` ([`MAX_PENDING`]; smaller in tests).
    max_pending: usize,
    upkeep: Upkeep,
    /// Store trajectory rows of this run.
    analytics: AnalyticsRows,
    /// The run is closing: the next flush writes the heartbeat and cameras' figures.
    closing: bool,
}

impl Writer {
    pub(super) fn new(store: Store, retention: Policy) -> Self {
        Self {
            store,
            rows: HashMap::new(),
            pending: VecDeque::new(),
            last_commit: Instant::now(),
            warn: batch::Warnings::default(),
            warned_failed_row: false,
            warned_drop: false,
            failing: None,
            max_pending: MAX_PENDING,
            upkeep: Upkeep::new(retention),
            analytics: AnalyticsRows::default(),
            closing: false,
        }
    }

    pub(super) fn run(
        mut self,
        rx: &Receiver<StoreMsg>,
        flush_interval: Duration,
        stats: &Stats,
    ) -> Result<(), StoreError> {
        let mut next_flush = Instant::now() + flush_interval;
        loop {
            let wake = next_flush.min(self.upkeep.next_due());
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(msg) => self.push(msg, stats),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let batch_full = self.failing.is_none() && self.pending.len() >= MAX_BATCH;
            if batch_full || Instant::now() >= next_flush {
                self.flush_unless_backing_off(stats);
                next_flush = Instant::now() + flush_interval;
            }
            // Retention runs on its own schedule, in slices short enough not to hold writes up.
            self.upkeep.tick(&mut self.store.conn, stats);
        }
        // The last flush also writes the cameras' final figures.
        self.closing = true;
        let result = self.flush(stats);
        if let Err(e) = &result {
            stats::inc(&stats.store_errors);
            error!(error = %e, lost = self.pending.len(), "Final database flush failed.");
        }
        // A detector that failed ends the run early: not clean, whatever was written.
        self.close_run(result.is_ok() && !stats.detector_failed.load(Ordering::Relaxed));
        if result.is_ok() {
            info!(db = %self.store.path.display(), "Database closed.");
        }
        result
    }

    /// Queues a message; beyond [`MAX_PENDING`] the oldest waiting one is dropped and counted.
    fn push(&mut self, msg: StoreMsg, stats: &Stats) {
        if self.pending.len() >= self.max_pending
            && let Some(old) = self.pending.pop_front()
        {
            if !self.warned_drop {
                self.warned_drop = true;
                warn!(
                    kept = self.max_pending,
                    "Database backlog full: dropping the oldest unsaved records (counted)."
                );
            }
            match old {
                StoreMsg::Point(_) => stats::inc(&stats.store_points_dropped),
                StoreMsg::Frame { .. } => stats::inc(&stats.store_frames_dropped),
                // The track stays open until the run closes.
                StoreMsg::TrackEnded { .. } => {}
                // Store trajectories are rebuilt from camera tracks only by the running stage.
                StoreMsg::Analytics(_) | StoreMsg::Live(_) => {
                    stats::inc(&stats.store_analytics_dropped)
                }
            }
        }
        self.pending.push_back(msg);
    }

    /// A flush, unless backing off after a failure.
    fn flush_unless_backing_off(&mut self, stats: &Stats) {
        let now = Instant::now();
        if self.failing.as_ref().is_none_or(|f| now >= f.retry_at) {
            self.flush_or_keep(stats);
        }
    }

    /// Closes the run row: clean when everything was written and every track was ended.
    fn close_run(&mut self, orderly: bool) {
        let Some(run) = self.store.run else {
            return;
        };
        match runs::finish(&mut self.store.conn, run, wall_ms(), orderly) {
            Ok(0) if orderly => info!(run, "Run closed cleanly."),
            Ok(open) => warn!(run, open_tracks = open, "Run closed as not clean."),
            Err(e) => error!(run, error = %e, "Cannot close the run; the next start will."),
        }
    }

    fn flush_or_keep(&mut self, stats: &Stats) {
        let now = Instant::now();
        let result = self.flush(stats);
        stats.db_writable.store(result.is_ok(), Ordering::Relaxed);
        match (result, &mut self.failing) {
            (Ok(()), failing) => {
                if let Some(f) = failing.take() {
                    self.warned_drop = false;
                    info!(
                        after_s = f.since.elapsed().as_secs(),
                        points_dropped = stats.store_points_dropped.load(Ordering::Relaxed)
                            - f.dropped_points_before,
                        frames_dropped = stats.store_frames_dropped.load(Ordering::Relaxed)
                            - f.dropped_frames_before,
                        "Database writes resumed."
                    );
                    stats.store_failing.store(false, Ordering::Relaxed);
                }
            }
            (Err(e), None) => {
                stats::inc(&stats.store_errors);
                stats.store_failing.store(true, Ordering::Relaxed);
                error!(error = %e, pending = self.pending.len(),
                       "Database write failed; keeping the records and retrying with backoff.");
                self.failing = Some(Failing {
                    since: now,
                    backoff: RETRY_FIRST,
                    retry_at: now + RETRY_FIRST,
                    reminded: now,
                    dropped_points_before: stats.store_points_dropped.load(Ordering::Relaxed),
                    dropped_frames_before: stats.store_frames_dropped.load(Ordering::Relaxed),
                });
            }
            (Err(e), Some(f)) => {
                stats::inc(&stats.store_errors);
                f.backoff = (f.backoff * 2).min(RETRY_MAX);
                f.retry_at = now + f.backoff;
                if now.duration_since(f.reminded) >= FAILING_REMINDER {
                    f.reminded = now;
                    warn!(error = %e, failing_s = f.since.elapsed().as_secs(),
                          pending = self.pending.len(),
                          points_dropped = stats.store_points_dropped.load(Ordering::Relaxed)
                              - f.dropped_points_before,
                          "Database writes still failing.");
                }
            }
        }
    }

    /// Writes everything pending in one transaction. When SQLite refuses a row, the batch is
    /// written again row by row without it. On a failure of the whole database nothing is lost
    /// from `pending`.
    fn flush(&mut self, stats: &Stats) -> Result<(), StoreError> {
        let heartbeat_due =
            self.store.run.is_some() && (self.closing || self.last_commit.elapsed() >= HEARTBEAT);
        if self.pending.is_empty() && !heartbeat_due {
            return Ok(());
        }
        let oldest_ms = self
            .pending
            .iter()
            .filter_map(|m| match m {
                StoreMsg::Frame { ts_ms, .. } => Some(*ts_ms),
                StoreMsg::Point(p) => Some(p.ts_ms),
                _ => None,
            })
            .min();
        let cameras = heartbeat_due.then_some(stats);
        let applied = match self.write(Mode::Whole, cameras) {
            Err(e) if !batch::is_transient(&e) => self.write(Mode::Isolate, cameras),
            other => other,
        }
        .map_err(|source| StoreError::Sql {
            path: self.store.path.clone(),
            source,
        })?;
        self.committed(applied, stats);
        if let Some(oldest) = oldest_ms {
            let lag = wall_ms().saturating_sub(oldest).max(0) as u64;
            stats.write_lag_ms.store(lag, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One attempt; the analytics rows created by a transaction that did not commit are
    /// forgotten with it.
    fn write(&mut self, mode: Mode, cameras: Option<&Stats>) -> rusqlite::Result<Applied> {
        let before = self.analytics.snapshot();
        let result = self.write_once(mode, cameras);
        match &result {
            Ok(_) => self.analytics.committed(),
            Err(_) => self.analytics.rolled_back(&before),
        }
        result
    }

    /// One transaction: the batch, the run's liveness time, and with `cameras` (heartbeat) the
    /// cameras' figures for the run.
    fn write_once(&mut self, mode: Mode, cameras: Option<&Stats>) -> rusqlite::Result<Applied> {
        let run = self.store.run;
        let tx = self.store.conn.transaction()?;
        let applied = batch::apply(
            &tx,
            self.pending.iter(),
            &self.rows,
            run,
            mode,
            &mut self.warn,
            &mut self.analytics,
        )?;
        if let Some(run) = run {
            runs::heartbeat(&tx, run, wall_ms())?;
            if let Some(stats) = cameras {
                run_cameras::write(&tx, run, stats)?;
            }
        }
        tx.commit()?;
        Ok(applied)
    }

    fn committed(&mut self, applied: Applied, stats: &Stats) {
        self.last_commit = Instant::now();
        self.rows.extend(applied.new_rows);
        // Ended tracks get no more points: forget their ids.
        if !applied.ended.is_empty() {
            self.rows.retain(|_, r| !applied.ended.contains(r));
        }
        self.pending.clear();
        let n = applied.written;
        if let Some(e) = applied.first_failure
            && !self.warned_failed_row
        {
            self.warned_failed_row = true;
            warn!(error = %e, rows = n.failed,
                  "The database refused a row; it was dropped and the rest of the batch \
                   written (further ones only counted).");
        }
        stats::add(&stats.frames_stored, n.frames);
        stats::add(&stats.points_stored, n.points);
        stats::add(&stats.points_duplicate, n.duplicates);
        stats::add(&stats.points_rejected, n.rejected);
        stats::add(&stats.store_rows_failed, n.failed);
    }
}

#[cfg(test)]
mod tests;
