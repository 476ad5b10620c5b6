//! Checks for the store-analytics parts of a config: camera calibration point pairs, the
//! `[floor]` plan and `[[zones]]`. Like the rest of validation, every problem is collected with
//! the position of the value at fault (the pair or vertex itself where there is one).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use toml::Spanned;

use super::FloorConfig;
use super::raw::{RawFloor, RawZone, SpannedRows};
use super::validate::Problems;
use crate::analytics::Zone;
use crate::analytics::homography::{self, CalibError, Calibration, PointPair};
use crate::query::picture::{MAX_PICTURE_PX, drawn_side_px};

/// Plan pixels per metre when there is no plan image (the drawn plan's scale).
pub(super) const DEFAULT_FLOOR_SCALE: f64 = 40.0;
/// Largest floor side accepted, metres.
const MAX_FLOOR_M: f64 = 10_000.0;
/// How far a zone vertex may lie outside the floor (drawing slack), metres.
const ZONE_SLACK_M: f64 = 0.5;

/// Solves a camera's `calibration` pairs; problems point at the pair at fault.
pub(super) fn calibration(
    id: &str,
    rows: &SpannedRows,
    p: &mut Problems<'_>,
) -> Option<Calibration> {
    let mut pairs = Vec::new();
    for row in rows.get_ref() {
        match row.get_ref().as_slice() {
            &[u, v, x, y] => pairs.push(PointPair { u, v, x, y }),
            _ => {
                p.at(
                    row,
                    format!("camera {id:?}: calibration pair must be [u, v, x, y]"),
                );
                return None;
            }
        }
    }
    match homography::solve(&pairs) {
        Ok(c) => Some(c),
        Err(e) => {
            let at = match &e {
                CalibError::NotFinite { index }
                | CalibError::Duplicate { index, .. }
                | CalibError::Mirrored { index } => rows.get_ref().get(*index),
                CalibError::Collinear { pairs, .. } => {
                    pairs.last().and_then(|i| rows.get_ref().get(*i))
                }
                CalibError::TooFew { .. } | CalibError::Degenerate => None,
            };
            let msg = format!("camera {id:?}: calibration: {e}");
            match at {
                Some(row) => p.at(row, msg),
                None => p.at(rows, msg),
            }
            None
        }
    }
}

/// Checks `[floor]`.
pub(super) fn floor(
    raw: &Spanned<RawFloor>,
    p: &mut Problems<'_>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<FloorConfig> {
    let f = raw.get_ref();
    let mut ok = true;
    for (name, v) in [("width", &f.width), ("height", &f.height)] {
        let x = *v.get_ref();
        if !(x > 0.0 && x <= MAX_FLOOR_M) {
            p.at(
                v,
                format!("floor.{name} = {x}: must be above 0 and at most {MAX_FLOOR_M} (metres)"),
            );
            ok = false;
        }
    }
    let plan = f.plan.as_ref().map(|s| (s, resolve(s.get_ref())));
    if let Some((s, path)) = &plan {
        ok &= plan_fits(s, path, p);
    }
    let scale = match (&f.scale, &plan) {
        (Some(s), _) if !(*s.get_ref() > 0.0 && s.get_ref().is_finite()) => {
            p.at(
                s,
                "floor.scale must be above 0 (plan pixels per metre)".into(),
            );
            ok = false;
            DEFAULT_FLOOR_SCALE
        }
        (Some(s), _) => *s.get_ref(),
        (None, Some((s, _))) => {
            p.at(
                *s,
                "floor.plan needs floor.scale (plan pixels per metre)".into(),
            );
            ok = false;
            DEFAULT_FLOOR_SCALE
        }
        (None, None) => DEFAULT_FLOOR_SCALE,
    };
    let origin = match &f.origin {
        None => (0.0, 0.0),
        Some(o) => match o.get_ref().as_slice() {
            &[x, y] if x.is_finite() && y.is_finite() => (x, y),
            _ => {
                p.at(o, "floor.origin must be [x, y] in plan pixels".into());
                ok = false;
                (0.0, 0.0)
            }
        },
    };
    if ok && plan.is_none() {
        ok = drawn_plan_fits(raw, scale, p);
    }
    ok.then(|| FloorConfig {
        width_m: *f.width.get_ref(),
        height_m: *f.height.get_ref(),
        plan: plan.map(|(_, path)| path),
        scale_px_per_m: scale,
        origin_px: origin,
    })
}

