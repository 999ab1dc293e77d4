//! The config file as written: serde structs that mirror the TOML keys.
//!
//! Nothing here is checked beyond what serde does (types, unknown keys,
//! missing required keys); [`super::from_str`] turns these into
//! [`super::Settings`]. Values that are checked later are kept as
//! [`Spanned`] so that an error can name the line they came from. A default
//! value carries the empty span `0..0`, which no written value can have.

use std::collections::BTreeMap;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::{EnforceMode, ListenerLimits};

/// Holds the whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Names this deployment in logs and the `WWW-Authenticate` realm.
    /// Default: `"tollgate"`.
    #[serde(default = "default_service")]
    pub service: Spanned<String>,
    /// The downstream listener. Default: every key at its default.
    #[serde(default)]
    pub listen: ListenConfig,
    /// The admin listener. Default: every key at its default.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The protected service. Required.
    pub upstream: Spanned<UpstreamConfig>,
    /// The account store. Default: none, so no route bypasses the token
    /// check on its behalf.
    #[serde(default)]
    pub account_store: Option<Spanned<AccountStoreConfig>>,
    /// Token issuers, in file order. Required, with at least one entry.
    pub providers: Spanned<Vec<Spanned<ProviderConfig>>>,
    /// The validated-token cache. Default: every key at its default.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Path rules, in file order. Default: none, so every path needs a
    /// valid token.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleConfig>>,
    /// Size caps. Default: every key at its default.
    #[serde(default)]
    pub limits: LimitConfig,
    /// Logging. Default: every key at its default.
    #[serde(default)]
    pub log: LogConfig,
    /// Whether token refusals are enforced or only reported, for every
    /// rule that does not set its own `mode`. Default: `"enforce"`.
    #[serde(default)]
    pub mode: EnforceMode,
}

// --- listeners -------------------------------------------------------------

/// Holds the `[listen]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// The socket address for downstream traffic. Default: `"0.0.0.0:8080"`.
    pub address: Spanned<String>,
    /// How long a graceful shutdown waits for in-flight requests.
    /// Default: `"20s"`.
    pub drain_timeout: Spanned<String>,
    /// TLS termination: with this table the listener speaks HTTPS only
    /// (HTTP/1.1, or HTTP/2 when ALPN picks it). Default: none, so the
    /// listener speaks plain HTTP/1.1 and h2c.
    pub tls: Option<Spanned<ListenTlsConfig>>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            address: unwritten("0.0.0.0:8080"),
            drain_timeout: unwritten("20s"),
            tls: None,
        }
    }
}

/// Holds the `[listen.tls]` table. Both files are read again on every
/// reload, so a renewed certificate takes effect without a restart.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenTlsConfig {
    /// A PEM file with the certificate chain, the listener's own
    /// certificate first. Required.
    pub cert_file: Spanned<String>,
    /// A PEM file with the private key of that certificate: PKCS#8
    /// (`PRIVATE KEY`), RSA (`RSA PRIVATE KEY`) or EC (`EC PRIVATE KEY`).
    /// Required.
    pub key_file: Spanned<String>,
}

/// Holds the `[admin]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The socket address for `/health`, `/ready` and `/metrics`.
    /// Default: `"127.0.0.1:9901"`.
    pub address: Spanned<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: unwritten("127.0.0.1:9901"),
        }
    }
}

// --- services behind tollgate ----------------------------------------------

/// Holds the `[upstream]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The service's `http://host:port` or `https://host:port`. Required.
    pub url: Spanned<String>,
    /// How long to wait for the response head. Default: `"30s"`.
    #[serde(default = "default_upstream_timeout")]
    pub timeout: Spanned<String>,
    /// A PEM file of CA certificates trusted for an `https` url, in
    /// addition to the system roots. Default: none.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// A PEM certificate chain presented when the service asks for a
    /// client certificate (mutual TLS); needs `client_key_file`.
    /// Default: none.
    #[serde(default)]
    pub client_cert_file: Option<Spanned<String>>,
    /// The PEM private key of `client_cert_file`. Default: none.
    #[serde(default)]
    pub client_key_file: Option<Spanned<String>>,
}

