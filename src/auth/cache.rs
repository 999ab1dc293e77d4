//! The validated-token cache.
//!
//! A repeat token costs a hash lookup instead of a signature check. Each
//! entry carries the instant it must die (the token's `exp` plus the
//! leeway) and the snapshot generation it was made under.
//!
//! # The key
//!
//! Entries are keyed by a 128-bit SipHash-2-4 of the full token text, under
//! a key drawn at random when the cache is built. What matters is that no
//! caller can present a token whose cache key equals that of someone
//! else's cached token, or the cache would hand them that identity. The
//! attacker never sees a cache key: keys stay inside the process, and
//! a guess is only tested by sending the token and seeing whether it
//! passes. With the SipHash key secret, each such guess is a blind shot at
//! a 128-bit pseudorandom value, and doing better than blind is breaking
//! SipHash as a PRF. A collision-resistant digest (SHA-256, the key here
//! before) guards against an attacker who can hash offline; nobody can, so
//! it bought nothing for seven times the instructions per lookup.
//!
//! The output must still be wide. At an absurd 100,000 distinct tokens a
//! second for a year (about 3.2e12, or 2^41.5 guesses) against a full cache
//! of 100,000 entries (2^16.6), the chance that some guess lands on a held
//! key is about 2^(41.5 + 16.6 - b) for a b-bit key: 2^-5.9, nearly 2 %, at
//! 64 bits, which is not a risk to take with identities; 2^-69.9 at 128
//! bits. Even the birthday bound over every token of that year, 2^82 pairs,
//! gives 2^-46 odds of any two sharing a key at 128 bits (at 64 bits some
//! 2^18 pairs would). SipHash's authors mark its 128-bit output mode
//! experimental: less studied than the 64-bit one, same rounds, no
//! published attack.
//!
//! The key is already uniformly random, so the map does not hash it again:
//! [`KeyHashBuilder`] passes 64 of its bits straight through as the map's
//! hash. The key is also 16 bytes inline in the map's slot, where tokens run
//! to hundreds of bytes, and keeps bearer tokens themselves out of the
//! process's long-lived memory.
//!
//! The cache is bounded by bytes as well as by count: identities hold claim
//! values chosen by the issuer, so a count alone would not bound memory.
//! Each entry weighs what it holds (see [`EntryWeight`]).

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::{Cache, DefaultLifecycle};
use siphasher::sip128::{Hasher128, SipHasher24};

use super::Identity;

/// What one entry costs beyond its identity's heap: the map slot with its
/// 16-byte key, the `Arc` header, the allocator's bookkeeping. An estimate,
/// measured with benches/memory.py (RSS per cached token): 160 with the
/// 32-byte SHA-256 key, 16 less since (about 19 bytes of RSS less per
/// token were measured).
const ENTRY_OVERHEAD_BYTES: u64 = 144;

/// A token's cache key: its keyed 128-bit SipHash (see the module doc).
///
/// Made once per request by [`TokenCache::key`] and used for the lookup
/// and, on a miss, for the insert: the hash costs several instructions per
/// byte of token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenKey(u128);

impl Hash for TokenKey {
    /// Feeds 64 of the key's bits, which are already uniform, to the map's
    /// hasher; equal keys still hash alike, which is all a map needs.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 as u64);
    }
}

/// Builds [`KeyHash`]ers: the map's hash of a [`TokenKey`] is its own bits.
#[derive(Clone, Copy, Default)]
struct KeyHashBuilder;

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHash;

    fn build_hasher(&self) -> KeyHash {
        KeyHash(0)
    }
}

/// Passes a [`TokenKey`]'s bits through as the map's hash.
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 = bits;
    }

    /// Not reached by [`TokenKey`]; folds bytes in so that the hasher stays
    /// a correct (if weak) one for anything else.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
}

type Entries =
    Cache<TokenKey, Entry, EntryWeight, KeyHashBuilder, DefaultLifecycle<TokenKey, Entry>>;

/// Holds tokens that verified, with the identity each produced.
pub struct TokenCache {
    /// `None` when the cache is configured off (capacity or bytes 0).
    entries: Option<Entries>,
    /// The SipHash key, drawn once per cache and never shown.
    secret: [u64; 2],
}

