//! Reloading the config while serving.
//!
//! A reload reads the file again, checks it, loads every key and denylist
//! it names, and only then publishes the new snapshot with one store (see
//! [`State::reload`]); requests in flight finish on the snapshot they
//! started with. Anything wrong along the way refuses the whole reload: the
//! running config stays, a warning names the file, line and key, and
//! `tollgate_config_reloads_total{result="error"}` counts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::diff::{self, RestartOnly};
use crate::config::watch::{ConfigWatch, Fingerprint, TriggerKind, fingerprint, watched_files};
use crate::config::{self, ConfigError, Settings};
use crate::env::Env;
use crate::keys::KeyError;
use crate::state::{Snapshot, State};
use crate::telemetry::log::{self, LevelChange};

/// Says why a reload was refused; the running config stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not read, parse or validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A key, secret or denylist it names cannot be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The reload task itself failed (it panicked); a bug.
    #[error("the reload task failed: {0}")]
    Task(String),
}

impl ReloadError {
    /// Returns the config key at fault, when the error names one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ReloadError::Config(ConfigError::Invalid { key, .. }) => Some(key),
            ReloadError::Keys(
                KeyError::EnvUnset { key, .. }
                | KeyError::EnvNotUnicode { key, .. }
                | KeyError::Read { key, .. }
                | KeyError::ShortSecret { key, .. }
                | KeyError::NoSecret { key, .. }
                | KeyError::Jwks { key, .. }
                | KeyError::Denylist { key, .. },
            ) => Some(key),
            ReloadError::Keys(KeyError::Tls(error)) => Some(error.key()),
            _ => None,
        }
    }
}

/// Describes a reload that was published.
#[derive(Debug)]
pub struct Reloaded {
    /// The generation of the new snapshot.
    pub generation: u64,
    /// The keys whose values changed (see [`diff::changed_keys`]).
    pub changed: Vec<String>,
    /// Settings the file changed that need a restart; not in force.
    pub restart_only: Vec<RestartOnly>,
}

/// Reads the config at `path` again and publishes it, logging and counting
/// the result either way; on error the running config stays.
///
/// Blocking: it reads files. The reload task runs it off the runtime's
/// worker threads, one reload at a time; two run at once could publish in
/// either order.
pub fn reload_file(state: &State, path: &Path, env: &Env) -> Result<Reloaded, ReloadError> {
    match try_reload(state, path, env) {
        Ok(reloaded) => {
            state.metrics.config_reloads_ok.increment(1);
            Ok(reloaded)
        }
        Err(error) => {
            state.metrics.config_reloads_error.increment(1);
            tracing::warn!(
                config.path = %path.display(),
                config.key = error.key(),
                error = %error,
                "config reload refused; running config kept"
            );
            Err(error)
        }
    }
}

/// Does the work of [`reload_file`].
fn try_reload(state: &State, path: &Path, env: &Env) -> Result<Reloaded, ReloadError> {
    let mut settings = config::from_file(path)?;
    let running = state.load();

    let restart_only = diff::keep_restart_only(&running.settings, &mut settings);
    for kept in &restart_only {
        tracing::warn!(
            config.path = %path.display(),
            config.key = kept.key,
            running = %kept.running,
            wanted = %kept.wanted,
            "setting needs a restart; running value kept"
        );
    }

    let changed = diff::changed_keys(&running.settings, &settings);
    let generation = state.reload(settings, env)?;
    let published = state.load();
    apply_log_level(&running.settings, &published.settings);

    tracing::info!(
        config.path = %path.display(),
        generation,
        changed = %describe(&changed),
        keys = %key_summary(&published),
        "config reloaded"
    );
    Ok(Reloaded {
        generation,
        changed,
        restart_only,
    })
}

/// Puts a changed `log.level` in force.
fn apply_log_level(old: &Settings, new: &Settings) {
    if old.log.level == new.log.level {
        return;
    }
    match log::set_level(&new.log.level) {
        Ok(LevelChange::Pinned) => {
            tracing::info!(log.level = %new.log.level, "RUST_LOG is set and wins over log.level");
        }
        Ok(LevelChange::Applied | LevelChange::NotInstalled) => {}
        // The config check parsed the same filter, so this cannot happen.
        Err(error) => tracing::warn!(error = %error, "cannot apply log.level"),
    }
}

/// Joins the changed keys for a log line.
fn describe(changed: &[String]) -> String {
    if changed.is_empty() {
        // Key files and denylists may still have new contents.
        "no setting; files re-read".to_owned()
    } else {
        changed.join(", ")
    }
}

/// Says what each provider now holds, since new key files or denylists do
/// not show in the settings.
fn key_summary(snapshot: &Snapshot) -> String {
    let providers: Vec<String> = snapshot
        .providers
        .list()
        .iter()
        .map(|provider| {
            format!(
                "{}: {} secrets, {} public keys, {} denylist entries",
                provider.name,
                provider.keys.secret_count(),
                provider.keys.public_keys().len(),
                provider.revoke.denylist_len()
            )
        })
        .collect();
    providers.join("; ")
}

// --- Reloader ---

