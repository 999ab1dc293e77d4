//! TLS end to end (issue 6): tollgate terminating HTTPS with HTTP/1.1 and,
//! through ALPN, HTTP/2; a renewed certificate picked up by new
//! connections while a broken one is refused; and forwarding to an `https`
//! upstream or account store, trusted through `ca_file`, with a client
//! certificate when the service demands one.
//!
//! Every certificate comes from a CA made by rcgen for the test; tollgate
//! reads them from files, as it would in production.

mod support;

use std::net::SocketAddr;

use http::{StatusCode, Version};
use serde_json::json;
use tollgate::env::Env;

use support::reload::{Watched, eventually};
use support::tls::{Leaf, TestPki, TlsUpstream, https_get};
use support::{AUDIENCE, ISSUER, Upstream, claims, hs256_with_key};

/// The HMAC secret tollgate reads from `TEST_JWT_SECRET`.
const SECRET: &str = "hmac-secret-for-the-tls-tests-0000000001";

const ENV: &[(&str, &str)] = &[("TEST_JWT_SECRET", SECRET)];

/// The config file's name in the test directory.
const CONFIG: &str = "tollgate.toml";

/// ALPN offers: HTTP/1.1 only, and HTTP/2 first as browsers offer it.
const HTTP1: &[&[u8]] = &[b"http/1.1"];
const H2_FIRST: &[&[u8]] = &[b"h2", b"http/1.1"];

fn token(sub: &str) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    hs256_with_key(SECRET.as_bytes(), &header, &claims(sub))
}

