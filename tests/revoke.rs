//! Revocation (a cut-off time and a denylist, both reloaded while serving)
//! and report-only mode (refusals counted and logged, requests forwarded
//! without identity).

mod support;

use std::time::{Duration, SystemTime};

use serde_json::json;

use support::reload::{CONFIG, Watched, config};
use support::{Upstream, claims, keys, metric_matching, now, verdicts};

/// Provider lines for HS256 with the test keys' secret in `hmac.key`.
fn provider(site: &Watched, extra: &str) -> String {
    format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"\n{extra}",
        site.file("hmac.key")
    )
}

/// Starts a watched tollgate with `top` keys, `extra` provider lines and
/// `rest` after the provider.
async fn start(upstream: &Upstream, top: &str, extra: &str, rest: &str) -> Watched {
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    site.write("deny.txt", "# nothing revoked yet\n");
    let text = config(upstream.addr(), top, &provider(&site, extra), rest);
    site.write(CONFIG, &text);
    site.start(CONFIG, &[]).await;
    site
}

/// A good HS256 token for `sub`, with `iat` moved by `age` seconds into
/// the past (`None`: no `iat` at all) and an optional `jti`.
fn token(sub: &str, age: Option<u64>, jti: Option<&str>) -> String {
    let mut claims = claims(sub);
    match age {
        Some(age) => claims["iat"] = json!(now() - age),
        None => {
            claims.as_object_mut().map(|claims| claims.remove("iat"));
        }
    }
    if let Some(jti) = jti {
        claims["jti"] = json!(jti);
    }
    keys().mint("HS256", &claims)
}

/// An RFC 3339 UTC time `ago` seconds before now.
fn rfc3339_ago(ago: u64) -> String {
    let at = SystemTime::now() - Duration::from_secs(ago);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn requests(metrics: &str, rule: &str, outcome: &str) -> f64 {
    metric_matching(
        metrics,
        "tollgate_requests_total",
        &[("rule", rule), ("outcome", outcome)],
    )
}

// --- revocation ---------------------------------------------------------------

#[tokio::test]
async fn issued_before_refuses_older_tokens_and_is_hot_reloadable() {
    let upstream = Upstream::start().await;
    let site = start(&upstream, "", "", "").await;
    let old = token("alice", Some(600), None);
    let fresh = token("bob", Some(0), None);
    let undated = token("carol", None, None);
    for token in [&old, &fresh, &undated] {
        assert_eq!(site.get("/api/games", Some(token)).await.status, 200);
    }

    let cut_off = format!("revoke = {{ issued_before = \"{}\" }}", rfc3339_ago(60));
    let text = config(upstream.addr(), "", &provider(&site, &cut_off), "");
    site.write(CONFIG, &text);
    site.wait_for_status("/api/games", Some(&old), 401).await;

    let answer = site.get("/api/games", Some(&old)).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            r#"Bearer realm="game-api", error="invalid_token", error_description="the token has been revoked""#
        )
    );
    assert_eq!(answer.json()["error"], "invalid_token");
    assert_eq!(site.get("/api/games", Some(&fresh)).await.status, 200);
    let answer = site.get("/api/games", Some(&undated)).await;
    assert_eq!(
        answer.status, 401,
        "no iat, so not provably after the cut-off"
    );
    assert!(verdicts(&site.metrics().await, "accounts", "revoked") >= 3.0);

    // Lifting the cut-off is a reload too.
    let text = config(upstream.addr(), "", &provider(&site, ""), "");
    site.write(CONFIG, &text);
    site.wait_for_status("/api/games", Some(&old), 200).await;
    site.shutdown().await;
}

