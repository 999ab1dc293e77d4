//! Hot reload: the config file and the files it names are watched, SIGHUP
//! reloads, a bad config is refused and the running one kept, settings
//! that need a restart are kept, HMAC secrets rotate with an overlap, and
//! none of it fails a request that both configs would let through.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tollgate::env::Env;

use support::binary::{self, SECRET_ENV, Served};
use support::reload::{CONFIG, SECRET_NEW, SECRET_OLD, Watched, config, env_of, eventually, hs256};
use support::{Upstream, claims, hs256_with_key, keys, metric_matching, verdicts};

/// A rule that opens `/beta/` to anyone.
const OPEN_BETA: &str = "[[rules]]\npath_prefix = \"/beta/\"\npublic = true\n";

/// Starts a watched tollgate whose provider reads `hmac.key`, holding
/// [`SECRET_OLD`], with `rest` after the provider.
async fn start_with(upstream: &Upstream, rest: &str) -> Watched {
    let mut site = Watched::new();
    site.write_secret_file_config(upstream.addr(), rest);
    site.start(CONFIG, &[]).await;
    site
}

#[tokio::test]
async fn a_rewritten_config_file_is_picked_up() {
    let upstream = Upstream::start().await;
    let site = start_with(&upstream, "").await;
    assert_eq!(site.get("/beta/games", None).await.status, 401);

    let opened = config(
        upstream.addr(),
        "",
        &site.secret_file("hmac.key"),
        OPEN_BETA,
    );
    site.write(CONFIG, &opened);
    site.wait_for_status("/beta/games", None, 200).await;

    assert_eq!(site.reloads("ok").await, 1.0);
    assert_eq!(site.reloads("error").await, 0.0);
    let generation = site.running().state().load().generation;
    assert_eq!(generation, 2);
    site.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_configmap_symlink_swap_is_seen() {
    use std::os::unix::fs::symlink;

    // The layout a Kubernetes ConfigMap volume has: the file is a link
    // through `..data`, which points at a timestamped directory.
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", SECRET_OLD);
    let provider = site.secret_file("hmac.key");
    let root = site.dir().to_owned();
    let version = |name: &str, rest: &str| {
        let dir = root.join(name);
        std::fs::create_dir(&dir).expect("create the data directory");
        let text = config(upstream.addr(), "", &provider, rest);
        std::fs::write(dir.join(CONFIG), text).expect("write the config");
    };
    let swap_to = |name: &str| {
        let temp = root.join("..data_tmp");
        symlink(name, &temp).expect("link the new data");
        std::fs::rename(&temp, root.join("..data")).expect("swap ..data");
    };
    version("..2024_01", "");
    symlink("..2024_01", site.dir().join("..data")).expect("link ..data");
    symlink(format!("..data/{CONFIG}"), site.dir().join(CONFIG)).expect("link the file");
    site.start(CONFIG, &[]).await;
    assert_eq!(site.get("/beta/games", None).await.status, 401);

    version("..2024_02", OPEN_BETA);
    swap_to("..2024_02");
    std::fs::remove_dir_all(site.dir().join("..2024_01")).expect("remove old data");
    site.wait_for_status("/beta/games", None, 200).await;

    // A second swap is seen too, though the directory the file lived in
    // when watching started is gone.
    version("..2024_03", "");
    swap_to("..2024_03");
    std::fs::remove_dir_all(site.dir().join("..2024_02")).expect("remove old data");
    site.wait_for_status("/beta/games", None, 401).await;
    assert_eq!(site.reloads("error").await, 0.0);
    site.shutdown().await;
}

#[tokio::test]
async fn a_broken_rewrite_is_refused_and_the_running_config_kept() {
    let upstream = Upstream::start().await;
    let site = start_with(&upstream, OPEN_BETA).await;
    let token = hs256(SECRET_OLD, "alice");
    let good = config(
        upstream.addr(),
        "",
        &site.secret_file("hmac.key"),
        OPEN_BETA,
    );
    let missing_key = config(
        upstream.addr(),
        "",
        &site.secret_file("no-such.key"),
        OPEN_BETA,
    );
    let broken = [
        ("bad TOML", format!("{good}\n[[rules]\n")),
        ("unknown key", good.replace("leeway = ", "leway = ")),
        (
            "bad value",
            good.replace("leeway = \"5s\"", "leeway = \"forever\""),
        ),
        ("missing key file", missing_key),
    ];

    for (count, (what, text)) in broken.iter().enumerate() {
        site.write(CONFIG, text);
        site.wait_for_reloads("error", (count + 1) as f64).await;
        let open = site.get("/beta/games", None).await;
        assert_eq!(open.status, 200, "{what}: the old rules still apply");
        let answer = site.get("/api/games", Some(&token)).await;
        assert_eq!(answer.status, 200, "{what}: the old keys still apply");
    }
    assert_eq!(site.reloads("ok").await, 0.0);
    assert_eq!(site.running().state().load().generation, 1);

    // Fixing the file is a reload like any other.
    let locked = config(upstream.addr(), "", &site.secret_file("hmac.key"), "");
    site.write(CONFIG, &locked);
    site.wait_for_status("/beta/games", None, 401).await;
    assert_eq!(site.reloads("ok").await, 1.0);
    site.shutdown().await;
}

#[tokio::test]
async fn settings_that_need_a_restart_keep_their_running_values() {
    let upstream = Upstream::start().await;
    let site = start_with(&upstream, "").await;
    let proxy = site.running().proxy_addr();

    let text = config(
        upstream.addr(),
        "",
        &site.secret_file("hmac.key"),
        &format!("{OPEN_BETA}[cache]\ncapacity = 7\n"),
    )
    .replace("drain_timeout = \"2s\"", "drain_timeout = \"9s\"");
    site.write(CONFIG, &text);
    site.wait_for_status("/beta/games", None, 200).await;

    let snapshot = site.running().state().load();
    assert_eq!(
        snapshot.settings.listen.drain_timeout,
        Duration::from_secs(2)
    );
    assert_eq!(snapshot.settings.cache.capacity, 100_000);
    assert_eq!(site.running().proxy_addr(), proxy);
    site.shutdown().await;
}

#[tokio::test]
async fn a_secret_file_rotation_overlaps_old_and_new() {
    let upstream = Upstream::start().await;
    let site = start_with(&upstream, "").await;
    let old = hs256(SECRET_OLD, "alice");
    let new = hs256(SECRET_NEW, "bob");
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 200);
    assert_eq!(site.get("/api/games", Some(&new)).await.status, 401);

    // Only the key file changes: the files a config names are watched.
    site.write("hmac.key", &format!("{SECRET_NEW}\n\n{SECRET_OLD}\n"));
    site.wait_for_status("/api/games", Some(&new), 200).await;
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 200);

    site.write("hmac.key", &format!("{SECRET_NEW}\n"));
    site.wait_for_status("/api/games", Some(&old), 401).await;
    assert_eq!(site.get("/api/games", Some(&new)).await.status, 200);

    let metrics = site.metrics().await;
    assert!(verdicts(&metrics, "accounts", "bad_signature") >= 2.0);
    assert_eq!(site.reloads("error").await, 0.0);
    site.shutdown().await;
}

