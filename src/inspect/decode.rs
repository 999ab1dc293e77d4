//! Reading a token's segments for display, and saying what makes it
//! malformed.
//!
//! The verifier only answers `malformed`; an operator needs to know which
//! of its syntax rules the token breaks. The rules are the verifier's own
//! (and its base64 and JSON decoders are used as they are); this module
//! only names the first one broken. The signature segment is measured,
//! never shown.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::text::{json_type, quoted};
use crate::auth::{decode_json, is_canonical_base64};

/// What a header or claims segment decodes to.
#[derive(Debug)]
pub(crate) enum Segment {
    /// A JSON object with unique members: what the verifier accepts.
    Object(Map<String, Value>),
    /// A JSON object that repeats a member somewhere, shown with the last
    /// of each as serde_json keeps it.
    Repeats(Map<String, Value>),
    /// JSON, but not an object.
    NotObject(Value),
    /// Bytes that are not JSON, with the parser's complaint.
    NotJson(String, String),
    /// Not canonical base64url.
    NotBase64,
    /// No such segment (or an empty one).
    Absent,
}

impl Segment {
    /// Decodes one segment as far as it goes.
    fn read(text: Option<&str>) -> Self {
        let Some(text) = text.filter(|text| !text.is_empty()) else {
            return Segment::Absent;
        };
        if let Some(object) = decode_json(text) {
            return Segment::Object(object);
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(text) else {
            return Segment::NotBase64;
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => Segment::Repeats(object),
            Ok(other) => Segment::NotObject(other),
            Err(error) => {
                let shown = String::from_utf8_lossy(&bytes).into_owned();
                Segment::NotJson(shown, error.to_string())
            }
        }
    }

    /// Returns the object the verifier would read, if there is one.
    pub(crate) fn object(&self) -> Option<&Map<String, Value>> {
        match self {
            Segment::Object(object) => Some(object),
            _ => None,
        }
    }

    /// Says why this segment is not one the verifier reads, naming it.
    fn fault(&self, name: &str) -> Option<String> {
        let why = match self {
            Segment::Object(_) => return None,
            Segment::Repeats(_) => format!(
                "the {name} repeats a member; tollgate refuses duplicates so no \
                 two parsers can read the token differently"
            ),
            Segment::NotObject(value) => {
                format!("the {name} is a JSON {}, not an object", json_type(value))
            }
            Segment::NotJson(_, error) => format!("the {name} is not JSON: {error}"),
            Segment::NotBase64 => format!("the {name} segment is not canonical base64url"),
            Segment::Absent => format!("the {name} segment is empty"),
        };
        Some(why)
    }
}

/// A token taken apart: what each segment holds, and the first syntax
/// rule it breaks.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The JOSE header.
    pub(crate) header: Segment,
    /// The claims.
    pub(crate) claims: Segment,
    /// How many segments the token has.
    pub(crate) segments: usize,
    /// The signature segment's length, when there are three segments.
    pub(crate) signature_chars: Option<usize>,
    /// Why the verifier would call the token malformed; `None` when its
    /// syntax holds.
    pub(crate) fault: Option<String>,
}

impl Decoded {
    /// Takes a token apart; never fails, since a broken token is exactly
    /// what an operator brings to `inspect`.
    pub(crate) fn read(token: &str) -> Self {
        let parts: Vec<&str> = token.split('.').collect();
        let header = Segment::read(parts.first().copied());
        let claims = Segment::read(parts.get(1).copied());
        let signature = (parts.len() == 3).then(|| parts[2]);
        let fault = syntax_fault(token, &parts, &header, &claims);
        Decoded {
            header,
            claims,
            segments: parts.len(),
            signature_chars: signature.map(str::len),
            fault,
        }
    }
}

/// Finds the first syntax rule the token breaks, in the verifier's order.
fn syntax_fault(token: &str, parts: &[&str], header: &Segment, claims: &Segment) -> Option<String> {
    let stray = token
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if let Some((at, c)) = stray {
        return Some(stray_character(at, c));
    }
    if parts.len() != 3 {
        return Some(format!(
            "{} segments; a signed JWT has 3 (header.claims.signature)",
            parts.len()
        ));
    }
    if parts[0].is_empty() || parts[1].is_empty() {
        return Some("the header or claims segment is empty".to_owned());
    }
    if !is_canonical_base64(parts[2]) {
        return Some("the signature segment is not canonical base64url".to_owned());
    }
    if let Some(fault) = header.fault("header").or_else(|| claims.fault("claims")) {
        return Some(fault);
    }
    header.object().and_then(header_fault)
}

/// Names a character outside base64url and `.`, with a hint for the usual
/// mix-ups (standard base64, padding, a pasted quote or space).
fn stray_character(at: usize, c: char) -> String {
    let hint = match c {
        '+' | '/' => ": standard base64, where JWTs use base64url (`-` and `_`)",
        '=' => ": base64 padding, which JWTs leave out",
        ' ' | '\t' | '\n' | '\r' => ": whitespace inside the token",
        '"' | '\'' => ": a quote, perhaps pasted with the token",
        _ => "",
    };
    format!(
        "character {} at byte {at} is outside the base64url alphabet{hint}",
        quoted(&c.to_string())
    )
}

/// Names what in a decoded header the verifier refuses.
fn header_fault(header: &Map<String, Value>) -> Option<String> {
    if header.contains_key("crit") {
        return Some("the header has `crit`; tollgate understands no extension".to_owned());
    }
    match header.get("alg") {
        None => return Some("the header has no `alg`".to_owned()),
        Some(Value::String(_)) => {}
        Some(other) => {
            return Some(format!(
                "`alg` is a JSON {}, not a string",
                json_type(other)
            ));
        }
    }
    match header.get("kid") {
        None | Some(Value::String(_)) => None,
        Some(other) => Some(format!(
            "`kid` is a JSON {}, not a string",
            json_type(other)
        )),
    }
}
