//! Checks of the remote-detector keys of `[inference]` (`backend = "kserve"`, `endpoints`,
//! `model`, `version`, `timeout_ms`, `in_flight`, `fallback`), each problem with its position.

use toml::Spanned;

use super::RemoteConfig;
use super::raw::RawInference;
use super::validate::Problems;

const BACKENDS: &[&str] = &["local", "kserve"];
const FALLBACKS: &[&str] = &["local", "none"];
const MAX_IN_FLIGHT: usize = 256;
const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 10..=600_000;

/// The remote settings when `backend = "kserve"`, None for `"local"` (or when invalid; the
/// problems are then in `p`).
pub(super) fn validate(inf: &RawInference, p: &mut Problems<'_>) -> Option<RemoteConfig> {
    let backend = inf.backend.get_ref().to_ascii_lowercase();
    if !BACKENDS.contains(&backend.as_str()) {
        p.at(
            &inf.backend,
            format!(
                "inference.backend = {:?}: expected one of {}",
                inf.backend.get_ref(),
                BACKENDS.join(", ")
            ),
        );
        return None;
    }
    if backend == "local" {
        let stray = [
            inf.endpoints.as_ref().map(|e| (e.span(), "endpoints")),
            inf.model.as_ref().map(|m| (m.span(), "model")),
            inf.version.as_ref().map(|v| (v.span(), "version")),
            inf.fallback.as_ref().map(|f| (f.span(), "fallback")),
            given(&inf.timeout_ms).then(|| (inf.timeout_ms.span(), "timeout_ms")),
            given(&inf.in_flight).then(|| (inf.in_flight.span(), "in_flight")),
        ];
        for (span, key) in stray.into_iter().flatten() {
            p.at(
                &Spanned::new(span, ()),
                format!("inference.{key} is only used with backend = \"kserve\""),
            );
        }
        return None;
    }

    let ok_before = p.len();
    let fallback_given = inf
        .fallback
        .as_ref()
        .is_some_and(|f| f.get_ref() == "local");
    if !fallback_given {
        local_keys_unused(inf, p);
    }
    let mut endpoints = Vec::new();
    match &inf.endpoints {
        Some(list) if !list.get_ref().is_empty() => {
            for e in list.get_ref() {
                match endpoint(e.get_ref()) {
                    Ok(hp) => endpoints.push(hp),
                    Err(why) => p.at(
                        e,
                        format!("inference.endpoints: {:?}: {why}", shown(e.get_ref())),
                    ),
                }
            }
        }
        Some(list) => p.at(
            list,
            "inference.endpoints is empty: list at least one \"grpc://host:port\"".into(),
        ),
        None => p.at(
            &inf.backend,
            "backend = \"kserve\" needs inference.endpoints = [\"grpc://host:port\", ...]".into(),
        ),
    }
    let model = match &inf.model {
        Some(m) if !m.get_ref().trim().is_empty() => m.get_ref().trim().to_string(),
        Some(m) => {
            p.at(m, "inference.model is empty".into());
            String::new()
        }
        None => {
            p.at(
                &inf.backend,
                "backend = \"kserve\" needs inference.model (the model's name on the servers)"
                    .into(),
            );
            String::new()
        }
    };
    let version = inf
        .version
        .as_ref()
        .map(|v| v.get_ref().trim().to_string())
        .filter(|v| !v.is_empty());
    let timeout_ms = *inf.timeout_ms.get_ref();
    if !TIMEOUT_RANGE_MS.contains(&timeout_ms) {
        p.at(
            &inf.timeout_ms,
            format!(
                "inference.timeout_ms must be from {} to {}",
                TIMEOUT_RANGE_MS.start(),
                TIMEOUT_RANGE_MS.end()
            ),
        );
    }
    let in_flight = *inf.in_flight.get_ref();
    if !(1..=MAX_IN_FLIGHT).contains(&in_flight) {
        p.at(
            &inf.in_flight,
            format!("inference.in_flight must be from 1 to {MAX_IN_FLIGHT}"),
        );
    }
    let fallback_local = match &inf.fallback {
        None => false,
        Some(f) if FALLBACKS.contains(&f.get_ref().as_str()) => f.get_ref() == "local",
        Some(f) => {
            p.at(
                f,
                format!(
                    "inference.fallback = {:?}: expected one of {}",
                    f.get_ref(),
                    FALLBACKS.join(", ")
                ),
            );
            false
        }
    };
    (p.len() == ok_before).then_some(RemoteConfig {
        endpoints,
        model,
        version,
        timeout_ms,
        in_flight,
        fallback_local,
    })
}

/// An endpoint as it may be shown in a message: credentials masked.
fn shown(s: &str) -> String {
    match url::Url::parse(s.trim()) {
        Ok(u) => crate::redact::text(&u, s).into_owned(),
        Err(_) => crate::redact::scrub(s).into_owned(),
    }
}

/// `grpc://host:port` → `host:port`.
fn endpoint(s: &str) -> Result<String, &'static str> {
    let u = url::Url::parse(s.trim()).map_err(|_| "malformed: expected grpc://host:port")?;
    if u.scheme() != "grpc" {
        return Err("expected grpc://host:port (plain gRPC; TLS is not supported)");
    }
    let host = u.host_str().ok_or("no host: expected grpc://host:port")?;
    let port = u.port().ok_or("no port: expected grpc://host:port")?;
    if !(u.path().is_empty() || u.path() == "/") || u.query().is_some() {
        return Err("expected grpc://host:port with no path");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the endpoint are not supported");
    }
    Ok(format!("{host}:{port}"))
}

