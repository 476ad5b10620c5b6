//! What a simulated camera sends besides the file's pictures: how they are encoded (codec,
//! frame rate, GOP, B-frames, variable frame rate, a resolution change), an audio track, digest
//! authentication, and how wrong its RTCP clock is.
//!
//! Pure data and the pure rules the simulator applies with it (which frames a "smart codec"
//! keeps, what the camera's clock reads at a true instant), so both are unit-tested.

use std::fmt;
use std::str::FromStr;

pub use super::scene::Scene;

/// Length of each phase of a variable-frame-rate stream: this long at the full rate, then this
/// long at the still-scene rate, and so on.
pub const VFR_PHASE_S: f64 = 4.0;
/// Frame rate of a re-encoded stream when only other options ask for re-encoding.
pub const DEFAULT_FPS: u32 = 10;
/// GOP length of a re-encoded stream when not given, seconds.
pub const DEFAULT_GOP_S: f64 = 1.0;

/// Video codecs the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// H.264 / AVC.
    #[default]
    H264,
    /// H.265 / HEVC.
    H265,
}

impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "avc" => Ok(Codec::H264),
            "h265" | "hevc" => Ok(Codec::H265),
            other => Err(format!("expected h264 or h265, not {other:?}")),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        })
    }
}

/// How a file is re-encoded before it is served.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    /// Output codec.
    pub codec: Codec,
    /// Frames per second (the source is resampled: frames repeated or dropped).
    pub fps: u32,
    /// Seconds between key frames (need not be a whole number of frames' worth of seconds).
    pub gop_s: f64,
    /// B-frames between reference frames (0: none).
    pub bframes: u32,
    /// Open GOPs: the B-frames leading a GOP reference the previous GOP.
    pub open_gop: bool,
    /// Picture size; the source's when None.
    pub size: Option<(u32, u32)>,
    /// Variable frame rate: the rate on "still scenes" (every other [`VFR_PHASE_S`]).
    pub vfr_still_fps: Option<f64>,
    /// Seconds of the file encoded (the simulator loops them); the whole file when None.
    pub seconds: Option<f64>,
    /// What the camera looks at (the file, a still scene, a still scene that wakes).
    pub scene: Scene,
}

impl Default for Encoding {
    fn default() -> Self {
        Self {
            codec: Codec::H264,
            fps: DEFAULT_FPS,
            gop_s: DEFAULT_GOP_S,
            bframes: 0,
            open_gop: false,
            size: None,
            vfr_still_fps: None,
            seconds: None,
            scene: Scene::File,
        }
    }
}

impl Encoding {
    /// Frames per GOP (at least one).
    pub fn gop_frames(&self) -> u32 {
        (self.gop_s * f64::from(self.fps)).round().max(1.0) as u32
    }

    /// Whether a smart-codec stream keeps the frame at `t_s` seconds from its start: every
    /// frame in the moving phases, and in the still ones those falling on the still rate's grid.
    pub fn keeps(&self, t_s: f64) -> bool {
        let Some(still) = self.vfr_still_fps.filter(|f| *f > 0.0) else {
            return true;
        };
        let phase = (t_s / VFR_PHASE_S).floor() as i64;
        if phase % 2 == 0 {
            return true;
        }
        // Keep a frame when it is the first one at or after a still-rate slot.
        let since = t_s - phase as f64 * VFR_PHASE_S;
        let slot = 1.0 / still;
        let frame = 1.0 / f64::from(self.fps.max(1));
        since % slot < frame - 1e-9
    }
}

/// User name and password a mount asks for (RTSP digest authentication).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

impl FromStr for Credentials {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok(Self {
                user: u.into(),
                password: p.into(),
            }),
            _ => Err("expected USER:PASSWORD".into()),
        }
    }
}

/// How the camera's clock (the NTP time in its RTCP sender reports) differs from the true time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClockFault {
    /// Constant offset, ms (a camera whose clock was never set is minutes or years off).
    pub offset_ms: i64,
    /// After this many seconds of streaming, the clock jumps by this many ms.
    pub jump: Option<(f64, i64)>,
    /// The clock runs faster than true time by this many parts per million.
    pub drift_ppm: f64,
}

impl ClockFault {
    /// Whether the camera's clock is exact.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }

    /// What the camera's clock reads at true time `true_ns` (Unix ns), `start_ns` being when
    /// it started streaming.
    pub fn camera_ns(&self, true_ns: i64, start_ns: i64) -> i64 {
        let since = (true_ns - start_ns).max(0);
        let drift = (since as f64 * self.drift_ppm / 1e6) as i64;
        let jump = match self.jump {
            Some((after_s, by_ms)) if since as f64 >= after_s * 1e9 => by_ms * 1_000_000,
            _ => 0,
        };
        true_ns + self.offset_ms * 1_000_000 + drift + jump
    }
}

