//! The eighth attack run, against the refusal and verification paths
//! reworked together: segments trusted to the canonical base64url decoder
//! instead of a per-byte scan, the JOSE header read by a visitor rather
//! than a map, expired tokens kept by the cache, and token refusals
//! answered from responses built once per snapshot.
//!
//! Every token is minted here with aws-lc-rs and sent over real TCP; each
//! refusal is also put to `tollgate inspect`'s report, which must name the
//! same reason the proxy gave.

mod support;

#[path = "corpus/common.rs"]
#[allow(unused)]
mod common;

use std::sync::Arc;

use http::Method;
use serde_json::{Value, json};
use tollgate::inspect::{Report, RequestLine};
use tollgate::state::Snapshot;

use common::{
    BAD_SIGNATURE, Challenge, DISALLOWED_ALG, EXPIRED, Gate, MALFORMED, UNKNOWN_KID, assert_refused,
};
use support::keys::b64;
use support::recorder::Recorder;
use support::reload::{CONFIG, SECRET_NEW, SECRET_OLD, Watched, config};
use support::wire::{RawConnection, request_head};
use support::{claims, hs256_with_key, keys, metric_matching, now, swap_claims, verdicts};

/// The protected path every request here goes to.
const PATH: &str = "/games/1";

/// Signs raw header bytes (not necessarily JSON) over `claims` with the
/// provider's HMAC secret, so only the header decides the verdict.
fn hs256_with_raw_header(header: &[u8], claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims.to_string().as_bytes()));
    let signature = keys().sign("HS256", input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// Claims that expired an hour ago, otherwise good.
fn expired_claims(sub: &str) -> Value {
    let mut old = claims(sub);
    old["iat"] = json!(now() - 7200);
    old["exp"] = json!(now() - 3600);
    old
}

/// The snapshot the gate serves from now.
fn snapshot(gate: &Gate) -> Arc<Snapshot> {
    gate.tollgate.running().state().load()
}

/// Asserts `tollgate inspect` names `reason` for `token`, and that its
/// explanation's first failing check agrees with its own verdict.
fn assert_inspect_says(snapshot: &Arc<Snapshot>, token: &str, reason: &str) {
    let request = RequestLine {
        method: Method::GET,
        path: Some(PATH.to_owned()),
    };
    let report = Report::offline(Arc::clone(snapshot), request, token, now() as f64);
    assert_eq!(report.verdict(), reason, "inspect of {token:?}");
    assert!(
        report.is_consistent(),
        "inspect disagrees with itself: {token:?}"
    );
}

/// Sends `token` on a raw HTTP/1.1 connection, byte for byte, so that
/// bytes a client library would refuse still reach tollgate.
async fn send_raw(gate: &Gate, token: &[u8]) -> support::Answer {
    let mut head = format!("GET {PATH} HTTP/1.1\r\nHost: tollgate.test\r\n").into_bytes();
    head.extend_from_slice(b"Authorization: Bearer ");
    head.extend_from_slice(token);
    head.extend_from_slice(b"\r\n\r\n");
    gate.raw(&head).await
}

// --- Bytes outside base64url -------------------------------------------------

/// Strays to put in a segment: the usual mix-ups (standard base64, padding,
/// URL escapes, whitespace), non-ASCII UTF-8, and a control byte.
const STRAYS: [&str; 9] = [" ", "\t", "+", "/", "=", "%2D", "é", "\u{2028}", "\u{1}"];

/// Puts `stray` at the start, middle or end of segment `segment`.
fn with_stray(token: &str, segment: usize, at: usize, stray: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let text = &parts[segment];
    let cut = match at {
        0 => 0,
        1 => text.len() / 2,
        _ => text.len(),
    };
    parts[segment] = format!("{}{stray}{}", &text[..cut], &text[cut..]);
    parts.join(".")
}

/// Whitespace around the whole credential is framing, not token: hyper
/// trims it at the end of the field and tollgate skips spaces after
/// `Bearer`, so those two spots say nothing about the token's alphabet.
fn is_framing(segment: usize, at: usize, stray: &str) -> bool {
    let outer = (segment == 0 && at == 0) || (segment == 2 && at == 2);
    outer && matches!(stray, " " | "\t")
}

/// A byte outside the base64url alphabet anywhere in any segment makes
/// the token malformed, even when the token without it verified and sits
/// in the cache; nothing reaches the upstream, and `inspect` agrees.
#[tokio::test]
async fn a_byte_outside_base64url_in_any_segment_is_malformed_even_for_a_cached_token() {
    let gate = Gate::start().await;
    let snapshot = snapshot(&gate);
    for alg in ["HS256", "ES256"] {
        let good = keys().mint(alg, &claims("alice"));
        let answer = gate.get(PATH).bearer(&good).send().await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let forwarded = gate.forwarded().len();

    let mut refused = 0.0;
    for alg in ["HS256", "ES256"] {
        let good = keys().mint(alg, &claims("alice"));
        for segment in 0..3 {
            for at in 0..3 {
                for stray in STRAYS.iter().filter(|s| !is_framing(segment, at, s)) {
                    let token = with_stray(&good, segment, at, stray);
                    let answer = send_raw(&gate, token.as_bytes()).await;
                    let case = format!("{alg} segment {segment} at {at} {stray:?}");
                    if stray.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                        // hyper refuses a control byte in a field value
                        // before tollgate sees the request.
                        assert_eq!(answer.status, 400, "{case}: {answer:?}");
                        continue;
                    }
                    assert_refused(&answer, MALFORMED);
                    assert_inspect_says(&snapshot, &token, "malformed");
                    refused += 1.0;
                }
            }
        }
    }

    assert_eq!(
        gate.forwarded().len(),
        forwarded,
        "a malformed token was forwarded"
    );
    let metrics = gate.tollgate.metrics().await;
    assert_eq!(verdicts(&metrics, "none", "malformed"), refused);
}

/// Bytes that are not UTF-8 at all (obs-text in the field) are malformed
/// too, in every segment.
#[tokio::test]
async fn bytes_that_are_not_utf8_in_any_segment_are_malformed() {
    let gate = Gate::start().await;
    let good = keys().mint("HS256", &claims("alice"));
    let dots: Vec<usize> = good.match_indices('.').map(|(at, _)| at).collect();
    for cut in [1, dots[0] + 2, dots[1] + 2, good.len()] {
        let mut token = good.as_bytes().to_vec();
        token.insert(cut.min(token.len()), 0xff);
        let answer = send_raw(&gate, &token).await;
        assert_refused(&answer, MALFORMED);
    }
    gate.assert_nothing_forwarded();
}

// --- JSON tricks in the header -----------------------------------------------

/// Headers the verifier must refuse as malformed, each signed with the
/// right secret so nothing but the header can be at fault.
fn malformed_headers() -> Vec<Vec<u8>> {
    let deep = |levels: usize| {
        format!(
            r#"{{"alg":"HS256","x":{}1{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let mut headers: Vec<Vec<u8>> = [
        r#"{"alg":"HS256","\u0061lg":"HS256"}"#,
        r#"{"\u0061lg":"none","alg":"HS256"}"#,
        r#"{"alg":"HS256","x":{"y":{"k":1,"\u006b":2}}}"#,
        r#"{"alg":"HS256","x":[{},{"a":1,"a":1}]}"#,
        r#"{"alg":256}"#,
        r#"{"alg":null}"#,
        r#"{"alg":true}"#,
        r#"{"alg":{"name":"HS256"}}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":"HS256","kid":null}"#,
        r#"{"alg":"HS256","kid":{"": ""}}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","cr\u0069t":["exp"]}"#,
        r#"{"alg":"HS256"}{}"#,
        r#"{"alg":"HS256"},"#,
        r#"{"alg":"HS256",}"#,
        r#"{"alg":"HS256"} /"#,
        r#"["alg","HS256"]"#,
        r#""HS256""#,
        r#"{"alg":"HS256","kid":"\ud800"}"#,
        r#"{"alg":"HS256","x":1e400}"#,
        r#"{"kid":"a"}"#,
        "",
        " ",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect();
    headers.push(deep(200).into_bytes());
    headers.push(b"\xef\xbb\xbf{\"alg\":\"HS256\"}".to_vec());
    headers.push(b"{\"alg\":\"HS256\",\"kid\":\"\xff\"}".to_vec());
    headers.push(b"{\"alg\":\"HS256\",\"kid\":\"a\x01b\"}".to_vec());
    headers.push(b"{\"alg\":\"HS256\"}\x00".to_vec());
    headers
}

/// Duplicate members at any depth (escaped spellings included), an `alg`
/// that is not a string, nesting past the parser's limit, trailing bytes,
/// a BOM, a header that is not an object and `crit` are all malformed,
/// over TCP and in `inspect` alike; the empty header is refused too.
#[tokio::test]
async fn json_tricks_in_the_header_are_malformed_and_inspect_agrees() {
    let gate = Gate::start().await;
    let snapshot = snapshot(&gate);
    for header in malformed_headers() {
        let token = hs256_with_raw_header(&header, &claims("mallory"));
        let answer = gate.get(PATH).bearer(&token).send().await;
        let shown = String::from_utf8_lossy(&header);
        assert_eq!(answer.status, 401, "{shown}: {answer:?}");
        assert_refused(&answer, MALFORMED);
        assert_inspect_says(&snapshot, &token, "malformed");
    }
    gate.assert_nothing_forwarded();
}

/// What a strict reader must still accept: an escaped spelling of `alg`
/// (it is `alg`), an escaped algorithm name, nesting well inside the
/// parser's limit, and whitespace around the object.
#[tokio::test]
async fn escaped_names_and_nesting_within_the_limit_still_verify() {
    let gate = Gate::start().await;
    let snapshot = snapshot(&gate);
    let nested = format!(
        r#"{{"alg":"HS256","x":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let headers = [
        r#"{"\u0061lg":"HS256"}"#.to_owned(),
        r#"{"alg":"HS\u0032\u0035\u0036","typ":"JWT"}"#.to_owned(),
        r#"{"alg":"HS256","kid":"k\u00e9","x5u":null}"#.to_owned(),
        nested,
        " \t\n{\"alg\" : \"HS256\"}\n ".to_owned(),
    ];
    for header in headers {
        let token = hs256_with_raw_header(header.as_bytes(), &claims("alice"));
        let answer = gate.get(PATH).bearer(&token).send().await;
        assert_eq!(answer.status, 200, "{header}: {answer:?}");
        assert_inspect_says(&snapshot, &token, "ok");
    }
}

/// Every one-byte edit (insert, replace, delete) of two headers, judged by
/// the verifier's visitor and explained by `inspect`, whose syntax rules
/// read the header into a map as the verifier did before: the two must
/// name the same reason for every edit, and a header that passes must be a
/// JSON object whose `alg` is the one signed for.
#[tokio::test]
async fn every_one_byte_edit_of_a_header_gets_the_same_reason_from_inspect() {
    let gate = Gate::start().await;
    let snapshot = snapshot(&gate);
    let seeds: [&[u8]; 2] = [
        br#"{"alg":"HS256","kid":"k1","x":[1,{"a":"\u0062"}],"typ":"JWT"}"#,
        br#"{"alg":"HS256","b":{"c":[true,null,-1.5e3],"d":{}}}"#,
    ];
    let bytes = b"\"\\{}[],: a0-e.nu/\x00\xff";
    let mut edits: Vec<Vec<u8>> = Vec::new();
    for seed in seeds {
        for at in 0..=seed.len() {
            for &byte in bytes {
                let mut inserted = seed.to_vec();
                inserted.insert(at, byte);
                edits.push(inserted);
                if at < seed.len() {
                    let mut replaced = seed.to_vec();
                    replaced[at] = byte;
                    edits.push(replaced);
                }
            }
            if at < seed.len() {
                let mut deleted = seed.to_vec();
                deleted.remove(at);
                edits.push(deleted);
            }
        }
    }

    let (mut passed, mut malformed) = (0, 0);
    for header in &edits {
        let token = hs256_with_raw_header(header, &claims("alice"));
        let request = RequestLine {
            method: Method::GET,
            path: Some(PATH.to_owned()),
        };
        let report = Report::offline(Arc::clone(&snapshot), request, &token, now() as f64);
        let shown = String::from_utf8_lossy(header);
        assert!(report.is_consistent(), "{shown}: {}", report.verdict());
        match report.verdict() {
            "ok" => {
                let parsed: Value = serde_json::from_slice(header).expect("a passing header");
                assert_eq!(parsed["alg"], "HS256", "{shown}");
                passed += 1;
            }
            "malformed" => malformed += 1,
            _ => {}
        }
    }
    // Both outcomes are well represented, so the sweep did test something.
    assert!(
        passed > 100 && malformed > 1000,
        "{passed} passed, {malformed} malformed"
    );
}

// --- Expired tokens in the cache ---------------------------------------------

/// Sends `token` twice and asserts the refusal both times; returns how many
/// cache hits the pair made.
async fn refused_twice(gate: &Gate, token: &str, expected: Challenge) -> f64 {
    let before = gate.tollgate.metric("tollgate_cache_hits_total").await;
    for _ in 0..2 {
        let answer = gate.get(PATH).bearer(token).send().await;
        assert_refused(&answer, expected);
    }
    gate.tollgate.metric("tollgate_cache_hits_total").await - before
}

/// Only a token the issuer signed can be remembered as expired: expired
/// forgeries (another key, a swapped signature, an unknown kid, `none`)
/// are checked every time and keep their own reason, and a token one byte
/// away from a remembered expired one is judged on its own.
#[tokio::test]
async fn only_an_issuer_signed_expired_token_is_answered_expired_from_the_cache() {
    let gate = Gate::start().await;
    let old = expired_claims("mallory");
    let forgeries = [
        (
            keys().mint_signed_by(
                "OTHER-RS256",
                &json!({"alg": "RS256", "kid": "rsa-1"}),
                &old,
            ),
            BAD_SIGNATURE,
        ),
        (
            support::hs256_with_key(&[7u8; 48], &json!({"alg": "HS256"}), &old),
            BAD_SIGNATURE,
        ),
        (
            keys().mint_with_header(&json!({"alg": "ES256", "kid": "ec-9"}), &old),
            UNKNOWN_KID,
        ),
        (
            format!(
                "{}.",
                support::keys::signing_input(&json!({"alg": "none"}), &old)
            ),
            DISALLOWED_ALG,
        ),
    ];
    for (token, expected) in &forgeries {
        assert_eq!(refused_twice(&gate, token, *expected).await, 0.0, "{token}");
    }
    assert_eq!(gate.tollgate.metric("tollgate_cache_entries").await, 0.0);

    // The real thing: refused as expired, then answered from the cache.
    let expired = keys().mint("ES256", &expired_claims("alice"));
    assert_eq!(refused_twice(&gate, &expired, EXPIRED).await, 1.0);

    // Its neighbours: fresh claims under its signature, and its signature
    // with one character changed.
    let revived = swap_claims(&expired, &claims("alice"));
    assert_eq!(refused_twice(&gate, &revived, BAD_SIGNATURE).await, 0.0);
    let mut tweaked = expired.clone();
    let last = tweaked.pop().expect("a signature");
    tweaked.push(if last == 'A' { 'Q' } else { 'A' });
    assert_eq!(refused_twice(&gate, &tweaked, BAD_SIGNATURE).await, 0.0);
    gate.assert_nothing_forwarded();
}

/// An expired entry never turns into a pass: not after a reload, not after
/// the secret it verified under is rotated away, and a token of the same
/// subject minted afresh passes beside it.
#[tokio::test]
async fn an_expired_entry_never_lets_a_request_through_across_reloads_and_rotation() {
    let gate = Gate::start().await;
    let expired = keys().mint("HS256", &expired_claims("alice"));
    assert_eq!(refused_twice(&gate, &expired, EXPIRED).await, 1.0);

    // Same config, new generation: checked again, still expired.
    gate.tollgate
        .reload(support::Harness::new(gate.recorder.addr()));
    assert_eq!(refused_twice(&gate, &expired, EXPIRED).await, 1.0);

    // The secret rotated away: now its signature no longer holds.
    let rotated = support::Harness::new(gate.recorder.addr())
        .with_secret("another-secret-of-at-least-64-bytes-since-the-harness-allows-hs512");
    gate.tollgate.reload(rotated);
    assert_eq!(refused_twice(&gate, &expired, BAD_SIGNATURE).await, 0.0);
    gate.assert_nothing_forwarded();

    let fresh = keys().mint("ES256", &claims("alice"));
    let answer = gate.get(PATH).bearer(&fresh).send().await;
    gate.assert_forwarded_once(&answer);
}

// --- Answers built once per snapshot ----------------------------------------

/// A reload that renames the service publishes a new snapshot (a rotated
/// secret shows it is in force), but the service name needs a restart:
/// every prebuilt answer keeps the running realm, the RFC 6750 error code
/// and status, and never echoes the token.
#[tokio::test]
async fn answers_rebuilt_by_a_reload_keep_the_running_realm_and_echo_no_token() {
    let recorder = Recorder::start().await;
    let mut site = Watched::new();
    site.write("hmac.key", SECRET_OLD);
    let provider = site.secret_file("hmac.key");
    site.write(CONFIG, &config(recorder.addr(), "", &provider, ""));
    site.start(CONFIG, &[]).await;

    site.write("new.key", SECRET_NEW);
    let renamed = config(recorder.addr(), "", &site.secret_file("new.key"), "")
        .replace("service = \"game-api\"", "service = \"renamed-api\"");
    site.write(CONFIG, &renamed);
    let header = json!({"alg": "HS256"});
    let fresh = hs256_with_key(SECRET_NEW.as_bytes(), &header, &claims("alice"));
    site.wait_for_status(PATH, Some(&fresh), 200).await;
    assert_eq!(&*site.running().state().load().settings.service, "game-api");

    let old = hs256_with_key(SECRET_OLD.as_bytes(), &header, &claims("alice"));
    let expired = hs256_with_key(SECRET_NEW.as_bytes(), &header, &expired_claims("alice"));
    let cases = [
        (
            Some(old.as_str()),
            401,
            "invalid_token",
            "the token signature is invalid",
        ),
        (
            Some(expired.as_str()),
            401,
            "invalid_token",
            "the token has expired",
        ),
        (
            Some(expired.as_str()),
            401,
            "invalid_token",
            "the token has expired",
        ),
        (
            Some("notajwt-xyzzy.plugh"),
            401,
            "invalid_token",
            "the token is not a well-formed JWT",
        ),
    ];
    for (token, status, error, description) in cases {
        let answer = site.get(PATH, token).await;
        assert_eq!(answer.status, status, "{answer:?}");
        let challenge = format!(
            "Bearer realm=\"game-api\", error=\"{error}\", error_description=\"{description}\""
        );
        assert_eq!(answer.header("www-authenticate"), Some(&*challenge));
        assert_eq!(answer.json()["error"], error);
        let shown = format!("{:?}{}", answer.headers, answer.text());
        let token = token.unwrap_or_default();
        assert!(
            token.split('.').all(|part| !shown.contains(part)),
            "{shown}"
        );
    }
    let answer = site.get(PATH, None).await;
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"game-api\"")
    );
    assert_eq!(
        recorder.requests().len(),
        1,
        "only the fresh token was forwarded"
    );
    site.shutdown().await;
}

// --- The default HTTP/1 header cap -------------------------------------------

/// Reads the proxy listener's `header_too_large` count once it reaches 1,
/// or what it holds when the bounded wait gives up.
async fn header_too_large_count(gate: &Gate) -> f64 {
    let labels = [("listener", "proxy"), ("limit", "header_too_large")];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let metrics = gate.tollgate.metrics().await;
        let counted = metric_matching(&metrics, "tollgate_connection_limits_total", &labels);
        if counted >= 1.0 || tokio::time::Instant::now() >= deadline {
            return counted;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Whether tollgate leaves the header cap to hyper (the default, or 100
/// written out) or sets it, a request over the cap gets 431, is counted as
/// `header_too_large`, and reaches nothing.
#[tokio::test]
async fn over_the_header_cap_the_refusal_is_counted_whoever_sets_the_cap() {
    for (limits, cap) in [
        ("", 100),
        ("max_headers = 100\n", 100),
        ("max_headers = 40\n", 40),
    ] {
        let gate = Gate::with(|harness| harness.with_extra(&format!("[limits]\n{limits}"))).await;
        let lines: Vec<String> = (0..cap).map(|at| format!("X-Field-{at}: {at}")).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut connection = RawConnection::connect(gate.tollgate.addr()).await;
        let answer = connection
            .send(&request_head("GET", "/public/x", &lines))
            .await;
        assert_eq!(answer.status, 431, "{limits:?}: {answer:?}");
        assert_eq!(header_too_large_count(&gate).await, 1.0, "{limits:?}");
        gate.assert_nothing_forwarded();
    }
}
