//! Zones on the floor plan and visits to them.
//!
//! Input: one store trajectory's floor positions in time order. Output: [`Visit`]s (zone,
//! enter, leave) once they are over. Flicker across a zone edge does not make visits: a visit
//! ends only after the person has been outside for `exit_grace_ms`, and a visit shorter than
//! `min_dwell_ms` is not counted.

use std::sync::Arc;

/// A named polygon on the floor, metres.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Short id used in the database (`checkout`).
    pub id: Arc<str>,
    /// Display name.
    pub name: String,
    /// Vertices in order (closed implicitly), at least three.
    pub polygon: Vec<(f64, f64)>,
}

impl Zone {
    /// True if `(x, y)` is inside the polygon (even-odd rule; points on an edge may go either
    /// way, which the visit hysteresis absorbs).
    pub fn contains(&self, (x, y): (f64, f64)) -> bool {
        let p = &self.polygon;
        let mut inside = false;
        let mut j = p.len() - 1;
        for i in 0..p.len() {
            let ((xi, yi), (xj, yj)) = (p[i], p[j]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// Centre of the vertices (where a label goes).
    pub fn centre(&self) -> (f64, f64) {
        let n = self.polygon.len() as f64;
        self.polygon
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n))
    }
}

/// Signed area of a polygon (positive counter-clockwise in x-right, y-up axes).
pub fn area(p: &[(f64, f64)]) -> f64 {
    let n = p.len();
    (0..n)
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        / 2.0
}

/// The first pair of non-adjacent edges that cross, as edge indices (edge i runs from vertex i
/// to vertex i+1).
pub fn self_intersection(p: &[(f64, f64)]) -> Option<(usize, usize)> {
    let n = p.len();
    let cross = |a: (f64, f64), b: (f64, f64), c: (f64, f64)| {
        (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
    };
    for i in 0..n {
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue; // adjacent through the closing edge
            }
            let (a, b, c, d) = (p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]);
            let (d1, d2) = (cross(a, b, c), cross(a, b, d));
            let (d3, d4) = (cross(c, d, a), cross(c, d, b));
            if d1 * d2 < 0.0 && d3 * d4 < 0.0 {
                return Some((i, j));
            }
        }
    }
    None
}

/// Visit rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisitRules {
    /// Shortest visit that counts.
    pub min_dwell_ms: i64,
    /// Time outside before a visit is over (shorter excursions belong to the visit).
    pub exit_grace_ms: i64,
}

/// One visit of one store trajectory to one zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// Zone id.
    pub zone: Arc<str>,
    /// The zone of this trajectory's previous visit that ended before this one began.
    pub from_zone: Option<Arc<str>>,
    /// First time seen inside.
    pub enter_ms: i64,
    /// Last time seen inside.
    pub leave_ms: i64,
}

impl Visit {
    /// Time spent, ms.
    pub fn dwell_ms(&self) -> i64 {
        self.leave_ms - self.enter_ms
    }
}

/// A visit in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// First time seen inside.
    pub enter_ms: i64,
    /// Last time seen inside.
    pub last_in_ms: i64,
}

/// Zone state of one store trajectory.
#[derive(Debug, Clone)]
pub struct ZoneTracker {
    open: Vec<Option<Open>>,
    /// Zones and leave times of visits already reported (for `from_zone`).
    done: Vec<(usize, i64)>,
}

impl ZoneTracker {
    /// Nobody inside anything yet.
    pub fn new(zones: usize) -> Self {
        Self {
            open: vec![None; zones],
            done: Vec::new(),
        }
    }

    /// The visit to zone `i` in progress (it may still turn out shorter than `min_dwell_ms`).
    pub fn open(&self, i: usize) -> Option<Open> {
        self.open.get(i).copied().flatten()
    }

    /// Feeds the position at `ts_ms`; returns visits that ended.
    pub fn update(
        &mut self,
        zones: &[Zone],
        rules: &VisitRules,
        ts_ms: i64,
        pos: (f64, f64),
    ) -> Vec<Visit> {
        let mut out = Vec::new();
        for (i, z) in zones.iter().enumerate() {
            if z.contains(pos) {
                let o = self.open[i].get_or_insert(Open {
                    enter_ms: ts_ms,
                    last_in_ms: ts_ms,
                });
                o.last_in_ms = ts_ms;
            } else if let Some(o) = self.open[i]
                && ts_ms - o.last_in_ms > rules.exit_grace_ms
            {
                self.open[i] = None;
                out.extend(self.close(zones, rules, i, o));
            }
        }
        out
    }

    /// Ends every open visit (the trajectory is over).
    pub fn finish(&mut self, zones: &[Zone], rules: &VisitRules) -> Vec<Visit> {
        let mut open: Vec<(usize, Open)> = self
            .open
            .iter_mut()
            .enumerate()
            .filter_map(|(i, o)| o.take().map(|o| (i, o)))
            .collect();
        open.sort_by_key(|(_, o)| o.last_in_ms);
        open.into_iter()
            .filter_map(|(i, o)| self.close(zones, rules, i, o))
            .collect()
    }

