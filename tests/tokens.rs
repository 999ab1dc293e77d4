//! Tokens end to end: every allowed algorithm passes with its identity, and
//! every way a token can be wrong is refused with the right status,
//! challenge, body and verdict metric, through real TCP.

mod support;

use serde_json::{Value, json};
use tollgate::auth::Reason;

use support::keys::{b64, signing_input};
use support::{
    ALGORITHMS, AUDIENCE, Answer, Call, Harness, ISSUER, Tollgate, Upstream, all_verdicts, claims,
    hs256_with_key, keys, now, swap_claims, verdicts,
};

/// A protected path no rule names, so the default rule (any valid token)
/// applies.
const PROTECTED: &str = "/games/42";

/// The verdict metric labels a refusal should be counted under.
#[derive(Clone, Copy)]
struct Expect {
    provider: &'static str,
    reason: &'static str,
}

/// Refused once the token named our issuer, so the provider is known.
const fn accounts(reason: &'static str) -> Expect {
    Expect {
        provider: "accounts",
        reason,
    }
}

/// Refused before any provider was picked.
const fn early(reason: &'static str) -> Expect {
    Expect {
        provider: "none",
        reason,
    }
}

/// A tollgate in front of an echo upstream.
struct Gate {
    tollgate: Tollgate,
    upstream: Upstream,
}

impl Gate {
    async fn start() -> Self {
        Self::start_with(|harness| harness).await
    }

    async fn start_with(configure: impl FnOnce(Harness) -> Harness) -> Self {
        let upstream = Upstream::start().await;
        let tollgate = configure(Harness::new(upstream.addr())).start().await;
        Gate { tollgate, upstream }
    }

    /// Sends `token` to the protected path and checks that it passed.
    async fn passes(&self, case: &str, token: &str) -> Answer {
        self.passes_call(case, self.tollgate.get(PROTECTED).bearer(token))
            .await
    }

    /// Sends `call` and checks that the upstream answered it and that one
    /// `ok` verdict was counted.
    async fn passes_call(&self, case: &str, call: Call) -> Answer {
        let before = self.tollgate.metrics().await;
        let answer = call.send().await;
        let after = self.tollgate.metrics().await;
        assert_eq!(answer.status, 200, "{case}: {}", answer.text());
        let ok = verdicts(&after, "accounts", "ok") - verdicts(&before, "accounts", "ok");
        assert_eq!(ok, 1.0, "{case}: one ok verdict");
        answer
    }

    /// Sends `token` to the protected path and checks the refusal.
    async fn refuses(&self, case: &str, token: &str, expect: Expect) -> Answer {
        let call = self.tollgate.get(PROTECTED).bearer(token);
        self.refuses_call(case, call, token, expect).await
    }

    /// Sends `call` and checks everything a refusal promises: the status,
    /// the exact challenge, the JSON body, that `token` is echoed nowhere,
    /// that the upstream never saw the request, and that exactly one
    /// verdict was counted, under the expected labels.
    async fn refuses_call(&self, case: &str, call: Call, token: &str, expect: Expect) -> Answer {
        let hits = self.upstream.hits();
        let before = self.tollgate.metrics().await;
        let answer = call.send().await;
        let after = self.tollgate.metrics().await;

        let reason = Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == expect.reason)
            .expect("the expected reason is a metric label tollgate knows");
        let (status, error) = match reason {
            Reason::InsufficientRole => (403, "insufficient_scope"),
            // No credentials: the body names no token error either.
            Reason::Missing => (401, "unauthorized"),
            _ => (401, "invalid_token"),
        };
        assert_eq!(answer.status, status, "{case}: {}", answer.text());
        let challenge = match reason {
            // RFC 6750 section 3.1: no credentials, so no error code.
            Reason::Missing => r#"Bearer realm="game-api""#.to_owned(),
            _ => format!(
                r#"Bearer realm="game-api", error="{error}", error_description="{}""#,
                reason.description()
            ),
        };
        assert_eq!(
            answer.header("www-authenticate"),
            Some(challenge.as_str()),
            "{case}"
        );

