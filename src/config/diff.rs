//! Comparing the running settings with newly loaded ones: what a reload
//! changes, and what only a restart can change.
//!
//! A reload publishes a new snapshot, but the listeners, the drain deadline
//! they were started with, the cache and the log lines' `service` field
//! are built once at start. Their settings are put back to the running
//! values before the new snapshot is built, so the snapshot always tells
//! the truth about what is in force.

use std::fmt::Debug;

use super::{ListenerLimits, Located, ProviderSettings, Settings};

/// Describes one setting that changed in the file but needs a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartOnly {
    /// The dotted key, such as `listen.address`.
    pub key: &'static str,
    /// The value in force, which stays.
    pub running: String,
    /// The value the file now holds.
    pub wanted: String,
}

/// Puts the running value back into `new` for every setting that cannot
/// change while serving, and returns those that differed.
pub fn keep_restart_only(running: &Settings, new: &mut Settings) -> Vec<RestartOnly> {
    let mut kept = Vec::new();
    keep(&mut kept, "service", &running.service, &mut new.service);
    keep(
        &mut kept,
        "listen.address",
        &running.listen.address,
        &mut new.listen.address,
    );
    keep(
        &mut kept,
        "listen.drain_timeout",
        &running.listen.drain_timeout,
        &mut new.listen.drain_timeout,
    );
    keep_tls_switch(&mut kept, running, new);
    keep(&mut kept, "admin.address", &running.admin, &mut new.admin);
    keep(
        &mut kept,
        "cache.capacity",
        &running.cache.capacity,
        &mut new.cache.capacity,
    );
    keep(
        &mut kept,
        "cache.max_bytes",
        &running.cache.max_bytes,
        &mut new.cache.max_bytes,
    );
    keep_listener_limits(
        &mut kept,
        &running.limits.listener,
        &mut new.limits.listener,
    );
    kept
}

/// Keeps the `[limits]` keys that hyper's connection builder takes at start.
fn keep_listener_limits(
    kept: &mut Vec<RestartOnly>,
    running: &ListenerLimits,
    new: &mut ListenerLimits,
) {
    let (r, n) = (running, new);
    keep(
        kept,
        "limits.max_header_bytes",
        &r.max_header_bytes,
        &mut n.max_header_bytes,
    );
    keep(
        kept,
        "limits.max_headers",
        &r.max_headers,
        &mut n.max_headers,
    );
    keep(
        kept,
        "limits.header_read_timeout",
        &r.header_read_timeout,
        &mut n.header_read_timeout,
    );
    keep(
        kept,
        "limits.idle_timeout",
        &r.idle_timeout,
        &mut n.idle_timeout,
    );
    keep(
        kept,
        "limits.max_connections",
        &r.max_connections,
        &mut n.max_connections,
    );
    keep(
        kept,
        "limits.h2_max_concurrent_streams",
        &r.h2_max_concurrent_streams,
        &mut n.h2_max_concurrent_streams,
    );
    keep(
        kept,
        "limits.h2_max_header_list_bytes",
        &r.h2_max_header_list_bytes,
        &mut n.h2_max_header_list_bytes,
    );
    keep(
        kept,
        "limits.h2_max_pending_accept_reset_streams",
        &r.h2_max_pending_accept_reset_streams,
        &mut n.h2_max_pending_accept_reset_streams,
    );
    keep(
        kept,
        "limits.h2_max_local_error_reset_streams",
        &r.h2_max_local_error_reset_streams,
        &mut n.h2_max_local_error_reset_streams,
    );
}

/// Records `key` and restores `running` into `new` when they differ.
fn keep<T: Clone + Debug + PartialEq>(
    kept: &mut Vec<RestartOnly>,
    key: &'static str,
    running: &T,
    new: &mut T,
) {
    if running == new {
        return;
    }
    kept.push(RestartOnly {
        key,
        running: format!("{running:?}"),
        wanted: format!("{new:?}"),
    });
    *new = running.clone();
}