    /// Closes the open visits of the zones in `ending` (definitions replaced or removed by a
    /// reload) the way a trajectory's end does: each at its last position inside.
    pub fn end_zones(
        &mut self,
        zones: &[Zone],
        rules: &VisitRules,
        ending: &[usize],
    ) -> Vec<Visit> {
        let mut open: Vec<(usize, Open)> = ending
            .iter()
            .filter_map(|&i| self.open.get_mut(i)?.take().map(|o| (i, o)))
            .collect();
        open.sort_by_key(|(_, o)| o.last_in_ms);
        open.into_iter()
            .filter_map(|(i, o)| self.close(zones, rules, i, o))
            .collect()
    }

    /// The state over a new zone list: `kept[j]` is the old index of new zone `j` when its
    /// definition is unchanged (its open visit carries over), `same_id[i]` the new index of
    /// old zone `i` with the same id (its past visits keep naming the zone a visit came from).
    pub fn remap(&mut self, kept: &[Option<usize>], same_id: &[Option<usize>]) {
        self.open = kept
            .iter()
            .map(|old| old.and_then(|i| self.open.get(i).copied().flatten()))
            .collect();
        self.done = self
            .done
            .iter()
            .filter_map(|&(i, leave)| Some((same_id.get(i).copied().flatten()?, leave)))
            .collect();
    }

    fn close(&mut self, zones: &[Zone], rules: &VisitRules, i: usize, o: Open) -> Option<Visit> {
        if o.last_in_ms - o.enter_ms < rules.min_dwell_ms {
            return None;
        }
        let from = self
            .done
            .iter()
            .filter(|(_, leave)| *leave <= o.enter_ms)
            .max_by_key(|(_, leave)| *leave)
            .map(|(z, _)| Arc::clone(&zones[*z].id));
        self.done.push((i, o.last_in_ms));
        Some(Visit {
            zone: Arc::clone(&zones[i].id),
            from_zone: from,
            enter_ms: o.enter_ms,
            leave_ms: o.last_in_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(id: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Zone {
        Zone {
            id: Arc::from(id),
            name: id.to_uppercase(),
            polygon: vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
        }
    }

    #[test]
    fn polygon_tests() {
        let z = rect("a", 0.0, 0.0, 2.0, 1.0);
        assert!(z.contains((1.0, 0.5)));
        assert!(!z.contains((2.5, 0.5)));
        assert_eq!(area(&z.polygon), 2.0);
        assert_eq!(self_intersection(&z.polygon), None);
        let bow = [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)];
        assert_eq!(self_intersection(&bow), Some((0, 2)));
    }

    /// A scripted walk: 10 Hz positions along straight legs with stops, flickering over the
    /// door zone's edge, passing through a zone too fast to count.
    #[test]
    fn scripted_path_gives_the_expected_visits_and_dwell() {
        let zones = vec![
            rect("door", 0.0, 0.0, 2.0, 2.0),
            rect("shelf", 5.0, 0.0, 7.0, 2.0),
            rect("till", 10.0, 0.0, 12.0, 2.0),
            rect("narrow", 3.0, 0.0, 3.3, 2.0),
        ];
        let rules = VisitRules {
            min_dwell_ms: 1000,
            exit_grace_ms: 1500,
        };
        let mut path: Vec<(i64, (f64, f64))> = Vec::new();
        let mut t = 0i64;
        let mut at = |x: f64, ms: i64, path: &mut Vec<_>| {
            for _ in 0..ms / 100 {
                path.push((t, (x, 1.0)));
                t += 100;
            }
        };
        at(1.0, 3000, &mut path); // door 0 .. 2.9 s
        at(2.2, 800, &mut path); // flicker out (0.8 s < grace)
        at(1.8, 1000, &mut path); // back in door: 3.8 .. 4.7 s
        at(3.1, 500, &mut path); // narrow zone for 0.4 s: too short
        at(6.0, 5000, &mut path); // shelf 5.3 .. 10.2 s
        at(8.0, 2000, &mut path);
        at(11.0, 4000, &mut path); // till 12.3 .. 16.2 s
        let mut zt = ZoneTracker::new(zones.len());
        let mut visits = Vec::new();
        for (ts, p) in path {
            visits.extend(zt.update(&zones, &rules, ts, p));
        }
        visits.extend(zt.finish(&zones, &rules));
        let got: Vec<(&str, Option<&str>, i64, i64)> = visits
            .iter()
            .map(|v| (&*v.zone, v.from_zone.as_deref(), v.enter_ms, v.dwell_ms()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("door", None, 0, 4700),
                ("shelf", Some("door"), 5300, 4900),
                ("till", Some("shelf"), 12300, 3900),
            ]
        );
    }
}
