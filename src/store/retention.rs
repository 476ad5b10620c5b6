//! Retention: old data deleted in small batches while the service runs, oldest first by time.
//!
//! Input: the writer's connection, a [`Policy`] (`storage.keep_days`, `storage.max_size_mb`) and
//! the current time (passed in, so a step is deterministic and testable). Output: tracks (with
//! their points), per-second frame rows and finished runs older than `keep_days` deleted; while
//! the database's used pages exceed `max_size_mb`, the oldest data deleted until it is
//! [`LOW_WATER_PERCENT`] of the cap; free pages returned to the file system in small
//! `incremental_vacuum` steps. Each [`Retention::step`] is one short transaction of at most
//! `budget` rows, so the writer thread that calls it between flushes is never held for long.

use rusqlite::{Connection, params};

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
}

impl Deleted {
    fn rows(&self) -> u64 {
        self.points + self.tracks + self.seconds + self.runs
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
/// left of the budget loses its oldest points now and the rest in the next step), per-second
/// rows before it, and (`runs`) finished runs that ended before it and have no track left.
fn delete_before(
    conn: &mut Connection,
    cutoff_ms: i64,
    budget: u64,
    runs: bool,
) -> rusqlite::Result<Deleted> {
    let tx = conn.transaction()?;
    let mut d = Deleted::default();
    let mut left = budget as i64;
    'tracks: while left > 0 {
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
                let n = tx
                    .prepare_cached(
                        "DELETE FROM points WHERE track = ?1 AND ts_ms IN
                           (SELECT ts_ms FROM points WHERE track = ?1 ORDER BY ts_ms LIMIT ?2)",
                    )?
                    .execute(params![id, left])? as i64;
                tx.prepare_cached(
                    "UPDATE tracks SET points = points - ?2,
                        first_ms = COALESCE((SELECT MIN(ts_ms) FROM points WHERE track = ?1),
                                            first_ms)
                     WHERE id = ?1",
                )?
                .execute(params![id, n])?;
                d.points += n as u64;
                left -= n.max(1);
                break 'tracks;
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
                break 'tracks;
            }
        }
    }
    if left > 0 {
        left -= delete_store_tracks_before(&tx, cutoff_ms, left)?;
    }
    if left > 0 {
        let cameras: Vec<String> = tx
            .prepare_cached("SELECT id FROM cameras ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let before_second = cutoff_ms.div_euclid(1000);
        for cam in cameras {
            if left <= 0 {
                break;
            }
            let n = tx
                .prepare_cached(
                    "DELETE FROM frames_second WHERE camera = ?1 AND second IN
                       (SELECT second FROM frames_second WHERE camera = ?1 AND second < ?2
                        ORDER BY second LIMIT ?3)",
                )?
                .execute(params![cam, before_second, left])? as i64;
            d.seconds += n as u64;
            left -= n;
        }
    }
    if runs && left > 0 {
        d.runs = tx
            .prepare_cached(
                "DELETE FROM runs WHERE id IN (
                   SELECT id FROM runs r WHERE ended_ms IS NOT NULL AND ended_ms < ?1
                     AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.run = r.id)
                     AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.closed_by = r.id)
                   LIMIT ?2)",
            )?
            .execute(params![cutoff_ms, left])? as u64;
    }
    tx.commit()?;
    Ok(d)
}

