//! Times as the query CLI, `render` and the HTTP API take them: RFC 3339, an age before now
//! (`15m`, `2h`) or Unix milliseconds; and Unix milliseconds printed as RFC 3339.
//!
//! Input: text from a user or a network peer, and the current time. Output: Unix ms between
//! [`MIN_MS`] (1970-01-01) and [`MAX_MS`] (9999-12-31), or a [`TimeError`]. All arithmetic is
//! checked: no input panics or wraps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Earliest time accepted: 1970-01-01T00:00:00Z.
pub const MIN_MS: i64 = 0;
/// Latest time accepted: 9999-12-31T23:59:59.999Z (the last instant RFC 3339 can write).
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Why a time argument is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not a time in any of the three forms.
    #[error(
        "time {0:?}: use RFC 3339 (2026-11-24T09:30:00Z), an age such as 15m, or Unix milliseconds"
    )]
    Malformed(String),
    /// A time before 1970 or after 9999, or an age reaching before 1970.
    #[error("time {0:?}: out of range (1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z)")]
    OutOfRange(String),
}

/// Parses RFC 3339, an age before `now` (`15m`, `2h`) or Unix milliseconds, within
/// [`MIN_MS`]..=[`MAX_MS`].
pub fn parse_time(s: &str, now: SystemTime) -> Result<i64, TimeError> {
    let s = s.trim();
    // Keep the message short whatever was sent (a query string can be long).
    let quoted = || s.chars().take(64).collect::<String>();
    let out_of_range = || TimeError::OutOfRange(quoted());
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        let ms = s.parse::<i64>().map_err(|_| match s.starts_with('-') {
            true if s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()) => out_of_range(),
            false if s.bytes().all(|b| b.is_ascii_digit()) => out_of_range(),
            _ => TimeError::Malformed(quoted()),
        })?;
        return in_range(ms).ok_or_else(out_of_range);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return unix_ms(t).and_then(in_range).ok_or_else(out_of_range);
    }
    match humantime::parse_duration(s) {
        Ok(age) => now
            .checked_sub(age)
            .and_then(unix_ms)
            .and_then(in_range)
            .ok_or_else(out_of_range),
        Err(humantime::DurationError::NumberOverflow) => Err(out_of_range()),
        Err(_) => Err(TimeError::Malformed(quoted())),
    }
}

fn in_range(ms: i64) -> Option<i64> {
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// Unix ms of `t`; None before 1970 or past what i64 milliseconds hold.
fn unix_ms(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Unix ms as RFC 3339 with milliseconds; a number outside 1970..9999 (a corrupt row) is
/// printed as the number.
pub fn format_time(ms: i64) -> String {
    match in_range(ms) {
        Some(ms) => humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64))
            .to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(3600);
        assert_eq!(parse_time("1500", now).unwrap(), 1500);
        assert_eq!(parse_time("15m", now).unwrap(), 45 * 60 * 1000);
        assert_eq!(parse_time("1970-01-01T00:00:02Z", now).unwrap(), 2000);
        assert!(matches!(
            parse_time("yesterday-ish", now),
            Err(TimeError::Malformed(_))
        ));
    }

    /// `--from 584000000000y` panicked (exit 101), `999999999y` wrapped to a time in the
    /// future, 253402300800000 panicked when printed.
    #[test]
    fn times_out_of_range_are_refused_not_wrapped_or_panicking() {
        let now = SystemTime::now();
        for s in [
            "584000000000y",
            "999999999y",
            "100y",
            "253402300800000",
            "-1",
            "99999999999999999999999",
            "-99999999999999999999999",
            "18446744073709551615ms",
        ] {
            assert!(
                matches!(parse_time(s, now), Err(TimeError::OutOfRange(_))),
                "{s}: {:?}",
                parse_time(s, now)
            );
        }
        assert_eq!(parse_time("253402300799999", now).unwrap(), MAX_MS);
        assert_eq!(parse_time("0", now).unwrap(), 0);
        assert_eq!(parse_time("9999-12-31T23:59:59.999Z", now).unwrap(), MAX_MS);
        assert!(matches!(
            parse_time("--5", now),
            Err(TimeError::Malformed(_))
        ));
        assert!(matches!(parse_time("", now), Err(TimeError::Malformed(_))));
    }

    #[test]
    fn any_number_prints() {
        assert_eq!(format_time(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_time(MAX_MS + 1), "253402300800000");
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
        assert_eq!(format_time(-5), "-5");
    }
}
