//! A view over Kafka v2 record batches as they lie in a byte buffer.
//!
//! Layout of the 61-byte header: baseOffset i64, batchLength i32,
//! partitionLeaderEpoch i32, magic i8, crc u32, attributes i16,
//! lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64, producerId i64,
//! producerEpoch i16, baseSequence i32, recordCount i32. The CRC-32C covers
//! everything from `attributes` on, so the broker may rewrite the base
//! offset and leader epoch without touching the client's checksum.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};

/// Size of the fixed batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

/// Why bytes are not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length.
    #[error("truncated record batch at byte {position}: {reason}")]
    Truncated {
        /// Byte position of the batch in the buffer.
        position: usize,
        /// What is missing.
        reason: &'static str,
    },
    /// A message format older than v2.
    #[error("record batch at byte {position} has magic {magic}; only v2 (magic 2) is supported")]
    UnsupportedMagic {
        /// Byte position.
        position: usize,
        /// The magic byte found.
        magic: i8,
    },
    /// The checksum does not match the contents.
    #[error("record batch at byte {position} fails its CRC check (stored {stored:#010x}, computed {computed:#010x})")]
    Crc {
        /// Byte position.
        position: usize,
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Header fields that contradict each other.
    #[error("record batch at byte {position} is inconsistent: {reason}")]
    Invalid {
        /// Byte position.
        position: usize,
        /// Which fields.
        reason: &'static str,
    },
    /// The records inside do not decode or disagree with the header.
    #[error("records of the batch at byte {position} are invalid: {reason}")]
    Records {
        /// Byte position.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A compressed batch holds a record larger, once decompressed, than
    /// `max.decompressed.message.bytes` allows.
    #[error("the batch at byte {position} holds a record of {size} bytes once decompressed; max.decompressed.message.bytes is {max}")]
    DecompressedTooLarge {
        /// Byte position.
        position: usize,
        /// The record's size as its length prefix gives it.
        size: i64,
        /// The limit.
        max: u32,
    },
}

/// The header fields of one batch, and where it lies in its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Byte position of the batch in the buffer it was parsed from.
    pub position: usize,
    /// Total size including the 12-byte log overhead.
    pub size: usize,
    /// First offset.
    pub base_offset: i64,
    /// Last offset (base + lastOffsetDelta).
    pub last_offset: i64,
    /// Leader epoch the batch was written in.
    pub leader_epoch: i32,
    /// Attribute bits (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

/// Attribute bit of a transactional batch.
pub const TRANSACTIONAL: i16 = 0x10;
/// Attribute bit of a control batch (transaction markers).
pub const CONTROL: i16 = 0x20;

impl BatchHeader {
    /// Number of offsets the batch spans.
    pub fn offset_count(&self) -> i64 {
        self.last_offset - self.base_offset + 1
    }

    /// Whether the batch belongs to a transaction (its records, or the
    /// marker ending it).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL != 0
    }

    /// Whether the batch is a control batch (a transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL != 0
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Parses the header of the batch starting at `position` without checking
/// its CRC; the declared length must fit in `buf`.
pub fn parse_header(buf: &[u8], position: usize) -> Result<BatchHeader, BatchError> {
    let h = parse_prefix(&buf[position..], position)?;
    if buf.len() - position < h.size {
        return Err(BatchError::Truncated {
            position,
            reason: "shorter than its declared length",
        });
    }
    Ok(h)
}

/// Parses a batch header from `b`, which needs to hold only the header
/// (not the records); `position` is recorded in the result.
pub fn parse_prefix(b: &[u8], position: usize) -> Result<BatchHeader, BatchError> {
    if b.len() < HEADER_LEN {
        return Err(BatchError::Truncated {
            position,
            reason: "shorter than a batch header",
        });
    }
    let magic = b[16] as i8;
    if magic != 2 {
        return Err(BatchError::UnsupportedMagic { position, magic });
    }
    let length = i32_at(b, 8);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Invalid {
            position,
            reason: "batch length is smaller than its header",
        });
    }
    let size = LOG_OVERHEAD + length as usize;
    let base_offset = i64_at(b, 0);
    let last_delta = i32_at(b, 23);
    let record_count = i32_at(b, 57);
    if last_delta < 0 || record_count < 0 {
        return Err(BatchError::Invalid {
            position,
            reason: "negative lastOffsetDelta or record count",
        });
    }
    let Some(last_offset) = base_offset.checked_add(last_delta as i64) else {
        return Err(BatchError::Invalid {
            position,
            reason: "baseOffset + lastOffsetDelta overflows",
        });
    };
    Ok(BatchHeader {
        position,
        size,
        base_offset,
        last_offset,
        leader_epoch: i32_at(b, 12),
        attributes: i16_at(b, 21),
        base_timestamp: i64_at(b, 27),
        max_timestamp: i64_at(b, 35),
        producer_id: i64_at(b, 43),
        producer_epoch: i16_at(b, 51),
        base_sequence: i32_at(b, 53),
        record_count,
    })
}

