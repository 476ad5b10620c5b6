use super::*;

/// Host wall clock at the start of each simulation (the monotonic clock starts at 0).
const T0: i64 = 1_795_648_030_000;

/// A simulated camera feeding a [`CaptureClock`]: frames captured every `interval_ms` (true
/// host time), sent in decode order as soon as they and every frame sent before them are
/// captured (B-frames: `b` between references), after the encoder's `encode_ms`, arriving
/// after the network's delay; the decoder puts them back in presentation order.
struct Camera {
    interval_ms: i64,
    b: usize,
    encode_ms: i64,
    /// Network delay of frame `i` (decode order), ms.
    network: Box<dyn Fn(usize) -> i64>,
    /// The camera's RTCP clock at true time `t` (None: no sender reports).
    ntp: Option<Box<dyn Fn(i64) -> i64>>,
    /// Camera crystal: its pts advance this much faster than true time (parts per million).
    crystal_ppm: i64,
    /// Host wall clock minus true time, at true time `t` (the host clock set back or forward).
    wall_error: Box<dyn Fn(i64) -> i64>,
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            interval_ms: 100,
            b: 0,
            encode_ms: 0,
            network: Box::new(|_| 5),
            ntp: Some(Box::new(|t| t)),
            crystal_ppm: 0,
            wall_error: Box::new(|_| 0),
        }
    }
}

/// A stamped frame: its true capture time and what the clock said.
struct Stamped {
    truth: i64,
    stamp: Stamp,
}

impl Camera {
    fn run(&self, clock: &mut CaptureClock, frames: usize) -> Vec<Stamped> {
        let truth = |i: usize| T0 + i as i64 * self.interval_ms;
        let pts =
            |i: usize| i as i64 * self.interval_ms * (1_000_000 + self.crystal_ppm) / 1_000_000;
        // Decode order: each reference frame, then the B-frames before it.
        let mut order = Vec::new();
        let mut prev = 0;
        order.push(0);
        while prev + 1 < frames {
            let anchor = (prev + self.b + 1).min(frames - 1);
            order.push(anchor);
            order.extend(prev + 1..anchor);
            prev = anchor;
        }
        let mut arrival = vec![0i64; frames];
        let mut sent_upto = i64::MIN;
        for (k, &i) in order.iter().enumerate() {
            sent_upto = sent_upto.max(truth(i) + self.encode_ms);
            arrival[i] = sent_upto + (self.network)(k);
        }
        // Events in time order: arrivals at the decoder, and stamping of decoded frames (a
        // frame is out once it and every earlier frame have arrived).
        let mut events: Vec<(i64, bool, usize)> =
            order.iter().map(|&i| (arrival[i], false, i)).collect();
        let mut ready = i64::MIN;
        for (i, &a) in arrival.iter().enumerate() {
            ready = ready.max(a);
            events.push((ready + 1, true, i));
        }
        events.sort();
        let mut out = Vec::new();
        for (at, is_stamp, i) in events {
            let mono = at - T0;
            if !is_stamp {
                clock.arrived(pts(i), mono);
                continue;
            }
            let stamp = clock.stamp(Reading {
                pts_ms: Some(pts(i)),
                ntp_ms: self.ntp.as_ref().map(|f| f(truth(i))),
                wall_ms: at + (self.wall_error)(at),
                mono_ms: mono,
            });
            out.push(Stamped {
                truth: truth(i),
                stamp,
            });
        }
        out
    }
}

fn errors(s: &[Stamped]) -> Vec<i64> {
    s.iter().map(|f| f.stamp.ms - f.truth).collect()
}

fn diffs(s: &[Stamped]) -> Vec<i64> {
    s.windows(2)
        .map(|w| w[1].stamp.ms - w[0].stamp.ms)
        .collect()
}

fn max_abs(v: &[i64]) -> i64 {
    v.iter().map(|e| e.abs()).max().unwrap_or(0)
}

#[test]
fn ntp_reference_timestamp_converts_to_unix_ms() {
    // 1112399:07:10.733506999 as seen on a simulator buffer at Unix 1795648030.734.
    let ns = (1_112_399 * 3600 + 7 * 60 + 10) * 1_000_000_000u64 + 733_506_999;
    assert_eq!(ntp_ns_to_unix_ms(ns), 1_795_648_030_733);
}

#[test]
fn reordered_frames_are_stamped_at_their_capture_time_never_slewed() {
    // B-frames arrive up to three frames after capture, in bursts, and leave the decoder later
    // still: none of that is clock skew.
    for b in [0, 2, 3] {
        let mut clock = CaptureClock::new();
        let cam = Camera {
            b,
            ..Camera::default()
        };
        let s = cam.run(&mut clock, 300);
        // 5 ms late on arrival, on the camera's time once its clock says so.
        assert!(max_abs(&errors(&s)) <= 5, "b={b}: {:?}", errors(&s));
        assert!(
            max_abs(&errors(&s)[40..]) <= DEADBAND_MS,
            "b={b}: {:?}",
            errors(&s)
        );
        assert!(diffs(&s).iter().all(|&d| (99..=100).contains(&d)), "b={b}");
        assert!(
            s.iter().all(|f| matches!(
                f.stamp.adjust,
                Adjust::None | Adjust::Start | Adjust::Trim(_)
            )),
            "b={b}"
        );
        assert_eq!(s[299].stamp.reference, Reference::Ntp);
    }
}

