//! What compaction does to one stored batch, as Kafka's cleaner does it:
//! a record survives when it is its key's latest and, if a tombstone, its
//! delete horizon has not passed; records without a key go. A batch left
//! whole is copied as it is; one that lost records is written again with
//! the same base offset, last offset delta, producer id, epoch and base
//! sequence, leader epoch and compression, so offsets and idempotence are
//! untouched. A batch that lost every record disappears, unless it is its
//! producer's last, whose header stays (empty) so the producer's sequence
//! survives a restart, until a newer batch of the producer takes over.
//!
//! Tombstones get a delete horizon (KIP-534) the first time they are
//! cleaned: the batch's base timestamp becomes `now + delete.retention.ms`,
//! flagged in its attributes, with the records' timestamp deltas moved so
//! their timestamps read the same; a cleaning after the horizon drops them.
//! A transaction marker stays while any batch of its transaction is left
//! before it (a read_committed consumer needs an abort marker to know
//! where the aborted records end); after that it gets a delete horizon
//! the same way and goes in a cleaning after it, as in Kafka
//! ([`MarkerTracker`], [`filter_marker`]). Pure: bytes in, bytes out.

use std::collections::HashSet;

use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;

use super::batch::{BatchError, BatchHeader, HEADER_LEN, LOG_APPEND_TIME, LOG_OVERHEAD};
use super::records::{self, RawRecord};

pub use super::batch::CONTROL;
/// Attribute bit of a batch whose base timestamp is its delete horizon.
pub const DELETE_HORIZON: i16 = 0x40;
const COMPRESSION_MASK: i16 = 0x07;

/// What cleaning did to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Unchanged: copy the stored bytes.
    Keep,
    /// Written again with fewer records, or with a delete horizon.
    Rewrite(Vec<u8>),
    /// Nothing of it remains.
    Drop,
}

/// A cleaned batch and what it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// What to write.
    pub outcome: Outcome,
    /// Records removed.
    pub removed: usize,
    /// The horizon of the tombstones it still holds, if any: a cleaning
    /// after it has something to remove.
    pub delete_horizon: Option<i64>,
}

/// The clock and tombstone setting of one cleaning.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Now, in milliseconds.
    pub now_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
}

/// The compression codec of a batch's attributes.
pub fn compression_of(h: &BatchHeader) -> Result<Compression, BatchError> {
    Ok(match h.attributes & COMPRESSION_MASK {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => {
            return Err(BatchError::Invalid {
                position: h.position,
                reason: "unknown compression codec",
            })
        }
    })
}

fn take(b: &mut bytes::Bytes) -> anyhow::Result<bytes::Bytes> {
    Ok(std::mem::take(b))
}

/// The records section of a batch, decompressed (borrowed as it is when
/// the batch is not compressed).
pub fn inflate(section: &[u8], c: Compression) -> anyhow::Result<std::borrow::Cow<'_, [u8]>> {
    let raw = || bytes::Bytes::copy_from_slice(section);
    let inflated = match c {
        Compression::None => return Ok(std::borrow::Cow::Borrowed(section)),
        Compression::Gzip => Gzip::decompress(&mut raw(), take)?,
        Compression::Snappy => Snappy::decompress(&mut raw(), take)?,
        Compression::Lz4 => Lz4::decompress(&mut raw(), take)?,
        Compression::Zstd => Zstd::decompress(&mut raw(), take)?,
    };
    Ok(std::borrow::Cow::Owned(Vec::from(inflated)))
}

/// The codec of a stored batch (`batch` holds exactly it) and its records
/// section, decompressed.
fn records_section<'a>(
    batch: &'a [u8],
    h: &BatchHeader,
) -> Result<(Compression, std::borrow::Cow<'a, [u8]>), BatchError> {
    let codec = compression_of(h)?;
    let section = inflate(&batch[HEADER_LEN..], codec).map_err(|e| BatchError::Records {
        position: h.position,
        reason: format!("{e:#}"),
    })?;
    Ok((codec, section))
}

/// `records` compressed with `c`.
fn deflate(records: &[u8], c: Compression) -> anyhow::Result<Vec<u8>> {
    let write = |b: &mut BytesMut| {
        b.extend_from_slice(records);
        Ok(())
    };
    let mut out = BytesMut::new();
    match c {
        Compression::None => return Ok(records.to_vec()),
        Compression::Gzip => Gzip::compress(&mut out, write)?,
        Compression::Snappy => Snappy::compress(&mut out, write)?,
        Compression::Lz4 => Lz4::compress(&mut out, write)?,
        Compression::Zstd => Zstd::compress(&mut out, write)?,
    }
    Ok(out.to_vec())
}