/// Decodes every record of one batch (`batch`: its bytes alone, `h` its
/// header; the records are slices of them) and checks that
/// they agree with its header, as Kafka does before accepting a batch: a
/// batch that passes its CRC but holds unreadable records would otherwise
/// be stored and break every consumer that reads it. A record larger than
/// `max_record_bytes` once decompressed is refused (see [`decode`]).
/// Returns whether any record has a null key, which a compacted topic
/// refuses.
pub fn validate_records(
    batch: Bytes,
    h: &BatchHeader,
    max_record_bytes: u32,
) -> Result<bool, BatchError> {
    let fail = |reason: String| BatchError::Records {
        position: h.position,
        reason,
    };
    let set = decode(batch, h.position, max_record_bytes)?;
    if set.records.len() != h.record_count as usize {
        return Err(fail(format!(
            "{} records where the header counts {}",
            set.records.len(),
            h.record_count
        )));
    }
    let consecutive = set
        .records
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == h.base_offset + i as i64);
    if !consecutive {
        return Err(fail("offset deltas are not 0, 1, 2, ...".into()));
    }
    Ok(set.records.iter().any(|r| r.key.is_none()))
}

/// Decodes the records of the one batch in `batch` (found at `position` of
/// its buffer), decompressing them. As in Kafka, a record of a compressed
/// batch whose length, once decompressed, exceeds `max_record_bytes`
/// (`max.decompressed.message.bytes`) fails the batch; records sent
/// uncompressed are bounded by the batch's own size limit instead.
pub fn decode(
    mut batch: Bytes,
    position: usize,
    max_record_bytes: u32,
) -> Result<RecordSet, BatchError> {
    let inflate = |raw: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        let records = match compression {
            Compression::None => return Ok(raw.clone()),
            Compression::Gzip => Gzip::decompress(raw, take)?,
            Compression::Snappy => Snappy::decompress(raw, take)?,
            Compression::Lz4 => Lz4::decompress(raw, take)?,
            Compression::Zstd => Zstd::decompress(raw, take)?,
        };
        match oversized_record(&records, max_record_bytes) {
            Some(size) => Err(BatchError::DecompressedTooLarge {
                position,
                size,
                max: max_record_bytes,
            }
            .into()),
            None => Ok(records),
        }
    };
    RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(inflate)).map_err(|e| {
        e.downcast::<BatchError>()
            .unwrap_or_else(|e| BatchError::Records {
                position,
                reason: format!("{e:#}"),
            })
    })
}

fn take(decompressed: &mut Bytes) -> anyhow::Result<Bytes> {
    Ok(std::mem::take(decompressed))
}

/// The size of the first record of decompressed `records` larger than
/// `max`, as each record's length prefix gives it (what Kafka checks before
/// reading a record). Stops quietly at bytes that do not frame records: the
/// decoder reports those.
fn oversized_record(mut records: &[u8], max: u32) -> Option<i64> {
    while !records.is_empty() {
        let (size, prefix) = read_varint(records)?;
        if size > i64::from(max) {
            return Some(size);
        }
        records = records.get(prefix + usize::try_from(size).ok()?..)?;
    }
    None
}

/// Reads a zigzag varint of at most 32 bits (Kafka's record length): the
/// value and the bytes it took.
fn read_varint(b: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in b.iter().take(5).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

/// Checks the CRC of a parsed batch.
pub fn check_crc(buf: &[u8], h: &BatchHeader) -> Result<(), BatchError> {
    let b = &buf[h.position..h.position + h.size];
    let stored = i32_at(b, 17) as u32;
    let computed = crc32c::crc32c(&b[CRC_START..]);
    if stored != computed {
        return Err(BatchError::Crc {
            position: h.position,
            stored,
            computed,
        });
    }
    Ok(())
}

/// Parses and fully validates every batch in `buf`, which must hold whole
/// batches and nothing else. A produced batch must hold at least one record
/// and span exactly as many offsets as it has records.
pub fn validate_all(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let h = parse_header(buf, pos)?;
        check_crc(buf, &h)?;
        if h.record_count == 0 || h.offset_count() != h.record_count as i64 {
            return Err(BatchError::Invalid {
                position: pos,
                reason: "record count does not match lastOffsetDelta",
            });
        }
        pos += h.size;
        out.push(h);
    }
    Ok(out)
}

