//! What a partition keeps on disk so that opening it does not replay its
//! whole log, in Kafka's formats so Kafka's tools read them:
//! - producer snapshots, `<offset, 20 digits>.snapshot`: every producer's
//!   state as it was after the batches below that offset (Kafka's
//!   `ProducerSnapshot`, version 1: version int16, CRC-32C uint32 of every
//!   byte after it, then an int32 count of entries, each ProducerId int64,
//!   Epoch int16, LastSequence int32, LastOffset int64, OffsetDelta int32,
//!   Timestamp int64, CoordinatorEpoch int32, CurrentTxnFirstOffset int64,
//!   all big-endian). Two are kept (see [`write`]).
//! - the leader-epoch checkpoint, `leader-epoch-checkpoint`: the epoch
//!   history as text, a version line `0`, a count line, then one
//!   `<epoch> <start offset>` line per epoch.
//!
//! A damaged file is a [`SnapshotError`], never a panic: the caller falls
//! back to an older snapshot or to replaying the log.

use std::path::{Path, PathBuf};

use bytes::Buf;

use crate::durable::{replace, write_atomically};

/// The producer snapshot version written and read (Kafka's only one).
pub const VERSION: i16 = 1;
/// The leader-epoch checkpoint's file name.
pub const CHECKPOINT: &str = "leader-epoch-checkpoint";
/// The leader-epoch checkpoint's version line.
const CHECKPOINT_VERSION: &str = "0";
const SUFFIX: &str = "snapshot";
/// Version and CRC: the CRC covers every byte after them.
const HEADER_LEN: usize = 2 + 4;
/// One entry's bytes.
const ENTRY_LEN: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

/// One producer in a snapshot (Kafka's `ProducerSnapshot.ProducerEntry`):
/// its epoch, its last batch, its last marker's coordinator epoch and its
/// open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Sequence of the last record of its last batch (-1: none).
    pub last_sequence: i32,
    /// Last offset of its last batch (-1: none).
    pub last_offset: i64,
    /// Last offset minus first offset of its last batch.
    pub offset_delta: i32,
    /// Timestamp of its last batch or marker.
    pub timestamp: i64,
    /// Coordinator epoch of its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction (-1: none).
    pub current_txn_first_offset: i64,
}

