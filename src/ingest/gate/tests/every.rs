//! A camera at `detect_fps = 0` (every frame): every frame decoded and analysed while nothing
//! limits it, asking for its stream's frame rate; under a limit (a fair share of an overloaded
//! detector, its idle rate) its GOPs are planned as any limited camera's, and while its decoding
//! is behind it sheds GOPs.

use super::*;

#[test]
fn a_camera_analysing_every_frame_has_every_frame_while_not_limited() {
    let mut gate = FrameGate::new(Decode::Auto, 0);
    assert_eq!(gate.asked_fps(), 0.0, "the frame rate is not known yet");
    let o = run(&mut gate, &plain(100, 10), 10, 0);
    assert_eq!(o.decoded, (0..100).collect::<Vec<_>>());
    assert_eq!(o.analysed, o.decoded);
    assert_eq!(gate.asked_fps(), 10.0, "asks for the stream's frame rate");
    let mut b = FrameGate::new(Decode::Auto, 0);
    let o = run(&mut b, &with_b_frames(100, 25, 2, true), 25, 3);
    assert_eq!(o.analysed, (0..100).collect::<Vec<_>>(), "B-frames");
    assert_eq!(
        b.asked_fps(),
        25.0,
        "B-frames: the frame rate, not the send order's"
    );
}

#[test]
fn a_limited_camera_analysing_every_frame_gets_its_share_and_decodes_little_more() {
    // 10 fps, a key frame a second, given 2.5 fps.
    let mut gate = FrameGate::new(Decode::Auto, 0);
    gate.set_limit(Some(2.5));
    let o = run(&mut gate, &plain(200, 10), 10, 0);
    assert!(o.broken.is_empty(), "references skipped: {:?}", o.broken);
    // Until the key-frame rate is known (the second key frame, 10), every frame is decoded and
    // one every 400 ms analysed.
    let early: Vec<u64> = o.analysed.iter().copied().filter(|&i| i < 10).collect();
    assert_eq!(early, [0, 4, 8]);
    // Then 2.5 a GOP: 2 and 3 in turn, each GOP decoded up to its last analysed frame.
    for gop in (10..200).step_by(10) {
        let analysed = in_gop(&o.analysed, gop, 10);
        let decoded = in_gop(&o.decoded, gop, 10);
        assert!(
            (2..=3).contains(&analysed.len()),
            "GOP {gop}: analysed {analysed:?}"
        );
        assert_eq!(
            decoded.len() as u64,
            analysed.last().unwrap() + 1,
            "GOP {gop}: decoded {decoded:?}, analysed {analysed:?}"
        );
    }
    let later = o.analysed.iter().filter(|&&i| i >= 10).count();
    assert_eq!(later, 47, "2.5 fps over 19 s: {:?}", o.analysed);
}

#[test]
fn a_camera_analysing_every_frame_sheds_while_its_decoding_is_behind() {
    let mut gate = FrameGate::new(Decode::Auto, 0);
    let behind = |i: u64| {
        if (30..50).contains(&i) {
            Backlog::Behind
        } else {
            Backlog::Keeping
        }
    };
    let o = run_behind(&mut gate, &plain(80, 10), 10, 0, behind);
    assert_eq!(o.shed, (30..50).collect::<Vec<_>>(), "GOPs 30 and 40 shed");
    let kept: Vec<u64> = (0..30).chain(50..80).collect();
    assert_eq!(o.decoded, kept);
    assert_eq!(o.analysed, kept);
}
