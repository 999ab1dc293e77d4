use std::borrow::Cow;

use super::{PathError, normalize};

/// Normalises a path that must be accepted.
fn ok(raw: &str) -> String {
    match normalize(raw) {
        Ok(path) => path.into_owned(),
        Err(error) => panic!("{raw:?} was refused: {error}"),
    }
}

/// Normalises a path that must be refused.
fn refused(raw: &str) -> PathError {
    match normalize(raw) {
        Ok(path) => panic!("{raw:?} was accepted as {path:?}"),
        Err(error) => error,
    }
}

// --- Accepted, unchanged -----------------------------------------------------

#[test]
fn a_plain_path_is_borrowed_not_copied() {
    assert!(matches!(
        normalize("/api/v1/users"),
        Ok(Cow::Borrowed("/api/v1/users"))
    ));
}

#[test]
fn the_root_is_borrowed() {
    assert!(matches!(normalize("/"), Ok(Cow::Borrowed("/"))));
}

#[test]
fn a_trailing_slash_is_kept_and_borrowed() {
    assert!(matches!(normalize("/a/"), Ok(Cow::Borrowed("/a/"))));
}

#[test]
fn an_uppercase_reserved_escape_is_borrowed() {
    assert!(matches!(
        normalize("/a%20b/%E2%82%AC"),
        Ok(Cow::Borrowed("/a%20b/%E2%82%AC"))
    ));
}

#[test]
fn dots_inside_a_segment_are_ordinary_text() {
    assert!(matches!(
        normalize("/a/..b/c.d/.e/v1.2/"),
        Ok(Cow::Borrowed(_))
    ));
}

#[test]
fn a_segment_ending_in_a_dot_or_a_space_is_refused() {
    for raw in [
        "/admin./x",
        "/admin%2e/x",
        "/a/c../x",
        "/a/...",
        "/admin%20/x",
        "/a/x.",
    ] {
        assert_eq!(refused(raw), PathError::TrailingDot, "{raw}");
    }
}

#[test]
fn raw_non_ascii_text_is_kept_as_written() {
    assert!(matches!(
        normalize("/caf\u{e9}/x"),
        Ok(Cow::Borrowed("/caf\u{e9}/x"))
    ));
}

// --- Dot segments and slashes ------------------------------------------------

#[test]
fn a_dot_segment_is_removed() {
    assert_eq!(ok("/a/./b"), "/a/b");
}

#[test]
fn a_dot_dot_segment_removes_the_segment_before_it() {
    assert_eq!(ok("/public/../admin"), "/admin");
}

#[test]
fn encoded_dot_dot_is_resolved_like_a_raw_one() {
    assert_eq!(ok("/public/%2e%2e/admin"), "/admin");
}

#[test]
fn mixed_case_encoded_dot_dot_is_resolved() {
    assert_eq!(ok("/public/%2e%2E/admin"), "/admin");
    assert_eq!(ok("/public/.%2E/admin"), "/admin");
}

#[test]
fn an_encoded_single_dot_is_removed() {
    assert_eq!(ok("/a/%2E/b"), "/a/b");
}

#[test]
fn double_slashes_collapse() {
    assert_eq!(ok("//a//b///c"), "/a/b/c");
}

#[test]
fn a_path_of_only_slashes_becomes_the_root() {
    assert_eq!(ok("///"), "/");
}

#[test]
fn a_trailing_dot_leaves_a_trailing_slash() {
    assert_eq!(ok("/a/."), "/a/");
}

#[test]
fn a_trailing_dot_dot_leaves_a_trailing_slash() {
    assert_eq!(ok("/a/b/.."), "/a/");
    assert_eq!(ok("/a/.."), "/");
}

#[test]
fn a_doubled_trailing_slash_becomes_one() {
    assert_eq!(ok("/a//"), "/a/");
}

#[test]
fn climbing_back_to_the_root_is_allowed() {
    assert_eq!(ok("/a/b/../../c"), "/c");
}

#[test]
fn a_single_dot_at_the_root_is_the_root() {
    assert_eq!(ok("/."), "/");
    assert_eq!(ok("/./"), "/");
}

