//! Settings of one partition's log, resolved from topic overrides and
//! broker defaults by `topic::config`.

/// How a log rolls, retains and flushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment beyond this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll to a new segment after this age (`segment.ms`).
    pub segment_ms: i64,
    /// Delete segments whose newest record is older (`retention.ms`, -1: never).
    pub retention_ms: i64,
    /// Delete oldest segments beyond this total size (`retention.bytes`, -1: never).
    pub retention_bytes: i64,
    /// Bytes between sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Largest batch accepted (`max.message.bytes`).
    pub max_message_bytes: u32,
    /// Largest record accepted once its batch is decompressed
    /// (`max.decompressed.message.bytes`).
    pub max_decompressed_message_bytes: u32,
    /// fsync after this many messages (`flush.messages`).
    pub flush_messages: u64,
    /// fsync after this long (`flush.ms`; `i64::MAX`: never by time).
    pub flush_ms: i64,
    /// Stamp batches with the time the leader appends them instead of
    /// keeping the producer's timestamps
    /// (`message.timestamp.type=LogAppendTime`).
    pub log_append_time: bool,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            max_decompressed_message_bytes: 2_147_483_639,
            flush_messages: u64::MAX >> 1,
            flush_ms: i64::MAX,
            log_append_time: false,
        }
    }
}
