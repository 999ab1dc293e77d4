//! The validated settings: what the rest of tollgate reads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderName, Method, Uri};
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::keys::KeyDocumentKind;

/// Holds everything tollgate needs to run, checked and ready to use.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Names this deployment in logs, metrics and the `WWW-Authenticate` realm.
    pub service: Arc<str>,
    /// Where downstream traffic is accepted.
    pub listen: ListenSettings,
    /// Where `/health`, `/ready` and `/metrics` are served.
    pub admin: SocketAddr,
    /// The protected service.
    pub upstream: UpstreamSettings,
    /// The account store that login, refresh and logout are delegated to.
    pub account_store: Option<AccountStoreSettings>,
    /// Token issuers, in file order; a token's `iss` picks one.
    pub providers: Vec<ProviderSettings>,
    /// The validated-token cache.
    pub cache: CacheSettings,
    /// Path rules, in file order; the first match wins.
    pub rules: Vec<RuleSettings>,
    /// Size caps on what downstream may send.
    pub limits: LimitSettings,
    /// Log level and access log switch.
    pub log: LogSettings,
    /// Whether token refusals are enforced, for rules without a `mode`.
    pub mode: EnforceMode,
}

/// Says whether a token refusal stops the request or is only reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforceMode {
    /// Answer 401 or 403 for a missing, bad or insufficient token.
    #[default]
    Enforce,
    /// Forward the request anyway, without identity headers, and count and
    /// log the verdict it would have had: a way to try rules and providers
    /// on real traffic before they can lock anyone out.
    ReportOnly,
}

/// Describes the downstream listener.
#[derive(Clone, Debug)]
pub struct ListenSettings {
    /// The socket address to bind.
    pub address: SocketAddr,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// The certificate and key that terminate TLS on the listener; `None`
    /// serves plain HTTP/1.1 and h2c.
    pub tls: Option<CertificateFiles>,
}

/// Names a PEM certificate chain and the PEM private key that goes with it.
#[derive(Clone, Debug)]
pub struct CertificateFiles {
    /// The chain, the holder's own certificate first.
    pub cert_file: Located<PathBuf>,
    /// The private key: PKCS#8, RSA (PKCS#1) or EC (SEC1).
    pub key_file: Located<PathBuf>,
}

/// Describes how tollgate speaks TLS to a service it forwards to; used
/// only when the service's URL is `https`.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsSettings {
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub ca_file: Option<Located<PathBuf>>,
    /// The certificate tollgate presents when the service asks for one
    /// (mutual TLS).
    pub client_cert: Option<CertificateFiles>,
}

impl ClientTlsSettings {
    /// Lists the files these settings name, so that a change to one can
    /// trigger a reload.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        let identity = self
            .client_cert
            .iter()
            .flat_map(|files| [&files.cert_file.value, &files.key_file.value]);
        self.ca_file.iter().map(|ca| &ca.value).chain(identity)
    }
}

/// Describes the protected service.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// Scheme and authority of the service (`http://127.0.0.1:8000` or
    /// `https://...`); any path in the configured URL is refused at load
    /// time.
    pub url: Uri,
    /// How long to wait for the response head before answering 504.
    pub timeout: Duration,
    /// TLS trust and client certificate for an `https` URL.
    pub tls: ClientTlsSettings,
}

/// Describes the account store that checks passwords and issues tokens.
#[derive(Clone, Debug)]
pub struct AccountStoreSettings {
    /// Scheme and authority of the account store.
    pub url: Uri,
    /// Exact (normalised) paths that are forwarded to it without a token check.
    pub routes: Vec<String>,
    /// How long to wait for the response head before answering 504.
    pub timeout: Duration,
    /// TLS trust and client certificate for an `https` URL.
    pub tls: ClientTlsSettings,
}

/// Describes one token issuer and how its tokens become an identity.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    /// A short name, used in logs and metric labels.
    pub name: Arc<str>,
    /// The exact `iss` value this provider's tokens carry.
    pub issuer: String,
    /// The token's audience claim must contain one of these.
    pub audiences: Vec<String>,
    /// The claim checked against `audiences`: `aud` unless the issuer puts
    /// the audience elsewhere.
    pub audience_claim: ClaimPath,
    /// The allowlist of signing algorithms; never contains `none`.
    pub algorithms: Vec<Algorithm>,
    /// Where the HMAC secrets come from, if HMAC is used.
    pub secret: Option<Located<SecretSource>>,
    /// A JWKS document with public keys, chosen by `kid`.
    pub jwks_file: Option<Located<PathBuf>>,
    /// How the key document is written; `None` lets its shape decide.
    pub keys_format: Option<KeyDocumentKind>,
    /// A JWKS fetched over HTTP(S) and kept fresh, beside any other source.
    pub remote_jwks: Option<RemoteJwksSettings>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The claims that hold the caller's roles, read in this order; never
    /// empty.
    pub roles_claim: Vec<ClaimPath>,
    /// The header that carries the merged roles, if one is set.
    pub roles_header: Option<HeaderName>,
    /// Whether a token must carry a `sub`.
    pub require_sub: bool,
    /// Identity headers to set on forwarded requests, each from one claim.
    pub claim_to_headers: Vec<(HeaderName, ClaimPath)>,
    /// Tokens refused although they verify.
    pub revoke: RevokeSettings,
}

