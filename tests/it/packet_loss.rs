//! RTP packets lost before the decoder, end to end: the camera template with one video packet
//! in 200 dropped at random between rtspsrc and the packet queue (as a lossy network would over
//! UDP), one simulated camera at 10 fps with a key frame a second, `detect_fps = 5`. A lost
//! packet damages its frame and every frame after it up to the next key frame (decoded, they
//! would be the decoder's concealment: 27 dB median PSNR against the clean decode in
//! docs/measurements/overload.md, sitting Q); they are not decoded but counted as damaged, the
//! camera is still analysed from its clean key frames on, and every frame is accounted for.

use crate::common;

use storetrack::simcam::SimCam;

#[test]
fn frames_after_a_lost_packet_are_not_decoded_until_a_clean_key_frame() {
    common::openvino_env();
    let sim = SimCam::start("127.0.0.1", 0, &[("a".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config_with_template(
        dir.path(),
        &[sim.url("a")],
        |t| {
            t.replace(
                "  ! queue name=packets",
                "  ! identity drop-probability=0.005 ! queue name=packets",
            )
        },
        "detect_fps = 5\n",
    );

    let summary = common::run_for(&cfg, 12);
    let c = &summary.counts;
    eprintln!("{}", common::frame_counts(c));
    assert_eq!(c.failures, 0, "the camera failed");
    // About 1,600 packets in 12 s: 8 expected lost (none: 1 run in 3,000).
    assert!(c.packets_lost > 0, "no packet dropped");
    assert!(c.damaged > 0, "frames after a lost packet were decoded");
    assert!(c.damaged <= c.undecoded, "damaged frames are not decoded");
    assert!(c.inferred >= 5, "clean GOPs analysed: {}", c.inferred);
    let account = &summary.accounts[0];
    assert!(account.balanced(), "frames unaccounted for: {account:?}");
    assert_eq!(account.damaged, c.damaged);
}
