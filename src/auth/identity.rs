//! Turning verified claims into the identity forwarded to the upstream.

use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::{Provider, Reason};

/// Holds who the caller is, as established by one verified token.
///
/// Built once per token and shared through the cache, so a cache hit
/// forwards exactly the headers the first verification produced.
#[derive(Debug, PartialEq)]
pub struct Identity {
    /// Index of the provider that verified the token, in its snapshot.
    pub provider: usize,
    /// The `sub` claim.
    pub subject: Box<str>,
    /// The caller's roles, from the provider's roles claim.
    pub roles: Vec<Box<str>>,
    /// The identity headers to set, in config order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The `jti` claim, when it is a string: kept so that a denylist can
    /// refuse the token on a cache hit, without its claims at hand.
    pub jti: Option<Box<str>>,
    /// The `iat` claim (Unix seconds), kept for the same reason.
    pub issued_at: Option<f64>,
}

impl Identity {
    /// Builds an identity from verified claims.
    pub fn from_claims(
        provider_at: usize,
        provider: &Provider,
        subject: &str,
        claims: &Map<String, Value>,
    ) -> Result<Self, Reason> {
        let roles = match provider.roles_claim.find(claims) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(role)) => vec![role.as_str().into()],
            Some(Value::Array(items)) => strings(items)?,
            Some(_) => return Err(Reason::InvalidClaims),
        };

        let mut headers = Vec::with_capacity(provider.claim_to_headers.len());
        for (name, path) in &provider.claim_to_headers {
            let Some(value) = path.find(claims) else {
                continue;
            };
            let value = header_value(value, provider.max_header_bytes)?;
            headers.push((name.clone(), value));
        }

        Ok(Identity {
            provider: provider_at,
            subject: subject.into(),
            roles,
            headers,
            jti: claims.get("jti").and_then(Value::as_str).map(Box::from),
            issued_at: claims.get("iat").and_then(Value::as_f64),
        })
    }

    /// Says whether the caller holds any of `wanted`.
    pub fn has_any_role(&self, wanted: &[String]) -> bool {
        self.roles
            .iter()
            .any(|role| wanted.iter().any(|w| w.as_str() == role.as_ref()))
    }
}

fn strings(items: &[Value]) -> Result<Vec<Box<str>>, Reason> {
    items
        .iter()
        .map(|item| item.as_str().map(Box::from).ok_or(Reason::InvalidClaims))
        .collect()
}

/// Renders a claim as a header value, or refuses the token.
///
/// An array is joined with `,`, so an element that itself holds a `,` would
/// read as two values downstream: such a token is refused rather than let a
/// role be forged. Control characters (CR and LF above all) would split or
/// corrupt the header, so they are refused too, as are leading and trailing
/// spaces, which the upstream's parser would silently trim.
fn header_value(value: &Value, max_bytes: usize) -> Result<HeaderValue, Reason> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Array(items) => join(items)?,
        Value::Null | Value::Object(_) => return Err(Reason::InvalidClaims),
    };

    if text.len() > max_bytes || text.bytes().any(|b| b.is_ascii_control()) {
        return Err(Reason::InvalidClaims);
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return Err(Reason::InvalidClaims);
    }
    HeaderValue::from_bytes(text.as_bytes()).map_err(|_| Reason::InvalidClaims)
}

fn join(items: &[Value]) -> Result<String, Reason> {
    let mut joined = String::new();
    for (at, item) in items.iter().enumerate() {
        let part = match item {
            Value::String(text) if !text.contains(',') => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => return Err(Reason::InvalidClaims),
        };
        if at > 0 {
            joined.push(',');
        }
        joined.push_str(&part);
    }
    Ok(joined)
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
    fn utf8_text_passes_as_is() {
        let value = header_value(&json!("josé@chessmate.test"), 100).expect("utf-8 allowed");
        assert_eq!(value.as_bytes(), "josé@chessmate.test".as_bytes());
    }
}
