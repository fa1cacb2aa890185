//! The aborted transaction index of a segment, Kafka's `.txnindex` file:
//! one 34-byte big-endian entry per transaction aborted by a marker stored
//! in the segment, in marker order: `version i16 (0), producer_id i64,
//! first_offset i64, last_offset i64 (the marker), last_stable_offset
//! i64` (the partition's LSO once the marker was written). A
//! read_committed consumer is sent the entries overlapping what it
//! fetched, to drop those transactions' records.

use std::io::Write;
use std::path::Path;

use super::LogError;

/// Suffix of the aborted transaction index file.
pub const SUFFIX: &str = "txnindex";
/// Bytes of one entry.
pub const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;

/// A transaction aborted on this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Its producer.
    pub producer_id: i64,
    /// Offset of its first record here.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the marker was written: the
    /// first offset of the next transaction still open, else the marker's
    /// next offset. A search for entries stops at one reaching its bound.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(a)
        };
        (i16::from_be_bytes([b[0], b[1]]) == VERSION).then(|| AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }

    /// Whether a read of `fetch_offset..upper` may hold records of it.
    pub fn overlaps(&self, fetch_offset: i64, upper: i64) -> bool {
        self.last_offset >= fetch_offset && self.first_offset < upper
    }
}

/// Decodes a whole file; `None` when it is damaged (a torn entry or an
/// unknown version): it is rebuilt from the log.
pub fn decode(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
    if bytes.len() % ENTRY_LEN != 0 {
        return None;
    }
    bytes
        .chunks_exact(ENTRY_LEN)
        .map(AbortedTxn::decode)
        .collect()
}

/// A file's bytes.
pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.encode()).collect()
}

/// Reads the index beside the segment file `log_path`; `None` when it is
/// absent or damaged.
pub fn read(log_path: &Path) -> Option<Vec<AbortedTxn>> {
    decode(&std::fs::read(log_path.with_extension(SUFFIX)).ok()?)
}

/// Writes the whole index beside `log_path` (through a temporary file, so
/// a crash leaves the old one or the new one). A sealed segment without
/// aborted transactions gets an empty file: a missing one means the index
/// must be rebuilt.
pub fn write(log_path: &Path, entries: &[AbortedTxn]) -> Result<(), LogError> {
    let path = log_path.with_extension(SUFFIX);
    let tmp = log_path.with_extension(format!("{SUFFIX}.tmp"));
    std::fs::write(&tmp, encode(entries)).map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))
}

/// Appends one entry to the index beside `log_path`.
pub fn append(log_path: &Path, entry: &AbortedTxn) -> Result<(), LogError> {
    let path = log_path.with_extension(SUFFIX);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&entry.encode()))
        .map_err(|e| LogError::io(&path, e))
}

/// Removes the index beside `log_path`, if there is one.
pub fn remove(log_path: &Path) -> Result<(), LogError> {
    let path = log_path.with_extension(SUFFIX);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(&path, e)),
        _ => Ok(()),
    }
}

/// Adds to `out` the entries of one segment's index overlapping
/// `fetch_offset..upper`; returns `true` when the search is complete (an
/// entry's last stable offset reaches `upper`: no later segment can hold an
/// aborted transaction that began before it), as Kafka's
/// `TransactionIndex.collectAbortedTxns`.
pub fn collect(
    entries: &[AbortedTxn],
    fetch_offset: i64,
    upper: i64,
    out: &mut Vec<AbortedTxn>,
) -> bool {
    for e in entries {
        if e.overlaps(fetch_offset, upper) {
            out.push(*e);
        }
        if e.last_stable_offset >= upper {
            return true;
        }
    }
    false
}

/// Which stored batches belong to aborted transactions, from the entries
/// of the aborted transaction index: a transactional data batch of a
/// producer between its aborted transaction's first offset and its ABORT
/// marker. What the log cleaner removes, and leaves out of its key map, as
/// Kafka's cleaner does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortedBatches {
    /// Per producer, its aborted transactions' (first offset, marker).
    ranges: std::collections::HashMap<i64, Vec<(i64, i64)>>,
}