#[test]
fn without_sender_reports_stamps_are_the_unqueued_arrival_time() {
    // Network delay 20 to 320 ms, at least one frame in ten unqueued: the stamps keep the
    // camera's spacing and sit 20 ms (the least delay) after capture.
    let mut clock = CaptureClock::new();
    let cam = Camera {
        b: 2,
        network: Box::new(|k| 20 + [0, 300, 40, 10, 120, 0, 250, 60, 30, 5][k % 10]),
        ntp: None,
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 300);
    assert!(
        errors(&s)[40..].iter().all(|&e| e == 20),
        "{:?}",
        errors(&s)
    );
    assert!(diffs(&s)[40..].iter().all(|&d| d == 100));
    assert_eq!(s[299].stamp.reference, Reference::Arrival);
}

#[test]
fn a_stall_then_burst_keeps_the_camera_spacing() {
    let mut clock = CaptureClock::new();
    let cam = Camera {
        network: Box::new(|k| {
            if (10..40).contains(&k) {
                4_000 - 100 * k as i64 + k as i64
            } else {
                5
            }
        }),
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 80);
    // (99: trimmed onto the camera's clock once it is known, 5 ms in all.)
    assert!(
        diffs(&s).iter().all(|&d| (99..=100).contains(&d)),
        "{:?}",
        diffs(&s)
    );
    assert!(max_abs(&errors(&s)) <= 5);
}

#[test]
fn a_camera_clock_minutes_off_is_reported_not_followed() {
    let mut clock = CaptureClock::new();
    let cam = Camera {
        ntp: Some(Box::new(|t| t - 300_000)),
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 200);
    assert!(
        errors(&s).iter().all(|&e| e == 5),
        "arrival: 5 ms after capture"
    );
    assert!(diffs(&s).iter().all(|&d| d == 100));
    let last = s[199].stamp;
    assert_eq!(last.reference, Reference::Arrival);
    assert_eq!(last.camera.offset_ms, Some(-300_005));
    let measured: Vec<_> = s.iter().filter_map(|f| f.stamp.camera.measured).collect();
    assert_eq!(measured, vec![None], "measured once: not in step");
}

#[test]
fn a_camera_clock_that_jumps_is_counted_and_never_moves_the_stamps() {
    for jump in [-2_500, -400, 400, 30_000] {
        let mut clock = CaptureClock::new();
        let cam = Camera {
            ntp: Some(Box::new(
                move |t| if t >= T0 + 10_000 { t + jump } else { t },
            )),
            ..Camera::default()
        };
        let s = cam.run(&mut clock, 300);
        assert!(max_abs(&errors(&s)) <= 5, "jump {jump}: {:?}", errors(&s));
        assert!(
            diffs(&s).iter().all(|&d| (99..=100).contains(&d)),
            "jump {jump}"
        );
        let jumps: Vec<i64> = s.iter().filter_map(|f| f.stamp.camera.jumped_ms).collect();
        assert_eq!(jumps, vec![jump], "jump {jump}");
        assert_eq!(s[299].stamp.reference, Reference::Ntp);
    }
}

#[test]
fn a_camera_clock_drifting_faster_than_the_host_is_not_followed() {
    // 1 % fast: 10 ms a second, 300 ms after 30 s.
    let mut clock = CaptureClock::new();
    let cam = Camera {
        ntp: Some(Box::new(|t| t + (t - T0) / 100)),
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 300);
    assert!(max_abs(&errors(&s)) <= 5, "{:?}", errors(&s));
    assert!(diffs(&s).iter().all(|&d| (99..=100).contains(&d)));
    let offset = s[299].stamp.camera.offset_ms.unwrap();
    assert!((280..=310).contains(&offset), "offset {offset}");
    let jumps = s
        .iter()
        .filter(|f| f.stamp.camera.jumped_ms.is_some())
        .count();
    assert!(
        (2..=3).contains(&jumps),
        "drift shows as {jumps} steps of 100 ms"
    );
}

#[test]
fn a_camera_crystal_faster_than_the_host_is_followed_within_half_a_percent() {
    // The camera's timestamps run 0.1 % slower than true time (its crystal is slow), and 0.1 %
    // faster: stamps follow the host's time (lagging by the envelope window's drift at most),
    // each interval changed by at most 0.5 %.
    for crystal_ppm in [-1_000, 1_000] {
        let mut clock = CaptureClock::new();
        let cam = Camera {
            crystal_ppm,
            ntp: None,
            ..Camera::default()
        };
        let s = cam.run(&mut clock, 600);
        assert!(
            max_abs(&errors(&s)) <= 10,
            "{crystal_ppm}: {:?}",
            errors(&s)
        );
        assert!(diffs(&s).iter().all(|&d| (99..=101).contains(&d)));
    }
}

