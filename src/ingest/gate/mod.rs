//! Which of a camera's frames are decoded, and which decoded frames are analysed.
//!
//! Input: each compressed frame on its way into the decoder, in decode order, with its key-frame
//! flag and presentation time ([`FrameGate::admit`]: decode, skip or shed); each decoded frame
//! on its way out, in presentation order ([`FrameGate::take`]: analyse or not). Output: those
//! verdicts. Pure: times are inputs.
//!
//! The analysed frames are picked at the decoder's output, where frames come in presentation
//! order whatever the encoder did (B-frames send frames in decode order, their times going back
//! and forth): one per 1/`detect_fps` on an even grid, a frame half a frame early filling its
//! slot, the grid restarting at a frame after a gap (a camera that stopped, or a smart codec
//! that slowed down) instead of catching up. A camera slower than `detect_fps` has every frame
//! analysed, as has one at `detect_fps = 0` while it is not limited (below).
//!
//! Skipping at the input saves decoding. A key frame decodes on its own; a delta frame needs every
//! frame since the last key frame. When the longest of the last GOPs spans a whole number k of
//! detection intervals, [`FrameGate`] places the analysed frames from each key frame on and leaves
//! the frames after the GOP's k-th analysed frame undecoded (k = 1: key frames only; with a key
//! frame a second, 2 fps decodes frames 0–5 of 10 and 3 fps frames 0–7); the output grid restarts
//! at each such key frame, so it picks exactly the frames decoded for it. Key frames faster than
//! `detect_fps` are decoded only when analysed. A stream with frames out of presentation order
//! (B-frames) is cut only to key frames (k = 1 or key frames faster than detect fps): a GOP's later
//! frames are referenced by frames sent after them, and an open GOP's leading B-frames by the
//! previous GOP's tail; so after a skipped tail the next GOP's leading frames (earlier than its key
//! frame) are skipped too, and only those: a key frame is a random-access point (H.264's recovery
//! point, H.265's CRA), so no frame shown after it refers to one shown before it. A gap in the
//! frames (a "smart codec" slowing down on a still scene, a lost frame) means a GOP may last longer
//! than planned: no tail is cut in a GOP with a gap before its tail, nor planned while the measured
//! key frames reach back to a gap. Otherwise (another ratio) every frame is decoded. A GOP shorter
//! than planned (a key frame the camera inserted, a recording's loop) ends before its tail is cut,
//! its key frame restarting the grid; the first GOP longer than any of the last ones without a gap
//! in its frames is cut after its k-th analysed frame, and the GOPs after it are planned for its
//! length. The plan changes only at a key frame, so the decoder never gets a delta frame whose
//! references it skipped — but for a camera waking mid-GOP whose decoder is given the GOP again
//! from its key frame ([`FrameGate::resume`]).
//!
//! A camera may be given a lower rate than it asks for while it runs ([`FrameGate::set_limit`]:
//! its fair share of an overloaded detector, or its idle rate), a camera at `detect_fps = 0`
//! (every frame, asking for its stream's frame rate: [`FrameGate::asked_fps`]) too. Then, once
//! the key-frame rate is known, each GOP gets a whole number of analysed frames (its share of
//! the mean GOP), the fraction carried from GOP to GOP (a share of 1.5 frames per GOP analyses
//! 1, 2, 1, 2, ...), placed evenly from its key frame and decoded only up to the last (key
//! frames only, with B-frames), even in a GOP longer than the mean or with a gap (a limited
//! camera's share is what it gets: a whole GOP decoded to pick a frame from it takes the CPU
//! the shares are made of); a GOP given none is not decoded at all. So a limited camera decodes
//! little more than it analyses.
//!
//! While the camera's decoding lags its stream ([`FrameGate::set_backlog`]: the packets waiting
//! for the decoder, `super::backlog`), the frames a plan would decode are shed instead
//! ([`Verdict::Shed`]): behind, each GOP from its key frame on (its analysed frames forfeit, not
//! carried); far behind, the current GOP from the next frame on. The rest of a cut GOP, and an
//! open GOP's leading frames after it, are not decoded, so the decoder never gets a frame whose
//! references it skipped, and the camera catches up on parsing alone. After packets lost before
//! the decoder the same holds until a key frame that lost none ([`Verdict::Damaged`], `damage`).

