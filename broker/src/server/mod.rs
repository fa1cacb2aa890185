//! The network side: accept connections on the bound listeners, and at
//! shutdown stop accepting and drain the open connections (each answers
//! the requests it has already read, then closes).

pub mod connection;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bind::Bound;
use crate::node::Node;
use crate::protocol::ConnectionInfo;

/// How long open connections get at shutdown to answer what they have
/// read. Held produces and long polls end within it once leadership has
/// moved away; a JoinGroup held for a rebalance may not, and is cut.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

/// Accepts connections on every bound listener until `shutdown` resolves,
/// then drains them.
pub async fn serve(
    node: Arc<Node>,
    bound: Vec<Bound>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut accepting = tokio::task::JoinSet::new();
    for b in bound {
        accepting.spawn(accept_loop(
            node.clone(),
            b,
            connections.clone(),
            draining.clone(),
        ));
    }
    shutdown.await;
    accepting.shutdown().await;
    draining.cancel();
    connections.close();
    let open = connections.len();
    if open > 0 {
        tracing::info!(connections = open, "draining connections");
    }
    if tokio::time::timeout(DRAIN_PATIENCE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "connections still busy after {DRAIN_PATIENCE:?}; closing them"
        );
    }
}

async fn accept_loop(
    node: Arc<Node>,
    bound: Bound,
    connections: TaskTracker,
    draining: CancellationToken,
) {
    loop {
        match bound.socket.accept().await {
            Ok((stream, peer)) => {
                let info = ConnectionInfo {
                    peer: peer.ip().to_string(),
                    listener: bound.listener.name.clone(),
                };
                connections.spawn(connection::serve(
                    node.clone(),
                    stream,
                    info,
                    draining.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep going.
                tracing::warn!(listener = %bound.listener.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
