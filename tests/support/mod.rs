//! Test harness: a real tollgate on 127.0.0.1:0 in front of a real hyper
//! upstream, with real keys and tokens minted here, independently of the
//! crate under test (signatures come straight from aws-lc-rs).
// Every test file compiles this module whole and uses only part of it, so
// unused items and re-exports are expected in any one of them.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod binary;
pub mod faulty;
pub mod h2wire;
pub mod jwks_server;
pub mod keys;
pub mod recorder;
pub mod reload;
pub mod tls;
pub mod upstream;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate::env::Env;

pub use self::keys::{TestKeys, claims, hs256_with_key, now, swap_claims};
pub use self::upstream::Upstream;
pub use self::wire::RawConnection;

/// The issuer and audience every test config uses.
pub const ISSUER: &str = "https://accounts.chessmate.test";
/// The audience every test config uses.
pub const AUDIENCE: &str = "chessmate-api";

/// Returns the process-wide test keys (RSA generation is slow, so once).
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(TestKeys::generate)
}

/// The algorithms the test provider accepts unless told otherwise: every
/// one the test keys can sign.
pub const ALGORITHMS: [&str; 10] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
];

/// Builds a tollgate config for the tests.
pub struct Harness {
    upstream: String,
    upstream_timeout: String,
    drain_timeout: String,
    account_store: Option<String>,
    algorithms: Vec<String>,
    leeway: String,
    /// The HMAC secret handed over as `TEST_JWT_SECRET`; `None` leaves
    /// `secret_env` out of the provider.
    secret: Option<String>,
    jwks: Jwks,
    extra_provider: String,
    rules: String,
    extra: String,
    /// `TOKIO_WORKER_THREADS` as tollgate reads it; `None` leaves it unset.
    workers: Option<String>,
    /// `listen.address`.
    listen: String,
}

/// Where the provider's JWKS comes from.
enum Jwks {
    /// The test keys' JWKS plus any extra keys, written next to the config.
    Generated(Vec<Value>),
    /// A file the test supplies (the interop fixtures).
    File(PathBuf),
    /// No `jwks_file` at all (the keys come from a `jwks_uri`, say).
    None,
}

impl Harness {
    /// A config with one provider (HMAC secret and a JWKS of every key
    /// type) in front of `upstream`, with the issue's example rules.
    pub fn new(upstream: SocketAddr) -> Self {
        Harness {
            upstream: format!("http://{upstream}"),
            upstream_timeout: "2s".to_owned(),
            drain_timeout: "2s".to_owned(),
            account_store: None,
            algorithms: ALGORITHMS.iter().map(|alg| (*alg).to_owned()).collect(),
            leeway: "5s".to_owned(),
            secret: Some(keys().secret_text()),
            jwks: Jwks::Generated(Vec::new()),
            extra_provider: String::new(),
            rules: DEFAULT_RULES.to_owned(),
            extra: String::new(),
            workers: None,
            listen: "127.0.0.1:0".to_owned(),
        }
    }

    /// Serves proxied traffic on `count` worker threads.
    pub fn with_workers(mut self, count: usize) -> Self {
        self.workers = Some(count.to_string());
        self
    }

    /// Listens for proxied traffic on `address` instead of a port of its
    /// own choosing.
    pub fn with_listen(mut self, address: SocketAddr) -> Self {
        self.listen = address.to_string();
        self
    }

    /// Points the upstream URL anywhere (a closed port, say).
    pub fn with_upstream_url(mut self, url: &str) -> Self {
        self.upstream = url.to_owned();
        self
    }

    /// Sets how long tollgate waits for the upstream's response head
    /// (default 2 s); a short one keeps timeout tests short.
    pub fn with_upstream_timeout(mut self, timeout: &str) -> Self {
        self.upstream_timeout = timeout.to_owned();
        self
    }

    /// Sets how long shutdown waits for in-flight requests (default 2 s).
    pub fn with_drain_timeout(mut self, timeout: &str) -> Self {
        self.drain_timeout = timeout.to_owned();
        self
    }

    /// Adds an `[account_store]` table.
    pub fn with_account_store(mut self, url: &str, timeout: &str) -> Self {
        self.account_store = Some(format!(
            "[account_store]\nurl = \"{url}\"\ntimeout = \"{timeout}\"\n"
        ));
        self
    }

    /// Sets the provider's clock-skew leeway (`"0s"`, say); 5 s otherwise.
    pub fn with_leeway(mut self, leeway: &str) -> Self {
        self.leeway = leeway.to_owned();
        self
    }

    /// Replaces the provider's algorithm allowlist.
    pub fn with_algorithms(mut self, algorithms: &[&str]) -> Self {
        self.algorithms = algorithms.iter().map(|alg| (*alg).to_owned()).collect();
        self
    }