/// The reload task: reloads whenever its [`ConfigWatch`] says so.
///
/// A file change reloads only when the watched files' contents differ
/// from the last reload's: a directory also sees changes to files tollgate
/// does not read. SIGHUP always reloads, since the operator asked, and so
/// does a config file found changed when the task starts.
pub(super) struct Reloader {
    changes: ConfigWatch,
    path: PathBuf,
    state: Arc<State>,
    env: Env,
    files: Vec<PathBuf>,
    /// The contents last reloaded; `None` when unknown, so that the next
    /// change reloads whatever it finds.
    seen: Option<Fingerprint>,
    /// The config file changed between being read at start and being
    /// watched; the task reloads before it waits.
    stale: bool,
}

impl Reloader {
    /// Starts watching at once, before the task is first polled, so that
    /// any change made after this returns is seen.
    ///
    /// `changes` should have watched the files since before tollgate
    /// loaded them ([`ConfigWatch::for_config`]): a change made while
    /// tollgate started is then waiting here, and reloads. The config file
    /// itself was read before the watch began, so it is compared with the
    /// running settings as well.
    pub(super) fn new(
        mut changes: ConfigWatch,
        path: PathBuf,
        state: Arc<State>,
        env: Env,
    ) -> Self {
        let files = files_to_watch(&path, &state);
        changes.watch_files(&files);
        let stale = changed_since_read(&path, &state);
        // What the files held when the watch began: tollgate read its keys
        // after that, so a later event with the same contents changes
        // nothing, and one with other contents reloads. Without it (or for
        // a file named since), the first change reloads whatever it finds.
        let seen = changes
            .take_baseline()
            .and_then(|(watched, seen)| fingerprint_of(&watched, &seen, &files));
        Reloader {
            changes,
            path,
            state,
            env,
            files,
            seen,
            stale,
        }
    }

    /// Reloads on every trigger until `stop` turns true.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            let trigger = if std::mem::take(&mut self.stale) {
                TriggerKind::Start
            } else {
                tokio::select! {
                    trigger = self.changes.next() => trigger,
                    _ = stop.wait_for(|stop| *stop) => return,
                }
            };

            let now = fingerprint(&self.files);
            if trigger == TriggerKind::Files && self.seen.as_ref() == Some(&now) {
                tracing::debug!("watched files unchanged; no reload");
                // The links may lead elsewhere all the same: a swap of
                // `..data` to a copy of the same files. Left on the old
                // directory, the watch would miss the next write there.
                self.changes.watch_files(&self.files);
                continue;
            }
            self.seen = Some(now);

            tracing::debug!(trigger = trigger.as_str(), "reloading config");
            self.reload().await;
            self.follow_files();
        }
    }

    /// Runs [`reload_file`] on a blocking thread.
    async fn reload(&self) {
        let (state, path, env) = (self.state.clone(), self.path.clone(), self.env.clone());
        let finished = tokio::task::spawn_blocking(move || {
            // Logged and counted inside; the result is not needed here.
            let _ = reload_file(&state, &path, &env);
        })
        .await;
        if let Err(error) = finished {
            self.state.metrics.config_reloads_error.increment(1);
            let error = ReloadError::Task(error.to_string());
            tracing::warn!(error = %error, "config reload refused; running config kept");
        }
    }

    /// Watches the files the config now names. A file that was not
    /// watched before has no fingerprint, so the next change reloads.
    fn follow_files(&mut self) {
        let files = files_to_watch(&self.path, &self.state);
        // Always: the same paths may now lead elsewhere (a symlink pointed
        // at another directory), and a directory that could not be watched
        // before (it did not exist yet) is tried again.
        self.changes.watch_files(&files);
        if files != self.files {
            // A list that only shrank keeps what it knew: at start, the
            // files of the config on disk are watched beside the running
            // ones, and forgetting them made the event of the very change
            // just reloaded reload a second time.
            self.seen = self
                .seen
                .take()
                .and_then(|seen| fingerprint_of(&self.files, &seen, &files));
            self.files = files;
        }
    }
}

/// Picks out of `seen`, taken over `before`, the fingerprint of `after`;
/// `None` when `after` names a file `before` did not, whose contents were
/// never looked at.
fn fingerprint_of(
    before: &[PathBuf],
    seen: &[Option<u64>],
    after: &[PathBuf],
) -> Option<Fingerprint> {
    after
        .iter()
        .map(|file| {
            let at = before.iter().position(|known| known == file)?;
            seen.get(at).copied()
        })
        .collect()
}

/// Lists the files to watch: those the running config names, plus those
/// the file on disk names when it parses. After a refused reload that
/// named a missing key file, creating that file must be noticed too.
fn files_to_watch(path: &Path, state: &State) -> Vec<PathBuf> {
    let mut files = watched_files(path, &state.load().settings);
    if let Ok(on_disk) = config::from_file(path) {
        for file in watched_files(path, &on_disk) {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files
}

/// Says whether the config file no longer says what is running: it was
/// changed after tollgate read it at start.
///
/// Every setting counts, those that need a restart included (the reload
/// then warns that they are not in force), so the whole `Debug` text is
/// compared rather than [`diff::changed_keys`]. A difference in where a
/// value sits in the file only costs one needless reload.
fn changed_since_read(path: &Path, state: &State) -> bool {
    match config::from_file(path) {
        Ok(on_disk) => format!("{on_disk:?}") != format!("{:?}", state.load().settings),
        // Reloading refuses it and says where it is wrong.
        Err(_) => true,
    }
}
