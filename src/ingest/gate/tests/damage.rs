//! Packets lost before the decoder ([`FrameGate::packets_lost`]): the frames they damage are
//! not decoded, up to a key frame that lost none, and no frame decoded refers to one not
//! decoded.

use super::*;

const FPS: u64 = 10;

fn t(i: u64) -> u64 {
    i * S / FPS
}

/// [`run`] with a loss told before the frames named (by presentation index) go in.
fn run_lossy(
    gate: &mut FrameGate,
    frames: &[Coded],
    delay: usize,
    losses: &[(u64, Gap)],
) -> Outcome {
    run_each(gate, frames, FPS, delay, |gate, f| {
        for (_, gap) in losses.iter().filter(|(i, _)| *i == f.index) {
            gate.packets_lost(*gap);
        }
    })
}

fn after(i: u64) -> Gap {
    Gap {
        open_before: None,
        after: Some(t(i)),
    }
}

#[test]
fn a_loss_mid_gop_stops_decoding_until_the_next_key_frame() {
    // 5 fps of a 10 fps camera with a key frame a second: frames 0-8 of each GOP decoded; a
    // packet of frame 23 lost.
    let mut gate = FrameGate::new(Decode::Auto, 5);
    let o = run_lossy(&mut gate, &plain(60, 10), 0, &[(23, after(23))]);
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    assert_eq!(o.damaged, (23..=28).collect::<Vec<_>>());
    assert_eq!(in_gop(&o.decoded, 20, 10), vec![0, 1, 2]);
    assert_eq!(in_gop(&o.analysed, 20, 10), vec![0, 2]);
    // The next key frame lost nothing: its GOP as planned.
    assert_eq!(in_gop(&o.decoded, 30, 10), (0..9).collect::<Vec<_>>());
    assert_eq!(in_gop(&o.analysed, 30, 10), vec![0, 2, 4, 6, 8]);
    assert!(!gate.damaged());
}

#[test]
fn a_key_frame_that_lost_packets_is_not_decoded_with_its_gop() {
    // The gap's packet after it is key frame 30's; then a gap whose packet before it did not
    // end frame 49 (its last packets lost), the packet after it key frame 50's first.
    let losses = [
        (30, after(30)),
        (
            50,
            Gap {
                open_before: Some(t(49)),
                after: Some(t(50)),
            },
        ),
    ];
    let o = run_lossy(
        &mut FrameGate::new(Decode::Auto, 5),
        &plain(80, 10),
        0,
        &losses,
    );
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    assert!(in_gop(&o.decoded, 30, 10).is_empty());
    assert_eq!(in_gop(&o.damaged, 30, 10), (0..9).collect::<Vec<_>>());
    assert_eq!(in_gop(&o.decoded, 40, 10), (0..9).collect::<Vec<_>>());
    // Frame 49 was never to be decoded (after the GOP's last analysed frame); key frame 50
    // carries the time of the packet after the gap: taken as damaged, its GOP with it.
    assert!(in_gop(&o.decoded, 50, 10).is_empty());
    assert_eq!(in_gop(&o.decoded, 60, 10), (0..9).collect::<Vec<_>>());
}

#[test]
fn a_loss_in_frames_not_decoded_costs_no_key_frame() {
    // 1 fps with a key frame a second: key frames only; packets of delta frames 25 and 26
    // lost. The next key frame lost none: decoded as planned.
    let losses = [(25, after(25)), (26, after(26))];
    let plain_run = run(&mut FrameGate::new(Decode::Auto, 1), &plain(60, 10), FPS, 0);
    let o = run_lossy(
        &mut FrameGate::new(Decode::Auto, 1),
        &plain(60, 10),
        0,
        &losses,
    );
    assert!(o.damaged.is_empty(), "{:?}", o.damaged);
    assert_eq!(o.decoded, plain_run.decoded);
    assert!(o.decoded.contains(&30));
}

#[test]
fn a_loss_without_times_damages_the_next_frame_and_on() {
    let o = run_lossy(
        &mut FrameGate::new(Decode::Auto, 5),
        &plain(60, 10),
        0,
        &[(24, Gap::default()), (40, Gap::default())],
    );
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    assert_eq!(o.damaged[..5], [24, 25, 26, 27, 28]);
    // The first frame after the second loss is a key frame: taken as damaged, its GOP too.
    assert!(in_gop(&o.decoded, 40, 10).is_empty());
    assert_eq!(in_gop(&o.decoded, 50, 10), (0..9).collect::<Vec<_>>());
}

#[test]
fn a_loss_in_an_open_b_frame_gop_breaks_no_reference() {
    // Every frame decoded at 2 fps with B-frames in open GOPs; a packet of frame 35 lost.
    let frames = with_b_frames(80, 10, 3, true);
    let kept = run(&mut FrameGate::new(Decode::Auto, 2), &frames, FPS, 3);
    let o = run_lossy(
        &mut FrameGate::new(Decode::Auto, 2),
        &frames,
        3,
        &[(35, after(35))],
    );
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    // Damaged: what was to be decoded from frame 35 (decode order) up to key frame 40.
    let pos = |i: u64| frames.iter().position(|f| f.index == i).unwrap();
    let expected = decoded_among(&frames, pos(35), pos(40), &kept.decoded);
    let mut damaged = o.damaged.clone();
    damaged.sort_unstable();
    assert_eq!(damaged, expected);
    // GOP 4's leading frame (39, sent after key frame 40) refers to the damaged GOP: skipped;
    // the GOPs after it are decoded as without the loss.
    assert!(!o.decoded.contains(&39));
    assert!([49, 59, 69].iter().all(|i| o.decoded.contains(i)));
    assert!(o.analysed.iter().any(|&i| i >= 40));
}
