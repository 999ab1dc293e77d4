//! Checks for the small sections: service, listeners, upstream, account
//! store, cache, limits and log. Their TLS keys are checked in `tls.rs`.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

use toml::Spanned;

use super::tls::{self, ClientTlsKeys};
use super::values::{self, PathKind};
use super::{Document, is_written};
use crate::config::raw::{
    AccountStoreConfig, AdminConfig, CacheConfig, LimitConfig, ListenConfig, LogConfig,
    UpstreamConfig,
};
use crate::config::{
    AccountStoreSettings, CacheSettings, ConfigError, LimitSettings, ListenSettings,
    ListenerLimits, LogSettings, RateSettings, UpstreamSettings,
};
use crate::telemetry::log::{LogError, bare_target, has_no_directive, parse_filter};

/// The longest service name: it appears in every refusal's realm, so keep
/// it short.
const MAX_SERVICE_LEN: usize = 64;

/// Checks the service name.
pub(super) fn service(doc: Document<'_>, value: &Spanned<String>) -> Result<Arc<str>, ConfigError> {
    let text = value.get_ref();
    if !values::is_name(text) {
        let message = format!("{text:?} must be a non-empty name of A-Z, a-z, 0-9, '.', '_', '-'");
        return Err(doc.invalid(value.span(), "service", message));
    }
    if text.len() > MAX_SERVICE_LEN {
        let message = format!("{text:?} is longer than {MAX_SERVICE_LEN} characters");
        return Err(doc.invalid(value.span(), "service", message));
    }
    Ok(Arc::from(text.as_str()))
}

/// Checks the `[listen]` table.
pub(super) fn listen(doc: Document<'_>, raw: &ListenConfig) -> Result<ListenSettings, ConfigError> {
    Ok(ListenSettings {
        address: values::socket_addr(doc, &raw.address, "listen.address")?,
        drain_timeout: values::duration(doc, &raw.drain_timeout, "listen.drain_timeout")?,
        tls: raw
            .tls
            .as_ref()
            .map(|table| tls::listen(doc, table))
            .transpose()?,
    })
}

/// Checks the `[admin]` table, which must not collide with the listener.
///
/// The error points at whichever of the two addresses was written, since a
/// default cannot be fixed where it stands.
pub(super) fn admin(
    doc: Document<'_>,
    raw: &AdminConfig,
    listen_raw: &ListenConfig,
    listen: SocketAddr,
) -> Result<SocketAddr, ConfigError> {
    let admin = values::socket_addr(doc, &raw.address, "admin.address")?;
    if !may_collide(admin, listen) {
        return Ok(admin);
    }
    let message =
        format!("admin {admin} and listen {listen} would share a socket; use another port");
    let (span, key) = if is_written(&raw.address.span()) {
        (raw.address.span(), "admin.address")
    } else {
        (listen_raw.address.span(), "listen.address")
    };
    Err(doc.invalid(span, key, message))
}

/// Says whether two listeners could not both bind: same port, and the same
/// address or a wildcard on either side. Port 0 picks a free port, so it
/// never collides; a wildcard is treated as covering both address families,
/// which errs on the side of refusing.
fn may_collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified()
}

/// Checks the `[upstream]` table.
pub(super) fn upstream(
    doc: Document<'_>,
    table: &Spanned<UpstreamConfig>,
) -> Result<UpstreamSettings, ConfigError> {
    let raw = table.get_ref();
    let url = values::http_url(doc, &raw.url, "upstream.url")?;
    let keys = ClientTlsKeys {
        section: "upstream",
        ca_file: raw.ca_file.as_ref(),
        client_cert_file: raw.client_cert_file.as_ref(),
        client_key_file: raw.client_key_file.as_ref(),
    };
    Ok(UpstreamSettings {
        tls: tls::client(doc, &url, keys)?,
        url,
        timeout: values::positive_duration(doc, &raw.timeout, "upstream.timeout")?,
    })
}

/// Checks the `[account_store]` table.
pub(super) fn account_store(
    doc: Document<'_>,
    table: &Spanned<AccountStoreConfig>,
) -> Result<AccountStoreSettings, ConfigError> {
    let raw = table.get_ref();
    let url = values::http_url(doc, &raw.url, "account_store.url")?;
    let timeout = values::positive_duration(doc, &raw.timeout, "account_store.timeout")?;
    let keys = ClientTlsKeys {
        section: "account_store",
        ca_file: raw.ca_file.as_ref(),
        client_cert_file: raw.client_cert_file.as_ref(),
        client_key_file: raw.client_key_file.as_ref(),
    };
    let tls = tls::client(doc, &url, keys)?;
    if raw.routes.get_ref().is_empty() {
        let message = "routes is empty: list the paths to forward to the account store";
        return Err(doc.invalid(raw.routes.span(), "account_store.routes", message));
    }
    let mut routes: Vec<String> = Vec::with_capacity(raw.routes.get_ref().len());
    for route in raw.routes.get_ref() {
        let path = values::plain_path(doc, route, "account_store.routes", PathKind::Exact)?;
        if routes.contains(&path) {
            let message = format!("{path:?} is listed twice");
            return Err(doc.invalid(route.span(), "account_store.routes", message));
        }
        routes.push(path);
    }
    Ok(AccountStoreSettings {
        url,
        routes,
        timeout,
        tls,
    })
}

/// The smallest non-zero `cache.max_bytes`: below it, the cache's shards
/// would be too small to hold a long token at all.
const MIN_CACHE_BYTES: u64 = 1024 * 1024;