    /// Replaces the HMAC secret the provider reads from its env variable.
    pub fn with_secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// Leaves the HMAC secret out, for a provider that trusts public keys
    /// only (config refuses a secret no allowed algorithm would use).
    pub fn without_secret(mut self) -> Self {
        self.secret = None;
        self
    }

    /// Uses this JWKS file instead of the test keys' JWKS.
    pub fn with_jwks_file(mut self, path: &Path) -> Self {
        self.jwks = Jwks::File(path.to_owned());
        self
    }

    /// Leaves `jwks_file` out, for a provider whose public keys come from
    /// a `jwks_uri` given with [`Harness::with_provider_lines`].
    pub fn without_jwks_file(mut self) -> Self {
        self.jwks = Jwks::None;
        self
    }

    /// Adds a key to the generated JWKS, after the test keys.
    pub fn with_extra_jwk(mut self, jwk: Value) -> Self {
        if let Jwks::Generated(extra) = &mut self.jwks {
            extra.push(jwk);
        }
        self
    }

    /// Adds lines to the provider table (`roles_claim = "..."`, say); keys
    /// the harness already writes have their own `with_` setter, because
    /// TOML refuses a key given twice.
    pub fn with_provider_lines(mut self, lines: &str) -> Self {
        self.extra_provider.push_str(lines);
        self.extra_provider.push('\n');
        self
    }

    /// Adds a whole `[[providers]]` table after the generated provider, such
    /// as an issuer fixture's snippet. Relative paths in it resolve against
    /// the package root, where `cargo test` runs test binaries.
    pub fn with_provider_table(self, table: &str) -> Self {
        self.with_extra(table)
    }

    /// Replaces the rules.
    pub fn with_rules(mut self, rules: &str) -> Self {
        self.rules = rules.to_owned();
        self
    }

