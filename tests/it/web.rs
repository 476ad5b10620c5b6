//! The web page in a real browser: the real service (real model, two simulated RTSP cameras, the
//! repository's demo calibration, floor and zones) runs with `[api] allow_setup = true`, and
//! `tests/it/web/web_test.py` drives it in two headless browsers through Selenium: Debian's
//! chromium with its chromium-driver, then Debian's firefox-esr with geckodriver (crates.io);
//! it fails, never skips, when they are missing. See that script for the checks: no console
//! error, cameras and zones shown with figures that change, boxes on the Camera page, live
//! positions on the Floor, a zone drawn in Setup reaching the config file and `/api/v1/zones`
//! after the reload, counting lines drawn in Setup reaching the config file and
//! `/api/v1/lines`, a calibration of four clicked point pairs giving the expected homography;
//! then, with a token, nothing but the login page without it.
//! `STORETRACK_WEB_SHOTS=docs/web` makes the script save a screenshot of each page.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use storetrack::simcam::SimCam;

/// Model load, RTSP connection and the first analysed frames.
const START_TIMEOUT: Duration = Duration::from_secs(90);
const TOKEN: &str = "web-test-token-5f3a";

struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(cfg: &Path, token: bool) -> Service {
        let log = cfg.with_extension("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_storetrack"));
        cmd.args(["run", "-c", cfg.to_str().unwrap()])
            .env("STORETRACK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if token {
            cmd.env("WEB_TEST_TOKEN", TOKEN);
        }
        Service {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's config.toml with the cameras at `sim`, the model and pipeline by absolute
/// path, the database in `dir` and the API on `port` (setup allowed; a token when asked).
fn config(dir: &Path, sim: &SimCam, port: u16, token: bool) -> PathBuf {
    let root = common::root();
    let mut text = std::fs::read_to_string(root.join("config.toml")).unwrap();
    for cam in ["cam1", "cam2"] {
        text = text.replace(&format!("rtsp://127.0.0.1:8554/{cam}"), &sim.url(cam));
    }
    text = text
        .replace(
            "\"models/ssdlite.toml\"",
            &format!("\"{}\"", root.join("models/ssdlite.toml").display()),
        )
        .replace(
            "\"pipelines/camera.pipeline\"",
            &format!("\"{}\"", root.join("pipelines/camera.pipeline").display()),
        )
        .replace("listen = \"127.0.0.1:9464\"", &{
            let mut api = format!("listen = \"127.0.0.1:{port}\"\nallow_setup = true");
            if token {
                api += "\ntoken_env = \"WEB_TEST_TOKEN\"";
            }
            api
        });
    assert!(
        text.contains("allow_setup = true"),
        "config.toml's [api] changed"
    );
    text += "\n[privacy]\nblur_people = false\n";
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits until both cameras have analysed frames (`/api/v1/cameras`, with the token if any).
fn wait_running(svc: &Service, port: u16, token: bool) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let t0 = Instant::now();
    loop {
        let mut req = agent.get(&format!("http://127.0.0.1:{port}/api/v1/cameras"));
        if token {
            req = req.header("Authorization", &format!("Bearer {TOKEN}"));
        }
        let body = req
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let analysed = list.as_array().map_or(0, |l| {
            l.iter()
                .filter(|c| c["frames_inferred"].as_u64() > Some(20))
                .count()
        });
        if analysed == 2 {
            return;
        }
        assert!(
            t0.elapsed() < START_TIMEOUT,
            "cameras not analysed within {START_TIMEOUT:?}: {}",
            svc.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs the browser script; panics with its output when a check fails.
fn browser(args: &[&str]) {
    let python = common::root().join(".venv/bin/python");
    let script = common::root().join("tests/it/web/web_test.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", python.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "browser checks failed:\n{text}");
    assert!(text.contains("all checks passed"), "{text}");
}

#[test]
fn web_page_in_a_real_browser() {
    common::openvino_env();
    let video = common::video();
    let mounts: Vec<(String, _)> = ["cam1", "cam2"]
        .iter()
        .map(|m| (m.to_string(), video.clone()))
        .collect();
    let sim = SimCam::start("127.0.0.1", 0, &mounts).unwrap();
    for browser_name in ["chromium", "firefox"] {
        in_browser(&sim, browser_name);
    }
}

/// Both modes of the script in one browser, each against a service of its own (a fresh copy
/// of the config: the main mode edits it).
fn in_browser(sim: &SimCam, browser_name: &str) {
    let (_dir, cfg, svc, url) = serve(sim, false);
    browser(&[
        "--browser",
        browser_name,
        "--url",
        &url,
        "--mode",
        "main",
        "--config",
        cfg.to_str().unwrap(),
        "--zones",
        "West path,Centre,East plaza",
    ]);
    assert!(svc.log().contains("Reload applied"), "{}", svc.log());
    assert!(
        svc.log().contains("rules swapped in") && svc.log().contains("line:web-line"),
        "the analytics stage swaps the saved lines in at the reload: {}",
        svc.log()
    );
    // The saved file loads as check-config loads it.
    storetrack::Config::load(&cfg).unwrap();
    drop(svc);

    let (_dir, _cfg, svc, url) = serve(sim, true);
    browser(&[
        "--browser",
        browser_name,
        "--url",
        &url,
        "--mode",
        "login",
        "--token",
        TOKEN,
    ]);
    drop(svc);
}

/// A service on a fresh copy of the config (with the token or without) in a directory of its
/// own, running: the directory (kept while the service runs), the config's path, the service
/// and its URL.
fn serve(sim: &SimCam, token: bool) -> (tempfile::TempDir, PathBuf, Service, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), sim, port, token);
    let svc = Service::start(&cfg, token);
    wait_running(&svc, port, token);
    (dir, cfg, svc, format!("http://127.0.0.1:{port}"))
}
