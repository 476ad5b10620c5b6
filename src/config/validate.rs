//! Semantic checks on a parsed config. Every problem is collected (not just the first), each
//! with the position of the offending value.

use std::collections::HashMap;
use std::path::Path;

use toml::Spanned;

use super::raw::{RawConfig, RawInference};
use super::{Checks, Config, InferenceConfig, Problem, camera, sections};

const HINTS: &[&str] = &["THROUGHPUT", "LATENCY", "CUMULATIVE_THROUGHPUT"];
const PRECISIONS: &[&str] = &["auto", "f32", "bf16", "f16"];

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
    /// Records a problem that has no position (a missing table, a default value).
    pub(super) fn nowhere(&mut self, message: String) {
        self.list.push((
            0,
            Problem {
                line: 0,
                col: 0,
                message,
            },
        ));
    }

    /// Every problem in file order (those without a position last), or nothing when there
    /// were none.
    pub(super) fn finish(self) -> Result<(), Vec<Problem>> {
        if self.list.is_empty() {
            return Ok(());
        }
        let mut list = self.list;
        list.sort_by_key(|(pos, prob)| (prob.line == 0, *pos));
        Err(list.into_iter().map(|(_, prob)| prob).collect())
    }

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
    env: &dyn Fn(&str) -> Option<String>,
    checks: Checks,
) -> Result<Config, Vec<Problem>> {
    let mut p = Problems {
        text,
        list: Vec::new(),
    };
    let resolve = sections::resolver(super::base_dir(path));
    if raw.cameras.is_empty() {
        p.nowhere("no cameras: add at least one [[cameras]] table with id and url".into());
    }
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut cameras = Vec::new();
    let decode = camera::decode_mode(&raw.ingest.decode, "ingest.decode", &mut p);
    for cam in &raw.cameras {
        let defaults = (raw.ingest.detect_fps, decode.unwrap_or_default());
        if let Some(mut c) = camera::camera(cam.get_ref(), defaults, &mut p, &mut seen) {
            c.pipeline = cam
                .get_ref()
                .pipeline
                .as_ref()
                .map(|s| resolve(s.get_ref()));
            cameras.push(c);
        }
    }
    if raw.ingest.detect_fps > camera::MAX_DETECT_FPS {
        let max = camera::MAX_DETECT_FPS;
        p.in_table("ingest", format!("detect_fps must be from 0 to {max}"));
    }
    let inf = &raw.inference;
    let (device, hint) = device_and_hint(inf, &mut p);
    let precision = precision(inf, &mut p);
    let remote = super::remote::validate(inf, &mut p);
    let local_engine = remote.as_ref().is_none_or(|r| r.fallback_local);
    let model = sections::model(&raw.model, &resolve, (checks, local_engine), &mut p);
    let ingest = sections::ingest(&raw.ingest, &resolve, &mut p);
    for problem in raw.tracker.problems() {
        p.in_table("tracker", problem);
    }
    let floor = raw
        .floor
        .as_ref()
        .and_then(|f| super::floor::floor(f, &mut p, &resolve));
    let zones = super::floor::zones(&raw.zones, floor.as_ref(), &mut p);
    for problem in raw.analytics.problems() {
        p.in_table("analytics", problem);
    }
    let camera_ids: Vec<&str> = cameras
        .iter()
        .map(|c: &super::CameraConfig| c.id.as_str())
        .collect();
    let footfall = super::footfall::footfall(&raw, &zones, &camera_ids, &mut p);
    let storage = sections::storage(&raw.storage, &resolve, &mut p);
    let api = raw
        .api
        .as_ref()
        .and_then(|a| super::api::validate(a, env, &resolve, &mut p));
    let events = raw
        .events
        .as_ref()
        .and_then(|e| super::events::validate(e, &resolve, &mut p));
    p.finish()?;
    Ok(Config {
        path: path.to_path_buf(),
        sha256: String::new(), // set by the caller, which has the file's bytes
        cameras,
        model,
        inference: InferenceConfig {
            device,
            hint,
            precision,
            requests: inf.requests,
            streams: inf.streams,
            runtime: inf.runtime.as_ref().map(|r| resolve(r.get_ref())),
            remote,
        },
        ingest,
        tracker: raw.tracker,
        storage,
        floor,
        zones,
        analytics: raw.analytics,
        api,
        events,
        footfall,
        web: super::WebConfig {
            allow_setup: raw.api.as_ref().is_some_and(|a| a.allow_setup),
            blur_people: raw.privacy.blur_people,
        },
    })
}

/// `[inference] device` and `hint` (upper case).
fn device_and_hint(inf: &RawInference, p: &mut Problems<'_>) -> (String, String) {
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
    (device, hint)
}

/// `[inference] precision` (lower case); None for `auto`.
fn precision(inf: &RawInference, p: &mut Problems<'_>) -> Option<String> {
    let precision = inf.precision.get_ref().to_ascii_lowercase();
    if !PRECISIONS.contains(&precision.as_str()) {
        p.at(
            &inf.precision,
            format!(
                "inference.precision = {:?}: expected one of {}",
                inf.precision.get_ref(),
                PRECISIONS.join(", ")
            ),
        );
    }
    (precision != "auto").then_some(precision)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::problems;
    use super::super::{Config, Decode};
    use std::path::Path;

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
precision = "f64"
"#;
        let p = problems(text);
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].starts_with("7:6: duplicate camera id \"cam1\" (first defined at 3:6)"));
        assert!(p[1].starts_with("8:7: camera \"cam1\": url http://a/2 must be rtsp"));
        assert!(p[2].starts_with("11:6: camera id \"cam 3\""));
        assert!(p[3].starts_with("12:7: camera \"cam 3\": malformed url"));
        assert!(p[4].starts_with("15:8: inference.hint = \"FASTEST\""));
        let want = "16:13: inference.precision = \"f64\": expected one of auto, f32, bf16, f16";
        assert!(p[5].starts_with(want), "{p:?}");
    }

    #[test]
    fn precision_is_the_device_s_choice_unless_given() {
        let c = Config::from_str_at(GOOD, Path::new("c.toml")).unwrap();
        assert_eq!(c.inference.precision, None);
        for (given, want) in [("auto", None), ("F32", Some("f32")), ("bf16", Some("bf16"))] {
            let text = format!("{GOOD}\n[inference]\nprecision = \"{given}\"\n");
            let c = Config::from_str_at(&text, Path::new("c.toml")).unwrap();
            assert_eq!(c.inference.precision.as_deref(), want, "{given}");
        }
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
