//! Footfall keys load, and every problem in them is listed with its position.

use std::path::Path;

use crate::config::Config;
use crate::config::test_support::problem_lines;

const BASE: &str = "[[cameras]]\nid = \"cam1\"\nurl = \"rtsp://127.0.0.1/x\"\n\
    [[zones]]\nid = \"queue\"\npolygon = [[0, 0], [4, 0], [4, 4]]\nqueue = true\nservice = \"till\"\n\
    [[zones]]\nid = \"till\"\npolygon = [[5, 0], [8, 0], [8, 4]]\n";

fn load(extra: &str) -> Result<Config, Vec<String>> {
    let text = format!("{BASE}{extra}");
    problem_lines(Config::from_str_at(&text, Path::new("/etc/st/config.toml")))
}

#[test]
fn lines_queues_occupancy_and_rules_load() {
    let c = load(
        "[[lines]]\nid = \"door\"\npoints = [[0, 5], [8, 5]]\ndoor = true\n\
         [[lines]]\nid = \"cam-door\"\ncamera = \"cam1\"\npixels = [[0, 300], [700, 300]]\n\
         [occupancy]\npresent_ms = 3000\n\
         [[rules]]\nid = \"long\"\nkind = \"queue_length\"\nzone = \"queue\"\nabove = 4\nfor_ms = 30000\n\
         [analytics]\ncounts_interval_ms = 300000\n",
    )
    .unwrap();
    let f = &c.footfall;
    assert_eq!(f.lines.len(), 2);
    assert!(f.lines[0].door);
    assert_eq!(f.queues.len(), 1);
    assert_eq!(f.queues[0].service.as_deref(), Some("till"));
    assert_eq!(f.occupancy.present_ms, 3000);
    assert_eq!(f.rules[0].for_ms, 30_000);
    assert_eq!(f.counts_interval_ms, 300_000);
    assert!(f.validate(&c.zones, Some(&["cam1"])).is_empty());
    let shown = super::describe(f);
    assert!(
        shown[0].starts_with("line door: on the floor, 2 vertices, door"),
        "{shown:?}"
    );
    assert_eq!(shown[2], "queue queue: served in till");
}

#[test]
fn every_footfall_problem_is_listed_with_its_position() {
    let p = load(
        "[[lines]]\nid = \"door\"\npoints = [[0, 5]]\n\
         [[lines]]\nid = \"door\"\ncamera = \"cam9\"\npixels = [[0, 1], [2, 3]]\n\
         [[zones]]\nid = \"aisle\"\npolygon = [[0, 9], [1, 9], [1, 10]]\nservice = \"till\"\n\
         [occupancy]\npresent_ms = 5\n\
         [[rules]]\nid = \"r1\"\nkind = \"queue_length\"\nzone = \"till\"\nabove = 2\n\
         [[rules]]\nid = \"r2\"\nkind = \"crossings\"\nline = \"nowhere\"\nabove = 2\n",
    )
    .unwrap_err();
    let want = [
        "12:1: line \"door\": points needs at least 2 vertices",
        "15:1: line \"door\": no such camera \"cam9\"",
        "15:1: duplicate line id \"door\" (first defined at 12:1)",
        "22:11: zone \"aisle\": service needs queue = true",
        "23:1: occupancy.present_ms must be from 100 to 600000",
        "25:1: rule \"r1\": zone \"till\" is not a queue",
        "30:1: rule \"r2\": no such line \"nowhere\"",
    ];
    assert_eq!(p.len(), want.len(), "{p:#?}");
    for (got, want) in p.iter().zip(want) {
        assert!(got.starts_with(want), "{got} vs {want}");
    }
}

#[test]
fn an_unknown_key_in_a_line_is_refused_with_its_position() {
    let p = load("[[lines]]\nid = \"door\"\npoints = [[0, 5], [1, 5]]\nbnad_m = 1\n").unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("15:1: unknown field `bnad_m`"), "{p:?}");
}