        let body = answer.json();
        assert_eq!(body["error"], error, "{case}: body {body}");
        assert_eq!(body["error_description"], reason.description(), "{case}");
        if !token.is_empty() {
            assert_not_echoed(case, &answer, token);
        }

        assert_eq!(self.upstream.hits(), hits, "{case}: the upstream saw it");
        let counted = verdicts(&after, expect.provider, expect.reason)
            - verdicts(&before, expect.provider, expect.reason);
        assert_eq!(
            counted, 1.0,
            "{case}: one verdict for provider={} reason={}",
            expect.provider, expect.reason
        );
        let total = all_verdicts(&after) - all_verdicts(&before);
        assert_eq!(total, 1.0, "{case}: exactly one verdict in all");
        answer
    }
}

fn assert_not_echoed(case: &str, answer: &Answer, token: &str) {
    assert!(!answer.text().contains(token), "{case}: body echoes it");
    for (name, value) in &answer.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(!value.contains(token), "{case}: header {name} echoes it");
    }
}

/// The header `mint` would write for `alg`, before any edits.
fn header_for(alg: &str) -> Value {
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = support::TestKeys::kid_for(alg) {
        header["kid"] = json!(kid);
    }
    header
}

/// Claims for `sub` with one member replaced, or removed when `value` is
/// null.
fn claims_with(name: &str, value: Value) -> Value {
    let mut claims = claims("mallory");
    let object = claims.as_object_mut().expect("claims are an object");
    if value.is_null() {
        object.remove(name);
    } else {
        object.insert(name.to_owned(), value);
    }
    claims
}

/// Signs raw header and claims text, for JSON that `serde_json::Value`
/// cannot represent (duplicate members).
fn mint_raw(alg: &str, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let signature = keys().sign(alg, input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

// --- Tokens that pass ---

#[tokio::test]
async fn every_allowed_algorithm_passes_with_the_callers_identity_headers() {
    let gate = Gate::start().await;
    for alg in ALGORITHMS {
        let sub = format!("user-{}", alg.to_lowercase());
        let mut claims = claims(&sub);
        claims["roles"] = json!(["player", "admin"]);
        let token = keys().mint(alg, &claims);

        let answer = gate.passes(alg, &token).await;
        assert_eq!(answer.upstream_saw("x-user-id"), [sub.as_str()], "{alg}");
        assert_eq!(
            answer.upstream_saw("x-user-email"),
            [format!("{sub}@chessmate.test")],
            "{alg}"
        );
        assert_eq!(
            answer.upstream_saw("x-user-roles"),
            ["player,admin"],
            "{alg}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_whatever_its_case() {
    let gate = Gate::start().await;
    let token = keys().mint("ES256", &claims("carol"));
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let call = gate
            .tollgate
            .get(PROTECTED)
            .header("authorization", &format!("{scheme} {token}"));
        let answer = gate.passes_call(scheme, call).await;
        assert_eq!(answer.upstream_saw("x-user-id"), ["carol"], "{scheme}");
    }
}

#[tokio::test]
async fn public_routes_need_no_token_and_every_other_route_needs_one() {
    let gate = Gate::start().await;
    let before = gate.tollgate.metrics().await;
    // `path_prefix = "/public/"` covers the bare directory `/public` too.
    for path in ["/health", "/public/openings/sicilian", "/public"] {
        let answer = gate.tollgate.get(path).send().await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.upstream_path(), path);
        // A public route does not even look at a token, good or bad.
        let answer = gate.tollgate.get(path).bearer("zz.garbage.zz").send().await;
        assert_eq!(answer.status, 200, "{path} with a bad token");
    }
    let after = gate.tollgate.metrics().await;
    assert_eq!(all_verdicts(&after), all_verdicts(&before), "no verdicts");

    for path in [PROTECTED, "/", "/healthz", "/publicity"] {
        let call = gate.tollgate.get(path);
        gate.refuses_call(path, call, "", early("missing")).await;
    }
}

// --- missing ---

#[tokio::test]
async fn a_request_without_a_token_gets_a_challenge_without_an_error_code() {
    let gate = Gate::start().await;
    let call = gate.tollgate.get(PROTECTED);
    gate.refuses_call("no header", call, "", early("missing"))
        .await;
}

#[tokio::test]
async fn another_scheme_counts_as_no_token() {
    let gate = Gate::start().await;
    let credentials = "Basic Y2Fyb2w6aHVudGVyMg==";
    let call = gate
        .tollgate
        .get(PROTECTED)
        .header("authorization", credentials);
    gate.refuses_call("basic", call, "Y2Fyb2w6aHVudGVyMg==", early("missing"))
        .await;
}

// --- malformed ---

#[tokio::test]
async fn text_that_is_not_a_compact_jws_is_malformed() {
    let gate = Gate::start().await;
    let good = keys().mint("RS256", &claims("dave"));
    let (header, after_header) = good.split_once('.').expect("three segments");
    let (input, signature) = good.rsplit_once('.').expect("three segments");
    let cases = [
        ("garbage", "zzgarbagezz".to_owned()),
        ("two segments", input.to_owned()),
        ("four segments", format!("{good}.e30")),
        ("empty claims", format!("{header}..{signature}")),
        ("padding", format!("{good}=")),
        ("plus", format!("{input}.+{}", &signature[1..])),
        ("slash", format!("{input}./{}", &signature[1..])),
        ("header not json", format!("bm90LWpzb24.{after_header}")),
        (
            "duplicate alg",
            mint_raw(
                "RS256",
                r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#,
                &claims("dave").to_string(),
            ),
        ),
        (
            "duplicate sub",
            mint_raw(
                "HS256",
                r#"{"alg":"HS256"}"#,
                &format!(
                    r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"dave","sub":"admin","exp":{}}}"#,
                    now() + 600
                ),
            ),
        ),
    ];
    for (case, token) in cases {
        gate.refuses(case, &token, early("malformed")).await;
    }
}

