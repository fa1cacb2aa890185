//! One client connection, served by one task: it reads size-prefixed
//! frames and handles them strictly one after another, in order, as Kafka
//! does, reading ahead while a request is being handled. Order is what
//! producers rely on: batches a client pipelines on one connection are
//! appended in the order it sent them. When the broker drains its
//! connections at shutdown, the connection stops taking new frames; the
//! requests already read are answered and it closes.
//!
//! An idle connection holds little: its socket, this task, and no buffers
//! (a frame's buffer is allocated once its size is known, the write
//! buffer while answers are being written). Thousands of idle clients are
//! what real clusters have.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::authenticate::{Authenticator, Verdict};
use super::transport::{Output, Sink, Transport};
use crate::handlers::dispatch;
use crate::node::Node;
use crate::protocol::{ConnectionInfo, ProtocolError};

/// Frames read ahead of the one being handled. Clients keep up to five
/// requests in flight; the bound caps the memory one connection can hold.
const READ_AHEAD: usize = 8;

/// Bytes read ahead past which no further frame is begun: small requests
/// are read ahead as they come, big ones (a producer's megabyte requests)
/// one at a time, so a connection holds about two of them, not nine.
const READ_AHEAD_BYTES: usize = 256 << 10;

/// How long answers to pipelined requests may wait in the write buffer for
/// the next one, so a burst of quick answers goes out in one write.
const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

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
    // Boxed: most connections are on listeners without SASL, and the
    // connection's task is smaller for it.
    let authenticator = node.config.sasl.get(&info.listener).map(|settings| {
        Box::new(Authenticator::new(
            settings.clone(),
            node.jwks.get(&info.listener).cloned(),
        ))
    });
    node.metrics.connections_accepted.inc();
    node.metrics.connections_open.inc();
    let mut connection = Connection {
        node: node.clone(),
        info,
        authenticator,
        frames: FrameReader::new(read),
        out: Output::new(write),
        read_ahead: VecDeque::new(),
        open: true,
    };
    let outcome = connection.run(&draining).await;
    let info = &connection.info;
    match outcome {
        Ok(()) => tracing::debug!(peer = %info.peer, "connection closed"),
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

/// A connection's state between its frames.
struct Connection<R, W> {
    node: Arc<Node>,
    info: ConnectionInfo,
    /// On SASL listeners: where the client is in authenticating.
    authenticator: Option<Box<Authenticator>>,
    frames: FrameReader<R>,
    out: Output<W>,
    /// Frames read while an earlier one was being handled.
    read_ahead: VecDeque<Bytes>,
    /// Whether more frames are taken: not after the client closed its side
    /// or the broker began draining.
    open: bool,
}

impl<R: AsyncRead + Unpin, W: Sink> Connection<R, W> {
    async fn run(&mut self, draining: &CancellationToken) -> Result<(), CloseReason> {
        loop {
            let frame = match self.read_ahead.pop_front() {
                Some(frame) => frame,
                None if self.open => {
                    // Idle: what was answered goes out, and the write
                    // buffer is given back until the next request.
                    self.out.flush().await?;
                    self.out.release();
                    match self.next_frame(draining).await? {
                        Some(frame) => frame,
                        None => continue,
                    }
                }
                None => break,
            };
            self.handle(frame, draining).await?;
        }
        self.out.flush().await?;
        Ok(())
    }

    /// The next frame, or `None` once the connection takes no more (the
    /// client closed its side, or the drain began between two frames).
    async fn next_frame(
        &mut self,
        draining: &CancellationToken,
    ) -> Result<Option<Bytes>, CloseReason> {
        let max = self.max_frame();
        let frame = tokio::select! {
            frame = self.frames.next(max) => frame?,
            () = draining.cancelled() => {
                // A drain cuts in between frames; a frame begun is read
                // whole and answered.
                self.open = false;
                if self.frames.between_frames() {
                    return Ok(None);
                }
                self.frames.next(max).await?
            }
        };
        match &frame {
            Some(frame) => {
                self.node
                    .metrics
                    .received_bytes
                    .inc_by(4 + frame.len() as u64);
            }
            None => self.open = false,
        }
        Ok(frame)
    }

    /// How large the next frame may be: until a SASL client has
    /// authenticated, `sasl.server.max.receive.size` bounds it instead of
    /// `socket.request.max.bytes`.
    fn max_frame(&self) -> usize {
        match &self.authenticator {
            Some(auth) if !auth.authenticated() => self.node.config.sasl_max_receive_size,
            _ => self.node.config.socket_request_max_bytes,
        }
    }

    /// Answers one frame: SASL's own frames here, requests by their
    /// handler while the next frames are read.
    async fn handle(
        &mut self,
        frame: Bytes,
        draining: &CancellationToken,
    ) -> Result<(), CloseReason> {
        let frame = if self.authenticator.is_some() {
            // Boxed, so that connections without SASL do not carry its
            // state in their task.
            match Box::pin(self.authenticate(frame)).await? {
                Some(frame) => frame,
                None => return Ok(()),
            }
        } else {
            frame
        };
        // A task of its own, so a panicking handler ends only this connection.
        let mut handled = tokio::spawn(dispatch::handle_frame(
            self.node.clone(),
            frame,
            self.info.clone(),
        ));
        // Answers written but not yet sent go out if this request takes a
        // while (a produce or commit waiting for replicas, a long poll):
        // a heartbeat's answer must not wait behind a stalled commit.
        let flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
        let answer = loop {
            let reading = self.open
                && self.read_ahead.len() < READ_AHEAD
                && self.read_ahead.iter().map(Bytes::len).sum::<usize>() < READ_AHEAD_BYTES;
            tokio::select! {
                biased;
                done = &mut handled => break done??,
                frame = self.next_frame(draining), if reading => {
                    self.read_ahead.extend(frame?);
                }
                () = tokio::time::sleep_until(flush_at), if !self.out.is_empty() => {
                    self.out.flush().await?;
                }
            }
        };
        if let Some(response) = answer.response {
            self.node.metrics.sent_bytes.inc_by(response.len() as u64);
            self.out.write_frame(&response).await?;
        }
        if self.read_ahead.is_empty() || !answer.throttle.is_zero() {
            self.out.flush().await?;
        }
        if !answer.throttle.is_zero() {
            // Over its quota: the client hears the throttle time now and
            // the connection takes nothing more until it has passed.
            self.node.metrics.throttled.inc();
            tokio::time::sleep(answer.throttle).await;
        }
        Ok(())
    }

    /// Passes `frame` through SASL's authentication on a SASL listener:
    /// the frame to dispatch, or `None` when SASL answered it here.
    async fn authenticate(&mut self, frame: Bytes) -> Result<Option<Bytes>, CloseReason> {
        let Some(auth) = self.authenticator.as_mut() else {
            return Ok(Some(frame));
        };
        let node = &self.node;
        let info = &mut self.info;
        match auth.on_frame(frame, |user, mechanism| {
            node.scram_credential(user, mechanism)
        }) {
            Verdict::Dispatch(frame) => Ok(Some(frame)),
            Verdict::Answer(answer) => {
                self.out.write(&answer).await?;
                self.out.flush().await?;
                if let Some(principal) = auth.principal() {
                    if info.principal != principal {
                        tracing::debug!(peer = %info.peer, listener = %info.listener, principal, "authenticated");
                        info.principal = principal.to_string();
                    }
                }
                Ok(None)
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
                    self.out.write(&answer).await?;
                    self.out.flush().await?;
                }
                let delay = node.config.failed_authentication_delay_ms;
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                Err(CloseReason::Refused)
            }
            Verdict::Close(why) => Err(CloseReason::Sasl(why)),
        }
    }
}

