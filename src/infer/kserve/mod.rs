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
//! order ([`reorder`]). A failed or timed-out request takes its endpoint out until a probe
//! (readiness + metadata, with backoff) succeeds. With no endpoint up, frames are detected by
//! the local engine (`fallback = "local"`) or dropped and counted: never queued.

pub mod client;
mod error;
pub mod fleet;
pub mod proto;
pub mod reorder;
pub mod tensor;

pub use client::CallError;
pub use error::{DetectError, KserveError};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use tracing::{debug, error, info, warn};

use crate::config::{InferenceConfig, ModelConfig, RemoteConfig};
use crate::geometry::Detection;
use crate::infer::{Engine, EngineInfo, InputMapping, InputSpec};
use crate::infer::{ModelDescription, ssd};
use crate::ingest::queue::{FrameSource, Next};
use crate::messages::{CameraIndex, Detections, Frame};
use crate::stats::{self, Stats};
use client::{Client, Event};
use fleet::{Change, Fleet};
use reorder::Reorder;

/// How long the detector waits for a frame when nothing is in flight.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// With requests in flight and room for more, how long to wait for a frame before looking at
/// completions again.
const WAIT_SLICE: Duration = Duration::from_millis(2);
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
    desc: Arc<ModelDescription>,
    fallback: Option<Engine>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    info: EngineInfo,
    person_class: u32,
    min_score: f32,
    person_score: f32,
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
        let desc = ModelDescription::load(&model.description)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("kserve")
            .enable_all()
            .build()
            .map_err(KserveError::Runtime)?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let clients = {
            let _rt = runtime.enter();
            cfg.endpoints
                .iter()
                .map(|e| {
                    client::connect(e, timeout).map_err(|source| KserveError::Endpoint {
                        endpoint: e.clone(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut fleet = Fleet::new(clients.len(), cfg.in_flight);
        let probes = runtime.block_on(async {
            let tasks: Vec<_> = clients
                .iter()
                .map(|c| {
                    let call = client::probe(
                        c.clone(),
                        cfg.model.clone(),
                        cfg.version.clone(),
                        desc.clone(),
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
        });
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
        let fallback = if cfg.fallback_local {
            Some(Engine::new(model, inference, min_score).map_err(KserveError::Fallback)?)
        } else {
            None
        };
        // Every task sends exactly one event, and at most this many run at once.
        let (events_tx, events_rx) = bounded(clients.len() * (cfg.in_flight + 1));
        let info = EngineInfo {
            model: format!("{} (as {:?} on the servers)", desc.name, cfg.model),
            device: format!("kserve: {} endpoint(s)", clients.len()),
            requests: clients.len() * cfg.in_flight,
            streams: None,
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
            person_class: model.person_class.unwrap_or(desc.person_class),
            min_score: min_score.min(model.score_threshold),
            person_score: model.score_threshold,
            desc: Arc::new(desc),
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
        self.desc.input_spec()
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
        let tensor = tensor::pack_input(pixels, &self.desc).ok_or(DetectError::Frame)?;
        self.next_id += 1;
        let msg = tensor::infer_request(
            &self.desc,
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
        let t =
            tensor::read_outputs(&self.desc, &resp.into_inner()).map_err(CallError::Response)?;
        Ok(ssd::parse(
            &t.view(),
            self.person_class,
            self.min_score,
            mapping,
        ))
    }

    /// Serves frames until every camera's queue is closed and `stop` is set or all senders are
    /// gone; finished frames go to `out` in per-camera order.
    pub fn run(
        mut self,
        mut source: FrameSource,
        out: Sender<Detections>,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), KserveError> {
        let mut reorder = Reorder::new(stats.cameras.len());
        let mut closed = false;
        stats::add(&stats.remote.endpoints, self.fleet.len() as u64);
        stats
            .remote
            .fallback_ready
            .store(self.fallback.is_some(), Ordering::Relaxed);
        loop {
            while let Ok(ev) = self.events_rx.try_recv() {
                if !self.handle(ev, &mut reorder, &out, &stats) {
                    return Ok(());
                }
            }
            self.start_probes();
            self.publish(&stats);
            if !closed && self.fleet.up() == 0 {
                // No endpoint: what is waiting is detected locally or dropped, never queued.
                while let Some(frame) = source.try_next() {
                    if !self.without_fleet(frame, &mut reorder, &out, &stats)? {
                        return Ok(());
                    }
                }
            }
            while !closed && let Some(ep) = self.fleet.pick() {
                let Some(frame) = source.try_next() else {
                    break;
                };
                self.submit(ep, frame, &mut reorder, &stats)?;
            }
            if self.fleet.outstanding() > 0 {
                if !closed && let Some(ep) = self.fleet.pick() {
                    match source.next(WAIT_SLICE) {
                        Next::Frame(frame) => self.submit(ep, frame, &mut reorder, &stats)?,
                        Next::Idle => {}
                        Next::Closed => closed = true,
                    }
                } else {
                    match self.events_rx.recv_timeout(IDLE_POLL) {
                        Ok(ev) => {
                            if !self.handle(ev, &mut reorder, &out, &stats) {
                                return Ok(());
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
                    }
                }
                continue;
            }
            if closed || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // Nothing in flight: wait for a frame (short waits while all are down, so probes
            // start on time).
            let wait = if self.fleet.up() == 0 {
                fleet::PROBE_BACKOFF_MIN / 5
            } else {
                IDLE_POLL
            };
            match source.next(wait) {
                Next::Frame(frame) => match self.fleet.pick() {
                    Some(ep) => self.submit(ep, frame, &mut reorder, &stats)?,
                    None => {
                        if !self.without_fleet(frame, &mut reorder, &out, &stats)? {
                            return Ok(());
                        }
                    }
                },
                Next::Idle => {}
                Next::Closed => closed = true,
            }
        }
    }

    fn submit(
        &mut self,
        ep: usize,
        frame: Frame,
        reorder: &mut Reorder<Detections>,
        stats: &Stats,
    ) -> Result<(), KserveError> {
        let t0 = Instant::now();
        let unfit = || KserveError::Frame {
            camera: frame.camera,
            width: self.desc.input_width,
            height: self.desc.input_height,
        };
        let tensor = {
            let map = frame.pixels.map_readable().map_err(|_| unfit())?;
            tensor::pack_input(map.as_slice(), &self.desc).ok_or_else(unfit)?
        };
        self.next_id += 1;
        let msg = tensor::infer_request(
            &self.desc,
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
        reorder.submitted(job.camera, job.seq);
        self.fleet.sent(ep);
        stats::inc(&stats.remote.requests);
        self.runtime.spawn(client::infer_and_report(
            ep,
            self.clients[ep].clone(),
            msg,
            job,
            Arc::clone(&self.desc),
            Duration::from_millis(self.cfg.timeout_ms),
            self.events_tx.clone(),
        ));
        Ok(())
    }

    /// Handles one event; false when the tracker stage is gone.
    fn handle(
        &mut self,
        ev: Event,
        reorder: &mut Reorder<Detections>,
        out: &Sender<Detections>,
        stats: &Stats,
    ) -> bool {
        let now = Instant::now();
        match ev {
            Event::Probe { endpoint, result } => {
                let change = match &result {
                    Ok(()) => self.fleet.probe_ok(endpoint),
                    Err(e) => {
                        debug!(endpoint = %self.endpoints[endpoint], error = %e, "Probe failed.");
                        if let CallError::Mismatch(_) = e {
                            error!(endpoint = %self.endpoints[endpoint], error = %e, "Model server came back with another model; keeping it out.");
                        }
                        self.fleet.probe_failed(endpoint, now);
                        Change::None
                    }
                };
                self.log_change(endpoint, change, None);
                true
            }
            Event::Infer {
                endpoint,
                job,
                result,
                round_trip,
                decode,
            } => {
                let ok = result.is_ok();
                let change = self.fleet.finished(endpoint, ok, now);
                let dets = match result {
                    Ok(t) => {
                        stats::add(&stats.remote.round_trip_us, round_trip.as_micros() as u64);
                        stats::add(&stats.remote.codec_us, decode.as_micros() as u64);
                        let boxes =
                            ssd::parse(&t.view(), self.person_class, self.min_score, &job.mapping);
                        Some(self.detections(&job, boxes, stats))
                    }
                    Err(e) => {
                        stats::inc(&stats.remote.failures);
                        self.log_change(endpoint, change, Some(&e));
                        None
                    }
                };
                reorder
                    .finished(job.camera, job.seq, dets)
                    .into_iter()
                    .all(|d| out.send(d).is_ok())
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
                (*self.desc).clone(),
                Duration::from_millis(self.cfg.timeout_ms),
                self.events_tx.clone(),
            ));
        }
    }

    fn publish(&self, stats: &Stats) {
        stats
            .remote
            .endpoints_up
            .store(self.fleet.up() as u64, Ordering::Relaxed);
    }

    /// A frame that arrived while no endpoint is up; false when the tracker stage is gone.
    fn without_fleet(
        &mut self,
        frame: Frame,
        reorder: &mut Reorder<Detections>,
        out: &Sender<Detections>,
        stats: &Stats,
    ) -> Result<bool, KserveError> {
        let Some(engine) = self.fallback.as_mut() else {
            stats::inc(&stats.remote.dropped);
            return Ok(true);
        };
        let boxes = {
            let map = frame
                .pixels
                .map_readable()
                .map_err(|_| KserveError::Frame {
                    camera: frame.camera,
                    width: self.desc.input_width,
                    height: self.desc.input_height,
                })?;
            engine
                .detect(map.as_slice(), &frame.mapping)
                .map_err(KserveError::Fallback)?
        };
        stats::inc(&stats.remote.fallback);
        let job = Job {
            camera: frame.camera,
            seq: frame.seq,
            captured_ms: frame.captured_ms,
            mapping: frame.mapping,
        };
        let dets = self.detections(&job, boxes, stats);
        reorder.submitted(job.camera, job.seq);
        Ok(reorder
            .finished(job.camera, job.seq, Some(dets))
            .into_iter()
            .all(|d| out.send(d).is_ok()))
    }

    fn detections(&self, job: &Job, boxes: Vec<Detection>, stats: &Stats) -> Detections {
        let cam = &stats.cameras[job.camera];
        stats::inc(&cam.inferred);
        let persons = boxes
            .iter()
            .filter(|d| d.score >= self.person_score)
            .count() as u32;
        stats::add(&cam.persons, u64::from(persons));
        Detections {
            camera: job.camera,
            seq: job.seq,
            captured_ms: job.captured_ms,
            source_size: job.mapping.source_size(),
            persons,
            boxes,
        }
    }
}
