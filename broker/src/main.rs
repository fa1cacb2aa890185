//! The `gregor` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gregor_broker::{config::BrokerConfig, maintenance, node::Node, server};

#[derive(Parser)]
#[command(name = "gregor", version, about = "A Kafka-compatible broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker from a Kafka-style properties file (like
    /// kafka-server-start.sh). GREGOR_<KEY> environment variables override
    /// the file: GREGOR_LOG_DIRS sets log.dirs.
    Broker {
        /// Path to server.properties.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Broker { config } => run_broker(config),
    }
}

fn run_broker(path: PathBuf) -> ExitCode {
    let config = match BrokerConfig::load(&path, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gregor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gregor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let node = match Node::start(config) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("gregor: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bound = match server::bind_all(&node.config.listeners).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("gregor: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(node_id = node.config.node_id, cluster_id = %node.cluster_id, "broker started");
        tokio::spawn(maintenance::run(node.clone()));
        tokio::spawn(maintenance::run_flusher(node.clone()));
        tokio::spawn(node.groups.clone().run_session_sweeper());
        server::serve(node.clone(), bound, shutdown_signal()).await;
        tracing::info!("shutting down: flushing logs");
        maintenance::flush_all(&node);
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
