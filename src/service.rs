//! The running service: wires cameras → detector → trackers → store, serves the HTTP API, tells
//! the service manager how it is (notify protocol: ready, watchdog pings while every stage is
//! alive, status line), reports progress, and shuts the chain down in order (cameras first, then
//! each stage drains into the next, the API last).
//!
//! Input: a validated [`Config`]. Output: rows in the database and a [`Summary`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use gstreamer as gst;
use tracing::{error, info};

use crate::analytics::stage as analytics_stage;
use crate::api::{self, ApiError, ApiState};
use crate::config::Config;
use crate::infer::kserve::{KserveError, RemoteEngine};
use crate::infer::{Engine, EngineInfo, InferError, InputSpec};
use crate::ingest::queue::FrameSource;
use crate::ingest::{self, CameraTask, PipelineError, Template, queue::frame_queues};
use crate::messages::Detections;
use crate::notify::{Heartbeat, NotifyTarget};
use crate::stats::{Latency, Snapshot, Stats};
use crate::store::{RunInfo, RunStart, Store, StoreError, WriterOptions};
use crate::track::stage as track_stage;

/// Detections waiting for the tracker (the tracker is fast; this absorbs bursts).
const DETECTIONS_QUEUE: usize = 256;
/// Store messages waiting for the writer (≈ several seconds of points for tens of cameras).
const STORE_QUEUE: usize = 16_384;

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
    /// Camera ids, in config order (as in `latency.cameras`).
    pub camera_ids: Vec<String>,
    /// Analysed fps and frame age per camera and overall.
    pub latency: Latency,
    /// The run row opened for this run, and what its start found of earlier runs.
    pub run: RunStart,
}

impl Summary {
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
    /// The remote detector could not start.
    #[error(transparent)]
    Remote(#[from] KserveError),
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
}

/// The one-line status for the service manager.
pub fn status_line(s: &Snapshot, fps: f64) -> String {
    format!(
        "cameras {}/{} up | {:.1} fps analysed | dropped {} | tracks {} | points {}",
        s.cameras_up, s.cameras, fps, s.dropped, s.tracks, s.points_stored
    )
}

/// The detector the config asks for: the local OpenVINO engine or a KServe v2 fleet.
enum Detector {
    Local(Box<Engine>),
    Remote(Box<RemoteEngine>),
}

impl Detector {
    fn new(cfg: &Config) -> Result<Self, ServiceError> {
        let min_score = cfg.tracker.low_score;
        Ok(match &cfg.inference.remote {
            None => Detector::Local(Box::new(Engine::new(
                &cfg.model,
                &cfg.inference,
                min_score,
            )?)),
            Some(remote) => Detector::Remote(Box::new(RemoteEngine::new(
                &cfg.model,
                &cfg.inference,
                remote,
                min_score,
            )?)),
        })
    }

    fn input_spec(&self) -> InputSpec {
        match self {
            Detector::Local(e) => e.input_spec(),
            Detector::Remote(r) => r.input_spec(),
        }
    }

    fn info(&self) -> &EngineInfo {
        match self {
            Detector::Local(e) => e.info(),
            Detector::Remote(r) => r.info(),
        }
    }