/// Parses and checks (CRC, offsets) every batch in `buf` as a log stores
/// them: a compacted batch may hold fewer records than offsets it spans,
/// even none (its producer's last, kept for its sequence), and batches
/// may leave offsets out between them but never go back. What a follower
/// copies from its leader, and what a log replays when it opens.
pub fn validate_stored(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out: Vec<BatchHeader> = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let h = parse_header(buf, pos)?;
        check_crc(buf, &h)?;
        if h.record_count as i64 > h.offset_count() {
            return Err(BatchError::Invalid {
                position: pos,
                reason: "more records than lastOffsetDelta allows",
            });
        }
        if out
            .last()
            .is_some_and(|prev| h.base_offset <= prev.last_offset)
        {
            return Err(BatchError::Invalid {
                position: pos,
                reason: "offsets go back from the batch before",
            });
        }
        pos += h.size;
        out.push(h);
    }
    Ok(out)
}

/// Headers of the whole batches at the front of `buf`, stopping at the
/// first incomplete or invalid one; returns them and the byte count they
/// cover. Used by recovery and by scans of stored data.
pub fn scan_valid(buf: &[u8]) -> (Vec<BatchHeader>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let Ok(h) = parse_header(buf, pos) else { break };
        if check_crc(buf, &h).is_err() {
            break;
        }
        pos += h.size;
        out.push(h);
    }
    (out, pos)
}

/// Bytes at the start of a batch that hold its base offset, length and
/// leader epoch: outside its CRC, so the log sets them without touching
/// the rest.
pub const ASSIGNED_PREFIX: usize = 16;

