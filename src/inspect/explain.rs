//! The per-check explanation: every check the verifier makes, one line
//! each, with what it found.
//!
//! The explanation is computed alongside the verdict, not instead of it:
//! the verdict always comes from [`crate::auth`] (see `verdict.rs`). The
//! checks here reuse the verifier's helpers where it has them and keep its
//! order, so the first failing check names the verdict's reason; a unit
//! test holds the two together for every reason.

mod claims;
mod identity;

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use self::identity::IdentityChecks;
use super::decode::Decoded;
use super::text::{json_type, list, quoted};
use crate::auth::{self, Identity, Provider, Reason};
use crate::keys::{KeyChoice, KeyKind, PublicKey};
use crate::state::Snapshot;

/// Says how one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// The check holds.
    Pass,
    /// The check fails; the verifier would refuse with this reason.
    Fail(Reason),
    /// The check was not reached, or does not apply.
    Skip,
    /// Shown for information; tollgate does not check it (`iat` in the
    /// future, say).
    Note,
}

/// One line of the explanation.
#[derive(Clone, Debug)]
pub(crate) struct Check {
    /// What was checked: `syntax`, `exp`, `audience`, ...
    pub(crate) name: &'static str,
    /// How it came out.
    pub(crate) mark: Mark,
    /// What was found, for a person.
    pub(crate) detail: String,
}

impl Check {
    fn new(name: &'static str, mark: Mark, detail: impl Into<String>) -> Self {
        Check {
            name,
            mark,
            detail: detail.into(),
        }
    }

