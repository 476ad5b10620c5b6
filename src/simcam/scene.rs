//! What a simulated camera looks at: the file as it is, a still scene with sensor noise (a
//! camera over an empty aisle), or a still scene that wakes (people for some seconds of every
//! loop).
//!
//! A still scene is one picture of the file (at [`Scene::Still`]'s second) repeated at the
//! encoding's frame rate with fresh noise on its luma every frame ([`NOISE`] levels either way,
//! as a camera's sensor in store lighting), so every delta frame carries the noise and nothing
//! else. A waking scene is the still clip followed by the file's first seconds, looped. Scenes
//! are encoded at constant quality (x264/x265 spend bytes on what changes, as cameras set to
//! VBR do), so the frames' sizes follow the motion; see [`crate::ingest::activity`].

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

/// Luma noise of a still scene: each pixel is moved by up to this many levels either way.
pub const NOISE: u8 = 2;

/// What the camera looks at.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Scene {
    /// The file as it is.
    #[default]
    File,
    /// The file's picture at `at_s` seconds, still, with sensor noise.
    Still {
        /// Second of the file whose picture is shown.
        at_s: f64,
    },
    /// `still_s` seconds of the still scene, then `busy_s` seconds of the file, looped.
    Wake {
        /// Second of the file whose picture is shown while still.
        at_s: f64,
        /// Seconds still.
        still_s: f64,
        /// Seconds of the file.
        busy_s: f64,
    },
}

impl Scene {
    /// Whether the scene is encoded at constant quality (anything but the file as it is).
    pub fn constant_quality(&self) -> bool {
        *self != Scene::File
    }
}

impl FromStr for Scene {
    type Err = String;
    /// `file`, `still[@AT]`, `wake:STILL_S:BUSY_S[@AT]` (AT: second of the file shown still).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, at) = match s.split_once('@') {
            Some((k, a)) => (
                k,
                a.parse::<f64>()
                    .map_err(|_| format!("{s:?}: bad @SECONDS"))?,
            ),
            None => (s, 0.0),
        };
        if at.is_nan() || at < 0.0 {
            return Err(format!("{s:?}: @SECONDS must be 0 or more"));
        }
        let secs = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| *x > 0.0 && *x <= 3600.0)
                .ok_or_else(|| format!("{s:?}: seconds must be above 0, at most 3600"))
        };
        match kind.split(':').collect::<Vec<_>>()[..] {
            ["file"] => Ok(Scene::File),
            ["still"] => Ok(Scene::Still { at_s: at }),
            ["wake", still, busy] => Ok(Scene::Wake {
                at_s: at,
                still_s: secs(still)?,
                busy_s: secs(busy)?,
            }),
            _ => Err(format!(
                "{s:?}: expected file, still[@SECONDS] or wake:STILL_S:BUSY_S[@SECONDS]"
            )),
        }
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scene::File => f.write_str("file"),
            Scene::Still { at_s } => write!(f, "still@{at_s}"),
            Scene::Wake {
                at_s,
                still_s,
                busy_s,
            } => write!(f, "wake:{still_s}:{busy_s}@{at_s}"),
        }
    }
}

/// The head of a still scene's encoding pipeline, up to raw pictures at `fps`: the lower left
/// of the file's picture (a stretch of floor: [`EMPTY_CROP`]) scaled back to the picture's
/// `size`, frozen (`freeze`), `frames` of them.
pub(super) fn still_head(fps: u32, frames: u64, (w, h): (u32, u32)) -> String {
    let (right, top) = (
        w - (w as f64 * EMPTY_CROP.0) as u32,
        (h as f64 * EMPTY_CROP.1) as u32,
    );
    format!(
        "filesrc name=in ! decodebin expose-all-streams=false caps=\"video/x-raw(ANY)\" \
         ! videoconvert ! videocrop right={right} top={top} ! videoscale \
         ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 \
         ! imagefreeze name=freeze num-buffers={frames} ! video/x-raw,framerate={fps}/1 "
    )
}

/// The part of the picture a still scene shows: its left `.0` and from `.1` of its height down
/// (in the sample, a lawn nobody crosses in its first seconds).
pub const EMPTY_CROP: (f64, f64) = (0.5, 0.6);