/// A key file rotated after tollgate read it but before its reloader ran
/// (while the listeners bind and remote key sets are fetched) is loaded.
#[tokio::test]
async fn a_key_file_changed_while_tollgate_starts_is_loaded() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write_secret_file_config(upstream.addr(), "");

    let rotate = |site: &Watched| site.write("hmac.key", SECRET_NEW);
    site.start_racing(CONFIG, env_of(&[]), |_| {}, rotate).await;

    let new = hs256(SECRET_NEW, "bob");
    site.wait_for_status("/api/games", Some(&new), 200).await;
    let old = hs256(SECRET_OLD, "alice");
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 401);
    assert_eq!(site.reloads("error").await, 0.0);
    site.shutdown().await;
}

/// A config file rewritten after tollgate read it but before it was
/// watched (no file event will ever come) is still put in force.
#[tokio::test]
async fn a_config_changed_between_read_and_watch_is_loaded() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", SECRET_OLD);
    let provider = site.secret_file("hmac.key");
    site.write(CONFIG, &config(upstream.addr(), "", &provider, ""));

    let opened = config(upstream.addr(), "", &provider, OPEN_BETA);
    let open_beta = |site: &Watched| site.write(CONFIG, &opened);
    site.start_racing(CONFIG, env_of(&[]), open_beta, |_| {})
        .await;

    site.wait_for_status("/beta/games", None, 200).await;
    site.wait_for_reloads("ok", 1.0).await;
    assert_eq!(site.reloads("error").await, 0.0);
    site.shutdown().await;
}

