//! Checks of one `[[cameras]]` table: id, name, URL, rates, decoding and its image → floor
//! geometry (a raw homography, which must be invertible, or calibration point pairs).
//!
//! Input: the raw camera with spans. Output: a [`CameraConfig`], or None after recording every
//! problem in [`Problems`] at the value at fault.

use std::collections::HashMap;

use toml::Spanned;

use super::raw::{RawCamera, SpannedRows};
use super::validate::{Problems, line_col};
use super::{CameraConfig, Decode};
use crate::analytics::homography::Calibration;

/// Highest detection rate accepted (`detect_fps`).
pub(super) const MAX_DETECT_FPS: u32 = 120;
/// A homography whose determinant is this small against its largest entry cubed maps the
/// image onto a line or a point (all zeros, a row repeated): no floor position can come of it.
const SINGULAR_RELATIVE_DET: f64 = 1e-12;

/// `decode = "auto" | "all" | "keyframes"` at `key`; None (reported) when it is none of them.
pub(super) fn decode_mode(
    value: &Spanned<String>,
    key: &str,
    p: &mut Problems<'_>,
) -> Option<Decode> {
    let parsed = value
        .get_ref()
        .trim()
        .to_ascii_lowercase()
        .parse::<Decode>();
    parsed.map_err(|e| p.at(value, format!("{key}: {e}"))).ok()
}

/// A unique id of letters, digits, `-`, `_`, `.` (`what` names it: "camera", "zone").
pub(super) fn id(
    what: &str,
    raw: &Spanned<String>,
    p: &mut Problems<'_>,
    seen: &mut HashMap<String, (usize, usize)>,
) -> Option<String> {
    let id = raw.get_ref().trim().to_string();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        p.at(
            raw,
            format!("{what} id {id:?}: use letters, digits, '-', '_' or '.'"),
        );
        return None;
    }
    if let Some((line, col)) = seen.get(&id) {
        p.at(
            raw,
            format!("duplicate {what} id {id:?} (first defined at {line}:{col})"),
        );
        return None;
    }
    seen.insert(id.clone(), line_col(p.text, raw.span().start));
    Some(id)
}

/// A display name: no control characters (they would rewrite a terminal showing a table).
pub(super) fn name(
    what: &str,
    raw: Option<&Spanned<String>>,
    p: &mut Problems<'_>,
) -> Option<Option<String>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    match raw.get_ref().chars().find(|c| c.is_control()) {
        Some(c) => {
            p.at(
                raw,
                format!(
                    "{what}: name contains the control character U+{:04X}",
                    u32::from(c)
                ),
            );
            None
        }
        None => Some(Some(raw.get_ref().clone())),
    }
}

/// One camera table; `(default_fps, default_decode)` come from `[ingest]`.
pub(super) fn camera(
    cam: &RawCamera,
    (default_fps, default_decode): (u32, Decode),
    p: &mut Problems<'_>,
    seen: &mut HashMap<String, (usize, usize)>,
) -> Option<CameraConfig> {
    let id = id("camera", &cam.id, p, seen);
    let shown = id
        .clone()
        .unwrap_or_else(|| cam.id.get_ref().trim().to_string());
    let name = name(&format!("camera {shown:?}"), cam.name.as_ref(), p);
    let url = url(&shown, &cam.url, p);
    let mut ok = true;
    if let Some(f) = &cam.detect_fps
        && *f.get_ref() > MAX_DETECT_FPS
    {
        p.at(
            f,
            format!("camera {shown:?}: detect_fps must be from 0 to {MAX_DETECT_FPS}"),
        );
        ok = false;
    }
    let decode = match &cam.decode {
        None => Some(default_decode),
        Some(d) => decode_mode(d, &format!("camera {shown:?}: decode"), p),
    };
    let geometry = geometry(&shown, cam.homography.as_ref(), cam.calibration.as_ref(), p);
    let (id, name, url, decode, (homography, calibration)) = (id?, name?, url?, decode?, geometry?);
    ok.then(|| CameraConfig {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        url,
        detect_fps: cam
            .detect_fps
            .as_ref()
            .map_or(default_fps, |f| *f.get_ref()),
        decode,
        homography,
        pipeline: None,
        calibration,
    })
}

