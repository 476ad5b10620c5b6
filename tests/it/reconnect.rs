//! A camera that goes away mid-run (the simulator stops) and comes back on the same address is
//! reconnected by the service without a restart, and frames from after its return are stored.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use storetrack::ingest::wall_ms;
use storetrack::simcam::SimCam;
use storetrack::{Config, RunOptions};

#[test]
fn camera_that_drops_out_is_reconnected() {
    common::openvino_env();
    let video = common::video();
    let mounts = [("cam1".to_string(), video)];
    let sim = SimCam::start("127.0.0.1", 0, &mounts).unwrap();
    let port = sim.port();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::write_config(dir.path(), &[sim.url("cam1")], "");
    // Short stall timeout so a silent connection is also noticed quickly.
    let text = std::fs::read_to_string(&cfg_path).unwrap().replace(
        "retry_interval_ms = 500",
        "retry_interval_ms = 500\nstall_timeout_ms = 2000",
    );
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();

    let service = std::thread::spawn(move || {
        let opts = RunOptions {
            duration: Some(Duration::from_secs(18)),
            progress: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        storetrack::run(&cfg, &opts, Arc::new(AtomicBool::new(false))).unwrap()
    });
    std::thread::sleep(Duration::from_secs(5));
    drop(sim);
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let back_ms = wall_ms();
    // The port may need a moment to be free again.
    let sim = loop {
        match SimCam::start("127.0.0.1", port, &mounts) {
            Ok(s) => break s,
            Err(e) if down_at.elapsed() < Duration::from_secs(10) => {
                eprintln!("simulator restart: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot restart simulator: {e}"),
        }
    };
    let summary = service.join().unwrap();
    drop(sim);

    let c = &summary.counts;
    eprintln!("failures {} inferred {}", c.failures, c.inferred);
    assert!(c.failures >= 1, "the outage was not noticed");
    let db = Connection::open(&summary.db).unwrap();
    let (after, first_after): (i64, Option<i64>) = db
        .query_row(
            "SELECT COALESCE(SUM(frames), 0), MIN(first_ms) FROM frames_second
             WHERE first_ms > ?1",
            [back_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    eprintln!(
        "frames after return: {after}, first {} ms after the simulator came back",
        first_after.map_or(-1, |t| t - back_ms)
    );
    // ~10 s of the run remain after the return: at 10 fps that is ~100 frames; the reconnect
    // (backoff from 0.5 s, doubling, + RTSP set-up) must leave most of them.
    assert!(
        after >= 50,
        "only {after} frames stored after the camera came back"
    );
}
