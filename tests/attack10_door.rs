//! Attack 10 on the door: identity headers whose names tollgate also
//! strips as proxy-asserted (`X-Forwarded-User`, `X-Remote-User`,
//! `X-Real-IP`), which a provider may map a claim to.

mod support;

use http::StatusCode;
use serde_json::json;

use support::binary::{self, SECRET_ENV, Served};
use support::{Upstream, claims, hs256_with_key};

const SECRET: &str = "attack10-door-secret-of-more-than-32-bytes";

/// Names oauth2-proxy (`X-Forwarded-User`), Kubernetes' request-header
/// authentication (`X-Remote-User`) and nginx (`X-Real-IP`) use, which
/// tollgate removes from every request as only a proxy may assert them.
const MAPPED: [&str; 3] = ["X-Forwarded-User", "X-Remote-User", "X-Real-IP"];

/// `binary::config` with `sub` mapped to `X-User-Id` and every name of
/// [`MAPPED`].
fn config(upstream: &str) -> String {
    let mut table = String::from("[providers.claim_to_headers]\n\"X-User-Id\" = \"sub\"\n");
    for name in MAPPED {
        table.push_str(&format!("\"{name}\" = \"sub\"\n"));
    }
    binary::config("attack10", upstream).replace(
        "[providers.claim_to_headers]\n\"X-User-Id\" = \"sub\"\n",
        &table,
    )
}

/// Regression (attack 10): identity headers were added before the
/// forwarding headers were cleaned, which removes every `X-Forwarded-*`
/// but `-For`, and `X-Remote-User`, `X-Real-IP` and the like. A provider
/// mapping `sub` to one of them passed `tollgate check`, and `tollgate
/// inspect` listed the header, but the upstream never received it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_mapped_to_a_proxy_asserted_name_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let text = config(&format!("http://{}", upstream.addr()));
    let served = Served::start(&text, &[(SECRET_ENV, SECRET)]);
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let token = hs256_with_key(SECRET.as_bytes(), &header, &claims("alice"));
    let authorization = format!("Bearer {token}");

    // The client's own copies, in every spelling, must still go.
    let answer = binary::get(
        &served.url("/api/x"),
        &[
            ("authorization", &authorization),
            ("x-forwarded-user", "mallory"),
            ("X_Remote_User", "mallory"),
            ("x-real-ip", "10.0.0.1"),
        ],
    )
    .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.upstream_saw("x-user-id"), ["alice"]);
    for name in MAPPED {
        let lower = name.to_ascii_lowercase();
        assert_eq!(answer.upstream_saw(&lower), ["alice"], "{name}");
        assert!(answer.upstream_saw(&lower.replace('-', "_")).is_empty());
    }
    assert_eq!(served.terminate().code(), Some(0));
}

/// Without a token (a refusal), nothing of the client's reaches anyone; on
/// a token whose claim is absent, the header is left out, never taken from
/// the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_supply_a_proxy_asserted_identity_header_itself() {
    let upstream = Upstream::start().await;
    let text = config(&format!("http://{}", upstream.addr()))
        .replace("\"X-Real-IP\" = \"sub\"", "\"X-Real-IP\" = \"ip\"");
    let served = Served::start(&text, &[(SECRET_ENV, SECRET)]);
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let token = hs256_with_key(SECRET.as_bytes(), &header, &claims("alice"));
    let authorization = format!("Bearer {token}");

    let refused = binary::get(&served.url("/api/x"), &[("x-forwarded-user", "admin")]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.hits(), 0);

    let answer = binary::get(
        &served.url("/api/x"),
        &[("authorization", &authorization), ("X-Real-IP", "10.0.0.1")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.upstream_saw("x-real-ip").is_empty());
    assert_eq!(answer.upstream_saw("x-forwarded-user"), ["alice"]);
    assert_eq!(served.terminate().code(), Some(0));
}