#[tokio::test]
async fn two_authorization_headers_or_an_empty_bearer_are_malformed() {
    let gate = Gate::start().await;
    let token = keys().mint("HS256", &claims("erin"));
    let call = gate.tollgate.get(PROTECTED).bearer(&token).bearer(&token);
    gate.refuses_call("two headers", call, &token, early("malformed"))
        .await;

    for value in ["Bearer ", "Bearer", "bearer     "] {
        let call = gate.tollgate.get(PROTECTED).header("authorization", value);
        gate.refuses_call(value, call, "", early("malformed")).await;
    }
}

#[tokio::test]
async fn a_crit_header_is_refused_because_tollgate_understands_no_extension() {
    let gate = Gate::start().await;
    for crit in [json!(["exp"]), json!([])] {
        let mut header = header_for("RS256");
        header["crit"] = crit.clone();
        let token = keys().mint_with_header(&header, &claims("frank"));
        gate.refuses(&format!("crit {crit}"), &token, early("malformed"))
            .await;
    }
}

// --- expired and not_yet_valid ---

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_leeway_and_passes_within_it() {
    let gate = Gate::start().await;
    let expired = keys().mint("RS256", &claims_with("exp", json!(now() - 60)));
    gate.refuses("a minute ago", &expired, accounts("expired"))
        .await;

    // The harness allows 5 s of clock skew.
    let just = keys().mint("RS256", &claims_with("exp", json!(now() - 2)));
    gate.passes("two seconds ago", &just).await;
}

#[tokio::test]
async fn a_token_used_before_its_nbf_is_refused_beyond_the_leeway() {
    let gate = Gate::start().await;
    let early_token = keys().mint("EdDSA", &claims_with("nbf", json!(now() + 60)));
    gate.refuses("a minute ahead", &early_token, accounts("not_yet_valid"))
        .await;

    let skewed = keys().mint("EdDSA", &claims_with("nbf", json!(now() + 2)));
    gate.passes("two seconds ahead", &skewed).await;
}

