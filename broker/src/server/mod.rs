//! The network side: accept connections on the bound listeners (with a
//! TLS handshake first on SSL listeners), and at shutdown stop accepting
//! and drain the open connections (each answers the requests it has
//! already read, then closes).

pub mod authenticate;
pub mod connection;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bind::Bound;
use crate::node::Node;
use crate::protocol::ConnectionInfo;
use crate::security::principal::ANONYMOUS;
use crate::security::tls::ListenerTls;

/// How long open connections get at shutdown to answer what they have
/// read. Held produces and long polls end within it once leadership has
/// moved away; a JoinGroup held for a rebalance may not, and is cut.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

/// How long a client gets to complete its TLS handshake.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(10);

/// Accepts connections on every bound listener (TLS on those in `tls`)
/// until `shutdown` resolves, then drains them.
pub async fn serve(
    node: Arc<Node>,
    bound: Vec<Bound>,
    tls: BTreeMap<String, Arc<ListenerTls>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut accepting = tokio::task::JoinSet::new();
    for b in bound {
        let tls = tls.get(&b.listener.name).cloned();
        accepting.spawn(accept_loop(
            node.clone(),
            b,
            tls,
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
    tls: Option<Arc<ListenerTls>>,
    connections: TaskTracker,
    draining: CancellationToken,
) {
    loop {
        match bound.socket.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo {
                    peer: peer.ip().to_string(),
                    listener: bound.listener.name.clone(),
                    principal: ANONYMOUS.into(),
                };
                let node = node.clone();
                let draining = draining.clone();
                match &tls {
                    None => connections.spawn(connection::serve(node, stream, info, draining)),
                    Some(tls) => {
                        let acceptor = tls.acceptor();
                        let tls = tls.clone();
                        connections.spawn(async move {
                            let handshake =
                                tokio::time::timeout(HANDSHAKE_PATIENCE, acceptor.accept(stream));
                            match handshake.await {
                                Ok(Ok(stream)) => {
                                    let certificate = stream
                                        .get_ref()
                                        .1
                                        .peer_certificates()
                                        .and_then(|chain| chain.first());
                                    let mut info = info;
                                    if let Some(der) = certificate {
                                        match tls.principal(der) {
                                            Ok(principal) => info.principal = principal,
                                            Err(reason) => return refuse(&node, &info, &reason),
                                        }
                                    }
                                    connection::serve(node, stream, info, draining).await
                                }
                                Ok(Err(e)) => refuse(&node, &info, &e.to_string()),
                                Err(_) => refuse(
                                    &node,
                                    &info,
                                    &format!("no TLS handshake within {HANDSHAKE_PATIENCE:?}"),
                                ),
                            }
                        })
                    }
                };
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep going.
                tracing::warn!(listener = %bound.listener.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// A client whose TLS handshake failed: an untrusted or expired
/// certificate, none where one is required, a plaintext client on a TLS
/// port.
fn refuse(node: &Node, info: &ConnectionInfo, reason: &str) {
    node.metrics.failed_authentication.inc();
    tracing::warn!(
        peer = %info.peer,
        listener = %info.listener,
        principal = ANONYMOUS,
        reason,
        "TLS handshake failed; connection closed"
    );
}
