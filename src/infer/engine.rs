//! The local OpenVINO engine: one `Core` and one `CompiledModel` for the configured device
//! (the device resolved by [`super::device`], the hint and streams set on it), the model's input
//! and outputs checked against its description, and a pool of infer requests that
//! [`super::local`] runs as a backend. [`Io`] is how a frame goes into the model and detections
//! come out (shared with the KServe backend).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, InferenceError, PropertyKey,
    RwPropertyKey,
};
use tracing::{info, warn};

use super::{
    Decoder, InferError, InputMapping, InputSpec, ModelDescription, ResolvedDevice, WAIT_LIMIT_MS,
    decode, device, dispatch, input, local, model, resize, runtime,
};
use crate::config::{CountOrAuto, InferenceConfig, ModelConfig};
use crate::geometry::Detection;
use crate::ingest::queue::FrameSource;
use crate::messages::{Detections, Frame};
use crate::stats::Stats;

/// Requests for `requests = "auto"`: with the THROUGHPUT hints, twice the device's optimal
/// number, so each stream has the next frame queued while a worker copies in and parses (with
/// one per stream the streams idled between frames; 16 cameras here, queue of 2: 110–113 FPS
/// with 2 requests, 115–120 with 4; queue of 1: 118–119 with 2, 128–138 with 4); with LATENCY,
/// the optimal number (one).
fn auto_requests(optimal: usize, hint: &str) -> usize {
    if hint.eq_ignore_ascii_case("LATENCY") {
        optimal
    } else {
        2 * optimal
    }
}

fn ov<T>(what: &'static str, r: Result<T, InferenceError>) -> Result<T, InferError> {
    r.map_err(|source| InferError::OpenVino { what, source })
}

/// What the engine settled on (printed at start and in the summary).
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// Model name from its description.
    pub model: String,
    /// Device compiled for.
    pub device: String,
    /// Number of infer requests in the pool.
    pub requests: usize,
    /// Streams the device chose (as OpenVINO reports it), if it reports it.
    pub streams: Option<String>,
    /// The precision the device runs the model in (`INFERENCE_PRECISION_HINT` as OpenVINO
    /// reports it after compiling), if it reports it.
    pub precision: Option<String>,
}

/// How frames go into the model and detections come out of it (shared by every request of
/// the local engine and by the remote backend).
pub(crate) struct Io {
    pub(crate) desc: ModelDescription,
    pub(crate) packer: input::Packer,
    pub(crate) decoder: Decoder,
    person_score: f32,
}

impl Io {
    /// `min_score` is the lowest score passed on; `model.score_threshold` decides what counts as
    /// a person in the per-frame counts; `model.person_class` overrides the description's.
    pub(crate) fn new(desc: ModelDescription, model: &ModelConfig, min_score: f32) -> Self {
        let decoder = Decoder::new(
            &desc,
            model.person_class.unwrap_or(desc.person_class),
            min_score.min(model.score_threshold),
        );
        Self {
            packer: input::Packer::new(&desc),
            desc,
            decoder,
            person_score: model.score_threshold,
        }
    }

    /// Detections of one frame, with its person count.
    pub(crate) fn detections(
        &self,
        camera: crate::messages::CameraIndex,
        seq: u64,
        captured_ms: i64,
        mapping: &InputMapping,
        boxes: Vec<Detection>,
    ) -> Detections {
        let persons = boxes
            .iter()
            .filter(|d| d.score >= self.person_score)
            .count() as u32;
        Detections {
            camera,
            seq,
            captured_ms,
            source_size: mapping.source_size(),
            persons,
            boxes,
        }
    }
}

/// The detector: compiled model plus its request pool.
pub struct Engine {
    // Field order is drop order: requests before the model before the core.
    requests: Vec<InferRequest>,
    compiled: CompiledModel,
    core: Core,
    io: Arc<Io>,
    info: EngineInfo,
}