/// Holds the `[account_store]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountStoreConfig {
    /// The account store's `http://host:port` or `https://host:port`.
    /// Required.
    pub url: Spanned<String>,
    /// Exact paths forwarded to the account store without a token check.
    /// Default: `["/auth/login", "/auth/refresh", "/auth/logout"]`.
    #[serde(default = "default_account_routes")]
    pub routes: Spanned<Vec<Spanned<String>>>,
    /// How long to wait for the response head. Default: `"5s"`.
    #[serde(default = "default_account_timeout")]
    pub timeout: Spanned<String>,
    /// A PEM file of CA certificates trusted for an `https` url, in
    /// addition to the system roots. Default: none.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// A PEM certificate chain presented when the service asks for a
    /// client certificate (mutual TLS); needs `client_key_file`.
    /// Default: none.
    #[serde(default)]
    pub client_cert_file: Option<Spanned<String>>,
    /// The PEM private key of `client_cert_file`. Default: none.
    #[serde(default)]
    pub client_key_file: Option<Spanned<String>>,
}

// --- providers -------------------------------------------------------------

/// Holds one `[[providers]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A short unique name for logs and metrics. Required.
    pub name: Spanned<String>,
    /// The exact `iss` value of this provider's tokens. Required.
    pub issuer: Spanned<String>,
    /// Accepted `aud` values. Required, not empty.
    pub audiences: Spanned<Vec<Spanned<String>>>,
    /// The claim that must hold one of `audiences`, for issuers whose
    /// access tokens carry it outside `aud` (Cognito access tokens name
    /// their app client in `client_id` and have no `aud`). A claim name or
    /// a JSON Pointer; a string or an array of strings. A token that also
    /// carries `aud` must pass on it too, as RFC 7519 section 4.1.3
    /// requires. Default: `"aud"`.
    #[serde(default = "default_audience_claim")]
    pub audience_claim: Spanned<String>,
    /// Accepted signing algorithms, such as `"RS256"`. Required, not empty.
    pub algorithms: Spanned<Vec<Spanned<String>>>,
    /// The environment variable holding the HMAC secret, or a list of them
    /// while a rotation overlaps. A value is taken as bytes, UTF-8 or not,
    /// as a line of `secret_file` is. Default: none.
    #[serde(default)]
    pub secret_env: Option<Spanned<StringList>>,
    /// The file holding the HMAC secrets, one per line, or a list of such
    /// files. Default: none.
    #[serde(default)]
    pub secret_file: Option<Spanned<StringList>>,
    /// A JWKS file with the public keys. Default: none.
    #[serde(default)]
    pub jwks_file: Option<Spanned<String>>,
    /// How `jwks_file` is written: `"jwks"` (RFC 7517) or `"x509_map"`, a
    /// JSON object from key id to PEM certificate, as Google publishes for
    /// Firebase. Default: none, meaning the document's shape decides.
    #[serde(default)]
    pub keys_format: Option<Spanned<String>>,
    /// An `http` or `https` URL serving a JWKS with the public keys, fetched
    /// at start and kept fresh in the background. Default: none.
    #[serde(default)]
    pub jwks_uri: Option<Spanned<String>>,
    /// How often the `jwks_uri` key set is refreshed, give or take 10 %; a
    /// `Cache-Control: max-age` may shorten it. Default: `"5m"`.
    #[serde(default = "default_jwks_refresh_interval")]
    pub jwks_refresh_interval: Spanned<String>,
    /// The least time between two fetches caused by tokens with an unknown
    /// `kid`, and the shortest `max-age` honoured. Default: `"10s"`.
    #[serde(default = "default_min_refetch_interval")]
    pub min_refetch_interval: Spanned<String>,
    /// How long the last good `jwks_uri` key set stays in use while the
    /// endpoint fails, counted from its last successful fetch.
    /// Default: `"24h"`.
    #[serde(default = "default_max_stale")]
    pub max_stale: Spanned<String>,
    /// How long one fetch of `jwks_uri` may take, from connecting to the
    /// last byte. Default: `"5s"`.
    #[serde(default = "default_jwks_fetch_timeout")]
    pub jwks_fetch_timeout: Spanned<String>,
    /// A PEM file of CA certificates trusted for an `https` `jwks_uri`, in
    /// addition to the system roots. Default: none.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// Clock skew allowed on `exp` and `nbf`. Default: `"30s"`.
    #[serde(default = "default_leeway")]
    pub leeway: Spanned<String>,
    /// The claim, or list of claims, holding the caller's roles; the roles
    /// are the values of all of them, in the order listed, each kept once
    /// (Keycloak: `["/realm_access/roles",
    /// "/resource_access/<client>/roles"]`). Default: `"roles"`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: Spanned<ClaimNames>,
    /// A header that carries the merged roles, joined with `,`; it is
    /// scrubbed from requests like every identity header. Default: none.
    #[serde(default)]
    pub roles_header: Option<Spanned<String>>,
    /// Whether a token must carry a non-empty string `sub`. When `false`,
    /// `sub` may be absent and the user id comes from `claim_to_headers`
    /// (`oid` for Entra ID, `uid` for Okta); a `sub` that is present must
    /// still be a non-empty string. Default: `true`.
    #[serde(default = "default_true")]
    pub require_sub: bool,
    /// Identity headers, each set from one claim.
    /// Default: `{ "X-User-Id" = "sub" }`.
    #[serde(default)]
    pub claim_to_headers: ClaimHeaders,
    /// Tokens refused although they verify. Default: none refused.
    #[serde(default)]
    pub revoke: RevokeConfig,
}

