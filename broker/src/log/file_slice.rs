//! Whole batches of one segment file, named by where they lie instead of
//! read: what a fetch answers with. A plain connection sends them from the
//! page cache to the socket with `sendfile`, so record data never passes
//! through the broker's memory; a TLS connection, or a caller that needs
//! the bytes, reads them with [`FileSlice::read`].
//!
//! A slice holds the segment's open file, so a segment deleted by
//! retention or replaced by the cleaner after the read is still sent
//! whole. One truncated under it (a follower cutting its log) is not:
//! sending then fails and the connection closes, as Kafka does, and the
//! client fetches again.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

/// A run of whole batches in a segment file (or nothing).
#[derive(Debug, Clone, Default)]
pub struct FileSlice {
    /// The segment file; `None` for an empty slice.
    file: Option<Arc<File>>,
    /// Where the first batch starts in the file.
    position: u64,
    /// Bytes from there.
    len: usize,
    /// The last offset of the last batch.
    last_offset: Option<i64>,
}

impl FileSlice {
    /// The batches of `file` from `position`, `len` bytes, the last of them
    /// ending at `last_offset`.
    pub fn new(file: Arc<File>, position: u64, len: usize, last_offset: i64) -> FileSlice {
        if len == 0 {
            return FileSlice::default();
        }
        FileSlice {
            file: Some(file),
            position,
            len,
            last_offset: Some(last_offset),
        }
    }

    /// Bytes in the slice.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice holds no batch.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last offset of the last batch, if there is one.
    pub fn last_offset(&self) -> Option<i64> {
        self.last_offset
    }

    /// The file and where the slice starts in it, unless it is empty.
    pub fn file(&self) -> Option<(&File, u64)> {
        self.file.as_deref().map(|f| (f, self.position))
    }

    /// Reads the slice's bytes.
    pub fn read(&self) -> std::io::Result<Bytes> {
        let mut buf = vec![0u8; self.len];
        self.read_at(0, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Fills `buf` with the slice's bytes from `from` on; an error when
    /// the file no longer holds them (truncated since).
    pub fn read_at(&self, from: usize, buf: &mut [u8]) -> std::io::Result<()> {
        if from + buf.len() > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "read past the end of a file slice",
            ));
        }
        match &self.file {
            Some(file) => file.read_exact_at(buf, self.position + from as u64),
            None => Ok(()),
        }
    }
}

/// Two slices are the same when they name the same bytes of the same open
/// file.
impl PartialEq for FileSlice {
    fn eq(&self, other: &FileSlice) -> bool {
        let same_file = match (&self.file, &other.file) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_file && (self.position, self.len) == (other.position, other.len)
    }
}

impl Eq for FileSlice {}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_slice_reads_its_own_bytes_and_refuses_past_its_end() {
        let mut file = tempfile::tempfile().expect("file");
        file.write_all(b"0123456789").expect("write");
        let slice = FileSlice::new(Arc::new(file), 2, 5, 41);
        assert_eq!(slice.read().expect("read"), Bytes::from_static(b"23456"));
        let mut two = [0u8; 2];
        slice.read_at(3, &mut two).expect("inside");
        assert_eq!(&two, b"56");
        assert!(slice.read_at(4, &mut two).is_err());
        assert_eq!(slice.last_offset(), Some(41));
        let empty = FileSlice::new(slice.file.clone().expect("file"), 2, 0, 41);
        assert!(empty.is_empty() && empty.file().is_none());
        assert_eq!(empty.read().expect("nothing"), Bytes::new());
    }

    #[test]
    fn a_file_truncated_under_a_slice_fails_its_read() {
        let mut file = tempfile::tempfile().expect("file");
        file.write_all(b"0123456789").expect("write");
        let file = Arc::new(file);
        let slice = FileSlice::new(file.clone(), 0, 10, 9);
        file.set_len(4).expect("truncate");
        assert!(slice.read().is_err());
    }
}
