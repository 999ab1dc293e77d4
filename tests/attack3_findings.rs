//! Attack run 3, against the newest parts (remote JWKS, hot reload,
//! revocation, report-only, issuer shapes, x509 maps): the attacks that got
//! somewhere.
//!
//! Each test failed against the build the run attacked and asserts the
//! fixed behaviour, so it now guards against the finding coming back. The
//! number in a test's name is the finding's number in the report.
//!
//! 1. a reload that only retunes a `jwks_uri` (refresh interval, timeout,
//!    ...) throws its good keys away: the provider's tokens get 503 until
//!    the new source's first fetch, for ever if the issuer is down then;
//! 2. after the config's symlink is pointed at a file in another
//!    directory, edits there are never seen (no reload, no error);
//! 3. a denylist line written `jti: value` (a space after the colon) is
//!    taken as the value " value": the reload lands, nothing is revoked;
//! 4. on-demand refetches ignore the failure backoff: junk key ids make a
//!    sidecar hit an issuer that is down every `min_refetch_interval`;
//! 5. durations that `tollgate check` accepts overflow the refresh
//!    arithmetic and kill the refresh task (a panic): the provider serves
//!    503 for ever, or a key removed upstream is trusted for ever;
//! 6. a config rewritten in place is reloaded half-written when the
//!    writer pauses: a rule that lost its `roles` line lets any token in;
//! 7. (design, kept) a 200 answer whose key set is empty is treated as an
//!    outage, as the key-lifecycle issue asks, so the last good keys keep
//!    verifying for `max_stale`; no test here, `jwks_remote.rs` pins the
//!    chosen behaviour;
//! 8. a file named in a directory that does not exist yet is never
//!    watched, even once the directory exists: the new denylist never
//!    applies;
//! 9. a named file that blocks on read (a FIFO here, a hung mount in real
//!    life) stalls the reloader for ever, holding the publishing lock, and
//!    makes shutdown wait for it;
//! 10. the `config reloaded` line does not name changes to `jwks_uri`,
//!     `require_sub`, `audience_claim` or `roles_header`.
//!
//! Attacks that tollgate blocked are in `attack3_blocked.rs`.

mod support;

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use support::jwks_server::{JwksServer, RemoteKey, Reply, jwks_of};
use support::reload::{CONFIG, Watched, config};
use support::{Harness, Tollgate, Upstream, binary, claims, keys};

/// Intervals that keep the background refresh out of the way.
const STILL: &str = r#"jwks_refresh_interval = "1h"
min_refetch_interval = "10s"
jwks_fetch_timeout = "500ms""#;

/// Intervals short enough for a test.
const QUICK: &str = r#"jwks_refresh_interval = "200ms"
min_refetch_interval = "100ms"
jwks_fetch_timeout = "500ms"
max_stale = "1h""#;

/// A duration `humantime` parses and the config accepts (about 1.26e19 s,
/// under `u64::MAX`), of which even the 90 % the jitter may take does not
/// fit an `i64`: more than any `Instant` can add.
const HUGE: &str = "400000000000y";

/// A harness whose one provider takes ES256 keys from `url` only.
fn remote(upstream: &Upstream, url: &str, lines: &str) -> Harness {
    Harness::new(upstream.addr())
        .without_secret()
        .without_jwks_file()
        .with_algorithms(&["ES256"])
        .with_provider_lines(&format!("jwks_uri = \"{url}\"\n{lines}"))
}

/// Sends a request with a fresh token (never cached) from `key`.
async fn call(tollgate: &Tollgate, key: &RemoteKey) -> StatusCode {
    let token = key.mint(&claims(&uuid::Uuid::new_v4().to_string()));
    tollgate
        .get("/api/games")
        .bearer(&token)
        .send()
        .await
        .status
}

async fn ready(tollgate: &Tollgate) -> StatusCode {
    let url = format!("http://{}/ready", tollgate.admin_addr());
    binary::get(&url, &[]).await.status
}

/// Polls `check` every 25 ms; false when it never held within `limit`.
async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

// --- Finding 1: retuning a jwks_uri on reload drops its keys ---------------

