//! The null broker: a Kafka broker that stores nothing. It speaks enough
//! of the protocol for the benchmarks' clients (Kafka's Java producer,
//! librdkafka through kcat) and answers Produce and Fetch from memory, so
//! the benchmarks can say how much of what the clients and the machine can
//! do at all a real broker achieves. See bench/null_broker.py.

mod answer;
mod batch;
mod broker;
mod connection;
mod protocol;
mod topics;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

use crate::broker::{Broker, Node};

/// The allocator Gregor's binary uses (see broker/src/main.rs), so the two
/// differ in what they do, not in how they allocate.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "null-broker",
    version,
    about = "A Kafka broker that answers Produce and Fetch from memory, storing nothing"
)]
struct Args {
    /// The port to listen on (0: any free one; the log says which).
    #[arg(long)]
    port: u16,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..))]
    partitions: u16,
    /// The node id it advertises.
    #[arg(long, default_value_t = 1)]
    node_id: i32,
    /// The address to listen on, also the host it advertises.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let listener = match TcpListener::bind((args.host.as_str(), args.port)).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(host = %args.host, port = args.port, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    let node = Node {
        id: args.node_id,
        host: args.host,
        port: i32::from(port),
    };
    tracing::info!(host = %node.host, port, node = node.id, partitions = args.partitions, "null broker listening");
    let broker = Arc::new(Broker::new(node, usize::from(args.partitions)));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(connection::serve(broker.clone(), stream, peer));
            }
            Err(e) => {
                // Out of file descriptors, say: let connections close.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