/// Checks the `[cache]` table; any capacity is usable, 0 turns it off, and
/// so does a `max_bytes` of 0.
pub(super) fn cache(doc: Document<'_>, raw: &CacheConfig) -> Result<CacheSettings, ConfigError> {
    let max_bytes = *raw.max_bytes.get_ref();
    if max_bytes != 0 && max_bytes < MIN_CACHE_BYTES {
        let message = format!(
            "{max_bytes} is too small: it must be 0 (no cache) or at least {MIN_CACHE_BYTES}"
        );
        return Err(doc.invalid(raw.max_bytes.span(), "cache.max_bytes", message));
    }
    Ok(CacheSettings {
        capacity: raw.capacity,
        max_bytes,
    })
}

/// Checks the `[limits]` table.
pub(super) fn limits(doc: Document<'_>, raw: &LimitConfig) -> Result<LimitSettings, ConfigError> {
    let rate = RateSettings {
        per_minute: count(
            doc,
            &raw.account_store_rate_per_minute,
            "limits.account_store_rate_per_minute",
            0..=60_000,
        )?,
        burst: count(
            doc,
            &raw.account_store_burst,
            "limits.account_store_burst",
            1..=10_000,
        )?,
    };
    let body = &raw.max_body_bytes;
    if *body.get_ref() == 0 {
        let message = "0 would refuse every body; the smallest is 1";
        return Err(doc.invalid(body.span(), "limits.max_body_bytes", message));
    }
    Ok(LimitSettings {
        max_token_bytes: bounded(
            doc,
            &raw.max_token_bytes,
            "limits.max_token_bytes",
            64..=65536,
        )?,
        max_identity_header_bytes: bounded(
            doc,
            &raw.max_identity_header_bytes,
            "limits.max_identity_header_bytes",
            16..=8192,
        )?,
        max_uri_bytes: bounded(doc, &raw.max_uri_bytes, "limits.max_uri_bytes", 64..=65534)?,
        max_body_bytes: *body.get_ref(),
        account_store_rate: rate,
        trusted_hops: bounded(doc, &raw.trusted_hops, "limits.trusted_hops", 0..=10)?,
        listener: listener_limits(doc, raw)?,
    })
}

/// Checks the `[limits]` keys that hyper takes when a listener starts.
///
/// hyper panics on an HTTP/1 buffer under 8192 bytes, so the range starts
/// there rather than at something smaller that would fail at start.
fn listener_limits(doc: Document<'_>, raw: &LimitConfig) -> Result<ListenerLimits, ConfigError> {
    Ok(ListenerLimits {
        max_header_bytes: bounded(
            doc,
            &raw.max_header_bytes,
            "limits.max_header_bytes",
            8192..=1_048_576,
        )?,
        max_headers: bounded(doc, &raw.max_headers, "limits.max_headers", 8..=1000)?,
        header_read_timeout: values::positive_duration(
            doc,
            &raw.header_read_timeout,
            "limits.header_read_timeout",
        )?,
        idle_timeout: values::positive_duration(doc, &raw.idle_timeout, "limits.idle_timeout")?,
        max_connections: bounded(
            doc,
            &raw.max_connections,
            "limits.max_connections",
            1..=1_000_000,
        )?,
        h2_max_concurrent_streams: count(
            doc,
            &raw.h2_max_concurrent_streams,
            "limits.h2_max_concurrent_streams",
            1..=1000,
        )?,
        h2_max_header_list_bytes: count(
            doc,
            &raw.h2_max_header_list_bytes,
            "limits.h2_max_header_list_bytes",
            1024..=1_048_576,
        )?,
        h2_max_pending_accept_reset_streams: bounded(
            doc,
            &raw.h2_max_pending_accept_reset_streams,
            "limits.h2_max_pending_accept_reset_streams",
            1..=10_000,
        )?,
        h2_max_local_error_reset_streams: bounded(
            doc,
            &raw.h2_max_local_error_reset_streams,
            "limits.h2_max_local_error_reset_streams",
            1..=100_000,
        )?,
    })
}

/// Checks that a count lies in `range`, which fits in a `u32`.
fn count(
    doc: Document<'_>,
    value: &Spanned<usize>,
    key: &str,
    range: RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let (low, high) = (*range.start() as usize, *range.end() as usize);
    let checked = bounded(doc, value, key, low..=high)?;
    Ok(u32::try_from(checked).expect("the range fits in a u32"))
}

/// Checks that a size lies in `range`.
fn bounded(
    doc: Document<'_>,
    value: &Spanned<usize>,
    key: &str,
    range: RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let size = *value.get_ref();
    if range.contains(&size) {
        return Ok(size);
    }
    let (low, high) = (range.start(), range.end());
    let message = format!("{size} is out of range: it must be from {low} to {high}");
    Err(doc.invalid(value.span(), key, message))
}

/// Checks the `[log]` table; the level must be a filter `tracing` accepts,
/// so that a typo fails at load rather than silently logging nothing.
pub(super) fn log(doc: Document<'_>, raw: &LogConfig) -> Result<LogSettings, ConfigError> {
    let level = raw.level.get_ref();
    // Commas alone are as empty as nothing: no directive, every line off.
    if has_no_directive(level) {
        return Err(doc.invalid(
            raw.level.span(),
            "log.level",
            "an empty level is not allowed",
        ));
    }
    if let Err(LogError::Filter { source, .. }) = parse_filter(level) {
        let message = format!("{level:?} is not a log filter: {source}");
        return Err(doc.invalid(raw.level.span(), "log.level", message));
    }
    if let Some(word) = bare_target(level) {
        let message = format!(
            "{word:?} names no level (a bare word, or a target with nothing after its =, is \
             read as a log target to show at trace, turning every other line off); use off, \
             error, warn, info, debug, trace or target=level"
        );
        return Err(doc.invalid(raw.level.span(), "log.level", message));
    }
    Ok(LogSettings {
        level: level.clone(),
        access: raw.access,
    })
}
