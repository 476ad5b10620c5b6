//! How a camera frame becomes the model's input picture, and the exact inverse.
//!
//! Input: the model's input spec (size, resize mode, colour order, layout, from its description)
//! and a frame's decoded size and pixel aspect ratio. Output: the caps the pipeline must produce
//! ([`InputSpec::caps_format`], [`InputSpec::add_borders`]) and an [`InputMapping`] that turns the
//! detector's normalized boxes back into source pixels.
//!
//! `Stretch` scales the frame to the input size, ignoring aspect (how the TF Object Detection
//! API's fixed-shape resizer trains SSD). `Letterbox` keeps the display aspect ratio and pads
//! with black, exactly as GStreamer's `videoscale add-borders=true` does: the content rectangle
//! is computed with the same integer arithmetic, so the inverse matches pixel for pixel.

use serde::Deserialize;

use crate::geometry::BBox;

/// How the model expects the picture to be fitted to its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale width and height independently to the input size.
    #[default]
    Stretch,
    /// Keep the display aspect ratio; pad the rest with black, content centred.
    Letterbox,
}

/// Channel order of the input picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ColorOrder {
    /// Red, green, blue.
    #[default]
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red.
    #[serde(rename = "BGR")]
    Bgr,
}

/// Memory layout of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Layout {
    /// `[1, H, W, 3]`, pixels interleaved (what the pipeline produces).
    #[default]
    #[serde(rename = "NHWC")]
    Nhwc,
    /// `[1, 3, H, W]`, one plane per channel (transposed when the tensor is filled).
    #[serde(rename = "NCHW")]
    Nchw,
}

/// What the model's input picture must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// How the frame is fitted.
    pub resize: ResizeMode,
    /// Channel order.
    pub color: ColorOrder,
    /// Tensor layout.
    pub layout: Layout,
}

impl InputSpec {
    /// The raw-video format the pipeline must deliver.
    pub fn caps_format(&self) -> &'static str {
        match self.color {
            ColorOrder::Rgb => "RGB",
            ColorOrder::Bgr => "BGR",
        }
    }

    /// Whether `videoscale` must pad to keep the aspect ratio.
    pub fn add_borders(&self) -> bool {
        self.resize == ResizeMode::Letterbox
    }

    /// The mapping for a source of `size` pixels with pixel aspect ratio `par` (n/d).
    pub fn mapping(&self, size: (u32, u32), par: (u32, u32)) -> InputMapping {
        let (iw, ih) = (self.width, self.height);
        let content = match self.resize {
            ResizeMode::Stretch => (0, 0, iw, ih),
            ResizeMode::Letterbox => letterbox_rect(size, par, (iw, ih)),
        };
        InputMapping {
            source: size,
            input: (iw, ih),
            content,
        }
    }
}

/// Where a source picture lies inside the model input, and how to map back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputMapping {
    source: (u32, u32),
    input: (u32, u32),
    /// Content rectangle in input pixels: x, y, width, height.
    content: (u32, u32, u32, u32),
}

impl InputMapping {
    /// Decoded source size in pixels.
    pub fn source_size(&self) -> (u32, u32) {
        self.source
    }

    /// The model input's size in pixels.
    pub fn input_size(&self) -> (u32, u32) {
        self.input
    }

    /// The content rectangle in input pixels (x, y, width, height).
    pub fn content(&self) -> (u32, u32, u32, u32) {
        self.content
    }

    /// A box given in normalized input coordinates (0..1 of the input's width and height) as a
    /// box in source pixels, clipped to the source. `None` for non-finite coordinates and for
    /// boxes that are empty once clipped (e.g. lying wholly in a border).
    pub fn to_source(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> Option<BBox> {
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return None;
        }
        let (sw, sh) = (self.source.0 as f32, self.source.1 as f32);
        let (cx, cy, cw, ch) = (
            self.content.0 as f32,
            self.content.1 as f32,
            self.content.2 as f32,
            self.content.3 as f32,
        );
        let (iw, ih) = (self.input.0 as f32, self.input.1 as f32);
        let map_x = |v: f32| ((v * iw - cx) / cw * sw).clamp(0.0, sw);
        let map_y = |v: f32| ((v * ih - cy) / ch * sh).clamp(0.0, sh);
        let (a, b) = (map_x(x0), map_x(x1));
        let (c, d) = (map_y(y0), map_y(y1));
        if b <= a || d <= c {
            return None;
        }
        Some(BBox::new(a, c, b - a, d - c))
    }

