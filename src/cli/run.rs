//! The `storetrack run` and `storetrack reload` subcommands: the service in the foreground
//! with its end-of-run summary, and the signal that makes a running service re-read its
//! cameras.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use storetrack::config::{Config, ReadConfig};
use storetrack::notify::NotifyTarget;
use storetrack::service::{self, RunOptions, reload};

/// Runs the service with `config` until stopped (or for `duration`), then prints the summary.
pub fn run(config: &Path, duration: Option<Duration>, progress: Duration) -> Result<()> {
    let cfg = Config::load(config)?;
    let reload_flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload_flag))
        .context("installing the SIGHUP handler")?;
    let opts = RunOptions {
        duration,
        progress: (!progress.is_zero()).then_some(progress),
        notify: NotifyTarget::from_env(),
        api_bound: None,
        reload: Some(reload_flag),
    };
    let summary = service::run(&cfg, &opts, stop_flag()?)?;
    print_summary(&summary);
    Ok(())
}

/// Checks `config` (all but the values of `${NAME}` variables, which live in the service's
/// environment) and signals the service running with its database to reload it.
pub fn reload(config: &Path) -> Result<()> {
    let cfg = Config::load_without_secrets(config)?;
    let db = ReadConfig::load(config)?.storage.db;
    let pid = reload::signal_running(&db)?;
    println!(
        "{}: ok ({} cameras); asked the service (pid {pid}) to reload it: its log says what it applied",
        config.display(),
        cfg.cameras.len()
    );
    Ok(())
}

/// A flag set by SIGINT or SIGTERM.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    Ok(stop)
}

/// The end-of-run summary on stdout.
fn print_summary(summary: &service::Summary) {
    let c = &summary.counts;
    println!("storetrack run summary");
    println!("  cameras          {} ({} failures)", c.cameras, c.failures);
    println!(
        "  detector         {} on {} ({} requests, streams {})",
        summary.engine.model,
        summary.engine.device,
        summary.engine.requests,
        summary.engine.streams.as_deref().unwrap_or("?")
    );
    print_frames(c);
    if c.endpoints > 0 {
        println!(
            "  remote           {} requests ({} failed), {}/{} endpoints up at end, \
             round trip {:.1} ms, client encode+decode {:.2} ms",
            c.remote_requests,
            c.remote_failures,
            c.endpoints_up,
            c.endpoints,
            c.remote_rtt_ms,
            c.remote_codec_ms
        );
        println!(
            "  no model server  {} frames dropped, {} detected by the local fallback",
            c.remote_dropped, c.fallback_frames
        );
    }
    println!("  detections       {} persons", c.persons);
    println!("  tracks           {}", c.tracks);
    println!("  points stored    {}", c.points_stored);
    if c.points_duplicate + c.points_rejected > 0 {
        println!(
            "  points refused   {} duplicate time, {} non-finite",
            c.points_duplicate, c.points_rejected
        );
    }
    if c.store_errors + c.store_rows_failed > 0 {
        println!(
            "  not written      {} points, {} frames dropped while the database refused \
             writes ({} failed transactions); {} rows refused",
            c.store_points_dropped, c.store_frames_dropped, c.store_errors, c.store_rows_failed
        );
    }
    if c.retention_points_deleted + c.retention_seconds_deleted > 0 {
        println!(
            "  retention        {} tracks, {} points, {} frame-seconds deleted",
            c.retention_tracks_deleted, c.retention_points_deleted, c.retention_seconds_deleted
        );
    }
    println!(
        "  processed FPS    {:.1} over {:.1} s",
        summary.processed_fps(),
        summary.elapsed.as_secs_f64()
    );
    print_latency(summary);
    println!(
        "  database         {} (run {})",
        summary.db.display(),
        summary.run.id
    );
    if !summary.run.dead.is_empty() {
        println!(
            "  recovered        {} run(s) that had not ended cleanly, {} open track(s), {} store trajectories and {} zone visits marked interrupted",
            summary.run.dead.len(),
            summary.run.interrupted_tracks,
            summary.run.interrupted_store_tracks,
            summary.run.interrupted_visits
        );
    }
}

