//! The single writer thread: batches [`StoreMsg`]s into one transaction per flush interval.
//!
//! Input: frame rows, track points and track ends from the tracker stage. Output: rows in
//! `frames`, `tracks` and `points`, and the run's liveness time. A point is never overwritten:
//! a second point for the same (track, time) is not written and is counted
//! (`Stats::points_duplicate`), so `tracks.points` is exactly the number of stored rows. A point
//! with a non-finite number is refused and counted (`Stats::points_rejected`): SQLite would
//! turn a NaN into NULL and fail the whole batch on its NOT NULL column.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::params;
use tracing::{error, info, warn};

use super::{Store, StoreError, runs};
use crate::ingest::wall_ms;
use crate::messages::{StoreMsg, TrackUpdate};
use crate::stats::{self, Stats};

/// A batch is committed early once it holds this many messages.
const MAX_BATCH: usize = 20_000;
/// Messages kept for retry while the disk refuses writes; older ones are dropped (counted).
const MAX_PENDING: usize = 200_000;
/// With nothing to write, the run's liveness time is still refreshed this often, so the end
/// of a run that dies while idle is known to within this interval.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Per-track accumulation between flushes.
#[derive(Debug, Clone, Copy)]
struct Touch {
    first_ms: i64,
    last_ms: i64,
    points: i64,
}

/// Counts of one flush.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    frames: u64,
    points: u64,
    duplicates: u64,
    rejected: u64,
}

pub(super) struct Writer {
    store: Store,
    /// (camera, tracker id) → tracks.id for tracks of this run.
    rows: HashMap<(Arc<str>, u64), i64>,
    pending: Vec<StoreMsg>,
    last_commit: Instant,
    /// The first duplicate and the first refused point are logged; the rest only counted.
    warned_duplicate: bool,
    warned_rejected: bool,
}