/// A setting that needs a restart, changed in that window, is reported by
/// a reload at once (and its running value kept), not left unnoticed.
#[tokio::test]
async fn a_restart_only_change_between_read_and_watch_is_reported() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", SECRET_OLD);
    let provider = site.secret_file("hmac.key");
    site.write(CONFIG, &config(upstream.addr(), "", &provider, ""));

    let smaller = config(upstream.addr(), "", &provider, "[cache]\ncapacity = 5000\n");
    let shrink = |site: &Watched| site.write(CONFIG, &smaller);
    site.start_racing(CONFIG, env_of(&[]), shrink, |_| {}).await;

    site.wait_for_reloads("ok", 1.0).await;
    let snapshot = site.running().state().load();
    assert_eq!(snapshot.settings.cache.capacity, 100_000);
    assert_eq!(snapshot.generation, 2);
    site.shutdown().await;
}

#[tokio::test]
async fn a_secret_env_list_rotates_with_the_config() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    let provider = |names: &str| format!("algorithms = [\"HS256\"]\nsecret_env = {names}");
    let names = |text: &str| config(upstream.addr(), "", &provider(text), "");
    site.write(CONFIG, &names("\"JWT_OLD\""));
    let env = [("JWT_OLD", SECRET_OLD), ("JWT_NEW", SECRET_NEW)];
    site.start(CONFIG, &env).await;
    let old = hs256(SECRET_OLD, "alice");
    let new = hs256(SECRET_NEW, "bob");
    assert_eq!(site.get("/api/games", Some(&new)).await.status, 401);

    site.write(CONFIG, &names("[\"JWT_NEW\", \"JWT_OLD\"]"));
    site.wait_for_status("/api/games", Some(&new), 200).await;
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 200);

    site.write(CONFIG, &names("\"JWT_NEW\""));
    site.wait_for_status("/api/games", Some(&old), 401).await;
    assert_eq!(site.get("/api/games", Some(&new)).await.status, 200);
    site.shutdown().await;
}

/// A secret variable holds bytes, not text, after a reload as at start:
/// the reloader looks variables up as `run` does.
#[tokio::test]
async fn a_secret_env_list_of_bytes_that_are_not_utf8_rotates_with_the_config() {
    // Continuation bytes only, so neither secret is UTF-8; 40 bytes each.
    let old: Vec<u8> = (0..40u8).map(|at| 0x80 | at).collect();
    let new: Vec<u8> = (0..40u8).map(|at| 0xbf - at).collect();
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    let provider = |names: &str| format!("algorithms = [\"HS256\"]\nsecret_env = {names}");
    let names = |text: &str| config(upstream.addr(), "", &provider(text), "");
    site.write(CONFIG, &names("\"JWT_OLD\""));
    let env = Env::from_vars([
        ("JWT_OLD", OsStr::from_bytes(&old)),
        ("JWT_NEW", OsStr::from_bytes(&new)),
        ("JWT_SHORT", OsStr::from_bytes(&new[..20])),
    ]);
    site.start_with_env(CONFIG, env.clone()).await;
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let old_token = hs256_with_key(&old, &header, &claims("alice"));
    let new_token = hs256_with_key(&new, &header, &claims("bob"));
    assert_eq!(site.get("/api/games", Some(&old_token)).await.status, 200);
    assert_eq!(site.get("/api/games", Some(&new_token)).await.status, 401);

    site.write(CONFIG, &names("[\"JWT_NEW\", \"JWT_OLD\"]"));
    site.wait_for_status("/api/games", Some(&new_token), 200)
        .await;
    assert_eq!(site.get("/api/games", Some(&old_token)).await.status, 200);

    // Too short is refused for its length, naming the variable, and the
    // running secrets stay.
    site.write(CONFIG, &names("\"JWT_SHORT\""));
    let (state, path) = (site.running().state().clone(), site.dir().join(CONFIG));
    let refused = tokio::task::spawn_blocking(move || {
        tollgate::app::reload_file(&state, &path, &env).map(|r| r.generation)
    })
    .await
    .expect("the reload task");
    let message = refused.expect_err("20 bytes are too few").to_string();
    assert!(
        message.contains("environment variable JWT_SHORT is 20 bytes"),
        "{message}"
    );
    assert!(message.contains("HS256 needs at least 32"), "{message}");
    site.wait_for_reloads("error", 1.0).await;
    assert_eq!(site.get("/api/games", Some(&new_token)).await.status, 200);
    site.shutdown().await;
}

// --- under load ---------------------------------------------------------------

