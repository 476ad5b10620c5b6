//! Unit tests of the tracker: association stages, gap fill, predicted points, determinism.

use super::*;
use crate::track::DEFAULT_MAX_LOST_MS;

fn det(x: f32, y: f32, score: f32) -> Detection {
    Detection {
        bbox: BBox::new(x, y, 40.0, 100.0),
        score,
    }
}

#[test]
fn track_is_born_tentative_confirmed_after_hits_and_ends_after_lost_time() {
    let mut t = Tracker::new(TrackerParams::default());
    // Frames at 10 fps; a person walks right at 30 px/s.
    let mut ts = 0;
    for i in 0..3 {
        let out = t.update(ts, &[det(100.0 + 3.0 * i as f32, 50.0, 0.9)]);
        if i < 2 {
            assert!(out.updates.is_empty(), "confirmed too early at frame {i}");
        } else {
            // Confirmed: the two tentative observations come out too, in time order.
            let ts: Vec<i64> = out.updates.iter().map(|u| u.ts_ms).collect();
            assert_eq!(ts, vec![0, 100, 200]);
            assert!(out.updates.iter().all(|u| u.id == 1));
            assert_eq!(out.confirmed, vec![1]);
        }
        ts += 100;
    }
    assert_eq!(t.phase(1), Some(TrackPhase::Confirmed));
    // Person disappears: lost, then ended once max_lost_ms has passed.
    let out = t.update(ts, &[]);
    assert!(out.ended.is_empty());
    assert_eq!(t.phase(1), Some(TrackPhase::Lost));
    ts += DEFAULT_MAX_LOST_MS + 100;
    let out = t.update(ts, &[]);
    assert_eq!(out.ended, vec![1]);
    assert!(t.is_empty());
}

#[test]
fn lost_track_recovers_its_id_after_a_short_gap() {
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..10 {
        t.update(i * 100, &[det(100.0 + 3.0 * i as f32, 50.0, 0.9)]);
    }
    for i in 10..15 {
        t.update(i * 100, &[]);
    }
    let out = t.update(1500, &[det(145.0, 50.0, 0.9)]);
    // The new observation plus the five filled frames, all on track 1.
    assert_eq!(out.updates.len(), 6);
    assert!(out.updates.iter().all(|u| u.id == 1));
}

/// A walker at 10 fps, matched in frames 0–9, hidden in frames 10–14, seen again at 15.
fn occluded_walker(params: TrackerParams) -> (Vec<TrackState>, Vec<TrackState>) {
    let mut t = Tracker::new(params);
    let mut before = Vec::new();
    for i in 0..10 {
        before.extend(
            t.update(i * 100, &[det(100.0 + 3.0 * i as f32, 50.0, 0.9)])
                .updates,
        );
    }
    for i in 10..15 {
        before.extend(t.update(i * 100, &[]).updates);
    }
    let after = t.update(1500, &[det(145.0, 50.0, 0.9)]).updates;
    (before, after)
}

