//! A minimal Kafka protocol client shared by the broker (followers fetching
//! from leaders) and the operator (admin requests): one TCP connection, in
//! the clear or over TLS, that sends typed `kafka-protocol` requests and
//! reads their responses in order.
//! Choosing versions, brokers and retries is the caller's business.
//! [`batch`] builds the record batches a plain producer sends.

pub mod batch;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::rustls;

/// Largest response accepted; a peer announcing more is not a Kafka broker
/// or is broken.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// What can go wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed or closed.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// A request could not be encoded at the requested version.
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        /// API key of the request.
        api: i16,
        /// Requested version.
        version: i16,
        /// The encoder's complaint.
        reason: String,
    },
    /// The peer answered with something that is not the expected response.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The address has no host name a certificate could be checked against.
    #[error("{0} has no host name to check a certificate against")]
    ServerName(String),
}

/// A TLS connection to `addr` (`host:port`) as `tls` says, the server's
/// certificate checked against `host`: what a client, and a broker reaching
/// another, speak over.
pub async fn dial_tls(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| ClientError::ServerName(addr.to_owned()))?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?)
}

/// The bytes to and from a broker: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> Stream for T {}

/// One connection to one broker.
#[derive(Debug)]
pub struct Connection {
    stream: Box<dyn Stream>,
    client_id: StrBytes,
    correlation: i32,
}

impl Connection {
    /// Connects to `addr`, naming itself `client_id` in every request.
    pub async fn connect(addr: impl ToSocketAddrs, client_id: &str) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::over(Box::new(stream), client_id))
    }

    /// Connects to `addr` (`host:port`) over TLS as `tls` says; the
    /// broker's certificate is checked against `host`.
    pub async fn connect_tls(
        addr: &str,
        tls: Arc<rustls::ClientConfig>,
        client_id: &str,
    ) -> Result<Self, ClientError> {
        let stream = dial_tls(addr, tls).await?;
        Ok(Self::over(Box::new(stream), client_id))
    }

    fn over(stream: Box<dyn Stream>, client_id: &str) -> Self {
        Self {
            stream,
            client_id: StrBytes::from_string(client_id.to_owned()),
            correlation: 0,
        }
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let encode = |reason: String| ClientError::Encode {
            api: R::KEY,
            version,
            reason,
        };
        self.correlation = self.correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(self.client_id.clone());
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .map_err(|e| encode(e.to_string()))?;
        request
            .encode(&mut body, version)
            .map_err(|e| encode(e.to_string()))?;
        let len = i32::try_from(body.len()).map_err(|_| ClientError::Encode {
            api: R::KEY,
            version,
            reason: "request larger than 2 GiB".into(),
        })?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(len);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await?;
        // TLS holds written bytes until flushed.
        self.stream.flush().await?;

        let len = self.stream.read_i32().await?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_RESPONSE)
            .ok_or_else(|| ClientError::BadResponse(format!("frame length {len}")))?;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        let mut buf = Bytes::from(buf);
        let bad = |e: String| ClientError::BadResponse(e);
        let h = ResponseHeader::decode(&mut buf, R::Response::header_version(version))
            .map_err(|e| bad(e.to_string()))?;
        if h.correlation_id != self.correlation {
            return Err(bad(format!(
                "correlation id {} answers another request than {}",
                h.correlation_id, self.correlation
            )));
        }
        R::Response::decode(&mut buf, version).map_err(|e| bad(e.to_string()))
    }
}
