//! Webhooks (a real HTTP server on a std listener checks each signature and fails the first
//! requests) and the API's event stream (a real HTTP client resumes with `Last-Event-ID`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rusqlite::Connection;
use sha2::Sha256;
use storetrack::api::{ApiState, Server};
use storetrack::config::{ApiConfig, WebhookConfig};
use storetrack::events::{EventsMetrics, Senders};
use storetrack::stats::Stats;

use super::{events_config, insert, n_of, new_db};

const SECRET: &str = "whsec-test-key";
const TOKEN: &str = "sse-t0ken";
/// The data routes' deadlines in the SSE tests.
const DATA_DEADLINE: Duration = Duration::from_secs(1);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver: answers 500 to the first `fail_first` requests, then 200; records
/// every request.
fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            // One request per connection is enough: answers say Connection: close.
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut log = seen.lock().unwrap();
            log.push(Received {
                headers,
                body: String::from_utf8(body).unwrap(),
            });
            let status = if log.len() <= fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            drop(log);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, log)
}

/// The signature checked as a receiver would, with its own HMAC.
fn signature_ok(r: &Received) -> bool {
    let (Some(ts), Some(sig)) = (
        r.header("X-Storetrack-Timestamp"),
        r.header("X-Storetrack-Signature"),
    ) else {
        return false;
    };
    let Some(hex) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", r.body).as_bytes());
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let fresh = ts
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(storetrack_now_s()) < 300);
    fresh && mac.verify_slice(&bytes).is_ok()
}

fn storetrack_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `/metrics` of an API showing the senders' figures: webhook `all` delivered rows 6..=60
/// after 3 failures, the 5 rows lost to retention counted, nothing left.
fn check_metrics(db: &std::path::Path, metrics: &Arc<EventsMetrics>) {
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
        token_env: None,
        hosts: vec![],
        tls: None,
    };
    let state = ApiState::new(Arc::new(Stats::new(0)), db.to_path_buf(), None)
        .with_events(Arc::clone(metrics));
    let server = Server::start(&cfg, state).unwrap();
    let text = ureq::get(format!("http://{}/metrics", server.local_addr()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    server.stop();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, sink: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("sink") == Some(sink))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name}{{sink={sink}}} missing: {text}"))
    };
    assert_eq!(
        value("storetrack_events_failures_total", "webhook:all"),
        3.0
    );
    assert_eq!(
        value("storetrack_events_delivered_total", "webhook:all"),
        55.0
    );
    assert_eq!(
        value("storetrack_events_skipped_total", "webhook:all"),
        5.0,
        "retention"
    );
    assert_eq!(value("storetrack_events_backlog", "webhook:all"), 0.0);
    assert_eq!(value("storetrack_events_connected", "webhook:all"), 1.0);
    assert_eq!(
        value("storetrack_events_delivered_total", "webhook:alerts"),
        6.0
    );
}

/// Settings with webhook `all` (every kind, signed) and `alerts` (alerts only, unsigned).
fn two_webhooks(all_url: &str, alerts_url: &str) -> storetrack::config::EventsConfig {
    let mut cfg = events_config(None);
    cfg.webhooks = vec![
        WebhookConfig {
            id: "all".into(),
            url: all_url.parse().unwrap(),
            kinds: vec![],
            secret: Some(SECRET.into()),
        },
        WebhookConfig {
            id: "alerts".into(),
            url: alerts_url.parse().unwrap(),
            kinds: vec!["alert".into()],
            secret: None,
        },
    ];
    cfg
}

/// Webhook `all` got 3 failed attempts of row 6, then rows 6..=60 once each, in order, each
/// signed, with its event id in a header.
fn check_all_hook(all: &[Received]) {
    assert_eq!(
        all.len(),
        3 + 55,
        "3 failed attempts, then rows 6..=60 once each"
    );
    // The failed first attempts were of row 6, retried with the same body.
    for r in &all[..4] {
        assert_eq!(n_of(&r.body), 6);
    }
    let order: Vec<i64> = all[3..].iter().map(|r| n_of(&r.body)).collect();
    assert_eq!(order, (6..=60).collect::<Vec<_>>());
    for r in all {
        assert!(signature_ok(r), "bad signature: {r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(r.header("X-Storetrack-Event-Id"), v["event_id"].as_str());
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
}

#[test]
fn webhooks_retry_in_order_signed_and_filtered_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let conn = Connection::open(&db).unwrap();
    for n in 1..=40 {
        insert(&conn, n);
    }
    // Retention deleted the first 5 rows before the webhook got them.
    conn.execute_batch(
        "INSERT INTO outbox_cursors VALUES ('webhook:all', 0, 0);
         INSERT INTO outbox_cursors VALUES ('webhook:alerts', 0, 0);
         DELETE FROM events_outbox WHERE seq <= 5;",
    )
    .unwrap();
    let (all_url, all_log) = receiver(3);
    let (alerts_url, alerts_log) = receiver(0);
    let cfg = two_webhooks(&all_url, &alerts_url);
    let metrics = Arc::new(EventsMetrics::default());
    let senders = Senders::start(&cfg, &db, &metrics).unwrap();
    for n in 41..=60 {
        insert(&conn, n);
        std::thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered =
        |log: &Mutex<Vec<Received>>, fails: usize| log.lock().unwrap().len().saturating_sub(fails);
    while delivered(&all_log, 3) < 55 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    senders.stop();

    let all = all_log.lock().unwrap().clone();
    check_all_hook(&all);
    let alerts: Vec<i64> = alerts_log
        .lock()
        .unwrap()
        .iter()
        .map(|r| n_of(&r.body))
        .collect();
    let expected: Vec<i64> = (6..=60)
        .filter(|n| storetrack::events::KINDS[*n as usize % 8] == "alert")
        .collect();
    assert_eq!(alerts, expected);
    assert!(
        alerts_log
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.header("X-Storetrack-Signature").is_none())
    );
    check_metrics(&db, &metrics);
    let cursors: Vec<i64> = conn
        .prepare("SELECT seq FROM outbox_cursors WHERE sink LIKE 'webhook:%' ORDER BY sink")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(cursors, [60, 60], "both cursors at the last row");
}

fn start_api(db: &std::path::Path) -> Server {
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        token_env: Some("T".into()),
        hosts: vec![],
        tls: None,
    };
    let mut state = ApiState::new(
        Arc::new(Stats::new(0)),
        db.to_path_buf(),
        Some(TOKEN.into()),
    );
    // Data answers get 1 s in all; an event stream must outlive that.
    state.limits.data_body_deadline = DATA_DEADLINE;
    state.limits.data_timeout = DATA_DEADLINE;
    Server::start(&cfg, state).unwrap()
}