/// Cleans one batch (`batch` holds exactly it, `h` its header).
/// `is_latest(key, offset)` says whether that record is its key's latest;
/// `producer_last` keeps the header of a batch that loses every record.
pub fn filter_batch(
    batch: &[u8],
    h: &BatchHeader,
    is_latest: impl Fn(&[u8], i64) -> bool,
    producer_last: bool,
    rules: Rules,
) -> Result<Filtered, BatchError> {
    let keep = Filtered {
        outcome: Outcome::Keep,
        removed: 0,
        delete_horizon: None,
    };
    if h.attributes & CONTROL != 0 {
        return Ok(keep);
    }
    // A header kept empty for its producer goes once a newer batch of the
    // producer took over, as Kafka drops empty batches.
    if h.record_count == 0 && !producer_last {
        return Ok(Filtered {
            outcome: Outcome::Drop,
            ..keep
        });
    }
    let fail = |reason: String| BatchError::Records {
        position: h.position,
        reason,
    };
    let (codec, section) = records_section(batch, h)?;
    let all = records::parse(&section).map_err(|e| fail(e.to_string()))?;
    let horizon = (h.attributes & DELETE_HORIZON != 0).then_some(h.base_timestamp);
    let drop_tombstones = horizon.is_some_and(|at| rules.now_ms >= at);
    let kept: Vec<&RawRecord<'_>> = all
        .iter()
        .filter(|r| match r.key {
            Some(key) => {
                is_latest(key, h.base_offset + i64::from(r.offset_delta))
                    && (r.value.is_some() || !drop_tombstones)
            }
            None => false,
        })
        .collect();
    let tombstones = kept.iter().any(|r| r.value.is_none());
    let new_horizon = (tombstones && horizon.is_none())
        .then(|| rules.now_ms.saturating_add(rules.delete_retention_ms));
    let removed = all.len() - kept.len();
    let delete_horizon = if tombstones {
        new_horizon.or(horizon)
    } else {
        None
    };
    if removed == 0 && new_horizon.is_none() {
        return Ok(Filtered {
            delete_horizon,
            ..keep
        });
    }
    if kept.is_empty() {
        let outcome = if producer_last {
            Outcome::Rewrite(empty_header(h))
        } else {
            Outcome::Drop
        };
        return Ok(Filtered {
            outcome,
            removed,
            delete_horizon: None,
        });
    }
    let base_timestamp = new_horizon.unwrap_or(h.base_timestamp);
    let mut body = Vec::with_capacity(section.len());
    let mut max_timestamp = i64::MIN;
    for r in &kept {
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        max_timestamp = max_timestamp.max(ts);
        records::write(&mut body, r, ts.saturating_sub(base_timestamp));
    }
    if h.attributes & LOG_APPEND_TIME != 0 {
        max_timestamp = h.max_timestamp;
    }
    let body = deflate(&body, codec).map_err(|e| fail(format!("{e:#}")))?;
    let attributes = h.attributes
        | if new_horizon.is_some() {
            DELETE_HORIZON
        } else {
            0
        };
    let fields = Header {
        attributes,
        base_timestamp,
        max_timestamp,
        record_count: kept.len() as i32,
    };
    Ok(Filtered {
        outcome: Outcome::Rewrite(write_batch(h, fields, &body)),
        removed,
        delete_horizon,
    })
}

/// Follows the transactions of a log as a cleaning reads it from its
/// start, batch by batch in offset order, to tell whether a marker's
/// transaction has any batch left before it.
#[derive(Debug, Default)]
pub struct MarkerTracker {
    /// Producers with a batch read since their last marker.
    with_batches: HashSet<i64>,
}

impl MarkerTracker {
    /// A data batch was read (whatever cleaning then does to it: a batch
    /// read now may still be gone by the next cleaning).
    pub fn data(&mut self, h: &BatchHeader) {
        if h.is_transactional() {
            self.with_batches.insert(h.producer_id);
        }
    }

