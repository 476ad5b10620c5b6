//! Pipeline templates (`pipelines/*.pipeline`): loading, placeholder substitution and building.
//!
//! Input: the template text and one camera's settings. Output: a `gst::Pipeline` with the named
//! elements `src`, `dec` and `sink` checked, the camera URL set on `src` in code (never in text).

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::config::{CameraConfig, IngestConfig};
use crate::resize::InputSpec;

/// Frame rate used when a camera sends every decoded frame (`detect_fps = 0`).
const UNLIMITED_FPS: u32 = 1000;
/// Stream time the packets waiting for the decoder may span before the oldest are dropped
/// (`{packet_queue_ns}`), at least: a B-frame stream's packets come up to several frames out of
/// presentation order, so a burst spans more than `latency_ms` of it.
const PACKET_QUEUE_MIN_MS: u64 = 1_000;

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The template file could not be read.
    #[error("{path}: cannot read pipeline template: {source}")]
    Read {
        /// Template path.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// GStreamer could not parse the rendered template (missing plugin, syntax).
    #[error("{path}: pipeline template does not build: {source}")]
    Parse {
        /// Template path.
        path: PathBuf,
        /// GStreamer's error.
        #[source]
        source: gst::glib::Error,
    },
    /// A required named element is missing or of the wrong type.
    #[error("{path}: pipeline template needs an element named {name:?} ({what})")]
    MissingElement {
        /// Template path.
        path: PathBuf,
        /// Element name.
        name: &'static str,
        /// What it must be.
        what: &'static str,
    },
}

/// A loaded template.
#[derive(Debug, Clone)]
pub struct Template {
    path: PathBuf,
    text: String,
}

/// A built, not yet started, camera pipeline and its named parts.
#[derive(Debug)]
pub struct CameraPipeline {
    /// The pipeline.
    pub pipeline: gst::Pipeline,
    /// The source (rtspsrc).
    pub src: gst::Element,
    /// The decoder (probe point).
    pub decoder: gst::Element,
    /// The appsink.
    pub sink: gst_app::AppSink,
    /// The packet queue (optional: its lost packets are counted, and its fill level tells the
    /// frame gate when decoding is behind).
    pub packets: Option<gst::Element>,
}

impl Template {
    /// Reads a template file, dropping comment lines.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        let raw = std::fs::read_to_string(path).map_err(|source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = raw
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    /// The pipeline description for one camera feeding a model with input `spec`.
    pub fn render(&self, cam: &CameraConfig, ingest: &IngestConfig, spec: &InputSpec) -> String {
        let fps = if cam.detect_fps == 0 {
            UNLIMITED_FPS
        } else {
            cam.detect_fps
        };
        let queue_ns = u64::from(ingest.latency_ms).max(PACKET_QUEUE_MIN_MS) * 1_000_000;
        self.text
            .replace("{latency_ms}", &ingest.latency_ms.to_string())
            .replace("{packet_queue_ns}", &queue_ns.to_string())
            .replace("{protocols}", &ingest.protocols)
            .replace("{fps}", &fps.to_string())
            .replace("{width}", &spec.width.to_string())
            .replace("{height}", &spec.height.to_string())
            .replace("{add_borders}", &spec.add_borders().to_string())
            .replace("{format}", spec.caps_format())
    }

    /// Builds the pipeline for one camera (state NULL).
    pub fn build(
        &self,
        cam: &CameraConfig,
        ingest: &IngestConfig,
        spec: &InputSpec,
    ) -> Result<CameraPipeline, PipelineError> {
        let desc = self.render(cam, ingest, spec);
        let element = gst::parse::launch(&desc).map_err(|source| PipelineError::Parse {
            path: self.path.clone(),
            source,
        })?;
        let missing = |name, what| PipelineError::MissingElement {
            path: self.path.clone(),
            name,
            what,
        };
        let pipeline = element
            .downcast::<gst::Pipeline>()
            .map_err(|_| missing("(top level)", "the template must describe a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .filter(|e| e.has_property("location"))
            .ok_or_else(|| missing("src", "rtspsrc or any source with a location"))?;
        src.set_property("location", cam.url.as_str());
        let decoder = pipeline
            .by_name("dec")
            .ok_or_else(|| missing("dec", "the video decoder"))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| missing("sink", "appsink"))?;
        let packets = pipeline.by_name("packets");
        Ok(CameraPipeline {
            pipeline,
            src,
            decoder,
            sink,
            packets,
        })
    }
}
