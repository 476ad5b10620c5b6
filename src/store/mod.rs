//! SQLite storage of frames, tracks and points.
//!
//! Input: [`StoreMsg`]s from the tracker stage. Output: rows in a WAL-mode SQLite file, written by
//! one writer thread in batched transactions every `flush_interval_ms`. Readers (query CLI, HTTP)
//! open their own read-only connections.

pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::{Connection, OpenFlags, params};
use tracing::{error, info};

use crate::config::CameraConfig;
use crate::ingest::wall_ms;
use crate::messages::{StoreMsg, TrackUpdate};
use crate::redact;
use crate::stats::{self, Stats};
pub use schema::MigrateError;

/// A batch is committed early once it holds this many messages.
const MAX_BATCH: usize = 20_000;
/// Messages kept for retry while the disk refuses writes; older ones are dropped (counted).
const MAX_PENDING: usize = 200_000;
/// How long a connection waits for a lock held by another.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("{}: cannot open database: {source}", path.display())]
    Open {
        /// DB path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// There is no database file to read.
    #[error("{}: no such database (run the service first, or pass --db)", path.display())]
    Missing {
        /// DB path.
        path: PathBuf,
    },
    /// The file exists but is not a SQLite database (nothing in it is changed).
    #[error("{}: not a SQLite database (wrong storage.db path?)", path.display())]
    NotADatabase {
        /// DB path.
        path: PathBuf,
    },
    /// The file is not writable.
    #[error("{}: database is not writable: {source}", path.display())]
    NotWritable {
        /// DB path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be migrated.
    #[error("{}: {source}", path.display())]
    Migrate {
        /// DB path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: MigrateError,
    },
    /// A statement failed.
    #[error("{}: {source}", path.display())]
    Sql {
        /// DB path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// A read-write handle on the database (owned by the writer thread once started).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Opens `path` read-only for queries.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    Ok(conn)
}

impl Store {
    /// Opens or creates the database, checks it is writable and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let p = path.to_path_buf();
        owner_only(path);
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: p.clone(),
            source,
        })?;
        let sql = |source| StoreError::Sql {
            path: p.clone(),
            source,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // Touch the file for writing first: a read-only file or folder fails here, before
        // anything else runs, and nothing in it is changed.
        conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")
            .map_err(|source| match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => {
                    StoreError::NotADatabase { path: p.clone() }
                }
                _ => StoreError::NotWritable {
                    path: p.clone(),
                    source,
                },
            })?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(db = %p.display(), mode = %mode, "Database is not in WAL mode.");
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(sql)?;
        schema::migrate(&mut conn).map_err(|source| StoreError::Migrate {
            path: p.clone(),
            source,
        })?;
        Ok(Store { conn, path: p })
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection (tests, tools).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Records the configured cameras (name and masked URL refreshed; history kept).
    pub fn register_cameras(&self, cameras: &[CameraConfig]) -> Result<(), StoreError> {
        let sql = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let now = wall_ms();
        for c in cameras {
            self.conn
                .execute(
                    "INSERT INTO cameras(id, name, url, added_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET name = excluded.name, url = excluded.url",
                    params![c.id, c.name, redact::url(&c.url), now],
                )
                .map_err(sql)?;
        }
        Ok(())
    }

    /// Starts the writer thread; it ends when every sender of `rx` is gone, after a last flush.
    pub fn spawn_writer(
        self,
        rx: Receiver<StoreMsg>,
        flush_interval: Duration,
        stats: Arc<Stats>,
    ) -> std::io::Result<JoinHandle<Result<(), StoreError>>> {
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || Writer::new(self).run(&rx, flush_interval, &stats))
    }
}

/// Makes the database readable by its owner only: a new file is created with mode 0600 (SQLite
/// gives its `-wal` and `-shm` files the mode of the database), an existing one and its
/// companions are narrowed to it. Failures are left to SQLite's open to report.
fn owner_only(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    if created.is_ok() {
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(file = %file.display(), error = %e,
                           "Cannot make the database readable by its owner only.");
        }
    }
}