/// Holds a `[providers.revoke]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeConfig {
    /// An RFC 3339 UTC time such as `"2024-05-01T00:00:00Z"`: tokens whose
    /// `iat` is earlier, or that have no `iat`, are refused. Default: none.
    #[serde(default)]
    pub issued_before: Option<Spanned<String>>,
    /// A file of revoked tokens, one `jti:<value>` or `sub:<value>` per
    /// line, `#` starting a comment line. Default: none.
    #[serde(default)]
    pub denylist_file: Option<Spanned<String>>,
}

/// Holds a key written as one string or as a list of strings.
///
/// The span of the whole value is kept by the [`Spanned`] around it; the
/// items of a list carry none, so errors about one item point at the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringListVisitor)
    }
}

struct StringListVisitor;

impl<'de> Visitor<'de> for StringListVisitor {
    type Value = StringList;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<StringList, E> {
        Ok(StringList(vec![text.to_owned()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<StringList, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = items.next_element::<String>()? {
            list.push(item);
        }
        Ok(StringList(list))
    }
}

/// Holds a `claim_to_headers` table as `(header, claim)` pairs in file order.
#[derive(Debug)]
pub struct ClaimHeaders(pub Vec<(Spanned<String>, Spanned<String>)>);

impl Default for ClaimHeaders {
    fn default() -> Self {
        Self(vec![(unwritten("X-User-Id"), unwritten("sub"))])
    }
}

impl<'de> Deserialize<'de> for ClaimHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Without toml's `preserve_order` feature a table reaches us sorted
        // by key. The key spans still record where each key was written, so
        // sorting on them restores file order without a crate feature.
        let table = BTreeMap::<Spanned<String>, Spanned<String>>::deserialize(deserializer)?;
        let mut pairs: Vec<_> = table.into_iter().collect();
        pairs.sort_by_key(|(header, _)| header.span().start);
        Ok(Self(pairs))
    }
}

/// Holds one claim name, or a list of them, as written.
#[derive(Debug)]
pub enum ClaimNames {
    /// A single claim, written as a string; its span is the whole value's.
    One(String),
    /// A list of claims, each with its own span.
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for ClaimNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Not `#[serde(untagged)]`: that buffers the value, which loses the
        // spans toml attaches to each list item.
        deserializer.deserialize_any(ClaimNamesVisitor)
    }
}

