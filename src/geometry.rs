//! Plain geometry shared by the detector parser, the tracker and the floor mapping: boxes in
//! source-image pixels, intersection over union, and image → floor homographies.

use serde::Serialize;

/// An axis-aligned box in source-image pixels: top-left corner, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width (≥ 0).
    pub w: f32,
    /// Height (≥ 0).
    pub h: f32,
}

impl BBox {
    /// Box from top-left corner and size.
    pub const fn new(x: f32, y: f32, w: f32, h: f32) -> Self {
        Self { x, y, w, h }
    }

    /// Box from its centre and size.
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self::new(cx - w / 2.0, cy - h / 2.0, w, h)
    }

    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Intersection over union with `other` (0 when either is empty).
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// This box cut to a `width × height` image (may become empty).
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        let x0 = self.x.clamp(0.0, width);
        let y0 = self.y.clamp(0.0, height);
        let x1 = (self.x + self.w).clamp(0.0, width);
        let y1 = (self.y + self.h).clamp(0.0, height);
        BBox::new(x0, y0, x1 - x0, y1 - y0)
    }

    /// Middle of the bottom edge: where a standing person touches the floor.
    pub fn foot(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h)
    }
}

/// One detected person in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Where, in source pixels.
    pub bbox: BBox,
    /// Detector confidence in 0..=1.
    pub score: f32,
}

/// Maps an image point through a row-major 3×3 homography; `None` if it lands at infinity.
pub fn apply_homography(h: &[f64; 9], (u, v): (f32, f32)) -> Option<(f64, f64)> {
    let (u, v) = (f64::from(u), f64::from(v));
    let w = h[6] * u + h[7] * v + h[8];
    if w.abs() < 1e-12 {
        return None;
    }
    Some((
        (h[0] * u + h[1] * v + h[2]) / w,
        (h[3] * u + h[4] * v + h[5]) / w,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 0.0, 10.0, 10.0)), 0.0);
        let b = BBox::new(5.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn homography_identity_and_scale() {
        let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(apply_homography(&id, (3.0, 4.0)), Some((3.0, 4.0)));
        let scale = [0.01, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0];
        let (x, y) = apply_homography(&scale, (100.0, 100.0)).unwrap();
        assert!((x - 1.0).abs() < 1e-9 && (y - 2.0).abs() < 1e-9);
        let inf = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(apply_homography(&inf, (1.0, 1.0)), None);
    }
}
