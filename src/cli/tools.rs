//! The development subcommands: `storetrack track` (the tracker over a MOTChallenge detection
//! file) and `storetrack synth` (synthetic store scenes, or detections simulated on a real
//! video's ground truth), both writing MOTChallenge files for any evaluator.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use storetrack::{mot, synth};

/// Highest frame rate accepted by `--fps`.
const MAX_FPS: f64 = 1000.0;

fn check_fps(fps: f64) -> Result<()> {
    if !(fps > 0.0 && fps <= MAX_FPS) {
        bail!("--fps {fps}: must be between 0 and 1000");
    }
    Ok(())
}

/// Tracks `detections` at `fps` with the `[tracker]` settings of `params` (defaults without)
/// and writes the results to `output`.
pub(crate) fn track(
    detections: &Path,
    output: &Path,
    fps: f64,
    params: Option<&Path>,
) -> Result<()> {
    check_fps(fps)?;
    let params = match params {
        Some(p) => storetrack::track::TrackerParams::load(p)?,
        None => storetrack::track::TrackerParams::default(),
    };
    let dets = mot::read_detections(detections)?;
    let rows = mot::track_sequence(&dets, &params, fps);
    std::fs::write(output, mot::format_results(&rows))
        .with_context(|| format!("{}: cannot write results", output.display()))?;
    Ok(())
}

/// Writes one scene per seed into `out`: a synthetic store, or with `replay` (ground-truth
/// file, image size) detections simulated on that ground truth. Prints each folder written.
pub(crate) fn synth(
    out: &Path,
    seeds: &[u64],
    duration: f64,
    fps: f64,
    replay: Option<(PathBuf, (u32, u32))>,
) -> Result<()> {
    check_fps(fps)?;
    let replayed = match &replay {
        Some((path, size)) => Some((replay_name(path), mot::read_ground_truth(path)?, *size)),
        None => None,
    };
    if let (Some((_, gt, _)), Some((path, _))) = (&replayed, &replay)
        && gt.is_empty()
    {
        bail!("{}: no ground-truth rows", path.display());
    }
    for &seed in seeds {
        let seqs = match &replayed {
            Some((name, gt, size)) => {
                let p = synth::replay::ReplayParams {
                    seed,
                    fps,
                    size: *size,
                };
                vec![synth::replay::replay(name, gt, &p)]
            }
            None => synth::generate(&synth::SceneParams {
                seed,
                duration_s: duration,
                fps,
                ..Default::default()
            }),
        };
        for dir in
            synth::write(&seqs, out).with_context(|| format!("{}: cannot write", out.display()))?
        {
            println!("{}", dir.display());
        }
    }
    Ok(())
}

/// A replay's name: the sequence folder of a MOTChallenge `SEQ/gt/gt.txt`, else the folder
/// holding the file (`TUD-Campus/gt.txt` → `TUD-Campus`).
fn replay_name(gt: &std::path::Path) -> String {
    let dir = gt.parent();
    let dir = match dir {
        Some(d) if d.file_name().is_some_and(|n| n == "gt") => d.parent(),
        d => d,
    };
    dir.and_then(|d| d.file_name()).map_or_else(
        || "replay".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
