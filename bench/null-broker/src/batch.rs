//! Record batches as the null broker sees them: by their headers only. A
//! produced batch is counted by the offsets it takes and the last one is
//! kept as its partition's template; a fetch is answered with copies of the
//! template whose base offsets are rewritten. The base offset lies outside
//! the batch's CRC (which covers the attributes onwards), so every copy is
//! a valid batch; nothing is decompressed, checked or stored.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes before a batch's length counts: the base offset and the length.
const LOG_OVERHEAD: usize = 12;
/// Bytes of a v2 (magic 2) record batch header.
const HEADER: usize = 61;
/// Where the batch length (of the bytes after it) is.
const LENGTH_AT: usize = 8;
/// Where the magic byte is.
const MAGIC_AT: usize = 16;
/// Where `lastOffsetDelta` is.
const LAST_OFFSET_DELTA_AT: usize = 23;

/// Why the records of a produced partition are not record batches.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// No records at all.
    #[error("no record batch")]
    Empty,
    /// Fewer bytes than a header or than the batch's length says.
    #[error("record batch truncated: {have} of {need} bytes")]
    Truncated {
        /// Bytes left.
        have: usize,
        /// Bytes the header or the length field asks for.
        need: usize,
    },
    /// Not a v2 batch (Produce v3 and later carry only those).
    #[error("record batch magic {0}, expected 2")]
    Magic(i8),
    /// A batch that takes no offsets, or fewer than none.
    #[error("record batch with last offset delta {0}")]
    OffsetDelta(i32),
}

/// A batch kept to answer fetches with, and the offsets it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    bytes: Bytes,
    /// Offsets one copy takes: `lastOffsetDelta + 1`, which is its record
    /// count for any batch a producer writes.
    offsets: i64,
}

impl Template {
    /// Bytes of one copy.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// What one partition's records in a Produce request come to.
#[derive(Debug, PartialEq, Eq)]
pub struct Produced {
    /// Offsets all its batches take.
    pub offsets: i64,
    /// Its last batch, the partition's next template.
    pub last: Template,
}

/// Reads the headers of the batches in `records` (one partition's data in
/// a Produce request). The template shares `records`' memory.
pub fn read_produced(records: &Bytes) -> Result<Produced, BatchError> {
    let mut at = 0;
    let mut offsets = 0;
    let mut last = None;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < HEADER {
            return Err(BatchError::Truncated {
                have: rest.len(),
                need: HEADER,
            });
        }
        let magic = rest[MAGIC_AT] as i8;
        if magic != 2 {
            return Err(BatchError::Magic(magic));
        }
        // A negative length is as truncated as a short batch.
        let length = i32::from_be_bytes(be(rest, LENGTH_AT));
        let size = usize::try_from(length)
            .map(|l| l + LOG_OVERHEAD)
            .unwrap_or(usize::MAX);
        if size < HEADER || rest.len() < size {
            return Err(BatchError::Truncated {
                have: rest.len(),
                need: size,
            });
        }
        let delta = i32::from_be_bytes(be(rest, LAST_OFFSET_DELTA_AT));
        if delta < 0 {
            return Err(BatchError::OffsetDelta(delta));
        }
        let span = i64::from(delta) + 1;
        offsets += span;
        last = Some(Template {
            bytes: records.slice(at..at + size),
            offsets: span,
        });
        at += size;
    }
    last.map(|last| Produced { offsets, last })
        .ok_or(BatchError::Empty)
}

/// The next fetch answer of a partition whose log ends at `end` and whose
/// last batch is `template`, for a consumer at `from`: copies of the
/// template at `from`, `from + n`, ... (n = its offsets) as long as each
/// ends by `end` and they fit in `room` bytes. When not even one whole
/// copy is left before `end`, the answer is one copy ending exactly at
/// `end`, starting before `from`: consumers skip the records below their
/// position, as they do when Kafka answers with the batch holding it, so a
/// consumer reads exactly `end` records from 0. Empty when `from` is not
/// below `end` or no copy fits in `room` (a caller that must answer at
/// least one batch passes at least the template's size).
pub fn rebased(template: &Template, from: i64, end: i64, room: usize) -> Bytes {
    let size = template.size();
    if from >= end || room < size {
        return Bytes::new();
    }
    let n = template.offsets;
    let (first, copies) = if end - from < n {
        ((end - n).max(0), 1)
    } else {
        let whole = usize::try_from((end - from) / n).unwrap_or(usize::MAX);
        (from, whole.min(room / size))
    };
    let mut out = BytesMut::with_capacity(copies * size);
    let mut base = first;
    for _ in 0..copies {
        let at = out.len();
        out.put_slice(&template.bytes);
        out[at..at + 8].copy_from_slice(&base.to_be_bytes());
        base += n;
    }
    out.freeze()
}

