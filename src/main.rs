//! The `tollgate` command: run, check, inspect, demo.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::config::watch::{ConfigWatch, Hangup};
use tollgate::config::{self, DEFAULT_PATH, ENV_CONFIG};
use tollgate::env::Env;
use tollgate::inspect::{InspectError, Report, RequestLine};

/// Exit code for a config or key problem: the operator must fix a file.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure at run time (cannot bind, for one).
const EXIT_RUNTIME: u8 = 1;
/// Exit code for `inspect` when the token would be refused.
const EXIT_REFUSED: u8 = 1;

/// An edge token-validation sidecar: checks JWTs, forwards with identity
/// headers, answers everything else itself.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: proxy traffic and the admin endpoints until SIGTERM or SIGINT;
    /// reload the config when it changes or on SIGHUP.
    Run {
        /// The config file.
        #[arg(long, env = ENV_CONFIG, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Parse and validate a config file and load its keys, then print a
    /// summary; exits non-zero naming the key at fault.
    Check {
        /// The config file.
        #[arg(long, env = ENV_CONFIG, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Explain the verdict on one token: decoded header and claims, every
    /// check with what it found, and the answer the proxy would give.
    /// Exits 0 when the token is let through, 1 when refused.
    Inspect {
        /// The config file.
        #[arg(long, env = ENV_CONFIG, default_value = DEFAULT_PATH)]
        config: PathBuf,
        /// Judge the token for this request path, with its rule and roles;
        /// without it, under the default rule.
        #[arg(long)]
        path: Option<String>,
        /// The request method, with --path.
        #[arg(long, default_value = "GET", requires = "path")]
        method: http::Method,
        /// The token, with or without `Bearer `; read from stdin when
        /// absent or `-`.
        token: Option<String>,
    },
    /// Ask a running tollgate's admin listener whether it is alive: exits
    /// 0 when `/health` answers 200, 1 otherwise. For container health
    /// checks, since the image carries no shell and no curl.
    Health {
        /// The URL of the health endpoint.
        #[arg(long, default_value = "http://127.0.0.1:9901/health")]
        url: http::Uri,
    },
    /// Start a demo account store, an echo service and tollgate in front of
    /// them on loopback, walk through what tollgate does, then keep serving.
    Demo {
        /// Exit after the walkthrough instead of serving until Ctrl-C.
        #[arg(long)]
        no_wait: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Given to tokio explicitly, so that tokio does not read the variable
    // itself and panic on a bad value.
    let threads = match tollgate::app::worker_threads(&Env::process()) {
        Ok(threads) => threads,
        Err(error) => {
            complain(format_args!("{error}"));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            complain(format_args!("cannot start the async runtime: {error}"));
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match cli.command {
        Command::Run { config } => {
            let code = runtime.block_on(run(config));
            // Lines still in the log sink's buffer are written before exit.
            tollgate::telemetry::log::flush();
            code
        }
        Command::Check { config } => check(&config),
        Command::Inspect {
            config,
            path,
            method,
            token,
        } => runtime.block_on(inspect(&config, RequestLine { method, path }, token)),
        Command::Health { url } => runtime.block_on(health(&url)),
        Command::Demo { no_wait } => runtime.block_on(async {
            // Installed now, inside the runtime; never with --no-wait,
            // where nothing would await it and SIGTERM would be swallowed.
            let stop = (!no_wait).then(shutdown_signal);
            tollgate::demo::run(stop).await
        }),
    }
}

async fn run(path: PathBuf) -> ExitCode {
    // Hooked first: until a handler is installed, SIGTERM takes its
    // default action and kills the process without draining, and an
    // orchestrator may send it the moment the process exists.
    let signalled = shutdown_signal();
    // Hooked early for the same reason: SIGHUP's default action ends the
    // process, and a reload request must never do that.
    let hangup = Hangup::hook();

    let settings = match config::from_file(&path) {
        Ok(settings) => settings,
        Err(error) => {
            complain(format_args!("{error}"));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = tollgate::telemetry::log::init(
        &settings.service,
        &settings.log.level,
        tollgate::telemetry::log::stdout(&settings.service),
    ) {
        complain(format_args!("{error}"));
        return ExitCode::from(EXIT_CONFIG);
    }
    let version = env!("CARGO_PKG_VERSION");
    tracing::info!(version, config = %path.display(), "tollgate starting");

    // Before the keys are read: a change while tollgate starts is seen.
    let changes = ConfigWatch::for_config(hangup, &path, &settings);
    let env = Env::process();
    let mut running = match tollgate::start(settings, &env).await {
        Ok(running) => running,
        Err(error @ tollgate::StartError::Keys(_)) => {
            tracing::error!(error = %error, "cannot load keys");
            complain(format_args!("{error}"));
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot start");
            complain(format_args!("{error}"));
            return ExitCode::from(EXIT_RUNTIME);
        }
    };

    running.spawn_reloader(changes, path, env);

    signalled.await;
    tracing::info!("shutdown started; draining in-flight requests");
    running.shutdown().await;
    tracing::info!("shutdown complete");
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
///
/// The handlers are installed by this call, not when the future is first
/// polled, so signals that arrive while tollgate starts are not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            let (Ok(mut term), Ok(mut interrupt)) = (term, interrupt) else {
                // Without the handlers, Ctrl-C is still worth honouring.
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match tollgate::app::check(path, &Env::process()) {
        Ok(summary) => {
            show(format_args!("{summary}"));
            ExitCode::SUCCESS
        }
        Err(error) => {
            complain(format_args!("{error}"));
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Judges one token; exits 0 when it is let through, 1 when refused, and
/// 2 when the config, its keys or stdin cannot be read.
async fn inspect(path: &std::path::Path, request: RequestLine, token: Option<String>) -> ExitCode {
    match judge(path, request, token.as_deref()).await {
        Ok(report) => {
            show(format_args!("{report}"));
            if report.is_allowed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
        Err(error) => {
            complain(format_args!("{error}"));
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

async fn judge(
    path: &std::path::Path,
    request: RequestLine,
    token: Option<&str>,
) -> Result<Report, InspectError> {
    use std::io::IsTerminal;

    // Without this hint, a forgotten token looks like a hang.
    let from_stdin = token.is_none_or(|token| token == "-");
    if from_stdin && std::io::stdin().is_terminal() {
        complain(format_args!(
            "reading the token from stdin (end with Ctrl-D)"
        ));
    }
    let token = tollgate::inspect::read_token(token, std::io::stdin().lock())?;
    tollgate::inspect::inspect(path, request, &token, &Env::process()).await
}

async fn health(url: &http::Uri) -> ExitCode {
    match tollgate::admin::probe(url).await {
        Ok(status) if status == http::StatusCode::OK => ExitCode::SUCCESS,
        Ok(status) => {
            complain(format_args!("{url} answered {status}"));
            ExitCode::from(EXIT_RUNTIME)
        }
        Err(error) => {
            complain(format_args!("{url}: {error}"));
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Writes one line for the operator on stderr.
///
/// Unlike `eprintln!`, which panics when stderr cannot be written (a full
/// disk, a closed pipe), a failed write is ignored here, so the exit code
/// stays the documented one instead of a panic's 101.
fn complain(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "tollgate: {message}");
}

/// Writes a command's output on stdout; like [`complain`], a failed write
/// is ignored rather than turned into a panic.
fn show(output: std::fmt::Arguments<'_>) {
    let _ = write!(std::io::stdout(), "{output}");
}
