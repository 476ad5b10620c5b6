//! MOTChallenge text files: detections in (`frame,-1,x,y,w,h,score,...`, 1-based frames), tracker
//! results out (`frame,id,x,y,w,h,1,-1,-1,-1`), and the tracker driven over a whole sequence, so
//! any standard evaluator can score storetrack's tracker.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::geometry::{BBox, Detection};
use crate::track::{Tracker, TrackerParams};

/// Why a MOT file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MotError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One row of a MOT file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotRow {
    /// 1-based frame number.
    pub frame: u32,
    /// Track or ground-truth id (-1 for detections).
    pub id: i64,
    /// Box in pixels.
    pub bbox: BBox,
    /// Detection score (1 for ground truth).
    pub score: f32,
    /// Visibility in 0..=1 (ground truth only; -1 otherwise).
    pub visibility: f32,
}

/// Detections grouped by frame.
pub type FrameDetections = BTreeMap<u32, Vec<Detection>>;

/// Parses the rows of a MOT file's text (`path` is used in messages only). Rows with an empty
/// box are skipped; the id is read as given (-1 in detection files); the score is field 7.
pub fn parse_rows(text: &str, path: &Path) -> Result<Vec<MotRow>, MotError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| MotError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 7 {
            return Err(err(format!(
                "expected at least 7 fields, found {}",
                f.len()
            )));
        }
        let num = |k: usize, name: &str| -> Result<f64, MotError> {
            f[k].parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(format!("{name} {:?} is not a number", f[k])))
        };
        let frame = num(0, "frame")?;
        if frame < 1.0 || frame.fract() != 0.0 {
            return Err(err(format!("frame {:?} must be a whole number ≥ 1", f[0])));
        }
        let id = num(1, "id")?;
        let (x, y, w, h, score) = (
            num(2, "x")?,
            num(3, "y")?,
            num(4, "w")?,
            num(5, "h")?,
            num(6, "score")?,
        );
        if w <= 0.0 || h <= 0.0 {
            continue;
        }
        out.push(MotRow {
            frame: frame as u32,
            id: id as i64,
            bbox: BBox::new(x as f32, y as f32, w as f32, h as f32),
            score: score as f32,
            visibility: -1.0,
        });
    }
    Ok(out)
}

