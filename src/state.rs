//! The snapshot every request reads, and the one place that publishes it.
//!
//! A [`Snapshot`] is settings, compiled rules, loaded keys and TLS
//! settings, immutable once built. [`State`] holds the current one in an
//! `ArcSwap`: a request loads it once and keeps that `Arc` to the end, so a
//! reload that lands mid-request never changes the rules under it. Building
//! (parsing, reading key and certificate files) happens entirely before the
//! swap, off the request path. Connections read it too: each accept and
//! each new connection to a service takes the TLS settings in force.
//!
//! Remote key sets (`jwks_uri`) are fetched by sources the state owns, so
//! they outlive snapshots; when one changes, [`State`] publishes the
//! current snapshot again with the new keys (see `state/remote.rs`).

mod remote;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use metrics::Counter;

use crate::auth::rules::RuleSet;
use crate::auth::{Provider, Providers, Reason, Revocation, TokenCache};
use crate::config::Settings;
use crate::env::Env;
use crate::keys::remote::RemoteSet;
use crate::keys::{self, KeyError, KeySet};
use crate::proxy::Outcome;
use crate::proxy::headers::IdentityHeaderNames;
use crate::proxy::respond::TokenAnswers;
use crate::telemetry::Metrics;
use crate::tls::TlsMaterial;

/// Holds everything a request needs, fixed for the request's lifetime.
pub struct Snapshot {
    /// Distinguishes this snapshot from every other; cached tokens made
    /// under another generation are ignored.
    pub generation: u64,
    /// The settings it was built from.
    pub settings: Settings,
    /// Providers with their keys.
    pub providers: Providers,
    /// Compiled path rules.
    pub rules: RuleSet,
    /// Every identity header name any provider may set.
    pub identity_names: IdentityHeaderNames,
    /// The answers to refused tokens, built once.
    pub token_answers: TokenAnswers,
    /// The listener's and the forwarding client's TLS settings, read from
    /// the files the settings name.
    pub tls: TlsMaterial,
    /// Request counters: one row per rule (plus a last row, rule `none`, for
    /// requests refused before a rule was picked), one column per
    /// [`Outcome`].
    pub rule_counters: Vec<Vec<Counter>>,
    /// Verdict counters: one row per provider (plus a last row for tokens
    /// refused before a provider was known), one column per [`Reason`] and a
    /// final one for `ok`.
    pub verdict_counters: Vec<Vec<Counter>>,
    /// Each provider's keys from its secret and `jwks_file`, kept so that
    /// new remote keys can be published without reading those again.
    local_keys: Vec<KeySet>,
    /// Each provider's revocation, as read from its settings and denylist,
    /// kept for the same reason.
    revocations: Vec<Revocation>,
    /// Whether some provider's `jwks_uri` has no usable key set.
    lacks_remote_keys: bool,
}

impl Snapshot {
    /// Builds a snapshot: reads the TLS certificates and keys, loads every
    /// provider's keys and denylist, adds the keys its remote source holds
    /// now, and registers the metric handles the request path will use.
    pub fn build(
        settings: Settings,
        generation: u64,
        env: &Env,
        metrics: &Metrics,
        remotes: &RemoteSet,
    ) -> Result<Self, KeyError> {
        let tls = TlsMaterial::try_from_settings(&settings)?;
        let mut local_keys = Vec::with_capacity(settings.providers.len());
        let mut revocations = Vec::with_capacity(settings.providers.len());
        for provider in &settings.providers {
            let (keys, skipped) = keys::load(provider, env)?;
            for why in skipped {
                tracing::warn!(provider = %provider.name, reason = %why, "jwks key skipped");
            }
            local_keys.push(keys);
            revocations.push(Revocation::try_from_settings(&provider.revoke)?);
        }
        let local = (local_keys, revocations);
        Ok(Self::assemble(
            settings, generation, local, tls, remotes, metrics,
        ))
    }

    /// Builds a snapshot like this one, with the keys the remote sources
    /// hold now: what publishing a fetched key set takes. Nothing is read
    /// from disk or the environment.
    pub fn rekeyed(&self, generation: u64, remotes: &RemoteSet, metrics: &Metrics) -> Self {
        let settings = self.settings.clone();
        let local = (self.local_keys.clone(), self.revocations.clone());
        let tls = self.tls.clone();
        Self::assemble(settings, generation, local, tls, remotes, metrics)
    }

