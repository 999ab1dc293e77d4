//! Attack 11 on the reloader's start: the config and the files it names
//! are watched before tollgate loads them, and a config that changed before
//! the reloader ran is reloaded at once. A change made while tollgate
//! starts must land exactly once, and a config broken on disk by then must
//! be refused once, with the running config kept.

mod support;

use std::time::Duration;

use support::Upstream;
use support::reload::{CONFIG, SECRET_NEW, SECRET_OLD, Watched, config, env_of, hs256};

/// Long enough for a second reload to show if one were coming: the
/// watcher reports a change once the files have been quiet for 200 ms.
const SETTLE: Duration = Duration::from_millis(1000);

/// Regression (attack 11): a config rewritten while tollgate started to
/// name another secret file was reloaded twice: once because it no longer
/// said what was running, and again for the file event of that same
/// rewrite, since the list of watched files had changed between the two
/// and its contents were taken as unknown. Every reload flushes the token
/// cache and counts in `tollgate_config_reloads_total`.
#[tokio::test]
async fn a_config_naming_a_new_file_while_tollgate_starts_reloads_once() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write("old.key", SECRET_OLD);
    site.write("new.key", SECRET_NEW);
    let text = config(upstream.addr(), "", &site.secret_file("old.key"), "");
    site.write(CONFIG, &text);

    let renamed = config(upstream.addr(), "", &site.secret_file("new.key"), "");
    let rename = |site: &Watched| site.write(CONFIG, &renamed);
    site.start_racing(CONFIG, env_of(&[]), |_| {}, rename).await;

    let new = hs256(SECRET_NEW, "bob");
    site.wait_for_status("/api/games", Some(&new), 200).await;
    site.wait_for_reloads("ok", 1.0).await;
    tokio::time::sleep(SETTLE).await;
    // 2 before the fix.
    assert_eq!(site.reloads("ok").await, 1.0);
    assert_eq!(site.reloads("error").await, 0.0);
    site.shutdown().await;
}

/// A config broken on disk by the time the reloader runs is refused once,
/// counted once, and the config tollgate started with keeps serving.
#[tokio::test]
async fn a_config_broken_while_tollgate_starts_is_refused_once_and_the_running_one_kept() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    let text = site.write_secret_file_config(upstream.addr(), "");

    let broken = text.replace("leeway = \"5s\"", "leeway = \"forever\"");
    assert_ne!(broken, text, "the test config holds a leeway to break");
    let break_it = |site: &Watched| site.write(CONFIG, &broken);
    site.start_racing(CONFIG, env_of(&[]), |_| {}, break_it)
        .await;

    site.wait_for_reloads("error", 1.0).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(site.reloads("error").await, 1.0);
    assert_eq!(site.reloads("ok").await, 0.0);
    let old = hs256(SECRET_OLD, "alice");
    assert_eq!(site.get("/api/games", Some(&old)).await.status, 200);

    // Mended, it is put in force: the refusal did not stop the watch.
    let opened = format!("{text}\n[[rules]]\npath_prefix = \"/beta/\"\npublic = true\n");
    site.write(CONFIG, &opened);
    site.wait_for_status("/beta/games", None, 200).await;
    site.shutdown().await;
}

/// A file tollgate does not read, created beside the config while tollgate
/// starts, reloads nothing, as it does once tollgate serves: the watch
/// notes what the files held when it began.
#[tokio::test]
async fn a_neighbour_file_created_while_tollgate_starts_reloads_nothing() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    site.write_secret_file_config(upstream.addr(), "");

    let neighbour = |site: &Watched| site.write("notes.txt", "not tollgate's");
    site.start_racing(CONFIG, env_of(&[]), |_| {}, neighbour)
        .await;

    tokio::time::sleep(SETTLE).await;
    // 1 before the fix ("no setting; files re-read").
    assert_eq!(site.reloads("ok").await, 0.0);
    assert_eq!(site.reloads("error").await, 0.0);

    // The watch still works: a real change reloads.
    site.write("hmac.key", SECRET_NEW);
    site.wait_for_reloads("ok", 1.0).await;
    site.shutdown().await;
}
