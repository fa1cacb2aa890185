//! Settings of one partition's log, resolved from topic overrides and
//! broker defaults by `topic::config`.

/// What happens to old segments (`cleanup.policy`): deleted by retention,
/// compacted by the log cleaner, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// Retention deletes old segments (`delete`).
    pub delete: bool,
    /// The cleaner keeps the latest record of each key (`compact`).
    pub compact: bool,
}

impl Cleanup {
    /// Reads a validated `cleanup.policy` list; nothing recognisable means
    /// Kafka's default, `delete`.
    pub fn parse(value: &str) -> Cleanup {
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        let compact = items.contains(&"compact");
        let delete = items.contains(&"delete") || !compact;
        Cleanup { delete, compact }
    }
}

/// How a log rolls, retains, compacts and flushes.
#[derive(Debug, Clone, PartialEq)]
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
    /// `cleanup.policy`.
    pub cleanup: Cleanup,
    /// How long a tombstone survives cleanings (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// Records younger than this are not compacted (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// Records older than this are compacted whatever the dirty ratio
    /// (`max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// Share of the log uncleaned before it is worth cleaning
    /// (`min.cleanable.dirty.ratio`).
    pub min_cleanable_dirty_ratio: f64,
}

impl LogConfig {
    /// The age at which the active segment rolls: `segment.ms`, or
    /// `max.compaction.lag.ms` when a compacted log asks for less, since
    /// records in the active segment cannot be cleaned (Kafka's rule).
    pub fn roll_ms(&self) -> i64 {
        if self.cleanup.compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
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
            cleanup: Cleanup {
                delete: true,
                compact: false,
            },
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policy_table() {
        let cases = [
            ("delete", true, false),
            ("compact", false, true),
            ("compact,delete", true, true),
            ("delete, compact", true, true),
            ("", true, false),
        ];
        for (value, delete, compact) in cases {
            assert_eq!(
                Cleanup::parse(value),
                Cleanup { delete, compact },
                "{value}"
            );
        }
    }

    #[test]
    fn a_compacted_log_rolls_by_the_shorter_of_its_lags() {
        let mut c = LogConfig {
            segment_ms: 1000,
            max_compaction_lag_ms: 100,
            ..LogConfig::default()
        };
        assert_eq!(c.roll_ms(), 1000);
        c.cleanup.compact = true;
        assert_eq!(c.roll_ms(), 100);
    }
}
