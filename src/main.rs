//! The `storetrack` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use storetrack::analytics::cli::AnalyticsQuery;
use storetrack::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use storetrack::query::Format;
use storetrack::{mot, redact, synth};

mod query_cmd;
mod render_cmd;
mod run_cmd;
mod simcam_cmd;
use render_cmd::render;

#[derive(Parser)]
#[command(
    name = "storetrack",
    version,
    about = "Person trajectories from store RTSP cameras"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: cameras → detection → tracking → SQLite.
    Run {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Stop after this long (e.g. 30s, 10m); runs until Ctrl-C otherwise.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Print a progress line this often (0s: never).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        progress: Duration,
    },
    /// Tell the running service to re-read its config file's cameras (SIGHUP to the process
    /// holding the database's run lock); the service logs what it applied or why it refused.
    Reload {
        /// Config file (the one the service runs with).
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Check a config file and print every problem found.
    CheckConfig {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Serve video files as RTSP cameras on 127.0.0.1 (for demos and tests), each as a kind of
    /// camera stores have: B-frames, H.265, other frame rates and GOPs, variable frame rate, a
    /// resolution change, audio, digest authentication, a wrong RTCP clock.
    Simcam(simcam_cmd::SimcamArgs),
    /// Track a MOTChallenge detection file and write MOTChallenge results.
    Track {
        /// Detections: frame,-1,x,y,w,h,score,... (1-based frames).
        #[arg(long)]
        detections: PathBuf,
        /// Results: frame,id,x,y,w,h,1,-1,-1,-1.
        #[arg(long)]
        output: PathBuf,
        /// Frame rate of the sequence (the tracker works in time, not frames).
        #[arg(long, default_value_t = 10.0)]
        fps: f64,
        /// A TOML file with [tracker] settings (e.g. config.toml); defaults otherwise.
        #[arg(long)]
        params: Option<PathBuf>,
    },
    /// Generate synthetic store scenes as MOTChallenge sequences (ground truth + detections),
    /// or, with --from-gt, replay annotated video through the simulated detector.
    Synth {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Seeds, one scene (or replay) each; store scenes have two cameras.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        seeds: Vec<u64>,
        /// Seconds per scene.
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
        /// Frames per second (with --from-gt: the annotated video's).
        #[arg(long, default_value_t = 10.0)]
        fps: f64,
        /// MOTChallenge ground truth of a real video (frame,id,x,y,w,h,conf,...): detections are
        /// simulated on it instead of on a synthetic store.
        #[arg(long, requires = "size")]
        from_gt: Option<PathBuf>,
        /// Image size of the --from-gt video, WIDTHxHEIGHT.
        #[arg(long, value_parser = parse_size)]
        size: Option<(u32, u32)>,
    },
    /// Draw the floor plan with a heatmap and the trajectories of a time range (or, with
    /// --camera, one camera's tracks over a frame from it) into a PNG.
    Render {
        /// Config file (floor, zones, cameras; and the database unless --db).
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Database file (default: storage.db from the config).
        #[arg(long)]
        db: Option<PathBuf>,
        /// From: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        from: String,
        /// To: RFC 3339, an age (15m, 2h) or Unix ms (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Draw this camera's tracks over a frame grabbed from it.
        #[arg(long)]
        camera: Option<String>,
        /// With --camera: a stored snapshot (PNG/JPEG) instead of grabbing a frame.
        #[arg(long, requires = "camera")]
        frame: Option<PathBuf>,
    },
    /// Query the trajectory database.
    Query {
        /// Database file (default: storage.db from the config).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Config file used to find the database when --db is not given.
        #[arg(short, long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(subcommand)]
        what: QueryWhat,
    },
}

#[derive(Subcommand)]
pub(crate) enum QueryWhat {
    /// Tracks in a time range and/or camera, newest first.
    Tracks {
        /// Only this camera id.
        #[arg(long)]
        camera: Option<String>,
        /// From: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        from: Option<String>,
        /// To: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        to: Option<String>,
        /// Only tracks with at least this many points.
        #[arg(long, default_value_t = 0)]
        min_points: i64,
        /// At most this many rows.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// The points of one track.
    Points {
        /// Track id (from `query tracks`).
        track: i64,
    },
    /// Service runs, newest first: start, end, status (clean, crashed, running, dead), tracks,
    /// frames analysed, cameras analysed below 90 % of their rate, camera clock jumps, version,
    /// host, pid, config hash.
    Runs {
        /// From: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        from: Option<String>,
        /// To: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        to: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Per camera, one service run (the latest by default): analysed and possible frame rates,
    /// where its frames went, and its clock (offset, capture delay, jumps, corrections).
    Cameras {
        /// Run id (from `query runs`).
        #[arg(long)]
        run: Option<i64>,
    },
    /// Per-camera totals, and the latest service runs in the range.
    Summary {
        /// From: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        from: Option<String>,
        /// To: RFC 3339, an age (15m, 2h) or Unix ms.
        #[arg(long)]
        to: Option<String>,
    },
    #[command(flatten)]
    Analytics(AnalyticsQuery),
}

fn main() -> ExitCode {
    storetrack::malloc::tune();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STORETRACK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Every log record is scrubbed of credentials on its way out.
        .with_writer(redact::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: typed errors already quote their
/// source in their own message. Config problems keep their one-per-line layout.
fn message(e: &anyhow::Error) -> String {
    if e.downcast_ref::<ConfigError>().is_some() {
        return e.to_string();
    }
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            config,
            duration,
            progress,
        } => run_cmd::run(&config, duration, progress),
        Command::Reload { config } => run_cmd::reload(&config),
        Command::CheckConfig { config } => {
            let cfg = Config::load(&config)?;
            println!("{}: ok ({} cameras)", config.display(), cfg.cameras.len());
            for cam in &cfg.cameras {
                match (&cam.calibration, &cam.homography) {
                    (Some(c), _) => println!(
                        "  {}: calibrated from {} point pairs, reprojection error rms {:.3} m, max {:.3} m (pair {})",
                        cam.id,
                        c.pairs,
                        c.rms_m,
                        c.max_m,
                        c.worst + 1
                    ),
                    (None, Some(_)) => println!("  {}: homography given", cam.id),
                    (None, None) => println!("  {}: not calibrated (no floor positions)", cam.id),
                }
            }
            if let Some(f) = &cfg.floor {
                println!(
                    "  floor: {} x {} m, {} zones",
                    f.width_m,
                    f.height_m,
                    cfg.zones.len()
                );
            }
            for line in storetrack::config::describe_footfall(&cfg.footfall) {
                println!("  {line}");
            }
            if let Some(api) = &cfg.api {
                println!("  api: {}", query_cmd::describe_api(api));
            }
            Ok(())
        }
        Command::Simcam(args) => simcam_cmd::simcam(args),
        Command::Track {
            detections,
            output,
            fps,
            params,
        } => {
            if !(fps > 0.0 && fps <= 1000.0) {
                bail!("--fps {fps}: must be between 0 and 1000");
            }
            let params = match params {
                Some(p) => storetrack::track::TrackerParams::load(&p)?,
                None => storetrack::track::TrackerParams::default(),
            };
            let dets = mot::read_detections(&detections)?;
            let rows = mot::track_sequence(&dets, &params, fps);
            std::fs::write(&output, mot::format_results(&rows))
                .with_context(|| format!("{}: cannot write results", output.display()))?;
            Ok(())
        }
        Command::Synth {
            out,
            seeds,
            duration,
            fps,
            from_gt,
            size,
        } => {
            if !(fps > 0.0 && fps <= 1000.0) {
                bail!("--fps {fps}: must be between 0 and 1000");
            }
            let replayed = match (&from_gt, size) {
                (Some(path), Some(size)) => {
                    Some((replay_name(path), mot::read_ground_truth(path)?, size))
                }
                _ => None,
            };
            if let Some((_, gt, _)) = &replayed
                && gt.is_empty()
            {
                bail!(
                    "{}: no ground-truth rows",
                    from_gt.unwrap_or_default().display()
                );
            }
            for seed in seeds {
                let seqs = match &replayed {
                    Some((name, gt, size)) => {
                        let p = synth::replay::ReplayParams {
                            seed,
                            fps,
                            size: *size,
                        };
                        vec![synth::replay::replay(name, gt, &p)]
                    }
                    None => synth::generate(&synth::SceneParams {
                        seed,
                        duration_s: duration,
                        fps,
                        ..Default::default()
                    }),
                };
                for dir in synth::write(&seqs, &out)
                    .with_context(|| format!("{}: cannot write", out.display()))?
                {
                    println!("{}", dir.display());
                }
            }
            Ok(())
        }
        Command::Render {
            config,
            db,
            from,
            to,
            out,
            camera,
            frame,
        } => render(&config, db, (&from, to.as_deref()), &out, camera, frame),
        Command::Query {
            db,
            config,
            format,
            what,
        } => query_cmd::query(db, &config, format, what),
    }
}

/// `WIDTHxHEIGHT`, both at least 1.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?}: expected WIDTHxHEIGHT, e.g. 640x480");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    match (w.parse::<u32>(), h.parse::<u32>()) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(bad()),
    }
}

/// A replay's name: the sequence folder of a MOTChallenge `SEQ/gt/gt.txt`, else the folder
/// holding the file (`TUD-Campus/gt.txt` → `TUD-Campus`).
fn replay_name(gt: &std::path::Path) -> String {
    let dir = gt.parent();
    let dir = match dir {
        Some(d) if d.file_name().is_some_and(|n| n == "gt") => d.parent(),
        d => d,
    };
    dir.and_then(|d| d.file_name()).map_or_else(
        || "replay".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
