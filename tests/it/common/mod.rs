//! Shared helpers for the integration tests: paths of the real model and video produced by
//! `scripts/setup.sh`, config files written into a temporary folder, the binary (a command, a
//! service run in the background or in this process for a while, a query as JSON), two
//! simulated cameras, one camera streaming through the real ingest alone, free ports and
//! read-only connections and the figures read from them.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use storetrack::infer::ModelDescription;
use storetrack::ingest::queue::{FrameSource, frame_queues};
use storetrack::ingest::{self, CameraTask, Template};
use storetrack::simcam::SimCam;
use storetrack::stats::Stats;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample video prepared by setup. Panics (fails the test) if setup has not run: these
/// tests exercise the real chain and must not pass vacuously.
pub fn video() -> PathBuf {
    let v = root().join("data/vtest.mp4");
    assert!(v.is_file(), "{} missing: run scripts/setup.sh", v.display());
    v
}

/// Makes the OpenVINO runtime from the project's venv findable when the caller did not source
/// `.venv/storetrack.env` (plain `cargo test` after setup). The openvino crate's finder reads
/// `LD_LIBRARY_PATH` itself, and child processes inherit it. Panics (fails the test) if setup
/// has not run.
pub fn openvino_env() {
    set_openvino_path();
    let libs = root().join(".venv/openvino-libs");
    assert!(
        libs.is_dir(),
        "{} missing: run scripts/setup.sh",
        libs.display()
    );
}

/// The environment change of [`openvino_env`], made once per process (nothing when setup has
/// not made the folder); `tests/it` makes it before `main`.
pub fn set_openvino_path() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let libs = root().join(".venv/openvino-libs");
        if !libs.is_dir() {
            return;
        }
        let current = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
        let already = std::env::split_paths(&current).any(|p| p == libs);
        if !already {
            let joined =
                std::env::join_paths(std::iter::once(libs).chain(std::env::split_paths(&current)))
                    .unwrap();
            // SAFETY: called once per test binary, before OpenVINO is loaded or any child is
            // spawned; in `tests/it` before `main` (its `INIT`), so no other thread exists.
            unsafe { std::env::set_var("LD_LIBRARY_PATH", joined) };
        }
    });
}

/// A config with the given camera URLs, the real model and pipeline, and a database in `dir`.
pub fn write_config(dir: &Path, urls: &[String], extra: &str) -> PathBuf {
    let mut cameras = String::new();
    for (i, u) in urls.iter().enumerate() {
        cameras += &format!("[[cameras]]\nid = \"cam{}\"\nurl = \"{u}\"\n\n", i + 1);
    }
    write_config_from(dir, &cameras, "retry_interval_ms = 500\n", extra)
}

