//! Idle gating end to end (real simulator, GStreamer, OpenVINO model and SQLite): simulated
//! cameras at 10 fps with a key frame a second (`wake4`: every 4 s), analysed at
//! `detect_fps = 4` with `idle_interval_ms = 2000`. `still` looks at an empty stretch of floor
//! with sensor noise; `wake` looks at the same for 10 s, then at the sample's walking people for
//! 8 s, looped. Once idle (nothing moved for 3 s; for 1 s from a still camera's first key frame
//! once the detector returned one of its frames), each is analysed every 2 s (every other key
//! frame, the GOPs between not decoded); when the people appear, `wake` is analysed at its full
//! rate within 1.5 s (its delta frames grow at once, and the GOP it held while idle is given
//! again to its woken decoder, ingest::hold). The frames still add up: decoded = analysed + not
//! picked + skipped + dropped + failed. Between an idle camera's frames its decoder is parked
//! (ingest::park), and woken for the next. `wake4` is `wake` with a key frame every 4 s (still
//! 16 s, then 8 s of people): it wakes within 1.5 s too (before the GOP was held, it waited for
//! its next key frame, 4 s later); `wake4b` is `wake4` with B-frames (before its idle decoder
//! was drained, it could not be parked and woke a GOP or two late). `still0` is `still` asking
//! for every frame (`detect_fps = 0`): idle, it is analysed every 2 s too.

use crate::common;

use rusqlite::Connection;
use storetrack::Config;
use storetrack::simcam::{Encoding, Mount, SimCam, Variant, variant::Scene};

const STILL_S: f64 = 10.0;
const BUSY_S: f64 = 8.0;
/// `wake4`: a key frame every 4 s; its still part a whole number of GOPs.
const GOP4_S: f64 = 4.0;
const STILL4_S: f64 = 16.0;
/// A camera still this long is idle (ingest::activity::IDLE_AFTER_NS), plus a margin.
const SETTLE_MS: f64 = 4_000.0;

fn mount(name: &str, scene: Scene, gop_s: f64, bframes: u32) -> Mount {
    Mount {
        name: name.into(),
        file: common::video(),
        variant: Variant {
            encoding: Some(Encoding {
                scene,
                gop_s,
                bframes,
                ..Encoding::default()
            }),
            ..Variant::default()
        },
    }
}

