//! A provider as requests see it: settings compiled, keys loaded.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderName;
use jsonwebtoken::Algorithm;

use super::Revocation;
use crate::config::{ClaimPath, ProviderSettings};
use crate::keys::KeySet;

/// Holds one token issuer, ready to check its tokens.
#[derive(Debug)]
pub struct Provider {
    /// The provider's name, for logs and metric labels.
    pub name: Arc<str>,
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// Accepted audiences; the token must name one.
    pub audiences: Vec<String>,
    /// The claim that names the audience.
    pub audience_claim: ClaimPath,
    /// The algorithm allowlist.
    pub algorithms: Vec<Algorithm>,
    /// Secrets and public keys.
    pub keys: KeySet,
    /// Allowed clock skew, in seconds.
    pub leeway: f64,
    /// Where the roles are read from, in order.
    pub roles_claim: Vec<ClaimPath>,
    /// The header that carries the merged roles, if any.
    pub roles_header: Option<HeaderName>,
    /// Whether `sub` must be present.
    pub require_sub: bool,
    /// Identity headers and the claims they carry.
    pub claim_to_headers: Vec<(HeaderName, ClaimPath)>,
    /// The longest identity header value forwarded.
    pub max_header_bytes: usize,
    /// Tokens refused although they verify.
    pub revoke: Revocation,
}

impl Provider {
    /// Compiles a provider from its settings and loaded keys.
    pub fn new(settings: &ProviderSettings, keys: KeySet, max_header_bytes: usize) -> Self {
        Provider {
            name: settings.name.clone(),
            issuer: settings.issuer.clone(),
            audiences: settings.audiences.clone(),
            audience_claim: settings.audience_claim.clone(),
            algorithms: settings.algorithms.clone(),
            keys,
            leeway: settings.leeway.as_secs_f64(),
            roles_claim: settings.roles_claim.clone(),
            roles_header: settings.roles_header.clone(),
            require_sub: settings.require_sub,
            claim_to_headers: settings.claim_to_headers.clone(),
            max_header_bytes,
            revoke: Revocation::default(),
        }
    }

    /// Sets which of the provider's tokens are revoked.
    pub fn with_revocation(mut self, revoke: Revocation) -> Self {
        self.revoke = revoke;
        self
    }

    /// Says whether the allowlist holds `alg`.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

/// Holds every provider, found by issuer.
#[derive(Debug, Default)]
pub struct Providers {
    list: Vec<Provider>,
    by_issuer: HashMap<String, usize>,
}

impl Providers {
    /// Indexes providers by issuer; issuers are unique, as config checks.
    pub fn new(list: Vec<Provider>) -> Self {
        let by_issuer = list
            .iter()
            .enumerate()
            .map(|(at, provider)| (provider.issuer.clone(), at))
            .collect();
        Providers { list, by_issuer }
    }

    /// Finds the provider for an `iss` value, with its index.
    pub fn by_issuer(&self, issuer: &str) -> Option<(usize, &Provider)> {
        let at = *self.by_issuer.get(issuer)?;
        Some((at, &self.list[at]))
    }

    /// Returns every provider, in config order.
    pub fn list(&self) -> &[Provider] {
        &self.list
    }
}
