//! The sparse offset and time indexes of a segment, and their files in
//! Kafka's layout: `.index` holds (offset - base: i32, position: i32) pairs,
//! `.timeindex` (max timestamp so far: i64, offset - base: i32), both
//! big-endian. Gregor writes one time entry per offset entry, so the two
//! files line up and together rebuild the in-memory index.

/// One index entry: a batch's base offset, where it starts in the segment,
/// and the largest timestamp in this batch and every one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base offset of the batch.
    pub offset: i64,
    /// Byte position of the batch in the segment file.
    pub position: u64,
    /// Largest record timestamp up to and including this batch.
    pub max_timestamp_so_far: i64,
}

const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

/// Suffix of the offset index file.
pub const OFFSET_SUFFIX: &str = "index";
/// Suffix of the time index file.
pub const TIME_SUFFIX: &str = "timeindex";

/// The two files' contents, or `None` when an entry does not fit Kafka's
/// 32-bit fields (the index is then rebuilt from the log on open).
pub fn encode(base_offset: i64, entries: &[IndexEntry]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut offsets = Vec::with_capacity(entries.len() * OFFSET_ENTRY);
    let mut times = Vec::with_capacity(entries.len() * TIME_ENTRY);
    for e in entries {
        let relative = i32::try_from(e.offset - base_offset).ok()?;
        let position = i32::try_from(e.position).ok()?;
        offsets.extend_from_slice(&relative.to_be_bytes());
        offsets.extend_from_slice(&position.to_be_bytes());
        times.extend_from_slice(&e.max_timestamp_so_far.to_be_bytes());
        times.extend_from_slice(&relative.to_be_bytes());
    }
    Some((offsets, times))
}

/// Entries read back from the two files, or `None` when they are damaged,
/// disagree with each other or point past `segment_size`.
pub fn decode(
    base_offset: i64,
    offsets: &[u8],
    times: &[u8],
    segment_size: u64,
) -> Option<Vec<IndexEntry>> {
    if offsets.len() % OFFSET_ENTRY != 0
        || times.len() % TIME_ENTRY != 0
        || offsets.len() / OFFSET_ENTRY != times.len() / TIME_ENTRY
    {
        return None;
    }
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(offsets.len() / OFFSET_ENTRY);
    for (o, t) in offsets
        .chunks_exact(OFFSET_ENTRY)
        .zip(times.chunks_exact(TIME_ENTRY))
    {
        let relative = i32::from_be_bytes([o[0], o[1], o[2], o[3]]);
        let position = i32::from_be_bytes([o[4], o[5], o[6], o[7]]);
        let timestamp = i64::from_be_bytes([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]]);
        let time_relative = i32::from_be_bytes([t[8], t[9], t[10], t[11]]);
        if relative < 0
            || position < 0
            || time_relative != relative
            || position as u64 >= segment_size
        {
            return None;
        }
        let entry = IndexEntry {
            offset: base_offset + relative as i64,
            position: position as u64,
            max_timestamp_so_far: timestamp,
        };
        if let Some(prev) = entries.last() {
            let ordered = entry.offset > prev.offset
                && entry.position > prev.position
                && entry.max_timestamp_so_far >= prev.max_timestamp_so_far;
            if !ordered {
                return None;
            }
        }
        entries.push(entry);
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset: i64, position: u64, ts: i64) -> IndexEntry {
        IndexEntry {
            offset,
            position,
            max_timestamp_so_far: ts,
        }
    }

    #[test]
    fn entries_round_trip_through_kafkas_layout() {
        let entries = vec![e(100, 0, 5), e(110, 4096, 9), e(125, 9000, 9)];
        let (offsets, times) = encode(100, &entries).expect("fits");
        assert_eq!(offsets.len(), 24);
        assert_eq!(times.len(), 36);
        assert_eq!(&offsets[8..16], &[0, 0, 0, 10, 0, 0, 16, 0]);
        assert_eq!(decode(100, &offsets, &times, 10_000), Some(entries));
    }

    #[test]
    fn damaged_or_inconsistent_files_are_refused() {
        let entries = vec![e(0, 0, 1), e(5, 100, 2)];
        let (offsets, times) = encode(0, &entries).expect("fits");
        let cases: Vec<(&str, Vec<u8>, Vec<u8>, u64)> = vec![
            (
                "torn offset file",
                offsets[..12].to_vec(),
                times.clone(),
                1000,
            ),
            (
                "one file shorter",
                offsets[..8].to_vec(),
                times.clone(),
                1000,
            ),
            (
                "points past the segment",
                offsets.clone(),
                times.clone(),
                100,
            ),
            (
                "time entry for another offset",
                offsets.clone(),
                {
                    let mut t = times.clone();
                    t[23] = 9;
                    t
                },
                1000,
            ),
            (
                "positions out of order",
                {
                    let mut o = offsets.clone();
                    o[15] = 0;
                    o[14] = 0;
                    o
                },
                times.clone(),
                1000,
            ),
        ];
        for (name, o, t, size) in cases {
            assert_eq!(decode(0, &o, &t, size), None, "{name}");
        }
        assert_eq!(decode(0, &[], &[], 0), Some(vec![]));
    }

    #[test]
    fn offsets_beyond_32_bits_are_not_written() {
        assert!(encode(0, &[e(1 << 40, 0, 0)]).is_none());
        assert!(encode(0, &[e(1, 1 << 33, 0)]).is_none());
    }
}
