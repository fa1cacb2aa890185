//! What a connection runs over: a plain TCP socket or a TLS session, split
//! into a reading and a writing half. The writing half sends a response
//! frame's record sets its own way: a plain socket straight from the
//! segment file with `sendfile(2)` (the bytes go from the page cache to
//! the socket without entering the broker), a TLS session by reading them
//! in chunks and encrypting them like any other bytes. `Output` gathers a
//! connection's small answers into one write.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::log::file_slice::FileSlice;
use crate::protocol::frame::{Chunk, Frame};

/// Record bytes a TLS connection reads from the file at a time.
const COPY_CHUNK: usize = 64 * 1024;

/// Bytes of answers gathered before a write. Enough for a burst of small
/// answers (produce acks, heartbeats); a larger answer goes out directly.
const WRITE_BUFFER: usize = 2048;

/// A connection's byte stream.
pub trait Transport: Send + 'static {
    /// The reading half.
    type Reader: AsyncRead + Unpin + Send + 'static;
    /// The writing half.
    type Writer: Sink + 'static;
    /// Splits the stream in its halves.
    fn split(self) -> (Self::Reader, Self::Writer);
}

/// The writing half of a connection.
pub trait Sink: AsyncWrite + Unpin + Send + Sized {
    /// Writes `slice`'s bytes.
    fn send_file<'a>(
        &'a mut self,
        slice: &'a FileSlice,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
}

impl Transport for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

impl Sink for OwnedWriteHalf {
    async fn send_file(&mut self, slice: &FileSlice) -> io::Result<()> {
        let Some((file, position)) = slice.file() else {
            return Ok(());
        };
        let socket: &TcpStream = self.as_ref();
        let end = position + slice.len() as u64;
        let mut offset = i64::try_from(position).map_err(io::Error::other)?;
        while (offset as u64) < end {
            let want = (end - offset as u64) as usize;
            let sent = socket
                .async_io(tokio::io::Interest::WRITABLE, || {
                    nix::sys::sendfile::sendfile64(socket, file, Some(&mut offset), want)
                        .map_err(io::Error::from)
                })
                .await?;
            if sent == 0 {
                return Err(truncated());
            }
        }
        Ok(())
    }
}

impl Transport for TlsStream<TcpStream> {
    type Reader = ReadHalf<TlsStream<TcpStream>>;
    type Writer = WriteHalf<TlsStream<TcpStream>>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

impl Sink for WriteHalf<TlsStream<TcpStream>> {
    async fn send_file(&mut self, slice: &FileSlice) -> io::Result<()> {
        let mut chunk = vec![0u8; COPY_CHUNK.min(slice.len())];
        let mut from = 0;
        while from < slice.len() {
            let n = COPY_CHUNK.min(slice.len() - from);
            slice.read_at(from, &mut chunk[..n])?;
            self.write_all(&chunk[..n]).await?;
            from += n;
        }
        Ok(())
    }
}

/// The segment file lost the bytes a response promised: the connection
/// cannot carry on (the frame's length is sent already).
fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "a segment file was truncated while its records were being sent",
    )
}

/// A connection's writing half with a write buffer that exists only while
/// answers are being written.
pub struct Output<W> {
    sink: W,
    buffer: Vec<u8>,
}

impl<W: Sink> Output<W> {
    /// Writes to `sink`; no buffer yet.
    pub fn new(sink: W) -> Self {
        Output {
            sink,
            buffer: Vec::new(),
        }
    }

    /// Whether answers wait in the buffer.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Adds `bytes` after what waits, writing what waits first when they
    /// do not fit (a larger piece goes out directly).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buffer.len() + bytes.len() > WRITE_BUFFER {
            self.send_buffered().await?;
        }
        if bytes.len() >= WRITE_BUFFER {
            return self.sink.write_all(bytes).await;
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(WRITE_BUFFER);
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes a whole response frame after what waits.
    pub async fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        for chunk in frame.chunks() {
            match chunk {
                Chunk::Bytes(bytes) => self.write(bytes).await?,
                Chunk::File(slice) => {
                    self.send_buffered().await?;
                    self.sink.send_file(slice).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends everything written so far.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.send_buffered().await?;
        self.sink.flush().await
    }

    /// Gives the write buffer back (the connection is idle; it is
    /// allocated again by the next answer).
    pub fn release(&mut self) {
        debug_assert!(self.buffer.is_empty(), "released before a flush");
        self.buffer = Vec::new();
    }

    async fn send_buffered(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.sink.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        Ok(())
    }
}
