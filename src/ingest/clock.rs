//! Capture time of a camera's frames: strictly increasing, close to the true capture time,
//! intervals as the camera captured them.
//!
//! Input: each compressed frame's arrival at the decoder (decode order: presentation time and
//! a monotonic clock, [`CaptureClock::arrived`]); then per decoded frame (presentation order)
//! its presentation time (pts, from the RTP timestamps: the camera's own spacing), the
//! camera's clock reading from its RTCP sender reports when it sends them (rtspsrc
//! `add-reference-timestamp-meta`), and the host's wall and monotonic clocks
//! ([`CaptureClock::stamp`]). Output: a Unix-millisecond [`Stamp`], and what the camera's clock
//! is doing. Pure: no clock is read here, so every rule below is unit-tested.
//!
//! Reference. A frame's *arrival estimate* is its pts shifted by the lower envelope of
//! (arrival − pts) over the last [`ENVELOPE_WINDOW_MS`]: the time it would have arrived had it
//! been sent at once and not queued. Frames held back by the encoder (B-frames are sent after
//! the later frames they depend on), a burst after a stall or a busy decoder only raise
//! (arrival − pts) above the envelope and change nothing: reordering never looks like skew.
//! The envelope follows a camera clock that runs faster or slower than the host's. The
//! camera's RTCP clock is *not* trusted for absolute time (cameras are minutes off, jump when
//! their NTP client corrects them, drift): once per connection, from its first
//! [`DELAY_SAMPLES`] sender-report times, the capture-to-arrival delay it implies is measured;
//! when that is plausible (0 to [`MAX_CAPTURE_DELAY_MS`], the camera's clock in step with the
//! host's) the reference is the arrival estimate minus that delay (the camera's encoding and
//! network time, which arrival alone cannot see), else the arrival estimate itself. The
//! camera's clock offset from the reference is reported continuously ([`Stamp::camera`]) and
//! a change of more than [`CAMERA_JUMP_MS`] counted as a jump; neither moves the stamps.
//!
//! Stamps. The first frame is stamped with the reference (or just after the camera's last
//! stored time). Each later frame advances the previous stamp by the pts difference (the
//! camera's spacing; the monotonic arrival difference when the pts are missing or jumped), and
//! is then trimmed towards the reference by at most 1/[`TRIM_DIVISOR`] of that difference when
//! they differ by more than [`DEADBAND_MS`] (so an interval is never changed by more than
//! 0.5 %). Further behind the reference than [`STEP_MS`] for [`STEP_CONFIRM_MS`] (the host's
//! clock set forward, a long outage), the stamps step forward to it; further ahead than
//! [`STEP_MS`] (the host's clock set back), they advance 1/[`SLEW_DIVISOR`] slower until close.
//! A stamp is always at least 1 ms after the previous one, and a camera's first stamp in a new
//! service run follows its last stored one (unless that is more than [`MAX_RESUME_AHEAD_MS`]
//! ahead).

