//! Times as an operator reads them: how long ago or from now, and when.
//!
//! Clock skew between the issuer and this machine shows up as an `exp`,
//! `nbf` or `iat` that is off by a few minutes, so the spans are written
//! to be compared at a glance ("3m12s") rather than as raw seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Writes a span of seconds with its two largest units: `3m12s`, `14m`,
/// `1h2m`, `2d3h`; under a second is `0s`.
///
/// Two units are enough to spot skew and short enough to read; a token
/// that expired three days ago does not need its seconds.
pub(crate) fn span(seconds: f64) -> String {
    // `as` saturates, so an absurd `exp` cannot overflow the arithmetic.
    let total = seconds.abs().round() as u64;
    let units = [
        (total / 86_400, "d"),
        (total / 3_600 % 24, "h"),
        (total / 60 % 60, "m"),
        (total % 60, "s"),
    ];
    let text: String = units
        .iter()
        .skip_while(|(count, _)| *count == 0)
        .take(2)
        .filter(|(count, _)| *count > 0)
        .map(|(count, unit)| format!("{count}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text
    }
}

/// The last second RFC 3339 can write, 9999-12-31T23:59:59Z: its years
/// have four digits.
const LAST_RFC3339_SECOND: f64 = 253_402_300_799.0;

/// Writes a Unix time as RFC 3339 UTC, or says why it has no such form.
pub(crate) fn timestamp(unix: f64) -> String {
    if unix < 0.0 {
        return "before 1970".to_owned();
    }
    let at = Duration::try_from_secs_f64(unix)
        .ok()
        .and_then(|since| UNIX_EPOCH.checked_add(since));
    match at {
        // humantime's Display fails past year 9999, and `to_string` turns
        // that into a panic: a token's `iat` of 1140000000000 (found by the
        // `token` fuzz target) crashed `tollgate inspect`.
        Some(_) if unix > LAST_RFC3339_SECOND => "after the year 9999".to_owned(),
        Some(at) => humantime::format_rfc3339_seconds(at).to_string(),
        None => "beyond any calendar date".to_owned(),
    }
}

/// Returns the wall clock as Unix seconds, the unit of `exp` and `nbf`.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_keep_their_two_largest_units() {
        assert_eq!(span(192.0), "3m12s");
        assert_eq!(span(840.0), "14m");
        assert_eq!(span(3_720.4), "1h2m");
        assert_eq!(span(3_601.0), "1h");
        assert_eq!(span(183_600.0), "2d3h");
        assert_eq!(span(0.3), "0s");
        assert_eq!(span(-59.6), "1m");
        assert_eq!(span(1e300), span(f64::MAX));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_and_never_panic() {
        assert_eq!(timestamp(1_714_521_600.0), "2024-05-01T00:00:00Z");
        assert_eq!(timestamp(-1.0), "before 1970");
        assert_eq!(timestamp(1e300), "beyond any calendar date");
        assert_eq!(timestamp(f64::NAN), "beyond any calendar date");
        assert_eq!(timestamp(253_402_300_799.0), "9999-12-31T23:59:59Z");
        assert_eq!(timestamp(253_402_300_800.0), "after the year 9999");
        assert_eq!(timestamp(1_140_000_000_000.0), "after the year 9999");
    }
}
