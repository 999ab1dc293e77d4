//! Keys from a provider's `jwks_uri`: fetched at start, refreshed in the
//! background, and fetched again when a token names a key id not held.
//!
//! How the parts fit:
//!
//! - A [`RemoteJwks`] is the source behind one provider's URL. It keeps the
//!   last good key set with its ETag, decides when to fetch next
//!   (`schedule`) and leaves the HTTP to `fetch`.
//! - Sources are long-lived. A [`RemoteSet`] maps provider names to them
//!   and is owned by `State`, not by a snapshot, so a config reload that
//!   leaves a provider's `jwks_uri` settings alone keeps its keys, ETag and
//!   schedule instead of fetching again.
//! - A source never reaches into the request path. When the keys it would
//!   hand out change (a new document, or the last good one growing older
//!   than `max_stale`), it calls the change hook `State` installed, and
//!   `State` publishes a new snapshot with one `ArcSwap` store. The new
//!   generation voids cached tokens, so each is verified again under the
//!   new keys.
//! - A fetch on demand (a token with an unknown `kid`) is shared by every
//!   concurrent miss and rate-limited by `min_refetch_interval`, so a flood
//!   of made-up key ids costs the issuer at most one fetch per interval.
//! - When fetches fail, the last good key set keeps serving until it is
//!   `max_stale` old (stale-if-error); then the provider has no keys from
//!   this source, and its tokens get 503 until a fetch succeeds again.

mod fetch;
mod schedule;
mod set;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use http::{HeaderValue, Uri};
use tokio::sync::watch;
use tokio::time::Instant;

pub use self::fetch::{ErrorChain, FetchError};
use self::fetch::{Fetched, Fetcher};
pub use self::set::RemoteSet;
use super::{KeyError, KeySet};
use crate::config::RemoteJwksSettings;
use crate::telemetry::metrics::JwksMetrics;

/// Called when the keys a source hands out have changed.
pub type ChangeHook = Box<dyn Fn() + Send + Sync>;

/// Holds one provider's remote key set and keeps it fresh.
pub struct RemoteJwks {
    provider: Arc<str>,
    settings: RemoteJwksSettings,
    /// The URL without its query, for logs: a query may carry a tenant id
    /// or an API key.
    url: String,
    fetcher: Fetcher,
    metrics: JwksMetrics,
    created: Instant,
    held: Mutex<Held>,
    /// Serialises fetches, so an older answer never overwrites a newer one.
    fetching: tokio::sync::Mutex<()>,
    demand: Mutex<Demand>,
    /// Counts finished fetches on demand; waiters watch it.
    demand_done: watch::Sender<u64>,
    on_change: OnceLock<ChangeHook>,
    retired: watch::Sender<bool>,
}

/// What the last fetches left behind.
#[derive(Default)]
struct Held {
    /// The last good key set, kept past `max_stale` so that a 304 can
    /// bring it back.
    keys: Option<Arc<KeySet>>,
    /// The document it came from, to tell a changed key set from the same
    /// one served again (which must not void the token cache).
    body: Bytes,
    etag: Option<HeaderValue>,
    /// When a fetch last succeeded (200 or 304).
    fetched_at: Option<Instant>,
    /// When the background refresh fetches next; `None` before any fetch.
    next_due: Option<Instant>,
    /// Failures in a row, for the backoff.
    failures: u32,
    /// The key set last reported through the change hook.
    announced: Option<Arc<KeySet>>,
}

/// The state of fetches on demand.
#[derive(Default)]
struct Demand {
    in_flight: bool,
    last_started: Option<Instant>,
}

// --- RemoteJwks: building and reading ---------------------------------------

impl RemoteJwks {
    /// Builds a source that holds no keys yet; nothing is fetched until
    /// [`RemoteJwks::refresh`], [`RemoteJwks::refetch`] or
    /// [`RemoteJwks::run`].
    pub fn try_new(
        provider: Arc<str>,
        settings: &RemoteJwksSettings,
        metrics: JwksMetrics,
    ) -> Result<Self, KeyError> {
        let uri = &settings.uri.value;
        let url = url_for_logs(uri);
        if uri.scheme_str() == Some("http") && !is_loopback(uri) {
            tracing::warn!(
                provider = %provider,
                jwks.url = %url,
                "jwks_uri is plain http: its keys can be replaced in transit"
            );
        }
        Ok(RemoteJwks {
            fetcher: Fetcher::try_new(settings)?,
            provider,
            settings: settings.clone(),
            url,
            metrics,
            created: Instant::now(),
            held: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
            demand: Mutex::default(),
            demand_done: watch::Sender::new(0),
            on_change: OnceLock::new(),
            retired: watch::Sender::new(false),
        })
    }

