//! The running service: wires cameras → detector → trackers → store, serves the HTTP API, tells
//! the service manager how it is (notify protocol: ready, watchdog pings while every stage is
//! alive, status line), reports progress, applies config reloads to the running cameras and
//! analytics stage ([`reload`]), delivers live events ([`crate::events`]), and shuts the chain down in order
//! (cameras first, then each stage drains into the next, then the event senders, the API last).
//!
//! Input: a validated [`Config`]. Output: rows in the database and a [`Summary`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use gstreamer as gst;
use tracing::{error, info};

use crate::analytics::stage as analytics_stage;
use crate::api::{self, ApiError, ApiState};
use crate::config::Config;
use crate::events::{EventsMetrics, Senders};
use crate::infer::{Detector, DetectorError, EngineInfo, InferError, InputSpec};
use crate::ingest::queue::{FrameSource, growing_queues};
use crate::ingest::{PipelineError, Template};
use crate::notify::{Heartbeat, NotifyTarget};
use crate::stats::{ClockFigures, FrameAccount, Latency, Snapshot, Stats};
use crate::store::{RunInfo, RunStart, Store, StoreError, WriterOptions};
use crate::track::stage::{self as track_stage, CameraChange};

mod cameras;
pub mod reload;

use cameras::CameraSet;

/// Detections waiting for the tracker (the tracker is fast; this absorbs bursts).
const DETECTIONS_QUEUE: usize = 256;
/// Store messages waiting for the writer (≈ several seconds of points for tens of cameras).
const STORE_QUEUE: usize = 16_384;
/// Reloaded definitions waiting for the analytics stage (a reload waits for a free slot).
const DEFINITIONS_QUEUE: usize = 4;

/// At shutdown: longest wait for the event senders to deliver the last events (the rest are
/// delivered at the next start).
const EVENTS_DRAIN: Duration = Duration::from_secs(3);

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this long (None: until stopped).
    pub duration: Option<Duration>,
    /// Print a progress line this often (None: never).
    pub progress: Option<Duration>,
    /// The service manager's notify socket ([`NotifyTarget::from_env`] under systemd).
    pub notify: Option<NotifyTarget>,
    /// Told the HTTP API's bound address once it listens (tests use port 0).
    pub api_bound: Option<Sender<SocketAddr>>,
    /// Set (by SIGHUP) to re-read the config file's cameras; cleared when done.
    pub reload: Option<Arc<AtomicBool>>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Counters at the end.
    pub counts: Snapshot,
    /// Wall time from start to the last flush.
    pub elapsed: Duration,
    /// The database written.
    pub db: PathBuf,
    /// Detector settings used.
    pub engine: EngineInfo,
    /// Analysed fps and frame age per camera and overall.
    pub latency: Latency,
    /// Where each camera's frames went.
    pub accounts: Vec<FrameAccount>,
    /// What each camera's clock did, by camera id.
    pub clocks: Vec<(String, ClockFigures)>,
    /// The run row opened for this run, and what its start found of earlier runs.
    pub run: RunStart,
}

impl Summary {
    /// What the run did, from its counters at the end.
    fn of(
        stats: &Stats,
        elapsed: Duration,
        db: PathBuf,
        engine: EngineInfo,
        run: RunStart,
    ) -> Summary {
        Summary {
            counts: stats.snapshot(),
            latency: stats.latency(elapsed.as_secs_f64()),
            accounts: stats.accounts(),
            clocks: stats.clocks(),
            elapsed,
            db,
            engine,
            run,
        }
    }

