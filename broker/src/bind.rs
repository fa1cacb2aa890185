//! Binding listener sockets: every configured listener is bound before
//! anything is served, so a port conflict stops start-up with a clear
//! message. Kafka listeners, the controller listener and the HTTP port all
//! bind here.

use tokio::net::TcpListener;

use crate::config::Listener;

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
