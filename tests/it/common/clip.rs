//! Test clips with known ground truth: person crops from the sample video pasted at known
//! positions and scales onto canvases of any size, encoded as H.264 MP4 for the simulator.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use storetrack::geometry::BBox;

/// A packed RGB picture.
#[derive(Clone)]
pub struct Rgb {
    /// Width in pixels.
    pub w: u32,
    /// Height in pixels.
    pub h: u32,
    /// `w * h * 3` bytes, rows without padding.
    pub data: Vec<u8>,
}

impl Rgb {
    /// A picture of one grey level.
    pub fn grey(w: u32, h: u32, level: u8) -> Rgb {
        Rgb {
            w,
            h,
            data: vec![level; (w * h * 3) as usize],
        }
    }

    fn px(&self, x: u32, y: u32) -> [f32; 3] {
        let i = ((y * self.w + x) * 3) as usize;
        [
            f32::from(self.data[i]),
            f32::from(self.data[i + 1]),
            f32::from(self.data[i + 2]),
        ]
    }

    fn put(&mut self, x: u32, y: u32, v: [f32; 3]) {
        let i = ((y * self.w + x) * 3) as usize;
        for (dst, src) in self.data[i..i + 3].iter_mut().zip(v) {
            *dst = src.round() as u8;
        }
    }

    /// Bilinear sample at a continuous position (pixel centres at +0.5).
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let fx = (x - 0.5).clamp(0.0, (self.w - 1) as f32);
        let fy = (y - 0.5).clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let (a, b, c, d) = (
            self.px(x0, y0),
            self.px(x1, y0),
            self.px(x0, y1),
            self.px(x1, y1),
        );
        std::array::from_fn(|k| {
            (a[k] * (1.0 - ax) + b[k] * ax) * (1.0 - ay) + (c[k] * (1.0 - ax) + d[k] * ax) * ay
        })
    }

    /// This picture stretched to `w × h` (bilinear, no aspect kept).
    pub fn resized(&self, w: u32, h: u32) -> Rgb {
        let mut out = Rgb::grey(w, h, 0);
        let (sx, sy) = (self.w as f32 / w as f32, self.h as f32 / h as f32);
        for y in 0..h {
            for x in 0..w {
                let v = self.sample((x as f32 + 0.5) * sx, (y as f32 + 0.5) * sy);
                out.put(x, y, v);
            }
        }
        out
    }

    /// Pastes the `region` of `src` scaled by `scale` (x, y) with its top-left corner at `at`.
    pub fn paste(&mut self, src: &Rgb, region: BBox, scale: (f32, f32), at: (f32, f32)) {
        let (w, h) = (region.w * scale.0, region.h * scale.1);
        let (x0, y0) = (at.0.round() as i64, at.1.round() as i64);
        for dy in 0..h.round() as i64 {
            for dx in 0..w.round() as i64 {
                let (x, y) = (x0 + dx, y0 + dy);
                if x < 0 || y < 0 || x >= i64::from(self.w) || y >= i64::from(self.h) {
                    continue;
                }
                let v = src.sample(
                    region.x + (dx as f32 + 0.5) / scale.0,
                    region.y + (dy as f32 + 0.5) / scale.1,
                );
                self.put(x as u32, y as u32, v);
            }
        }
    }
}

/// Parses a pipeline description (panics with GStreamer's message: a test setup failure).
pub fn launch(description: &str) -> gst::Pipeline {
    gst::init().unwrap();
    gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// The element `name` of `pipeline` as its concrete type.
pub fn element<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> T {
    pipeline.by_name(name).unwrap().downcast::<T>().unwrap()
}

/// Caps of packed RGB frames of `w × h` at 10 fps with square pixels.
pub fn rgb_caps(w: u32, h: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(10, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

/// Frame `index` (0-based) of a video file, decoded to RGB.
pub fn decode_frame(path: &Path, index: usize) -> Rgb {
    let pipeline = launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=sink sync=false",
        path.display()
    ));
    let sink: gst_app::AppSink = element(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut picture = None;
    for _ in 0..=index {
        picture = sink.try_pull_sample(gst::ClockTime::from_seconds(10));
    }
    let sample = picture.expect("video has fewer frames than asked for");
    let s = sample.caps().unwrap().structure(0).unwrap();
    let (w, h) = (
        s.get::<i32>("width").unwrap() as u32,
        s.get::<i32>("height").unwrap() as u32,
    );
    let data = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(data.len(), (w * h * 3) as usize, "RGB rows are padded");
    Rgb { w, h, data }
}

/// Encodes `frames` copies of `picture` as a 10 fps H.264 MP4 at `out`.
pub fn encode_still(picture: &Rgb, frames: usize, out: &Path) {
    let pipeline = launch(&format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
         ! video/x-h264,profile=constrained-baseline ! h264parse ! mp4mux \
         ! filesink location=\"{}\"",
        out.display()
    ));
    let src: gst_app::AppSrc = element(&pipeline, "src");
    src.set_caps(Some(&rgb_caps(picture.w, picture.h)));
    pipeline.set_state(gst::State::Playing).unwrap();
    for i in 0..frames as u64 {
        let mut buf = gst::Buffer::from_mut_slice(picture.data.clone());
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100 * i));
            b.set_duration(gst::ClockTime::from_mseconds(100));
        }
        src.push_buffer(buf).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("encoder did not finish");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "encoding failed: {msg:?}"
    );
}
