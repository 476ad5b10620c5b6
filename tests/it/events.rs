//! Event delivery on real parts: a real `mosquitto` broker on a free port (its own config in a
//! temp folder), the library's senders over a real SQLite file whose outbox rows the test
//! inserts while they run, `mosquitto_sub` as the subscriber, a real HTTP server receiving
//! webhooks, and the real HTTP API's event stream read by a real HTTP client.
//!
//! MQTT: every row arrives, in order, duplicates only with the same `event_id`, across a
//! 15 s broker outage with rows inserted all along; the retained status is `online` while the
//! sender runs, `offline` after a clean stop and — through the last will — after `kill -9`;
//! a backlog of 100,000 rows left by an outage drains at the broker's pace (`drain`).

#[path = "events/drain.rs"]
mod drain;
#[path = "events/mqtts.rs"]
mod mqtts;
#[path = "events/webhook_sse.rs"]
mod webhook_sse;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use storetrack::config::{EventsConfig, MqttConfig};
use storetrack::events::{EventsMetrics, KINDS, Senders};
use storetrack::store::Store;

/// Site of the tests' topics.
const SITE: &str = "t1";

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A database with the current schema (outbox empty).
pub fn new_db(dir: &Path) -> PathBuf {
    let path = dir.join("events.db");
    drop(Store::open(&path).unwrap());
    path
}

/// Inserts outbox row number `n` (kinds in turn); returns its event id.
pub fn insert(conn: &Connection, n: i64) -> String {
    let kind = KINDS[n as usize % KINDS.len()];
    let id = format!("{n:032x}");
    let ts = 1_700_000_000_000 + n * 100;
    let json = format!(r#"{{"v":1,"event_id":"{id}","ts_ms":{ts},"kind":"{kind}","n":{n}}}"#);
    conn.execute(
        "INSERT INTO events_outbox (event_id, kind, ts_ms, written_ms, json) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, kind, ts, ts, json],
    )
    .unwrap();
    id
}

/// `n` of an event's JSON.
pub fn n_of(json: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["n"].as_i64().unwrap()
}

/// Settings with fast retries.
pub fn events_config(mqtt_port: Option<u16>) -> EventsConfig {
    EventsConfig {
        site: SITE.into(),
        mqtt: mqtt_port.map(|port| MqttConfig {
            url: format!("mqtt://127.0.0.1:{port}").parse().unwrap(),
            tls: false,
            host: "127.0.0.1".into(),
            port,
            user: None,
            password: None,
            ca: None,
        }),
        webhooks: Vec::new(),
        retry_initial_ms: 100,
        retry_max_ms: 1_000,
        timeout_ms: 2_000,
    }
}

/// A mosquitto broker of the test's own.
pub struct Broker {
    /// Its port on 127.0.0.1.
    pub port: u16,
    conf: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts mosquitto on a free port, keeping its sessions in `dir` across restarts.
    pub fn start(dir: &Path) -> Broker {
        Self::start_with(dir, "allow_anonymous true\n")
    }

    /// Starts mosquitto with `settings` (TLS files, authentication) after its listener line.
    /// Started as root it would become the `mosquitto` user, which can neither read the
    /// temp folder's files nor save its sessions there: `user root` keeps it as it is (the
    /// setting is ignored when the tests do not run as root). Its log goes to
    /// `mosquitto.log` beside its config.
    fn start_with(dir: &Path, settings: &str) -> Broker {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{settings}persistence true\npersistence_location {}/\n\
                 log_dest stderr\nuser root\n",
                dir.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            port,
            conf,
            child: None,
        };
        b.restart();
        b
    }

    /// Starts it again on the same port with the same persistence.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.conf.with_extension("log"))
            .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it as an operator would (SIGTERM: sessions saved).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: a signal to our own child process.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            c.wait().unwrap();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One message as the subscriber printed it.
pub type Line = (String, String, Instant);

/// `mosquitto_sub -v` with a persistent session: (topic, payload, arrival) as they arrive.
pub struct Subscriber {
    child: Child,
    lines: Receiver<Line>,
}

impl Subscriber {
    /// Subscribes to `topic` on the broker at `port` in the persistent session `id`.
    pub fn start(port: u16, topic: &str, id: &str) -> Subscriber {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        Self::spawn(cmd, topic, id)
    }

    /// `cmd` (mosquitto_sub with its connection options) subscribed to `topic` with QoS 1
    /// in a persistent session `id`.
    fn spawn(mut cmd: Command, topic: &str, id: &str) -> Subscriber {
        let mut child = cmd
            .args(["-q", "1", "-c", "-i", id, "-v", "-t", topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (scripts/setup.sh installs mosquitto-clients)");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let (t, p) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                if tx
                    .send((t.to_string(), p.to_string(), Instant::now()))
                    .is_err()
                {
                    break;
                }
            }
        });
        Subscriber { child, lines }
    }

    /// The next line within `wait`.
    pub fn next(&self, wait: Duration) -> Option<Line> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Waits for `payload` on `topic`.
    fn wait_for(&self, topic: &str, payload: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some((t, p, _)) if t == topic && p == payload => return true,
                Some(_) => {}
                None => return false,
            }
        }
        false
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The retained message of `topic`, as a new subscriber gets it.
fn retained(port: u16, topic: &str) -> String {
    let out = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-C",
            "1",
            "-W",
            "5",
        ])
        .args(["-t", topic])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Inserts a row every `every` on its own connection until told to stop; returns the