#[test]
fn a_camera_in_step_corrects_its_encoding_delay_gently() {
    // The encoder takes 80 ms: arrival alone says 85 ms late; the camera's clock says when it
    // captured. The stamps move there at most 0.5 % of each interval.
    let mut clock = CaptureClock::new();
    let cam = Camera {
        encode_ms: 80,
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 400);
    let measured: Vec<_> = s.iter().filter_map(|f| f.stamp.camera.measured).collect();
    assert_eq!(measured, vec![Some(85)]);
    let e = errors(&s);
    assert_eq!(e[0], 85);
    assert!(max_abs(&e[300..]) <= DEADBAND_MS + 1, "{:?}", &e[300..]);
    assert!(diffs(&s).iter().all(|&d| (99..=100).contains(&d)));
}

#[test]
fn host_clock_set_back_never_moves_stamps_back() {
    let mut clock = CaptureClock::new();
    let cam = Camera {
        wall_error: Box::new(|t| if t >= T0 + 5_000 { -3_600_000 } else { 0 }),
        ntp: None,
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 100);
    let d = diffs(&s);
    assert!(d[..49].iter().all(|&x| x == 100));
    assert!(d[50..].iter().all(|&x| x == 95), "slewed: {:?}", &d[49..]);
    assert!(matches!(s[60].stamp.adjust, Adjust::Slew(_)));
}

#[test]
fn host_clock_set_forward_steps_forward_once_confirmed() {
    let mut clock = CaptureClock::new();
    let cam = Camera {
        wall_error: Box::new(|t| if t >= T0 + 1_000 { 10_000 } else { 0 }),
        ntp: None,
        ..Camera::default()
    };
    let s = cam.run(&mut clock, 60);
    let step = s
        .iter()
        .position(|f| matches!(f.stamp.adjust, Adjust::StepForward(_)))
        .unwrap();
    assert!(
        (30..=31).contains(&step),
        "believed after 2 s: frame {step}"
    );
    assert!(s[step + 1..].iter().all(|f| f.stamp.adjust == Adjust::None));
    assert_eq!(s[59].stamp.ms - s[step].stamp.ms, (59 - step as i64) * 100);
}

#[test]
fn pts_jumps_use_the_monotonic_clock() {
    let mut c = CaptureClock::new();
    let mut stamps = Vec::new();
    for i in 0..30i64 {
        let t = 100 * i;
        // Encoder restart at 10 (pts back to 0), a jump of one hour ahead at 20.
        let pts = match i {
            0..10 => t,
            10..20 => t - 1_000,
            _ => t + 3_600_000,
        };
        c.arrived(pts, t);
        let s = c.stamp(Reading {
            pts_ms: Some(pts),
            ntp_ms: None,
            wall_ms: T0 + t,
            mono_ms: t,
        });
        if i == 10 || i == 20 {
            assert_eq!(s.adjust, Adjust::PtsJump, "frame {i}");
        }
        stamps.push(s.ms);
    }
    let d: Vec<i64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(d, vec![100; 29]);
}

#[test]
fn reconnection_continues_after_the_last_stamp() {
    let mut c = CaptureClock::new();
    let reading = |pts: i64, wall: i64, mono: i64| Reading {
        pts_ms: Some(pts),
        ntp_ms: None,
        wall_ms: wall,
        mono_ms: mono,
    };
    for i in 0..10 {
        c.arrived(100 * i, 100 * i);
        c.stamp(reading(100 * i, T0 + 100 * i, 100 * i));
    }
    // After a 1 s outage the new stream starts at pts 0.
    c.restart();
    c.arrived(0, 1_900);
    let s = c.stamp(reading(0, T0 + 1_900, 1_900));
    assert_eq!(s.ms, T0 + 1_900);
    c.arrived(100, 2_000);
    let s2 = c.stamp(reading(100, T0 + 2_000, 2_000));
    assert_eq!(s2.ms - s.ms, 100);
}

#[test]
fn a_new_service_run_resumes_after_the_last_stored_time() {
    let reading = |wall: i64| Reading {
        pts_ms: Some(0),
        ntp_ms: None,
        wall_ms: wall,
        mono_ms: 0,
    };
    // The host clock was set back 5 s between two runs of the service.
    let mut c = CaptureClock::resuming_after(Some(T0 + 5_000));
    let a = c.stamp(reading(T0));
    assert_eq!((a.ms, a.resume_ignored), (T0 + 5_001, false));
    // An earlier stored time changes nothing.
    let mut c = CaptureClock::resuming_after(Some(T0 - 5_000));
    assert_eq!(c.stamp(reading(T0)).ms, T0);
    // A stored time a day ahead is not followed.
    let mut c = CaptureClock::resuming_after(Some(T0 + 86_400_000));
    let s = c.stamp(reading(T0));
    assert_eq!((s.ms, s.resume_ignored), (T0, true));
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
        if next(2) == 0 {
            c.arrived(pts - next(500), mono);
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
