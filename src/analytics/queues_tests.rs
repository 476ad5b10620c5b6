//! Tests of queue waits: served, abandoned, ID switches in the queue, statistics.

use super::*;

const RULES: super::super::VisitRules = super::super::VisitRules {
    min_dwell_ms: 1_000,
    exit_grace_ms: 1_500,
};

fn rect(id: &str, x0: f64, x1: f64) -> Zone {
    Zone {
        id: Arc::from(id),
        name: id.into(),
        polygon: vec![(x0, 0.0), (x1, 0.0), (x1, 2.0), (x0, 2.0)],
    }
}

/// Queue from x = 2 to 8, till from 0 to 2, along y = 1.
fn setup(service: bool) -> (Vec<Zone>, QueueTracker) {
    let zones = vec![rect("queue", 2.0, 8.0), rect("till", 0.0, 2.0)];
    let h = Handover {
        window_ms: 4_000,
        distance: 1.5,
    };
    let r = QueueRules {
        min_dwell_ms: RULES.min_dwell_ms,
        handover: h,
        period_ms: 1_000_000,
    };
    let q = QueueTracker::new(&zones, 0, service.then_some(1), r);
    (zones, q)
}

/// One trajectory's positions (x along y = 1) through zone state and queue.
struct Walker {
    key: u64,
    zt: ZoneTracker,
}

impl Walker {
    fn new(key: u64) -> Self {
        Self {
            key,
            zt: ZoneTracker::new(2),
        }
    }

    /// Positions every 200 ms from `t0` to `t1` moving linearly from `x0` to `x1`.
    fn go(
        &mut self,
        zones: &[Zone],
        q: &mut QueueTracker,
        t0: i64,
        t1: i64,
        x0: f64,
        x1: f64,
    ) -> Vec<QueueChange> {
        let mut out = Vec::new();
        let mut t = t0;
        while t <= t1 {
            let x = x0 + (x1 - x0) * (t - t0) as f64 / (t1 - t0).max(1) as f64;
            let closed = self.zt.update(zones, &RULES, t, (x, 1.0));
            out.extend(q.observe(self.key, t, (x, 1.0), &self.zt, &closed));
            t += 200;
        }
        out
    }

    fn end(&mut self, zones: &[Zone], q: &mut QueueTracker) {
        let closed = self.zt.finish(zones, &RULES);
        q.end(self.key, &closed);
    }
}

