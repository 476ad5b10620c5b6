//! The detector the config asks for: the local OpenVINO [`Engine`] or a KServe v2 fleet
//! ([`RemoteEngine`]), behind one type, so the service builds and runs it without knowing
//! which backend it is (a new backend is a new variant here).
//!
//! Input: the config's `[model]` and `[inference]` settings; then [`Frame`](crate::messages::Frame)s
//! from every camera. Output: [`Detections`] per frame, as the chosen backend produces them.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crossbeam_channel::Sender;

use crate::config::{InferenceConfig, ModelConfig};
use crate::infer::kserve::{KserveError, RemoteEngine};
use crate::infer::{Engine, EngineInfo, InferError, InputSpec};
use crate::ingest::queue::FrameSource;
use crate::messages::Detections;
use crate::stats::Stats;

/// Why the detector could not start.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// The local engine could not start.
    #[error(transparent)]
    Local(#[from] InferError),
    /// The remote backend could not start.
    #[error(transparent)]
    Remote(#[from] KserveError),
}

/// The detector the config asks for.
pub enum Detector {
    /// The local OpenVINO engine.
    Local(Box<Engine>),
    /// A KServe v2 model-server fleet (`[inference.remote]`).
    Remote(Box<RemoteEngine>),
}

impl Detector {
    /// Builds the local engine, or the remote one when `inference.remote` is set. `min_score`
    /// is the lowest score passed on (the tracker's low threshold).
    pub fn build(
        model: &ModelConfig,
        inference: &InferenceConfig,
        min_score: f32,
    ) -> Result<Self, DetectorError> {
        Ok(match &inference.remote {
            None => Detector::Local(Box::new(Engine::new(model, inference, min_score)?)),
            Some(remote) => Detector::Remote(Box::new(RemoteEngine::new(
                model, inference, remote, min_score,
            )?)),
        })
    }

    /// What the pipeline must produce for this model (size, resize mode, colour order).
    pub fn input_spec(&self) -> InputSpec {
        match self {
            Detector::Local(e) => e.input_spec(),
            Detector::Remote(r) => r.input_spec(),
        }
    }

    /// What the detector settled on.
    pub fn info(&self) -> &EngineInfo {
        match self {
            Detector::Local(e) => e.info(),
            Detector::Remote(r) => r.info(),
        }
    }

    /// Serves frames until every camera's queue is closed and `stop` is set or all senders are
    /// gone; finished frames go to `out`, each camera's in order.
    pub fn run(
        self,
        source: FrameSource,
        out: Sender<Detections>,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
    ) -> Result<(), InferError> {
        match self {
            Detector::Local(e) => e.run(source, out, stats, stop),
            Detector::Remote(r) => r.run(source, out, stats, stop),
        }
    }
}
