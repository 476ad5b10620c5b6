//! Hot reload (SIGHUP, `storetrack reload`): re-reads the config file and applies the camera
//! differences while the service runs. Added cameras start; removed ones stop and their tracks
//! end; changed ones (URL, name, detect fps, decode, calibration, template) restart; untouched
//! cameras keep streaming and keep their open tracks. Changed `[[zones]]` (queues too),
//! `[[lines]]`, `[occupancy]` and `[[rules]]` go to the analytics stage as one set of
//! [`Definitions`], swapped in between two messages: unchanged ones keep their state (visits,
//! pending crossings, waits, raised alerts), changed and removed ones end cleanly, new ones
//! count from then on (see [`crate::analytics::footfall::Footfall::swap`]). A config that does
//! not load, or whose new cameras' pipelines cannot be built, is refused with its errors and
//! the running one stays. The other sections take effect at the next start; a reload that
//! changes them says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crossbeam_channel::Sender;

use crate::analytics::stage::Definitions;
use crate::config::{CameraConfig, Config};
use crate::store::runs;

use super::ServiceError;
use super::cameras::{CameraSet, check_pipelines};

/// Longest wait for the analytics stage to take reloaded definitions.
const DEFINITIONS_WAIT: Duration = Duration::from_secs(5);

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// Cameras started.
    pub added: Vec<String>,
    /// Cameras stopped.
    pub removed: Vec<String>,
    /// Cameras restarted with new settings.
    pub changed: Vec<String>,
    /// Zone and footfall definitions changed and were sent to the analytics stage.
    pub definitions: bool,
    /// Config sections that changed but apply only at the next start.
    pub on_restart: Vec<&'static str>,
    /// From reading the file to the last camera started.
    pub elapsed: Duration,
}

/// The camera differences between the running set and a new config.
#[derive(Debug, Default)]
struct Diff<'a> {
    added: Vec<&'a CameraConfig>,
    removed: Vec<String>,
    changed: Vec<&'a CameraConfig>,
}

/// Whether two configs of the same camera would run it the same way.
fn same(a: &CameraConfig, b: &CameraConfig) -> bool {
    a.name == b.name
        && a.url == b.url
        && a.detect_fps == b.detect_fps
        && a.decode == b.decode
        && a.homography == b.homography
        && a.pipeline == b.pipeline
}

fn diff<'a, 'b>(
    running: impl Iterator<Item = &'b CameraConfig>,
    new: &'a [CameraConfig],
) -> Diff<'a> {
    let old: HashMap<&str, &CameraConfig> = running.map(|c| (c.id.as_str(), c)).collect();
    let mut d = Diff::default();
    for cam in new {
        match old.get(cam.id.as_str()) {
            None => d.added.push(cam),
            Some(was) if !same(was, cam) => d.changed.push(cam),
            Some(_) => {}
        }
    }
    let kept: Vec<&str> = new.iter().map(|c| c.id.as_str()).collect();
    d.removed = old
        .keys()
        .filter(|id| !kept.contains(id))
        .map(|id| id.to_string())
        .collect();
    d.removed.sort();
    d
}

/// The sections that differ between `old` and `new` and that a reload does not apply (every
/// one but cameras, zones, lines, queues, occupancy and rules).
fn sections_changed(old: &Config, new: &Config) -> Vec<&'static str> {
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut out = Vec::new();
    let pairs: [(&'static str, bool); 9] = [
        ("[model]", differs(&old.model, &new.model)),
        ("[inference]", differs(&old.inference, &new.inference)),
        ("[ingest]", differs(&old.ingest, &new.ingest)),
        ("[tracker]", differs(&old.tracker, &new.tracker)),
        ("[storage]", differs(&old.storage, &new.storage)),
        ("[floor]", differs(&old.floor, &new.floor)),
        ("[analytics]", differs(&old.analytics, &new.analytics)),
        ("[api]", differs(&old.api, &new.api)),
        ("[events]", differs(&old.events, &new.events)),
    ];
    for (name, changed) in pairs {
        if changed {
            out.push(name);
        }
    }
    out
}