#[test]
fn recovered_track_gap_is_filled_between_the_observations_at_the_missed_frame_times() {
    let (before, after) = occluded_walker(TrackerParams::default());
    let last = *before.last().unwrap();
    assert_eq!((last.ts_ms, last.kind), (900, PointKind::Observed));
    let (filled, now): (Vec<&TrackState>, Vec<&TrackState>) = after
        .iter()
        .partition(|u| u.kind == PointKind::Interpolated);
    assert_eq!(now.len(), 1);
    let now = *now[0];
    assert_eq!(
        (now.ts_ms, now.kind, now.id),
        (1500, PointKind::Observed, 1)
    );
    let times: Vec<i64> = filled.iter().map(|u| u.ts_ms).collect();
    assert_eq!(times, vec![1000, 1100, 1200, 1300, 1400]);
    for (k, u) in filled.iter().enumerate() {
        assert_eq!(u.id, 1);
        // On the line from the last box before the gap to the first after it, in order.
        let a = (k + 1) as f32 / 6.0;
        let x = last.bbox.x + a * (now.bbox.x - last.bbox.x);
        assert!((u.bbox.x - x).abs() < 1e-3, "{} vs {x}", u.bbox.x);
        assert!(last.bbox.x < u.bbox.x && u.bbox.x < now.bbox.x);
        let y_lo = last.bbox.y.min(now.bbox.y) - 1e-3;
        let y_hi = last.bbox.y.max(now.bbox.y) + 1e-3;
        assert!((y_lo..=y_hi).contains(&u.bbox.y));
    }
    // Output is in time order, so a store sees the filled points before the new one.
    assert!(after.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
}

#[test]
fn predicted_points_for_predict_ms_then_the_rest_of_the_gap_is_interpolated() {
    let params = TrackerParams {
        predict_ms: 200,
        ..TrackerParams::default()
    };
    let (before, after) = occluded_walker(params);
    let predicted: Vec<i64> = before
        .iter()
        .filter(|u| u.kind == PointKind::Predicted)
        .map(|u| u.ts_ms)
        .collect();
    assert_eq!(predicted, vec![1000, 1100]);
    let filled: Vec<i64> = after
        .iter()
        .filter(|u| u.kind == PointKind::Interpolated)
        .map(|u| u.ts_ms)
        .collect();
    assert_eq!(filled, vec![1200, 1300, 1400]);
}

#[test]
fn a_track_that_never_returns_gets_no_filled_points() {
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..10 {
        t.update(i * 100, &[det(100.0, 50.0, 0.9)]);
    }
    let mut kinds = Vec::new();
    for i in 10..40 {
        let out = t.update(i * 100, &[]);
        kinds.extend(out.updates.iter().map(|u| u.kind));
    }
    assert!(kinds.is_empty(), "{kinds:?}");
    assert!(t.is_empty());
}

#[test]
fn someone_at_a_walkers_last_spot_is_not_the_walker() {
    // A walker at 1.5 box heights per second, lost for 0.5 s; then a person appears where
    // the walker was last seen (the walker's prediction has moved on by 75 px).
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..10 {
        t.update(i * 100, &[det(100.0 + 15.0 * i as f32, 50.0, 0.9)]);
    }
    for i in 10..15 {
        t.update(i * 100, &[]);
    }
    let mut ids = Vec::new();
    for i in 15..20 {
        ids.extend(
            t.update(i * 100, &[det(235.0, 50.0, 0.9)])
                .updates
                .iter()
                .map(|u| u.id),
        );
    }
    assert!(!ids.is_empty() && ids.iter().all(|&id| id == 2), "{ids:?}");
    // With the stage open to any speed, the walker's id is taken.
    let mut t = Tracker::new(TrackerParams {
        last_seen_max_speed: f32::MAX,
        ..TrackerParams::default()
    });
    for i in 0..10 {
        t.update(i * 100, &[det(100.0 + 15.0 * i as f32, 50.0, 0.9)]);
    }
    for i in 10..15 {
        t.update(i * 100, &[]);
    }
    let out = t.update(1500, &[det(235.0, 50.0, 0.9)]);
    assert_eq!(out.updates.last().map(|u| u.id), Some(1));
}

#[test]
fn single_spurious_detection_never_becomes_a_track() {
    let mut t = Tracker::new(TrackerParams::default());
    let out = t.update(0, &[det(10.0, 10.0, 0.95)]);
    assert!(out.updates.is_empty());
    let out = t.update(100, &[]);
    assert!(out.updates.is_empty() && out.ended.is_empty());
    assert!(t.is_empty());
}

#[test]
fn low_score_detections_keep_a_track_but_do_not_start_one() {
    let mut t = Tracker::new(TrackerParams::default());
    for i in 0..5 {
        t.update(i * 100, &[det(100.0, 50.0, 0.9)]);
    }
    // Occlusion: the detector is unsure, score 0.3.
    let out = t.update(500, &[det(101.0, 50.0, 0.3), det(400.0, 50.0, 0.3)]);
    assert_eq!(out.updates.len(), 1);
    assert_eq!(out.updates[0].id, 1);
    assert_eq!(t.len(), 1, "a low-score detection started a track");
}

#[test]
fn two_people_crossing_keep_their_ids() {
    let mut t = Tracker::new(TrackerParams::default());
    let mut last = TrackerOutput::default();
    for i in 0..40 {
        let a = det(100.0 + 10.0 * i as f32, 50.0, 0.9);
        let b = det(500.0 - 10.0 * i as f32, 60.0, 0.9);
        last = t.update(i * 100, &[a, b]);
    }
    // After crossing, the track moving right is still id 1.
    let right = last
        .updates
        .iter()
        .max_by(|p, q| p.bbox.x.total_cmp(&q.bbox.x));
    assert_eq!(right.map(|u| u.id), Some(1));
    assert_eq!(t.len(), 2);
}

#[test]
fn deterministic_for_the_same_input() {
    let run = || {
        let mut t = Tracker::new(TrackerParams::default());
        (0..30)
            .map(|i| {
                t.update(
                    i * 100,
                    &[det(i as f32 * 5.0, 0.0, 0.8), det(300.0, 0.0, 0.7)],
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
