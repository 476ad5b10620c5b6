//! Decoding each GOP only up to its last analysed frame, end to end: two simulated cameras stream
//! the sample (10 fps, a key frame every 10 frames) at `detect_fps = 2`. cam1 uses the default
//! `decode = "auto"`, so once the key-frame rate is measured it analyses frames 0 and 5 of each
//! GOP and frames 6-9 never reach the decoder; cam2 decodes every frame (`decode = "all"`).
//! Both must be analysed at the same rate (totals within 3 frames), cam1's two frames of a second
//! about 500 ms apart, and see the sample's people, while
//! cam1's skipped frames are counted as not decoded, and GStreamer reports no CRITICAL
//! (dropping a buffer on the decoder's sink pad the wrong way logs one per frame). Key frames
//! only (one analysed frame per GOP) is the same path with k = 1 (unit tests in
//! `src/ingest/gate/tests.rs`); its decoder is parked between key frames (idle 900 ms of each
//! second; cam1 above, idle 400 ms, is not); with B-frames it is drained after each key frame
//! so the key frame is analysed at once.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gstreamer::glib;
use rusqlite::Connection;
use storetrack::simcam::{Encoding, Mount, SimCam, Variant};
use storetrack::{Config, Decode};

#[test]
fn a_camera_at_twice_its_key_frame_rate_decodes_each_gop_up_to_its_second_analysed_frame() {
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
        .replace("[ingest]\n", "[ingest]\ndetect_fps = 2\n")
        .replace("id = \"cam2\"\n", "id = \"cam2\"\ndecode = \"all\"\n");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.cameras[0].decode, Decode::Auto);
    assert_eq!(cfg.cameras[1].decode, Decode::All);

    let summary = common::run_for(&cfg, 14);
    let c = &summary.counts;
    eprintln!(
        "decoded {}, not decoded {}, inferred {}",
        c.decoded, c.undecoded, c.inferred
    );
    assert_eq!(c.failures, 0, "no camera failed");
    assert_eq!(c.parks, 0, "a decoder idle 400 ms of a GOP was parked");
    assert_eq!(
        criticals.load(Ordering::Relaxed),
        0,
        "GStreamer-CRITICAL logged"
    );
    // cam1 decodes its first GOP whole (while the key-frame rate is measured), then 6 of
    // every 10 frames: 4 a second not decoded, never more (that would be key frames only).
    assert!(
        c.undecoded >= 30,
        "cam1 decoded whole GOPs: {}",
        c.undecoded
    );
    assert!(
        c.undecoded <= 4 * 14,
        "cam1 skipped frames it analyses: {}",
        c.undecoded
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
    let (gop, gop_people) = analysed("cam1");
    let (all, all_people) = analysed("cam2");
    eprintln!("analysed: cam1 {gop} ({gop_people} with people), cam2 {all} ({all_people})");
    assert!(all >= 16, "cam2 analysed only {all} frames");
    assert!(
        (gop - all).abs() <= 3,
        "the GOP's first frames must give the same analysed rate: cam1 {gop}, cam2 {all}"
    );
    // Frames 0 and 5 of each GOP, not a burst and a gap: in a second with two analysed frames
    // they are about 500 ms apart (a burst of frames 0 and 1 would be 100 ms).
    let mut gaps: Vec<i64> = db
        .prepare(
            "SELECT last_ms - first_ms FROM frames_second WHERE camera = 'cam1' AND frames = 2",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    gaps.sort_unstable();
    eprintln!("cam1: ms between a second's two frames: {gaps:?}");
    assert!(gaps.len() >= 4, "too few seconds with two frames: {gaps:?}");
    let median = gaps[gaps.len() / 2];
    assert!((350..=650).contains(&median), "median gap {median} ms");
    // The sample shows people throughout.
    assert!(
        gop_people * 10 >= gop * 8,
        "cam1: people in {gop_people} of {gop}"
    );
}

/// A camera with B-frames analysed on its key frames only (`detect_fps = 1`, a key frame a
/// second): its decoder, reordering, kept each key frame until the next ones went in (frame age
/// 2.2 s); drained once nothing more of the GOP is decoded, each comes out at once.
#[test]
fn a_b_frame_camera_on_key_frames_only_has_each_one_analysed_at_once() {
    common::openvino_env();
    let mount = Mount {
        name: "b".into(),
        file: common::video(),
        variant: Variant {
            encoding: Some(Encoding {
                bframes: 2,
                gop_s: 1.0,
                ..Encoding::default()
            }),
            ..Variant::default()
        },
    };
    let sim = SimCam::serve("127.0.0.1", 0, &[mount]).unwrap();
    let c = at_one_fps(&sim.url("b"));
    assert!(c.undecoded > 50, "not on key frames only: {c:?}");
}

/// A camera on key frames only (`detect_fps = 1`, a key frame a second), not held to a share:
/// nothing is decoded for 900 ms after each key frame, so its decoder is parked after each
/// (its pictures and codec context freed) and woken for the next, which is analysed at once.
#[test]
fn a_camera_on_key_frames_only_has_its_decoder_parked_between_them() {
    common::openvino_env();
    let sim = SimCam::start("127.0.0.1", 0, &[("a".into(), common::video())]).unwrap();
    let c = at_one_fps(&sim.url("a"));
    // Parked after each key frame analysed from the key-frame rate's measuring (the second key
    // frame) on: all but the first (its GOP decoded whole) and the last (the run may stop
    // before its park), less one for slack.
    assert!(
        c.parks >= 7 && c.parks + 3 >= c.inferred,
        "decoder parked {} times in 14 s, {} key frames analysed",
        c.parks,
        c.inferred
    );
}

/// One camera at `detect_fps = 1` (a key frame a second: key frames only) from `url`, run 14 s:
/// it did not fail, had at least 9 frames analysed at frame age p95 below 1 s, and its frames
/// add up. Returns its counts.
fn at_one_fps(url: &str) -> storetrack::stats::Snapshot {
    let dir = tempfile::tempdir().unwrap();
    let camera = format!("[[cameras]]\nid = \"cam1\"\nurl = \"{url}\"\n\n");
    let cfg_path = common::write_config_from(dir.path(), &camera, "detect_fps = 1\n", "");
    let cfg = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.cameras[0].detect_fps, 1);

    let summary = common::run_for(&cfg, 14);
    let c = summary.counts;
    let p95 = summary.latency.age_p95_ms.expect("no frame age");
    eprintln!(
        "decoded {}, not decoded {}, analysed {}, parks {}, frame age p95 {p95} ms",
        c.decoded, c.undecoded, c.inferred, c.parks
    );
    assert_eq!(c.failures, 0, "the camera failed");
    assert!(c.inferred >= 9, "analysed {} frames in 14 s", c.inferred);
    assert!(p95 < 1_000, "frame age p95 {p95} ms");
    assert_eq!(
        c.decoded,
        c.inferred + c.not_picked + c.skipped + c.dropped + c.failed,
        "decoded = analysed + not picked + skipped + dropped + failed: {c:?}"
    );
    c
}

