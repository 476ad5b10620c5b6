//! A camera whose decoding cannot keep up with its stream sheds GOPs instead of losing packets,
//! end to end: the camera template with a pause after each frame the decoder puts out for
//! analysis (as on a box whose streaming threads are short of CPU), one simulated camera at
//! 10 fps with a key frame a second, 1.5 s of work for each second of stream: 300 ms a frame at
//! `detect_fps = 5`, 150 ms at `detect_fps = 0` (every frame). Without shedding the packet queue
//! (1 s) fills and drops packets, each damaging its frame and the frames after it up to the
//! next key frame; with it, frames are shed at the decoder's input while the queue shows
//! decoding behind, no packet is lost, and the camera is still analysed in at least four of
//! every five seconds (shedding a GOP forfeits its second).

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

    // Analysed in four of every five seconds from the third on (the first ones: connecting,
    // GOPs measured): a second with no frame analysed has no row.
    let db = Connection::open(&summary.db).unwrap();
    let seconds: Vec<(i64, i64)> = db
        .prepare("SELECT second, frames FROM frames_second WHERE camera = 'cam1' ORDER BY second")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    eprintln!("frames analysed each second: {seconds:?}");
    let (first, last) = (seconds[0].0 + 2, seconds[seconds.len() - 1].0 - 1);
    let steady = (last - first + 1).max(0);
    let analysed = seconds
        .iter()
        .filter(|&&(s, n)| (first..=last).contains(&s) && n > 0)
        .count() as i64;
    assert!(steady >= 8, "too few seconds: {seconds:?}");
    assert!(
        (steady - analysed) * 5 <= steady,
        "{analysed} of {steady} seconds analysed: {seconds:?}"
    );
}