/// Keeps the listener plain or TLS as it started. A reload may change the
/// certificate files, but not turn TLS on or off: every client would have
/// to change with it, and a config that lost its `[listen.tls]` table by
/// mistake must not quietly open the port to plaintext.
fn keep_tls_switch(kept: &mut Vec<RestartOnly>, running: &Settings, new: &mut Settings) {
    let describe = |on: bool| if on { "tls" } else { "plain" }.to_owned();
    let (was, wants) = (running.listen.tls.is_some(), new.listen.tls.is_some());
    if was == wants {
        return;
    }
    kept.push(RestartOnly {
        key: "listen.tls",
        running: describe(was),
        wanted: describe(wants),
    });
    new.listen.tls = running.listen.tls.clone();
}

/// Lists the keys whose values differ, coarsely: a whole section, or one
/// field of a provider (`providers.accounts.revoke`).
///
/// Values are compared through their `Debug` text, which every settings
/// type has and which never holds a secret (only where secrets live). This
/// runs once per reload, off the request path, so the cost is of no
/// account.
pub fn changed_keys(old: &Settings, new: &Settings) -> Vec<String> {
    let mut changed = Vec::new();
    let sections: [(&str, String, String); 7] = [
        ("listen.tls", debug(&old.listen.tls), debug(&new.listen.tls)),
        ("upstream", debug(&old.upstream), debug(&new.upstream)),
        (
            "account_store",
            debug(&old.account_store),
            debug(&new.account_store),
        ),
        ("rules", debug(&old.rules), debug(&new.rules)),
        ("limits", debug(&old.limits), debug(&new.limits)),
        ("log", debug(&old.log), debug(&new.log)),
        ("mode", debug(&old.mode), debug(&new.mode)),
    ];
    for (key, before, after) in sections {
        if before != after {
            changed.push(key.to_owned());
        }
    }
    changed.extend(changed_providers(&old.providers, &new.providers));
    changed
}

/// Lists providers added or removed, and the fields of those kept that
/// differ.
fn changed_providers(old: &[ProviderSettings], new: &[ProviderSettings]) -> Vec<String> {
    let mut changed = Vec::new();
    for provider in new {
        let Some(before) = old.iter().find(|p| p.name == provider.name) else {
            changed.push(format!("providers.{} (added)", provider.name));
            continue;
        };
        for field in provider_fields(before, provider) {
            changed.push(format!("providers.{}.{field}", provider.name));
        }
    }
    for provider in old {
        if !new.iter().any(|p| p.name == provider.name) {
            changed.push(format!("providers.{} (removed)", provider.name));
        }
    }
    changed
}

/// Names the fields of one provider that differ.
fn provider_fields(old: &ProviderSettings, new: &ProviderSettings) -> Vec<&'static str> {
    let fields: [(&str, String, String); 14] = [
        ("issuer", debug(&old.issuer), debug(&new.issuer)),
        ("audiences", debug(&old.audiences), debug(&new.audiences)),
        (
            "audience_claim",
            debug(&old.audience_claim),
            debug(&new.audience_claim),
        ),
        ("algorithms", debug(&old.algorithms), debug(&new.algorithms)),
        ("secret", located(&old.secret), located(&new.secret)),
        (
            "jwks_file",
            located(&old.jwks_file),
            located(&new.jwks_file),
        ),
        (
            "keys_format",
            debug(&old.keys_format),
            debug(&new.keys_format),
        ),
        ("jwks_uri", remote(old), remote(new)),
        ("leeway", debug(&old.leeway), debug(&new.leeway)),
        (
            "roles_claim",
            debug(&old.roles_claim),
            debug(&new.roles_claim),
        ),
        (
            "roles_header",
            debug(&old.roles_header),
            debug(&new.roles_header),
        ),
        (
            "require_sub",
            debug(&old.require_sub),
            debug(&new.require_sub),
        ),
        (
            "claim_to_headers",
            debug(&old.claim_to_headers),
            debug(&new.claim_to_headers),
        ),
        ("revoke", debug(&old.revoke), debug(&new.revoke)),
    ];
    fields
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .map(|(field, _, _)| field)
        .collect()
}

/// Compares what a located value says, not where it was written: moving a
/// line is not a change.
fn located<T: Debug>(value: &Option<Located<T>>) -> String {
    debug(&value.as_ref().map(|located| &located.value))
}