    /// A marker of `producer_id` was read: whether its transaction left no
    /// batch before it.
    pub fn marker(&mut self, producer_id: i64) -> bool {
        !self.with_batches.remove(&producer_id)
    }
}

/// Cleans a transaction marker (`batch` holds exactly it, `h` its
/// header); `removable`: its transaction left no batch (see
/// [`MarkerTracker`]). A removable marker gets a delete horizon the first
/// time, and is dropped by a cleaning after it.
pub fn filter_marker(
    batch: &[u8],
    h: &BatchHeader,
    removable: bool,
    rules: Rules,
) -> Result<Filtered, BatchError> {
    let keep = Filtered {
        outcome: Outcome::Keep,
        removed: 0,
        delete_horizon: None,
    };
    if !removable {
        return Ok(keep);
    }
    if h.attributes & DELETE_HORIZON != 0 {
        let passed = rules.now_ms >= h.base_timestamp;
        return Ok(Filtered {
            outcome: if passed { Outcome::Drop } else { Outcome::Keep },
            delete_horizon: (!passed).then_some(h.base_timestamp),
            ..keep
        });
    }
    let fail = |reason: String| BatchError::Records {
        position: h.position,
        reason,
    };
    let (codec, section) = records_section(batch, h)?;
    let all = records::parse(&section).map_err(|e| fail(e.to_string()))?;
    let horizon = rules.now_ms.saturating_add(rules.delete_retention_ms);
    let mut body = Vec::with_capacity(section.len());
    for r in &all {
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        records::write(&mut body, r, ts.saturating_sub(horizon));
    }
    let body = deflate(&body, codec).map_err(|e| fail(format!("{e:#}")))?;
    let fields = Header {
        attributes: h.attributes | DELETE_HORIZON,
        base_timestamp: horizon,
        max_timestamp: h.max_timestamp,
        record_count: all.len() as i32,
    };
    Ok(Filtered {
        outcome: Outcome::Rewrite(write_batch(h, fields, &body)),
        removed: 0,
        delete_horizon: Some(horizon),
    })
}

/// The fields of a rewritten batch that may differ from the original's.
struct Header {
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
}

