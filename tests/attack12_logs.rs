//! Attack 12 on `log.level`: a directive that names a target but no level
//! is refused, whichever way it leaves the level out, and the filters
//! that do name one (span filters, numbers, upper case) still pass.

mod support;

use std::ffi::OsStr;

use support::binary::{self, Output, SECRET_ENV, command, write_config};

/// A secret long enough for HS256.
const SECRET: &str = "attack12-secret-long-enough-for-hs256!!";

/// Runs `tollgate check` on the test config with `log.level` set to
/// `level`.
fn check_level(level: &str) -> (String, Output) {
    let text = binary::config("attack12", "http://127.0.0.1:9")
        .replace(r#"level = "info""#, &format!("level = {level:?}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "check.toml", &text);
    let output = binary::run(
        command()
            .env(SECRET_ENV, OsStr::new(SECRET))
            .arg("check")
            .arg("--config")
            .arg(&path),
    );
    (text, output)
}

/// Regression (attack 12): attack 11 refused `log.level = "tollgate"` as
/// naming no level, but `"tollgate="` (the level forgotten after the `=`)
/// passed: tracing reads it as `tollgate=trace`, so `check` printed
/// `log filter tollgate=trace` and every line not of tollgate was off, as
/// with the bare word.
#[test]
fn a_directive_with_nothing_after_its_equals_sign_is_refused() {
    for typo in [
        "tollgate=",
        "info,tollgate=",
        "warn,tollgate::proxy=",
        "tollgate[request]=",
    ] {
        let (text, output) = check_level(typo);

        assert_eq!(output.code(), Some(2), "{typo:?}: {}", output.stdout_text());
        let line = support::binary::line_of(&text, "level = ");
        assert!(
            output.stderr.contains(&format!(":{line}: log.level: ")),
            "{typo:?}: {}",
            output.stderr
        );
        assert!(
            output.stderr.contains("names no level"),
            "{}",
            output.stderr
        );
    }
}

/// What the attack-11 check must not refuse: each of these names a level.
#[test]
fn filters_that_name_a_level_still_pass() {
    for level in [
        "OFF",
        "Info",
        "3",
        "0",
        "warn,tollgate=DEBUG",
        "tollgate[request]=debug",
        "[request]=debug",
        "[request{user_id=alice}]=debug",
        "info,tollgate[request{user_id=alice}]=trace",
    ] {
        let (_, output) = check_level(level);
        assert_eq!(output.code(), Some(0), "{level:?}: {}", output.stderr);
    }
}
