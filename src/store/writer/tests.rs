//! Writer tests on real SQLite files: batching, refused rows, a full database.

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