impl Engine {
    /// Loads and compiles the model for the configured device. `min_score` is the lowest score
    /// passed on (the tracker's low threshold); `model.score_threshold` decides what counts as a
    /// person in the per-frame counts.
    pub fn new(
        model: &ModelConfig,
        inference: &InferenceConfig,
        min_score: f32,
    ) -> Result<Engine, InferError> {
        let desc = load_description(model)?;
        let (mut core, device) = open_core(inference)?;
        let ir = desc.ir.to_string_lossy().into_owned();
        let weights = desc.weights().to_string_lossy().into_owned();
        let ov_model = ov(
            "reading the model",
            core.read_model_from_file(&ir, &weights),
        )?;
        check_input(&desc, &ov_model)?;
        let io = Io::new(desc, model, min_score);
        let mut compiled = ov(
            "compiling the model",
            core.compile_model(&ov_model, DeviceType::from(device.name.as_str())),
        )?;
        let count = request_count(&compiled, inference)?;
        let streams = compiled
            .get_property(&PropertyKey::Rw(RwPropertyKey::NumStreams))
            .ok()
            .map(|s| s.into_owned());
        let precision = compiled
            .get_property(&PropertyKey::Rw(RwPropertyKey::HintInferencePrecision))
            .ok()
            .map(|s| s.into_owned());
        check_outputs(&io.desc, &io.decoder, &compiled)?;
        let requests = (0..count)
            .map(|_| ov("creating an infer request", compiled.create_infer_request()))
            .collect::<Result<Vec<_>, _>>()?;
        let info = EngineInfo {
            model: io.desc.name.clone(),
            device: device.name.clone(),
            requests: count,
            streams,
            precision,
        };
        info!(model = %info.model, device = %info.device, requests = info.requests,
              streams = ?info.streams, precision = ?info.precision, "Detector ready.");
        Ok(Engine {
            requests,
            compiled,
            core,
            io: Arc::new(io),
            info,
        })
    }

    /// What the engine settled on.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// What the pipeline must produce for this model (size, resize mode, colour order).
    pub fn input_spec(&self) -> InputSpec {
        self.io.desc.input_spec()
    }

    /// Runs one frame synchronously (for tools and tests): `pixels` is the packed input
    /// picture (as [`Engine::input_spec`] says); boxes are mapped back through `mapping`.
    pub fn detect(
        &mut self,
        pixels: &[u8],
        mapping: &InputMapping,
    ) -> Result<Vec<Detection>, InferError> {
        let req = &mut self.requests[0];
        self.io.fill(req, pixels)?;
        ov("infer", req.infer())?;
        self.io.parse(req, mapping)
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
        let backend = local::LocalBackend::start(
            self.requests,
            self.compiled,
            self.core,
            self.io,
            stats.infer_latency.clone(),
        )?;
        dispatch::run(backend, source, out, stats, stop)
    }
}

impl Io {
    /// Runs one frame on `req` (asynchronously on the device; this thread waits) and returns
    /// its detections.
    pub(super) fn infer(
        &self,
        req: &mut InferRequest,
        frame: &Frame,
    ) -> Result<Detections, InferError> {
        let map = frame
            .pixels
            .map_readable()
            .map_err(|_| InferError::ModelMismatch {
                model: self.desc.name.clone(),
                message: "frame buffer not readable".into(),
            })?;
        self.fill(req, map.as_slice())?;
        drop(map);
        ov("infer_async", req.infer_async())?;
        let t0 = Instant::now();
        ov("wait", req.wait(WAIT_LIMIT_MS))?;
        // The C API returns OK on timeout too; elapsed time tells the two apart.
        if t0.elapsed() >= Duration::from_millis(WAIT_LIMIT_MS as u64) {
            return Err(InferError::Stuck);
        }
        let boxes = self.parse(req, &frame.mapping)?;
        Ok(self.detections(
            frame.camera,
            frame.seq,
            frame.captured_ms,
            &frame.mapping,
            boxes,
        ))
    }