// --- Escapes -----------------------------------------------------------------

#[test]
fn an_escaped_letter_is_decoded() {
    assert_eq!(ok("/%41dmin"), "/Admin");
    assert_eq!(ok("/%61dmin"), "/admin");
}

#[test]
fn an_escaped_tilde_is_decoded() {
    assert_eq!(ok("/%7e/user"), "/~/user");
}

#[test]
fn every_unreserved_punctuation_escape_is_decoded() {
    assert_eq!(ok("/%2D%2e%5F%7E%30"), "/-._~0");
}

#[test]
fn a_lowercase_reserved_escape_is_uppercased() {
    assert_eq!(ok("/a%2bb/%e2%82%ac"), "/a%2Bb/%E2%82%AC");
}

#[test]
fn a_double_encoded_dot_dot_is_not_decoded_again() {
    assert_eq!(ok("/a/%252e%252e/b"), "/a/%252e%252e/b");
    assert!(matches!(normalize("/a/%252E%252E/b"), Ok(Cow::Borrowed(_))));
}

#[test]
fn a_double_encoded_slash_is_kept_as_text() {
    assert_eq!(ok("/a%252fb"), "/a%252fb");
}

#[test]
fn the_text_around_a_rewritten_escape_is_kept() {
    assert_eq!(ok("/x\u{e9}%7ey\u{e9}/tail"), "/x\u{e9}~y\u{e9}/tail");
}

// --- Refused -----------------------------------------------------------------

#[test]
fn a_relative_path_is_refused() {
    assert_eq!(refused("a/b"), PathError::NotAbsolute);
    assert_eq!(refused(""), PathError::NotAbsolute);
}

#[test]
fn an_asterisk_form_target_is_refused() {
    assert_eq!(refused("*"), PathError::NotAbsolute);
}

#[test]
fn climbing_above_the_root_is_refused() {
    assert_eq!(refused("/.."), PathError::ClimbsAboveRoot);
    assert_eq!(refused("/a/../.."), PathError::ClimbsAboveRoot);
    assert_eq!(refused("/a/../../b"), PathError::ClimbsAboveRoot);
}

#[test]
fn climbing_above_the_root_with_encoded_dots_is_refused() {
    assert_eq!(refused("/%2e%2e/etc/passwd"), PathError::ClimbsAboveRoot);
}

#[test]
fn an_encoded_slash_is_refused_in_either_case() {
    assert_eq!(refused("/a%2Fb"), PathError::EncodedSlash);
    assert_eq!(refused("/public%2f..%2fadmin"), PathError::EncodedSlash);
}

#[test]
fn an_encoded_backslash_is_refused_in_either_case() {
    assert_eq!(refused("/a%5cb"), PathError::EncodedSlash);
    assert_eq!(refused("/a%5Cb"), PathError::EncodedSlash);
}

#[test]
fn a_raw_backslash_is_refused() {
    assert_eq!(refused("/public\\..\\admin"), PathError::Backslash);
}

#[test]
fn a_raw_semicolon_is_refused() {
    assert_eq!(refused("/admin;jsessionid=1"), PathError::Parameters);
    assert_eq!(refused("/public/..;/admin"), PathError::Parameters);
}

#[test]
fn an_encoded_semicolon_is_refused() {
    assert_eq!(refused("/admin%3bx"), PathError::Parameters);
    assert_eq!(refused("/admin%3Bx"), PathError::Parameters);
}

#[test]
fn an_encoded_nul_is_refused() {
    assert_eq!(refused("/a%00.html"), PathError::Nul);
}

#[test]
fn an_encoded_control_character_is_refused() {
    for raw in [
        "/secret%09",
        "/secret%0a",
        "/secret%0D",
        "/a%01b",
        "/a%1F",
        "/a%7f/b",
    ] {
        assert_eq!(refused(raw), PathError::Control, "{raw}");
    }
    // Printable and non-ASCII escapes stay allowed.
    assert!(normalize("/a%20b/%c2%a0/%7E").is_ok());
}

#[test]
fn a_raw_nul_is_refused() {
    assert_eq!(refused("/a\0b"), PathError::Nul);
}

