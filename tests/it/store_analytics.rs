//! Store analytics against the synthetic scenes' ground truth: the real tracker per camera,
//! feet through each camera's homography, the stitcher joining the two cameras. Store-id purity
//! and coverage must stay above the values recorded when the join was tuned (minus a small
//! tolerance), and must beat camera tracks alone on coverage; zone visit counts and dwell
//! totals are compared with the true floor positions under the same visit rules.

use storetrack::analytics::AnalyticsParams;
use storetrack::analytics::eval::{self, SceneScore};
use storetrack::synth::SceneParams;
use storetrack::track::TrackerParams;

const SEEDS: [u64; 2] = [42, 7];
/// Recorded with the default [analytics] settings over SEEDS (points-weighted mean).
const RECORDED_PURITY: f64 = 0.805;
const RECORDED_COVERAGE: f64 = 0.557;
const TOLERANCE: f64 = 0.01;
/// Largest relative error of a zone's total dwell allowed (zones with ≥ 60 s of true dwell);
/// recorded worst 0.19 (aisle-1, where shelves hide legs and feet land in the next aisle).
const MAX_DWELL_ERROR: f64 = 0.3;

fn scores() -> Vec<SceneScore> {
    SEEDS
        .iter()
        .map(|&seed| {
            let scene = SceneParams {
                seed,
                ..SceneParams::default()
            };
            eval::score_scene(
                &scene,
                &TrackerParams::default(),
                &AnalyticsParams::default(),
                &eval::synthetic_zones(),
            )
        })
        .collect()
}

#[test]
fn store_ids_across_two_cameras_hold_purity_and_coverage_and_dwell_follows_the_truth() {
    let all = scores();
    let weight = |f: fn(&SceneScore) -> f64| {
        let n: usize = all.iter().map(|s| s.matched_points).sum();
        all.iter()
            .map(|s| f(s) * s.matched_points as f64)
            .sum::<f64>()
            / n as f64
    };
    let purity = weight(|s| s.store.purity);
    let coverage = weight(|s| s.store.coverage);
    let base_purity = weight(|s| s.camera_tracks.purity);
    let base_coverage = weight(|s| s.camera_tracks.coverage);
    for (seed, s) in SEEDS.iter().zip(&all) {
        println!(
            "seed {seed}: {} people, {} points; store ids {} purity {:.3} coverage {:.3}; camera tracks {} purity {:.3} coverage {:.3}",
            s.people,
            s.matched_points,
            s.store.ids,
            s.store.purity,
            s.store.coverage,
            s.camera_tracks.ids,
            s.camera_tracks.purity,
            s.camera_tracks.coverage
        );
        for z in &s.zones {
            println!(
                "  zone {:<9} visits {:>3} (true {:>3})  dwell {:>7.1} s (true {:>7.1} s)",
                z.zone, z.visits, z.true_visits, z.dwell_s, z.true_dwell_s
            );
        }
    }
    println!(
        "overall: store purity {purity:.3} coverage {coverage:.3}; camera tracks purity {base_purity:.3} coverage {base_coverage:.3}"
    );
    assert!(purity >= RECORDED_PURITY - TOLERANCE, "purity {purity:.3}");
    assert!(
        coverage >= RECORDED_COVERAGE - TOLERANCE,
        "coverage {coverage:.3}"
    );
    assert!(
        coverage > base_coverage + 0.05,
        "joining adds no coverage: {coverage:.3} vs {base_coverage:.3}"
    );
    for s in &all {
        for z in s.zones.iter().filter(|z| z.true_dwell_s >= 60.0) {
            let err = (z.dwell_s - z.true_dwell_s).abs() / z.true_dwell_s;
            assert!(err <= MAX_DWELL_ERROR, "{}: dwell error {err:.2}", z.zone);
        }
    }
}
