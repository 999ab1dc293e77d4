//! Verifying a compact JWS and checking its claims.
//!
//! The order of checks is deliberate: syntax, then the issuer (which picks
//! the provider and so the allowlist and keys), then the algorithm against
//! that allowlist and the key's type, then the signature, and only then the
//! claims. Nothing from the payload is trusted before the signature holds,
//! except `iss`, which only chooses whose keys to try.
//!
//! The claims are read twice for that reason. The first read, part of the
//! syntax check, proves them an object with unique members and borrows
//! `iss`, building nothing; the claims map is built only once the
//! signature holds. A flood of forged tokens (a bad signature, an unknown
//! key id) is refused without paying for a map it would never use, and a
//! token with two faults still gets the reason of the first one.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::strict_json::{MaybeText, Names, StrictObject, Text, Unique};
use super::{Identity, Provider, Providers, Reason, Refusal};
use crate::config::ClaimPath;
use crate::keys::KeyChoice;

/// Holds what a successful verification yields.
#[derive(Debug)]
pub struct Verified {
    /// The caller's identity.
    pub identity: Arc<Identity>,
    /// The Unix time (seconds) after which the token is expired, leeway
    /// included: a cached entry must not outlive it.
    pub not_after: f64,
}

/// Verifies a token against the providers at time `now` (Unix seconds).
pub fn verify(token: &str, providers: &Providers, now: f64) -> Result<Verified, Refusal> {
    let malformed = Refusal::early(Reason::Malformed);
    let parts = split(token).ok_or(malformed)?;
    let mut header_bytes = Vec::new();
    let header = JoseHeader::decode(parts.header, &mut header_bytes).ok_or(malformed)?;
    let signature = Signature::decode(parts.signature).ok_or(malformed)?;
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(parts.claims)
        .map_err(|_| malformed)?;
    let iss = ClaimsIssuer::read(&claims_bytes).ok_or(malformed)?.iss;

    let (at, provider) = match iss {
        Some(iss) => providers
            .by_issuer(&iss)
            .ok_or(Refusal::early(Reason::WrongIssuer))?,
        None => return Err(Refusal::early(Reason::InvalidClaims)),
    };
    let refuse = |reason| Refusal::by(at, reason);

    let message = parts.signing_input.as_bytes();
    check_signature(provider, &header, message, signature.bytes()).map_err(refuse)?;

    // The first read proved these bytes an object with unique members, so
    // this one cannot fail; were the two readers ever to disagree, the
    // token is refused rather than let through.
    let claims = strict_object(&claims_bytes).ok_or(malformed)?;
    // Freed before the identity is built, so that the identity, which a
    // cache entry keeps, can take its place on the heap: kept to the end,
    // the buffer left a hole beside every cached identity (6 MiB more at
    // 100,000 cached tokens, benches/memory.py).
    drop(claims_bytes);
    let checked = check_claims(provider, &claims, now).map_err(refuse)?;
    let identity = Identity::from_claims(at, provider, checked.subject, &claims).map_err(refuse)?;

    Ok(Verified {
        identity: Arc::new(identity),
        not_after: checked.not_after,
    })
}

// --- Syntax ---

/// The three base64url segments of a compact JWS, and the signing input.
struct Parts<'a> {
    header: &'a str,
    claims: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

/// Splits a token into exactly three segments.
///
/// The header and claims must not be empty; the signature may be, because
/// an unsecured JWT (RFC 7519 section 6) has none, and it must be counted as
/// the disallowed `none` it is rather than as malformed. An empty signature
/// never verifies under any real algorithm.
///
/// The segments' alphabet is not checked here: each one is decoded as
/// canonical base64url without padding (RFC 7515 section 2) before anything
/// in it counts, and that decoder refuses `+`, `/`, `=`, whitespace and any
/// other byte. A segment never decoded (the claims and signature of a token
/// refused on its header) never mattered.
fn split(token: &str) -> Option<Parts<'_>> {
    let mut segments = token.split('.');
    let (header, claims, signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() || header.is_empty() || claims.is_empty() {
        return None;
    }
    let signing_input = &token[..header.len() + 1 + claims.len()];
    Some(Parts {
        header,
        claims,
        signature,
        signing_input,
    })
}

/// Says whether a segment is canonical base64url, as header and claims are
/// made to be by [`decode_json`]; the crypto backend's own decoder may be
/// more lenient.
pub(crate) fn is_canonical_base64(segment: &str) -> bool {
    let mut buffer = [0u8; 1024];
    match URL_SAFE_NO_PAD.decode_slice(segment, &mut buffer) {
        Ok(_) => true,
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            URL_SAFE_NO_PAD.decode(segment).is_ok()
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => false,
    }
}