    /// The forward direction: a source-pixel box in normalized input coordinates
    /// `[x0, y0, x1, y1]` (used by tests and tools that simulate a detector).
    pub fn to_input(&self, b: &BBox) -> [f32; 4] {
        let (sw, sh) = (self.source.0 as f32, self.source.1 as f32);
        let (cx, cy, cw, ch) = (
            self.content.0 as f32,
            self.content.1 as f32,
            self.content.2 as f32,
            self.content.3 as f32,
        );
        let (iw, ih) = (self.input.0 as f32, self.input.1 as f32);
        let fx = |v: f32| (cx + v / sw * cw) / iw;
        let fy = |v: f32| (cy + v / sh * ch) / ih;
        [fx(b.x), fy(b.y), fx(b.x + b.w), fy(b.y + b.h)]
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// `videoscale add-borders=true`'s content rectangle for output pixel aspect ratio 1/1: the
/// display aspect ratio `w·par_n / (h·par_d)` reduced, then the output height (or width) that
/// keeps it, truncated; the border split in two with the odd pixel at the far edge.
fn letterbox_rect(
    (w, h): (u32, u32),
    (par_n, par_d): (u32, u32),
    (ow, oh): (u32, u32),
) -> (u32, u32, u32, u32) {
    let (num, den) = (
        u64::from(w) * u64::from(par_n.max(1)),
        u64::from(h) * u64::from(par_d.max(1)),
    );
    let g = gcd(num, den);
    let (n, d) = (num / g, den / g);
    if n == 0 || d == 0 || (u64::from(ow) * d == u64::from(oh) * n) {
        return (0, 0, ow, oh);
    }
    let to_h = u64::from(ow) * d / n;
    if to_h <= u64::from(oh) {
        let borders = oh - to_h as u32;
        (0, borders / 2, ow, oh - borders)
    } else {
        let to_w = (u64::from(oh) * n / d) as u32;
        let borders = ow - to_w;
        (borders / 2, 0, ow - borders, oh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resize: ResizeMode) -> InputSpec {
        InputSpec {
            width: 300,
            height: 300,
            resize,
            color: ColorOrder::Rgb,
            layout: Layout::Nhwc,
        }
    }

    fn near(a: &BBox, b: &BBox, tol: f32) -> bool {
        (a.x - b.x).abs() < tol
            && (a.y - b.y).abs() < tol
            && (a.w - b.w).abs() < tol
            && (a.h - b.h).abs() < tol
    }

    /// A person box in each part of the picture, for 4:3, 16:9 and portrait sources.
    fn cases() -> Vec<((u32, u32), BBox)> {
        vec![
            ((768, 576), BBox::new(100.0, 20.0, 60.0, 150.0)),
            ((768, 576), BBox::new(600.0, 400.0, 80.0, 170.0)),
            ((1920, 1080), BBox::new(1500.0, 700.0, 120.0, 370.0)),
            ((1280, 720), BBox::new(10.0, 5.0, 90.0, 200.0)),
            ((576, 1024), BBox::new(200.0, 800.0, 100.0, 220.0)),
        ]
    }

    #[test]
    fn stretch_round_trip_for_every_aspect_ratio() {
        for (size, truth) in cases() {
            let m = spec(ResizeMode::Stretch).mapping(size, (1, 1));
            assert_eq!(m.content(), (0, 0, 300, 300));
            let [x0, y0, x1, y1] = m.to_input(&truth);
            let back = m.to_source(x0, y0, x1, y1).unwrap();
            assert!(near(&back, &truth, 0.01), "{size:?}: {back:?} vs {truth:?}");
        }
    }

    #[test]
    fn letterbox_round_trip_for_every_aspect_ratio() {
        for (size, truth) in cases() {
            let m = spec(ResizeMode::Letterbox).mapping(size, (1, 1));
            let [x0, y0, x1, y1] = m.to_input(&truth);
            let back = m.to_source(x0, y0, x1, y1).unwrap();
            assert!(near(&back, &truth, 0.05), "{size:?}: {back:?} vs {truth:?}");
        }
    }

    #[test]
    fn letterbox_rectangle_matches_videoscale_arithmetic() {
        let m = |size, par| spec(ResizeMode::Letterbox).mapping(size, par).content();
        // 4:3 → 300×300: 300·3/4 = 225 rows of picture, 75 rows of border, 37 on top.
        assert_eq!(m((768, 576), (1, 1)), (0, 37, 300, 225));
        // 16:9: 300·9/16 = 168.75 → 168, border 132, 66 on top.
        assert_eq!(m((1920, 1080), (1, 1)), (0, 66, 300, 168));
        // Portrait 9:16: width 300·9/16 → 168, 66 at the left.
        assert_eq!(m((576, 1024), (1, 1)), (66, 0, 168, 300));
        // 720×576 with PAR 16/15 is 4:3 on screen, same as 768×576.
        assert_eq!(m((720, 576), (16, 15)), (0, 37, 300, 225));
        // Square source: no border.
        assert_eq!(m((500, 500), (1, 1)), (0, 0, 300, 300));
    }

    #[test]
    fn letterboxed_input_read_as_stretched_is_the_old_vertical_error() {
        // What the service used to do: letterboxed input decoded as if stretched. A box's
        // height comes out 3/4 of the truth on a 4:3 camera.
        let truth = BBox::new(300.0, 100.0, 50.0, 200.0);
        let lb = spec(ResizeMode::Letterbox).mapping((768, 576), (1, 1));
        let st = spec(ResizeMode::Stretch).mapping((768, 576), (1, 1));
        let [x0, y0, x1, y1] = lb.to_input(&truth);
        let wrong = st.to_source(x0, y0, x1, y1).unwrap();
        assert!((wrong.h / truth.h - 0.75).abs() < 0.01, "{wrong:?}");
    }

    #[test]
    fn non_finite_and_border_only_boxes_are_rejected() {
        let m = spec(ResizeMode::Letterbox).mapping((768, 576), (1, 1));
        assert_eq!(m.to_source(f32::NAN, 0.2, 0.5, 0.5), None);
        assert_eq!(m.to_source(0.1, 0.2, f32::INFINITY, 0.5), None);
        // Wholly inside the top border (rows 0..37 of 300).
        assert_eq!(m.to_source(0.1, 0.0, 0.5, 0.1), None);
        // Reversed box.
        assert_eq!(m.to_source(0.5, 0.5, 0.4, 0.6), None);
    }
}
