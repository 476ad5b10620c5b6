//! `/metrics`: the service's counters in the Prometheus text format (0.0.4), encoded by the
//! official `prometheus-client` crate.
//!
//! Input: the shared [`Stats`] (read at scrape time by a [`Collector`], so the stages keep their
//! plain atomics) and the database path. Output: `storetrack_*` series; the only label is
//! `camera`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::stats::{CameraStats, Stats};

/// The `/metrics` registry of one service run.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics over `stats` (the configured cameras at each scrape) and the database `db`.
    pub fn new(stats: Arc<Stats>, db: PathBuf) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StatsCollector { stats, db }));
        Self { registry }
    }

    /// Adds a collector (the HTTP API's own counters).
    pub fn register(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// The exposition text.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[derive(Debug)]
struct StatsCollector {
    stats: Arc<Stats>,
    db: PathBuf,
}

type CameraValue = fn(&CameraStats) -> f64;

/// Per-camera series: name (without `_total` for counters, the encoder adds it), help, type,
/// value.
const PER_CAMERA: &[(&str, &str, MetricType, CameraValue)] = &[
    (
        "storetrack_camera_frames_decoded",
        "Frames out of the camera's decoder.",
        MetricType::Counter,
        |c| load(&c.decoded),
    ),
    (
        "storetrack_camera_frames_undecoded",
        "Compressed frames dropped before the decoder because no analysed frame needs them, shed while decoding was behind, or damaged by packets lost.",
        MetricType::Counter,
        |c| load(&c.undecoded),
    ),
    (
        "storetrack_camera_frames_shed",
        "Of the frames not decoded: shed because the camera's decoding was behind its stream (its streaming thread short of CPU).",
        MetricType::Counter,
        |c| load(&c.shed),
    ),
    (
        "storetrack_camera_frames_damaged",
        "Of the frames not decoded: damaged by RTP packets lost before the decoder (up to the next key frame that lost none).",
        MetricType::Counter,
        |c| load(&c.damaged),
    ),
    (
        "storetrack_camera_decoder_parks",
        "Times the camera's decoder was parked (closed, its pictures freed) between seldom analysed frames or from a GOP's last decoded frame.",
        MetricType::Counter,
        |c| load(&c.parks),
    ),
    (
        "storetrack_camera_packets_lost",
        "RTP packets missing before the camera's decoder: lost on the network, or dropped from its full packet queue while decoding was behind.",
        MetricType::Counter,
        |c| load(&c.packets_lost),
    ),
    (
        "storetrack_camera_frame_slots",
        "Detection slots (1/detect_fps) in which the camera sent a frame: the most it could have analysed.",
        MetricType::Counter,
        |c| load(&c.slots),
    ),
    (
        "storetrack_camera_frames_not_picked",
        "Decoded frames the frame gate did not pick for analysis (above detect_fps).",
        MetricType::Counter,
        |c| load(&c.not_picked),
    ),
    (
        "storetrack_camera_frames_skipped",
        "Decoded frames discarded before conversion because a fresher frame was waiting.",
        MetricType::Counter,
        |c| load(&c.skipped),
    ),
    (
        "storetrack_camera_frames_inferred",
        "Frames the detector finished.",
        MetricType::Counter,
        |c| load(&c.inferred),
    ),
    (
        "storetrack_camera_frames_dropped",
        "Frames dropped on the way to the detector (queue full, or in flight when stopping).",
        MetricType::Counter,
        |c| load(&c.dropped),
    ),
    (
        "storetrack_camera_frames_failed",
        "Frames the detector could not analyse (inference failed, no model server up).",
        MetricType::Counter,
        |c| load(&c.failed),
    ),
    (
        "storetrack_camera_clock_jumps",
        "Times the camera's RTCP clock moved by more than 100 ms against this host's (never followed).",
        MetricType::Counter,
        |c| load(&c.clock.jumps),
    ),
    (
        "storetrack_camera_capture_time_corrections",
        "Times the capture times were corrected towards their reference (trimmed from > 20 ms, stepped, slewed).",
        MetricType::Counter,
        |c| load(&c.clock.corrections),
    ),
    (
        "storetrack_camera_persons",
        "Person detections at or above model.score_threshold.",
        MetricType::Counter,
        |c| load(&c.persons),
    ),
    (
        "storetrack_camera_reconnects",
        "Pipeline restarts after a failure.",
        MetricType::Counter,
        |c| c.reconnects() as f64,
    ),
    (
        "storetrack_camera_failures",
        "Pipeline failures (error, end of stream, stall, failed start, panic).",
        MetricType::Counter,
        |c| load(&c.failures),
    ),
    (
        "storetrack_camera_panics",
        "Panics caught in the camera's thread (each counted as a failure and restarted).",
        MetricType::Counter,
        |c| load(&c.panics),
    ),
    (
        "storetrack_camera_up",
        "1 while the camera's frames are flowing.",
        MetricType::Gauge,
        |c| f64::from(u8::from(c.up.load(Ordering::Relaxed))),
    ),
    (
        "storetrack_camera_analysed_fps",
        "Frames inferred per second over the last seconds.",
        MetricType::Gauge,
        CameraStats::fps,
    ),
    (
        "storetrack_camera_asked_fps",
        "Frames per second the camera asks the detector for: its detect_fps, or its idle rate while idle.",
        MetricType::Gauge,
        |c| c.seat.asked(),
    ),
    (
        "storetrack_camera_idle",
        "1 while the camera sees nothing move and nobody (analysed every idle_interval_ms).",
        MetricType::Gauge,
        |c| f64::from(u8::from(c.seat.idle())),
    ),
];

type KnownValue = fn(&CameraStats) -> Option<f64>;

/// Per-camera gauges present only for cameras where they are known.
const PER_CAMERA_KNOWN: &[(&str, &str, KnownValue)] = &[
    (
        "storetrack_camera_clock_offset_seconds",
        "The camera's RTCP clock minus its capture-time reference (for cameras sending sender reports).",
        |c| c.clock.offset().map(|ms| ms as f64 / 1000.0),
    ),
    (
        "storetrack_camera_capture_delay_seconds",
        "Capture-to-arrival delay measured from the camera's clock and subtracted (clock in step with this host's).",
        |c| c.clock.delay().map(|ms| ms as f64 / 1000.0),
    ),
    (
        "storetrack_camera_allowed_fps",
        "The camera's share of an overloaded detector, frames per second (only while limited below what it asks).",
        |c| c.seat.allowed(),
    ),
];

fn load(c: &std::sync::atomic::AtomicU64) -> f64 {
    c.load(Ordering::Relaxed) as f64
}

impl StatsCollector {
    fn encode_one(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        kind: MetricType,
        value: f64,
    ) -> Result<(), fmt::Error> {
        let m = encoder.encode_descriptor(name, help, None, kind)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value as u64).encode(m),
            _ => ConstGauge::new(value).encode(m),
        }
    }

    fn db_size(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                let mut name = self.db.as_os_str().to_owned();
                name.push(suffix);
                std::fs::metadata(PathBuf::from(name)).ok()
            })
            .map(|m| m.len())
            .sum()
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = &self.stats;
        let cameras = s.cameras();
        for (name, help, kind, value) in PER_CAMERA {
            let mut m = encoder.encode_descriptor(name, help, None, *kind)?;
            for cam in &cameras {
                let v = value(cam);
                let labels = [("camera", cam.id.as_str())];
                let family = m.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(v as u64).encode(family)?,
                    _ => ConstGauge::new(v).encode(family)?,
                }
            }
        }
        for (name, help, value) in PER_CAMERA_KNOWN {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for cam in &cameras {
                if let Some(v) = value(cam) {
                    let labels = [("camera", cam.id.as_str())];
                    ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let mut m = encoder.encode_descriptor(
            "storetrack_camera_frame_age_seconds",
            "Seconds from frame capture to detections ready.",
            None,
            MetricType::Histogram,
        )?;
        for cam in &cameras {
            let labels = [("camera", cam.id.as_str())];
            cam.frame_age.encode(m.encode_family(&labels)?)?;
        }
        let m = encoder.encode_descriptor(
            "storetrack_inference_latency_seconds",
            "Seconds from submitting a frame to the detector to its result.",
            None,
            MetricType::Histogram,
        )?;
        s.infer_latency.encode(m)?;
        let r = &s.remote;
        let global: [(&str, &str, MetricType, f64); 14] = [
            (
                "storetrack_inference_errors",
                "Frames whose inference failed (each dropped).",
                MetricType::Counter,
                load(&s.infer_errors),
            ),
            (
                "storetrack_tracks_confirmed",
                "Tracks confirmed by the trackers.",
                MetricType::Counter,
                load(&s.tracks),
            ),
            (
                "storetrack_db_points_written",
                "Track points committed to the database.",
                MetricType::Counter,
                load(&s.points_stored),
            ),
            (
                "storetrack_db_frames_written",
                "Frame rows committed to the database.",
                MetricType::Counter,
                load(&s.frames_stored),
            ),
            (
                "storetrack_db_write_errors",
                "Failed database transactions.",
                MetricType::Counter,
                load(&s.store_errors),
            ),
            (
                "storetrack_db_write_lag_seconds",
                "At the last commit: seconds from the oldest record in it to the commit.",
                MetricType::Gauge,
                load(&s.write_lag_ms) / 1000.0,
            ),
            (
                "storetrack_db_size_bytes",
                "Size of the database file and its write-ahead log.",
                MetricType::Gauge,
                self.db_size() as f64,
            ),
            (
                "storetrack_cameras_configured",
                "Cameras in the configuration.",
                MetricType::Gauge,
                s.cameras().len() as f64,
            ),
            (
                "storetrack_model_servers",
                "Model-server endpoints configured (backend = kserve; 0 with the local engine).",
                MetricType::Gauge,
                load(&r.endpoints),
            ),
            (
                "storetrack_model_servers_up",
                "Model-server endpoints taking requests now.",
                MetricType::Gauge,
                load(&r.endpoints_up),
            ),
            (
                "storetrack_remote_requests",
                "Inference requests sent to model servers.",
                MetricType::Counter,
                load(&r.requests),
            ),
            (
                "storetrack_remote_request_failures",
                "Model-server requests that failed or timed out (their frames dropped).",
                MetricType::Counter,
                load(&r.failures),
            ),
            (
                "storetrack_frames_dropped_no_model_server",
                "Frames dropped because no model server was up and there is no local fallback.",
                MetricType::Counter,
                load(&r.dropped),
            ),
            (
                "storetrack_frames_detected_by_fallback",
                "Frames detected by the local engine while no model server was up.",
                MetricType::Counter,
                load(&r.fallback),
            ),
        ];
        for (name, help, kind, value) in global {
            Self::encode_one(&mut encoder, name, help, kind, value)?;
        }
        Ok(())
    }
}