/// `dir/config.toml` from its parts: the `[[cameras]]` tables, lines added to `[ingest]` after
/// its pipeline, and `extra` sections at the end; the real model and pipeline, the database
/// `dir/tracks.db` flushed every 500 ms.
pub fn write_config_from(dir: &Path, cameras: &str, ingest: &str, extra: &str) -> PathBuf {
    let r = root();
    let text = format!(
        "{cameras}[model]\ndescription = \"{}\"\n\n[ingest]\npipeline = \"{}\"\n{ingest}\n\
         [storage]\ndb = \"{}\"\nflush_interval_ms = 500\n\n{extra}",
        r.join("models/ssdlite.toml").display(),
        r.join("pipelines/camera.pipeline").display(),
        dir.join("tracks.db").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A config with the given camera URLs and the camera template edited by `edit` (written to
/// `dir/camera.pipeline`; it panics if `edit` changed nothing), `ingest` lines added to
/// `[ingest]`.
pub fn config_with_template(
    dir: &Path,
    urls: &[String],
    edit: impl Fn(&str) -> String,
    ingest: &str,
) -> storetrack::Config {
    let shipped = std::fs::read_to_string(root().join("pipelines/camera.pipeline")).unwrap();
    let edited = edit(&shipped);
    assert_ne!(
        edited, shipped,
        "the template changed: the edit no longer applies"
    );
    let template = dir.join("camera.pipeline");
    std::fs::write(&template, edited).unwrap();
    let path = write_config(dir, urls, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            &root()
                .join("pipelines/camera.pipeline")
                .display()
                .to_string(),
            &template.display().to_string(),
        )
        .replace("[ingest]\n", &format!("[ingest]\n{ingest}"));
    std::fs::write(&path, text).unwrap();
    storetrack::Config::load(&path).unwrap()
}

/// A run's frame counts on one line (for a test's output).
pub fn frame_counts(c: &storetrack::stats::Snapshot) -> String {
    format!(
        "decoded {}, not decoded {} ({} shed, {} damaged), inferred {}, packets lost {}",
        c.decoded, c.undecoded, c.shed, c.damaged, c.inferred, c.packets_lost
    )
}

/// The service run in this process on `cfg` for `seconds`: its summary.
pub fn run_for(cfg: &storetrack::Config, seconds: u64) -> storetrack::Summary {
    let opts = storetrack::RunOptions {
        duration: Some(Duration::from_secs(seconds)),
        ..Default::default()
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    storetrack::run(cfg, &opts, stop).unwrap()
}

/// The `storetrack` binary run with `args` (warnings and errors logged only).
pub fn storetrack(args: &[&str]) -> Output {
    openvino_env();
    Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(args)
        .env("STORETRACK_LOG", "warn")
        .output()
        .unwrap()
}

/// `storetrack run -c CFG --progress 0s EXTRA...` in the background, its log (info) into `log`.
pub fn spawn_run(cfg: &Path, log: &Path, extra: &[&str]) -> Child {
    openvino_env();
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(["run", "-c", cfg.to_str().unwrap(), "--progress", "0s"])
        .args(extra)
        .env("STORETRACK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// `storetrack query --db DB --format json ARGS...` as JSON.
pub fn query_json(db: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(["query", "--db", db.to_str().unwrap(), "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One integer from `sql`.
pub fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The first column of every row of `sql`, as integers (ids).
pub fn ids(c: &Connection, sql: &str) -> Vec<i64> {
    c.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The sample video served as two RTSP cameras, `cam1` and `cam2`, on a free port.
pub fn two_cameras() -> SimCam {
    let video = video();
    SimCam::start(
        "127.0.0.1",
        0,
        &[("cam1".into(), video.clone()), ("cam2".into(), video)],
    )
    .unwrap()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A read-only connection to `db` that waits up to 5 s for the writer; None when it cannot be
/// opened (not created yet).
pub fn try_read_only(db: &Path) -> Option<Connection> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    Some(c)
}

pub mod clip;
pub mod kserve;

/// The first camera of `cfg` streaming through the real ingest (no detector): its frames go
/// into a queue of `capacity` nobody reads. Stop it with [`LoneCamera::stop`].
pub struct LoneCamera {
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    source: FrameSource,
}

impl LoneCamera {
    pub fn start(cfg: &storetrack::Config, capacity: usize) -> Self {
        let input = ModelDescription::load(&cfg.model.description)
            .unwrap()
            .input_spec();
        let (mut senders, source) = frame_queues(1, capacity);
        let stats = Arc::new(Stats::new(1));
        let stop = Arc::default();
        let thread = ingest::spawn(CameraTask {
            index: 0,
            camera: cfg.cameras[0].clone(),
            ingest: cfg.ingest.clone(),
            template: Template::load(&cfg.ingest.pipeline).unwrap(),
            input,
            decoder_threads: 1,
            frames: senders.remove(0),
            stats: stats.camera(0),
            stop: Arc::clone(&stop),
            resume_after_ms: None,
        })
        .unwrap();
        Self {
            stats,
            stop,
            thread,
            source,
        }
    }

    /// Stops the camera and waits for its thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        drop(self.source);
    }
}