struct ClaimNamesVisitor;

impl<'de> Visitor<'de> for ClaimNamesVisitor {
    type Value = ClaimNames;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a claim name or a list of claim names")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ClaimNames, E> {
        Ok(ClaimNames::One(text.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<ClaimNames, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = items.next_element::<Spanned<String>>()? {
            names.push(name);
        }
        Ok(ClaimNames::Many(names))
    }
}

// --- cache, rules, limits, log ---------------------------------------------

/// Holds the `[cache]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// The most validated tokens held at once; 0 disables the cache.
    /// Default: `100000`.
    pub capacity: usize,
    /// The most bytes the held tokens and their identities may take, as
    /// the cache weighs them; 0 disables the cache, otherwise at least
    /// 1 MiB. Default: `67108864` (64 MiB).
    pub max_bytes: Spanned<u64>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            max_bytes: Spanned::new(0..0, 64 * 1024 * 1024),
        }
    }
}

/// Holds one `[[rules]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name in logs and metrics. Default: the path written.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// An exact path to match. Default: none; set this or `path_prefix`.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// A path prefix to match. Default: none; set this or `path`.
    #[serde(default)]
    pub path_prefix: Option<Spanned<String>>,
    /// Whether matching requests skip the token check. Default: `false`.
    #[serde(default)]
    pub public: bool,
    /// The methods covered. Default: none, meaning every method.
    #[serde(default)]
    pub methods: Option<Spanned<Vec<Spanned<String>>>>,
    /// Roles of which the caller needs one. Default: none, meaning any
    /// valid token will do.
    #[serde(default)]
    pub roles: Option<Spanned<Vec<Spanned<String>>>>,
    /// Whether this rule's token refusals are enforced or only reported.
    /// Default: the top-level `mode`.
    #[serde(default)]
    pub mode: Option<Spanned<EnforceMode>>,
}

/// Holds the `[limits]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    /// The longest token accepted, in bytes, from 64 to 65536.
    /// Default: `8192`.
    pub max_token_bytes: Spanned<usize>,
    /// The longest identity header value forwarded, in bytes, from 16 to
    /// 8192. Default: `4096`.
    pub max_identity_header_bytes: Spanned<usize>,
    /// The longest request target (path and query), in bytes, from 64 to
    /// 65534; longer gets 414. Default: `8192`.
    pub max_uri_bytes: Spanned<usize>,
    /// The largest request body, in bytes, at least 1; larger gets 413.
    /// Default: `10485760` (10 MiB).
    pub max_body_bytes: Spanned<u64>,
    /// The HTTP/1 request head, in bytes, from 8192 to 1048576; larger
    /// gets 431. Restart only. Default: `65536`.
    pub max_header_bytes: Spanned<usize>,
    /// The most header fields in an HTTP/1 request, from 8 to 1000; more
    /// gets 431. Restart only. Default: `100`.
    pub max_headers: Spanned<usize>,
    /// How long a client may take to send a request head. Restart only.
    /// Default: `"10s"`.
    pub header_read_timeout: Spanned<String>,
    /// How long a connection may stay open with no request in flight.
    /// Restart only. Default: `"60s"`.
    pub idle_timeout: Spanned<String>,
    /// The most downstream connections open at once, at least 1. Restart
    /// only. Default: `10000`.
    pub max_connections: Spanned<usize>,
    /// The most concurrent HTTP/2 streams per connection, from 1 to 1000.
    /// Restart only. Default: `100`.
    pub h2_max_concurrent_streams: Spanned<usize>,
    /// The largest decoded HTTP/2 header list, in bytes, from 1024 to
    /// 1048576. Restart only. Default: `65536`.
    pub h2_max_header_list_bytes: Spanned<usize>,
    /// HTTP/2 streams a client may reset before they are accepted, from 1
    /// to 10000. Restart only. Default: `20`.
    pub h2_max_pending_accept_reset_streams: Spanned<usize>,
    /// HTTP/2 streams reset for a client's protocol errors, from 1 to
    /// 100000. Restart only. Default: `1024`.
    pub h2_max_local_error_reset_streams: Spanned<usize>,
    /// Requests per minute per client IP on the account store routes, up
    /// to 60000; 0 turns the limit off. Default: `0`.
    pub account_store_rate_per_minute: Spanned<usize>,
    /// Requests a client may send back to back on the account store
    /// routes, from 1 to 10000. Default: `10`.
    pub account_store_burst: Spanned<usize>,
    /// Proxies in front of tollgate trusted to append the client's IP to
    /// `X-Forwarded-For`, from 0 to 10; 0 uses the TCP peer. Default: `0`.
    pub trusted_hops: Spanned<usize>,
}

