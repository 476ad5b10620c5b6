//! Store analytics through the real binary on a small fixed database written by the real store
//! writer: every new query in JSON against hand-computed values, `render` of the floor picture
//! (size, and pixels that change exactly where people walked), the camera view over a stored
//! snapshot, and calibration problems reported by `check-config` with their positions.

use crate::common::{self, storetrack};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use storetrack::analytics::{Event, StorePoint, Visit};
use storetrack::config::CameraConfig;
use storetrack::geometry::BBox;
use storetrack::messages::{StoreMsg, TrackUpdate};
use storetrack::stats::Stats;
use storetrack::store::Store;
use storetrack::track::PointKind;

fn ok_stdout(args: &[&str]) -> String {
    let o = storetrack(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json(db: &Path, args: &[&str]) -> Value {
    let mut all = vec!["query", "--db", db.to_str().unwrap(), "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok_stdout(&all)).unwrap()
}

fn visit(store: u64, zone: &str, from: Option<&str>, enter_ms: i64, leave_ms: i64) -> StoreMsg {
    StoreMsg::Analytics(Event::Visit {
        store,
        visit: Visit {
            zone: Arc::from(zone),
            from_zone: from.map(Arc::from),
            enter_ms,
            leave_ms,
        },
    })
}

/// Three store trajectories: 1 and 2 in the first hour, 3 in the second. Store 1 walks along
/// y = 1 m from x = 1 to 9 m (door → shelf → till); store 2 goes door → till; store 3 only
/// visits the shelf.
fn fixed_db(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fixed.db");
    let store = Store::open(&path).unwrap();
    let cams: Vec<CameraConfig> = ["cam1", "cam2"]
        .iter()
        .map(|id| CameraConfig::new(id, "rtsp://127.0.0.1/x".parse().unwrap()))
        .collect();
    store.register_cameras(&cams).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let h = store
        .spawn_writer(
            rx,
            storetrack::store::WriterOptions {
                flush_interval: Duration::from_millis(20),
                retention: storetrack::store::retention::Policy::default(),
            },
            Arc::new(Stats::new(2)),
        )
        .unwrap();
    let point = |cam: &str, ts_ms| {
        StoreMsg::Point(TrackUpdate {
            camera: Arc::from(cam),
            track_id: 1,
            ts_ms,
            bbox: BBox::new(10.0, 10.0, 20.0, 50.0),
            score: 0.9,
            floor: None,
            kind: PointKind::Observed,
        })
    };
    let member = |store, cam: &str, first_ms| {
        StoreMsg::Analytics(Event::Member {
            store,
            first_ms,
            camera: Arc::from(cam),
            track_id: 1,
        })
    };
    let sp = |store, ts_ms, x, y| {
        StoreMsg::Analytics(Event::Point(StorePoint {
            store,
            ts_ms,
            x,
            y,
            cameras: 1,
        }))
    };
    tx.send(point("cam1", 1_000)).unwrap();
    tx.send(member(1, "cam1", 1_000)).unwrap();
    tx.send(point("cam2", 2_000)).unwrap();
    tx.send(member(2, "cam2", 2_000)).unwrap();
    for i in 0..=24 {
        // 1 → 9 m over 24 s
        tx.send(sp(1, 1_000 + i * 1_000, 1.0 + i as f64 / 3.0, 1.0))
            .unwrap();
    }
    tx.send(sp(2, 2_000, 1.0, 4.5)).unwrap();
    tx.send(sp(2, 16_000, 1.2, 4.5)).unwrap();
    tx.send(sp(3, 3_601_000, 5.0, 4.5)).unwrap();
    tx.send(sp(3, 3_631_000, 5.0, 4.5)).unwrap();
    tx.send(visit(1, "door", None, 1_000, 5_000)).unwrap();
    tx.send(visit(2, "door", None, 2_000, 4_000)).unwrap();
    tx.send(visit(2, "till", Some("door"), 6_000, 16_000))
        .unwrap();
    tx.send(visit(1, "shelf", Some("door"), 7_000, 19_000))
        .unwrap();
    tx.send(visit(1, "till", Some("shelf"), 21_000, 25_000))
        .unwrap();
    tx.send(visit(3, "shelf", None, 3_601_000, 3_631_000))
        .unwrap();
    for s in 1..=3 {
        tx.send(StoreMsg::Analytics(Event::Ended { store: s }))
            .unwrap();
    }
    drop(tx);
    h.join().unwrap().unwrap();
    path
}

#[test]
fn every_analytics_query_in_json_on_a_fixed_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixed_db(dir.path());

    let v = json(&db, &["visits", "--from", "0"]);
    let rows: Vec<(i64, &str, i64, f64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["store_track"].as_i64().unwrap(),
                r["zone"].as_str().unwrap(),
                r["enter_ms"].as_i64().unwrap(),
                r["dwell_s"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "door", 1_000, 4.0),
            (2, "door", 2_000, 2.0),
            (2, "till", 6_000, 10.0),
            (1, "shelf", 7_000, 12.0),
            (1, "till", 21_000, 4.0),
            (3, "shelf", 3_601_000, 30.0),
        ]
    );
    assert_eq!(v[3]["from_zone"], "door");
    assert!(v[0]["from_zone"].is_null());
    let shelf = json(&db, &["visits", "--zone", "shelf", "--to", "3600000"]);
    assert_eq!(shelf.as_array().unwrap().len(), 1);

    let d = json(&db, &["dwell"]);
    let dwell: Vec<(&str, i64, f64, f64, f64, f64)> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_f64().unwrap();
            let zone = r["zone"].as_str().unwrap();
            (
                zone,
                r["visits"].as_i64().unwrap(),
                f("median_s"),
                f("p90_s"),
                f("mean_s"),
                f("total_s"),
            )
        })
        .collect();
    assert_eq!(
        dwell,
        vec![
            ("door", 2, 3.0, 3.8, 3.0, 6.0),
            ("shelf", 2, 21.0, 28.2, 21.0, 42.0),
            ("till", 2, 7.0, 9.4, 7.0, 14.0),
        ]
    );

    let f = json(&db, &["flows", "--from", "0", "--to", "1h"]);
    let flows: Vec<(&str, &str, i64)> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["from_zone"].as_str().unwrap(),
                r["to_zone"].as_str().unwrap(),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flows,
        vec![
            ("door", "shelf", 1),
            ("door", "till", 1),
            ("shelf", "till", 1)
        ]
    );

    let vis = json(
        &db,
        &[
            "visitors", "--from", "0", "--to", "7199999", "--bucket", "1h",
        ],
    );
    let per_hour: Vec<(i64, i64)> = vis
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["from_ms"].as_i64().unwrap(),
                r["visitors"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_hour, vec![(0, 2), (3_600_000, 1)]);
    let door = json(&db, &["visitors", "--zone", "door", "--bucket", "1h"]);
    assert_eq!(door[0]["visitors"], 2);

    let occ = json(
        &db,
        &[
            "occupancy",
            "--zone",
            "door",
            "--from",
            "0",
            "--to",
            "19999",
            "--bucket",
            "10s",
        ],
    );
    let o: Vec<(i64, i64, i64, i64, f64, i64)> = occ
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let i = |k: &str| r[k].as_i64().unwrap();
            (
                i("from_ms"),
                i("entries"),
                i("exits"),
                i("visitors"),
                r["mean_inside"].as_f64().unwrap(),
                i("peak_inside"),
            )
        })
        .collect();
    assert_eq!(o, vec![(0, 2, 2, 2, 0.6, 2), (10_000, 0, 0, 0, 0.0, 0)]);

    let p = json(&db, &["path", "1"]);
    let p = p.as_array().unwrap();
    assert_eq!(p.len(), 25);
    assert_eq!(
        (p[0]["floor_x"].as_f64(), p[24]["floor_x"].as_f64()),
        (Some(1.0), Some(9.0))
    );
    assert_eq!(p[0]["camera_tracks"], "cam1/1");

    let s = json(&db, &["stores", "--from", "0"]);
    let ids: Vec<(i64, i64, i64)> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let i = |k: &str| r[k].as_i64().unwrap();
            (i("store_track"), i("points"), i("visits"))
        })
        .collect();
    assert_eq!(ids, vec![(3, 2, 1), (2, 2, 2), (1, 25, 3)]);
}