fn waits(c: &[QueueChange]) -> Vec<Wait> {
    c.iter()
        .filter_map(|c| match c {
            QueueChange::Waited(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn lengths(c: &[QueueChange]) -> Vec<u32> {
    c.iter()
        .filter_map(|c| match c {
            QueueChange::Length(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[test]
fn served_and_abandoned_waits_end_where_the_zones_say() {
    let (zones, mut q) = setup(true);
    // Served: enters the queue at x = 8 (t = 10 s), shuffles to x = 2 by 70 s, at the till
    // (x < 2) from 70.2 s for 30 s, leaves.
    let mut a = Walker::new(1);
    let mut c = a.go(&zones, &mut q, 9_000, 10_000, 9.0, 7.9);
    c.extend(a.go(&zones, &mut q, 10_200, 70_000, 7.9, 2.0));
    c.extend(a.go(&zones, &mut q, 70_200, 100_000, 1.0, 1.0));
    c.extend(a.go(&zones, &mut q, 100_200, 105_000, 1.0, -3.0));
    // Abandoned: enters at 20 s, gives up at 50 s and walks out the back.
    let mut b = Walker::new(2);
    c.extend(b.go(&zones, &mut q, 19_000, 20_000, 9.0, 7.9));
    c.extend(b.go(&zones, &mut q, 20_200, 50_000, 7.9, 6.0));
    c.extend(b.go(&zones, &mut q, 50_200, 53_000, 6.0, 11.0));
    let w = waits(&c);
    let key_wait: Vec<(u64, i64, Outcome)> =
        w.iter().map(|w| (w.key, w.wait_ms(), w.outcome)).collect();
    assert_eq!(key_wait.len(), 2, "{key_wait:?}");
    let served = key_wait.iter().find(|w| w.0 == 1).unwrap();
    assert_eq!((served.1, served.2), (60_200, Outcome::Served));
    let gave_up = key_wait.iter().find(|w| w.0 == 2).unwrap();
    assert_eq!(gave_up.2, Outcome::Abandoned);
    assert!((31_000..=31_400).contains(&gave_up.1), "{gave_up:?}");
    // (Fed one person after the other.)
    assert_eq!(lengths(&c), [1, 0, 1, 0]);
    let s = q.take_period(0);
    assert_eq!((s.arrivals, s.served, s.abandoned), (2, 1, 1));
}

#[test]
fn an_id_switch_in_the_queue_keeps_one_wait() {
    let (zones, mut q) = setup(true);
    let mut a = Walker::new(1);
    let mut c = a.go(&zones, &mut q, 0, 30_000, 7.5, 5.0);
    // The tracker loses the person at 30 s; a new id finds them 0.6 s later, 0.3 m on.
    let mut b = Walker::new(2);
    c.extend(b.go(&zones, &mut q, 30_600, 40_000, 4.7, 4.0));
    a.end(&zones, &mut q); // the stitcher ends the old trajectory some seconds later
    c.extend(q.advance(45_000).into_iter().map(|(_, c)| c));
    c.extend(b.go(&zones, &mut q, 40_200, 60_000, 4.0, 2.1));
    c.extend(b.go(&zones, &mut q, 60_200, 70_000, 1.0, 1.0));
    let w = waits(&c);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        (w[0].key, w[0].enter_ms, w[0].outcome),
        (2, 0, Outcome::Served)
    );
    assert_eq!(
        lengths(&c),
        [1, 0],
        "the successor takes the place, not a second one"
    );
    assert_eq!(q.take_period(0).arrivals, 1);
}

#[test]
fn someone_vanishing_for_good_abandons_at_their_last_position_inside() {
    let (zones, mut q) = setup(false);
    let mut a = Walker::new(1);
    let mut c = a.go(&zones, &mut q, 0, 20_000, 7.5, 6.0);
    a.end(&zones, &mut q);
    c.extend(q.advance(25_000).into_iter().map(|(_, c)| c));
    assert!(waits(&c).is_empty(), "a successor may still come");
    let later = q.advance(26_000);
    assert_eq!(
        later[0].0, 25_000,
        "final when no successor can come any more"
    );
    c.extend(later.into_iter().map(|(_, c)| c));
    let w = waits(&c);
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].wait_ms(), w[0].outcome), (20_000, Outcome::Left));
    assert_eq!(q.length(), 0);
}

#[test]
fn statistics_of_waits_and_little_s_law() {
    assert_eq!(percentile(&[], 0.5), None);
    assert_eq!(percentile(&[10, 20, 30, 40], 0.5), Some(25));
    assert_eq!(
        percentile(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9),
        Some(91)
    );
    let w = |enter_ms, end_ms, outcome| Wait {
        key: 1,
        enter_ms,
        end_ms,
        outcome,
    };
    let waits = [
        w(0, 60_000, Outcome::Served),
        w(0, 120_000, Outcome::Served),
        w(0, 30_000, Outcome::Abandoned),
    ];
    // 3 arrivals in 10 min, mean wait 70 s: L = 3/600 s × 70 s = 0.35.
    let s = QueueStats::new(&waits, 3, 210_000, 600_000);
    assert_eq!((s.served, s.abandoned, s.left), (2, 1, 0));
    assert_eq!(s.median_wait_ms, Some(60_000));
    assert!((s.little_length.unwrap() - 0.35).abs() < 1e-12);
    assert!((s.mean_length - 0.35).abs() < 1e-12);
}

#[test]
fn settings_name_missing_zones() {
    let q = QueueSettings::new("queue", Some("till"));
    assert!(q.validate(&["queue", "till"]).is_empty());
    assert_eq!(
        q.validate(&["till"]),
        vec!["queue \"queue\": no such zone".to_string()]
    );
    let same = QueueSettings::new("queue", Some("queue"));
    assert_eq!(same.validate(&["queue"]).len(), 1);
}