/// Reads size-prefixed frames. Cancel-safe: what a read brought in is kept
/// here, so a read given up for another event (an answer ready, the drain)
/// loses nothing, and the next one carries on.
struct FrameReader<R> {
    read: R,
    /// The size prefix, as far as it has arrived.
    prefix: [u8; 4],
    prefix_len: usize,
    /// The frame being read, once its size is known.
    body: Option<(BytesMut, usize)>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(read: R) -> Self {
        FrameReader {
            read,
            prefix: [0; 4],
            prefix_len: 0,
            body: None,
        }
    }

    /// Whether nothing of a next frame has been read.
    fn between_frames(&self) -> bool {
        self.prefix_len == 0 && self.body.is_none()
    }

    /// The next whole frame (without its size prefix), at most `max`
    /// bytes; `None` when the client closed its side between frames.
    async fn next(&mut self, max: usize) -> Result<Option<Bytes>, CloseReason> {
        loop {
            match &mut self.body {
                None => {
                    let n = self.read.read(&mut self.prefix[self.prefix_len..]).await?;
                    if n == 0 {
                        return if self.prefix_len == 0 {
                            Ok(None)
                        } else {
                            Err(eof_in_frame())
                        };
                    }
                    self.prefix_len += n;
                    if self.prefix_len == self.prefix.len() {
                        let size = i32::from_be_bytes(self.prefix);
                        if size < 0 || size as usize > max {
                            return Err(CloseReason::FrameSize { size, max });
                        }
                        self.prefix_len = 0;
                        let size = size as usize;
                        self.body = Some((BytesMut::with_capacity(size), size));
                    }
                }
                Some((body, size)) if body.len() == *size => {
                    return Ok(self.body.take().map(|(body, _)| body.freeze()));
                }
                Some((body, size)) => {
                    let want = *size - body.len();
                    if self.read.read_buf(&mut body.limit(want)).await? == 0 {
                        return Err(eof_in_frame());
                    }
                }
            }
        }
    }
}

/// The client closed its side in the middle of a frame.
fn eof_in_frame() -> CloseReason {
    CloseReason::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the client closed the connection in the middle of a frame",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames come out whole and in order however the bytes arrive, and a
    /// read given up half way (cancelled) loses nothing.
    #[tokio::test]
    async fn frames_survive_split_reads_and_cancellation() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(server);
        let mut wire = Vec::new();
        for body in [&b"first"[..], b"", b"third frame"] {
            wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        use tokio::io::AsyncWriteExt;
        // Three bytes: half a size prefix. The read gives up; the bytes stay.
        client.write_all(&wire[..3]).await.expect("write");
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(20), frames.next(1024)).await;
        assert!(early.is_err());
        assert!(!frames.between_frames());
        client.write_all(&wire[3..]).await.expect("write");
        drop(client);
        let mut got = Vec::new();
        while let Some(frame) = frames.next(1024).await.expect("frame") {
            got.push(frame);
        }
        assert_eq!(got, vec![&b"first"[..], b"", b"third frame"]);
        assert!(frames.between_frames());
    }

    #[tokio::test]
    async fn oversized_and_cut_frames_are_errors() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(server);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(&100i32.to_be_bytes())
            .await
            .expect("write");
        let err = frames.next(99).await.expect_err("refused");
        assert!(
            matches!(err, CloseReason::FrameSize { size: 100, max: 99 }),
            "{err}"
        );

        let (mut client, server) = tokio::io::duplex(64);
        let mut frames = FrameReader::new(server);
        client.write_all(&10i32.to_be_bytes()).await.expect("write");
        client.write_all(b"short").await.expect("write");
        drop(client);
        let err = frames.next(99).await.expect_err("refused");
        assert!(
            matches!(&err, CloseReason::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "{err}"
        );
    }
}
