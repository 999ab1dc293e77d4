//! The remote sources of all providers, by name, and how a reload keeps
//! the ones whose settings did not change.

use std::collections::HashMap;
use std::sync::Arc;

use super::RemoteJwks;
use crate::config::ProviderSettings;
use crate::keys::KeyError;
use crate::telemetry::Metrics;

/// Holds the remote source of every provider that has a `jwks_uri`, by
/// provider name.
#[derive(Clone, Default)]
pub struct RemoteSet {
    sources: HashMap<Arc<str>, Arc<RemoteJwks>>,
}

impl RemoteSet {
    /// Builds the set `providers` call for, keeping each source of this set
    /// whose provider's `jwks_uri` settings are unchanged.
    pub fn rebuild(
        &self,
        providers: &[ProviderSettings],
        metrics: &Metrics,
    ) -> Result<RemoteSet, KeyError> {
        let mut sources = HashMap::new();
        for provider in providers {
            let Some(settings) = &provider.remote_jwks else {
                continue;
            };
            let kept = self.sources.get(&provider.name);
            let source = match kept {
                Some(kept) if kept.is_same_source(settings) => Arc::clone(kept),
                _ => {
                    let metrics = metrics.jwks(&provider.name);
                    let name = Arc::clone(&provider.name);
                    let fresh = RemoteJwks::try_new(name, settings, metrics)?;
                    if let Some(older) = kept.filter(|older| older.is_same_url(settings)) {
                        fresh.inherit(older);
                    }
                    Arc::new(fresh)
                }
            };
            sources.insert(Arc::clone(&provider.name), source);
        }
        Ok(RemoteSet { sources })
    }

    /// Returns the source of a provider, if it has one.
    pub fn get(&self, provider: &str) -> Option<&Arc<RemoteJwks>> {
        self.sources.get(provider)
    }

    /// Returns every source.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RemoteJwks>> {
        self.sources.values()
    }

    /// Says whether this set holds this very source.
    pub fn holds(&self, source: &Arc<RemoteJwks>) -> bool {
        self.sources.values().any(|held| Arc::ptr_eq(held, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers(refresh: &str) -> Vec<ProviderSettings> {
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:8000\"\n\
             [[providers]]\nname = \"a\"\nissuer = \"i\"\naudiences = [\"x\"]\n\
             algorithms = [\"ES256\"]\njwks_uri = \"http://127.0.0.1:9/jwks\"\n\
             jwks_refresh_interval = \"{refresh}\"\n\
             [[providers]]\nname = \"b\"\nissuer = \"j\"\naudiences = [\"x\"]\n\
             algorithms = [\"HS256\"]\nsecret_env = \"K\"\n"
        );
        crate::config::from_str(&text, "test.toml")
            .expect("valid config")
            .providers
    }

    #[test]
    fn a_rebuild_keeps_unchanged_sources_and_replaces_changed_ones() {
        let metrics = Metrics::new();
        let first = RemoteSet::default()
            .rebuild(&providers("1m"), &metrics)
            .expect("sources");
        assert!(first.get("a").is_some());
        assert!(first.get("b").is_none(), "b has no jwks_uri");

        let same = first.rebuild(&providers("1m"), &metrics).expect("sources");
        let kept = same.get("a").expect("a");
        assert!(first.holds(kept));

        let changed = first.rebuild(&providers("2m"), &metrics).expect("sources");
        let replaced = changed.get("a").expect("a");
        assert!(!first.holds(replaced));
    }

    #[test]
    fn a_source_holds_no_keys_before_its_first_fetch() {
        let metrics = Metrics::new();
        let set = RemoteSet::default()
            .rebuild(&providers("1m"), &metrics)
            .expect("sources");
        assert!(set.get("a").expect("a").keys().is_none());
    }
}
