//! Attack run 3, against the newest parts (remote JWKS, hot reload,
//! revocation, report-only, issuer shapes, x509 maps): attacks tollgate
//! blocked, kept as regression tests.
//!
//! Every test here passes on `main` as of 2735764. The attacks that got
//! somewhere are in `attack3_findings.rs`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::jwks_server::{JwksServer, RemoteKey, Reply, jwks_of};
use support::keys::{b64, signing_input};
use support::reload::{CONFIG, Watched, config};
use support::{
    AUDIENCE, Harness, ISSUER, Tollgate, Upstream, claims, hs256_with_key, keys, metric_matching,
    now, verdicts,
};

/// Intervals that keep the background refresh out of the way.
const STILL: &str = r#"jwks_refresh_interval = "1h"
min_refetch_interval = "10s"
jwks_fetch_timeout = "500ms""#;

/// Intervals short enough for a test.
const QUICK: &str = r#"jwks_refresh_interval = "200ms"
min_refetch_interval = "100ms"
jwks_fetch_timeout = "500ms"
max_stale = "1h""#;

/// A provider that takes ES256 keys from `url` only.
fn remote(upstream: &Upstream, url: &str, lines: &str) -> Harness {
    Harness::new(upstream.addr())
        .without_secret()
        .without_jwks_file()
        .with_algorithms(&["ES256"])
        .with_provider_lines(&format!("jwks_uri = \"{url}\"\n{lines}"))
}

async fn send(tollgate: &Tollgate, token: &str) -> support::Answer {
    tollgate.get("/api/games").bearer(token).send().await
}

async fn status(tollgate: &Tollgate, token: &str) -> StatusCode {
    send(tollgate, token).await.status
}

async fn jwks_fetches(tollgate: &Tollgate, provider: &str, result: &str) -> f64 {
    metric_matching(
        &tollgate.metrics().await,
        "tollgate_jwks_fetches_total",
        &[("provider", provider), ("result", result)],
    )
}

/// Polls `check` every 25 ms; false when it never held within `limit`.
async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
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

/// Signs an ES256 token with `pair` under any header.
fn es256(pair: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = pair
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("sign");
    format!("{input}.{}", b64(signature.as_ref()))
}