/// Where the frames went (all cameras).
fn print_frames(c: &storetrack::stats::Snapshot) {
    println!(
        "  frames decoded   {} = {} analysed + {} not picked + {} skipped + {} dropped + {} failed",
        c.decoded, c.inferred, c.not_picked, c.skipped, c.dropped, c.failed
    );
    println!(
        "                   (not picked: above detect_fps; skipped: before conversion, the \
         detector's queue held a fresher frame; dropped: on the way to the detector; failed: in it)"
    );
    if c.undecoded > 0 {
        println!(
            "  not decoded      {} (before the decoder: no analysed frame needed them, shed, or \
             damaged)",
            c.undecoded
        );
    }
    if c.shed > 0 {
        println!(
            "  shed             {} of them (decoding behind its stream: the rest of a GOP not \
             decoded so the decoder caught up)",
            c.shed
        );
    }
    if c.damaged > 0 {
        println!(
            "  damaged          {} of them (after RTP packets lost before the decoder, up to the \
             next key frame that lost none: never decoded nor analysed)",
            c.damaged
        );
    }
    if c.parks > 0 {
        println!(
            "  decoders parked  {} time(s) (closed while nothing was to decode for a while: idle \
             cameras, GOPs' ends)",
            c.parks
        );
    }
    if c.packets_lost > 0 {
        println!(
            "  packets lost     {} (RTP, before the decoder: on the network, or from a full packet queue \
             while decoding was behind; the frames from each up to a key frame that lost none are \
             not decoded)",
            c.packets_lost
        );
    }
    println!("  frames inferred  {}", c.inferred);
    if c.infer_errors > 0 {
        println!(
            "  failed frames    {} (inference failed; dropped)",
            c.infer_errors
        );
    }
}

/// What a camera's clock did, in words.
fn clock_line(c: &storetrack::stats::ClockFigures) -> String {
    let source = match (c.offset_ms, c.delay_ms) {
        (None, _) => "no RTCP sender reports, capture time from arrival".to_string(),
        (Some(_), Some(d)) => format!("in step with this host, capture delay {d} ms"),
        (Some(o), None) => format!(
            "{:+.3} s off this host (not followed), capture time from arrival",
            o as f64 / 1000.0
        ),
    };
    format!(
        "{source}; {} jumps of the camera's clock, {} corrections",
        c.jumps, c.corrections
    )
}

/// Frame age and per-camera analysed rate (the fairness spread) of a run summary.
fn print_latency(summary: &service::Summary) {
    let l = &summary.latency;
    let ms = |v: Option<i64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    println!(
        "  frame age        p50 {}, p95 {} (capture to detection, all cameras)",
        ms(l.age_p50_ms),
        ms(l.age_p95_ms)
    );
    if let Some((min, median, max)) = l.fps_spread() {
        let mean = summary.processed_fps() / l.cameras.len().max(1) as f64;
        let pct = |v: f64| 100.0 * (v - mean) / mean.max(1e-9);
        println!(
            "  per-camera FPS   min {min:.2}, median {median:.2}, max {max:.2} (fair share {mean:.2}: {:+.0} % .. {:+.0} %)",
            pct(min),
            pct(max)
        );
    }
    for c in &l.cameras {
        let possible = summary
            .accounts
            .iter()
            .find(|a| a.id == c.id)
            .map_or(String::new(), |a| {
                let lost = match (a.shed, a.packets_lost, a.damaged) {
                    (0, 0, _) => String::new(),
                    (0, n, d) => format!(", {n} packets lost, {d} frames damaged"),
                    (s, n, d) => format!(", {s} frames shed, {n} packets lost, {d} frames damaged"),
                };
                format!(
                    "  ({:.2} of {:.2} possible while streaming{lost})",
                    a.analysed_fps(),
                    a.possible_fps()
                )
            });
        println!(
            "    {:<14} {:>6.2} fps  age p50 {:>7}  p95 {:>7}{possible}",
            c.id,
            c.fps,
            ms(c.age_p50_ms),
            ms(c.age_p95_ms)
        );
        if let Some((_, clock)) = summary.clocks.iter().find(|(id, _)| *id == c.id) {
            println!("                   clock: {}", clock_line(clock));
        }
    }
    for a in &summary.accounts {
        if let Some(why) = a.shortfall() {
            println!(
                "  warning: {} analysed {:.2} fps, {:.0} % of the {:.2} it could be: {why}",
                a.id,
                a.analysed_fps(),
                100.0 * a.analysed as f64 / a.slots.max(1) as f64,
                a.possible_fps()
            );
        }
    }
}