/// The issuer is down at the moment an operator changes only how often its
/// keys are refreshed. The running source holds good keys (`max_stale` is
/// 24 h), but the reload replaces it with an empty one, publishes that at
/// once, and the new one cannot fetch: every token of the provider gets
/// 503 and `/ready` fails until the issuer is back.
#[tokio::test]
async fn finding_1_a_reload_that_retunes_a_jwks_uri_keeps_its_good_keys() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let mut server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = remote(&upstream, &server.url(), STILL).start().await;
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);

    server.go_down();
    // Still up to 24 h of stale-if-error, as the README promises.
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);

    let retuned = STILL.replace("\"1h\"", "\"30m\"");
    tollgate.reload(remote(&upstream, &server.url(), &retuned));
    let status = call(&tollgate, &key).await;
    let readiness = ready(&tollgate).await;
    assert_eq!(
        (status, readiness),
        (StatusCode::OK, StatusCode::OK),
        "a reload that changed only jwks_refresh_interval threw away keys that were good"
    );
    tollgate.shutdown().await;
}

/// Even with a healthy (if slow) issuer, the same reload publishes a
/// snapshot without the provider's keys, and requests in that window get
/// 503: a reload drops requests both configs would let through.
#[tokio::test]
async fn finding_1_a_reload_that_retunes_a_jwks_uri_drops_no_request() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let tollgate = remote(&upstream, &server.url(), STILL).start().await;
    assert_eq!(call(&tollgate, &key).await, StatusCode::OK);

    server.with_delay(Some(Duration::from_millis(400)));
    let retuned = STILL.replace("\"1h\"", "\"30m\"");
    tollgate.reload(remote(&upstream, &server.url(), &retuned));
    assert_eq!(
        call(&tollgate, &key).await,
        StatusCode::OK,
        "a request right after the reload was refused although both configs accept it"
    );
    tollgate.shutdown().await;
}

// --- Finding 2: a retargeted config symlink stops being watched ------------

/// The config is a symlink into a versioned directory (`a/`). The operator
/// points it at `b/` (seen: reload), then edits `b/tollgate.toml` to close
/// a public route again. That edit is never seen: the watch set is only
/// recomputed when the list of file paths changes, and the paths did not.
#[cfg(unix)]
#[tokio::test]
async fn finding_2_edits_after_a_symlink_retarget_are_reloaded() {
    use std::os::unix::fs::symlink;

    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    let provider = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"",
        site.file("hmac.key")
    );
    let closed = config(upstream.addr(), "", &provider, "");
    let open = config(
        upstream.addr(),
        "",
        &provider,
        "[[rules]]\npath_prefix = \"/beta/\"\npublic = true\n",
    );
    for version in ["a", "b"] {
        std::fs::create_dir(site.dir().join(version)).expect("mkdir");
    }
    std::fs::write(site.dir().join("a").join(CONFIG), &closed).expect("write a");
    std::fs::write(site.dir().join("b").join(CONFIG), &open).expect("write b");
    symlink("a/tollgate.toml", site.dir().join(CONFIG)).expect("symlink");
    site.start(CONFIG, &[]).await;
    assert_eq!(site.get("/beta/games", None).await.status, 401);

    // Point the link at b/, atomically.
    let temp = site.dir().join(".link.tmp");
    symlink("b/tollgate.toml", &temp).expect("symlink");
    std::fs::rename(&temp, site.dir().join(CONFIG)).expect("swap the link");
    site.wait_for_status("/beta/games", None, 200).await;

    // Close the beta again, editing the file the link now points at (by
    // write-and-rename, as an editor does).
    let staged = site.dir().join("b").join(".tollgate.toml.tmp");
    std::fs::write(&staged, &closed).expect("write");
    std::fs::rename(&staged, site.dir().join("b").join(CONFIG)).expect("rename");
    let site_ref = &site;
    let closed_again = within(Duration::from_secs(3), || async move {
        site_ref.get("/beta/games", None).await.status == 401
    })
    .await;
    assert!(
        closed_again,
        "the edit of b/tollgate.toml was never reloaded: /beta/ stays public"
    );
    site.shutdown().await;
}

// --- Finding 3: a denylist value with a space after the colon --------------