/// A server on 127.0.0.1:0 that answers every request with the same raw
/// bytes and counts the requests; for answers the JWKS server cannot give.
struct Canned {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Canned {
    async fn start(response: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    let read = async {
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buffer[..n]),
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Canned { addr, hits, task }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- A hostile or compromised jwks_uri ----------------------------------------

/// The remote key set tries every way to smuggle in a key: an HMAC (`oct`)
/// key, a key with a kid the local `jwks_file` already uses, an encryption
/// key, and keys whose declared `alg` does not fit their type. None of them
/// verifies a token; a real remote key still does.
#[tokio::test]
async fn a_hostile_jwks_uri_cannot_add_hmac_keys_or_displace_local_ones() {
    let upstream = Upstream::start().await;
    let attacker_secret = b"attacker-chosen-hmac-secret-32-bytes!!";
    let shadow = RemoteKey::generate("ec-256"); // the local ES256 key's kid
    let encrypting = RemoteKey::generate("enc-1");
    let mislabeled = RemoteKey::generate("ec-as-rsa");
    let honest = RemoteKey::generate("remote-ok");
    let mut enc = encrypting.jwk();
    enc["use"] = json!("enc");
    let mut as_rsa = mislabeled.jwk();
    as_rsa["alg"] = json!("RS256");
    let document = json!({"keys": [
        {"kty": "oct", "kid": "hmac", "alg": "HS256", "use": "sig", "k": b64(attacker_secret)},
        shadow.jwk(), enc, as_rsa, honest.jwk(),
        keys().other_rsa_jwk(Some("rsa-as-es")),
    ]});
    let server = JwksServer::start(document).await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines(&format!("jwks_uri = \"{}\"\n{STILL}", server.url()))
        .start()
        .await;

    let hmac = hs256_with_key(
        attacker_secret,
        &json!({"alg": "HS256", "typ": "JWT", "kid": "hmac"}),
        &claims("mallory"),
    );
    let attempts = [
        ("an HS256 token under the remote oct key", hmac),
        (
            "an ES256 token under the local kid, by the remote key",
            shadow.mint(&claims("mallory")),
        ),
        (
            "a token under a remote encryption key",
            encrypting.mint(&claims("mallory")),
        ),
        (
            "a token under a remote key whose alg does not fit it",
            mislabeled.mint(&claims("mallory")),
        ),
        (
            "an ES256 token naming a remote RSA key",
            honest.mint_as("rsa-as-es", &claims("mallory")),
        ),
    ];
    for (what, token) in &attempts {
        assert_eq!(
            status(&tollgate, token).await,
            StatusCode::UNAUTHORIZED,
            "{what}"
        );
    }
    assert_eq!(
        status(&tollgate, &honest.mint(&claims("alice"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&tollgate, &keys().mint("ES256", &claims("alice"))).await,
        StatusCode::OK,
        "the local key kept its kid"
    );
    tollgate.shutdown().await;
}

/// A redirect to a server holding the attacker's keys is not followed.
#[tokio::test]
async fn a_redirecting_jwks_uri_is_not_followed() {
    let upstream = Upstream::start().await;
    let attacker = RemoteKey::generate("attacker");
    let evil = JwksServer::start(jwks_of(&[&attacker])).await;
    let redirect = Canned::start(format!(
        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        evil.url()
    ))
    .await;
    let tollgate = remote(&upstream, &redirect.url(), STILL).start().await;

    assert!(redirect.hits() >= 1);
    assert_eq!(evil.fetches(), 0, "the redirect was followed");
    assert_eq!(
        status(&tollgate, &attacker.mint(&claims("mallory"))).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tollgate.shutdown().await;
}

/// A 304 to a request that named no ETag stands for no key set at all.
#[tokio::test]
async fn a_304_to_an_unconditional_fetch_holds_no_keys() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("any");
    let canned = Canned::start(
        "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    let tollgate = remote(&upstream, &canned.url(), STILL).start().await;
    assert_eq!(
        status(&tollgate, &key.mint(&claims("mallory"))).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(jwks_fetches(&tollgate, "accounts", "error").await, 1.0);
    tollgate.shutdown().await;
}

/// A key set over the 1 MiB cap is refused whole: a key hidden in it is
/// never used, and the last good keys keep serving.
#[tokio::test]
async fn an_oversized_key_set_is_refused_and_the_old_keys_serve() {
    let upstream = Upstream::start().await;
    let old = RemoteKey::generate("old");
    let hidden = RemoteKey::generate("hidden");
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let tollgate = remote(&upstream, &server.url(), QUICK).start().await;

    let mut big = jwks_of(&[&old, &hidden]);
    big["padding"] = json!("x".repeat((1 << 20) + 64));
    server.reply(Reply::Jwks(big));
    let t = &tollgate;
    assert!(
        within(Duration::from_secs(5), || async move {
            jwks_fetches(t, "accounts", "error").await >= 2.0
        })
        .await
    );
    assert_eq!(
        status(&tollgate, &hidden.mint(&claims("mallory"))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&tollgate, &old.mint(&claims("alice"))).await,
        StatusCode::OK
    );
    tollgate.shutdown().await;
}

/// An x509 map served at the `jwks_uri` with odd entries: a bare public key
/// instead of a certificate, a certificate key used with another curve's
/// algorithm, and the certificate itself (PEM or DER) as an HMAC secret.
#[tokio::test]
async fn odd_x509_map_entries_never_verify_a_forged_token() {
    let upstream = Upstream::start().await;
    let cert_key = rcgen::KeyPair::generate().expect("p256 key");
    let cert = rcgen::CertificateParams::new(vec!["issuer.test".to_owned()])
        .expect("params")
        .self_signed(&cert_key)
        .expect("certificate");
    let bare_key = rcgen::KeyPair::generate().expect("p256 key");
    let signer = |key: &rcgen::KeyPair| {
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
        )
        .expect("pkcs8")
    };
    let (good, bare) = (signer(&cert_key), signer(&bare_key));
    let map = json!({"p256": cert.pem(), "bare": bare_key.public_key_pem()});
    let server = JwksServer::start(map).await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines(&format!("jwks_uri = \"{}\"\n{STILL}", server.url()))
        .start()
        .await;

    let header = |alg: &str, kid: &str| json!({"alg": alg, "typ": "JWT", "kid": kid});
    let mallory = claims("mallory");
    let attempts = [
        (
            "a bare public key",
            es256(&bare, &header("ES256", "bare"), &mallory),
        ),
        (
            "a P-256 certificate key named by an ES384 token",
            es256(&good, &header("ES384", "p256"), &mallory),
        ),
        (
            "the certificate PEM as an HMAC secret",
            hs256_with_key(cert.pem().as_bytes(), &header("HS256", "p256"), &mallory),
        ),
        (
            "the certificate DER as an HMAC secret",
            hs256_with_key(cert.der(), &header("HS256", "p256"), &mallory),
        ),
    ];
    for (what, token) in &attempts {
        assert_eq!(
            status(&tollgate, token).await,
            StatusCode::UNAUTHORIZED,
            "{what}"
        );
    }
    let honest = es256(&good, &header("ES256", "p256"), &claims("alice"));
    assert_eq!(status(&tollgate, &honest).await, StatusCode::OK);
    tollgate.shutdown().await;
}

// --- Keys that go away --------------------------------------------------------

/// A token verified and cached under a key the issuer then withdraws is
/// refused once the refresh sees the withdrawal: the cache entry does not
/// outlive the key.
#[tokio::test]
async fn a_cached_token_dies_with_its_withdrawn_key() {
    let upstream = Upstream::start().await;
    let leaked = RemoteKey::generate("leaked");
    let next = RemoteKey::generate("next");
    let server = JwksServer::start(jwks_of(&[&leaked, &next])).await;
    let tollgate = remote(&upstream, &server.url(), QUICK).start().await;
    let token = leaked.mint(&claims("alice"));
    assert_eq!(status(&tollgate, &token).await, StatusCode::OK);
    assert_eq!(status(&tollgate, &token).await, StatusCode::OK);
    assert!(support::metric_value(&tollgate.metrics().await, "tollgate_cache_hits_total") >= 1.0);

    server.reply(Reply::Jwks(jwks_of(&[&next])));
    let (t, token) = (&tollgate, &token);
    assert!(
        within(Duration::from_secs(5), || async move {
            status(t, token).await == StatusCode::UNAUTHORIZED
        })
        .await,
        "the cached token outlived its key"
    );
    assert_eq!(
        status(&tollgate, &next.mint(&claims("bob"))).await,
        StatusCode::OK
    );
    tollgate.shutdown().await;
}

/// A revoked token whose kid is new goes through the refetch path and is
/// still refused as revoked; a fresh one with the same kid passes.
#[tokio::test]
async fn revocation_holds_on_the_refetch_path_too() {
    let upstream = Upstream::start().await;
    let old = RemoteKey::generate("old");
    let new = RemoteKey::generate("new");
    let server = JwksServer::start(jwks_of(&[&old])).await;
    let cut_off = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60));
    let lines = format!("{STILL}\nrevoke = {{ issued_before = \"{cut_off}\" }}");
    let tollgate = remote(&upstream, &server.url(), &lines).start().await;

    server.reply(Reply::Jwks(jwks_of(&[&old, &new])));
    let mut stale = claims("alice");
    stale["iat"] = json!(now() - 600);
    let answer = send(&tollgate, &new.mint(&stale)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        answer
            .header("www-authenticate")
            .is_some_and(|value| value.contains("revoked")),
        "{:?}",
        answer.header("www-authenticate")
    );
    assert_eq!(server.fetches(), 2, "it did take the refetch path");
    assert_eq!(
        status(&tollgate, &new.mint(&claims("bob"))).await,
        StatusCode::OK
    );
    tollgate.shutdown().await;
}

// --- Hammering the issuer -------------------------------------------------------

/// Junk key ids sent to two providers at once: each issuer sees at most
/// one fetch beyond the one at start, whatever the flood.
#[tokio::test]
async fn junk_kids_across_providers_cost_each_issuer_one_fetch() {
    let upstream = Upstream::start().await;
    let ours = RemoteKey::generate("ours");
    let theirs = RemoteKey::generate("theirs");
    let ours_server = JwksServer::start(jwks_of(&[&ours])).await;
    let their_server = JwksServer::start(jwks_of(&[&theirs])).await;
    let partner = format!(
        r#"[[providers]]
name = "partner"
issuer = "https://partner.test"
audiences = ["{AUDIENCE}"]
algorithms = ["ES256"]
jwks_uri = "{}"
{STILL}
"#,
        their_server.url()
    );
    let tollgate = remote(&upstream, &ours_server.url(), STILL)
        .with_provider_table(&partner)
        .start()
        .await;

    let mut partner_claims = claims("mallory");
    partner_claims["iss"] = json!("https://partner.test");
    let mut calls = tokio::task::JoinSet::new();
    for at in 0..200 {
        let kid = uuid::Uuid::new_v4().to_string();
        let token = if at % 2 == 0 {
            ours.mint_as(&kid, &claims("mallory"))
        } else {
            theirs.mint_as(&kid, &partner_claims)
        };
        calls.spawn(tollgate.get("/api/games").bearer(&token).send());
    }
    while let Some(answer) = calls.join_next().await {
        assert_eq!(answer.expect("call").status, StatusCode::UNAUTHORIZED);
    }
    assert!(ours_server.fetches() <= 2, "{}", ours_server.fetches());
    assert!(their_server.fetches() <= 2, "{}", their_server.fetches());
    let metrics = tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "accounts", "unknown_kid"), 100.0);
    assert_eq!(verdicts(&metrics, "partner", "unknown_kid"), 100.0);
    tollgate.shutdown().await;
}

/// An issuer that hangs does not hang junk-kid requests past the fetch
/// timeout.
#[tokio::test]
async fn a_hanging_issuer_does_not_hold_requests_past_the_fetch_timeout() {
    let upstream = Upstream::start().await;
    let key = RemoteKey::generate("real");
    let server = JwksServer::start(jwks_of(&[&key])).await;
    let lines = r#"jwks_refresh_interval = "1h"
min_refetch_interval = "100ms"
jwks_fetch_timeout = "300ms""#;
    let tollgate = remote(&upstream, &server.url(), lines).start().await;
    server.with_delay(Some(Duration::from_secs(5)));

    let tollgate = Arc::new(tollgate);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let tollgate = tollgate.clone();
        let token = key.mint_as(&uuid::Uuid::new_v4().to_string(), &claims("mallory"));
        calls.spawn(async move {
            let started = Instant::now();
            let status = status(&tollgate, &token).await;
            (status, started.elapsed())
        });
    }
    while let Some(done) = calls.join_next().await {
        let (status, took) = done.expect("call");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }
    assert_eq!(
        status(&tollgate, &key.mint(&claims("alice"))).await,
        StatusCode::OK
    );
    if let Ok(tollgate) = Arc::try_unwrap(tollgate) {
        tollgate.shutdown().await;
    }
}

// --- Report-only and identity ---------------------------------------------------

/// Report-only forwards refused requests, but never with an identity: not
/// the token's (it was refused), not the client's (scrubbed in every
/// spelling, the roles header included).
#[tokio::test]
async fn report_only_never_forwards_an_identity_for_a_refused_token() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    let provider = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"\nroles_header = \"X-Roles\"",
        site.file("hmac.key")
    );
    let rules = "[[rules]]\npath_prefix = \"/admin/\"\nroles = [\"admin\"]\n";
    let text = config(upstream.addr(), "mode = \"report_only\"", &provider, rules);
    site.write(CONFIG, &text);
    site.start(CONFIG, &[]).await;

    let player = keys().mint("HS256", &claims("alice"));
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let expired = keys().mint("HS256", &expired);
    let (signed, _) = player.rsplit_once('.').expect("three segments");
    let forged = format!("{signed}.AAAA");
    let forged_headers = [
        ("X-User-Id", "admin"),
        ("x_user_id", "admin"),
        ("X-User-Roles", "admin"),
        ("X-Roles", "admin"),
        ("x_roles", "admin"),
    ];
    let identity = [
        "x-user-id",
        "x_user_id",
        "x-user-roles",
        "x-roles",
        "x_roles",
    ];

    let cases = [
        ("/admin/users", Some(player.as_str()), "insufficient role"),
        ("/api/games", Some(expired.as_str()), "expired"),
        ("/api/games", Some(forged.as_str()), "bad signature"),
        ("/api/games", None, "no token"),
    ];
    for (path, token, what) in cases {
        let answer = site.get_with(path, token, &forged_headers).await;
        assert_eq!(answer.status, 200, "{what}: reported and forwarded");
        for name in identity {
            assert!(
                answer.upstream_saw(name).is_empty(),
                "{what}: the upstream saw {name}: {:?}",
                answer.upstream_saw(name)
            );
        }
    }

    // The control: a good token is forwarded with its own identity only.
    let answer = site
        .get_with("/api/games", Some(&player), &forged_headers)
        .await;
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
    assert_eq!(answer.upstream_saw("x-roles"), ["player"]);
    assert!(answer.upstream_saw("x_user_id").is_empty());
    site.shutdown().await;
}

