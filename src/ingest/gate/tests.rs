use super::*;

const S: u64 = 1_000_000_000;

/// A frame of a stream: presentation index and key-frame flag, in decode order.
#[derive(Debug, Clone, Copy)]
struct Coded {
    index: u64,
    key: bool,
}

/// Decode order of frames `0..n` with key frames where `key` says and `b` B-frames between
/// reference frames: each reference frame, then the B-frames between it and the one before.
/// A closed GOP ends on a reference frame; in an open one the next GOP's leading B-frames
/// (sent after its key frame) reference the previous GOP's last one.
fn coded(n: u64, b: u64, open: bool, key: impl Fn(u64) -> bool) -> Vec<Coded> {
    let mut out = vec![Coded {
        index: 0,
        key: true,
    }];
    let mut prev = 0;
    while prev + 1 < n {
        let next_key = (prev + 1..n).find(|&i| key(i)).unwrap_or(n);
        let mut anchor = (prev + b + 1).min(n - 1);
        if next_key < n {
            anchor = if open || prev + 1 == next_key {
                anchor.min(next_key)
            } else {
                anchor.min(next_key - 1)
            };
        }
        out.push(Coded {
            index: anchor,
            key: key(anchor),
        });
        out.extend(((prev + 1)..anchor).map(|index| Coded { index, key: false }));
        prev = anchor;
    }
    out
}

/// No B-frames.
fn plain(n: u64, gop: u64) -> Vec<Coded> {
    coded(n, 0, false, |i| i % gop == 0)
}

/// `b` B-frames between references, a key frame every `gop`.
fn with_b_frames(n: u64, gop: u64, b: u64, open: bool) -> Vec<Coded> {
    coded(n, b, open, |i| i % gop == 0)
}

/// What happened to the frames of a stream at `fps` through a gate and a decoder that holds
/// `delay` frames to put them back in presentation order.
#[derive(Debug, Default)]
struct Outcome {
    decoded: Vec<u64>,
    analysed: Vec<u64>,
    /// Decoded frames whose references were not all decoded.
    broken: Vec<u64>,
    /// Frames shed (decoding behind).
    shed: Vec<u64>,
    /// Frames not decoded as damaged (packets lost before them).
    damaged: Vec<u64>,
}

fn run(gate: &mut FrameGate, frames: &[Coded], fps: u64, delay: usize) -> Outcome {
    run_behind(gate, frames, fps, delay, |_| Backlog::Keeping)
}

/// [`run`] with the decoder's backlog told before each frame (by its presentation index).
fn run_behind(
    gate: &mut FrameGate,
    frames: &[Coded],
    fps: u64,
    delay: usize,
    backlog: impl Fn(u64) -> Backlog,
) -> Outcome {
    run_each(gate, frames, fps, delay, |gate, f| {
        gate.set_backlog(backlog(f.index))
    })
}

/// [`run`] with `before` called on the gate before each frame goes in.
fn run_each(
    gate: &mut FrameGate,
    frames: &[Coded],
    fps: u64,
    delay: usize,
    mut before: impl FnMut(&mut FrameGate, &Coded),
) -> Outcome {
    let t = |i: u64| i * S / fps;
    let mut out = Outcome::default();
    let mut held: Vec<u64> = Vec::new();
    let mut have: std::collections::BTreeSet<u64> = Default::default();
    let release = |gate: &mut FrameGate, held: &mut Vec<u64>, all: bool, out: &mut Outcome| {
        held.sort_unstable();
        while held.len() > if all { 0 } else { delay } {
            let i = held.remove(0);
            if gate.take(Some(t(i))) {
                out.analysed.push(i);
            }
        }
    };
    for (pos, f) in frames.iter().enumerate() {
        before(gate, f);
        let verdict = gate.admit(f.key, t(f.index));
        match verdict {
            Verdict::Shed => out.shed.push(f.index),
            Verdict::Damaged => out.damaged.push(f.index),
            _ => {}
        }
        if verdict == Verdict::Decode {
            // A delta frame needs every frame sent since its key frame, and a leading B-frame
            // (earlier than its key frame) also the previous GOP.
            let key = frames[..=pos].iter().rposition(|g| g.key).unwrap_or(0);
            let prev = frames[..key].iter().rposition(|g| g.key).unwrap_or(0);
            let leading = f.index < frames[key].index;
            // A key frame is a random-access point: nothing shown after it refers to a frame
            // shown before it, so leading B-frames are referenced by nothing after their key
            // frame, the next GOP's leading frames included.
            let all_had = |r: &[Coded], key: u64, skip_leading: bool| {
                r.iter()
                    .all(|g| have.contains(&g.index) || (skip_leading && g.index < key))
            };
            let (this_key, prev_key) = (frames[key].index, frames[prev].index);
            if !f.key
                && !(all_had(&frames[key..pos], this_key, !leading)
                    && (!leading || all_had(&frames[prev..key], prev_key, true)))
            {
                out.broken.push(f.index);
            }
            have.insert(f.index);
            out.decoded.push(f.index);
            held.push(f.index);
            release(gate, &mut held, false, &mut out);
        }
    }
    release(gate, &mut held, true, &mut out);
    out
}

