//! What a connection runs over: a plain TCP socket or a TLS session, split
//! into a reading and a writing half. The writing half sends a response
//! frame's record sets its own way: a plain socket straight from the
//! segment file with `sendfile(2)` (the bytes go from the page cache to
//! the socket without entering the broker), a TLS session by reading them
//! in chunks and encrypting them like any other bytes.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::log::file_slice::FileSlice;
use crate::protocol::frame::{Chunk, Frame};

/// Record bytes a TLS connection reads from the file at a time.
const COPY_CHUNK: usize = 64 * 1024;

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
    /// Writes `slice`'s bytes after what `out` holds.
    fn send_file<'a>(
        out: &'a mut BufWriter<Self>,
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
    async fn send_file(out: &mut BufWriter<Self>, slice: &FileSlice) -> io::Result<()> {
        let Some((file, position)) = slice.file() else {
            return Ok(());
        };
        out.flush().await?;
        let socket: &TcpStream = out.get_ref().as_ref();
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
    async fn send_file(out: &mut BufWriter<Self>, slice: &FileSlice) -> io::Result<()> {
        let mut chunk = vec![0u8; COPY_CHUNK.min(slice.len())];
        let mut from = 0;
        while from < slice.len() {
            let n = COPY_CHUNK.min(slice.len() - from);
            slice.read_at(from, &mut chunk[..n])?;
            out.write_all(&chunk[..n]).await?;
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

/// Writes a whole response frame after what `out` holds.
pub async fn write_frame<W: Sink>(out: &mut BufWriter<W>, frame: &Frame) -> io::Result<()> {
    for chunk in frame.chunks() {
        match chunk {
            Chunk::Bytes(bytes) => out.write_all(bytes).await?,
            Chunk::File(slice) => W::send_file(out, slice).await?,
        }
    }
    Ok(())
}