#[test]
fn a_percent_without_two_hex_digits_is_refused() {
    assert_eq!(refused("/a%"), PathError::BadEscape);
    assert_eq!(refused("/a%4"), PathError::BadEscape);
    assert_eq!(refused("/a%zz"), PathError::BadEscape);
    assert_eq!(refused("/a%4g/b"), PathError::BadEscape);
    assert_eq!(refused("/a%%41"), PathError::BadEscape);
}

#[test]
fn a_bad_escape_before_a_multibyte_character_is_refused_without_panicking() {
    assert_eq!(refused("/a%\u{e9}"), PathError::BadEscape);
    assert_eq!(refused("/a%4\u{e9}"), PathError::BadEscape);
}

#[test]
fn a_forbidden_byte_after_a_climb_is_still_refused() {
    assert_eq!(refused("/a/../b;c"), PathError::Parameters);
}

#[test]
fn every_reason_has_a_distinct_label() {
    let all = [
        PathError::NotAbsolute,
        PathError::BadEscape,
        PathError::EncodedSlash,
        PathError::Backslash,
        PathError::Nul,
        PathError::Control,
        PathError::Parameters,
        PathError::ClimbsAboveRoot,
        PathError::TrailingDot,
    ];
    let mut labels: Vec<_> = all.iter().map(PathError::as_str).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), all.len());
}

// --- Properties ----------------------------------------------------------------

#[test]
fn normalising_twice_changes_nothing() {
    let samples = [
        "/a/./b/../c//d/",
        "/%2e%2E/x",
        "/a/%2e%2e/%7e%41/%e2%82%ac/.",
        "/a/%252e/b/..",
        "//x//",
    ];
    for raw in samples {
        let Ok(once) = normalize(raw) else { continue };
        let twice = normalize(&once);
        assert!(
            matches!(twice, Ok(Cow::Borrowed(_))),
            "{raw:?} -> {once:?} -> {twice:?}"
        );
    }
}

#[test]
fn a_normal_path_never_holds_a_dot_segment_or_empty_segment() {
    let samples = ["/a/./b/../c", "/%2e/a//b/%2e%2e/c/", "/x/y/z/../../.."];
    for raw in samples {
        let path = ok(raw);
        let body = path.trim_start_matches('/').trim_end_matches('/');
        if body.is_empty() {
            continue;
        }
        for segment in body.split('/') {
            assert!(!matches!(segment, "" | "." | ".."), "{raw:?} -> {path:?}");
        }
    }
}

/// Builds paths from pieces chosen by a fixed xorshift sequence, so the run
/// is the same every time and bounded.
fn generated_paths(count: usize) -> impl Iterator<Item = String> {
    const PIECES: [&str; 18] = [
        "/", "/", ".", "..", "%2e", "%2E", "a", "%41", "%7e", "%2f", "%25", "%e2", "%20", ";",
        "\\", "%", "\u{e9}", "%3b",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count).map(move |_| {
        let mut path = String::from("/");
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = usize::try_from(state % 18).expect("below 18 fits in usize");
            path.push_str(PIECES[index]);
        }
        path
    })
}

#[test]
fn every_accepted_generated_path_is_a_fixed_point_with_no_dot_or_empty_segment() {
    let mut accepted = 0;
    // 40 000 paths: segments ending in `.` or `%20` are refused, so about
    // one generated path in 30 is accepted.
    for raw in generated_paths(40_000) {
        let Ok(path) = normalize(&raw) else { continue };
        accepted += 1;
        assert!(
            matches!(normalize(&path), Ok(Cow::Borrowed(_))),
            "{raw:?} -> {path:?}"
        );
        assert!(
            path.starts_with('/') && !path.contains("//"),
            "{raw:?} -> {path:?}"
        );
        let body = path.trim_start_matches('/').trim_end_matches('/');
        if !body.is_empty() {
            for segment in body.split('/') {
                assert!(!matches!(segment, "" | "." | ".."), "{raw:?} -> {path:?}");
            }
        }
    }
    // The generator must exercise the accepting side too, not only refusals.
    assert!(
        accepted > 1_000,
        "only {accepted} generated paths were accepted"
    );
}
