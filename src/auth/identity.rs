//! Turning verified claims into the identity forwarded to the upstream.

use std::ops::Range;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::{Provider, Reason};
use crate::config::ClaimPath;

/// Holds who the caller is, as established by one verified token.
///
/// Built once per token and shared through the cache, so a cache hit
/// forwards exactly the headers the first verification produced.
#[derive(Debug, PartialEq)]
pub struct Identity {
    /// Index of the provider that verified the token, in its snapshot.
    pub provider: usize,
    /// The `sub` claim; absent only for a provider that does not require it.
    pub subject: Option<Box<str>>,
    /// The caller's roles, from the provider's roles claims, each once.
    pub roles: Vec<Box<str>>,
    /// The identity headers to set: `claim_to_headers` in config order, then
    /// the roles header.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The `jti` claim, when it is a string: kept so that a denylist can
    /// refuse the token on a cache hit, without its claims at hand.
    pub jti: Option<Box<str>>,
    /// The `iat` claim (Unix seconds), kept for the same reason.
    pub issued_at: Option<f64>,
}

impl Identity {
    /// Returns the heap bytes the identity holds, for the cache's weight.
    pub(crate) fn heap_bytes(&self) -> usize {
        let text = |text: &Option<Box<str>>| text.as_ref().map_or(0, |text| text.len());
        let roles: usize = self.roles.iter().map(|role| role.len() + 16).sum();
        let headers: usize = self
            .headers
            .iter()
            .map(|(_, value)| std::mem::size_of::<(HeaderName, HeaderValue)>() + value.len())
            .sum();
        std::mem::size_of::<Self>() + text(&self.subject) + text(&self.jti) + roles + headers
    }

    /// Builds an identity from verified claims.
    pub fn from_claims(
        provider_at: usize,
        provider: &Provider,
        subject: Option<&str>,
        claims: &Map<String, Value>,
    ) -> Result<Self, Reason> {
        let roles = merged_roles(&provider.roles_claim, claims)?;

        let max = provider.max_header_bytes;
        let mut values = Values::with_capacity(provider.claim_to_headers.len() + 1);
        for (name, path) in &provider.claim_to_headers {
            if let Some(value) = path.find(claims) {
                values.push(name, max, |out| render(value, out))?;
            }
        }
        // No roles, no header: an empty value would read as one empty role.
        if let (Some(name), false) = (&provider.roles_header, roles.is_empty()) {
            values.push(name, max, |out| join_roles(&roles, out))?;
        }

        Ok(Identity {
            provider: provider_at,
            subject: subject.map(Box::from),
            roles,
            headers: values.into_headers()?,
            jti: claims.get("jti").and_then(Value::as_str).map(Box::from),
            issued_at: claims.get("iat").and_then(Value::as_f64),
        })
    }
}

/// Identity header values rendered one after another into one buffer.
///
/// An identity lives in the cache for the token's lifetime and its values
/// are cloned into every request it passes. Each value on its own heap
/// block would cost two allocations per header and cached token (the bytes,
/// and the shared header `Bytes` adds on the first clone); slices of one
/// buffer cost two per identity, and every clone is a reference count.
/// Rendering straight into that buffer also spares each value a string of
/// its own on the way.
struct Values {
    buffer: Vec<u8>,
    /// Each header's name and where its value sits in `buffer`.
    at: Vec<(HeaderName, Range<usize>)>,
}

impl Values {
    fn with_capacity(headers: usize) -> Self {
        Values {
            buffer: Vec::with_capacity(headers * 24),
            at: Vec::with_capacity(headers),
        }
    }

    /// Renders one value with `render` and checks it (see [`is_safe`]).
    fn push(
        &mut self,
        name: &HeaderName,
        max_bytes: usize,
        render: impl FnOnce(&mut Vec<u8>) -> Result<(), Reason>,
    ) -> Result<(), Reason> {
        let start = self.buffer.len();
        render(&mut self.buffer)?;
        if !is_safe(&self.buffer[start..], max_bytes) {
            return Err(Reason::InvalidClaims);
        }
        self.at.push((name.clone(), start..self.buffer.len()));
        Ok(())
    }

