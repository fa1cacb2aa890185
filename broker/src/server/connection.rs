//! One client connection: read size-prefixed frames, handle each request on
//! its own task so slow ones (a long-polling fetch) do not stall reading,
//! and write the responses back in request order.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::node::Node;
use crate::protocol::{self, ConnectionInfo, ProtocolError};

/// Requests read ahead of their responses on one connection. Clients keep
/// five in flight by default; the bound stops a flood from using unbounded
/// memory.
const MAX_IN_FLIGHT: usize = 32;

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
enum CloseReason {
    #[error("frame size {size} is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: usize },
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("request handler failed: {0}")]
    Handler(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

type Pending = JoinHandle<Result<Option<BytesMut>, ProtocolError>>;

/// Serves `stream` until the client closes it or sends something that
/// cannot be answered.
pub async fn serve(node: Arc<Node>, stream: TcpStream, info: ConnectionInfo) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let max = node.config.socket_request_max_bytes;
    let reader = read_requests(node, read, tx, info.clone(), max);
    let writer = write_responses(write, rx);
    match tokio::try_join!(reader, writer) {
        Ok(_) => tracing::debug!(peer = %info.peer, "connection closed by client"),
        Err(CloseReason::Io(e)) => {
            tracing::debug!(peer = %info.peer, error = %e, "connection ended")
        }
        Err(reason) => {
            tracing::warn!(peer = %info.peer, listener = %info.listener, %reason, "closing connection")
        }
    }
}

async fn read_requests(
    node: Arc<Node>,
    mut read: tokio::net::tcp::OwnedReadHalf,
    tx: mpsc::Sender<Pending>,
    info: ConnectionInfo,
    max: usize,
) -> Result<(), CloseReason> {
    loop {
        let size = match read.read_i32().await {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if size < 0 || size as usize > max {
            return Err(CloseReason::FrameSize { size, max });
        }
        let mut frame = BytesMut::zeroed(size as usize);
        read.read_exact(&mut frame).await?;
        let task = tokio::spawn(protocol::handle_frame(
            node.clone(),
            frame.freeze(),
            info.clone(),
        ));
        if tx.send(task).await.is_err() {
            // The writer stopped: the connection is going away.
            return Ok(());
        }
    }
}

async fn write_responses(
    write: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Pending>,
) -> Result<(), CloseReason> {
    let mut out = BufWriter::new(write);
    while let Some(task) = rx.recv().await {
        if let Some(response) = task.await?? {
            out.write_all(&response).await?;
        }
        if rx.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await?;
    Ok(())
}
