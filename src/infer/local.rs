//! The local OpenVINO backend: the compiled model's infer requests, each driven by its own
//! worker thread.
//!
//! Input: frames from [`Backend::submit`]. Output: detections from [`Backend::poll`] in the
//! order the device finishes them. A worker takes the next frame as soon as its request is free
//! (so a fast device never waits behind a slow one under MULTI), copies it in, starts the
//! request, waits for it and parses the outputs; copying and parsing thus run in parallel with
//! the other requests instead of on one engine thread. A frame whose inference fails comes back
//! as [`Finished::Failed`] with the error; the worker goes on with the next frame.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use openvino::{CompiledModel, Core, InferRequest};
use prometheus_client::metrics::histogram::Histogram;

use crate::infer::backend::{Backend, Finished};
use crate::infer::{InferError, Io};
use crate::messages::Frame;

/// The request pool behind worker threads.
pub struct LocalBackend {
    capacity: usize,
    jobs: Option<Sender<Frame>>,
    results: Receiver<Finished>,
    workers: Vec<JoinHandle<()>>,
    // Dropped after the workers (and with them the requests) are gone: see `Drop`.
    _compiled: CompiledModel,
    _core: Core,
}

impl LocalBackend {
    /// Starts one worker per request; each records in `latency` the seconds it spends on a
    /// frame (copy in, device, parse).
    pub(crate) fn start(
        requests: Vec<InferRequest>,
        compiled: CompiledModel,
        core: Core,
        io: Arc<Io>,
        latency: Histogram,
    ) -> Result<Self, InferError> {
        let capacity = requests.len();
        // In-flight frames never exceed the pool size, so neither channel ever fills.
        let (jobs, job_rx) = bounded::<Frame>(capacity);
        let (result_tx, results) = bounded(capacity);
        let mut workers = Vec::with_capacity(capacity);
        for (i, mut req) in requests.into_iter().enumerate() {
            let (job_rx, result_tx, io) = (job_rx.clone(), result_tx.clone(), Arc::clone(&io));
            let latency = latency.clone();
            let worker = std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn(move || {
                    for frame in job_rx {
                        let t0 = Instant::now();
                        // A panic comes back as a fatal failure of its frame: the frame is
                        // accounted for (no wait for it at shutdown) and the service ends.
                        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            io.infer(&mut req, &frame)
                        }))
                        .unwrap_or_else(|p| {
                            Err(InferError::WorkerPanicked(crate::panic_text(&*p)))
                        });
                        let finished = match result {
                            Ok(detections) => Finished::Detected(detections),
                            Err(error) => Finished::Failed {
                                camera: frame.camera,
                                seq: frame.seq,
                                error,
                            },
                        };
                        latency.observe(t0.elapsed().as_secs_f64());
                        if result_tx.send(finished).is_err() {
                            break;
                        }
                    }
                })
                .map_err(InferError::Thread)?;
            workers.push(worker);
        }
        Ok(Self {
            capacity,
            jobs: Some(jobs),
            results,
            workers,
            _compiled: compiled,
            _core: core,
        })
    }
}

impl Backend for LocalBackend {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn submit(&mut self, frame: Frame) -> Result<(), InferError> {
        let jobs = self.jobs.as_ref().ok_or(InferError::WorkersGone)?;
        jobs.send(frame).map_err(|_| InferError::WorkersGone)
    }

    fn poll(&mut self, timeout: Duration) -> Result<Option<Finished>, InferError> {
        match self.results.recv_timeout(timeout) {
            Ok(finished) => Ok(Some(finished)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(InferError::WorkersGone),
        }
    }
}

impl Drop for LocalBackend {
    /// Closes the job queue and joins the workers, so every request is released before the
    /// compiled model and the core.
    fn drop(&mut self) {
        self.jobs = None;
        // Drain results so no worker blocks on a full result channel.
        while !self.workers.iter().all(JoinHandle::is_finished) {
            let _ = self.results.recv_timeout(Duration::from_millis(10));
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
