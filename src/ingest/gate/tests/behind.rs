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
    let far = |i: u64| {
        if (34..=36).contains(&i) {
            Backlog::Far
        } else {
            Backlog::Keeping
        }
    };
    let o = run_behind(&mut FrameGate::new(Decode::Auto, 2), &frames, 10, 3, far);
    let kept = run(&mut FrameGate::new(Decode::Auto, 2), &frames, 10, 3);
    assert!(o.broken.is_empty(), "{:?}", o.broken);
    // Shed: what the gate keeping up decoded from the first far-behind frame (decode order) up
    // to the next key frame.
    let pos = |i: u64| frames.iter().position(|f| f.index == i).unwrap();
    let (cut, next_key) = (pos(34).min(pos(35)).min(pos(36)), pos(40));
    let expected = decoded_among(&frames, cut, next_key, &kept.decoded);
    let mut shed = o.shed.clone();
    shed.sort_unstable();
    assert_eq!(shed, expected);
    // The next GOP's leading frames (sent after its key frame, earlier than it) refer to the
    // cut GOP's tail: skipped, neither decoded nor shed. Only those: the GOPs after it are
    // decoded as when keeping up, their leading frames included.
    // (Each open GOP's leading frame is the one before its key frame: 39, 49, 59, 69.)
    let next_leading = frames[next_key + 1].index;
    assert_eq!(next_leading, 39);
    assert!([49, 59, 69].iter().all(|i| o.decoded.contains(i)));
    let mut rest: Vec<u64> = kept
        .decoded
        .iter()
        .copied()
        .filter(|i| !expected.contains(i) && *i != next_leading)
        .collect();
    rest.sort_unstable();
    let mut decoded = o.decoded.clone();
    decoded.sort_unstable();
    assert_eq!(decoded, rest);
}

#[test]
fn a_gop_given_no_frame_is_skipped_not_shed() {
    // A camera held to 0.5 fps of a 1 s GOP: every other GOP is given no analysed frame.
    let limited = || {
        let mut gate = FrameGate::new(Decode::Auto, 5);
        gate.set_limit(Some(0.5));
        gate
    };
    let o = run_behind(&mut limited(), &plain(100, 10), 10, 0, |_| Backlog::Far);
    let kept = run(&mut limited(), &plain(100, 10), 10, 0);
    assert!(o.decoded.is_empty());
    // Shed: exactly what the gate keeping up decoded (the GOPs measured whole at first, then
    // the key frames of the GOPs given a frame); the GOPs given none are skipped.
    assert_eq!(o.shed, kept.decoded);
    assert!(
        kept.decoded
            .iter()
            .filter(|&&i| i >= 50)
            .all(|i| i % 10 == 0)
    );
    assert!(kept.decoded.iter().filter(|&&i| i >= 50).count() < 5);
}
