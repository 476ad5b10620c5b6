//! The running cameras: one supervised thread per camera, each with its own stop flag, counter
//! slot, detector queue and tracker, so cameras can be started and stopped while the others keep
//! streaming (start-up and [`super::reload`]).
//!
//! Starting a camera: a new counter slot ([`Stats::add_camera`]), the camera row in the
//! database, a tracker ([`CameraChange::Add`]), a detector queue ([`QueueMaker::add`]), then its
//! thread. Stopping: the thread is told to stop and joined, the slot marked inactive and the
//! tracker told ([`CameraChange::Remove`]), which ends the camera's open tracks.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use tracing::warn;

use crate::config::{CameraConfig, Config, IngestConfig};
use crate::infer::InputSpec;
use crate::ingest::queue::QueueMaker;
use crate::ingest::{self, CameraTask, PipelineError, Template};
use crate::messages::CameraIndex;
use crate::redact;
use crate::stats::Stats;
use crate::store::{Store, StoreError};
use crate::track::stage::CameraChange;

use super::ServiceError;

/// One running camera.
struct Running {
    config: CameraConfig,
    slot: CameraIndex,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// What every camera shares.
pub(super) struct Shared {
    pub ingest: IngestConfig,
    pub default_template: Template,
    pub input: InputSpec,
    pub stats: Arc<Stats>,
    pub queues: QueueMaker,
    pub tracker: Sender<CameraChange>,
    pub db: PathBuf,
}

/// The cameras of the running service, in the order they were started.
pub(super) struct CameraSet {
    shared: Shared,
    running: Vec<Running>,
}

/// A camera's template: its own, or the default.
pub(super) fn template_for(
    camera: &CameraConfig,
    default: &Template,
) -> Result<Template, PipelineError> {
    match &camera.pipeline {
        Some(p) => Template::load(p),
        None => Ok(default.clone()),
    }
}

/// Checks each camera's template and plugins by building (not starting) its pipeline.
pub(super) fn check_pipelines(
    cameras: &[CameraConfig],
    default: &Template,
    ingest: &IngestConfig,
    input: &InputSpec,
) -> Result<(), PipelineError> {
    for cam in cameras {
        template_for(cam, default)?.build(cam, ingest, input)?;
    }
    Ok(())
}

impl CameraSet {
    /// No cameras yet.
    pub fn new(shared: Shared) -> Self {
        Self {
            shared,
            running: Vec::new(),
        }
    }

    /// Starts every camera of `cfg` (its templates already checked), registering them in
    /// `store`.
    pub fn start_all(&mut self, cfg: &Config, store: &Store) -> Result<(), ServiceError> {
        store.register_cameras(&cfg.cameras)?;
        for cam in &cfg.cameras {
            self.start(cam, store, cfg.cameras.len())?;
        }
        Ok(())
    }

    /// Starts `camera` (registered in `store` already); `total` cameras will share the machine.
    pub fn start(
        &mut self,
        camera: &CameraConfig,
        store: &Store,
        total: usize,
    ) -> Result<(), ServiceError> {
        let sh = &self.shared;
        let template = template_for(camera, &sh.default_template)?;
        // Capture times of a camera keep increasing across runs and restarts.
        let resume_after_ms = store.last_frame_ms(&camera.id)?;
        let slot = sh
            .stats
            .add_camera(&camera.id, &camera.name, &redact::url(&camera.url));
        // The tracker exists before the camera's first frame can reach it.
        let _ = sh.tracker.send(CameraChange::Add {
            slot,
            camera: Box::new(camera.clone()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = ingest::spawn(CameraTask {
            index: slot,
            camera: camera.clone(),
            ingest: sh.ingest.clone(),
            template,
            input: sh.input,
            decoder_threads: ingest::decoder_threads(total),
            frames: sh.queues.add(slot),
            stats: sh.stats.camera(slot),
            stop: Arc::clone(&stop),
            resume_after_ms,
        })?;
        self.running.push(Running {
            config: camera.clone(),
            slot,
            stop,
            thread,
        });
        Ok(())
    }

    /// Stops camera `id` and ends its tracks; false if no such camera runs.
    pub fn stop(&mut self, id: &str) -> bool {
        let Some(pos) = self.running.iter().position(|r| r.config.id == id) else {
            return false;
        };
        let r = self.running.remove(pos);
        r.stop.store(true, Ordering::Relaxed);
        if r.thread.join().is_err() {
            warn!(camera = %id, "Camera thread had crashed.");
        }
        let slot = self.shared.stats.camera(r.slot);
        slot.up.store(false, Ordering::Relaxed);
        slot.active.store(false, Ordering::Relaxed);
        let _ = self
            .shared
            .tracker
            .send(CameraChange::Remove { slot: r.slot });
        true
    }

    /// The configs of the running cameras, in start order.
    pub fn configs(&self) -> impl Iterator<Item = &CameraConfig> {
        self.running.iter().map(|r| &r.config)
    }

    /// How many cameras run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether a camera's supervising thread has ended (it only does when stopped).
    pub fn any_finished(&self) -> bool {
        self.running.iter().any(|r| r.thread.is_finished())
    }

    /// The default template and the shared settings.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Opens the database for registering cameras started by a reload.
    pub fn open_store(&self) -> Result<Store, StoreError> {
        Store::open(&self.shared.db)
    }

    /// Stops every camera (all at once, then joins them); an error if one had crashed.
    pub fn stop_all(self) -> Result<(), ServiceError> {
        for r in &self.running {
            r.stop.store(true, Ordering::Relaxed);
        }
        let mut crashed = false;
        for r in self.running {
            crashed |= r.thread.join().is_err();
        }
        if crashed {
            return Err(ServiceError::Crashed("camera"));
        }
        Ok(())
    }
}