/// insert times.
fn inserter(
    db: &Path,
    every: Duration,
    stop: Arc<Mutex<bool>>,
) -> std::thread::JoinHandle<Vec<Instant>> {
    let db = db.to_path_buf();
    std::thread::spawn(move || {
        let conn = Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut times = Vec::new();
        let mut n = 1;
        while !*stop.lock().unwrap() {
            insert(&conn, n);
            times.push(Instant::now());
            n += 1;
            std::thread::sleep(every);
        }
        times
    })
}

/// After a clean stop: the cursor saved at the last row, the retained status `offline`.
fn check_stopped(db: &Path, total: i64, port: u16) {
    let cursor: i64 = Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT seq FROM outbox_cursors WHERE sink = 'mqtt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cursor, total, "cursor saved at the last acknowledged row");
    assert_eq!(
        retained(port, &format!("storetrack/{SITE}/status")),
        "offline",
        "clean stop"
    );
}

/// What the subscriber got of events 1..=total.
struct Got {
    /// Events seen.
    seen: HashSet<i64>,
    /// Events in the order of their first arrival.
    order: Vec<i64>,
    /// Arrivals of an event seen before.
    dups: usize,
    /// `online` statuses (the first one counted before).
    onlines: usize,
    /// From the broker's restart to the arrival of event `last_during`.
    caught_up: Option<Duration>,
}