/// The frames sent from position `from` up to `to` (decode order) that `decoded` holds, in
/// presentation order.
fn decoded_among(frames: &[Coded], from: usize, to: usize, decoded: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = frames[from..to]
        .iter()
        .map(|f| f.index)
        .filter(|i| decoded.contains(i))
        .collect();
    out.sort_unstable();
    out
}

/// Time between consecutive analysed frames, ms.
fn gaps_ms(analysed: &[u64], fps: u64) -> Vec<u64> {
    analysed
        .windows(2)
        .map(|w| (w[1] - w[0]) * 1000 / fps)
        .collect()
}

/// Positions within the GOP starting at frame `start`.
fn in_gop(frames: &[u64], start: u64, gop: u64) -> Vec<u64> {
    frames
        .iter()
        .filter(|&&i| (start..start + gop).contains(&i))
        .map(|i| i - start)
        .collect()
}

#[test]
fn b_frames_are_analysed_in_presentation_order_evenly() {
    // The case of the issue: 10 fps, a key frame a second, 3 B-frames, open and closed GOPs.
    for open in [true, false] {
        let frames = with_b_frames(200, 12, 3, open);
        let mut every = FrameGate::new(Decode::Auto, 10);
        let o = run(&mut every, &frames, 10, 3);
        assert_eq!(o.analysed, (0..200).collect::<Vec<_>>(), "open {open}");
        assert!(every.reordered());
        let mut half = FrameGate::new(Decode::Auto, 5);
        let o = run(&mut half, &frames, 10, 3);
        assert_eq!(
            o.decoded.len(),
            200,
            "a 1.2 s GOP is not a whole number of intervals"
        );
        assert_eq!(o.analysed.len(), 100, "open {open}");
        assert!(
            gaps_ms(&o.analysed, 10).iter().all(|&g| g == 200),
            "open {open}"
        );
    }
}

#[test]
fn decode_order_timestamps_going_back_and_forth_are_not_gaps() {
    // I P B B P B B at 25 fps analysed at 10: 2 frames then 3, never a burst or a hole.
    let frames = with_b_frames(500, 50, 2, false);
    let mut gate = FrameGate::new(Decode::Auto, 10);
    let o = run(&mut gate, &frames, 25, 2);
    assert_eq!(o.analysed.len(), 200);
    // A reference frame comes 2 frames ahead of the B-frame after it: 80 ms of reordering.
    assert_eq!(gate.reorder_ns(), 2 * S / 25);
    assert!(
        gaps_ms(&o.analysed, 25)
            .iter()
            .all(|g| (80..=120).contains(g))
    );
}