impl AbortedBatches {
    /// The lookup over `entries`.
    pub fn new(entries: &[AbortedTxn]) -> AbortedBatches {
        let mut ranges: std::collections::HashMap<i64, Vec<(i64, i64)>> = Default::default();
        for e in entries {
            ranges
                .entry(e.producer_id)
                .or_default()
                .push((e.first_offset, e.last_offset));
        }
        AbortedBatches { ranges }
    }

    /// Whether the batch of `h` holds records of an aborted transaction.
    pub fn contains(&self, h: &super::batch::BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.ranges.get(&h.producer_id).is_some_and(|r| {
                r.iter()
                    .any(|(first, marker)| *first <= h.base_offset && h.base_offset < *marker)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entries_are_kafkas_34_bytes() {
        let e = txn(0x0102030405060708, 10, 20, 21);
        let b = e.encode();
        assert_eq!(&b[..10], &[0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[10..18], &10i64.to_be_bytes());
        assert_eq!(&b[26..], &21i64.to_be_bytes());
        let file = encode(&[e, txn(9, 30, 31, 32)]);
        assert_eq!(file.len(), 68);
        assert_eq!(decode(&file), Some(vec![e, txn(9, 30, 31, 32)]));
        assert_eq!(decode(&file[..67]), None);
        let mut unknown = file.clone();
        unknown[1] = 1;
        assert_eq!(decode(&unknown), None);
    }

    #[test]
    fn collection_table() {
        // Producer 2's transaction was open at 3 when producer 1's ended.
        let entries = [txn(1, 0, 5, 3), txn(2, 3, 12, 13), txn(3, 20, 25, 26)];
        let cases = [
            // (fetch offset, upper bound) -> (producers, complete)
            ((0, 4), (vec![1, 2], true)),
            ((6, 10), (vec![2], true)),
            ((13, 20), (vec![], true)),
            ((13, 21), (vec![3], true)),
            ((0, 100), (vec![1, 2, 3], false)),
            ((26, 30), (vec![], false)),
        ];
        for ((from, upper), (want, complete)) in cases {
            let mut out = Vec::new();
            let done = collect(&entries, from, upper, &mut out);
            let pids: Vec<i64> = out.iter().map(|e| e.producer_id).collect();
            assert_eq!((pids, done), (want, complete), "{from}..{upper}");
        }
    }

    #[test]
    fn files_are_written_appended_and_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("00000000000000000000.log");
        assert_eq!(read(&log), None);
        append(&log, &txn(1, 0, 1, 2)).expect("append");
        append(&log, &txn(2, 3, 4, 5)).expect("append");
        assert_eq!(read(&log), Some(vec![txn(1, 0, 1, 2), txn(2, 3, 4, 5)]));
        write(&log, &[txn(1, 0, 1, 2)]).expect("write");
        assert_eq!(read(&log), Some(vec![txn(1, 0, 1, 2)]));
        write(&log, &[]).expect("empty");
        assert_eq!(read(&log), Some(vec![]));
        remove(&log).expect("remove");
        assert_eq!(read(&log), None);
        remove(&log).expect("nothing to remove");
    }

    #[test]
    fn aborted_batches_are_the_transactional_data_of_aborted_ranges() {
        use crate::log::batch::{BatchHeader, CONTROL, TRANSACTIONAL};
        let header = |pid: i64, base: i64, attributes: i16| BatchHeader {
            position: 0,
            size: 61,
            base_offset: base,
            last_offset: base,
            leader_epoch: 0,
            attributes,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: 1,
        };
        let aborted = AbortedBatches::new(&[txn(1, 10, 20, 21), txn(2, 15, 16, 17)]);
        let cases = [
            // (producer, offset, attributes, aborted)
            (1, 10, TRANSACTIONAL, true),
            (1, 19, TRANSACTIONAL, true),
            (1, 9, TRANSACTIONAL, false),
            // The marker itself, and a later transaction, are not.
            (1, 20, TRANSACTIONAL | CONTROL, false),
            (1, 21, TRANSACTIONAL, false),
            // Another producer's, or a batch outside transactions.
            (3, 12, TRANSACTIONAL, false),
            (1, 12, 0, false),
            (2, 15, TRANSACTIONAL, true),
        ];
        for (pid, offset, attributes, want) in cases {
            assert_eq!(
                aborted.contains(&header(pid, offset, attributes)),
                want,
                "{pid} {offset} {attributes:#x}"
            );
        }
    }
}