use std::collections::{BTreeSet, VecDeque};
mod damage;
mod decode;
mod grid;
mod key_due;
pub use damage::Gap;
pub use decode::Decode;
use grid::on_grid;

/// Key frames remembered to measure the key-frame rate (the rate is known from the second).
const KEYS_MEASURED: usize = 4;
/// Relative slack when comparing detect fps with a multiple of the key-frame rate.
const RATE_TOLERANCE: f64 = 0.02;
/// Key frames where the output grid restarts, not yet out of the decoder, at most.
const ANCHORS_MAX: usize = 8;
/// Detection slots remembered to count each once (frames arrive out of order by a few).
const SLOTS_KEPT: u64 = 64;
const NS_PER_S: u64 = 1_000_000_000;
/// A frame further behind the newest one than this is a restart of the timestamps, not
/// B-frame reordering.
const REORDER_MAX_NS: u64 = 2 * NS_PER_S;

/// What to do with one compressed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Needed: an analysed frame, or one an analysed frame depends on.
    Decode,
    /// Not needed by any analysed frame.
    Skip,
    /// Not decoded because the camera's decoding is behind its stream: the rest of the GOP is
    /// shed, so the decoder catches up without packets dropped in front of it.
    Shed,
    /// Not decoded because a packet before it was lost and no key frame came since
    /// ([`FrameGate::packets_lost`]).
    Damaged,
}

/// How far the camera's decoding lags its stream (the packets waiting for it), told to the gate
/// before each frame ([`FrameGate::set_backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Backlog {
    /// Decoding keeps up.
    #[default]
    Keeping,
    /// Behind: the next GOP is shed whole (from its key frame).
    Behind,
    /// Far behind: the current GOP is cut at this frame too.
    Far,
}

/// How the current GOP is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Every frame; the analysed ones on an even grid.
    Every,
    /// Key frames only, those the grid wants (key frames come faster than detect fps).
    KeyOnly,
    /// Frames up to the GOP's k-th analysed one, analysed frames placed from the key frame
    /// (k = 1: the key frame only).
    Aligned(u32),
    /// No frame of the GOP (a limited camera's GOP given no analysed frame).
    Skip,
}

/// Per-connection state of one camera's decoder input and output.
#[derive(Debug)]
pub struct FrameGate {
    mode: Decode,
    detect_fps: u32,
    /// Timestamps (ns) of the last key frames, oldest first.
    keys: VecDeque<u64>,
    plan: Plan,
    /// Frames (decode order) of the last complete GOP, and since the current GOP's key frame.
    gop_frames: u32,
    in_gop: u32,
    /// Analysed frames foreseen in the current GOP; with `Aligned`, the rest of it is skipped.
    chosen_in_gop: u32,
    tail: bool,
    /// Frames of this GOP were skipped: the next GOP's leading B-frames lack their references.
    skipped_in_gop: bool,
    /// The current GOP's key frame time, while its leading frames (earlier ones) are skipped.
    skip_before: Option<u64>,
    /// Previous input frame's timestamp and the stream's frame interval (ns, 0 = not known).
    last_in: Option<u64>,
    frame_ns: u64,
    /// Frames arrive out of timestamp order (B-frames).
    reordered: bool,
    /// The newest timestamp in, and the furthest a frame came behind it (ns).
    newest: u64,
    reorder_ns: u64,
    /// Time of the last gap in the frames (a camera slowing down, a frame lost).
    last_gap: Option<u64>,
    /// A gap came in the current GOP before its tail: the GOP may run longer than planned.
    gap_in_gop: bool,
    /// Input side: the next slot an analysed frame is foreseen for (Aligned, KeyOnly).
    in_slot: Option<u64>,
    /// Output side: the next analysis slot.
    out_slot: Option<u64>,
    /// Key frames where the output grid restarts (Aligned plan) and the grid's interval from
    /// there (ns), oldest first.
    anchors: VecDeque<(u64, u64)>,
    /// The rate given while running (fair share, idle rate), fps; None: `detect_fps`.
    limit: Option<f64>,
    /// Analysed frames owed to the next GOPs under a limit (the fraction left over).
    carry: f64,
    /// Interval of the analysis grid (ns): input side, and output side outside Aligned plans.
    grid_ns: u64,
    out_grid_ns: u64,
    /// Recent detection slots (pts / interval) that had a frame.
    slots: BTreeSet<u64>,
    /// The decoder's lag, as last told.
    backlog: Backlog,
    /// The rest of the current GOP is shed (decoding was behind).
    shed: bool,
    /// Packets were lost since the last key frame that lost none (`damage`).
    damage: Option<damage::Damage>,
}

