//! Semantic checks on a parsed config. Every problem is collected (not just the first), each
//! with the position of the offending value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::{RawCamera, RawConfig};
use super::{
    CameraConfig, Config, Decode, InferenceConfig, IngestConfig, ModelConfig, Problem,
    StorageConfig,
};

const HINTS: &[&str] = &["THROUGHPUT", "LATENCY", "CUMULATIVE_THROUGHPUT"];
const PROTOCOLS: &[&str] = &["tcp", "udp", "tcp+udp", "udp+tcp"];
const MAX_DETECT_FPS: u32 = 120;
/// 100 years: more is a typo.
const MAX_KEEP_DAYS: u32 = 36_500;
/// A smaller cap would be filled by one WAL's worth of data and make retention thrash.
const MIN_MAX_SIZE_MB: u64 = 16;
/// 1 PiB: more is a typo.
const MAX_MAX_SIZE_MB: u64 = 1 << 30;

/// 1-based line and column of byte offset `pos` in `text`.
pub(super) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

pub(super) struct Problems<'a> {
    pub(super) text: &'a str,
    pub(super) list: Vec<(usize, Problem)>,
}

impl Problems<'_> {
    /// Problems found so far.
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Records a problem at the position of `value` (no position for a default value).
    pub(super) fn at<T>(&mut self, value: &Spanned<T>, message: String) {
        let span = value.span();
        let (line, col) = if span.is_empty() && span.start == 0 {
            (0, 0)
        } else {
            line_col(self.text, span.start)
        };
        self.list.push((span.start, Problem { line, col, message }));
    }
}

