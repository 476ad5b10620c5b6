//! Tests of counting lines: geometry, hysteresis, hand-over of ID switches.

use super::*;

/// A line along y = 0 from x = 0 to x = 4 (left = y < 0 on the plan), default hysteresis.
fn door() -> LineCounter {
    LineSettings::floor("door", &[[0.0, 0.0], [4.0, 0.0]]).counter()
}

/// Positions every 200 ms from `a` to `b` at 1 m/s, starting at `t0`; returns the next time.
fn walk(path: &mut Vec<(i64, (f64, f64))>, t0: i64, a: (f64, f64), b: (f64, f64)) -> i64 {
    let n = (handover::dist(a, b) / 0.2).ceil().max(1.0) as i64;
    for i in 0..=n {
        let f = i as f64 / n as f64;
        path.push((t0 + i * 200, (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1))));
    }
    t0 + (n + 1) * 200
}

fn feed(c: &mut LineCounter, key: u64, path: &[(i64, (f64, f64))]) -> Vec<Crossing> {
    path.iter()
        .flat_map(|&(t, p)| c.observe(key, t, p, 1.0))
        .collect()
}

#[test]
fn polyline_sides_ends_and_corners() {
    let l = Polyline::new(vec![(0.0, 0.0), (4.0, 0.0)]);
    assert!(
        l.locate((2.0, -1.0)).signed > 0.0,
        "up on the plan is left of west→east"
    );
    assert!((l.locate((2.0, 1.5)).signed + 1.5).abs() < 1e-12);
    assert!(l.locate((-1.0, 0.2)).off_end && l.locate((5.0, 0.0)).off_end);
    assert!(!l.locate((3.9, 7.0)).off_end);
    // East then south: the outside of the corner is on the left of both legs.
    let corner = Polyline::new(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0)]);
    let out = corner.locate((5.0, -1.0));
    assert!(out.signed > 0.0 && !out.off_end);
    assert!((out.signed - 2f64.sqrt()).abs() < 1e-12);
    assert!(corner.locate((3.0, 1.0)).signed < 0.0);
    assert!(corner.locate((5.0, 2.0)).signed > 0.0);
}

#[test]
fn a_walk_across_counts_once_each_way_with_the_time_of_the_line() {
    let mut c = door();
    let mut p = Vec::new();
    let t = walk(&mut p, 0, (2.0, -3.0), (2.0, 3.0));
    let got = feed(&mut c, 1, &p);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].direction, Direction::In);
    assert_eq!(got[0].crossed_ms, 3_000);
    // Confirmed 200 ms after the first position beyond the band (y = 0.4 at 3.4 s).
    assert!((3_600..=3_800).contains(&got[0].ts_ms), "{}", got[0].ts_ms);
    let mut back = Vec::new();
    walk(&mut back, t, (2.0, 3.0), (1.0, -3.0));
    let got = feed(&mut c, 1, &back);
    assert_eq!(
        got.iter().map(|c| c.direction).collect::<Vec<_>>(),
        [Direction::Out]
    );
}

#[test]
fn standing_on_the_line_with_a_flickering_box_counts_nothing() {
    let mut c = door();
    let mut p = Vec::new();
    let mut t = walk(&mut p, 0, (2.0, -3.0), (2.0, 0.0));
    // 20 s on the line: the position swings ±0.35 m, and every 7th is thrown 0.7 m to
    // either side (beyond the band, for one position only).
    for i in 0..100 {
        let y = match i % 7 {
            3 => 0.7,
            6 => -0.7,
            _ if i % 2 == 0 => 0.35,
            _ => -0.35,
        };
        p.push((t, (2.0, y)));
        t += 200;
    }
    walk(&mut p, t, (2.0, 0.0), (2.0, -3.0)); // and back where they came from
    assert_eq!(feed(&mut c, 1, &p), []);
    // Someone who stands there and then goes on counts once.
    let mut q = Vec::new();
    let t = walk(&mut q, 100_000, (3.0, -3.0), (3.0, 0.3));
    let t = walk(&mut q, t + 10_000, (3.0, 0.3), (3.0, -0.3));
    walk(&mut q, t + 10_000, (3.0, -0.3), (3.0, 3.0));
    assert_eq!(feed(&mut c, 2, &q).len(), 1);
}

#[test]
fn walking_round_the_end_of_the_line_counts_nothing() {
    let mut c = door();
    let mut p = Vec::new();
    let t = walk(&mut p, 0, (2.0, -2.0), (6.0, -2.0));
    let t = walk(&mut p, t, (6.0, -2.0), (6.0, 2.0));
    walk(&mut p, t, (6.0, 2.0), (2.0, 2.0));
    assert_eq!(feed(&mut c, 1, &p), []);
}