#[tokio::test]
async fn a_denylist_refuses_by_jti_and_by_sub_even_a_cached_token() {
    let upstream = Upstream::start().await;
    let site = start(&upstream, "", "", "").await;
    let denylist = format!(
        "revoke = {{ denylist_file = \"{}\" }}",
        site.file("deny.txt")
    );
    let text = config(upstream.addr(), "", &provider(&site, &denylist), "");
    site.write(CONFIG, &text);
    site.wait_for_reloads("ok", 1.0).await;

    let stolen = token("alice", Some(0), Some("a-1"));
    let other = token("alice", Some(0), Some("a-2"));
    let bobs = token("bob", Some(0), Some("b-1"));
    for token in [&stolen, &stolen, &other, &bobs] {
        assert_eq!(site.get("/api/games", Some(token)).await.status, 200);
    }
    let hits = |metrics: &str| support::metric_value(metrics, "tollgate_cache_hits_total");
    assert!(
        hits(&site.metrics().await) >= 1.0,
        "the stolen token was cached"
    );

    // Only the denylist file changes: it is watched like the config.
    site.write("deny.txt", "# laptop stolen\njti:a-1\n");
    site.wait_for_status("/api/games", Some(&stolen), 401).await;
    let before = hits(&site.metrics().await);
    let answer = site.get("/api/games", Some(&stolen)).await;
    assert_eq!(answer.status, 401, "refused on a cache hit too");
    assert!(hits(&site.metrics().await) > before, "that was a cache hit");
    assert_eq!(site.get("/api/games", Some(&other)).await.status, 200);

    site.write("deny.txt", "jti:a-1\nsub:bob\n");
    site.wait_for_status("/api/games", Some(&bobs), 401).await;
    assert_eq!(site.get("/api/games", Some(&other)).await.status, 200);

    // A denylist with a bad line is refused like any bad config.
    site.write("deny.txt", "jti:a-1\nsub:bob\nuser:carol\n");
    site.wait_for_reloads("error", 1.0).await;
    assert_eq!(site.get("/api/games", Some(&bobs)).await.status, 401);
    assert!(verdicts(&site.metrics().await, "accounts", "revoked") >= 4.0);
    site.shutdown().await;
}

// --- report-only ---------------------------------------------------------------

const ADMIN_RULE: &str = "[[rules]]\npath_prefix = \"/admin/\"\nroles = [\"admin\"]\n";

#[tokio::test]
async fn report_only_forwards_refusals_without_identity_and_counts_them() {
    let upstream = Upstream::start().await;
    let site = start(&upstream, "mode = \"report_only\"", "", ADMIN_RULE).await;
    let good = token("alice", Some(0), None);
    let (signed, _) = good.rsplit_once('.').expect("three segments");
    let forged = format!("{signed}.AAAA");

    // A bad token, with identity headers the caller made up.
    let answer = site
        .get_with(
            "/api/games",
            Some(&forged),
            &[("x-user-id", "admin"), ("X_User_Roles", "admin")],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.upstream_saw("x-user-id").is_empty());
    assert!(answer.upstream_saw("x-user-roles").is_empty());
    assert!(answer.upstream_saw("x_user_roles").is_empty());

    let answer = site.get("/api/games", None).await;
    assert_eq!(answer.status, 200, "no token");
    assert!(answer.upstream_saw("x-user-id").is_empty());

    // A good token without the role: forwarded, but as nobody.
    let answer = site.get("/admin/users", Some(&good)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.upstream_saw("x-user-id").is_empty());

    let answer = site.get("/api/games", Some(&good)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);

    // A path that cannot be matched safely is still refused.
    let answer = site.get("/api/a%2Fb", None).await;
    assert_eq!(answer.status, 400);

    let metrics = site.metrics().await;
    assert_eq!(requests(&metrics, "default", "reported"), 2.0);
    assert_eq!(requests(&metrics, "/admin/", "reported"), 1.0);
    assert_eq!(requests(&metrics, "default", "forwarded"), 1.0);
    assert_eq!(verdicts(&metrics, "accounts", "bad_signature"), 1.0);
    assert_eq!(verdicts(&metrics, "none", "missing"), 1.0);
    assert_eq!(verdicts(&metrics, "accounts", "insufficient_role"), 1.0);
    assert_eq!(verdicts(&metrics, "accounts", "ok"), 1.0);
    site.shutdown().await;
}

#[tokio::test]
async fn a_rule_may_report_while_the_rest_enforces_and_the_mode_reloads() {
    let upstream = Upstream::start().await;
    let beta = |mode: &str| format!("[[rules]]\npath_prefix = \"/beta/\"\nmode = \"{mode}\"\n");
    let site = start(&upstream, "", "", &beta("report_only")).await;

    assert_eq!(site.get("/beta/games", None).await.status, 200);
    assert_eq!(site.get("/api/games", None).await.status, 401);

    let text = config(upstream.addr(), "", &provider(&site, ""), &beta("enforce"));
    site.write(CONFIG, &text);
    site.wait_for_status("/beta/games", None, 401).await;

    // The top-level mode does not override a rule's own.
    let text = config(
        upstream.addr(),
        "mode = \"report_only\"",
        &provider(&site, ""),
        &beta("enforce"),
    );
    site.write(CONFIG, &text);
    site.wait_for_status("/api/games", None, 200).await;
    assert_eq!(site.get("/beta/games", None).await.status, 401);

    // At least the first request; the polls before each reload landed
    // add more.
    let metrics = site.metrics().await;
    assert!(requests(&metrics, "/beta/", "reported") >= 1.0);
    assert!(requests(&metrics, "/beta/", "unauthorized") >= 1.0);
    site.shutdown().await;
}
