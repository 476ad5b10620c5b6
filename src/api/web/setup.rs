//! Setup from the page (`[api] allow_setup = true` only): the zones or the counting lines as
//! drawn, or one camera's calibration point pairs, written into the config file the service
//! runs with.
//!
//! A save edits the file with `toml_edit`, so comments, order and every other key stay as they
//! are (a zone or a line keeps its other keys; a camera's `homography` gives way to its new
//! `calibration`); validates the result as `storetrack check-config` does (a refused change
//! answers 422 with the same `file:line:col: message` lines and the file is not touched);
//! copies the current file to `<config>.bak`; writes the new text to a temporary file in the
//! same folder and renames it over the config (atomic); and asks the service to reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use super::super::ApiState;
use crate::config::Config;

/// Why a save was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Setup is off.
    #[error("setup is off: set allow_setup = true in [api] to edit from the page")]
    Off,
    /// The request is malformed.
    #[error("{0}")]
    Bad(String),
    /// The file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML any more (edited by hand meanwhile).
    #[error("{}: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: toml_edit::TomlError,
    },
    /// The changed config does not validate: check-config's lines.
    #[error("{0}")]
    Invalid(String),
}

impl IntoResponse for SetupError {
    fn into_response(self) -> Response {
        let code = match &self {
            SetupError::Off => StatusCode::FORBIDDEN,
            SetupError::Bad(_) => StatusCode::BAD_REQUEST,
            SetupError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let msg = crate::redact::scrub(&self.to_string()).into_owned();
        (code, Json(json!({"error": msg}))).into_response()
    }
}

/// One zone as drawn.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ZoneIn {
    id: String,
    name: Option<String>,
    polygon: Vec<[f64; 2]>,
}

/// `POST /ui/api/setup/zones` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ZonesIn {
    zones: Vec<ZoneIn>,
}

/// One counting line as drawn: floor `points`, or `camera` and `pixels` on its picture.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LineIn {
    id: String,
    name: Option<String>,
    #[serde(default)]
    door: bool,
    #[serde(default)]
    points: Vec<[f64; 2]>,
    camera: Option<String>,
    #[serde(default)]
    pixels: Vec<[f64; 2]>,
}

/// `POST /ui/api/setup/lines` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LinesIn {
    lines: Vec<LineIn>,
}

/// What a lines save tells the page: the reload swaps the lines into the running engine.
pub const LINES_NOTE: &str = "lines count from the reload on: an unchanged line keeps its \
                              crossings in progress, a new or changed one starts counting now";

/// What a zones save tells the page: the reload swaps the zones into the running engine.
pub const ZONES_NOTE: &str = "zones count from the reload on: visits, dwell and queues of an \
                              unchanged zone carry on, a new or changed zone starts counting now";

/// `POST /ui/api/setup/calibration` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CalibrationIn {
    camera: String,
    pairs: Vec<[f64; 4]>,
}

fn bad(r: JsonRejection) -> SetupError {
    SetupError::Bad(r.body_text())
}

/// `POST /ui/api/setup/zones`: replaces the `[[zones]]` with these (by id).
pub(super) async fn zones(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<ZonesIn>, JsonRejection>,
) -> Result<Response, SetupError> {
    let Json(z) = body.map_err(bad)?;
    let edit = move |doc: &mut DocumentMut| {
        set_zones(doc, &z.zones);
        Ok(())
    };
    save(&state, Some(ZONES_NOTE), edit).await
}

/// `POST /ui/api/setup/lines`: replaces the `[[lines]]` with these (by id).
pub(super) async fn lines(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<LinesIn>, JsonRejection>,
) -> Result<Response, SetupError> {
    let Json(l) = body.map_err(bad)?;
    let edit = move |doc: &mut DocumentMut| {
        set_lines(doc, &l.lines);
        Ok(())
    };
    save(&state, Some(LINES_NOTE), edit).await
}

/// `POST /ui/api/setup/calibration`: sets one camera's `calibration` pairs.
pub(super) async fn calibration(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<CalibrationIn>, JsonRejection>,
) -> Result<Response, SetupError> {
    let Json(c) = body.map_err(bad)?;
    save(&state, None, move |doc| {
        set_calibration(doc, &c.camera, &c.pairs)
    })
    .await
}

fn number_rows<const N: usize>(rows: &[[f64; N]]) -> Array {
    let mut a = Array::new();
    for r in rows {
        let mut inner = Array::new();
        for v in r {
            // Pixels and centimetres: more digits would be noise.
            inner.push((v * 100.0).round() / 100.0);
        }
        a.push(inner);
    }
    a
}

