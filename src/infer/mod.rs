//! Person detection: the detector boundary ([`detector`]), frames in, detections out, with the
//! local OpenVINO engine or a KServe v2 model-server fleet ([`kserve`]) behind it.
//!
//! Input: [`Frame`](crate::messages::Frame)s from every camera (served longest ago first, see
//! [`crate::ingest::queue`]). Output: [`Detections`](crate::messages::Detections) per frame, in
//! source-image pixels.
//!
//! Locally, one `Core` and one `CompiledModel` (THROUGHPUT hint by default) serve all cameras
//! through a pool of asynchronous infer requests ([`Engine`], run by [`local`]); the detector
//! loop ([`dispatch`]) keeps every request busy, collects frames as they finish and restores
//! each camera's order. The model description ([`model`]) says how a frame becomes the input
//! tensor ([`input`]) and which output adapter turns the outputs into person boxes ([`decode`]:
//! TF SSD, OpenVINO DetectionOutput, YOLOv8/11, YOLOX); the KServe backend ([`kserve`]) uses the
//! same two.

pub mod backend;
pub mod decode;
pub mod detector;
pub mod device;
pub mod dispatch;
mod engine;
pub mod failures;
pub mod input;
pub mod kserve;
pub mod local;
pub mod model;
pub mod runtime;

use std::path::PathBuf;

use openvino::InferenceError;

pub use decode::{DecodeError, Decoder};
pub use detector::{Detector, DetectorError};
pub use device::{DeviceError, ResolvedDevice};
pub(crate) use engine::Io;
pub use engine::{Engine, EngineInfo};
pub use model::{DescriptionError, ModelDescription, ModelFormat};
// How a picture is fitted to the model input is a shared type (ingest uses it too).
pub use crate::resize::{self, InputMapping, InputSpec};

/// Longest a single inference may take before the engine reports the device as stuck.
const WAIT_LIMIT_MS: i64 = 30_000;
/// The command that produces model files.
const SETUP_COMMAND: &str = "scripts/setup.sh";

/// Why the engine could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model description is missing or invalid.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// A model file named by the description is missing.
    #[error("model file {} is missing: run {SETUP_COMMAND} to download and convert the model", path.display())]
    ModelMissing {
        /// The missing file.
        path: PathBuf,
    },
    /// The OpenVINO shared library could not be loaded.
    #[error(
        "OpenVINO runtime not found ({0}); run {SETUP_COMMAND}, or set inference.runtime to the folder of libopenvino_c.so"
    )]
    Runtime(String),
    /// The configured device cannot be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// An OpenVINO call failed.
    #[error("OpenVINO {what} failed: {source}")]
    OpenVino {
        /// What was being done.
        what: &'static str,
        /// The OpenVINO error.
        #[source]
        source: InferenceError,
    },
    /// The IR does not match its description.
    #[error("model {model}: {message}")]
    ModelMismatch {
        /// Model name.
        model: String,
        /// What does not match.
        message: String,
    },
    /// A frame's outputs could not be decoded.
    #[error("model {model}: {source}")]
    Decode {
        /// Model name.
        model: String,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// A worker thread could not be started.
    #[error("cannot start an inference worker: {0}")]
    Thread(#[source] std::io::Error),
    /// Every inference worker has stopped (one panicked or the pool shut down).
    #[error("the inference workers have stopped")]
    WorkersGone,
    /// An inference worker panicked on a frame (a bug): the service ends rather than run with
    /// a request it cannot trust.
    #[error("an inference worker panicked: {0}")]
    WorkerPanicked(String),
    /// A request did not finish in time.
    #[error("inference did not finish within {WAIT_LIMIT_MS} ms: the device looks stuck")]
    Stuck,
    /// Frame after frame failed with none detected in between, for longer than the limit
    /// ([`failures::FailLimit`]).
    #[error(
        "inference failed on {failures} frames in a row over {seconds} s with none detected: \
         the device looks failed"
    )]
    DeviceFailed {
        /// Failed frames in a row (none detected in between).
        failures: u64,
        /// Seconds from the first of them to the last.
        seconds: u64,
        /// The last frame's error.
        #[source]
        last: Box<InferError>,
    },
}

impl InferError {
    /// Whether a frame failing with this error ends the detector at once instead of being
    /// dropped: a request stuck past [`WAIT_LIMIT_MS`], no worker left to run one, a worker
    /// that panicked, or failures in a row past the limit.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            InferError::Stuck
                | InferError::WorkersGone
                | InferError::WorkerPanicked(_)
                | InferError::DeviceFailed { .. }
        )
    }
}