/// Why a snapshot or checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading, writing or deleting a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The snapshot ends before its content does.
    #[error("producer snapshot of {len} bytes is truncated: {needed} needed")]
    Truncated {
        /// Its length.
        len: usize,
        /// The length its header and count call for.
        needed: usize,
    },
    /// A version this broker does not know.
    #[error("producer snapshot version {0} is not {VERSION}")]
    Version(i16),
    /// A negative entry count.
    #[error("producer snapshot has a count of {0} entries")]
    Count(i32),
    /// Bytes after the last entry.
    #[error("producer snapshot has {0} bytes after its last entry")]
    TrailingBytes(usize),
    /// The content does not match its checksum.
    #[error("producer snapshot CRC {stored:#010x} does not match its content's {computed:#010x}")]
    Crc {
        /// The CRC the file holds.
        stored: u32,
        /// The CRC of its content.
        computed: u32,
    },
    /// The leader-epoch checkpoint is not Kafka's text layout, or its
    /// epochs or offsets do not increase.
    #[error("malformed leader-epoch checkpoint: {0}")]
    Checkpoint(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshot file of `offset`, as Kafka names it.
pub fn file_name(offset: i64) -> String {
    format!("{offset:020}.{SUFFIX}")
}

/// Kafka's bytes of a snapshot holding `entries`.
pub fn encode(entries: &[ProducerEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + entries.len() * ENTRY_LEN);
    out.extend_from_slice(&VERSION.to_be_bytes());
    // The CRC, filled in once the content is known.
    out.extend_from_slice(&[0; 4]);
    // A partition never holds anywhere near i32::MAX producers.
    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.last_sequence.to_be_bytes());
        out.extend_from_slice(&e.last_offset.to_be_bytes());
        out.extend_from_slice(&e.offset_delta.to_be_bytes());
        out.extend_from_slice(&e.timestamp.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[HEADER_LEN..]);
    out[2..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The entries of a snapshot's bytes, checked as Kafka checks them:
/// version, layout, then CRC.
pub fn decode(bytes: &[u8]) -> Result<Vec<ProducerEntry>, SnapshotError> {
    let truncated = |needed: usize| SnapshotError::Truncated {
        len: bytes.len(),
        needed,
    };
    if bytes.len() < HEADER_LEN + 4 {
        return Err(truncated(HEADER_LEN + 4));
    }
    // Lengths are checked before each read.
    let mut r = bytes;
    let version = r.get_i16();
    if version != VERSION {
        return Err(SnapshotError::Version(version));
    }
    let stored = r.get_u32();
    let count = r.get_i32();
    let n = usize::try_from(count).map_err(|_| SnapshotError::Count(count))?;
    // Checked before anything is allocated for the entries.
    let needed = HEADER_LEN + 4 + n * ENTRY_LEN;
    if bytes.len() < needed {
        return Err(truncated(needed));
    }
    if bytes.len() > needed {
        return Err(SnapshotError::TrailingBytes(bytes.len() - needed));
    }
    let computed = crc32c::crc32c(&bytes[HEADER_LEN..]);
    if computed != stored {
        return Err(SnapshotError::Crc { stored, computed });
    }
    Ok((0..n)
        .map(|_| ProducerEntry {
            producer_id: r.get_i64(),
            epoch: r.get_i16(),
            last_sequence: r.get_i32(),
            last_offset: r.get_i64(),
            offset_delta: r.get_i32(),
            timestamp: r.get_i64(),
            coordinator_epoch: r.get_i32(),
            current_txn_first_offset: r.get_i64(),
        })
        .collect())
}

/// Writes the snapshot of `offset` in `dir` (replacing one of the same
/// offset), then deletes all but two: the newest, and the newest other one
/// at or below `active_base`, the base of the segment being written. A
/// replay after a crash starts at or below that base (the segment's
/// `.txnindex` is rebuilt from its markers), so that one is kept beside a
/// newer one taken at shutdown; when a roll took the newest, it is the one
/// before, to fall back on.
pub fn write(
    dir: &Path,
    offset: i64,
    entries: &[ProducerEntry],
    active_base: i64,
) -> Result<(), SnapshotError> {
    let path = dir.join(file_name(offset));
    write_atomically(&path, &encode(entries)).map_err(io(&path))?;
    let offsets = list(dir)?;
    let newest = offsets.last().copied();
    let fallback = offsets
        .iter()
        .rev()
        .copied()
        .find(|o| Some(*o) != newest && *o <= active_base);
    for old in offsets {
        if Some(old) != newest && Some(old) != fallback {
            remove(dir, old)?;
        }
    }
    Ok(())
}

/// The entries of the snapshot of `offset` in `dir`.
pub fn read(dir: &Path, offset: i64) -> Result<Vec<ProducerEntry>, SnapshotError> {
    let path = dir.join(file_name(offset));
    decode(&std::fs::read(&path).map_err(io(&path))?)
}

/// The offsets of the snapshots in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<i64>, SnapshotError> {
    let mut offsets: Vec<i64> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(&format!(".{SUFFIX}"))?.parse().ok()
        })
        .collect();
    offsets.sort_unstable();
    Ok(offsets)
}

/// Deletes the snapshot of `offset` in `dir`, if there is one.
pub fn remove(dir: &Path, offset: i64) -> Result<(), SnapshotError> {
    let path = dir.join(file_name(offset));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
        _ => Ok(()),
    }
}

/// Deletes the snapshots in `dir` above `offset` (all of them for -1):
/// they describe records no longer in the log.
pub fn remove_above(dir: &Path, offset: i64) -> Result<(), SnapshotError> {
    for above in list(dir)?.into_iter().filter(|o| *o > offset) {
        remove(dir, above)?;
    }
    Ok(())
}

/// The newest snapshot in `dir` at or between `start` and `end` (the log's
/// start and end offsets) that can be read: its offset and entries. A
/// damaged one is logged, deleted, and the next older one tried.
pub fn newest_valid(dir: &Path, start: i64, end: i64) -> Option<(i64, Vec<ProducerEntry>)> {
    let offsets = match list(dir) {
        Ok(offsets) => offsets,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list producer snapshots; replaying the log");
            return None;
        }
    };
    for offset in offsets
        .into_iter()
        .rev()
        .filter(|o| (start..=end).contains(o))
    {
        match read(dir, offset) {
            Ok(entries) => return Some((offset, entries)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), offset, error = %e, "ignoring a damaged producer snapshot");
                if let Err(e) = remove(dir, offset) {
                    tracing::warn!(dir = %dir.display(), offset, error = %e, "cannot delete a damaged producer snapshot");
                }
            }
        }
    }
    None
}