use std::collections::VecDeque;

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;
/// The arrival envelope is the lowest (arrival − pts) over this much monotonic time: long
/// enough to hold a least-delayed frame of every GOP pattern and network hiccup, short enough
/// that a camera clock slower than the host's lags by little (4 ms at 1,000 ppm).
pub const ENVELOPE_WINDOW_MS: i64 = 4_000;
/// A frame whose (arrival − pts) is this far from the envelope restarts it (the stream's
/// timestamps jumped, or the connection changed).
pub const ENVELOPE_RESET_MS: i64 = 5_000;
/// Sender-report times used to measure the camera's capture-to-arrival delay.
pub const DELAY_SAMPLES: usize = 9;
/// Longest capture-to-arrival delay believed (encoding and network); a camera clock implying
/// more, or implying frames arrived before they were captured (by more than
/// [`CLOCK_AHEAD_SLACK_MS`]), is not in step with the host's.
pub const MAX_CAPTURE_DELAY_MS: i64 = 1_000;
/// How far ahead of arrival a camera clock in step with the host's may seem (clock sync error).
pub const CLOCK_AHEAD_SLACK_MS: i64 = 100;
/// A change of the camera clock's offset by more than this is reported as a jump.
pub const CAMERA_JUMP_MS: i64 = 100;
/// Stamps within this of the reference are not corrected (millisecond rounding of the inputs).
pub const DEADBAND_MS: i64 = 2;
/// Outside the deadband, a stamp moves towards the reference by at most 1/TRIM_DIVISOR of the
/// elapsed time (0.5 %: a 100 ms interval becomes 99.5 to 100.5 ms).
pub const TRIM_DIVISOR: i64 = 200;
/// Beyond this from the reference, stamps step forward (behind) or slew (ahead).
pub const STEP_MS: i64 = 1_000;
/// The reference must stay ahead of the stamps this long before they step forward to it.
pub const STEP_CONFIRM_MS: i64 = 2_000;
/// While far ahead of the reference, stamps advance by `elapsed - elapsed / SLEW_DIVISOR`
/// (5 % slower: an hour of host clock set back is absorbed in 20 hours).
pub const SLEW_DIVISOR: i64 = 20;
/// A camera resumes after its last stored time only if that is at most this far ahead of the
/// first new reference; further (a host clock set back by more, or a bad stored time), the new
/// stamps start at the reference and a warning is logged.
pub const MAX_RESUME_AHEAD_MS: i64 = 60_000;
/// Stream time ahead of arrival time by more than this between two frames is a pts jump.
pub const PTS_JUMP_MS: i64 = 2_000;

/// What is known at one decoded frame's stamping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Stream presentation time, ms (None: the buffer had none).
    pub pts_ms: Option<i64>,
    /// The camera's clock at capture, from RTCP sender reports, Unix ms.
    pub ntp_ms: Option<i64>,
    /// Host wall clock now, Unix ms.
    pub wall_ms: i64,
    /// Host monotonic clock now, ms from the same origin as [`CaptureClock::arrived`]'s.
    pub mono_ms: i64,
}

/// Which time the stamps are referenced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Arrival, less the capture delay measured from the camera's clock (in step with ours).
    Ntp,
    /// Arrival (no camera clock, or one not in step with ours).
    Arrival,
}

/// What the clock did at a frame besides following the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjust {
    /// Stamp = previous stamp + elapsed stream time.
    None,
    /// First frame: stamp = reference.
    Start,
    /// Moved towards the reference by at most 0.5 % of the elapsed time; the reference was
    /// this many ms ahead (positive) or behind (negative).
    Trim(i64),
    /// The reference was ahead by this many ms: stamp moved forward to it.
    StepForward(i64),
    /// The reference is behind by this many ms: stamps advance 5 % slower until close.
    Slew(i64),
    /// The pts jumped: elapsed time taken from the monotonic clock instead.
    PtsJump,
}

/// What the camera's own clock did at this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CameraTime {
    /// The camera clock's offset from the reference, ms (None without sender reports).
    pub offset_ms: Option<i64>,
    /// Its offset moved by this many ms since the last report of it (a jump, or drift).
    pub jumped_ms: Option<i64>,
    /// The capture delay was measured at this frame: Some(delay) when the camera's clock is
    /// in step with ours (the reference becomes [`Reference::Ntp`]), Some(None) when it is not.
    pub measured: Option<Option<i64>>,
}

/// One frame's capture time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Unix ms, strictly greater than the previous stamp of this clock.
    pub ms: i64,
    /// What the stamp is referenced to.
    pub reference: Reference,
    /// What was done to keep it close to the reference.
    pub adjust: Adjust,
    /// First frame only: the stored time to resume after was too far ahead and was ignored.
    pub resume_ignored: bool,
    /// The camera's clock.
    pub camera: CameraTime,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    /// The stamp in µs (trims are fractions of a millisecond per frame).
    us: i64,
    pts_ms: Option<i64>,
    mono_ms: i64,
}

/// The lowest (arrival − pts) over a sliding window (a monotonic deque).
#[derive(Debug, Default)]
struct Envelope {
    /// (arrival ms, lead ms), leads increasing from the front.
    window: VecDeque<(i64, i64)>,
}