impl FrameGate {
    /// A gate for `mode` at `detect_fps` (0: every frame).
    pub fn new(mode: Decode, detect_fps: u32) -> Self {
        Self {
            mode,
            detect_fps,
            keys: VecDeque::with_capacity(KEYS_MEASURED),
            plan: if mode == Decode::Keyframes {
                Plan::KeyOnly
            } else {
                Plan::Every
            },
            gop_frames: 0,
            in_gop: 0,
            chosen_in_gop: 0,
            tail: false,
            skipped_in_gop: false,
            skip_before: None,
            last_in: None,
            frame_ns: 0,
            reordered: false,
            newest: 0,
            reorder_ns: 0,
            last_gap: None,
            gap_in_gop: false,
            in_slot: None,
            out_slot: None,
            anchors: VecDeque::with_capacity(ANCHORS_MAX),
            slots: BTreeSet::new(),
            limit: None,
            carry: 0.0,
            backlog: Backlog::Keeping,
            shed: false,
            damage: None,
            grid_ns: NS_PER_S / u64::from(detect_fps.max(1)),
            out_grid_ns: NS_PER_S / u64::from(detect_fps.max(1)),
        }
    }

    /// Limits the camera to `fps` analysed frames a second (None: back to `detect_fps`); takes
    /// effect at the next key frame once the GOP is known, at once otherwise.
    pub fn set_limit(&mut self, fps: Option<f64>) {
        let fps =
            fps.filter(|f| *f > 0.0 && (self.detect_fps == 0 || *f < f64::from(self.detect_fps)));
        if fps == self.limit {
            return;
        }
        if fps.is_none() {
            self.carry = 0.0;
        }
        self.limit = fps;
        if !matches!(self.plan, Plan::Aligned(_)) {
            self.grid_ns = self.rate_grid_ns();
            self.out_grid_ns = self.grid_ns;
        }
    }

    /// How far the decoder lags its stream now: from [`Backlog::Behind`] each GOP is shed
    /// from its key frame, at [`Backlog::Far`] the current one from the next frame.
    pub fn set_backlog(&mut self, backlog: Backlog) {
        self.backlog = backlog;
    }

    /// The limit in force (None: `detect_fps`).
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// The grid interval of the camera's rate: `detect_fps` or the limit below it.
    fn rate_grid_ns(&self) -> u64 {
        match self.limit {
            Some(l) => (1e9 / l) as u64,
            None => self.interval_ns(),
        }
    }

    /// A frame with presentation time `t_ns` reached the decoder: whether it is the first in
    /// its detection slot (1/detect_fps), so the count of such frames is how many could be
    /// analysed at most: min(detect_fps, the camera's rate), slot by slot.
    pub fn new_slot(&mut self, t_ns: u64) -> bool {
        if self.detect_fps == 0 {
            return true;
        }
        let slot = t_ns / self.interval_ns();
        if self
            .slots
            .last()
            .is_some_and(|&last| slot + SLOTS_KEPT < last)
        {
            self.slots.clear(); // timestamps restarted
        }
        let new = self.slots.insert(slot);
        while self
            .slots
            .first()
            .is_some_and(|&first| first + SLOTS_KEPT < slot)
        {
            self.slots.pop_first();
        }
        new
    }

