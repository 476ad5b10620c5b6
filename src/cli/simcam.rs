//! The `storetrack simcam` subcommand: video files served as RTSP cameras, each kind of camera a
//! store may have selected by flags (see [`storetrack::simcam::Variant`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use storetrack::simcam::variant::{self, ClockFault, Codec, Credentials, Encoding, Variant};
use storetrack::simcam::{self, Mount, SimCam};

/// `storetrack simcam` flags.
#[derive(Debug, Args)]
pub struct SimcamArgs {
    /// A camera as NAME=FILE (repeatable).
    #[arg(long = "mount", value_name = "NAME=FILE")]
    mounts: Vec<String>,
    /// Serve FILE as cameras cam1..camN (with --cameras).
    #[arg(long)]
    video: Option<PathBuf>,
    /// How many cameras to make from --video.
    #[arg(long, default_value_t = 1)]
    cameras: usize,
    /// Port (0: any free port).
    #[arg(long, default_value_t = simcam::DEFAULT_PORT)]
    port: u16,
    /// Stop after this long; runs until Ctrl-C otherwise.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    #[command(flatten)]
    kind: KindArgs,
}

/// What kind of camera every mount is (any encoding flag re-encodes the file at start-up).
#[derive(Debug, Args)]
struct KindArgs {
    /// Re-encode as h264 or h265.
    #[arg(long, help_heading = "Encoding")]
    codec: Option<Codec>,
    /// Frames per second.
    #[arg(long, help_heading = "Encoding")]
    fps: Option<u32>,
    /// Seconds between key frames (e.g. 1, 2, 1.5).
    #[arg(long, value_name = "SECONDS", help_heading = "Encoding")]
    gop: Option<f64>,
    /// B-frames between reference frames (x264/x265 main-profile style).
    #[arg(long, help_heading = "Encoding")]
    bframes: Option<u32>,
    /// Open GOPs: the B-frames leading a GOP reference the previous one.
    #[arg(long, help_heading = "Encoding")]
    open_gop: bool,
    /// Picture size, WIDTHxHEIGHT.
    #[arg(long, value_parser = variant::parse_size, help_heading = "Encoding")]
    size: Option<(u32, u32)>,
    /// Variable frame rate ("smart codec"): every other 4 s, only this many frames a second.
    #[arg(long, value_name = "STILL_FPS", help_heading = "Encoding")]
    vfr: Option<f64>,
    /// Seconds of the file to encode (looped); the whole file otherwise.
    #[arg(long, help_heading = "Encoding")]
    seconds: Option<f64>,
    /// What the camera looks at: file, still[@SECONDS] (the file's picture at SECONDS, still,
    /// with sensor noise) or wake:STILL_S:BUSY_S[@SECONDS] (still, then the file, looped);
    /// scenes are encoded at constant quality.
    #[arg(long, help_heading = "Encoding")]
    scene: Option<variant::Scene>,
    /// Switch to another picture size after SECONDS, as SECONDS:WIDTHxHEIGHT.
    #[arg(long, value_parser = parse_resize, help_heading = "Camera")]
    resize_after: Option<(f64, (u32, u32))>,
    /// Send frames in bursts, as a software encoder does (a reference frame and the B-frames
    /// before it back to back), instead of one per frame interval.
    #[arg(long, help_heading = "Camera")]
    burst: bool,
    /// Also send an audio track (G.711 A-law).
    #[arg(long, help_heading = "Camera")]
    audio: bool,
    /// Ask for these credentials (RTSP digest authentication), USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD", help_heading = "Camera")]
    auth: Option<Credentials>,
    /// The camera's RTCP clock is this many seconds off (negative: behind).
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        help_heading = "Camera clock"
    )]
    clock_offset: Option<f64>,
    /// The camera's RTCP clock jumps by BY seconds after AFTER seconds, as AFTER:BY.
    #[arg(long, value_name = "AFTER:BY", value_parser = parse_jump, help_heading = "Camera clock")]
    clock_jump: Option<(f64, i64)>,
    /// The camera's RTCP clock runs this many parts per million faster than true time.
    #[arg(
        long,
        value_name = "PPM",
        allow_negative_numbers = true,
        help_heading = "Camera clock"
    )]
    clock_drift: Option<f64>,
}

