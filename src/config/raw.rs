//! The config file as written: serde structs that mirror the TOML keys.
//!
//! Nothing here is checked beyond what serde does (types, unknown keys,
//! missing required keys); [`super::from_str`] turns these into
//! [`super::Settings`]. Values that are checked later are kept as
//! [`Spanned`] so that an error can name the line they came from. A default
//! value carries the empty span `0..0`, which no written value can have.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

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
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            address: unwritten("0.0.0.0:8080"),
            drain_timeout: unwritten("20s"),
        }
    }
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
    /// The service's `http://host:port`. Required.
    pub url: Spanned<String>,
    /// How long to wait for the response head. Default: `"30s"`.
    #[serde(default = "default_upstream_timeout")]
    pub timeout: Spanned<String>,
}

/// Holds the `[account_store]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountStoreConfig {
    /// The account store's `http://host:port`. Required.
    pub url: Spanned<String>,
    /// Exact paths forwarded to the account store without a token check.
    /// Default: `["/auth/login", "/auth/refresh", "/auth/logout"]`.
    #[serde(default = "default_account_routes")]
    pub routes: Spanned<Vec<Spanned<String>>>,
    /// How long to wait for the response head. Default: `"5s"`.
    #[serde(default = "default_account_timeout")]
    pub timeout: Spanned<String>,
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
    /// Accepted signing algorithms, such as `"RS256"`. Required, not empty.
    pub algorithms: Spanned<Vec<Spanned<String>>>,
    /// The environment variable holding the HMAC secret. Default: none.
    #[serde(default)]
    pub secret_env: Option<Spanned<String>>,
    /// The file holding the HMAC secret. Default: none.
    #[serde(default)]
    pub secret_file: Option<Spanned<String>>,
    /// A JWKS file with the public keys. Default: none.
    #[serde(default)]
    pub jwks_file: Option<Spanned<String>>,
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
    /// The claim holding the caller's roles. Default: `"roles"`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: Spanned<String>,
    /// Identity headers, each set from one claim.
    /// Default: `{ "X-User-Id" = "sub" }`.
    #[serde(default)]
    pub claim_to_headers: ClaimHeaders,
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

// --- cache, rules, limits, log ---------------------------------------------

/// Holds the `[cache]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// The most validated tokens held at once; 0 disables the cache.
    /// Default: `100000`.
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { capacity: 100_000 }
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
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            max_token_bytes: Spanned::new(0..0, 8192),
            max_identity_header_bytes: Spanned::new(0..0, 4096),
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

fn default_roles_claim() -> Spanned<String> {
    unwritten("roles")
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
