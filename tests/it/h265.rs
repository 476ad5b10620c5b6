//! An H.265 camera is analysed end to end: the first 10 s of the sample video are transcoded to
//! H.265 (x265enc), the simulator serves them over RTSP (H.265 payload), the camera uses the
//! H.265 pipeline template through its per-camera `pipeline` key, and the real detector must
//! find the people of the sample scene in the stored frames, while an H.264 camera on the same
//! service keeps working with the default template.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rusqlite::Connection;
use storetrack::simcam::{Clip, Codec, SimCam};
use storetrack::{Config, RunOptions};

/// Frames of the sample transcoded (10 s at 10 fps; the simulator loops them).
const FRAMES: u32 = 100;

#[test]
fn h265_camera_served_by_the_simulator_is_analysed() {
    common::openvino_env();
    let video = common::video();
    let dir = tempfile::tempdir().unwrap();
    let hevc = dir.path().join("vtest-h265.mp4");
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(["filesrc", &format!("location={}", video.display())])
        .args(["!", "qtdemux", "!", "h264parse", "!", "avdec_h264"])
        .args(["!", "identity", &format!("eos-after={FRAMES}")])
        .args([
            "!",
            "videoconvert",
            "!",
            "x265enc",
            "speed-preset=ultrafast",
        ])
        .args([
            "tune=zerolatency",
            "key-int-max=10",
            "!",
            "h265parse",
            "!",
            "mp4mux",
        ])
        .args(["!", "filesink", &format!("location={}", hevc.display())])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "transcoding to H.265 failed (x265enc missing?)"
    );
    assert_eq!(Clip::load(&hevc).unwrap().codec(), Codec::H265);

    let sim = SimCam::start(
        "127.0.0.1",
        0,
        &[("hevc".into(), hevc), ("avc".into(), video)],
    )
    .unwrap();
    let cfg_path = common::write_config(dir.path(), &[sim.url("hevc"), sim.url("avc")], "");
    let h265 = common::root().join("pipelines/camera-h265.pipeline");
    let text = std::fs::read_to_string(&cfg_path).unwrap().replacen(
        "url = ",
        &format!("pipeline = \"{}\"\nurl = ", h265.display()),
        1,
    );
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.cameras[0].pipeline.as_deref(), Some(h265.as_path()));
    assert_eq!(cfg.cameras[1].pipeline, None);

    let opts = RunOptions {
        duration: Some(Duration::from_secs(12)),
        progress: Some(Duration::from_secs(4)),
        ..Default::default()
    };
    let summary = storetrack::run(&cfg, &opts, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(summary.counts.failures, 0, "no camera failed");

    let db = Connection::open(&summary.db).unwrap();
    for cam in ["cam1", "cam2"] {
        let (frames, with_people): (i64, i64) = db
            .query_row(
                // Frames of seconds in which every frame showed people (a lower bound).
                "SELECT COALESCE(SUM(frames), 0),
                        COALESCE(SUM(CASE WHEN persons_min > 0 THEN frames ELSE 0 END), 0)
                 FROM frames_second WHERE camera = ?1",
                [cam],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        eprintln!("{cam}: {frames} frames, {with_people} with people");
        // ~10 s of streaming at 10 fps after connecting; the sample shows people throughout.
        assert!(frames >= 40, "{cam}: only {frames} frames analysed");
        assert!(
            with_people * 10 >= frames * 8,
            "{cam}: people in {with_people} of {frames}"
        );
    }
}