// --- bad_signature ---

#[tokio::test]
async fn a_tampered_payload_under_a_good_signature_is_refused() {
    let gate = Gate::start().await;
    let mut forged = claims("grace");
    forged["roles"] = json!(["player", "admin"]);
    for alg in ["HS256", "RS256", "PS256", "ES256", "EdDSA"] {
        let token = keys().mint(alg, &claims("grace"));
        let tampered = swap_claims(&token, &forged);
        gate.refuses(alg, &tampered, accounts("bad_signature"))
            .await;
    }
}

#[tokio::test]
async fn a_signature_by_a_key_outside_the_key_set_is_refused() {
    let gate = Gate::start().await;
    let token = keys().mint_signed_by("OTHER-RS256", &header_for("RS256"), &claims("heidi"));
    gate.refuses("other rsa key as rsa-1", &token, accounts("bad_signature"))
        .await;

    let wrong_secret = hs256_with_key(&[7; 64], &header_for("HS256"), &claims("heidi"));
    gate.refuses(
        "another hmac secret",
        &wrong_secret,
        accounts("bad_signature"),
    )
    .await;
}

#[tokio::test]
async fn an_empty_signature_is_well_formed_but_never_verifies() {
    // Regression: an unsecured token's empty third segment used to be
    // counted as malformed, so `alg: none` probes hid among typos in the
    // verdict metric. Allowing it must not let any real algorithm pass.
    let gate = Gate::start().await;
    for alg in ["HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let empty = format!("{}.", signing_input(&header_for(alg), &claims("heidi")));
        gate.refuses(alg, &empty, accounts("bad_signature")).await;
    }
}

// --- unknown_kid ---

#[tokio::test]
async fn a_kid_outside_the_key_set_is_refused() {
    let gate = Gate::start().await;
    for (alg, kid) in [("RS256", "rsa-2"), ("ES256", "nope"), ("EdDSA", "")] {
        let mut header = header_for(alg);
        header["kid"] = json!(kid);
        let token = keys().mint_with_header(&header, &claims("ivan"));
        gate.refuses(
            &format!("{alg} kid {kid:?}"),
            &token,
            accounts("unknown_kid"),
        )
        .await;
    }
}

// --- wrong_issuer and wrong_audience ---

#[tokio::test]
async fn a_foreign_issuer_is_refused_before_any_provider_is_picked() {
    let gate = Gate::start().await;
    for iss in ["https://evil.test", "https://accounts.chessmate.test/", ""] {
        let token = keys().mint("HS256", &claims_with("iss", json!(iss)));
        gate.refuses(iss, &token, early("wrong_issuer")).await;
    }
}

#[tokio::test]
async fn a_foreign_audience_is_refused_in_string_and_array_form() {
    let gate = Gate::start().await;
    let cases = [
        ("string", json!("someone-else")),
        ("array", json!(["someone-else", "another"])),
        ("empty array", json!([])),
        ("prefix of ours", json!("chessmate")),
    ];
    for (case, aud) in cases {
        let token = keys().mint("ES384", &claims_with("aud", aud));
        gate.refuses(case, &token, accounts("wrong_audience")).await;
    }

    let ours = keys().mint("ES384", &claims_with("aud", json!(["other", AUDIENCE])));
    gate.passes("array holding ours", &ours).await;
}

// --- disallowed_alg ---

#[tokio::test]
async fn alg_none_is_refused_in_every_spelling_with_or_without_a_signature() {
    let gate = Gate::start().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let unsigned = format!("{}.", signing_input(&header, &claims("judy")));
        gate.refuses(
            &format!("{alg} unsigned"),
            &unsigned,
            accounts("disallowed_alg"),
        )
        .await;

        let signed = keys().mint_signed_by("RS256", &header, &claims("judy"));
        gate.refuses(
            &format!("{alg} signed"),
            &signed,
            accounts("disallowed_alg"),
        )
        .await;
    }
}

