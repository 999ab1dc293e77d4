//! Starting and stopping a whole tollgate: state, proxy listener, admin
//! listener, background upkeep.
//!
//! `main` and the tests both go through [`start`], so the tests exercise
//! exactly what production runs. `tollgate run` then adds the config
//! reloader ([`Running::spawn_reloader`]).

mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use self::reload::{ReloadError, Reloaded, reload_file};
use crate::admin;
use crate::config::Settings;
use crate::config::watch::ConfigWatch;
use crate::env::{Env, NotUnicodeError};
use crate::keys::KeyError;
use crate::proxy::server::{ConnectionSlots, ListenerConfig, ServerTls};
use crate::proxy::{self, Proxy};
use crate::state::State;
use crate::telemetry::Metrics;

/// The environment variable that sets how many worker threads serve
/// proxied traffic (tokio's own name for its worker count).
const WORKERS_ENV: &str = "TOKIO_WORKER_THREADS";

/// The admin listener's connection cap, apart from the proxy's
/// `limits.max_connections`: probes and scrapers are few, and a proxy cap
/// set low must not leave a kept-alive scraper holding the only slot while
/// a health probe waits (and the orchestrator restarts a healthy process).
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// How often histogram storage is compacted.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Says why tollgate could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A provider's keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A listener could not be bound.
    #[error("cannot listen on {address} for {what}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Where.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread or its runtime could not be started.
    #[error("cannot start the proxy's worker threads: {0}")]
    Workers(#[source] std::io::Error),
}

/// A running tollgate.
pub struct Running {
    proxy_addr: SocketAddr,
    admin_addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Builds the state, binds both listeners and starts serving.
///
/// `env` looks up environment variables (`secret_env`,
/// `TOKIO_WORKER_THREADS`); pass [`Env::process`] in production.
pub async fn start(settings: Settings, env: &Env) -> Result<Running, StartError> {
    let proxy_address = settings.listen.address;
    let admin_address = settings.admin;
    let drain = settings.listen.drain_timeout;
    let limits = settings.limits.listener;

    let state = Arc::new(State::try_new(settings, env, Metrics::new())?);
    let workers = worker_count(env);
    let proxy_listeners = bind_workers(proxy_address, workers)?;
    let admin_listener = bind("the admin endpoints", admin_address).await?;
    let proxy_addr = proxy_listeners[0]
        .local_addr()
        .map_err(|source| StartError::Bind {
            what: "reading the bound address",
            address: proxy_address,
            source,
        })?;
    let admin_addr = local_addr(&admin_listener, admin_address)?;

    let (shutdown, watcher) = watch::channel(false);
    let mut tasks = JoinSet::new();

    // Remote key sets are fetched once before serving, so that a healthy
    // issuer's keys are in place when the first request arrives; a failed
    // fetch does not stop the start (see `State::start_key_refresh`).
    state.start_key_refresh(watcher.clone(), &mut tasks).await;

    // One proxy per worker: the first as built, the others sharing its
    // state and limits but with clients of their own.
    let first = Proxy::new(state.clone(), watcher.clone());
    let mut proxies: Vec<Proxy> = (1..workers).map(|_| first.for_worker()).collect();
    proxies.insert(0, first);
    let slots = ConnectionSlots::new(limits.max_connections);
    for (index, (proxy, listener)) in proxies.into_iter().zip(proxy_listeners).enumerate() {
        let worker = Worker {
            listener,
            proxy,
            tls: listener_tls(&state),
            shutdown: watcher.clone(),
            config: ListenerConfig {
                drain,
                limits,
                slots: slots.clone(),
                metrics: state.metrics.listener("proxy"),
            },
        };
        let done = worker.spawn(index).map_err(StartError::Workers)?;
        tasks.spawn(async move {
            // An error here means the thread ended without saying so: it
            // panicked, and there is nothing left to wait for.
            let _ = done.await;
        });
    }

    let admin_state = state.clone();
    let admin = Arc::new(
        move |request: http::Request<hyper::body::Incoming>, _client| {
            let response = admin::handle(&request, &admin_state);
            async move { response }
        },
    );
    // Plain on purpose: the admin listener binds to loopback by default,
    // and probes and scrapers reach it from inside the pod.
    let serving = proxy::server::serve(
        admin_listener,
        None,
        admin,
        signalled(watcher.clone()),
        ListenerConfig {
            drain,
            limits,
            slots: ConnectionSlots::new(ADMIN_MAX_CONNECTIONS),
            metrics: state.metrics.listener("admin"),
        },
    );
    tasks.spawn(serving.instrument(tracing::info_span!("listener", listener = "admin")));

    let metrics = state.metrics.clone();
    let mut upkeep_watcher = watcher;
    tasks.spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = ticks.tick() => metrics.run_upkeep(),
                _ = upkeep_watcher.changed() => break,
            }
        }
    });

    tracing::info!(listen.addr = %proxy_addr, admin.addr = %admin_addr, "tollgate serving");
    Ok(Running {
        proxy_addr,
        admin_addr,
        state,
        shutdown,
        tasks,
    })
}

