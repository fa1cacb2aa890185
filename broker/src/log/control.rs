//! Transaction markers: the control batches that end a producer's
//! transaction on a partition, in Kafka's layout. A marker batch has the
//! transactional and control attribute bits, the producer's id and epoch,
//! base sequence -1, and one record whose key is `version i16 (0), type
//! i16` (0 ABORT, 1 COMMIT) and whose value is `version i16 (0),
//! coordinator_epoch i32`. Other control types (KRaft's leader changes and
//! snapshot records) are not transaction markers.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::{BatchError, BatchHeader, HEADER_LEN};
use super::compaction;
use super::records;

/// Control record type of an aborting marker.
const ABORT: i16 = 0;
/// Control record type of a committing marker.
const COMMIT: i16 = 1;
/// The only key and value version Kafka writes.
const VERSION: i16 = 0;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// COMMIT (`true`) or ABORT.
    pub commit: bool,
    /// The epoch of the transaction coordinator that wrote it.
    pub coordinator_epoch: i32,
}

impl Marker {
    /// The control record's key.
    fn key(&self) -> [u8; 4] {
        let mut key = [0u8; 4];
        key[..2].copy_from_slice(&VERSION.to_be_bytes());
        let kind = if self.commit { COMMIT } else { ABORT };
        key[2..].copy_from_slice(&kind.to_be_bytes());
        key
    }

    /// The control record's value.
    fn value(&self) -> [u8; 6] {
        let mut value = [0u8; 6];
        value[..2].copy_from_slice(&VERSION.to_be_bytes());
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        value
    }

    /// Reads a control record: `None` when it is not a transaction marker
    /// (another control type). A newer key or value version is read as far
    /// as Kafka's version 0 goes, as Kafka does.
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<Marker>, String> {
        let key = key
            .filter(|k| k.len() >= 4)
            .ok_or("control record key shorter than 4 bytes")?;
        let version = i16::from_be_bytes([key[0], key[1]]);
        if version < 0 {
            return Err(format!("control record key version {version}"));
        }
        let commit = match i16::from_be_bytes([key[2], key[3]]) {
            ABORT => false,
            COMMIT => true,
            _ => return Ok(None),
        };
        let value = value
            .filter(|v| v.len() >= 6)
            .ok_or("transaction marker value shorter than 6 bytes")?;
        let version = i16::from_be_bytes([value[0], value[1]]);
        if version < 0 {
            return Err(format!("transaction marker value version {version}"));
        }
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(Some(Marker {
            commit,
            coordinator_epoch,
        }))
    }

    /// The marker batch a leader appends for `producer_id` at
    /// `producer_epoch`, stamped `timestamp`; the log assigns its offset
    /// and leader epoch.
    pub fn encode(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp: i64,
    ) -> Result<BytesMut, BatchError> {
        let record = Record {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            // Markers carry no sequence: base sequence -1.
            sequence: -1,
            timestamp,
            key: Some(Bytes::copy_from_slice(&self.key())),
            value: Some(Bytes::copy_from_slice(&self.value())),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, [&record], &options).map_err(|e| {
            BatchError::Records {
                position: 0,
                reason: format!("{e:#}"),
            }
        })?;
        Ok(buf)
    }
}

/// The marker of the control batch `batch` (exactly one batch, `h` its
/// header): `None` when it holds no record (cleaned away) or another
/// control type. Control batches are stored uncompressed by Kafka, but a
/// compressed one is read too.
pub fn read_marker(batch: &[u8], h: &BatchHeader) -> Result<Option<Marker>, BatchError> {
    let fail = |reason: String| BatchError::Records {
        position: h.position,
        reason,
    };
    let codec = compaction::compression_of(h)?;
    let section =
        compaction::inflate(&batch[HEADER_LEN..], codec).map_err(|e| fail(format!("{e:#}")))?;
    let all = records::parse(&section).map_err(|e| fail(e.to_string()))?;
    match all.first() {
        Some(r) => Marker::parse(r.key, r.value).map_err(fail),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;

    #[test]
    fn a_marker_batch_is_kafkas_control_batch_and_reads_back() {
        for commit in [true, false] {
            let marker = Marker {
                commit,
                coordinator_epoch: 7,
            };
            let buf = marker.encode(42, 3, 1_700_000_000_000).expect("encode");
            let h = batch::validate_all(&buf).expect("valid")[0];
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    h.record_count
                ),
                (42, 3, -1, 1)
            );
            assert_eq!(h.max_timestamp, 1_700_000_000_000);
            assert_eq!(read_marker(&buf, &h), Ok(Some(marker)));
            // Kafka's bytes: key version 0 and type, value version 0 and epoch.
            let kind = if commit { 1 } else { 0 };
            assert_eq!(marker.key(), [0, 0, 0, kind]);
            assert_eq!(marker.value(), [0, 0, 0, 0, 0, 7]);
        }
    }

    /// (key, value, what they read as).
    type Case = (&'static [u8], &'static [u8], Result<Option<Marker>, ()>);

    #[test]
    fn control_records_table() {
        let cases: [Case; 6] = [
            (
                &[0, 0, 0, 0],
                &[0, 0, 0, 0, 0, 5],
                Ok(Some(Marker {
                    commit: false,
                    coordinator_epoch: 5,
                })),
            ),
            (
                &[0, 0, 0, 1],
                &[0, 0, 0, 0, 1, 0],
                Ok(Some(Marker {
                    commit: true,
                    coordinator_epoch: 256,
                })),
            ),
            // KRaft's LEADER_CHANGE: a control record, not a marker.
            (&[0, 0, 0, 2], &[], Ok(None)),
            // A newer version is read as far as version 0 goes.
            (
                &[0, 1, 0, 1, 9],
                &[0, 1, 0, 0, 0, 1, 9],
                Ok(Some(Marker {
                    commit: true,
                    coordinator_epoch: 1,
                })),
            ),
            (&[0, 0], &[0, 0, 0, 0, 0, 1], Err(())),
            (&[0, 0, 0, 1], &[0, 0, 0], Err(())),
        ];
        for (key, value, want) in cases {
            assert_eq!(
                Marker::parse(Some(key), Some(value)).map_err(|_| ()),
                want,
                "{key:?} {value:?}"
            );
        }
        assert!(Marker::parse(None, None).is_err());
    }
}
