//! Replaying a partition's records from its log start, as the group and
//! transaction coordinators do when they come to lead one of their internal
//! partitions.

use kafka_protocol::records::{Record, RecordBatchDecoder};

use super::{Partition, PartitionError};
use crate::log::{batch, LogError};

/// How much of the log one read takes.
const CHUNK: usize = 1 << 20;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the partition failed.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// Stored records could not be decoded, or `apply` refused one.
    #[error("{0}")]
    Decode(String),
}

/// Hands every record of `p`, from its log start to its log end, to
/// `apply`, control records included; returns the offset it read up to.
pub fn replay(
    p: &Partition,
    apply: impl FnMut(&Record) -> Result<(), String>,
) -> Result<i64, ReplayError> {
    replay_from(p, p.watermarks().log_start_offset, apply)
}

/// As [`replay`], from `offset` on (records before it in its first batch
/// included).
pub fn replay_from(
    p: &Partition,
    mut offset: i64,
    mut apply: impl FnMut(&Record) -> Result<(), String>,
) -> Result<i64, ReplayError> {
    loop {
        let (slice, marks) = p.read(offset, CHUNK, true, true)?;
        if slice.is_empty() || offset >= marks.log_end_offset {
            return Ok(offset);
        }
        let mut data = slice.read().map_err(|source| {
            PartitionError::Log(LogError::Io {
                path: p.lock().log.dir().to_path_buf(),
                source,
            })
        })?;
        // Reading goes on after the last batch's last offset: in a
        // compacted log its last records may be gone.
        let headers =
            batch::validate_stored(&data).map_err(|e| ReplayError::Decode(e.to_string()))?;
        let Some(last) = headers.last() else {
            return Ok(offset);
        };
        offset = last.last_offset + 1;
        // Every batch of the read: decoding only the first and reading
        // again from there made loading quadratic in the batches.
        let sets = RecordBatchDecoder::decode_all(&mut data)
            .map_err(|e| ReplayError::Decode(format!("{e:#}")))?;
        for r in sets.iter().flat_map(|set| &set.records) {
            apply(r).map_err(ReplayError::Decode)?;
        }
    }
}