/// Parses a MOT detection file's text (`path` is used in messages only).
pub fn parse_detections(text: &str, path: &Path) -> Result<FrameDetections, MotError> {
    let mut out: FrameDetections = BTreeMap::new();
    for r in parse_rows(text, path)? {
        out.entry(r.frame).or_default().push(Detection {
            bbox: r.bbox,
            score: r.score,
        });
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, MotError> {
    std::fs::read_to_string(path).map_err(|source| MotError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a MOT detection file.
pub fn read_detections(path: &Path) -> Result<FrameDetections, MotError> {
    parse_detections(&read_text(path)?, path)
}

/// Reads a MOT ground-truth file (`frame,id,x,y,w,h,conf,...`); rows with conf 0 (ignored
/// regions in MOTChallenge) are left out.
pub fn read_ground_truth(path: &Path) -> Result<Vec<MotRow>, MotError> {
    let mut rows = parse_rows(&read_text(path)?, path)?;
    rows.retain(|r| r.score != 0.0);
    Ok(rows)
}

/// Runs a fresh tracker over every frame from 1 to the last detected frame at `fps` and returns
/// the result rows (confirmed tracks only, as the service stores them).
pub fn track_sequence(dets: &FrameDetections, params: &TrackerParams, fps: f64) -> Vec<MotRow> {
    let mut tracker = Tracker::new(params.clone());
    let last = dets.keys().next_back().copied().unwrap_or(0);
    let mut rows = Vec::new();
    for frame in 1..=last {
        let ts_ms = ((f64::from(frame) - 1.0) * 1000.0 / fps).round() as i64;
        let empty = Vec::new();
        let out = tracker.update(ts_ms, dets.get(&frame).unwrap_or(&empty));
        for u in out.updates {
            // Back-filled states carry an earlier time than this frame.
            let frame = (u.ts_ms as f64 * fps / 1000.0).round() as u32 + 1;
            rows.push(MotRow {
                frame,
                id: u.id as i64,
                bbox: u.bbox,
                score: 1.0,
                visibility: -1.0,
            });
        }
    }
    rows.sort_by_key(|r| (r.frame, r.id));
    rows
}

fn format_with(rows: &[MotRow], line: impl Fn(&mut String, &MotRow, &BBox)) -> String {
    let mut s = String::with_capacity(rows.len() * 48);
    for r in rows {
        line(&mut s, r, &r.bbox);
    }
    s
}

/// Formats rows as MOTChallenge results (`frame,id,x,y,w,h,score,-1,-1,-1`).
pub fn format_results(rows: &[MotRow]) -> String {
    format_with(rows, |s, r, b| {
        let _ = writeln!(
            s,
            "{},{},{:.2},{:.2},{:.2},{:.2},{},-1,-1,-1",
            r.frame, r.id, b.x, b.y, b.w, b.h, r.score
        );
    })
}

/// Formats rows as MOTChallenge ground truth (`frame,id,x,y,w,h,1,1,visibility`).
pub fn format_ground_truth(rows: &[MotRow]) -> String {
    format_with(rows, |s, r, b| {
        let _ = writeln!(
            s,
            "{},{},{:.2},{:.2},{:.2},{:.2},1,1,{:.3}",
            r.frame, r.id, b.x, b.y, b.w, b.h, r.visibility
        );
    })
}

/// Formats rows as MOTChallenge detections (`frame,-1,x,y,w,h,score,-1,-1,-1`).
pub fn format_detections(rows: &[MotRow]) -> String {
    format_with(rows, |s, r, b| {
        let _ = writeln!(
            s,
            "{},-1,{:.2},{:.2},{:.2},{:.2},{:.3},-1,-1,-1",
            r.frame, b.x, b.y, b.w, b.h, r.score
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mot17_style_detections_and_reports_bad_lines() {
        let text = "1,-1,10,20,30,60,0.9,-1,-1,-1\n1,-1,100,20,30,60,0.4\n\n3,-1,12,20,30,60,0.8,-1,-1,-1\n";
        let d = parse_detections(text, Path::new("det.txt")).unwrap();
        assert_eq!(d[&1].len(), 2);
        assert_eq!(d[&3][0].bbox, BBox::new(12.0, 20.0, 30.0, 60.0));
        let e = parse_detections("1,-1,10,20,x,60,0.9\n", Path::new("det.txt")).unwrap_err();
        assert_eq!(e.to_string(), "det.txt:1: w \"x\" is not a number");
        let e = parse_detections("0,-1,1,1,1,1,1\n", Path::new("d")).unwrap_err();
        assert!(e.to_string().contains("frame \"0\""), "{e}");
    }

    #[test]
    fn tracking_a_sequence_yields_one_identity_per_walker() {
        let mut text = String::new();
        for f in 1..=30 {
            let _ = writeln!(text, "{f},-1,{},50,40,100,0.9", 10 + 4 * f);
            let _ = writeln!(text, "{f},-1,{},300,40,100,0.9", 400 - 4 * f);
        }
        let dets = parse_detections(&text, Path::new("d")).unwrap();
        let rows = track_sequence(&dets, &TrackerParams::default(), 10.0);
        let ids: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 2);
        // Confirmed at the third frame and back-filled: both walkers in every frame.
        assert_eq!(rows.len(), 2 * 30);
        let out = format_results(&rows[..1]);
        assert!(
            out.starts_with("1,1,") && out.ends_with(",1,-1,-1,-1\n"),
            "{out}"
        );
    }
}
