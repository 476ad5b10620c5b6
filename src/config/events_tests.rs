//! Unit tests of `[events]` (config/events.rs): defaults, every key, and one-line errors at
//! the value's position that never show a password or a secret.

use crate::config::Config;
use crate::config::test_support::{CAMERA, problem_lines};
use std::path::Path;

fn load(events: &str) -> Result<Config, Vec<String>> {
    let env = |n: &str| match n {
        "MQTT_PW" => Some("s3cr3t-pw".to_string()),
        "HOOK_SECRET" => Some("hook-key-123".to_string()),
        _ => None,
    };
    let text = format!("{CAMERA}\n{events}");
    problem_lines(Config::from_str_with_env(&text, Path::new("c.toml"), &env))
}

#[test]
fn absent_section_means_no_senders() {
    assert!(load("").unwrap().events.is_none());
}

#[test]
fn mqtt_url_credentials_and_defaults() {
    let c = load("[events]\nsite = \"shop-7\"\nmqtt = \"mqtt://bob:${MQTT_PW}@broker.local\"\n")
        .unwrap();
    let e = c.events.unwrap();
    assert_eq!(e.site, "shop-7");
    let m = e.mqtt.as_ref().unwrap();
    assert_eq!(
        (m.host.as_str(), m.port, m.tls),
        ("broker.local", 1883, false)
    );
    assert_eq!(m.user.as_deref(), Some("bob"));
    assert_eq!(m.password.as_deref(), Some("s3cr3t-pw"));
    assert!(!m.url.as_str().contains("s3cr3t"), "{}", m.url);
    assert!(!format!("{e:?}").contains("s3cr3t"));
    assert_eq!(e.retry_initial_ms, 1_000);
    assert_eq!(e.retry_max_ms, 60_000);
    assert_eq!(e.timeout_ms, 10_000);
    assert_eq!(
        e.describe(),
        "site shop-7, MQTT mqtt://broker.local as bob, 0 webhooks"
    );
    let t =
        load("[events]\nmqtt = \"mqtts://h\"\nmqtt_user = \"u\"\nmqtt_password = \"${MQTT_PW}\"\n")
            .unwrap()
            .events
            .unwrap();
    let m = t.mqtt.unwrap();
    assert_eq!(
        (m.port, m.tls, m.password.as_deref()),
        (8883, true, Some("s3cr3t-pw"))
    );
    assert!(!t.site.is_empty() && !t.site.contains('/'));
}

#[test]
fn bad_mqtt_url_is_reported_with_position_and_masked() {
    let p = load("[events]\nmqtt = \"http://bob:${MQTT_PW}@h:1\"\n").unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("6:8: events.mqtt = "), "{p:?}");
    assert!(p[0].contains("expected mqtt://"), "{p:?}");
    assert!(!p[0].contains("s3cr3t"), "{p:?}");
}

#[test]
fn webhooks_ids_kinds_and_secret() {
    let c = load(
        "[events]\n[[events.webhooks]]\nurl = \"https://crm.example/hook\"\nkinds = [\"line_crossing\", \"alert\"]\nsecret = \"${HOOK_SECRET}\"\n\n[[events.webhooks]]\nid = \"ops\"\nurl = \"http://10.0.0.2:8080/in\"\n",
    )
    .unwrap();
    let w = &c.events.as_ref().unwrap().webhooks;
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].id, "crm.example");
    assert_eq!(w[0].kinds, ["line_crossing", "alert"]);
    assert_eq!(w[0].secret.as_deref(), Some("hook-key-123"));
    assert!(!format!("{w:?}").contains("hook-key-123"));
    assert_eq!((w[1].id.as_str(), w[1].kinds.len()), ("ops", 0));
}

#[test]
fn webhook_problems_are_all_reported() {
    let p = load(
        "[events]\nretry_max_ms = 5\n[[events.webhooks]]\nurl = \"ftp://x\"\n[[events.webhooks]]\nid = \"a\"\nurl = \"http://h/\"\nkinds = [\"nope\"]\n[[events.webhooks]]\nid = \"a\"\nurl = \"http://h/2\"\nsurprise = 1\n",
    )
    .unwrap_err();
    // Unknown keys are refused by serde first (one problem at its position).
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("surprise"), "{p:?}");
    let p = load(
        "[events]\nretry_max_ms = 5\n[[events.webhooks]]\nurl = \"ftp://x\"\n[[events.webhooks]]\nid = \"a\"\nurl = \"http://h/\"\nkinds = [\"nope\"]\n[[events.webhooks]]\nid = \"a\"\nurl = \"http://h/2\"\n",
    )
    .unwrap_err();
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(p[0].starts_with("6:16: events.retry_max_ms = 5"), "{p:?}");
    assert!(p[1].starts_with("8:7: events.webhooks.url = "), "{p:?}");
    assert!(
        p[2].starts_with("12:10: events.webhooks.kinds: \"nope\""),
        "{p:?}"
    );
    assert!(
        p[3].starts_with("14:6: events.webhooks: id \"a\" is used twice"),
        "{p:?}"
    );
}

#[test]
fn url_credentials_are_percent_decoded_and_keys_win() {
    let e = load("[events]\nmqtt = \"mqtt://us%40r:p%2Bw+1@h\"\n")
        .unwrap()
        .events
        .unwrap();
    let m = e.mqtt.unwrap();
    assert_eq!(m.user.as_deref(), Some("us@r"));
    assert_eq!(m.password.as_deref(), Some("p+w+1"));
    assert_eq!(m.url.as_str(), "mqtt://h");
    let e = load("[events]\nmqtt = \"mqtt://a:b@h\"\nmqtt_user = \"k\"\n")
        .unwrap()
        .events
        .unwrap();
    let m = e.mqtt.unwrap();
    assert_eq!(
        (m.user.as_deref(), m.password.as_deref()),
        (Some("k"), Some("b"))
    );
}
