//! The API under load while the service analyses 8 cameras: the service binary runs 8
//! simulated RTSP cameras (`detect_fps` 2: the 2-core box keeps headroom, so a drop in
//! analysed frames means the API took CPU from detection) over a database with 20 days of
//! history; then 50 clients hammer `/api/v1` (maximal pages of tracks and points walked by
//! cursor, summaries, camera states) while 300 connections sit idle (reopened as the server
//! closes them). Measured in one run: analysed fps without load, with load, without load
//! again; `/healthz` latency during the load; the service's RSS. Prints the figures; asserts
//! fps within 5 % of the unloaded windows, `/healthz` p99 under 100 ms and RSS growth bounded.
//!
//! The load generator runs on the same 2 cores at nice 19 (on a real site the clients are
//! other machines); the `/healthz` prober at normal priority, as a monitor would see it.

#[path = "it/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use storetrack::simcam::SimCam;
use storetrack::store::Store;

const CAMERAS: usize = 8;
/// Analysed frames per second per camera: 16 in all, well within the box.
const DETECT_FPS: u32 = 2;
const CLIENTS: usize = 50;
const IDLE: usize = 300;
/// Length of each measuring window.
const WINDOW: Duration = Duration::from_secs(20);
const TOKEN: &str = "load-test-token";
/// Prefilled history: tracks, and tracks with many points (for maximal pages of points).
const HISTORY_TRACKS: i64 = 200_000;
const LONG_TRACKS: i64 = 100;
const LONG_POINTS: i64 = 3_000;

/// Kills the service if the test fails half-way.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// 20 days of history for the 8 cameras: tracks, long tracks with points, per-second rows.
fn prefill(db: &std::path::Path) {
    let store = Store::open(db).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - 20 * 86_400_000;
    let step = 20 * 86_400_000 / HISTORY_TRACKS;
    store
        .connection()
        .execute_batch(&format!(
            "BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CAMERAS})
             INSERT INTO cameras SELECT 'cam' || i, 'cam' || i, 'rtsp://x', 0 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {HISTORY_TRACKS})
             INSERT INTO tracks(camera, first_ms, last_ms, points, ended)
               SELECT 'cam' || (1 + i % {CAMERAS}), {start} + i * {step}, {start} + i * {step} + 8000,
                      CASE WHEN i <= {LONG_TRACKS} THEN {LONG_POINTS} ELSE 0 END, 1 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {LONG_TRACKS} * {LONG_POINTS} - 1)
             INSERT INTO points(track, ts_ms, x, y, w, h, score)
               SELECT 1 + i / {LONG_POINTS}, {start} + i, 10, 20, 30, 90, 0.8 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO frames_second SELECT 'cam' || (1 + i % {CAMERAS}), {start} / 1000 + i, 10, 0, 3, 12,
               {start} + i * 1000, {start} + i * 1000 + 900 FROM n;
             COMMIT;"
        ))
        .unwrap();
}

/// Sum of a per-camera counter in a `/metrics` text.
fn counter_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (status, body bytes) of a GET with the token.
fn get(agent: &ureq::Agent, url: &str) -> (u16, Vec<u8>) {
    match agent
        .get(url)
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call()
    {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body = r
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap_or_default();
            (status, body)
        }
        Err(_) => (0, Vec::new()),
    }
}

fn metrics(base: &str) -> String {
    String::from_utf8(get(&agent(), &format!("{base}/metrics")).1).unwrap()
}

/// Frames analysed per second over `window` (from `/metrics`).
fn analysed_fps(base: &str, window: Duration) -> f64 {
    let (t0, a) = (
        Instant::now(),
        counter_sum(&metrics(base), "storetrack_camera_frames_inferred_total"),
    );
    std::thread::sleep(window);
    let b = counter_sum(&metrics(base), "storetrack_camera_frames_inferred_total");
    (b - a) / t0.elapsed().as_secs_f64()
}

/// Resident memory of `pid` in MiB: (now, peak).
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

fn nice_this_thread() {
    // SAFETY: lowers the calling thread's own priority.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
}

/// What the clients did.
#[derive(Default)]
struct Load {
    requests: AtomicU64,
    ok: AtomicU64,
    unavailable: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    idle_reopened: AtomicU64,
}

