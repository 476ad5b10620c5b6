//! Floor calibration: the image → floor homography solved from point pairs a person measured
//! (pixel `u, v` ↔ floor `x, y` in metres), by least squares over all pairs (normalized DLT:
//! both point sets are centred and scaled, then the 9-vector is the eigenvector of `AᵀA` with
//! the smallest eigenvalue, found by a hand-written Jacobi solve — nine unknowns do not need a
//! linear-algebra crate).
//!
//! Input: the pairs. Output: a row-major 3×3 homography and its reprojection error, or the
//! reason the pairs cannot define one (too few, duplicated, collinear, mirrored, degenerate),
//! naming the pair so the config validator can point at it.

use crate::geometry::apply_homography;

/// Fewest pairs that define a homography.
pub const MIN_PAIRS: usize = 4;
/// Image points closer than this (pixels) are the same point.
const SAME_PIXEL: f64 = 1.0;
/// Floor points closer than this (metres) are the same point.
const SAME_SPOT_M: f64 = 0.01;
/// A point set whose spread across its best line is below this share of its extent is a line.
const COLLINEAR_RATIO: f64 = 1e-3;
/// Relative size of the second-smallest eigenvalue below which the solution is not unique.
const RANK_TOLERANCE: f64 = 1e-10;
/// Triangles with twice their area below this share of the points' spread do not vote on
/// orientation.
const THIN_TRIANGLE: f64 = 0.05;
/// Jacobi sweeps before giving up (9×9 converges in well under 20).
const JACOBI_SWEEPS: usize = 60;

/// One measured pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPair {
    /// Image column, source pixels.
    pub u: f64,
    /// Image row, source pixels.
    pub v: f64,
    /// Floor x, metres.
    pub x: f64,
    /// Floor y, metres.
    pub y: f64,
}

/// Which side of a pair a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The pixel coordinates.
    Image,
    /// The floor coordinates.
    Floor,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Image => "image",
            Side::Floor => "floor",
        })
    }
}

/// Why a set of pairs does not define a usable homography. `index` fields are 0-based pairs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibError {
    /// Fewer than [`MIN_PAIRS`] pairs.
    #[error("calibration needs at least {MIN_PAIRS} point pairs, found {found}")]
    TooFew {
        /// Pairs given.
        found: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("pair {} is not 4 finite numbers [u, v, x, y]", index + 1)]
    NotFinite {
        /// The pair.
        index: usize,
    },
    /// Two pairs share a point.
    #[error("pair {}: {side} point repeats pair {}", index + 1, first + 1)]
    Duplicate {
        /// The repeating pair.
        index: usize,
        /// The pair it repeats.
        first: usize,
        /// Image or floor.
        side: Side,
    },
    /// The points lie on one line (or, with exactly four pairs, three of them do).
    #[error(
        "{side} points are collinear (pairs {}): spread them over the floor",
        list(pairs)
    )]
    Collinear {
        /// Image or floor.
        side: Side,
        /// The pairs on the line.
        pairs: Vec<usize>,
    },
    /// The pairs disagree on orientation: some floor triangles are mirrored relative to their
    /// image triangles (swapped coordinates, a point beyond the horizon, a typo).
    #[error("pair {} is mirrored against the others (swapped x/y or a typo?)", index + 1)]
    Mirrored {
        /// The pair that flips most triangles.
        index: usize,
    },
    /// No unique solution (numerically rank deficient).
    #[error("point pairs do not determine a homography (degenerate layout)")]
    Degenerate,
}

fn list(pairs: &[usize]) -> String {
    let v: Vec<String> = pairs.iter().map(|i| (i + 1).to_string()).collect();
    v.join(", ")
}

/// A solved calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Row-major image → floor homography, scaled so the last entry is 1 when possible.
    pub homography: [f64; 9],
    /// Pairs used.
    pub pairs: usize,
    /// Root mean square floor distance between mapped image points and their floor points, m.
    pub rms_m: f64,
    /// Largest such distance, m.
    pub max_m: f64,
    /// The pair with the largest error (0-based).
    pub worst: usize,
}

