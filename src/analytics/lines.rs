//! Counting lines: people crossing a directed polyline, `in` from its left to its right.
//!
//! Input: positions of trajectories (store trajectories in floor metres, or one camera's track
//! bottom-centre points in pixels for a line drawn on an uncalibrated camera), each with its
//! time. Output: [`Crossing`]s, each counted once per person.
//!
//! Hysteresis (docs/analytics-lines-queues.md has the picture): around the line lies a band
//! `band_m` wide on each side. A trajectory reaches a *side* when it has stayed beyond the band
//! on that side for `confirm_ms`; a crossing is a side reached that is the opposite of the side
//! reached before. Standing on the line, a box flickering across it and a walk up to it and
//! back never leave the band on the far side, so they count nothing. Walking round the end of
//! a floor line (positions that project past its ends, outside the band) forgets the side (on
//! a camera's picture the ends are open: draw that line across the whole doorway). A
//! trajectory that *begins* near the line (within `band_m + handover_m`) takes over the side of
//! the trajectory that vanished nearest to it at most `handover_ms` before ([`super::handover`]):
//! an ID switch at the line neither loses the crossing nor counts it twice.
//!
//! "Left" is as seen on the floor plan or in the camera image (x right, y down) facing from
//! the first point to the last. On a camera's line, distances given in metres are converted to
//! pixels through the person's box height ([`PERSON_HEIGHT_M`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::handover::{self, DEFAULT_HANDOVER_M, DEFAULT_HANDOVER_MS, Handover, OVERLAP_MS, Seen};

/// Default half-width of the band around a line, metres.
pub const DEFAULT_BAND_M: f64 = 0.4;
/// Default time a trajectory must stay beyond the band before it counts as on that side.
pub const DEFAULT_CONFIRM_MS: i64 = 200;
/// Height of a standing person: converts metres to pixels on a camera's line (box height).
pub const PERSON_HEIGHT_M: f64 = 1.7;
/// A trajectory that began near the line looks for its predecessor this long after its first
/// position (by then a neighbour still walking beside it has been seen again, so it is not
/// taken for a predecessor).
const RESOLVE_AFTER_MS: i64 = 1_000;
/// Longest chain of hand-overs followed back (a person standing on the line through several
/// ID switches).
const MAX_CHAIN: usize = 8;
/// A trajectory silent this long without an end is dropped.
const STALE_MS: i64 = 600_000;

fn default_band() -> f64 {
    DEFAULT_BAND_M
}
fn default_confirm() -> i64 {
    DEFAULT_CONFIRM_MS
}

/// One `[[lines]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSettings {
    /// Line id (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// Display name (the id when empty).
    #[serde(default)]
    pub name: Option<String>,
    /// Vertices `[x, y]` in floor metres, first to last (at least two).
    #[serde(default)]
    pub points: Vec<[f64; 2]>,
    /// Camera whose tracks this line counts (with `pixels`, instead of `points`).
    #[serde(default)]
    pub camera: Option<String>,
    /// Vertices `[u, v]` in that camera's image pixels.
    #[serde(default)]
    pub pixels: Vec<[f64; 2]>,
    /// `in` means entering the store: the line corrects the store's occupancy.
    #[serde(default)]
    pub door: bool,
    /// Half-width of the band around the line, metres.
    #[serde(default = "default_band")]
    pub band_m: f64,
    /// Time beyond the band before a side counts, ms.
    #[serde(default = "default_confirm")]
    pub confirm_ms: i64,
    /// Longest gap of an ID switch taken over, ms.
    #[serde(default = "super::handover::default_handover_ms")]
    pub handover_ms: i64,
    /// Farthest jump of an ID switch taken over, metres.
    #[serde(default = "super::handover::default_handover_m")]
    pub handover_m: f64,
}

