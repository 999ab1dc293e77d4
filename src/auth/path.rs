//! Request path normalisation: the first step of routing, run before any rule
//! is consulted.
//!
//! Rules match on path strings, so a path that can be spelled two ways is a
//! way around them: `/admin` hidden as `/public/../admin`, `/%61dmin` or
//! `/public%2F..%2Fadmin`. [`normalize`] turns each request path into one
//! canonical spelling, and refuses the spellings that servers disagree about
//! (encoded slashes, backslashes, matrix parameters, NUL bytes) instead of
//! guessing how the upstream will read them.
//!
//! The canonical path is what the rules see, and it must also be what the
//! upstream receives; the two never diverge.

use std::borrow::Cow;

/// Says why a request path was refused; the caller answers 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (this includes the `*` of `OPTIONS *`).
    #[error("path does not start with `/`")]
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    #[error("path has a `%` not followed by two hex digits")]
    BadEscape,
    /// A `/` or `\` is percent-encoded, which some servers split on and
    /// others do not.
    #[error("path has an encoded `/` or `\\`")]
    EncodedSlash,
    /// A raw `\`, which some servers read as a segment separator.
    #[error("path has a backslash")]
    Backslash,
    /// A NUL byte, raw or encoded, which can truncate the path downstream.
    #[error("path has a NUL byte")]
    Nul,
    /// An encoded control character (`%01` to `%1F`, `%7F`): servers that
    /// trim whitespace would read `/admin%09` as `/admin`.
    #[error("path has an encoded control character")]
    Control,
    /// A `;`, raw or encoded: matrix parameters are stripped by some servers
    /// before routing and kept by others.
    #[error("path has `;` parameters")]
    Parameters,
    /// A `..` segment would climb above `/`.
    #[error("path climbs above the root")]
    ClimbsAboveRoot,
    /// A segment ends in `.` or an encoded space (other than `.` and `..`):
    /// Windows servers strip those, so `/admin./x` would be `/admin/x` there.
    #[error("path has a segment ending in `.` or a space")]
    TrailingDot,
}

impl PathError {
    /// Returns a short, stable reason for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotAbsolute => "not_absolute",
            Self::BadEscape => "bad_escape",
            Self::EncodedSlash => "encoded_slash",
            Self::Backslash => "backslash",
            Self::Nul => "nul",
            Self::Control => "control",
            Self::Parameters => "parameters",
            Self::ClimbsAboveRoot => "climbs_above_root",
            Self::TrailingDot => "trailing_dot",
        }
    }
}

/// Returns the canonical spelling of a request path, or why it is refused.
///
/// `raw` is the path of the request URI, without the query. Escapes of
/// unreserved characters are decoded, other escapes have their hex digits
/// uppercased, `.` and `..` segments are resolved (after decoding, so `%2e%2e`
/// is `..`), and runs of `/` collapse into one. A trailing `/` is kept, since
/// many upstreams treat `/a` and `/a/` differently.
///
/// Decoding happens exactly once. `%252e` stays as written: the upstream is
/// sent the same string the rules matched, so once-decoded it reads as the
/// literal text `%2e`, never as a dot. Decoding again here would only move
/// the problem one level down (`%25252e`), and would disagree with every
/// server that follows RFC 3986.
///
/// The result is [`Cow::Borrowed`] exactly when `raw` is already canonical,
/// so the common case does not allocate and the caller knows the request URI
/// can be forwarded untouched.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let Some(body) = raw.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };

    let mut resolver = Resolver::new(raw);
    let mut start = 1;
    let mut segments = body.split('/').peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        resolver.take(segment, start, is_last)?;
        start += segment.len() + 1;
    }
    Ok(resolver.finish())
}

// --- Resolver ---------------------------------------------------------------

/// Builds the canonical path one segment at a time, copying only once the
/// output first differs from the input.
struct Resolver<'a> {
    raw: &'a str,
    /// While `out` is `None`, the output so far is exactly `raw[..verbatim]`.
    verbatim: usize,
    /// The output once it differs from `raw`, as `/a/b` with no trailing `/`
    /// (empty for the root).
    out: Option<String>,
    /// Whether the last segment asks for a trailing `/`.
    trailing: bool,
}

impl<'a> Resolver<'a> {
    fn new(raw: &'a str) -> Self {
        Self {
            raw,
            verbatim: 0,
            out: None,
            trailing: false,
        }
    }