    /// Copies the packed input picture into `req`'s input tensor (row padding removed,
    /// transposed for NCHW, converted for an `f32` input).
    fn fill(&self, req: &mut InferRequest, pixels: &[u8]) -> Result<(), InferError> {
        let mut tensor = ov("getting the input tensor", req.get_tensor(&self.desc.input))?;
        let filled = match self.packer.input_type() {
            model::InputType::U8 => {
                let dst = ov("mapping the input tensor", tensor.get_raw_data_mut())?;
                self.packer.fill_u8(pixels, dst)
            }
            model::InputType::F32 => {
                let dst = ov("mapping the input tensor", tensor.get_data_mut::<f32>())?;
                self.packer.fill_f32(pixels, dst)
            }
        };
        filled.map_err(|e| InferError::ModelMismatch {
            model: self.desc.name.clone(),
            message: e.to_string(),
        })
    }

    fn parse(
        &self,
        r: &InferRequest,
        mapping: &InputMapping,
    ) -> Result<Vec<Detection>, InferError> {
        let tensors = self
            .decoder
            .output_names()
            .into_iter()
            .map(|name| ov("reading an output", r.get_tensor(name)))
            .collect::<Result<Vec<_>, _>>()?;
        let shapes = tensors
            .iter()
            .map(|t| ov("reading an output shape", t.get_shape()))
            .collect::<Result<Vec<_>, _>>()?;
        let views = tensors
            .iter()
            .zip(&shapes)
            .map(|(t, shape)| {
                Ok(decode::OutputView {
                    shape: shape.get_dimensions(),
                    data: f32_data(t)?,
                })
            })
            .collect::<Result<Vec<_>, InferError>>()?;
        self.decoder
            .decode(&views, mapping)
            .map_err(|source| InferError::Decode {
                model: self.desc.name.clone(),
                source,
            })
    }
}

/// The model description, with the config's IR override, and its files checked.
fn load_description(model: &ModelConfig) -> Result<ModelDescription, InferError> {
    let mut desc = ModelDescription::load(&model.description)?;
    if let Some(ir) = &model.ir {
        desc.ir = ir.clone();
    }
    for path in [desc.ir.clone(), desc.weights()] {
        if !path.is_file() {
            return Err(InferError::ModelMissing { path });
        }
    }
    Ok(desc)
}

/// Loads the runtime, resolves the configured device against the present ones and sets the
/// performance hint (and streams, and inference precision, when given) on it.
fn open_core(inference: &InferenceConfig) -> Result<(Core, ResolvedDevice), InferError> {
    runtime::load(inference.runtime.as_deref()).map_err(InferError::Runtime)?;
    let mut core = Core::new().map_err(|e| InferError::Runtime(e.to_string()))?;
    let available: Vec<String> = ov("available_devices", core.available_devices())?
        .iter()
        .map(|d| d.to_string())
        .collect();
    let device = device::resolve(&inference.device, &available)?;
    if !device.dropped.is_empty() {
        warn!(
            requested = %inference.device,
            dropped = %device.dropped.join(","),
            using = %device.name,
            "Some inference devices are not present; continuing without them."
        );
    }
    for phys in &device.physical {
        let dev = DeviceType::from(phys.as_str());
        ov(
            "setting PERFORMANCE_HINT",
            core.set_property(&dev, &RwPropertyKey::HintPerformanceMode, &inference.hint),
        )?;
        if let CountOrAuto::Count(n) = inference.streams {
            ov(
                "setting NUM_STREAMS",
                core.set_property(&dev, &RwPropertyKey::NumStreams, &n.to_string()),
            )?;
        }
        if let Some(precision) = &inference.precision {
            ov(
                "setting INFERENCE_PRECISION_HINT",
                core.set_property(&dev, &RwPropertyKey::HintInferencePrecision, precision),
            )?;
        }
    }
    // AUTO/MULTI have their own hint (AUTO defaults to LATENCY, one request).
    if let Some((virt, _)) = device.name.split_once(':') {
        ov(
            "setting PERFORMANCE_HINT",
            core.set_property(
                &DeviceType::from(virt),
                &RwPropertyKey::HintPerformanceMode,
                &inference.hint,
            ),
        )?;
    }
    Ok((core, device))
}