/// A plan image that exists, is a PNG or JPEG and is at most [`MAX_PICTURE_PX`] a side (its
/// header only is read).
fn plan_fits(at: &Spanned<String>, path: &std::path::Path, p: &mut Problems<'_>) -> bool {
    if !path.is_file() {
        p.at(at, format!("floor.plan: {} is not a file", path.display()));
        return false;
    }
    match image::image_dimensions(path) {
        Ok((w, h)) if w <= MAX_PICTURE_PX && h <= MAX_PICTURE_PX => true,
        Ok((w, h)) => {
            p.at(
                at,
                format!(
                    "floor.plan: {} is {w} x {h} px; pictures are at most {MAX_PICTURE_PX} px a side",
                    path.display()
                ),
            );
            false
        }
        Err(e) => {
            p.at(
                at,
                format!("floor.plan: {}: not a PNG or JPEG ({e})", path.display()),
            );
            false
        }
    }
}

/// Without a plan image, the drawn plan is the floor at `scale` plus margins: at most
/// [`MAX_PICTURE_PX`] a side, so `render` can never be asked for a picture that does not fit
/// in memory.
fn drawn_plan_fits(raw: &Spanned<RawFloor>, scale: f64, p: &mut Problems<'_>) -> bool {
    let f = raw.get_ref();
    let mut ok = true;
    for (name, v) in [("width", &f.width), ("height", &f.height)] {
        let px = drawn_side_px(*v.get_ref(), scale);
        if px > f64::from(MAX_PICTURE_PX) {
            let at = f.scale.as_ref().map_or(v, |s| s);
            p.at(
                at,
                format!(
                    "floor.{name} x floor.scale = {} m x {scale} px/m: the drawn plan would be \
                     {px:.0} px; at most {MAX_PICTURE_PX} px a side (lower floor.scale)",
                    v.get_ref()
                ),
            );
            ok = false;
        }
    }
    ok
}

/// Checks `[[zones]]` (inside the floor when there is one).
pub(super) fn zones(
    raw: &[Spanned<RawZone>],
    floor: Option<&FloorConfig>,
    p: &mut Problems<'_>,
) -> Vec<Zone> {
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut out = Vec::new();
    for z in raw {
        if let Some(zone) = zone(z.get_ref(), floor, p, &mut seen) {
            out.push(zone);
        }
    }
    out
}

