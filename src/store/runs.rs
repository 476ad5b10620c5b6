//! Service runs: one `runs` row per start of the service, so an analyst can tell which data a
//! run wrote and whether it ended in order.
//!
//! Input: the writer's connection. Output: a new run row at start (after closing the runs that
//! died: their end is their last commit, `clean = 0`, their open tracks ended and marked
//! `interrupted`), a liveness time refreshed by every commit, and the run closed at stop.
//! A lock file next to the database (`<db>.lock`, held by the OS for the life of the process and
//! released by it even on `kill -9`) makes sure a run is only declared dead when its process is.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction, params};
use sha2::{Digest, Sha256};

/// Retries to take the run lock before reporting it held (a query probing the lock holds it
/// for an instant)...
const LOCK_ATTEMPTS: u32 = 10;
/// ...and the wait between them.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Who is running: recorded in the run row for whoever investigates it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// storetrack version.
    pub version: String,
    /// The config file.
    pub config_path: String,
    /// SHA-256 of the config file's bytes, hex (compare with `sha256sum config.toml`).
    pub config_sha256: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Cameras configured.
    pub cameras: usize,
}

impl RunInfo {
    /// This process running `config_path`, whose bytes hash to `config_sha256`.
    pub fn current(config_path: &Path, config_sha256: &str, cameras: usize) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_path: config_path.display().to_string(),
            config_sha256: config_sha256.to_string(),
            host: host_name(),
            pid: std::process::id(),
            cameras,
        }
    }
}

/// A run that had died without closing, as found and closed at the start of a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRun {
    /// Its id.
    pub id: i64,
    /// Its process.
    pub pid: i64,
    /// When it started, Unix ms.
    pub started_ms: i64,
    /// Its last commit, now its end, Unix ms.
    pub ended_ms: i64,
}

/// What starting a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// The new run's id.
    pub id: i64,
    /// Runs that had died, now closed.
    pub dead: Vec<DeadRun>,
    /// Open tracks of dead runs (or of files written before runs existed), now interrupted.
    pub interrupted_tracks: usize,
    /// Open store trajectories of dead runs, now ended and interrupted.
    pub interrupted_store_tracks: usize,
    /// Zone visits of dead runs still open, now ended (at the trajectory's last position
    /// written) and interrupted.
    pub interrupted_visits: usize,
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn host_name() -> String {
    crate::host::name().unwrap_or_else(|| "unknown".into())
}

