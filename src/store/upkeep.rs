//! Housekeeping the writer thread runs between flushes, in slices short enough not to hold
//! writes up: retention steps, folding an older schema's per-frame rows, incremental vacuum,
//! WAL truncation and the database size gauge.
//!
//! Input: the writer's connection and the retention [`Policy`]. Output: deleted and folded
//! rows, a smaller file, and `Stats::db_bytes` / `Stats::retention_*`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tracing::{debug, info, warn};

use super::legacy;
use super::retention::{Pages, Policy, Retention, vacuum_step};
use crate::ingest::wall_ms;
use crate::stats::{self, Stats};

/// Rows deleted per step (one transaction, a few milliseconds).
const STEP_ROWS: u64 = 2_000;
/// Longest time the writer thread spends on retention per flush tick.
const TICK_SLICE: Duration = Duration::from_millis(50);
/// With nothing to delete, retention looks again this often.
const IDLE_INTERVAL: Duration = Duration::from_secs(10);
/// While catching up, the writer gets this long for its own work between two slices.
const BUSY_PAUSE: Duration = Duration::from_millis(200);
/// Per-frame rows of an older schema folded per step.
const LEGACY_ROWS: u64 = 10_000;
/// Free pages given back to the file system per tick (4 MiB at 4 KiB pages).
const VACUUM_PAGES: u64 = 1_024;
/// The WAL is checkpointed and truncated this often (besides SQLite's own checkpoints).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);
/// How long the truncating checkpoint waits for readers before trying again later.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// Retention as the writer thread runs it: a time-boxed share of each flush tick, incremental
/// vacuum, periodic WAL truncation and the database size gauge.
#[derive(Debug)]
pub(super) struct Upkeep {
    retention: Retention,
    next_due: Instant,
    next_checkpoint: Instant,
    /// One log line per spell of failing steps, and one while over the cap with nothing to delete.
    warned_error: bool,
    warned_stuck: bool,
    /// Per-frame rows of an older schema still to fold (None: not looked yet).
    legacy: Option<bool>,
}

impl Upkeep {
    pub(super) fn new(policy: Policy) -> Self {
        let now = Instant::now();
        Self {
            retention: Retention::new(policy),
            next_due: now,
            next_checkpoint: now + CHECKPOINT_INTERVAL,
            warned_error: false,
            warned_stuck: false,
            legacy: None,
        }
    }

    /// When the next tick is due.
    pub(super) fn next_due(&self) -> Instant {
        self.next_due
    }

    /// Runs what is due; never much longer than [`TICK_SLICE`].
    pub(super) fn tick(&mut self, conn: &mut Connection, stats: &Stats) {
        let start = Instant::now();
        if start < self.next_due {
            return;
        }
        let policy = self.retention.policy();
        let mut more = false;
        if policy.keep_ms.is_some() || policy.max_bytes.is_some() {
            more = self.retention_slice(conn, stats, start);
        }
        more |= self.fold_slice(conn, start);
        match vacuum_step(conn, VACUUM_PAGES) {
            Ok(n) => more |= n == VACUUM_PAGES,
            Err(e) => self.failed(&e),
        }
        if start >= self.next_checkpoint {
            self.next_checkpoint = start + CHECKPOINT_INTERVAL;
            if let Err(e) = checkpoint(conn) {
                self.failed(&e);
            }
        }
        if let Ok(p) = Pages::read(conn) {
            stats
                .db_bytes
                .store(p.file_bytes() + wal_bytes(conn), Ordering::Relaxed);
        }
        self.next_due = if more {
            Instant::now() + BUSY_PAUSE
        } else {
            start + IDLE_INTERVAL
        };
    }

    /// Folds per-frame rows of an older schema until the slice is used; returns whether some
    /// are left.
    fn fold_slice(&mut self, conn: &mut Connection, start: Instant) -> bool {
        if self.legacy.is_none() {
            let pending = legacy::pending(conn).unwrap_or(false);
            if pending {
                info!(
                    "Folding the per-frame rows of an older schema into per-second rows in \
                       the background."
                );
            }
            self.legacy = Some(pending);
        }
        while self.legacy == Some(true) && start.elapsed() < TICK_SLICE {
            match legacy::fold_step(conn, LEGACY_ROWS) {
                Ok(0) => {
                    info!("Per-frame rows of the older schema folded.");
                    self.legacy = Some(false);
                }
                Ok(_) => {}
                Err(e) => {
                    self.failed(&e);
                    return true;
                }
            }
        }
        self.legacy == Some(true)
    }

    /// Steps until nothing is due or the slice is used; returns whether more is due.
    fn retention_slice(&mut self, conn: &mut Connection, stats: &Stats, start: Instant) -> bool {
        loop {
            let step = match self.retention.step(conn, wall_ms(), STEP_ROWS) {
                Ok(s) => s,
                Err(e) => {
                    self.failed(&e);
                    return false;
                }
            };
            self.warned_error = false;
            let d = step.deleted;
            stats::add(&stats.retention_points_deleted, d.points);
            stats::add(&stats.retention_tracks_deleted, d.tracks);
            stats::add(&stats.retention_seconds_deleted, d.seconds);
            if step.stuck && !self.warned_stuck {
                self.warned_stuck = true;
                warn!(
                    used_mb = step.used_bytes >> 20,
                    "Database over storage.max_size_mb with nothing old enough to delete \
                       (only tracks still open)."
                );
            }
            if !step.more || start.elapsed() >= TICK_SLICE {
                return step.more;
            }
        }
    }

    fn failed(&mut self, e: &rusqlite::Error) {
        if !self.warned_error {
            self.warned_error = true;
            warn!(error = %e, "Retention step failed; trying again later.");
        }
    }
}

/// Checkpoints the WAL and truncates it, waiting only briefly for readers.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(CHECKPOINT_WAIT)?;
    let r = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    if r? == 1 {
        debug!("WAL checkpoint postponed: a reader is busy.");
    }
    Ok(())
}

/// Bytes of the WAL file next to the database.
fn wal_bytes(conn: &Connection) -> u64 {
    conn.path()
        .map(|p| format!("{p}-wal"))
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len())
}
