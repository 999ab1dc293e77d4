//! A tollgate started from a config file on disk, with the reloader that
//! `tollgate run` spawns: for the tests of hot reload, secret rotation,
//! revocation and report-only mode.
//!
//! Files are written the way config tools write them (a new file renamed
//! over the old one), and every wait is a bounded poll, never a fixed sleep.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use tollgate::config::watch::{ConfigWatch, Hangup};
use tollgate::env::Env;

use super::{AUDIENCE, Answer, ISSUER, binary, claims, hs256_with_key, metric_matching};

/// How long a reload may take to show before a test gives up; generous,
/// since it bounds a hang and does not measure speed.
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(5);

/// The name of the config file in the test directory.
pub const CONFIG: &str = "tollgate.toml";

/// HMAC secrets to rotate between, each over the 32-byte minimum.
pub const SECRET_OLD: &str = "old-hmac-secret-for-reload-tests-000001";
/// The secret that replaces [`SECRET_OLD`].
pub const SECRET_NEW: &str = "new-hmac-secret-for-reload-tests-000002";

/// Builds a config in front of `upstream`: `top` holds top-level keys
/// (they must come before the first table), `provider` the lines of the
/// one provider, `accounts` (algorithms and key sources at least), and
/// `rest` any tables after it, such as rules.
pub fn config(upstream: SocketAddr, top: &str, provider: &str, rest: &str) -> String {
    format!(
        r#"service = "game-api"
{top}
[listen]
address = "127.0.0.1:0"
drain_timeout = "2s"

[admin]
address = "127.0.0.1:0"

[upstream]
url = "http://{upstream}"
timeout = "5s"

[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
leeway = "5s"
{provider}

[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Roles" = "roles"

{rest}
[log]
level = "warn"
access = false
"#
    )
}

/// An HS256 token for `sub`, signed with `secret`.
pub fn hs256(secret: &str, sub: &str) -> String {
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    hs256_with_key(secret.as_bytes(), &header, &claims(sub))
}

/// A directory holding a config and its files, and the tollgate serving
/// from it once started.
pub struct Watched {
    dir: TempDir,
    running: Option<tollgate::Running>,
}

impl Watched {
    /// Makes an empty directory; write the files, then [`Watched::start`].
    pub fn new() -> Self {
        Watched {
            dir: tempfile::tempdir().expect("tempdir"),
            running: None,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of a file in the directory, as a TOML string
    /// needs it (`/` separators).
    pub fn file(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .display()
            .to_string()
            .replace('\\', "/")
    }

    /// Provider lines for HS256 with the secrets in `file` of the
    /// directory.
    pub fn secret_file(&self, file: &str) -> String {
        format!(
            "algorithms = [\"HS256\"]\nsecret_file = \"{}\"",
            self.file(file)
        )
    }

    /// Writes `hmac.key` holding [`SECRET_OLD`] and a config in front of
    /// `upstream` whose provider reads it, with `rest` after the provider;
    /// returns the config's text.
    pub fn write_secret_file_config(&self, upstream: SocketAddr, rest: &str) -> String {
        self.write("hmac.key", SECRET_OLD);
        let text = config(upstream, "", &self.secret_file("hmac.key"), rest);
        self.write(CONFIG, &text);
        text
    }

    /// Writes a file in the directory by renaming a new file over it, so a
    /// reader never sees half of it.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        let temp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&temp, text).expect("write the new file");
        std::fs::rename(&temp, &path).expect("rename it into place");
    }

    /// Starts tollgate from `config` (a path inside the directory) with
    /// the reloader, and `env` as its environment.
    pub async fn start(&mut self, config: &str, env: &[(&str, &str)]) {
        self.start_with_env(config, env_of(env)).await;
    }

    /// Like [`Watched::start`], with any environment, UTF-8 or not.
    pub async fn start_with_env(&mut self, config: &str, env: Env) {
        self.start_racing(config, env, |_| {}, |_| {}).await;
    }

    /// Starts as `tollgate run` does, calling `after_read` once the config
    /// is read but before it is watched, and `while_starting` once
    /// tollgate serves but before its reloader runs: changes made there
    /// land in the windows of a real start.
    pub async fn start_racing(
        &mut self,
        config: &str,
        env: Env,
        after_read: impl FnOnce(&Self),
        while_starting: impl FnOnce(&Self),
    ) {
        let path = self.dir.path().join(config);
        let settings = tollgate::config::from_file(&path).expect("the test config is valid");
        after_read(self);
        let changes = ConfigWatch::for_config(Hangup::hook(), &path, &settings);
        let mut running = tollgate::start(settings, &env)
            .await
            .expect("tollgate starts");
        while_starting(self);
        running.spawn_reloader(changes, path, env);
        self.running = Some(running);
    }

    /// The running instance.
    pub fn running(&self) -> &tollgate::Running {
        self.running.as_ref().expect("started")
    }

    /// The proxy URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().proxy_addr())
    }

    /// A GET to the proxy, with a bearer token when given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.get_with(path, token, &[]).await
    }

    /// A GET to the proxy with a bearer token and other headers.
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        binary::get(&self.url(path), &headers).await
    }

    /// The admin listener's `/metrics`.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.running().admin_addr());
        binary::get(&url, &[]).await.text()
    }

    /// How many reloads ended with `result` (`ok` or `error`).
    pub async fn reloads(&self, result: &str) -> f64 {
        let metrics = self.metrics().await;
        metric_matching(
            &metrics,
            "tollgate_config_reloads_total",
            &[("result", result)],
        )
    }

    /// Waits (bounded) until `count` reloads have ended with `result`.
    pub async fn wait_for_reloads(&self, result: &str, count: f64) {
        let what = format!("{count} reloads with result {result}");
        eventually(&what, || async { self.reloads(result).await >= count }).await;
    }

    /// Waits (bounded) until a GET of `path` with `token` gets `status`.
    pub async fn wait_for_status(&self, path: &str, token: Option<&str>, status: u16) {
        let what = format!("GET {path} answered {status}");
        eventually(&what, || async {
            self.get(path, token).await.status.as_u16() == status
        })
        .await;
    }

    /// Stops tollgate, draining in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Polls `check` until it holds, panicking with `what` after
/// [`RELOAD_DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + RELOAD_DEADLINE;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up waiting: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Builds the environment tollgate sees from name-value pairs.
pub fn env_of(pairs: &[(&str, &str)]) -> Env {
    Env::from_vars(pairs.iter().copied())
}