#[test]
fn an_id_switch_at_the_line_counts_once_for_the_successor() {
    for (lost_at, found_at) in [(0.1, 0.2), (-0.3, 0.3), (0.5, 0.8), (-0.6, 0.6)] {
        let mut c = door();
        let mut a = Vec::new();
        let t = walk(&mut a, 0, (2.0, -3.0), (2.0, lost_at));
        let mut b = Vec::new();
        walk(&mut b, t + 600, (2.3, found_at), (2.3, 3.0));
        let mut got = feed(&mut c, 1, &a);
        got.extend(c.end(1));
        got.extend(feed(&mut c, 2, &b));
        assert_eq!(
            got.len(),
            1,
            "lost at {lost_at}, found at {found_at}: {got:?}"
        );
        assert_eq!((got[0].key, got[0].direction), (2, Direction::In));
    }
}

#[test]
fn a_chain_of_switches_while_standing_on_the_line_counts_once() {
    let mut c = door();
    let mut p = Vec::new();
    let mut t = walk(&mut p, 0, (2.0, 3.0), (2.0, 0.1));
    let mut got = feed(&mut c, 1, &p);
    got.extend(c.end(1));
    // Four more ids, each standing 3 s on the line, 0.4 s apart.
    for key in 2..=5 {
        let stand: Vec<(i64, (f64, f64))> = (0..15)
            .map(|i| (t + 400 + i * 200, (2.0 + 0.05 * key as f64, -0.1)))
            .collect();
        t = stand.last().unwrap().0;
        got.extend(feed(&mut c, key, &stand));
        got.extend(c.end(key));
    }
    let mut last = Vec::new();
    walk(&mut last, t + 400, (2.3, -0.1), (2.3, -3.0));
    got.extend(feed(&mut c, 6, &last));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].key, got[0].direction), (6, Direction::Out));
}

#[test]
fn someone_appearing_beside_a_walker_does_not_take_their_side() {
    let mut c = door();
    let mut a = Vec::new();
    walk(&mut a, 0, (2.0, -3.0), (2.0, 3.0));
    // B appears next to A when A is on the line and walks back up.
    let mut b = Vec::new();
    walk(&mut b, 3_000, (2.5, 0.1), (2.5, -3.0));
    let mut all: Vec<(u64, i64, (f64, f64))> = a.iter().map(|&(t, p)| (1, t, p)).collect();
    all.extend(b.iter().map(|&(t, p)| (2, t, p)));
    all.sort_by_key(|e| (e.1, e.0));
    let got: Vec<Crossing> = all
        .iter()
        .flat_map(|&(k, t, p)| c.observe(k, t, p, 1.0))
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].key, got[0].direction), (1, Direction::In));
}

#[test]
fn on_a_camera_line_the_band_follows_the_box_height() {
    // A line in pixels along v = 400; someone swaying 30 px either side of it.
    let counter = || {
        let mut s = LineSettings::floor("cam-door", &[]);
        (s.camera, s.pixels) = (Some("cam1".into()), vec![[0.0, 400.0], [1000.0, 400.0]]);
        assert_eq!(s.validate(), Vec::<String>::new());
        s.counter()
    };
    let sway: Vec<(i64, (f64, f64))> = (0..40)
        .map(|i| {
            (
                i * 200,
                (500.0, if (i / 3) % 2 == 0 { 370.0 } else { 430.0 }),
            )
        })
        .collect();
    // Near the camera (box 340 px: the band is 80 px): standing on the line.
    let mut near = counter();
    let n = sway
        .iter()
        .flat_map(|&(t, p)| near.observe(1, t, p, 340.0 / PERSON_HEIGHT_M))
        .count();
    assert_eq!(n, 0);
    // Far away (box 50 px: the band is 12 px): 30 px is more than a metre, back and forth.
    let mut far = counter();
    let n = sway
        .iter()
        .flat_map(|&(t, p)| far.observe(1, t, p, 50.0 / PERSON_HEIGHT_M))
        .count();
    assert!(n >= 10, "{n}");
}

#[test]
fn settings_report_every_problem() {
    let mut s = LineSettings::floor("bad id", &[[1.0, 1.0], [1.0, 1.0]]);
    s.band_m = 0.0;
    s.confirm_ms = -1;
    s.pixels = vec![[0.0, 0.0], [1.0, 0.0]];
    let p = s.validate();
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(p[0].starts_with("line id \"bad id\""));
    assert!(p[1].contains("either points or camera and pixels"));
    let ok = LineSettings::floor("door", &[[0.0, 0.0], [2.0, 0.0], [2.0, 3.0]]);
    assert_eq!(ok.validate(), Vec::<String>::new());
    let parsed: LineSettings =
        toml::from_str("id = \"door\"\npoints = [[0, 0], [2, 0]]\ndoor = true\n").unwrap();
    assert_eq!(parsed.band_m, DEFAULT_BAND_M);
    assert!(parsed.door);
    assert!(
        toml::from_str::<LineSettings>("id = \"d\"\npoints = [[0, 0], [2, 0]]\nbnd_m = 1\n")
            .is_err()
    );
}