impl Envelope {
    fn add(&mut self, pts_ms: i64, mono_ms: i64) {
        let lead = mono_ms - pts_ms;
        if self
            .min()
            .is_some_and(|m| (lead - m).abs() > ENVELOPE_RESET_MS)
        {
            self.window.clear();
        }
        while self.window.back().is_some_and(|&(_, l)| l >= lead) {
            self.window.pop_back();
        }
        self.window.push_back((mono_ms, lead));
        while self
            .window
            .front()
            .is_some_and(|&(at, _)| at < mono_ms - ENVELOPE_WINDOW_MS)
        {
            self.window.pop_front();
        }
    }

    fn min(&self) -> Option<i64> {
        self.window.front().map(|&(_, l)| l)
    }
}

/// The camera clock's capture delay, measured once per connection.
#[derive(Debug, Default)]
enum Delay {
    /// Collecting (arrival estimate − camera time) samples.
    #[default]
    Measuring,
    /// In step with ours: subtract this.
    InStep(i64),
    /// Not in step: use arrival alone.
    Off,
}

/// The capture clock of one camera; lives as long as the camera (across reconnections).
#[derive(Debug, Default)]
pub struct CaptureClock {
    last: Option<Last>,
    /// Before the first frame: the camera's last stored time (an earlier service run).
    resume_after: Option<i64>,
    /// Since when (monotonic ms) the reference has been far ahead of the stamps.
    behind_since: Option<i64>,
    envelope: Envelope,
    delay: Delay,
    samples: Vec<i64>,
    /// The camera clock's offset when last reported.
    offset_reported: Option<i64>,
}

/// Milliseconds from the `last` stamped frame to `r`, and whether the pts jumped. Less stream
/// time than arrival time is a transit delay (stall, then burst): the pts are right. Much more
/// than arrival time, or going back, is a pts discontinuity: arrival time is used instead.
fn elapsed(last: Last, r: &Reading) -> (i64, bool) {
    let mono = (r.mono_ms - last.mono_ms).max(0);
    match (r.pts_ms, last.pts_ms) {
        (Some(p), Some(lp)) if p > lp && p - lp <= mono + PTS_JUMP_MS => (p - lp, false),
        (Some(_), Some(_)) => (mono, true),
        _ => (mono, false),
    }
}

/// A `timestamp/x-ntp` reference timestamp (ns since 1900) as Unix ms.
pub fn ntp_ns_to_unix_ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64 - NTP_UNIX_OFFSET_S * 1000
}

impl CaptureClock {
    /// A clock that has stamped nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock whose stamps follow `last_ms`, the camera's last stored time, so they keep
    /// increasing across restarts of the service (within [`MAX_RESUME_AHEAD_MS`]).
    pub fn resuming_after(last_ms: Option<i64>) -> Self {
        Self {
            resume_after: last_ms,
            ..Self::default()
        }
    }

    /// The stream restarted (reconnection): its pts start afresh, its arrival envelope and
    /// the camera clock's delay are measured again, but stamps keep increasing from the last.
    pub fn restart(&mut self) {
        if let Some(last) = &mut self.last {
            last.pts_ms = None;
        }
        self.envelope = Envelope::default();
        self.delay = Delay::Measuring;
        self.samples.clear();
        self.offset_reported = None;
    }

    /// A compressed frame with presentation time `pts_ms` reached the decoder at `mono_ms`.
    pub fn arrived(&mut self, pts_ms: i64, mono_ms: i64) {
        self.envelope.add(pts_ms, mono_ms);
    }