/// Decodes a segment into a JSON object, refusing duplicate members.
///
/// The decoder rejects non-canonical base64 (stray trailing bits), so one
/// token has exactly one spelling, which the cache relies on.
pub(crate) fn decode_json(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    strict_object(&bytes)
}

/// Builds the JSON object in `bytes`, refusing duplicate members.
fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let object: StrictObject = serde_json::from_slice(bytes).ok()?;
    Some(object.0)
}

/// The claims as read before the signature is checked: only `iss`, which
/// picks the provider.
///
/// Reading them this way checks everything [`decode_json`] does (a JSON
/// object, members unique at every depth) without building a map, so it
/// refuses exactly the claims the map would have refused, at the same step.
struct ClaimsIssuer<'a> {
    /// `iss` when it is a string; `None` when it is absent or is not one,
    /// which makes the claims invalid.
    iss: Option<Cow<'a, str>>,
}

impl<'a> ClaimsIssuer<'a> {
    /// Reads decoded claims; `None` when they are malformed.
    fn read(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl<'de> Deserialize<'de> for ClaimsIssuer<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsIssuerVisitor)
    }
}

struct ClaimsIssuerVisitor;

impl<'de> Visitor<'de> for ClaimsIssuerVisitor {
    type Value = ClaimsIssuer<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut iss = None;
        let mut names = Names::default();
        while let Some(Text(name)) = access.next_key()? {
            if name == "iss" {
                iss = access.next_value::<MaybeText>()?.0;
            } else {
                access.next_value::<Unique>()?;
            }
            names.push(name);
        }
        names.check()?;
        Ok(ClaimsIssuer { iss })
    }
}

// --- Header and signature ---

/// The JOSE header members tollgate acts on, read straight from the
/// decoded segment: no map is built for a header, which every token that
/// is checked at all, good or bad, has to have read.
struct JoseHeader<'a> {
    alg: Option<Algorithm>,
    kid: Option<Cow<'a, str>>,
}

impl<'a> JoseHeader<'a> {
    /// Decodes a header segment; `None` when it is malformed.
    ///
    /// The segment must be canonical base64url (see [`decode_json`]) of a
    /// JSON object whose members are unique at every depth, as for the
    /// claims. A `crit` member lists extensions the recipient must
    /// understand (RFC 7515 section 4.1.11); tollgate understands none, so
    /// any `crit` makes the token malformed. `alg` must be there, and `alg`
    /// and `kid` must be strings. An unknown or `none` algorithm is kept as
    /// `alg: None` and refused as disallowed once the provider is known.
    fn decode(segment: &str, buffer: &'a mut Vec<u8>) -> Option<Self> {
        *buffer = URL_SAFE_NO_PAD.decode(segment).ok()?;
        serde_json::from_slice(buffer).ok()
    }
}

impl<'de> Deserialize<'de> for JoseHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = JoseHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let (mut alg, mut kid) = (None, None);
        let mut names = Names::default();
        while let Some(Text(name)) = access.next_key()? {
            match &*name {
                "alg" => alg = Some(access.next_value::<Text>()?.0),
                "kid" => kid = Some(access.next_value::<Text>()?.0),
                "crit" => return Err(A::Error::custom("an extension marked critical")),
                _ => {
                    access.next_value::<Unique>()?;
                }
            }
            names.push(name);
        }
        names.check()?;
        let alg = alg.ok_or_else(|| A::Error::custom("no alg"))?;
        Ok(JoseHeader {
            alg: alg.parse().ok(),
            kid,
        })
    }
}