    /// Appends top-level TOML (other tables).
    pub fn with_extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// Renders the config text; a generated JWKS is written to `dir`.
    pub fn render(&self, dir: &Path) -> String {
        let jwks = match &self.jwks {
            Jwks::Generated(extra) => {
                let mut set = keys().jwks();
                if let Some(list) = set["keys"].as_array_mut() {
                    list.extend(extra.iter().cloned());
                }
                let path = dir.join("jwks.json");
                std::fs::write(&path, set.to_string()).expect("write jwks");
                Some(path)
            }
            Jwks::File(path) => Some(path.clone()),
            Jwks::None => None,
        };
        // TOML basic strings treat `\` as an escape; `/` works on every
        // platform the tests run on.
        let jwks = jwks.map_or(String::new(), |path| {
            let path = path.display().to_string().replace('\\', "/");
            format!("jwks_file = \"{path}\"")
        });
        let algorithms = self
            .algorithms
            .iter()
            .map(|alg| format!("\"{alg}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let secret_env = if self.secret.is_some() {
            "secret_env = \"TEST_JWT_SECRET\""
        } else {
            ""
        };
        format!(
            r#"service = "game-api"
[listen]
address = "{listen}"
drain_timeout = "{drain_timeout}"
[admin]
address = "127.0.0.1:0"
[upstream]
url = "{upstream}"
timeout = "{upstream_timeout}"
{account_store}
[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = [{algorithms}]
{secret_env}
{jwks}
leeway = "{leeway}"
{extra_provider}
[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Email" = "email"
"X-User-Roles" = "roles"

{rules}
[log]
level = "warn"
access = true
{extra}"#,
            upstream = self.upstream,
            upstream_timeout = self.upstream_timeout,
            drain_timeout = self.drain_timeout,
            listen = self.listen,
            account_store = self.account_store.clone().unwrap_or_default(),
            leeway = self.leeway,
            extra_provider = self.extra_provider,
            rules = self.rules,
            extra = self.extra,
        )
    }

    /// Starts tollgate in this process.
    pub async fn start(self) -> Tollgate {
        self.try_start().await.expect("tollgate starts")
    }

    /// Starts tollgate in this process, or says why it could not.
    pub async fn try_start(self) -> Result<Tollgate, tollgate::StartError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = self.render(dir.path());
        let settings =
            tollgate::config::from_str(&text, "test.toml").expect("test config is valid");
        let secret = self.secret.map(|secret| ("TEST_JWT_SECRET", secret));
        let workers = self.workers.map(|count| ("TOKIO_WORKER_THREADS", count));
        let env = Env::from_vars(secret.into_iter().chain(workers));
        let running = tollgate::start(settings, &env).await?;
        Ok(Tollgate {
            running: Some(running),
            _dir: dir,
            client: client(),
        })
    }
}

const DEFAULT_RULES: &str = r#"
[[rules]]
path = "/health"
public = true

[[rules]]
path_prefix = "/public/"
public = true

[[rules]]
path_prefix = "/admin/"
roles = ["admin"]
"#;

/// A running tollgate and a client for it.
pub struct Tollgate {
    running: Option<tollgate::Running>,
    _dir: tempfile::TempDir,
    client: TestClient,
}

impl Tollgate {
    /// The proxy address.
    pub fn addr(&self) -> SocketAddr {
        self.running().proxy_addr()
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.running().admin_addr()
    }

    /// The running instance.
    pub fn running(&self) -> &tollgate::Running {
        self.running.as_ref().expect("still running")
    }

    /// Starts a request to the proxy.
    pub fn request(&self, method: Method, path: &str) -> Call {
        Call {
            client: self.client.clone(),
            url: format!("http://{}{path}", self.addr()),
            method,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A GET to the proxy.
    pub fn get(&self, path: &str) -> Call {
        self.request(Method::GET, path)
    }

    /// Fetches `/metrics` from the admin listener.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin_addr());
        let call = Call {
            client: self.client.clone(),
            url,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        call.send().await.text()
    }

    /// Reads one metric sample (name with labels exactly as rendered,
    /// e.g. `tollgate_cache_hits_total`); 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics().await, sample)
    }

    /// Publishes a new snapshot built from `harness`, as a reload would;
    /// returns the new generation.
    pub fn reload(&self, harness: Harness) -> u64 {
        let text = harness.render(self._dir.path());
        let settings =
            tollgate::config::from_str(&text, "test.toml").expect("test config is valid");
        let secret = harness.secret.map(|secret| ("TEST_JWT_SECRET", secret));
        self.running()
            .state()
            .reload(settings, &Env::from_vars(secret))
            .expect("reload succeeds")
    }

    /// Stops it, draining in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Reads one sample from a Prometheus text rendering. Labels must be given
/// in the order they are rendered; use [`metric_matching`] otherwise.
pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(sample)?;
            rest.strip_prefix(' ')?.trim().parse().ok()
        })
        .unwrap_or(0.0)
}

/// Sums the samples of `name` whose labels include every `label="value"`
/// pair given, in any order.
pub fn metric_matching(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| {
            let head = line.split(' ').next().unwrap_or("");
            head.split(['{', '}']).next() == Some(name)
                && labels
                    .iter()
                    .all(|(k, v)| head.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The verdict metric's name.
pub const VERDICTS: &str = "tollgate_token_verdicts_total";

/// Reads how many verdicts one provider (`"none"` when none was picked)
/// gave for one reason (`"ok"` for a pass).
pub fn verdicts(text: &str, provider: &str, reason: &str) -> f64 {
    metric_matching(
        text,
        VERDICTS,
        &[("provider", provider), ("reason", reason)],
    )
}

/// Sums every verdict, whatever the provider and reason.
pub fn all_verdicts(text: &str) -> f64 {
    metric_matching(text, VERDICTS, &[])
}

type TestClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A request being built.
pub struct Call {
    client: TestClient,
    url: String,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Appends a header (repeats allowed).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        let value = http::HeaderValue::from_str(value).expect("valid header value");
        self.headers.append(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends it, with a 10 s bound so a hung test fails instead of hanging.
    pub async fn send(self) -> Answer {
        let mut request = Request::builder()
            .method(self.method)
            .uri(&self.url)
            .body(Full::new(self.body))
            .expect("valid request");
        *request.headers_mut() = self.headers;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("answer within 10s")
            .expect("request sent");
        Answer::read(response).await
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// Reads a whole response.
    pub async fn read<B>(response: http::Response<B>) -> Answer
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body read").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// For a request the echo upstream answered: the values the upstream
    /// saw for a header (lowercase name).
    pub fn upstream_saw(&self, name: &str) -> Vec<String> {
        self.json()["headers"][name]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// For a request the echo upstream answered: the path it saw.
    pub fn upstream_path(&self) -> String {
        self.json()["path"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends one request over a fresh HTTP/2 connection with prior knowledge
/// (h2c, no upgrade dance) and reads the whole response. The URI must be
/// absolute: HTTP/2 carries the authority in the request, not in `Host`.
pub async fn send_h2<B>(addr: SocketAddr, request: Request<B>) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("answer within 10s")
        .expect("h2 response");
    Answer::read(response).await
}

/// Returns an address nothing listens on (bound, read, then released), for
/// a target that refuses connections.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("closed port address")
}

/// Sends raw bytes over TCP and returns what came back until the server
/// closed or 2 s passed. For requests a well-behaved client cannot build.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut buffer)).await;
    String::from_utf8_lossy(&buffer).into_owned()
}
