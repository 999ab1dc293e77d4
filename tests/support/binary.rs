//! The real `tollgate` binary as a child process: one-shot commands
//! (`check`, `--version`) and a served instance whose stdout JSON lines the
//! tests read.
//!
//! Every child is owned by a [`ChildGuard`], so a failing assertion never
//! leaves a tollgate running; every wait has a deadline, so a hang fails
//! the test instead of stalling the suite.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{AUDIENCE, Answer, ISSUER};

/// How long a one-shot command, a start-up or a shutdown may take before
/// the test gives up. Generous: it bounds a hang, it does not measure speed.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The environment variable the test configs read the HMAC secret from.
pub const SECRET_ENV: &str = "TOLLGATE_TEST_SECRET";

/// The repository root, where `config/tollgate.toml` resolves.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run from the repository root with none of the variables
/// tollgate reads inherited from whoever runs the tests.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command
        .current_dir(repo_root())
        .env_remove("JWT_SECRET_KEY")
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove(SECRET_ENV)
        .stdin(Stdio::null());
    command
}

/// Finds the 1-based line of the first line of `text` that starts with
/// `prefix`, so tests need not hard-code line numbers of files that change.
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|line| line.trim_start().starts_with(prefix))
        .map(|at| at + 1)
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
}

/// A minimal valid config in front of `upstream`: HS256 only, the secret
/// from [`SECRET_ENV`], every path protected, access lines at info.
pub fn config(service: &str, upstream: &str) -> String {
    format!(
        r#"service = "{service}"

[listen]
address = "127.0.0.1:0"
drain_timeout = "2s"

[admin]
address = "127.0.0.1:0"

[upstream]
url = "{upstream}"
timeout = "5s"

[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256"]
secret_env = "{SECRET_ENV}"

[providers.claim_to_headers]
"X-User-Id" = "sub"

[log]
level = "info"
access = true
"#
    )
}

// --- ChildGuard ---

/// Kills and reaps its child when dropped, whatever happened before.
pub struct ChildGuard(Child);

impl ChildGuard {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the child to exit, killing it and panicking after `limit`.
    fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self.0.try_wait().expect("poll the child") {
                Some(status) => return status,
                None if Instant::now() >= deadline => {
                    let _ = self.0.kill();
                    panic!("tollgate did not exit within {limit:?}");
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a finished tollgate left behind.
#[derive(Debug)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything on stdout, one entry per line.
    pub stdout: Vec<String>,
    /// Everything on stderr.
    pub stderr: String,
}

impl Output {
    /// Stdout as one text.
    pub fn stdout_text(&self) -> String {
        self.stdout.join("\n")
    }

    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout parsed as JSON lines; panics on a line that is not JSON.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("stdout line is not JSON ({error}): {line}"))
            })
            .collect()
    }
}

/// Runs a one-shot command to the end, with [`DEADLINE`] as a bound.
pub fn run(command: &mut Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tollgate");
    let mut guard = ChildGuard(child);
    let (stdout, _) = read_lines(&mut guard.0);
    let stderr = read_all(&mut guard.0);
    let status = guard.wait_within(DEADLINE);
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

// --- Served ---

/// A `tollgate run` child that has logged a given line, usually
/// "tollgate serving".
pub struct Served {
    child: ChildGuard,
    /// The line waited for, which names the addresses once serving.
    line: Value,
    stdout: Option<JoinHandle<Vec<String>>>,
    stderr: Option<JoinHandle<String>>,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Writes `config` to a temporary file, runs `tollgate run` on it with
    /// `env` added, and waits for the "tollgate serving" line to learn the
    /// two addresses.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Served {
        Self::start_until(config, env, "tollgate serving")
    }

    /// Like [`Served::start`], but returns as soon as a line with this
    /// `message` is logged; the addresses are known only after "tollgate
    /// serving".
    pub fn start_until(config: &str, env: &[(&str, &str)], message: &str) -> Served {
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        Self::start_os_until(config, &env, message)
    }

    /// Like [`Served::start`], with values that need not be UTF-8.
    pub fn start_os(config: &str, env: &[(&str, &OsStr)]) -> Served {
        Self::start_os_until(config, env, "tollgate serving")
    }

    fn start_os_until(config: &str, env: &[(&str, &OsStr)], message: &str) -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, config).expect("write config");

        let mut command = command();
        command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard(command.spawn().expect("start tollgate"));
        let (stdout, lines) = read_lines(&mut child.0);
        let stderr = read_all(&mut child.0);

        let Some(line) = wait_for(&lines, message) else {
            let _ = child.0.kill();
            let stderr = stderr.join().unwrap_or_default();
            panic!("tollgate did not log {message:?}; stderr: {stderr}");
        };
        Served {
            child,
            line,
            stdout: Some(stdout),
            stderr: Some(stderr),
            _dir: dir,
        }
    }

    fn addr(&self, key: &str) -> SocketAddr {
        let text = self.line[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.line));
        text.parse().expect("a socket address")
    }

    /// The proxy's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("listen.addr"))
    }

    /// The admin listener's base URL.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("admin.addr"))
    }

    /// The config file it was started with, for tests that rewrite it.
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("tollgate.toml")
    }

    /// Sends a signal by name (`"HUP"`, say) and returns at once.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Sends SIGTERM, waits (bounded) for the exit and collects all output.
    pub fn terminate(mut self) -> Output {
        // `kill` rather than a signal crate: no new dependency for one call.
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let status = self.child.wait_within(DEADLINE);
        Output {
            status,
            stdout: take_join(&mut self.stdout),
            stderr: take_join(&mut self.stderr),
        }
    }
}

