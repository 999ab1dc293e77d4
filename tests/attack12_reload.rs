//! Attack 12 on watching symlinked files: a ConfigMap-style layout, where
//! each file is a link through `..data` to a directory that a swap
//! replaces. The watch follows the links to wherever they lead now.
#![cfg(unix)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::Upstream;
use support::reload::{CONFIG, SECRET_NEW, SECRET_OLD, Watched, config, hs256};

/// Long enough for a reload to show if one were coming: the watcher
/// reports a change once the files have been quiet for 200 ms.
const SETTLE: Duration = Duration::from_millis(1000);

/// Writes `secret` as `hmac.key` in a new data directory `version` and
/// points `..data` at it in one rename, as the kubelet does.
fn publish(dir: &Path, version: &str, secret: &str) {
    std::fs::create_dir(dir.join(version)).expect("a new data directory");
    std::fs::write(dir.join(version).join("hmac.key"), secret).expect("write the key");
    std::os::unix::fs::symlink(version, dir.join("..data_tmp")).expect("a new link");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap the link");
}

/// Regression (attack 12): the watch is moved to the directories the links
/// lead to only after a reload. A swap that left every file tollgate reads
/// as it was (a ConfigMap key tollgate does not read changed, say) reloaded
/// nothing, rightly, but left the watch on the old, deleted directory: a
/// key then written in place in the new one was never seen, and the old
/// key stayed in force until the next SIGHUP.
#[tokio::test]
async fn a_key_written_in_place_after_a_swap_that_changed_nothing_is_reloaded() {
    let upstream = Upstream::start().await;
    let mut site = Watched::new();
    let dir = site.dir().to_owned();
    publish(&dir, "..v1", SECRET_OLD);
    std::os::unix::fs::symlink("..data/hmac.key", dir.join("hmac.key")).expect("the key link");
    let provider = format!(
        "algorithms = [\"HS256\"]\nsecret_file = \"{}\"",
        site.file("hmac.key")
    );
    site.write(CONFIG, &config(upstream.addr(), "", &provider, ""));
    site.start(CONFIG, &[]).await;

    publish(&dir, "..v2", SECRET_OLD);
    std::fs::remove_dir_all(dir.join("..v1")).expect("drop the old data");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(site.reloads("ok").await, 0.0, "the key did not change");

    let temp = dir.join("..v2").join(".hmac.key.tmp");
    std::fs::write(&temp, SECRET_NEW).expect("write the new key");
    std::fs::rename(&temp, dir.join("..v2").join("hmac.key")).expect("put it in place");
    // Gave up waiting before the fix.
    site.wait_for_reloads("ok", 1.0).await;
    let new = hs256(SECRET_NEW, "bob");
    assert_eq!(site.get("/api/games", Some(&new)).await.status, 200);
    site.shutdown().await;
}

/// Regression (attack 12): every ConfigMap update logged a `warn` from the
/// file watcher ("Unable to remove the path from the watches"), with a
/// source path of the build machine in it: tollgate asked to unwatch the
/// old data directory, which its deletion had already unwatched. The real
/// binary, with its secret file behind `..data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_swap_logs_no_warning() {
    use support::binary::{self, Served};

    let upstream = Upstream::start().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let dir = keys.path();
    publish(dir, "..v1", SECRET_OLD);
    std::os::unix::fs::symlink("..data/hmac.key", dir.join("hmac.key")).expect("the key link");
    let secret_file = dir
        .join("hmac.key")
        .display()
        .to_string()
        .replace('\\', "/");
    let text = binary::config("attack12", &format!("http://{}", upstream.addr())).replace(
        &format!("secret_env = \"{}\"", binary::SECRET_ENV),
        &format!("secret_file = \"{secret_file}\""),
    );
    let served = Served::start(&text, &[]);

    publish(dir, "..v2", SECRET_NEW);
    std::fs::remove_dir_all(dir.join("..v1")).expect("drop the old data");
    let authorization = format!("Bearer {}", hs256(SECRET_NEW, "bob"));
    let url = served.url("/api/games");
    support::reload::eventually("the new key in force", || async {
        binary::get(&url, &[("authorization", &authorization)])
            .await
            .status
            == 200
    })
    .await;
    // A later change still lands: the watch followed the swap.
    publish(dir, "..v3", SECRET_OLD);
    let authorization = format!("Bearer {}", hs256(SECRET_OLD, "alice"));
    support::reload::eventually("the third key in force", || async {
        binary::get(&url, &[("authorization", &authorization)])
            .await
            .status
            == 200
    })
    .await;

    let output = served.terminate();
    let warnings: Vec<String> = output
        .json_lines()
        .iter()
        .filter(|line| line["level"] != "INFO" && line["level"] != "DEBUG")
        .map(|line| line.to_string())
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