#[tokio::test]
async fn an_algorithm_that_does_not_fit_its_key_or_the_allowlist_is_refused() {
    let gate = Gate::start().await;
    let cases = [
        ("ES256", "rsa-1", "ES256"),
        ("ES384", "ec-256", "ES384"),
        ("RS256", "ec-256", "RS256"),
        ("EdDSA", "rsa-1", "EdDSA"),
        // Allowed by the key type but not by the provider's allowlist.
        ("PS384", "rsa-1", "RS256"),
        ("XS256", "rsa-1", "RS256"),
    ];
    for (alg, kid, signer) in cases {
        let header = json!({"alg": alg, "kid": kid});
        let token = keys().mint_signed_by(signer, &header, &claims("ken"));
        gate.refuses(
            &format!("{alg} with {kid}"),
            &token,
            accounts("disallowed_alg"),
        )
        .await;
    }
}

/// The classic confusion: an HS256 token keyed with public material, in
/// the hope that the verifier feeds its RSA key to HMAC.
fn confused_tokens() -> Vec<(&'static str, String)> {
    let jwks = keys().jwks().to_string();
    let modulus = keys().rsa_modulus();
    let with_kid = json!({"alg": "HS256", "kid": "rsa-1"});
    let without_kid = json!({"alg": "HS256"});
    let claims = claims("mallory");
    vec![
        (
            "modulus, kid rsa-1",
            hs256_with_key(&modulus, &with_kid, &claims),
        ),
        (
            "modulus, no kid",
            hs256_with_key(&modulus, &without_kid, &claims),
        ),
        (
            "jwks text, kid rsa-1",
            hs256_with_key(jwks.as_bytes(), &with_kid, &claims),
        ),
    ]
}

#[tokio::test]
async fn a_provider_trusting_only_public_keys_refuses_hmac_keyed_with_them() {
    let gate = Gate::start_with(|harness| {
        harness
            .without_secret()
            .with_algorithms(&["RS256", "PS256", "ES256", "ES384", "EdDSA"])
    })
    .await;
    for (case, token) in confused_tokens() {
        gate.refuses(case, &token, accounts("disallowed_alg")).await;
    }
    let genuine = keys().mint("RS256", &claims("mallory"));
    gate.passes("a genuine RS256 token", &genuine).await;
}

#[tokio::test]
async fn hmac_keyed_with_public_keys_fails_against_a_providers_own_secret() {
    // With HS256 allowed, the provider's secret is the only HMAC key ever
    // tried, whatever the kid says, so the forgery is a bad signature.
    let gate = Gate::start().await;
    for (case, token) in confused_tokens() {
        gate.refuses(case, &token, accounts("bad_signature")).await;
    }
}

// --- invalid_claims ---

#[tokio::test]
async fn claims_missing_or_of_the_wrong_type_are_invalid() {
    let gate = Gate::start().await;
    let far = now() + 3600;
    let cases = [
        ("exp as a string", "exp", json!(far.to_string())),
        ("exp missing", "exp", Value::Null),
        ("exp as a bool", "exp", json!(true)),
        ("sub missing", "sub", Value::Null),
        ("sub empty", "sub", json!("")),
        ("sub a number", "sub", json!(7)),
        ("aud missing", "aud", Value::Null),
        ("aud a number", "aud", json!(1)),
        ("aud array of numbers", "aud", json!([1, AUDIENCE])),
        ("nbf as a string", "nbf", json!(now().to_string())),
        ("iat as a string", "iat", json!(now().to_string())),
        ("roles an object", "roles", json!({"admin": true})),
    ];
    for (case, name, value) in cases {
        let token = keys().mint("RS256", &claims_with(name, value));
        gate.refuses(case, &token, accounts("invalid_claims")).await;
    }

    // Without a usable iss no provider can be picked.
    for (case, iss) in [("iss missing", Value::Null), ("iss a number", json!(1))] {
        let token = keys().mint("RS256", &claims_with("iss", iss));
        gate.refuses(case, &token, early("invalid_claims")).await;
    }
}