/// A batch with `h`'s offsets and producer fields, `fields`, and `body`
/// as its (compressed) records, its CRC computed.
fn write_batch(h: &BatchHeader, fields: Header, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.extend_from_slice(&h.base_offset.to_be_bytes());
    let length = (HEADER_LEN - LOG_OVERHEAD + body.len()) as i32;
    b.extend_from_slice(&length.to_be_bytes());
    b.extend_from_slice(&h.leader_epoch.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&fields.attributes.to_be_bytes());
    let last_delta = (h.last_offset - h.base_offset) as i32;
    b.extend_from_slice(&last_delta.to_be_bytes());
    b.extend_from_slice(&fields.base_timestamp.to_be_bytes());
    b.extend_from_slice(&fields.max_timestamp.to_be_bytes());
    b.extend_from_slice(&h.producer_id.to_be_bytes());
    b.extend_from_slice(&h.producer_epoch.to_be_bytes());
    b.extend_from_slice(&h.base_sequence.to_be_bytes());
    b.extend_from_slice(&fields.record_count.to_be_bytes());
    b.extend_from_slice(body);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The header alone of a batch that lost all its records, uncompressed,
/// its timestamps the batch's newest.
fn empty_header(h: &BatchHeader) -> Vec<u8> {
    let fields = Header {
        attributes: h.attributes & !(COMPRESSION_MASK | DELETE_HORIZON),
        base_timestamp: h.max_timestamp,
        max_timestamp: h.max_timestamp,
        record_count: 0,
    };
    write_batch(h, fields, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;
    use bytes::Bytes;
    use std::collections::HashMap;

    /// One stored batch at `base` of `(key, value)` records, stamped
    /// 1000, 1001, ..., and its header.
    fn stored(
        base: i64,
        records: &[(Option<&str>, Option<&str>)],
        c: Compression,
    ) -> (Vec<u8>, BatchHeader) {
        let records = records.iter().enumerate().map(|(i, (k, v))| {
            (
                k.map(|k| Bytes::from(k.to_string())),
                v.map(|v| Bytes::from(v.to_string())),
                1000 + i as i64,
            )
        });
        let mut buf = batch::encode(records, c).expect("encode");
        let h = batch::validate_all(&buf).expect("valid")[0];
        batch::assign(&mut buf, &h, base, 3);
        let buf = buf.to_vec();
        let h = batch::validate_all(&buf).expect("valid")[0];
        (buf, h)
    }

    /// (offset, key, value, timestamp) of every record, as a client reads.
    fn read(buf: &[u8]) -> Vec<(i64, Option<String>, Option<String>, i64)> {
        let set = batch::decode(Bytes::copy_from_slice(buf), 0, u32::MAX).expect("decodes");
        let s = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        set.records
            .iter()
            .map(|r| (r.offset, s(&r.key), s(&r.value), r.timestamp))
            .collect()
    }

    fn latest<'a>(map: &'a HashMap<&str, i64>) -> impl Fn(&[u8], i64) -> bool + 'a {
        move |key, offset| {
            let key = std::str::from_utf8(key).expect("utf-8");
            map.get(key).is_none_or(|&l| offset >= l)
        }
    }

    const RULES: Rules = Rules {
        now_ms: 10_000,
        delete_retention_ms: 500,
    };

    #[test]
    fn superseded_and_keyless_records_go_and_the_rest_read_the_same() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let (buf, h) = stored(
                100,
                &[
                    (Some("a"), Some("a1")),
                    (Some("b"), Some("b1")),
                    (None, Some("x")),
                    (Some("a"), Some("a2")),
                ],
                c,
            );
            let map = HashMap::from([("a", 103), ("b", 50)]);
            let f = filter_batch(&buf, &h, latest(&map), false, RULES).expect("filter");
            assert_eq!(f.removed, 2, "{c:?}");
            let Outcome::Rewrite(out) = f.outcome else {
                panic!("{c:?}: rewritten")
            };
            let oh = batch::parse_header(&out, 0).expect("header");
            batch::check_crc(&out, &oh).expect("crc");
            assert_eq!(
                (
                    oh.base_offset,
                    oh.last_offset,
                    oh.record_count,
                    oh.leader_epoch
                ),
                (100, 103, 2, 3)
            );
            assert_eq!(compression_of(&oh).expect("codec"), c);
            assert_eq!(oh.max_timestamp, 1003);
            assert_eq!(
                read(&out),
                [
                    (101, Some("b".into()), Some("b1".into()), 1001),
                    (103, Some("a".into()), Some("a2".into()), 1003)
                ]
            );
        }
    }

    #[test]
    fn a_whole_batch_is_kept_as_stored() {
        let (buf, h) = stored(0, &[(Some("a"), Some("1"))], Compression::Lz4);
        let f = filter_batch(&buf, &h, |_, _| true, false, RULES).expect("filter");
        assert_eq!(f.outcome, Outcome::Keep);
    }

    #[test]
    fn tombstones_get_a_horizon_then_go_after_it() {
        let (buf, h) = stored(
            0,
            &[(Some("a"), None), (Some("b"), Some("b1"))],
            Compression::Gzip,
        );
        let f = filter_batch(&buf, &h, |_, _| true, false, RULES).expect("filter");
        assert_eq!(f.delete_horizon, Some(10_500));
        let Outcome::Rewrite(once) = f.outcome else {
            panic!("horizon set")
        };
        let oh = batch::parse_header(&once, 0).expect("header");
        assert_eq!(oh.attributes & DELETE_HORIZON, DELETE_HORIZON);
        assert_eq!(oh.base_timestamp, 10_500);
        // Timestamps read the same under the new base.
        assert_eq!(
            read(&once),
            [
                (0, Some("a".into()), None, 1000),
                (1, Some("b".into()), Some("b1".into()), 1001)
            ]
        );
        // Before the horizon: kept as is.
        let before = filter_batch(&once, &oh, |_, _| true, false, RULES).expect("again");
        assert_eq!(before.outcome, Outcome::Keep);
        assert_eq!(before.delete_horizon, Some(10_500));
        // After it: the tombstone goes.
        let later = Rules {
            now_ms: 10_500,
            ..RULES
        };
        let after = filter_batch(&once, &oh, |_, _| true, false, later).expect("later");
        assert_eq!(after.delete_horizon, None);
        let Outcome::Rewrite(twice) = after.outcome else {
            panic!("tombstone removed")
        };
        assert_eq!(
            read(&twice),
            [(1, Some("b".into()), Some("b1".into()), 1001)]
        );
    }

    #[test]
    fn an_emptied_batch_goes_unless_it_is_its_producers_last() {
        let (mut buf, h) = stored(
            7,
            &[(Some("a"), Some("1")), (Some("a"), Some("2"))],
            Compression::None,
        );
        // Make it an idempotent producer's batch: producer 9, epoch 2, seq 40.
        buf[43..51].copy_from_slice(&9i64.to_be_bytes());
        buf[51..53].copy_from_slice(&2i16.to_be_bytes());
        buf[53..57].copy_from_slice(&40i32.to_be_bytes());
        let crc = crc32c::crc32c(&buf[21..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        let h = BatchHeader {
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: 40,
            ..h
        };
        let superseded = |_: &[u8], _| false;
        let f = filter_batch(&buf, &h, superseded, false, RULES).expect("filter");
        assert_eq!((f.outcome, f.removed), (Outcome::Drop, 2));
        let f = filter_batch(&buf, &h, superseded, true, RULES).expect("filter");
        let Outcome::Rewrite(empty) = f.outcome else {
            panic!("header kept")
        };
        let eh = batch::parse_header(&empty, 0).expect("header");
        batch::check_crc(&empty, &eh).expect("crc");
        assert_eq!(eh.size, HEADER_LEN);
        assert_eq!((eh.base_offset, eh.last_offset, eh.record_count), (7, 8, 0));
        assert_eq!(
            (eh.producer_id, eh.producer_epoch, eh.base_sequence),
            (9, 2, 40)
        );
    }

    #[test]
    fn control_batches_are_left_alone() {
        let (mut buf, h) = stored(0, &[(Some("a"), Some("1"))], Compression::None);
        let attributes = h.attributes | CONTROL;
        buf[21..23].copy_from_slice(&attributes.to_be_bytes());
        let h = BatchHeader { attributes, ..h };
        let f = filter_batch(&buf, &h, |_, _| false, false, RULES).expect("filter");
        assert_eq!(f.outcome, Outcome::Keep);
    }

    #[test]
    fn a_marker_goes_only_after_its_transaction_and_then_its_horizon() {
        use crate::log::control::{read_marker, Marker};
        let marker = Marker {
            commit: false,
            coordinator_epoch: 3,
        };
        let mut buf = marker.encode(7, 1, 1000).expect("encode");
        let h = batch::validate_all(&buf).expect("valid")[0];
        batch::assign(&mut buf, &h, 40, 3);
        let h = batch::validate_all(&buf).expect("valid")[0];

        // A transactional batch of producer 7 before its marker keeps it;
        // the next marker, with nothing read in between, may go. Another
        // producer's plain batch counts for nothing.
        let mut t = MarkerTracker::default();
        let data = BatchHeader {
            attributes: h.attributes & !CONTROL,
            ..h
        };
        t.data(&data);
        assert!(!t.marker(7));
        assert!(t.marker(7));
        t.data(&BatchHeader {
            producer_id: 8,
            attributes: 0,
            ..h
        });
        assert!(t.marker(8));

        let kept = filter_marker(&buf, &h, false, RULES).expect("filter");
        assert_eq!((kept.outcome, kept.delete_horizon), (Outcome::Keep, None));
        // Removable: a horizon first, the marker still reads the same.
        let f = filter_marker(&buf, &h, true, RULES).expect("filter");
        let horizon = RULES.now_ms + RULES.delete_retention_ms;
        assert_eq!(f.delete_horizon, Some(horizon));
        let Outcome::Rewrite(with_horizon) = f.outcome else {
            panic!("a horizon is written")
        };
        let h2 = batch::validate_all(&with_horizon).expect("valid")[0];
        assert_ne!(h2.attributes & DELETE_HORIZON, 0);
        assert_eq!((h2.base_offset, h2.max_timestamp), (40, h.max_timestamp));
        assert_eq!(read_marker(&with_horizon, &h2).expect("read"), Some(marker));
        let before = Rules {
            now_ms: horizon - 1,
            ..RULES
        };
        let f = filter_marker(&with_horizon, &h2, true, before).expect("filter");
        assert_eq!(
            (f.outcome, f.delete_horizon),
            (Outcome::Keep, Some(horizon))
        );
        let after = Rules {
            now_ms: horizon,
            ..RULES
        };
        let f = filter_marker(&with_horizon, &h2, true, after).expect("filter");
        assert_eq!((f.outcome, f.delete_horizon), (Outcome::Drop, None));
    }
}
