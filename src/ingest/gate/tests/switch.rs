//! The output grid changes with the plan at the key frame the new plan starts at, also while a
//! decoder that reorders (B-frames) still holds frames from before it.

use super::*;

#[test]
fn a_b_frame_camera_woken_at_a_key_frame_is_analysed_at_full_rate_from_it() {
    // 10 fps, B-frames, a key frame every 2 s, asking 4 fps; idle (0.5 fps) until key frame 60.
    let frames = with_b_frames(120, 20, 2, false);
    let mut gate = FrameGate::new(Decode::Auto, 4);
    let o = run_each(&mut gate, &frames, 10, 3, |gate, f| {
        gate.set_limit((f.index < 60).then_some(0.5));
    });
    assert!(o.broken.is_empty(), "references skipped: {:?}", o.broken);
    let idle: Vec<u64> = o.analysed.iter().copied().filter(|&i| i < 60).collect();
    assert_eq!(idle, [0, 20, 40], "idle: one frame every 2 s");
    let woken: Vec<u64> = o.analysed.iter().copied().filter(|&i| i >= 60).collect();
    let every_250_ms: Vec<u64> = (0..24).map(|i| 60 + i * 5 / 2).collect();
    assert_eq!(woken, every_250_ms, "4 fps from the key frame it woke at");
}
