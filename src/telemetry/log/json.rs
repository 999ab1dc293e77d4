//! JSON text for log lines, written straight into a line's buffer.
//!
//! The line layer writes a handful of strings and numbers per event, and
//! most strings (field names, paths, methods, ids) hold nothing that JSON
//! escapes. Those are copied in between quotes at the cost of one scan;
//! only a string that needs escaping goes through serde_json, so the output
//! is byte for byte what serde_json writes for every value.

/// A word with 1 in each byte, for the tests of eight bytes at once.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// A word with the high bit of each byte set.
const HIGHS: u64 = ONES << 7;

/// Says whether JSON needs `byte` escaped inside a string: the quote, the
/// backslash and the control characters, exactly serde_json's set.
fn is_escaped(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Says whether any byte of `word` is below `bound` (at most 128): a byte
/// below it borrows into its own high bit, which was clear before.
fn has_byte_below(word: u64, bound: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(bound)) & !word & HIGHS != 0
}

/// Says whether any byte of `word` is `byte`.
fn has_byte(word: u64, byte: u8) -> bool {
    has_byte_below(word ^ (ONES * u64::from(byte)), 1)
}

/// Says whether any byte of `text` needs escaping, eight bytes a step: a
/// byte at a time cost more than the rest of the line (issue 4).
fn needs_escaping(text: &[u8]) -> bool {
    let mut words = text.chunks_exact(8);
    let found = words.by_ref().any(|word| {
        let word = u64::from_ne_bytes(word.try_into().expect("chunks of 8 bytes"));
        has_byte_below(word, 0x20) || has_byte(word, b'"') || has_byte(word, b'\\')
    });
    found || words.remainder().iter().copied().any(is_escaped)
}

/// Appends `text` as a JSON string.
pub(super) fn write_str(out: &mut Vec<u8>, text: &str) {
    if !needs_escaping(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    write_serialized(out, text);
}

/// Returns `text` as a JSON string, for a value rendered once and copied
/// into every line (the service name).
pub(super) fn quoted(text: &str) -> Box<str> {
    let mut rendered = Vec::new();
    write_str(&mut rendered, text);
    // `write_str` writes UTF-8 only; the fallback is never taken.
    String::from_utf8(rendered).map_or_else(|_| "null".into(), String::into_boxed_str)
}

/// Appends a float as serde_json writes it (`null` when not finite).
///
/// Numbers are one or two per line and cost serde_json no escaping scan,
/// so they stay with it: their text cannot drift from serde_json's.
pub(super) fn write_f64(out: &mut Vec<u8>, value: f64) {
    write_serialized(out, &value);
}

/// Appends an unsigned integer.
pub(super) fn write_u64(out: &mut Vec<u8>, value: u64) {
    write_serialized(out, &value);
}

/// Appends a signed integer.
pub(super) fn write_i64(out: &mut Vec<u8>, value: i64) {
    write_serialized(out, &value);
}

/// Appends what serde_json writes for `value`.
fn write_serialized(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    let start = out.len();
    // Strings and numbers into a `Vec` do not fail; should one, the field
    // says null rather than hold half a value.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_str(value: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, value);
        String::from_utf8(out).expect("JSON text is UTF-8")
    }

    #[test]
    fn strings_come_out_as_serde_json_writes_them() {
        let mut cases: Vec<String> = [
            "",
            "plain",
            "/api/games/12345?x=1",
            "say \"hi\"",
            r"back\slash",
            "tab\there, newline\n, return\r",
            "\u{0}\u{1}\u{1f} and \u{7f}",
            "caf\u{e9} \u{1F600} \u{2028}\u{2029}",
            "</script>",
            "\"",
            "\\",
        ]
        .iter()
        .map(|case| (*case).to_owned())
        .collect();
        // Every byte below 0x80 at every place of a word and of the tail
        // after the last whole word, beside multi-byte characters.
        for byte in 0u8..0x80 {
            for at in 0..19 {
                let mut case: Vec<char> = "0123456789abcdef\u{e9}\u{1F600}x".chars().collect();
                case[at] = byte as char;
                cases.push(case.into_iter().collect());
            }
        }
        // Two-byte characters, whose bytes differ from '"' (0x22), '\\'
        // (0x5c) and the control characters only in their high bits.
        cases.extend(
            (0x80..0x800)
                .filter_map(char::from_u32)
                .map(|c| format!("{c}abcdefgh{c}")),
        );
        for case in &cases {
            let expected = serde_json::to_string(case).expect("a string serializes");
            assert_eq!(as_str(case), expected, "{case:?}");
        }
    }

    #[test]
    fn numbers_come_out_as_serde_json_writes_them() {
        let floats = [
            0.0,
            -0.0,
            1.0,
            0.1,
            1.234,
            12.5,
            1e21,
            1e-7,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for value in floats {
            let mut out = Vec::new();
            write_f64(&mut out, value);
            let expected = serde_json::to_vec(&value).expect("a float serializes");
            assert_eq!(out, expected, "{value}");
        }
        for value in [0, 1, 200, 404, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, value);
            assert_eq!(
                out,
                serde_json::to_vec(&value).expect("serializes"),
                "{value}"
            );
        }
        for value in [0, -1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_i64(&mut out, value);
            assert_eq!(
                out,
                serde_json::to_vec(&value).expect("serializes"),
                "{value}"
            );
        }
    }
}
