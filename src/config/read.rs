//! What the read commands (`query`, `render`, `reload`) need from a config file: the database,
//! the floor and zones, and each camera's id and geometry. Only those tables are checked and
//! only they have `${NAME}` replaced, so an analyst can query with the service's config file
//! without any camera password in the environment; a camera's URL is resolved only when a
//! command really connects to it ([`ReadCamera::url`]).
//!
//! Input: a config file. Output: a [`ReadConfig`], or a [`ConfigError`] listing every problem
//! in those tables with its position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::raw::{RawFloor, RawStorage, RawZone, SpannedRows};
use super::validate::{Problems, line_col};
use super::{ConfigError, FloorConfig, Problem, StorageConfig, camera, secrets, sections};
use crate::analytics::Zone;

/// Top-level tables the read commands use; `${NAME}` is replaced in these only.
const READ_TABLES: &[&str] = &["storage", "floor", "zones"];

/// The parts of a config the read commands use.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// The database and its retention.
    pub storage: StorageConfig,
    /// The floor plan, if one is described.
    pub floor: Option<FloorConfig>,
    /// Zones, in file order.
    pub zones: Vec<Zone>,
    /// Cameras, in file order.
    pub cameras: Vec<ReadCamera>,
}

/// A camera as the read commands see it.
#[derive(Debug, Clone)]
pub struct ReadCamera {
    /// Its id.
    pub id: String,
    /// Image → floor homography, if calibrated.
    pub homography: Option<[f64; 9]>,
    /// The URL as written (`${NAME}` not replaced yet) and its position.
    url: String,
    at: (usize, usize),
}

#[derive(Deserialize)]
struct RawRead {
    #[serde(default)]
    cameras: Vec<Spanned<RawReadCamera>>,
    #[serde(default)]
    storage: RawStorage,
    floor: Option<Spanned<RawFloor>>,
    #[serde(default)]
    zones: Vec<Spanned<RawZone>>,
}

/// The camera keys read here; the others are left to the service.
#[derive(Deserialize)]
struct RawReadCamera {
    id: Spanned<String>,
    url: Spanned<String>,
    homography: Option<Spanned<Vec<f64>>>,
    calibration: Option<SpannedRows>,
}

impl ReadConfig {
    /// Reads the file and checks what the read commands use.
    pub fn load(path: &Path) -> Result<ReadConfig, ConfigError> {
        let text = super::read(path)?;
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        };
        let none = secrets::Substituted::default();
        let mut doc = toml::de::DeTable::parse(&text)
            .map_err(|e| invalid(vec![super::toml_problem(&text, &e, &none)]))?;
        let env = |name: &str| std::env::var(name).ok();
        let subst = secrets::substitute(&mut doc, &text, &env, Some(READ_TABLES));
        if !subst.problems.is_empty() {
            return Err(invalid(subst.problems));
        }
        let raw = RawRead::deserialize(toml::de::Deserializer::from(doc))
            .map_err(|e| invalid(vec![super::toml_problem(&text, &e, &subst)]))?;
        Self::check(raw, &text, path).map_err(|mut problems| {
            for p in &mut problems {
                subst.mask_problem(&text, p);
            }
            invalid(problems)
        })
    }

    fn check(raw: RawRead, text: &str, path: &Path) -> Result<ReadConfig, Vec<Problem>> {
        let mut p = Problems {
            text,
            list: Vec::new(),
        };
        let resolve = sections::resolver(super::base_dir(path));
        let storage = sections::storage(&raw.storage, &resolve, &mut p);
        let floor = raw
            .floor
            .as_ref()
            .and_then(|f| super::floor::floor(f, &mut p, &resolve));
        let zones = super::floor::zones(&raw.zones, floor.as_ref(), &mut p);
        let mut seen = HashMap::new();
        let mut cameras = Vec::new();
        for c in &raw.cameras {
            let c = c.get_ref();
            let id = camera::id("camera", &c.id, &mut p, &mut seen);
            let geometry = id.as_ref().and_then(|id| {
                camera::geometry(id, c.homography.as_ref(), c.calibration.as_ref(), &mut p)
            });
            if let (Some(id), Some((homography, _))) = (id, geometry) {
                cameras.push(ReadCamera {
                    id,
                    homography,
                    url: c.url.get_ref().clone(),
                    at: line_col(text, c.url.span().start),
                });
            }
        }
        p.finish()?;
        Ok(ReadConfig {
            path: path.to_path_buf(),
            storage,
            floor,
            zones,
            cameras,
        })
    }

    /// The camera with this id.
    pub fn camera(&self, id: &str) -> Option<&ReadCamera> {
        self.cameras.iter().find(|c| c.id == id)
    }
}

impl ReadCamera {
    /// The camera's URL with `${NAME}` replaced from this process's environment (for a
    /// command that connects to the camera).
    pub fn url(&self, config: &Path) -> Result<url::Url, ConfigError> {
        let problem = |message| ConfigError::Invalid {
            path: config.to_path_buf(),
            problems: vec![Problem {
                line: self.at.0,
                col: self.at.1,
                message,
            }],
        };
        let env = |name: &str| std::env::var(name).ok();
        let (text, _) = secrets::expand(&self.url, &env).map_err(problem)?;
        url::Url::parse(text.trim())
            .map_err(|e| problem(format!("camera {:?}: malformed url ({e})", self.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `query`, `render` and `reload` validated the whole config, so they needed every camera
    /// password in the caller's environment.
    #[test]
    fn the_read_commands_need_no_camera_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[[cameras]]\nid = \"c\"\nurl = \"rtsp://u:${ST_TEST_UNSET_PW}@h/x\"\n\
             homography = [0.01, 0, 0, 0, 0.01, 0, 0, 0, 1]\n\
             [inference]\nendpoints = \"${ST_TEST_UNSET_TOO}\"\n\
             [storage]\ndb = \"data/t.db\"\n",
        )
        .unwrap();
        assert!(crate::config::Config::load(&path).is_err());
        let read = ReadConfig::load(&path).unwrap();
        assert_eq!(read.storage.db, dir.path().join("data/t.db"));
        let cam = read.camera("c").unwrap();
        assert!(cam.homography.is_some());
        let err = cam.url(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("c.toml:3:7: environment variable ST_TEST_UNSET_PW is not set"),
            "{err}"
        );
    }

    #[test]
    fn the_tables_it_reads_are_still_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[storage]\ndb = \"${ST_TEST_UNSET_DB}\"\nkeep_days = 99999\n",
        )
        .unwrap();
        let err = ReadConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("2:6: environment variable ST_TEST_UNSET_DB"),
            "{err}"
        );
        std::fs::write(&path, "[storage]\nkeep_days = 99999\nflush = 1\n").unwrap();
        let err = ReadConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("3:1: unknown field `flush`"), "{err}");
    }
}
