//! Keeping remote key sets current: starting the sources, publishing a new
//! snapshot when one changes, and the refetch the proxy asks for on an
//! unknown key id.
//!
//! A source reports a change through a hook that holds only a `Weak` to the
//! state, so the sources (owned by the state) never keep it alive.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError, Weak};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::State;
use crate::keys::remote::{RemoteJwks, RemoteSet};

/// What sources added by a reload need to start like the first ones.
pub(super) struct Refresher {
    shutdown: watch::Receiver<bool>,
    state: Weak<State>,
}

impl Refresher {
    /// Lets `source` publish through the state when its keys change.
    fn install_hook(&self, source: &RemoteJwks) {
        let state = self.state.clone();
        source.set_on_change(Box::new(move || {
            if let Some(state) = state.upgrade() {
                state.republish();
            }
        }));
    }

    /// Runs the background refresh of `source`, in `tasks` when given.
    fn spawn(&self, source: &Arc<RemoteJwks>, tasks: Option<&mut JoinSet<()>>) {
        let run = Arc::clone(source).run(self.shutdown.clone());
        match tasks {
            Some(tasks) => {
                tasks.spawn(run);
            }
            None => {
                tokio::spawn(run);
            }
        }
    }
}

impl State {
    /// Fetches every remote key set once, each bounded by its fetch timeout,
    /// then keeps them fresh in tasks added to `tasks` until `shutdown`.
    ///
    /// Serving may start whatever the first fetches gave: a provider whose
    /// fetch failed has no keys from it, which `/ready` reports, and its
    /// source keeps retrying.
    pub async fn start_key_refresh(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
        tasks: &mut JoinSet<()>,
    ) {
        let refresher = Refresher {
            shutdown,
            state: Arc::downgrade(self),
        };
        let sources: Vec<Arc<RemoteJwks>> = self.remotes().iter().cloned().collect();
        for source in &sources {
            refresher.install_hook(source);
        }

        let mut first = JoinSet::new();
        for source in &sources {
            let source = Arc::clone(source);
            first.spawn(async move { source.refresh().await });
        }
        while first.join_next().await.is_some() {}
        for source in sources.iter().filter(|source| source.keys().is_none()) {
            tracing::error!(
                provider = %source.provider(),
                "no jwks keys at start: this provider's tokens get 503 until a fetch succeeds"
            );
        }

        for source in &sources {
            refresher.spawn(source, Some(&mut *tasks));
        }
        let _ = self.refreshing.set(refresher);
    }

    /// Fetches a provider's remote key set again, shared with concurrent
    /// callers and rate-limited (see [`RemoteJwks::refetch`]); returns at
    /// once when the provider has no remote source. A changed key set has
    /// been published by the time this returns.
    pub async fn refetch_keys(&self, provider: &str) {
        let source = self.remotes().get(provider).cloned();
        if let Some(source) = source {
            source.refetch().await;
        }
    }

    /// Returns how many keys a provider's `jwks_uri` supplies now: `None`
    /// when it has no `jwks_uri`, `Some(0)` when no fetch has succeeded
    /// (or the last good one is older than `max_stale`).
    pub fn remote_key_count(&self, provider: &str) -> Option<usize> {
        let source = self.remotes().get(provider).cloned()?;
        let keys = source.keys();
        Some(keys.map_or(0, |keys| keys.secret_count() + keys.public_keys().len()))
    }

    /// Sets the key age gauge of every remote source; called on each scrape
    /// so the age is current when read.
    pub fn record_key_ages(&self) {
        for source in self.remotes().iter() {
            source.record_age();
        }
    }

    /// Publishes the current snapshot again with the keys the remote
    /// sources hold now; the new generation voids cached tokens.
    fn republish(&self) {
        let _publishing = self.lock_publishing();
        let remotes = self.remotes().clone();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot = self
            .current
            .load()
            .rekeyed(generation, &remotes, &self.metrics);
        self.current.store(Arc::new(snapshot));
        self.metrics.keyset_generation.set(generation as f64);
        tracing::debug!(generation, "snapshot published with new remote keys");
    }

    /// Makes `after` the sources in use: those `before` held and `after`
    /// does not are stopped, new ones are started once refresh runs.
    /// Called with the publishing lock held.
    pub(super) fn adopt_remotes(&self, before: &RemoteSet, after: RemoteSet) {
        for source in before.iter().filter(|source| !after.holds(source)) {
            source.retire();
        }
        let added: Vec<Arc<RemoteJwks>> = after
            .iter()
            .filter(|source| !before.holds(source))
            .cloned()
            .collect();
        *self.remotes() = after;

        let Some(refresher) = self.refreshing.get() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!("new jwks_uri sources not started: no async runtime");
            return;
        }
        for source in &added {
            refresher.install_hook(source);
            refresher.spawn(source, None);
        }
    }

    pub(super) fn remotes(&self) -> MutexGuard<'_, RemoteSet> {
        self.remotes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock_publishing(&self) -> MutexGuard<'_, ()> {
        self.publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
