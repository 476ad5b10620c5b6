//! One flush of the writer: the pending messages applied inside one transaction.
//!
//! Input: pending [`StoreMsg`]s and the writer's track rows. Output: rows in `frames_second`
//! (frames folded into per-second counts), `tracks` and `points`, and what was written
//! ([`Applied`]). In [`Mode::Isolate`] every message (and every per-second row) runs in its own
//! savepoint, so one that SQLite refuses is dropped alone and counted while the rest commit.

use std::collections::HashMap;
use std::sync::Arc;

use super::analytics::AnalyticsRows;
use rusqlite::{Transaction, params};
use tracing::warn;

use crate::messages::{StoreMsg, TrackUpdate};

/// How a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// All or nothing: the first error aborts the transaction.
    Whole,
    /// Row by row: a refused row is rolled back to its savepoint, dropped and counted.
    Isolate,
}

/// Counts of one flush.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Written {
    pub frames: u64,
    pub points: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rows SQLite refused in [`Mode::Isolate`] (frames count one per frame).
    pub failed: u64,
}

/// The first duplicate and the first refused point are logged; the rest only counted.
#[derive(Debug, Default)]
pub(super) struct Warnings {
    duplicate: bool,
    rejected: bool,
}

/// Persons of the frames of one camera in one second.
#[derive(Debug, Clone, Copy)]
struct Second {
    frames: u64,
    min: u32,
    max: u32,
    sum: u64,
    first_ms: i64,
    last_ms: i64,
}

/// Per-track accumulation of one batch.
#[derive(Debug, Clone, Copy)]
struct Touch {
    first_ms: i64,
    last_ms: i64,
    points: i64,
}

/// What a committed batch changed, for the writer to take over.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// Track rows created in this batch.
    pub new_rows: HashMap<(Arc<str>, u64), i64>,
    /// Track rows ended in this batch.
    pub ended: Vec<i64>,
    pub written: Written,
    /// The first row SQLite refused (logged by the writer).
    pub first_failure: Option<rusqlite::Error>,
    seconds: HashMap<(Arc<str>, i64), Second>,
    touched: HashMap<i64, Touch>,
}

/// Whether an error is about the database as a whole (space, I/O, locks), so the same batch
/// may succeed later, rather than about one row.
pub(super) fn is_transient(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DiskFull
                | SystemIoFailure
                | DatabaseBusy
                | DatabaseLocked
                | CannotOpen
                | ReadOnly
                | OutOfMemory
                | PermissionDenied
                | FileLockingProtocolFailed
                | DatabaseCorrupt
                | NotADatabase
                | OperationInterrupted
        )
    )
}

/// Applies `pending` to `tx` (the caller commits): frames are folded into seconds, points
/// create their track row on first sight, then the tracks' totals and ends are updated.
pub(super) fn apply<'a>(
    tx: &Transaction<'_>,
    pending: impl Iterator<Item = &'a StoreMsg>,
    rows: &HashMap<(Arc<str>, u64), i64>,
    run: Option<i64>,
    mode: Mode,
    warn: &mut Warnings,
    analytics: &mut AnalyticsRows,
) -> rusqlite::Result<Applied> {
    let mut a = Applied::default();
    let written_ms = crate::ingest::wall_ms();
    for msg in pending {
        match msg {
            StoreMsg::Frame {
                camera,
                ts_ms,
                persons,
                ..
            } => a.frame(camera, *ts_ms, *persons),
            StoreMsg::Point(p) => {
                isolated(tx, mode, &mut a, 1, |tx, a| a.point(tx, p, rows, run, warn))?;
            }
            StoreMsg::TrackEnded { camera, track_id } => {
                let key = (Arc::clone(camera), *track_id);
                if let Some(r) = rows.get(&key).or_else(|| a.new_rows.get(&key)) {
                    a.ended.push(*r);
                }
            }
            StoreMsg::Analytics(event) => {
                isolated(tx, mode, &mut a, 1, |tx, a| {
                    let find =
                        |k: &(Arc<str>, u64)| rows.get(k).or_else(|| a.new_rows.get(k)).copied();
                    analytics.write(tx, event, find)
                })?;
            }
            StoreMsg::Live(event) => {
                isolated(tx, mode, &mut a, 1, |tx, a| {
                    let find =
                        |k: &(Arc<str>, u64)| rows.get(k).or_else(|| a.new_rows.get(k)).copied();
                    super::live::write(tx, analytics, event, find, written_ms)
                })?;
            }
        }
    }
    analytics.finish_batch(tx)?;
    a.finish(tx, mode)?;
    Ok(a)
}

/// Runs `f` as one row: in [`Mode::Isolate`] inside a savepoint, and a row-level failure is
/// rolled back, counted as `rows` failed rows and not returned.
fn isolated(
    tx: &Transaction<'_>,
    mode: Mode,
    a: &mut Applied,
    rows: u64,
    f: impl FnOnce(&Transaction<'_>, &mut Applied) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    if mode == Mode::Whole {
        return f(tx, a);
    }
    tx.execute_batch("SAVEPOINT row")?;
    match f(tx, a) {
        Ok(()) => tx.execute_batch("RELEASE row"),
        Err(e) if is_transient(&e) => Err(e),
        Err(e) => {
            tx.execute_batch("ROLLBACK TO row; RELEASE row")?;
            a.written.failed += rows;
            a.first_failure.get_or_insert(e);
            Ok(())
        }
    }
}

