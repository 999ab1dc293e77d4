//! Deciding whether a request may pass: token extraction, verification,
//! the validated-token cache, claims to identity, and path rules.
//!
//! This is step 4 and 5 of the request path. Nothing here touches a socket or
//! a hyper type: a [`Verdict`] is computed from header values, the current
//! providers and the clock, so every decision can be unit tested and
//! benchmarked on its own.

mod cache;
mod identity;
pub mod path;
mod provider;
mod reason;
mod revoke;
pub mod rules;
mod strict_json;
mod token;
mod verify;

use std::sync::Arc;

pub use self::cache::{CacheLookup, TokenCache, TokenKey};
pub use self::identity::Identity;
pub use self::provider::{Provider, Providers};
pub use self::reason::Reason;
pub use self::revoke::{Denylist, DenylistError, Revocation};
pub use self::token::bearer_token;
pub use self::verify::verify;
// For `tollgate inspect`, which explains each check with the verifier's own
// helpers rather than a second copy of them.
pub(crate) use self::identity::{header_value, merged_roles};
pub(crate) use self::verify::{decode_json, holds_audience, is_canonical_base64, numeric_date};

/// The outcome of checking one token: who the caller is, or why not.
pub type Verdict = Result<Arc<Identity>, Refusal>;

/// Says why a token was refused and, when the token named a known issuer,
/// which provider refused it (for the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why the token was refused.
    pub reason: Reason,
    /// Index of the provider in the snapshot, when one was picked.
    pub provider: Option<usize>,
}

impl Refusal {
    /// Builds a refusal that happened before any provider was picked.
    pub fn early(reason: Reason) -> Self {
        Self {
            reason,
            provider: None,
        }
    }

    /// Builds a refusal by the provider at index `provider`.
    pub fn by(provider: usize, reason: Reason) -> Self {
        Self {
            reason,
            provider: Some(provider),
        }
    }
}

/// Says whether a verdict came from the cache, for the hit-rate metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The token was found, fresh, in the cache.
    Hit,
    /// The token was verified from scratch.
    Miss,
}

/// Checks a token, through the cache when possible.
///
/// Only tokens whose signature held are cached: those that verified, and
/// those that verified but had expired, which stay refused. A forged or
/// malformed token costs a check each time, so an attacker cannot fill the
/// cache with junk, and a refused token can never shadow a good one.
/// `generation` is the snapshot's generation; an entry made under another
/// one is ignored, so a key rotation or config reload takes effect at once.
///
/// Revocation is checked last, on the cached and the fresh path alike: a
/// verified token stays verified, but whether it is still welcome is the
/// provider's current word.
pub fn authenticate(
    token: &str,
    providers: &Providers,
    cache: &TokenCache,
    generation: u64,
    now: f64,
) -> (Verdict, CacheOutcome) {
    let key = cache.key(token);
    let (verdict, cached) = match cache.get(key, generation, now) {
        CacheLookup::Hit(identity) => (Ok(identity), CacheOutcome::Hit),
        CacheLookup::Expired(provider) => {
            let refusal = Refusal::by(provider, Reason::Expired);
            return (Err(refusal), CacheOutcome::Hit);
        }
        CacheLookup::Miss => {
            let verified = verify(token, providers, now);
            match &verified {
                Ok(ok) => cache.insert(key, ok.identity.clone(), ok.not_after, generation),
                // The claims are checked only once the signature holds, so
                // an expired token is one its issuer made.
                Err(Refusal {
                    reason: Reason::Expired,
                    provider: Some(provider),
                }) => cache.insert_expired(key, *provider, generation, now),
                Err(_) => {}
            }
            (verified.map(|ok| ok.identity), CacheOutcome::Miss)
        }
    };

    (
        verdict.and_then(|identity| unless_revoked(identity, providers)),
        cached,
    )
}

/// Refuses an identity whose provider has revoked its token.
fn unless_revoked(identity: Arc<Identity>, providers: &Providers) -> Verdict {
    let provider = providers.list().get(identity.provider);
    if provider.is_some_and(|provider| provider.revoke.is_revoked(&identity)) {
        return Err(Refusal {
            reason: Reason::Revoked,
            provider: Some(identity.provider),
        });
    }
    Ok(identity)
}

#[cfg(test)]
mod tests;
