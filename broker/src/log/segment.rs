//! One segment of a partition log: a `.log` file of record batches named by
//! its first offset, with sparse offset and time indexes kept in memory.
//! When a segment is sealed its indexes are written beside it (`.index`,
//! `.timeindex`, see `index`) and read back on open; the active segment's,
//! or any that are missing or damaged, are rebuilt from the batch headers.
//! Its aborted transaction index (`.txnindex`, see `txn_index`) is kept in
//! memory too and appended to its file as markers arrive; the active
//! segment's, or a missing or damaged one, is left unknown on open for the
//! partition to rebuild while it replays the log's transactions.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::file_slice::FileSlice;
use super::index::{self, IndexEntry};
use super::txn_index::{self, AbortedTxn};
use super::LogError;

/// A segment file and what is known about its contents.
pub struct Segment {
    /// First offset the segment can hold (its file name).
    pub base_offset: i64,
    path: PathBuf,
    /// Shared with the fetches whose slices are still being sent.
    file: Arc<File>,
    size: u64,
    /// Offset after the last batch.
    next_offset: i64,
    index: Vec<IndexEntry>,
    bytes_since_index: u64,
    /// Largest record timestamp.
    max_timestamp: i64,
    /// When the segment was created (milliseconds), for `segment.ms`
    /// while it is empty.
    pub created_ms: i64,
    /// The newest timestamp of its first batch: `segment.ms` counts from
    /// it, as in Kafka.
    first_batch_timestamp: Option<i64>,
    /// The transactions aborted by markers in this segment, in order.
    aborted: Vec<AbortedTxn>,
    /// Whether `aborted` is known: `false` after an open that found no
    /// usable `.txnindex` (or recovered the active segment), until the
    /// partition has rebuilt it.
    aborted_known: bool,
}

/// File name of the segment starting at `base_offset`.
pub fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// Reads a sealed segment's index files; `None` when absent or damaged.
fn read_index(log_path: &Path, base_offset: i64, size: u64) -> Option<Vec<IndexEntry>> {
    let offsets = std::fs::read(log_path.with_extension(index::OFFSET_SUFFIX)).ok()?;
    let times = std::fs::read(log_path.with_extension(index::TIME_SUFFIX)).ok()?;
    index::decode(base_offset, &offsets, &times, size)
}