    fn into_headers(self) -> Result<Vec<(HeaderName, HeaderValue)>, Reason> {
        // Trimmed to its length: the buffer lives as long as the cached
        // token, and spare capacity would be held all that time.
        let buffer = Bytes::from(self.buffer.into_boxed_slice());
        self.at
            .into_iter()
            .map(|(name, range)| {
                let value = HeaderValue::from_maybe_shared(buffer.slice(range))
                    .map_err(|_| Reason::InvalidClaims)?;
                Ok((name, value))
            })
            .collect()
    }
}

/// Collects the roles of every roles claim, in the order the claims are
/// listed and then as each claim lists them, keeping the first of repeats.
///
/// An absent or `null` claim adds nothing: Keycloak, for one, leaves out a
/// client's roles when the caller has none. Anything but a string or an
/// array of strings is refused, since guessing at it could grant a role,
/// and so is a role that is not a clean list item (see [`is_list_item`]).
pub(crate) fn merged_roles(
    paths: &[ClaimPath],
    claims: &Map<String, Value>,
) -> Result<Vec<Box<str>>, Reason> {
    let mut roles: Vec<Box<str>> = Vec::new();
    for path in paths {
        let items = match path.find(claims) {
            None | Some(Value::Null) => continue,
            Some(one @ Value::String(_)) => std::slice::from_ref(one),
            Some(Value::Array(items)) => items.as_slice(),
            Some(_) => return Err(Reason::InvalidClaims),
        };
        for item in items {
            let role = item.as_str().ok_or(Reason::InvalidClaims)?;
            // Whether or not a roles header is set, the roles may reach the
            // upstream through `claim_to_headers` as a list: a role that
            // would read back as another (or as two) is refused here.
            if !is_list_item(role) {
                return Err(Reason::InvalidClaims);
            }
            // Role lists are short, so a scan beats building a set.
            if !roles.iter().any(|seen| &**seen == role) {
                roles.push(role.into());
            }
        }
    }
    Ok(roles)
}

/// Joins roles for the roles header, under the same list rule as an array
/// claim in `claim_to_headers`.
fn join_roles(roles: &[Box<str>], out: &mut Vec<u8>) -> Result<(), Reason> {
    for (at, role) in roles.iter().enumerate() {
        if !is_list_item(role) {
            return Err(Reason::InvalidClaims);
        }
        if at > 0 {
            out.push(b',');
        }
        out.extend_from_slice(role.as_bytes());
    }
    Ok(())
}

/// Renders a claim as a header value, or refuses the token.
///
/// An array is joined with `,` (see [`is_list_item`] for what an element
/// may hold). Control characters (CR and LF above all) would split or
/// corrupt the header, so they are refused, as are leading and trailing
/// spaces, which the upstream's parser would silently trim.
pub(crate) fn header_value(value: &Value, max_bytes: usize) -> Result<HeaderValue, Reason> {
    let mut text = Vec::new();
    render(value, &mut text)?;
    if !is_safe(&text, max_bytes) {
        return Err(Reason::InvalidClaims);
    }
    HeaderValue::from_bytes(&text).map_err(|_| Reason::InvalidClaims)
}

/// Appends a claim's text: a string as it is, a number or boolean as JSON
/// writes it, an array joined with `,`.
fn render(value: &Value, out: &mut Vec<u8>) -> Result<(), Reason> {
    match value {
        Value::String(text) => out.extend_from_slice(text.as_bytes()),
        Value::Number(number) => write_number(number, out),
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Array(items) => join(items, out)?,
        Value::Null | Value::Object(_) => return Err(Reason::InvalidClaims),
    }
    Ok(())
}

fn write_number(number: &serde_json::Number, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "{number}");
}