/// `Denylist::parse` trims the line but not the value, so `jti: stolen-1`
/// lists the id " stolen-1", which no token carries. The file is accepted
/// (the reload counts as ok) and the stolen token keeps working: exactly
/// the "typo quietly leaves a stolen token working" case the parser says
/// it refuses.
#[tokio::test]
async fn finding_3_a_denylist_line_with_a_space_after_the_colon_revokes_or_is_refused() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    site.write("deny.txt", "# nothing yet\n");
    let provider = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"\nrevoke = {{ denylist_file = \"{}\" }}",
        site.file("hmac.key"),
        site.file("deny.txt")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &provider, ""));
    site.start(CONFIG, &[]).await;

    let mut stolen = claims("alice");
    stolen["jti"] = json!("stolen-1");
    let stolen = keys().mint("HS256", &stolen);
    let fired = keys().mint("HS256", &claims("mallory"));
    assert_eq!(site.get("/api/games", Some(&stolen)).await.status, 200);

    site.write("deny.txt", "# incident 42\njti: stolen-1\nsub: mallory\n");
    let s = &site;
    let settled = within(Duration::from_secs(5), || async move {
        s.reloads("ok").await + s.reloads("error").await >= 1.0
    })
    .await;
    assert!(settled, "the denylist change was not reloaded at all");

    let refused_loudly = site.reloads("error").await >= 1.0;
    let stolen_status = site.get("/api/games", Some(&stolen)).await.status;
    let fired_status = site.get("/api/games", Some(&fired)).await.status;
    assert!(
        refused_loudly || (stolen_status == 401 && fired_status == 401),
        "denylist accepted, yet the listed jti got {stolen_status} and the listed sub got \
         {fired_status}"
    );
    site.shutdown().await;
}

// --- Finding 4: on-demand refetches defeat the failure backoff -------------

/// The issuer answers 500. The background refresh backs off (100 ms, 200,
/// 400, 800, 1.6 s, ...), but every token with a made-up kid starts a fetch
/// once `min_refetch_interval` has passed, whatever the backoff says. Over
/// 2 s the background alone makes about 5 fetches; one junk request every
/// 110 ms makes it about 20, and a fleet of sidecars multiplies that
/// against an issuer that is trying to recover.
#[tokio::test]
async fn finding_4_junk_kids_do_not_override_the_failure_backoff() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let lines = r#"jwks_refresh_interval = "5s"
min_refetch_interval = "100ms"
jwks_fetch_timeout = "500ms"
max_stale = "1h""#;
    let tollgate = remote(&upstream, &server.url(), lines).start().await;
    assert_eq!(server.fetches(), 1);

    server.reply(Reply::Status(500));
    let start = server.fetches();
    let until = Instant::now() + Duration::from_secs(2);
    let mut sent = 0;
    while Instant::now() < until && sent < 40 {
        let token = key.mint_as(&uuid::Uuid::new_v4().to_string(), &claims("mallory"));
        let answer = tollgate.get("/api/games").bearer(&token).send().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(110)).await;
    }
    let during = server.fetches() - start;
    assert!(
        during <= 8,
        "{during} fetches of a failing issuer in 2 s ({sent} junk requests); the backoff \
         alone allows about 5"
    );
    tollgate.shutdown().await;
}

// --- Finding 5: accepted durations overflow and kill the refresh task ------

/// `jwks_refresh_interval = "400000000000y"` passes the config check. The
/// first fetch succeeds, then `now + delay` overflows `Instant` and panics
/// inside `store`, after the keys but before `fetched_at` were recorded: the
/// provider has no keys, its tokens get 503, and the refresh task panics
/// again on every try.
#[tokio::test]
async fn finding_5_a_huge_refresh_interval_is_refused_or_works() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("remote-1");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let lines = format!("jwks_refresh_interval = \"{HUGE}\"");
    let harness = remote(&upstream, &server.url(), &lines);
    let text = harness.render(std::env::temp_dir().as_path());
    if tollgate::config::from_str(&text, "test.toml").is_err() {
        return; // Refused at load time: fixed.
    }
    let tollgate = harness.start().await;
    assert_eq!(server.fetches(), 1, "the endpoint was fetched");
    assert_eq!(
        call(&tollgate, &key).await,
        StatusCode::OK,
        "the fetch succeeded, yet the provider has no keys (the refresh task panicked)"
    );
    tollgate.shutdown().await;
}