#[test]
fn rates_that_do_not_divide_the_camera_rate_are_kept_exactly() {
    for (fps, detect, b) in [
        (15, 10, 0),
        (30, 10, 2),
        (25, 10, 0),
        (15, 4, 3),
        (30, 7, 0),
    ] {
        let n = fps * 20;
        let frames = with_b_frames(n, fps * 2, b, true);
        let mut gate = FrameGate::new(Decode::Auto, detect as u32);
        let o = run(&mut gate, &frames, fps, b as usize);
        let want = (detect * 20) as f64;
        let got = o.analysed.len() as f64;
        assert!(
            (got - want).abs() <= 1.0,
            "{fps} fps at {detect}: {got} analysed"
        );
        let interval = 1000 / detect;
        let max = gaps_ms(&o.analysed, fps).into_iter().max().unwrap();
        assert!(
            max * 2 <= interval * 3,
            "{fps} fps at {detect}: gap {max} ms"
        );
    }
}

#[test]
fn a_camera_slower_than_detect_fps_has_every_frame_analysed() {
    // A smart codec: 10 fps while something moves, 2 fps on a still scene, analysed at 5 fps.
    let kept: Vec<u64> = (0..160)
        .filter(|i| (i / 40) % 2 == 0 || i % 5 == 0)
        .collect();
    let frames: Vec<Coded> = kept
        .iter()
        .map(|&index| Coded {
            index,
            key: index % 20 == 0,
        })
        .collect();
    let mut gate = FrameGate::new(Decode::Auto, 5);
    let o = run(&mut gate, &frames, 10, 0);
    let moving = o.analysed.iter().filter(|i| (*i / 40) % 2 == 0).count();
    let still = o.analysed.len() - moving;
    assert_eq!(
        (moving, still),
        (40, 16),
        "5 fps while moving, all 2 fps when still"
    );
}

#[test]
fn a_smart_codec_slowing_down_mid_gop_loses_no_frame_to_gop_limited_decoding() {
    // 10 fps with a key frame every 20 frames (2 s while moving, 10 s when still), analysed
    // at 5 fps: five steady GOPs make the gate cut GOPs after their 10th analysed frame, then
    // the scene goes still (2 fps) for 4 s in the middle of a GOP, and moves again.
    let kept: Vec<u64> = (0..300)
        .filter(|i| !(100..140).contains(i) || i % 5 == 0)
        .collect();
    let frames: Vec<Coded> = kept
        .iter()
        .enumerate()
        .map(|(n, &index)| Coded {
            index,
            key: n % 20 == 0,
        })
        .collect();
    let mut gate = FrameGate::new(Decode::Auto, 5);
    let o = run(&mut gate, &frames, 10, 0);
    let want: Vec<u64> = kept
        .iter()
        .copied()
        .filter(|i| (100..140).contains(i) || i % 2 == 0)
        .collect();
    assert_eq!(o.analysed, want, "every slot with a frame analysed");
    assert!(
        o.decoded.len() < kept.len(),
        "GOPs are still cut while steady"
    );
}

#[test]
fn one_fps_with_a_key_frame_a_second_decodes_key_frames_only() {
    for frames in [plain(50, 10), with_b_frames(50, 10, 3, false)] {
        let mut gate = FrameGate::new(Decode::Auto, 1);
        let o = run(&mut gate, &frames, 10, 3);
        // The first GOP decodes every frame (the key-frame rate is known from the second).
        assert_eq!(o.decoded.len(), 14);
        assert_eq!(&o.decoded[10..], &[10, 20, 30, 40]);
        assert_eq!(o.analysed, vec![0, 10, 20, 30, 40]);
        assert_eq!(gate.plan(), Plan::Aligned(1));
        assert!((gate.key_rate().unwrap() - 1.0).abs() < 1e-9);
        assert!(o.broken.is_empty());
    }
}