fn check_signature(
    provider: &Provider,
    header: &JoseHeader<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Reason> {
    let alg = match header.alg {
        Some(alg) if provider.allows(alg) => alg,
        _ => return Err(Reason::DisallowedAlg),
    };
    if provider.keys.is_empty() {
        return Err(Reason::NoKeys);
    }

    let good = match provider.keys.choose(alg, header.kid.as_deref()) {
        KeyChoice::Secrets([]) => return Err(Reason::NoKeys),
        KeyChoice::Secrets(secrets) => secrets
            .iter()
            .any(|secret| secret.verify(alg, message, signature)),
        KeyChoice::Public(key) => key.verify(alg, message, signature),
        KeyChoice::WrongType => return Err(Reason::DisallowedAlg),
        KeyChoice::Unknown => return Err(Reason::UnknownKid),
    };
    if good {
        Ok(())
    } else {
        Err(Reason::BadSignature)
    }
}

/// The longest signature any accepted algorithm makes: RSA with an
/// 8,192-bit modulus.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// A decoded signature, held on the stack.
struct Signature {
    buffer: [u8; MAX_SIGNATURE_BYTES],
    /// `None` for a canonical segment longer than any signature, which
    /// then never verifies.
    len: Option<usize>,
}

impl Signature {
    /// Decodes a signature segment; `None` when it is not canonical
    /// base64url (see [`is_canonical_base64`]).
    fn decode(segment: &str) -> Option<Self> {
        let mut buffer = [0u8; MAX_SIGNATURE_BYTES];
        let len = match URL_SAFE_NO_PAD.decode_slice(segment, &mut buffer) {
            Ok(len) => Some(len),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) if is_canonical_base64(segment) => {
                None
            }
            Err(_) => return None,
        };
        Some(Signature { buffer, len })
    }

    /// Returns the bytes; empty (which no algorithm accepts) when too long.
    fn bytes(&self) -> &[u8] {
        self.len.map_or(&[], |len| &self.buffer[..len])
    }
}

// --- Claims ---

/// What the claim checks yield.
struct CheckedClaims<'a> {
    subject: Option<&'a str>,
    not_after: f64,
}

/// Checks `exp`, `nbf`, `iat`, the audience and `sub`.
///
/// Times must be JSON numbers (RFC 7519 section 2, NumericDate; fractions
/// allowed). A string such as `"9999999999"` is refused rather than parsed:
/// being lenient here is how type-confusion bypasses start.
fn check_claims<'a>(
    provider: &Provider,
    claims: &'a Map<String, Value>,
    now: f64,
) -> Result<CheckedClaims<'a>, Reason> {
    let exp = numeric_date(claims.get("exp"))?.ok_or(Reason::InvalidClaims)?;
    let nbf = numeric_date(claims.get("nbf"))?;
    numeric_date(claims.get("iat"))?;

    let not_after = exp + provider.leeway;
    if now >= not_after {
        return Err(Reason::Expired);
    }
    if nbf.is_some_and(|nbf| now + provider.leeway < nbf) {
        return Err(Reason::NotYetValid);
    }

    check_audience(provider, claims)?;

    // Without `require_sub` an absent `sub` is fine, but one that is there
    // must still be usable: an empty or non-string `sub` is a broken token.
    let subject = match claims.get("sub") {
        None if !provider.require_sub => None,
        Some(Value::String(sub)) if !sub.is_empty() => Some(sub.as_str()),
        _ => return Err(Reason::InvalidClaims),
    };
    Ok(CheckedClaims { subject, not_after })
}

/// Reads an optional NumericDate; any non-number, or a non-finite one, is
/// refused.
pub(crate) fn numeric_date(value: Option<&Value>) -> Result<Option<f64>, Reason> {
    match value {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|t| t.is_finite())
            .map(Some)
            .ok_or(Reason::InvalidClaims),
        Some(_) => Err(Reason::InvalidClaims),
    }
}

/// Checks the provider's audience claim and, when that is not `aud`, any
/// `aud` the token carries as well.
///
/// An issuer may name the audience elsewhere (Cognito access tokens use
/// `client_id` and have no `aud`), but RFC 7519 section 4.1.3 still says a
/// token whose `aud` does not name the recipient must be refused; honouring
/// it means a token minted for another service never passes on the strength
/// of a second claim.
fn check_audience(provider: &Provider, claims: &Map<String, Value>) -> Result<(), Reason> {
    holds_audience(provider, provider.audience_claim.find(claims))?;
    let reads_aud = matches!(&provider.audience_claim, ClaimPath::Name(name) if name == "aud");
    match claims.get("aud") {
        Some(aud) if !reads_aud => holds_audience(provider, Some(aud)),
        _ => Ok(()),
    }
}

/// The audience is a string or an array of strings (RFC 7519 section
/// 4.1.3); it must hold one of the provider's audiences.
pub(crate) fn holds_audience(provider: &Provider, aud: Option<&Value>) -> Result<(), Reason> {
    let accepted = |aud: &str| provider.audiences.iter().any(|ours| ours == aud);
    match aud {
        Some(Value::String(aud)) if accepted(aud) => Ok(()),
        Some(Value::String(_)) => Err(Reason::WrongAudience),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let aud = item.as_str().ok_or(Reason::InvalidClaims)?;
                found |= accepted(aud);
            }
            if found {
                Ok(())
            } else {
                Err(Reason::WrongAudience)
            }
        }
        Some(_) | None => Err(Reason::InvalidClaims),
    }
}

#[cfg(test)]
mod tests;
