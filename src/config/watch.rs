//! Noticing that the config should be read again: the config file or a
//! file it names changed, or the process got SIGHUP.
//!
//! Directories are watched, not files. Editors save by writing a new file
//! and renaming it over the old one, and Kubernetes updates a mounted
//! ConfigMap by pointing its `..data` symlink at a new directory; in both
//! cases a watch on the old file would go quiet, while its directory sees
//! every step. Each file's own directory and, when it is reached through
//! symlinks, the directory it really lives in are watched.
//!
//! A change rarely comes alone (a swap is a create, a rename and a delete),
//! so events are debounced: [`ConfigWatch::next`] returns once the files
//! have been quiet for a moment. Whether anything really changed is left to
//! the caller, who can compare contents; this module only says "look".

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{SecretSource, Settings};

/// How long the files must stay quiet before a change is reported.
const QUIET: Duration = Duration::from_millis(200);

/// The longest a change waits for quiet: a file rewritten without pause
/// must still be reloaded now and then.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Says why the config should be read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    /// Something changed in a watched directory.
    Files,
    /// The process got SIGHUP: the operator asked for a reload.
    Hangup,
    /// The config file changed between tollgate reading it at start and
    /// the watch beginning, so no event will tell.
    Start,
}

impl TriggerKind {
    /// Returns the label used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Files => "file_change",
            TriggerKind::Hangup => "sighup",
            TriggerKind::Start => "changed_during_start",
        }
    }
}

// --- Hangup ---

/// Receives SIGHUP.
///
/// Its default action ends the process, so the handler must be installed
/// before anything slow happens at start, like the SIGTERM handler; hence a
/// type of its own, made first and handed to [`ConfigWatch::new`] later.
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Installs the SIGHUP handler now. Must be called inside the runtime.
    ///
    /// Should that fail, SIGHUP keeps its default action; file changes
    /// still reload, and the failure is logged by [`ConfigWatch::new`].
    pub fn hook() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Hangup {
                signal: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Hangup {}
        }
    }

    /// Says whether the handler is installed.
    fn is_hooked(&self) -> bool {
        #[cfg(unix)]
        {
            self.signal.is_some()
        }
        #[cfg(not(unix))]
        {
            false
        }
    }

    /// Resolves at the next SIGHUP; never, when there is no handler.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}

// --- ConfigWatch ---

/// Watches the directories of the config and the files it names, and
/// listens for SIGHUP.
pub struct ConfigWatch {
    hangup: Hangup,
    /// `None` when the platform's watcher could not start; SIGHUP still
    /// works then.
    watcher: Option<RecommendedWatcher>,
    changes: mpsc::Receiver<()>,
    dirs: BTreeSet<PathBuf>,
    /// The files watched from the start and their contents then.
    baseline: Option<(Vec<PathBuf>, Fingerprint)>,
}

impl ConfigWatch {
    /// Starts a watcher that watches nothing yet; see
    /// [`ConfigWatch::watch_files`].
    pub fn new(hangup: Hangup) -> Self {
        if !hangup.is_hooked() {
            tracing::warn!("cannot handle SIGHUP; reload by changing the config file instead");
        }

        // One pending notice is as good as many, so a full channel just
        // drops the newcomer.
        let (sender, changes) = mpsc::channel(1);
        let watcher =
            notify::recommended_watcher(move |event: notify::Result<Event>| match event {
                Ok(event) if is_change(&event.kind) => {
                    let _ = sender.try_send(());
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(error = %error, "file watch error"),
            });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(error = %error, "cannot watch files; reload with SIGHUP instead");
                None
            }
        };

        ConfigWatch {
            hangup,
            watcher,
            changes,
            dirs: BTreeSet::new(),
            baseline: None,
        }
    }

    /// Starts a watcher on the config at `path` and every file `settings`
    /// name. Made before tollgate loads its keys and binds, and handed to
    /// the reloader afterwards, so a change made while tollgate starts
    /// (a remote key set fetch may take seconds) is not missed.
    ///
    /// It also notes what the files hold once watched (see
    /// [`ConfigWatch::take_baseline`]), so that an event in their
    /// directories that changed none of them does not reload.
    pub fn for_config(hangup: Hangup, path: &Path, settings: &Settings) -> Self {
        let mut watch = ConfigWatch::new(hangup);
        let files = watched_files(path, settings);
        watch.watch_files(&files);
        let contents = fingerprint(&files);
        watch.baseline = Some((files, contents));
        watch
    }

    /// Returns the files [`ConfigWatch::for_config`] watched and what they
    /// held then, once.
    pub fn take_baseline(&mut self) -> Option<(Vec<PathBuf>, Fingerprint)> {
        self.baseline.take()
    }

    /// Watches the directories of `files` (and of their symlink targets),
    /// and stops watching those no longer needed.
    pub fn watch_files(&mut self, files: &[PathBuf]) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        let wanted: BTreeSet<PathBuf> = files.iter().flat_map(|file| dirs_of(file)).collect();

        for gone in self.dirs.difference(&wanted) {
            // A directory that was deleted (the old ConfigMap data) has
            // already lost its watch; nothing to report.
            let _ = watcher.unwatch(gone);
        }
        let mut watched: BTreeSet<PathBuf> = self.dirs.intersection(&wanted).cloned().collect();
        for dir in wanted.difference(&self.dirs) {
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "watching directory");
                    watched.insert(dir.clone());
                }
                // Not recorded, so the next call tries again: the directory
                // may simply not exist yet.
                Err(error) => tracing::warn!(
                    dir = %dir.display(),
                    error = %error,
                    "cannot watch directory; changes there need SIGHUP"
                ),
            }
        }
        self.dirs = watched;
    }

    /// Waits for the next reason to read the config again.
    ///
    /// SIGHUP answers at once. A file change answers once the watched
    /// directories have been quiet for 200 ms, or after 2 s of changes
    /// without a pause.
    pub async fn next(&mut self) -> TriggerKind {
        tokio::select! {
            () = self.hangup.recv() => return TriggerKind::Hangup,
            Some(()) = self.changes.recv() => {}
        }

        let deadline = Instant::now() + MAX_WAIT;
        loop {
            let quiet = tokio::time::sleep(QUIET);
            tokio::select! {
                () = self.hangup.recv() => return TriggerKind::Hangup,
                Some(()) = self.changes.recv() => {}
                () = quiet => return TriggerKind::Files,
                () = tokio::time::sleep_until(deadline) => return TriggerKind::Files,
            }
        }
    }
}