const FLOOR: &str = "
[floor]
width = 10.0
height = 5.0
scale = 40.0

[[zones]]
id = \"door\"
name = \"Door\"
polygon = [[0, 0], [2, 0], [2, 2], [0, 2]]

[[zones]]
id = \"till\"
polygon = [[7, 0], [10, 0], [10, 2], [7, 2]]
";

#[test]
fn render_draws_the_floor_with_the_walked_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixed_db(dir.path());
    let cfg = common::write_config(dir.path(), &["rtsp://127.0.0.1:1/x".into()], FLOOR);
    let draw = |out: &str, from: &str, to: &str| {
        let out = dir.path().join(out);
        let o = ok_stdout(&[
            "render",
            "-c",
            cfg.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--from",
            from,
            "--to",
            to,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.starts_with(out.to_str().unwrap()), "{o}");
        image::open(&out).unwrap().to_rgb8()
    };
    let walked = draw("walked.png", "0", "30000");
    let empty = draw("empty.png", "40000", "50000");
    // 10 x 5 m at 40 px/m plus a 30 px margin each side.
    assert_eq!(walked.dimensions(), (460, 260));
    assert_eq!(empty.dimensions(), (460, 260));
    let px = |img: &image::RgbImage, x: f64, y: f64| {
        *img.get_pixel((30.0 + x * 40.0) as u32, (30.0 + y * 40.0) as u32)
    };
    // Along store 1's path (y = 1 m) the pictures differ; 3 m away they do not.
    for x in [3.0, 5.0, 8.5] {
        assert_ne!(px(&walked, x, 1.0), px(&empty, x, 1.0), "x = {x}");
        assert_eq!(px(&walked, x, 4.0), px(&empty, x, 4.0), "x = {x}");
    }
    // Store 2 stood at (1.0..1.2, 4.5).
    assert_ne!(px(&walked, 1.1, 4.5), px(&empty, 1.1, 4.5));
}

