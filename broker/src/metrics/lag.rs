//! Consumer lag, gathered when `/metrics` is scraped, so a cluster needs no
//! exporter beside it (kafka-exporter, Burrow).
//!
//! Each broker reports the groups it coordinates: their committed offsets
//! are its own, and a group lives on exactly one coordinator, so summing
//! over brokers never counts a group twice. The high watermark each lag
//! is measured from belongs to the partition's leader, which may be
//! another broker: the coordinator reads the ones it leads itself and
//! asks every other leader once per scrape with one ListOffsets
//! (latest, read_uncommitted: the high watermark, as a consumer sees the
//! end) over the inter-broker listener, all leaders at once and each
//! bounded by [`LOOKUP_TIMEOUT`]. A scrape therefore costs at most one
//! short connection per other broker, whatever the number of groups. A
//! leader that cannot be asked leaves its partitions without a lag series
//! (their committed offsets are still reported) and counts in
//! `gregor_consumer_lag_lookup_failures_total`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::inter_broker::DialError;
use crate::metadata::image::ClusterImage;
use crate::node::Node;

/// How long asking one leader may take before its partitions go without
/// lag for this scrape (Prometheus' default scrape timeout is 10 s).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// ListOffsets version asked: by topic name, with isolation level.
const VERSION: i16 = 7;

/// How the coordinator names itself to the leaders it asks.
const CLIENT_ID: &str = "gregor-lag";

/// Kafka's ListOffsets timestamp for "the latest offset".
const LATEST: i64 = -1;

/// A consumer group coordinated here, with its lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// Group id.
    pub group: String,
    /// State as clients print it.
    pub state: &'static str,
    /// Members now.
    pub members: usize,
    /// Each partition the group has committed an offset for.
    pub partitions: Vec<PartitionLag>,
}

/// One partition of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset: the next record the group reads.
    pub committed: i64,
    /// The partition's high watermark, when its leader answered.
    pub high_watermark: Option<i64>,
}

impl PartitionLag {
    /// Records not yet committed; never negative (a group may commit an
    /// offset past the end, e.g. one it reset to).
    pub fn lag(&self) -> Option<i64> {
        self.high_watermark.map(|hw| (hw - self.committed).max(0))
    }
}

impl GroupLag {
    /// The lag of every partition summed, when each is known.
    pub fn total_lag(&self) -> Option<i64> {
        self.partitions.iter().map(PartitionLag::lag).sum()
    }
}

/// Why a leader could not be asked.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    /// The leader could not be reached or asked.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// It did not answer in time.
    #[error("no answer within {LOOKUP_TIMEOUT:?}")]
    TimedOut,
}

/// The groups `node` coordinates, with the lag of each committed
/// partition.
pub async fn collect(node: &Node) -> Vec<GroupLag> {
    let reports = node.groups.report();
    let wanted: BTreeSet<(String, i32)> = reports
        .iter()
        .flat_map(|g| g.committed.iter().map(|(t, p, _)| (t.clone(), *p)))
        .collect();
    let ends = high_watermarks(node, &wanted).await;
    reports
        .into_iter()
        .map(|g| GroupLag {
            group: g.group_id,
            state: g.state,
            members: g.members,
            partitions: g
                .committed
                .into_iter()
                .map(|(topic, partition, committed)| PartitionLag {
                    high_watermark: ends.get(&(topic.clone(), partition)).copied(),
                    topic,
                    partition,
                    committed,
                })
                .collect(),
        })
        .collect()
}

/// The high watermarks of `wanted`: read here for the partitions led
/// here, asked of their leaders for the others. Partitions without a
/// leader, or whose leader did not answer, are missing.
async fn high_watermarks(
    node: &Node,
    wanted: &BTreeSet<(String, i32)>,
) -> HashMap<(String, i32), i64> {
    let image = node.image();
    let me = node.config.node_id;
    let mut ends = HashMap::new();
    let mut elsewhere: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in wanted {
        let Some(leader) = leader_of(&image, topic, *partition) else {
            continue;
        };
        if leader != me {
            elsewhere
                .entry(leader)
                .or_default()
                .push((topic.clone(), *partition));
        } else if let Some(p) = node
            .topics
            .partition(topic, *partition)
            .filter(|p| p.is_leader())
        {
            ends.insert((topic.clone(), *partition), p.watermarks().high_watermark);
        }
    }
    let asks = elsewhere.into_iter().map(|(leader, partitions)| {
        let image = &image;
        async move {
            let answer =
                tokio::time::timeout(LOOKUP_TIMEOUT, ask(node, image, leader, &partitions))
                    .await
                    .unwrap_or(Err(LookupError::TimedOut));
            (leader, answer)
        }
    });
    for (leader, answer) in futures_util::future::join_all(asks).await {
        match answer {
            Ok(found) => ends.extend(found),
            Err(e) => {
                node.metrics.lag_lookup_failures.inc();
                tracing::debug!(leader, error = %e, "cannot read high watermarks for consumer lag");
            }
        }
    }
    ends
}

/// The partition's leader, when it has one.
fn leader_of(image: &ClusterImage, topic: &str, partition: i32) -> Option<i32> {
    let p = image
        .topics
        .get(topic)?
        .partitions
        .get(usize::try_from(partition).ok()?)?;
    (p.leader >= 0).then_some(p.leader)
}

/// Asks `leader` for the high watermarks of `partitions`; those it
/// refuses (no longer the leader, say) are left out.
async fn ask(
    node: &Node,
    image: &ClusterImage,
    leader: i32,
    partitions: &[(String, i32)],
) -> Result<Vec<((String, i32), i64)>, LookupError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    request.isolation_level = 0;
    request.topics = by_topic
        .into_iter()
        .map(|(topic, indexes)| {
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_string()));
            t.partitions = indexes
                .into_iter()
                .map(|index| {
                    let mut p = ListOffsetsPartition::default();
                    p.partition_index = index;
                    p.current_leader_epoch = -1;
                    p.timestamp = LATEST;
                    p
                })
                .collect();
            t
        })
        .collect();
    let response = node
        .inter_broker
        .request(image, leader, CLIENT_ID, &request, VERSION)
        .await?;
    Ok(response
        .topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.name.to_string();
            t.partitions
                .into_iter()
                .filter(|p| p.error_code == 0 && p.offset >= 0)
                .map(move |p| ((topic.clone(), p.partition_index), p.offset))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(committed: i64, high_watermark: Option<i64>) -> PartitionLag {
        PartitionLag {
            topic: "t".into(),
            partition: 0,
            committed,
            high_watermark,
        }
    }

    #[test]
    fn lag_is_the_high_watermark_minus_the_committed_offset() {
        assert_eq!(partition(7, Some(10)).lag(), Some(3));
        assert_eq!(partition(10, Some(10)).lag(), Some(0));
        // Committed past the end (reset ahead): nothing to read, not -2.
        assert_eq!(partition(12, Some(10)).lag(), Some(0));
        assert_eq!(partition(7, None).lag(), None);
    }

    #[test]
    fn a_groups_total_needs_every_partition() {
        let mut g = GroupLag {
            group: "g".into(),
            state: "Stable",
            members: 1,
            partitions: vec![partition(1, Some(5)), partition(2, Some(4))],
        };
        assert_eq!(g.total_lag(), Some(6));
        g.partitions.push(partition(0, None));
        assert_eq!(g.total_lag(), None);
        g.partitions.clear();
        assert_eq!(g.total_lag(), Some(0));
    }
}