impl ProviderSettings {
    /// Lists every identity header this provider may set, so that all of
    /// them can be scrubbed from what downstream sends.
    pub fn identity_header_names(&self) -> impl Iterator<Item = &HeaderName> {
        let claims = self.claim_to_headers.iter().map(|(name, _)| name);
        claims.chain(self.roles_header.as_ref())
    }
}

#[cfg(test)]
impl ProviderSettings {
    /// Builds the HMAC provider the unit tests share: issuer
    /// `https://issuer.test`, audience `api`, HS256 only, 30 s leeway,
    /// `X-User-Id` from `sub`; keys are supplied by each test.
    pub(crate) fn for_tests() -> Self {
        ProviderSettings {
            name: Arc::from("accounts"),
            issuer: "https://issuer.test".into(),
            audiences: vec!["api".into()],
            audience_claim: ClaimPath::parse("aud"),
            algorithms: vec![Algorithm::HS256],
            secret: None,
            jwks_file: None,
            keys_format: None,
            remote_jwks: None,
            leeway: Duration::from_secs(30),
            roles_claim: vec![ClaimPath::parse("roles")],
            roles_header: None,
            require_sub: true,
            claim_to_headers: vec![(
                HeaderName::from_static("x-user-id"),
                ClaimPath::parse("sub"),
            )],
            revoke: RevokeSettings::default(),
        }
    }
}

/// Describes a JWKS served at a URL: where, and how it is kept fresh.
#[derive(Clone, Debug)]
pub struct RemoteJwksSettings {
    /// The `http` or `https` URL of the JWKS.
    pub uri: Located<Uri>,
    /// How often the key set is refreshed when nothing shortens it.
    pub refresh_interval: Duration,
    /// The least time between two fetches caused by unknown key ids; also
    /// the floor of the refresh schedule.
    pub min_refetch_interval: Duration,
    /// How long the last good key set is kept while fetches fail.
    pub max_stale: Duration,
    /// How long one fetch may take.
    pub fetch_timeout: Duration,
    /// Extra CA certificates (PEM) trusted for `https`, beside the system
    /// roots.
    pub ca_file: Option<Located<PathBuf>>,
}

/// Names where HMAC secrets are read from. Several places (or several lines
/// of a file) let a rotation overlap: tokens signed with the old secret
/// still verify until it is removed.
#[derive(Clone)]
pub enum SecretSource {
    /// Environment variables, each read as raw UTF-8 bytes.
    Env(Vec<String>),
    /// Files, each holding one secret per line; blank lines are skipped.
    File(Vec<PathBuf>),
}

impl std::fmt::Debug for SecretSource {
    // Written by hand so that a future variant holding the secret itself
    // cannot leak it through `{:?}`: only the place is ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(names) => write!(f, "env:{}", names.join(",")),
            Self::File(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "file:{}", paths.join(","))
            }
        }
    }
}

/// Describes which of a provider's tokens are refused although they verify.
#[derive(Clone, Debug, Default)]
pub struct RevokeSettings {
    /// Tokens issued before this instant, or without `iat`, are refused.
    pub issued_before: Option<SystemTime>,
    /// A file naming revoked token ids (`jti`) and subjects (`sub`).
    pub denylist_file: Option<Located<PathBuf>>,
}

/// Pairs a value with the config key and line it came from, so that errors
/// found later (a missing key file, an empty secret) can still point at it.
#[derive(Clone, Debug)]
pub struct Located<T> {
    /// The value itself.
    pub value: T,
    /// The dotted key, such as `providers[0].jwks_file`.
    pub key: String,
    /// The file and line, such as `config/tollgate.toml:31`.
    pub origin: String,
}

/// Names a claim: a top-level member, or a JSON Pointer into the claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimPath {
    /// A top-level member, named exactly as the issuer writes it
    /// (`sub`, `cognito:groups`, `https://example.com/roles`).
    Name(String),
    /// An RFC 6901 JSON Pointer, written starting with `/`
    /// (`/realm_access/roles`).
    Pointer(String),
}

impl ClaimPath {
    /// Parses a claim name as written in the config file.
    pub fn parse(text: &str) -> Self {
        if text.starts_with('/') {
            Self::Pointer(text.to_owned())
        } else {
            Self::Name(text.to_owned())
        }
    }