#[test]
fn camera_view_draws_tracks_over_a_stored_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixed_db(dir.path());
    let cfg = common::write_config(dir.path(), &["rtsp://127.0.0.1:1/x".into()], FLOOR);
    let snap = dir.path().join("snap.png");
    image::RgbImage::from_pixel(64, 80, image::Rgb([128, 128, 128]))
        .save(&snap)
        .unwrap();
    let out = dir.path().join("cam1.png");
    ok_stdout(&[
        "render",
        "-c",
        cfg.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--from",
        "0",
        "--to",
        "10000",
        "--camera",
        "cam1",
        "--frame",
        snap.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (64, 80));
    // cam1's one point: foot at (20, 60).
    assert_ne!(*img.get_pixel(20, 60), image::Rgb([128, 128, 128]));
    assert_eq!(*img.get_pixel(5, 75), image::Rgb([128, 128, 128]));
}

#[test]
fn check_config_prints_reprojection_error_and_rejects_bad_calibration_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    // cam1: a plausible calibration; cam2: a pair with x and y swapped (mirrored).
    let extra = "";
    let cfg = common::write_config(
        dir.path(),
        &["rtsp://127.0.0.1:1/a".into(), "rtsp://127.0.0.1:1/b".into()],
        extra,
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "url = \"rtsp://127.0.0.1:1/a\"\n",
        "url = \"rtsp://127.0.0.1:1/a\"\ncalibration = [[100, 500, 0, 0], [700, 500, 6, 0], [700, 200, 6, 8], [100, 200, 0, 8], [400, 351, 3, 4]]\n",
        1,
    );
    std::fs::write(&cfg, &text).unwrap();
    let o = ok_stdout(&["check-config", "-c", cfg.to_str().unwrap()]);
    assert!(
        o.contains("cam1: calibrated from 5 point pairs, reprojection error rms"),
        "{o}"
    );

    let bad = text.replacen(
        "url = \"rtsp://127.0.0.1:1/b\"\n",
        "url = \"rtsp://127.0.0.1:1/b\"\ncalibration = [[100, 500, 0, 0], [700, 500, 0, 6],\n  [700, 200, 6, 8], [100, 200, 0, 8], [400, 351, 3, 4]]\n",
        1,
    ) + "[[zones]]\nid = \"z\"\npolygon = [[0, 0], [1, 1], [1, 0], [0, 1]]\n";
    std::fs::write(&cfg, &bad).unwrap();
    let o = storetrack(&["check-config", "-c", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let name = cfg.display().to_string();
    assert!(
        lines.iter().any(|l| l.contains(&format!("{name}:9:34:"))
            && l.contains("camera \"cam2\": calibration: pair 2 is mirrored")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("zone \"z\": edge 3 crosses edge 1")),
        "{err}"
    );
}

#[test]
fn render_over_a_plan_image_keeps_its_size_and_marks_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixed_db(dir.path());
    let plan = dir.path().join("plan.png");
    image::RgbImage::from_pixel(300, 160, image::Rgb([200, 200, 200]))
        .save(&plan)
        .unwrap();
    let extra = format!(
        "[floor]\nwidth = 10.0\nheight = 5.0\nplan = \"{}\"\nscale = 25.0\norigin = [20, 15]\n",
        plan.display()
    );
    let cfg = common::write_config(dir.path(), &["rtsp://127.0.0.1:1/x".into()], &extra);
    let out = dir.path().join("plan-out.png");
    ok_stdout(&[
        "render",
        "-c",
        cfg.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--from",
        "0",
        "--to",
        "30000",
        "--out",
        out.to_str().unwrap(),
    ]);
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (300, 160));
    // Store 1 walked y = 1 m: plan row 15 + 25 = 40; 3 m away (row 115) the plan is untouched.
    let grey = image::Rgb([200, 200, 200]);
    assert_ne!(*img.get_pixel(20 + 5 * 25, 40), grey);
    assert_eq!(*img.get_pixel(20 + 5 * 25, 115), grey);
}

/// `render --camera` without a snapshot grabs a frame from the camera through GStreamer.
#[test]
fn camera_view_grabs_a_frame_from_the_camera() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixed_db(dir.path());
    let sim =
        storetrack::simcam::SimCam::start("127.0.0.1", 0, &[("cam1".to_string(), common::video())])
            .unwrap();
    let cfg = common::write_config(dir.path(), &[sim.url("cam1")], FLOOR);
    let out = dir.path().join("grab.png");
    ok_stdout(&[
        "render",
        "-c",
        cfg.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--from",
        "0",
        "--to",
        "10000",
        "--camera",
        "cam1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let img = image::open(&out).unwrap().to_rgb8();
    // The sample video is 768 x 576; a real frame is not one flat colour.
    assert_eq!(img.dimensions(), (768, 576));
    let (a, b) = (*img.get_pixel(100, 500), *img.get_pixel(600, 100));
    assert_ne!(a, b);
}
