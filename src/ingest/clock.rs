//! Capture time of a camera's frames: strictly increasing, close to the true capture time.
//!
//! Input: per frame, the stream's presentation time (pts), the camera's NTP capture time when it
//! sends RTCP sender reports (rtspsrc `add-reference-timestamp-meta`), the host's wall clock and
//! a monotonic clock at arrival. Output: a Unix-millisecond [`Stamp`]. Pure: no clock is read
//! here, so every rule below is unit-tested.
//!
//! Rules. The reference is the camera's NTP time when it is plausible (within
//! [`MAX_NTP_SKEW_MS`] of the host clock), else the arrival time on the host clock. The first
//! frame is stamped with the reference. Each later frame advances the previous stamp by the time
//! the stream says has passed (pts difference), so spacing is exact, also for frames that were
//! held up in transit and arrive in a burst. When the pts are missing or jumped (went back, or
//! ahead of the arrival time by more than [`ARRIVAL_TOLERANCE_MS`]), the monotonic arrival
//! difference is used instead. If the reference runs ahead of the stamps by more than its
//! tolerance (for the arrival time: for [`STEP_CONFIRM_MS`], so a burst does not count), the
//! stamps step forward to it (a time jump forward is only a gap). If it falls behind (host clock
//! set back, arrival latency ahead of NTP), the stamps never step back: they advance
//! 1/[`SLEW_DIVISOR`] slower until the reference catches up. A stamp is always at least 1 ms
//! after the previous one, and a camera's first stamp in a new service run follows its last
//! stored one (unless that is more than [`MAX_RESUME_AHEAD_MS`] ahead).

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;
/// An NTP capture time further than this from the host clock is not trusted (camera clock
/// unset or wrong): the arrival time is used instead.
pub const MAX_NTP_SKEW_MS: i64 = 2_000;
/// How far stamps may wander from the arrival time (network, jitter buffer, bursts after a
/// stall) before they are corrected.
pub const ARRIVAL_TOLERANCE_MS: i64 = 2_000;
/// How far stamps may wander from the camera's NTP time before they are corrected.
pub const NTP_TOLERANCE_MS: i64 = 50;
/// A camera resumes after its last stored time only if that is at most this far ahead of the
/// first new reference; further (a host clock set back by more, or a bad stored time), the new
/// stamps start at the reference and a warning is logged.
pub const MAX_RESUME_AHEAD_MS: i64 = 60_000;
/// Arrival time must stay ahead of the stamps this long before they step forward to it.
pub const STEP_CONFIRM_MS: i64 = 2_000;
/// While ahead of the reference, stamps advance by `elapsed - elapsed / SLEW_DIVISOR`
/// (5 % slower: 300 ms of arrival latency is absorbed in 6 s).
pub const SLEW_DIVISOR: i64 = 20;

/// What is known at one frame's arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Stream presentation time, ms (None: the buffer had none).
    pub pts_ms: Option<i64>,
    /// The camera's capture time from RTCP sender reports, Unix ms.
    pub ntp_ms: Option<i64>,
    /// Host wall clock at arrival, Unix ms.
    pub wall_ms: i64,
    /// Host monotonic clock at arrival, ms from any fixed origin.
    pub mono_ms: i64,
}

/// Which time the stamps are referenced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The camera's NTP capture time (RTCP sender reports).
    Ntp,
    /// Arrival on the host's wall clock.
    Arrival,
}

/// What the clock did at a frame besides following the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjust {
    /// Stamp = previous stamp + elapsed stream time.
    None,
    /// First frame: stamp = reference.
    Start,
    /// The reference was ahead by this many ms: stamp moved forward to it.
    StepForward(i64),
    /// The reference is behind by this many ms: stamps advance slower until it catches up.
    Slew(i64),
    /// The pts jumped: elapsed time taken from the monotonic clock instead.
    PtsJump,
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
    /// An NTP time came with the frame but was too far from the host clock to be trusted.
    pub ntp_refused: bool,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    ms: i64,
    pts_ms: Option<i64>,
    mono_ms: i64,
}

/// The capture clock of one camera; lives as long as the camera (across reconnections).
#[derive(Debug, Default)]
pub struct CaptureClock {
    last: Option<Last>,
    /// Before the first frame: the camera's last stored time (an earlier service run).
    resume_after: Option<i64>,
    /// Since when (monotonic ms) the arrival time has been ahead of the stamps.
    behind_since: Option<i64>,
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

