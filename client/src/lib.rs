//! A minimal Kafka protocol client shared by the broker (followers fetching
//! from leaders) and the operator (admin requests): one TCP connection, in
//! the clear or over TLS, that sends typed `kafka-protocol` requests and
//! reads their responses in order; a response too big to hold whole (a
//! follower's fetch) can be read as it arrives ([`Connection::send_streamed`]).
//! Choosing versions, brokers and retries is the caller's business.
//! [`batch`] builds the record batches a plain producer sends.

pub mod batch;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, Take};
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
    /// A streamed response was left unread: the connection cannot be used.
    #[error("a response was left half read; the connection is unusable")]
    Abandoned,
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
    /// A streamed response's body was dropped before its end.
    abandoned: bool,
}

impl Connection {
    /// Connects to `addr`, naming itself `client_id` in every request.
    pub async fn connect(addr: impl ToSocketAddrs, client_id: &str) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::over(stream, client_id))
    }

    /// Connects to `addr` (`host:port`) over TLS as `tls` says; the
    /// broker's certificate is checked against `host`.
    pub async fn connect_tls(
        addr: &str,
        tls: Arc<rustls::ClientConfig>,
        client_id: &str,
    ) -> Result<Self, ClientError> {
        let stream = dial_tls(addr, tls).await?;
        Ok(Self::over(stream, client_id))
    }

    /// A connection over `stream`, already connected (a test's in-memory
    /// pipe, say).
    pub fn over(
        stream: impl AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug + 'static,
        client_id: &str,
    ) -> Self {
        Self {
            stream: Box::new(stream),
            client_id: StrBytes::from_string(client_id.to_owned()),
            correlation: 0,
            abandoned: false,
        }
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let len = self.write_request(request, version).await?;
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

    /// Sends `request` at `version` and returns its response's body, after
    /// the header, to be read as it arrives. The connection serves nothing
    /// else until the body is read to its end; dropped earlier, it leaves
    /// the connection unusable ([`ClientError::Abandoned`]).
    pub async fn send_streamed<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<Body<'_>, ClientError> {
        let len = self.write_request(request, version).await?;
        let expected = self.correlation;
        let mut body = Body {
            inner: (&mut self.stream).take(len as u64),
            abandoned: &mut self.abandoned,
        };
        let correlation = body.read_i32().await?;
        if R::Response::header_version(version) >= 1 {
            body.skip_tagged_fields().await?;
        }
        if correlation != expected {
            return Err(ClientError::BadResponse(format!(
                "correlation id {correlation} answers another request than {expected}"
            )));
        }
        Ok(body)
    }

    /// Writes `request` at `version`; the length of the response's frame.
    async fn write_request<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<usize, ClientError> {
        if self.abandoned {
            return Err(ClientError::Abandoned);
        }
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
        usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_RESPONSE)
            .ok_or_else(|| ClientError::BadResponse(format!("frame length {len}")))
    }
}

/// A response's body read as it arrives (see [`Connection::send_streamed`]):
/// the bytes of its frame after the header, with Kafka's primitive types
/// read from it, and copied as they are into a buffer where the caller
/// decodes a part once it has it whole.
#[derive(Debug)]
pub struct Body<'a> {
    inner: Take<&'a mut Box<dyn Stream>>,
    abandoned: &'a mut bool,
}

impl Drop for Body<'_> {
    fn drop(&mut self) {
        *self.abandoned = self.inner.limit() > 0;
    }
}

impl AsyncRead for Body<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Body<'_> {
    /// Bytes of the body not read yet.
    pub fn remaining(&self) -> u64 {
        self.inner.limit()
    }

    /// Appends the next `n` bytes to `out`.
    pub async fn copy_into(&mut self, out: &mut BytesMut, n: usize) -> Result<(), ClientError> {
        if n as u64 > self.remaining() {
            return Err(ClientError::BadResponse(format!(
                "a field of {n} bytes runs past the response's end"
            )));
        }
        out.reserve(n);
        let mut limited = (&mut self.inner).take(n as u64);
        while limited.limit() > 0 {
            if limited.read_buf(out).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
        Ok(())
    }

    /// Reads an unsigned varint, appending its bytes to `out` as well.
    pub async fn copy_uvarint_into(&mut self, out: &mut BytesMut) -> Result<u32, ClientError> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.inner.read_u8().await?;
            out.put_u8(byte);
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ClientError::BadResponse(
            "varint longer than 5 bytes".into(),
        ))
    }

    /// Copies a tagged-fields section (its count, then each tag, size and
    /// bytes) into `out`.
    pub async fn copy_tagged_fields_into(&mut self, out: &mut BytesMut) -> Result<(), ClientError> {
        let fields = self.copy_uvarint_into(out).await?;
        for _ in 0..fields {
            self.copy_uvarint_into(out).await?;
            let size = self.copy_uvarint_into(out).await?;
            self.copy_into(out, size as usize).await?;
        }
        Ok(())
    }

    /// Reads a big-endian `i32`.
    pub async fn read_i32(&mut self) -> Result<i32, ClientError> {
        Ok(self.inner.read_i32().await?)
    }

    /// Reads a big-endian `i16`.
    pub async fn read_i16(&mut self) -> Result<i16, ClientError> {
        Ok(self.inner.read_i16().await?)
    }

    /// Reads an unsigned varint.
    pub async fn read_uvarint(&mut self) -> Result<u32, ClientError> {
        self.copy_uvarint_into(&mut BytesMut::new()).await
    }

    /// Reads past a tagged-fields section.
    pub async fn skip_tagged_fields(&mut self) -> Result<(), ClientError> {
        self.copy_tagged_fields_into(&mut BytesMut::new()).await
    }
}
