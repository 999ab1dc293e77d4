//! The validated-token cache.
//!
//! A repeat token costs a hash lookup instead of a signature check. Entries
//! are keyed by the SHA-256 digest of the full token text. A short or
//! non-cryptographic hash would let two tokens collide, and the cache would
//! then hand one caller another's identity; nobody can make two tokens with
//! one SHA-256 digest. The digest also keeps the cache at 32 bytes per key
//! where tokens run to hundreds of bytes or more (issue 4's memory target),
//! and keeps bearer tokens themselves out of the process's long-lived memory.
//! Each entry carries the instant it must die (the token's `exp` plus the
//! leeway) and the snapshot generation it was made under.
//!
//! The cache is bounded by bytes as well as by count: identities hold claim
//! values chosen by the issuer, so a count alone would not bound memory.
//! Each entry weighs what it holds (see [`EntryWeight`]).

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, SHA256_OUTPUT_LEN, digest};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::Identity;

/// What one entry costs beyond its identity's heap: the map slot with its
/// digest key, the `Arc` header, the allocator's bookkeeping. An estimate,
/// measured with benches/memory.py (RSS per cached token).
const ENTRY_OVERHEAD_BYTES: u64 = 160;

/// The SHA-256 digest of a token's text: the cache key.
type TokenDigest = [u8; SHA256_OUTPUT_LEN];

/// Holds tokens that verified, with the identity each produced.
pub struct TokenCache {
    /// `None` when the cache is configured off (capacity or bytes 0).
    entries: Option<Cache<TokenDigest, Entry, EntryWeight>>,
}

/// Digests a token's text for the cache key.
fn key(token: &str) -> TokenDigest {
    let mut key = [0u8; SHA256_OUTPUT_LEN];
    key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    key
}

/// Weighs an entry in bytes, but never less than `floor`.
///
/// The floor is `max_bytes / capacity`, so that the one weight limit
/// quick_cache knows enforces both: the weights sum to at most `max_bytes`,
/// hence the bytes do, and no more than `capacity` entries fit.
#[derive(Clone)]
struct EntryWeight {
    floor: u64,
}

impl Weighter<TokenDigest, Entry> for EntryWeight {
    fn weight(&self, _: &TokenDigest, entry: &Entry) -> u64 {
        let bytes = ENTRY_OVERHEAD_BYTES + entry.identity.heap_bytes() as u64;
        bytes.max(self.floor)
    }
}

#[derive(Clone)]
struct Entry {
    identity: Arc<Identity>,
    not_after: f64,
    generation: u64,
}

/// Says what the cache knows of a token.
#[derive(Debug)]
pub enum CacheLookup {
    /// Verified before, under this generation, and still fresh.
    Hit(Arc<Identity>),
    /// Verified before, under this generation, but now past its `exp`; the
    /// value is the provider's index.
    Expired(usize),
    /// Not known: verify it.
    Miss,
}

impl TokenCache {
    /// Builds a cache holding at most `capacity` tokens and about
    /// `max_bytes` bytes of entries and identities (either 0 turns it off).
    pub fn new(capacity: usize, max_bytes: u64) -> Self {
        let entries = (capacity > 0 && max_bytes > 0).then(|| {
            let floor = max_bytes.div_ceil(capacity as u64);
            Cache::with_weighter(capacity, max_bytes, EntryWeight { floor })
        });
        TokenCache { entries }
    }

    /// Looks a token up.
    pub fn get(&self, token: &str, generation: u64, now: f64) -> CacheLookup {
        let Some(entries) = &self.entries else {
            return CacheLookup::Miss;
        };
        let key = key(token);
        let Some(entry) = entries.get(&key) else {
            return CacheLookup::Miss;
        };
        if entry.generation != generation {
            return CacheLookup::Miss;
        }
        if now >= entry.not_after {
            entries.remove(&key);
            return CacheLookup::Expired(entry.identity.provider);
        }
        CacheLookup::Hit(entry.identity)
    }

