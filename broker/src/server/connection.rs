//! One client connection: a reader task pulls size-prefixed frames off the
//! socket while the requests before them are handled, and the requests are
//! handled strictly one after another, in order, as Kafka does. Order is
//! what producers rely on: batches a client pipelines on one connection are
//! appended in the order it sent them. When the broker drains its
//! connections at shutdown, the reader stops taking new frames; the
//! requests already read are answered and the connection closes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::authenticate::{Authenticator, Verdict};
use super::transport::{write_frame, Sink, Transport};
use crate::handlers::dispatch;
use crate::node::Node;
use crate::protocol::{ConnectionInfo, ProtocolError};

/// Frames read ahead of the one being handled. Clients keep up to five
/// requests in flight; the bound caps the memory one connection can hold.
const READ_AHEAD: usize = 8;

/// How long answers to pipelined requests may wait in the write buffer for
/// the next one, so a burst of quick answers goes out in one write.
const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

/// Bytes of answers gathered before a write. Enough for a burst of small
/// answers (produce acks, heartbeats); a larger answer goes out directly.
/// Every connection holds this much once it has answered (tokio's
/// default is 8 KiB).
const WRITE_BUFFER: usize = 2048;

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
enum CloseReason {
    #[error("frame size {size} is outside 0..={max} (socket.request.max.bytes)")]
    FrameSize { size: i32, max: usize },
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("request handler failed: {0}")]
    Handler(#[from] tokio::task::JoinError),
    #[error("SASL: {0}")]
    Sasl(String),
    /// Refused and logged already.
    #[error("authentication failed")]
    Refused,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serves `stream` until the client closes it, sends something that
/// cannot be answered, or `draining` is cancelled.
pub async fn serve(
    node: Arc<Node>,
    stream: impl Transport,
    info: ConnectionInfo,
    draining: CancellationToken,
) {
    let (read, write) = stream.split();
    let (tx, rx) = mpsc::channel::<Bytes>(READ_AHEAD);
    let authenticator = node.config.sasl.get(&info.listener).map(|settings| {
        Authenticator::new(settings.clone(), node.jwks.get(&info.listener).cloned())
    });
    // Until a SASL client has authenticated, frames are bounded by
    // `sasl.server.max.receive.size` instead.
    let authenticated = Arc::new(AtomicBool::new(authenticator.is_none()));
    let limits = Limits {
        max: node.config.socket_request_max_bytes,
        before_authentication: node.config.sasl_max_receive_size,
        authenticated: authenticated.clone(),
    };
    node.metrics.connections_accepted.inc();
    node.metrics.connections_open.inc();
    let reader = read_frames(&node, read, tx, limits, &draining);
    let writer = handle_in_order(
        node.clone(),
        write,
        rx,
        info.clone(),
        authenticator,
        authenticated,
    );
    match tokio::try_join!(reader, writer) {
        Ok(_) => tracing::debug!(peer = %info.peer, "connection closed"),
        Err(CloseReason::Io(e)) => {
            tracing::debug!(peer = %info.peer, error = %e, "connection ended")
        }
        Err(CloseReason::Refused) => {}
        Err(reason) => {
            tracing::warn!(peer = %info.peer, listener = %info.listener, principal = %info.principal, %reason, "closing connection")
        }
    }
    node.metrics.connections_open.dec();
}

/// How large a frame may be.
struct Limits {
    /// `socket.request.max.bytes`
    max: usize,
    /// `sasl.server.max.receive.size`
    before_authentication: usize,
    /// Whether the client has authenticated (or needs not).
    authenticated: Arc<AtomicBool>,
}

async fn read_frames(
    node: &Node,
    mut read: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Bytes>,
    limits: Limits,
    draining: &CancellationToken,
) -> Result<(), CloseReason> {
    loop {
        // Waiting for the next frame is where a drain cuts in; once its
        // size is read, a frame is read whole and answered.
        let size = tokio::select! {
            size = read.read_i32() => size,
            () = draining.cancelled() => return Ok(()),
        };
        let size = match size {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let max = if limits.authenticated.load(Ordering::Acquire) {
            limits.max
        } else {
            limits.before_authentication
        };
        if size < 0 || size as usize > max {
            return Err(CloseReason::FrameSize { size, max });
        }
        let mut frame = BytesMut::zeroed(size as usize);
        read.read_exact(&mut frame).await?;
        node.metrics.received_bytes.inc_by(4 + size as u64);
        if tx.send(frame.freeze()).await.is_err() {
            // The handler stopped: the connection is going away.
            return Ok(());
        }
    }
}

async fn handle_in_order(
    node: Arc<Node>,
    write: impl Sink,
    mut rx: mpsc::Receiver<Bytes>,
    mut info: ConnectionInfo,
    mut authenticator: Option<Authenticator>,
    authenticated: Arc<AtomicBool>,
) -> Result<(), CloseReason> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write);
    while let Some(frame) = rx.recv().await {
        let frame = match authenticator.as_mut() {
            None => frame,
            Some(auth) => {
                let verdict = auth.on_frame(frame, |user, mechanism| {
                    node.scram_credential(user, mechanism)
                });
                match verdict {
                    Verdict::Dispatch(frame) => frame,
                    Verdict::Answer(answer) => {
                        out.write_all(&answer).await?;
                        out.flush().await?;
                        if let Some(principal) = auth.principal() {
                            if info.principal != principal {
                                tracing::debug!(peer = %info.peer, listener = %info.listener, principal, "authenticated");
                                info.principal = principal.to_string();
                            }
                            authenticated.store(true, Ordering::Release);
                        }
                        continue;
                    }
                    Verdict::Refuse {
                        answer,
                        principal,
                        reason,
                    } => {
                        node.metrics.failed_authentication.inc();
                        tracing::warn!(
                            peer = %info.peer,
                            listener = %info.listener,
                            principal = principal.as_deref().unwrap_or(crate::security::principal::ANONYMOUS),
                            %reason,
                            "SASL authentication failed; closing the connection"
                        );
                        if let Some(answer) = answer {
                            out.write_all(&answer).await?;
                            out.flush().await?;
                        }
                        let delay = node.config.failed_authentication_delay_ms;
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                        return Err(CloseReason::Refused);
                    }
                    Verdict::Close(why) => return Err(CloseReason::Sasl(why)),
                }
            }
        };
        // A task of its own, so a panicking handler ends only this connection.
        let mut handled = tokio::spawn(dispatch::handle_frame(node.clone(), frame, info.clone()));
        // Answers written but not yet sent go out if this request takes a
        // while (a produce or commit waiting for replicas, a long poll):
        // a heartbeat's answer must not wait behind a stalled commit.
        let handled = if out.buffer().is_empty() {
            handled.await
        } else {
            tokio::select! {
                done = &mut handled => done,
                () = tokio::time::sleep(FLUSH_AFTER) => {
                    out.flush().await?;
                    handled.await
                }
            }
        };
        let answer = handled??;
        if let Some(response) = answer.response {
            node.metrics.sent_bytes.inc_by(response.len() as u64);
            write_frame(&mut out, &response).await?;
        }
        if rx.is_empty() || !answer.throttle.is_zero() {
            out.flush().await?;
        }
        if !answer.throttle.is_zero() {
            // Over its quota: the client hears the throttle time now and
            // the connection takes nothing more until it has passed.
            node.metrics.throttled.inc();
            tokio::time::sleep(answer.throttle).await;
        }
    }
    out.flush().await?;
    Ok(())
}