/// Zones kept by id (their other keys stay), new ones appended, missing ones removed.
pub fn set_zones(doc: &mut DocumentMut, zones: &[ZoneIn]) {
    let old = doc
        .remove("zones")
        .and_then(|i| i.into_array_of_tables().ok())
        .unwrap_or_default();
    let mut out = ArrayOfTables::new();
    for z in zones {
        let mut t = old
            .iter()
            .find(|t| t.get("id").and_then(|v| v.as_str()) == Some(z.id.as_str()))
            .cloned()
            .unwrap_or_else(Table::new);
        t["id"] = value(z.id.as_str());
        if let Some(n) = &z.name {
            t["name"] = value(n.as_str());
        }
        t["polygon"] = value(number_rows(&z.polygon));
        out.push(t);
    }
    if !out.is_empty() {
        doc.insert("zones", Item::ArrayOfTables(out));
    }
}

/// Lines kept by id (their other keys, e.g. `band_m`, and the comments of the values replaced
/// stay), new ones appended, missing ones removed; each is either on the floor (`points`) or
/// on a camera's picture (`camera`, `pixels`), and `door` is written only when true.
pub fn set_lines(doc: &mut DocumentMut, lines: &[LineIn]) {
    let old = doc
        .remove("lines")
        .and_then(|i| i.into_array_of_tables().ok())
        .unwrap_or_default();
    let mut out = ArrayOfTables::new();
    for l in lines {
        let mut t = old
            .iter()
            .find(|t| t.get("id").and_then(|v| v.as_str()) == Some(l.id.as_str()))
            .cloned()
            .unwrap_or_else(Table::new);
        t["id"] = value(l.id.as_str());
        match l.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => keep_decor(&mut t, "name", n.into()),
            None => drop(t.remove("name")),
        }
        match &l.camera {
            Some(cam) => {
                t.remove("points");
                keep_decor(&mut t, "camera", cam.as_str().into());
                keep_decor(&mut t, "pixels", number_rows(&l.pixels).into());
            }
            None => {
                t.remove("camera");
                t.remove("pixels");
                keep_decor(&mut t, "points", number_rows(&l.points).into());
            }
        }
        match (l.door, t.get("door").and_then(|d| d.as_bool())) {
            (true, Some(true)) => {}
            (true, _) => t["door"] = value(true),
            (false, _) => drop(t.remove("door")),
        }
        out.push(t);
    }
    if !out.is_empty() {
        doc.insert("lines", Item::ArrayOfTables(out));
    }
}

/// `t[key] = v`, keeping the place and the comment of the value it replaces.
fn keep_decor(t: &mut Table, key: &str, mut v: toml_edit::Value) {
    if let Some(old) = t.get(key).and_then(|i| i.as_value()) {
        *v.decor_mut() = old.decor().clone();
    }
    t[key] = Item::Value(v);
}

/// Camera `id`'s `calibration` set to `pairs`, its `homography` removed.
pub fn set_calibration(
    doc: &mut DocumentMut,
    id: &str,
    pairs: &[[f64; 4]],
) -> Result<(), SetupError> {
    let cams = doc
        .get_mut("cameras")
        .and_then(|i| i.as_array_of_tables_mut())
        .ok_or_else(|| SetupError::Bad("the config has no [[cameras]]".into()))?;
    let cam = cams
        .iter_mut()
        .find(|t| t.get("id").and_then(|v| v.as_str()) == Some(id))
        .ok_or_else(|| SetupError::Bad(format!("no camera {id:?} in the config")))?;
    cam.remove("homography");
    let mut a = number_rows(pairs);
    for row in a.iter_mut() {
        row.decor_mut().set_prefix("\n  ");
    }
    a.set_trailing_comma(true);
    a.set_trailing("\n");
    cam["calibration"] = value(a);
    Ok(())
}