impl LineSettings {
    /// A floor line with default hysteresis.
    pub fn floor(id: &str, points: &[[f64; 2]]) -> Self {
        Self {
            id: id.into(),
            name: None,
            points: points.to_vec(),
            camera: None,
            pixels: Vec::new(),
            door: false,
            band_m: DEFAULT_BAND_M,
            confirm_ms: DEFAULT_CONFIRM_MS,
            handover_ms: DEFAULT_HANDOVER_MS,
            handover_m: DEFAULT_HANDOVER_M,
        }
    }

    /// Every problem, as `line "id": ...` messages.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let id = &self.id;
        if !super::valid_id(id) {
            p.push(format!(
                "line id {id:?}: use letters, digits, '-', '_' or '.'"
            ));
        }
        match (self.points.is_empty(), &self.camera, self.pixels.is_empty()) {
            (false, None, true) => check_vertices(id, "points", &self.points, &mut p),
            (true, Some(_), false) => check_vertices(id, "pixels", &self.pixels, &mut p),
            (true, Some(_), true) => p.push(format!("line {id:?}: camera needs pixels")),
            (true, None, false) => p.push(format!("line {id:?}: pixels need a camera")),
            (true, None, true) => {
                p.push(format!("line {id:?}: give points (or camera and pixels)"))
            }
            (false, _, _) => p.push(format!(
                "line {id:?}: give either points or camera and pixels, not both"
            )),
        }
        if !(self.band_m > 0.0 && self.band_m <= 5.0) {
            p.push(format!("line {id:?}: band_m must be above 0 and at most 5"));
        }
        if !(0..=10_000).contains(&self.confirm_ms) {
            p.push(format!("line {id:?}: confirm_ms must be from 0 to 10000"));
        }
        if !(0..=60_000).contains(&self.handover_ms) {
            p.push(format!("line {id:?}: handover_ms must be from 0 to 60000"));
        }
        if !(self.handover_m >= 0.0 && self.handover_m <= 10.0) {
            p.push(format!("line {id:?}: handover_m must be from 0 to 10"));
        }
        p
    }

    /// The counter for this line (settings already validated).
    pub fn counter(&self) -> LineCounter {
        let v = if self.points.is_empty() {
            &self.pixels
        } else {
            &self.points
        };
        LineCounter::new(
            Polyline::new(v.iter().map(|p| (p[0], p[1])).collect()),
            LineParams {
                band_m: self.band_m,
                confirm_ms: self.confirm_ms,
                handover: Handover {
                    window_ms: self.handover_ms,
                    distance: self.handover_m,
                },
                ends: self.camera.is_none(),
            },
        )
    }
}

fn check_vertices(id: &str, key: &str, v: &[[f64; 2]], p: &mut Vec<String>) {
    if v.len() < 2 {
        p.push(format!("line {id:?}: {key} needs at least 2 vertices"));
    }
    if v.iter().flatten().any(|c| !c.is_finite()) {
        p.push(format!("line {id:?}: {key} must be finite numbers"));
    } else if v.windows(2).any(|w| w[0] == w[1]) {
        p.push(format!(
            "line {id:?}: {key} has two equal consecutive vertices"
        ));
    }
}

/// Which way a line was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the left of the directed line to its right.
    In,
    /// From the right to the left.
    Out,
}

impl Direction {
    /// The name used in JSON and event ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A side of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Left of the directed line (x right, y down).
    Left,
    /// Right of it.
    Right,
}

/// Where a position lies relative to a polyline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    /// Distance to the nearest point of the line, positive on its left.
    pub signed: f64,
    /// The nearest point is an end point and the position lies past it.
    pub off_end: bool,
}

/// A directed polyline (at least two distinct vertices).
#[derive(Debug, Clone, PartialEq)]
pub struct Polyline {
    v: Vec<(f64, f64)>,
}

impl Polyline {
    /// The polyline through `v`.
    pub fn new(v: Vec<(f64, f64)>) -> Self {
        Self { v }
    }

    /// Vertices.
    pub fn vertices(&self) -> &[(f64, f64)] {
        &self.v
    }

