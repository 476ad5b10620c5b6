//! Constant-velocity Kalman filter for a box, in continuous time (steps are seconds, not
//! frames, so the filter behaves the same at any detect fps).
//!
//! State per coordinate (centre x, centre y, width, height): position and velocity per second.
//! With diagonal process and measurement noise the 8-D filter used by SORT/ByteTrack is block
//! diagonal, so it is run exactly as four independent 2-D filters.

use crate::geometry::BBox;

/// Measurement noise: standard deviation as a fraction of the box size. This and the velocity
/// noise were chosen on the synthetic store scenes (tuning seeds 1–3, `scripts/compare_trackers.py`):
/// detector boxes there, as in real stores, jump when a shelf hides part of a person.
const MEAS_STD: f64 = 0.07;
/// Process noise on position, fraction of box size per √second.
const POS_STD_PER_SQRT_S: f64 = 0.08;
/// Process noise on velocity, fraction of box size per second per √second.
const VEL_STD_PER_SQRT_S: f64 = 0.3;
/// Initial velocity uncertainty, fraction of box size per second.
const INIT_VEL_STD: f64 = 1.0;
/// Boxes never shrink below this many pixels in the filter.
const MIN_SIZE: f64 = 1.0;

#[derive(Debug, Clone, Copy)]
struct Axis {
    pos: f64,
    vel: f64,
    // Covariance [[p00, p01], [p01, p11]].
    p00: f64,
    p01: f64,
    p11: f64,
}

impl Axis {
    fn new(pos: f64, scale: f64) -> Self {
        let sp = 2.0 * MEAS_STD * scale;
        let sv = INIT_VEL_STD * scale;
        Self {
            pos,
            vel: 0.0,
            p00: sp * sp,
            p01: 0.0,
            p11: sv * sv,
        }
    }

    fn predict(&mut self, dt: f64, scale: f64) {
        self.pos += self.vel * dt;
        let qp = (POS_STD_PER_SQRT_S * scale).powi(2) * dt;
        let qv = (VEL_STD_PER_SQRT_S * scale).powi(2) * dt;
        // P = F P Fᵀ + Q with F = [[1, dt], [0, 1]].
        let p00 = self.p00 + 2.0 * dt * self.p01 + dt * dt * self.p11 + qp;
        let p01 = self.p01 + dt * self.p11;
        let p11 = self.p11 + qv;
        self.p00 = p00;
        self.p01 = p01;
        self.p11 = p11;
    }

    fn update(&mut self, z: f64, scale: f64) {
        let r = (MEAS_STD * scale).powi(2);
        let s = self.p00 + r;
        let k0 = self.p00 / s;
        let k1 = self.p01 / s;
        let y = z - self.pos;
        self.pos += k0 * y;
        self.vel += k1 * y;
        let p00 = (1.0 - k0) * self.p00;
        let p01 = (1.0 - k0) * self.p01;
        let p11 = self.p11 - k1 * self.p01;
        self.p00 = p00;
        self.p01 = p01;
        self.p11 = p11;
    }
}

/// Kalman state of one tracked box.
#[derive(Debug, Clone, Copy)]
pub struct BoxFilter {
    cx: Axis,
    cy: Axis,
    w: Axis,
    h: Axis,
}

impl BoxFilter {
    /// Starts a filter at a first observation, at rest.
    pub fn new(b: &BBox) -> Self {
        let (cx, cy, w, h) = center_size(b);
        Self {
            cx: Axis::new(cx, w),
            cy: Axis::new(cy, h),
            w: Axis::new(w, w),
            h: Axis::new(h, h),
        }
    }

    /// Advances the state by `dt` seconds.
    pub fn predict(&mut self, dt: f64) {
        let dt = dt.max(0.0);
        let (sw, sh) = (self.w.pos.max(MIN_SIZE), self.h.pos.max(MIN_SIZE));
        self.cx.predict(dt, sw);
        self.cy.predict(dt, sh);
        self.w.predict(dt, sw);
        self.h.predict(dt, sh);
        // A box that keeps shrinking while unobserved must not invert.
        self.w.pos = self.w.pos.max(MIN_SIZE);
        self.h.pos = self.h.pos.max(MIN_SIZE);
    }

    /// Corrects the state with an observed box.
    pub fn update(&mut self, b: &BBox) {
        let (cx, cy, w, h) = center_size(b);
        let (sw, sh) = (w.max(MIN_SIZE), h.max(MIN_SIZE));
        self.cx.update(cx, sw);
        self.cy.update(cy, sh);
        self.w.update(w, sw);
        self.h.update(h, sh);
    }

    /// The current box estimate.
    pub fn bbox(&self) -> BBox {
        BBox::from_center(
            self.cx.pos as f32,
            self.cy.pos as f32,
            self.w.pos.max(MIN_SIZE) as f32,
            self.h.pos.max(MIN_SIZE) as f32,
        )
    }

    /// Estimated centre velocity in pixels per second.
    pub fn velocity(&self) -> (f64, f64) {
        (self.cx.vel, self.cy.vel)
    }
}

fn center_size(b: &BBox) -> (f64, f64, f64, f64) {
    (
        f64::from(b.x + b.w / 2.0),
        f64::from(b.y + b.h / 2.0),
        f64::from(b.w),
        f64::from(b.h),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_constant_velocity_and_predicts_ahead() {
        // A box moving +50 px/s in x, observed at 10 Hz for 2 s.
        let mut f = BoxFilter::new(&BBox::new(0.0, 100.0, 40.0, 100.0));
        for i in 1..=20 {
            f.predict(0.1);
            f.update(&BBox::new(5.0 * i as f32, 100.0, 40.0, 100.0));
        }
        let (vx, vy) = f.velocity();
        assert!((vx - 50.0).abs() < 5.0, "vx {vx}");
        assert!(vy.abs() < 2.0, "vy {vy}");
        f.predict(1.0);
        let b = f.bbox();
        assert!((b.x - 150.0).abs() < 8.0, "x {}", b.x);
    }

    #[test]
    fn same_motion_at_different_rates_gives_similar_estimates() {
        let run = |hz: usize| {
            let mut f = BoxFilter::new(&BBox::new(0.0, 0.0, 40.0, 100.0));
            let dt = 1.0 / hz as f64;
            for i in 1..=(2 * hz) {
                f.predict(dt);
                f.update(&BBox::new((30.0 * dt * i as f64) as f32, 0.0, 40.0, 100.0));
            }
            f.velocity().0
        };
        let (v5, v25) = (run(5), run(25));
        assert!(
            (v5 - 30.0).abs() < 5.0 && (v25 - 30.0).abs() < 5.0,
            "{v5} {v25}"
        );
    }
}