/// The file's picture size (None if it cannot be decoded).
pub(super) fn picture_size(path: &std::path::Path) -> Option<(u32, u32)> {
    let pipeline = gst::parse::launch(
        "filesrc name=in ! decodebin expose-all-streams=false caps=\"video/x-raw(ANY)\" \
         ! videoconvert ! fakesink name=out",
    )
    .ok()?
    .downcast::<gst::Pipeline>()
    .ok()?;
    pipeline
        .by_name("in")?
        .set_property("location", path.to_string_lossy().as_ref());
    let _ = pipeline.set_state(gst::State::Paused);
    let _ = pipeline.state(gst::ClockTime::from_seconds(10));
    let caps = pipeline.by_name("out")?.static_pad("sink")?.current_caps();
    let _ = pipeline.set_state(gst::State::Null);
    let s = caps?.structure(0)?.to_owned();
    Some((
        s.get::<i32>("width").ok()? as u32,
        s.get::<i32>("height").ok()? as u32,
    ))
}

/// Drops the pictures before `at_ns` on their way into `freeze` (it repeats the first it gets).
pub(super) fn freeze_at(freeze: &gst::Element, at_ns: u64) {
    let Some(pad) = freeze.static_pad("sink") else {
        return;
    };
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(b)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        if b.pts().is_some_and(|t| t.nseconds() < at_ns) {
            gst::PadProbeReturn::Drop
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

/// Adds fresh luma noise to every I420 picture entering `enc`.
pub(super) fn add_noise(enc: &gst::Element) {
    let Some(pad) = enc.static_pad("sink") else {
        return;
    };
    let seed = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(luma) = pad.current_caps().and_then(|c| luma_bytes(&c)) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(mut map) = buffer.make_mut().map_writable() else {
            return gst::PadProbeReturn::Ok;
        };
        let n = luma.min(map.len());
        let s = seed.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed);
        noise(&mut map[..n], s, NOISE);
        gst::PadProbeReturn::Ok
    });
}

/// Bytes of an I420 picture's luma plane (rows of the width rounded up to 4).
fn luma_bytes(caps: &gst::CapsRef) -> Option<usize> {
    let s = caps.structure(0)?;
    let w = s.get::<i32>("width").ok()? as usize;
    let h = s.get::<i32>("height").ok()? as usize;
    Some(w.div_ceil(4) * 4 * h)
}

/// Moves each byte by up to `amp` either way (xorshift64, seeded by `seed`), clamped.
fn noise(bytes: &mut [u8], seed: u64, amp: u8) {
    let mut x = seed | 1;
    let span = 2 * u64::from(amp) + 1;
    for b in bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let d = (x % span) as i16 - i16::from(amp);
        *b = (i16::from(*b) + d).clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_parse_and_print() {
        assert_eq!("file".parse(), Ok(Scene::File));
        assert_eq!("still".parse(), Ok(Scene::Still { at_s: 0.0 }));
        let w: Scene = "wake:20:40@3.5".parse().unwrap();
        assert_eq!(
            w,
            Scene::Wake {
                at_s: 3.5,
                still_s: 20.0,
                busy_s: 40.0
            }
        );
        assert_eq!(w.to_string().parse(), Ok(w));
        assert!("wake:20".parse::<Scene>().is_err());
        assert!("still@-1".parse::<Scene>().is_err());
        assert!("wake:0:5".parse::<Scene>().is_err());
    }

    #[test]
    fn noise_moves_bytes_within_its_amplitude_and_differs_by_seed() {
        let mut a = vec![128u8; 4096];
        let mut b = a.clone();
        noise(&mut a, 1, NOISE);
        noise(&mut b, 2, NOISE);
        assert!(a.iter().all(|v| v.abs_diff(128) <= NOISE));
        assert!(a.iter().any(|v| *v != 128) && a != b);
        let mut edge = vec![0u8, 255];
        noise(&mut edge, 3, NOISE);
        assert!(edge[0] <= NOISE && edge[1] >= 255 - NOISE);
    }
}