    /// Signed distance of `p` (positive on the left) and whether it lies past an end.
    pub fn locate(&self, p: (f64, f64)) -> Located {
        let last = self.v.len() - 2;
        let mut best = (f64::INFINITY, 0usize, 0.0f64);
        for i in 0..=last {
            let (a, b) = (self.v[i], self.v[i + 1]);
            let d = (b.0 - a.0, b.1 - a.1);
            let t = ((p.0 - a.0) * d.0 + (p.1 - a.1) * d.1) / (d.0 * d.0 + d.1 * d.1);
            let c = t.clamp(0.0, 1.0);
            let dist = handover::dist(p, (a.0 + c * d.0, a.1 + c * d.1));
            if dist < best.0 {
                best = (dist, i, t);
            }
        }
        let (dist, i, t) = best;
        let left = |j: usize| {
            let (a, b) = (self.v[j], self.v[j + 1]);
            let len = handover::dist(a, b);
            ((b.1 - a.1) / len, -(b.0 - a.0) / len)
        };
        let off_end = (i == 0 && t < 0.0) || (i == last && t > 1.0);
        // At an inner vertex the side follows the mean of the two segments' left normals.
        let (n, origin) = if t <= 0.0 && i > 0 {
            let (n0, n1) = (left(i - 1), left(i));
            ((n0.0 + n1.0, n0.1 + n1.1), self.v[i])
        } else if t >= 1.0 && i < last {
            let (n0, n1) = (left(i), left(i + 1));
            ((n0.0 + n1.0, n0.1 + n1.1), self.v[i + 1])
        } else {
            (left(i), self.v[i])
        };
        let s = (p.0 - origin.0) * n.0 + (p.1 - origin.1) * n.1;
        Located {
            signed: if s < 0.0 { -dist } else { dist },
            off_end,
        }
    }
}

/// Hysteresis of one line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineParams {
    /// Half-width of the band, metres.
    pub band_m: f64,
    /// Time beyond the band before a side counts, ms.
    pub confirm_ms: i64,
    /// ID switches taken over (distance in metres).
    pub handover: Handover,
    /// Walking round an end of the line forgets the side reached. True on the floor; false on
    /// a camera's picture, where the perpendicular at an end is not the floor's (people near
    /// the camera are drawn wider apart than the line drawn further away).
    pub ends: bool,
}

/// A counted crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    /// Trajectory key (store trajectory id, or camera track id on a camera's line).
    pub key: u64,
    /// Which way.
    pub direction: Direction,
    /// When the far side was reached (the crossing became certain), Unix ms.
    pub ts_ms: i64,
    /// When the path crossed the line itself (interpolated), Unix ms.
    pub crossed_ms: i64,
}

#[derive(Debug, Clone)]
struct Track {
    first: Seen,
    last: Seen,
    /// Units per metre at the first position.
    scale: f64,
    /// Signed distance of the last position (None after one past an end).
    last_signed: Option<f64>,
    /// Side reached last.
    side: Option<Side>,
    /// Beyond the band on this side since this time, not reached yet.
    pending: Option<(Side, i64)>,
    /// Last time the path crossed the line.
    crossed_ms: Option<i64>,
    /// Began near the line and has not looked for a predecessor yet.
    unresolved: bool,
    /// The first side it reached while unresolved: (side, time, line crossed at).
    early: Option<(Side, i64, Option<i64>)>,
    /// Gave its side to a successor.
    donated: bool,
    ended: bool,
}

impl Track {
    /// Now at `seen`, `signed` from the line (None past an end): notes when the path crossed.
    fn moved(&mut self, seen: Seen, signed: Option<f64>) {
        if let (Some(s0), Some(s1)) = (self.last_signed, signed)
            && (s0 < 0.0) != (s1 < 0.0)
        {
            let f = s0 / (s0 - s1);
            let dt = (seen.ts_ms - self.last.ts_ms) as f64;
            self.crossed_ms = Some(self.last.ts_ms + (dt * f).round() as i64);
        }
        (self.last, self.last_signed) = (seen, signed);
    }
}