/// A batch's first [`ASSIGNED_PREFIX`] bytes as stored: the given base
/// offset and leader epoch around the batch's own length.
pub fn assigned_prefix(
    buf: &[u8],
    h: &BatchHeader,
    base_offset: i64,
    leader_epoch: i32,
) -> [u8; ASSIGNED_PREFIX] {
    let mut prefix = [0; ASSIGNED_PREFIX];
    prefix[0..8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[8..12].copy_from_slice(&buf[h.position + 8..h.position + 12]);
    prefix[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    prefix
}

/// Sets a batch's base offset and leader epoch in place (tests build
/// stored batches this way).
#[cfg(test)]
pub fn assign(buf: &mut [u8], h: &BatchHeader, base_offset: i64, leader_epoch: i32) {
    let prefix = assigned_prefix(buf, h, base_offset, leader_epoch);
    buf[h.position..h.position + ASSIGNED_PREFIX].copy_from_slice(&prefix);
}

/// The timestamp-type bit of a batch's attributes: set, every record's
/// timestamp is the batch's max timestamp, the time the leader appended it.
pub const LOG_APPEND_TIME: i16 = 0x08;

/// Marks a batch as stamped with the log append time `now`: sets the
/// timestamp-type attribute and the max timestamp, and recomputes the CRC
/// they are under. The records themselves are left as the producer wrote
/// them (consumers read the batch's time instead of theirs).
pub fn stamp_log_append_time(buf: &mut [u8], h: &mut BatchHeader, now: i64) {
    let b = &mut buf[h.position..h.position + h.size];
    let attributes = h.attributes | LOG_APPEND_TIME;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[35..43].copy_from_slice(&now.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    h.attributes = attributes;
    h.max_timestamp = now;
}

/// Encodes `(key, value, timestamp)` records as one batch the way a plain
/// (non-idempotent) producer sends it, offsets counted from 0; the log
/// assigns the real ones on append.
pub fn encode(
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>, i64)>,
    compression: Compression,
) -> Result<BytesMut, BatchError> {
    gregor_client::batch::encode(records, compression).map_err(|e| BatchError::Records {
        position: 0,
        reason: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The bytes of the batch `h` heads in `buf`.
    fn one_batch(buf: &[u8], h: &BatchHeader) -> Bytes {
        Bytes::copy_from_slice(&buf[h.position..h.position + h.size])
    }

    /// A client-like batch of keyed values (keys `k0`, `k1`, ...).
    pub fn encode(values: &[&str], timestamps: &[i64], compression: Compression) -> BytesMut {
        let records = values
            .iter()
            .zip(timestamps)
            .enumerate()
            .map(|(i, (v, ts))| {
                (
                    Some(Bytes::from(format!("k{i}"))),
                    Some(Bytes::from(v.to_string())),
                    *ts,
                )
            });
        super::encode(records, compression).expect("encode")
    }

    #[test]
    fn log_append_time_is_stamped_under_a_valid_crc() {
        for compression in [Compression::None, Compression::Lz4] {
            let mut buf = encode(&["a", "b"], &[10, 30], compression);
            let mut h = validate_all(&buf).expect("valid")[0];
            stamp_log_append_time(&mut buf, &mut h, 1_800_000_000_000);
            let again = validate_all(&buf).expect("still valid")[0];
            assert_eq!(again, h);
            assert_eq!(again.max_timestamp, 1_800_000_000_000);
            assert_eq!(again.attributes & LOG_APPEND_TIME, LOG_APPEND_TIME);
            // Compression and the records are untouched.
            assert_eq!(again.attributes & 0x07, h.attributes & 0x07);
            validate_records(one_batch(&buf, &again), &again, u32::MAX).expect("records intact");
        }
    }

    #[test]
    fn parses_and_validates_a_client_batch() {
        let buf = encode(&["a", "b", "c"], &[10, 30, 20], Compression::None);
        let hs = validate_all(&buf).expect("valid");
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].record_count, 3);
        assert_eq!(hs[0].last_offset, 2);
        assert_eq!(hs[0].max_timestamp, 30);
        assert_eq!(hs[0].size, buf.len());
    }

    #[test]
    fn rewriting_offset_and_epoch_keeps_the_crc_valid() {
        let mut buf = encode(&["a"], &[1], Compression::Gzip);
        let h = validate_all(&buf).expect("valid")[0];
        assign(&mut buf, &h, 1000, 7);
        let h2 = validate_all(&buf).expect("still valid")[0];
        assert_eq!(h2.base_offset, 1000);
        assert_eq!(h2.leader_epoch, 7);
    }

    #[test]
    fn damage_is_detected() {
        let good = encode(&["a", "b"], &[1, 2], Compression::None);
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(
            validate_all(&flipped),
            Err(BatchError::Crc { .. })
        ));
        assert!(matches!(
            validate_all(&good[..good.len() - 3]),
            Err(BatchError::Truncated { .. })
        ));
        let mut old = good.clone();
        old[16] = 1;
        assert!(matches!(
            validate_all(&old),
            Err(BatchError::UnsupportedMagic { .. })
        ));
        for h in validate_all(&good).expect("valid") {
            validate_records(one_batch(&good, &h), &h, u32::MAX).expect("records decode");
        }
        let gzip = encode(&["a", "b", "c"], &[1, 2, 3], Compression::Gzip);
        let h = validate_all(&gzip).expect("valid")[0];
        validate_records(one_batch(&gzip, &h), &h, u32::MAX).expect("gzip records decode");
        let mut miscounted = good.clone();
        miscounted[60] = 3; // record count 3, lastOffsetDelta still 1
        let h = parse_header(&miscounted, 0).expect("header parses");
        assert!(matches!(
            validate_records(one_batch(&miscounted, &h), &h, u32::MAX),
            Err(BatchError::Records { .. })
        ));
        let mut two = good.clone();
        two.extend_from_slice(&good[..10]);
        let (hs, len) = scan_valid(&two);
        assert_eq!((hs.len(), len), (1, good.len()));
    }

    #[test]
    fn varints_read_as_kafka_writes_them() {
        let cases = [
            (vec![0x00], Some((0, 1))),
            (vec![0x01], Some((-1, 1))),
            (vec![0x02], Some((1, 1))),
            (vec![0xac, 0x02], Some((150, 2))),
            (vec![0xfe, 0xff, 0xff, 0xff, 0x0f], Some((2_147_483_647, 5))),
            (vec![0x80], None),
            (vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01], None),
        ];
        for (bytes, want) in cases {
            assert_eq!(read_varint(&bytes), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn decompressed_records_are_bounded_like_kafkas() {
        let value = "v".repeat(1000);
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let buf = encode(&["small", &value], &[1, 2], compression);
            let h = validate_all(&buf).expect("valid")[0];
            // The big record: 1000 value bytes, a key, a few header bytes.
            let big = [1000, 1020];
            validate_records(one_batch(&buf, &h), &h, 1020).expect("within the limit");
            let outcome = validate_records(one_batch(&buf, &h), &h, 1000);
            if compression == Compression::None {
                // Kafka bounds only what it decompresses.
                outcome.expect("uncompressed batches are not checked");
                continue;
            }
            match outcome {
                Err(BatchError::DecompressedTooLarge {
                    size, max: 1000, ..
                }) => {
                    assert!(big[0] < size && size <= big[1], "{compression:?}: {size}")
                }
                other => panic!("{compression:?}: {other:?}"),
            }
        }
    }
}