#[test]
fn a_gop_of_whole_detection_intervals_decodes_up_to_its_last_analysed_frame() {
    for (fps, positions, decoded) in [
        (2, vec![0, 5], 6),
        (3, vec![0, 3, 7], 8),
        (5, vec![0, 2, 4, 6, 8], 9),
    ] {
        let mut gate = FrameGate::new(Decode::Auto, fps);
        let o = run(&mut gate, &plain(60, 10), 10, 0);
        assert_eq!(gate.plan(), Plan::Aligned(fps), "detect_fps {fps}");
        for start in [30, 40, 50] {
            assert_eq!(
                in_gop(&o.analysed, start, 10),
                positions,
                "detect_fps {fps}"
            );
            assert_eq!(
                in_gop(&o.decoded, start, 10),
                (0..decoded).collect::<Vec<_>>()
            );
        }
    }
    // A 2 s GOP at 25 fps analysed at 1 fps: frames 0 and 25 of 50, 24 of 50 not decoded.
    let mut gate = FrameGate::new(Decode::Auto, 1);
    let o = run(&mut gate, &plain(300, 50), 25, 0);
    assert_eq!(gate.plan(), Plan::Aligned(2));
    assert_eq!(in_gop(&o.analysed, 200, 50), vec![0, 25]);
    assert_eq!(in_gop(&o.decoded, 200, 50).len(), 26);
}

#[test]
fn b_frames_are_cut_to_key_frames_only_never_between() {
    // 2 fps with a key frame a second and B-frames: every frame decoded (a GOP's tail is
    // referenced by frames sent before it); the analysed frames still 500 ms apart.
    let frames = with_b_frames(60, 10, 3, true);
    let mut gate = FrameGate::new(Decode::Auto, 2);
    let o = run(&mut gate, &frames, 10, 3);
    assert_eq!(gate.plan(), Plan::Every);
    assert_eq!(o.decoded.len(), 60);
    assert!(gaps_ms(&o.analysed, 10).iter().all(|&g| g == 500));
}

#[test]
fn after_key_frames_only_an_open_gop_s_leading_frames_are_not_decoded() {
    // Key frames only at 1 fps, then the camera's GOP grows to 1.4 s: the first GOP decoded
    // whole again starts with B-frames that reference the skipped tail before it.
    let frames = coded(120, 1, true, |i| {
        if i <= 60 {
            i % 10 == 0
        } else {
            (i - 60) % 14 == 0
        }
    });
    let mut gate = FrameGate::new(Decode::Auto, 1);
    let o = run(&mut gate, &frames, 10, 1);
    assert!(
        o.broken.is_empty(),
        "decoded without references: {:?}",
        o.broken
    );
    assert!(
        !o.decoded.contains(&73),
        "the leading B-frame of the 1.4 s GOP at 74"
    );
    assert!(o.decoded.contains(&75), "then whole GOPs again");
}

