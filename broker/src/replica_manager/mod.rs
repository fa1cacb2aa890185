//! This broker's replicas as a service (Kafka's ReplicaManager): produce
//! with `acks` semantics, fetch for consumers and followers, the offset
//! lookups, and every ISR change this broker asks for as a leader. Handlers
//! translate the wire to these calls and back; the decisions are made here,
//! and the waiting too: a held produce or a long-polling fetch is a delayed
//! operation completed by the events of the partitions it concerns (see
//! `Partition::subscribe`) or by its deadline.
//! - [`produce`] appends and waits for the in-sync replicas;
//! - [`fetch`] reads, records followers' progress and long-polls;
//! - [`markers`] writes transaction markers for transaction coordinators;
//! - [`offsets`] answers ListOffsets, OffsetForLeaderEpoch and DeleteRecords.

pub mod fetch;
pub mod markers;
pub mod offsets;
pub mod produce;

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::partition::leader::IsrChange;
use crate::partition::producer_state::ActiveProducer;
use crate::partition::{Partition, PartitionError};
use crate::replication::isr::IsrProposer;
use crate::topic::{Topic, TopicRegistry};

/// Why a partition cannot be served as asked.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// No such topic, or no such partition of it.
    #[error("this broker knows no such topic or partition")]
    UnknownTopicOrPartition,
    /// No topic has the id a request names it by.
    #[error("no topic has id {0}")]
    UnknownTopicId(Uuid),
    /// The partition exists, but this broker holds no replica of it.
    #[error("this broker holds no replica of the partition")]
    NotStoredHere,
    /// The replica refused: not the leader, another leader epoch, or its
    /// log failed.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// DeleteRecords on a topic whose `cleanup.policy` lacks `delete`.
    #[error("records of a topic with cleanup.policy=compact cannot be deleted; its policy must include delete")]
    DeleteOnCompacted,
    /// A leader elected lately whose high watermark has not yet reached
    /// where its leadership began: the offsets it could answer might go
    /// backwards.
    #[error("the high watermark {high_watermark} is below the leader epoch's start offset {epoch_start}; ask again")]
    OffsetNotAvailable {
        /// The leader's high watermark.
        high_watermark: i64,
        /// Its log end when its leadership began.
        epoch_start: i64,
    },
}

/// A topic as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By id (KIP-516).
    Id(Uuid),
}

impl TopicRef {
    /// The error for a topic that cannot be found.
    fn unknown(&self) -> ReplicaError {
        match self {
            TopicRef::Name(_) => ReplicaError::UnknownTopicOrPartition,
            TopicRef::Id(id) => ReplicaError::UnknownTopicId(*id),
        }
    }
}

/// The broker settings the service applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// `replica.lag.time.max.ms`: a follower silent or behind for longer
    /// leaves the ISR.
    pub max_lag: Duration,
    /// `min.insync.replicas` of topics that do not set their own.
    pub min_insync_replicas: i32,
}

/// Reads and writes of this broker's replicas, and the ISR changes their
/// leaderships ask for.
pub struct ReplicaManager {
    topics: Arc<TopicRegistry>,
    isr: IsrProposer,
    /// `replica.lag.time.max.ms`
    max_lag_ms: i64,
    /// The broker's `min.insync.replicas`.
    min_insync_replicas: i32,
}

impl ReplicaManager {
    /// Serves the replicas of `topics`, sending ISR changes through `isr`.
    pub fn new(topics: Arc<TopicRegistry>, isr: IsrProposer, settings: ReplicaSettings) -> Self {
        ReplicaManager {
            topics,
            isr,
            max_lag_ms: i64::try_from(settings.max_lag.as_millis()).unwrap_or(i64::MAX),
            min_insync_replicas: settings.min_insync_replicas,
        }
    }