    fn run(
        self,
        source: FrameSource,
        out: crossbeam_channel::Sender<Detections>,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), InferError> {
        match self {
            Detector::Local(e) => e.run(source, out, stats, stop),
            Detector::Remote(r) => r.run(source, out, stats, stop),
        }
    }
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
        "[{:>5.0}s] cameras {}/{} up | decoded {} | skipped {} | inferred {} ({:.1} fps) | dropped {} | persons {} | tracks {} | points {}{remote}",
        elapsed.as_secs_f64(),
        s.cameras_up,
        s.cameras,
        s.decoded,
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
    db: &std::path::Path,
) -> Result<Option<api::Server>, ServiceError> {
    let Some(a) = &cfg.api else {
        return Ok(None);
    };
    let state = ApiState::new(
        Arc::clone(stats),
        &cfg.cameras,
        db.to_path_buf(),
        a.token.clone(),
    );
    let server = api::Server::start(a, state)?;
    if let Some(tx) = &opts.api_bound {
        let _ = tx.send(server.local_addr());
    }
    Ok(Some(server))
}

/// Runs until `stop` is set or `opts.duration` passes. Start-up problems (model, device,
/// database, template) are returned before any camera is opened.
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<Summary, ServiceError> {
    gst::init()?;
    let default_template = Template::load(&cfg.ingest.pipeline)?;
    // A camera may name its own template (an H.265 camera, say); the others share the default.
    let templates = cfg
        .cameras
        .iter()
        .map(|c| match &c.pipeline {
            Some(p) => Template::load(p),
            None => Ok(default_template.clone()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let engine = Detector::new(cfg)?;
    let input = engine.input_spec();
    // Building (not starting) each camera's pipeline checks the template and plugins now.
    for (cam, template) in cfg.cameras.iter().zip(&templates) {
        template.build(cam, &cfg.ingest, &input)?;
    }
    let mut store = Store::open(&cfg.storage.db)?;
    // The run (and its lock) first: nothing is written while another service owns the file.
    let run_start =
        store.begin_run(&RunInfo::current(&cfg.path, &cfg.sha256, cfg.cameras.len()))?;
    info!(run = run_start.id, "Run started.");
    store.register_cameras(&cfg.cameras)?;
    // Capture times of a camera keep increasing across runs: each continues after its last.
    let resume_after = cfg
        .cameras
        .iter()
        .map(|c| store.last_frame_ms(&c.id))
        .collect::<Result<Vec<_>, _>>()?;
    let db = store.path().to_path_buf();
    let engine_info = engine.info().clone();

    let stats = Arc::new(Stats::new(cfg.cameras.len()));
    stats.model_loaded.store(true, Ordering::Relaxed);
    let server = start_api(cfg, opts, &stats, &db)?;
    let mut heartbeat = Heartbeat::new(opts.notify.as_ref());
    let started = Instant::now();
    let (frame_tx, mut frame_rx) = frame_queues(cfg.cameras.len(), cfg.ingest.queue_frames);
    frame_rx.count_drops(Arc::clone(&stats));
    let (det_tx, det_rx) = bounded(DETECTIONS_QUEUE);
    let (store_tx, store_rx) = bounded(STORE_QUEUE);
    let (analytics_tx, analytics_rx) = bounded(STORE_QUEUE);

    let writer = store.spawn_writer(
        store_rx,
        WriterOptions {
            flush_interval: Duration::from_millis(cfg.storage.flush_interval_ms),
            retention: cfg.storage.retention(),
        },
        Arc::clone(&stats),
    )?;
    let analytics = analytics_stage::spawn(
        cfg.analytics.clone(),
        cfg.zones.clone(),
        analytics_rx,
        store_tx,
    )?;
    let tracker = track_stage::spawn(
        &cfg.cameras,
        cfg.tracker.clone(),
        det_rx,
        analytics_tx,
        Arc::clone(&stats),
    )?;
    let engine_stop = Arc::clone(&stop);
    let engine_stats = Arc::clone(&stats);
    let detector = std::thread::Builder::new()
        .name("detector".into())
        .spawn(move || engine.run(frame_rx, det_tx, engine_stats, engine_stop))?;
    let mut cameras = Vec::new();
    for (index, (camera, frames)) in cfg.cameras.iter().zip(frame_tx).enumerate() {
        cameras.push(ingest::spawn(CameraTask {
            index,
            camera: camera.clone(),
            ingest: cfg.ingest.clone(),
            template: templates[index].clone(),
            input,
            decoder_threads: ingest::decoder_threads(cfg.cameras.len()),
            frames,
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            resume_after_ms: resume_after[index],
        })?);
    }

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
        if detector.is_finished() {
            stats.model_loaded.store(false, Ordering::Relaxed);
            error!("Detector stopped unexpectedly; shutting down.");
            break;
        }
        stats.update_rates(&mut rates);
        // Pings only while every stage thread runs: a dead stage lets the watchdog fire.
        let alive = !tracker.is_finished()
            && !writer.is_finished()
            && cameras.iter().all(|c| !c.is_finished());
        let snap = stats.snapshot();
        heartbeat.tick(now, alive, snap.cameras_up, || {
            status_line(&snap, stats.cameras.iter().map(|c| c.fps()).sum())
        });
        if let (Some(at), Some(every)) = (next_progress, opts.progress)
            && now >= at
        {
            eprintln!("{}", progress_line(&stats.snapshot(), started.elapsed()));
            next_progress = Some(at + every);
        }
    }

    info!("Stopping.");
    heartbeat.stopping();
    stop.store(true, Ordering::Relaxed);
    for c in cameras {
        c.join().map_err(|_| ServiceError::Crashed("camera"))?;
    }
    let detector_result = detector
        .join()
        .map_err(|_| ServiceError::Crashed("detector"))?;
    tracker
        .join()
        .map_err(|_| ServiceError::Crashed("tracker"))?;
    analytics
        .join()
        .map_err(|_| ServiceError::Crashed("analytics"))?;
    let writer_result = writer.join().map_err(|_| ServiceError::Crashed("store"))?;
    if let Some(server) = server {
        server.stop();
    }
    detector_result?;
    writer_result?;
    let elapsed = started.elapsed();
    Ok(Summary {
        counts: stats.snapshot(),
        latency: stats.latency(elapsed.as_secs_f64()),
        camera_ids: cfg.cameras.iter().map(|c| c.id.clone()).collect(),
        elapsed,
        db,
        engine: engine_info,
        run: run_start,
    })
}
