//! Shedding while the decoder lags its stream ([`Backlog`]): whole GOPs, or the rest of one,
//! never a frame whose references were decoded without it.

use super::*;

#[test]
fn behind_sheds_the_next_gop_whole_and_far_behind_cuts_the_current_one() {
    // 5 fps of a 10 fps camera with a key frame a second: frames 0-8 of each GOP decoded.
    let backlog = |i: u64| match i {
        30..=32 => Backlog::Behind, // from GOP 3's key frame: GOP 3 shed whole
        44 => Backlog::Behind,      // mid-GOP: GOP 4 goes on
        53 => Backlog::Far,         // GOP 5 cut from frame 3 on
        _ => Backlog::Keeping,
    };
    let mut gate = FrameGate::new(Decode::Auto, 5);
    let o = run_behind(&mut gate, &plain(80, 10), 10, 0, backlog);
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    assert_eq!(in_gop(&o.decoded, 20, 10), (0..9).collect::<Vec<_>>());
    assert!(in_gop(&o.decoded, 30, 10).is_empty());
    // Shed: only what the plan would have decoded (frame 9 of each GOP was never to be).
    assert_eq!(in_gop(&o.shed, 30, 10), (0..9).collect::<Vec<_>>());
    assert_eq!(in_gop(&o.decoded, 40, 10), (0..9).collect::<Vec<_>>());
    assert_eq!(in_gop(&o.analysed, 40, 10), vec![0, 2, 4, 6, 8]);
    assert_eq!(in_gop(&o.decoded, 50, 10), vec![0, 1, 2]);
    assert_eq!(in_gop(&o.shed, 50, 10), (3..9).collect::<Vec<_>>());
    assert_eq!(in_gop(&o.analysed, 50, 10), vec![0, 2]);
    // Keeping up again: the next GOPs as planned, the output grid back on their key frames.
    assert_eq!(in_gop(&o.analysed, 60, 10), vec![0, 2, 4, 6, 8]);
    assert_eq!(o.shed.len(), 9 + 6);
}

#[test]
fn far_behind_cuts_a_b_frame_gop_without_breaking_a_reference() {
    // Every frame decoded at 2 fps with B-frames in open GOPs; far behind from frame 34 to 36.
    let frames = with_b_frames(80, 10, 3, true);
    let mut gate = FrameGate::new(Decode::Auto, 2);
    let far = |i: u64| {
        if (34..=36).contains(&i) {
            Backlog::Far
        } else {
            Backlog::Keeping
        }
    };
    let o = run_behind(&mut gate, &frames, 10, 3, far);
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    assert!(!o.shed.is_empty());
    assert!(o.decoded.contains(&50) && o.decoded.contains(&70));
    // Nothing decoded between the cut and the next key frame (the open GOP's leading frames
    // referring to the cut tail are skipped, not shed: nothing would decode them right).
    let cut = o.shed.iter().min().copied().unwrap();
    assert!(o.decoded.iter().all(|&i| !(cut..40).contains(&i)));
}

#[test]
fn a_gop_given_no_frame_is_skipped_not_shed() {
    // A camera held to 0.5 fps of a 1 s GOP: every other GOP is given no analysed frame.
    let mut gate = FrameGate::new(Decode::Auto, 5);
    gate.set_limit(Some(0.5));
    let o = run_behind(&mut gate, &plain(100, 10), 10, 0, |_| Backlog::Far);
    assert!(o.decoded.is_empty());
    // Only the key frames a plan would have decoded count as shed: once the GOP is measured,
    // one key frame in two.
    let late: Vec<u64> = o.shed.iter().copied().filter(|&i| i >= 50).collect();
    assert!((2..=3).contains(&late.len()), "{:?}", o.shed);
    assert!(late.iter().all(|i| i % 10 == 0), "{late:?}");
}