/// With `require_sub = false`, a token without `sub` passes with no user id
/// at all: the client's own `X-User-Id` (in any spelling) is scrubbed, and
/// a `sub` that is there but empty or not a string still refuses.
#[tokio::test]
async fn without_require_sub_a_subjectless_token_cannot_borrow_an_identity() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr())
        .with_provider_lines("require_sub = false")
        .start()
        .await;

    let mut anonymous = claims("x");
    anonymous.as_object_mut().map(|c| c.remove("sub"));
    anonymous.as_object_mut().map(|c| c.remove("email"));
    let token = keys().mint("HS256", &anonymous);
    let answer = tollgate
        .get("/api/games")
        .bearer(&token)
        .header("X-User-Id", "victim")
        .header("x_user_id", "victim")
        .header("X-User-Email", "victim@chessmate.test")
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    for name in ["x-user-id", "x_user_id", "x-user-email"] {
        assert!(answer.upstream_saw(name).is_empty(), "{name}");
    }

    for sub in [json!(""), json!(7), json!(null), json!(["victim"])] {
        let mut odd = claims("x");
        odd["sub"] = sub.clone();
        let token = keys().mint("HS256", &odd);
        assert_eq!(
            status(&tollgate, &token).await,
            StatusCode::UNAUTHORIZED,
            "sub {sub}"
        );
    }
    tollgate.shutdown().await;
}

