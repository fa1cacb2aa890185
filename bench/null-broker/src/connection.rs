//! One client connection: size-prefixed request frames in, answers out in
//! the order the requests came, as Kafka clients expect when they pipeline.
//! The requests are answered one after another; answers are sent together
//! once no further whole request is waiting in the read buffer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::answer;
use crate::broker::Broker;
use crate::protocol::{self, ProtocolError, Request};

/// Kafka's default `socket.request.max.bytes`.
const MAX_FRAME: usize = 100 * 1024 * 1024;
/// Bytes read at a time at least.
const READ_CHUNK: usize = 256 * 1024;
/// Answers held back at most before they are sent.
const WRITE_BATCH: usize = 256 * 1024;

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
enum CloseReason {
    #[error("frame size {0} is outside 0..={MAX_FRAME}")]
    FrameSize(i32),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serves `stream` until the client closes it or sends what is not served.
pub async fn serve(broker: Arc<Broker>, mut stream: TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    match exchange(&broker, &mut stream).await {
        Ok(()) => tracing::debug!(%peer, "connection closed by the client"),
        Err(CloseReason::Io(e)) => tracing::debug!(%peer, error = %e, "connection ended"),
        Err(reason) => tracing::warn!(%peer, %reason, "closing the connection"),
    }
}

async fn exchange(broker: &Broker, stream: &mut TcpStream) -> Result<(), CloseReason> {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(WRITE_BATCH);
    loop {
        let Some(frame) = next_frame(&mut input)? else {
            // Nothing more to answer until the client sends more.
            if !output.is_empty() {
                stream.write_all(&output).await?;
                output.clear();
            }
            if stream.read_buf(&mut input).await? == 0 {
                return Ok(());
            }
            continue;
        };
        let request = protocol::read_header(frame)?;
        if request.may_wait() && !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        match request {
            Request::ApiVersionsTooNew { correlation_id } => {
                let (version, response) = protocol::api_versions_too_new();
                protocol::encode_into(
                    &mut output,
                    ApiKey::ApiVersions,
                    version,
                    correlation_id,
                    &response,
                )?;
            }
            Request::Served {
                api,
                version,
                correlation_id,
                body,
            } => {
                if let Some(response) = answer::answer(broker, api, version, body).await? {
                    protocol::encode_into(&mut output, api, version, correlation_id, &response)?;
                }
            }
        }
        if output.len() >= WRITE_BATCH {
            stream.write_all(&output).await?;
            output.clear();
        }
    }
}

/// Takes the next whole frame (without its size) off `input`, or makes
/// room in it for the rest of the frame and returns none.
fn next_frame(input: &mut BytesMut) -> Result<Option<Bytes>, CloseReason> {
    let Some(prefix) = input.get(..4) else {
        input.reserve(READ_CHUNK);
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let frame = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_FRAME)
        .ok_or(CloseReason::FrameSize(size))?;
    if input.len() < 4 + frame {
        input.reserve((4 + frame - input.len()).max(READ_CHUNK));
        return Ok(None);
    }
    input.advance(4);
    Ok(Some(input.split_to(frame).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_off_whole_and_in_order() {
        let mut input = BytesMut::new();
        input.extend_from_slice(&[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c', 0, 0]);
        assert_eq!(
            next_frame(&mut input).ok().flatten().as_deref(),
            Some(&b"ab"[..])
        );
        assert_eq!(
            next_frame(&mut input).ok().flatten().as_deref(),
            Some(&b"c"[..])
        );
        assert_eq!(next_frame(&mut input).ok().flatten(), None, "half a size");
        input.extend_from_slice(&[0, 3, b'd']);
        assert_eq!(next_frame(&mut input).ok().flatten(), None, "half a frame");
        input.extend_from_slice(b"ef");
        assert_eq!(
            next_frame(&mut input).ok().flatten().as_deref(),
            Some(&b"def"[..])
        );
        input.extend_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            next_frame(&mut input),
            Err(CloseReason::FrameSize(-1))
        ));
    }
}