/// One client: walks pages of tracks by cursor, pages of points, summaries and camera states,
/// one request after the other.
fn client(base: String, n: usize, stop: Arc<AtomicBool>, load: Arc<Load>) {
    nice_this_thread();
    let http = agent();
    let mut cursor: Option<String> = None;
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let url = match i % 10 {
            0..=3 => match &cursor {
                Some(c) => format!("{base}/api/v1/tracks?limit=1000&cursor={c}"),
                None => format!("{base}/api/v1/tracks?limit=1000"),
            },
            4 | 5 => format!(
                "{base}/api/v1/tracks?camera=cam{}&limit=1000&from=10d",
                1 + i % CAMERAS
            ),
            6 | 7 => format!(
                "{base}/api/v1/tracks/{}/points?limit=1000",
                1 + i as i64 % LONG_TRACKS
            ),
            8 => format!("{base}/api/v1/summary?from=1d"),
            _ => format!("{base}/api/v1/cameras"),
        };
        let (status, body) = get(&http, &url);
        load.requests.fetch_add(1, Ordering::Relaxed);
        load.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        match status {
            200 => {
                load.ok.fetch_add(1, Ordering::Relaxed);
                if i % 10 <= 3 {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    cursor = v["next"].as_str().map(str::to_string);
                }
            }
            503 => {
                load.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                load.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Keeps `IDLE` connections open that send nothing (half send an unfinished request line),
/// reopening those the server closes.
fn idle_connections(addr: SocketAddr, stop: Arc<AtomicBool>, load: Arc<Load>) {
    nice_this_thread();
    let open = |i: usize| {
        let mut s = TcpStream::connect(addr).ok()?;
        if i.is_multiple_of(2) {
            let _ = s.write_all(b"GET /api/v1/tracks HTTP/1.1\r\n");
        }
        s.set_nonblocking(true).ok()?;
        Some(s)
    };
    let mut conns: Vec<Option<TcpStream>> = (0..IDLE).map(open).collect();
    while !stop.load(Ordering::Relaxed) {
        for (i, c) in conns.iter_mut().enumerate() {
            let closed = match c {
                Some(s) => s.read(&mut [0u8; 256]).is_ok(),
                None => true,
            };
            if closed {
                *c = open(i);
                load.idle_reopened.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Times `/healthz` on one kept-alive connection every 20 ms; latencies in ms.
fn probe_health(base: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let http = agent();
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (status, _) = get(&http, &format!("{base}/healthz"));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        out.push(if status == 200 { ms } else { f64::INFINITY });
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn analysis_keeps_its_rate_and_health_stays_fast_while_the_api_is_hammered() {
    common::openvino_env();
    let video = common::video();
    let mounts: Vec<(String, std::path::PathBuf)> = (1..=CAMERAS)
        .map(|i| (format!("cam{i}"), video.clone()))
        .collect();
    let sim = SimCam::start("127.0.0.1", 0, &mounts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (1..=CAMERAS).map(|i| sim.url(&format!("cam{i}"))).collect();
    let port = common::free_port();
    let cfg = common::write_config(
        dir.path(),
        &urls,
        &format!("[api]\nlisten = \"127.0.0.1:{port}\"\ntoken_env = \"ST_LOAD_TOKEN\"\n"),
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[ingest]\n",
        &format!("[ingest]\ndetect_fps = {DETECT_FPS}\n"),
    );
    std::fs::write(&cfg, text).unwrap();
    let t_fill = Instant::now();
    prefill(&dir.path().join("tracks.db"));
    eprintln!(
        "prefill: {HISTORY_TRACKS} tracks, {} points in {:.1} s",
        LONG_TRACKS * LONG_POINTS,
        t_fill.elapsed().as_secs_f64()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args([
            "run",
            "-c",
            cfg.to_str().unwrap(),
            "--duration",
            "300s",
            "--progress",
            "0s",
        ])
        .env("STORETRACK_LOG", "warn")
        .env("ST_LOAD_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let service = Service(child);
    let pid = service.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Every camera analysed, then a few seconds to settle.
    let t0 = Instant::now();
    loop {
        let m = metrics(&base);
        let up = counter_sum(&m, "storetrack_camera_up");
        if up as usize == CAMERAS
            && counter_sum(&m, "storetrack_camera_frames_inferred_total") > 0.0
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "cameras never all up"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(5));

    let fps_before = analysed_fps(&base, WINDOW);
    let (rss_before, _) = rss_mib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());
    let mut threads = Vec::new();
    for n in 0..CLIENTS {
        let (b, s, l) = (base.clone(), Arc::clone(&stop), Arc::clone(&load));
        threads.push(std::thread::spawn(move || client(b, n, s, l)));
    }
    let (s, l) = (Arc::clone(&stop), Arc::clone(&load));
    threads.push(std::thread::spawn(move || idle_connections(addr, s, l)));
    std::thread::sleep(Duration::from_secs(3));
    let (b, s) = (base.clone(), Arc::clone(&stop));
    let prober = std::thread::spawn(move || probe_health(b, s));
    let rss_peak = Arc::new(AtomicU64::new(0));
    let (r, s) = (Arc::clone(&rss_peak), Arc::clone(&stop));
    let sampler = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let (now, _) = rss_mib(pid);
            r.fetch_max(now as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let requests_at = load.requests.load(Ordering::Relaxed);
    let t_load = Instant::now();
    let fps_loaded = analysed_fps(&base, WINDOW);
    let load_s = t_load.elapsed().as_secs_f64();
    let requests = load.requests.load(Ordering::Relaxed) - requests_at;
    let api_metrics = metrics(&base);
    stop.store(true, Ordering::Relaxed);
    let mut health = prober.join().unwrap();
    sampler.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let fps_after = analysed_fps(&base, WINDOW);
    let (rss_end, rss_hwm) = rss_mib(pid);
    drop(service);

    health.sort_by(f64::total_cmp);
    let unloaded = (fps_before + fps_after) / 2.0;
    let ratio = fps_loaded / unloaded;
    let p99 = percentile(&health, 0.99);
    let growth = rss_peak.load(Ordering::Relaxed) as f64 - rss_before;
    let gauge = |name: &str| -> f64 {
        api_metrics
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or(f64::NAN)
    };
    eprintln!(
        "load test ({CAMERAS} cameras at detect_fps {DETECT_FPS}, {CLIENTS} clients, {IDLE} idle connections, {}s windows):",
        WINDOW.as_secs()
    );
    eprintln!(
        "  analysed fps   before {fps_before:.2}, under load {fps_loaded:.2}, after {fps_after:.2}: loaded / unloaded = {ratio:.3}"
    );
    eprintln!(
        "  api            {requests} requests in {load_s:.1} s ({:.0}/s): {} ok, {} 503, {} other; {:.0} MB sent; {} idle connections closed by the server and reopened",
        requests as f64 / load_s,
        load.ok.load(Ordering::Relaxed),
        load.unavailable.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
        load.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        load.idle_reopened.load(Ordering::Relaxed),
    );
    eprintln!(
        "  server         connections open {:.0}, refused {:.0}, queries cancelled {:.0}",
        gauge("storetrack_api_connections"),
        gauge("storetrack_api_connections_refused_total"),
        gauge("storetrack_api_queries_cancelled_total"),
    );
    eprintln!(
        "  /healthz       {} probes: p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        health.len(),
        percentile(&health, 0.5),
        health.last().unwrap()
    );
    eprintln!(
        "  service RSS    before {rss_before:.0} MiB, peak under load {:.0} MiB (+{growth:.0}), end {rss_end:.0} MiB, high-water {rss_hwm:.0} MiB",
        rss_peak.load(Ordering::Relaxed)
    );
    assert!(
        fps_before > 0.8 * (CAMERAS as f64 * f64::from(DETECT_FPS)),
        "the box cannot even analyse without load: {fps_before:.2} fps"
    );
    assert!(
        ratio >= 0.95,
        "analysed fps fell by more than 5 % under API load: {ratio:.3}"
    );
    assert!(p99 < 100.0, "/healthz p99 {p99:.1} ms");
    assert!(load.ok.load(Ordering::Relaxed) > 0, "no request answered");
    assert!(growth < 200.0, "RSS grew by {growth:.0} MiB under load");
}