/// Everything that makes one simulated camera differ from "the file, as it is".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    /// Re-encode the file (None: serve its H.264/H.265 stream unchanged).
    pub encoding: Option<Encoding>,
    /// After this many seconds the camera switches to this picture size (same codec and
    /// timing, new parameter sets at a key frame), as a camera reconfigured while connected.
    pub resize_after: Option<(f64, (u32, u32))>,
    /// Send each frame as soon as it and every frame before it in decode order are captured
    /// (a software encoder: a reference frame and the B-frames before it go out back to back),
    /// instead of one frame per frame interval after the reordering delay (a hardware encoder).
    pub burst: bool,
    /// Also send an audio track (G.711 A-law, as many cameras do).
    pub audio: bool,
    /// Ask clients for these credentials (digest authentication; the simulator then asks on
    /// every mount, see [`super::SimCam::serve`]).
    pub auth: Option<Credentials>,
    /// How wrong the camera's RTCP clock is.
    pub clock: ClockFault,
}

impl Variant {
    /// The encoding used after a resolution change: the same as before at the new size (a
    /// resolution change needs re-encoding, so a default encoding when there was none).
    pub fn resized_encoding(&self) -> Option<Encoding> {
        let (_, size) = self.resize_after?;
        Some(Encoding {
            size: Some(size),
            ..self.encoding.clone().unwrap_or_default()
        })
    }

    /// The encoding used from the start (a resolution change implies re-encoding).
    pub fn first_encoding(&self) -> Option<Encoding> {
        match (&self.encoding, self.resize_after) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(_)) => Some(Encoding::default()),
            (None, None) => None,
        }
    }
}

/// A picture size written WIDTHxHEIGHT.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, not {s:?}"))?;
    let num = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|n| (16..=8192).contains(n) && n % 2 == 0)
            .ok_or_else(|| format!("{s:?}: width and height must be even, 16..8192"))
    };
    Ok((num(w)?, num(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smart_codec_keeps_every_frame_while_moving_and_the_still_rate_otherwise() {
        let e = Encoding {
            fps: 10,
            vfr_still_fps: Some(2.0),
            ..Encoding::default()
        };
        let kept: Vec<u32> = (0..160).filter(|i| e.keeps(f64::from(*i) / 10.0)).collect();
        // 0–4 s: 40 frames; 4–8 s: 2 fps (8 frames); 8–12 s: 40; 12–16 s: 8.
        assert_eq!(kept.len(), 96);
        assert_eq!(
            kept.iter()
                .filter(|i| (40..80).contains(*i))
                .collect::<Vec<_>>(),
            [40, 45, 50, 55, 60, 65, 70, 75].iter().collect::<Vec<_>>()
        );
        assert!((0..40).all(|i| e.keeps(f64::from(i) / 10.0)));
        assert!(Encoding::default().keeps(5.0));
    }

    #[test]
    fn the_camera_clock_is_offset_jumps_and_drifts() {
        let s = 1_000_000_000i64;
        let start = 1_800_000_000 * s;
        let c = ClockFault {
            offset_ms: -300_000,
            jump: Some((10.0, 2_500)),
            drift_ppm: 10_000.0,
        };
        assert_eq!(c.camera_ns(start, start), start - 300 * s);
        // 5 s in: 1 % fast = 50 ms ahead of the offset.
        assert_eq!(
            c.camera_ns(start + 5 * s, start),
            start + 5 * s - 300 * s + s / 20
        );
        // 10 s in: the jump of 2.5 s applies.
        assert_eq!(
            c.camera_ns(start + 10 * s, start),
            start + 10 * s - 300 * s + s / 10 + 2_500_000_000
        );
        assert!(ClockFault::default().is_none());
        assert_eq!(ClockFault::default().camera_ns(start + 7, start), start + 7);
    }

    #[test]
    fn gop_frames_round_to_whole_frames() {
        let e = |fps, gop_s| Encoding {
            fps,
            gop_s,
            ..Encoding::default()
        };
        assert_eq!(e(10, 1.0).gop_frames(), 10);
        assert_eq!(e(15, 1.5).gop_frames(), 23);
        assert_eq!(e(25, 0.01).gop_frames(), 1);
    }

    #[test]
    fn parses_codecs_credentials_and_sizes() {
        assert_eq!("HEVC".parse::<Codec>(), Ok(Codec::H265));
        assert!("vp8".parse::<Codec>().is_err());
        let c: Credentials = "admin:s3cret:x".parse().unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.as_str()),
            ("admin", "s3cret:x")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!("admin".parse::<Credentials>().is_err());
        assert_eq!(parse_size("640x360"), Ok((640, 360)));
        assert!(parse_size("641x360").is_err());
        assert!(parse_size("640").is_err());
    }

    #[test]
    fn a_resolution_change_implies_re_encoding_at_the_new_size() {
        let v = Variant {
            resize_after: Some((5.0, (384, 288))),
            ..Variant::default()
        };
        assert_eq!(v.first_encoding(), Some(Encoding::default()));
        assert_eq!(v.resized_encoding().unwrap().size, Some((384, 288)));
        assert_eq!(Variant::default().first_encoding(), None);
    }
}
