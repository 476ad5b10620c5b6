//! The service's log as the stream tests read it: each `Frame stamped.` TRACE event (camera,
//! presentation time, capture time given) and every line at INFO or above, collected by one
//! tracing subscriber per test binary.

use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// A `Frame stamped.` event: camera, presentation time (ns), capture time given (ms).
#[derive(Debug, Clone)]
pub struct Stamped {
    pub camera: String,
    pub pts_ns: u64,
    pub captured_ms: i64,
}

#[derive(Default)]
pub struct Captured {
    pub frames: Vec<Stamped>,
    /// Every log line at INFO or above (for credentials).
    pub log: String,
}

pub fn captured() -> &'static Mutex<Captured> {
    static C: OnceLock<Mutex<Captured>> = OnceLock::new();
    C.get_or_init(Mutex::default)
}

/// Collects the service's `Frame stamped.` events and its log (one subscriber per test binary).
struct Capture;

#[derive(Default)]
struct Fields {
    message: String,
    camera: String,
    pts_ns: Option<u64>,
    captured_ms: Option<i64>,
    all: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let text = format!("{v:?}");
        match f.name() {
            "message" => self.message = text.clone(),
            "camera" => self.camera = text.trim_matches('"').to_string(),
            _ => {}
        }
        self.all += &format!(" {}={text}", f.name());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        if f.name() == "pts_ns" {
            self.pts_ns = Some(v);
        }
        self.record_debug(f, &v);
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        if f.name() == "captured_ms" {
            self.captured_ms = Some(v);
        }
        self.record_debug(f, &v);
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let mut c = captured().lock().unwrap();
        if f.message == "Frame stamped." {
            if let (Some(pts_ns), Some(captured_ms)) = (f.pts_ns, f.captured_ms) {
                c.frames.push(Stamped {
                    camera: f.camera,
                    pts_ns,
                    captured_ms,
                });
            }
        } else if *event.metadata().level() <= tracing::Level::INFO {
            c.log += &f.all;
            c.log.push('\n');
        }
    }
}

pub fn install_capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::filter::Targets::new()
            .with_default(tracing::Level::INFO)
            .with_target("storetrack::ingest::stamping", tracing::Level::TRACE);
        // The log goes to the test's output (shown when it fails).
        let log = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(
                tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
            );
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::Layer::with_filter(Capture, filter))
            .with(log);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}
