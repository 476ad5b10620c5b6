//! The single writer thread: batches [`StoreMsg`]s into one transaction per flush interval, and
//! between flushes runs retention (see [`super::retention`]).
//!
//! Input: frames, track points and track ends from the tracker stage. Output: rows in
//! `frames_second`, `tracks` and `points`, and the run's liveness time. A point is never
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

use super::batch::{self, Applied, Mode};
use super::retention::{Policy, Upkeep};
use super::{Store, StoreError, runs};
use crate::ingest::wall_ms;
use crate::messages::StoreMsg;
use crate::stats::{self, Stats};

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
    /// Some while the database refuses writes.
    failing: Option<Failing>,
    /// Bound of `pending` ([`MAX_PENDING`]; smaller in tests).
    max_pending: usize,
    upkeep: Upkeep,
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
            failing: None,
            max_pending: MAX_PENDING,
            upkeep: Upkeep::new(retention),
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
            let wait = next_flush.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(msg) => self.push(msg, stats),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let batch_full = self.failing.is_none() && self.pending.len() >= MAX_BATCH;
            if batch_full || Instant::now() >= next_flush {
                self.tick(stats);
                next_flush = Instant::now() + flush_interval;
            }
        }
        let result = self.flush(stats);
        if let Err(e) = &result {
            stats::inc(&stats.store_errors);
            error!(error = %e, lost = self.pending.len(), "Final database flush failed.");
        }
        self.close_run(result.is_ok());
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
            if stats.store_points_dropped.load(Ordering::Relaxed)
                + stats.store_frames_dropped.load(Ordering::Relaxed)
                == 0
            {
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
            }
        }
        self.pending.push_back(msg);
    }

    /// A flush (unless backing off after a failure), then retention's share of time.
    fn tick(&mut self, stats: &Stats) {
        let now = Instant::now();
        if self.failing.as_ref().is_none_or(|f| now >= f.retry_at) {
            self.flush_or_keep(stats);
        }
        self.upkeep.tick(&mut self.store.conn, stats);
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
        match (self.flush(stats), &mut self.failing) {
            (Ok(()), failing) => {
                if let Some(f) = failing.take() {
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
        let heartbeat_due = self.store.run.is_some() && self.last_commit.elapsed() >= HEARTBEAT;
        if self.pending.is_empty() && !heartbeat_due {
            return Ok(());
        }
        let applied = match self.write(Mode::Whole) {
            Err(e) if !batch::is_transient(&e) => self.write(Mode::Isolate),
            other => other,
        }
        .map_err(|source| StoreError::Sql {
            path: self.store.path.clone(),
            source,
        })?;
        self.committed(applied, stats);
        Ok(())
    }

    fn write(&mut self, mode: Mode) -> rusqlite::Result<Applied> {
        let run = self.store.run;
        let tx = self.store.conn.transaction()?;
        let applied = batch::apply(
            &tx,
            self.pending.iter(),
            &self.rows,
            run,
            mode,
            &mut self.warn,
        )?;
        if let Some(run) = run {
            runs::heartbeat(&tx, run, wall_ms())?;
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
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::geometry::BBox;
    use crate::messages::TrackUpdate;
    use crate::track::PointKind;

    fn point(track_id: u64, ts_ms: i64, x: f32) -> StoreMsg {
        StoreMsg::Point(TrackUpdate {
            camera: Arc::from("cam1"),
            track_id,
            ts_ms,
            bbox: BBox::new(x, 5.0, 40.0, 100.0),
            score: 0.8,
            floor: None,
            kind: PointKind::Observed,
        })
    }

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .connection()
            .execute(
                "INSERT INTO cameras(id, name, url, added_ms) VALUES ('cam1', 'c', 'rtsp://x', 0)",
                [],
            )
            .unwrap();
        Writer::new(store, Policy::default())
    }

    fn flush(w: &mut Writer, stats: &Stats, msgs: Vec<StoreMsg>) {
        w.pending.extend(msgs);
        w.flush(stats).unwrap();
        assert!(w.pending.is_empty());
    }

    /// (ts_ms, x) of every stored point, and the track row's (first, last, points).
    fn stored(w: &Writer) -> (Vec<(i64, f64)>, (i64, i64, i64)) {
        let c = &w.store.conn;
        let mut stmt = c
            .prepare("SELECT ts_ms, x FROM points ORDER BY ts_ms")
            .unwrap();
        let pts = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        let row = c
            .query_row("SELECT first_ms, last_ms, points FROM tracks", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        (pts, row)
    }

    #[test]
    fn time_step_back_never_overwrites_and_counts_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let stats = Stats::new(1);
        // A repeated time inside one batch...
        flush(
            &mut w,
            &stats,
            vec![
                point(7, 1000, 1.0),
                point(7, 1100, 2.0),
                point(7, 1200, 3.0),
                point(7, 1100, 99.0),
            ],
        );
        // ...and, in a later batch, a step back onto a stored time and one between two.
        flush(
            &mut w,
            &stats,
            vec![point(7, 1000, 98.0), point(7, 1150, 4.0)],
        );
        let (pts, (first, last, count)) = stored(&w);
        assert_eq!(
            pts,
            vec![(1000, 1.0), (1100, 2.0), (1150, 4.0), (1200, 3.0)],
            "a stored point was overwritten"
        );
        assert_eq!((first, last), (1000, 1200));
        assert_eq!(count, 4, "tracks.points must equal the stored rows");
        assert_eq!(stats.points_stored.load(Ordering::Relaxed), 4);
        assert_eq!(stats.points_duplicate.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn non_finite_points_are_refused_without_failing_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let stats = Stats::new(1);
        let mut nan_score = point(7, 1100, 2.0);
        if let StoreMsg::Point(p) = &mut nan_score {
            p.score = f32::NAN;
        }
        let mut inf_floor = point(7, 1300, 2.0);
        if let StoreMsg::Point(p) = &mut inf_floor {
            p.floor = Some((f64::INFINITY, 1.0));
        }
        flush(
            &mut w,
            &stats,
            vec![
                point(7, 1000, 1.0),
                point(7, 1050, f32::NAN),
                nan_score,
                point(7, 1200, f32::INFINITY),
                inf_floor,
                point(7, 1400, 3.0),
            ],
        );
        let (pts, (_, _, count)) = stored(&w);
        assert_eq!(pts, vec![(1000, 1.0), (1400, 3.0)]);
        assert_eq!(count, 2);
        assert_eq!(stats.points_rejected.load(Ordering::Relaxed), 4);
        let nulls: i64 = w
            .store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM points WHERE x IS NULL OR score IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(nulls, 0);
    }

    #[test]
    fn an_idle_run_still_refreshes_its_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let info = runs::RunInfo::current(std::path::Path::new("c.toml"), "00", 1);
        let start = w.store.begin_run(&info).unwrap();
        w.store
            .conn
            .execute("UPDATE runs SET last_ms = 5 WHERE id = ?1", [start.id])
            .unwrap();
        let stats = Stats::new(1);
        let last = |w: &Writer| -> i64 {
            w.store
                .conn
                .query_row("SELECT last_ms FROM runs", [], |r| r.get(0))
                .unwrap()
        };
        w.flush(&stats).unwrap();
        assert_eq!(last(&w), 5, "no write before the heartbeat is due");
        w.last_commit = Instant::now() - HEARTBEAT;
        let before = wall_ms();
        w.flush(&stats).unwrap();
        assert!(last(&w) >= before, "heartbeat not written");
    }

    #[test]
    fn point_kind_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let stats = Stats::new(1);
        let mut msgs = vec![
            point(7, 1000, 1.0),
            point(7, 1100, 2.0),
            point(7, 1200, 3.0),
        ];
        for (m, kind) in msgs.iter_mut().zip([
            PointKind::Observed,
            PointKind::Interpolated,
            PointKind::Predicted,
        ]) {
            if let StoreMsg::Point(p) = m {
                p.kind = kind;
            }
        }
        flush(&mut w, &stats, msgs);
        let kinds: Vec<i64> = w
            .store
            .conn
            .prepare("SELECT kind FROM points ORDER BY ts_ms")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(kinds, vec![0, 1, 2]);
    }

    fn frame(camera: &str, ts_ms: i64, persons: u32) -> StoreMsg {
        StoreMsg::Frame {
            camera: Arc::from(camera),
            seq: 0,
            ts_ms,
            persons,
        }
    }

    #[test]
    fn a_row_the_database_refuses_is_dropped_alone_and_later_batches_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        let stats = Stats::new(1);
        // A camera the database does not know breaks the tracks and frames_second foreign keys.
        let mut ghost = point(9, 1100, 5.0);
        if let StoreMsg::Point(p) = &mut ghost {
            p.camera = Arc::from("ghost");
        }
        flush(
            &mut w,
            &stats,
            vec![
                point(7, 1000, 1.0),
                frame("cam1", 1000, 2),
                ghost.clone(),
                frame("ghost", 1000, 4),
                frame("ghost", 1100, 4),
                point(7, 1100, 2.0),
                frame("cam1", 1100, 3),
            ],
        );
        let (pts, (_, _, count)) = stored(&w);
        assert_eq!(pts, vec![(1000, 1.0), (1100, 2.0)]);
        assert_eq!(count, 2);
        assert_eq!(stats.store_rows_failed.load(Ordering::Relaxed), 3);
        assert_eq!(stats.frames_stored.load(Ordering::Relaxed), 2);
        let tracks: i64 = w
            .store
            .conn
            .query_row("SELECT COUNT(*) FROM tracks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tracks, 1, "the refused point's track row was rolled back");
        // The next batch is written whole, and the bad row is not retried.
        flush(&mut w, &stats, vec![point(7, 1200, 3.0), ghost]);
        assert_eq!(stored(&w).0.len(), 3);
        assert_eq!(stats.store_rows_failed.load(Ordering::Relaxed), 4);
    }

    /// Sends `n` points of camera cam1 (track per 1000) from `t0`, 100 ms apart; returns the
    /// longest time one send waited.
    fn send_points(tx: &crossbeam_channel::Sender<StoreMsg>, t0: i64, n: i64) -> Duration {
        let mut longest = Duration::ZERO;
        for i in 0..n {
            let ts = t0 + i * 100;
            let t = Instant::now();
            tx.send(point((ts / 100_000) as u64, ts, 1.0)).unwrap();
            longest = longest.max(t.elapsed());
        }
        longest
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_full_database_drops_counted_oldest_records_and_writing_resumes_with_space() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(&dir);
        // History that will be deleted to make room.
        {
            let c = &w.store.conn;
            c.execute_batch(
                "BEGIN; INSERT INTO tracks(id, camera, first_ms, last_ms, ended)
                        VALUES (1000000, 'cam1', 0, 0, 1);",
            )
            .unwrap();
            for i in 0..6_000 {
                c.execute(
                    "INSERT INTO points(track, ts_ms, x, y, w, h, score) VALUES (1000000, ?1, 1.5, 2.5, 3.5, 4.5, 0.5)",
                    [i],
                )
                .unwrap();
            }
            c.execute_batch("COMMIT").unwrap();
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
            c.pragma_update(None, "max_page_count", pages + 1).unwrap();
        }
        w.max_pending = 2_000;
        let stats = Arc::new(Stats::new(1));
        let (tx, rx) = crossbeam_channel::bounded(256);
        let s = Arc::clone(&stats);
        let h = std::thread::spawn(move || w.run(&rx, Duration::from_millis(20), &s));

        // Full: 5000 points arrive; the newest 2000 are kept, the oldest 3000 dropped and
        // counted, and the sender is never held up by the failing database.
        let t0 = 1_000_000_000;
        let longest = send_points(&tx, t0, 5_000);
        assert!(
            longest < Duration::from_millis(500),
            "a send waited {longest:?}"
        );
        wait_for("drops", || {
            stats.store_points_dropped.load(Ordering::Relaxed) == 3_000
        });
        wait_for("the failure", || {
            stats.store_failing.load(Ordering::Relaxed)
        });
        assert_eq!(stats.points_stored.load(Ordering::Relaxed), 0);
        std::thread::sleep(Duration::from_millis(700));
        let errors = stats.store_errors.load(Ordering::Relaxed);
        assert!(
            (1..=4).contains(&errors),
            "{errors} failed transactions: retries must back off"
        );

        // Space returns (the history is deleted by another connection): the kept backlog and
        // what follows are written.
        let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        other
            .execute_batch(
                "PRAGMA foreign_keys = ON; DELETE FROM points WHERE track = 1000000;
                 DELETE FROM tracks WHERE id = 1000000;",
            )
            .unwrap();
        wait_for("writes to resume", || {
            stats.points_stored.load(Ordering::Relaxed) == 2_000
        });
        assert!(!stats.store_failing.load(Ordering::Relaxed));
        send_points(&tx, t0 + 5_000 * 100, 500);
        wait_for("new points", || {
            stats.points_stored.load(Ordering::Relaxed) == 2_500
        });
        assert_eq!(stats.store_points_dropped.load(Ordering::Relaxed), 3_000);
        drop(tx);
        h.join().unwrap().unwrap();
        // The newest records were the ones kept.
        let (n, first): (i64, i64) = other
            .query_row("SELECT COUNT(*), MIN(ts_ms) FROM points", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, first), (2_500, t0 + 3_000 * 100));
    }
}