impl Running {
    /// Returns the address proxied traffic is accepted on.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// Returns the address of `/health`, `/ready` and `/metrics`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Returns the shared state, for reloads.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Starts reloading the config at `path` whenever `changes` says so:
    /// the file or one it names changed, or SIGHUP. The task ends at
    /// shutdown.
    pub fn spawn_reloader(&mut self, changes: ConfigWatch, path: PathBuf, env: Env) {
        let reloader = reload::Reloader::new(changes, path, self.state.clone(), env);
        self.tasks.spawn(reloader.run(self.shutdown.subscribe()));
    }

    /// Stops accepting, drains in-flight requests (up to the configured
    /// deadline) and waits for every task to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

// --- Worker ---

/// One thread serving proxied traffic on a single-threaded runtime of its
/// own, accepting from a listening socket of its own (see
/// [`bind_workers`]).
///
/// A multi-threaded runtime hands a task woken during its own poll (hyper
/// wakes a connection's task from inside it at every step) to the back of
/// the queue and wakes a parked thread to help, a futex call and two
/// context switches per step (docs/performance.md, "Forwarding and
/// threads", has the measurements). Here a connection lives and
/// dies on the thread that accepted it.
struct Worker {
    listener: std::net::TcpListener,
    proxy: Proxy,
    tls: Option<ServerTls>,
    shutdown: watch::Receiver<bool>,
    /// Its slots are counted across all workers.
    config: ListenerConfig,
}

impl Worker {
    /// Starts the thread; the receiver resolves once it has drained.
    fn spawn(self, index: usize) -> std::io::Result<oneshot::Receiver<()>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (finished, done) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("tollgate-proxy-{index}"))
            .spawn(move || {
                let span = tracing::info_span!("listener", listener = "proxy", worker = index);
                runtime.block_on(self.serve().instrument(span));
                let _ = finished.send(());
            })?;
        Ok(done)
    }

    async fn serve(self) {
        // Registered with this thread's runtime: a socket belongs to the
        // runtime whose reactor watches it.
        let listener = match TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(error = %error, "worker cannot take the listener");
                return;
            }
        };
        let proxy = Arc::new(self.proxy);
        // Boxed: hyper moves the future it gets into its connection state,
        // and the whole pipeline's state is several kilobytes; a pointer
        // is cheaper to move than that twice per request.
        let handler = Arc::new(move |request, client| {
            let proxy = proxy.clone();
            Box::pin(async move { proxy.handle(request, client).await })
        });
        proxy::server::serve(
            listener,
            self.tls,
            handler,
            signalled(self.shutdown),
            self.config,
        )
        .await;
    }
}

/// Returns how many workers serve proxied traffic: `TOKIO_WORKER_THREADS`
/// when set to a number from 1 to [`MAX_WORKERS`], else one per CPU this
/// process may use (a container's CPU quota counts). A bad value counts as
/// unset here; the binary refuses it before it gets this far (see
/// [`worker_threads`]).
fn worker_count(env: &Env) -> usize {
    worker_threads(env).unwrap_or_else(|_| default_worker_threads())
}

/// Reads `TOKIO_WORKER_THREADS`: the number it holds, or one per CPU this
/// process may use when it is unset.
///
/// The binary calls it before building its own runtime, and gives that
/// runtime the count: tokio reads the same variable and panics on a value
/// that is not a positive number, and an operator should get one line
/// naming the variable instead.
pub fn worker_threads(env: &Env) -> Result<usize, WorkersError> {
    let Some(text) = env.text(WORKERS_ENV)? else {
        return Ok(default_worker_threads());
    };
    match text.trim().parse::<usize>() {
        Ok(count) if (1..=MAX_WORKERS).contains(&count) => Ok(count),
        _ => Err(WorkersError::Count { value: text }),
    }
}

/// The most worker threads `TOKIO_WORKER_THREADS` may ask for. Each is a
/// thread, a runtime and a listening socket: a typo of a few more digits
/// would otherwise start them by the hundred thousand.
const MAX_WORKERS: usize = 1024;

fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Says that `TOKIO_WORKER_THREADS` holds something other than a number of
/// threads from 1 to [`MAX_WORKERS`].
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    /// It is text, but not such a number.
    #[error("{WORKERS_ENV}: {value:?} is not a number of threads from 1 to {MAX_WORKERS}")]
    Count {
        /// What it holds.
        value: String,
    },
    /// It is set, but not to text at all.
    #[error(transparent)]
    NotUnicode(#[from] NotUnicodeError),
}

/// Gives the proxy listener the TLS settings of the snapshot in force,
/// or `None` when it serves plain HTTP.
///
/// Whether the listener speaks TLS is fixed at start (a reload keeps it,
/// see [`crate::config::diff`]), so every later snapshot holds settings
/// too; the ones in force at start stand in should one ever lack them.
fn listener_tls(state: &Arc<State>) -> Option<ServerTls> {
    let first = state.load().tls.listener.clone()?;
    let state = state.clone();
    Some(Arc::new(move || {
        state
            .load()
            .tls
            .listener
            .clone()
            .unwrap_or_else(|| first.clone())
    }))
}

/// Binds the proxy's listening sockets, one per worker.
///
/// On Linux each worker gets a socket of its own on the same address
/// (`SO_REUSEPORT`), and the kernel spreads new connections over them by
/// a hash of their addresses, so each worker holds about its share. With
/// one shared socket the worker that happens to be awake takes a whole
/// burst of connections: measured 1.6 times the CPU of the other worker
/// under wrk's 64 connections, and the tail latency of the connections it
/// holds (docs/performance.md, "Connections per worker"). Elsewhere the
/// workers share one socket, as `SO_REUSEPORT` does not spread there.
///
/// The trade-off is the usual one of `SO_REUSEPORT` (nginx's `reuseport`,
/// Envoy's default on Linux): a second process of the same user may bind
/// the same address afterwards and take a share of the connections. One
/// already listening there is refused (see [`ensure_unused`]).
fn bind_workers(
    address: SocketAddr,
    workers: usize,
) -> Result<Vec<std::net::TcpListener>, StartError> {
    let failed = |source| StartError::Bind {
        what: "proxied traffic",
        address,
        source,
    };
    let spread = cfg!(target_os = "linux") && workers > 1;

    // `SO_REUSEPORT` would also join a socket another program already
    // listens on with it, and hand that program a share of the traffic:
    // a port in use is refused first, as the plain bind of one worker is.
    if spread && address.port() != 0 {
        ensure_unused(address).map_err(failed)?;
    }
    let first = listen_socket(address, spread).map_err(failed)?;
    // Port 0 picks a port once; the other sockets join the one it picked.
    let bound = first.local_addr().map_err(failed)?;
    let mut listeners = vec![first];
    for _ in 1..workers {
        let next = if spread {
            listen_socket(bound, true)
        } else {
            listeners[0].try_clone()
        };
        listeners.push(next.map_err(failed)?);
    }
    Ok(listeners)
}

/// Fails with `AddrInUse` when a socket already listens on `address`, by
/// binding one without `SO_REUSEPORT` there for a moment.
///
/// Port 0 needs no check: a port the kernel picks is one no socket
/// listens on, `SO_REUSEPORT` or not.
fn ensure_unused(address: SocketAddr) -> std::io::Result<()> {
    bound_socket(address, false).map(drop)
}

/// Opens a non-blocking listening socket on `address`, sharing it with
/// the other workers' sockets when `shared` is set.
fn listen_socket(address: SocketAddr, shared: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = bound_socket(address, shared)?;
    socket.set_nonblocking(true)?;
    // tokio's default backlog.
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Binds a TCP socket to `address`, with `SO_REUSEPORT` when `shared` is
/// set (Linux only).
fn bound_socket(address: SocketAddr, shared: bool) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};

    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // As tokio's own bind does: a restart need not wait out TIME_WAIT,
    // and connections of a previous run do not count as a holder.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(shared)?;
    #[cfg(not(target_os = "linux"))]
    let _ = shared;
    socket.bind(&address.into())?;
    Ok(socket)
}

async fn bind(what: &'static str, address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind {
            what,
            address,
            source,
        })
}

fn local_addr(listener: &TcpListener, address: SocketAddr) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        what: "reading the bound address",
        address,
        source,
    })
}

/// Resolves once the shutdown flag is raised (or its sender is gone).
async fn signalled(mut watcher: watch::Receiver<bool>) {
    let _ = watcher.wait_for(|stop| *stop).await;
}

// --- check ---

/// Says why `tollgate check` refused a config.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file does not parse or validate.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A provider's keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// `RUST_LOG` (or `log.level`) is not a filter `tollgate run` accepts.
    #[error(transparent)]
    Log(#[from] crate::telemetry::log::LogError),
}

