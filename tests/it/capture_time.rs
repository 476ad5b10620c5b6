//! Capture time through the real chain: the simulator (gst-rtsp-server) sends RTCP sender
//! reports with a clock in step with this host's, so after the first ones the service must
//! take the camera's capture delay from them, say so once in its log, and store frame times
//! that strictly increase at the source's 10 fps spacing. (Cameras of every kind, their clocks
//! wrong, against the simulator's true capture times: `tests/streams.rs`.)

use crate::common;

use std::process::Command;

use rusqlite::Connection;
use storetrack::simcam::SimCam;

/// Frame steps (at 10 fps: 2 s) taken to switch from arrival time to the sender reports' time.
const SETTLE_STEPS: usize = 20;

#[test]
fn frames_are_stamped_from_sender_reports_and_strictly_increase() {
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &[sim.url("cam1")], "");
    common::openvino_env();
    let out = Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(["run", "-c", cfg.to_str().unwrap(), "--duration", "7s"])
        .args(["--progress", "0s"])
        .env("STORETRACK_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("Capture time from the camera's RTCP sender reports")
            .count(),
        1,
        "{log}"
    );
    assert!(!log.contains("not in step"), "{log}");

    let db = Connection::open(dir.path().join("tracks.db")).unwrap();
    // Frames are stored per second (count, first and last capture time): the step between
    // seconds is exact, the steps within one second are their mean.
    let seconds: Vec<(i64, i64, i64)> = db
        .prepare(
            "SELECT frames, first_ms, last_ms FROM frames_second WHERE camera = 'cam1'
             ORDER BY second",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut steps: Vec<i64> = Vec::new();
    for (i, &(n, first, last)) in seconds.iter().enumerate() {
        if i > 0 {
            steps.push(first - seconds[i - 1].2);
        }
        for _ in 1..n {
            steps.push(((last - first) as f64 / (n - 1) as f64).round() as i64);
        }
    }
    assert!(steps.len() >= 30, "only {} frames", steps.len() + 1);
    assert!(steps.iter().all(|&d| d > 0), "time went back: {steps:?}");
    // 10 fps at detect_fps 10: every frame, 100 ms apart once the clock follows the sender
    // reports. The first seconds (arrival-based start, then brought onto the camera's NTP time;
    // a busy machine stretches that) are left out of the regularity check.
    let settled = &steps[steps.len().min(SETTLE_STEPS)..];
    let regular = settled.iter().filter(|&&d| (95..=101).contains(&d)).count();
    assert!(
        regular * 10 >= settled.len() * 9,
        "irregular spacing: {steps:?}"
    );
}