    pub(crate) fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Mark::Pass, detail)
    }

    pub(crate) fn fail(name: &'static str, reason: Reason, detail: impl Into<String>) -> Self {
        Self::new(name, Mark::Fail(reason), detail)
    }

    pub(crate) fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Mark::Skip, detail)
    }

    pub(crate) fn note(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Mark::Note, detail)
    }

    fn failed(&self) -> Option<Reason> {
        match self.mark {
            Mark::Fail(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Names every token check, in the verifier's order, so a check that was
/// not reached still gets its line.
const TOKEN_CHECKS: [&str; 14] = [
    "token",
    "syntax",
    "issuer",
    "algorithm",
    "key",
    "signature",
    "exp",
    "nbf",
    "iat",
    "audience",
    "sub",
    "roles",
    "identity",
    "revocation",
];

/// The three time claims, whose types the verifier reads before it
/// compares any of them with the clock.
const TIME_CHECKS: [&str; 3] = ["exp", "nbf", "iat"];

/// What the explainer found in a token.
#[derive(Debug)]
pub(crate) struct Explanation {
    /// The token taken apart.
    pub(crate) decoded: Decoded,
    /// The provider the `iss` picked, by index.
    pub(crate) provider: Option<usize>,
    /// One line per check, in the verifier's order.
    pub(crate) checks: Vec<Check>,
    /// The identity the claims yield, when they yield one.
    pub(crate) identity: Option<Identity>,
}

impl Explanation {
    /// Returns the reason of the first failing check, in the verifier's
    /// order: what the verifier is expected to answer.
    pub(crate) fn first_failure(&self) -> Option<Reason> {
        let time_type = self
            .checks
            .iter()
            .filter(|check| TIME_CHECKS.contains(&check.name))
            .filter_map(Check::failed)
            .find(|reason| *reason == Reason::InvalidClaims);
        self.checks.iter().find_map(|check| {
            if TIME_CHECKS.contains(&check.name) {
                time_type.or(check.failed())
            } else {
                check.failed()
            }
        })
    }
}

/// Explains every check on `token` under `snapshot` at `now`.
pub(crate) fn explain(snapshot: &Snapshot, token: &str, now: f64) -> Explanation {
    let decoded = Decoded::read(token);
    let mut explanation = Explanation {
        decoded,
        provider: None,
        checks: Vec::new(),
        identity: None,
    };
    let max = snapshot.settings.limits.max_token_bytes;
    let checks = &mut explanation.checks;

    checks.push(length_check(token, max));
    checks.push(match &explanation.decoded.fault {
        Some(why) => Check::fail("syntax", Reason::Malformed, why.clone()),
        None => Check::pass(
            "syntax",
            "three base64url segments; header and claims are JSON objects",
        ),
    });
    let objects = (
        explanation.decoded.header.object(),
        explanation.decoded.claims.object(),
    );
    let (Some(header), Some(claims), None) = (objects.0, objects.1, first_fail(checks)) else {
        skip_rest(checks, "the token is malformed");
        return explanation;
    };

    let (check, picked) = issuer_check(claims, snapshot);
    checks.push(check);
    let Some((at, provider)) = picked else {
        skip_rest(checks, "no provider was picked");
        return explanation;
    };
    explanation.provider = Some(at);

    let header = Header::read(header);
    signature_checks(checks, provider, &header, token, snapshot, now);
    claims::push_checks(checks, provider, claims, now);
    let built = IdentityChecks::run(at, provider, claims);
    checks.extend(built.checks);
    explanation.identity = built.identity;
    explanation
}

/// The first failure among the checks so far.
fn first_fail(checks: &[Check]) -> Option<Reason> {
    checks.iter().find_map(Check::failed)
}

/// Adds a skipped line for every token check not yet listed.
fn skip_rest(checks: &mut Vec<Check>, why: &str) {
    for name in TOKEN_CHECKS.iter().skip(checks.len()) {
        checks.push(Check::skip(name, format!("not reached: {why}")));
    }
}

/// What `bearer_token` refuses before the verifier sees anything.
fn length_check(token: &str, max: usize) -> Check {
    if token.is_empty() {
        return Check::fail("token", Reason::Malformed, "no token was given");
    }
    let size = token.len();
    if size > max {
        let why = format!("{size} bytes, over limits.max_token_bytes ({max})");
        return Check::fail("token", Reason::Malformed, why);
    }
    Check::pass("token", format!("{size} bytes (limit {max})"))
}

/// Finds the provider by `iss`, as the verifier does.
fn issuer_check<'s>(
    claims: &Map<String, Value>,
    snapshot: &'s Snapshot,
) -> (Check, Option<(usize, &'s Provider)>) {
    let providers = &snapshot.providers;
    let iss = match claims.get("iss") {
        Some(Value::String(iss)) => iss,
        Some(other) => {
            let why = format!("`iss` is a JSON {}, not a string", json_type(other));
            return (Check::fail("issuer", Reason::InvalidClaims, why), None);
        }
        None => {
            let why = "no `iss` claim; tollgate picks the provider by it";
            return (Check::fail("issuer", Reason::InvalidClaims, why), None);
        }
    };
    match providers.by_issuer(iss) {
        Some((at, provider)) => {
            let detail = format!("{} picks provider {}", quoted(iss), provider.name);
            (Check::pass("issuer", detail), Some((at, provider)))
        }
        None => {
            let known = list(providers.list().iter().map(|p| p.issuer.as_str()));
            let why = format!("{} matches no provider; configured: {known}", quoted(iss));
            (Check::fail("issuer", Reason::WrongIssuer, why), None)
        }
    }
}

// --- Algorithm, key and signature ---

/// The JOSE header members the checks read; the syntax check has made
/// sure `alg` is a string and `kid` one when present.
struct Header<'a> {
    alg: &'a str,
    kid: Option<&'a str>,
}

impl<'a> Header<'a> {
    fn read(header: &'a Map<String, Value>) -> Self {
        Header {
            alg: header.get("alg").and_then(Value::as_str).unwrap_or(""),
            kid: header.get("kid").and_then(Value::as_str),
        }
    }
}

/// Pushes the algorithm, key and signature lines.
fn signature_checks(
    checks: &mut Vec<Check>,
    provider: &Provider,
    header: &Header<'_>,
    token: &str,
    snapshot: &Snapshot,
    now: f64,
) {
    let (check, alg) = algorithm_check(provider, header.alg);
    checks.push(check);
    let Some(alg) = alg else {
        checks.push(Check::skip("key", "not reached: the algorithm was refused"));
        checks.push(Check::skip(
            "signature",
            "not reached: the algorithm was refused",
        ));
        return;
    };

    let (check, key) = key_check(provider, alg, header.kid);
    checks.push(check);
    let Some(key) = key else {
        checks.push(Check::skip("signature", "not reached: no key was chosen"));
        return;
    };

    // The signature is the one check not repeated here: the verifier is
    // asked, so no second copy of the crypto exists to disagree with it.
    let verified = auth::verify(token, &snapshot.providers, now);
    checks.push(match verified {
        Err(refusal) if refusal.reason == Reason::BadSignature => Check::fail(
            "signature",
            Reason::BadSignature,
            format!("does not verify with {key}: signed with another key, or altered"),
        ),
        Err(refusal) if is_before_signature(refusal) => Check::skip(
            "signature",
            format!(
                "the verifier stopped before it: {}",
                refusal.reason.as_str()
            ),
        ),
        Ok(_) | Err(_) => Check::pass("signature", format!("verifies with {key}")),
    });
}

/// Says whether the verifier refused before it checked the signature.
fn is_before_signature(refusal: auth::Refusal) -> bool {
    refusal.provider.is_none()
        || matches!(
            refusal.reason,
            Reason::DisallowedAlg | Reason::NoKeys | Reason::UnknownKid
        )
}

/// Checks `alg` against the provider's allowlist.
fn algorithm_check(provider: &Provider, name: &str) -> (Check, Option<Algorithm>) {
    let allowlist = algorithm_names(&provider.algorithms);
    let Ok(alg) = name.parse::<Algorithm>() else {
        let why = if name.eq_ignore_ascii_case("none") {
            format!("{}: an unsigned token, never accepted", quoted(name))
        } else {
            format!("{} is not an algorithm tollgate knows", quoted(name))
        };
        return (Check::fail("algorithm", Reason::DisallowedAlg, why), None);
    };
    if !provider.allows(alg) {
        let why = format!("{alg:?} is not in the allowlist ({allowlist})");
        return (Check::fail("algorithm", Reason::DisallowedAlg, why), None);
    }
    let detail = format!("{alg:?} is in the allowlist ({allowlist})");
    (Check::pass("algorithm", detail), Some(alg))
}

fn algorithm_names(algorithms: &[Algorithm]) -> String {
    let names: Vec<String> = algorithms.iter().map(|alg| format!("{alg:?}")).collect();
    names.join(", ")
}

/// Picks the key as the verifier does, and describes it, or why none fits.
fn key_check(provider: &Provider, alg: Algorithm, kid: Option<&str>) -> (Check, Option<String>) {
    let keys = &provider.keys;
    if keys.is_empty() {
        let why = "the provider holds no key (a jwks_uri whose fetch failed leaves none)";
        return (Check::fail("key", Reason::NoKeys, why), None);
    }
    match keys.choose(alg, kid) {
        KeyChoice::Secrets([]) => {
            let why = format!("{alg:?} needs an HMAC secret and the provider has none");
            (Check::fail("key", Reason::NoKeys, why), None)
        }
        KeyChoice::Secrets(secrets) => {
            let count = secrets.len();
            let plural = if count == 1 { "" } else { "s" };
            let ignored = kid.map_or(String::new(), |kid| {
                format!("; kid {} is not used for HMAC", quoted(kid))
            });
            let detail = format!("HMAC, {count} secret{plural} to try{ignored}");
            (
                Check::pass("key", detail),
                Some("the HMAC secret".to_owned()),
            )
        }
        KeyChoice::Public(key) => {
            let named = describe_key(key);
            let how = if kid.is_some() {
                "matched by kid"
            } else {
                "no kid: the only key that fits"
            };
            (Check::pass("key", format!("{named}, {how}")), Some(named))
        }
        KeyChoice::WrongType => {
            let named = keys
                .public_keys()
                .iter()
                .find(|key| key.kid() == kid)
                .map_or_else(|| "the key".to_owned(), |key| describe_key(key));
            let why = format!("{named} cannot check {alg:?}");
            (Check::fail("key", Reason::DisallowedAlg, why), None)
        }
        KeyChoice::Unknown => (
            Check::fail("key", Reason::UnknownKid, unknown_key(provider, alg, kid)),
            None,
        ),
    }
}

/// Says why no key fits: an unknown kid, or no kid and not exactly one
/// candidate.
fn unknown_key(provider: &Provider, alg: Algorithm, kid: Option<&str>) -> String {
    let public = provider.keys.public_keys();
    if let Some(kid) = kid {
        let known = list(public.iter().filter_map(|key| key.kid()));
        return format!("no key has kid {}; known kids: {known}", quoted(kid));
    }
    let fitting = public.iter().filter(|key| key.allows(alg)).count();
    format!("no kid, and {fitting} keys could check {alg:?}; without a kid exactly one must")
}

/// Names a public key by kid and type, never by its material.
fn describe_key(key: &PublicKey) -> String {
    let kind = kind_name(key.kind());
    match key.kid() {
        Some(kid) => format!("kid {} ({kind})", quoted(kid)),
        None => format!("the {kind} key without a kid"),
    }
}

/// Names a key type as operators write it.
pub(crate) fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rsa => "RSA",
        KeyKind::EcP256 => "EC P-256",
        KeyKind::EcP384 => "EC P-384",
        KeyKind::Ed25519 => "Ed25519",
    }
}