    /// Adds the segment found at byte `start` of the raw path.
    fn take(&mut self, segment: &str, start: usize, is_last: bool) -> Result<(), PathError> {
        let decoded = decode_segment(segment)?;
        if is_stripped_by_some_servers(&decoded) {
            return Err(PathError::TrailingDot);
        }
        match &*decoded {
            // An empty last segment is the trailing `/` of `/a/`; anywhere
            // else it comes from `//`, which collapses.
            "" if is_last && self.out.is_none() => self.verbatim = start,
            "" | "." => self.diverge(),
            ".." => self.pop()?,
            _ if self.out.is_none() && matches!(decoded, Cow::Borrowed(_)) => {
                self.verbatim = start + segment.len();
            }
            text => {
                let out = self.rewritten();
                out.push('/');
                out.push_str(text);
            }
        }
        if is_last && matches!(&*decoded, "" | "." | "..") {
            self.trailing = true;
        }
        Ok(())
    }

    /// Notes that the output no longer equals the raw path, even if nothing
    /// is added to it.
    fn diverge(&mut self) {
        self.rewritten();
    }

    /// Switches to an owned output, seeded with the verbatim prefix.
    fn rewritten(&mut self) -> &mut String {
        let raw = self.raw;
        let verbatim = self.verbatim;
        self.out.get_or_insert_with(|| raw[..verbatim].to_owned())
    }

    /// Drops the last segment for a `..`, refusing to go above the root.
    fn pop(&mut self) -> Result<(), PathError> {
        let out = self.rewritten();
        // Segments never contain `/` (an encoded one is refused), so the
        // last `/` is where the last segment starts.
        let at = out.rfind('/').ok_or(PathError::ClimbsAboveRoot)?;
        out.truncate(at);
        Ok(())
    }

    /// Renders the output, borrowing `raw` when nothing differed.
    fn finish(self) -> Cow<'a, str> {
        let Some(mut out) = self.out else {
            return Cow::Borrowed(self.raw);
        };
        if out.is_empty() || self.trailing {
            out.push('/');
        }
        Cow::Owned(out)
    }
}

// --- Segments and escapes ---------------------------------------------------

/// How one `%XX` escape is written in the canonical path.
enum Escape {
    /// As it already is: a reserved or non-ASCII byte with uppercase hex.
    AsWritten,
    /// Plainly, as the unreserved character it encodes.
    Decoded(char),
    /// Still escaped, with these hex digits (uppercased).
    Uppercased(u8, u8),
}

/// Decodes one segment's escapes and refuses its forbidden bytes; borrows
/// when the segment is already canonical.
fn decode_segment(segment: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = segment.as_bytes();
    // `out` does not allocate until the first rewritten escape, and `copied`
    // (how much of `segment` is in `out`) stays 0 until then.
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => return Err(PathError::Backslash),
            b'\0' => return Err(PathError::Nul),
            b';' => return Err(PathError::Parameters),
            b'%' => {}
            _ => {
                at += 1;
                continue;
            }
        }

        let escape = read_escape(bytes.get(at + 1..at + 3))?;
        if !matches!(escape, Escape::AsWritten) {
            // `at` is a `%` and the two bytes after it are ASCII hex digits,
            // so `copied` and `at` both fall on character boundaries.
            out.push_str(&segment[copied..at]);
            push_escape(&mut out, escape);
            copied = at + 3;
        }
        at += 3;
    }

    if copied == 0 {
        return Ok(Cow::Borrowed(segment));
    }
    out.push_str(&segment[copied..]);
    Ok(Cow::Owned(out))
}

/// Says whether a decoded segment ends in a `.` or an encoded space that
/// Windows path handling would drop, turning it into another name; the
/// dot segments themselves are resolved instead.
fn is_stripped_by_some_servers(segment: &str) -> bool {
    !matches!(segment, "." | "..") && (segment.ends_with('.') || segment.ends_with("%20"))
}

fn push_escape(out: &mut String, escape: Escape) {
    match escape {
        Escape::AsWritten => {}
        Escape::Decoded(c) => out.push(c),
        Escape::Uppercased(high, low) => {
            out.push('%');
            out.push(char::from(high));
            out.push(char::from(low));
        }
    }
}

/// Reads the two hex digits after a `%` and decides what the escape becomes.
fn read_escape(digits: Option<&[u8]>) -> Result<Escape, PathError> {
    let Some(&[high, low]) = digits else {
        return Err(PathError::BadEscape);
    };
    let (Some(h), Some(l)) = (hex_value(high), hex_value(low)) else {
        return Err(PathError::BadEscape);
    };

    match (h << 4) | l {
        b'/' | b'\\' => Err(PathError::EncodedSlash),
        b'\0' => Err(PathError::Nul),
        0x01..=0x1f | 0x7f => Err(PathError::Control),
        b';' => Err(PathError::Parameters),
        value if is_unreserved(value) => Ok(Escape::Decoded(char::from(value))),
        _ if high.is_ascii_lowercase() || low.is_ascii_lowercase() => Ok(Escape::Uppercased(
            high.to_ascii_uppercase(),
            low.to_ascii_uppercase(),
        )),
        _ => Ok(Escape::AsWritten),
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Says whether RFC 3986 lets this byte appear unescaped with the same
/// meaning, which is what makes decoding it safe.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests;