    /// Frames inferred per second over the run.
    pub fn processed_fps(&self) -> f64 {
        self.counts.inferred as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// GStreamer could not initialise.
    #[error("GStreamer initialisation failed: {0}")]
    Gst(#[from] gst::glib::Error),
    /// The pipeline template is unusable.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The detector could not start or failed.
    #[error(transparent)]
    Infer(#[from] InferError),
    /// The detector (local or remote) could not start.
    #[error(transparent)]
    Detector(#[from] DetectorError),
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(#[from] std::io::Error),
    /// A stage thread panicked.
    #[error("the {0} stage crashed")]
    Crashed(&'static str),
    /// The HTTP API could not start.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An event sender could not start.
    #[error(transparent)]
    Events(#[from] crate::events::SenderError),
    /// The footfall settings cannot be used (config validation lets none through).
    #[error(transparent)]
    Footfall(#[from] crate::analytics::footfall::SettingsError),
}

/// The one-line status for the service manager.
pub fn status_line(s: &Snapshot, fps: f64) -> String {
    format!(
        "cameras {}/{} up | {:.1} fps analysed | dropped {} | tracks {} | points {}",
        s.cameras_up, s.cameras, fps, s.dropped, s.tracks, s.points_stored
    )
}

/// One progress line.
pub fn progress_line(s: &Snapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let remote = if s.endpoints > 0 {
        format!(
            " | model servers {}/{} up | no-server drops {} | fallback {}",
            s.endpoints_up, s.endpoints, s.remote_dropped, s.fallback_frames
        )
    } else {
        String::new()
    };
    format!(
        "[{:>5.0}s] cameras {}/{} up | decoded {} | not picked {} | skipped {} | inferred {} ({:.1} fps) | dropped {} | persons {} | tracks {} | points {}{remote}",
        elapsed.as_secs_f64(),
        s.cameras_up,
        s.cameras,
        s.decoded,
        s.not_picked,
        s.skipped,
        s.inferred,
        s.inferred as f64 / secs,
        s.dropped,
        s.persons,
        s.tracks,
        s.points_stored
    )
}

/// Starts the HTTP API if configured, and tells `opts.api_bound` where it listens.
fn start_api(
    cfg: &Config,
    opts: &RunOptions,
    stats: &Arc<Stats>,
    (db, events): (&std::path::Path, &Arc<EventsMetrics>),
) -> Result<Option<api::Server>, ServiceError> {
    let Some(a) = &cfg.api else {
        return Ok(None);
    };
    let mut state = ApiState::new(Arc::clone(stats), db.to_path_buf(), a.token.clone())
        .with_events(Arc::clone(events));
    state.web = api::WebState::new(cfg, opts.reload.clone());
    let server = api::Server::start(a, state)?;
    if let Some(tx) = &opts.api_bound {
        let _ = tx.send(server.local_addr());
    }
    Ok(Some(server))
}

/// Runs until `stop` is set or `opts.duration` passes; re-reads the config's cameras, zones,
/// lines and rules whenever
/// `opts.reload` is set (see [`reload`]). Start-up problems (model, device, database, template)
/// are returned before any camera is opened.
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<Summary, ServiceError> {
    gst::init()?;
    let default_template = Template::load(&cfg.ingest.pipeline)?;
    let engine = Detector::build(&cfg.model, &cfg.inference, cfg.tracker.low_score)?;
    let input = engine.input_spec();
    // Building (not starting) each camera's pipeline checks the template and plugins now.
    cameras::check_pipelines(&cfg.cameras, &default_template, &cfg.ingest, &input)?;
    let mut store = Store::open(&cfg.storage.db)?;
    // The run (and its lock) first: nothing is written while another service owns the file.
    let run_start =
        store.begin_run(&RunInfo::current(&cfg.path, &cfg.sha256, cfg.cameras.len()))?;
    info!(run = run_start.id, "Run started.");
    let db = store.path().to_path_buf();
    let engine_info = engine.info().clone();

    let stats = new_stats(cfg, &input);
    let events = Arc::new(EventsMetrics::default());
    let server = start_api(cfg, opts, &stats, (&db, &events))?;
    // Senders read the outbox on their own connections; they stop after the writer's last
    // commit, before the API.
    let senders = cfg
        .events
        .as_ref()
        .map(|e| Senders::start(e, &db, &events))
        .transpose()?;
    let mut heartbeat = Heartbeat::new(opts.notify.as_ref());
    let started = Instant::now();
    let (queues, mut frame_rx) = growing_queues(cfg.ingest.queue_frames);
    frame_rx.count_drops(Arc::clone(&stats));
    let (change_tx, change_rx) = unbounded();
    let mut cams = CameraSet::new(cameras::Shared {
        ingest: cfg.ingest.clone(),
        default_template,
        input,
        stats: Arc::clone(&stats),
        queues,
        tracker: change_tx,
        db: db.clone(),
    });
    // Started (registered, their last stored times read) before the writer takes the
    // connection; their first frames wait in the queues for the stages started next.
    cams.start_all(cfg, &store)?;

    let stages = spawn_stages(cfg, store, engine, frame_rx, change_rx, &stats, &stop)?;
    let stages = supervise(cfg, opts, &stop, &stats, &mut cams, stages, &mut heartbeat)?;

    shut_down(&stop, &mut heartbeat, cams, stages, (senders, server))?;
    Ok(Summary::of(
        &stats,
        started.elapsed(),
        db,
        engine_info,
        run_start,
    ))
}

/// The run's counters, with the model loaded and the live state's config and colour order set.
fn new_stats(cfg: &Config, input: &InputSpec) -> Arc<Stats> {
    let stats = Arc::new(Stats::empty());
    stats.model_loaded.store(true, Ordering::Relaxed);
    stats.live.set_config(Arc::new(cfg.clone()));
    stats.live.set_bgr(input.caps_format() == "BGR");
    stats
}

/// Starts the stages after the cameras, last to first: the store writer, the analytics stage,
/// the tracker and the detector thread.
fn spawn_stages(
    cfg: &Config,
    store: Store,
    engine: Detector,
    frame_rx: FrameSource,
    change_rx: Receiver<CameraChange>,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> Result<Stages, ServiceError> {
    let (det_tx, det_rx) = bounded(DETECTIONS_QUEUE);
    let (store_tx, store_rx) = bounded(STORE_QUEUE);
    let (analytics_tx, analytics_rx) = bounded(STORE_QUEUE);
    // Reloaded zone and footfall definitions; reloads are rare, a few slots are plenty.
    let (defs_tx, defs_rx) = bounded(DEFINITIONS_QUEUE);
    let writer = store.spawn_writer(
        store_rx,
        WriterOptions {
            flush_interval: Duration::from_millis(cfg.storage.flush_interval_ms),
            retention: cfg.storage.retention(),
        },
        Arc::clone(stats),
    )?;
    let analytics = analytics_stage::spawn(
        cfg.analytics.clone(),
        footfall(cfg)?,
        analytics_rx,
        defs_rx,
        store_tx,
    )?;
    let tracker = track_stage::spawn(
        cfg.tracker.clone(),
        det_rx,
        change_rx,
        analytics_tx,
        Arc::clone(stats),
    )?;
    let engine_stop = Arc::clone(stop);
    let engine_stats = Arc::clone(stats);
    let detector = std::thread::Builder::new()
        .name("detector".into())
        .spawn(move || {
            // The flag is set before the last sender to the tracker goes, so the writer (which
            // ends after the tracker) sees it when it closes the run.
            let keep_open = det_tx.clone();
            let result = engine.run(frame_rx, det_tx, Arc::clone(&engine_stats), engine_stop);
            if result.is_err() {
                engine_stats.detector_failed.store(true, Ordering::Relaxed);
            }
            drop(keep_open);
            result
        })?;

    Ok(Stages {
        detector,
        tracker,
        analytics,
        writer,
        defs: defs_tx,
    })
}

/// Stops in order: the cameras, then each stage as it drains into the next, the event senders
/// (given [`EVENTS_DRAIN`]), the API last; then reports the detector's or the writer's error.
fn shut_down(
    stop: &AtomicBool,
    heartbeat: &mut Heartbeat,
    cams: CameraSet,
    stages: Stages,
    (senders, server): (Option<Senders>, Option<api::Server>),
) -> Result<(), ServiceError> {
    info!("Stopping.");
    heartbeat.stopping();
    stop.store(true, Ordering::Relaxed);
    cams.stop_all()?;
    let detector_result = stages
        .detector
        .join()
        .map_err(|_| ServiceError::Crashed("detector"))?;
    stages
        .tracker
        .join()
        .map_err(|_| ServiceError::Crashed("tracker"))?;
    stages
        .analytics
        .join()
        .map_err(|_| ServiceError::Crashed("analytics"))?;
    let writer_result = stages
        .writer
        .join()
        .map_err(|_| ServiceError::Crashed("store"))?;
    if let Some(senders) = senders {
        senders.drain_and_stop(EVENTS_DRAIN);
    }
    if let Some(server) = server {
        server.stop();
    }
    detector_result?;
    writer_result?;
    Ok(())
}

/// The footfall engine for the config's lines, queues, occupancy and rules.
fn footfall(cfg: &Config) -> Result<analytics_stage::Live, ServiceError> {
    let latency = crate::analytics::Stitcher::new(cfg.analytics.clone(), Vec::new()).latency_ms();
    let down_after = i64::try_from(cfg.ingest.stall_timeout_ms).unwrap_or(i64::MAX);
    Ok(analytics_stage::Live::new(
        &cfg.footfall,
        cfg.zones.clone(),
        cfg.analytics.visit_rules(),
        latency,
        down_after,
    )?)
}

/// The stage threads after the cameras.
struct Stages {
    detector: JoinHandle<Result<(), InferError>>,
    tracker: JoinHandle<()>,
    analytics: JoinHandle<()>,
    writer: JoinHandle<Result<(), StoreError>>,
    /// Reloaded zone and footfall definitions to the analytics stage.
    defs: Sender<analytics_stage::Definitions>,
}

/// Watches the running service until it should stop: progress lines, watchdog pings while
/// every stage lives, reloads when asked; returns the stages for an orderly shutdown.
fn supervise(
    cfg: &Config,
    opts: &RunOptions,
    stop: &AtomicBool,
    stats: &Stats,
    cams: &mut CameraSet,
    stages: Stages,
    heartbeat: &mut Heartbeat,
) -> Result<Stages, ServiceError> {
    let started = Instant::now();
    let deadline = opts.duration.map(|d| started + d);
    let mut next_progress = opts.progress.map(|p| started + p);
    let mut rates = stats.rate_state();
    heartbeat.ready(&status_line(&stats.snapshot(), 0.0));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if stages.detector.is_finished() {
            stats.model_loaded.store(false, Ordering::Relaxed);
            error!("Detector stopped unexpectedly; shutting down.");
            break;
        }
        if opts
            .reload
            .as_ref()
            .is_some_and(|r| r.swap(false, Ordering::Relaxed))
        {
            reload::reload(cams, cfg, &cfg.path, &stages.defs)?;
        }
        stats.update_rates(&mut rates);
        // Pings only while every stage thread runs: a dead stage lets the watchdog fire.
        let alive =
            !stages.tracker.is_finished() && !stages.writer.is_finished() && !cams.any_finished();
        let snap = stats.snapshot();
        heartbeat.tick(now, alive, snap.cameras_up, || {
            status_line(&snap, stats.cameras().iter().map(|c| c.fps()).sum())
        });
        if let (Some(at), Some(every)) = (next_progress, opts.progress)
            && now >= at
        {
            eprintln!("{}", progress_line(&stats.snapshot(), started.elapsed()));
            next_progress = Some(at + every);
        }
    }
    Ok(stages)
}