impl Writer {
    pub(super) fn new(store: Store) -> Self {
        Self {
            store,
            rows: HashMap::new(),
            pending: Vec::new(),
            last_commit: Instant::now(),
            warned_duplicate: false,
            warned_rejected: false,
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
                Ok(msg) => {
                    self.pending.push(msg);
                    if self.pending.len() < MAX_BATCH {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.flush_or_keep(stats);
            next_flush = Instant::now() + flush_interval;
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
        if let Err(e) = self.flush(stats) {
            stats::inc(&stats.store_errors);
            error!(error = %e, pending = self.pending.len(), "Database write failed; will retry.");
            if self.pending.len() > MAX_PENDING {
                let excess = self.pending.len() - MAX_PENDING;
                self.pending.drain(..excess);
                error!(dropped = excess, "Dropped oldest unsaved records.");
            }
        }
    }

    /// Writes everything pending in one transaction. On failure nothing is lost from `pending`.
    fn flush(&mut self, stats: &Stats) -> Result<(), StoreError> {
        let heartbeat_due = self.store.run.is_some() && self.last_commit.elapsed() >= HEARTBEAT;
        if self.pending.is_empty() && !heartbeat_due {
            return Ok(());
        }
        let path = self.store.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let run = self.store.run;
        let tx = self.store.conn.transaction().map_err(sql)?;
        let mut new_rows: HashMap<(Arc<str>, u64), i64> = HashMap::new();
        let mut touched: HashMap<i64, Touch> = HashMap::new();
        let mut ended: Vec<i64> = Vec::new();
        let mut n = Written::default();
        {
            let mut ins_frame = tx
                .prepare_cached(
                    "INSERT INTO frames(camera, seq, ts_ms, persons) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            let mut ins_track = tx
                .prepare_cached(
                    "INSERT INTO tracks(camera, first_ms, last_ms, run) VALUES (?1, ?2, ?2, ?3)",
                )
                .map_err(sql)?;
            // Never OR REPLACE: a point already stored for this instant stays as it is.
            let mut ins_point = tx
                .prepare_cached(
                    "INSERT INTO points(track, ts_ms, x, y, w, h, score, floor_x, floor_y, kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(track, ts_ms) DO NOTHING",
                )
                .map_err(sql)?;
            for msg in &self.pending {
                match msg {
                    StoreMsg::Frame {
                        camera,
                        seq,
                        ts_ms,
                        persons,
                    } => {
                        ins_frame
                            .execute(params![camera.as_ref(), *seq as i64, ts_ms, persons])
                            .map_err(sql)?;
                        n.frames += 1;
                    }
                    StoreMsg::Point(p) => {
                        if !is_finite(p) {
                            n.rejected += 1;
                            if !self.warned_rejected {
                                self.warned_rejected = true;
                                warn!(camera = %p.camera, track = p.track_id, ts_ms = p.ts_ms,
                                      "Point with a non-finite box, score or floor position \
                                       not stored (further ones only counted).");
                            }
                            continue;
                        }
                        let key = (Arc::clone(&p.camera), p.track_id);
                        let row = match self.rows.get(&key).or_else(|| new_rows.get(&key)) {
                            Some(r) => *r,
                            None => {
                                ins_track
                                    .execute(params![p.camera.as_ref(), p.ts_ms, run])
                                    .map_err(sql)?;
                                let r = tx.last_insert_rowid();
                                new_rows.insert(key, r);
                                r
                            }
                        };
                        if insert_point(&mut ins_point, row, p).map_err(sql)? == 0 {
                            n.duplicates += 1;
                            if !self.warned_duplicate {
                                self.warned_duplicate = true;
                                warn!(camera = %p.camera, track = p.track_id, ts_ms = p.ts_ms,
                                      "A second point for the same track and time was not \
                                       stored (further ones only counted).");
                            }
                            continue;
                        }
                        let t = touched.entry(row).or_insert(Touch {
                            first_ms: p.ts_ms,
                            last_ms: p.ts_ms,
                            points: 0,
                        });
                        t.first_ms = t.first_ms.min(p.ts_ms);
                        t.last_ms = t.last_ms.max(p.ts_ms);
                        t.points += 1;
                        n.points += 1;
                    }
                    StoreMsg::TrackEnded { camera, track_id } => {
                        let key = (Arc::clone(camera), *track_id);
                        if let Some(r) = self.rows.get(&key).or_else(|| new_rows.get(&key)) {
                            ended.push(*r);
                        }
                    }
                }
            }
            let mut upd = tx
                .prepare_cached(
                    "UPDATE tracks SET first_ms = MIN(first_ms, ?2), last_ms = MAX(last_ms, ?3),
                                       points = points + ?4
                     WHERE id = ?1",
                )
                .map_err(sql)?;
            for (row, t) in &touched {
                upd.execute(params![row, t.first_ms, t.last_ms, t.points])
                    .map_err(sql)?;
            }
            let mut end = tx
                .prepare_cached("UPDATE tracks SET ended = 1 WHERE id = ?1")
                .map_err(sql)?;
            for row in &ended {
                end.execute(params![row]).map_err(sql)?;
            }
        }
        if let Some(run) = run {
            runs::heartbeat(&tx, run, wall_ms()).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        self.last_commit = Instant::now();
        self.rows.extend(new_rows);
        // Ended tracks get no more points: forget their ids.
        if !ended.is_empty() {
            self.rows.retain(|_, r| !ended.contains(r));
        }
        self.pending.clear();
        stats::add(&stats.frames_stored, n.frames);
        stats::add(&stats.points_stored, n.points);
        stats::add(&stats.points_duplicate, n.duplicates);
        stats::add(&stats.points_rejected, n.rejected);
        Ok(())
    }
}

/// Every number of the point is finite (a NaN box could come from a broken model output).
fn is_finite(p: &TrackUpdate) -> bool {
    let b = p.bbox;
    [b.x, b.y, b.w, b.h, p.score].iter().all(|v| v.is_finite())
        && p.floor.is_none_or(|(x, y)| x.is_finite() && y.is_finite())
}

/// Inserts one point; returns 0 if a point for this track and time was already stored.
fn insert_point(
    stmt: &mut rusqlite::CachedStatement<'_>,
    row: i64,
    p: &TrackUpdate,
) -> rusqlite::Result<usize> {
    let b = p.bbox;
    stmt.execute(params![
        row,
        p.ts_ms,
        f64::from(b.x),
        f64::from(b.y),
        f64::from(b.w),
        f64::from(b.h),
        f64::from(p.score),
        p.floor.map(|f| f.0),
        p.floor.map(|f| f.1),
        p.kind.code(),
    ])
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::geometry::BBox;
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
        Writer::new(store)
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
}