/// A secret both configs of the load test hold.
const SHARED: &str = "shared-hmac-secret-valid-under-both-03";
const CLIENTS: usize = 4;
const REQUESTS_PER_CLIENT: usize = 500;
const RELOADS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_reloads_under_steady_traffic_fail_no_request() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("jwks.json", &keys().jwks().to_string());
    site.write("deny.txt", "sub:mallory\n");
    let provider = format!(
        "algorithms = [\"HS256\", \"RS256\", \"ES256\"]\nsecret_file = \"{}\"\njwks_file = \"{}\"",
        site.file("hmac.key"),
        site.file("jwks.json")
    );
    // Two configs and two key files whose accepted token sets overlap:
    // tokens signed with SHARED, or with the RSA key, pass under both.
    let first = (
        config(upstream.addr(), "", &provider, ""),
        format!("{SHARED}\n{SECRET_OLD}\n"),
    );
    let revoke = format!(
        "revoke = {{ issued_before = \"2001-01-01T00:00:00Z\", denylist_file = \"{}\" }}",
        site.file("deny.txt")
    );
    let second = (
        config(
            upstream.addr(),
            "mode = \"enforce\"",
            &format!("{provider}\n{revoke}"),
            OPEN_BETA,
        ),
        format!("{SECRET_NEW}\n{SHARED}\n"),
    );
    site.write("hmac.key", &first.1);
    site.write(CONFIG, &first.0);
    site.start(CONFIG, &[]).await;

    let tokens: Arc<[String]> = Arc::from(vec![
        hs256(SHARED, "alice"),
        keys().mint("RS256", &claims("bob")),
        keys().mint("ES256", &claims("carol")),
    ]);
    let url = site.url("/api/games");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|at| tokio::spawn(steady_client(url.clone(), tokens.clone(), at)))
        .collect();

    // Reload through the same function the watcher calls, on a steady
    // beat; the watcher reacts to the same writes in between.
    let state = site.running().state().clone();
    let path = site.dir().join(CONFIG);
    for at in 0..RELOADS {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (text, secrets) = if at % 2 == 0 { &second } else { &first };
        site.write("hmac.key", secrets);
        site.write(CONFIG, text);
        let (state, path) = (state.clone(), path.clone());
        let reloaded = tokio::task::spawn_blocking(move || {
            tollgate::app::reload_file(&state, &path, &env_of(&[])).map(|r| r.generation)
        })
        .await
        .expect("the reload task ends");
        assert!(reloaded.is_ok(), "reload {at}: {reloaded:?}");
    }

    let mut failures = Vec::new();
    let mut answered = 0;
    for client in clients {
        let (count, failed) = client.await.expect("the client ends");
        answered += count;
        failures.extend(failed);
    }
    assert_eq!(answered, CLIENTS * REQUESTS_PER_CLIENT);
    assert!(
        failures.is_empty(),
        "{} of {answered} requests failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(site.reloads("ok").await >= RELOADS as f64);
    assert_eq!(site.reloads("error").await, 0.0);
    site.shutdown().await;
}