/// Counts one line's crossings over many trajectories.
#[derive(Debug, Clone)]
pub struct LineCounter {
    line: Polyline,
    p: LineParams,
    tracks: BTreeMap<u64, Track>,
}

impl LineCounter {
    /// A counter for `line`.
    pub fn new(line: Polyline, p: LineParams) -> Self {
        Self {
            line,
            p,
            tracks: BTreeMap::new(),
        }
    }

    /// The line.
    pub fn line(&self) -> &Polyline {
        &self.line
    }

    /// Trajectories held.
    pub fn held(&self) -> usize {
        self.tracks.len()
    }

    /// Feeds a position of trajectory `key` (times non-decreasing per key). `scale` is units
    /// per metre: 1 on the floor, box height / [`PERSON_HEIGHT_M`] in pixels. Returns the
    /// crossings it completed (a crossing of a predecessor settled now among them).
    pub fn observe(&mut self, key: u64, ts_ms: i64, pos: (f64, f64), scale: f64) -> Vec<Crossing> {
        let loc = self.line.locate(pos);
        let band = self.p.band_m * scale;
        let reach = (self.p.band_m + self.p.handover.distance) * scale;
        let seen = Seen { ts_ms, pos };
        let t = self.tracks.entry(key).or_insert_with(|| Track {
            first: seen,
            last: seen,
            scale,
            last_signed: None,
            side: None,
            pending: None,
            crossed_ms: None,
            unresolved: loc.signed.abs() <= reach && !(loc.off_end && self.p.ends),
            early: None,
            donated: false,
            ended: false,
        });
        if ts_ms < t.last.ts_ms {
            return Vec::new();
        }
        let away = self.p.ends && loc.off_end && loc.signed.abs() > band;
        t.moved(seen, (!away).then_some(loc.signed));
        let mut out = Vec::new();
        if t.unresolved && ts_ms - t.first.ts_ms >= RESOLVE_AFTER_MS {
            // By now a neighbour still walking beside it has been seen again.
            self.resolve(key, 0, &mut out);
        }
        let Some(t) = self.tracks.get_mut(&key) else {
            return out;
        };
        if away {
            // Round the end of the line: where it came from no longer says anything.
            (t.side, t.pending, t.unresolved, t.early) = (None, None, false, None);
            return out;
        }
        if loc.signed.abs() <= band {
            t.pending = None;
            return out;
        }
        let side = if loc.signed > 0.0 {
            Side::Left
        } else {
            Side::Right
        };
        let since = match t.pending {
            Some((s, since)) if s == side => since,
            _ => ts_ms,
        };
        t.pending = Some((side, since));
        if ts_ms - since >= self.p.confirm_ms && t.side != Some(side) {
            out.extend(self.reach(key, side, ts_ms));
        }
        out
    }

    /// Trajectory `key` is over (it stays a possible predecessor for a while); returns a
    /// crossing settled now.
    pub fn end(&mut self, key: u64) -> Vec<Crossing> {
        let mut out = Vec::new();
        self.resolve(key, 0, &mut out);
        if let Some(t) = self.tracks.get_mut(&key) {
            t.ended = true;
        }
        out
    }

