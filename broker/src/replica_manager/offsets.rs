//! Where a led partition's log starts and ends: ListOffsets,
//! OffsetForLeaderEpoch, and DeleteRecords moving the log start forward.

use super::fetch::Isolation;
use super::{ReplicaError, ReplicaManager};

/// What ListOffsets asks of a partition, by its timestamp (special values
/// from KIP-79, KIP-734 and KIP-1005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// -1: the offset the next consumed record will have (the high
    /// watermark).
    Latest,
    /// -2, and -4 (the earliest local offset; nothing is tiered here): the
    /// log start.
    Earliest,
    /// -3: the record with the largest timestamp.
    MaxTimestamp,
    /// The first record with a timestamp at or after this one.
    Since(i64),
    /// A tiered-storage position (-5) or another value Kafka does not
    /// define: nothing is tiered here, so there is no such offset.
    Tiered,
}

impl OffsetQuery {
    /// The query a ListOffsets timestamp stands for.
    pub fn from_timestamp(timestamp: i64) -> Self {
        match timestamp {
            -1 => OffsetQuery::Latest,
            -2 | -4 => OffsetQuery::Earliest,
            -3 => OffsetQuery::MaxTimestamp,
            ts if ts >= 0 => OffsetQuery::Since(ts),
            _ => OffsetQuery::Tiered,
        }
    }
}

/// An offset ListOffsets answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundOffset {
    /// The offset.
    pub offset: i64,
    /// Its record's timestamp (-1 for a position rather than a record).
    pub timestamp: i64,
    /// The leader epoch of the record before it.
    pub leader_epoch: i32,
}