/// Re-reads `path`, applies its camera differences to `set` and sends changed zone and
/// footfall definitions on `defs`; `started` is the config the service started with (its
/// other sections stay in force). A refused config changes nothing and is logged with its
/// errors.
pub(super) fn reload(
    set: &mut CameraSet,
    started: &Config,
    path: &Path,
    defs: &Sender<Definitions>,
) -> Result<Option<Applied>, ServiceError> {
    let t0 = Instant::now();
    info!(config = %path.display(), "Reloading the configuration.");
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!("Reload refused, the running configuration stays: {e}");
            return Ok(None);
        }
    };
    let d = diff(set.configs(), &new.cameras);
    let sh = set.shared();
    let to_start: Vec<CameraConfig> = d
        .added
        .iter()
        .chain(&d.changed)
        .map(|c| (*c).clone())
        .collect();
    if let Err(e) = check_pipelines(&to_start, &sh.default_template, &sh.ingest, &sh.input) {
        error!("Reload refused, the running configuration stays: {e}");
        return Ok(None);
    }
    let running = sh.stats.live.config();
    let definitions = running.is_none_or(|r| r.zones != new.zones || r.footfall != new.footfall);
    if definitions {
        let d = Definitions {
            settings: new.footfall.clone(),
            zones: new.zones.clone(),
        };
        if defs.send_timeout(d, DEFINITIONS_WAIT).is_err() {
            error!(
                "Reload refused: the analytics stage takes no definitions; the running configuration stays."
            );
            return Ok(None);
        }
    }
    sh.stats.live.set_config(std::sync::Arc::new(new.clone()));
    let on_restart = sections_changed(started, &new);
    if !on_restart.is_empty() {
        warn!(sections = %on_restart.join(" "),
              "Reload applies cameras, zones, lines, occupancy and rules; these sections take effect at the next start.");
    }
    for id in d.removed.iter().chain(d.changed.iter().map(|c| &c.id)) {
        set.stop(id);
    }
    if !to_start.is_empty() {
        let store = set.open_store()?;
        store.register_cameras(&to_start)?;
        for cam in &to_start {
            set.start(cam, &store, new.cameras.len())?;
        }
    }
    let applied = Applied {
        added: d.added.iter().map(|c| c.id.clone()).collect(),
        removed: d.removed,
        changed: d.changed.iter().map(|c| c.id.clone()).collect(),
        definitions,
        on_restart,
        elapsed: t0.elapsed(),
    };
    info!(added = ?applied.added, removed = ?applied.removed, restarted = ?applied.changed,
          cameras = set.len(), zones_lines_rules = definitions, ms = applied.elapsed.as_millis() as u64, "Reload applied.");
    Ok(Some(applied))
}

/// Why the running service could not be asked to reload.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// No live process holds the database's run lock.
    #[error("no storetrack service is running on {} (its run lock {} is not held)", db.display(), lock.display())]
    NotRunning {
        /// The database.
        db: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The lock file does not name a process.
    #[error("{}: no pid in the run lock file", lock.display())]
    NoPid {
        /// The lock file.
        lock: PathBuf,
    },
    /// The signal could not be sent.
    #[error("cannot signal pid {pid}: {source}")]
    Kill {
        /// The service's pid.
        pid: i32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Sends SIGHUP to the service writing database `db` (the pid in its run lock file, which the
/// service holds while it runs) and returns the pid.
pub fn signal_running(db: &Path) -> Result<i32, SignalError> {
    let lock = runs::lock_path(db);
    if !runs::writer_alive(db) {
        return Err(SignalError::NotRunning {
            db: db.to_path_buf(),
            lock,
        });
    }
    // The lock file holds "pid N on HOST".
    let pid = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<i32>().ok())
        .filter(|p| *p > 0)
        .ok_or(SignalError::NoPid { lock: lock.clone() })?;
    // SAFETY: kill(2) with a positive pid and a valid signal number has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(SignalError::Kill {
            pid,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(id: &str, url: &str) -> CameraConfig {
        CameraConfig::new(id, url.parse().unwrap())
    }

    #[test]
    fn cameras_are_added_removed_changed_or_left_alone_by_id() {
        let running = [
            cam("a", "rtsp://h/a"),
            cam("b", "rtsp://h/b"),
            cam("c", "rtsp://h/c"),
        ];
        let mut c2 = cam("c", "rtsp://h/c");
        c2.detect_fps = 5;
        let new = vec![cam("a", "rtsp://h/a"), c2, cam("d", "rtsp://h/d")];
        let d = diff(running.iter(), &new);
        assert_eq!(d.added.iter().map(|c| &c.id).collect::<Vec<_>>(), ["d"]);
        assert_eq!(d.removed, ["b"]);
        assert_eq!(d.changed.iter().map(|c| &c.id).collect::<Vec<_>>(), ["c"]);
        let again = diff(new.iter(), &new);
        assert!(again.added.is_empty() && again.removed.is_empty() && again.changed.is_empty());
    }
}