/// Kafka's text of a leader-epoch checkpoint holding `entries` (epoch,
/// start offset).
pub fn encode_checkpoint(entries: &[(i32, i64)]) -> String {
    let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
    for (epoch, start) in entries {
        out.push_str(&format!("{epoch} {start}\n"));
    }
    out
}

/// The entries of a leader-epoch checkpoint's text: Kafka's layout, with
/// epochs and start offsets increasing (the history's invariant).
pub fn decode_checkpoint(text: &str) -> Result<Vec<(i32, i64)>, SnapshotError> {
    let bad = |why: String| SnapshotError::Checkpoint(why);
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some(CHECKPOINT_VERSION) => {}
        other => {
            return Err(bad(format!(
                "version {other:?}, expected {CHECKPOINT_VERSION}"
            )))
        }
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("no entry count".into()))?;
    let mut entries: Vec<(i32, i64)> = Vec::new();
    for line in lines.by_ref().take(count) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let entry = match fields[..] {
            [epoch, start] => epoch.parse().ok().zip(start.parse().ok()),
            _ => None,
        };
        let Some((epoch, start)) = entry else {
            return Err(bad(format!("entry {line:?}")));
        };
        if let Some((last_epoch, last_start)) = entries.last() {
            if epoch <= *last_epoch || start < *last_start {
                return Err(bad(format!(
                    "entry {line:?} after {last_epoch} {last_start}"
                )));
            }
        }
        entries.push((epoch, start));
    }
    if entries.len() != count {
        return Err(bad(format!("{} entries, {count} announced", entries.len())));
    }
    if let Some(extra) = lines.find(|l| !l.trim().is_empty()) {
        return Err(bad(format!("unexpected line {extra:?}")));
    }
    Ok(entries)
}

/// Writes the leader-epoch checkpoint in `dir`, replacing it whole;
/// `synced`, it also survives a power loss (see `crate::durable`).
pub fn write_checkpoint(
    dir: &Path,
    entries: &[(i32, i64)],
    synced: bool,
) -> Result<(), SnapshotError> {
    let path = dir.join(CHECKPOINT);
    let text = encode_checkpoint(entries);
    if synced {
        write_atomically(&path, text.as_bytes()).map_err(io(&path))
    } else {
        replace(&path, text.as_bytes()).map_err(io(&path))
    }
}