impl ReplicaManager {
    /// Answers ListOffsets for one partition led here in
    /// `current_leader_epoch` (-1: any); `None` when no offset matches.
    /// As in Kafka, a consumer sees offsets up to what its `isolation` may
    /// fetch: the latest is the high watermark, or for read_committed the
    /// last stable offset, and a record found by timestamp must be below
    /// it. A leader elected lately whose high watermark is still below
    /// where its leadership began (its followers have not fetched from it
    /// yet) answers the latest offset, and a timestamp it finds nothing
    /// below the watermark for, with OFFSET_NOT_AVAILABLE, as Kafka does:
    /// its watermark then may be older than one consumers already saw.
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
        query: OffsetQuery,
        isolation: Isolation,
    ) -> Result<Option<FoundOffset>, ReplicaError> {
        let p = self.leader(topic, partition, current_leader_epoch)?;
        let marks = p.watermarks();
        let fetchable = match isolation {
            Isolation::ReadUncommitted => marks.high_watermark,
            Isolation::ReadCommitted => marks.last_stable_offset,
        };
        let below = |found: &(i64, i64)| found.0 < fetchable;
        let found = match query {
            OffsetQuery::Latest => Some((fetchable, -1)),
            OffsetQuery::Earliest => Some((marks.log_start_offset, -1)),
            OffsetQuery::MaxTimestamp => p.max_timestamp()?.filter(below),
            OffsetQuery::Since(ts) => p.offset_for_timestamp(ts)?.filter(below),
            OffsetQuery::Tiered => None,
        };
        let from_watermark = match query {
            OffsetQuery::Latest => true,
            OffsetQuery::MaxTimestamp | OffsetQuery::Since(_) => found.is_none(),
            OffsetQuery::Earliest | OffsetQuery::Tiered => false,
        };
        if let Some(epoch_start) = p.leader_epoch_start() {
            if from_watermark && epoch_start > marks.high_watermark {
                return Err(ReplicaError::OffsetNotAvailable {
                    high_watermark: marks.high_watermark,
                    epoch_start,
                });
            }
        }
        Ok(found.map(|(offset, timestamp)| FoundOffset {
            offset,
            timestamp,
            leader_epoch: p.epoch_at(offset.saturating_sub(1).max(0)),
        }))
    }

    /// Answers OffsetForLeaderEpoch for one partition led here in
    /// `current_leader_epoch`: the largest epoch at or below `epoch` and
    /// where its records end.
    pub fn offset_for_leader_epoch(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
        epoch: i32,
    ) -> Result<(i32, i64), ReplicaError> {
        let p = self.leader(topic, partition, current_leader_epoch)?;
        Ok(p.end_offset_for(epoch))
    }

    /// Deletes the records below `offset` (-1: the high watermark) of a
    /// partition led here, unless its topic is compact-only; returns the
    /// new log start.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ReplicaError> {
        let p = self.leader(topic, partition, -1)?;
        // Kafka's rule: a compacted log's records go by compaction only.
        if !p.cleanup().delete {
            return Err(ReplicaError::DeleteOnCompacted);
        }
        Ok(p.delete_records_before(offset)?)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::super::tests::{manager, partition, TOPIC};
    use super::*;
    use crate::log::batch::tests::encode;
    use crate::partition::PartitionError;

    #[test]
    fn list_offsets_timestamps_follow_kafka() {
        let cases = [
            (-1, OffsetQuery::Latest),
            (-2, OffsetQuery::Earliest),
            (-3, OffsetQuery::MaxTimestamp),
            (-4, OffsetQuery::Earliest),
            (-5, OffsetQuery::Tiered),
            (-9, OffsetQuery::Tiered),
            (0, OffsetQuery::Since(0)),
            (1_700_000_000_000, OffsetQuery::Since(1_700_000_000_000)),
        ];
        for (ts, want) in cases {
            assert_eq!(OffsetQuery::from_timestamp(ts), want, "{ts}");
        }
    }

    #[tokio::test]
    async fn offsets_are_answered_by_the_leader_of_the_epoch_asked() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1], &[1], 3)]).await;
        for ts in [[10, 20], [30, 25]] {
            let batch = encode(&["a", "b"], &ts, Compression::None);
            m.replica(TOPIC, 0)
                .expect("replica")
                .append(batch.freeze(), None)
                .expect("append");
        }
        let found = |q| {
            m.list_offset(TOPIC, 0, -1, q, Isolation::ReadUncommitted)
                .expect("found")
        };
        let at = |offset, timestamp| {
            Some(FoundOffset {
                offset,
                timestamp,
                leader_epoch: 3,
            })
        };
        assert_eq!(found(OffsetQuery::Latest), at(4, -1));
        assert_eq!(found(OffsetQuery::Earliest), at(0, -1));
        assert_eq!(found(OffsetQuery::MaxTimestamp), at(2, 30));
        assert_eq!(found(OffsetQuery::Since(21)), at(2, 30));
        assert_eq!(found(OffsetQuery::Since(99)), None);
        assert_eq!(found(OffsetQuery::Tiered), None);
        assert!(matches!(
            m.list_offset(TOPIC, 0, 2, OffsetQuery::Latest, Isolation::ReadUncommitted),
            Err(ReplicaError::Partition(
                PartitionError::FencedLeaderEpoch { .. }
            ))
        ));
        assert_eq!(
            m.offset_for_leader_epoch(TOPIC, 0, 3, 3).expect("end"),
            (3, 4)
        );
        assert_eq!(m.delete_records(TOPIC, 0, -1).expect("deleted"), 4);
        assert_eq!(found(OffsetQuery::Earliest), at(4, -1));
    }

    #[tokio::test]
    async fn a_new_leader_below_its_epoch_start_has_no_latest_offset_yet() {
        let dir = tempfile::tempdir().expect("dir");
        // Broker 1 follows broker 2 and has 4 records, the leader's high
        // watermark not yet heard (0).
        let mut follower = partition(&[2, 1], &[2, 1], 3);
        follower.leader = 2;
        let (m, _) = manager(dir.path(), &[], vec![follower]).await;
        let p = m.replica(TOPIC, 0).expect("replica");
        let batch = encode(&["a", "b", "c", "d"], &[10, 20, 30, 40], Compression::None);
        p.append_replicated(3, &batch, 0).expect("replicated");
        // Then broker 1 leads, with broker 2 in sync: its leadership
        // begins at 4, its high watermark is still 0.
        p.apply(&partition(&[1, 2], &[1, 2], 4));
        let asked = |q| m.list_offset(TOPIC, 0, -1, q, Isolation::ReadUncommitted);
        for q in [
            OffsetQuery::Latest,
            OffsetQuery::MaxTimestamp,
            OffsetQuery::Since(0),
        ] {
            assert!(
                matches!(
                    asked(q),
                    Err(ReplicaError::OffsetNotAvailable {
                        high_watermark: 0,
                        epoch_start: 4
                    })
                ),
                "{q:?}: {:?}",
                asked(q)
            );
        }
        assert_eq!(
            asked(OffsetQuery::Earliest)
                .expect("earliest")
                .map(|f| f.offset),
            Some(0)
        );
        // Once broker 2 has fetched from the new leader, its watermark
        // reaches the epoch's start and the offsets are answered.
        let (verdict, _) = p
            .replica_fetch(2, 4, 4, p.epoch_at(3), 30_000)
            .expect("fetch");
        assert!(matches!(
            verdict,
            crate::partition::epochs::ReplicaFetch::Serve
        ));
        assert_eq!(
            asked(OffsetQuery::Latest)
                .expect("latest")
                .map(|f| f.offset),
            Some(4)
        );
        assert_eq!(
            asked(OffsetQuery::Since(25))
                .expect("found")
                .map(|f| f.offset),
            Some(2)
        );
    }
}