/// Says whether an event can mean new content. Opening and reading a file
/// cannot, and reloading reads every file, so counting those would make
/// each reload set off the next.
///
/// A plain data write is not counted either: a file rewritten in place is
/// complete only when its writer closes it (which is counted), and
/// reloading on a pause in the middle of the writing could apply half a
/// config that still parses, say one whose role line was not written yet.
/// Renames, creations and removals (an editor's save, a ConfigMap symlink
/// swap) are counted as they come.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Data(_)) => false,
        _ => true,
    }
}

/// Returns the directories to watch for one file: where its path says it
/// is, and where it really is once symlinks are followed.
fn dirs_of(file: &Path) -> Vec<PathBuf> {
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut dirs = vec![std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned())];
    if let Some(real) = std::fs::canonicalize(file)
        .ok()
        .and_then(|real| real.parent().map(Path::to_owned))
    {
        dirs.push(real);
    }
    dirs
}

/// One hash per watched file, in order; `None` for a file that cannot be
/// read.
pub type Fingerprint = Vec<Option<u64>>;

/// Hashes each file's contents (`None` for a file that cannot be read), to
/// tell a real change from a touch or a neighbour's change. Not a security
/// measure: it only saves a needless reload and cache flush. The files are
/// small and local, so they are read inline.
pub fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|file| {
            let bytes = super::file::read_file(file).ok()?;
            let mut hasher = DefaultHasher::new();
            bytes.hash(&mut hasher);
            Some(hasher.finish())
        })
        .collect()
}

/// Lists the config file and every file it names: secret files, JWKS
/// files, denylists, and TLS certificates, keys and CA files. A change to
/// any of them is a reason to reload.
pub fn watched_files(config: &Path, settings: &Settings) -> Vec<PathBuf> {
    let mut files = vec![config.to_owned()];
    if let Some(tls) = &settings.listen.tls {
        files.extend([tls.cert_file.value.clone(), tls.key_file.value.clone()]);
    }
    files.extend(settings.upstream.tls.files().cloned());
    if let Some(store) = &settings.account_store {
        files.extend(store.tls.files().cloned());
    }
    for provider in &settings.providers {
        if let Some(SecretSource::File(paths)) = provider.secret.as_ref().map(|s| &s.value) {
            files.extend(paths.iter().cloned());
        }
        if let Some(jwks) = &provider.jwks_file {
            files.push(jwks.value.clone());
        }
        if let Some(denylist) = &provider.revoke.denylist_file {
            files.push(denylist.value.clone());
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_partial_writes_are_not_changes_but_finished_writes_are() {
        use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::Both
        ))));
        assert!(is_change(&EventKind::Remove(RemoveKind::Any)));
        // A write in the middle of a file is not the end of it.
        assert!(!is_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Content
        ))));
    }

    #[test]
    fn tls_certificates_keys_and_ca_files_are_watched() {
        let text = r#"
[listen.tls]
cert_file = "tls/cert.pem"
key_file = "tls/key.pem"
[upstream]
url = "https://game.internal"
ca_file = "tls/ca.pem"
client_cert_file = "tls/client.pem"
client_key_file = "tls/client.key"
[[providers]]
name = "accounts"
issuer = "https://accounts.test"
audiences = ["api"]
algorithms = ["HS256"]
secret_env = "K"
"#;
        let settings = crate::config::from_str(text, "t.toml").expect("a valid config");
        let files = watched_files(Path::new("t.toml"), &settings);
        let names: Vec<&str> = files.iter().filter_map(|f| f.to_str()).collect();
        assert_eq!(
            names,
            [
                "t.toml",
                "tls/cert.pem",
                "tls/key.pem",
                "tls/ca.pem",
                "tls/client.pem",
                "tls/client.key"
            ]
        );
    }

    #[test]
    fn a_file_in_the_working_directory_watches_the_working_directory() {
        let dirs = dirs_of(Path::new("no-such-file.toml"));
        let here = std::fs::canonicalize(".").expect("the working directory");
        assert_eq!(dirs, [here]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_watches_both_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("..2024_01");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("tollgate.toml"), "").expect("write");
        std::os::unix::fs::symlink("..2024_01", dir.path().join("..data")).expect("symlink");
        let link = dir.path().join("tollgate.toml");
        std::os::unix::fs::symlink("..data/tollgate.toml", &link).expect("symlink");

        let dirs = dirs_of(&link);
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        assert_eq!(dirs, [root.clone(), root.join("..2024_01")]);
    }
}