/// A camera held to a share of the detector (one frame a second of its 5, a key frame a second:
/// key frames only) has its decoder parked between its key frames too, the decoder alone
/// (`ingest::tests::a_decoder_parked_alone_…`), woken for each key frame, which is decoded and
/// converted. Before sitting R (docs/measurements/overload.md) it was never parked: 0 parks.
#[test]
fn a_camera_held_to_a_share_has_its_decoder_parked_between_its_key_frames() {
    common::openvino_env();
    let sim = SimCam::start("127.0.0.1", 0, &[("a".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let table = format!("[[cameras]]\nid = \"cam1\"\nurl = \"{}\"\n\n", sim.url("a"));
    let cfg_path = common::write_config_from(dir.path(), &table, "detect_fps = 5\n", "");
    let cfg = Config::load(&cfg_path).unwrap();
    let camera = common::LoneCamera::start(&cfg, 2);
    let (stats, cam) = (&camera.stats, camera.stats.camera(0));
    let t0 = Instant::now();
    while !cam.up.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // A detector saturated that finished nothing: the budget falls to its floor, one frame a
    // second, all of it this camera's share.
    stats.admit(1.0, Duration::from_secs(2));
    assert_eq!(cam.seat.allowed(), Some(1.0), "held to a share");
    let read = || {
        (
            cam.parks.load(Ordering::Relaxed),
            cam.decoded.load(Ordering::Relaxed),
            cam.delivered.load(Ordering::Relaxed),
        )
    };
    // The key-frame rate is measured from the second key frame on.
    std::thread::sleep(Duration::from_secs(3));
    let (p0, d0, c0) = read();
    std::thread::sleep(Duration::from_secs(6));
    let (p1, d1, c1) = read();
    camera.stop();

    let (parks, decoded, converted) = (p1 - p0, d1 - d0, c1 - c0);
    eprintln!("in 6 s: parks {parks}, decoded {decoded}, converted {converted}");
    // A key frame a second: 6 in 6 s (one more or less at the window's edges), each decoded,
    // converted (at 1 fps no fresher frame waits in the queue) and parked after.
    assert!(
        (5..=7).contains(&decoded),
        "decoded {decoded} frames in 6 s: key frames only"
    );
    assert!(
        parks + 1 >= decoded && parks <= decoded + 1,
        "decoder parked {parks} times for {decoded} key frames"
    );
    assert!(
        converted + 1 >= decoded,
        "converted {converted} of {decoded}"
    );
}
