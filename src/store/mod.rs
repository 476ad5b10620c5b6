//! SQLite storage of per-second frame counts, camera tracks and points, store trajectories and
//! zone visits (and, from schema 7, the footfall tables and the events outbox).
//!
//! Input: [`StoreMsg`]s from the analytics stage (the tracker's messages and the analytics
//! events). Output: rows in a WAL-mode SQLite file, written by
//! one writer thread in batched transactions every `flush_interval_ms`; between its writes the
//! same thread deletes what `storage.keep_days` / `storage.max_size_mb` no longer keep
//! ([`retention`]). Readers (query CLI, HTTP) open their own read-only connections.

mod analytics;
mod batch;
pub mod legacy;
mod live;
mod reader;
pub mod retention;
mod retention_footfall;
mod run_cameras;
pub mod runs;
pub mod schema;
mod upkeep;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use rusqlite::{Connection, OptionalExtension, params};
use tracing::warn;

use crate::config::CameraConfig;
use crate::messages::StoreMsg;
use crate::redact;
use crate::stats::Stats;
use crate::time::wall_ms;
pub use reader::open_read_only;
pub use retention::Policy as RetentionPolicy;
pub use runs::{LockError, RunInfo, RunStart};
pub use schema::MigrateError;
pub use writer::WriterOptions;

/// How long a connection waits for a lock held by another.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The WAL file is cut back to this size after a checkpoint (SQLite lets it keep its largest
/// size otherwise).
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

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
    /// A SQLite file without a storetrack schema (read-only opens only).
    #[error("{}: not a storetrack database (no schema version; wrong --db?)", path.display())]
    NotStoretrack {
        /// DB path.
        path: PathBuf,
    },
    /// The file was written by a newer storetrack (readers do not guess at its tables).
    #[error(
        "{}: database schema version {found} is newer than this storetrack reads ({}); use the storetrack that wrote it (or a newer one)",
        path.display(),
        schema::CURRENT_VERSION
    )]
    TooNew {
        /// DB path.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
    },
    /// The folder is not writable by this user while a service writes the file: SQLite needs
    /// to create `<db>-shm` to read a database in WAL mode.
    #[error(
        "{}: cannot read while the service writes it: this user cannot create files in its folder (SQLite needs <db>-shm); run as the service's user or read a copy",
        path.display()
    )]
    ReadOnlyFolder {
        /// DB path.
        path: PathBuf,
    },
    /// The file's schema is older than this build reads (readers do not migrate).
    #[error(
        "{}: database schema version {found} is older than this storetrack reads ({}); start `storetrack run` on it once to migrate it",
        path.display(),
        schema::CURRENT_VERSION
    )]
    Outdated {
        /// DB path.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
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

    /// Another process is writing to the database, or its lock file is unusable.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A read-write handle on the database (owned by the writer thread once started).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The run this handle writes for (see [`Store::begin_run`]); tracks are tagged with it.
    run: Option<i64>,
    /// Held while the run is open.
    _lock: Option<runs::RunLock>,
}