/// Solves the homography from `pairs` and reports its reprojection error.
pub fn solve(pairs: &[PointPair]) -> Result<Calibration, CalibError> {
    check_layout(pairs)?;
    let img: Vec<(f64, f64)> = pairs.iter().map(|p| (p.u, p.v)).collect();
    let flo: Vec<(f64, f64)> = pairs.iter().map(|p| (p.x, p.y)).collect();
    let (ti, ni) = normalize(&img);
    let (tf, nf) = normalize(&flo);
    let mut ata = [[0.0f64; 9]; 9];
    for ((u, v), (x, y)) in ni.iter().zip(&nf) {
        let rows = [
            [-u, -v, -1.0, 0.0, 0.0, 0.0, x * u, x * v, *x],
            [0.0, 0.0, 0.0, -u, -v, -1.0, y * u, y * v, *y],
        ];
        for r in &rows {
            for i in 0..9 {
                for j in 0..9 {
                    ata[i][j] += r[i] * r[j];
                }
            }
        }
    }
    let (values, vectors) = jacobi_eigen(ata);
    let mut order: Vec<usize> = (0..9).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let largest = values[order[8]].abs().max(f64::MIN_POSITIVE);
    if values[order[1]].abs() < RANK_TOLERANCE * largest {
        return Err(CalibError::Degenerate);
    }
    let hn: [f64; 9] = std::array::from_fn(|i| vectors[i][order[0]]);
    // H = Tf⁻¹ · Hn · Ti
    let h = mul3(&mul3(&invert_similarity(&tf), &hn), &ti);
    let h = scaled(h);
    check_orientation_after_fit(&h, &img)?;
    Ok(report(h, pairs))
}

/// Reprojection error of `h` over `pairs`.
pub fn report(h: [f64; 9], pairs: &[PointPair]) -> Calibration {
    let (mut sum, mut max, mut worst) = (0.0, 0.0, 0);
    for (i, p) in pairs.iter().enumerate() {
        let e = match apply_homography(&h, (p.u as f32, p.v as f32)) {
            Some((x, y)) => ((x - p.x).powi(2) + (y - p.y).powi(2)).sqrt(),
            None => f64::INFINITY,
        };
        sum += e * e;
        if e > max {
            (max, worst) = (e, i);
        }
    }
    Calibration {
        homography: h,
        pairs: pairs.len(),
        rms_m: (sum / pairs.len().max(1) as f64).sqrt(),
        max_m: max,
        worst,
    }
}

fn check_layout(pairs: &[PointPair]) -> Result<(), CalibError> {
    if pairs.len() < MIN_PAIRS {
        return Err(CalibError::TooFew { found: pairs.len() });
    }
    if let Some(index) = pairs
        .iter()
        .position(|p| ![p.u, p.v, p.x, p.y].iter().all(|c| c.is_finite()))
    {
        return Err(CalibError::NotFinite { index });
    }
    for (side, pts, same) in [
        (Side::Image, image_points(pairs), SAME_PIXEL),
        (Side::Floor, floor_points(pairs), SAME_SPOT_M),
    ] {
        for i in 0..pts.len() {
            if let Some(first) = (0..i).find(|&j| dist(pts[i], pts[j]) < same) {
                return Err(CalibError::Duplicate {
                    index: i,
                    first,
                    side,
                });
            }
        }
        check_collinear(side, &pts)?;
    }
    check_mirrored(pairs)
}

fn image_points(pairs: &[PointPair]) -> Vec<(f64, f64)> {
    pairs.iter().map(|p| (p.u, p.v)).collect()
}