/// Per-track accumulation between flushes.
#[derive(Debug, Clone, Copy)]
struct Touch {
    last_ms: i64,
    points: i64,
}

struct Writer {
    store: Store,
    /// (camera, tracker id) → tracks.id for tracks of this run.
    rows: HashMap<(Arc<str>, u64), i64>,
    pending: Vec<StoreMsg>,
}

impl Writer {
    fn new(store: Store) -> Self {
        Self {
            store,
            rows: HashMap::new(),
            pending: Vec::new(),
        }
    }

    fn run(
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
        } else {
            info!(db = %self.store.path.display(), "Database closed.");
        }
        result
    }

    fn flush_or_keep(&mut self, stats: &Stats) {
        let result = self.flush(stats);
        stats
            .db_writable
            .store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = result {
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
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.store.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let oldest_ms = self
            .pending
            .iter()
            .filter_map(|m| match m {
                StoreMsg::Frame { ts_ms, .. } => Some(*ts_ms),
                StoreMsg::Point(p) => Some(p.ts_ms),
                _ => None,
            })
            .min();
        let tx = self.store.conn.transaction().map_err(sql)?;
        let mut new_rows: HashMap<(Arc<str>, u64), i64> = HashMap::new();
        let mut touched: HashMap<i64, Touch> = HashMap::new();
        let mut ended: Vec<i64> = Vec::new();
        let (mut frames, mut points) = (0u64, 0u64);
        {
            let mut ins_frame = tx
                .prepare_cached(
                    "INSERT INTO frames(camera, seq, ts_ms, persons) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            let mut ins_track = tx
                .prepare_cached("INSERT INTO tracks(camera, first_ms, last_ms) VALUES (?1, ?2, ?2)")
                .map_err(sql)?;
            let mut ins_point = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO points(track, ts_ms, x, y, w, h, score, floor_x, floor_y)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
                        frames += 1;
                    }
                    StoreMsg::Point(p) => {
                        let key = (Arc::clone(&p.camera), p.track_id);
                        let row = match self.rows.get(&key).or_else(|| new_rows.get(&key)) {
                            Some(r) => *r,
                            None => {
                                ins_track
                                    .execute(params![p.camera.as_ref(), p.ts_ms])
                                    .map_err(sql)?;
                                let r = tx.last_insert_rowid();
                                new_rows.insert(key, r);
                                r
                            }
                        };
                        insert_point(&mut ins_point, row, p).map_err(sql)?;
                        let t = touched.entry(row).or_insert(Touch {
                            last_ms: p.ts_ms,
                            points: 0,
                        });
                        t.last_ms = t.last_ms.max(p.ts_ms);
                        t.points += 1;
                        points += 1;
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
                    "UPDATE tracks SET last_ms = MAX(last_ms, ?2), points = points + ?3 WHERE id = ?1",
                )
                .map_err(sql)?;
            for (row, t) in &touched {
                upd.execute(params![row, t.last_ms, t.points])
                    .map_err(sql)?;
            }
            let mut end = tx
                .prepare_cached("UPDATE tracks SET ended = 1 WHERE id = ?1")
                .map_err(sql)?;
            for row in &ended {
                end.execute(params![row]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        if let Some(oldest) = oldest_ms {
            let lag = wall_ms().saturating_sub(oldest).max(0) as u64;
            stats
                .write_lag_ms
                .store(lag, std::sync::atomic::Ordering::Relaxed);
        }
        self.rows.extend(new_rows);
        // Ended tracks get no more points: forget their ids.
        if !ended.is_empty() {
            self.rows.retain(|_, r| !ended.contains(r));
        }
        self.pending.clear();
        stats::add(&stats.frames_stored, frames);
        stats::add(&stats.points_stored, points);
        Ok(())
    }
}

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
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;

    fn cams() -> Vec<CameraConfig> {
        vec![CameraConfig {
            id: "cam1".into(),
            name: "Entrance".into(),
            url: url::Url::parse("rtsp://admin:pw@127.0.0.1/x").unwrap(),
            detect_fps: 10,
            homography: None,
        }]
    }

    #[test]
    fn migration_from_an_empty_file_reaches_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::write(&path, b"").unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(
            schema::version(store.connection()).unwrap(),
            schema::CURRENT_VERSION
        );
        drop(store);
        // Re-opening is a no-op.
        let store = Store::open(&path).unwrap();
        assert_eq!(
            schema::version(store.connection()).unwrap(),
            schema::CURRENT_VERSION
        );
    }

    #[test]
    fn newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE keep(x); INSERT INTO keep VALUES (42); PRAGMA user_version = 99;",
        )
        .unwrap();
        drop(c);
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 99 is newer"), "{err}");
        let c = Connection::open(&path).unwrap();
        let v: i64 = c.query_row("SELECT x FROM keep", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 42);
    }

    #[test]
    fn writer_round_trip_frames_tracks_points() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        store.register_cameras(&cams()).unwrap();
        let stats = Arc::new(Stats::new(1));
        let (tx, rx) = crossbeam_channel::bounded(16);
        let h = store
            .spawn_writer(rx, Duration::from_millis(20), Arc::clone(&stats))
            .unwrap();
        let cam: Arc<str> = Arc::from("cam1");
        for i in 0..5i64 {
            tx.send(StoreMsg::Frame {
                camera: Arc::clone(&cam),
                seq: i as u64,
                ts_ms: 1000 + 100 * i,
                persons: 2,
            })
            .unwrap();
            tx.send(StoreMsg::Point(TrackUpdate {
                camera: Arc::clone(&cam),
                track_id: 7,
                ts_ms: 1000 + 100 * i,
                bbox: BBox::new(10.0 * i as f32, 5.0, 40.0, 100.0),
                score: 0.8,
                floor: Some((1.0, 2.0)),
                kind: crate::track::PointKind::Observed,
            }))
            .unwrap();
            if i == 2 {
                std::thread::sleep(Duration::from_millis(60)); // force a flush mid-track
            }
        }
        tx.send(StoreMsg::TrackEnded {
            camera: Arc::clone(&cam),
            track_id: 7,
        })
        .unwrap();
        drop(tx);
        h.join().unwrap().unwrap();
        assert_eq!(
            stats
                .points_stored
                .load(std::sync::atomic::Ordering::Relaxed),
            5
        );

        let c = open_read_only(&path).unwrap();
        let (n, first, last, pts, ended): (i64, i64, i64, i64, i64) = c
            .query_row(
                "SELECT COUNT(*), MIN(first_ms), MAX(last_ms), SUM(points), MAX(ended) FROM tracks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!((n, first, last, pts, ended), (1, 1000, 1400, 5, 1));
        let frames: i64 = c
            .query_row("SELECT COUNT(*) FROM frames", [], |r| r.get(0))
            .unwrap();
        assert_eq!(frames, 5);
        let url: String = c
            .query_row("SELECT url FROM cameras", [], |r| r.get(0))
            .unwrap();
        assert_eq!(url, "rtsp://admin:***@127.0.0.1/x");
    }

    #[test]
    fn database_and_wal_files_are_readable_by_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        store.register_cameras(&cams()).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let f = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}: {mode:o}");
        }
        drop(store);
        // An existing world-readable file is narrowed on the next open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        std::fs::write(&path, "shopping list\n").unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "shopping list\n");
    }

    #[test]
    fn unwritable_location_is_a_clear_error() {
        let err = Store::open(Path::new("/proc/storetrack-test/x.db"))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("/proc/storetrack-test/x.db: cannot open database"),
            "{err}"
        );
    }
}