    /// What the camera asks the detector for while it sees motion: its `detect_fps`, or with
    /// `detect_fps = 0` (every frame) the stream's frame rate once measured (0 before it is).
    pub fn asked_fps(&self) -> f64 {
        match (self.detect_fps, self.frame_ns) {
            (0, 0) => 0.0,
            (0, frame_ns) => NS_PER_S as f64 / frame_ns as f64,
            (fps, _) => f64::from(fps),
        }
    }

    /// One compressed frame on its way to the decoder (decode order); `t_ns` is its
    /// presentation time.
    pub fn admit(&mut self, key: bool, t_ns: u64) -> Verdict {
        self.measure_frame(t_ns);
        let leading = !key && self.skip_before.is_some_and(|k| t_ns < k);
        let verdict = if key {
            self.key_frame(t_ns)
        } else {
            self.delta_frame(t_ns, leading)
        };
        let verdict = self.after_loss(key, t_ns, verdict);
        // A skipped leading frame leaves the next GOP's leading frames their references: a key
        // frame is a random-access point, so nothing shown after it refers to a frame shown
        // before it.
        if verdict != Verdict::Decode && !leading {
            self.skipped_in_gop = true;
        }
        verdict
    }

    /// The camera woke mid-GOP and its decoder is given the GOP again from its key frame
    /// (`super::hold`): the rest of the GOP is decoded, the output grid restarting at `t_ns`.
    pub fn resume(&mut self, t_ns: u64) {
        self.plan = Plan::Every;
        (self.tail, self.shed, self.skipped_in_gop) = (false, false, false);
        (self.grid_ns, self.in_slot, self.out_slot) = (self.rate_grid_ns(), None, Some(t_ns));
        self.out_grid_ns = self.grid_ns;
        self.anchors.clear();
    }

    /// Whether nothing more of the current GOP is decoded (its tail cut, shed, damaged, key
    /// frames only or a GOP skipped): the decoder's next frame is a key frame.
    pub fn gop_cut(&self) -> bool {
        self.tail || self.shed || self.damaged() || matches!(self.plan, Plan::KeyOnly | Plan::Skip)
    }

    /// Whether [`Self::resume`] applies: not to key frames only.
    pub fn resumable(&self) -> bool {
        self.mode != Decode::Keyframes
    }

    /// One decoded frame (presentation order) with timestamp `t_ns`: whether it is analysed.
    pub fn take(&mut self, t_ns: Option<u64>) -> bool {
        let Some(t) = t_ns.filter(|_| self.detect_fps > 0 || self.limit.is_some()) else {
            return true;
        };
        // The grid restarts at a key frame decoded for an aligned plan.
        while let Some(&(a, grid)) = self.anchors.front() {
            if a > t {
                break;
            }
            self.anchors.pop_front();
            self.out_slot = Some(a);
            self.out_grid_ns = grid;
        }
        let interval = self.out_grid_ns;
        let early = self.early_for(interval);
        on_grid(&mut self.out_slot, t, interval, early)
    }

    /// The current GOP's plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// How far behind the newest frame a frame has come on this connection (ns): B-frame
    /// reordering, 0 without B-frames.
    pub fn reorder_ns(&self) -> u64 {
        self.reorder_ns
    }

    /// Whether frames came out of presentation order (B-frames) on this connection.
    pub fn reordered(&self) -> bool {
        self.reordered
    }

    /// Frames in the last complete GOP (0 before the second key frame).
    pub fn gop_frames(&self) -> u32 {
        self.gop_frames
    }

    fn interval_ns(&self) -> u64 {
        NS_PER_S / u64::from(self.detect_fps.max(1))
    }

    /// How early a frame may be and still fill a slot of `interval`: half a frame (and half a
    /// slot).
    fn early_for(&self, interval: u64) -> u64 {
        (self.frame_ns / 2).min(interval / 2)
    }

    /// The longest of the remembered key-frame intervals (s), from the second key frame on: the
    /// GOP planned for. A shorter GOP ends before its plan does; a longer one is planned for
    /// from its next key frame on.
    fn longest_gop_s(&self) -> Option<f64> {
        let longest = self
            .keys
            .iter()
            .zip(self.keys.iter().skip(1))
            .map(|(a, b)| b - a)
            .max()?;
        (self.keys.len() >= 2 && longest > 0).then(|| longest as f64 / 1e9)
    }