/// Why the run lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds it.
    #[error("{}: another storetrack is writing to this database ({holder})", path.display())]
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into the lock file (pid, host).
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("{}: cannot lock: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on `<db>.lock`, held until dropped or the process ends.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// The lock file of a database.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl RunLock {
    /// Takes the lock of database `db` (waiting at most about a second) and writes `info`'s pid
    /// and host into it.
    pub fn acquire(db: &Path, info: &RunInfo) -> Result<Self, LockError> {
        let path = lock_path(db);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut attempts = 0;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if attempts < LOCK_ATTEMPTS => {
                    attempts += 1;
                    std::thread::sleep(LOCK_RETRY);
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LockError::Held {
                    path: path.clone(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "pid {} on {}", info.pid, info.host).map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// Whether a live process holds the run lock of database `db` (a service is writing to it).
/// Probes with a shared lock held for an instant; false when there is no lock file.
pub fn writer_alive(db: &Path) -> bool {
    let Ok(file) = File::open(lock_path(db)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Closes every run left open (its process is gone: the caller holds the run lock), ends their
/// open tracks as interrupted, and opens a run for `info`. One transaction.
pub fn begin(conn: &mut Connection, info: &RunInfo, now_ms: i64) -> rusqlite::Result<RunStart> {
    let tx = conn.transaction()?;
    let dead: Vec<DeadRun> = {
        let mut stmt = tx.prepare(
            "SELECT id, pid, started_ms, COALESCE(last_ms, started_ms) FROM runs
             WHERE ended_ms IS NULL ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            Ok(DeadRun {
                id: r.get(0)?,
                pid: r.get(1)?,
                started_ms: r.get(2)?,
                ended_ms: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    tx.execute(
        "INSERT INTO runs(started_ms, last_ms, version, config_path, config_sha256, host, pid,
                          cameras)
         VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            now_ms,
            info.version,
            info.config_path,
            info.config_sha256,
            info.host,
            info.pid,
            info.cameras as i64
        ],
    )?;
    let id = tx.last_insert_rowid();
    for d in &dead {
        tx.execute(
            "UPDATE runs SET ended_ms = ?2, clean = 0, closed_by = ?3 WHERE id = ?1",
            params![d.id, d.ended_ms, id],
        )?;
    }
    // Every open track now belongs to a dead process (the lock says no other one is live),
    // including tracks written before runs were recorded (run IS NULL).
    let interrupted = tx.execute(
        "UPDATE tracks SET ended = 1, interrupted = 1 WHERE ended = 0",
        [],
    )?;
    // Store trajectories have no run column: every open one is a dead process's too. Ended,
    // retention can delete them (it keeps what is open).
    let interrupted_store = tx.execute(
        "UPDATE store_tracks SET ended = 1, interrupted = 1 WHERE ended = 0",
        [],
    )?;
    let interrupted_visits = tx.execute(CLOSE_OPEN_VISITS, [])?;
    tx.commit()?;
    Ok(RunStart {
        id,
        dead,
        interrupted_tracks: interrupted,
        interrupted_store_tracks: interrupted_store,
        interrupted_visits,
    })
}

/// Ends every open zone visit as interrupted; its `leave_ms` is the last position of its
/// trajectory that was written (the writer keeps it there while the visit is open).
const CLOSE_OPEN_VISITS: &str = "UPDATE zone_visits SET ended = 1, interrupted = 1 WHERE ended = 0";

/// Records that run `id` was alive at `now_ms` (inside the writer's transaction).
pub fn heartbeat(tx: &Transaction<'_>, id: i64, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE runs SET last_ms = MAX(COALESCE(last_ms, 0), ?2) WHERE id = ?1")?
        .execute(params![id, now_ms])?;
    Ok(())
}

/// Closes run `id` at `now_ms`. Tracks of it still open (their end never reached the writer)
/// are ended and marked interrupted, and so are store trajectories still open (this process
/// holds the run lock: they are its own); the run is clean only if `orderly` and there were
/// none. Returns the number of such tracks and trajectories.
pub fn finish(
    conn: &mut Connection,
    id: i64,
    now_ms: i64,
    orderly: bool,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let open = tx.execute(
        "UPDATE tracks SET ended = 1, interrupted = 1 WHERE ended = 0 AND run = ?1",
        params![id],
    )? + tx.execute(
        "UPDATE store_tracks SET ended = 1, interrupted = 1 WHERE ended = 0",
        [],
    )?;
    tx.execute(CLOSE_OPEN_VISITS, [])?;
    let clean = orderly && open == 0;
    tx.execute(
        "UPDATE runs SET ended_ms = ?2, last_ms = ?2, clean = ?3 WHERE id = ?1",
        params![id, now_ms, clean],
    )?;
    tx.commit()?;
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreError, schema};

    fn info() -> RunInfo {
        RunInfo::current(Path::new("config.toml"), &sha256_hex(b"x = 1\n"), 2)
    }

    fn open_track(conn: &Connection, run: Option<i64>, last_ms: i64) {
        conn.execute(
            "INSERT INTO tracks(camera, first_ms, last_ms, points, run) VALUES ('cam1', 1, ?1, 1, ?2)",
            params![last_ms, run],
        )
        .unwrap();
    }

    /// (ended_ms, clean, closed_by) of run `id`.
    fn run_row(conn: &Connection, id: i64) -> (Option<i64>, Option<i64>, Option<i64>) {
        conn.query_row(
            "SELECT ended_ms, clean, closed_by FROM runs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    fn camera(conn: &Connection) {
        conn.execute(
            "INSERT INTO cameras(id, name, url, added_ms) VALUES ('cam1', 'c', 'rtsp://x', 0)",
            [],
        )
        .unwrap();
    }

    #[test]
    fn config_hash_matches_sha256sum() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_v1_file_migrates_and_its_open_tracks_are_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.execute_batch("PRAGMA user_version = 1;").unwrap();
        camera(&c);
        c.execute_batch(
            "INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES ('cam1', 1, 5, 1, 1);
             INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES ('cam1', 2, 6, 1, 0);
             INSERT INTO points(track, ts_ms, x, y, w, h, score) VALUES (2, 6, 1, 2, 3, 4, 0.9);",
        )
        .unwrap();
        drop(c);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(
            schema::version(store.connection()).unwrap(),
            schema::CURRENT_VERSION
        );
        let start = store.begin_run(&info()).unwrap();
        assert_eq!(
            (start.id, start.dead.len(), start.interrupted_tracks),
            (1, 0, 1)
        );
        let c = store.connection();
        let rows: Vec<(i64, i64, i64)> = c
            .prepare("SELECT id, ended, interrupted FROM tracks ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, vec![(1, 1, 0), (2, 1, 1)]);
        let kind: i64 = c
            .query_row("SELECT kind FROM points", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kind, 0, "old points read as observed");
        assert_eq!(run_row(c, 1), (None, None, None), "the new run is open");
    }

    #[test]
    fn a_dead_run_is_closed_at_its_last_commit_and_its_tracks_and_visits_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut c = Connection::open(&path).unwrap();
        schema::migrate(&mut c).unwrap();
        camera(&c);
        let first = begin(&mut c, &info(), 1_000).unwrap().id;
        open_track(&c, Some(first), 4_000);
        c.execute_batch(
            "INSERT INTO store_tracks(first_ms, last_ms, points) VALUES (1000, 4000, 3);
             INSERT INTO store_tracks(first_ms, last_ms, points, ended) VALUES (900, 950, 1, 1);
             INSERT INTO zone_visits(store_track, zone, enter_ms, leave_ms, ended)
               VALUES (1, 'till', 1500, 3900, 0);
             INSERT INTO zone_visits(store_track, zone, enter_ms, leave_ms) VALUES (2, 'door', 900, 950);",
        )
        .unwrap();
        let tx = c.transaction().unwrap();
        heartbeat(&tx, first, 5_000).unwrap();
        tx.commit().unwrap();
        // The process dies here: no finish().
        let second = begin(&mut c, &info(), 9_000).unwrap();
        assert_eq!(second.interrupted_tracks, 1);
        // Its store trajectory left open (it never ended, so retention never deleted it) is
        // ended and marked; the one that had ended is untouched.
        assert_eq!(second.interrupted_store_tracks, 1);
        let store: Vec<(i64, i64)> = c
            .prepare("SELECT ended, interrupted FROM store_tracks ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(store, vec![(1, 1), (1, 0)]);
        // So is the zone visit in progress, at the last position written (3.9 s).
        assert_eq!(second.interrupted_visits, 1);
        let visits: Vec<(i64, i64, i64)> = c
            .prepare("SELECT leave_ms, ended, interrupted FROM zone_visits ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(visits, vec![(3_900, 1, 1), (950, 1, 0)]);
        assert_eq!(
            second.dead,
            vec![DeadRun {
                id: first,
                pid: i64::from(std::process::id()),
                started_ms: 1_000,
                ended_ms: 5_000
            }]
        );
        assert_eq!(run_row(&c, first), (Some(5_000), Some(0), Some(second.id)));
        let (ended, interrupted): (i64, i64) = c
            .query_row("SELECT ended, interrupted FROM tracks", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((ended, interrupted), (1, 1));
        // A third start finds nothing more to close.
        let third = begin(&mut c, &info(), 10_000).unwrap();
        assert_eq!(third.dead.len(), 1, "the second run never finished either");
        assert_eq!(third.interrupted_tracks, 0);
    }

    #[test]
    fn finish_is_clean_only_when_every_track_was_ended() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::open(dir.path().join("t.db")).unwrap();
        schema::migrate(&mut c).unwrap();
        camera(&c);
        let a = begin(&mut c, &info(), 1_000).unwrap().id;
        assert_eq!(finish(&mut c, a, 2_000, true).unwrap(), 0);
        assert_eq!(run_row(&c, a), (Some(2_000), Some(1), None));
        let b = begin(&mut c, &info(), 3_000).unwrap().id;
        open_track(&c, Some(b), 3_500);
        assert_eq!(finish(&mut c, b, 4_000, true).unwrap(), 1);
        assert_eq!(run_row(&c, b), (Some(4_000), Some(0), None));
        let c_ = begin(&mut c, &info(), 5_000).unwrap();
        assert!(c_.dead.is_empty(), "finished runs are not dead");
    }

    #[test]
    fn a_second_writer_on_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut a = Store::open(&path).unwrap();
        a.begin_run(&info()).unwrap();
        let mut b = Store::open(&path).unwrap();
        let err = b.begin_run(&info()).err().unwrap();
        assert!(
            matches!(err, StoreError::Lock(LockError::Held { .. })),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("t.db.lock: another storetrack is writing to this database (pid "),
            "{msg}"
        );
        assert!(writer_alive(&path));
        drop(a);
        assert!(!writer_alive(&path));
        let start = b.begin_run(&info()).unwrap();
        assert_eq!(
            start.dead.len(),
            1,
            "the dropped handle never closed its run"
        );
    }
}