    /// Remembers a verified token until `not_after` (Unix seconds).
    pub fn insert(&self, token: &str, identity: Arc<Identity>, not_after: f64, generation: u64) {
        let Some(entries) = &self.entries else {
            return;
        };
        let entry = Entry {
            identity,
            not_after,
            generation,
        };
        entries.insert(key(token), entry);
    }

    /// Returns how many tokens are held.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }

    /// Returns the bytes the held tokens weigh, as [`EntryWeight`] counts
    /// them.
    pub fn weight(&self) -> u64 {
        self.entries.as_ref().map_or(0, Cache::weight)
    }

    /// Says whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(subject: &str) -> Arc<Identity> {
        Arc::new(Identity {
            provider: 0,
            subject: Some(subject.into()),
            roles: Vec::new(),
            headers: Vec::new(),
            jti: None,
            issued_at: None,
        })
    }

    #[test]
    fn a_hit_returns_the_identity_first_verified() {
        let cache = TokenCache::new(10, 1 << 20);
        let first = identity("alice");
        cache.insert("t", first.clone(), 100.0, 1);
        match cache.get("t", 1, 50.0) {
            CacheLookup::Hit(found) => assert!(Arc::ptr_eq(&found, &first)),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn an_entry_dies_at_its_expiry() {
        let cache = TokenCache::new(10, 1 << 20);
        cache.insert("t", identity("alice"), 100.0, 1);
        assert!(matches!(cache.get("t", 1, 100.0), CacheLookup::Expired(0)));
        assert!(matches!(cache.get("t", 1, 50.0), CacheLookup::Miss));
    }

    #[test]
    fn an_entry_from_another_generation_is_ignored() {
        let cache = TokenCache::new(10, 1 << 20);
        cache.insert("t", identity("alice"), 100.0, 1);
        assert!(matches!(cache.get("t", 2, 50.0), CacheLookup::Miss));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        for (capacity, max_bytes) in [(0, 1 << 20), (10, 0)] {
            let cache = TokenCache::new(capacity, max_bytes);
            cache.insert("t", identity("alice"), 100.0, 1);
            assert!(matches!(cache.get("t", 1, 50.0), CacheLookup::Miss));
            assert!(cache.is_empty());
        }
    }

    #[test]
    fn the_bytes_held_stay_under_max_bytes_whatever_the_claims_size() {
        let max_bytes = 64 * 1024;
        let cache = TokenCache::new(100_000, max_bytes);
        let long = "x".repeat(4000);
        for at in 0..200 {
            cache.insert(&format!("t{at}"), identity(&long), 100.0, 1);
        }
        assert!(cache.weight() <= max_bytes, "{}", cache.weight());
        // 4 kB subjects: far fewer than the count limit fit in 64 KiB.
        assert!(cache.len() < 17, "{}", cache.len());
        assert!(!cache.is_empty());
    }

    #[test]
    fn a_token_differing_in_one_byte_is_another_entry() {
        let cache = TokenCache::new(10, 1 << 20);
        cache.insert("header.claims.signature", identity("alice"), 100.0, 1);
        for other in [
            "header.claims.signaturf",
            "header.claims.signatur",
            "header.claims.signature.",
        ] {
            assert!(
                matches!(cache.get(other, 1, 50.0), CacheLookup::Miss),
                "{other}"
            );
        }
        assert!(matches!(
            cache.get("header.claims.signature", 1, 50.0),
            CacheLookup::Hit(_)
        ));
    }

    #[test]
    fn the_count_stays_under_capacity_whatever_the_bytes_allowed() {
        let cache = TokenCache::new(50, 1 << 30);
        for at in 0..500 {
            cache.insert(&format!("t{at}"), identity("alice"), 100.0, 1);
        }
        assert!(cache.len() <= 50, "{}", cache.len());
        assert!(cache.len() >= 25, "{}", cache.len());
    }
}