fn floor_points(pairs: &[PointPair]) -> Vec<(f64, f64)> {
    pairs.iter().map(|p| (p.x, p.y)).collect()
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// Twice the signed area of triangle abc.
fn orient(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

/// Thin spread across the best line (all points), or, with exactly four pairs, three on a line
/// (a homography from four points needs every three of them to span a triangle).
fn check_collinear(side: Side, pts: &[(f64, f64)]) -> Result<(), CalibError> {
    let idx: Vec<usize> = (0..pts.len()).collect();
    if thin(pts, &idx) {
        return Err(CalibError::Collinear { side, pairs: idx });
    }
    if pts.len() == MIN_PAIRS {
        for skip in 0..pts.len() {
            let three: Vec<usize> = idx.iter().copied().filter(|&i| i != skip).collect();
            if thin(pts, &three) {
                return Err(CalibError::Collinear { side, pairs: three });
            }
        }
    }
    Ok(())
}

fn thin(pts: &[(f64, f64)], idx: &[usize]) -> bool {
    let n = idx.len() as f64;
    let (mx, my) = idx.iter().fold((0.0, 0.0), |(x, y), &i| {
        (x + pts[i].0 / n, y + pts[i].1 / n)
    });
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &i in idx {
        let (dx, dy) = (pts[i].0 - mx, pts[i].1 - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let tr = sxx + syy;
    let det = sxx * syy - sxy * sxy;
    let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
    let (big, small) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
    big <= 0.0 || (small / big).sqrt() < COLLINEAR_RATIO
}

/// A projective view of a plane keeps (or reverses, for every triangle alike) orientation as
/// long as all points are in front of the camera; a pair whose triangles disagree with the
/// majority was typed wrong.
fn check_mirrored(pairs: &[PointPair]) -> Result<(), CalibError> {
    let img = image_points(pairs);
    let flo = floor_points(pairs);
    let n = pairs.len();
    // Thin triangles flip with measurement noise; only clear ones vote.
    let (si, sf) = (spread(&img) * THIN_TRIANGLE, spread(&flo) * THIN_TRIANGLE);
    let mut votes = [0usize; 2];
    let mut flips = vec![[0usize; 2]; n];
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                let (a, b) = (
                    orient(img[i], img[j], img[k]),
                    orient(flo[i], flo[j], flo[k]),
                );
                if a.abs() < si || b.abs() < sf {
                    continue;
                }
                let s = usize::from(a.signum() != b.signum());
                votes[s] += 1;
                for t in [i, j, k] {
                    flips[t][s] += 1;
                }
            }
        }
    }
    if votes[0] > 0 && votes[1] > 0 {
        let minority = usize::from(votes[1] < votes[0]);
        let index = (0..n).max_by_key(|&t| flips[t][minority]).unwrap_or(0);
        return Err(CalibError::Mirrored { index });
    }
    Ok(())
}

/// Mean squared distance of the points from their centre (an area scale).
fn spread(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    pts.iter().map(|p| dist(*p, (mx, my)).powi(2)).sum::<f64>() / n
}

/// After the fit every image point must map with the same sign of the projective scale: a point
/// on the other side of the horizon line cannot be a point of this floor.
fn check_orientation_after_fit(h: &[f64; 9], img: &[(f64, f64)]) -> Result<(), CalibError> {
    let w: Vec<f64> = img
        .iter()
        .map(|(u, v)| h[6] * u + h[7] * v + h[8])
        .collect();
    let pos = w.iter().filter(|w| **w > 0.0).count();
    if pos != 0 && pos != w.len() {
        let majority_pos = pos * 2 >= w.len();
        let index = w
            .iter()
            .position(|w| (*w > 0.0) != majority_pos)
            .unwrap_or(0);
        return Err(CalibError::Mirrored { index });
    }
    Ok(())
}

/// Centres the points and scales them to mean distance √2 (Hartley); returns the 3×3 transform
/// (row-major) and the moved points.
fn normalize(pts: &[(f64, f64)]) -> ([f64; 9], Vec<(f64, f64)>) {
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let mean = pts.iter().map(|p| dist(*p, (mx, my))).sum::<f64>() / n;
    let s = if mean > 0.0 {
        std::f64::consts::SQRT_2 / mean
    } else {
        1.0
    };
    let t = [s, 0.0, -s * mx, 0.0, s, -s * my, 0.0, 0.0, 1.0];
    let moved = pts
        .iter()
        .map(|p| (s * (p.0 - mx), s * (p.1 - my)))
        .collect();
    (t, moved)
}

fn invert_similarity(t: &[f64; 9]) -> [f64; 9] {
    let s = t[0];
    [
        1.0 / s,
        0.0,
        -t[2] / s,
        0.0,
        1.0 / s,
        -t[5] / s,
        0.0,
        0.0,
        1.0,
    ]
}

fn mul3(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    std::array::from_fn(|k| {
        let (r, c) = (k / 3, k % 3);
        (0..3).map(|i| a[r * 3 + i] * b[i * 3 + c]).sum()
    })
}

fn scaled(h: [f64; 9]) -> [f64; 9] {
    let d = if h[8].abs() > 1e-12 {
        h[8]
    } else {
        h.iter().map(|v| v * v).sum::<f64>().sqrt()
    };
    h.map(|v| v / d)
}

/// Eigenvalues and eigenvectors (columns) of a symmetric 9×9 matrix by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: [[f64; 9]; 9]) -> ([f64; 9], [[f64; 9]; 9]) {
    let mut v = [[0.0; 9]; 9];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _ in 0..JACOBI_SWEEPS {
        let off: f64 = (0..9)
            .flat_map(|i| (0..9).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..8 {
            for q in p + 1..9 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (rp, rq) = (a[p], a[q]);
                for k in 0..9 {
                    a[p][k] = c * rp[k] - s * rq[k];
                    a[q][k] = s * rp[k] + c * rq[k];
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    (std::array::from_fn(|i| a[i][i]), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::camera::Camera;

    /// Pairs from a known camera: image points of known floor points.
    fn pairs_from(cam: &Camera, floor: &[(f64, f64)]) -> Vec<PointPair> {
        floor
            .iter()
            .map(|&(x, y)| {
                let (u, v, _) = cam.project([x, y, 0.0]).unwrap();
                PointPair { u, v, x, y }
            })
            .collect()
    }

    fn camera() -> Camera {
        Camera::look_at([0.5, -0.5, 4.0], [9.0, 5.5, 0.0], 800.0, 1280, 720)
    }

    #[test]
    fn round_trip_on_known_points_recovers_the_camera_homography() {
        let cam = camera();
        let pts = [(4.0, 2.0), (14.0, 3.0), (12.0, 9.0), (5.0, 8.0), (9.0, 5.5)];
        let cal = solve(&pairs_from(&cam, &pts)).unwrap();
        assert!(cal.rms_m < 1e-6, "rms {}", cal.rms_m);
        let truth = cam.image_to_floor();
        // Any other floor point maps the same way as through the true homography.
        for (x, y) in [(2.0, 1.0), (17.0, 10.0), (8.0, 4.4)] {
            let (u, v, _) = cam.project([x, y, 0.0]).unwrap();
            let a = apply_homography(&cal.homography, (u as f32, v as f32)).unwrap();
            let b = apply_homography(&truth, (u as f32, v as f32)).unwrap();
            assert!(
                (a.0 - b.0).abs() < 0.02 && (a.1 - b.1).abs() < 0.02,
                "{a:?} {b:?}"
            );
            assert!(
                (a.0 - x).abs() < 0.02 && (a.1 - y).abs() < 0.02,
                "{a:?} vs {x},{y}"
            );
        }
    }

    #[test]
    fn reprojection_error_reports_a_measurement_error_at_its_pair() {
        let cam = camera();
        let pts = [
            (4.0, 2.0),
            (14.0, 3.0),
            (12.0, 9.0),
            (5.0, 8.0),
            (9.0, 5.5),
            (7.0, 3.0),
        ];
        let mut pairs = pairs_from(&cam, &pts);
        pairs[4].x += 0.5; // half a metre off
        let cal = solve(&pairs).unwrap();
        assert_eq!(cal.worst, 4);
        assert!(cal.max_m > 0.2 && cal.max_m < 0.5, "max {}", cal.max_m);
        assert!(
            cal.rms_m > 0.05 && cal.rms_m < cal.max_m,
            "rms {}",
            cal.rms_m
        );
    }

    #[test]
    fn degenerate_sets_are_rejected_with_the_pair() {
        let cam = camera();
        let good = pairs_from(&cam, &[(4.0, 2.0), (14.0, 3.0), (12.0, 9.0), (5.0, 8.0)]);
        assert_eq!(solve(&good[..3]), Err(CalibError::TooFew { found: 3 }));

        let mut dup = good.clone();
        dup.push(good[1]);
        assert!(matches!(
            solve(&dup),
            Err(CalibError::Duplicate {
                index: 4,
                first: 1,
                side: Side::Image
            })
        ));

        let line = pairs_from(
            &cam,
            &[(2.0, 2.0), (4.0, 3.0), (6.0, 4.0), (8.0, 5.0), (10.0, 6.0)],
        );
        assert!(matches!(
            solve(&line),
            Err(CalibError::Collinear {
                side: Side::Image,
                ..
            })
        ));

        let three = pairs_from(&cam, &[(2.0, 2.0), (4.0, 3.0), (6.0, 4.0), (5.0, 9.0)]);
        assert!(matches!(
            solve(&three),
            Err(CalibError::Collinear { pairs, .. }) if pairs == vec![0, 1, 2]
        ));

        // x and y swapped in one pair: its triangles flip.
        let mut pts = pairs_from(
            &cam,
            &[
                (4.0, 2.0),
                (14.0, 3.0),
                (12.0, 9.0),
                (5.0, 8.0),
                (9.0, 5.5),
                (15.0, 7.0),
            ],
        );
        (pts[1].x, pts[1].y) = (pts[1].y, pts[1].x);
        assert_eq!(solve(&pts), Err(CalibError::Mirrored { index: 1 }));

        let mut nan = good.clone();
        nan[2].v = f64::NAN;
        assert_eq!(solve(&nan), Err(CalibError::NotFinite { index: 2 }));
    }

    #[test]
    fn a_mirrored_floor_is_a_valid_calibration() {
        // The whole floor mirrored (plan drawn with y the other way) is consistent: accepted.
        let cam = camera();
        let mut pts = pairs_from(&cam, &[(4.0, 2.0), (14.0, 3.0), (12.0, 9.0), (5.0, 8.0)]);
        for p in &mut pts {
            p.y = 11.0 - p.y;
        }
        let cal = solve(&pts).unwrap();
        assert!(cal.max_m < 1e-6);
    }
}
