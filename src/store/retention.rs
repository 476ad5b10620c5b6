//! Retention: old data deleted in small batches while the service runs, oldest first by time.
//!
//! Input: the writer's connection, a [`Policy`] (`storage.keep_days`, `storage.max_size_mb`) and
//! the current time (passed in, so a step is deterministic and testable). Output: every row
//! about a person older than `keep_days` deleted — tracks and their points, store trajectories
//! with their points, members and zone visits, per-second frame rows, an older schema's
//! per-frame rows, and the old points of tracks still going on, the footfall rows (line
//! crossings, queue waits and lengths, alerts, the events outbox: [`super::retention_footfall`])
//! — and finished runs with no track left; while
//! the database's used pages exceed `max_size_mb`, the oldest data deleted until it is
//! [`LOW_WATER_PERCENT`] of the cap; free pages returned to the file system in small
//! `incremental_vacuum` steps. Each [`Retention::step`] is one short transaction of at most
//! `budget` rows, so the writer thread that calls it between flushes is never held for long.

use rusqlite::{Connection, Transaction, params};

/// While over the size cap, data is deleted until used pages are this share of it, so the
/// cap is not hit again by the next flush.
pub const LOW_WATER_PERCENT: u64 = 95;
/// With only the size cap acting, each pass deletes data within this span after the oldest
/// remaining time (tracks and frame rows advance together).
const SIZE_SLICE_MS: i64 = 15 * 60 * 1000;
/// Tracks looked at per query while collecting a step's rows.
const TRACKS_PER_QUERY: i64 = 64;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Data older than this is deleted (None: kept however old).
    pub keep_ms: Option<i64>,
    /// Used database pages above this many bytes make the oldest data go (None: no cap).
    pub max_bytes: Option<u64>,
}

/// What one step deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deleted {
    /// Points (of deleted or shortened tracks).
    pub points: u64,
    /// Track rows.
    pub tracks: u64,
    /// Per-second frame rows.
    pub seconds: u64,
    /// Finished runs with no track left.
    pub runs: u64,
    /// Rows of store trajectories: trajectories, their points, members and zone visits.
    pub store: u64,
    /// Footfall rows: line crossings, queue waits and lengths, alerts, events outbox.
    pub footfall: u64,
}

impl Deleted {
    fn rows(&self) -> u64 {
        self.points + self.tracks + self.seconds + self.runs + self.store + self.footfall
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    /// Rows deleted.
    pub deleted: Deleted,
    /// The step used its whole budget: call again soon.
    pub more: bool,
    /// Bytes in used pages after the step.
    pub used_bytes: u64,
    /// Over the cap with nothing left that may be deleted (only open tracks of this run).
    pub stuck: bool,
}

/// Retention state: the policy and whether a size-driven deletion is under way.
#[derive(Debug, Clone)]
pub struct Retention {
    policy: Policy,
    shrinking: bool,
}

/// Page counts of the main database file.
#[derive(Debug, Clone, Copy)]
pub struct Pages {
    /// Page size in bytes.
    pub size: u64,
    /// Pages in the file.
    pub total: u64,
    /// Pages on the free list (reused by later writes, or given back by incremental vacuum).
    pub free: u64,
}

impl Pages {
    /// Reads the counts.
    pub fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let get = |p: &str| conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
        Ok(Self {
            size: get("page_size")? as u64,
            total: get("page_count")? as u64,
            free: get("freelist_count")? as u64,
        })
    }

    /// Bytes in pages holding data.
    pub fn used_bytes(&self) -> u64 {
        (self.total - self.free) * self.size
    }

    /// Bytes of the file.
    pub fn file_bytes(&self) -> u64 {
        self.total * self.size
    }
}

