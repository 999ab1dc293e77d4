//! `tollgate demo`: the whole main job on loopback, in one command.
//!
//! It starts a demo account store (which checks passwords and issues
//! HS256 tokens), an echo service (which answers with the headers it
//! received) and tollgate in front of both, from the embedded
//! `config/demo.toml`. The secret and the users' passwords are generated at
//! start and printed; nothing secret is stored in the repository. Then it
//! walks through what tollgate does, checking each answer, and keeps
//! serving until Ctrl-C.

mod account_store;
mod echo;
mod walkthrough;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config;
use crate::env::Env;
use crate::proxy::server::serve;

/// The embedded demo configuration.
const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// Names one demo user.
#[derive(Clone, Debug)]
pub struct DemoUser {
    /// Login name.
    pub username: &'static str,
    /// Generated password.
    pub password: String,
    /// E-mail claim.
    pub email: &'static str,
    /// Roles claim.
    pub roles: &'static [&'static str],
}

/// Runs the demo; with `stop`, keeps serving until it resolves.
///
/// The binary passes its shutdown signal (SIGTERM or Ctrl-C), so that
/// either one ends the demo the same way: tollgate drains and the config
/// file written for `inspect` is removed. Without `stop` the demo ends
/// after the walkthrough.
pub async fn run(stop: Option<impl Future<Output = ()>>) -> ExitCode {
    // The walkthrough does not need the logs; a bad `RUST_LOG` is said,
    // not fatal.
    if let Err(error) = crate::telemetry::log::init("demo-api", "warn", std::io::stderr) {
        eprintln!("demo: logging is off: {error}");
    }
    match run_inner(stop).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("demo: a walkthrough step did not give the expected answer");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(
    stop: Option<impl Future<Output = ()>>,
) -> Result<bool, Box<dyn std::error::Error>> {
    let secret = random_hex(32);
    let users = vec![
        DemoUser {
            username: "alice",
            password: random_hex(8),
            email: "alice@chessmate.test",
            roles: &["player"],
        },
        DemoUser {
            username: "bob",
            password: random_hex(8),
            email: "bob@chessmate.test",
            roles: &["player", "admin"],
        },
    ];

    // The two stand-in services, on ephemeral loopback ports.
    let store = account_store::AccountStore::new(secret.clone(), users.clone());
    let store_addr = spawn_service(move |request, _| {
        let store = store.clone();
        async move { store.handle(request).await }
    })
    .await?;
    let echo_addr = spawn_service(|request, _| async move { echo::handle(request).await }).await?;

    // tollgate itself, from the embedded config.
    let text = DEMO_CONFIG
        .replace("{upstream}", &format!("http://{echo_addr}"))
        .replace("{account_store}", &format!("http://{store_addr}"));
    let settings = config::from_str(&text, "config/demo.toml")?;
    let env = Env::from_vars([("JWT_SECRET_KEY", secret.clone())]);
    let running = crate::start(settings, &env).await?;

    println!("tollgate demo");
    println!("  account store  http://{store_addr}  (checks passwords, issues HS256 tokens)");
    println!("  echo service   http://{echo_addr}  (answers with the headers it received)");
    println!(
        "  tollgate       http://{}  (in front of both)",
        running.proxy_addr()
    );
    println!(
        "  admin          http://{}  (/health /ready /metrics)",
        running.admin_addr()
    );
    println!("  JWT_SECRET_KEY {secret}  (generated for this run)");
    for user in &users {
        println!(
            "  user {:<6} password {}  roles {}",
            user.username,
            user.password,
            user.roles.join(",")
        );
    }
    println!();

    // When the demo keeps serving, its effective config goes to a file so
    // that `tollgate inspect` and `check` can be pointed at it.
    let written = match stop {
        Some(_) => Some(write_config(&text)?),
        None => None,
    };
    let try_it = written.as_ref().map(|file| walkthrough::TryIt {
        config: file.path(),
        secret: &secret,
    });
    let (proxy, admin) = (running.proxy_addr(), running.admin_addr());
    let passed = walkthrough::run(proxy, admin, &users, try_it).await?;
    if let Some(stop) = stop {
        println!("\nServing until Ctrl-C.");
        stop.await;
    }
    running.shutdown().await;
    Ok(passed)
}

/// The demo's config, written out; the file is removed when this is dropped.
struct WrittenConfig(std::path::PathBuf);

impl WrittenConfig {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for WrittenConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the demo's effective config to the temp directory.
fn write_config(text: &str) -> std::io::Result<WrittenConfig> {
    let path = std::env::temp_dir().join(format!("tollgate-demo-{}.toml", std::process::id()));
    std::fs::write(&path, text)?;
    Ok(WrittenConfig(path))
}

/// Serves a stand-in service on an ephemeral loopback port, for the life
/// of the process.
async fn spawn_service<H, F>(handler: H) -> std::io::Result<SocketAddr>
where
    H: Fn(http::Request<hyper::body::Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = http::Response<crate::proxy::Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let never = std::future::pending::<()>();
    let limits = crate::config::ListenerLimits::default();
    tokio::spawn(serve(
        listener,
        None,
        Arc::new(handler),
        never,
        crate::proxy::server::ListenerConfig {
            drain: Duration::ZERO,
            limits,
            slots: crate::proxy::server::ConnectionSlots::new(limits.max_connections),
            metrics: crate::telemetry::metrics::ListenerMetrics::noop(),
        },
    ));
    Ok(addr)
}

/// Returns `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buffer).expect("the system random source is available");
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}
