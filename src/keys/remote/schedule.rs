//! When to fetch a remote JWKS next.
//!
//! Pure arithmetic over the settings, the last answer and a random draw,
//! so the schedule is tested without clocks. Jitter keeps a fleet of
//! sidecars, started together by one rollout, from fetching in lockstep.

use std::time::Duration;

use crate::config::RemoteJwksSettings;

/// How far a delay is spread either way: ±10 %.
const JITTER: f64 = 0.1;

/// Returns the delay after a successful fetch (200 or 304).
///
/// The issuer's `max-age` is honoured within bounds: never more often than
/// `min_refetch_interval`, which protects the issuer from a zero or absent
/// `max-age`, and never less often than `jwks_refresh_interval`, so that a
/// key revoked upstream does not stay trusted for a day because the
/// endpoint said it could be cached that long.
pub(super) fn after_success(
    settings: &RemoteJwksSettings,
    max_age: Option<Duration>,
    draw: f64,
) -> Duration {
    let base = match max_age {
        Some(age) => age.clamp(settings.min_refetch_interval, settings.refresh_interval),
        None => settings.refresh_interval,
    };
    jitter(base, draw).max(settings.min_refetch_interval)
}

/// Returns the delay after the `failures`-th failure in a row.
///
/// The first retry comes after `min_refetch_interval`, each later one
/// waits twice as long, up to `jwks_refresh_interval`: quick recovery from
/// a blip, and no hammering of an issuer that is down.
pub(super) fn after_failure(settings: &RemoteJwksSettings, failures: u32, draw: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let base = settings
        .min_refetch_interval
        .saturating_mul(1 << doublings)
        .min(settings.refresh_interval);
    jitter(base, draw).max(settings.min_refetch_interval)
}

/// Spreads `base` by ±10 %; `draw` is uniform in `[0, 1)`.
fn jitter(base: Duration, draw: f64) -> Duration {
    let factor = 1.0 - JITTER + 2.0 * JITTER * draw.clamp(0.0, 1.0);
    base.mul_f64(factor)
}

/// Draws a uniform number in `[0, 1)` for the jitter.
///
/// The operating system's generator (through aws-lc-rs, already linked
/// for the crypto) is more than jitter needs, but saves a dependency.
pub(super) fn draw() -> f64 {
    let mut bytes = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // No randomness: no jitter, which is still a correct schedule.
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Located;

    fn settings() -> RemoteJwksSettings {
        RemoteJwksSettings {
            uri: Located {
                value: http::Uri::from_static("https://issuer.test/jwks"),
                key: "providers[0].jwks_uri".into(),
                origin: "test.toml:1".into(),
            },
            refresh_interval: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(10),
            max_stale: Duration::from_secs(86_400),
            fetch_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }

    const MIDDLE: f64 = 0.5;

    #[test]
    fn without_max_age_the_refresh_interval_applies() {
        let delay = after_success(&settings(), None, MIDDLE);
        assert_eq!(delay, Duration::from_secs(300));
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        let settings = settings();
        let within = after_success(&settings, Some(Duration::from_secs(60)), MIDDLE);
        assert_eq!(within, Duration::from_secs(60));
        let zero = after_success(&settings, Some(Duration::ZERO), MIDDLE);
        assert_eq!(zero, Duration::from_secs(10));
        let long = after_success(&settings, Some(Duration::from_secs(86_400)), MIDDLE);
        assert_eq!(long, Duration::from_secs(300));
    }

    #[test]
    fn jitter_spreads_by_ten_percent_either_way() {
        let settings = settings();
        let low = after_success(&settings, None, 0.0);
        let high = after_success(&settings, None, 0.999_999);
        assert_eq!(low, Duration::from_secs(270));
        assert!(high > Duration::from_millis(329_900) && high <= Duration::from_secs(330));
    }

    #[test]
    fn jitter_never_goes_below_the_minimum() {
        let delay = after_success(&settings(), Some(Duration::ZERO), 0.0);
        assert_eq!(delay, Duration::from_secs(10));
    }

    #[test]
    fn failures_back_off_from_the_minimum_to_the_refresh_interval() {
        let settings = settings();
        let delays: Vec<u64> = (1..=7)
            .map(|n| after_failure(&settings, n, MIDDLE).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(after_failure(&settings, u32::MAX, MIDDLE).as_secs(), 300);
    }

    #[test]
    fn draws_fall_in_the_unit_interval() {
        for _ in 0..100 {
            let draw = draw();
            assert!((0.0..1.0).contains(&draw), "{draw}");
        }
    }
}