/// The `N` bytes at `at` of a slice at least `at + N` long.
fn be<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A v2 batch header (base offset 0) with `delta` as its last offset
    /// delta, followed by `body` bytes standing for its records.
    pub(crate) fn batch(delta: i32, body: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER + body];
        let length = i32::try_from(HEADER + body - LOG_OVERHEAD).expect("small");
        b[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        b[MAGIC_AT] = 2;
        b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&delta.to_be_bytes());
        b[57..61].copy_from_slice(&(delta + 1).to_be_bytes());
        b
    }

    fn template(delta: i32, body: usize) -> Template {
        read_produced(&Bytes::from(batch(delta, body)))
            .expect("a batch")
            .last
    }

    /// The base offsets of the batches in `bytes`, each `size` long.
    fn bases(bytes: &[u8], size: usize) -> Vec<i64> {
        bytes
            .chunks(size)
            .map(|b| i64::from_be_bytes(be(b, 0)))
            .collect()
    }

    /// What reading produced records should give: the offsets they take
    /// and the size of the last batch.
    type Read = Result<(i64, usize), BatchError>;

    #[test]
    fn produced_records_count_every_batch_and_keep_the_last() {
        let two = [batch(4, 10), batch(2, 3)].concat();
        let cases: &[(&str, Vec<u8>, Read)] = &[
            ("one batch", batch(9, 100), Ok((10, HEADER + 100))),
            ("two batches", two, Ok((8, HEADER + 3))),
            ("nothing", vec![], Err(BatchError::Empty)),
            (
                "short header",
                batch(0, 0)[..HEADER - 1].to_vec(),
                Err(BatchError::Truncated {
                    have: HEADER - 1,
                    need: HEADER,
                }),
            ),
            (
                "short body",
                batch(0, 5)[..HEADER + 2].to_vec(),
                Err(BatchError::Truncated {
                    have: HEADER + 2,
                    need: HEADER + 5,
                }),
            ),
            (
                "old magic",
                {
                    let mut b = batch(0, 0);
                    b[MAGIC_AT] = 1;
                    b
                },
                Err(BatchError::Magic(1)),
            ),
            (
                "negative delta",
                batch(-2, 0),
                Err(BatchError::OffsetDelta(-2)),
            ),
        ];
        for (name, bytes, want) in cases {
            let got =
                read_produced(&Bytes::from(bytes.clone())).map(|p| (p.offsets, p.last.size()));
            assert_eq!(&got, want, "{name}");
        }
    }

    #[test]
    fn copies_follow_on_from_the_position_up_to_the_end_and_the_room() {
        let t = template(9, 39); // 10 offsets, 100 bytes
        let cases: &[(&str, i64, i64, usize, Vec<i64>)] = &[
            ("from the start", 0, 50, 10_000, vec![0, 10, 20, 30, 40]),
            ("room for two", 0, 50, 250, vec![0, 10]),
            ("room for none", 0, 50, 99, vec![]),
            ("mid-log position", 7, 50, 10_000, vec![7, 17, 27, 37]),
            ("last part of a copy left", 47, 50, 10_000, vec![40]),
            ("at the end", 50, 50, 10_000, vec![]),
            ("past the end", 60, 50, 10_000, vec![]),
        ];
        for (name, from, end, room, want) in cases {
            let got = rebased(&t, *from, *end, *room);
            assert_eq!(&bases(&got, t.size()), want, "{name}");
            assert_eq!(got.len(), want.len() * t.size(), "{name}");
        }
    }

    #[test]
    fn a_copy_differs_from_the_template_in_its_base_offset_only() {
        let t = template(2, 20);
        let copy = rebased(&t, 30, 33, 1000);
        assert_eq!(i64::from_be_bytes(be(&copy, 0)), 30);
        assert_eq!(copy[8..], t.bytes[8..]);
    }

    #[test]
    fn a_consumer_reads_exactly_what_was_produced() {
        // Produced in batches of 3 then a last one of 7 (the template).
        let t = template(6, 0);
        let end = 3 * 5 + 7;
        let (mut at, mut read) = (0, 0);
        while at < end {
            let got = rebased(&t, at, end, 2 * t.size());
            for base in bases(&got, t.size()) {
                let kept = (base..base + t.offsets).filter(|o| *o >= at).count() as i64;
                read += kept;
                at = base + t.offsets;
            }
        }
        assert_eq!((read, at), (end, end));
    }
}
