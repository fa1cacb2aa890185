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

/// Encodes `(key, value, timestamp)` records as one batch, offsets counted
/// from 0; the broker assigns the real ones on append.
pub fn encode(
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>, i64)>,
    compression: Compression,
) -> Result<BytesMut, EncodeError> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, timestamp))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
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