/// Deletes ended store trajectories (with their points, members and zone visits) whose last
/// point is before `cutoff_ms`, oldest first, about `budget` rows; returns the rows deleted.
fn delete_store_tracks_before(
    tx: &rusqlite::Transaction<'_>,
    cutoff_ms: i64,
    budget: i64,
) -> rusqlite::Result<i64> {
    let old: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM store_tracks WHERE last_ms < ?1 AND ended = 1
             ORDER BY last_ms LIMIT ?2",
        )?
        .query_map(params![cutoff_ms, TRACKS_PER_QUERY], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut deleted = 0i64;
    for id in old {
        for sql in [
            "DELETE FROM zone_visits WHERE store_track = ?1",
            "DELETE FROM store_points WHERE store_track = ?1",
            "DELETE FROM store_members WHERE store_track = ?1",
            "DELETE FROM store_tracks WHERE id = ?1",
        ] {
            deleted += tx.prepare_cached(sql)?.execute([id])? as i64;
        }
        if deleted >= budget {
            break;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const DAY: i64 = 86_400_000;
    /// Points per constructed track.
    const POINTS: i64 = 50;

    fn store(dir: &tempfile::TempDir) -> Store {
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        store
            .connection()
            .execute_batch(
                "INSERT INTO cameras VALUES ('cam1', 'a', 'rtsp://a', 0), ('cam2', 'b', 'rtsp://b', 0);",
            )
            .unwrap();
        store
    }

    /// One ended track per camera starting at `t0` (POINTS points 100 ms apart) and 30
    /// per-second rows per camera from `t0`.
    fn fill(conn: &Connection, t0: i64, ended: bool) {
        for cam in ["cam1", "cam2"] {
            conn.execute(
                "INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cam, t0, t0 + (POINTS - 1) * 100, POINTS, ended],
            )
            .unwrap();
            let id = conn.last_insert_rowid();
            for i in 0..POINTS {
                conn.execute(
                    "INSERT INTO points(track, ts_ms, x, y, w, h, score) VALUES (?1, ?2, 1.5, 2.5, 30.25, 90.125, 0.75)",
                    params![id, t0 + i * 100],
                )
                .unwrap();
            }
            for s in 0..30 {
                conn.execute(
                    "INSERT INTO frames_second VALUES (?1, ?2, 10, 1, 3, 20, ?3, ?4)",
                    params![cam, t0 / 1000 + s, t0 + s * 1000, t0 + s * 1000 + 900],
                )
                .unwrap();
            }
        }
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Steps until nothing is due; checks every step kept to its budget.
    fn run_out(r: &mut Retention, conn: &mut Connection, now_ms: i64, budget: u64) -> Step {
        for _ in 0..10_000 {
            let step = r.step(conn, now_ms, budget).unwrap();
            assert!(step.deleted.rows() <= budget + 1, "{step:?}");
            if !step.more {
                return step;
            }
            vacuum_step(conn, 1_024).unwrap();
        }
        panic!("retention never finished");
    }

    fn assert_counts_exact(conn: &Connection) {
        let off = count(
            conn,
            "SELECT COUNT(*) FROM tracks t
             WHERE t.points != (SELECT COUNT(*) FROM points p WHERE p.track = t.id)",
        );
        assert_eq!(off, 0, "tracks.points differs from the stored rows");
    }

    #[test]
    fn age_limit_deletes_exactly_what_is_older_in_small_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store(&dir);
        let conn = &mut st.conn;
        conn.execute_batch("BEGIN").unwrap();
        for day in 0..10 {
            fill(conn, day * DAY + 1_000, true);
        }
        // An old track still open (a run that never ended it) is not touched.
        fill(conn, DAY + 500_000, false);
        conn.execute_batch("COMMIT").unwrap();
        conn.execute_batch(
            "INSERT INTO runs(id, started_ms, ended_ms, clean, version, config_path,
                              config_sha256, host, pid, cameras)
             VALUES (1, 0, 1000, 1, 'v', 'c', 'h', 'host', 1, 2),
                    (2, 0, 9000000000000, NULL, 'v', 'c', 'h', 'host', 2, 2);",
        )
        .unwrap();
        let mut r = Retention::new(Policy {
            keep_ms: Some(2 * DAY),
            max_bytes: None,
        });
        let now = 10 * DAY;
        // 30 rows per step: every 50-point track is deleted over two steps.
        run_out(&mut r, conn, now, 30);
        let cutoff = now - 2 * DAY;
        assert_eq!(
            count(conn, "SELECT COUNT(*) FROM tracks WHERE ended = 1"),
            4,
            "days 8 and 9, two cameras"
        );
        assert_eq!(
            count(conn, "SELECT MIN(first_ms) FROM tracks WHERE ended = 1"),
            8 * DAY + 1_000
        );
        assert_eq!(
            count(conn, "SELECT COUNT(*) FROM tracks WHERE ended = 0"),
            2
        );
        assert_eq!(count(conn, "SELECT COUNT(*) FROM points"), 6 * POINTS);
        assert_eq!(
            count(
                conn,
                &format!("SELECT COUNT(*) FROM frames_second WHERE second * 1000 < {cutoff}")
            ),
            0
        );
        assert_eq!(
            count(conn, "SELECT COUNT(*) FROM frames_second"),
            2 * 2 * 30
        );
        assert_eq!(
            count(conn, "SELECT COUNT(*) FROM runs"),
            1,
            "run 1 ended long ago"
        );
        assert_counts_exact(conn);
        // Nothing more to do at the same time; a day later, day 8 goes.
        assert_eq!(r.step(conn, now, 30).unwrap().deleted, Deleted::default());
        run_out(&mut r, conn, now + DAY, 1_000);
        assert_eq!(
            count(conn, "SELECT COUNT(*) FROM tracks WHERE ended = 1"),
            2
        );
        assert_eq!(count(conn, "SELECT COUNT(*) FROM frames_second"), 2 * 30);
    }

    #[test]
    fn size_cap_keeps_the_newest_data_under_the_cap_and_the_file_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store(&dir);
        let conn = &mut st.conn;
        let av: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(av, 2, "a new file is created with incremental vacuum");
        conn.execute_batch("BEGIN").unwrap();
        for hour in 0..200 {
            fill(conn, hour * 3_600_000, true);
        }
        conn.execute_batch("COMMIT").unwrap();
        let cap = 512 * 1024;
        let full = Pages::read(conn).unwrap();
        assert!(full.used_bytes() > 3 * cap, "{full:?}");
        let mut r = Retention::new(Policy {
            keep_ms: Some(365 * DAY),
            max_bytes: Some(cap),
        });
        let last = run_out(&mut r, conn, 200 * 3_600_000, 500);
        assert!(!last.stuck);
        while vacuum_step(conn, 1_024).unwrap() > 0 {}
        let after = Pages::read(conn).unwrap();
        assert!(
            after.used_bytes() <= cap * LOW_WATER_PERCENT / 100,
            "{after:?}"
        );
        assert!(after.file_bytes() <= cap, "file not given back: {after:?}");
        // What is left is the newest data: every remaining track is newer than every deleted
        // one, and per-second rows likewise.
        let kept = count(conn, "SELECT COUNT(*) FROM tracks");
        assert!(kept > 0 && kept < 400, "{kept}");
        let oldest_kept = count(conn, "SELECT MIN(first_ms) FROM tracks");
        assert_eq!(
            count(
                conn,
                &format!("SELECT COUNT(*) FROM tracks WHERE first_ms >= {oldest_kept}")
            ),
            kept,
        );
        assert_eq!(oldest_kept % 3_600_000, 0);
        let hours_kept = kept / 2;
        assert_eq!(oldest_kept, (200 - hours_kept) * 3_600_000);
        let first_second = count(conn, "SELECT MIN(second) FROM frames_second");
        assert!(
            (first_second * 1000 - oldest_kept).abs() <= SIZE_SLICE_MS,
            "frame rows and tracks deleted at different times: {first_second} vs {oldest_kept}"
        );
        assert_counts_exact(conn);
        // Under the low-water mark nothing more goes.
        let again = r.step(conn, 200 * 3_600_000, 500).unwrap();
        assert_eq!(again.deleted, Deleted::default());
        assert!(!again.more);
    }

    #[test]
    fn over_the_cap_with_only_open_tracks_is_reported_not_looped() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store(&dir);
        let conn = &mut st.conn;
        for hour in 0..20 {
            fill(conn, hour * 3_600_000, false);
        }
        conn.execute_batch("DELETE FROM frames_second").unwrap();
        let mut r = Retention::new(Policy {
            keep_ms: None,
            max_bytes: Some(64 * 1024),
        });
        let step = r.step(conn, 0, 100).unwrap();
        assert!(step.stuck && !step.more, "{step:?}");
        assert_eq!(count(conn, "SELECT COUNT(*) FROM points"), 40 * POINTS);
    }

    #[test]
    fn old_store_trajectories_go_with_their_camera_tracks() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store(&dir);
        let conn = &mut st.conn;
        fill(conn, 1_000, true);
        fill(conn, 5 * DAY, true);
        // A store trajectory over the old camera tracks, one over the new ones.
        conn.execute_batch(
            "INSERT INTO store_tracks(id, first_ms, last_ms, points, cameras, ended)
               VALUES (1, 1000, 5900, 1, 2, 1), (2, 432000000, 432004900, 1, 2, 1);
             INSERT INTO store_points VALUES (1, 1000, 1.0, 2.0, 2), (2, 432000000, 1.0, 2.0, 2);
             INSERT INTO store_members SELECT id, CASE WHEN first_ms < 86400000 THEN 1 ELSE 2 END
               FROM tracks;
             INSERT INTO zone_visits(store_track, zone, enter_ms, leave_ms)
               VALUES (1, 'door', 1000, 3000), (2, 'door', 432000000, 432003000);",
        )
        .unwrap();
        let mut r = Retention::new(Policy {
            keep_ms: Some(2 * DAY),
            max_bytes: None,
        });
        run_out(&mut r, conn, 6 * DAY, 1_000);
        for table in ["store_tracks", "store_points", "zone_visits"] {
            let left = count(conn, &format!("SELECT COUNT(*) FROM {table}"));
            assert_eq!(left, 1, "{table}");
        }
        assert_eq!(count(conn, "SELECT COUNT(*) FROM store_members"), 2);
        assert_eq!(count(conn, "SELECT MIN(id) FROM store_tracks"), 2);
        assert_eq!(count(conn, "SELECT COUNT(*) FROM tracks"), 2);
    }
}