/// Sends [`REQUESTS_PER_CLIENT`] GETs on one pooled client, about 6 ms
/// apart, cycling through `tokens`; returns how many were answered and the
/// status and body of each that was not a 200.
async fn steady_client(url: String, tokens: Arc<[String]>, offset: usize) -> (usize, Vec<String>) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut failures = Vec::new();
    for at in 0..REQUESTS_PER_CLIENT {
        let token = &tokens[(at + offset) % tokens.len()];
        let request = Request::get(&url)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let response = tokio::time::timeout(binary::DEADLINE, client.request(request))
            .await
            .expect("an answer within the deadline")
            .expect("the request is sent");
        let status = response.status();
        let body = response.into_body().collect().await.expect("a body");
        if status != 200 {
            let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
            failures.push(format!("{status}: {body}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (REQUESTS_PER_CLIENT, failures)
}

// --- the real binary ----------------------------------------------------------

/// Rewrites a file by renaming a new one over it.
fn replace_file(path: &std::path::Path, text: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).expect("write");
    std::fs::rename(&temp, path).expect("rename");
}

/// Reads one reload counter from the binary's admin listener.
async fn binary_reloads(served: &Served, result: &str) -> f64 {
    let metrics = binary::get(&served.admin_url("/metrics"), &[]).await.text();
    metric_matching(
        &metrics,
        "tollgate_config_reloads_total",
        &[("result", result)],
    )
}

#[tokio::test]
async fn the_binary_reloads_on_sighup_and_file_changes_and_says_why_not() {
    let upstream = Upstream::start().await;
    let original = binary::config("reload-test", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = Served::start(&original, &[(SECRET_ENV, &secret)]);
    let path = served.config_path();
    let wait = |result: &'static str, count: f64| {
        let served = &served;
        async move {
            let what = format!("{count} reloads with result {result}");
            eventually(&what, || async {
                binary_reloads(served, result).await >= count
            })
            .await;
        }
    };

    // SIGHUP with nothing changed still reloads: the operator asked.
    served.signal("HUP");
    wait("ok", 1.0).await;

    // A bad value, then an unknown key: both refused, named by line.
    let secret_line = format!("secret_env = \"{SECRET_ENV}\"");
    let bad_value = original.replace(
        &secret_line,
        &format!("{secret_line}\nleeway = \"forever\""),
    );
    replace_file(&path, &bad_value);
    wait("error", 1.0).await;
    let unknown = original.replace(&secret_line, &format!("{secret_line}\nleway = \"5s\""));
    replace_file(&path, &unknown);
    wait("error", 2.0).await;
    let answer = binary::get(&served.url("/api/games"), &[]).await;
    assert_eq!(answer.status, 401, "the running config still enforces");

    // A restart-only change beside a live one.
    let report_only = original
        .replace(
            "service = \"reload-test\"",
            "service = \"reload-test\"\nmode = \"report_only\"",
        )
        .replace("drain_timeout = \"2s\"", "drain_timeout = \"7s\"");
    replace_file(&path, &report_only);
    wait("ok", 2.0).await;
    let answer = binary::get(&served.url("/api/games"), &[]).await;
    assert_eq!(
        answer.status, 200,
        "report-only forwards a request without a token"
    );

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    let lines = output.json_lines();
    let with = |message: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|line| line["message"] == message)
            .collect()
    };

    assert_eq!(with("config reloaded").len(), 2);
    let refused = with("config reload refused; running config kept");
    assert_eq!(refused.len(), 2, "{lines:?}");
    assert!(refused.iter().all(|line| line["level"] == "WARN"));
    let file = path.display().to_string();
    let leeway_line = binary::line_of(&bad_value, "leeway =");
    assert_eq!(refused[0]["config.key"], "providers[0].leeway");
    let error = refused[0]["error"].as_str().expect("an error field");
    assert!(
        error.starts_with(&format!("{file}:{leeway_line}: providers[0].leeway:")),
        "{error}"
    );
    let leway_line = binary::line_of(&unknown, "leway =");
    let error = refused[1]["error"].as_str().expect("an error field");
    assert!(
        error.starts_with(&format!("{file}:{leway_line}:")),
        "{error}"
    );
    assert!(error.contains("leway"), "{error}");

    let restart = with("setting needs a restart; running value kept");
    assert_eq!(restart.len(), 1, "{lines:?}");
    assert_eq!(restart[0]["config.key"], "listen.drain_timeout");
    assert_eq!(restart[0]["level"], "WARN");

    let access = with("request");
    let reported = access.last().expect("an access line");
    assert_eq!(reported["http.status"], 200);
    assert_eq!(reported["verdict"], "missing");
}

#[tokio::test]
async fn a_reloaded_log_level_silences_and_restores_access_lines() {
    let upstream = Upstream::start().await;
    let original = binary::config("reload-level", &format!("http://{}", upstream.addr()));
    let secret = keys().secret_text();
    let served = Served::start(&original, &[(SECRET_ENV, &secret)]);
    let path = served.config_path();
    let quiet = original.replace("level = \"info\"", "level = \"warn\"");
    assert_ne!(quiet, original, "the config names its level");

    // One request per level; each sends its own request id to find it by.
    let mut sent = Vec::new();
    for (step, config) in [(1.0, &quiet), (2.0, &original)] {
        let id = format!("level-before-{step}");
        binary::get(&served.url("/health-check"), &[("x-request-id", &id)]).await;
        sent.push(id);
        replace_file(&path, config);
        eventually("the reload", || async {
            binary_reloads(&served, "ok").await >= step
        })
        .await;
    }
    let id = "level-after".to_owned();
    binary::get(&served.url("/health-check"), &[("x-request-id", &id)]).await;
    sent.push(id);

    let output = served.terminate();
    assert_eq!(output.code(), Some(0), "stderr: {}", output.stderr);
    let logged: Vec<&str> = output
        .json_lines()
        .iter()
        .filter(|line| line["message"] == "request")
        .filter_map(|line| line["request_id"].as_str().map(str::to_owned))
        .map(|id| {
            sent.iter()
                .find(|sent| **sent == id)
                .map_or("other", |s| s.as_str())
        })
        .collect();
    // At info, at warn (silent), and at info again.
    assert_eq!(logged, ["level-before-1", "level-after"], "{sent:?}");
}
