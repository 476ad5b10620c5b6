//! A pinhole camera mounted high in the store, looking down at the floor: projection of 3-D
//! points, the floor → image homography, and line-of-sight tests against boxes (shelves and
//! people) for occlusion.

/// A camera.
#[derive(Debug, Clone)]
pub struct Camera {
    /// Position, metres.
    pub pos: [f64; 3],
    /// Rows: right, down, forward (world → camera rotation).
    r: [[f64; 3]; 3],
    /// Focal length in pixels.
    pub f: f64,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn norm(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

/// An axis-aligned 3-D box (an occluder).
#[derive(Debug, Clone, Copy)]
pub struct Aabb {
    /// Minimum corner.
    pub min: [f64; 3],
    /// Maximum corner.
    pub max: [f64; 3],
}

impl Aabb {
    /// True if the segment from `a` to `b` passes through the box (excluding its end points).
    pub fn blocks(&self, a: [f64; 3], b: [f64; 3]) -> bool {
        let d = sub(b, a);
        let (mut t0, mut t1) = (1e-6, 1.0 - 1e-6);
        for k in 0..3 {
            if d[k].abs() < 1e-12 {
                if a[k] < self.min[k] || a[k] > self.max[k] {
                    return false;
                }
            } else {
                let (mut lo, mut hi) = ((self.min[k] - a[k]) / d[k], (self.max[k] - a[k]) / d[k]);
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                t0 = f64::max(t0, lo);
                t1 = f64::min(t1, hi);
                if t0 > t1 {
                    return false;
                }
            }
        }
        true
    }
}

impl Camera {
    /// A camera at `pos` looking at `target`.
    pub fn look_at(pos: [f64; 3], target: [f64; 3], f: f64, width: u32, height: u32) -> Self {
        let fwd = norm(sub(target, pos));
        let right = norm(cross(fwd, [0.0, 0.0, 1.0]));
        let down = cross(fwd, right);
        Self {
            pos,
            r: [right, down, fwd],
            f,
            width,
            height,
        }
    }

    /// Pixel coordinates and depth of a world point, if it is in front of the camera.
    pub fn project(&self, p: [f64; 3]) -> Option<(f64, f64, f64)> {
        let d = sub(p, self.pos);
        let (x, y, z) = (dot(self.r[0], d), dot(self.r[1], d), dot(self.r[2], d));
        if z < 0.1 {
            return None;
        }
        Some((
            self.f * x / z + f64::from(self.width) / 2.0,
            self.f * y / z + f64::from(self.height) / 2.0,
            z,
        ))
    }

    /// Horizontal unit vector pointing to the camera's right.
    pub fn right(&self) -> [f64; 3] {
        self.r[0]
    }

    /// Row-major 3×3 homography taking image pixels to floor metres (z = 0).
    pub fn image_to_floor(&self) -> [f64; 9] {
        // floor → image: K [r1 r2 t] with t = -R C.
        let (cx, cy) = (f64::from(self.width) / 2.0, f64::from(self.height) / 2.0);
        let t = [
            -dot(self.r[0], self.pos),
            -dot(self.r[1], self.pos),
            -dot(self.r[2], self.pos),
        ];
        let col = |v: [f64; 3]| [self.f * v[0] + cx * v[2], self.f * v[1] + cy * v[2], v[2]];
        let c1 = col([self.r[0][0], self.r[1][0], self.r[2][0]]);
        let c2 = col([self.r[0][1], self.r[1][1], self.r[2][1]]);
        let c3 = col(t);
        let h = [
            [c1[0], c2[0], c3[0]],
            [c1[1], c2[1], c3[1]],
            [c1[2], c2[2], c3[2]],
        ];
        invert3(&h)
    }
}

fn invert3(m: &[[f64; 3]; 3]) -> [f64; 9] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let inv = |a: f64| a / det;
    [
        inv(m[1][1] * m[2][2] - m[1][2] * m[2][1]),
        inv(m[0][2] * m[2][1] - m[0][1] * m[2][2]),
        inv(m[0][1] * m[1][2] - m[0][2] * m[1][1]),
        inv(m[1][2] * m[2][0] - m[1][0] * m[2][2]),
        inv(m[0][0] * m[2][2] - m[0][2] * m[2][0]),
        inv(m[0][2] * m[1][0] - m[0][0] * m[1][2]),
        inv(m[1][0] * m[2][1] - m[1][1] * m[2][0]),
        inv(m[0][1] * m[2][0] - m[0][0] * m[2][1]),
        inv(m[0][0] * m[1][1] - m[0][1] * m[1][0]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::apply_homography;

    #[test]
    fn homography_inverts_the_projection_of_floor_points() {
        let cam = Camera::look_at([0.0, -1.0, 3.2], [10.0, 6.0, 0.0], 900.0, 1280, 720);
        let h = cam.image_to_floor();
        for (x, y) in [(10.0, 6.0), (4.0, 2.0), (15.0, 9.0)] {
            let (u, v, _) = cam.project([x, y, 0.0]).unwrap();
            let (fx, fy) = apply_homography(&h, (u as f32, v as f32)).unwrap();
            assert!(
                (fx - x).abs() < 0.01 && (fy - y).abs() < 0.01,
                "{fx},{fy} vs {x},{y}"
            );
        }
        // The look-at point is the image centre; higher points are higher in the image.
        let (u, v, _) = cam.project([10.0, 6.0, 0.0]).unwrap();
        assert!((u - 640.0).abs() < 1e-6 && (v - 360.0).abs() < 1e-6);
        assert!(cam.project([10.0, 6.0, 1.7]).unwrap().1 < v);
    }

    #[test]
    fn segment_box_test() {
        let b = Aabb {
            min: [1.0, -1.0, 0.0],
            max: [2.0, 1.0, 2.0],
        };
        assert!(b.blocks([0.0, 0.0, 1.0], [3.0, 0.0, 1.0]));
        assert!(!b.blocks([0.0, 0.0, 3.0], [3.0, 0.0, 3.0]));
        assert!(!b.blocks([0.0, 0.0, 1.0], [0.9, 0.0, 1.0]));
    }
}
