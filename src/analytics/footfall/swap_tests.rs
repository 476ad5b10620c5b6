//! The swap policy of [`Footfall::swap`] on a scripted scene: unchanged definitions keep their
//! state, changed and removed ones end cleanly, new ones count from the swap.

use super::*;
use crate::analytics::rules::AlertKind;

fn rect(id: &str, r: [f64; 4]) -> Zone {
    Zone {
        id: Arc::from(id),
        name: id.into(),
        polygon: vec![(r[0], r[1]), (r[2], r[1]), (r[2], r[3]), (r[0], r[3])],
    }
}

fn settings(text: &str) -> FootfallSettings {
    toml::from_str(text).unwrap()
}

const BEFORE: &str = r#"
[[lines]]
id = "kept"
points = [[5.0, 0.0], [5.0, 4.0]]
[[lines]]
id = "gone"
points = [[3.5, 0.0], [3.5, 4.0]]
[[rules]]
id = "b-busy"
kind = "occupancy"
zone = "b"
above = 0
clear_ms = 0
"#;

/// `gone` removed, `new` added at x = 8, the rule's threshold changed.
const AFTER: &str = r#"
[[lines]]
id = "kept"
points = [[5.0, 0.0], [5.0, 4.0]]
[[lines]]
id = "new"
points = [[8.0, 0.0], [8.0, 4.0]]
[[rules]]
id = "b-busy"
kind = "occupancy"
zone = "b"
above = 5
clear_ms = 0
"#;

fn point(ff: &mut Footfall, store: u64, ts_ms: i64, x: f64) {
    let p = StorePoint {
        store,
        ts_ms,
        x,
        y: 2.0,
        cameras: 1,
    };
    ff.point(&p);
    ff.tick(ts_ms);
}

fn bodies(ff: &mut Footfall) -> Vec<EventBody> {
    ff.drain().into_iter().map(|e| e.body).collect()
}

#[test]
fn unchanged_definitions_keep_their_state_changed_and_removed_ones_end_new_ones_count() {
    let visit = VisitRules {
        min_dwell_ms: 1_000,
        exit_grace_ms: 500,
    };
    let zones = vec![
        rect("a", [0.0, 0.0, 4.0, 4.0]),
        rect("b", [6.0, 0.0, 10.0, 4.0]),
        rect("old", [0.0, 0.0, 3.0, 4.0]),
    ];
    let mut ff = Footfall::new(&settings(BEFORE), zones, visit).unwrap();
    // Person 1 stands in a (and old) for 3 s; person 2 in b, which raises b-busy.
    for i in 0..30 {
        point(&mut ff, 1, i * 100, 2.0);
        point(&mut ff, 2, i * 100, 7.0);
    }
    let before = bodies(&mut ff);
    let enters = |b: &[EventBody]| -> Vec<(String, u64)> {
        b.iter()
            .filter_map(|e| match e {
                EventBody::ZoneEnter(z) => Some((z.zone.clone(), z.store_track)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(enters(&before).len(), 3, "{before:?}");
    assert!(
        before
            .iter()
            .any(|e| matches!(e, EventBody::Alert(a) if a.rule == "b-busy"))
    );

    // b moves (changed), old goes, c comes; a stays as it was.
    let zones = vec![
        rect("a", [0.0, 0.0, 4.0, 4.0]),
        rect("b", [6.0, 0.0, 10.0, 5.0]),
        rect("c", [7.5, 0.0, 9.5, 4.0]),
    ];
    let swapped = ff.swap(&settings(AFTER), zones).unwrap();
    assert_eq!(swapped.added, ["zone:c", "line:new"]);
    assert_eq!(swapped.removed, ["zone:old", "line:gone"]);
    assert_eq!(swapped.restarted, ["zone:b", "rule:b-busy"]);
    assert!(swapped.kept.contains(&"zone:a".into()) && swapped.kept.contains(&"line:kept".into()));
    let at_swap = bodies(&mut ff);
    let left: Vec<(&str, u64, i64)> = at_swap
        .iter()
        .filter_map(|e| match e {
            EventBody::ZoneLeave(z) => {
                Some((z.zone.as_str(), z.store_track, z.enter_ms + z.dwell_ms))
            }
            _ => None,
        })
        .collect();
    // The visits of the changed and the removed zone end at their last position inside; a's
    // goes on.
    assert_eq!(left, [("old", 1, 2_900), ("b", 2, 2_900)]);
    let cleared = at_swap.iter().any(
        |e| matches!(e, EventBody::Alert(a) if a.rule == "b-busy" && a.kind == AlertKind::Cleared),
    );
    assert!(
        cleared,
        "the changed rule's raised alert is cleared: {at_swap:?}"
    );
    assert!(!ff.now().zones.iter().any(|z| z.zone == "old"));

    // Person 1 walks out of a, across kept and new, to x = 9; person 2 stays in b.
    let mut after = Vec::new();
    for i in 0..70 {
        let ts = 3_000 + i * 100;
        point(&mut ff, 1, ts, 2.0 + i as f64 * 0.1);
        point(&mut ff, 2, ts, 7.0);
        after.extend(bodies(&mut ff));
    }
    for _ in 0..20 {
        point(&mut ff, 1, 10_000, 9.0);
    }
    ff.finish();
    after.extend(bodies(&mut ff));
    let a_visit = after.iter().find_map(|e| match e {
        EventBody::ZoneLeave(z) if z.zone == "a" => Some(z.enter_ms),
        _ => None,
    });
    assert_eq!(a_visit, Some(0), "a's visit kept its start across the swap");
    let mut new_enters = enters(&after);
    new_enters.sort();
    assert_eq!(
        new_enters,
        [("b".into(), 1), ("b".into(), 2), ("c".into(), 1)],
        "the changed and the new zone count from the swap"
    );
    let lines: Vec<&str> = after
        .iter()
        .filter_map(|e| match e {
            EventBody::LineCrossing(c) => Some(c.line.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(lines, ["kept", "new"]);
    // The changed rule (above 5) does not raise for person 2's fresh visit of b.
    assert!(
        !after.iter().any(|e| matches!(e, EventBody::Alert(_))),
        "{after:?}"
    );
}
