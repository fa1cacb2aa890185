//! The network side: bind every listener, accept connections, and stop
//! cleanly on SIGTERM or Ctrl-C.

pub mod connection;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Listener;
use crate::node::Node;
use crate::protocol::ConnectionInfo;

/// Binding a listener failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind listener {name} on {addr}: {source}")]
pub struct BindError {
    /// Listener name.
    pub name: String,
    /// Address tried.
    pub addr: String,
    /// Cause.
    pub source: std::io::Error,
}

/// A bound listener socket.
pub struct Bound {
    /// Its configuration.
    pub listener: Listener,
    /// The socket.
    pub socket: TcpListener,
}

/// Binds every configured listener before anything is served, so a port
/// conflict stops start-up with a clear message.
pub async fn bind_all(listeners: &[Listener]) -> Result<Vec<Bound>, BindError> {
    let mut out = Vec::new();
    for l in listeners {
        let host = if l.host.is_empty() {
            "0.0.0.0"
        } else {
            l.host.as_str()
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{}", l.port)
        } else {
            format!("{host}:{}", l.port)
        };
        let socket = TcpListener::bind(&addr).await.map_err(|source| BindError {
            name: l.name.clone(),
            addr: addr.clone(),
            source,
        })?;
        tracing::info!(listener = %l.name, %addr, "listening");
        out.push(Bound {
            listener: l.clone(),
            socket,
        });
    }
    Ok(out)
}

/// Accepts connections on every bound listener until `shutdown` resolves.
pub async fn serve(
    node: Arc<Node>,
    bound: Vec<Bound>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut accepting = tokio::task::JoinSet::new();
    for b in bound {
        accepting.spawn(accept_loop(node.clone(), b));
    }
    shutdown.await;
    accepting.abort_all();
}

async fn accept_loop(node: Arc<Node>, bound: Bound) {
    loop {
        match bound.socket.accept().await {
            Ok((stream, peer)) => {
                let info = ConnectionInfo {
                    peer: peer.ip().to_string(),
                    listener: bound.listener.name.clone(),
                };
                tokio::spawn(connection::serve(node.clone(), stream, info));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep going.
                tracing::warn!(listener = %bound.listener.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
