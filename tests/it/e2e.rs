//! End to end on the real chain: the simulator serves the sample video as two RTSP cameras, the
//! service runs ~20 s with the real SSDLite model on CPU, and the SQLite file must then hold what
//! that video shows: people on most frames, a plausible number of them, and tracks that last as
//! long as people take to walk through the scene. A third, unreachable camera must not disturb
//! the other two.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rusqlite::Connection;
use storetrack::{Config, RunOptions};

const RUN_SECONDS: u64 = 20;
const DAY_MS: i64 = 86_400_000;

#[test]
fn two_simulated_cameras_yield_plausible_tracks_in_sqlite() {
    common::openvino_env();
    let sim = common::two_cameras();
    // Nothing listens on port 1: this camera fails to connect and is retried.
    let dead = "rtsp://viewer:hunter2@127.0.0.1:1/none".to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::write_config(dir.path(), &[sim.url("cam1"), sim.url("cam2"), dead], "");
    let cfg = Config::load(&cfg_path).unwrap();
    // History of a camera no longer configured: 40 days old (past the default keep_days of
    // 30, so retention deletes it while the service runs) and 10 days old (kept).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let history = [(now_ms - 40 * DAY_MS, 1), (now_ms - 10 * DAY_MS, 2)];
    {
        let store = storetrack::store::Store::open(&cfg.storage.db).unwrap();
        let c = store.connection();
        c.execute(
            "INSERT INTO cameras VALUES ('retired', 'r', 'rtsp://r', 0)",
            [],
        )
        .unwrap();
        for (t0, id) in history {
            c.execute(
                "INSERT INTO tracks(id, camera, first_ms, last_ms, points, ended)
                 VALUES (?1, 'retired', ?2, ?2 + 9900, 100, 1)",
                [id, t0],
            )
            .unwrap();
            for i in 0..100 {
                c.execute(
                    "INSERT INTO points(track, ts_ms, x, y, w, h, score)
                     VALUES (?1, ?2, 10, 10, 30, 90, 0.9)",
                    [id, t0 + i * 100],
                )
                .unwrap();
            }
            for s in 0..50 {
                c.execute(
                    "INSERT INTO frames_second VALUES ('retired', ?1, 10, 1, 1, 10, ?2, ?2 + 900)",
                    [t0 / 1000 + s, t0 + s * 1000],
                )
                .unwrap();
            }
        }
    }

    let opts = RunOptions {
        duration: Some(Duration::from_secs(RUN_SECONDS)),
        progress: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let summary = storetrack::run(&cfg, &opts, Arc::new(AtomicBool::new(false))).unwrap();
    let c = &summary.counts;
    eprintln!(
        "decoded {} inferred {} dropped {} persons {} tracks {} points {} fps {:.1}",
        c.decoded,
        c.inferred,
        c.dropped,
        c.persons,
        c.tracks,
        c.points_stored,
        summary.processed_fps()
    );

    // The source is 10 fps; two live cameras for ~20 s give ~400 frames. Allow for start-up.
    let expected = 2 * 10 * RUN_SECONDS;
    assert!(
        c.inferred >= expected * 6 / 10,
        "only {} frames inferred",
        c.inferred
    );
    assert!(
        c.failures >= 1,
        "the unreachable camera was not counted as failing"
    );
    assert_eq!(c.infer_errors, 0);

    let db = Connection::open(&summary.db).unwrap();
    let q = |sql: &str| -> f64 { db.query_row(sql, [], |r| r.get::<_, f64>(0)).unwrap() };
    for cam in ["cam1", "cam2"] {
        let frames = q(&format!(
            "SELECT SUM(frames) FROM frames_second WHERE camera = '{cam}'"
        ));
        assert!(
            frames >= (10 * RUN_SECONDS / 2) as f64,
            "{cam}: {frames} frames stored"
        );
        // vtest.avi shows people on (nearly) every frame: on every frame of most seconds.
        let with_people = q(&format!(
            "SELECT AVG(persons_min > 0) FROM frames_second WHERE camera = '{cam}'"
        ));
        assert!(
            with_people >= 0.8,
            "{cam}: people on every frame of only {:.0}% of seconds",
            with_people * 100.0
        );
        let in_range = q(&format!(
            "SELECT AVG(persons_min >= 1 AND persons_max <= 12) FROM frames_second
             WHERE camera = '{cam}'"
        ));
        assert!(
            in_range >= 0.9,
            "{cam}: person count out of 1..12 in {:.0}% of seconds",
            (1.0 - in_range) * 100.0
        );
        let mean = q(&format!(
            "SELECT SUM(persons_sum) * 1.0 / SUM(frames) FROM frames_second WHERE camera = '{cam}'"
        ));
        assert!(
            (1.5..=10.0).contains(&mean),
            "{cam}: mean {mean:.1} persons per frame"
        );

        // People walk through the scene for many seconds: several long tracks must exist, and
        // most points must belong to tracks lasting seconds (not fragments).
        let long = q(&format!(
            "SELECT COUNT(*) FROM tracks WHERE camera = '{cam}' AND last_ms - first_ms >= 5000"
        ));
        assert!(long >= 3.0, "{cam}: only {long} tracks lasting 5 s or more");
        let weighted = q(&format!(
            "SELECT SUM(points * (last_ms - first_ms)) / 1000.0 / SUM(points) FROM tracks WHERE camera = '{cam}'"
        ));
        assert!(
            weighted >= 5.0,
            "{cam}: point-weighted track duration {weighted:.1} s"
        );
        let tracks = q(&format!(
            "SELECT COUNT(*) FROM tracks WHERE camera = '{cam}'"
        ));
        eprintln!(
            "{cam}: frames {frames} with-people {with_people:.2} in-range {in_range:.2} \
             mean {mean:.2} long-tracks {long} weighted-duration {weighted:.1}s tracks {tracks}"
        );
        assert!(
            tracks <= frames / 6.0,
            "{cam}: {tracks} tracks for {frames} frames (fragmented)"
        );
    }
    // Every point lies inside the 768x576 source image and has a sane size.
    let bad = q(
        "SELECT COUNT(*) FROM points WHERE x < -1 OR y < -1 OR x + w > 769 OR y + h > 577 OR w < 1 OR h < 1",
    );
    assert_eq!(bad, 0.0, "points outside the image");
    let stored = q(
        "SELECT COUNT(*) FROM points p JOIN tracks t ON t.id = p.track WHERE t.camera != 'retired'",
    );
    assert_eq!(stored as u64, c.points_stored);
    // Retention ran in the service: the 40-day-old history is gone, the 10-day-old one kept.
    assert_eq!(
        (
            c.retention_tracks_deleted,
            c.retention_points_deleted,
            c.retention_seconds_deleted
        ),
        (1, 100, 50)
    );
    let kept = q(
        "SELECT COUNT(*) FROM points p JOIN tracks t ON t.id = p.track
                  WHERE t.camera = 'retired' AND t.id = 2",
    );
    assert_eq!(kept, 100.0);
    let kept = q("SELECT COUNT(*) FROM frames_second WHERE camera = 'retired'");
    assert_eq!(kept, 50.0);
    assert_eq!(q("SELECT COUNT(*) FROM tracks WHERE id = 1"), 0.0);
    assert!(c.db_bytes > 0);
    let url: String = db
        .query_row("SELECT url FROM cameras WHERE id = 'cam3'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!url.contains("hunter2"), "password stored: {url}");
}