    fn measure_frame(&mut self, t_ns: u64) {
        if let Some(prev) = self.last_in {
            self.reordered |= t_ns < prev;
            if !self.reordered && self.frame_ns > 0 && t_ns > prev + self.frame_ns * 3 / 2 {
                self.last_gap = Some(t_ns);
                self.gap_in_gop = true;
            }
            if t_ns > prev && (self.frame_ns == 0 || t_ns - prev < self.frame_ns) {
                self.frame_ns = t_ns - prev;
            }
        }
        self.last_in = Some(t_ns);
        let behind = self.newest.saturating_sub(t_ns);
        if behind > REORDER_MAX_NS {
            self.newest = t_ns; // timestamps restarted
        } else {
            self.reorder_ns = self.reorder_ns.max(behind);
            self.newest = self.newest.max(t_ns);
        }
    }

    fn key_frame(&mut self, t_ns: u64) -> Verdict {
        if self.keys.back().is_some_and(|&prev| t_ns <= prev) {
            // Timestamps restarted: measure again.
            self.keys.clear();
            self.in_slot = None;
            self.out_slot = None;
            self.anchors.clear();
            self.frame_ns = 0;
        }
        if !self.keys.is_empty() {
            self.gop_frames = self.in_gop + 1;
        }
        if self.keys.len() == KEYS_MEASURED {
            self.keys.pop_front();
        }
        self.keys.push_back(t_ns);
        self.skip_before = (self.skipped_in_gop && self.reordered).then_some(t_ns);
        (self.in_gop, self.chosen_in_gop, self.tail) = (0, 0, false);
        (self.skipped_in_gop, self.gap_in_gop) = (false, false);
        self.plan = self.limited_plan().unwrap_or_else(|| self.plan_for_gop());
        if !matches!(self.plan, Plan::Aligned(_)) {
            self.grid_ns = self.rate_grid_ns();
            self.switch_grid(t_ns);
        }
        let verdict = self.key_verdict(t_ns);
        // Behind: a GOP it would decode is shed whole (the frames it would decode), its analysed
        // frames forfeit (not carried).
        self.shed = verdict == Verdict::Decode && self.backlog >= Backlog::Behind;
        if !self.shed {
            return verdict;
        }
        if matches!(self.plan, Plan::Aligned(_)) {
            self.anchors.pop_back(); // no frame of it reaches the output grid
        }
        Verdict::Shed
    }

    /// The output grid takes the interval of a GOP not planned `Aligned` from its key frame at
    /// `t_ns` on: at once, or, while frames from before it are still to come out (anchors of
    /// earlier GOPs: a decoder holding frames back for B-frames), from an anchor of its own
    /// (else an earlier GOP's anchor, taken later, would put its interval back on this GOP).
    fn switch_grid(&mut self, t_ns: u64) {
        if self.anchors.is_empty() {
            self.out_grid_ns = self.grid_ns;
        } else {
            self.push_anchor(t_ns);
        }
    }

    /// The output grid restarts at `t_ns` with the current grid interval once frames from there
    /// come out (the oldest anchor dropped when [`ANCHORS_MAX`] are pending).
    fn push_anchor(&mut self, t_ns: u64) {
        if self.anchors.len() == ANCHORS_MAX {
            self.anchors.pop_front();
        }
        self.anchors.push_back((t_ns, self.grid_ns));
    }

    /// A key frame's verdict under the GOP's plan.
    fn key_verdict(&mut self, t_ns: u64) -> Verdict {
        match self.plan {
            Plan::Every => Verdict::Decode,
            Plan::Skip => Verdict::Skip,
            Plan::KeyOnly => {
                // A key frame the grid does not want is needed by nothing; a grid starting
                // here keeps the output grid's phase, so leaving `Every` skips no slot.
                self.in_slot = self.in_slot.or(self.out_slot);
                let interval = self.grid_ns;
                let early = self.early_for(interval);
                let unlimited = self.detect_fps == 0 && self.limit.is_none();
                if unlimited || on_grid(&mut self.in_slot, t_ns, interval, early) {
                    Verdict::Decode
                } else {
                    Verdict::Skip
                }
            }
            Plan::Aligned(k) => {
                self.in_slot = Some(t_ns);
                self.push_anchor(t_ns);
                self.foresee(t_ns, k);
                Verdict::Decode
            }
        }
    }

