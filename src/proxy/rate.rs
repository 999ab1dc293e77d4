//! The per-client-IP rate limit on the account store routes (login,
//! refresh, logout): the routes that take passwords, so the ones worth
//! guessing at.
//!
//! Each client IP has a token bucket, kept as GCRA does: one instant, the
//! theoretical arrival time of the next request, so a bucket is 8 bytes
//! and a check is one subtraction. The buckets live in a bounded
//! `quick_cache` (already the token cache's crate), so a flood from many
//! addresses evicts old buckets instead of growing memory; the `governor`
//! crate's keyed limiter would need a sweeping task to bound its map.
//! An evicted bucket comes back full, which errs towards letting a rare
//! client through, never towards refusing one.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use quick_cache::sync::Cache;
use tokio::time::Instant;

use crate::config::RateSettings;

/// How many client IPs have a bucket at once; beyond that the least
/// recently seen are dropped. At about 100 bytes per entry, 6.4 MB.
// XXX: fixed; a pod behind an ingress with more active clients than this
// would see some of them get fresh buckets early.
const MAX_CLIENTS: usize = 65_536;

/// Holds the buckets of every client IP.
pub struct RateLimiter {
    buckets: Cache<IpAddr, Arc<Mutex<Instant>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            buckets: Cache::new(MAX_CLIENTS),
        }
    }
}

impl RateLimiter {
    /// Takes one request from `client`'s bucket under `rate`: `Ok` when it
    /// may pass, or the wait until it may, in whole seconds (at least 1),
    /// for `Retry-After`.
    pub fn check(&self, client: IpAddr, rate: RateSettings, now: Instant) -> Result<(), u32> {
        if !rate.is_on() {
            return Ok(());
        }
        let interval = Duration::from_secs(60) / rate.per_minute;
        let burst = interval * rate.burst;
        let client = bucket_key(client);
        let bucket = self
            .buckets
            .get_or_insert_with(&client, || Ok::<_, ()>(Arc::new(Mutex::new(now))))
            .unwrap_or_else(|()| Arc::new(Mutex::new(now)));
        let mut next = bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        let after = (*next).max(now) + interval;
        let allowed_at = after.checked_sub(burst).unwrap_or(now);
        if allowed_at > now {
            let wait = allowed_at - now;
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(u32::try_from(seconds.max(1)).unwrap_or(u32::MAX));
        }
        *next = after;
        Ok(())
    }
}

/// Names the bucket of a client address: an IPv4 address is its own
/// bucket (also when written IPv4-mapped, `::ffff:a.b.c.d`), and an IPv6
/// address shares the bucket of its /64, since a single host is usually
/// handed a whole /64 and could otherwise take a fresh address, and a fresh
/// bucket, for every attempt.
fn bucket_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(network.into())
            }
        },
    }
}

/// Picks the client IP to limit: the TCP peer, or with `trusted_hops`
/// proxies in front, the address the outermost trusted one saw.
///
/// Each proxy appends the address it saw to `X-Forwarded-For`, so the
/// entry `trusted_hops` from the right was written by a trusted proxy;
/// anything left of it is the client's own word and could be anything. A
/// header with fewer entries than that means a request that came around
/// the proxies, so the peer is used.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trusted_hops: usize) -> IpAddr {
    if trusted_hops == 0 {
        return peer.ip();
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let Some(at) = entries.len().checked_sub(trusted_hops) else {
        return peer.ip();
    };
    entries[at].parse().unwrap_or(peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn rate(per_minute: u32, burst: u32) -> RateSettings {
        RateSettings { per_minute, burst }
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let rate = rate(60, 2);
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let second: IpAddr = "2001:db8:1:2:ffff::5".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limiter.check(first, rate, now), Ok(()));
        assert_eq!(limiter.check(second, rate, now), Ok(()));
        assert_eq!(limiter.check(first, rate, now), Err(1));
        assert_eq!(limiter.check(elsewhere, rate, now), Ok(()));
    }

    #[test]
    fn an_ipv4_mapped_address_shares_the_ipv4_bucket() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let rate = rate(60, 1);
        let plain: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(limiter.check(plain, rate, now), Ok(()));
        assert_eq!(limiter.check(mapped, rate, now), Err(1));
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let rate = rate(60, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check(LOOPBACK, rate, now), Ok(()));
        }
        assert_eq!(limiter.check(LOOPBACK, rate, now), Err(1));
        let later = now + Duration::from_secs(1);
        assert_eq!(limiter.check(LOOPBACK, rate, later), Ok(()));
        assert_eq!(limiter.check(LOOPBACK, rate, later), Err(1));
    }

    #[test]
    fn retry_after_rounds_the_wait_up_to_whole_seconds() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let rate = rate(2, 1);
        assert_eq!(limiter.check(LOOPBACK, rate, now), Ok(()));
        assert_eq!(limiter.check(LOOPBACK, rate, now), Err(30));
        let soon = now + Duration::from_millis(29_500);
        assert_eq!(limiter.check(LOOPBACK, rate, soon), Err(1));
    }

    #[test]
    fn each_client_has_its_own_bucket_and_zero_turns_the_limit_off() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(limiter.check(LOOPBACK, rate(1, 1), now), Ok(()));
        assert!(limiter.check(LOOPBACK, rate(1, 1), now).is_err());
        assert_eq!(limiter.check(other, rate(1, 1), now), Ok(()));
        for _ in 0..100 {
            assert_eq!(limiter.check(LOOPBACK, rate(0, 1), now), Ok(()));
        }
    }

    #[test]
    fn the_client_ip_is_the_peer_unless_hops_are_trusted() {
        let peer: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        headers.append("x-forwarded-for", "3.3.3.3".parse().unwrap());
        assert_eq!(client_ip(&headers, peer, 0), peer.ip());
        assert_eq!(client_ip(&headers, peer, 1).to_string(), "3.3.3.3");
        assert_eq!(client_ip(&headers, peer, 2).to_string(), "2.2.2.2");
        assert_eq!(client_ip(&headers, peer, 4), peer.ip());
        assert_eq!(client_ip(&HeaderMap::new(), peer, 1), peer.ip());
    }
}
