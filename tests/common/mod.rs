//! Shared helpers for the integration tests: paths of the real model and video produced by
//! `scripts/setup.sh`, and config files written into a temporary folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
/// `LD_LIBRARY_PATH` itself, and child processes inherit it.
pub fn openvino_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let libs = root().join(".venv/openvino-libs");
        assert!(
            libs.is_dir(),
            "{} missing: run scripts/setup.sh",
            libs.display()
        );
        let current = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
        let already = std::env::split_paths(&current).any(|p| p == libs);
        if !already {
            let joined =
                std::env::join_paths(std::iter::once(libs).chain(std::env::split_paths(&current)))
                    .unwrap();
            // SAFETY: called once per test binary, before OpenVINO is loaded or any child is
            // spawned; no other thread of ours reads the environment concurrently.
            unsafe { std::env::set_var("LD_LIBRARY_PATH", joined) };
        }
    });
}

/// A config with the given camera URLs, the real model and pipeline, and a database in `dir`.
pub fn write_config(dir: &Path, urls: &[String], extra: &str) -> PathBuf {
    let r = root();
    let mut text = String::new();
    for (i, u) in urls.iter().enumerate() {
        text += &format!("[[cameras]]\nid = \"cam{}\"\nurl = \"{u}\"\n\n", i + 1);
    }
    text += &format!(
        "[model]\ndescription = \"{}\"\n\n[ingest]\npipeline = \"{}\"\nretry_interval_ms = 500\n\n[storage]\ndb = \"{}\"\nflush_interval_ms = 500\n\n{extra}",
        r.join("models/ssdlite.toml").display(),
        r.join("pipelines/camera.pipeline").display(),
        dir.join("tracks.db").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub mod clip;
pub mod kserve;
