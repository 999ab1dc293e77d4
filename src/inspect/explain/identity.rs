//! The identity checks: roles, the identity header values and revocation.
//!
//! Each header value is judged by the verifier's own `header_value`; this
//! module only adds which rule an unsafe value breaks, since "invalid
//! claims" alone does not tell an operator which claim to look at.

use serde_json::{Map, Value};

use super::Check;
use super::claims::claim_name;
use crate::auth::{Identity, Provider, Reason, header_value, merged_roles};
use crate::inspect::clock::timestamp;
use crate::inspect::text::{json_type, list, quoted};

/// The identity lines, and the identity when the claims yield one.
pub(super) struct IdentityChecks {
    pub(super) checks: Vec<Check>,
    pub(super) identity: Option<Identity>,
}

impl IdentityChecks {
    /// Runs the roles, identity and revocation checks.
    ///
    /// The identity is built even when an earlier check failed, so the
    /// headers a fixed token would get can still be shown.
    pub(super) fn run(at: usize, provider: &Provider, claims: &Map<String, Value>) -> Self {
        let mut checks = vec![roles_check(provider, claims)];
        let roles_ok = checks[0].mark == super::Mark::Pass;
        let subject = claims.get("sub").and_then(Value::as_str);
        let built = Identity::from_claims(at, provider, subject, claims);

        let identity = match (roles_ok, built) {
            (false, _) => {
                checks.push(Check::skip("identity", "not built: the roles were refused"));
                None
            }
            (true, Ok(identity)) => {
                checks.push(Check::pass("identity", headers_line(&identity)));
                Some(identity)
            }
            (true, Err(reason)) => {
                checks.push(Check::fail(
                    "identity",
                    reason,
                    unsafe_headers(provider, claims),
                ));
                None
            }
        };
        checks.push(match &identity {
            Some(identity) => revocation_check(provider, identity),
            None => Check::skip("revocation", "not reached: no identity"),
        });
        IdentityChecks { checks, identity }
    }
}

fn roles_check(provider: &Provider, claims: &Map<String, Value>) -> Check {
    let from = list(provider.roles_claim.iter().map(claim_name));
    match merged_roles(&provider.roles_claim, claims) {
        Ok(roles) if roles.is_empty() => Check::pass("roles", format!("none (from {from})")),
        Ok(roles) => {
            let held = list(roles.iter().map(|role| &**role));
            Check::pass("roles", format!("{held} (from {from})"))
        }
        Err(reason) => Check::fail("roles", reason, bad_roles(provider, claims)),
    }
}

/// Finds which roles claim, or which role in it, was refused, looking in
/// the order `merged_roles` does.
fn bad_roles(provider: &Provider, claims: &Map<String, Value>) -> String {
    for path in &provider.roles_claim {
        let name = claim_name(path);
        let items = match path.find(claims) {
            None | Some(Value::Null) => continue,
            Some(one @ Value::String(_)) => std::slice::from_ref(one),
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => {
                return format!(
                    "{name} is a JSON {}, not a string or array",
                    json_type(other)
                );
            }
        };
        for item in items {
            match item.as_str() {
                None => return format!("{name} holds a JSON {}, not a string", json_type(item)),
                Some(role) if !is_list_item(role) => {
                    return format!("{name} holds {}: {LIST_ITEM_RULE}", quoted(role));
                }
                Some(_) => {}
            }
        }
    }
    "a roles claim cannot be read".to_owned()
}

/// Why a list element is refused, in one phrase.
const LIST_ITEM_RULE: &str =
    "a role or list element must be non-empty, without surrounding spaces or `,`";

fn is_list_item(text: &str) -> bool {
    !text.is_empty() && !text.contains(',') && text.trim() == text
}

/// Lists the identity headers an identity carries, one `name: value` each.
fn headers_line(identity: &Identity) -> String {
    if identity.headers.is_empty() {
        return "no identity headers (no mapped claim is present)".to_owned();
    }
    let shown: Vec<String> = identity
        .headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes());
            format!("{name}: {}", quoted(&text))
        })
        .collect();
    shown.join("; ")
}

/// Says which identity header value is unsafe, and why.
fn unsafe_headers(provider: &Provider, claims: &Map<String, Value>) -> String {
    let max = provider.max_header_bytes;
    for (name, path) in &provider.claim_to_headers {
        let Some(value) = path.find(claims) else {
            continue;
        };
        if header_value(value, max).is_err() {
            let claim = claim_name(path);
            return format!("{name} from {claim}: {}", why_unsafe(value, max));
        }
    }
    match &provider.roles_header {
        Some(name) => format!("{name}: the joined roles are over {max} bytes or unsafe"),
        None => "an identity header value is unsafe".to_owned(),
    }
}

/// Names the header rule a claim value breaks.
fn why_unsafe(value: &Value, max: usize) -> String {
    let text = match value {
        Value::Null | Value::Object(_) => {
            return format!("a JSON {} has no header form", json_type(value));
        }
        Value::Array(items) => {
            for (at, item) in items.iter().enumerate() {
                match item {
                    Value::String(text) if !is_list_item(text) => {
                        return format!("element {at} is {}: {LIST_ITEM_RULE}", quoted(text));
                    }
                    Value::String(_) | Value::Number(_) => {}
                    other => return format!("element {at} is a JSON {}", json_type(other)),
                }
            }
            let parts: Vec<String> = items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_owned)
                })
                .collect();
            parts.join(",")
        }
        Value::String(text) => text.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
    };
    if text.len() > max {
        return format!(
            "{} bytes, over limits.max_identity_header_bytes ({max})",
            text.len()
        );
    }
    if text.chars().any(|c| c.is_ascii_control()) {
        return "holds a control character (a CR or LF could forge a header)".to_owned();
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return "starts or ends with a space, which the service would trim".to_owned();
    }
    "not a valid header value".to_owned()
}

/// Says whether the provider's revocation refuses the token, and by which
/// rule.
fn revocation_check(provider: &Provider, identity: &Identity) -> Check {
    let revoke = &provider.revoke;
    let mut found = Vec::new();
    match (revoke.issued_before(), identity.issued_at) {
        (None, _) => found.push("no issued_before cut-off".to_owned()),
        (Some(cut), None) => found.push(format!(
            "no `iat`, and issued_before is {}: revoked",
            timestamp(cut)
        )),
        (Some(cut), Some(iat)) if iat < cut => found.push(format!(
            "issued at {}, before the issued_before cut-off {}: revoked",
            timestamp(iat),
            timestamp(cut)
        )),
        (Some(cut), Some(_)) => found.push(format!("issued after the cut-off {}", timestamp(cut))),
    }
    found.push(denylist_finding(provider, identity));

    let detail = found.join("; ");
    if revoke.is_revoked(identity) {
        Check::fail("revocation", Reason::Revoked, detail)
    } else {
        Check::pass("revocation", detail)
    }
}

fn denylist_finding(provider: &Provider, identity: &Identity) -> String {
    let denylist = provider.revoke.denylist();
    if denylist.is_empty() {
        return "denylist empty".to_owned();
    }
    if let Some(jti) = identity
        .jti
        .as_deref()
        .filter(|jti| denylist.holds_jti(jti))
    {
        return format!("jti {} is on the denylist: revoked", quoted(jti));
    }
    if let Some(sub) = identity
        .subject
        .as_deref()
        .filter(|sub| denylist.holds_sub(sub))
    {
        return format!("sub {} is on the denylist: revoked", quoted(sub));
    }
    format!("not on the denylist ({} entries)", denylist.len())
}