/// A camera's seconds with analysed frames: (first frame's capture time ms, frames, most
/// persons in a frame), in time order.
fn seconds(db: &Connection, camera: &str) -> Vec<(f64, i64, i64)> {
    db.prepare(
        "SELECT first_ms, frames, persons_max FROM frames_second WHERE camera = ?1 ORDER BY second",
    )
    .unwrap()
    .query_map([camera], |r| {
        Ok((r.get::<_, i64>(0)? as f64, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Gaps (ms) between the seconds' first frames in [from, to), and the most frames in one.
fn gaps(secs: &[(f64, i64, i64)], from: f64, to: f64) -> (Vec<f64>, i64) {
    let inside: Vec<_> = secs.iter().filter(|s| (from..to).contains(&s.0)).collect();
    let most = inside.iter().map(|s| s.1).max().unwrap_or(0);
    (inside.windows(2).map(|w| w[1].0 - w[0].0).collect(), most)
}

/// Analysed every 2 s on average, never twice within 0.9 s (a GOP's key frame is analysed
/// in one GOP of two; where the GOP is not steady, as at the simulator's loop, the grid places
/// them instead).
fn every_2_s(gaps: &[f64]) -> bool {
    let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    (1_600.0..=2_600.0).contains(&mean) && gaps.iter().all(|g| *g >= 900.0)
}

#[test]
fn an_idle_camera_is_analysed_at_its_idle_interval_and_wakes_within_1_5_s_of_people() {
    common::openvino_env();
    let still = Scene::Still { at_s: 0.0 };
    let wake = Scene::Wake {
        at_s: 0.0,
        still_s: STILL_S,
        busy_s: BUSY_S,
    };
    let wake4 = Scene::Wake {
        at_s: 0.0,
        still_s: STILL4_S,
        busy_s: BUSY_S,
    };
    let gop = Encoding::default().gop_s;
    let sim = SimCam::serve(
        "127.0.0.1",
        0,
        &[
            mount("still", still, gop, 0),
            mount("wake", wake, gop, 0),
            mount("wake4", wake4, GOP4_S, 0),
            mount("still0", still, gop, 0),
            mount("wake4b", wake4, GOP4_S, 2),
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let urls = ["still", "wake", "wake4", "still0", "wake4b"].map(|m| sim.url(m));
    let cfg_path = common::write_config(dir.path(), &urls, "");
    let every_frame = format!("url = \"{}\"\n", urls[3]);
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace(
            "[ingest]\n",
            "[ingest]\ndetect_fps = 4\nidle_interval_ms = 2000\n",
        )
        .replace(&every_frame, &format!("{every_frame}detect_fps = 0\n"));
    assert!(text.contains("detect_fps = 0"), "cam4's detect_fps not set");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.ingest.idle_interval_ms, 2000);
    let summary = common::run_for(&cfg, 24);
    let c = &summary.counts;
    assert_eq!(c.failures, 0, "no camera failed");
    assert_eq!(
        c.decoded,
        c.inferred + c.not_picked + c.skipped + c.dropped + c.failed,
        "decoded = analysed + not picked + skipped + dropped + failed: {c:?}"
    );

    let db = Connection::open(&summary.db).unwrap();
    // The still scene: nobody, and a frame every 2 s once idle; cam4 asks for every frame.
    let idle = idle_every_2_s(&db, "cam1");
    idle_every_2_s(&db, "cam4");
    // Just connected and still, once the detector returned a frame: idle a second after its
    // first key frame (ingest::activity::IDLE_AFTER_START_NS), not after 3 s (4 fps for 3 s:
    // 12 frames). In its first 3 s: 4 fps for 1 s (5 frames), one idle frame, and up to two
    // more if the detector's first result comes late.
    let quiet = seconds(&db, "cam1");
    let start = quiet[0].0;
    let first_3_s: i64 = quiet
        .iter()
        .filter(|s| s.0 < start + 3_000.0)
        .map(|s| s.1)
        .sum();
    eprintln!("cam1 frames in its first 3 s: {first_3_s}");
    assert!(
        first_3_s <= 8,
        "cam1 analysed {first_3_s} frames in its first 3 s"
    );
    // Idle, a camera's decoder is closed after each frame it analyses: at least once after each
    // of cam1's idle frames but its last (the other cameras park too).
    assert!(
        c.parks >= idle as u64,
        "decoders parked {} times, cam1 analysed {} frames idle",
        c.parks,
        idle + 1
    );

    // The waking scene: idle gaps while still, full rate within 1.5 s of the people.
    let sent = sim.sent_ms("wake");
    let switch = sent.iter().copied().fold(f64::MAX, f64::min) + STILL_S * 1000.0;
    let woke = seconds(&db, "cam2");
    // (The second before the switch may hold the first frame after it: it wakes at once.)
    let (before, most) = gaps(
        &woke,
        switch - STILL_S * 1000.0 + SETTLE_MS,
        switch - 1_000.0,
    );
    eprintln!("cam2 gaps before the people (ms): {before:?}");
    assert!(
        most == 1 && !before.is_empty() && every_2_s(&before),
        "cam2 analysed every 2 s while still: {before:?}, up to {most} in a second"
    );
    assert_woke_in_time(&woke, switch, "cam2");
    let people = woke
        .iter()
        .filter(|s| s.0 >= switch && s.0 < switch + BUSY_S * 1000.0 && s.2 > 0)
        .count();
    assert!(people >= 5, "cam2 saw people in only {people} seconds");

    // 4 s GOPs, without and with B-frames: idle while still, then full rate within 1.5 s of
    // the people too.
    for (mount, camera) in [("wake4", "cam3"), ("wake4b", "cam5")] {
        let sent = sim.sent_ms(mount);
        let switch = sent.iter().copied().fold(f64::MAX, f64::min) + STILL4_S * 1000.0;
        let woke4 = seconds(&db, camera);
        // (Idle takes effect at a key frame: one GOP more to settle.)
        let settled = switch - STILL4_S * 1000.0 + SETTLE_MS + GOP4_S * 1000.0;
        let (before, most) = gaps(&woke4, settled, switch - 1_000.0);
        eprintln!("{camera} gaps before the people (ms): {before:?}");
        assert!(
            most == 1,
            "{camera} idle while still: {before:?}, up to {most} in a second"
        );
        if mount == "wake4" {
            assert!(!before.is_empty(), "{camera} not analysed while idle");
        } else {
            // With B-frames only key frames are decoded idle: one every 4 s here.
            let gop_ms = GOP4_S * 1000.0;
            assert!(
                before.iter().all(|g| (g - gop_ms).abs() <= 100.0),
                "{camera} idle frames not a GOP apart: {before:?}"
            );
        }
        assert_woke_in_time(&woke4, switch, camera);
    }
}

/// The still scene's camera: nobody seen, and one frame every 2 s once idle; returns how many
/// gaps between its idle frames were measured.
fn idle_every_2_s(db: &Connection, camera: &str) -> usize {
    let quiet = seconds(db, camera);
    assert!(
        quiet.iter().all(|s| s.2 == 0),
        "the still scene shows nobody ({camera})"
    );
    let start = quiet.first().expect("analysed nothing").0;
    let (idle, most) = gaps(&quiet, start + SETTLE_MS, f64::MAX);
    eprintln!("{camera} idle gaps (ms): {idle:?}");
    assert!(
        idle.len() >= 5,
        "{camera} analysed too few frames idle: {idle:?}"
    );
    assert!(
        most == 1 && every_2_s(&idle),
        "{camera} analysed every 2 s when idle: {idle:?}, up to {most} in a second"
    );
    idle.len()
}

/// Full rate within 1.5 s of `switch` (when the people appeared): the first second after it
/// with two frames or more (idle, a second has one at most), followed by one with three or more.
fn assert_woke_in_time(secs: &[(f64, i64, i64)], switch: f64, camera: &str) {
    let after: Vec<_> = secs.iter().filter(|s| s.0 >= switch - 1_000.0).collect();
    let full = after
        .windows(2)
        .find(|w| w[0].1 >= 2 && w[1].1 >= 3)
        .map(|w| w[0].0)
        .unwrap_or_else(|| panic!("{camera} never analysed at its full rate"));
    eprintln!(
        "{camera}: full rate {:.0} ms after the people appeared",
        full - switch
    );
    assert!(
        full - switch <= 1_500.0,
        "{camera} woke {:.0} ms late",
        full - switch
    );
}