    /// This broker's replica of `topic`-`partition`.
    fn replica(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ReplicaError> {
        let t = self
            .topics
            .get(topic)
            .ok_or(ReplicaError::UnknownTopicOrPartition)?;
        replica_of(&t, partition)
    }

    /// The producers this broker's replica of `topic`-`partition` knows,
    /// leader or follower (DescribeProducers).
    pub fn active_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ActiveProducer>, ReplicaError> {
        Ok(self.replica(topic, partition)?.active_producers())
    }

    /// The replica, when it leads in `current_leader_epoch` (-1: whichever
    /// epoch the client does not know).
    fn leader(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<Arc<Partition>, ReplicaError> {
        let p = self.replica(topic, partition)?;
        p.check_leader(current_leader_epoch)?;
        Ok(p)
    }

    /// A topic by the name or id a request gives.
    fn topic(&self, topic: &TopicRef) -> Option<Arc<Topic>> {
        match topic {
            TopicRef::Name(name) => self.topics.get(name),
            TopicRef::Id(id) => self.topics.get_by_id(*id),
        }
    }

    /// The topic's `min.insync.replicas`, or the broker default.
    fn min_insync_replicas(&self, topic: &str) -> usize {
        let min = self
            .topics
            .get(topic)
            .and_then(|t| {
                t.configs
                    .get("min.insync.replicas")
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(self.min_insync_replicas);
        usize::try_from(min).unwrap_or(0).max(1)
    }

    /// Asks, for every partition led here, for the ISR it wants now:
    /// followers silent or behind for longer than `replica.lag.time.max.ms`
    /// leave (Kafka's periodic ISR shrink check; followers join through
    /// their fetches).
    pub fn check_isrs(&self) {
        for topic in self.topics.all() {
            for p in topic.local() {
                if let Some(change) = p.isr_change(self.max_lag_ms) {
                    self.propose(p, change);
                }
            }
        }
    }

    /// The one place this broker asks the controller for an ISR change.
    fn propose(&self, p: &Partition, change: IsrChange) {
        self.isr.propose(&p.topic, p.index, change);
    }
}

/// This broker's replica of one partition of `topic`.
fn replica_of(topic: &Topic, partition: i32) -> Result<Arc<Partition>, ReplicaError> {
    match usize::try_from(partition)
        .ok()
        .and_then(|i| topic.partitions.get(i))
    {
        Some(Some(p)) => Ok(p.clone()),
        Some(None) => Err(ReplicaError::NotStoredHere),
        None => Err(ReplicaError::UnknownTopicOrPartition),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::metadata::image::{ClusterImage, PartitionImage, TopicImage};
    use crate::topic::config::TopicDefaults;

    /// The topic every test uses.
    pub(super) const TOPIC: &str = "t";

    /// A partition of [`TOPIC`] led by broker 1 in `leader_epoch`.
    pub(super) fn partition(replicas: &[i32], isr: &[i32], leader_epoch: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: 1,
            leader_epoch,
            partition_epoch: leader_epoch,
            adding: Vec::new(),
            removing: Vec::new(),
            last_left_isr: None,
        }
    }

    /// Broker 1's service holding [`TOPIC`] as `partitions` describe it,
    /// with the topic's `configs`, and the registry behind it. ISR changes
    /// go to a lone controller that knows no topic and refuses them.
    pub(super) async fn manager(
        dir: &Path,
        configs: &[(&str, &str)],
        partitions: Vec<PartitionImage>,
    ) -> (ReplicaManager, Arc<TopicRegistry>) {
        let quorum = crate::metadata::quorum::tests::lone(dir).await;
        let topics = Arc::new(TopicRegistry::new(
            1,
            &[dir.to_path_buf()],
            TopicDefaults::for_tests(),
        ));
        resync(&topics, configs, partitions, 1);
        let settings = ReplicaSettings {
            max_lag: Duration::from_secs(30),
            min_insync_replicas: 1,
        };
        let m = ReplicaManager::new(topics.clone(), IsrProposer::new(quorum, 1), settings);
        (m, topics)
    }

    /// Applies new metadata for [`TOPIC`] (metadata log `index`), as the
    /// broker does when the controller changes it.
    pub(super) fn resync(
        topics: &TopicRegistry,
        configs: &[(&str, &str)],
        partitions: Vec<PartitionImage>,
        index: u64,
    ) {
        let mut image = ClusterImage::default();
        image.topics.insert_mut(
            TOPIC.into(),
            TopicImage {
                id: Uuid::from_u128(7),
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                partitions: partitions.into_iter().collect(),
            },
        );
        topics.sync(&image, index);
    }

    #[tokio::test]
    async fn replicas_are_found_by_name_and_id() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1], &[1], 1)]).await;
        assert!(m.replica(TOPIC, 0).is_ok());
        assert!(matches!(
            m.replica(TOPIC, 1),
            Err(ReplicaError::UnknownTopicOrPartition)
        ));
        assert!(matches!(
            m.replica("other", 0),
            Err(ReplicaError::UnknownTopicOrPartition)
        ));
        assert!(m.topic(&TopicRef::Id(Uuid::from_u128(7))).is_some());
        let unknown = TopicRef::Id(Uuid::from_u128(8));
        assert!(m.topic(&unknown).is_none());
        assert!(matches!(
            unknown.unknown(),
            ReplicaError::UnknownTopicId(id) if id == Uuid::from_u128(8)
        ));
        assert!(matches!(
            m.leader(TOPIC, 0, 2),
            Err(ReplicaError::Partition(
                PartitionError::UnknownLeaderEpoch { .. }
            ))
        ));
    }

    #[tokio::test]
    async fn a_partition_stored_elsewhere_is_not_stored_here() {
        let dir = tempfile::tempdir().expect("dir");
        let elsewhere = PartitionImage {
            leader: 2,
            ..partition(&[2, 3], &[2, 3], 1)
        };
        let (m, _) = manager(dir.path(), &[], vec![elsewhere]).await;
        assert!(matches!(
            m.replica(TOPIC, 0),
            Err(ReplicaError::NotStoredHere)
        ));
    }

    #[tokio::test]
    async fn min_insync_replicas_come_from_the_topic_or_the_broker() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, topics) = manager(dir.path(), &[], vec![partition(&[1], &[1], 1)]).await;
        assert_eq!(m.min_insync_replicas(TOPIC), 1);
        resync(
            &topics,
            &[("min.insync.replicas", "2")],
            vec![partition(&[1], &[1], 1)],
            2,
        );
        assert_eq!(m.min_insync_replicas(TOPIC), 2);
    }
}
