//! Times from the command line and query strings: `parse_time` on any text, `format_time` on
//! any number.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use storetrack::query::{MAX_MS, MIN_MS, format_time, parse_time};

/// Text shaped like the three forms, and their near misses.
fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,30}",
        "-?[0-9]{1,25}(ns|us|ms|s|m|h|d|w|M|y|years|min)",
        "[0-9]{1,20}(y|d) ?[0-9]{0,20}(h|m|s)?",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?Z?",
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_parses_within_range_or_is_refused(s in time_text(), now_s in 0u64..=253_402_300_799) {
        let now = UNIX_EPOCH + Duration::from_secs(now_s);
        if let Ok(ms) = parse_time(&s, now) {
            prop_assert!((MIN_MS..=MAX_MS).contains(&ms), "{s:?} -> {ms}");
        }
        let _ = parse_time(&s, SystemTime::now());
    }

    #[test]
    fn any_number_prints_and_times_in_range_round_trip(ms in any::<i64>()) {
        let text = format_time(ms);
        if (MIN_MS..=MAX_MS).contains(&ms) {
            prop_assert_eq!(parse_time(&text, SystemTime::now()).unwrap(), ms);
        } else {
            prop_assert_eq!(text, ms.to_string());
        }
    }
}