    /// Finds the claim's value in a token's claims.
    pub fn find<'a>(
        &self,
        claims: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a serde_json::Value> {
        match self {
            Self::Name(name) => claims.get(name),
            Self::Pointer(pointer) => {
                let (first, rest) = split_pointer(pointer)?;
                let top = claims.get(&first)?;
                if rest.is_empty() {
                    Some(top)
                } else {
                    top.pointer(rest)
                }
            }
        }
    }
}

/// Splits `/a/b/c` into the unescaped first token `a` and the rest `/b/c`.
fn split_pointer(pointer: &str) -> Option<(String, &str)> {
    let body = pointer.strip_prefix('/')?;
    let (first, rest) = match body.find('/') {
        Some(at) => (&body[..at], &body[at..]),
        None => (body, ""),
    };
    Some((first.replace("~1", "/").replace("~0", "~"), rest))
}

/// Sizes the validated-token cache.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// The most tokens held at once.
    pub capacity: usize,
    /// The most bytes held tokens and their identities may weigh.
    pub max_bytes: u64,
}

/// Describes one path rule.
#[derive(Clone, Debug)]
pub struct RuleSettings {
    /// The rule's name in metrics and logs: `name`, or else the path written.
    pub name: Arc<str>,
    /// Which normalised paths the rule covers.
    pub path: PathMatch,
    /// The methods the rule covers; `None` means all.
    pub methods: Option<Vec<Method>>,
    /// What the rule requires.
    pub access: AccessMode,
    /// Whether refusals are enforced; `None` follows the top-level mode.
    pub mode: Option<EnforceMode>,
}

/// Matches a normalised request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// The path equals this string.
    Exact(String),
    /// The path starts with this string.
    Prefix(String),
}

/// Says what a rule requires of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessMode {
    /// No token needed.
    Public,
    /// A valid token, and, when the list is not empty, any one of these roles.
    Protected {
        /// Roles of which the caller needs at least one.
        roles: Vec<String>,
    },
}

/// Caps on what downstream may send.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    /// The longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// The longest identity header value tollgate will forward, in bytes.
    pub max_identity_header_bytes: usize,
    /// The longest request target (path and query) accepted, in bytes;
    /// longer ones get 414.
    pub max_uri_bytes: usize,
    /// The largest request body accepted, in bytes; a `Content-Length`
    /// over it gets 413, a chunked body that grows past it is cut off.
    pub max_body_bytes: u64,
    /// The per-client-IP rate limit on the account store routes.
    pub account_store_rate: RateSettings,
    /// How many proxies in front of tollgate append to `X-Forwarded-For`
    /// and are trusted to tell the client's IP; 0 uses the TCP peer.
    pub trusted_hops: usize,
    /// What the listeners are built with; a change needs a restart.
    pub listener: ListenerLimits,
}

/// A token-bucket rate: `per_minute` requests on average, with up to
/// `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSettings {
    /// Requests per minute per client IP; 0 turns the limit off.
    pub per_minute: u32,
    /// Requests a client may send back to back before the rate applies.
    pub burst: u32,
}

impl RateSettings {
    /// Says whether the limit is on.
    pub fn is_on(&self) -> bool {
        self.per_minute > 0
    }
}

/// Limits hyper takes when a listener's connection builder is made, so a
/// reload cannot change them: they need a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// The HTTP/1 read buffer, which bounds the request head (431 past it).
    pub max_header_bytes: usize,
    /// The most header fields in an HTTP/1 request head (431 past it).
    pub max_headers: usize,
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// The most downstream connections open at once; the listener stops
    /// accepting at the cap.
    pub max_connections: usize,
    /// The most concurrent streams an HTTP/2 client may open.
    pub h2_max_concurrent_streams: u32,
    /// The largest decoded HTTP/2 header list, in bytes.
    pub h2_max_header_list_bytes: u32,
    /// Streams a client may reset before the server accepted them, before
    /// the connection is closed (the rapid-reset guard, CVE-2023-44487).
    pub h2_max_pending_accept_reset_streams: usize,
    /// Streams the server may reset for client protocol errors, before the
    /// connection is closed.
    pub h2_max_local_error_reset_streams: usize,
}

impl Default for ListenerLimits {
    /// The defaults the config file documents.
    fn default() -> Self {
        ListenerLimits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            h2_max_concurrent_streams: 100,
            h2_max_header_list_bytes: 64 * 1024,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 1024,
        }
    }
}

/// Logging settings.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// A `tracing` filter directive such as `info` or `tollgate=debug`;
    /// `RUST_LOG`, when set, wins.
    pub level: String,
    /// Whether one info line is written per request.
    pub access: bool,
}