impl Segment {
    /// Creates an empty segment.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Segment, LogError> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        Ok(Segment {
            base_offset,
            path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            bytes_since_index: 0,
            max_timestamp: -1,
            created_ms: now_ms,
            first_batch_timestamp: None,
            aborted: Vec::new(),
            aborted_known: true,
        })
    }

    /// Opens an existing segment, reading its batch headers to rebuild the
    /// indexes. With `verify`, every batch's CRC is checked and a torn or
    /// corrupt tail is cut off; returns the segment and the bytes dropped.
    pub fn open(
        path: &Path,
        base_offset: i64,
        verify: bool,
        index_interval: u32,
        now_ms: i64,
    ) -> Result<(Segment, u64), LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| LogError::io(path, e))?;
        let len = file.metadata().map_err(|e| LogError::io(path, e))?.len();
        let mut seg = Segment {
            base_offset,
            path: path.to_path_buf(),
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            bytes_since_index: u64::MAX,
            max_timestamp: -1,
            created_ms: now_ms,
            first_batch_timestamp: None,
            aborted: Vec::new(),
            aborted_known: false,
        };
        let mut pos = 0u64;
        if !verify {
            pos = seg.resume_from_index_files(len).unwrap_or(0);
            // A recovered segment's markers may have been cut off, or
            // written without their entries: its index is rebuilt.
            if let Some(aborted) = txn_index::read(path) {
                seg.aborted = aborted;
                seg.aborted_known = true;
            }
        }
        let mut header = [0u8; HEADER_LEN];
        while pos + HEADER_LEN as u64 <= len {
            if seg.file.read_exact_at(&mut header, pos).is_err() {
                break;
            }
            let Ok(h) = batch::parse_prefix(&header, pos as usize) else {
                break;
            };
            if pos + h.size as u64 > len {
                break;
            }
            if verify {
                let mut whole = vec![0u8; h.size];
                seg.file
                    .read_exact_at(&mut whole, pos)
                    .map_err(|e| LogError::io(path, e))?;
                let mut local = h;
                local.position = 0;
                if batch::check_crc(&whole, &local).is_err() {
                    break;
                }
            }
            seg.note_batch(&h, pos, index_interval);
            pos += h.size as u64;
        }
        let dropped = len - pos;
        if dropped > 0 {
            seg.file.set_len(pos).map_err(|e| LogError::io(path, e))?;
            seg.file.sync_all().map_err(|e| LogError::io(path, e))?;
        }
        seg.size = pos;
        // Resumed from index files, the scan did not see the first batch.
        if pos > 0 && seg.first_batch_timestamp.is_none() {
            seg.first_batch_timestamp = Some(seg.header_at(0)?.max_timestamp);
        }
        Ok((seg, dropped))
    }

    /// Loads the index files of a sealed segment and positions the state
    /// after the last indexed batch, so only batches after it are scanned.
    /// Returns where scanning resumes, or `None` to rebuild from scratch.
    fn resume_from_index_files(&mut self, len: u64) -> Option<u64> {
        let entries = read_index(&self.path, self.base_offset, len)?;
        let last = *entries.last()?;
        // The last entry must point at a batch with the offset it names.
        let h = self.header_at(last.position).ok()?;
        if h.base_offset != last.offset || last.position + h.size as u64 > len {
            return None;
        }
        self.index = entries;
        self.max_timestamp = last.max_timestamp_so_far;
        self.bytes_since_index = h.size as u64;
        self.next_offset = h.last_offset + 1;
        self.size = last.position + h.size as u64;
        Some(self.size)
    }

    /// Writes the indexes beside the segment, once it takes no more appends.
    pub fn write_index_files(&self) -> Result<(), LogError> {
        txn_index::write(&self.path, &self.aborted)?;
        let Some((offsets, times)) = index::encode(self.base_offset, &self.index) else {
            return Ok(());
        };
        for (suffix, bytes) in [(index::OFFSET_SUFFIX, offsets), (index::TIME_SUFFIX, times)] {
            let path = self.path.with_extension(suffix);
            let tmp = self.path.with_extension(format!("{suffix}.tmp"));
            std::fs::write(&tmp, &bytes).map_err(|e| LogError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        }
        Ok(())
    }

    /// Updates offsets, indexes and timestamps for a batch at `position`.
    fn note_batch(&mut self, h: &BatchHeader, position: u64, index_interval: u32) {
        if position == 0 {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        if self.bytes_since_index >= index_interval as u64 {
            self.index.push(IndexEntry {
                offset: h.base_offset,
                position,
                max_timestamp_so_far: self.max_timestamp,
            });
            self.bytes_since_index = 0;
        }
        self.bytes_since_index = self.bytes_since_index.saturating_add(h.size as u64);
        self.next_offset = h.last_offset + 1;
        self.size = position + h.size as u64;
    }

    /// Appends already validated batches whose offsets are assigned, given
    /// as consecutive pieces (written with one vectored write).
    pub fn append(
        &mut self,
        pieces: &[&[u8]],
        headers: &[BatchHeader],
        index_interval: u32,
    ) -> Result<(), LogError> {
        let start = self.size;
        write_all_vectored_at(&self.file, pieces, start)
            .map_err(|e| LogError::io(&self.path, e))?;
        for h in headers {
            self.note_batch(h, start + h.position as u64, index_interval);
        }
        Ok(())
    }

    /// The transactions aborted by markers in this segment.
    pub fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// Whether its aborted transactions are known (see `aborted_known`).
    pub fn aborted_known(&self) -> bool {
        self.aborted_known
    }

    /// Records a transaction aborted by a marker just written here, in
    /// memory and in its `.txnindex`.
    pub fn append_aborted(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        txn_index::append(&self.path, &entry)?;
        self.aborted.push(entry);
        Ok(())
    }

    /// Writes its `.txnindex` whole from memory and syncs it; when its
    /// aborted transactions are not known, removes it instead, so that it
    /// is never adopted.
    pub fn save_aborted(&self) -> Result<(), LogError> {
        if !self.aborted_known {
            return txn_index::remove(&self.path);
        }
        let path = self.path.with_extension(txn_index::SUFFIX);
        crate::durable::write_atomically(&path, &txn_index::encode(&self.aborted))
            .map_err(|e| LogError::io(&path, e))
    }

    /// Takes its `.txnindex` as it is on disk although recovery did not
    /// (see `Log::adopt_active_aborted`); `false` when it is absent,
    /// damaged, or names a marker outside the segment.
    pub fn adopt_aborted(&mut self) -> bool {
        if self.aborted_known {
            return true;
        }
        let Some(aborted) = txn_index::read(&self.path) else {
            return false;
        };
        let range = self.base_offset..self.next_offset;
        if !aborted.iter().all(|e| range.contains(&e.last_offset)) {
            return false;
        }
        self.aborted = aborted;
        self.aborted_known = true;
        true
    }

    /// Takes the aborted transactions the partition rebuilt (or the
    /// cleaner carried over) and writes its `.txnindex`.
    pub fn set_aborted(&mut self, aborted: Vec<AbortedTxn>) -> Result<(), LogError> {
        txn_index::write(&self.path, &aborted)?;
        self.aborted = aborted;
        self.aborted_known = true;
        Ok(())
    }

    /// The segment's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the segment's file (the log cleaner swapping a cleaned
    /// segment in); its index files are not moved.
    pub fn rename(&mut self, to: &Path) -> Result<(), LogError> {
        std::fs::rename(&self.path, to).map_err(|e| LogError::io(to, e))?;
        self.path = to.to_path_buf();
        Ok(())
    }

    /// Bytes in the file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Offset after the last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// How long the segment has been filling, for `segment.ms`, when a
    /// batch whose newest record is `incoming_ts` arrives at `now_ms`:
    /// Kafka's rule, from the first batch's time to the incoming one's
    /// (so a restart does not reset it, and records of the past roll by
    /// their own times), or since creation while the segment is empty.
    pub fn time_filling(&self, now_ms: i64, incoming_ts: i64) -> i64 {
        match self.first_batch_timestamp {
            Some(first) => incoming_ts.saturating_sub(first),
            None => now_ms.saturating_sub(self.created_ms),
        }
    }

    /// Largest record timestamp (-1 when empty).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    fn header_at(&self, position: u64) -> Result<BatchHeader, LogError> {
        let mut header = [0u8; HEADER_LEN];
        self.file
            .read_exact_at(&mut header, position)
            .map_err(|e| LogError::io(&self.path, e))?;
        batch::parse_prefix(&header, position as usize).map_err(LogError::from)
    }

    /// Position of the batch containing `offset`, or `None` past the end.
    fn position_of(&self, offset: i64) -> Result<Option<u64>, LogError> {
        let i = self.index.partition_point(|e| e.offset <= offset);
        let mut pos = if i == 0 {
            0
        } else {
            self.index[i - 1].position
        };
        while pos < self.size {
            let h = self.header_at(pos)?;
            if h.last_offset >= offset {
                return Ok(Some(pos));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes`
    /// (or the first batch alone when `min_one`), stopping before the
    /// first batch that reaches `below`.
    pub fn slice(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        below: i64,
    ) -> Result<FileSlice, LogError> {
        let Some(start) = self.position_of(offset)? else {
            return Ok(FileSlice::default());
        };
        let mut end = start;
        let mut last_offset = -1;
        while end < self.size {
            let h = self.header_at(end)?;
            let next = end + h.size as u64;
            if h.last_offset >= below
                || ((next - start) as usize > max_bytes && !(min_one && end == start))
            {
                break;
            }
            last_offset = h.last_offset;
            end = next;
        }
        Ok(FileSlice::new(
            self.file.clone(),
            start,
            (end - start) as usize,
            last_offset,
        ))
    }

    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| LogError::io(&self.path, e))?;
        Ok(buf)
    }

    /// The first batch whose newest record is at or after `ts`, as bytes.
    pub fn batch_reaching(&self, ts: i64) -> Result<Option<Vec<u8>>, LogError> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        // Batches before the last index entry still below `ts` cannot reach it.
        let i = self.index.partition_point(|e| e.max_timestamp_so_far < ts);
        let mut pos = if i == 0 {
            0
        } else {
            self.index[i - 1].position
        };
        while pos < self.size {
            let h = self.header_at(pos)?;
            if h.max_timestamp >= ts {
                return self.read_range(pos, pos + h.size as u64).map(Some);
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// The first batch holding the segment's largest timestamp.
    pub fn max_timestamp_batch(&self) -> Result<Option<Vec<u8>>, LogError> {
        if self.size == 0 {
            return Ok(None);
        }
        self.batch_reaching(self.max_timestamp)
    }

    /// Forces written data to disk.
    pub fn flush(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Cuts the segment before the batch holding `offset` (a follower
    /// dropping records its leader does not have). Its index files are
    /// removed; they are rewritten when the segment is sealed again.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let Some(pos) = self.position_of(offset)? else {
            return Ok(());
        };
        self.file
            .set_len(pos)
            .map_err(|e| LogError::io(&self.path, e))?;
        self.remove_index_files()?;
        self.index.retain(|e| e.position < pos);
        // Markers at or after the cut are gone, and their entries with them.
        let mut aborted = std::mem::take(&mut self.aborted);
        aborted.retain(|e| e.last_offset < offset);
        if self.aborted_known {
            self.set_aborted(aborted)?;
        }
        self.size = pos;
        self.next_offset = if pos == 0 {
            self.base_offset
        } else {
            offset.min(self.next_offset)
        };
        // The largest timestamp may have been cut; recompute it.
        self.max_timestamp = -1;
        self.first_batch_timestamp = None;
        let mut at = 0;
        while at < self.size {
            let h = self.header_at(at)?;
            if at == 0 {
                self.first_batch_timestamp = Some(h.max_timestamp);
            }
            self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
            self.next_offset = h.last_offset + 1;
            at += h.size as u64;
        }
        Ok(())
    }

    /// Removes the `.index`, `.timeindex` and `.txnindex` files, if there
    /// are any.
    fn remove_index_files(&self) -> Result<(), LogError> {
        txn_index::remove(&self.path)?;
        for suffix in [index::OFFSET_SUFFIX, index::TIME_SUFFIX] {
            let path = self.path.with_extension(suffix);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::io(&path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes the segment's files.
    pub fn delete(self) -> Result<(), LogError> {
        self.remove_index_files()?;
        std::fs::remove_file(&self.path).map_err(|e| LogError::io(&self.path, e))
    }
}

/// Writes `pieces` one after another at `offset` of `file`, with as few
/// `pwritev(2)` calls as the kernel allows.
fn write_all_vectored_at(file: &File, pieces: &[&[u8]], offset: u64) -> std::io::Result<()> {
    /// The most pieces one call takes (`IOV_MAX` on Linux).
    const IOV_MAX: usize = 1024;
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut slices = &mut slices[..];
    // Leading empty pieces go, so an all-empty write is no write at all.
    IoSlice::advance_slices(&mut slices, 0);
    let mut offset = offset;
    while !slices.is_empty() {
        let at = i64::try_from(offset).map_err(std::io::Error::other)?;
        let n = nix::sys::uio::pwritev(file, &slices[..slices.len().min(IOV_MAX)], at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        offset += n as u64;
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::encode;
    use kafka_protocol::records::Compression;

    /// A sealed segment of `batches` one-record batches, indexed every batch.
    fn sealed(dir: &Path, batches: i64) -> Segment {
        let mut seg = Segment::create(dir, 100, 0).expect("create");
        for i in 0..batches {
            let mut buf = encode(&["value"], &[1000 + i], Compression::None);
            let h = batch::validate_all(&buf).expect("valid")[0];
            batch::assign(&mut buf, &h, 100 + i, 0);
            let h = batch::validate_all(&buf).expect("valid");
            seg.append(&[&buf], &h, 0).expect("append");
        }
        seg.write_index_files().expect("write index");
        seg
    }

    #[test]
    fn a_sealed_segment_reopens_from_its_index_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seg = sealed(dir.path(), 20);
        // A sparser index than a rebuild would make shows the files were used.
        seg.index = vec![seg.index[0], seg.index[7], seg.index[19]];
        seg.write_index_files().expect("write index");
        let (reopened, dropped) = Segment::open(&seg.path, 100, false, 0, 0).expect("open");
        assert_eq!(dropped, 0);
        assert_eq!(reopened.index, seg.index);
        assert_eq!(
            (
                reopened.next_offset(),
                reopened.size(),
                reopened.max_timestamp()
            ),
            (120, seg.size(), 1019)
        );
        let read = reopened
            .slice(110, 1, true, i64::MAX)
            .expect("slice")
            .read()
            .expect("read");
        assert_eq!(
            batch::validate_all(&read).expect("a batch")[0].base_offset,
            110
        );
    }

    #[test]
    fn damaged_index_files_are_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seg = sealed(dir.path(), 20);
        let index_path = seg.path.with_extension(index::OFFSET_SUFFIX);
        let mut bytes = std::fs::read(&index_path).expect("index");
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&index_path, bytes).expect("damage");
        let (reopened, _) = Segment::open(&seg.path, 100, false, 0, 0).expect("open");
        assert_eq!(reopened.index, seg.index);
        std::fs::remove_file(&index_path).expect("remove");
        let (reopened, _) = Segment::open(&seg.path, 100, false, 0, 0).expect("open");
        assert_eq!(reopened.index, seg.index);
        reopened.delete().expect("delete");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
