//! The HTTP API's bounds on a real server over a real SQLite file (no cameras): pages of at
//! most 1000 rows walked with cursors, deadlines that stop the query, the Host check, the
//! request body limit, idle connections closed, the connection cap, HTTPS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use storetrack::api::{ApiState, Limits, Server};
use storetrack::config::ApiConfig;
use storetrack::stats::Stats;
use storetrack::store::Store;

use super::{agent, get};

/// Tracks in the fixture (three share each first time, so cursors must break ties by id).
const TRACKS: i64 = 2500;
/// Points of track 1.
const POINTS: i64 = 2500;

/// A database with `TRACKS` ended tracks of `cam1`, track 1 with `POINTS` points, and
/// `cameras` more cameras (each one a subquery of `summary`: many make it slow).
fn fixture(dir: &Path, cameras: i64) -> std::path::PathBuf {
    let path = dir.join("t.db");
    let store = Store::open(&path).unwrap();
    store
        .connection()
        .execute_batch(&format!(
            "BEGIN;
             INSERT INTO cameras VALUES ('cam1', 'c', 'rtsp://x', 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {cameras})
             INSERT INTO cameras SELECT 'x' || i, 'x', 'rtsp://x', 0 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {TRACKS})
             INSERT INTO tracks(id, camera, first_ms, last_ms, points, ended)
               SELECT i, 'cam1', 1000 * (i / 3), 1000 * (i / 3) + 500, 1, 1 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {POINTS})
             INSERT INTO points(track, ts_ms, x, y, w, h, score) SELECT 1, i, 1, 2, 3, 4, 0.9 FROM n;
             UPDATE tracks SET points = {POINTS} WHERE id = 1;
             COMMIT;"
        ))
        .unwrap();
    path
}

fn start(db: &Path, limits: Limits, hosts: &[&str]) -> (Server, Arc<storetrack::api::ApiCounters>) {
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
        token_env: None,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        tls: None,
    };
    let mut state = ApiState::new(Arc::new(Stats::new(0)), db.to_path_buf(), None);
    state.limits = limits;
    let counters = Arc::clone(&state.counters);
    (Server::start(&cfg, state).unwrap(), counters)
}

/// Sends `request` on a new connection and reads until the server closes it or 10 s pass;
/// the status code.
fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// `limit=-1` (SQLite's "no limit") or a huge limit loaded every row into the service.
#[test]
fn pages_hold_at_most_1000_rows_and_cursors_walk_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), 0);
    let (server, _) = start(&db, Limits::default(), &[]);
    let base = format!("http://{}/api/v1", server.local_addr());
    let http = agent();
    for bad in ["-1", "0", "1001", "99999999999"] {
        let (code, body) = get(&http, &format!("{base}/tracks?limit={bad}"), None);
        assert_eq!(code, 400, "limit={bad}: {body}");
    }
    for bad in [
        "tracks?cursor=nope",
        "tracks?cursor=1.x",
        "tracks/1/points?cursor=3.5",
    ] {
        assert_eq!(get(&http, &format!("{base}/{bad}"), None).0, 400, "{bad}");
    }
    let mut seen = Vec::new();
    let mut url = format!("{base}/tracks?limit=1000");
    let mut pages = 0;
    loop {
        let (code, body) = get(&http, &url, None);
        assert_eq!(code, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1000);
        seen.extend(items.iter().map(|t| t["track"].as_i64().unwrap()));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => url = format!("{base}/tracks?limit=1000&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<i64> = (1..=TRACKS).rev().collect();
    assert_eq!(seen, want, "every track once, newest first");
    let (_, body) = get(&http, &format!("{base}/tracks"), None);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 50, "default page");
    let mut ts = Vec::new();
    let mut url = format!("{base}/tracks/1/points");
    loop {
        let (code, body) = get(&http, &url, None);
        assert_eq!(code, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        ts.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["ts_ms"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => url = format!("{base}/tracks/1/points?cursor={next}"),
            None => break,
        }
    }
    assert_eq!(ts, (1..=POINTS).collect::<Vec<_>>());
    server.stop();
}

/// A query ran on for as long as it took, with nobody waiting for it; requests had no
/// deadline at all.
#[test]
fn a_request_past_its_deadline_is_refused_and_its_query_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), 200_000);
    let limits = Limits {
        data_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (server, counters) = start(&db, limits, &[]);
    let base = format!("http://{}", server.local_addr());
    let http = agent();
    let t0 = Instant::now();
    let (code, _) = get(&http, &format!("{base}/api/v1/summary"), None);
    assert_eq!(code, 503);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // The query was interrupted, not left running: the next request gets a query thread.
    let t1 = Instant::now();
    while counters.queries_cancelled.load(Ordering::Relaxed) < 1 {
        assert!(t1.elapsed() < Duration::from_secs(5), "query not cancelled");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Health does not wait for data.
    assert_eq!(get(&http, &format!("{base}/healthz"), None).0, 200);
    server.stop();
}

/// A client that leaves: its query is stopped at once, not run to its end.
#[test]
fn the_query_of_a_client_that_leaves_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), 200_000);
    let (server, counters) = start(&db, Limits::default(), &[]);
    let addr = server.local_addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    let t0 = Instant::now();
    while counters.queries_cancelled.load(Ordering::Relaxed) < 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "query went on after the client left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
}

