//! Tests of the stitcher: joins across cameras, hand-offs, same-camera conflicts, scripted
//! visits through fused bins.

use super::*;

fn run(events: &[(&str, u64, i64, f64, f64)], ends: &[(&str, u64, i64)]) -> Vec<Event> {
    let mut s = Stitcher::new(AnalyticsParams::default(), Vec::new());
    let mut out = Vec::new();
    let mut ends: Vec<_> = ends.to_vec();
    for &(cam, id, t, x, y) in events {
        while let Some(&(c, i, at)) = ends.first()
            && at <= t
        {
            s.track_ended(&Arc::from(c), i);
            ends.remove(0);
        }
        s.point(&Arc::from(cam), id, t, (x, y));
        out.extend(s.drain());
    }
    s.finish();
    out.extend(s.drain());
    out
}

fn members(ev: &[Event]) -> Vec<(u64, String, u64)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Member {
                store,
                camera,
                track_id,
                ..
            } => Some((*store, camera.to_string(), *track_id)),
            _ => None,
        })
        .collect()
}

/// Two people walk in parallel 3 m apart; both cameras see both for a while.
#[test]
fn overlapping_cameras_join_the_same_person_and_keep_others_apart() {
    let mut ev = Vec::new();
    for i in 0..80i64 {
        let t = 1_000 + i * 100;
        let x = i as f64 * 0.1;
        ev.push(("a", 1, t, x, 1.0));
        ev.push(("a", 2, t, x, 4.0));
        if i >= 30 {
            // Camera b sees both from 3 s on, with 0.3 m of calibration disagreement.
            ev.push(("b", 7, t + 40, x + 0.3, 4.1));
            ev.push(("b", 8, t + 40, x + 0.3, 1.1));
        }
    }
    let out = run(&ev, &[]);
    let m = members(&out);
    let store_of = |c: &str, id: u64| m.iter().find(|x| x.1 == c && x.2 == id).unwrap().0;
    assert_eq!(store_of("a", 1), store_of("b", 8));
    assert_eq!(store_of("a", 2), store_of("b", 7));
    assert_ne!(store_of("a", 1), store_of("a", 2));
    // Fused points: one per 200 ms bin, two cameras where both see the person.
    let pts: Vec<&StorePoint> = out
        .iter()
        .filter_map(|e| match e {
            Event::Point(p) if p.store == store_of("a", 1) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(pts.len(), 40);
    assert!(pts.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms));
    assert_eq!(pts.last().unwrap().cameras, 2);
    assert!((pts.last().unwrap().y - 1.05).abs() < 1e-9);
    assert_eq!(
        out.iter()
            .filter(|e| matches!(e, Event::Ended { .. }))
            .count(),
        2
    );
}

#[test]
fn handoff_across_a_gap_joins_and_a_far_start_does_not() {
    let mut ev = Vec::new();
    for i in 0..30i64 {
        ev.push(("a", 1, 1_000 + i * 100, i as f64 * 0.1, 1.0));
    }
    // Lost on a at 3.9 s (x = 2.9); b finds someone at x = 3.8 1 s later: walkable.
    for i in 0..30i64 {
        ev.push(("b", 5, 4_900 + i * 100, 3.8 + i as f64 * 0.1, 1.0));
    }
    // c finds someone 9 m away at the same time: someone else.
    for i in 0..30i64 {
        ev.push(("c", 9, 4_950 + i * 100, 12.0, 1.0));
    }
    ev.sort_by_key(|e| e.2);
    let m = members(&run(&ev, &[("a", 1, 4_000)]));
    assert_eq!(m.len(), 3);
    let store_of = |c: &str| m.iter().find(|x| x.1 == c).unwrap().0;
    assert_eq!(store_of("a"), store_of("b"));
    assert_ne!(store_of("a"), store_of("c"));
}

#[test]
fn same_camera_tracks_at_the_same_time_never_share_a_store_id() {
    let mut ev = Vec::new();
    for i in 0..40i64 {
        let t = 1_000 + i * 100;
        ev.push(("a", 1, t, 1.0, 1.0));
        ev.push(("a", 2, t, 1.2, 1.0)); // two people side by side
        ev.push(("b", 3, t + 30, 1.1, 1.0));
    }
    let m = members(&run(&ev, &[]));
    let store_of = |c: &str, id: u64| m.iter().find(|x| x.1 == c && x.2 == id).unwrap().0;
    assert_ne!(store_of("a", 1), store_of("a", 2));
}

/// A scripted walk seen by two cameras (the second 0.1 m and 30 ms off): after joining and
/// fusing, the visits are the scripted ones, each dwell within one bin of the script.
#[test]
fn scripted_walk_through_two_cameras_gives_the_scripted_visits() {
    let rect = |id: &str, x0: f64, x1: f64| Zone {
        id: Arc::from(id),
        name: id.into(),
        polygon: vec![(x0, 0.0), (x1, 0.0), (x1, 2.0), (x0, 2.0)],
    };
    let zones = vec![
        rect("door", 0.0, 2.0),
        rect("shelf", 5.0, 7.0),
        rect("till", 10.0, 12.0),
    ];
    let mut s = Stitcher::new(AnalyticsParams::default(), zones);
    // (x, seconds): stand at the door 4 s, walk to the shelf, stay 6 s, walk to the till.
    let legs = [(1.0, 4.0), (6.0, 6.0), (11.0, 5.0)];
    let (mut t, mut x, mut out) = (0i64, 1.0f64, Vec::new());
    for (target, stay) in legs {
        while (target - x).abs() > 1e-9 || t == 0 {
            x += (target - x).clamp(-0.1, 0.1); // 1 m/s
            s.point(&Arc::from("a"), 1, t, (x, 1.0));
            s.point(&Arc::from("b"), 2, t + 30, (x + 0.1, 1.0));
            t += 100;
        }
        for _ in 0..(stay * 10.0) as i64 {
            s.point(&Arc::from("a"), 1, t, (x, 1.0));
            s.point(&Arc::from("b"), 2, t + 30, (x + 0.1, 1.0));
            t += 100;
        }
        out.extend(s.drain());
    }
    s.finish();
    out.extend(s.drain());
    let stores: std::collections::BTreeSet<u64> = out
        .iter()
        .filter_map(|e| match e {
            Event::Member { store, .. } => Some(*store),
            _ => None,
        })
        .collect();
    assert_eq!(stores.len(), 1, "both cameras' tracks are one person");
    let visits: Vec<(String, Option<String>, i64)> = out
        .iter()
        .filter_map(|e| match e {
            Event::Visit { visit: v, .. } => Some((
                v.zone.to_string(),
                v.from_zone.as_ref().map(|z| z.to_string()),
                v.dwell_ms(),
            )),
            _ => None,
        })
        .collect();
    // Inside time from the script: door 0 .. 4.9 s (x ≤ 2 at 1 m/s after 4 s standing),
    // shelf from x = 5 to x = 7 through the 6 s stay, till from x = 10 to the end.
    let expected = [
        ("door", None, 4_900),
        ("shelf", Some("door"), 7_900),
        ("till", Some("shelf"), 5_900),
    ];
    assert_eq!(visits.len(), expected.len(), "{visits:?}");
    for ((zone, from, dwell), (ez, ef, ed)) in visits.iter().zip(expected) {
        assert_eq!((zone.as_str(), from.as_deref()), (ez, ef));
        assert!(
            (dwell - ed).abs() <= DEFAULT_BIN,
            "{zone}: dwell {dwell} vs {ed}"
        );
    }
}

const DEFAULT_BIN: i64 = crate::analytics::DEFAULT_BIN_MS;

/// P walks off at x = 5 and camera c loses them at 5 s; Q stands at x = 6.5, seen by camera b
/// from 4 s and by camera a from 6 s to 8 s (a short track, decided when it ends, while b's is still
/// undecided). Q's track on a belongs with b's, not with P who left 1.5 m away a second before.
#[test]
fn a_track_joins_another_camera_seeing_the_person_rather_than_a_handoff_from_someone_who_left() {
    let mut ev = Vec::new();
    for i in 0..=40i64 {
        ev.push(("c", 1, 1_000 + i * 100, 3.0 + i as f64 * 0.05, 1.0));
    }
    for i in 0..60i64 {
        ev.push(("b", 2, 4_000 + i * 100, 6.5, 1.0));
    }
    for i in 0..=20i64 {
        ev.push(("a", 3, 6_000 + i * 100, 6.55, 1.0));
    }
    ev.sort_by_key(|e| e.2);
    let m = members(&run(&ev, &[("c", 1, 5_200), ("a", 3, 8_100)]));
    let store_of = |c: &str, id: u64| m.iter().find(|x| x.1 == c && x.2 == id).unwrap().0;
    assert_eq!(store_of("a", 3), store_of("b", 2));
    assert_ne!(store_of("a", 3), store_of("c", 1));
}

/// The service ends a run in which no camera delivered a frame: the clock never moved.
#[test]
fn finish_without_any_input_does_not_overflow() {
    let mut s = Stitcher::new(AnalyticsParams::default(), Vec::new());
    s.finish();
    s.advance(i64::MIN);
    assert!(s.drain().is_empty());
}

#[test]
fn interpolation_between_close_neighbours_only() {
    let h: VecDeque<(i64, f64, f64)> = [(0, 0.0, 0.0), (100, 1.0, 2.0), (2000, 5.0, 5.0)]
        .into_iter()
        .collect();
    assert_eq!(position_at(&h, 50), Some((0.5, 1.0)));
    assert_eq!(position_at(&h, 100), Some((1.0, 2.0)));
    assert_eq!(position_at(&h, 200), Some((1.0, 2.0)));
    assert_eq!(position_at(&h, 1000), None);
}
