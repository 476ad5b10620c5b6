//! A camera whose decoding cannot keep up with its stream sheds GOPs instead of losing packets,
//! end to end: the camera template with a pause after each frame the decoder puts out for
//! analysis (as on a box whose streaming threads are short of CPU), one simulated camera at
//! 10 fps with a key frame a second, 1.5 s of work for each second of stream: 300 ms a frame at
//! `detect_fps = 5`, 150 ms at `detect_fps = 0` (every frame). Without shedding the packet queue
//! (1 s) fills and drops packets, each damaging its frame and the frames after it up to the
//! next key frame; with it, frames are shed at the decoder's input while the queue shows
//! decoding behind, no packet is lost, and the camera keeps being analysed: never more than
//! about two GOPs (2.5 s) between two analysed frames, a GOP shed whole and the rest of one cut
//! (seconds are not the measure: a GOP shed whole empties a second only when its key frame
//! falls on the second, so which seconds stay empty depends on the stream's phase).

use crate::common;

use rusqlite::Connection;
use storetrack::simcam::SimCam;

#[test]
fn a_camera_decoding_slower_than_its_stream_sheds_gops_and_loses_no_packet() {
    sheds_gops(5, 300);
}

#[test]
fn a_camera_analysing_every_frame_sheds_gops_too() {
    sheds_gops(0, 150);
}

/// One camera at `detect_fps` with `pause_ms` of work after each frame the decoder puts out
/// for analysis.
fn sheds_gops(detect_fps: u32, pause_ms: u32) {
    common::openvino_env();
    let sim = SimCam::start("127.0.0.1", 0, &[("a".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pause = format!(
        "avdec_h264 name=dec direct-rendering=false ! identity sleep-time={}\n",
        pause_ms * 1000
    );
    let cfg = common::config_with_template(
        dir.path(),
        &[sim.url("a")],
        |t| t.replace("avdec_h264 name=dec direct-rendering=false\n", &pause),
        &format!("detect_fps = {detect_fps}\n"),
    );

    let summary = common::run_for(&cfg, 14);
    let c = &summary.counts;
    eprintln!("{}", common::frame_counts(c));
    assert_eq!(c.failures, 0, "the camera failed");
    assert!(c.shed > 0, "nothing shed: decoding kept up?");
    assert!(c.shed <= c.undecoded, "shed frames are not decoded");
    assert_eq!(c.packets_lost, 0, "packets dropped in front of the decoder");

    // From the third second on (the first ones: connecting, GOPs measured) to the last but
    // one, the gaps between analysed frames: each second with a frame analysed has a row with
    // its first and last frame's capture time.
    let db = Connection::open(&summary.db).unwrap();
    let seconds: Vec<(i64, i64, i64, i64)> = db
        .prepare(
            "SELECT second, frames, first_ms, last_ms FROM frames_second \
             WHERE camera = 'cam1' ORDER BY second",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let counts: Vec<(i64, i64)> = seconds.iter().map(|r| (r.0, r.1)).collect();
    eprintln!("frames analysed each second: {counts:?}");
    let (Some(head), Some(tail)) = (seconds.first(), seconds.last()) else {
        panic!("no frame analysed in the whole run");
    };
    let (first, last) = (head.0 + 2, tail.0 - 1);
    assert!(last - first + 1 >= 8, "too few seconds: {counts:?}");
    let steady: Vec<_> = seconds
        .iter()
        .filter(|r| (first..=last).contains(&r.0))
        .collect();
    let (Some(steady_first), Some(steady_last)) = (steady.first(), steady.last()) else {
        panic!("no frame analysed from second {first} to {last}: {counts:?}");
    };
    let longest_gap_ms = steady
        .windows(2)
        .map(|w| w[1].2 - w[0].3)
        .chain([
            steady_first.2 - first * 1000,
            (last + 1) * 1000 - steady_last.3,
        ])
        .max()
        .unwrap();
    eprintln!("longest gap between analysed frames: {longest_gap_ms} ms");
    assert!(
        longest_gap_ms <= 2_500,
        "{longest_gap_ms} ms without a frame analysed: {counts:?}"
    );
}
