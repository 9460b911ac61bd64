//! `registry serve`: run the daemon until Ctrl-C or SIGTERM.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use registry_core::config::Overrides;
use registry_core::Registry;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, ServeArgs};

pub fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let config = super::load_config(
        global,
        Overrides {
            listen: args.listen,
            public_url: args.public_url,
            registration: args.registration,
            read_access: args.read_access,
            upstream: args.upstream,
            log_level: args.log_level,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            ..Overrides::default()
        },
    )?;
    let filter = EnvFilter::try_new(&config.log_level)
        .with_context(|| format!("invalid log level {:?}", config.log_level))?;
    let subscriber = registry_daemon::subscriber(
        config.log_format,
        filter,
        std::io::stderr,
        std::io::stderr().is_terminal(),
    );
    // As `fmt().init()` did: also forwards the `log` records of dependencies.
    subscriber
        .try_init()
        .context("cannot install the log subscriber")?;

    let listen = config.listen;
    let metrics_listen = config.metrics_listen;
    let registry = Arc::new(Registry::open(config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(registry.config.worker_threads())
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = registry_daemon::bind(listen)
            .and_then(tokio::net::TcpListener::from_std)
            .with_context(|| format!("cannot listen on {listen}"))?;
        let metrics = match metrics_listen {
            Some(addr) => Some(
                registry_daemon::bind(addr)
                    .and_then(tokio::net::TcpListener::from_std)
                    .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?,
            ),
            None => None,
        };
        registry_daemon::serve_with_metrics(registry, listener, metrics, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