    /// Puts a snapshot together from loaded keys: pure but for registering
    /// metric handles, which is idempotent.
    fn assemble(
        settings: Settings,
        generation: u64,
        (local_keys, revocations): (Vec<KeySet>, Vec<Revocation>),
        tls: TlsMaterial,
        remotes: &RemoteSet,
        metrics: &Metrics,
    ) -> Self {
        let mut providers = Vec::with_capacity(settings.providers.len());
        let mut lacks_remote_keys = false;
        let locals = local_keys.iter().zip(&revocations);
        for (provider, (local, revoke)) in settings.providers.iter().zip(locals) {
            let keys = match remotes.get(&provider.name) {
                Some(source) => match source.keys() {
                    Some(fetched) => local.merged(&fetched),
                    None => {
                        lacks_remote_keys = true;
                        local.clone()
                    }
                },
                None => local.clone(),
            };
            let count = keys.secret_count() + keys.public_keys().len();
            metrics.provider_keys(&provider.name).set(count as f64);
            let max = settings.limits.max_identity_header_bytes;
            providers.push(Provider::new(provider, keys, max).with_revocation(revoke.clone()));
        }
        let providers = Providers::new(providers);

        let rules = RuleSet::new(&settings.rules, settings.account_store.as_ref());
        let identity_names = IdentityHeaderNames::new(
            settings
                .providers
                .iter()
                .flat_map(|p| p.identity_header_names().cloned()),
        );
        let token_answers = TokenAnswers::new(&settings.service);

        let mut rule_counters: Vec<Vec<Counter>> = rules
            .rules()
            .iter()
            .map(|rule| metrics.rule_outcomes(&rule.name, &Outcome::LABELS))
            .collect();
        rule_counters.push(metrics.rule_outcomes("none", &Outcome::LABELS));
        let verdict_labels = verdict_labels();
        let mut verdict_counters: Vec<Vec<Counter>> = settings
            .providers
            .iter()
            .map(|p| metrics.provider_verdicts(&p.name, &verdict_labels))
            .collect();
        verdict_counters.push(metrics.provider_verdicts("none", &verdict_labels));

        Snapshot {
            generation,
            settings,
            providers,
            rules,
            identity_names,
            token_answers,
            tls,
            rule_counters,
            verdict_counters,
            local_keys,
            revocations,
            lacks_remote_keys,
        }
    }

    /// Says whether every provider holds at least one key, and every
    /// `jwks_uri` a usable key set: until the first fetch succeeds, or once
    /// the last good one is older than `max_stale`, the sidecar is not
    /// ready.
    pub fn is_ready(&self) -> bool {
        !self.lacks_remote_keys && self.providers.list().iter().all(|p| !p.keys.is_empty())
    }

    /// Counts a verdict for a provider (`None`: no provider was picked).
    pub fn count_verdict(&self, provider: Option<usize>, reason: Option<Reason>) {
        let row = provider.unwrap_or(self.verdict_counters.len() - 1);
        let column = reason.map_or(Reason::ALL.len(), Reason::index);
        if let Some(counter) = self.verdict_counters.get(row).and_then(|r| r.get(column)) {
            counter.increment(1);
        }
    }

    /// Counts a request outcome for the rule at `rule` (`None`: refused
    /// before a rule was picked).
    pub fn count_outcome(&self, rule: Option<usize>, outcome: Outcome) {
        let row = rule.unwrap_or(self.rule_counters.len() - 1);
        if let Some(counter) = self
            .rule_counters
            .get(row)
            .and_then(|r| r.get(outcome as usize))
        {
            counter.increment(1);
        }
    }
}

/// Labels for the verdict counters: every reason, then `ok`.
fn verdict_labels() -> Vec<&'static str> {
    Reason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .chain(std::iter::once("ok"))
        .collect()
}

/// Holds the current snapshot and what outlives snapshots.
pub struct State {
    current: ArcSwap<Snapshot>,
    /// Verified tokens; survives reloads, entries are tagged by generation.
    pub cache: TokenCache,
    /// The metric recorder and the handles that do not depend on config.
    pub metrics: Arc<Metrics>,
    generations: AtomicU64,
    /// Remote key sources by provider. They outlive snapshots, so that a
    /// reload that leaves a `jwks_uri` alone does not fetch it again.
    remotes: Mutex<RemoteSet>,
    /// Serialises publishing: a snapshot rekeyed from the current one must
    /// not overwrite a reload that lands at the same moment.
    publishing: Mutex<()>,
    /// The shutdown signal, once background key refresh has started;
    /// sources a reload adds are started with it.
    refreshing: OnceLock<remote::Refresher>,
}

impl State {
    /// Builds the first snapshot from `settings`.
    pub fn try_new(settings: Settings, env: &Env, metrics: Arc<Metrics>) -> Result<Self, KeyError> {
        let cache = TokenCache::new(settings.cache.capacity, settings.cache.max_bytes);
        let remotes = RemoteSet::default().rebuild(&settings.providers, &metrics)?;
        let snapshot = Snapshot::build(settings, 1, env, &metrics, &remotes)?;
        metrics.keyset_generation.set(1.0);
        Ok(State {
            current: ArcSwap::from_pointee(snapshot),
            cache,
            metrics,
            generations: AtomicU64::new(1),
            remotes: Mutex::new(remotes),
            publishing: Mutex::default(),
            refreshing: OnceLock::new(),
        })
    }

    /// Returns the snapshot in force; keep it for the whole request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Builds a snapshot from new settings and publishes it; on error the
    /// snapshot in force stays.
    ///
    /// Remote key sources whose settings are unchanged are kept with their
    /// keys; new ones start empty and publish again once they have fetched.
    pub fn reload(&self, settings: Settings, env: &Env) -> Result<u64, KeyError> {
        let _publishing = self.lock_publishing();
        let before = self.remotes().clone();
        let after = before.rebuild(&settings.providers, &self.metrics)?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot = Snapshot::build(settings, generation, env, &self.metrics, &after)?;
        self.current.store(Arc::new(snapshot));
        self.metrics.keyset_generation.set(generation as f64);
        self.adopt_remotes(&before, after);
        Ok(generation)
    }
}