/// True when `value` was written in the file (a default has no position).
fn given<T>(value: &Spanned<T>) -> bool {
    !value.span().is_empty()
}

/// With `backend = "kserve"` and no local fallback, the local engine's keys do nothing: each
/// one written is a problem at its position.
fn local_keys_unused(inf: &RawInference, p: &mut Problems<'_>) {
    let mut at = Vec::new();
    for (value, key) in [
        (&inf.device, "device"),
        (&inf.hint, "hint"),
        (&inf.precision, "precision"),
    ] {
        if given(value) {
            at.push((value.span().start, key));
        }
    }
    for key in ["requests", "streams"] {
        if let Some(pos) = super::position::value_offset(p.text, "inference", key) {
            at.push((pos, key));
        }
    }
    for (pos, key) in at {
        p.at_offset(
            pos,
            format!(
                "inference.{key} is only used by the local engine: with backend = \"kserve\" \
                 it needs fallback = \"local\""
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::test_support::{CAMERA, problem_lines};
    use std::path::Path;

    fn load(inference: &str) -> Result<Config, Vec<String>> {
        let text = format!("{CAMERA}\n[inference]\n{inference}");
        problem_lines(Config::from_str_at(&text, Path::new("c.toml")))
    }

    #[test]
    fn local_is_the_default() {
        assert_eq!(load("").unwrap().inference.remote, None);
    }

    #[test]
    fn kserve_backend_loads_with_defaults() {
        let c = load(
            "backend = \"kserve\"\nendpoints = [\"grpc://10.0.0.5:9000\", \"grpc://ovms.lan:8001\"]\nmodel = \"ssdlite\"\n",
        )
        .unwrap();
        let r = c.inference.remote.unwrap();
        assert_eq!(r.endpoints, ["10.0.0.5:9000", "ovms.lan:8001"]);
        assert_eq!(r.model, "ssdlite");
        assert_eq!(r.version, None);
        assert_eq!(
            (r.timeout_ms, r.in_flight, r.fallback_local),
            (2_000, 4, false)
        );
        let r = load("backend = \"kserve\"\nendpoints = [\"grpc://h:1\"]\nmodel = \"m\"\nversion = \"2\"\nfallback = \"local\"\nin_flight = 8\ntimeout_ms = 500\n")
            .unwrap()
            .inference
            .remote
            .unwrap();
        assert_eq!(r.version.as_deref(), Some("2"));
        assert_eq!(
            (r.timeout_ms, r.in_flight, r.fallback_local),
            (500, 8, true)
        );
    }

    #[test]
    fn every_remote_problem_is_listed_with_its_position() {
        let p = load(
            "backend = \"kserve\"\nendpoints = [\"http://h:1\", \"grpc://h\", \"grpc://h:2/x\"]\nmodel = \"\"\ntimeout_ms = 1\nin_flight = 0\nfallback = \"cloud\"\n",
        )
        .unwrap_err();
        assert_eq!(p.len(), 7, "{p:?}");
        assert!(p[0].starts_with("7:14: inference.endpoints: \"http://h:1\": expected grpc://"));
        assert!(p[1].starts_with("7:28: inference.endpoints: \"grpc://h\": no port"));
        assert!(p[2].starts_with(
            "7:40: inference.endpoints: \"grpc://h:2/x\": expected grpc://host:port with no path"
        ));
        assert!(p[3].starts_with("8:9: inference.model is empty"));
        assert!(p[4].starts_with("9:14: inference.timeout_ms must be"));
        assert!(p[5].starts_with("10:13: inference.in_flight must be"));
        assert!(p[6].starts_with("11:12: inference.fallback = \"cloud\""));
    }

    #[test]
    fn kserve_without_endpoints_or_model_is_refused() {
        let p = load("backend = \"kserve\"\n").unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("6:11: backend = \"kserve\" needs inference.endpoints"));
        assert!(p[1].starts_with("6:11: backend = \"kserve\" needs inference.model"));
    }

    #[test]
    fn remote_keys_with_local_backend_are_flagged() {
        let p = load("endpoints = [\"grpc://h:1\"]\n").unwrap_err();
        assert_eq!(
            p,
            ["6:13: inference.endpoints is only used with backend = \"kserve\""]
        );
        let p = load("backend = \"triton\"\n").unwrap_err();
        assert!(
            p[0].starts_with("6:11: inference.backend = \"triton\""),
            "{p:?}"
        );
    }

    #[test]
    fn keys_the_chosen_backend_ignores_are_refused_at_their_position() {
        let e = load("timeout_ms = 500\nin_flight = 2\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].ends_with("inference.timeout_ms is only used with backend = \"kserve\""));
        assert!(e[1].ends_with("inference.in_flight is only used with backend = \"kserve\""));
        let kserve = "backend = \"kserve\"\nendpoints = [\"grpc://h:1\"]\nmodel = \"m\"\n";
        let e = load(&format!(
            "{kserve}device = \"CPU\"\nhint = \"LATENCY\"\nprecision = \"f32\"\n\
             requests = 2\nstreams = \"auto\"\n"
        ))
        .unwrap_err();
        let keys: Vec<&str> = e
            .iter()
            .map(|l| {
                l.split("inference.")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            keys,
            ["device", "hint", "precision", "requests", "streams"],
            "{e:?}"
        );
        assert!(e.iter().all(|l| !l.starts_with("0:0")), "{e:?}");
        // With the local fallback they configure it, and defaults are never refused.
        assert!(
            load(&format!(
                "{kserve}fallback = \"local\"\nhint = \"LATENCY\"\nrequests = 2\n"
            ))
            .is_ok()
        );
        assert!(load(kserve).is_ok());
    }
}