impl Applied {
    fn frame(&mut self, camera: &Arc<str>, ts_ms: i64, persons: u32) {
        let key = (Arc::clone(camera), ts_ms.div_euclid(1000));
        let s = self.seconds.entry(key).or_insert(Second {
            frames: 0,
            min: persons,
            max: persons,
            sum: 0,
            first_ms: ts_ms,
            last_ms: ts_ms,
        });
        s.frames += 1;
        s.min = s.min.min(persons);
        s.max = s.max.max(persons);
        s.sum += u64::from(persons);
        s.first_ms = s.first_ms.min(ts_ms);
        s.last_ms = s.last_ms.max(ts_ms);
    }

    /// One point; the track row is created on its first point. Nothing is recorded in `self`
    /// unless every statement succeeded (a failed row is rolled back whole).
    fn point(
        &mut self,
        tx: &Transaction<'_>,
        p: &TrackUpdate,
        rows: &HashMap<(Arc<str>, u64), i64>,
        run: Option<i64>,
        warn: &mut Warnings,
    ) -> rusqlite::Result<()> {
        if !is_finite(p) {
            self.written.rejected += 1;
            if !warn.rejected {
                warn.rejected = true;
                warn!(camera = %p.camera, track = p.track_id, ts_ms = p.ts_ms,
                      "Point with a non-finite box, score or floor position \
                       not stored (further ones only counted).");
            }
            return Ok(());
        }
        let key = (Arc::clone(&p.camera), p.track_id);
        let (row, created) = match rows.get(&key).or_else(|| self.new_rows.get(&key)) {
            Some(r) => (*r, false),
            None => {
                tx.prepare_cached(
                    "INSERT INTO tracks(camera, first_ms, last_ms, run) VALUES (?1, ?2, ?2, ?3)",
                )?
                .execute(params![p.camera.as_ref(), p.ts_ms, run])?;
                (tx.last_insert_rowid(), true)
            }
        };
        let inserted = insert_point(tx, row, p)?;
        if created {
            self.new_rows.insert(key, row);
        }
        if inserted == 0 {
            self.written.duplicates += 1;
            if !warn.duplicate {
                warn.duplicate = true;
                warn!(camera = %p.camera, track = p.track_id, ts_ms = p.ts_ms,
                      "A second point for the same track and time was not \
                       stored (further ones only counted).");
            }
            return Ok(());
        }
        let t = self.touched.entry(row).or_insert(Touch {
            first_ms: p.ts_ms,
            last_ms: p.ts_ms,
            points: 0,
        });
        t.first_ms = t.first_ms.min(p.ts_ms);
        t.last_ms = t.last_ms.max(p.ts_ms);
        t.points += 1;
        self.written.points += 1;
        Ok(())
    }

    /// Writes the per-second rows and the tracks' totals and ends.
    fn finish(&mut self, tx: &Transaction<'_>, mode: Mode) -> rusqlite::Result<()> {
        let seconds = std::mem::take(&mut self.seconds);
        for ((camera, second), s) in &seconds {
            isolated(tx, mode, self, s.frames, |tx, a| {
                upsert_second(tx, camera, *second, s)?;
                a.written.frames += s.frames;
                Ok(())
            })?;
        }
        let touched = std::mem::take(&mut self.touched);
        for (row, t) in &touched {
            isolated(tx, mode, self, 0, |tx, _| {
                tx.prepare_cached(
                    "UPDATE tracks SET first_ms = MIN(first_ms, ?2), last_ms = MAX(last_ms, ?3),
                                       points = points + ?4
                     WHERE id = ?1",
                )?
                .execute(params![row, t.first_ms, t.last_ms, t.points])
                .map(drop)
            })?;
        }
        for row in self.ended.clone() {
            isolated(tx, mode, self, 0, |tx, _| {
                tx.prepare_cached("UPDATE tracks SET ended = 1 WHERE id = ?1")?
                    .execute(params![row])
                    .map(drop)
            })?;
        }
        Ok(())
    }
}

/// Adds a second's frames to its row (a second split over two flushes, or two runs, is merged).
pub(super) const UPSERT_SECOND: &str = "
    INSERT INTO frames_second(camera, second, frames, persons_min, persons_max, persons_sum,
                              first_ms, last_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT(camera, second) DO UPDATE SET
        frames = frames + excluded.frames,
        persons_min = MIN(persons_min, excluded.persons_min),
        persons_max = MAX(persons_max, excluded.persons_max),
        persons_sum = persons_sum + excluded.persons_sum,
        first_ms = MIN(first_ms, excluded.first_ms),
        last_ms = MAX(last_ms, excluded.last_ms)";

fn upsert_second(
    tx: &Transaction<'_>,
    camera: &str,
    second: i64,
    s: &Second,
) -> rusqlite::Result<()> {
    tx.prepare_cached(UPSERT_SECOND)?
        .execute(params![
            camera,
            second,
            s.frames as i64,
            s.min,
            s.max,
            s.sum as i64,
            s.first_ms,
            s.last_ms
        ])
        .map(drop)
}

/// Every number of the point is finite (a NaN box could come from a broken model output).
fn is_finite(p: &TrackUpdate) -> bool {
    let b = p.bbox;
    [b.x, b.y, b.w, b.h, p.score].iter().all(|v| v.is_finite())
        && p.floor.is_none_or(|(x, y)| x.is_finite() && y.is_finite())
}

/// Inserts one point; returns 0 if a point for this track and time was already stored.
/// Never OR REPLACE: a point already stored for this instant stays as it is.
fn insert_point(tx: &Transaction<'_>, row: i64, p: &TrackUpdate) -> rusqlite::Result<usize> {
    let b = p.bbox;
    tx.prepare_cached(
        "INSERT INTO points(track, ts_ms, x, y, w, h, score, floor_x, floor_y, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(track, ts_ms) DO NOTHING",
    )?
    .execute(params![
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