/// Unix ms as RFC 3339 (for log lines read by people).
fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
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
        // Only takes effect on a file without tables yet (a new file), and only before its
        // first transaction; it writes nothing. A file from before keeps auto_vacuum = NONE:
        // the pages retention frees are reused but the file does not shrink. A file that is
        // no database fails in the next statement, which names the problem.
        let _ = conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;");
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
        conn.execute_batch(&format!(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;
             PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT};"
        ))
        .map_err(sql)?;
        schema::migrate(&mut conn).map_err(|source| StoreError::Migrate {
            path: p.clone(),
            source,
        })?;
        let auto_vacuum: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .map_err(sql)?;
        if auto_vacuum != 2 {
            tracing::info!(db = %p.display(),
                "Database file created without incremental vacuum: space freed by retention is \
                 reused, but the file does not shrink (see docs/operations.md, Retention).");
        }
        Ok(Store {
            conn,
            path: p,
            run: None,
            _lock: None,
        })
    }

    /// Opens a run for this process: takes the database's run lock (refused while another
    /// storetrack writes here), closes the runs that died and their open tracks, and records
    /// `info`. Points written from now on belong to the new run; the writer closes it.
    pub fn begin_run(&mut self, info: &RunInfo) -> Result<RunStart, StoreError> {
        let lock = runs::RunLock::acquire(&self.path, info)?;
        let start =
            runs::begin(&mut self.conn, info, wall_ms()).map_err(|source| StoreError::Sql {
                path: self.path.clone(),
                source,
            })?;
        for d in &start.dead {
            warn!(
                run = d.id,
                pid = d.pid,
                started = %rfc3339(d.started_ms),
                last_commit = %rfc3339(d.ended_ms),
                "An earlier run did not end cleanly (crash or kill); closed it."
            );
        }
        if start.interrupted_tracks + start.interrupted_store_tracks + start.interrupted_visits > 0
        {
            warn!(
                tracks = start.interrupted_tracks,
                store_tracks = start.interrupted_store_tracks,
                zone_visits = start.interrupted_visits,
                "Tracks, store trajectories and zone visits left open by a dead run were ended \
                 and marked interrupted."
            );
        }
        self.run = Some(start.id);
        self._lock = Some(lock);
        Ok(start)
    }

    /// The latest stored frame time of `camera`, Unix ms (None: no frame yet).
    pub fn last_frame_ms(&self, camera: &str) -> Result<Option<i64>, StoreError> {
        let sql = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let second: Option<i64> = self
            .conn
            .query_row(
                "SELECT last_ms FROM frames_second WHERE camera = ?1
                 ORDER BY second DESC LIMIT 1",
                [camera],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        let legacy = legacy::last_frame_ms(&self.conn, camera).map_err(sql)?;
        Ok(second.max(legacy))
    }

    /// The run opened by [`Store::begin_run`].
    pub fn run(&self) -> Option<i64> {
        self.run
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
        opts: WriterOptions,
        stats: Arc<Stats>,
    ) -> std::io::Result<JoinHandle<Result<(), StoreError>>> {
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer::Writer::new(self, opts.retention).run(&rx, opts.flush_interval, &stats)
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;
    use crate::messages::TrackUpdate;

    fn cams() -> Vec<CameraConfig> {
        vec![CameraConfig {
            name: "Entrance".into(),
            ..CameraConfig::new("cam1", "rtsp://admin:pw@127.0.0.1/x".parse().unwrap())
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
            .spawn_writer(
                rx,
                WriterOptions {
                    flush_interval: Duration::from_millis(20),
                    retention: RetentionPolicy::default(),
                },
                Arc::clone(&stats),
            )
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
        let frames: (i64, i64, i64, i64, i64, i64, i64) = c
            .query_row(
                "SELECT second, frames, persons_min, persons_max, persons_sum, first_ms, last_ms
                 FROM frames_second",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .unwrap();
        // Frames at 1000..1400 ms (2 persons each) fall in second 1, over two flushes.
        assert_eq!(frames, (1, 5, 2, 2, 10, 1000, 1400));
        let url: String = c
            .query_row("SELECT url FROM cameras", [], |r| r.get(0))
            .unwrap();
        assert_eq!(url, "rtsp://admin:***@127.0.0.1/x");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.last_frame_ms("cam1").unwrap(), Some(1400));
        assert_eq!(store.last_frame_ms("cam9").unwrap(), None);
    }

    #[test]
    fn readers_name_an_outdated_or_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("v1.db");
        let c = Connection::open(&v1).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.execute_batch("PRAGMA user_version = 1;").unwrap();
        drop(c);
        let err = open_read_only(&v1).err().unwrap().to_string();
        let expected = format!(
            "v1.db: database schema version 1 is older than this storetrack reads ({}); \
             start `storetrack run` on it once to migrate it",
            schema::CURRENT_VERSION
        );
        assert!(err.ends_with(&expected), "{err}");
        drop(Store::open(&v1).unwrap());
        open_read_only(&v1).unwrap();
        let text = dir.path().join("notes.db");
        std::fs::write(&text, "shopping list\n").unwrap();
        let err = open_read_only(&text).err().unwrap();
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE keep(v);")
            .unwrap();
        let err = open_read_only(&other).err().unwrap();
        assert!(matches!(err, StoreError::NotStoretrack { .. }), "{err}");
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