pub(super) fn validate(
    raw: RawConfig,
    text: &str,
    path: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    let mut p = Problems {
        text,
        list: Vec::new(),
    };
    let resolve = |s: &str| -> PathBuf {
        let pb = PathBuf::from(s);
        if pb.is_absolute() { pb } else { base.join(pb) }
    };

    if raw.cameras.is_empty() {
        p.list.push((
            0,
            Problem {
                line: 0,
                col: 0,
                message: "no cameras: add at least one [[cameras]] table with id and url".into(),
            },
        ));
    }
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut cameras = Vec::new();
    let decode = decode_mode(&raw.ingest.decode, "ingest.decode", &mut p).unwrap_or_default();
    for cam in &raw.cameras {
        let defaults = (raw.ingest.detect_fps, decode);
        if let Some(mut c) = camera(cam.get_ref(), defaults, &mut p, &mut seen) {
            c.pipeline = cam
                .get_ref()
                .pipeline
                .as_ref()
                .map(|s| resolve(s.get_ref()));
            cameras.push(c);
        }
    }

    let m = &raw.model;
    let score = *m.score_threshold.get_ref();
    if !(0.0..=1.0).contains(&score) || score.is_nan() {
        p.at(
            &m.score_threshold,
            format!("model.score_threshold = {score}: must be between 0 and 1"),
        );
    }

    let inf = &raw.inference;
    let device = inf.device.get_ref().trim().to_string();
    if device.is_empty() {
        p.at(
            &inf.device,
            "inference.device is empty (try \"CPU\")".into(),
        );
    }
    let hint = inf.hint.get_ref().to_ascii_uppercase();
    if !HINTS.contains(&hint.as_str()) {
        p.at(
            &inf.hint,
            format!(
                "inference.hint = {:?}: expected one of {}",
                inf.hint.get_ref(),
                HINTS.join(", ")
            ),
        );
    }

    let remote = super::remote::validate(inf, &mut p);

    let ing = &raw.ingest;
    let protocols = ing.protocols.get_ref().to_ascii_lowercase();
    if !PROTOCOLS.contains(&protocols.as_str()) {
        p.at(
            &ing.protocols,
            format!(
                "ingest.protocols = {:?}: expected one of {}",
                ing.protocols.get_ref(),
                PROTOCOLS.join(", ")
            ),
        );
    }
    if !(1..=64).contains(ing.queue_frames.get_ref()) {
        p.at(
            &ing.queue_frames,
            "ingest.queue_frames must be from 1 to 64".into(),
        );
    }
    if *ing.retry_interval_ms.get_ref() < 100 {
        p.at(
            &ing.retry_interval_ms,
            "ingest.retry_interval_ms must be at least 100".into(),
        );
    }
    if ing.retry_max_ms.get_ref() < ing.retry_interval_ms.get_ref() {
        p.at(
            &ing.retry_max_ms,
            "ingest.retry_max_ms must be at least ingest.retry_interval_ms".into(),
        );
    }
    if *ing.stall_timeout_ms.get_ref() < 1_000 {
        p.at(
            &ing.stall_timeout_ms,
            "ingest.stall_timeout_ms must be at least 1000".into(),
        );
    }
    if raw.ingest.detect_fps > MAX_DETECT_FPS {
        p.list.push((
            0,
            Problem {
                line: 0,
                col: 0,
                message: format!("ingest.detect_fps must be from 0 to {MAX_DETECT_FPS}"),
            },
        ));
    }
    for problem in raw.tracker.problems() {
        p.list.push((
            0,
            Problem {
                line: 0,
                col: 0,
                message: format!("tracker.{problem}"),
            },
        ));
    }

    let floor = raw
        .floor
        .as_ref()
        .and_then(|f| super::floor::floor(f, &mut p, resolve));
    let zones = super::floor::zones(&raw.zones, floor.as_ref(), &mut p);
    for problem in raw.analytics.problems() {
        p.list.push((
            0,
            Problem {
                line: 0,
                col: 0,
                message: format!("analytics.{problem}"),
            },
        ));
    }

    let st = &raw.storage;
    if st.db.get_ref().trim().is_empty() {
        p.at(&st.db, "storage.db is empty".into());
    }
    if !(10..=60_000).contains(st.flush_interval_ms.get_ref()) {
        p.at(
            &st.flush_interval_ms,
            "storage.flush_interval_ms must be from 10 to 60000".into(),
        );
    }
    if *st.keep_days.get_ref() > MAX_KEEP_DAYS {
        p.at(
            &st.keep_days,
            format!("storage.keep_days must be from 0 (keep all) to {MAX_KEEP_DAYS}"),
        );
    }
    let mb = *st.max_size_mb.get_ref();
    if mb != 0 && !(MIN_MAX_SIZE_MB..=MAX_MAX_SIZE_MB).contains(&mb) {
        p.at(
            &st.max_size_mb,
            format!(
                "storage.max_size_mb must be 0 (no cap) or from {MIN_MAX_SIZE_MB} to {MAX_MAX_SIZE_MB}"
            ),
        );
    }

    let api = raw
        .api
        .as_ref()
        .and_then(|a| super::api::validate(a, env, &mut p));

    if !p.list.is_empty() {
        let mut list = p.list;
        list.sort_by_key(|(pos, prob)| (prob.line == 0, *pos));
        return Err(list.into_iter().map(|(_, prob)| prob).collect());
    }

    Ok(Config {
        path: path.to_path_buf(),
        sha256: String::new(), // set by the caller, which has the file's bytes
        cameras,
        model: ModelConfig {
            description: resolve(m.description.get_ref()),
            ir: m.ir.as_ref().map(|s| resolve(s.get_ref())),
            score_threshold: score,
            person_class: m.person_class,
        },
        inference: InferenceConfig {
            device,
            hint,
            requests: inf.requests,
            streams: inf.streams,
            runtime: inf.runtime.as_ref().map(|r| resolve(r.get_ref())),
            remote,
        },
        ingest: IngestConfig {
            pipeline: resolve(ing.pipeline.get_ref()),
            latency_ms: ing.latency_ms,
            protocols,
            queue_frames: *ing.queue_frames.get_ref(),
            retry_interval_ms: *ing.retry_interval_ms.get_ref(),
            retry_max_ms: *ing.retry_max_ms.get_ref(),
            stall_timeout_ms: *ing.stall_timeout_ms.get_ref(),
        },
        tracker: raw.tracker,
        storage: StorageConfig {
            db: resolve(st.db.get_ref()),
            flush_interval_ms: *st.flush_interval_ms.get_ref(),
            keep_days: *st.keep_days.get_ref(),
            max_size_mb: mb,
        },
        floor,
        zones,
        analytics: raw.analytics,
        api,
    })
}

/// `decode = "auto" | "all" | "keyframes"` at `key`; None (reported) when it is none of them.
fn decode_mode(value: &Spanned<String>, key: &str, p: &mut Problems<'_>) -> Option<Decode> {
    let parsed = value
        .get_ref()
        .trim()
        .to_ascii_lowercase()
        .parse::<Decode>();
    parsed.map_err(|e| p.at(value, format!("{key}: {e}"))).ok()
}

