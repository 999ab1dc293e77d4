//! Attack 9 on the claims read twice: a first pass that builds nothing
//! and borrows `iss`, then the full map once the signature holds.
//!
//! Each case is a claims segment written by hand (escaped names, repeats
//! deep down or past the sixteen names kept in place, lone surrogates, a
//! byte order mark, trailing bytes, huge numbers, deep nesting, thousands
//! of members), signed with the provider's real secret or with a wrong
//! one. The verifier must give the reason of the earliest check in the
//! documented order, and `tollgate inspect`'s report the same verdict,
//! with its first failing check naming it.

mod support;

use std::sync::Arc;
use std::time::Instant;

use http::Method;
use tollgate::auth;
use tollgate::config;
use tollgate::env::Env;
use tollgate::inspect::{Report, RequestLine};
use tollgate::state::{Snapshot, State};
use tollgate::telemetry::Metrics;

use support::binary::{self, SECRET_ENV};
use support::keys::b64;
use support::{AUDIENCE, ISSUER, keys, now};

/// The snapshot every case is judged under: HS256 with the test secret,
/// tokens up to 64 KiB so that large objects reach the JSON reader.
fn snapshot() -> Arc<Snapshot> {
    let text = format!(
        "{}\n[limits]\nmax_token_bytes = 65536\n",
        binary::config("attack9", "http://127.0.0.1:9")
    );
    let settings = config::from_str(&text, "attack9.toml").expect("the config parses");
    let env = Env::from_vars([(SECRET_ENV, keys().secret_text())]);
    let state = State::try_new(settings, &env, Metrics::new()).expect("the keys load");
    state.load()
}

/// The members a good token needs, as JSON text without braces.
fn good_members() -> String {
    format!(
        r#""iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{}"#,
        now() + 3600
    )
}

/// Signs raw claims bytes under an HS256 header, with the real secret or,
/// when `forged`, a signature that cannot verify.
fn token(claims: &[u8], forged: bool) -> String {
    let input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims));
    let mut signature = keys().sign("HS256", input.as_bytes());
    if forged {
        signature[0] ^= 1;
    }
    format!("{input}.{}", b64(&signature))
}

/// The verifier's answer: `ok` or the refusal reason.
fn verdict(snapshot: &Snapshot, token: &str) -> &'static str {
    match auth::verify(token, &snapshot.providers, now() as f64) {
        Ok(_) => "ok",
        Err(refusal) => refusal.reason.as_str(),
    }
}

/// Judges one case by the verifier and by inspect, which must agree with
/// each other and with `expected`.
fn judge(snapshot: &Arc<Snapshot>, name: &str, claims: &[u8], forged: bool, expected: &str) {
    let token = token(claims, forged);
    let proxy = verdict(snapshot, &token);
    let request = RequestLine {
        method: Method::GET,
        path: Some("/api/x".to_owned()),
    };
    let report = Report::offline(Arc::clone(snapshot), request, &token, now() as f64);
    assert_eq!(proxy, expected, "{name}: the verifier's reason");
    assert_eq!(report.verdict(), expected, "{name}: inspect's verdict");
    assert!(
        report.is_consistent(),
        "{name}: inspect's first failing check"
    );
}

