//! Detection on a fleet of KServe v2 model servers (OpenVINO Model Server, Triton, KServe,
//! MLServer) over gRPC: `[inference] backend = "kserve"`.
//!
//! Input: [`Frame`]s from every camera, like the local engine. Output: [`Detections`] per frame,
//! in source pixels and in each camera's frame order, like the local engine: the tracker and the
//! store do not know which backend ran.
//!
//! At start every reachable endpoint's model metadata is checked against the model description
//! (a mismatch refuses to start). Requests go to the endpoint with the fewest outstanding
//! requests ([`fleet`]); results are collected as they complete and put back in per-camera
//! order by the same detector loop as the local engine's ([`crate::infer::dispatch`]). A failed or timed-out request takes its endpoint out until a probe
//! (readiness + metadata, with backoff) succeeds. With no endpoint up, frames are detected by
//! the local engine (`fallback = "local"`) or dropped and counted: never queued. A frame that
//! cannot be packed into a request, or that the fallback fails on, is a failed frame for the
//! detector loop (counted and dropped; see [`crate::infer::failures`]).

pub mod client;
mod error;
pub mod fleet;
pub mod proto;
pub mod tensor;

pub use client::CallError;
pub use error::{DetectError, KserveError};

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use tracing::{debug, error, info, warn};

use crate::config::{InferenceConfig, ModelConfig, RemoteConfig};
use crate::geometry::Detection;
use crate::infer::backend::{Backend, Finished};
use crate::infer::{Engine, EngineInfo, InferError, InputMapping, InputSpec, dispatch};
use crate::infer::{Io, ModelDescription};
use crate::ingest::queue::FrameSource;
use crate::messages::{CameraIndex, Detections, Frame};
use crate::stats::{self, Stats};
use client::{Client, Event};
use fleet::{Change, Fleet};

/// Longest wait for an answer before checking whether a probe is due.
const PROBE_TICK: Duration = Duration::from_millis(50);
/// Worker threads of the gRPC runtime (encoding and HTTP/2 are light; inference is remote).
const RUNTIME_THREADS: usize = 2;

/// The frame a request carries, for putting its result back in place.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    camera: CameraIndex,
    seq: u64,
    captured_ms: i64,
    mapping: InputMapping,
}

/// The remote detector: clients of every endpoint and their health.
pub struct RemoteEngine {
    runtime: tokio::runtime::Runtime,
    clients: Vec<Client>,
    endpoints: Vec<String>,
    fleet: Fleet,
    cfg: RemoteConfig,
    io: Arc<Io>,
    fallback: Option<Engine>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    info: EngineInfo,
    next_id: u64,
}