/// One camera table; `(default_fps, default_decode)` come from `[ingest]`.
fn camera(
    cam: &RawCamera,
    (default_fps, default_decode): (u32, Decode),
    p: &mut Problems<'_>,
    seen: &mut HashMap<String, (usize, usize)>,
) -> Option<CameraConfig> {
    let mut ok = true;
    let id = cam.id.get_ref().trim().to_string();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        p.at(
            &cam.id,
            format!("camera id {id:?}: use letters, digits, '-', '_' or '.'"),
        );
        ok = false;
    } else {
        let here = line_col(p.text, cam.id.span().start);
        if let Some((line, col)) = seen.get(&id) {
            p.at(
                &cam.id,
                format!("duplicate camera id {id:?} (first defined at {line}:{col})"),
            );
            ok = false;
        } else {
            seen.insert(id.clone(), here);
        }
    }

    let url = match url::Url::parse(cam.url.get_ref().trim()) {
        Ok(u) if matches!(u.scheme(), "rtsp" | "rtsps" | "rtspt") && u.host_str().is_some() => {
            Some(u)
        }
        Ok(u) => {
            p.at(
                &cam.url,
                format!(
                    "camera {id:?}: url {} must be rtsp://host[:port]/path",
                    crate::redact::url(&u)
                ),
            );
            None
        }
        Err(e) => {
            p.at(&cam.url, format!("camera {id:?}: malformed url ({e})"));
            None
        }
    };

    let detect_fps = cam
        .detect_fps
        .as_ref()
        .map_or(default_fps, |f| *f.get_ref());
    if let Some(f) = &cam.detect_fps
        && *f.get_ref() > MAX_DETECT_FPS
    {
        p.at(
            f,
            format!("camera {id:?}: detect_fps must be from 0 to {MAX_DETECT_FPS}"),
        );
        ok = false;
    }

    let decode = match &cam.decode {
        None => Some(default_decode),
        Some(d) => decode_mode(d, &format!("camera {id:?}: decode"), p),
    };
    ok &= decode.is_some();

    let homography = match &cam.homography {
        None => None,
        Some(h) => match <[f64; 9]>::try_from(h.get_ref().as_slice()) {
            Ok(m) if m.iter().all(|v| v.is_finite()) => Some(m),
            _ => {
                p.at(
                    h,
                    format!("camera {id:?}: homography must be 9 finite numbers (row-major 3x3)"),
                );
                ok = false;
                None
            }
        },
    };

    let mut calibration = None;
    if let Some(rows) = &cam.calibration {
        if cam.homography.is_some() {
            p.at(
                rows,
                format!("camera {id:?}: give either homography or calibration, not both"),
            );
            ok = false;
        } else {
            calibration = super::floor::calibration(&id, rows, p);
            ok &= calibration.is_some();
        }
    }
    let homography = homography.or_else(|| calibration.as_ref().map(|c| c.homography));

    let url = url?;
    ok.then(|| CameraConfig {
        name: cam.name.clone().unwrap_or_else(|| id.clone()),
        id,
        url,
        detect_fps,
        decode: decode.unwrap_or_default(),
        homography,
        pipeline: None,
        calibration,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError, Decode};
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_str_at(text, Path::new("/etc/st/config.toml")) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| format!("{}:{}: {}", p.line, p.col, p.message))
                .collect(),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    const GOOD: &str = r#"
[[cameras]]
id = "cam1"
url = "rtsp://user:secret@127.0.0.1:8554/cam1"

