//! Tests of rule settings and the engine's routing of values to rules.

use super::*;

#[derive(Debug, Deserialize)]
struct File {
    rules: Vec<RuleSettings>,
}

fn rules(toml_text: &str) -> Vec<RuleSettings> {
    toml::from_str::<File>(toml_text).unwrap().rules
}

fn brief(a: &[Alert]) -> Vec<(String, Option<String>, AlertKind, i64)> {
    a.iter()
        .map(|a| (a.rule.clone(), a.subject.clone(), a.kind, a.ts_ms))
        .collect()
}

#[test]
fn settings_parse_and_every_problem_is_reported() {
    let r = rules(
        r#"
        [[rules]]
        id = "queue-long"
        kind = "queue_length"
        zone = "checkout"
        above = 5
        clear_at = 3
        for_ms = 30000
        [[rules]]
        id = "bad id"
        kind = "crossings"
        zone = "checkout"
        above = 2
        clear_at = 4
        [[rules]]
        id = "loiter"
        kind = "dwell"
        zone = "nowhere"
        above = 120
        cooldown_ms = -1
        [[rules]]
        id = "door-busy"
        kind = "crossings"
        line = "door"
        direction = "in"
        interval_ms = 500
        above = 30
        "#,
    );
    assert_eq!(r[0].clear_ms, DEFAULT_CLEAR_MS);
    let known = Known {
        zones: &["checkout", "till"],
        queues: &["checkout"],
        lines: &["door"],
        cameras: Some(&["cam1"]),
    };
    assert!(r[0].validate(&known).is_empty());
    assert_eq!(
        r[1].validate(&known),
        [
            "rule id \"bad id\": use letters, digits, '-', '_' or '.'",
            "rule \"bad id\": zone does not apply to this kind",
            "rule \"bad id\": needs a line",
            "rule \"bad id\": clear_at must be from 0 to above",
        ]
    );
    assert_eq!(
        r[2].validate(&known),
        [
            "rule \"loiter\": no such zone \"nowhere\"",
            "rule \"loiter\": cooldown_ms must be from 0 to 86400000",
        ]
    );
    assert_eq!(
        r[3].validate(&known),
        ["rule \"door-busy\": interval_ms must be from 1000 to 86400000"]
    );
    let unknown = "[[rules]]\nid = \"x\"\nkind = \"camera\"\nabove = 1\nabov = 2\n";
    let err = toml::from_str::<File>(unknown).unwrap_err().to_string();
    assert!(err.contains("abov"), "{err}");
}

#[test]
fn crossings_per_interval_raise_when_a_busy_interval_closes_and_clear_after_a_quiet_one() {
    let r = rules(
        r#"
        [[rules]]
        id = "busy"
        kind = "crossings"
        line = "door"
        direction = "in"
        above = 10
        clear_at = 3
        clear_ms = 0
        cooldown_ms = 0
        "#,
    );
    let mut e = RuleEngine::new(&r);
    let mut out = Vec::new();
    // 12 in and 20 out in the first minute, 5 in the second, 2 in the third.
    for i in 0..12 {
        e.crossing("door", Direction::In, i * 4_000);
    }
    for i in 0..20 {
        e.crossing("door", Direction::Out, i * 2_000);
    }
    for i in 0..5 {
        e.crossing("door", Direction::In, 60_000 + i * 10_000);
    }
    e.advance(69_999, &mut out);
    assert!(out.is_empty(), "the interval closes 10 s after its end");
    e.crossing("door", Direction::In, 120_000);
    e.crossing("door", Direction::In, 150_000);
    e.crossing("side-door", Direction::In, 150_000);
    e.advance(300_000, &mut out);
    let b = brief(&out);
    assert_eq!(
        b,
        [
            (
                "busy".into(),
                Some("door".into()),
                AlertKind::Raised,
                70_000
            ),
            (
                "busy".into(),
                Some("door".into()),
                AlertKind::Cleared,
                190_000
            ),
        ]
    );
    assert_eq!(out[0].value, 12.0);
    assert_eq!(out[1].value, 2.0);
}

#[test]
fn a_rule_on_every_camera_keeps_one_alert_per_camera() {
    let r = rules(
        r#"
        [[rules]]
        id = "dark"
        kind = "camera"
        above = 30
        clear_ms = 0
        cooldown_ms = 0
        "#,
    );
    let mut e = RuleEngine::new(&r);
    let mut out = Vec::new();
    for t in (0..=100_000).step_by(500) {
        if t <= 10_000 || t >= 60_000 {
            e.camera_frame("cam1", t, &mut out);
        }
        if t <= 65_000 {
            e.camera_frame("cam2", t, &mut out);
        }
        e.advance(t, &mut out);
    }
    e.camera_down("cam2", 100_000, 65_000, &mut out);
    e.advance(100_000, &mut out);
    let b = brief(&out);
    assert_eq!(
        b,
        [
            (
                "dark".into(),
                Some("cam1".into()),
                AlertKind::Raised,
                40_001
            ),
            (
                "dark".into(),
                Some("cam1".into()),
                AlertKind::Cleared,
                60_000
            ),
            (
                "dark".into(),
                Some("cam2".into()),
                AlertKind::Raised,
                95_001
            ),
        ]
    );
    // Reported down before its frames had been missing long enough: raised at once.
    let mut e = RuleEngine::new(&r);
    let mut out = Vec::new();
    e.camera_frame("cam3", 0, &mut out);
    e.camera_down("cam3", 2_000, 0, &mut out);
    e.advance(2_000, &mut out);
    assert_eq!(brief(&out).len(), 1);
    assert_eq!((out[0].ts_ms, out[0].value), (2_000, 2.0));
}
