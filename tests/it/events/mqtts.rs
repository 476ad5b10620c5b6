//! MQTT over TLS with a user and password: a mosquitto TLS listener with a certificate from a
//! test CA (given to the sender as `mqtt_ca`) and a password file; a wrong password is
//! refused and counted, never delivered.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rusqlite::Connection;
use storetrack::config::MqttConfig;
use storetrack::events::{EventsMetrics, Senders};

use super::{Broker, SITE, Subscriber, events_config, insert, n_of, new_db};

const USER: &str = "box1";
const PASSWORD: &str = "mqtt-pw-42";

/// A CA and a certificate for `localhost` and 127.0.0.1 signed by it, as PEM files in `dir`.
fn certificates(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: OpenSSL (mosquitto_sub) takes a leaf named as its issuer for a
    // self-signed certificate.
    ca.distinguished_name
        .push(DnType::CommonName, "storetrack test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
}

fn tls_broker(dir: &Path) -> Broker {
    certificates(dir);
    let passwd = dir.join("passwd");
    std::fs::write(&passwd, "").unwrap();
    let status = Command::new("mosquitto_passwd")
        .args(["-b"])
        .arg(&passwd)
        .args([USER, PASSWORD])
        .status()
        .expect("mosquitto_passwd (Debian mosquitto)");
    assert!(status.success());
    let d = dir.display();
    Broker::start_with(
        dir,
        &format!(
            "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             allow_anonymous false\npassword_file {d}/passwd\n"
        ),
    )
}

fn mqtts(port: u16, dir: &Path, password: &str) -> MqttConfig {
    MqttConfig {
        url: format!("mqtts://localhost:{port}").parse().unwrap(),
        tls: true,
        host: "localhost".into(),
        port,
        user: Some(USER.into()),
        password: Some(password.into()),
        ca: Some(dir.join("ca.pem")),
    }
}

#[test]
fn mqtts_with_a_password_delivers_and_a_wrong_password_is_refused() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("storetrack=info")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let broker = tls_broker(dir.path());
    let db = new_db(dir.path());
    let conn = Connection::open(&db).unwrap();
    conn.execute("INSERT INTO outbox_cursors VALUES ('mqtt', 0, 0)", [])
        .unwrap();
    for n in 1..=20 {
        insert(&conn, n);
    }

    // A wrong password: refused, counted, nothing delivered.
    let mut cfg = events_config(None);
    cfg.mqtt = Some(mqtts(broker.port, dir.path(), "wrong"));
    let metrics = EventsMetrics::default();
    let senders = Senders::start(&cfg, &db, &metrics).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    senders.stop();
    let sink = &metrics.sinks()[0];
    assert!(sink.failures.load(Ordering::Relaxed) >= 1);
    assert_eq!(sink.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(sink.connected.load(Ordering::Relaxed), 0);

    let port = broker.port.to_string();
    let ca = dir.path().join("ca.pem");
    let mut sub = Command::new("mosquitto_sub");
    sub.args(["-h", "127.0.0.1", "-p", &port, "--cafile"])
        .arg(&ca)
        .args(["-u", USER, "-P", PASSWORD]);
    let sub = Subscriber::spawn(sub, &format!("storetrack/{SITE}/events/#"), "test-sub-tls");
    std::thread::sleep(Duration::from_millis(500));
    cfg.mqtt = Some(mqtts(broker.port, dir.path(), PASSWORD));
    let metrics = EventsMetrics::default();
    let senders = Senders::start(&cfg, &db, &metrics).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 20 && Instant::now() < deadline {
        if let Some((_, payload, _)) = sub.next(Duration::from_millis(500)) {
            got.push(n_of(&payload));
        }
    }
    senders.stop();
    let log = std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap_or_default();
    assert_eq!(
        got,
        (1..=20).collect::<Vec<_>>(),
        "over TLS, in order; broker: {log}"
    );
}