/// The entries of the leader-epoch checkpoint in `dir` (`None`: there is
/// none).
pub fn read_checkpoint(dir: &Path) -> Result<Option<Vec<(i32, i64)>>, SnapshotError> {
    let path = dir.join(CHECKPOINT);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_checkpoint(&text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<ProducerEntry> {
        vec![
            ProducerEntry {
                producer_id: 7,
                epoch: 3,
                last_sequence: 41,
                last_offset: 1_000,
                offset_delta: 4,
                timestamp: 1_700_000_000_000,
                coordinator_epoch: -1,
                current_txn_first_offset: -1,
            },
            ProducerEntry {
                producer_id: i64::MAX,
                epoch: i16::MAX,
                last_sequence: -1,
                last_offset: -1,
                offset_delta: 0,
                timestamp: -1,
                coordinator_epoch: 12,
                current_txn_first_offset: 996,
            },
        ]
    }

    #[test]
    fn entries_round_trip() {
        for case in [Vec::new(), entries()] {
            assert_eq!(decode(&encode(&case)).expect("decodes"), case);
        }
    }

    #[test]
    fn the_bytes_are_kafkas() {
        let e = ProducerEntry {
            producer_id: 0x0102_0304_0506_0708,
            epoch: 0x090a,
            last_sequence: 0x0b0c_0d0e,
            last_offset: 0x1011_1213_1415_1617,
            offset_delta: 0x1819_1a1b,
            timestamp: 0x2021_2223_2425_2627,
            coordinator_epoch: 0x2829_2a2b,
            current_txn_first_offset: -1,
        };
        let mut content: Vec<u8> = vec![0, 0, 0, 1];
        content.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        content.extend_from_slice(&[9, 10]);
        content.extend_from_slice(&[11, 12, 13, 14]);
        content.extend_from_slice(&[0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
        content.extend_from_slice(&[0x18, 0x19, 0x1a, 0x1b]);
        content.extend_from_slice(&[0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27]);
        content.extend_from_slice(&[0x28, 0x29, 0x2a, 0x2b]);
        content.extend_from_slice(&[0xff; 8]);
        // CRC-32C of "123456789" is Castagnoli's check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let mut want = vec![0, 1];
        want.extend_from_slice(&crc32c::crc32c(&content).to_be_bytes());
        want.extend_from_slice(&content);
        assert_eq!(encode(&[e]), want);
        assert_eq!(encode(&[]), [0, 1, 0x48, 0x67, 0x4b, 0xc7, 0, 0, 0, 0]);
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_an_error() {
        let bytes = encode(&entries());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode(&longer),
            Err(SnapshotError::TrailingBytes(1))
        ));
        let mut v2 = bytes.clone();
        v2[1] = 2;
        assert!(matches!(decode(&v2), Err(SnapshotError::Version(2))));
        let mut flipped = bytes;
        flipped[20] ^= 1;
        assert!(matches!(decode(&flipped), Err(SnapshotError::Crc { .. })));
        // A count far beyond the bytes allocates nothing.
        let mut huge = encode(&[]);
        huge[6..10].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode(&huge),
            Err(SnapshotError::Truncated { .. })
        ));
        huge[6..10].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(decode(&huge), Err(SnapshotError::Count(-1))));
    }

    #[test]
    fn files_are_named_by_offset_and_only_two_are_kept() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(file_name(42), "00000000000000000042.snapshot");
        // (offset written, the active segment's base, the offsets kept)
        let cases = [
            (5, 5, vec![5]),
            // Rolls: the newest two.
            (20, 20, vec![5, 20]),
            (30, 30, vec![20, 30]),
            // Shutdowns in the segment based at 30: the newest, and 30.
            (34, 30, vec![30, 34]),
            (38, 30, vec![30, 38]),
            // A roll after them.
            (40, 40, vec![38, 40]),
        ];
        for (offset, active_base, kept) in cases {
            write(dir.path(), offset, &entries(), active_base).expect("write");
            assert_eq!(list(dir.path()).expect("list"), kept, "{offset}");
        }
        remove_above(dir.path(), -1).expect("remove all");
        for offset in [5, 100, 30] {
            write(dir.path(), offset, &entries(), 100).expect("write");
        }
        // Whatever the order written, by offset.
        assert_eq!(list(dir.path()).expect("list"), [30, 100]);
        assert_eq!(read(dir.path(), 30).expect("read"), entries());
        assert_eq!(
            newest_valid(dir.path(), 0, 99).map(|(o, _)| o),
            Some(30),
            "100 is past the end"
        );
        assert_eq!(
            newest_valid(dir.path(), 31, 99),
            None,
            "30 is below the start"
        );
        // A damaged newest is passed over, and deleted.
        let newest = dir.path().join(file_name(100));
        std::fs::write(&newest, b"\x00\x01").expect("damage");
        assert_eq!(newest_valid(dir.path(), 0, 100).map(|(o, _)| o), Some(30));
        assert!(!newest.exists());
        remove_above(dir.path(), 29).expect("remove");
        assert_eq!(list(dir.path()).expect("list"), Vec::<i64>::new());
    }

    #[test]
    fn the_checkpoint_round_trips_as_kafkas_text() {
        let entries = [(0, 0), (2, 10), (5, 20)];
        let text = encode_checkpoint(&entries);
        assert_eq!(text, "0\n3\n0 0\n2 10\n5 20\n");
        assert_eq!(decode_checkpoint(&text).expect("decodes"), entries);
        assert_eq!(decode_checkpoint("0\n0\n").expect("empty"), []);
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(read_checkpoint(dir.path()).expect("none"), None);
        // Either way, the file is replaced whole.
        for (synced, n) in [(false, 3), (true, 2), (false, 1)] {
            write_checkpoint(dir.path(), &entries[..n], synced).expect("write");
            assert_eq!(
                read_checkpoint(dir.path()).expect("read"),
                Some(entries[..n].to_vec())
            );
        }
    }

    #[test]
    fn a_malformed_checkpoint_is_an_error() {
        let cases = [
            "",
            "1\n0\n",
            "0\n",
            "0\nx\n",
            "0\n2\n0 0\n",
            "0\n1\n0 0\n1 5\n",
            "0\n1\n0\n",
            "0\n1\n0 0 0\n",
            "0\n1\na 0\n",
            "0\n2\n3 0\n2 10\n",
            "0\n2\n2 10\n3 5\n",
        ];
        for text in cases {
            assert!(
                matches!(decode_checkpoint(text), Err(SnapshotError::Checkpoint(_))),
                "{text:?}"
            );
        }
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(CHECKPOINT), "0\n1\n0 x\n").expect("write");
        assert!(read_checkpoint(dir.path()).is_err());
    }
}
