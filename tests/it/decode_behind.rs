//! A camera whose decoding cannot keep up with its stream sheds GOPs instead of losing packets,
//! end to end: the camera template with a 300 ms pause after each frame the decoder puts out
//! for analysis (as on a box whose streaming threads are short of CPU), one simulated camera at
//! 10 fps with a key frame a second, `detect_fps = 5` — 1.5 s of work for each second of
//! stream. Without shedding the packet queue (1 s) fills and drops packets, each damaging its
//! frame and the frames after it up to the next key frame; with it, frames are shed at the
//! decoder's input while the queue shows decoding behind, no packet is lost, and the camera is
//! still analysed every second.

use crate::common;

use rusqlite::Connection;
use storetrack::Config;
use storetrack::simcam::SimCam;

#[test]
fn a_camera_decoding_slower_than_its_stream_sheds_gops_and_loses_no_packet() {
    common::openvino_env();
    let sim = SimCam::start("127.0.0.1", 0, &[("a".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(common::root().join("pipelines/camera.pipeline"))
        .unwrap()
        .replace(
            "avdec_h264 name=dec direct-rendering=false\n",
            "avdec_h264 name=dec direct-rendering=false ! identity sleep-time=300000\n",
        );
    assert!(template.contains("identity sleep-time"), "template changed");
    let slow = dir.path().join("slow.pipeline");
    std::fs::write(&slow, template).unwrap();
    let cfg_path = common::write_config(dir.path(), &[sim.url("a")], "");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    let text = text
        .replace(
            &common::root()
                .join("pipelines/camera.pipeline")
                .display()
                .to_string(),
            &slow.display().to_string(),
        )
        .replace("[ingest]\n", "[ingest]\ndetect_fps = 5\n");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();

    let summary = common::run_for(&cfg, 14);
    let c = &summary.counts;
    eprintln!(
        "decoded {}, not decoded {} ({} shed), inferred {}, packets lost {}",
        c.decoded, c.undecoded, c.shed, c.inferred, c.packets_lost
    );
    assert_eq!(c.failures, 0, "the camera failed");
    assert!(c.shed > 0, "nothing shed: decoding kept up?");
    assert!(c.shed <= c.undecoded, "shed frames are not decoded");
    assert_eq!(c.packets_lost, 0, "packets dropped in front of the decoder");

    // Analysed every second from the third on (the first ones: connecting, GOPs measured).
    let db = Connection::open(&summary.db).unwrap();
    let frames: Vec<i64> = db
        .prepare("SELECT frames FROM frames_second WHERE camera = 'cam1' ORDER BY second")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    eprintln!("frames analysed each second: {frames:?}");
    let steady = &frames[2.min(frames.len())..frames.len().saturating_sub(1)];
    assert!(steady.len() >= 8, "too few seconds: {frames:?}");
    let empty = steady.iter().filter(|&&n| n == 0).count();
    assert!(
        empty * 5 <= steady.len(),
        "seconds without analysis: {frames:?}"
    );
}