/// `max_stale = "400000000000y"` (an operator's "never go stale") passes
/// the check too. The background task panics computing when the keys go
/// stale, so it never refreshes again: a key the issuer withdrew (say,
/// because it leaked) keeps verifying for ever.
#[tokio::test]
async fn finding_5_a_huge_max_stale_is_refused_or_keeps_refreshing() {
    let upstream = Upstream::start().await;
    let leaked = RemoteKey::generate("leaked");
    let next = RemoteKey::generate("next");
    let server = JwksServer::start(jwks_of(&[&leaked, &next])).await;
    let lines = QUICK.replace("max_stale = \"1h\"", &format!("max_stale = \"{HUGE}\""));
    let harness = remote(&upstream, &server.url(), &lines);
    let text = harness.render(std::env::temp_dir().as_path());
    if tollgate::config::from_str(&text, "test.toml").is_err() {
        return; // Refused at load time: fixed.
    }
    let tollgate = harness.start().await;
    assert_eq!(call(&tollgate, &leaked).await, StatusCode::OK);

    server.reply(Reply::Jwks(jwks_of(&[&next])));
    let (t, leaked) = (&tollgate, &leaked);
    let withdrawn = within(Duration::from_secs(3), || async move {
        call(t, leaked).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        withdrawn,
        "15 refresh intervals later the withdrawn key still verifies ({} fetches in all)",
        server.fetches()
    );
    tollgate.shutdown().await;
}

// --- Finding 6: a config written in place is reloaded half-written ---------

/// The operator's tool rewrites the config in place and pauses mid-way
/// (a slow disk, a network filesystem, a template engine streaming its
/// output). Every `write` is a change event; 200 ms of quiet later the
/// half-written file is reloaded, and it is valid TOML: the `/admin/` rule
/// without its `roles` line lets any valid token in.
#[tokio::test]
async fn finding_6_a_half_written_config_is_never_applied() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    let text = format!(
        r#"service = "game-api"
[listen]
address = "127.0.0.1:0"
[admin]
address = "127.0.0.1:0"
[upstream]
url = "http://{upstream}"
[log]
level = "warn"
access = false
[[providers]]
name = "accounts"
issuer = "{issuer}"
audiences = ["{audience}"]
algorithms = ["HS256"]
secret_file = "{secret}"
[[rules]]
path_prefix = "/admin/"
roles = ["admin"]
"#,
        upstream = upstream.addr(),
        issuer = support::ISSUER,
        audience = support::AUDIENCE,
        secret = site.file("hmac.key"),
    );
    site.write(CONFIG, &text);
    site.start(CONFIG, &[]).await;
    let player = keys().mint("HS256", &claims("mallory"));
    assert_eq!(site.get("/admin/users", Some(&player)).await.status, 403);

    let (head, tail) = text.split_at(text.find("roles = ").expect("roles line"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(site.dir().join(CONFIG))
        .expect("open in place");
    file.write_all(head.as_bytes()).expect("first half");
    file.flush().expect("flush");

    // The writer pauses for 1.2 s; watch what /admin/ answers meanwhile.
    let mut statuses = Vec::new();
    let pause = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < pause {
        statuses.push(
            site.get("/admin/users", Some(&player))
                .await
                .status
                .as_u16(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    file.write_all(tail.as_bytes()).expect("second half");
    drop(file);

    assert!(
        statuses.iter().all(|status| *status == 403),
        "a player reached /admin/ while the config was half-written: {statuses:?}"
    );
    site.shutdown().await;
}

// --- Finding 8: a file in a directory created later is never watched -------

/// The operator adds `revoke.denylist_file = ".../revoked/deny.txt"` before
/// creating `revoked/`. The reload is refused (file missing), as it should
/// be. The directory is then created and, a moment later, the denylist
/// written: the directory's failed watch was recorded as done and never
/// retried, so the new file is never seen and nothing is revoked until a
/// SIGHUP.
#[tokio::test]
async fn finding_8_a_denylist_in_a_directory_created_later_is_picked_up() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    let base = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"",
        site.file("hmac.key")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &base, ""));
    site.start(CONFIG, &[]).await;
    let fired = keys().mint("HS256", &claims("mallory"));
    assert_eq!(site.get("/api/games", Some(&fired)).await.status, 200);

    let with_denylist = format!(
        "{base}\nrevoke = {{ denylist_file = \"{}\" }}",
        site.file("revoked/deny.txt")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &with_denylist, ""));
    site.wait_for_reloads("error", 1.0).await;

    std::fs::create_dir(site.dir().join("revoked")).expect("mkdir");
    // The directory's own event sets off a reload, refused again.
    site.wait_for_reloads("error", 2.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let staged = site.dir().join("revoked").join(".deny.tmp");
    std::fs::write(&staged, "sub:mallory\n").expect("write");
    std::fs::rename(&staged, site.dir().join("revoked").join("deny.txt")).expect("rename");

    let (s, fired) = (&site, &fired);
    let revoked = within(Duration::from_secs(3), || async move {
        s.get("/api/games", Some(fired)).await.status == 401
    })
    .await;
    assert!(
        revoked,
        "the denylist was never loaded: mallory still gets in"
    );
    site.shutdown().await;
}

// --- Finding 9: a named file that never answers stalls reloads for ever ----

/// `O_NONBLOCK` on Linux: opening a FIFO's write end fails at once (ENXIO)
/// instead of waiting when nobody reads it.
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = 0o4000;

/// Lets a reader blocked on the FIFO at `fifo` go: puts an empty regular
/// file in its place (so no later read blocks), then opens and closes the
/// write end, which gives the reader an empty file. Never blocks.
#[cfg(target_os = "linux")]
fn release_fifo(fifo: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(fifo);
    let staged = fifo.with_extension("plain");
    // Once shutdown has finished, the site's directory is gone with it:
    // nothing is left to release.
    if std::fs::write(&staged, "").is_ok() {
        std::fs::rename(&staged, fifo).expect("replace the fifo");
    }
    drop(writer);
}

/// A reload reads every named file with a plain blocking read, with no
/// bound in time or size and no check that it is a regular file. Here a
/// denylist path names a FIFO (standing in for a hung network mount, or
/// `/dev/stdin`): the reload blocks in `open` while holding the publishing
/// lock, the reloader never comes back, the operator's fix of the config
/// is never applied, and shutdown waits for the stuck reload.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_9_a_file_that_never_answers_does_not_stall_reloads_for_ever() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    let base = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"",
        site.file("hmac.key")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &base, ""));
    site.start(CONFIG, &[]).await;
    assert_eq!(site.get("/beta/games", None).await.status, 401);

    let fifo = site.dir().join("deny.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let with_fifo = format!(
        "{base}\nrevoke = {{ denylist_file = \"{}\" }}",
        site.file("deny.fifo")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &with_fifo, ""));
    tokio::time::sleep(Duration::from_millis(800)).await;

    // The operator sees the mistake and writes a good config that also
    // opens the beta.
    let fixed = config(
        upstream.addr(),
        "",
        &base,
        "[[rules]]\npath_prefix = \"/beta/\"\npublic = true\n",
    );
    site.write(CONFIG, &fixed);
    let s = &site;
    let applied = within(Duration::from_secs(3), || async move {
        s.get("/beta/games", None).await.status == 200
    })
    .await;

    let mut stopping = tokio::spawn(site.shutdown());
    let stopped_in_time = tokio::time::timeout(Duration::from_secs(3), &mut stopping)
        .await
        .is_ok();
    release_fifo(&fifo);
    if !stopped_in_time {
        tokio::time::timeout(Duration::from_secs(10), stopping)
            .await
            .expect("shutdown once the fifo is released")
            .expect("shutdown task");
    }

    assert!(
        applied && stopped_in_time,
        "fixed config applied: {applied}; shutdown within 3 s (drain is 2 s): {stopped_in_time}"
    );
}