impl Retention {
    /// Retention under `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            shrinking: false,
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Deletes at most about `budget` rows of what the policy no longer keeps at `now_ms`:
    /// first what is older than `keep_ms`, then, while over the size cap, the oldest data.
    pub fn step(
        &mut self,
        conn: &mut Connection,
        now_ms: i64,
        budget: u64,
    ) -> rusqlite::Result<Step> {
        let mut deleted = Deleted::default();
        let mut stuck = false;
        if let Some(keep) = self.policy.keep_ms {
            deleted = delete_before(conn, now_ms - keep, budget, true)?;
        }
        let mut used = Pages::read(conn)?.used_bytes();
        if let Some(max) = self.policy.max_bytes {
            self.shrinking |= used > max;
            if self.shrinking && used <= max * LOW_WATER_PERCENT / 100 {
                self.shrinking = false;
            }
            if self.shrinking && deleted.rows() < budget {
                match oldest_ms(conn)? {
                    Some(oldest) => {
                        let d = delete_before(
                            conn,
                            oldest + SIZE_SLICE_MS,
                            budget - deleted.rows(),
                            false,
                        )?;
                        deleted.points += d.points;
                        deleted.tracks += d.tracks;
                        deleted.seconds += d.seconds;
                        deleted.store += d.store;
                        deleted.footfall += d.footfall;
                        used = Pages::read(conn)?.used_bytes();
                    }
                    None => stuck = true,
                }
            }
        }
        Ok(Step {
            deleted,
            more: deleted.rows() >= budget || (self.shrinking && !stuck),
            used_bytes: used,
            stuck,
        })
    }
}

/// Gives up to `pages` free pages back to the file system when the file was created with
/// `auto_vacuum = INCREMENTAL`; returns the pages given back.
pub fn vacuum_step(conn: &Connection, pages: u64) -> rusqlite::Result<u64> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != 2 {
        return Ok(0);
    }
    let before = Pages::read(conn)?.free;
    if before == 0 {
        return Ok(0);
    }
    // A pragma that returns no rows: run it with execute_batch.
    conn.execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))?;
    Ok(before - Pages::read(conn)?.free)
}

