//! Drawing primitives for the store pictures: lines clipped to the picture (so a point far
//! outside, from a bad homography or a corrupt row, costs nothing), labels from a TrueType
//! font, the heatmap's blur and colours, and the trajectory palette.
//!
//! Input: an RGB picture and coordinates in its pixels. Output: the picture drawn on.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

/// Label size, pixels.
const LABEL_PX: f32 = 16.0;

pub(super) fn box_blur(g: &[f64], w: usize, h: usize) -> Vec<f64> {
    let mut out = vec![0.0; g.len()];
    for j in 0..h {
        for i in 0..w {
            let (mut s, mut n) = (0.0, 0.0);
            for dj in j.saturating_sub(1)..=(j + 1).min(h - 1) {
                for di in i.saturating_sub(1)..=(i + 1).min(w - 1) {
                    s += g[dj * w + di];
                    n += 1.0;
                }
            }
            out[j * w + i] = s / n;
        }
    }
    out
}

/// Blue → green → yellow → red.
pub(super) fn heat_colour(v: f64) -> [u8; 3] {
    let stops = [
        (0.0, [40.0, 60.0, 220.0]),
        (0.35, [40.0, 200.0, 120.0]),
        (0.7, [250.0, 220.0, 40.0]),
        (1.0, [230.0, 30.0, 30.0]),
    ];
    for w in stops.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if v <= b {
            let f = ((v - a) / (b - a)).clamp(0.0, 1.0);
            return std::array::from_fn(|k| (ca[k] + f * (cb[k] - ca[k])) as u8);
        }
    }
    [230, 30, 30]
}

pub(super) fn palette(i: usize) -> Rgb<u8> {
    const P: [[u8; 3]; 8] = [
        [214, 39, 40],
        [31, 119, 180],
        [44, 160, 44],
        [148, 103, 189],
        [255, 127, 14],
        [140, 86, 75],
        [227, 119, 194],
        [23, 190, 207],
    ];
    Rgb(P[i % P.len()])
}

/// Lines through `pts`, `radius` pixels either side.
pub(super) fn polyline(img: &mut RgbImage, pts: &[(f64, f64)], c: Rgb<u8>, radius: i64) {
    // The picture grown by the line's width: what lies outside cannot touch a pixel.
    let pad = radius as f64 + 1.0;
    let bounds = (
        -pad,
        -pad,
        f64::from(img.width()) + pad,
        f64::from(img.height()) + pad,
    );
    for w in pts.windows(2) {
        let Some(((x0, y0), (x1, y1))) = clip(w[0], w[1], bounds) else {
            continue;
        };
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
        for s in 0..=steps {
            let f = s as f64 / steps as f64;
            let (x, y) = (
                (x0 + f * (x1 - x0)).round() as i64,
                (y0 + f * (y1 - y0)).round() as i64,
            );
            for dy in -radius + 1..radius {
                for dx in -radius + 1..radius {
                    put(img, x + dx, y + dy, c);
                }
            }
            if radius == 1 {
                put(img, x, y, c);
            }
        }
    }
}

/// The part of segment `a`–`b` inside the rectangle `(x0, y0, x1, y1)` (Liang–Barsky); None
/// when it misses it or a coordinate is not finite.
fn clip(
    a: (f64, f64),
    b: (f64, f64),
    (x0, y0, x1, y1): (f64, f64, f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    if ![a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
        return None;
    }
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then(|| {
        let at = |t: f64| (a.0 + t * dx, a.1 + t * dy);
        (at(t0), at(t1))
    })
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// Text centred on `at`.
pub(super) fn label(img: &mut RgbImage, font: &FontVec, text: &str, at: (f64, f64), c: Rgb<u8>) {
    let scaled = font.as_scaled(PxScale::from(LABEL_PX));
    let width: f32 = text
        .chars()
        .map(|ch| scaled.h_advance(scaled.glyph_id(ch)))
        .sum();
    let mut x = at.0 as f32 - width / 2.0;
    let baseline = at.1 as f32 + LABEL_PX / 3.0;
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        let g = id.with_scale_and_position(PxScale::from(LABEL_PX), ab_glyph::point(x, baseline));
        x += scaled.h_advance(id);
        let Some(outline) = font.outline_glyph(g) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, cov| {
            if cov < 0.05 {
                return;
            }
            let (px, py) = (
                b.min.x as i64 + i64::from(gx),
                b.min.y as i64 + i64::from(gy),
            );
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                let p = img.get_pixel_mut(px as u32, py as u32);
                let a = f64::from(cov);
                for k in 0..3 {
                    p.0[k] = (f64::from(p.0[k]) * (1.0 - a) + f64::from(c.0[k]) * a) as u8;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment reaching a point 1e12 pixels away was stepped pixel by pixel (render hung).
    #[test]
    fn lines_far_outside_the_picture_cost_nothing() {
        let mut img = RgbImage::new(50, 40);
        let t = std::time::Instant::now();
        polyline(
            &mut img,
            &[(10.0, 10.0), (1e12, -3e11), (f64::NAN, 1.0)],
            Rgb([255, 0, 0]),
            2,
        );
        polyline(
            &mut img,
            &[(-1e15, -1e15), (-1e15, 1e15)],
            Rgb([0, 255, 0]),
            1,
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(
            img.get_pixel(10, 10),
            &Rgb([255, 0, 0]),
            "the visible part is drawn"
        );
        assert!(
            img.pixels().all(|p| p.0[1] == 0),
            "nothing of the line outside"
        );
    }

    #[test]
    fn clipping_keeps_the_inside_part() {
        let r = (0.0, 0.0, 10.0, 10.0);
        assert_eq!(
            clip((-5.0, 5.0), (15.0, 5.0), r),
            Some(((0.0, 5.0), (10.0, 5.0)))
        );
        assert_eq!(clip((-5.0, -5.0), (-1.0, 20.0), r), None);
        assert_eq!(
            clip((2.0, 2.0), (3.0, 3.0), r),
            Some(((2.0, 2.0), (3.0, 3.0)))
        );
    }
}