impl Default for LimitConfig {
    fn default() -> Self {
        let listener = ListenerLimits::default();
        let seconds =
            |duration: std::time::Duration| unwritten(&format!("{}s", duration.as_secs()));
        Self {
            max_token_bytes: Spanned::new(0..0, 8192),
            max_identity_header_bytes: Spanned::new(0..0, 4096),
            max_uri_bytes: Spanned::new(0..0, 8192),
            max_body_bytes: Spanned::new(0..0, 10 * 1024 * 1024),
            max_header_bytes: Spanned::new(0..0, listener.max_header_bytes),
            max_headers: Spanned::new(0..0, listener.max_headers),
            header_read_timeout: seconds(listener.header_read_timeout),
            idle_timeout: seconds(listener.idle_timeout),
            max_connections: Spanned::new(0..0, listener.max_connections),
            h2_max_concurrent_streams: Spanned::new(
                0..0,
                listener.h2_max_concurrent_streams as usize,
            ),
            h2_max_header_list_bytes: Spanned::new(
                0..0,
                listener.h2_max_header_list_bytes as usize,
            ),
            h2_max_pending_accept_reset_streams: Spanned::new(
                0..0,
                listener.h2_max_pending_accept_reset_streams,
            ),
            h2_max_local_error_reset_streams: Spanned::new(
                0..0,
                listener.h2_max_local_error_reset_streams,
            ),
            account_store_rate_per_minute: Spanned::new(0..0, 0),
            account_store_burst: Spanned::new(0..0, 10),
            trusted_hops: Spanned::new(0..0, 0),
        }
    }
}

/// Holds the `[log]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter directive. Default: `"info"`.
    pub level: Spanned<String>,
    /// Whether one info line is written per request. Default: `true`.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: unwritten("info"),
            access: true,
        }
    }
}

// --- defaults --------------------------------------------------------------

/// Wraps a default so that it reads as "not in the file" (an empty span).
fn unwritten(text: &str) -> Spanned<String> {
    Spanned::new(0..0, text.to_owned())
}

fn default_service() -> Spanned<String> {
    unwritten("tollgate")
}

fn default_upstream_timeout() -> Spanned<String> {
    unwritten("30s")
}

fn default_account_routes() -> Spanned<Vec<Spanned<String>>> {
    let routes = ["/auth/login", "/auth/refresh", "/auth/logout"];
    Spanned::new(0..0, routes.into_iter().map(unwritten).collect())
}

fn default_account_timeout() -> Spanned<String> {
    unwritten("5s")
}

fn default_leeway() -> Spanned<String> {
    unwritten("30s")
}

fn default_audience_claim() -> Spanned<String> {
    unwritten("aud")
}

fn default_roles_claim() -> Spanned<ClaimNames> {
    Spanned::new(0..0, ClaimNames::One("roles".to_owned()))
}

fn default_true() -> bool {
    true
}

fn default_jwks_refresh_interval() -> Spanned<String> {
    unwritten("5m")
}

fn default_min_refetch_interval() -> Spanned<String> {
    unwritten("10s")
}

fn default_max_stale() -> Spanned<String> {
    unwritten("24h")
}

fn default_jwks_fetch_timeout() -> Spanned<String> {
    unwritten("5s")
}
