//! The API's query strings as a network peer sends them: the routes' parameters with any
//! values (and unknown, repeated or mangled ones), through the real router on a real
//! database. Every answer is 200 with JSON, 400 with `{"error"}` or 404; never a panic or a
//! 500.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use storetrack::api::{ApiState, router};
use storetrack::stats::Stats;
use storetrack::store::Store;
use tower::ServiceExt;

const PATHS: &[&str] = &[
    "/api/v1/tracks",
    "/api/v1/summary",
    "/api/v1/cameras",
    "/api/v1/tracks/1/points",
    "/api/v1/tracks/-1/points",
    "/api/v1/tracks/99999999999999999999/points",
];
const KEYS: &[&str] = &[
    "camera",
    "from",
    "to",
    "min_points",
    "limit",
    "cursor",
    "zone",
    "",
];

/// Percent-encodes every byte but unreserved ones.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-5i64..1100).prop_map(|n| n.to_string()),
        "[0-9]{1,25}(y|d|h|m|s|ms)?",
        "[0-9]{1,16}\\.[0-9]{1,16}",
        ".{0,30}",
        Just("9999-12-31T23:59:59.999Z".to_string()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec((prop::sample::select(KEYS), param_value()), 0..6).prop_map(|kv| {
            kv.iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        }),
        "[ -~]{0,60}".prop_map(|s| s.replace([' ', '#'], "%20")),
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    app: axum::Router,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    Store::open(&db)
        .unwrap()
        .connection()
        .execute_batch(
            "INSERT INTO cameras VALUES ('cam1', 'c', 'rtsp://x', 0);
             INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES ('cam1', 1, 5, 2, 1);
             INSERT INTO points(track, ts_ms, x, y, w, h, score) VALUES (1, 1, 1, 2, 3, 4, 0.5), (1, 5, 1, 2, 3, 4, 0.5);",
        )
        .unwrap();
    let state = ApiState::new(Arc::new(Stats::new(0)), db, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Fixture {
        _dir: dir,
        app: router(Arc::new(state)),
        rt,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_query_string_is_answered_or_refused(path in prop::sample::select(PATHS), q in query()) {
        thread_local!(static FIXTURE: Fixture = fixture());
        let uri = format!("{path}?{q}");
        let Ok(req) = Request::builder().uri(&uri).body(Body::empty()) else {
            return Ok(()); // not a URI: hyper would refuse it before routing
        };
        let (status, body) = FIXTURE.with(|f| {
            f.rt.block_on(async {
                let resp = f.app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
                (status, body)
            })
        });
        prop_assert!(
            matches!(status, StatusCode::OK | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
            "{uri}: {status} {}", String::from_utf8_lossy(&body)
        );
        if !body.is_empty() {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                TestCaseError::fail(format!("{uri}: {e}: {}", String::from_utf8_lossy(&body)))
            })?;
            if status != StatusCode::OK {
                prop_assert!(v["error"].is_string(), "{uri}: {v}");
            }
        }
    }
}