/// Reads the config, applies `edit`, validates, backs up, writes atomically, asks for a reload.
/// `note` says what the reload does with the change.
async fn save(
    state: &ApiState,
    note: Option<&'static str>,
    edit: impl FnOnce(&mut DocumentMut) -> Result<(), SetupError> + Send + 'static,
) -> Result<Response, SetupError> {
    if !state.web.allow_setup {
        return Err(SetupError::Off);
    }
    let path = state.web.config_path.clone().ok_or(SetupError::Off)?;
    let written = tokio::task::spawn_blocking(move || write(&path, edit))
        .await
        .map_err(|e| SetupError::Bad(format!("save failed: {e}")))??;
    let reload = match &state.web.reload {
        Some(flag) => {
            flag.store(true, Ordering::Relaxed);
            "requested"
        }
        None => "unavailable: restart the service to apply",
    };
    Ok(Json(json!({
        "saved": written.0.display().to_string(),
        "backup": written.1.display().to_string(),
        "reload": reload,
        // The notes say what the reload does; without one, the restart applies everything.
        "note": state.web.reload.as_ref().and(note),
    }))
    .into_response())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The edit applied to the file at `path`: (the file, its backup).
fn write(
    path: &Path,
    edit: impl FnOnce(&mut DocumentMut) -> Result<(), SetupError>,
) -> Result<(PathBuf, PathBuf), SetupError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut doc: DocumentMut = text.parse().map_err(|source| SetupError::Toml {
        path: path.to_path_buf(),
        source,
    })?;
    edit(&mut doc)?;
    let new = doc.to_string();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    std::io::Write::write_all(&mut tmp, new.as_bytes()).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    // Checked as check-config checks a file (the files it names included), in place.
    if let Err(e) = Config::load(tmp.path()) {
        let shown = e.to_string().replace(
            &tmp.path().display().to_string(),
            &path.display().to_string(),
        );
        return Err(SetupError::Invalid(shown));
    }
    let mut backup = path.as_os_str().to_owned();
    backup.push(".bak");
    let backup = PathBuf::from(backup);
    std::fs::copy(path, &backup).map_err(io(&backup))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path).map_err(|e| SetupError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok((path.to_path_buf(), backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# head\n[[cameras]]\nid = \"a\" # cam\nurl = \"rtsp://h/x\"\n\
                        homography = [1,0,0, 0,1,0, 0,0,1]\n\n# zones below\n[[zones]]\n\
                        id = \"z1\" # keep me\nname = \"One\"\npolygon = [[0,0],[1,0],[1,1]]\n\n\
                        [[zones]]\nid = \"gone\"\npolygon = [[0,0],[1,0],[1,1]]\n";

    #[test]
    fn zones_are_replaced_by_id_keeping_comments() {
        let mut doc: DocumentMut = TEXT.parse().unwrap();
        let zones = vec![
            ZoneIn {
                id: "z1".into(),
                name: None,
                polygon: vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]],
            },
            ZoneIn {
                id: "new".into(),
                name: Some("New".into()),
                polygon: vec![[3.0, 3.0], [4.0, 3.0], [4.0, 4.123456]],
            },
        ];
        set_zones(&mut doc, &zones);
        let out = doc.to_string();
        assert!(out.contains("# head") && out.contains("# cam"), "{out}");
        assert!(out.contains("name = \"One\""), "{out}");
        assert!(!out.contains("gone"), "{out}");
        assert!(out.contains("id = \"new\""), "{out}");
        assert!(out.contains("4.12"), "{out}");
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["zones"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn calibration_replaces_the_homography() {
        let mut doc: DocumentMut = TEXT.parse().unwrap();
        let pairs = [[0.0, 0.0, 1.0, 1.0], [10.0, 0.0, 2.0, 1.0]];
        set_calibration(&mut doc, "a", &pairs).unwrap();
        let out = doc.to_string();
        assert!(!out.contains("homography"), "{out}");
        let t: toml::Table = toml::from_str(&out).unwrap();
        let cal = t["cameras"][0]["calibration"].as_array().unwrap();
        assert_eq!(cal.len(), 2);
        assert!(set_calibration(&mut doc, "nope", &pairs).is_err());
    }

    const LINES: &str = "[[lines]]\nid = \"door\"\nname = \"West\"\npoints = [[8, 12], [8, 1]] # northwards\n\
                         door = true\nband_m = 0.5 # wide\n\n[[lines]]\nid = \"gone\"\npoints = [[0, 0], [1, 0]]\n";

    fn line(id: &str, points: &[[f64; 2]], camera: Option<&str>, door: bool) -> LineIn {
        LineIn {
            id: id.into(),
            name: None,
            door,
            points: if camera.is_none() {
                points.to_vec()
            } else {
                Vec::new()
            },
            camera: camera.map(String::from),
            pixels: if camera.is_some() {
                points.to_vec()
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn lines_are_replaced_by_id_keeping_their_other_keys() {
        let mut doc: DocumentMut = LINES.parse().unwrap();
        let lines = [
            line("door", &[[8.0, 1.0], [8.0, 12.0]], None, true),
            line(
                "cam-door",
                &[[100.0, 400.0], [600.5, 400.0]],
                Some("cam1"),
                false,
            ),
        ];
        set_lines(&mut doc, &lines);
        let out = doc.to_string();
        assert!(
            out.contains("# northwards") && out.contains("band_m = 0.5 # wide"),
            "{out}"
        );
        assert!(!out.contains("gone") && !out.contains("West"), "{out}");
        let t: toml::Table = toml::from_str(&out).unwrap();
        let l = t["lines"].as_array().unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0]["points"].as_array().unwrap()[0][1].as_float(),
            Some(1.0)
        );
        assert_eq!(l[0]["door"].as_bool(), Some(true));
        assert_eq!(l[1]["camera"].as_str(), Some("cam1"));
        assert_eq!(
            l[1]["pixels"].as_array().unwrap()[1][0].as_float(),
            Some(600.5)
        );
        assert!(
            l[1].get("points").is_none() && l[1].get("door").is_none(),
            "{out}"
        );
        // A floor line moved to a camera loses its points; `door` goes when unticked.
        set_lines(
            &mut doc,
            &[line("door", &[[1.0, 2.0], [3.0, 4.0]], Some("cam2"), false)],
        );
        let t: toml::Table = toml::from_str(&doc.to_string()).unwrap();
        let l = &t["lines"].as_array().unwrap()[0];
        assert!(
            l.get("points").is_none() && l.get("door").is_none(),
            "{doc}"
        );
        assert_eq!(l["band_m"].as_float(), Some(0.5));
    }
}