impl RemoteEngine {
    /// Connects to every endpoint and checks the model there against the description.
    /// Unreachable endpoints start out down (and are probed); a reachable endpoint whose model
    /// does not match refuses the start.
    pub fn new(
        model: &ModelConfig,
        inference: &InferenceConfig,
        cfg: &RemoteConfig,
        min_score: f32,
    ) -> Result<Self, KserveError> {
        let io = Arc::new(Io::new(
            ModelDescription::load(&model.description)?,
            model,
            min_score,
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("kserve")
            .enable_all()
            .build()
            .map_err(KserveError::Runtime)?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let clients = connect_all(&runtime, cfg, timeout)?;
        let mut fleet = Fleet::new(clients.len(), cfg.in_flight);
        let probes = probe_all(&runtime, &clients, cfg, &io, timeout);
        check_probes(&mut fleet, probes, cfg, model)?;
        let fallback = if cfg.fallback_local {
            Some(Engine::new(model, inference, min_score).map_err(KserveError::Fallback)?)
        } else {
            None
        };
        // Every task sends exactly one event, and at most this many run at once.
        let (events_tx, events_rx) = bounded(clients.len() * (cfg.in_flight + 1));
        let info = EngineInfo {
            model: format!("{} (as {:?} on the servers)", io.desc.name, cfg.model),
            device: format!("kserve: {} endpoint(s)", clients.len()),
            requests: clients.len() * cfg.in_flight,
            streams: None,
            precision: None,
        };
        info!(
            endpoints = clients.len(),
            up = fleet.up(),
            in_flight = cfg.in_flight,
            fallback = cfg.fallback_local,
            "Remote detector ready."
        );
        Ok(Self {
            runtime,
            clients,
            endpoints: cfg.endpoints.clone(),
            fleet,
            cfg: cfg.clone(),
            io,
            fallback,
            events_tx,
            events_rx,
            info,
            next_id: 0,
        })
    }

    /// What the backend settled on.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// What the pipeline must produce for this model.
    pub fn input_spec(&self) -> InputSpec {
        self.io.desc.input_spec()
    }

    /// Endpoints up now.
    pub fn endpoints_up(&self) -> usize {
        self.fleet.up()
    }

    /// Runs one picture synchronously on the first endpoint that is up (for tools, tests and
    /// the overhead benchmark): `pixels` is the packed input picture, boxes are mapped back
    /// through `mapping`.
    pub fn detect(
        &mut self,
        pixels: &[u8],
        mapping: &InputMapping,
    ) -> Result<Vec<Detection>, DetectError> {
        let ep = (0..self.fleet.len())
            .find(|&i| self.fleet.health(i) == fleet::Health::Up)
            .ok_or(DetectError::NoEndpoint)?;
        let tensor = self.io.packer.to_bytes(pixels)?;
        self.next_id += 1;
        let msg = tensor::infer_request(
            &self.io.desc,
            &self.io.decoder,
            &self.cfg.model,
            self.cfg.version.as_deref(),
            self.next_id.to_string(),
            tensor,
        );
        let mut client = self.clients[ep].clone();
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let resp = self.runtime.block_on(async move {
            tokio::time::timeout(timeout, client.model_infer(msg))
                .await
                .map_err(|_| CallError::Timeout(timeout.as_millis() as u64))?
                .map_err(CallError::from)
        })?;
        let t = tensor::read_outputs(&self.io.decoder, &resp.into_inner())
            .map_err(CallError::Response)?;
        Ok(self.io.decoder.decode(&t.views(), mapping)?)
    }

    /// Serves frames until every camera's queue is closed and `stop` is set or all senders are
    /// gone; finished frames go to `out`, each camera's in order (through the same detector
    /// loop as the local engine, [`crate::infer::dispatch`]).
    pub fn run(
        self,
        source: FrameSource,
        out: Sender<Detections>,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), InferError> {
        stats::add(&stats.remote.endpoints, self.fleet.len() as u64);
        stats
            .remote
            .fallback_ready
            .store(self.fallback.is_some(), Ordering::Relaxed);
        let backend = RemoteBackend::new(self, Arc::clone(&stats));
        dispatch::run(backend, source, out, stats, stop)
    }

    /// Sends `frame` to endpoint `ep`.
    fn submit(&mut self, ep: usize, frame: Frame, stats: &Stats) -> Result<(), InferError> {
        let t0 = Instant::now();
        let tensor = {
            let map = frame
                .pixels
                .map_readable()
                .map_err(|_| self.unfit(&frame))?;
            self.io
                .packer
                .to_bytes(map.as_slice())
                .map_err(|_| self.unfit(&frame))?
        };
        self.next_id += 1;
        let msg = tensor::infer_request(
            &self.io.desc,
            &self.io.decoder,
            &self.cfg.model,
            self.cfg.version.as_deref(),
            self.next_id.to_string(),
            tensor,
        );
        let job = Job {
            camera: frame.camera,
            seq: frame.seq,
            captured_ms: frame.captured_ms,
            mapping: frame.mapping,
        };
        stats::add(&stats.remote.codec_us, t0.elapsed().as_micros() as u64);
        self.fleet.sent(ep);
        stats::inc(&stats.remote.requests);
        self.runtime.spawn(client::infer_and_report(
            ep,
            self.clients[ep].clone(),
            msg,
            job,
            Arc::clone(&self.io),
            Duration::from_millis(self.cfg.timeout_ms),
            self.events_tx.clone(),
        ));
        Ok(())
    }

    fn unfit(&self, frame: &Frame) -> InferError {
        InferError::ModelMismatch {
            model: self.io.desc.name.clone(),
            message: format!(
                "frame of camera {} does not fit input {}x{}",
                frame.camera, self.io.desc.input_width, self.io.desc.input_height
            ),
        }
    }

    /// Handles one event; a finished request gives its frame back.
    fn handle(&mut self, ev: Event, stats: &Stats) -> Option<Finished> {
        let now = Instant::now();
        match ev {
            Event::Probe { endpoint, result } => {
                let change = match &result {
                    Ok(()) => self.fleet.probe_ok(endpoint),
                    Err(e) => {
                        debug!(endpoint = %self.endpoints[endpoint], error = %e, "Probe failed.");
                        if let CallError::Mismatch(_) = e {
                            error!(endpoint = %self.endpoints[endpoint], error = %e,
                                   "Model server came back with another model; keeping it out.");
                        }
                        self.fleet.probe_failed(endpoint, now);
                        Change::None
                    }
                };
                self.log_change(endpoint, change, None);
                None
            }
            Event::Infer {
                endpoint,
                job,
                result,
                round_trip,
                decode,
            } => {
                let change = self.fleet.finished(endpoint, result.is_ok(), now);
                Some(match result {
                    Ok(boxes) => {
                        stats::add(&stats.remote.round_trip_us, round_trip.as_micros() as u64);
                        stats::add(&stats.remote.codec_us, decode.as_micros() as u64);
                        Finished::Detected(self.detections(&job, boxes))
                    }
                    Err(e) => {
                        stats::inc(&stats.remote.failures);
                        self.log_change(endpoint, change, Some(&e));
                        Finished::Dropped {
                            camera: job.camera,
                            seq: job.seq,
                        }
                    }
                })
            }
        }
    }

    fn log_change(&self, endpoint: usize, change: Change, error: Option<&CallError>) {
        let ep = &self.endpoints[endpoint];
        let up = self.fleet.up();
        match change {
            Change::None => {}
            Change::WentDown => {
                let error = error.map(ToString::to_string).unwrap_or_default();
                warn!(endpoint = %ep, %error, up, "Model server taken out; probing with backoff.");
                if up == 0 {
                    let what = if self.fallback.is_some() {
                        "detected by the local engine"
                    } else {
                        "dropped (counted)"
                    };
                    error!(
                        endpoints = self.fleet.len(),
                        "No model server is up: frames are {what} until one returns."
                    );
                }
            }
            Change::CameBack => info!(endpoint = %ep, up, "Model server is back."),
        }
    }

    fn start_probes(&mut self) {
        for i in self.fleet.due_probes(Instant::now()) {
            self.runtime.spawn(client::probe_and_report(
                i,
                self.clients[i].clone(),
                self.cfg.model.clone(),
                self.cfg.version.clone(),
                Arc::clone(&self.io),
                Duration::from_millis(self.cfg.timeout_ms),
                self.events_tx.clone(),
            ));
        }
    }

    /// A frame that arrived while no endpoint is up: detected by the local fallback, or
    /// dropped and counted.
    fn without_fleet(&mut self, frame: Frame, stats: &Stats) -> Result<Finished, InferError> {
        let unfit = self.unfit(&frame);
        let Some(engine) = self.fallback.as_mut() else {
            stats::inc(&stats.remote.dropped);
            return Ok(Finished::Dropped {
                camera: frame.camera,
                seq: frame.seq,
            });
        };
        let boxes = {
            let map = frame.pixels.map_readable().map_err(|_| unfit)?;
            engine.detect(map.as_slice(), &frame.mapping)?
        };
        stats::inc(&stats.remote.fallback);
        let job = Job {
            camera: frame.camera,
            seq: frame.seq,
            captured_ms: frame.captured_ms,
            mapping: frame.mapping,
        };
        Ok(Finished::Detected(self.detections(&job, boxes)))
    }

    fn detections(&self, job: &Job, boxes: Vec<Detection>) -> Detections {
        self.io
            .detections(job.camera, job.seq, job.captured_ms, &job.mapping, boxes)
    }
}

/// The remote detector behind the detector boundary: `submit` sends a request to the endpoint
/// with the fewest outstanding requests, `poll` hands back frames as their answers arrive.
struct RemoteBackend {
    engine: RemoteEngine,
    stats: Arc<Stats>,
    /// Frames submitted while every up endpoint was at its in-flight limit (fewer endpoints are
    /// up than the capacity counts on); at most the capacity, since the loop never exceeds it.
    waiting: VecDeque<Frame>,
    /// Frames finished without a request (dropped or detected by the fallback).
    ready: VecDeque<Finished>,
}

/// A client for every endpoint (connections are made lazily; a bad address fails here).
fn connect_all(
    runtime: &tokio::runtime::Runtime,
    cfg: &RemoteConfig,
    timeout: Duration,
) -> Result<Vec<Client>, KserveError> {
    let _rt = runtime.enter();
    cfg.endpoints
        .iter()
        .map(|e| {
            client::connect(e, timeout).map_err(|source| KserveError::Endpoint {
                endpoint: e.clone(),
                source,
            })
        })
        .collect()
}

/// Probes every endpoint at once (readiness and model metadata); one result per client.
fn probe_all(
    runtime: &tokio::runtime::Runtime,
    clients: &[Client],
    cfg: &RemoteConfig,
    io: &Arc<Io>,
    timeout: Duration,
) -> Vec<Result<(), CallError>> {
    runtime.block_on(async {
        let tasks: Vec<_> = clients
            .iter()
            .map(|c| {
                let call = client::probe(
                    c.clone(),
                    cfg.model.clone(),
                    cfg.version.clone(),
                    Arc::clone(io),
                    timeout,
                );
                tokio::spawn(call)
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap_or(Err(CallError::NotReady)));
        }
        results
    })
}

/// Applies the start-up probes: a mismatching model refuses the start, an unreachable endpoint
/// starts out down; says loudly when none is up.
fn check_probes(
    fleet: &mut Fleet,
    probes: Vec<Result<(), CallError>>,
    cfg: &RemoteConfig,
    model: &ModelConfig,
) -> Result<(), KserveError> {
    let now = Instant::now();
    for (i, result) in probes.into_iter().enumerate() {
        match result {
            Ok(()) => {
                info!(endpoint = %cfg.endpoints[i], model = %cfg.model, "Model server ready; metadata matches.")
            }
            Err(CallError::Mismatch(message)) => {
                return Err(KserveError::Mismatch {
                    endpoint: cfg.endpoints[i].clone(),
                    model: cfg.model.clone(),
                    message,
                    description: model.description.display().to_string(),
                });
            }
            Err(e) => {
                warn!(endpoint = %cfg.endpoints[i], error = %e, "Model server not reachable at start; probing with backoff.");
                fleet.failed(i, now);
            }
        }
    }
    if fleet.up() == 0 {
        let what = if cfg.fallback_local {
            "detected by the local engine"
        } else {
            "dropped (counted)"
        };
        error!(
            endpoints = fleet.len(),
            "No model server is up at start: frames are {what} until one answers."
        );
    }
    Ok(())
}

impl RemoteBackend {
    fn new(engine: RemoteEngine, stats: Arc<Stats>) -> Self {
        Self {
            engine,
            stats,
            waiting: VecDeque::new(),
            ready: VecDeque::new(),
        }
    }

    /// Sends waiting frames while an up endpoint has room; with no endpoint up, hands them to
    /// the fallback or drops them. A frame that cannot be sent or that the fallback fails on
    /// comes back as [`Finished::Failed`].
    fn send_waiting(&mut self) {
        while let Some(frame) = self.waiting.pop_front() {
            let (camera, seq) = (frame.camera, frame.seq);
            let result = if let Some(ep) = self.engine.fleet.pick() {
                self.engine.submit(ep, frame, &self.stats).map(|()| None)
            } else if self.engine.fleet.up() > 0 {
                self.waiting.push_front(frame);
                break;
            } else {
                self.engine.without_fleet(frame, &self.stats).map(Some)
            };
            match result {
                Ok(finished) => self.ready.extend(finished),
                Err(error) => self
                    .ready
                    .push_back(Finished::Failed { camera, seq, error }),
            }
        }
    }
}

impl Backend for RemoteBackend {
    fn capacity(&self) -> usize {
        self.engine.fleet.len() * self.engine.cfg.in_flight
    }

    fn submit(&mut self, frame: Frame) -> Result<(), InferError> {
        self.waiting.push_back(frame);
        self.send_waiting();
        Ok(())
    }

    fn poll(&mut self, timeout: Duration) -> Result<Option<Finished>, InferError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Answers first: a probe result must not wait behind frames finished locally.
            while let Ok(event) = self.engine.events_rx.try_recv() {
                if let Some(f) = self.engine.handle(event, &self.stats) {
                    self.ready.push_back(f);
                }
            }
            self.engine.start_probes();
            self.stats
                .remote
                .endpoints_up
                .store(self.engine.fleet.up() as u64, Ordering::Relaxed);
            self.send_waiting();
            if let Some(f) = self.ready.pop_front() {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let event = match self.engine.events_rx.recv_timeout(left.min(PROBE_TICK)) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) if left.is_zero() => return Ok(None),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the engine holds a sender"),
            };
            if let Some(f) = self.engine.handle(event, &self.stats) {
                return Ok(Some(f));
            }
        }
    }
}
