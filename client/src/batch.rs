//! Building a record batch the way a plain (non-idempotent) producer sends
//! it, for the broker's own records and the command-line producer.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// The encoder refused the records.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a record batch: {0}")]
pub struct EncodeError(String);

/// A transactional producer a batch is written for: the group
/// coordinator writes a transaction's offset commits under the producer's
/// id and epoch, without a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transactional {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

/// Encodes `(key, value, timestamp)` records as one batch, offsets counted
/// from 0; the broker assigns the real ones on append.
pub fn encode(
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>, i64)>,
    compression: Compression,
) -> Result<BytesMut, EncodeError> {
    encode_for(records, compression, None)
}

/// As [`encode`], as part of `transaction` when one is given.
pub fn encode_for(
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>, i64)>,
    compression: Compression,
    transaction: Option<Transactional>,
) -> Result<BytesMut, EncodeError> {
    let (producer_id, producer_epoch) =
        transaction.map_or((-1, -1), |t| (t.producer_id, t.producer_epoch));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, timestamp))| Record {
            transactional: transaction.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder groups records whose offset - sequence agree;
            // a base sequence of -1 marks a non-idempotent batch.
            sequence: i as i32 - 1,
            timestamp,
            key,
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|e| EncodeError(format!("{e:#}")))?;
    Ok(buf)
}