    /// The stream restarted (reconnection): its pts start afresh, but stamps keep increasing
    /// from the last one.
    pub fn restart(&mut self) {
        if let Some(last) = &mut self.last {
            last.pts_ms = None;
        }
    }

    /// Stamps one frame.
    pub fn stamp(&mut self, r: Reading) -> Stamp {
        let ntp = r
            .ntp_ms
            .filter(|t| (t - r.wall_ms).abs() <= MAX_NTP_SKEW_MS);
        let ntp_refused = r.ntp_ms.is_some() && ntp.is_none();
        let (reference, target) = match ntp {
            Some(t) => (Reference::Ntp, t),
            None => (Reference::Arrival, r.wall_ms),
        };
        let mut resume_ignored = false;
        let (ms, adjust) = match self.last {
            None => match self.resume_after.take() {
                Some(after) if after - target > MAX_RESUME_AHEAD_MS => {
                    resume_ignored = true;
                    (target, Adjust::Start)
                }
                Some(after) => (target.max(after + 1), Adjust::Start),
                None => (target, Adjust::Start),
            },
            Some(last) => self.advance(last, &r, reference, target),
        };
        self.last = Some(Last {
            ms,
            pts_ms: r.pts_ms,
            mono_ms: r.mono_ms,
        });
        Stamp {
            ms,
            reference,
            adjust,
            ntp_refused,
            resume_ignored,
        }
    }

