//! The capture clock fed what a camera sends: NTP times from RTCP sender reports (any 64-bit
//! NTP timestamp) and stream timestamps (any 64-bit pts), with the host's clocks moving
//! forward. Tested through its public entry points only (`ntp_ns_to_unix_ms`,
//! `CaptureClock::stamp`, `restart`).

use proptest::prelude::*;
use storetrack::ingest::clock::{CaptureClock, Reading, ntp_ns_to_unix_ms};

/// One frame's arrival: an RTCP NTP time or none, a pts in ns or none, host clock steps (ms).
#[derive(Debug, Clone)]
struct Arrival {
    ntp_ns: Option<u64>,
    pts_ns: Option<u64>,
    wall_step_ms: i64,
    mono_step_ms: i64,
    reconnect: bool,
}

fn arrival() -> impl Strategy<Value = Arrival> {
    (
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        // The wall clock may be set back or forward by up to a day.
        -86_400_000i64..=86_400_000,
        0i64..=10_000,
        prop::bool::weighted(0.02),
    )
        .prop_map(
            |(ntp_ns, pts_ns, wall_step_ms, mono_step_ms, reconnect)| Arrival {
                ntp_ns,
                pts_ns,
                wall_step_ms,
                mono_step_ms,
                reconnect,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_camera_timestamps_give_strictly_increasing_stamps(
        start_wall in 0i64..=253_402_300_799_999 - 200_000_000_000,
        resume in prop::option::of(0i64..=253_402_300_799_999),
        frames in prop::collection::vec(arrival(), 1..200),
    ) {
        let mut clock = CaptureClock::resuming_after(resume);
        let (mut wall, mut mono) = (start_wall, 0i64);
        let mut last = None;
        for a in frames {
            if a.reconnect {
                clock.restart();
            }
            wall = (wall + a.wall_step_ms).max(0);
            mono += a.mono_step_ms;
            let stamp = clock.stamp(Reading {
                pts_ms: a.pts_ns.map(|ns| (ns / 1_000_000) as i64),
                ntp_ms: a.ntp_ns.map(ntp_ns_to_unix_ms),
                wall_ms: wall,
                mono_ms: mono,
            });
            if let Some(prev) = last {
                prop_assert!(stamp.ms > prev, "{} after {prev}", stamp.ms);
            }
            last = Some(stamp.ms);
        }
    }
}
