//! Tracking-quality regression on both evaluation sources, scored with TrackEval
//! (scripts/mot_eval.py, from the venv that scripts/setup.sh makes):
//! - a fixed-seed synthetic store scene (two cameras, 60 s, 10 fps);
//! - real pedestrian ground truth (TUD-Stadtmitte, 25 fps, from PyPI `motmetrics`) replayed
//!   through the simulated detector with fixed seeds.
//!
//! HOTA, MOTA and IDF1 of the default tracker settings must not fall below the values recorded
//! when the tracker last changed, minus a small tolerance; a real improvement should raise the
//! recorded values.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use storetrack::mot;
use storetrack::synth::{self, SceneParams, Sequence, replay};
use storetrack::track::TrackerParams;

const TOLERANCE: f64 = 0.01;

/// HOTA, MOTA, IDF1 recorded on store scene seed 42 (combined over both cameras).
const STORE_SEED: u64 = 42;
const STORE_RECORDED: [f64; 3] = [0.415, 0.522, 0.471];

/// HOTA, MOTA, IDF1 recorded on TUD-Stadtmitte with detector seeds 1–3 (combined).
const TUD_SEEDS: [u64; 3] = [1, 2, 3];
const TUD_RECORDED: [f64; 3] = [0.646, 0.781, 0.735];

#[test]
fn synthetic_store_scene_scores_do_not_regress() {
    let params = SceneParams {
        seed: STORE_SEED,
        ..SceneParams::default()
    };
    check(&synth::generate(&params), STORE_RECORDED);
}

#[test]
fn real_pedestrian_replay_scores_do_not_regress() {
    let gt = mot::read_ground_truth(&motmetrics_data().join("TUD-Stadtmitte/gt.txt")).unwrap();
    let seqs: Vec<Sequence> = TUD_SEEDS
        .iter()
        .map(|&seed| {
            let p = replay::ReplayParams {
                seed,
                fps: 25.0,
                size: (640, 480),
            };
            replay::replay("TUD-Stadtmitte", &gt, &p)
        })
        .collect();
    check(&seqs, TUD_RECORDED);
}

fn python() -> PathBuf {
    let python = common::root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup.sh",
        python.display()
    );
    python
}

/// The data folder of the installed `motmetrics` package (ground truth it ships).
fn motmetrics_data() -> PathBuf {
    let out = Command::new(python())
        .args([
            "-c",
            "import importlib.util as u; print(u.find_spec('motmetrics').submodule_search_locations[0])",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "motmetrics not installed: run scripts/setup.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("data")
}

/// Tracks `seqs` with the default settings, scores them and compares with `recorded`.
fn check(seqs: &[Sequence], recorded: [f64; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let scenes = dir.path().join("scenes");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    synth::write(seqs, &scenes).unwrap();
    for s in seqs {
        let dets = mot::read_detections(&scenes.join(&s.name).join("det/det.txt")).unwrap();
        let rows = mot::track_sequence(&dets, &TrackerParams::default(), s.fps);
        std::fs::write(
            results.join(format!("{}.txt", s.name)),
            mot::format_results(&rows),
        )
        .unwrap();
    }
    let json = dir.path().join("scores.json");
    let out = Command::new(python())
        .arg(common::root().join("scripts/mot_eval.py"))
        .args([
            "--gt-root",
            scenes.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mot_eval.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    let scores: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let c = &scores["combined"];
    for (k, name) in ["HOTA", "MOTA", "IDF1"].iter().enumerate() {
        let v = c[name].as_f64().unwrap();
        eprintln!("{name} {v:.4} (recorded {})", recorded[k]);
        assert!(
            v >= recorded[k] - TOLERANCE,
            "{name} fell to {v:.4} (recorded {})",
            recorded[k]
        );
    }
}
