//! One partition on this broker: its log, its producers' sequence state, and
//! the signal that wakes fetches waiting for new data.

pub mod producer_state;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::log::{batch, Log, LogConfig, LogError};
use producer_state::{BatchIdentity, Check, ProducerStates};

/// Errors of a partition operation, each mapping to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// From the log (I/O, corrupt batch, too large, out of range).
    #[error(transparent)]
    Log(#[from] LogError),
    /// Produce v3+ carries exactly one batch per partition.
    #[error("a produce request must carry exactly one record batch per partition; {0} bytes follow the first")]
    ExtraBytes(usize),
    /// Idempotent sequence gap.
    #[error("out-of-order sequence from producer {producer_id}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
    },
    /// Idempotent producer with an old epoch.
    #[error("producer {producer_id} epoch {epoch} is stale")]
    StaleEpoch {
        /// The producer.
        producer_id: i64,
        /// The stale epoch.
        epoch: i16,
    },
}

/// What an accepted produce wrote (or had already written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Log start offset after the write.
    pub log_start_offset: i64,
}

/// Offsets a fetch response reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Next offset to be written; with one replica it is the high watermark.
    pub high_watermark: i64,
    /// First offset still stored.
    pub log_start_offset: i64,
}

struct State {
    log: Log,
    producers: ProducerStates,
}

/// A partition this broker stores.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    state: Mutex<State>,
    appended: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir` and rebuilds
    /// producer state from it. `appended` is bumped after every write.
    pub fn open(
        topic: &str,
        index: i32,
        dir: &Path,
        config: LogConfig,
        appended: Arc<tokio::sync::watch::Sender<u64>>,
    ) -> Result<Self, PartitionError> {
        let log = Log::open(dir, config)?;
        let producers = rebuild_producers(&log)?;
        Ok(Partition {
            topic: topic.to_string(),
            index,
            state: Mutex::new(State { log, producers }),
            appended,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the log as its last
        // completed write left it, so the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one produced batch, de-duplicating idempotent retries.
    pub fn append(&self, records: &mut [u8]) -> Result<Appended, PartitionError> {
        // The header alone decides de-duplication; the log validates the
        // whole batch (CRC, records) once, when it is really appended.
        let h = &batch::parse_header(records, 0).map_err(LogError::from)?;
        if h.size != records.len() {
            return Err(PartitionError::ExtraBytes(records.len() - h.size));
        }
        let id = BatchIdentity {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            record_count: h.record_count,
        };
        let mut state = self.lock();
        let base_offset = match state.producers.check(&id) {
            Check::Duplicate { base_offset } => base_offset,
            Check::OutOfOrder => {
                return Err(PartitionError::OutOfOrderSequence {
                    producer_id: id.producer_id,
                })
            }
            Check::StaleEpoch => {
                return Err(PartitionError::StaleEpoch {
                    producer_id: id.producer_id,
                    epoch: id.producer_epoch,
                })
            }
            Check::Append => {
                let info = state.log.append(records, 0)?;
                state.producers.record(&id, info.base_offset);
                info.base_offset
            }
        };
        let log_start_offset = state.log.log_start_offset();
        drop(state);
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(Appended {
            base_offset,
            log_start_offset,
        })
    }

    /// Reads whole batches from `offset`, at most `max_bytes` unless the
    /// first batch alone is larger and `min_one` is set.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(Bytes, Watermarks), PartitionError> {
        let state = self.lock();
        let data = state.log.read(offset, max_bytes, min_one)?;
        Ok((data, watermarks(&state.log)))
    }

    /// Bytes stored, and the log directory (of `log.dirs`) holding them.
    pub fn disk_usage(&self) -> (u64, std::path::PathBuf) {
        let state = self.lock();
        let dir = state
            .log
            .dir()
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        (state.log.size_bytes(), dir)
    }

    /// Current offsets.
    pub fn watermarks(&self) -> Watermarks {
        watermarks(&self.lock().log)
    }

    /// First offset with a timestamp at or after `ts`, and that timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, PartitionError> {
        Ok(self.lock().log.offset_for_timestamp(ts)?)
    }

    /// Offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, PartitionError> {
        Ok(self.lock().log.max_timestamp()?)
    }

    /// Deletes records below `offset` (-1: the high watermark).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, PartitionError> {
        let mut state = self.lock();
        let target = if offset == -1 {
            state.log.log_end_offset()
        } else {
            offset
        };
        Ok(state.log.delete_records_before(target)?)
    }

    /// Applies retention; returns the number of segments removed.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, PartitionError> {
        Ok(self.lock().log.enforce_retention(now_ms)?)
    }

    /// Replaces the log settings (after a topic config change).
    pub fn set_config(&self, config: LogConfig) {
        self.lock().log.set_config(config);
    }

    /// Writes buffered data to disk.
    pub fn flush(&self) -> Result<(), PartitionError> {
        Ok(self.lock().log.flush()?)
    }

    /// Flushes if `flush.ms` has passed since the last flush.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<bool, PartitionError> {
        Ok(self.lock().log.flush_if_due(now_ms)?)
    }
}

fn watermarks(log: &Log) -> Watermarks {
    Watermarks {
        high_watermark: log.log_end_offset(),
        log_start_offset: log.log_start_offset(),
    }
}

/// Replays the batch headers of the log so idempotent producers that retry
/// across a broker restart are still de-duplicated.
fn rebuild_producers(log: &Log) -> Result<ProducerStates, PartitionError> {
    const CHUNK: usize = 1 << 20;
    let mut states = ProducerStates::default();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, CHUNK, true)?;
        let headers = batch::validate_all(&data).map_err(LogError::from)?;
        let Some(last) = headers.last() else { break };
        for h in &headers {
            states.record(
                &BatchIdentity {
                    producer_id: h.producer_id,
                    producer_epoch: h.producer_epoch,
                    base_sequence: h.base_sequence,
                    record_count: h.record_count,
                },
                h.base_offset,
            );
        }
        offset = last.last_offset + 1;
    }
    Ok(states)
}