fn zone(
    z: &RawZone,
    floor: Option<&FloorConfig>,
    p: &mut Problems<'_>,
    seen: &mut HashMap<String, (usize, usize)>,
) -> Option<Zone> {
    let id = super::camera::id("zone", &z.id, p, seen);
    let shown = id
        .clone()
        .unwrap_or_else(|| z.id.get_ref().trim().to_string());
    let name = super::camera::name(&format!("zone {shown:?}"), z.name.as_ref(), p);
    let mut ok = id.is_some() && name.is_some();
    let id = shown;
    let mut poly = Vec::new();
    for v in z.polygon.get_ref() {
        match v.get_ref().as_slice() {
            &[x, y] if x.is_finite() && y.is_finite() => {
                if let Some(f) = floor
                    && (!(-ZONE_SLACK_M..=f.width_m + ZONE_SLACK_M).contains(&x)
                        || !(-ZONE_SLACK_M..=f.height_m + ZONE_SLACK_M).contains(&y))
                {
                    p.at(
                        v,
                        format!(
                            "zone {id:?}: vertex [{x}, {y}] is outside the {} x {} m floor",
                            f.width_m, f.height_m
                        ),
                    );
                    ok = false;
                }
                poly.push((x, y));
            }
            _ => {
                p.at(
                    v,
                    format!("zone {id:?}: vertex must be [x, y] in floor metres"),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    if poly.len() < 3 {
        p.at(
            &z.polygon,
            format!("zone {id:?}: polygon needs at least 3 vertices"),
        );
        return None;
    }
    if let Some((a, b)) = crate::analytics::zones::self_intersection(&poly) {
        p.at(
            &z.polygon.get_ref()[b],
            format!(
                "zone {id:?}: edge {} crosses edge {} (polygon twists)",
                b + 1,
                a + 1
            ),
        );
        return None;
    }
    if crate::analytics::zones::area(&poly).abs() < 1e-6 {
        p.at(&z.polygon, format!("zone {id:?}: polygon has no area"));
        return None;
    }
    Some(Zone {
        name: name.flatten().unwrap_or_else(|| id.clone()),
        id: Arc::from(id.as_str()),
        polygon: poly,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::test_support::problem_lines;
    use std::path::Path;

    const CAMERA: &str = "[[cameras]]\nid = \"cam1\"\nurl = \"rtsp://127.0.0.1/x\"\n";

    fn load(extra: &str) -> Result<Config, Vec<String>> {
        let text = format!("{CAMERA}{extra}");
        problem_lines(Config::from_str_at(&text, Path::new("/etc/st/config.toml")))
    }

    #[test]
    fn calibration_floor_and_zones_load() {
        let c = load(
            "calibration = [[100, 500, 0, 0], [700, 500, 6, 0], [700, 200, 6, 8], [100, 200, 0, 8]]\n\
             [floor]\nwidth = 10\nheight = 9\n\
             [[zones]]\nid = \"till\"\nname = \"Till\"\npolygon = [[1, 1], [3, 1], [3, 2]]\n",
        )
        .unwrap();
        let cal = c.cameras[0].calibration.as_ref().unwrap();
        assert!(cal.max_m < 1e-9);
        assert_eq!(c.cameras[0].homography, Some(cal.homography));
        let f = c.floor.unwrap();
        assert_eq!(
            (f.width_m, f.height_m, f.scale_px_per_m),
            (10.0, 9.0, super::DEFAULT_FLOOR_SCALE)
        );
        assert_eq!(&*c.zones[0].id, "till");
        assert_eq!(c.analytics, crate::analytics::AnalyticsParams::default());
    }

    #[test]
    fn every_analytics_problem_is_listed_with_its_position() {
        let p = load(
            "calibration = [[100, 500, 0, 0], [100, 500, 6, 0], [700, 200, 6, 8], [100, 200, 0, 8]]\n\
             homography = [1, 0, 0, 0, 1, 0, 0, 0, 1]\n\
             [floor]\nwidth = -1\nheight = 9\nplan = \"nowhere.png\"\n\
             [[zones]]\nid = \"a\"\npolygon = [[0, 0], [1, 0]]\n\
             [[zones]]\nid = \"a\"\npolygon = [[0, 0], [50, 0], [1, 1]]\n\
             [analytics]\nbin_ms = 5\n",
        )
        .unwrap_err();
        let want = [
            "4:15: camera \"cam1\": give either homography or calibration, not both",
            "7:9: floor.width = -1: must be above 0",
            "9:8: floor.plan: /etc/st/nowhere.png is not a file",
            "9:8: floor.plan needs floor.scale (plan pixels per metre)",
            "12:11: zone \"a\": polygon needs at least 3 vertices",
            "14:6: duplicate zone id \"a\" (first defined at 11:6)",
            "17:10: analytics.bin_ms must be from 20 to 10000",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for (got, want) in p.iter().zip(want) {
            assert!(got.starts_with(want), "{got} vs {want}");
        }
        // Without the raw homography the duplicated image point is reported at its pair.
        let p = load("calibration = [[100, 500, 0, 0], [100, 500, 6, 0], [700, 200, 6, 8], [100, 200, 0, 8]]\n")
            .unwrap_err();
        assert_eq!(
            p,
            vec!["4:34: camera \"cam1\": calibration: pair 2: image point repeats pair 1"]
        );
    }
}