/// `count` members `"<prefix><n>":n`, joined with commas.
fn members(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|at| format!(r#""{prefix}{at}":{at}"#))
        .collect()
}

#[test]
fn escaped_names_pick_the_provider_and_count_as_repeats() {
    let snapshot = snapshot();
    let good = good_members();
    let exp = now() + 3600;
    let escaped_iss =
        format!(r#"{{"is\u0073":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{exp}}}"#);
    judge(
        &snapshot,
        "escaped iss",
        escaped_iss.as_bytes(),
        false,
        "ok",
    );

    let twice = format!(r#"{{{good},"is\u0073":"{ISSUER}"}}"#);
    judge(
        &snapshot,
        "iss and is\\u0073",
        twice.as_bytes(),
        false,
        "malformed",
    );
    judge(
        &snapshot,
        "iss twice, forged",
        twice.as_bytes(),
        true,
        "malformed",
    );

    let sub_twice = format!(r#"{{{good},"s\u0075b":"mallory"}}"#);
    judge(
        &snapshot,
        "sub and s\\u0075b",
        sub_twice.as_bytes(),
        false,
        "malformed",
    );

    let other_issuer =
        format!(r#"{{{good},"x":{{"a":1,"\u0061":2}}}}"#).replace(ISSUER, "https://elsewhere.test");
    judge(
        &snapshot,
        "repeat under a wrong issuer",
        other_issuer.as_bytes(),
        true,
        "malformed",
    );
}

#[test]
fn repeats_past_the_names_kept_in_place_are_found_at_every_depth() {
    let snapshot = snapshot();
    let good = good_members();
    for count in [15, 16, 17, 40] {
        let unique = members("m", count).join(",");
        let nested = format!(r#"{{{good},"deep":[{{"o":{{{unique}}}}}]}}"#);
        judge(
            &snapshot,
            &format!("{count} unique"),
            nested.as_bytes(),
            false,
            "ok",
        );

        for at in [0, count / 2, count - 1] {
            let mut repeated = members("m", count);
            repeated.push(format!(r#""m{at}":"again""#));
            let object = repeated.join(",");
            let nested = format!(r#"{{{good},"deep":[{{"o":{{{object}}}}}]}}"#);
            let name = format!("{count} members, m{at} repeated");
            judge(&snapshot, &name, nested.as_bytes(), false, "malformed");
            judge(&snapshot, &name, nested.as_bytes(), true, "malformed");
        }
    }

    // Seventeen top-level members, the repeat being `iss` itself, last.
    let extra = members("c", 13).join(",");
    let top = format!(r#"{{{good},{extra},"iss":"{ISSUER}"}}"#);
    judge(
        &snapshot,
        "iss repeated as the 18th",
        top.as_bytes(),
        false,
        "malformed",
    );
}

#[test]
fn json_edge_cases_get_one_reason_from_both_readers() {
    let snapshot = snapshot();
    let good = good_members();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "lone surrogate",
            format!(r#"{{{good},"x":"\ud800"}}"#).into(),
            "malformed",
        ),
        (
            "lone low surrogate",
            format!(r#"{{{good},"x":"\udc00"}}"#).into(),
            "malformed",
        ),
        (
            "surrogate pair",
            format!(r#"{{{good},"x":"\ud83d\ude00"}}"#).into(),
            "ok",
        ),
        (
            "lone surrogate in a name",
            format!(r#"{{{good},"\ud800":1}}"#).into(),
            "malformed",
        ),
        (
            "byte order mark",
            [&b"\xef\xbb\xbf"[..], format!("{{{good}}}").as_bytes()].concat(),
            "malformed",
        ),
        ("trailing byte", format!("{{{good}}}x").into(), "malformed"),
        (
            "trailing object",
            format!("{{{good}}}{{}}").into(),
            "malformed",
        ),
        (
            "trailing whitespace",
            format!("{{{good}}}\n\t ").into(),
            "ok",
        ),
        (
            "raw control byte",
            format!("{{{good},\"x\":\"a\u{1}b\"}}").into(),
            "malformed",
        ),
        (
            "invalid UTF-8",
            [format!("{{{good},\"x\":\"").as_bytes(), b"\xff\"}"].concat(),
            "malformed",
        ),
        (
            "number out of range",
            format!(r#"{{{good},"n":1e400}}"#).into(),
            "malformed",
        ),
        (
            "huge integer",
            format!(r#"{{{good},"n":{}}}"#, "9".repeat(300)).into(),
            "ok",
        ),
        (
            "nbf far in the past",
            format!(r#"{{{good},"nbf":-1e308}}"#).into(),
            "ok",
        ),
        (
            "array at the top",
            format!("[{{{good}}}]").into(),
            "malformed",
        ),
        (
            "iss a number",
            format!(r#"{{"iss":1,"aud":"{AUDIENCE}","exp":1}}"#).into(),
            "invalid_claims",
        ),
        (
            "iss an object with a repeat",
            br#"{"iss":{"a":1,"a":1},"exp":1}"#.to_vec(),
            "malformed",
        ),
        (
            "no iss, a repeat",
            br#"{"sub":"a","x":[{"k":1,"k":2}]}"#.to_vec(),
            "malformed",
        ),
    ];
    for (name, claims, expected) in &cases {
        judge(&snapshot, name, claims, false, expected);
    }
    // The same faults with a forged signature: syntax comes first, and a
    // clean token's fault is the signature.
    for (name, claims, expected) in &cases {
        let expected = if *expected == "ok" {
            "bad_signature"
        } else {
            expected
        };
        judge(&snapshot, name, claims, true, expected);
    }
}

#[test]
fn two_faults_get_the_earliest_reason() {
    let snapshot = snapshot();
    let exp = now() + 3600;
    let past = now() - 3600;
    let cases = [
        // A forged signature comes before any claim.
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"other","sub":"a","exp":{past}}}"#),
            true,
            "bad_signature",
        ),
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":"{exp}"}}"#),
            true,
            "bad_signature",
        ),
        // Then the times' types, then expiry, then the audience, then sub.
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"other","sub":"a","exp":{past},"iat":"x"}}"#),
            false,
            "invalid_claims",
        ),
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"other","sub":"","exp":{past}}}"#),
            false,
            "expired",
        ),
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"other","sub":"","exp":{exp}}}"#),
            false,
            "wrong_audience",
        ),
        // An unknown issuer beats a bad signature; a repeat beats both.
        (
            format!(r#"{{"iss":"x","aud":"{AUDIENCE}","exp":{past}}}"#),
            true,
            "wrong_issuer",
        ),
        (
            format!(r#"{{"iss":"x","aud":{{"a":[],"a":[]}},"exp":{past}}}"#),
            true,
            "malformed",
        ),
    ];
    for (claims, forged, expected) in &cases {
        judge(&snapshot, claims, claims.as_bytes(), *forged, expected);
    }
}

#[test]
fn nesting_to_the_parser_limit_and_past_it() {
    let snapshot = snapshot();
    let good = good_members();
    // serde_json's depth limit: the claims object with 126 arrays inside
    // passes, with 127 it does not, for both readers alike.
    for (depth, expected) in [
        (125, "ok"),
        (126, "ok"),
        (127, "malformed"),
        (5_000, "malformed"),
    ] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let claims = format!(r#"{{{good},"d":{nested}}}"#);
        judge(
            &snapshot,
            &format!("depth {depth}"),
            claims.as_bytes(),
            false,
            expected,
        );
    }
    let objects = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
    let claims = format!(r#"{{{good},"d":{objects}}}"#);
    judge(
        &snapshot,
        "200 nested objects",
        claims.as_bytes(),
        true,
        "malformed",
    );
}

#[test]
fn thousands_of_members_stay_cheap() {
    let snapshot = snapshot();
    let good = good_members();
    // Near the 64 KiB token bound: base64 grows the claims by a third.
    let many = members("m", 3_000).join(",");
    let unique = format!(r#"{{{good},"o":{{{many}}}}}"#);
    let repeated = format!(r#"{{{good},"o":{{{many},"m2999":0}}}}"#);
    // Names that share a long prefix, all of one length.
    let prefix = "p".repeat(40);
    let alike = members(&prefix, 600).join(",");
    let alike = format!(r#"{{{good},"o":{{{alike}}}}}"#);
    // Many small objects of seventeen members, each spilling its names.
    let small = format!("{{{}}}", members("s", 17).join(","));
    let spilled = vec![small; 250].join(",");
    let spilled = format!(r#"{{{good},"o":[{spilled}]}}"#);

    let started = Instant::now();
    judge(&snapshot, "3,000 members", unique.as_bytes(), false, "ok");
    judge(
        &snapshot,
        "3,000 members, forged",
        unique.as_bytes(),
        true,
        "bad_signature",
    );
    judge(
        &snapshot,
        "3,001 members, a repeat",
        repeated.as_bytes(),
        true,
        "malformed",
    );
    judge(&snapshot, "600 alike names", alike.as_bytes(), false, "ok");
    judge(
        &snapshot,
        "250 objects of 17",
        spilled.as_bytes(),
        true,
        "bad_signature",
    );
    let elapsed = started.elapsed();
    // Generous for a debug build on a loaded machine: a square would take
    // far longer.
    assert!(elapsed.as_secs() < 5, "took {elapsed:?}");
}
