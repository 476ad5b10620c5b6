//! The HTTP API and the notify protocol on the real chain: two simulated RTSP cameras and one
//! unreachable camera whose URL carries credentials (given through `${NAME}`) run through the
//! real model; `/metrics` is fetched twice with a real HTTP client and parsed as Prometheus
//! exposition; `/healthz`, `/readyz`, `/api/v1/*` are asked; a test socket plays the service
//! manager. No credential may appear in any answer, in the metrics or in the database.

use crate::common;
#[path = "api/limits.rs"]
mod limits;
mod throttle;

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use storetrack::RunOptions;
use storetrack::api::{ApiState, Server};
use storetrack::config::{ApiConfig, Config};
use storetrack::notify::NotifyTarget;
use storetrack::stats::Stats;

const PASSWORD: &str = "hunter2pw";
const TOKEN: &str = "s3cr3tT0k";
/// Nothing listens on port 1: this camera fails and is retried.
const DEAD_URL: &str = "rtsp://viewer:${CAM3_PW}@127.0.0.1:1/none?channel=1&token=${CAM3_TOKEN}";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// (status, body) of a GET.
fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

fn no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, TOKEN] {
        assert!(
            !text.contains(secret),
            "{what} contains a credential: {text}"
        );
    }
}

/// Per (metric, camera) value of every counter and gauge; histogram sample counts.
fn parse_metrics(text: &str) -> HashMap<(String, String), f64> {
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        assert!(
            series.starts_with("storetrack_"),
            "unprefixed series: {line}"
        );
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut out = HashMap::new();
    for s in scrape.samples {
        for key in s.labels.keys() {
            assert!(
                key == "camera" || key == "le",
                "label {key} on {}",
                s.metric
            );
        }
        let cam = s.labels.get("camera").unwrap_or("").to_string();
        let v = match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => continue,
        };
        out.insert((s.metric, cam), v);
    }
    out
}

fn metric(m: &HashMap<(String, String), f64>, name: &str, cam: &str) -> f64 {
    *m.get(&(name.to_string(), cam.to_string()))
        .unwrap_or_else(|| panic!("no {name}{{camera={cam:?}}} in {:?}", m.keys()))
}