    fn advance(
        &mut self,
        last: Last,
        r: &Reading,
        reference: Reference,
        target: i64,
    ) -> (i64, Adjust) {
        let mono = (r.mono_ms - last.mono_ms).max(0);
        // Less stream time than arrival time is a transit delay (stall, then burst): the pts
        // are right. More than arrival time, or none, is a pts discontinuity.
        let (elapsed, jumped) = match (r.pts_ms, last.pts_ms) {
            (Some(p), Some(lp)) if p > lp && p - lp <= mono + ARRIVAL_TOLERANCE_MS => {
                (p - lp, false)
            }
            (Some(_), Some(_)) => (mono, true),
            _ => (mono, false),
        };
        let chain = last.ms + elapsed;
        let tolerance = match reference {
            Reference::Ntp => NTP_TOLERANCE_MS,
            Reference::Arrival => ARRIVAL_TOLERANCE_MS,
        };
        // Arrival runs ahead of the stream during a burst of delayed frames too: step forward
        // only once that has lasted STEP_CONFIRM_MS of arrival time (a host clock set forward).
        let step = if target - chain > tolerance {
            let since = *self.behind_since.get_or_insert(r.mono_ms);
            reference == Reference::Ntp || r.mono_ms - since >= STEP_CONFIRM_MS
        } else {
            self.behind_since = None;
            false
        };
        let (ms, adjust) = if step {
            self.behind_since = None;
            (target, Adjust::StepForward(target - chain))
        } else if chain - target > tolerance {
            (
                last.ms + elapsed - elapsed / SLEW_DIVISOR,
                Adjust::Slew(chain - target),
            )
        } else if jumped {
            (chain, Adjust::PtsJump)
        } else {
            (chain, Adjust::None)
        };
        (ms.max(last.ms + 1), adjust)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wall and monotonic clocks of a host, and a 10 fps stream on it.
    const T0: i64 = 1_795_648_030_000;

    fn reading(pts: i64, wall: i64, mono: i64) -> Reading {
        Reading {
            pts_ms: Some(pts),
            ntp_ms: None,
            wall_ms: wall,
            mono_ms: mono,
        }
    }

    fn diffs(v: &[i64]) -> Vec<i64> {
        v.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[test]
    fn ntp_reference_timestamp_converts_to_unix_ms() {
        // 1112399:07:10.733506999 as seen on a simulator buffer at Unix 1795648030.734.
        let ns = (1_112_399 * 3600 + 7 * 60 + 10) * 1_000_000_000u64 + 733_506_999;
        assert_eq!(ntp_ns_to_unix_ms(ns), 1_795_648_030_733);
    }

    #[test]
    fn spacing_follows_pts_despite_arrival_jitter() {
        let mut c = CaptureClock::new();
        let jitter = [0, 40, -30, 120, 5, -50, 80, 0, 300, -10];
        let stamps: Vec<i64> = (0..10)
            .map(|i| {
                let t = 100 * i;
                c.stamp(reading(t, T0 + t + jitter[i as usize], t)).ms
            })
            .collect();
        assert_eq!(stamps[0], T0);
        assert_eq!(diffs(&stamps), vec![100; 9]);
    }

    #[test]
    fn host_clock_set_back_never_moves_stamps_back() {
        let mut c = CaptureClock::new();
        let mut stamps = Vec::new();
        for i in 0..100 {
            let t = 100 * i;
            // At frame 50 the host clock is corrected by one hour backwards.
            let wall = if i < 50 { T0 + t } else { T0 + t - 3_600_000 };
            let s = c.stamp(reading(t, wall, t));
            if i >= 50 {
                assert_eq!(s.adjust, Adjust::Slew(3_600_000 - 5 * (i - 50)));
            }
            stamps.push(s.ms);
        }
        let d = diffs(&stamps);
        assert!(d[..49].iter().all(|&x| x == 100));
        assert!(d[49..].iter().all(|&x| x == 95), "slewed: {:?}", &d[49..]);
    }

    #[test]
    fn host_clock_set_forward_steps_forward_once_confirmed() {
        let mut c = CaptureClock::new();
        let stamps: Vec<Stamp> = (0..40)
            .map(|i| {
                let t = 100 * i;
                let wall = if i < 10 { T0 + t } else { T0 + t + 10_000 };
                c.stamp(reading(t, wall, t))
            })
            .collect();
        // The jump at frame 10 is believed after STEP_CONFIRM_MS: at frame 30.
        assert!(
            stamps[..30]
                .iter()
                .all(|s| !matches!(s.adjust, Adjust::StepForward(_)))
        );
        assert_eq!(stamps[29].ms, T0 + 2_900);
        assert_eq!(stamps[30].adjust, Adjust::StepForward(10_000));
        assert_eq!(stamps[30].ms, T0 + 3_000 + 10_000);
        assert!(stamps[31..].iter().all(|s| s.adjust == Adjust::None));
        assert_eq!(stamps[39].ms - stamps[30].ms, 900);
    }

    #[test]
    fn a_stall_then_burst_keeps_the_camera_spacing() {
        let mut c = CaptureClock::new();
        let mut stamps = Vec::new();
        for i in 0..80i64 {
            let t = 100 * i;
            // Frames 10..=39 are held up in transit and all arrive at 4.0–4.03 s.
            let arrival = if (10..40).contains(&i) {
                4_000 + i - 10
            } else {
                t
            };
            let s = c.stamp(reading(t, T0 + arrival, arrival));
            assert_eq!(
                s.adjust,
                if i == 0 { Adjust::Start } else { Adjust::None },
                "{i}"
            );
            stamps.push(s.ms);
        }
        assert_eq!(diffs(&stamps), vec![100; 79]);
        assert_eq!(stamps[0], T0);
    }

    #[test]
    fn pts_jumps_use_the_monotonic_clock() {
        let mut c = CaptureClock::new();
        let mut stamps = Vec::new();
        for i in 0..30 {
            let t = 100 * i;
            // Encoder restart at 10 (pts back to 0), a jump of one hour ahead at 20.
            let pts = match i {
                0..10 => t,
                10..20 => t - 1_000,
                _ => t + 3_600_000,
            };
            let s = c.stamp(reading(pts, T0 + t, t));
            if i == 10 || i == 20 {
                assert_eq!(s.adjust, Adjust::PtsJump, "frame {i}");
            }
            stamps.push(s.ms);
        }
        assert_eq!(diffs(&stamps), vec![100; 29]);
    }

    #[test]
    fn reconnection_continues_after_the_last_stamp() {
        let mut c = CaptureClock::new();
        for i in 0..10 {
            c.stamp(reading(100 * i, T0 + 100 * i + 1_500, 100 * i));
        }
        // Stamps ran 1.5 s ahead of the wall clock (within tolerance); after a 1 s outage the
        // new stream starts at pts 0 and the wall clock is behind the last stamp.
        c.restart();
        let s = c.stamp(reading(0, T0 + 1_900, 1_900));
        assert_eq!(
            s.ms,
            T0 + 900 + 1_500 + 1_000,
            "continues by the outage's length"
        );
        let s2 = c.stamp(reading(100, T0 + 2_000, 2_000));
        assert_eq!(s2.ms - s.ms, 100);
    }

    #[test]
    fn a_new_service_run_resumes_after_the_last_stored_time() {
        // The host clock was set back 5 s between two runs of the service.
        let mut c = CaptureClock::resuming_after(Some(T0 + 5_000));
        let a = c.stamp(reading(0, T0, 0));
        assert_eq!((a.ms, a.resume_ignored), (T0 + 5_001, false));
        let b = c.stamp(reading(100, T0 + 100, 100));
        assert!(b.ms > a.ms);
        // An earlier stored time changes nothing.
        let mut c = CaptureClock::resuming_after(Some(T0 - 5_000));
        assert_eq!(c.stamp(reading(0, T0, 0)).ms, T0);
        // A stored time a day ahead is not followed.
        let mut c = CaptureClock::resuming_after(Some(T0 + 86_400_000));
        let s = c.stamp(reading(0, T0, 0));
        assert_eq!((s.ms, s.resume_ignored), (T0, true));
    }

    #[test]
    fn frames_without_elapsed_time_still_get_increasing_stamps() {
        let mut c = CaptureClock::new();
        let a = c.stamp(reading(500, T0, 0)).ms;
        let b = c.stamp(reading(500, T0, 0)).ms; // same pts, same arrival
        let no_pts = Reading {
            pts_ms: None,
            ntp_ms: None,
            wall_ms: T0,
            mono_ms: 0,
        };
        let d = c.stamp(no_pts).ms;
        assert!(a < b && b < d, "{a} {b} {d}");
    }

    #[test]
    fn ntp_time_is_used_when_plausible_and_refused_when_not() {
        let mut c = CaptureClock::new();
        let mut r = reading(0, T0 + 250, 0);
        r.ntp_ms = Some(T0);
        let s = c.stamp(r);
        assert_eq!(
            (s.ms, s.reference, s.ntp_refused),
            (T0, Reference::Ntp, false)
        );
        // A camera whose clock is ten minutes off is not believed.
        let mut c = CaptureClock::new();
        r.ntp_ms = Some(T0 - 600_000);
        let s = c.stamp(r);
        assert_eq!(
            (s.ms, s.reference, s.ntp_refused),
            (T0 + 250, Reference::Arrival, true)
        );
    }

    #[test]
    fn switch_from_arrival_to_ntp_slews_down_to_the_camera_time() {
        let mut c = CaptureClock::new();
        let latency = 300;
        let mut stamps = Vec::new();
        for i in 0..200i64 {
            let t = 100 * i;
            let mut r = reading(t, T0 + t + latency, t);
            // The first sender report arrives after 2 s.
            r.ntp_ms = (i >= 20).then_some(T0 + t);
            let s = c.stamp(r);
            stamps.push(s.ms);
            if i < 20 {
                assert_eq!(s.ms, T0 + t + latency);
            }
        }
        let d = diffs(&stamps);
        assert!(d.iter().all(|&x| x == 95 || x == 100), "{d:?}");
        let error = stamps[199] - (T0 + 19_900);
        assert!(
            (0..=NTP_TOLERANCE_MS).contains(&error),
            "still {error} ms from NTP after 18 s"
        );
    }

    #[test]
    fn stamps_strictly_increase_whatever_the_inputs() {
        let mut c = CaptureClock::new();
        let mut seed = 7u64;
        let mut next = move |n: i64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) as i64).rem_euclid(n)
        };
        let (mut wall, mut mono, mut pts) = (T0, 0i64, 0i64);
        let mut prev = i64::MIN;
        for _ in 0..5_000 {
            let step = next(200);
            mono += step;
            wall += step
                + if next(50) == 0 {
                    next(20_000) - 10_000
                } else {
                    0
                };
            pts += if next(40) == 0 {
                next(10_000) - 5_000
            } else {
                step
            };
            if next(200) == 0 {
                c.restart();
            }
            let r = Reading {
                pts_ms: (next(30) != 0).then_some(pts),
                ntp_ms: (next(3) == 0).then_some(wall - next(3_000)),
                wall_ms: wall,
                mono_ms: mono,
            };
            let s = c.stamp(r).ms;
            assert!(s > prev, "{s} after {prev}");
            prev = s;
        }
    }
}