/// Renders a config. With `listen_tls`, the listener serves `cert.pem` and
/// `key.pem` from the test directory. `upstream` is the body of the
/// `[upstream]` table; `tables` come before the providers.
fn config(site: &Watched, listen_tls: bool, upstream: &str, tables: &str) -> String {
    let listen_tls = if listen_tls {
        format!(
            "[listen.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            site.file("cert.pem"),
            site.file("key.pem")
        )
    } else {
        String::new()
    };
    format!(
        r#"service = "game-api"
[listen]
address = "127.0.0.1:0"
drain_timeout = "2s"
{listen_tls}
[admin]
address = "127.0.0.1:0"

[upstream]
timeout = "5s"
{upstream}

{tables}

[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256"]
secret_env = "TEST_JWT_SECRET"

[providers.claim_to_headers]
"X-User-Id" = "sub"

[log]
level = "warn"
access = false
"#
    )
}

/// Starts tollgate with the reloader, terminating TLS with `leaf`, in
/// front of `upstream`.
async fn start_https(leaf: &Leaf, upstream: &Upstream) -> Watched {
    let mut site = Watched::new();
    write_leaf(&site, leaf);
    let upstream = format!("url = \"http://{}\"", upstream.addr());
    site.write(CONFIG, &config(&site, true, &upstream, ""));
    site.start(CONFIG, ENV).await;
    site
}

/// Writes the listener's certificate and key, the key first: a reload
/// that lands between the two sees a mismatch, refuses it, and the next
/// one (after the certificate) succeeds.
fn write_leaf(site: &Watched, leaf: &Leaf) {
    site.write("key.pem", &leaf.key_pem);
    site.write("cert.pem", &leaf.cert_pem);
}

fn proxy_addr(site: &Watched) -> SocketAddr {
    site.running().proxy_addr()
}

// --- the listener ------------------------------------------------------------

#[tokio::test]
async fn https_with_http1_reaches_the_upstream_with_identity_and_proto() {
    let pki = TestPki::generate();
    let upstream = Upstream::start().await;
    let site = start_https(&pki.issue("tollgate"), &upstream).await;

    for offer in [HTTP1, &[]] {
        let token = token("alice");
        let exchange = https_get(
            proxy_addr(&site),
            pki.roots(),
            offer,
            "/games",
            Some(&token),
        )
        .await;
        assert_eq!(exchange.answer.status, StatusCode::OK);
        assert_eq!(exchange.version, Version::HTTP_11);
        let alpn = offer.first().map(|name| name.to_vec());
        assert_eq!(exchange.alpn, alpn);
        assert_eq!(exchange.answer.upstream_saw("x-user-id"), ["alice"]);
        assert_eq!(exchange.answer.upstream_saw("x-forwarded-proto"), ["https"]);
    }

    let refused = https_get(proxy_addr(&site), pki.roots(), HTTP1, "/games", None).await;
    assert_eq!(refused.answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.hits(), 2);
    site.shutdown().await;
}

#[tokio::test]
async fn http2_is_chosen_through_alpn() {
    let pki = TestPki::generate();
    let upstream = Upstream::start().await;
    let site = start_https(&pki.issue("tollgate"), &upstream).await;

    let token = token("bob");
    let exchange = https_get(
        proxy_addr(&site),
        pki.roots(),
        H2_FIRST,
        "/games",
        Some(&token),
    )
    .await;
    assert_eq!(exchange.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(exchange.version, Version::HTTP_2);
    assert_eq!(exchange.answer.status, StatusCode::OK);
    assert_eq!(exchange.answer.upstream_saw("x-user-id"), ["bob"]);
    assert_eq!(exchange.answer.upstream_saw("x-forwarded-proto"), ["https"]);
    site.shutdown().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_listener_gets_no_http_answer() {
    let pki = TestPki::generate();
    let upstream = Upstream::start().await;
    let site = start_https(&pki.issue("tollgate"), &upstream).await;

    let answer = support::raw(
        proxy_addr(&site),
        b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(!answer.starts_with("HTTP/"), "{answer:?}");
    assert_eq!(upstream.hits(), 0);
    site.shutdown().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_shown_to_new_connections() {
    let pki = TestPki::generate();
    let upstream = Upstream::start().await;
    let (first, renewed) = (pki.issue("tollgate-first"), pki.issue("tollgate-renewed"));
    let site = start_https(&first, &upstream).await;
    let seen = https_get(proxy_addr(&site), pki.roots(), HTTP1, "/health", None).await;
    assert_eq!(seen.peer, first.der);

    write_leaf(&site, &renewed);
    eventually("a new connection shows the renewed certificate", || async {
        let seen = https_get(proxy_addr(&site), pki.roots(), HTTP1, "/games", None).await;
        seen.peer == renewed.der
    })
    .await;

    let token = token("carol");
    let exchange = https_get(
        proxy_addr(&site),
        pki.roots(),
        H2_FIRST,
        "/games",
        Some(&token),
    )
    .await;
    assert_eq!(exchange.answer.status, StatusCode::OK);
    assert!(site.reloads("ok").await >= 1.0);
    site.shutdown().await;
}

#[tokio::test]
async fn a_broken_certificate_rewrite_keeps_the_running_one() {
    let pki = TestPki::generate();
    let upstream = Upstream::start().await;
    let first = pki.issue("tollgate-first");
    let site = start_https(&first, &upstream).await;

    // A key that is not PEM, then a certificate whose key is elsewhere.
    site.write("key.pem", "not a key\n");
    site.wait_for_reloads("error", 1.0).await;
    let seen = https_get(proxy_addr(&site), pki.roots(), HTTP1, "/health", None).await;
    assert_eq!(seen.peer, first.der);

    // Certificate first: every state on the way is refused, so no reload
    // can land in between.
    site.write("cert.pem", &pki.issue("tollgate-orphan").cert_pem);
    site.write("key.pem", &first.key_pem);
    site.wait_for_reloads("error", 2.0).await;
    let token = token("dave");
    let exchange = https_get(
        proxy_addr(&site),
        pki.roots(),
        HTTP1,
        "/games",
        Some(&token),
    )
    .await;
    assert_eq!(exchange.peer, first.der);
    assert_eq!(exchange.answer.status, StatusCode::OK);
    assert_eq!(site.reloads("ok").await, 0.0);
    site.shutdown().await;
}

#[tokio::test]
async fn a_missing_certificate_file_is_named_by_check() {
    let site = Watched::new();
    let text = config(&site, true, "url = \"http://127.0.0.1:8000\"", "");
    site.write(CONFIG, &text);
    let env = Env::from_vars([("TEST_JWT_SECRET", SECRET)]);

    let path = site.dir().join(CONFIG);
    let error = tollgate::app::check(&path, &env).expect_err("no certificate file");
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("cert_file"))
        .expect("line");
    let expected = format!(
        "{}:{line}: listen.tls.cert_file: cannot read ",
        path.display()
    );
    assert!(error.to_string().starts_with(&expected), "{error}");
}

// --- forwarding over TLS -----------------------------------------------------

/// Starts a plain-listener tollgate, writing `files` into its directory
/// first; `tables` gives the `[upstream]` body and the tables beside it,
/// and may name the files (see [`Watched::file`]).
async fn start_plain(
    files: &[(&str, &str)],
    tables: impl FnOnce(&Watched) -> (String, String),
) -> Watched {
    let mut site = Watched::new();
    for (name, text) in files {
        site.write(name, text);
    }
    let (upstream, rest) = tables(&site);
    site.write(CONFIG, &config(&site, false, &upstream, &rest));
    site.start(CONFIG, ENV).await;
    site
}

/// The `[upstream]` body for an `https` upstream at `addr` with `lines`.
fn https_upstream(addr: SocketAddr, lines: &str) -> String {
    format!("url = \"https://{addr}\"\n{lines}")
}

#[tokio::test]
async fn an_https_upstream_trusted_through_ca_file_is_reached() {
    let pki = TestPki::generate();
    let upstream = TlsUpstream::start(pki.issue("game").server_config(None)).await;
    let site = start_plain(&[("ca.pem", pki.ca_pem())], |site| {
        let ca = format!("ca_file = \"{}\"", site.file("ca.pem"));
        (https_upstream(upstream.addr(), &ca), String::new())
    })
    .await;

    let answer = site.get("/games", Some(&token("erin"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.upstream_saw("x-user-id"), ["erin"]);
    assert_eq!(answer.upstream_saw("x-forwarded-proto"), ["http"]);
    assert_eq!(upstream.hits(), 1);
    site.shutdown().await;
}

#[tokio::test]
async fn an_https_upstream_not_trusted_gets_502() {
    let pki = TestPki::generate();
    let upstream = TlsUpstream::start(pki.issue("game").server_config(None)).await;
    let site = start_plain(&[], |_| {
        (https_upstream(upstream.addr(), ""), String::new())
    })
    .await;

    let answer = site.get("/games", Some(&token("frank"))).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(upstream.hits(), 0);
    site.shutdown().await;
}

#[tokio::test]
async fn an_upstream_demanding_a_client_certificate_accepts_the_configured_one() {
    let pki = TestPki::generate();
    let upstream = TlsUpstream::start(pki.issue("game").server_config(Some(&pki))).await;
    let client = pki.issue("tollgate-client");
    let files = [
        ("ca.pem", pki.ca_pem()),
        ("client.pem", client.cert_pem.as_str()),
        ("client.key", client.key_pem.as_str()),
    ];
    let site = start_plain(&files, |site| {
        let lines = format!(
            "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            site.file("ca.pem"),
            site.file("client.pem"),
            site.file("client.key")
        );
        (https_upstream(upstream.addr(), &lines), String::new())
    })
    .await;

    let answer = site.get("/games", Some(&token("grace"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(upstream.client_certificates(), [client.der]);
    site.shutdown().await;
}

#[tokio::test]
async fn an_upstream_demanding_a_client_certificate_refuses_tollgate_without_one() {
    let pki = TestPki::generate();
    let upstream = TlsUpstream::start(pki.issue("game").server_config(Some(&pki))).await;
    let site = start_plain(&[("ca.pem", pki.ca_pem())], |site| {
        let ca = format!("ca_file = \"{}\"", site.file("ca.pem"));
        (https_upstream(upstream.addr(), &ca), String::new())
    })
    .await;

    let answer = site.get("/games", Some(&token("heidi"))).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(upstream.hits(), 0);
    assert!(upstream.client_certificates().is_empty());
    site.shutdown().await;
}

#[tokio::test]
async fn an_https_account_store_is_trusted_through_its_own_ca_file() {
    let pki = TestPki::generate();
    let store = TlsUpstream::start(pki.issue("accounts").server_config(None)).await;
    let upstream = Upstream::start().await;
    let site = start_plain(&[("ca.pem", pki.ca_pem())], |site| {
        let table = format!(
            "[account_store]\nurl = \"https://{}\"\nca_file = \"{}\"",
            store.addr(),
            site.file("ca.pem")
        );
        (format!("url = \"http://{}\"", upstream.addr()), table)
    })
    .await;

    let answer = site.get("/auth/login", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.upstream_path(), "/auth/login");
    assert_eq!(store.hits(), 1);
    assert_eq!(upstream.hits(), 0);
    site.shutdown().await;
}