/// Opens the stream (`last` as Last-Event-ID); (status, reader).
fn open(
    base: &str,
    query: &str,
    last: Option<i64>,
    token: Option<&str>,
) -> (u16, Box<dyn BufRead>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = agent.get(format!("{base}/api/v1/events{query}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(l) = last {
        req = req.header("Last-Event-ID", l.to_string());
    }
    let resp = req.call().unwrap();
    let status = resp.status().as_u16();
    (
        status,
        Box::new(BufReader::new(resp.into_body().into_reader())),
    )
}

/// The next `count` events: (id, n).
fn read_events(r: &mut dyn BufRead, count: usize) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut id = None;
    let mut line = String::new();
    while out.len() < count {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        let l = line.trim_end();
        if let Some(v) = l.strip_prefix("id:") {
            id = Some(v.trim().parse::<i64>().unwrap());
        } else if let Some(d) = l.strip_prefix("data:") {
            out.push((id.take().expect("id before data"), n_of(d.trim())));
        }
    }
    out
}

#[test]
fn sse_streams_resumes_filters_and_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let conn = Connection::open(&db).unwrap();
    for n in 1..=5 {
        insert(&conn, n);
    }
    let server = start_api(&db);
    let base = format!("http://{}", server.local_addr());
    let (status, _) = open(&base, "", None, None);
    assert_eq!(status, 401, "no token");
    let (status, _) = open(&base, "?kinds=nope", None, Some(TOKEN));
    assert_eq!(status, 400, "unknown kind");

    // From the start (Last-Event-ID 0), then live.
    let (status, mut s) = open(&base, "", Some(0), Some(TOKEN));
    assert_eq!(status, 200);
    assert_eq!(
        read_events(&mut *s, 5),
        (1..=5).map(|n| (n, n)).collect::<Vec<_>>()
    );
    std::thread::sleep(DATA_DEADLINE * 3);
    for n in 6..=10 {
        insert(&conn, n);
    }
    assert_eq!(
        read_events(&mut *s, 5),
        (6..=10).map(|n| (n, n)).collect::<Vec<_>>()
    );
    drop(s);

    // Resume after 7: only the rest, then what comes next.
    let (_, mut s) = open(&base, "", Some(7), Some(TOKEN));
    insert(&conn, 11);
    assert_eq!(
        read_events(&mut *s, 4),
        [(8, 8), (9, 9), (10, 10), (11, 11)]
    );
    drop(s);

    // Without Last-Event-ID: only new events; with kinds: only those.
    let (_, mut s) = open(&base, "?kinds=zone_enter,alert", None, Some(TOKEN));
    std::thread::sleep(Duration::from_millis(500));
    for n in 12..=30 {
        insert(&conn, n);
    }
    let got = read_events(&mut *s, 4);
    let kinds = storetrack::events::KINDS;
    assert_eq!(
        got.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        (12..=30)
            .filter(|n| ["zone_enter", "alert"].contains(&kinds[*n as usize % 8]))
            .take(4)
            .collect::<Vec<_>>()
    );
    drop(s);
    server.stop();
}

#[test]
fn sse_clients_are_bounded_apart_from_data_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path());
    let server = start_api(&db);
    let base = format!("http://{}", server.local_addr());
    let mut open_streams = Vec::new();
    for _ in 0..storetrack::api::sse::MAX_SSE_CLIENTS {
        let (status, s) = open(&base, "", None, Some(TOKEN));
        assert_eq!(status, 200);
        open_streams.push(s);
    }
    let (status, _) = open(&base, "", None, Some(TOKEN));
    assert_eq!(status, 503, "one stream too many");
    // Data requests still have their own budget.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .get(format!("{base}/readyz"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        503,
        "answered (not ready: no cameras)"
    );
    // A client leaving frees its slot (when the connection closes: the next heartbeat at most).
    open_streams.pop();
    let deadline = Instant::now() + storetrack::api::sse::HEARTBEAT + Duration::from_secs(5);
    loop {
        let (status, s) = open(&base, "", None, Some(TOKEN));
        if status == 200 {
            drop(s);
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(500));
    }
    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "open streams end at stop"
    );
}
