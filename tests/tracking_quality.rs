//! Tracking-quality regression: on a fixed-seed synthetic store scene (two cameras, 60 s,
//! 10 fps), storetrack's tracker is scored with TrackEval (scripts/mot_eval.py, from the venv
//! that scripts/setup.sh makes). HOTA, MOTA and IDF1 must not fall below the values recorded
//! when the tracker was last tuned, minus a small tolerance; a real improvement should raise
//! the recorded values.

mod common;

use std::process::Command;

use storetrack::mot;
use storetrack::synth::{self, SceneParams};
use storetrack::track::TrackerParams;

const SEED: u64 = 42;
/// Recorded with the default tracker settings (combined over both cameras).
const RECORDED_HOTA: f64 = 0.368;
const RECORDED_MOTA: f64 = 0.462;
const RECORDED_IDF1: f64 = 0.448;
const TOLERANCE: f64 = 0.01;

#[test]
fn synthetic_store_scene_scores_do_not_regress() {
    let params = SceneParams {
        seed: SEED,
        ..SceneParams::default()
    };
    let seqs = synth::generate(&params);
    let dir = tempfile::tempdir().unwrap();
    let scenes = dir.path().join("scenes");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    synth::write(&seqs, &scenes).unwrap();
    for s in &seqs {
        let dets = mot::read_detections(&scenes.join(&s.name).join("det/det.txt")).unwrap();
        let rows = mot::track_sequence(&dets, &TrackerParams::default(), s.fps);
        std::fs::write(
            results.join(format!("{}.txt", s.name)),
            mot::format_results(&rows),
        )
        .unwrap();
    }
    let python = common::root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup.sh",
        python.display()
    );
    let json = dir.path().join("scores.json");
    let out = Command::new(&python)
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
    let (hota, mota, idf1) = (
        c["HOTA"].as_f64().unwrap(),
        c["MOTA"].as_f64().unwrap(),
        c["IDF1"].as_f64().unwrap(),
    );
    eprintln!("HOTA {hota:.4} MOTA {mota:.4} IDF1 {idf1:.4}");
    assert!(
        hota >= RECORDED_HOTA - TOLERANCE,
        "HOTA fell to {hota:.4} (recorded {RECORDED_HOTA})"
    );
    assert!(
        mota >= RECORDED_MOTA - TOLERANCE,
        "MOTA fell to {mota:.4} (recorded {RECORDED_MOTA})"
    );
    assert!(
        idf1 >= RECORDED_IDF1 - TOLERANCE,
        "IDF1 fell to {idf1:.4} (recorded {RECORDED_IDF1})"
    );
}