    /// Returns the name of the provider this source serves.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Returns the key set to verify with: the last good one, unless it is
    /// older than `max_stale` or none was ever fetched.
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.held().fresh_keys(&self.settings, Instant::now())
    }

    /// Says whether `settings` describe this very source, so a reload may
    /// keep it. Where in the file they were written does not matter.
    pub fn is_same_source(&self, settings: &RemoteJwksSettings) -> bool {
        let ours = &self.settings;
        ours.uri.value == settings.uri.value
            && ours.refresh_interval == settings.refresh_interval
            && ours.min_refetch_interval == settings.min_refetch_interval
            && ours.max_stale == settings.max_stale
            && ours.fetch_timeout == settings.fetch_timeout
            && ours.ca_file.as_ref().map(|file| &file.value)
                == settings.ca_file.as_ref().map(|file| &file.value)
    }

    /// Installs the hook called when the keys handed out change; only the
    /// first call has an effect.
    pub fn set_on_change(&self, hook: ChangeHook) {
        let _ = self.on_change.set(hook);
    }

    /// Sets the key age gauge: seconds since the last successful fetch, or
    /// since the source was created when none has succeeded yet.
    pub fn record_age(&self) {
        let since = self.held().fetched_at.unwrap_or(self.created);
        self.metrics.key_age.set(since.elapsed().as_secs_f64());
    }

    /// Stops the background refresh of a source that is no longer used.
    pub fn retire(&self) {
        self.retired.send_replace(true);
    }

    /// Says whether the last fetch failed and its retry is not due yet.
    fn is_backing_off(&self) -> bool {
        let held = self.held();
        held.failures > 0 && held.next_due.is_some_and(|due| Instant::now() < due)
    }

    /// Says whether `settings` fetch from the same URL as this source, so
    /// what it fetched still describes the issuer's keys.
    pub fn is_same_url(&self, settings: &RemoteJwksSettings) -> bool {
        self.settings.uri.value == settings.uri.value
    }

    /// Takes over what `older` fetched from the same URL: the last good key
    /// set, its document, ETag and age.
    ///
    /// Without this, a reload that only retunes a source (a new refresh
    /// interval, say) would start it empty, and the provider's tokens would
    /// get 503 until the first fetch; if the issuer were down just then,
    /// good keys would be thrown away for nothing. The new source's own
    /// schedule and limits apply from here on.
    pub fn inherit(&self, older: &RemoteJwks) {
        let mut held = self.held();
        let old = older.held();
        held.keys = old.keys.clone();
        held.body = old.body.clone();
        held.etag = old.etag.clone();
        held.fetched_at = old.fetched_at;
        held.announced = old.announced.clone();
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn demand(&self) -> MutexGuard<'_, Demand> {
        self.demand.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Held {
    fn fresh_keys(&self, settings: &RemoteJwksSettings, now: Instant) -> Option<Arc<KeySet>> {
        let fetched_at = self.fetched_at?;
        if now.saturating_duration_since(fetched_at) >= settings.max_stale {
            return None;
        }
        self.keys.clone()
    }
}

// --- RemoteJwks: fetching -----------------------------------------------------

impl RemoteJwks {
    /// Fetches now and waits for the outcome; used at start, before the
    /// sidecar reports ready.
    pub async fn refresh(&self) {
        self.fetch_once().await;
    }

    /// Fetches again because a token named a key id that is not held, and
    /// waits (at most one fetch timeout) for the outcome.
    ///
    /// Every concurrent caller shares one fetch, and a new one starts only
    /// when `min_refetch_interval` has passed since the last one started;
    /// otherwise this returns at once. The fetch runs in its own task, so
    /// a caller that gives up (its client went away) does not cancel it
    /// for the others.
    pub async fn refetch(self: &Arc<Self>) {
        let mut done = self.demand_done.subscribe();
        let start = {
            let mut demand = self.demand();
            let limit = self.settings.min_refetch_interval;
            if demand.in_flight {
                false
            } else if demand.last_started.is_some_and(|at| at.elapsed() < limit) {
                tracing::debug!(provider = %self.provider, "jwks refetch skipped: rate limited");
                return;
            } else if self.is_backing_off() {
                // The issuer is failing: the background retry already
                // spaces fetches out, and made-up key ids must not undo it.
                tracing::debug!(provider = %self.provider, "jwks refetch skipped: backing off");
                return;
            } else {
                demand.in_flight = true;
                demand.last_started = Some(Instant::now());
                true
            }
        };

        if start {
            tracing::debug!(provider = %self.provider, jwks.url = %self.url, "jwks refetch");
            let source = Arc::clone(self);
            tokio::spawn(async move {
                source.fetch_once().await;
                source.demand().in_flight = false;
                source
                    .demand_done
                    .send_modify(|count| *count = count.wrapping_add(1));
            });
        }

        let _ = tokio::time::timeout(self.settings.fetch_timeout, done.changed()).await;
    }

    /// Refreshes in the background until shutdown or retirement: at the
    /// scheduled time, and also when the last good keys reach `max_stale`,
    /// so that the snapshot stops using them on time.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut retired = self.retired.subscribe();
        loop {
            let wake = self.next_wake();
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = retired.wait_for(|gone| *gone) => break,
            }
            self.announce();
            if !self.is_due() {
                continue;
            }
            tokio::select! {
                () = self.fetch_once() => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = retired.wait_for(|gone| *gone) => break,
            }
        }
    }

    /// Returns when the background task must wake: the next fetch, or the
    /// moment the keys held grow too old, whichever comes first.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let held = self.held();
        let due = held.next_due.unwrap_or(now);
        let expiry = held
            .fetched_at
            .map(|at| at + self.settings.max_stale)
            .filter(|at| *at > now);
        expiry.map_or(due, |expiry| expiry.min(due))
    }

    fn is_due(&self) -> bool {
        self.held().next_due.is_none_or(|due| due <= Instant::now())
    }

    /// Fetches once and records the outcome; then reports any change.
    async fn fetch_once(&self) {
        let serial = self.fetching.lock().await;
        let etag = {
            let held = self.held();
            held.keys.as_ref().and(held.etag.clone())
        };
        match self.fetcher.fetch(etag.as_ref()).await {
            Ok(fetched) => self.store(fetched),
            Err(error) => self.fail(&error),
        }
        drop(serial);

        self.announce();
        self.record_age();
    }

    /// Records a successful fetch and schedules the next one.
    fn store(&self, fetched: Fetched) {
        let now = Instant::now();
        let mut held = self.held();
        let max_age = match fetched {
            Fetched::NotModified { max_age } => {
                self.metrics.not_modified.increment(1);
                max_age
            }
            Fetched::Keys {
                body,
                parsed,
                etag,
                max_age,
            } => {
                self.metrics.fetched.increment(1);
                if held.keys.is_none() || held.body != body {
                    for why in &parsed.skipped {
                        tracing::warn!(
                            provider = %self.provider,
                            reason = %why,
                            "jwks key skipped"
                        );
                    }
                    if held.keys.is_some() {
                        tracing::info!(
                            provider = %self.provider,
                            jwks.url = %self.url,
                            keys = parsed.keys.len(),
                            "jwks keys updated"
                        );
                    }
                    held.keys = Some(Arc::new(KeySet::new(Vec::new(), parsed.keys)));
                    held.body = body;
                }
                held.etag = etag;
                max_age
            }
        };
        held.fetched_at = Some(now);
        held.failures = 0;
        let delay = schedule::after_success(&self.settings, max_age, schedule::draw());
        held.next_due = Some(now + delay);
    }

    /// Records a failed fetch, schedules a retry and warns: the provider
    /// is degraded, serving stale keys or none.
    fn fail(&self, error: &FetchError) {
        self.metrics.failed.increment(1);
        let now = Instant::now();
        let (failures, stale_keys) = {
            let mut held = self.held();
            held.failures = held.failures.saturating_add(1);
            let delay = schedule::after_failure(&self.settings, held.failures, schedule::draw());
            held.next_due = Some(now + delay);
            let stale = held.fresh_keys(&self.settings, now).is_some();
            (held.failures, stale)
        };
        tracing::warn!(
            provider = %self.provider,
            jwks.url = %self.url,
            error = %ErrorChain(error),
            failures,
            stale_keys,
            "jwks fetch failed"
        );
    }

    /// Calls the change hook when the keys handed out are not those last
    /// reported: new keys, keys gone stale, or keys usable again.
    fn announce(&self) {
        let (before, now) = {
            let mut held = self.held();
            let current = held.fresh_keys(&self.settings, Instant::now());
            if is_same(&held.announced, &current) {
                return;
            }
            let before = std::mem::replace(&mut held.announced, current.clone());
            (before, current)
        };

        match (&before, &now) {
            (Some(_), None) => tracing::error!(
                provider = %self.provider,
                jwks.url = %self.url,
                max_stale = ?self.settings.max_stale,
                "jwks keys expired: no successful fetch within max_stale"
            ),
            (None, Some(keys)) => tracing::info!(
                provider = %self.provider,
                jwks.url = %self.url,
                keys = keys.public_keys().len(),
                "jwks keys in use"
            ),
            _ => {}
        }
        if let Some(hook) = self.on_change.get() {
            hook();
        }
    }
}

fn is_same(a: &Option<Arc<KeySet>>, b: &Option<Arc<KeySet>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Writes a URL without its query.
fn url_for_logs(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map_or("", |authority| authority.as_str());
    format!("{scheme}://{authority}{}", uri.path())
}

/// Says whether the URL names this machine, where plain http is fine.
fn is_loopback(uri: &Uri) -> bool {
    let host = uri.host().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_logged_without_their_query() {
        let uri = Uri::from_static("https://login.test:8443/tenant/keys?appid=secret");
        assert_eq!(url_for_logs(&uri), "https://login.test:8443/tenant/keys");
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for (url, loopback) in [
            ("http://127.0.0.1:9000/jwks", true),
            ("http://[::1]:9000/jwks", true),
            ("http://LocalHost/jwks", true),
            ("http://10.0.0.1/jwks", false),
            ("http://issuer.test/jwks", false),
        ] {
            let uri: Uri = url.parse().expect("url");
            assert_eq!(is_loopback(&uri), loopback, "{url}");
        }
    }
}