/// The oldest time of data that may be deleted: the end of the oldest ended track or the
/// oldest per-second frame row.
fn oldest_ms(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let track: Option<i64> =
        conn.query_row("SELECT MIN(last_ms) FROM tracks WHERE ended = 1", [], |r| {
            r.get(0)
        })?;
    // Per camera, so the (camera, second) key is used instead of a scan of the whole table.
    let second: Option<i64> = conn.query_row(
        "SELECT MIN((SELECT MIN(second) FROM frames_second f WHERE f.camera = c.id))
         FROM cameras c",
        [],
        |r| r.get(0),
    )?;
    Ok(match (track, second.map(|s| s * 1000)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Deletes, in one transaction, at most about `budget` rows older than `cutoff_ms`: ended tracks
/// whose last point is older (oldest first, with their points; a track longer than what is
/// left of the budget loses its oldest points now and the rest in the next step), ended store
/// trajectories likewise, per-second rows before it; and, `by_age`, the rest of what is older
/// ([`trim_before`]) and finished runs that ended before it and have no track left.
fn delete_before(
    conn: &mut Connection,
    cutoff_ms: i64,
    budget: u64,
    by_age: bool,
) -> rusqlite::Result<Deleted> {
    let tx = conn.transaction()?;
    let mut d = Deleted::default();
    let mut left = budget as i64;
    left -= delete_tracks_before(&tx, cutoff_ms, left, &mut d)?;
    if left > 0 {
        // Before the store trajectories: crossings and waits refer to them.
        let n = super::retention_footfall::delete_before(&tx, cutoff_ms, left)?;
        d.footfall += n as u64;
        left -= n;
    }
    if left > 0 {
        let n = delete_store_tracks_before(&tx, cutoff_ms, left)?;
        d.store += n as u64;
        left -= n;
    }
    if left > 0 {
        let n = delete_seconds_before(&tx, cutoff_ms, left)?;
        d.seconds += n as u64;
        left -= n;
    }
    if by_age && left > 0 {
        left -= trim_before(&tx, cutoff_ms, left, &mut d)?;
    }
    if by_age && left > 0 {
        // A run's per-camera figures (`run_cameras`) go with it, first (foreign key).
        tx.prepare_cached(&format!(
            "DELETE FROM run_cameras WHERE run IN ({OLD_RUNS})"
        ))?
        .execute(params![cutoff_ms, left])?;
        d.runs = tx
            .prepare_cached(&format!("DELETE FROM runs WHERE id IN ({OLD_RUNS})"))?
            .execute(params![cutoff_ms, left])? as u64;
    }
    tx.commit()?;
    Ok(d)
}

/// Finished runs that ended before ?1 with no track left and closing no other run, the first
/// ?2 by id.
const OLD_RUNS: &str = "SELECT id FROM runs r WHERE ended_ms IS NOT NULL AND ended_ms < ?1
       AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.run = r.id)
       AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.closed_by = r.id)
     ORDER BY id LIMIT ?2";

/// Ended tracks whose last point is before `cutoff_ms`, oldest first, with their points (the
/// last one perhaps only in part); returns the rows deleted.
fn delete_tracks_before(
    tx: &Transaction<'_>,
    cutoff_ms: i64,
    budget: i64,
    d: &mut Deleted,
) -> rusqlite::Result<i64> {
    let mut left = budget;
    while left > 0 {
        let old: Vec<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, points FROM tracks WHERE last_ms < ?1 AND ended = 1
                 ORDER BY last_ms LIMIT ?2",
            )?
            .query_map(params![cutoff_ms, TRACKS_PER_QUERY], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if old.is_empty() {
            break;
        }
        for (id, points) in old {
            if points > left {
                let n = trim(tx, Trail::Track, id, i64::MAX, left)?;
                d.points += n as u64;
                return Ok(budget - (left - n.max(1)));
            }
            let n = tx
                .prepare_cached("DELETE FROM points WHERE track = ?1")?
                .execute([id])? as i64;
            tx.prepare_cached("DELETE FROM store_members WHERE track = ?1")?
                .execute([id])?;
            tx.prepare_cached("DELETE FROM tracks WHERE id = ?1")?
                .execute([id])?;
            d.points += n as u64;
            d.tracks += 1;
            left -= n + 1;
            if left <= 0 {
                break;
            }
        }
    }
    Ok(budget - left)
}

/// What has points to trim: a camera track (`tracks`, `points`) or a store trajectory
/// (`store_tracks`, `store_points`).
#[derive(Debug, Clone, Copy)]
enum Trail {
    Track,
    Store,
}

impl Trail {
    /// (row table, points table, the points' key column).
    fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Trail::Track => ("tracks", "points", "track"),
            Trail::Store => ("store_tracks", "store_points", "store_track"),
        }
    }
}

/// Deletes at most `budget` of the oldest points of track or store trajectory `id` before
/// `before_ms` and brings its count and first time up to date; returns the points deleted.
fn trim(
    tx: &Transaction<'_>,
    trail: Trail,
    id: i64,
    before_ms: i64,
    budget: i64,
) -> rusqlite::Result<i64> {
    let (rows, points, key) = trail.tables();
    let n = tx
        .prepare_cached(&format!(
            "DELETE FROM {points} WHERE {key} = ?1 AND ts_ms IN
               (SELECT ts_ms FROM {points} WHERE {key} = ?1 AND ts_ms < ?2
                ORDER BY ts_ms LIMIT ?3)"
        ))?
        .execute(params![id, before_ms, budget])? as i64;
    tx.prepare_cached(&format!(
        "UPDATE {rows} SET points = points - ?2,
            first_ms = COALESCE((SELECT MIN(ts_ms) FROM {points} WHERE {key} = ?1),
                                MAX(first_ms, MIN(?3, last_ms)))
         WHERE id = ?1"
    ))?
    .execute(params![id, n, before_ms])?;
    Ok(n)
}

