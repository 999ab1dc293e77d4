//! The validated-token cache.
//!
//! A repeat token costs a hash lookup instead of a signature check. Entries
//! are keyed by the full token text: a short hash would let two tokens
//! collide, and the cache would then hand one caller another's identity.
//! Each entry carries the instant it must die (the token's `exp` plus the
//! leeway) and the snapshot generation it was made under.

use std::sync::Arc;

use quick_cache::sync::Cache;

use super::Identity;

/// Holds tokens that verified, with the identity each produced.
pub struct TokenCache {
    /// `None` when the cache is configured off (capacity 0).
    entries: Option<Cache<Box<str>, Entry>>,
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
    /// Builds a cache holding at most `capacity` tokens (0 turns it off).
    pub fn new(capacity: usize) -> Self {
        let entries = (capacity > 0).then(|| Cache::new(capacity));
        TokenCache { entries }
    }

    /// Looks a token up.
    pub fn get(&self, token: &str, generation: u64, now: f64) -> CacheLookup {
        let Some(entries) = &self.entries else {
            return CacheLookup::Miss;
        };
        let Some(entry) = entries.get(token) else {
            return CacheLookup::Miss;
        };
        if entry.generation != generation {
            return CacheLookup::Miss;
        }
        if now >= entry.not_after {
            entries.remove(token);
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
        entries.insert(token.into(), entry);
    }

    /// Returns how many tokens are held.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
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
        let cache = TokenCache::new(10);
        let first = identity("alice");
        cache.insert("t", first.clone(), 100.0, 1);
        match cache.get("t", 1, 50.0) {
            CacheLookup::Hit(found) => assert!(Arc::ptr_eq(&found, &first)),
            other => panic!("expected a hit, got {other:?}"),
        }
    }

    #[test]
    fn an_entry_dies_at_its_expiry() {
        let cache = TokenCache::new(10);
        cache.insert("t", identity("alice"), 100.0, 1);
        assert!(matches!(cache.get("t", 1, 100.0), CacheLookup::Expired(0)));
        assert!(matches!(cache.get("t", 1, 50.0), CacheLookup::Miss));
    }

    #[test]
    fn an_entry_from_another_generation_is_ignored() {
        let cache = TokenCache::new(10);
        cache.insert("t", identity("alice"), 100.0, 1);
        assert!(matches!(cache.get("t", 2, 50.0), CacheLookup::Miss));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = TokenCache::new(0);
        cache.insert("t", identity("alice"), 100.0, 1);
        assert!(matches!(cache.get("t", 1, 50.0), CacheLookup::Miss));
        assert!(cache.is_empty());
    }
}
