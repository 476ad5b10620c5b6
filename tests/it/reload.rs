//! Hot reload through the real binary: the service runs cam1 and cam2 from simulated RTSP
//! cameras; the config is rewritten to cam1 and cam3 and `storetrack reload` signals it. cam3
//! must start, cam2 stop with its tracks ended, and cam1 keep streaming: its counter keeps
//! rising and a track open at the reload continues past it (not split). A config that does not
//! load is then refused (by `storetrack reload`, and by the service on a raw SIGHUP) and the
//! running cameras stay.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use storetrack::simcam::SimCam;

/// Model load, RTSP connection and first tracks.
const START_TIMEOUT: Duration = Duration::from_secs(90);

struct Service {
    child: Child,
    log: std::path::PathBuf,
}

impl Service {
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

fn config(dir: &Path, cams: &[(&str, String)], port: u16) -> std::path::PathBuf {
    let urls: Vec<String> = cams.iter().map(|(_, u)| u.clone()).collect();
    let extra = format!("[api]\nlisten = \"127.0.0.1:{port}\"\n");
    let path = common::write_config(dir, &urls, &extra);
    let mut text = std::fs::read_to_string(&path).unwrap();
    // write_config names them cam1, cam2, …: rename in two steps so names cannot collide.
    for i in 0..cams.len() {
        text = text.replacen(
            &format!("id = \"cam{}\"", i + 1),
            &format!("id = \"#{i}\""),
            1,
        );
    }
    for (i, (id, _)) in cams.iter().enumerate() {
        text = text.replacen(&format!("id = \"#{i}\""), &format!("id = \"{id}\""), 1);
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `frames_inferred` per camera from `/api/v1/cameras`.
fn inferred(port: u16) -> HashMap<String, u64> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let Ok(mut resp) = agent
        .get(&format!("http://127.0.0.1:{port}/api/v1/cameras"))
        .call()
    else {
        return HashMap::new();
    };
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    list.as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or("").to_string(),
                c["frames_inferred"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Ids of cam1's tracks open now with a point in the last 500 ms, as committed.
fn open_tracks(db: &Path, camera: &str, now_ms: i64) -> Vec<i64> {
    let Some(c) = common::try_read_only(db) else {
        return Vec::new();
    };
    let Ok(mut st) = c.prepare(
        "SELECT id FROM tracks WHERE camera = ?1 AND ended = 0 AND points >= 5 AND last_ms > ?2",
    ) else {
        return Vec::new();
    };
    st.query_map(rusqlite::params![camera, now_ms - 500], |r| r.get(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn wait_for(what: &str, svc: &Service, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < timeout,
            "{what} not within {timeout:?}: {}",
            svc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn storetrack(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn reload_adds_and_removes_cameras_without_touching_the_others() {
    common::openvino_env();
    let video = common::video();
    let mounts: Vec<(String, _)> = ["cam1", "cam2", "cam3"]
        .iter()
        .map(|m| (m.to_string(), video.clone()))
        .collect();
    let sim = SimCam::start("127.0.0.1", 0, &mounts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = config(
        dir.path(),
        &[("cam1", sim.url("cam1")), ("cam2", sim.url("cam2"))],
        port,
    );
    let db = dir.path().join("tracks.db");
    let log = dir.path().join("service.log");
    let child = Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(["run", "-c", cfg.to_str().unwrap(), "--progress", "0s"])
        .env("STORETRACK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let svc = Service { child, log };

    // People in view of cam1: a moment when reloading would split its tracks.
    let mut open_at_reload = Vec::new();
    wait_for("two open tracks on cam1", &svc, START_TIMEOUT, || {
        open_at_reload = open_tracks(&db, "cam1", wall_ms());
        open_at_reload.len() >= 2 && inferred(port).get("cam2").is_some_and(|n| *n > 0)
    });
    let before = inferred(port);
    assert_eq!(before.len(), 2, "{before:?}");

    config(
        dir.path(),
        &[("cam1", sim.url("cam1")), ("cam3", sim.url("cam3"))],
        port,
    );
    let t_reload = Instant::now();
    let reload_ms = wall_ms();
    let out = storetrack(&["reload", "-c", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("pid {}", svc.child.id())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut after = HashMap::new();
    wait_for("cam3 analysed", &svc, Duration::from_secs(30), || {
        after = inferred(port);
        after.get("cam3").is_some_and(|n| *n > 0)
    });
    let first_frame = t_reload.elapsed();
    assert!(!after.contains_key("cam2"), "cam2 still listed: {after:?}");
    assert!(svc.log().contains("Reload applied"), "{}", svc.log());
    // cam1 keeps going: its counter never restarted.
    std::thread::sleep(Duration::from_secs(3));
    let later = inferred(port);
    assert!(
        later["cam1"] > after["cam1"] && after["cam1"] > before["cam1"],
        "cam1: {} -> {} -> {}",
        before["cam1"],
        after["cam1"],
        later["cam1"]
    );
    eprintln!(
        "reload: cam3's first analysed frame {} ms after the signal; cam1 {} -> {} -> {}",
        first_frame.as_millis(),
        before["cam1"],
        after["cam1"],
        later["cam1"]
    );

    // A config that does not load: `storetrack reload` refuses it and does not signal; a raw
    // SIGHUP makes the service refuse it and keep its cameras.
    std::fs::write(&cfg, "[[cameras]]\nid = \n").unwrap();
    let out = storetrack(&["reload", "-c", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml"), "{err}");
    // SAFETY: kill(2) on our own child with SIGHUP.
    assert_eq!(
        unsafe { libc::kill(svc.child.id() as i32, libc::SIGHUP) },
        0
    );
    wait_for("the refusal logged", &svc, Duration::from_secs(10), || {
        svc.log().contains("Reload refused")
    });
    let still = inferred(port);
    assert_eq!(
        still.keys().collect::<std::collections::BTreeSet<_>>(),
        ["cam1", "cam3"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter()
            .collect(),
    );

    // Stop in order (SIGTERM) so the last points are flushed, then read the database.
    // SAFETY: kill(2) on our own child with SIGTERM.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) };
    let mut svc = svc;
    let status = svc.child.wait().unwrap();
    assert!(status.success(), "{}", svc.log());
    drop(sim);
    let c = common::try_read_only(&db).unwrap();
    let continued: i64 = c
        .query_row(
            &format!(
                "SELECT COUNT(*) FROM tracks WHERE camera = 'cam1' AND id IN ({}) AND last_ms > ?1",
                open_at_reload
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            [reload_ms + first_frame.as_millis() as i64 + 1000],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        continued >= 1,
        "none of cam1's tracks open at the reload ({open_at_reload:?}) continued past it"
    );
    let cam2_open: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM tracks WHERE camera = 'cam2' AND ended = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cam2_open, 0, "cam2's tracks were not ended");
    let cam3_points: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM points p JOIN tracks t ON t.id = p.track WHERE t.camera = 'cam3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(cam3_points > 0, "cam3 stored no points");
}