// --- Reloads ----------------------------------------------------------------------

/// A config that names itself as a key document, a denylist or a secret
/// file is refused, and the running config stays.
#[tokio::test]
async fn a_config_that_names_itself_is_refused() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", &keys().secret_text());
    let base = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"",
        site.file("hmac.key")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &base, ""));
    site.start(CONFIG, &[]).await;
    let token = keys().mint("HS256", &claims("alice"));

    let itself = site.file(CONFIG);
    let variants = [
        format!(
            "algorithms = [\"HS256\", \"ES256\"]\nsecret_file = \"{}\"\njwks_file = \"{itself}\"",
            site.file("hmac.key")
        ),
        format!("{base}\nrevoke = {{ denylist_file = \"{itself}\" }}"),
        format!(
            "algorithms = [\"HS256\"]\nsecret_file = [\"{}\", \"{itself}\"]",
            site.file("hmac.key")
        ),
    ];
    for (at, provider) in variants.iter().enumerate() {
        let open_beta = "[[rules]]\npath_prefix = \"/beta/\"\npublic = true\n";
        site.write(CONFIG, &config(upstream.addr(), "", provider, open_beta));
        site.wait_for_reloads("error", (at + 1) as f64).await;
        assert_eq!(
            site.get("/beta/games", None).await.status,
            401,
            "{provider}"
        );
        assert_eq!(site.get("/api/games", Some(&token)).await.status, 200);
    }
    assert_eq!(site.reloads("ok").await, 0.0);
    site.shutdown().await;
}

/// The issuer claim picks the provider exactly: near-miss spellings of a
/// configured issuer are not it.
#[tokio::test]
async fn near_miss_issuers_pick_no_provider() {
    let upstream = Upstream::start().await;
    let tollgate = Harness::new(upstream.addr()).start().await;
    for iss in [
        format!("{ISSUER}/"),
        ISSUER.to_uppercase(),
        format!(" {ISSUER}"),
        format!("{ISSUER}\u{0000}"),
        ISSUER.replace("https", "http"),
    ] {
        let mut forged = claims("mallory");
        forged["iss"] = json!(iss);
        let token = keys().mint("HS256", &forged);
        assert_eq!(
            status(&tollgate, &token).await,
            StatusCode::UNAUTHORIZED,
            "{iss:?}"
        );
    }
    tollgate.shutdown().await;
}