/// Infer requests in the pool: the configured number, or for `auto` from the compiled
/// model's optimal number ([`auto_requests`]).
fn request_count(
    compiled: &CompiledModel,
    inference: &InferenceConfig,
) -> Result<usize, InferError> {
    Ok(match inference.requests {
        CountOrAuto::Count(n) => n as usize,
        CountOrAuto::Auto => {
            let optimal = ov(
                "reading OPTIMAL_NUMBER_OF_INFER_REQUESTS",
                compiled.get_property(&PropertyKey::OptimalNumberOfInferRequests),
            )?
            .trim()
            .parse::<usize>()
            .unwrap_or(2)
            .max(1);
            auto_requests(optimal, &inference.hint)
        }
    })
}

fn f32_data(t: &openvino::Tensor) -> Result<&[f32], InferError> {
    ov("reading output data", t.get_data::<f32>())
}

/// Checks the IR's input against the description: one input, its shape and element type.
fn check_input(desc: &ModelDescription, m: &openvino::Model) -> Result<(), InferError> {
    let mismatch = |message: String| InferError::ModelMismatch {
        model: desc.name.clone(),
        message,
    };
    let inputs = ov("reading model inputs", m.get_inputs_len())?;
    if inputs != 1 {
        return Err(mismatch(format!("expected 1 input, found {inputs}")));
    }
    let input = ov("reading the model input", m.get_input_by_index(0))?;
    let shape = ov("reading the input shape", input.get_shape())?;
    let (h, w) = (i64::from(desc.input_height), i64::from(desc.input_width));
    let want = match desc.layout {
        resize::Layout::Nhwc => [1, h, w, 3],
        resize::Layout::Nchw => [1, 3, h, w],
    };
    if shape.get_dimensions() != want {
        return Err(mismatch(format!(
            "input shape {:?}, description says {want:?} ({:?})",
            shape.get_dimensions(),
            desc.layout
        )));
    }
    let found = ov("reading the input type", input.get_element_type())?;
    let wanted = match desc.input_type {
        model::InputType::U8 => ElementType::U8,
        model::InputType::F32 => ElementType::F32,
    };
    if found != wanted {
        return Err(mismatch(format!(
            "input element type is {found:?} in the IR, input_type = {:?} in {}",
            desc.input_type.name(),
            desc.path.display()
        )));
    }
    Ok(())
}

/// Checks that every output the decoder reads exists, is FP32 and has a shape it can decode.
fn check_outputs(
    desc: &ModelDescription,
    decoder: &Decoder,
    compiled: &CompiledModel,
) -> Result<(), InferError> {
    let mismatch = |message: String| InferError::ModelMismatch {
        model: desc.name.clone(),
        message: format!("{message} (see {})", desc.path.display()),
    };
    for name in decoder.output_names() {
        let port = compiled
            .get_output_by_name(name)
            .map_err(|_| mismatch(format!("no output named {name:?}")))?;
        let found = ov("reading an output type", port.get_element_type())?;
        if found != ElementType::F32 {
            return Err(mismatch(format!(
                "output {name:?} is {found:?}, expected F32"
            )));
        }
        // A dynamic shape has no static dimensions to check here; decoding checks each frame.
        if let Ok(shape) = port.get_shape() {
            decoder
                .check_shape(name, shape.get_dimensions())
                .map_err(|e| mismatch(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::auto_requests;

    #[test]
    fn auto_requests_queue_one_frame_per_stream_except_for_latency() {
        assert_eq!(auto_requests(2, "THROUGHPUT"), 4);
        assert_eq!(auto_requests(3, "CUMULATIVE_THROUGHPUT"), 6);
        assert_eq!(auto_requests(1, "LATENCY"), 1);
        assert_eq!(auto_requests(1, "latency"), 1);
    }
}
