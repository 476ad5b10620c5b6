//! A camera waking in the middle of a GOP ([`FrameGate::resume`]): its decoder is given the GOP
//! again from its key frame, the rest of the GOP is decoded, and the analysis starts at the
//! frame that woke it.

use super::*;

#[test]
fn a_camera_woken_mid_gop_decodes_the_rest_of_it_and_analyses_from_the_waking_frame() {
    // 10 fps, a key frame every 4 s, asking 4 fps; idle (0.5 fps) from the start.
    let t = |i: u64| i * S / 10;
    let frames = plain(160, 40);
    let mut gate = FrameGate::new(Decode::Auto, 4);
    gate.set_limit(Some(0.5));
    assert!(gate.resumable());
    let mut analysed = Vec::new();
    for f in &frames[..105] {
        if gate.admit(f.key, t(f.index)) == Verdict::Decode && gate.take(Some(t(f.index))) {
            analysed.push(f.index);
        }
    }
    let idle: Vec<u64> = analysed.iter().copied().filter(|i| *i >= 80).collect();
    assert_eq!(idle, [80, 100], "idle: one frame every 2 s, {analysed:?}");
    // Frame 105 wakes it: the GOP from frame 80 is given again, none of it analysed.
    gate.set_limit(None);
    gate.resume(t(105));
    assert!(
        (80..105).all(|i| !gate.take(Some(t(i)))),
        "replayed frames analysed"
    );
    let mut decoded = Vec::new();
    analysed.clear();
    for f in &frames[105..] {
        if gate.admit(f.key, t(f.index)) == Verdict::Decode {
            decoded.push(f.index);
            if gate.take(Some(t(f.index))) {
                analysed.push(f.index);
            }
        }
    }
    assert_eq!(
        in_gop(&decoded, 80, 40),
        (25..40).collect::<Vec<_>>(),
        "the rest of the GOP decoded"
    );
    assert_eq!(
        analysed.first(),
        Some(&105),
        "analysed from the waking frame"
    );
    // Every 250 ms from the waking frame (frames are 100 ms apart: 2 and 3 frames in turn),
    // on through the next GOP, planned for 4 fps from its key frame (120).
    let expect: Vec<u64> = (0..22).map(|i| 105 + i * 5 / 2).collect();
    assert_eq!(analysed, expect, "analysed from the waking frame at 4 fps");
}

#[test]
fn key_frames_only_is_not_resumed_b_frames_are() {
    assert!(!FrameGate::new(Decode::Keyframes, 4).resumable());
    let mut gate = FrameGate::new(Decode::Auto, 4);
    for f in with_b_frames(30, 10, 2, false) {
        gate.admit(f.key, f.index * S / 10);
    }
    assert!(gate.reordered() && gate.resumable());
}
