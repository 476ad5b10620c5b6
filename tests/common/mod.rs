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
/// `.venv/storetrack.env` (plain `cargo test` after setup).
pub fn openvino_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("OPENVINO_INSTALL_DIR").is_none() {
            let libs = root().join(".venv/openvino-libs");
            assert!(
                libs.is_dir(),
                "{} missing: run scripts/setup.sh",
                libs.display()
            );
            // SAFETY: called once, before any thread of this test binary reads the environment
            // through OpenVINO.
            unsafe { std::env::set_var("OPENVINO_INSTALL_DIR", libs) };
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