/// An `rtsp://host[:port]/path` URL (credentials masked in every message).
fn url(id: &str, raw: &Spanned<String>, p: &mut Problems<'_>) -> Option<url::Url> {
    match url::Url::parse(raw.get_ref().trim()) {
        Ok(u) if matches!(u.scheme(), "rtsp" | "rtsps" | "rtspt") && u.host_str().is_some() => {
            Some(u)
        }
        Ok(u) => {
            p.at(
                raw,
                format!(
                    "camera {id:?}: url {} must be rtsp://host[:port]/path",
                    crate::redact::url(&u)
                ),
            );
            None
        }
        Err(e) => {
            p.at(raw, format!("camera {id:?}: malformed url ({e})"));
            None
        }
    }
}

/// The camera's image → floor homography: given raw (9 finite numbers, invertible) or solved
/// from calibration pairs; not both. None (reported) when invalid; `Some((None, None))` when
/// the camera has neither.
pub(super) fn geometry(
    id: &str,
    homography: Option<&Spanned<Vec<f64>>>,
    calibration: Option<&SpannedRows>,
    p: &mut Problems<'_>,
) -> Option<(Option<[f64; 9]>, Option<Calibration>)> {
    match (homography, calibration) {
        (Some(_), Some(rows)) => {
            p.at(
                rows,
                format!("camera {id:?}: give either homography or calibration, not both"),
            );
            None
        }
        (None, Some(rows)) => {
            let c = super::floor::calibration(id, rows, p)?;
            Some((Some(c.homography), Some(c)))
        }
        (Some(h), None) => {
            let m = <[f64; 9]>::try_from(h.get_ref().as_slice())
                .ok()
                .filter(|m| m.iter().all(|v| v.is_finite()));
            let Some(m) = m else {
                p.at(
                    h,
                    format!("camera {id:?}: homography must be 9 finite numbers (row-major 3x3)"),
                );
                return None;
            };
            if singular(&m) {
                p.at(
                    h,
                    format!(
                        "camera {id:?}: homography is singular (it maps the picture onto a line \
                         or a point)"
                    ),
                );
                return None;
            }
            Some((Some(m), None))
        }
        (None, None) => Some((None, None)),
    }
}

/// Whether a 3×3 matrix has no inverse (to working precision).
fn singular(m: &[f64; 9]) -> bool {
    let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6]);
    let scale = m.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    !(det.is_finite() && scale > 0.0 && det.abs() > SINGULAR_RELATIVE_DET * scale.powi(3))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::test_support::{CAMERA, problem_lines};
    use std::path::Path;

    fn problems(camera_extra: &str) -> Vec<String> {
        let text = format!("{CAMERA}{camera_extra}");
        problem_lines(Config::from_str_at(&text, Path::new("c.toml")))
            .err()
            .unwrap_or_default()
    }

    /// An all-zero homography (and one with two equal rows) passed check-config.
    #[test]
    fn a_singular_homography_is_refused() {
        for h in ["[0, 0, 0, 0, 0, 0, 0, 0, 0]", "[1, 2, 3, 1, 2, 3, 0, 0, 1]"] {
            let p = problems(&format!("homography = {h}\n"));
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                p[0].starts_with("4:14: camera \"c\": homography is singular"),
                "{p:?}"
            );
        }
        assert!(problems("homography = [0.01, 0, 0, 0, 0.01, 0, 0, 0, 1]\n").is_empty());
    }

    /// Control characters in a name (an escape sequence) were accepted and printed as is.
    #[test]
    fn control_characters_in_names_are_refused() {
        let p = problems("name = \"Door\\u001b[2J\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("4:8: camera \"c\": name contains the control character U+001B"),
            "{p:?}"
        );
        assert!(problems("name = \"Entrée ⅰ\"\n").is_empty());
    }
}