/// Per-second rows before `cutoff_ms`, oldest first per camera; returns the rows deleted.
fn delete_seconds_before(
    tx: &Transaction<'_>,
    cutoff_ms: i64,
    budget: i64,
) -> rusqlite::Result<i64> {
    let cameras: Vec<String> = tx
        .prepare_cached("SELECT id FROM cameras ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let before_second = cutoff_ms.div_euclid(1000);
    let mut left = budget;
    for cam in cameras {
        if left <= 0 {
            break;
        }
        left -= tx
            .prepare_cached(
                "DELETE FROM frames_second WHERE camera = ?1 AND second IN
                   (SELECT second FROM frames_second WHERE camera = ?1 AND second < ?2
                    ORDER BY second LIMIT ?3)",
            )?
            .execute(params![cam, before_second, left])? as i64;
    }
    Ok(budget - left)
}

/// What is older than `cutoff_ms` but belongs to something newer or still open: points of
/// camera tracks and of store trajectories that began before it (their rows stay, starting at
/// their oldest point kept), zone visits that ended before it, and per-frame rows of an older
/// schema not folded yet. Returns the rows deleted.
fn trim_before(
    tx: &Transaction<'_>,
    cutoff_ms: i64,
    budget: i64,
    d: &mut Deleted,
) -> rusqlite::Result<i64> {
    let mut left = budget;
    let tracks: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM tracks WHERE first_ms < ?1 AND points > 0
             ORDER BY first_ms LIMIT ?2",
        )?
        .query_map(params![cutoff_ms, TRACKS_PER_QUERY], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in tracks {
        if left <= 0 {
            return Ok(budget);
        }
        let n = trim(tx, Trail::Track, id, cutoff_ms, left)?;
        d.points += n as u64;
        left -= n;
    }
    let stores: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM store_tracks WHERE first_ms < ?1 AND points > 0
             ORDER BY first_ms LIMIT ?2",
        )?
        .query_map(params![cutoff_ms, TRACKS_PER_QUERY], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in stores {
        if left <= 0 {
            return Ok(budget);
        }
        let n = trim(tx, Trail::Store, id, cutoff_ms, left)?;
        d.store += n as u64;
        left -= n;
    }
    if left > 0 {
        let n = tx
            .prepare_cached(
                "DELETE FROM zone_visits WHERE id IN (SELECT id FROM zone_visits
                   WHERE enter_ms < ?1 AND leave_ms < ?1 ORDER BY enter_ms LIMIT ?2)",
            )?
            .execute(params![cutoff_ms, left])? as i64;
        d.store += n as u64;
        left -= n;
    }
    if left > 0 && super::legacy::pending(tx)? {
        let n = super::legacy::delete_before(tx, cutoff_ms, left)?;
        d.seconds += n as u64;
        left -= n;
    }
    Ok(budget - left)
}

/// Deletes ended store trajectories (with their points, members and zone visits) whose last
/// point is before `cutoff_ms`, oldest first, about `budget` rows (a trajectory with more rows
/// than are left loses its oldest points now, the rest in the next step); returns the rows
/// deleted.
fn delete_store_tracks_before(
    tx: &Transaction<'_>,
    cutoff_ms: i64,
    budget: i64,
) -> rusqlite::Result<i64> {
    let old: Vec<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, points + 1
                    + (SELECT COUNT(*) FROM zone_visits v WHERE v.store_track = t.id)
                    + (SELECT COUNT(*) FROM store_members m WHERE m.store_track = t.id)
             FROM store_tracks t WHERE last_ms < ?1 AND ended = 1
             ORDER BY last_ms LIMIT ?2",
        )?
        .query_map(params![cutoff_ms, TRACKS_PER_QUERY], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut left = budget;
    for (id, rows) in old {
        if rows > left {
            left -= trim(tx, Trail::Store, id, i64::MAX, left)?.max(1);
            break;
        }
        for sql in [
            "DELETE FROM line_crossings WHERE store_track = ?1",
            "DELETE FROM queue_waits WHERE store_track = ?1",
            "DELETE FROM zone_visits WHERE store_track = ?1",
            "DELETE FROM store_points WHERE store_track = ?1",
            "DELETE FROM store_members WHERE store_track = ?1",
            "DELETE FROM store_tracks WHERE id = ?1",
        ] {
            left -= tx.prepare_cached(sql)?.execute([id])? as i64;
        }
        if left <= 0 {
            break;
        }
    }
    Ok(budget - left)
}

#[cfg(test)]
mod tests;
