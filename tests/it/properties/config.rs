//! Config files as a user writes them: documents built from every section and key (with
//! values of any type and size, `${NAME}` references, control characters) and arbitrary text.
//! Loading never panics; a refusal lists problems with positions inside the file; a value from
//! the environment never appears in a message; the read commands' lenient load never panics
//! either.

use std::path::Path;

use proptest::prelude::*;
use storetrack::config::{Config, ConfigError, ReadConfig};

/// What every `${NAME}` stands for: it must never be echoed.
const SECRET: &str = "Zx9-SECRET-VALUE";

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "[[cameras]]",
        &[
            "id",
            "name",
            "url",
            "detect_fps",
            "decode",
            "homography",
            "pipeline",
            "calibration",
        ],
    ),
    (
        "[model]",
        &["description", "ir", "score_threshold", "person_class"],
    ),
    (
        "[inference]",
        &[
            "device",
            "hint",
            "requests",
            "streams",
            "runtime",
            "backend",
            "endpoints",
            "model",
            "version",
            "timeout_ms",
            "in_flight",
            "fallback",
        ],
    ),
    (
        "[ingest]",
        &[
            "pipeline",
            "latency_ms",
            "protocols",
            "queue_frames",
            "retry_interval_ms",
            "retry_max_ms",
            "stall_timeout_ms",
            "detect_fps",
            "decode",
        ],
    ),
    (
        "[tracker]",
        &[
            "high_score",
            "low_score",
            "new_track_score",
            "match_iou",
            "low_match_iou",
            "tentative_match_iou",
            "confirm_hits",
            "max_lost_ms",
            "last_seen_max_speed",
            "predict_ms",
        ],
    ),
    (
        "[storage]",
        &["db", "flush_interval_ms", "keep_days", "max_size_mb"],
    ),
    ("[floor]", &["width", "height", "plan", "scale", "origin"]),
    ("[[zones]]", &["id", "name", "polygon"]),
    (
        "[analytics]",
        &[
            "join_distance_m",
            "join_window_ms",
            "join_min_samples",
            "handoff_gap_ms",
            "handoff_speed_mps",
            "bin_ms",
            "min_dwell_ms",
            "exit_grace_ms",
            "member_timeout_ms",
        ],
    ),
    (
        "[api]",
        &[
            "listen",
            "token_env",
            "hosts",
            "tls_cert",
            "tls_key",
            "extra",
        ],
    ),
];

/// A TOML string literal of `s` (escaped).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out + "\""
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..100_000).prop_map(|n| n.to_string()),
        Just("18446744073709551615".to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        prop::sample::select(vec![
            "nan", "inf", "-inf", "1e308", "-0.0", "1e-320", "true", "false"
        ])
        .prop_map(str::to_string),
        ".{0,24}".prop_map(|s| quoted(&s)),
        prop::sample::select(vec![
            "rtsp://u:${PW}@127.0.0.1:8554/x?token=${T}",
            "rtsp://h/x",
            "grpc://a:${PW}@h:1",
            "grpc://h:9000",
            "${DB}",
            "$${literal",
            "${unterminated",
            "${1bad}",
            "127.0.0.1:0",
            "0.0.0.0:9464",
            "[::1]:80",
            "auto",
            "kserve",
            "keyframes",
            "CPU",
            "local",
        ])
        .prop_map(quoted),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..10).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => prop::collection::vec(prop::collection::vec(-1e4f64..1e4, 0..5), 0..6).prop_map(|rows| {
            let rows: Vec<String> = rows
                .iter()
                .map(|r| format!("[{}]", r.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")))
                .collect();
            format!("[{}]", rows.join(", "))
        }),
    ]
}

/// A document: sections in any order (tables may repeat: a TOML error), each with some of its
/// keys.
fn document() -> impl Strategy<Value = String> {
    let section = (0..SECTIONS.len()).prop_flat_map(|i| {
        let (header, keys) = SECTIONS[i];
        prop::collection::vec((prop::sample::select(keys.to_vec()), value()), 0..6).prop_map(
            move |kv| {
                let mut s = format!("{header}\n");
                for (k, v) in kv {
                    s += &format!("{k} = {v}\n");
                }
                s
            },
        )
    });
    prop::collection::vec(section, 0..8).prop_map(|s| s.join("\n"))
}

fn env(name: &str) -> Option<String> {
    (name != "UNSET").then(|| SECRET.to_string())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    match Config::from_str_with_env(text, Path::new("/etc/st/config.toml"), &env) {
        Ok(_) => {}
        Err(ConfigError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(p.line <= lines + 1, "{p:?} in {lines} lines");
                prop_assert!(!p.message.is_empty());
                prop_assert!(!p.message.contains(SECRET), "{p:?}");
            }
        }
        Err(e) => prop_assert!(false, "{e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_document_loads_or_is_refused_with_positions(doc in document()) {
        check(&doc)?;
        // The same after a valid camera, so the rest is validated too.
        check(&format!("[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/x\"\n\n{doc}"))?;
    }

    #[test]
    fn any_text_loads_or_is_refused(text in ".{0,300}") {
        check(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_lenient_load_of_any_document_never_panics(doc in document()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &doc).unwrap();
        let _ = ReadConfig::load(&path);
        let _ = Config::load(&path);
    }
}
