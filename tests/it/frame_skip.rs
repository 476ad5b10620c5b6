//! Frames the detector will not take are skipped right after decoding, before scaling and colour
//! conversion, and counted. A real camera pipeline (simulated RTSP camera, real decoder) feeds a
//! queue nobody reads: once the queue is full of fresh frames, decoded frames are skipped, and
//! only about one frame per `FRESH_MS` reaches the appsink (is converted).

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use storetrack::Config;
use storetrack::ingest::queue::FRESH_MS;
use storetrack::simcam::SimCam;

#[test]
fn frames_not_taken_are_skipped_before_conversion_and_counted() {
    let video = common::video();
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".to_string(), video)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // detect_fps = 0: every decoded frame is offered to the queue (one camera with people in
    // view: neither a fair share nor its idle rate limits it).
    let cfg_path = common::write_config(dir.path(), &[sim.url("cam1")], "");
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("[ingest]\n", "[ingest]\ndetect_fps = 0\n");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    let capacity = 2;
    let camera = common::LoneCamera::start(&cfg, capacity);

    // Wait for the stream, then measure a 4 s window (the sample is 10 fps).
    let cam = camera.stats.camera(0);
    let t0 = Instant::now();
    while cam.decoded.load(Ordering::Relaxed) < 5 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = || {
        (
            cam.decoded.load(Ordering::Relaxed),
            cam.skipped.load(Ordering::Relaxed),
            cam.delivered.load(Ordering::Relaxed),
        )
    };
    let (d0, s0, c0) = read();
    let window = Duration::from_secs(4);
    std::thread::sleep(window);
    let (d1, s1, c1) = read();
    camera.stop();

    let (decoded, skipped, converted) = (d1 - d0, s1 - s0, c1 - c0);
    eprintln!("in {window:?}: decoded {decoded}, skipped {skipped}, converted {converted}");
    assert!(decoded >= 20, "the camera streamed too little: {decoded}");
    // Every decoded frame was either skipped or converted (one may be between the two).
    assert!(skipped + converted <= decoded + 1 && skipped + converted + 1 >= decoded);
    // Converted: at most one per FRESH_MS (plus rounding at the window's edges).
    let max_converted = window.as_millis() as u64 / FRESH_MS as u64 + 2;
    assert!(
        converted <= max_converted,
        "converted {converted} > {max_converted}"
    );
    assert!(
        converted >= 2,
        "fresh frames still get through: {converted}"
    );
    assert!(skipped >= decoded / 2, "skipped {skipped} of {decoded}");
}