    /// Settles trajectories silent long enough and drops those no successor can take over
    /// any more; returns crossings settled now.
    pub fn prune(&mut self, now_ms: i64) -> Vec<Crossing> {
        let quiet: Vec<u64> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.unresolved && now_ms - t.last.ts_ms > RESOLVE_AFTER_MS)
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for k in quiet {
            self.resolve(k, 0, &mut out);
        }
        let keep = 3 * (self.p.handover.window_ms + RESOLVE_AFTER_MS);
        self.tracks.retain(|_, t| {
            let quiet = now_ms.saturating_sub(t.last.ts_ms);
            quiet <= STALE_MS && !(t.ended && quiet > keep)
        });
        out
    }

    /// Trajectory `key` reached `side`: a crossing when it had reached the other one before.
    fn reach(&mut self, key: u64, side: Side, ts_ms: i64) -> Option<Crossing> {
        let t = self.tracks.get_mut(&key)?;
        let before = t.side.replace(side);
        if before.is_none() && t.unresolved {
            // Where it came from is settled later (its predecessor's side).
            t.early = Some((side, ts_ms, t.crossed_ms));
            return None;
        }
        crossing(key, before?, side, ts_ms, t.crossed_ms)
    }

    /// Gives a trajectory that began near the line the side of its predecessor, if any; the
    /// side it reached before that may make a crossing.
    fn resolve(&mut self, key: u64, depth: usize, out: &mut Vec<Crossing>) {
        let Some(t) = self.tracks.get_mut(&key) else {
            return;
        };
        if !t.unresolved {
            return;
        }
        t.unresolved = false;
        let donor = self.matched_predecessor(key);
        if let Some(d) = donor
            && depth < MAX_CHAIN
        {
            self.resolve(d, depth + 1, out);
        }
        let (side, crossed) = match donor.and_then(|d| self.tracks.get_mut(&d)) {
            Some(d) => {
                d.donated = true;
                d.pending = None;
                (d.side.take(), d.crossed_ms)
            }
            None => (None, None),
        };
        let Some(t) = self.tracks.get_mut(&key) else {
            return;
        };
        match t.early.take() {
            Some((reached, ts, own)) => {
                out.extend(side.and_then(|s| crossing(key, s, reached, ts, own.or(crossed))));
            }
            None => {
                t.side = t.side.or(side);
                t.crossed_ms = t.crossed_ms.or(crossed);
            }
        }
    }
}

impl LineCounter {
    /// The predecessor of `key`: trajectories that vanished (not yet given away) and those
    /// that began near the line soon after without settling theirs yet (and `key`) are paired
    /// nearest first (distances in metres, so near and far boxes on a camera's picture compare
    /// fairly), so a predecessor goes to the one that appeared nearest to it, not to the first
    /// to ask (a newcomer and the lost person's new id appearing at the same time).
    fn matched_predecessor(&self, key: u64) -> Option<u64> {
        let h = self.p.handover;
        let mut pairs: Vec<(f64, u64, u64)> = Vec::new();
        for (&dk, d) in self.tracks.iter().filter(|(_, d)| !d.donated) {
            for (&ck, c) in &self.tracks {
                let gap = c.first.ts_ms - d.last.ts_ms;
                let dist = handover::dist(c.first.pos, d.last.pos) / c.scale;
                if ck != dk
                    && (ck == key || c.unresolved)
                    && (-OVERLAP_MS..=h.window_ms).contains(&gap)
                    && dist <= h.distance
                {
                    pairs.push((dist, dk, ck));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let (mut given, mut taken) = (Vec::new(), Vec::new());
        for (_, dk, ck) in pairs {
            if !given.contains(&dk) && !taken.contains(&ck) {
                if ck == key {
                    return Some(dk);
                }
                given.push(dk);
                taken.push(ck);
            }
        }
        None
    }
}

/// The crossing from `before` to `after`, if they differ.
fn crossing(
    key: u64,
    before: Side,
    after: Side,
    ts_ms: i64,
    crossed: Option<i64>,
) -> Option<Crossing> {
    let direction = match (before, after) {
        (Side::Left, Side::Right) => Direction::In,
        (Side::Right, Side::Left) => Direction::Out,
        _ => return None,
    };
    Some(Crossing {
        key,
        direction,
        ts_ms,
        crossed_ms: crossed.unwrap_or(ts_ms),
    })
}

#[cfg(test)]
#[path = "lines_tests.rs"]
mod tests;