/// No Host check (DNS rebinding: a page of another site resolving to this box) and no limit
/// on request bodies.
#[test]
fn foreign_host_names_and_request_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), 0);
    let (server, _) = start(&db, Limits::default(), &["box.store.lan"]);
    let addr = server.local_addr();
    let req = |host: &str| {
        format!("GET /api/v1/cameras HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    assert_eq!(raw(addr, &req("evil.example:9464")), "421");
    assert_eq!(raw(addr, &req("127.0.0.1.evil.example")), "421");
    assert_eq!(raw(addr, &req("box.store.lan:9464")), "200");
    assert_eq!(raw(addr, &req(&addr.to_string())), "200");
    assert_eq!(raw(addr, &req("localhost")), "200");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n{}",
        "x".repeat(100_000)
    );
    assert_eq!(raw(addr, &big), "413");
    server.stop();
}

/// Connections that never send a request stayed open for ever, and there was no limit on
/// how many.
#[test]
fn idle_connections_are_closed_and_counted_against_a_cap() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), 0);
    let limits = Limits {
        header_read_timeout: Duration::from_millis(1500),
        max_connections: 4,
        ..Limits::default()
    };
    let (server, counters) = start(&db, limits, &[]);
    let addr = server.local_addr();
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let t0 = Instant::now();
    while counters.connections.load(Ordering::Relaxed) < 4 {
        assert!(t0.elapsed() < Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(10));
    }
    // A fifth is closed at once.
    let mut fifth = TcpStream::connect(addr).unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(fifth.read(&mut [0u8; 16]).unwrap_or(0), 0, "not closed");
    assert_eq!(counters.connections_refused.load(Ordering::Relaxed), 1);
    // The idle ones (one sending half a request) are closed after the header timeout.
    let mut trickle = idle;
    trickle[0].write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    for s in &mut trickle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.read(&mut [0u8; 512]);
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    server.stop();
}

/// HTTPS with a certificate and key from files (rustls); a plain HTTP client gets nothing.
#[test]
fn https_serves_with_the_configured_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), 0);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some("letmein".into()),
        token_env: Some("T".into()),
        hosts: Vec::new(),
        tls: Some(storetrack::config::TlsFiles {
            cert: cert_path,
            key: key_path,
        }),
    };
    let state = ApiState::new(Arc::new(Stats::new(0)), db, cfg.token.clone());
    let server = Server::start(&cfg, state).unwrap();
    let addr = server.local_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async move {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(
            b"GET /api/v1/cameras HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer letmein\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("[]"), "{answer}");
    // Plain HTTP on the TLS port is not answered.
    assert_eq!(
        raw(addr, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ""
    );
    server.stop();
}
