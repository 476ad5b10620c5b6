//! Key-frame-only decoding, end to end: two simulated cameras stream the sample (10 fps, a key
//! frame every 10 frames) at `detect_fps = 1`. cam1 uses the default `decode = "auto"`, so once
//! the key-frame rate is measured its delta frames never reach the decoder; cam2 decodes every
//! frame (`decode = "all"`). Both must be analysed at the same rate and see the sample's people,
//! while cam1's delta frames are counted as not decoded, and GStreamer reports no CRITICAL
//! (dropping a buffer on the decoder's sink pad the wrong way logs one per frame).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gstreamer::glib;
use rusqlite::Connection;
use storetrack::simcam::SimCam;
use storetrack::{Config, Decode, RunOptions};

#[test]
fn key_frames_serve_a_camera_whose_detect_fps_is_at_its_key_frame_rate() {
    common::openvino_env();
    let criticals = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&criticals);
    glib::log_set_handler(
        Some("GStreamer"),
        glib::LogLevels::LEVEL_CRITICAL,
        false,
        false,
        move |_, _, message| {
            eprintln!("GStreamer-CRITICAL: {message}");
            counter.fetch_add(1, Ordering::Relaxed);
        },
    );
    let video = common::video();
    let sim = SimCam::start(
        "127.0.0.1",
        0,
        &[("a".into(), video.clone()), ("b".into(), video)],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::write_config(dir.path(), &[sim.url("a"), sim.url("b")], "");
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("[ingest]\n", "[ingest]\ndetect_fps = 1\n")
        .replace("id = \"cam2\"\n", "id = \"cam2\"\ndecode = \"all\"\n");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.cameras[0].decode, Decode::Auto);
    assert_eq!(cfg.cameras[1].decode, Decode::All);

    let opts = RunOptions {
        duration: Some(Duration::from_secs(14)),
        ..Default::default()
    };
    let summary = storetrack::run(&cfg, &opts, Arc::new(AtomicBool::new(false))).unwrap();
    let c = &summary.counts;
    eprintln!(
        "decoded {}, not decoded {}, inferred {}",
        c.decoded, c.undecoded, c.inferred
    );
    assert_eq!(c.failures, 0, "no camera failed");
    assert_eq!(
        criticals.load(Ordering::Relaxed),
        0,
        "GStreamer-CRITICAL logged"
    );
    // cam2 decodes ~10 frames a second; cam1 decodes its first three GOPs (while the key-frame
    // rate is measured) and then one frame a second.
    assert!(c.undecoded >= 60, "cam1's delta frames were decoded");
    assert!(
        c.decoded <= 10 * 14 + 30 + 14,
        "more decoded than cam2 plus cam1's key frames: {}",
        c.decoded
    );

    let db = Connection::open(&summary.db).unwrap();
    let analysed = |cam: &str| -> (i64, i64) {
        db.query_row(
            "SELECT COALESCE(SUM(frames), 0),
                    COALESCE(SUM(CASE WHEN persons_min > 0 THEN frames ELSE 0 END), 0)
             FROM frames_second WHERE camera = ?1",
            [cam],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (keys, keys_people) = analysed("cam1");
    let (all, all_people) = analysed("cam2");
    eprintln!("analysed: cam1 {keys} ({keys_people} with people), cam2 {all} ({all_people})");
    assert!(all >= 8, "cam2 analysed only {all} frames");
    assert!(
        (keys - all).abs() <= 3,
        "key frames alone must give the same analysed rate: cam1 {keys}, cam2 {all}"
    );
    // The sample shows people throughout: key-frame pictures are as good as any.
    assert!(
        keys_people * 10 >= keys * 8,
        "cam1: people in {keys_people} of {keys}"
    );
}