#[tokio::test]
async fn claims_that_would_forge_or_split_an_identity_header_are_invalid() {
    let gate = Gate::start().await;
    let cases = [
        (
            "email with CR LF",
            "email",
            json!("a@b.test\r\nX-User-Id: admin"),
        ),
        ("email with LF", "email", json!("a@b.test\nx")),
        ("sub with CR", "sub", json!("alice\r")),
        ("role holding a comma", "roles", json!(["player,admin"])),
    ];
    for (case, name, value) in cases {
        let token = keys().mint("EdDSA", &claims_with(name, value));
        gate.refuses(case, &token, accounts("invalid_claims")).await;
    }
}

// --- insufficient_role ---

#[tokio::test]
async fn a_good_token_without_the_needed_role_gets_403_on_admin_routes() {
    let gate = Gate::start().await;
    let player = keys().mint("HS256", &claims("leo"));
    let call = gate.tollgate.get("/admin/tournaments").bearer(&player);
    gate.refuses_call("player", call, &player, accounts("insufficient_role"))
        .await;

    let admin = keys().mint("HS256", &claims_with("roles", json!(["admin"])));
    let call = gate.tollgate.get("/admin/tournaments").bearer(&admin);
    let answer = gate.passes_call("admin", call).await;
    assert_eq!(answer.upstream_saw("x-user-roles"), ["admin"]);
}

// --- Keys the token names itself ---

#[tokio::test]
async fn key_urls_in_the_header_are_never_fetched() {
    let gate = Gate::start().await;
    let key_server = Upstream::start().await;
    let url = format!("http://{}/jwks.json", key_server.addr());
    for member in ["jku", "x5u"] {
        let mut header = header_for("RS256");
        header[member] = json!(url);
        let token = keys().mint_with_header(&header, &claims("mike"));
        gate.passes(member, &token).await;
    }
    assert_eq!(
        key_server.hits(),
        0,
        "tollgate fetched a key the token named"
    );
}

#[tokio::test]
async fn a_key_embedded_in_the_header_is_never_trusted() {
    let gate = Gate::start().await;
    let jwk = keys().other_rsa_jwk(None);

    // No kid: the only RSA key in the set is chosen, and the signature
    // made with the embedded key's private half fails against it.
    let header = json!({"alg": "RS256", "jwk": jwk});
    let token = keys().mint_signed_by("OTHER-RS256", &header, &claims("mallory"));
    gate.refuses("jwk without kid", &token, accounts("bad_signature"))
        .await;

    let header =
        json!({"alg": "RS256", "kid": "attacker", "jwk": keys().other_rsa_jwk(Some("attacker"))});
    let token = keys().mint_signed_by("OTHER-RS256", &header, &claims("mallory"));
    gate.refuses("jwk with its own kid", &token, accounts("unknown_kid"))
        .await;
}

// --- Tokens without a kid ---

#[tokio::test]
async fn a_token_without_kid_passes_when_exactly_one_key_fits_its_algorithm() {
    // The test key set holds one key of each type.
    let gate = Gate::start().await;
    for alg in ["EdDSA", "RS256", "PS256", "ES256", "ES384"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let token = keys().mint_with_header(&header, &claims("nina"));
        gate.passes(alg, &token).await;
    }
}

#[tokio::test]
async fn a_token_without_kid_is_refused_when_several_keys_fit_its_algorithm() {
    let gate =
        Gate::start_with(|harness| harness.with_extra_jwk(keys().other_rsa_jwk(Some("rsa-2"))))
            .await;
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let token = keys().mint_with_header(&header, &claims("olga"));
    gate.refuses("two RSA keys", &token, accounts("unknown_kid"))
        .await;

    // Both keys are live: naming either one works.
    let named = keys().mint("RS256", &claims("olga"));
    gate.passes("kid rsa-1", &named).await;
    let header = json!({"alg": "RS256", "kid": "rsa-2"});
    let other = keys().mint_signed_by("OTHER-RS256", &header, &claims("olga"));
    gate.passes("kid rsa-2", &other).await;
}