/// Renders a provider's `jwks_uri` settings without their line numbers.
fn remote(provider: &ProviderSettings) -> String {
    let Some(remote) = &provider.remote_jwks else {
        return String::new();
    };
    let ca_file = remote.ca_file.as_ref().map(|file| &file.value);
    format!(
        "{:?} {:?} {:?} {:?} {:?} {ca_file:?}",
        remote.uri.value,
        remote.refresh_interval,
        remote.min_refetch_interval,
        remote.max_stale,
        remote.fetch_timeout
    )
}

fn debug<T: Debug>(value: &T) -> String {
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_str;

    const BASE: &str = r#"
service = "api"
[listen]
address = "127.0.0.1:8080"
drain_timeout = "20s"
[upstream]
url = "http://127.0.0.1:8000"
[[providers]]
name = "accounts"
issuer = "https://accounts.test"
audiences = ["api"]
algorithms = ["HS256"]
secret_env = "K"
[cache]
capacity = 10
"#;

    fn load(text: &str) -> Settings {
        from_str(text, "test.toml").expect("a valid config")
    }

    #[test]
    fn restart_only_settings_keep_their_running_values() {
        let running = load(BASE);
        let text = BASE
            .replace("127.0.0.1:8080", "127.0.0.1:8081")
            .replace("\"20s\"", "\"5s\"")
            .replace("capacity = 10", "capacity = 20")
            .replace("\"api\"\n[listen]", "\"api2\"\n[listen]");
        let mut new = load(&text);

        let kept = keep_restart_only(&running, &mut new);
        let keys: Vec<&str> = kept.iter().map(|k| k.key).collect();
        assert_eq!(
            keys,
            [
                "service",
                "listen.address",
                "listen.drain_timeout",
                "cache.capacity"
            ]
        );
        assert_eq!(new.listen.address, running.listen.address);
        assert_eq!(new.listen.drain_timeout, running.listen.drain_timeout);
        assert_eq!(new.cache.capacity, 10);
        assert_eq!(&*new.service, "api");
        assert_eq!(kept[3].wanted, "20");
    }

    #[test]
    fn listener_limits_need_a_restart_and_the_others_apply_at_once() {
        let limits = "[limits]\nmax_connections = 5\nidle_timeout = \"5s\"\nmax_body_bytes = 10\n";
        let running = load(BASE);
        let mut new = load(&format!("{BASE}{limits}"));

        let kept = keep_restart_only(&running, &mut new);
        let keys: Vec<&str> = kept.iter().map(|k| k.key).collect();
        assert_eq!(keys, ["limits.idle_timeout", "limits.max_connections"]);
        assert_eq!(new.limits.listener, running.limits.listener);
        assert_eq!(new.limits.max_body_bytes, 10);
        assert_eq!(changed_keys(&running, &new), ["limits"]);
    }

    #[test]
    fn tls_on_the_listener_is_not_switched_by_a_reload() {
        let tls = "[listen.tls]\ncert_file = \"a.pem\"\nkey_file = \"a.key\"\n[upstream]";
        let running = load(BASE);
        let mut new = load(&BASE.replace("[upstream]", tls));
        let kept = keep_restart_only(&running, &mut new);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (kept[0].key, kept[0].running.as_str()),
            ("listen.tls", "plain")
        );
        assert!(new.listen.tls.is_none());

        let running = load(&BASE.replace("[upstream]", tls));
        let mut new = load(&BASE.replace("[upstream]", &tls.replace("a.pem", "b.pem")));
        assert!(keep_restart_only(&running, &mut new).is_empty());
        assert_eq!(changed_keys(&running, &new), ["listen.tls"]);
    }

    #[test]
    fn live_settings_are_listed_as_changed_and_left_alone() {
        let running = load(BASE);
        // A top-level key must come before the first table.
        let rotated = BASE.replace("secret_env = \"K\"", "secret_env = [\"K\", \"OLD\"]");
        let mut new = load(&format!("mode = \"report_only\"\n{rotated}"));

        assert!(keep_restart_only(&running, &mut new).is_empty());
        assert_eq!(
            changed_keys(&running, &new),
            ["mode", "providers.accounts.secret"]
        );
        assert!(changed_keys(&running, &load(BASE)).is_empty());
    }
}
