//! Crash consistency through the real binary: the service is killed with SIGKILL while people
//! are being tracked (a second service on the same database meanwhile is refused), then started
//! again. The restart must close the dead run (not clean), end
//! its open tracks as interrupted, keep every point the dead run had committed, and leave a
//! database that passes `PRAGMA integrity_check`.

use crate::common::{self, count, ids, query_json, spawn_run};

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use storetrack::simcam::SimCam;

/// How long the first run may take to commit points of an open track (model load included).
const FIRST_POINTS_TIMEOUT: Duration = Duration::from_secs(60);

fn read_only(db: &Path) -> Connection {
    common::try_read_only(db).unwrap()
}

/// (open tracks with points, points) of run 1 as committed now; (0, 0) before the run exists.
fn committed(db: &Path) -> (i64, i64) {
    if !db.is_file() {
        return (0, 0);
    }
    let c = read_only(db);
    c.query_row(
        "SELECT (SELECT COUNT(*) FROM tracks WHERE run = 1 AND ended = 0 AND points > 0),
                (SELECT COUNT(*) FROM points p JOIN tracks t ON t.id = p.track WHERE t.run = 1)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or((0, 0))
}

/// `status` of each run, newest first, as `storetrack query runs` reports it.
fn statuses(db: &Path) -> Vec<String> {
    query_json(db, &["runs"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect()
}

/// Ids of the tracks matching `filter`, in order.
fn track_ids(db: &Path, filter: &str) -> Vec<i64> {
    ids(
        &read_only(db),
        &format!("SELECT id FROM tracks WHERE {filter} ORDER BY id"),
    )
}

#[test]
fn sigkill_then_restart_closes_the_dead_run_and_keeps_its_points() {
    let video = common::video();
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".into(), video)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &[sim.url("cam1")], "");
    let db = dir.path().join("tracks.db");

    let mut first = spawn_run(&cfg, &dir.path().join("first.log"), &[]);
    let t0 = Instant::now();
    let (open_before, points_before) = loop {
        let (open, points) = committed(&db);
        // A few flushes in, with tracks in progress: the moment a crash hurts.
        if open >= 2 && points >= 50 {
            break (open, points);
        }
        if t0.elapsed() > FIRST_POINTS_TIMEOUT {
            let _ = first.kill();
            let log = std::fs::read_to_string(dir.path().join("first.log")).unwrap();
            panic!("no open tracks committed after {FIRST_POINTS_TIMEOUT:?}: {log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(statuses(&db), ["running"]);
    // A second service on the same database is refused, naming the first.
    let second = spawn_run(&cfg, &dir.path().join("refused.log"), &["--duration", "1s"])
        .wait()
        .unwrap();
    let refused = std::fs::read_to_string(dir.path().join("refused.log")).unwrap();
    assert!(!second.success(), "{refused}");
    assert!(
        refused.contains(&format!(
            "tracks.db.lock: another storetrack is writing to this database (pid {} on ",
            first.id()
        )),
        "{refused}"
    );
    first.kill().unwrap(); // SIGKILL: no handler runs, no last flush
    first.wait().unwrap();
    assert_eq!(
        statuses(&db),
        ["dead"],
        "no process holds the lock any more"
    );
    // Nothing writes now: these are exactly the tracks the kill left open.
    let open_at_kill = track_ids(&db, "run = 1 AND ended = 0");
    assert!(!open_at_kill.is_empty(), "no track was open at the kill");
    let (_, points_at_kill) = committed(&db);
    eprintln!(
        "killed with {} open tracks ({open_before}+ seen), {points_before} points seen, \
         {points_at_kill} committed",
        open_at_kill.len()
    );
    assert!(points_at_kill >= points_before);

    let restart = spawn_run(&cfg, &dir.path().join("second.log"), &["--duration", "2s"])
        .wait_with_output()
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(restart.status.success(), "restart failed: {log}");
    assert!(log.contains("did not end cleanly"), "{log}");
    drop(sim);

    let c = read_only(&db);
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let open = count(
        &c,
        "SELECT COUNT(*) FROM tracks WHERE run = 1 AND ended = 0",
    );
    assert_eq!(open, 0, "tracks of the killed run are still open");
    assert_eq!(
        track_ids(&db, "run = 1 AND interrupted = 1"),
        open_at_kill,
        "exactly the tracks open at the kill are marked interrupted"
    );
    let (ended, clean, closed_by): (Option<i64>, Option<i64>, Option<i64>) = c
        .query_row(
            "SELECT ended_ms, clean, closed_by FROM runs WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((clean, closed_by), (Some(0), Some(2)), "killed run");
    let last_point = count(
        &c,
        "SELECT MAX(p.ts_ms) FROM points p JOIN tracks t ON t.id = p.track WHERE t.run = 1",
    );
    let ended = ended.expect("the killed run has an end");
    assert!(
        ended >= last_point,
        "run ended at {ended}, before its last point {last_point}"
    );
    let second: (Option<i64>, Option<i64>) = c
        .query_row("SELECT clean, closed_by FROM runs WHERE id = 2", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(second, (Some(1), None), "the restart stopped in order");
    let (_, points_after) = committed(&db);
    assert_eq!(
        points_after, points_at_kill,
        "points of the killed run changed"
    );
    assert_eq!(statuses(&db), ["clean", "crashed"]);
    let back = count(
        &c,
        "SELECT COUNT(*) FROM (SELECT first_ms - LAG(last_ms) OVER (ORDER BY second) AS d
                               FROM frames_second WHERE camera = 'cam1') WHERE d <= 0",
    );
    assert_eq!(back, 0, "frame times went back across the restart");
    let counted = count(&c, "SELECT SUM(points) FROM tracks WHERE run = 1");
    assert_eq!(counted, points_after, "tracks.points differs from the rows");
}