/// Draws the SipHash key from the system's random source.
fn random_secret() -> [u64; 2] {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .expect("the system random source serves 16 bytes (aws-lc-rs needs it for any crypto)");
    let (k0, k1) = bytes.split_at(8);
    [
        u64::from_le_bytes(k0.try_into().expect("8 bytes")),
        u64::from_le_bytes(k1.try_into().expect("8 bytes")),
    ]
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

impl Weighter<TokenKey, Entry> for EntryWeight {
    fn weight(&self, _: &TokenKey, entry: &Entry) -> u64 {
        let held = match &entry.verdict {
            Cached::Valid(identity) => identity.heap_bytes() as u64,
            Cached::Expired(_) => 0,
        };
        (ENTRY_OVERHEAD_BYTES + held).max(self.floor)
    }
}

#[derive(Clone)]
struct Entry {
    verdict: Cached,
    /// For a valid token, when it expires (leeway included); for an
    /// expired one, a time by which it was known to have expired.
    not_after: f64,
    generation: u64,
}

/// What a held token's signature check found.
#[derive(Clone)]
enum Cached {
    /// It verified: the identity it carries.
    Valid(Arc<Identity>),
    /// It verified but is past its `exp`: the provider's index. It holds
    /// no identity, and stands for as long as the clock reads no earlier
    /// than the entry's `not_after`.
    Expired(usize),
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
            let weight = EntryWeight { floor };
            Cache::with(
                capacity,
                max_bytes,
                weight,
                KeyHashBuilder,
                Default::default(),
            )
        });
        TokenCache {
            entries,
            secret: random_secret(),
        }
    }

    /// Hashes a token's text into its cache key under this cache's secret.
    pub fn key(&self, token: &str) -> TokenKey {
        let [k0, k1] = self.secret;
        let mut hasher = SipHasher24::new_with_keys(k0, k1);
        hasher.write(token.as_bytes());
        TokenKey(hasher.finish128().as_u128())
    }

    /// Looks a token up by its key.
    pub fn get(&self, key: TokenKey, generation: u64, now: f64) -> CacheLookup {
        let Some(entries) = &self.entries else {
            return CacheLookup::Miss;
        };
        let Some(entry) = entries.get(&key) else {
            return CacheLookup::Miss;
        };
        if entry.generation != generation {
            return CacheLookup::Miss;
        }
        match entry.verdict {
            Cached::Expired(provider) if now >= entry.not_after => CacheLookup::Expired(provider),
            // The clock reads earlier than when the token was found
            // expired: it stepped back, as it does when a clock that ran
            // ahead is put right. Only a fresh check knows the answer now.
            Cached::Expired(_) => CacheLookup::Miss,
            Cached::Valid(identity) if now >= entry.not_after => {
                // From now on the token is refused (unless the clock steps
                // back): keep that answer, and let the identity go.
                let expired = Entry {
                    verdict: Cached::Expired(identity.provider),
                    ..entry
                };
                entries.insert(key, expired);
                CacheLookup::Expired(identity.provider)
            }
            Cached::Valid(identity) => CacheLookup::Hit(identity),
        }
    }

    /// Remembers a verified token until `not_after` (Unix seconds).
    pub fn insert(&self, key: TokenKey, identity: Arc<Identity>, not_after: f64, generation: u64) {
        self.put(key, Cached::Valid(identity), not_after, generation);
    }

    /// Remembers a token that verified but had expired at `now`, so that
    /// a client retrying it is answered without a second signature check.
    ///
    /// Only for a token whose signature held: an attacker can mint any
    /// number of forgeries, but not one of these. The answer holds from
    /// `now` on; should the clock later read earlier (a clock that ran
    /// ahead, put right), the token is checked afresh.
    pub fn insert_expired(&self, key: TokenKey, provider: usize, generation: u64, now: f64) {
        self.put(key, Cached::Expired(provider), now, generation);
    }

    fn put(&self, key: TokenKey, verdict: Cached, not_after: f64, generation: u64) {
        let Some(entries) = &self.entries else {
            return;
        };
        let entry = Entry {
            verdict,
            not_after,
            generation,
        };
        entries.insert(key, entry);
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
        cache.insert(cache.key("t"), first.clone(), 100.0, 1);
        match cache.get(cache.key("t"), 1, 50.0) {
            CacheLookup::Hit(found) => assert!(Arc::ptr_eq(&found, &first)),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn an_entry_is_refused_from_its_expiry_on_and_lets_its_identity_go() {
        let cache = TokenCache::new(10, 1 << 20);
        let held = identity("alice");
        cache.insert(cache.key("t"), held.clone(), 100.0, 1);
        assert_eq!(Arc::strong_count(&held), 2);
        assert!(matches!(
            cache.get(cache.key("t"), 1, 99.0),
            CacheLookup::Hit(_)
        ));
        assert!(matches!(
            cache.get(cache.key("t"), 1, 100.0),
            CacheLookup::Expired(0)
        ));
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "the identity is no longer held"
        );
        assert!(matches!(
            cache.get(cache.key("t"), 1, 150.0),
            CacheLookup::Expired(0)
        ));
        // A clock that stepped back before the expiry (one that ran ahead,
        // put right) gets the token checked afresh.
        assert!(matches!(
            cache.get(cache.key("t"), 1, 50.0),
            CacheLookup::Miss
        ));
    }

    #[test]
    fn a_token_that_verified_expired_is_answered_expired_under_its_generation() {
        let cache = TokenCache::new(10, 1 << 20);
        cache.insert_expired(cache.key("t"), 3, 1, 100.0);
        for now in [100.0, 1e12] {
            assert!(matches!(
                cache.get(cache.key("t"), 1, now),
                CacheLookup::Expired(3)
            ));
        }
        assert!(matches!(
            cache.get(cache.key("t"), 1, 99.0),
            CacheLookup::Miss
        ));
        assert!(matches!(
            cache.get(cache.key("t"), 2, 0.0),
            CacheLookup::Miss
        ));
        assert!(matches!(
            cache.get(cache.key("u"), 1, 0.0),
            CacheLookup::Miss
        ));
    }

    #[test]
    fn an_entry_from_another_generation_is_ignored() {
        let cache = TokenCache::new(10, 1 << 20);
        cache.insert(cache.key("t"), identity("alice"), 100.0, 1);
        assert!(matches!(
            cache.get(cache.key("t"), 2, 50.0),
            CacheLookup::Miss
        ));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        for (capacity, max_bytes) in [(0, 1 << 20), (10, 0)] {
            let cache = TokenCache::new(capacity, max_bytes);
            cache.insert(cache.key("t"), identity("alice"), 100.0, 1);
            assert!(matches!(
                cache.get(cache.key("t"), 1, 50.0),
                CacheLookup::Miss
            ));
            assert!(cache.is_empty());
        }
    }

    #[test]
    fn the_bytes_held_stay_under_max_bytes_whatever_the_claims_size() {
        let max_bytes = 64 * 1024;
        let cache = TokenCache::new(100_000, max_bytes);
        let long = "x".repeat(4000);
        for at in 0..200 {
            cache.insert(cache.key(&format!("t{at}")), identity(&long), 100.0, 1);
        }
        assert!(cache.weight() <= max_bytes, "{}", cache.weight());
        // 4 kB subjects: far fewer than the count limit fit in 64 KiB.
        assert!(cache.len() < 17, "{}", cache.len());
        assert!(!cache.is_empty());
    }

    #[test]
    fn a_token_differing_in_one_byte_is_another_entry() {
        let cache = TokenCache::new(10, 1 << 20);
        cache.insert(
            cache.key("header.claims.signature"),
            identity("alice"),
            100.0,
            1,
        );
        for other in [
            "header.claims.signaturf",
            "header.claims.signatur",
            "header.claims.signature.",
        ] {
            assert!(
                matches!(cache.get(cache.key(other), 1, 50.0), CacheLookup::Miss),
                "{other}"
            );
        }
        assert!(matches!(
            cache.get(cache.key("header.claims.signature"), 1, 50.0),
            CacheLookup::Hit(_)
        ));
    }

    #[test]
    fn distinct_tokens_get_distinct_keys_and_one_token_always_the_same() {
        let cache = TokenCache::new(10, 1 << 20);
        let tokens: Vec<String> = (0..1000).map(|at| format!("h.c.s{at}")).collect();
        let keys: std::collections::HashSet<u128> =
            tokens.iter().map(|token| cache.key(token).0).collect();
        assert_eq!(keys.len(), tokens.len());
        for token in &tokens {
            assert_eq!(cache.key(token), cache.key(token), "{token}");
        }
        // Empty and one-byte-apart texts too.
        assert_ne!(cache.key(""), cache.key("\0"));
        assert_ne!(cache.key("a.b.c"), cache.key("a.b.d"));
    }

    #[test]
    fn two_caches_key_one_token_differently() {
        // Each process builds its cache once, so two caches stand for two
        // processes: neither can predict the other's keys.
        let (first, second) = (TokenCache::new(10, 1 << 20), TokenCache::new(10, 1 << 20));
        assert_ne!(first.secret, second.secret);
        for token in ["t", "header.claims.signature", ""] {
            assert_ne!(first.key(token), second.key(token), "{token}");
        }
    }

    #[test]
    fn the_map_hash_is_the_keys_own_bits() {
        let key = TokenKey(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(KeyHashBuilder.hash_one(key), 0xfedc_ba98_7654_3210);
    }

    #[test]
    fn the_count_stays_under_capacity_whatever_the_bytes_allowed() {
        let cache = TokenCache::new(50, 1 << 30);
        for at in 0..500 {
            cache.insert(cache.key(&format!("t{at}")), identity("alice"), 100.0, 1);
        }
        assert!(cache.len() <= 50, "{}", cache.len());
        assert!(cache.len() >= 25, "{}", cache.len());
    }
}