impl KindArgs {
    fn variant(&self) -> Result<Variant> {
        let encodes = self.codec.is_some()
            || self.fps.is_some()
            || self.gop.is_some()
            || self.bframes.is_some()
            || self.open_gop
            || self.size.is_some()
            || self.vfr.is_some()
            || self.seconds.is_some()
            || self.scene.is_some();
        let defaults = Encoding::default();
        let encoding = encodes.then(|| Encoding {
            codec: self.codec.unwrap_or_default(),
            fps: self.fps.unwrap_or(defaults.fps),
            gop_s: self.gop.unwrap_or(defaults.gop_s),
            bframes: self.bframes.unwrap_or(0),
            open_gop: self.open_gop,
            size: self.size,
            vfr_still_fps: self.vfr,
            seconds: self.seconds,
            scene: self.scene.unwrap_or_default(),
        });
        if let Some(e) = &encoding {
            check_encoding(e)?;
        }
        Ok(Variant {
            encoding,
            resize_after: self.resize_after,
            burst: self.burst,
            audio: self.audio,
            auth: self.auth.clone(),
            clock: ClockFault {
                offset_ms: self.clock_offset.map_or(0, |s| (s * 1000.0).round() as i64),
                jump: self.clock_jump,
                drift_ppm: self.clock_drift.unwrap_or(0.0),
            },
        })
    }
}

/// Refuses encoding flags out of range (each error names its flag).
fn check_encoding(e: &Encoding) -> Result<()> {
    if !(1..=120).contains(&e.fps) {
        bail!("--fps {}: must be 1 to 120", e.fps);
    }
    if !(e.gop_s > 0.0 && e.gop_s <= 60.0) {
        bail!(
            "--gop {}: must be more than 0 and at most 60 seconds",
            e.gop_s
        );
    }
    if e.bframes > 16 {
        bail!("--bframes {}: at most 16", e.bframes);
    }
    if e.vfr_still_fps
        .is_some_and(|f| !(f > 0.0 && f < f64::from(e.fps)))
    {
        bail!("--vfr: the still-scene rate must be above 0 and below --fps");
    }
    if e.seconds.is_some_and(|s| s.is_nan() || s <= 0.0) {
        bail!("--seconds: must be more than 0");
    }
    Ok(())
}

fn parse_resize(s: &str) -> Result<(f64, (u32, u32)), String> {
    let (at, size) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected SECONDS:WIDTHxHEIGHT"))?;
    let at: f64 = at
        .parse()
        .ok()
        .filter(|v: &f64| *v >= 0.0)
        .ok_or_else(|| format!("{s:?}: seconds must be a number, 0 or more"))?;
    Ok((at, variant::parse_size(size)?))
}

fn parse_jump(s: &str) -> Result<(f64, i64), String> {
    let bad = || format!("{s:?}: expected AFTER_SECONDS:BY_SECONDS, e.g. 10:-2.5");
    let (after, by) = s.split_once(':').ok_or_else(bad)?;
    let after: f64 = after
        .parse()
        .ok()
        .filter(|v: &f64| *v >= 0.0)
        .ok_or_else(bad)?;
    let by: f64 = by.parse().map_err(|_| bad())?;
    Ok((after, (by * 1000.0).round() as i64))
}

/// Serves the cameras until Ctrl-C (or `duration`), printing their URLs (passwords masked).
pub fn simcam(args: SimcamArgs) -> Result<()> {
    let variant = args.kind.variant()?;
    let mut list: Vec<Mount> = Vec::new();
    let mut add = |name: String, file: PathBuf| {
        list.push(Mount {
            name,
            file,
            variant: variant.clone(),
        })
    };
    for m in &args.mounts {
        let Some((name, file)) = m.split_once('=') else {
            bail!("--mount {m:?}: expected NAME=FILE");
        };
        add(name.to_string(), PathBuf::from(file));
    }
    if let Some(v) = &args.video {
        for i in 1..=args.cameras {
            add(format!("cam{i}"), v.clone());
        }
    }
    if list.is_empty() {
        bail!("nothing to serve: give --mount NAME=FILE or --video FILE [--cameras N]");
    }
    let sim = SimCam::serve(simcam::DEFAULT_ADDRESS, args.port, &list)?;
    for m in sim.mounts() {
        let url = sim.url(&m);
        println!(
            "{}",
            url.parse()
                .map_or(url.clone(), |u| storetrack::redact::url(&u))
        );
    }
    let stop = super::run::stop_flag()?;
    let start = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed)
        && args.duration.is_none_or(|d| start.elapsed() < d)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_and_jump_parse() {
        assert_eq!(parse_resize("5:640x360"), Ok((5.0, (640, 360))));
        assert!(parse_resize("640x360").is_err());
        assert_eq!(parse_jump("10:-2.5"), Ok((10.0, -2_500)));
        assert!(parse_jump("-1:2").is_err());
    }
}