    /// A delta frame's verdict; `leading`: an open GOP's leading frame whose references (the
    /// previous GOP's tail) were skipped.
    fn delta_frame(&mut self, t_ns: u64, leading: bool) -> Verdict {
        self.in_gop += 1;
        if leading {
            return Verdict::Skip;
        }
        let verdict = match self.plan {
            Plan::KeyOnly | Plan::Skip => Verdict::Skip,
            _ if self.tail => Verdict::Skip,
            Plan::Aligned(k) => {
                self.foresee(t_ns, k);
                Verdict::Decode
            }
            Plan::Every => Verdict::Decode,
        };
        // Far behind: the rest of the GOP is cut here (the frames it would decode are shed).
        self.shed |= verdict == Verdict::Decode && self.backlog == Backlog::Far;
        if self.shed && verdict == Verdict::Decode {
            Verdict::Shed
        } else {
            verdict
        }
    }

    /// Counts the frame at `t_ns` if the output grid will pick it; after the GOP's k-th, the
    /// rest of the GOP is not needed.
    fn foresee(&mut self, t_ns: u64, k: u32) {
        let interval = self.grid_ns;
        let early = self.early_for(interval);
        if on_grid(&mut self.in_slot, t_ns, interval, early) {
            self.chosen_in_gop += 1;
            // After a gap the GOP may last longer than k intervals: nothing is cut, unless the
            // camera is limited (then its share is what it gets, and the tail costs others').
            self.tail = self.chosen_in_gop >= k && (!self.gap_in_gop || self.limit.is_some());
        }
    }

    fn plan_for_gop(&mut self) -> Plan {
        match self.mode {
            Decode::All => Plan::Every,
            Decode::Keyframes => Plan::KeyOnly,
            Decode::Auto => {
                let Some(gop_s) = self.longest_gop_s().filter(|_| self.detect_fps > 0) else {
                    return Plan::Every;
                };
                let k = f64::from(self.detect_fps) * gop_s;
                let whole = k.round();
                if k < 1.0 - RATE_TOLERANCE {
                    Plan::KeyOnly
                } else if (k - whole).abs() <= whole * RATE_TOLERANCE
                    && (whole as u32) < self.gop_frames
                    && (whole == 1.0 || !self.reordered)
                    && self
                        .last_gap
                        .is_none_or(|g| self.keys.front().is_some_and(|&f| g < f))
                {
                    self.grid_ns = self.interval_ns();
                    Plan::Aligned(whole as u32)
                } else {
                    Plan::Every
                }
            }
        }
    }

    /// Under a limit (not with `decode = "all"`): this GOP's whole number of analysed frames,
    /// the fraction carried on; their grid spans the mean GOP evenly, and the rest of the GOP
    /// is not decoded even if it runs longer. A limited camera is one the box cannot serve in
    /// full: decoding a whole GOP to pick a frame or two from it takes the CPU the shares are
    /// made of (measured at 96 cameras × 5 fps: GOPs of changing length, from the simulator's
    /// loop and key frames lost in starved cameras' queues, were decoded whole, and half the
    /// frames decoded were never analysed).
    fn limited_plan(&mut self) -> Option<Plan> {
        let limit = self.limit.filter(|_| self.mode != Decode::All)?;
        let gop_s = 1.0 / self.key_rate()?;
        let owed = limit * gop_s + self.carry;
        let mut k = owed.floor().max(0.0);
        self.carry = (owed - k).min(1.0);
        if self.reordered {
            k = k.min(1.0); // B-frames: key frames only, never between
        }
        if k as u32 >= self.gop_frames.max(1) {
            return None; // every frame or more: the ordinary plan
        }
        if k == 0.0 {
            return Some(Plan::Skip);
        }
        self.grid_ns = (gop_s * 1e9 / k) as u64;
        Some(Plan::Aligned(k as u32))
    }
}

#[cfg(test)]
mod tests;