/// Says whether rendered text may stand as a header value (see
/// [`header_value`]).
fn is_safe(text: &[u8], max_bytes: usize) -> bool {
    text.len() <= max_bytes
        && !text.iter().any(u8::is_ascii_control)
        && text.first() != Some(&b' ')
        && text.last() != Some(&b' ')
}

fn join(items: &[Value], out: &mut Vec<u8>) -> Result<(), Reason> {
    for (at, item) in items.iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        match item {
            Value::String(text) if is_list_item(text) => out.extend_from_slice(text.as_bytes()),
            Value::Number(number) => write_number(number, out),
            _ => return Err(Reason::InvalidClaims),
        }
    }
    Ok(())
}

/// Says whether text can stand as one element of a `,`-joined list and be
/// read back as exactly itself.
///
/// A `,` inside would read as two elements, so a role could be forged;
/// an empty element or one with surrounding spaces would be dropped or
/// trimmed by the upstream's list parser (RFC 9110 section 5.6.1), so it
/// would match a role the issuer never granted.
fn is_list_item(text: &str) -> bool {
    !text.is_empty() && !text.contains(',') && text.trim() == text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arrays_are_joined_with_commas() {
        let value = header_value(&json!(["player", "admin", 7]), 100).expect("joins");
        assert_eq!(value, "player,admin,7");
    }

    #[test]
    fn values_that_could_split_or_forge_a_header_are_refused() {
        for bad in [
            json!("a\r\nX-User-Id: admin"),
            json!("tab\there"),
            json!(["a,b"]),
            json!({"nested": true}),
            json!(null),
            json!(" padded"),
            json!([["deep"]]),
        ] {
            assert_eq!(header_value(&bad, 100), Err(Reason::InvalidClaims), "{bad}");
        }
    }

    #[test]
    fn values_over_the_cap_are_refused() {
        assert!(header_value(&json!("abcd"), 4).is_ok());
        assert_eq!(header_value(&json!("abcde"), 4), Err(Reason::InvalidClaims));
    }

    #[test]
    fn list_elements_that_an_upstream_would_trim_or_drop_are_refused() {
        for bad in [json!(["a", " admin"]), json!(["a", ""]), json!(["admin\t"])] {
            assert_eq!(header_value(&bad, 100), Err(Reason::InvalidClaims), "{bad}");
        }
    }

    #[test]
    fn roles_are_merged_in_claim_order_and_kept_once() {
        let claims = json!({
            "realm_access": {"roles": ["player", "offline_access"]},
            "resource_access": {"api": {"roles": ["moderator", "player"]}},
            "group": "player",
        });
        let claims = claims.as_object().expect("an object");
        let paths = [
            ClaimPath::parse("/realm_access/roles"),
            ClaimPath::parse("/resource_access/api/roles"),
            ClaimPath::parse("group"),
            ClaimPath::parse("/resource_access/other/roles"),
        ];
        let roles = merged_roles(&paths, claims).expect("roles");
        let roles: Vec<&str> = roles.iter().map(|r| &**r).collect();
        assert_eq!(roles, ["player", "offline_access", "moderator"]);
        let mut joined = Vec::new();
        assert_eq!(join_roles(&["a".into(), "b".into()], &mut joined), Ok(()));
        assert_eq!(joined, b"a,b");
    }

    #[test]
    fn a_roles_claim_of_another_type_is_refused() {
        for bad in [
            json!({"roles": {"admin": true}}),
            json!({"roles": [1]}),
            json!({"roles": 1}),
        ] {
            let claims = bad.as_object().expect("an object");
            let paths = [ClaimPath::parse("roles")];
            assert_eq!(
                merged_roles(&paths, claims),
                Err(Reason::InvalidClaims),
                "{bad}"
            );
        }
    }

    #[test]
    fn utf8_text_passes_as_is() {
        let value = header_value(&json!("josé@chessmate.test"), 100).expect("utf-8 allowed");
        assert_eq!(value.as_bytes(), "josé@chessmate.test".as_bytes());
    }
}
