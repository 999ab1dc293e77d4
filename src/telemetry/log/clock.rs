//! The `timestamp` of a log line: RFC 3339, UTC, microseconds.
//!
//! humantime renders the whole date through the formatting machinery on
//! every call, and a busy sidecar writes thousands of lines within one
//! second. The date and time of day change once a second, so [`Clock`]
//! keeps them rendered and writes only the microseconds per line. The
//! seconds part still comes from humantime, so the text is humantime's
//! `format_rfc3339_micros` byte for byte (the unit tests compare them).

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of `YYYY-MM-DDTHH:MM:SS`, the part rendered once a second.
const SECONDS_LEN: usize = 19;

/// Writes timestamps, keeping the last second it rendered.
#[derive(Default)]
pub(super) struct Clock {
    /// The Unix second `seconds` holds, `None` before the first line.
    second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS` of that second.
    seconds: [u8; SECONDS_LEN],
}

impl Clock {
    /// Appends `now` as `2026-12-04T22:05:26.123456Z`.
    pub(super) fn write(&mut self, out: &mut Vec<u8>, now: SystemTime) -> io::Result<()> {
        // Before 1970 humantime has its own answer (it panics); leave the
        // odd cases to it rather than guess.
        let Ok(since) = now.duration_since(UNIX_EPOCH) else {
            return write!(out, "{}", humantime::format_rfc3339_micros(now));
        };
        let second = since.as_secs();
        if self.second != Some(second) {
            self.render(second)
                .map_err(|_| io::Error::other("timestamp out of range"))?;
        }
        out.extend_from_slice(&self.seconds);
        let mut micros = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'Z'];
        let mut left = since.subsec_micros();
        for digit in micros[1..7].iter_mut().rev() {
            *digit = b'0' + (left % 10) as u8;
            left /= 10;
        }
        out.extend_from_slice(&micros);
        Ok(())
    }

    /// Renders the date and time of day of `second` (humantime fails past
    /// the year 9999, and so does this).
    fn render(&mut self, second: u64) -> fmt::Result {
        let at = UNIX_EPOCH + Duration::from_secs(second);
        let mut text = String::with_capacity(SECONDS_LEN + 1);
        write!(text, "{}", humantime::format_rfc3339_seconds(at))?;
        let seconds = text.as_bytes().get(..SECONDS_LEN).ok_or(fmt::Error)?;
        self.seconds.copy_from_slice(seconds);
        self.second = Some(second);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn humantime(at: SystemTime) -> String {
        humantime::format_rfc3339_micros(at).to_string()
    }

    fn written(clock: &mut Clock, at: SystemTime) -> String {
        let mut out = Vec::new();
        clock.write(&mut out, at).expect("in range");
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn timestamps_match_humantime_across_seconds_days_and_years() {
        let mut clock = Clock::default();
        let instants = [
            0,
            1,
            999_999,
            1_000_000,
            951_782_400_000_000,   // 2000-02-29
            1_798_761_599_999_999, // 2026-12-31T23:59:59.999999
            1_798_761_600_000_000, // 2027-01-01
            1_796_421_926_123_456, // 2026-12-04T22:05:26.123456
            1_796_421_926_000_007,
            1_796_421_925_500_000, // a second back: the clock was set back
            4_107_542_400_000_000, // 2100-03-01
            253_402_300_799_999_999,
        ];
        for micros in instants {
            let at = UNIX_EPOCH + Duration::from_micros(micros);
            assert_eq!(written(&mut clock, at), humantime(at), "{micros}");
        }
    }

    #[test]
    fn nanoseconds_are_cut_to_microseconds_as_humantime_does() {
        let mut clock = Clock::default();
        let at = UNIX_EPOCH + Duration::new(1_796_421_926, 123_456_999);
        assert_eq!(written(&mut clock, at), "2026-12-04T22:05:26.123456Z");
        assert_eq!(written(&mut clock, at), humantime(at));
    }

    #[test]
    fn a_time_past_the_year_9999_is_an_error_as_with_humantime() {
        let mut clock = Clock::default();
        let at = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(clock.write(&mut Vec::new(), at).is_err());
    }
}
