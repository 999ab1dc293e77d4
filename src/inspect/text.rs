//! Writing token-supplied text to a terminal safely.
//!
//! Everything in a token was written by whoever made it, valid or not. A
//! claim holding escape sequences or bidirectional overrides could
//! rewrite what the operator sees, so every such character is escaped
//! before it is printed.

use serde_json::Value;

/// Quotes text for display, with control and bidi-override characters
/// escaped.
pub(crate) fn quoted(text: &str) -> String {
    format!("\"{}\"", escaped(text))
}

/// Escapes what a terminal would act on, and `"` and `\` so a quoted
/// value reads back unambiguously.
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hazard(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Writes a JSON value indented, with the same characters escaped.
///
/// serde_json already escapes C0 controls inside strings; DEL, the C1
/// controls (CSI among them) and bidi overrides it passes through, so
/// they are escaped here, as JSON `\u` escapes that keep the text valid
/// JSON.
pub(crate) fn pretty(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hazard(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Names a JSON value's type, as an operator would say it.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Writes a JSON value on one line, escaped; long values are cut.
pub(crate) fn compact(value: &Value) -> String {
    const MOST: usize = 200;
    let text = escaped_json(&value.to_string());
    if text.chars().count() <= MOST {
        return text;
    }
    let cut: String = text.chars().take(MOST).collect();
    format!("{cut}...")
}

/// Joins quoted items with `, `, or says `none`.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quoted).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn escaped_json(text: &str) -> String {
    text.chars()
        .map(|c| {
            if is_hazard(c) {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Control characters (C0, DEL, C1) and the Unicode bidi controls.
fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn terminal_controls_and_bidi_overrides_are_escaped() {
        assert_eq!(quoted("a\u{1b}[2Jb"), "\"a\\u{001b}[2Jb\"");
        assert_eq!(quoted("x\u{202e}y"), "\"x\\u{202e}y\"");
        assert_eq!(quoted("say \"hi\""), "\"say \\\"hi\\\"\"");
        let shown = pretty(&json!({"sub": "a\u{9b}31m\u{7f}"}));
        assert!(shown.contains("a\\u009b31m\\u007f"), "{shown}");
        assert!(!shown.contains('\u{9b}'));
        let parsed: Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(parsed["sub"], "a\u{9b}31m\u{7f}");
    }

    #[test]
    fn long_values_are_cut() {
        let long = compact(&json!("x".repeat(500)));
        assert!(long.ends_with("..."));
        assert!(long.len() < 220);
    }
}