// --- Finding 10: the reload log does not name security-relevant changes ----

/// `config reloaded` lists the keys that changed, and operators audit
/// reloads by it. Pointing a provider's `jwks_uri` at another server, or
/// turning off `require_sub`, moving the audience claim or the roles
/// header, changes who gets in, yet `changed_keys` (the list logged)
/// compares only some provider fields, and the line reads "no setting;
/// files re-read".
#[test]
fn finding_10_the_reload_log_names_every_provider_change() {
    let base = r#"
[upstream]
url = "http://127.0.0.1:8000"
[[providers]]
name = "accounts"
issuer = "https://accounts.test"
audiences = ["api"]
algorithms = ["ES256"]
jwks_uri = "https://accounts.test/jwks"
"#;
    let old = tollgate::config::from_str(base, "old.toml").expect("valid");
    let edits = [
        (
            "jwks_uri",
            base.replace("accounts.test/jwks", "attacker.test/jwks"),
        ),
        ("require_sub", format!("{base}require_sub = false\n")),
        (
            "audience_claim",
            format!("{base}audience_claim = \"client_id\"\n"),
        ),
        (
            "roles_header",
            format!("{base}roles_header = \"X-Roles\"\n"),
        ),
    ];
    let mut unnamed = Vec::new();
    for (field, text) in &edits {
        let new = tollgate::config::from_str(text, "new.toml").expect("valid");
        let changed = tollgate::config::diff::changed_keys(&old, &new);
        if changed.is_empty() {
            unnamed.push(*field);
        }
    }
    assert!(
        unnamed.is_empty(),
        "reloads that changed {unnamed:?} are logged as changing no setting"
    );
}