fn take_join<T: Default>(handle: &mut Option<JoinHandle<T>>) -> T {
    handle
        .take()
        .map(|handle| handle.join().expect("output reader"))
        .unwrap_or_default()
}

/// Reads stdout lines until one whose message is `message`, or gives up
/// at the deadline or when stdout closes.
fn wait_for(lines: &mpsc::Receiver<String>, message: &str) -> Option<Value> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = lines.recv_timeout(left).ok()?;
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if value["message"] == message {
            return Some(value);
        }
    }
}

/// Reads the child's stdout on a thread: every line is kept for the end
/// and also sent as it arrives, for the start-up wait.
fn read_lines(child: &mut Child) -> (JoinHandle<Vec<String>>, mpsc::Receiver<String>) {
    let stdout = child.stdout.take().expect("stdout piped");
    let (sender, receiver) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The receiver is gone once start-up is over; keep reading.
            let _ = sender.send(line.clone());
            kept.push(line);
        }
        kept
    });
    (handle, receiver)
}

/// Reads the child's stderr to the end on a thread, so a full pipe can
/// never block it.
fn read_all(child: &mut Child) -> JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

// --- HTTP ---

/// Sends a request with a 10 s bound and reads the whole answer.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> Answer {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let response = tokio::time::timeout(DEADLINE, client.request(request))
        .await
        .expect("an answer within the deadline")
        .expect("request sent");
    Answer::read(response).await
}

/// A GET with optional headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send(Method::GET, url, headers).await
}

// --- Blind ---

/// A `tollgate run` child whose stdout and stderr go to files the test
/// chooses (`/dev/full`, say) rather than pipes, so its addresses are found
/// from the sockets it listens on instead of its log.
pub struct Blind {
    child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Blind {
    /// Writes `config` to a temporary file and runs `tollgate run` on it
    /// with `env` added and its output sent to `stdout` and `stderr`.
    pub fn start(
        config: &str,
        env: &[(&str, &str)],
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Blind {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_config(dir.path(), "tollgate.toml", config);
        let mut command = command();
        command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(stderr);
        let child = ChildGuard(command.spawn().expect("start tollgate"));
        Blind { child, _dir: dir }
    }

    /// Waits (bounded) until the child listens on two TCP ports, the proxy
    /// and the admin listener, and returns them in no particular order.
    /// Panics if the child exits first, with its exit status.
    pub fn wait_listening(&mut self) -> Vec<SocketAddr> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("poll the child") {
                panic!("tollgate exited before listening: {status}");
            }
            let mut ports = listening_ports(self.child.id());
            // Each worker listens on the proxy's port with a socket of its
            // own: count ports, not sockets, or two workers look like the
            // proxy and the admin listener before the latter is bound.
            ports.sort_unstable();
            ports.dedup();
            if ports.len() >= 2 {
                return ports;
            }
            assert!(Instant::now() < deadline, "tollgate never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`"HUP"`, say) and returns at once.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.0.try_wait().expect("poll the child").is_none()
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        self.child.wait_within(DEADLINE)
    }
}

/// Lists the 127.0.0.1 TCP ports process `pid` listens on, from the socket
/// inodes among its open files and the kernel's TCP table (Linux only).
pub fn listening_ports(pid: u32) -> Vec<SocketAddr> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 ("0100007F:1F90"), st field 3 ("0A"
            // is LISTEN), inode field 9.
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != "0A" || !inodes.iter().any(|own| own == inode) {
                return None;
            }
            let port = u16::from_str_radix(local.split(':').nth(1)?, 16).ok()?;
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        })
        .collect()
}