#[test]
fn key_frames_faster_than_detect_fps_decode_only_those_analysed() {
    // Two key frames a second at 1 fps: every other key frame, the others not decoded.
    for frames in [plain(100, 5), with_b_frames(100, 5, 1, false)] {
        let mut gate = FrameGate::new(Decode::Auto, 1);
        let o = run(&mut gate, &frames, 10, 1);
        assert_eq!(gate.plan(), Plan::KeyOnly);
        // From the second key frame (5) on, a plan: its grid keeps the slots of the frames
        // analysed before it (5 is skipped, 10 analysed a second after 0).
        assert_eq!(o.analysed, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
        assert_eq!(in_gop(&o.decoded, 50, 50), vec![0, 10, 20, 30, 40]);
        assert_eq!(in_gop(&o.analysed, 50, 50), vec![0, 10, 20, 30, 40]);
    }
}

#[test]
fn a_gop_that_grows_or_shrinks_is_planned_for_the_longest_recent_one() {
    let mut gate = FrameGate::new(Decode::Auto, 1);
    run(&mut gate, &plain(40, 10), 10, 0);
    assert_eq!(gate.plan(), Plan::Aligned(1));
    // From frame 40 the camera sends a key frame every 4 s: frames 41..80 still follow the
    // old plan (cut after the key frame: no gap in the frames told it the GOP grew), and from
    // the next key frame each GOP decodes up to its 4th analysed frame.
    let frames: Vec<Coded> = plain(240, 40).into_iter().skip(40).collect();
    let o = run(&mut gate, &frames, 10, 0);
    assert_eq!(in_gop(&o.decoded, 40, 40), vec![0]);
    for gop in [80, 120, 160, 200] {
        assert_eq!(in_gop(&o.decoded, gop, 40), (0..=30).collect::<Vec<_>>());
        assert_eq!(in_gop(&o.analysed, gop, 40), vec![0, 10, 20, 30]);
    }
    assert_eq!(gate.plan(), Plan::Aligned(4));
    // A short GOP among 1 s ones (a key frame the camera inserted, a recording's loop) is
    // planned for 1 s: it ends early, nothing of it decoded in vain, and the GOPs after it
    // stay key frames only.
    let mut keys: Vec<u64> = (0..=100).step_by(10).collect();
    keys.insert(6, 55);
    let frames = coded(100, 0, false, |i| keys.contains(&i));
    let mut gate = FrameGate::new(Decode::Auto, 1);
    let o = run(&mut gate, &frames, 10, 0);
    let late: Vec<u64> = o.decoded.into_iter().filter(|&i| i >= 30).collect();
    assert_eq!(late, vec![30, 40, 50, 55, 60, 70, 80, 90]);
    assert_eq!(o.analysed.iter().filter(|&&i| i >= 30).count(), late.len());
}

#[test]
fn fixed_modes_and_restarted_timestamps() {
    let mut all = FrameGate::new(Decode::All, 1);
    let o = run(&mut all, &plain(40, 10), 10, 0);
    assert_eq!(
        (o.decoded.len(), o.analysed, all.plan()),
        (40, vec![0, 10, 20, 30], Plan::Every)
    );
    let mut keys = FrameGate::new(Decode::Keyframes, 10);
    let o = run(&mut keys, &plain(40, 10), 10, 0);
    assert_eq!(o.decoded, vec![0, 10, 20, 30]);
    let mut auto = FrameGate::new(Decode::Auto, 1);
    run(&mut auto, &plain(40, 10), 10, 0);
    auto.admit(true, 0); // a timestamp from the past: the rate is measured again
    assert_eq!(auto.key_rate(), None);
    assert_eq!(auto.reorder_ns(), 0, "a restart is not B-frame reordering");
    assert_eq!(auto.plan(), Plan::Every);
}

#[test]
fn the_grid_restarts_after_a_gap_instead_of_catching_up() {
    let mut gate = FrameGate::new(Decode::All, 5);
    // 10 fps, then nothing for 3 s, then 10 fps again: no burst of catch-up picks.
    let times: Vec<u64> = (0..10).chain(40..50).collect();
    let picked: Vec<u64> = times
        .iter()
        .filter(|&&i| {
            gate.admit(i == 0, i * S / 10);
            gate.take(Some(i * S / 10))
        })
        .copied()
        .collect();
    assert_eq!(picked, vec![0, 2, 4, 6, 8, 40, 42, 44, 46, 48]);
    assert!(gate.take(None), "a frame without a timestamp is analysed");
}

#[test]
fn slots_count_what_could_be_analysed_whatever_the_order() {
    // 25 fps at 10: ten slots a second; B-frames reorder within a slot and across.
    let mut gate = FrameGate::new(Decode::Auto, 10);
    let slots = with_b_frames(250, 50, 3, true)
        .iter()
        .filter(|f| gate.new_slot(f.index * S / 25))
        .count();
    assert_eq!(slots, 100);
    // A 2 fps camera at 10: every frame.
    let mut gate = FrameGate::new(Decode::Auto, 10);
    assert_eq!((0..20).filter(|i| gate.new_slot(i * S / 2)).count(), 20);
    let mut all = FrameGate::new(Decode::All, 0);
    assert!(all.new_slot(0) && all.new_slot(0));
}

#[test]
fn parses_and_prints() {
    for m in [Decode::All, Decode::Keyframes, Decode::Auto] {
        assert_eq!(m.to_string().parse::<Decode>(), Ok(m));
    }
    assert!(
        "every"
            .parse::<Decode>()
            .unwrap_err()
            .contains("\"keyframes\"")
    );
}

mod behind;
mod damage;
mod every;
mod limited;
mod resume;
mod switch;
