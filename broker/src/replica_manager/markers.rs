//! Transaction markers (the replica side of Kafka's WriteTxnMarkers): a
//! transaction coordinator ends a producer's transaction on each
//! partition it touched by having the partition's leader append a COMMIT
//! or ABORT marker (`Partition::append_marker`). Each marker is written as
//! an `acks=all` produce is: refused unwritten below
//! `min.insync.replicas`, then answered once the in-sync replicas hold it,
//! its leadership ends, or the deadline passes; the writes of one request
//! wait together.

use std::sync::Arc;
use std::time::Duration;

use super::produce::{admit, await_replication, settle, Acks, ProduceError};
use super::{ReplicaError, ReplicaManager};
use crate::partition::{Appended, Partition};

/// One marker a coordinator writes: a producer's transaction ended, on
/// some partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The coordinator's epoch (the transaction log partition's leader
    /// epoch).
    pub coordinator_epoch: i32,
    /// COMMIT (`true`) or ABORT.
    pub commit: bool,
    /// The transaction version the coordinator ran it under (0 when the
    /// request is older than WriteTxnMarkers v2).
    pub transaction_version: i8,
    /// The partitions, by topic.
    pub topics: Vec<(String, Vec<i32>)>,
}

/// Each marker's outcome, per topic and partition in the request's order.
pub type MarkersWritten = Vec<Vec<Vec<Result<Appended, ProduceError>>>>;

impl ReplicaManager {
    /// Writes every marker on each of its partitions as their leader and
    /// waits, until `timeout`, for the in-sync replicas to hold them.
    /// Internal topics are written like any other: the group coordinator
    /// learns of the transactions it holds offsets for from the outcomes.
    pub async fn write_markers(&self, markers: &[TxnMarker], timeout: Duration) -> MarkersWritten {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut written: MarkersWritten = Vec::with_capacity(markers.len());
        // Where each written marker's answer goes once settled.
        let mut held = Vec::new();
        for (m, marker) in markers.iter().enumerate() {
            let mut topics = Vec::with_capacity(marker.topics.len());
            for (t, (topic, partitions)) in marker.topics.iter().enumerate() {
                let mut outcomes = Vec::with_capacity(partitions.len());
                for (i, partition) in partitions.iter().enumerate() {
                    let appended = self.append_marker(marker, topic, *partition);
                    if let Ok((p, a)) = &appended {
                        held.push(((m, t, i), (p.clone(), *a)));
                    }
                    outcomes.push(appended.map(|(_, a)| a));
                }
                topics.push(outcomes);
            }
            written.push(topics);
        }
        let (places, writes): (Vec<_>, Vec<_>) = held.into_iter().unzip();
        let replications = await_replication(&writes, deadline).await;
        for (((m, t, i), (p, _)), replication) in places.into_iter().zip(&writes).zip(replications)
        {
            if let Err(e) = settle(replication, self.min_insync_replicas(&p.topic)) {
                written[m][t][i] = Err(e);
            }
        }
        written
    }

    /// Appends one marker as the partition's leader, if the ISR allows an
    /// `acks=all` write.
    fn append_marker(
        &self,
        marker: &TxnMarker,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Partition>, Appended), ProduceError> {
        let p = self.replica(topic, partition)?;
        admit(Acks::All, p.in_sync(), self.min_insync_replicas(topic))?;
        let appended = p
            .append_marker(
                marker.producer_id,
                marker.producer_epoch,
                marker.coordinator_epoch,
                marker.commit,
                marker.transaction_version,
            )
            .map_err(ReplicaError::from)?;
        Ok((p, appended))
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::super::fetch::{FetchParams, FetchPosition, Isolation};
    use super::super::tests::{manager, partition, TOPIC};
    use super::super::TopicRef;
    use super::*;
    use crate::partition::PartitionError;

    /// A transactional batch of producer `pid` at epoch 0.
    fn txn_batch(pid: i64, seq: i32) -> bytes::BytesMut {
        let record = Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: seq,
            timestamp: crate::clock::now_ms(),
            key: Some(bytes::Bytes::from("k")),
            value: Some(bytes::Bytes::from("v")),
            headers: Default::default(),
        };
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encode");
        buf
    }

    fn marker(commit: bool, coordinator_epoch: i32, partitions: &[i32]) -> TxnMarker {
        TxnMarker {
            producer_id: 5,
            producer_epoch: 0,
            coordinator_epoch,
            commit,
            transaction_version: 1,
            topics: vec![(TOPIC.to_string(), partitions.to_vec())],
        }
    }

    fn outcomes(written: &MarkersWritten) -> Vec<String> {
        written
            .iter()
            .flatten()
            .flatten()
            .map(|r| match r {
                Ok(a) => format!("ok {}", a.base_offset),
                Err(e) => format!("{e:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn markers_are_written_per_partition_and_fenced_as_kafka_does() {
        let dir = tempfile::tempdir().expect("dir");
        let alone = partition(&[1], &[1], 1);
        let (m, _) = manager(dir.path(), &[], vec![alone.clone(), alone]).await;
        for i in [0, 1] {
            let p = m.replica(TOPIC, i).expect("replica");
            let guard = p.start_verification(5, 0, 0).expect("verify");
            p.append(txn_batch(5, 0).freeze(), guard).expect("append");
        }
        let second = Duration::from_secs(5);
        let written = m
            .write_markers(&[marker(true, 3, &[0, 1, 7])], second)
            .await;
        assert_eq!(
            outcomes(&written),
            ["ok 1", "ok 1", "Replica(UnknownTopicOrPartition)"]
        );
        for i in [0, 1] {
            let marks = m.replica(TOPIC, i).expect("replica").watermarks();
            assert_eq!(marks.last_stable_offset, 2);
        }
        // An older coordinator is fenced, per partition.
        let written = m.write_markers(&[marker(false, 2, &[0])], second).await;
        assert!(matches!(
            &written[0][0][0],
            Err(ProduceError::Replica(ReplicaError::Partition(
                PartitionError::CoordinatorFenced { current: 3, .. }
            )))
        ));
    }

    #[tokio::test]
    async fn a_marker_waits_for_the_in_sync_replicas() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1, 2], &[1, 2], 1)]).await;
        let p = m.replica(TOPIC, 0).expect("replica");
        let guard = p.start_verification(5, 0, 0).expect("verify");
        p.append(txn_batch(5, 0).freeze(), guard).expect("append");
        // The follower never fetches: the marker times out, written.
        let written = m
            .write_markers(&[marker(false, 0, &[0])], Duration::from_millis(100))
            .await;
        assert_eq!(outcomes(&written), ["TimedOut"]);
        assert_eq!(p.watermarks().log_end_offset, 2);
        // The follower fetches past it while a second one waits.
        let follow = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let params = FetchParams {
                replica: Some(2),
                isolation: Isolation::ReadUncommitted,
                throttle: None,
                max_wait: Duration::ZERO,
                min_bytes: 0,
                max_bytes: 1 << 20,
            };
            let at = vec![(
                TopicRef::Name(TOPIC.into()),
                vec![FetchPosition {
                    partition: 0,
                    fetch_offset: 3,
                    current_leader_epoch: 1,
                    last_fetched_epoch: 1,
                    max_bytes: 1 << 20,
                }],
            )];
            m.fetch(&params, &at).await;
        };
        let again = [marker(false, 0, &[0])];
        let (written, ()) = tokio::join!(m.write_markers(&again, Duration::from_secs(30)), follow);
        assert_eq!(outcomes(&written), ["ok 2"]);
        assert_eq!(p.watermarks().last_stable_offset, 3);
    }
}