[[cameras]]
id = "cam2"
url = "rtsp://127.0.0.1:8554/cam2"
detect_fps = 5
"#;

    #[test]
    fn good_config_loads_with_defaults_and_resolved_paths() {
        let c = Config::from_str_at(GOOD, Path::new("/etc/st/config.toml")).unwrap();
        assert_eq!(c.cameras.len(), 2);
        assert_eq!(c.cameras[0].name, "cam1");
        assert_eq!(c.cameras[0].detect_fps, 10);
        assert_eq!(c.cameras[1].detect_fps, 5);
        assert_eq!(c.storage.db, Path::new("/etc/st/storetrack.db"));
        assert_eq!(
            c.model.description,
            Path::new("/etc/st/models/ssdlite.toml")
        );
        assert_eq!(c.inference.device, "CPU");
    }

    #[test]
    fn retention_defaults_and_limits() {
        let c = Config::from_str_at(GOOD, Path::new("/etc/st/config.toml")).unwrap();
        let policy = c.storage.retention();
        assert_eq!(policy.keep_ms, Some(30 * 86_400_000));
        assert_eq!(policy.max_bytes, Some(10_240 << 20));
        let text = format!("{GOOD}\n[storage]\nkeep_days = 0\nmax_size_mb = 0\n");
        let c = Config::from_str_at(&text, Path::new("/etc/st/config.toml")).unwrap();
        assert_eq!(
            c.storage.retention(),
            crate::store::RetentionPolicy::default()
        );
        let text = format!("{GOOD}\n[storage]\nkeep_days = 40000\nmax_size_mb = 8\n");
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("12:13: storage.keep_days must be from 0 (keep all) to 36500"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("13:15: storage.max_size_mb must be 0 (no cap) or from 16"),
            "{p:?}"
        );
        let p = problems(&format!("{GOOD}\n[storage]\nkeep_days = -1\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("12:13: invalid value"), "{p:?}");
    }

    #[test]
    fn unknown_key_is_reported_with_position() {
        let p = problems("[storage]\ndb = \"x.db\"\nflush_ms = 3\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("3:1: unknown field `flush_ms`"), "{p:?}");
    }

    #[test]
    fn bad_value_type_is_reported_with_position() {
        let text = format!("{GOOD}\n[storage]\nflush_interval_ms = \"soon\"\n");
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("12:21: invalid type: string \"soon\""),
            "{p:?}"
        );
    }

    #[test]
    fn all_semantic_problems_are_listed_in_file_order() {
        let text = r#"
[[cameras]]
id = "cam1"
url = "rtsp://a/1"

[[cameras]]
id = "cam1"
url = "http://a/2"

[[cameras]]
id = "cam 3"
url = "not a url"

[inference]
hint = "FASTEST"
"#;
        let p = problems(text);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].starts_with("7:6: duplicate camera id \"cam1\" (first defined at 3:6)"));
        assert!(p[1].starts_with("8:7: camera \"cam1\": url http://a/2 must be rtsp"));
        assert!(p[2].starts_with("11:6: camera id \"cam 3\""));
        assert!(p[3].starts_with("12:7: camera \"cam 3\": malformed url"));
        assert!(p[4].starts_with("15:8: inference.hint = \"FASTEST\""));
    }

    #[test]
    fn decode_modes_per_camera_and_default() {
        let text = format!("{GOOD}\n[ingest]\ndecode = \"keyframes\"\n").replacen(
            "url =",
            "decode = \"all\"\nurl =",
            1,
        );
        let c = Config::from_str_at(&text, Path::new("c.toml")).unwrap();
        let modes: Vec<Decode> = c.cameras.iter().map(|c| c.decode).collect();
        assert_eq!(modes, [Decode::All, Decode::Keyframes]);
        let bad = GOOD.replacen("url =", "decode = \"sometimes\"\nurl =", 1);
        let p = problems(&bad);
        assert!(p[0].contains(": decode: expected \"auto\""), "{p:?}");
    }

    #[test]
    fn password_never_appears_in_problems() {
        let text = "[[cameras]]\nid = \"c\"\nurl = \"http://admin:hunter2@cam/x\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 1);
        assert!(!p[0].contains("hunter2"), "{p:?}");
    }

    #[test]
    fn no_cameras_is_a_problem() {
        let p = problems("[storage]\ndb = \"a.db\"\n");
        assert_eq!(
            p,
            vec!["0:0: no cameras: add at least one [[cameras]] table with id and url"]
        );
    }

    #[test]
    fn requests_accepts_auto_or_count() {
        let ok = format!("{GOOD}\n[inference]\nrequests = 4\nstreams = \"auto\"\n");
        let c = Config::from_str_at(&ok, Path::new("c.toml")).unwrap();
        assert_eq!(c.inference.requests, super::super::CountOrAuto::Count(4));
        let bad = format!("{GOOD}\n[inference]\nrequests = \"many\"\n");
        let p = problems(&bad);
        assert!(
            p[0].contains("expected \"auto\" or a whole number"),
            "{p:?}"
        );
    }
}