/// Reads the subscriber until all `total` events came (60 s at most), checking topics.
fn collect(sub: &Subscriber, total: i64, (last_during, restart): (i64, Instant)) -> Got {
    let status = format!("storetrack/{SITE}/status");
    let mut got = Got {
        seen: HashSet::new(),
        order: Vec::new(),
        dups: 0,
        onlines: 1,
        caught_up: None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while (got.seen.len() as i64) < total && Instant::now() < deadline {
        let Some((topic, payload, at)) = sub.next(Duration::from_secs(1)) else {
            continue;
        };
        if topic == status {
            got.onlines += usize::from(payload == "online");
            continue;
        }
        let n = n_of(&payload);
        if n == last_during && got.caught_up.is_none() {
            got.caught_up = Some(at.duration_since(restart));
        }
        let kind = KINDS[n as usize % KINDS.len()];
        assert_eq!(topic, format!("storetrack/{SITE}/events/{kind}"));
        if got.seen.insert(n) {
            got.order.push(n);
        } else {
            got.dups += 1;
        }
    }
    got
}

#[test]
fn mqtt_delivers_every_event_in_order_across_a_broker_outage() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("storetrack=info")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let db = new_db(dir.path());
    let sub = Subscriber::start(
        broker.port,
        &format!("storetrack/{SITE}/#"),
        "test-sub-outage",
    );
    let metrics = EventsMetrics::default();
    let senders = Senders::start(&events_config(Some(broker.port)), &db, &metrics).unwrap();
    let status = format!("storetrack/{SITE}/status");
    assert!(
        sub.wait_for(&status, "online", Duration::from_secs(10)),
        "no online status"
    );

    let stop = Arc::new(Mutex::new(false));
    let writer = inserter(&db, Duration::from_millis(20), Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(5));
    broker.stop();
    let outage_start = Instant::now();
    std::thread::sleep(Duration::from_secs(15));
    broker.restart();
    let outage_end = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    *stop.lock().unwrap() = true;
    let times = writer.join().unwrap();
    let total = times.len() as i64;
    let during = times
        .iter()
        .filter(|t| **t >= outage_start && **t < outage_end)
        .count();
    // The last event written during the outage (n counts from 1).
    let last_during = times.iter().rposition(|t| *t < outage_end).unwrap() as i64 + 1;
    let got = collect(&sub, total, (last_during, outage_end));
    let (seen, order, dups, onlines, caught_up) =
        (got.seen, got.order, got.dups, got.onlines, got.caught_up);
    let sink = &metrics.sinks()[0];
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        seen.len() as i64,
        total,
        "events missing (sender: delivered {}, cursor {}, failures {})",
        load(&sink.delivered),
        sink.cursor.load(std::sync::atomic::Ordering::Relaxed),
        load(&sink.failures)
    );
    assert_eq!(order, (1..=total).collect::<Vec<_>>(), "not in order");
    assert!(onlines >= 2, "online again after the outage: {onlines}");
    eprintln!(
        "broker outage 15 s: {total} events inserted ({during} during the outage), all \
         {total} delivered in order, {dups} duplicates (same event_id); the outage's events \
         caught up {:.2} s after the broker came back",
        caught_up.unwrap_or_default().as_secs_f64()
    );
    assert!(load(&sink.failures) >= 1, "the outage counted as failures");
    // The subscriber may get the last event before the sender gets its PUBACK.
    let deadline = Instant::now() + Duration::from_secs(5);
    while load(&sink.delivered) < total as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(load(&sink.delivered) >= total as u64);
    senders.stop();
    check_stopped(&db, total, broker.port);
}

/// Run by [`last_will_reports_offline_when_the_sender_is_killed`] in a child process: the
/// senders of `EVENTS_CHILD_DB` to the broker on `EVENTS_CHILD_PORT`, until killed.
#[test]
#[ignore = "a child process of last_will_reports_offline_when_the_sender_is_killed"]
fn child_sender() {
    let (Ok(db), Ok(port)) = (
        std::env::var("EVENTS_CHILD_DB"),
        std::env::var("EVENTS_CHILD_PORT"),
    ) else {
        return;
    };
    let cfg = events_config(Some(port.parse().unwrap()));
    let _senders = Senders::start(&cfg, Path::new(&db), &EventsMetrics::default()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn last_will_reports_offline_when_the_sender_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let db = new_db(dir.path());
    let status = format!("storetrack/{SITE}/status");
    let sub = Subscriber::start(broker.port, &status, "test-sub-will");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "events::child_sender",
            "--ignored",
            "--nocapture",
        ])
        .env("EVENTS_CHILD_DB", &db)
        .env("EVENTS_CHILD_PORT", broker.port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        sub.wait_for(&status, "online", Duration::from_secs(20)),
        "no online status"
    );
    assert_eq!(retained(broker.port, &status), "online");
    child.kill().unwrap(); // SIGKILL: no clean stop, the broker sends the will
    child.wait().unwrap();
    assert!(
        sub.wait_for(&status, "offline", Duration::from_secs(10)),
        "no last will"
    );
    assert_eq!(
        retained(broker.port, &status),
        "offline",
        "the will is retained"
    );
}