#[test]
fn metrics_health_and_queries_while_two_cameras_run() {
    common::openvino_env();
    let sim = common::two_cameras();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::write_config(
        dir.path(),
        &[sim.url("cam1"), sim.url("cam2"), DEAD_URL.to_string()],
        "[api]\nlisten = \"127.0.0.1:0\"\n",
    );
    let env = |name: &str| match name {
        "CAM3_PW" => Some(PASSWORD.to_string()),
        "CAM3_TOKEN" => Some(TOKEN.to_string()),
        _ => None,
    };
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    let cfg = Config::from_str_with_env(&text, &cfg_path, &env).unwrap();
    assert_eq!(cfg.cameras[2].url.password(), Some(PASSWORD));

    let sock_path = dir.path().join("notify.sock");
    // The service manager: collects notifications until STOPPING (or a minute of silence).
    let manager = UnixDatagram::bind(&sock_path).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let listener = std::thread::spawn(move || {
        let mut heard = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = manager.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let last = msg.starts_with("STOPPING=1");
            heard.push(msg);
            if last {
                break;
            }
        }
        heard
    });
    let (bound_tx, bound_rx) = crossbeam_channel::bounded(1);
    let opts = RunOptions {
        duration: Some(Duration::from_secs(60)),
        progress: None,
        notify: Some(NotifyTarget {
            socket: sock_path.display().to_string(),
            watchdog: Some(Duration::from_millis(600)),
        }),
        api_bound: Some(bound_tx),
        ..Default::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let run_stop = Arc::clone(&stop);
    let service = std::thread::spawn(move || storetrack::run(&cfg, &opts, run_stop));
    let addr = bound_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let base = format!("http://{addr}");
    let http = agent();

    assert_eq!(
        get(&http, &format!("{base}/healthz"), None),
        (200, "ok\n".into())
    );
    // Ready once the model is loaded, the database writable and a camera streams.
    let t0 = Instant::now();
    let ready = loop {
        let (code, body) = get(&http, &format!("{base}/readyz"), None);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if code == 200 && v["cameras_up"] == 2 {
            break v;
        }
        assert_eq!(code == 200, v["ready"] == true, "{body}");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "never ready: {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(ready["cameras"], 3);
    assert_eq!(ready["model_loaded"], true);
    assert_eq!(ready["database_writable"], true);

    let (code, first) = get(&http, &format!("{base}/metrics"), None);
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_secs(3));
    let (_, second) = get(&http, &format!("{base}/metrics"), None);
    no_secret("/metrics", &second);
    let (m1, m2) = (parse_metrics(&first), parse_metrics(&second));
    for cam in ["cam1", "cam2"] {
        for counter in [
            "storetrack_camera_frames_decoded_total",
            "storetrack_camera_frames_inferred_total",
        ] {
            assert!(
                metric(&m2, counter, cam) > metric(&m1, counter, cam),
                "{counter} of {cam} did not rise"
            );
        }
        assert_eq!(metric(&m2, "storetrack_camera_up", cam), 1.0);
        assert!(metric(&m2, "storetrack_camera_analysed_fps", cam) > 3.0);
        assert!(metric(&m2, "storetrack_camera_frame_age_seconds", cam) > 0.0);
        metric(&m2, "storetrack_camera_frames_dropped_total", cam);
        assert_eq!(metric(&m2, "storetrack_camera_panics_total", cam), 0.0);
    }
    assert_eq!(metric(&m2, "storetrack_camera_up", "cam3"), 0.0);
    assert!(metric(&m2, "storetrack_camera_reconnects_total", "cam3") >= 1.0);
    assert!(metric(&m2, "storetrack_inference_latency_seconds", "") > 0.0);
    assert!(metric(&m2, "storetrack_db_frames_written_total", "") > 0.0);
    assert!(metric(&m2, "storetrack_db_size_bytes", "") > 0.0);
    metric(&m2, "storetrack_db_points_written_total", "");
    metric(&m2, "storetrack_db_write_lag_seconds", "");

    let (code, body) = get(&http, &format!("{base}/api/v1/cameras"), None);
    assert_eq!(code, 200);
    no_secret("/api/v1/cameras", &body);
    let cams: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cams[0]["state"], "up");
    assert_eq!(cams[2]["state"], "down");
    assert!(cams[2]["last_error"].as_str().is_some(), "{body}");
    assert_eq!(
        cams[2]["url"],
        "rtsp://viewer:***@127.0.0.1:1/none?channel=1&token=***"
    );

    let (code, body) = get(&http, &format!("{base}/api/v1/summary?from=1h"), None);
    assert_eq!(code, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 3);
    assert!(summary[0]["frames"].as_i64().unwrap() > 0, "{body}");
    let (code, body) = get(
        &http,
        &format!("{base}/api/v1/tracks?camera=cam1&limit=3"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tracks = &page["items"];
    assert!(tracks.as_array().unwrap().len() <= 3);
    if let Some(id) = tracks[0]["track"].as_i64() {
        let (code, body) = get(&http, &format!("{base}/api/v1/tracks/{id}/points"), None);
        assert_eq!(code, 200);
        let pts: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(pts["items"][0]["ts_ms"].as_i64().is_some(), "{body}");
    }
    // The CLI's validation: a time it does not understand, an unknown or mistyped parameter.
    for bad in [
        "tracks?from=yesterday-ish",
        "tracks?cmera=cam1",
        "tracks?limit=many",
        "tracks/x/points",
    ] {
        let (code, body) = get(&http, &format!("{base}/api/v1/{bad}"), None);
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string());
    }

    stop.store(true, Ordering::Relaxed);
    let summary = service.join().unwrap().unwrap();

    // The service manager heard: ready, watchdog pings, a status line, stopping.
    let heard = listener.join().unwrap();
    assert!(
        heard[0].starts_with("READY=1\nSTATUS=cameras "),
        "{heard:?}"
    );
    let pings = heard.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 5, "{pings} watchdog pings: {heard:?}");
    assert!(
        heard.iter().any(|m| m.starts_with("STATUS=cameras 2/3 up")),
        "{heard:?}"
    );
    assert!(heard.last().unwrap().starts_with("STOPPING=1"), "{heard:?}");

    // The database holds no credential and is readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&summary.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let db = rusqlite::Connection::open(&summary.db).unwrap();
    let urls: Vec<String> = db
        .prepare("SELECT url FROM cameras")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    no_secret("cameras.url", &urls.join(" "));
}

/// A server on a free loopback port asking for the bearer token `letmein`, with no cameras and
/// no database yet (in `dir`).
fn server_with_token(dir: &std::path::Path) -> Server {
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some("letmein".into()),
        token_env: Some("T".into()),
        hosts: Vec::new(),
        tls: None,
    };
    let stats = Arc::new(Stats::new(0));
    let state = ApiState::new(stats, dir.join("none.db"), cfg.token.clone());
    Server::start(&cfg, state).unwrap()
}

#[test]
fn a_configured_token_is_required_except_for_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_token(dir.path());
    let addr = server.local_addr();
    let base = format!("http://{addr}");
    let http = agent();
    assert_eq!(get(&http, &format!("{base}/healthz"), None).0, 200);
    assert_eq!(get(&http, &format!("{base}/metrics"), None).0, 401);
    assert_eq!(get(&http, &format!("{base}/metrics"), Some("wrong")).0, 401);
    assert_eq!(
        get(&http, &format!("{base}/metrics"), Some("letmein")).0,
        200
    );
    // No camera up: not ready. No database yet: a query is "not found", not a crash.
    assert_eq!(
        get(&http, &format!("{base}/readyz"), Some("letmein")).0,
        503
    );
    let (code, body) = get(&http, &format!("{base}/api/v1/summary"), Some("letmein"));
    assert_eq!(code, 404, "{body}");
    server.stop();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after stop"
    );
}
