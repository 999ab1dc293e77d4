//! The claim checks: times against the clock, the audience and `sub`.
//!
//! The time lines say how far off each time is from now, with the leeway,
//! because that is where clock skew between the issuer and this machine
//! shows: a token refused as `not_yet_valid` a minute after it was issued
//! means one of the two clocks is wrong.

use serde_json::{Map, Value};

use super::Check;
use crate::auth::{Provider, Reason, holds_audience, numeric_date};
use crate::config::ClaimPath;
use crate::inspect::clock::{span, timestamp};
use crate::inspect::text::{compact, json_type, list, quoted};

/// Pushes the `exp`, `nbf`, `iat`, `audience` and `sub` lines.
pub(super) fn push_checks(
    checks: &mut Vec<Check>,
    provider: &Provider,
    claims: &Map<String, Value>,
    now: f64,
) {
    let leeway = provider.leeway;
    checks.push(exp_check(claims.get("exp"), now, leeway));
    checks.push(nbf_check(claims.get("nbf"), now, leeway));
    checks.push(iat_check(claims.get("iat"), now));
    checks.push(audience_check(provider, claims));
    checks.push(sub_check(provider, claims.get("sub")));
}

/// Reads a time claim as the verifier does, or says why it cannot be one.
fn time_of(name: &'static str, value: Option<&Value>) -> Result<Option<f64>, Check> {
    numeric_date(value).map_err(|reason| {
        let found = value.map_or("nothing", json_type);
        let why = format!("`{name}` must be a number of seconds; it is a JSON {found}");
        Check::fail(name, reason, why)
    })
}

fn exp_check(value: Option<&Value>, now: f64, leeway: f64) -> Check {
    let exp = match time_of("exp", value) {
        Ok(Some(exp)) => exp,
        Ok(None) => {
            return Check::fail(
                "exp",
                Reason::InvalidClaims,
                "no `exp`; tollgate requires one",
            );
        }
        Err(check) => return check,
    };
    let at = timestamp(exp);
    let grace = format!("leeway {}", span(leeway));
    if now >= exp + leeway {
        let why = format!("expired {} ago, at {at} ({grace})", span(now - exp));
        return Check::fail("exp", Reason::Expired, why);
    }
    if now >= exp {
        let detail = format!(
            "expired {} ago, at {at}, but still accepted for {} ({grace}; clock skew?)",
            span(now - exp),
            span(exp + leeway - now)
        );
        return Check::pass("exp", detail);
    }
    Check::pass(
        "exp",
        format!(
            "valid for another {}, until {at} ({grace})",
            span(exp - now)
        ),
    )
}

fn nbf_check(value: Option<&Value>, now: f64, leeway: f64) -> Check {
    let nbf = match time_of("nbf", value) {
        Ok(Some(nbf)) => nbf,
        Ok(None) => return Check::pass("nbf", "absent"),
        Err(check) => return check,
    };
    let at = timestamp(nbf);
    let grace = format!("leeway {}", span(leeway));
    if now + leeway < nbf {
        let why = format!(
            "not valid for another {}, from {at} ({grace}); clock skew: \
             this machine's clock may be behind the issuer's",
            span(nbf - now)
        );
        return Check::fail("nbf", Reason::NotYetValid, why);
    }
    if now < nbf {
        let detail = format!(
            "starts in {}, at {at}, accepted within the {grace}; clock skew: \
             this machine's clock may be behind the issuer's",
            span(nbf - now)
        );
        return Check::pass("nbf", detail);
    }
    Check::pass(
        "nbf",
        format!("valid since {} ago, at {at}", span(now - nbf)),
    )
}

/// `iat` is only required to be a number (and read by `issued_before`);
/// when it lies in the future it is shown, because that is skew too.
fn iat_check(value: Option<&Value>, now: f64) -> Check {
    let iat = match time_of("iat", value) {
        Ok(Some(iat)) => iat,
        Ok(None) => return Check::pass("iat", "absent"),
        Err(check) => return check,
    };
    let at = timestamp(iat);
    if iat > now + 1.0 {
        return Check::note(
            "iat",
            format!(
                "issued {} in the future, at {at}; clock skew: the issuer's clock \
                 is ahead of this machine's (not refused for that)",
                span(iat - now)
            ),
        );
    }
    Check::pass("iat", format!("issued {} ago, at {at}", span(now - iat)))
}

/// Checks the audience claim, and `aud` too when the provider reads
/// another claim, exactly as the verifier does.
fn audience_check(provider: &Provider, claims: &Map<String, Value>) -> Check {
    let accepted = list(provider.audiences.iter().map(String::as_str));
    let name = claim_name(&provider.audience_claim);
    let found = provider.audience_claim.find(claims);
    let mut detail = format!("{name} = {} (accepted: {accepted})", shown(found));
    let mut result = holds_audience(provider, found);

    let reads_aud = matches!(&provider.audience_claim, ClaimPath::Name(n) if n == "aud");
    if let (false, Some(aud)) = (reads_aud, claims.get("aud")) {
        detail.push_str(&format!("; aud = {} must hold one too", compact(aud)));
        result = result.and_then(|()| holds_audience(provider, Some(aud)));
    }
    match result {
        Ok(()) => Check::pass("audience", detail),
        Err(Reason::InvalidClaims) => Check::fail(
            "audience",
            Reason::InvalidClaims,
            format!("{detail}: an audience is a string or an array of strings"),
        ),
        Err(reason) => Check::fail("audience", reason, detail),
    }
}

fn sub_check(provider: &Provider, value: Option<&Value>) -> Check {
    match value {
        None if !provider.require_sub => {
            Check::pass("sub", "absent, allowed (require_sub = false)")
        }
        None => Check::fail(
            "sub",
            Reason::InvalidClaims,
            "no `sub` (require_sub = true)",
        ),
        Some(Value::String(sub)) if !sub.is_empty() => Check::pass("sub", quoted(sub)),
        Some(Value::String(_)) => Check::fail("sub", Reason::InvalidClaims, "`sub` is empty"),
        Some(other) => Check::fail(
            "sub",
            Reason::InvalidClaims,
            format!("`sub` is a JSON {}, not a string", json_type(other)),
        ),
    }
}

/// Names a claim as the config writes it.
pub(super) fn claim_name(path: &ClaimPath) -> &str {
    match path {
        ClaimPath::Name(name) | ClaimPath::Pointer(name) => name,
    }
}

/// Shows a found claim, or says it is absent.
fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_owned(), compact)
}
