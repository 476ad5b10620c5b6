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
use crate::stats::{self, Stats};
use crate::time::wall_ms;

/// Rows deleted per step (one transaction, a few milliseconds).
const STEP_ROWS: u64 = 2_000;
/// Longest time the writer thread spends on upkeep per tick.
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

/// Retention as the writer thread runs it: time-boxed slices between its writes, incremental
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

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::store::Store;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_tick_deletes_expired_rows_truncates_the_wal_and_reports_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.db");
        let mut store = Store::open(&path).unwrap();
        let old = wall_ms() - 40 * DAY;
        let recent = wall_ms() - 60_000;
        {
            let c = &store.conn;
            c.execute_batch(
                "INSERT INTO cameras VALUES ('cam1', 'a', 'rtsp://a', 0);
                 INSERT INTO tracks(id, camera, first_ms, last_ms, points, ended)
                 VALUES (1, 'cam1', 0, 0, 100, 1), (2, 'cam1', 0, 0, 3000, 0);",
            )
            .unwrap();
            c.execute(
                "UPDATE tracks SET first_ms = ?1, last_ms = ?1 + 9900 WHERE id = 1",
                [old],
            )
            .unwrap();
            c.execute(
                "UPDATE tracks SET first_ms = ?1, last_ms = ?1 + 299900 WHERE id = 2",
                [recent],
            )
            .unwrap();
            // One commit per point, as the writer does per flush: the WAL grows.
            for (track, t0, n) in [(1, old, 100), (2, recent, 3000)] {
                for i in 0..n {
                    c.execute(
                        "INSERT INTO points(track, ts_ms, x, y, w, h, score)
                         VALUES (?1, ?2, 1.5, 2.5, 30.25, 90.125, 0.75)",
                        params![track, t0 + i * 100],
                    )
                    .unwrap();
                }
            }
            for s in 0..50 {
                c.execute(
                    "INSERT INTO frames_second VALUES ('cam1', ?1, 10, 1, 3, 20, ?2, ?2 + 900)",
                    params![old / 1000 + s, old + s * 1000],
                )
                .unwrap();
            }
        }
        assert!(wal_bytes(&store.conn) > 1 << 20, "the WAL did not grow");
        let stats = Stats::new(1);
        let mut up = Upkeep::new(Policy {
            keep_ms: Some(30 * DAY),
            max_bytes: None,
        });
        up.next_checkpoint = Instant::now();
        up.tick(&mut store.conn, &stats);
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(
            (
                n(&stats.retention_tracks_deleted),
                n(&stats.retention_points_deleted),
                n(&stats.retention_seconds_deleted)
            ),
            (1, 100, 50)
        );
        assert_eq!(wal_bytes(&store.conn), 0, "the WAL was not truncated");
        let on_disk = std::fs::metadata(&path).unwrap().len();
        assert_eq!(n(&stats.db_bytes), on_disk);
        let left: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM points", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 3000, "the recent open track was touched");
        // Nothing is due again before the idle interval.
        assert!(up.next_due() > Instant::now() + IDLE_INTERVAL / 2);
    }
}