/// Parses, validates and loads the keys of a config file, and describes
/// what it would do: providers, keys and rules, in matching order.
pub fn check(path: &std::path::Path, env: &Env) -> Result<String, CheckError> {
    use std::fmt::Write;

    let settings = crate::config::from_file(path)?;
    let log = crate::telemetry::log::level_filter(env, &settings.log.level)?;
    let state = State::try_new(settings, env, Metrics::new())?;
    let snapshot = state.load();
    let settings = &snapshot.settings;

    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(out, "service {}", settings.service);
    let tls = if settings.listen.tls.is_some() {
        " (https)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "listen {}{tls}, admin {}",
        settings.listen.address, settings.admin
    );
    let _ = writeln!(out, "upstream {}", settings.upstream.url);
    if settings.mode == crate::config::EnforceMode::ReportOnly {
        let _ = writeln!(out, "mode report_only: refusals are counted, not enforced");
    }
    if let Some(store) = &settings.account_store {
        let _ = writeln!(out, "account store {}", store.url);
    }
    let source = if log.pinned {
        "RUST_LOG, over log.level"
    } else {
        "log.level"
    };
    let _ = writeln!(out, "log filter {} (from {source})", log.text);
    for provider in snapshot.providers.list() {
        let algorithms: Vec<String> = provider
            .algorithms
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        let _ = writeln!(
            out,
            "provider {} (issuer {}, audiences {}): algorithms {}",
            provider.name,
            provider.issuer,
            provider.audiences.join(", "),
            algorithms.join(", ")
        );
        let _ = writeln!(out, "  HMAC secrets: {}", provider.keys.secret_count());
        let revoked = provider.revoke.denylist_len();
        if revoked > 0 {
            let _ = writeln!(out, "  denylist entries: {revoked}");
        }
        for key in provider.keys.public_keys() {
            let kid = key.kid().unwrap_or("(no kid)");
            let usable = provider.algorithms.iter().any(|alg| key.allows(*alg));
            let note = if usable {
                ""
            } else {
                " (unused: no allowed algorithm fits it)"
            };
            let _ = writeln!(out, "  public key {kid}: {:?}{note}", key.kind());
        }
        let remote = settings
            .providers
            .iter()
            .find(|p| p.name == provider.name)
            .and_then(|p| p.remote_jwks.as_ref());
        if let Some(remote) = remote {
            let _ = writeln!(
                out,
                "  jwks_uri {}: fetched when serving, refreshed every {}",
                remote.uri.value,
                humantime::format_duration(remote.refresh_interval)
            );
        }
    }
    let _ = writeln!(out, "rules (first match wins):");
    for (at, rule) in snapshot.rules.rules().iter().enumerate() {
        let _ = writeln!(out, "  {}. {}", at + 1, crate::auth::rules::describe(rule));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts every connection waiting on `listener`, without waiting.
    fn accept_waiting(listener: &std::net::TcpListener) -> usize {
        let mut accepted = 0;
        while listener.accept().is_ok() {
            accepted += 1;
        }
        accepted
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn each_worker_socket_gets_a_share_of_new_connections() {
        let address: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let listeners = bind_workers(address, 2).expect("bound");
        let port = listeners[0].local_addr().expect("bound").port();
        assert_eq!(listeners[1].local_addr().expect("bound").port(), port);

        let clients: Vec<_> = (0..64)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connected"))
            .collect();
        // Loopback connections are complete in the backlog once connect
        // returns; a moment more lets the last ones settle.
        std::thread::sleep(Duration::from_millis(50));
        let shares: Vec<usize> = listeners.iter().map(accept_waiting).collect();

        assert_eq!(shares.iter().sum::<usize>(), clients.len(), "{shares:?}");
        // Spread by a hash: 64 connections leave each socket none only
        // with odds of 2 in 2^64.
        assert!(shares.iter().all(|&share| share > 0), "{shares:?}");
    }

    #[test]
    fn one_worker_takes_every_connection() {
        let address: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let listeners = bind_workers(address, 1).expect("bound");
        let port = listeners[0].local_addr().expect("bound").port();

        let _clients: Vec<_> = (0..8)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connected"))
            .collect();
        std::thread::sleep(Duration::from_millis(50));

        assert_eq!(accept_waiting(&listeners[0]), 8);
    }

    #[test]
    fn a_port_another_program_holds_is_refused() {
        // A plain listener, without SO_REUSEPORT: sharing needs both sides.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
        let address = taken.local_addr().expect("bound");

        for workers in [1, 2] {
            match bind_workers(address, workers) {
                Err(StartError::Bind { what, source, .. }) => {
                    assert_eq!(what, "proxied traffic");
                    assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
                }
                Ok(_) => panic!("{workers} workers bound a port already taken"),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
    }
}