    /// Stamps one decoded frame.
    pub fn stamp(&mut self, r: Reading) -> Stamp {
        if self.last.is_some_and(|last| elapsed(last, &r).1) {
            // The stream's timestamps jumped: (arrival − pts) of earlier frames says nothing.
            self.envelope = Envelope::default();
        }
        // When the frame would have arrived, unqueued, on the wall clock.
        let arrival = match (r.pts_ms, self.envelope.min()) {
            (Some(p), Some(lead)) => r.wall_ms - r.mono_ms + p + lead,
            _ => r.wall_ms,
        };
        let mut camera = CameraTime::default();
        if let Some(ntp) = r.ntp_ms {
            camera.measured = self.measure_delay(arrival - ntp);
        }
        let (reference, target) = match self.delay {
            Delay::InStep(d) => (Reference::Ntp, arrival - d),
            _ => (Reference::Arrival, arrival),
        };
        if let Some(ntp) = r.ntp_ms {
            camera.offset_ms = Some(ntp - target);
            camera.jumped_ms = self.offset_moved(ntp - target);
        }
        let mut resume_ignored = false;
        let (us, adjust) = match self.last {
            None => match self.resume_after.take() {
                Some(after) if after - target > MAX_RESUME_AHEAD_MS => {
                    resume_ignored = true;
                    (target * 1000, Adjust::Start)
                }
                Some(after) => (target.max(after + 1) * 1000, Adjust::Start),
                None => (target * 1000, Adjust::Start),
            },
            Some(last) => self.advance(last, &r, target * 1000),
        };
        let ms = us.div_euclid(1000);
        self.last = Some(Last {
            us,
            pts_ms: r.pts_ms,
            mono_ms: r.mono_ms,
        });
        Stamp {
            ms,
            reference,
            adjust,
            resume_ignored,
            camera,
        }
    }

    /// Takes one (arrival − camera time) sample; once enough are in, decides whether the
    /// camera's clock is in step with ours and returns what it found.
    fn measure_delay(&mut self, sample: i64) -> Option<Option<i64>> {
        if !matches!(self.delay, Delay::Measuring) {
            return None;
        }
        self.samples.push(sample);
        if self.samples.len() < DELAY_SAMPLES {
            return None;
        }
        self.samples.sort_unstable();
        let median = self.samples[self.samples.len() / 2];
        self.samples.clear();
        // The reference changes: the camera clock's offset is counted from it afresh.
        self.offset_reported = None;
        let in_step = (-CLOCK_AHEAD_SLACK_MS..=MAX_CAPTURE_DELAY_MS).contains(&median);
        self.delay = if in_step {
            Delay::InStep(median.max(0))
        } else {
            Delay::Off
        };
        Some(in_step.then_some(median.max(0)))
    }

    /// The camera clock's offset moved since it was last reported: by how much.
    fn offset_moved(&mut self, offset: i64) -> Option<i64> {
        let Some(before) = self.offset_reported else {
            self.offset_reported = Some(offset);
            return None;
        };
        let moved = offset - before;
        (moved.abs() > CAMERA_JUMP_MS).then(|| {
            self.offset_reported = Some(offset);
            moved
        })
    }

    /// The next stamp (µs) after `last`, `target` (µs) being the reference.
    fn advance(&mut self, last: Last, r: &Reading, target: i64) -> (i64, Adjust) {
        let (elapsed, jumped) = elapsed(last, r);
        let elapsed = elapsed * 1000;
        let chain = last.us + elapsed;
        let diff = target - chain;
        let trim = elapsed / TRIM_DIVISOR;
        let far_behind = diff > STEP_MS * 1000;
        if !far_behind {
            self.behind_since = None;
        }
        let (us, adjust) = if far_behind {
            let since = *self.behind_since.get_or_insert(r.mono_ms);
            if r.mono_ms - since >= STEP_CONFIRM_MS {
                self.behind_since = None;
                (target, Adjust::StepForward(diff / 1000))
            } else {
                (chain + trim, Adjust::Trim(diff / 1000))
            }
        } else if diff < -STEP_MS * 1000 {
            (chain - elapsed / SLEW_DIVISOR, Adjust::Slew(-diff / 1000))
        } else if diff.abs() > DEADBAND_MS * 1000 {
            (chain + diff.clamp(-trim, trim), Adjust::Trim(diff / 1000))
        } else if jumped {
            (chain, Adjust::PtsJump)
        } else {
            (chain, Adjust::None)
        };
        // At least 1 ms after the previous stamp.
        let next_ms = last.us.div_euclid(1000) + 1;
        (us.max(next_ms * 1000), adjust)
    }
}

#[cfg(test)]
mod tests;
