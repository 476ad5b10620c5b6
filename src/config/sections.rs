//! Checks of the plain sections of a config: `[model]` (with, when asked, the files it names),
//! `[inference]`'s device and hint, `[ingest]` and `[storage]`. Every number has a lower and an
//! upper bound, so that no later arithmetic on it (deadlines, backoff) can overflow.
//!
//! Input: the raw sections with spans. Output: the typed sections; problems in [`Problems`].

use std::path::{Path, PathBuf};

use super::raw::{RawIngest, RawModel, RawStorage};
use super::validate::Problems;
use super::{Checks, IngestConfig, ModelConfig, StorageConfig};
use crate::infer::ModelDescription;

const PROTOCOLS: &[&str] = &["tcp", "udp", "tcp+udp", "udp+tcp"];
/// 100 years: more is a typo.
const MAX_KEEP_DAYS: u32 = 36_500;
/// A smaller cap would be filled by one WAL's worth of data and make retention thrash.
const MIN_MAX_SIZE_MB: u64 = 16;
/// 1 PiB: more is a typo.
const MAX_MAX_SIZE_MB: u64 = 1 << 30;
/// Longest jitter buffer (rtspsrc `latency`).
const MAX_LATENCY_MS: u32 = 60_000;
/// Longest first wait before a reconnection.
const MAX_RETRY_INTERVAL_MS: u64 = 3_600_000;
/// Longest wait between reconnections.
const MAX_RETRY_MAX_MS: u64 = 86_400_000;
/// Longest a camera may send nothing before its pipeline is rebuilt.
const MAX_STALL_TIMEOUT_MS: u64 = 3_600_000;

/// `[model]`; with [`Checks::Files`], the description must load and the IR it (or `ir`)
/// names must exist with its weights, when the local engine may run (`local_engine`).
pub(super) fn model(
    m: &RawModel,
    resolve: &dyn Fn(&str) -> PathBuf,
    (checks, local_engine): (Checks, bool),
    p: &mut Problems<'_>,
) -> ModelConfig {
    let score = *m.score_threshold.get_ref();
    if !(0.0..=1.0).contains(&score) || score.is_nan() {
        p.at(
            &m.score_threshold,
            format!("model.score_threshold = {score}: must be between 0 and 1"),
        );
    }
    let cfg = ModelConfig {
        description: resolve(m.description.get_ref()),
        ir: m.ir.as_ref().map(|s| resolve(s.get_ref())),
        score_threshold: score,
        person_class: m.person_class,
    };
    if checks == Checks::Files {
        match ModelDescription::load(&cfg.description) {
            Err(e) => p.at(&m.description, format!("model.description: {e}")),
            Ok(d) if local_engine => {
                let ir = cfg.ir.clone().unwrap_or(d.ir);
                let missing = [ir.clone(), ir.with_extension("bin")]
                    .into_iter()
                    .find(|f| !f.is_file());
                if let Some(file) = missing {
                    let at = m.ir.as_ref().unwrap_or(&m.description);
                    p.at(
                        at,
                        format!("model: {} is missing: run scripts/setup.sh", file.display()),
                    );
                }
            }
            Ok(_) => {}
        }
    }
    cfg
}

/// `[ingest]` (but `decode` and `detect_fps`, checked with the cameras).
pub(super) fn ingest(
    ing: &RawIngest,
    resolve: &dyn Fn(&str) -> PathBuf,
    p: &mut Problems<'_>,
) -> IngestConfig {
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
    if *ing.latency_ms.get_ref() > MAX_LATENCY_MS {
        p.at(
            &ing.latency_ms,
            format!("ingest.latency_ms must be from 0 to {MAX_LATENCY_MS}"),
        );
    }
    let (retry, retry_max) = (
        *ing.retry_interval_ms.get_ref(),
        *ing.retry_max_ms.get_ref(),
    );
    if !(100..=MAX_RETRY_INTERVAL_MS).contains(&retry) {
        p.at(
            &ing.retry_interval_ms,
            format!("ingest.retry_interval_ms must be from 100 to {MAX_RETRY_INTERVAL_MS}"),
        );
    }
    if !(retry..=MAX_RETRY_MAX_MS).contains(&retry_max) {
        p.at(
            &ing.retry_max_ms,
            format!(
                "ingest.retry_max_ms must be from ingest.retry_interval_ms to {MAX_RETRY_MAX_MS}"
            ),
        );
    }
    if !(1_000..=MAX_STALL_TIMEOUT_MS).contains(ing.stall_timeout_ms.get_ref()) {
        p.at(
            &ing.stall_timeout_ms,
            format!("ingest.stall_timeout_ms must be from 1000 to {MAX_STALL_TIMEOUT_MS}"),
        );
    }
    let idle = *ing.idle_interval_ms.get_ref();
    if idle != 0 && !(500..=60_000).contains(&idle) {
        p.at(
            &ing.idle_interval_ms,
            "ingest.idle_interval_ms must be 0 (off) or from 500 to 60000".to_string(),
        );
    }
    IngestConfig {
        pipeline: resolve(ing.pipeline.get_ref()),
        latency_ms: *ing.latency_ms.get_ref(),
        protocols,
        queue_frames: *ing.queue_frames.get_ref(),
        retry_interval_ms: retry,
        retry_max_ms: retry_max,
        stall_timeout_ms: *ing.stall_timeout_ms.get_ref(),
        idle_interval_ms: idle,
    }
}

/// `[storage]`.
pub(super) fn storage(
    st: &RawStorage,
    resolve: &dyn Fn(&str) -> PathBuf,
    p: &mut Problems<'_>,
) -> StorageConfig {
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
    StorageConfig {
        db: resolve(st.db.get_ref()),
        flush_interval_ms: *st.flush_interval_ms.get_ref(),
        keep_days: *st.keep_days.get_ref(),
        max_size_mb: mb,
    }
}

/// Resolves a config path against `base` (absolute paths stay as they are).
pub(super) fn resolver(base: &Path) -> impl Fn(&str) -> PathBuf + '_ {
    move |s: &str| {
        let pb = PathBuf::from(s);
        if pb.is_absolute() { pb } else { base.join(pb) }
    }
}
