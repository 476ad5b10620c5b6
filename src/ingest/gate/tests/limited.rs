//! A camera held below its `detect_fps` (its fair share, its idle rate): whole frames per GOP,
//! the fraction carried, GOPs given none skipped, never a whole GOP decoded for one frame.

use super::*;

#[test]
fn a_limited_camera_analyses_whole_frames_per_gop_the_fraction_carried_and_skips_gops() {
    // 10 fps, a key frame a second, asking 5 fps; limited to 1.5 fps from the start (the
    // limit applies once the GOP is known, from the second key frame on).
    let frames = plain(100, 10);
    let mut gate = FrameGate::new(Decode::Auto, 5);
    gate.set_limit(Some(1.5));
    let o = run(&mut gate, &frames, 10, 1);
    assert!(o.broken.is_empty(), "broken: {:?}", o.broken);
    let per_gop: Vec<usize> = (3..10)
        .map(|g| in_gop(&o.analysed, g * 10, 10).len())
        .collect();
    let total = per_gop.iter().sum::<usize>();
    assert!((10..=11).contains(&total), "1.5 a GOP: {per_gop:?}");
    assert!(per_gop.iter().all(|k| (1..=2).contains(k)), "{per_gop:?}");
    // Two in a GOP are half a GOP apart, decoded up to the second (0-5).
    for g in 3..10 {
        let a = in_gop(&o.analysed, g * 10, 10);
        let d = in_gop(&o.decoded, g * 10, 10);
        let expect: Vec<u64> = if a.len() == 2 {
            (0..=5).collect()
        } else {
            vec![0]
        };
        assert_eq!(
            (a.len() == 2, &d),
            (a.len() == 2, &expect),
            "GOP {g}: analysed {a:?}"
        );
        if a.len() == 2 {
            assert_eq!(a, vec![0, 5]);
        }
    }
    // Idle: 0.3 fps analyses one key frame in three or four GOPs, the others not decoded.
    let mut idle = FrameGate::new(Decode::Auto, 5);
    idle.set_limit(Some(0.3));
    let o = run(&mut idle, &plain(200, 10), 10, 1);
    let late: Vec<u64> = o.decoded.iter().copied().filter(|i| *i >= 30).collect();
    assert!(
        late.iter().all(|i| i.is_multiple_of(10)),
        "key frames only: {late:?}"
    );
    assert!(
        (5..=6).contains(&late.len()),
        "17 GOPs at 0.3 a GOP: {late:?}"
    );
    assert_eq!(o.analysed.iter().filter(|i| **i >= 30).count(), late.len());
    // Lifted: back to 5 fps at the next key frame.
    idle.set_limit(None);
    assert_eq!(idle.limit(), None);
}

#[test]
fn a_limited_camera_with_gops_of_changing_length_decodes_key_frames_only() {
    // 10 fps, GOPs of 8 and 12 frames in turn (a key frame every 0.8 or 1.2 s: not steady),
    // asking 5 fps and limited to 0.6 fps: 0.6 of a key frame a GOP (mean GOP 1 s), carried.
    let keys: Vec<u64> = (0..20)
        .scan(0, |k, g| {
            let at = *k;
            *k += if g % 2 == 0 { 8 } else { 12 };
            Some(at)
        })
        .collect();
    let frames = coded(200, 0, false, |i| keys.contains(&i));
    let mut gate = FrameGate::new(Decode::Auto, 5);
    gate.set_limit(Some(0.6));
    let o = run(&mut gate, &frames, 10, 1);
    assert!(o.broken.is_empty(), "broken: {:?}", o.broken);
    let late: Vec<u64> = o.decoded.iter().copied().filter(|i| *i >= 40).collect();
    assert!(
        late.iter().all(|i| keys.contains(i)),
        "key frames only: {late:?}"
    );
    // 16 GOPs from frame 40 (16 s) at 0.6 fps: 9 or 10 key frames, each analysed.
    assert!((9..=10).contains(&late.len()), "{late:?}");
    assert_eq!(o.analysed.iter().filter(|i| **i >= 40).count(), late.len());
    // A limit above the key-frame rate: about two frames a GOP (the mean GOP's share, the
    // fraction carried), each GOP decoded only up to its last analysed frame.
    let mut fast = FrameGate::new(Decode::Auto, 5);
    fast.set_limit(Some(2.0));
    let o = run(&mut fast, &frames, 10, 1);
    assert!(o.broken.is_empty(), "broken: {:?}", o.broken);
    let analysed = o.analysed.iter().filter(|i| **i >= 40).count();
    assert!((31..=33).contains(&analysed), "2 fps over 16 s: {analysed}");
    assert_eq!(decoded_past_last_analysed(&o, &keys, 40), Vec::<u64>::new());
}

/// Frames from `from` on decoded after the last analysed frame of their GOP (`keys`: the key
/// frames), which no analysed frame needed.
fn decoded_past_last_analysed(o: &Outcome, keys: &[u64], from: u64) -> Vec<u64> {
    let gop_of = |i: u64| keys.iter().rev().find(|&&k| k <= i).copied();
    o.decoded
        .iter()
        .copied()
        .filter(|&d| d >= from)
        .filter(|&d| !o.analysed.iter().any(|&a| a >= d && gop_of(a) == gop_of(d)))
        .collect()
}

#[test]
fn a_limited_camera_losing_frames_does_not_decode_whole_gops() {
    // 10 fps, a key frame a second, asking 5 fps, limited to 1 fps; a starved camera's queue
    // loses frames (here one in seven, key frames too): GOPs of changing length with gaps.
    let frames: Vec<Coded> = plain(300, 10)
        .into_iter()
        .filter(|f| f.index % 7 != 3)
        .collect();
    let mut gate = FrameGate::new(Decode::Auto, 5);
    gate.set_limit(Some(1.0));
    let o = run(&mut gate, &frames, 10, 1);
    assert!(o.broken.is_empty(), "broken: {:?}", o.broken);
    let keys: Vec<u64> = frames.iter().filter(|f| f.key).map(|f| f.index).collect();
    assert_eq!(decoded_past_last_analysed(&o, &keys, 50), Vec::<u64>::new());
    // About 1 fps over 25 s (a GOP lengthened by a lost key frame gets its share, 2 frames).
    let analysed = o.analysed.iter().filter(|i| **i >= 50).count();
    assert!((22..=27).contains(&analysed), "analysed {:?}", o.analysed);
    let decoded = o.decoded.iter().filter(|i| **i >= 50).count();
    assert!(decoded <= analysed + 20, "decoded {:?}", o.decoded);
}
