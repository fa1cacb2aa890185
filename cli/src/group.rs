//! Membership of a consumer group with the KIP-848 protocol
//! (ConsumerGroupHeartbeat): the coordinator assigns partitions; the member
//! reports what it owns, commits offsets with its member epoch and leaves
//! when done. Works with Gregor and with Apache Kafka 4.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::cluster::{Cluster, TopicInfo};
use crate::error::{check, CliError};

const HEARTBEAT_VERSION: i16 = 0;
const OFFSET_FETCH_VERSION: i16 = 8;
const OFFSET_COMMIT_VERSION: i16 = 9;
const REBALANCE_TIMEOUT_MS: i32 = 60_000;
/// Epoch that leaves the group.
const LEAVE_EPOCH: i32 = -1;

/// What a heartbeat brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// Nothing new.
    Unchanged,
    /// The partitions of the topic this member owns from now on.
    Assigned(BTreeSet<i32>),
    /// The member was fenced: it must give up its partitions without
    /// committing; it rejoins on the next heartbeat.
    Fenced,
}

/// This consumer's place in a group.
pub struct Membership {
    group: String,
    coordinator: Option<i32>,
    member_id: String,
    epoch: i32,
    interval: Duration,
    next: Instant,
}

impl Membership {
    /// Not joined yet: the first heartbeat joins.
    pub fn new(group: &str) -> Self {
        Membership {
            group: group.to_owned(),
            coordinator: None,
            member_id: String::new(),
            epoch: 0,
            interval: Duration::from_secs(1),
            next: Instant::now(),
        }
    }

    /// Whether a heartbeat is due.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    async fn coordinator(&mut self, cluster: &mut Cluster) -> Result<i32, CliError> {
        if let Some(c) = self.coordinator {
            return Ok(c);
        }
        let c = cluster.coordinator(&self.group).await?;
        self.coordinator = Some(c);
        Ok(c)
    }

    /// Heartbeats, reporting `owned` partitions of `topic`.
    pub async fn heartbeat(
        &mut self,
        cluster: &mut Cluster,
        topic: &TopicInfo,
        owned: &BTreeSet<i32>,
    ) -> Result<Beat, CliError> {
        self.next = Instant::now() + self.interval;
        let coordinator = match self.coordinator(cluster).await {
            Ok(c) => c,
            // The coordinator is moving: try again at the next beat.
            Err(CliError::Kafka { .. }) => return Ok(Beat::Unchanged),
            Err(e) => return Err(e),
        };
        let mut req = ConsumerGroupHeartbeatRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.member_epoch = self.epoch;
        req.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
        req.subscribed_topic_names =
            Some(vec![TopicName(StrBytes::from_string(topic.name.clone()))]);
        let mut mine = TopicPartitions::default();
        mine.topic_id = topic.id;
        mine.partitions = owned.iter().copied().collect();
        req.topic_partitions = Some(if owned.is_empty() { vec![] } else { vec![mine] });
        let resp = match cluster.send_to(coordinator, &req, HEARTBEAT_VERSION).await {
            Ok(r) => r,
            Err(_) => {
                self.coordinator = None;
                return Ok(Beat::Unchanged);
            }
        };
        match ResponseError::try_from_code(resp.error_code) {
            None => {}
            Some(
                ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress,
            ) => {
                self.coordinator = None;
                return Ok(Beat::Unchanged);
            }
            Some(ResponseError::FencedMemberEpoch | ResponseError::UnknownMemberId) => {
                self.epoch = 0;
                self.member_id.clear();
                self.next = Instant::now();
                return Ok(Beat::Fenced);
            }
            Some(_) => check(
                resp.error_code,
                resp.error_message.as_deref(),
                format!("heartbeat to group {}", self.group),
            )?,
        }
        if let Some(id) = resp.member_id {
            self.member_id = id.to_string();
        }
        self.epoch = resp.member_epoch;
        if resp.heartbeat_interval_ms > 0 {
            self.interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
        }
        Ok(match resp.assignment {
            Some(a) => Beat::Assigned(
                a.topic_partitions
                    .iter()
                    .filter(|t| t.topic_id == topic.id)
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect(),
            ),
            None => Beat::Unchanged,
        })
    }

    /// The group's committed offsets for `partitions` of `topic` (those
    /// with none are left out).
    pub async fn committed(
        &mut self,
        cluster: &mut Cluster,
        topic: &str,
        partitions: &BTreeSet<i32>,
    ) -> Result<BTreeMap<i32, i64>, CliError> {
        let coordinator = self.coordinator(cluster).await?;
        let mut t = OffsetFetchRequestTopics::default();
        t.name = TopicName(StrBytes::from_string(topic.to_owned()));
        t.partition_indexes = partitions.iter().copied().collect();
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        g.topics = Some(vec![t]);
        let mut req = OffsetFetchRequest::default();
        req.groups = vec![g];
        let resp = cluster
            .send_to(coordinator, &req, OFFSET_FETCH_VERSION)
            .await?;
        let mut out = BTreeMap::new();
        for g in &resp.groups {
            check(
                g.error_code,
                None,
                format!("reading group {}'s offsets", self.group),
            )?;
            for t in &g.topics {
                for p in &t.partitions {
                    check(
                        p.error_code,
                        None,
                        format!("reading the offset of {topic}-{}", p.partition_index),
                    )?;
                    if p.committed_offset >= 0 {
                        out.insert(p.partition_index, p.committed_offset);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Commits `positions` (partition → next offset to read) of `topic`.
    pub async fn commit(
        &mut self,
        cluster: &mut Cluster,
        topic: &str,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<(), CliError> {
        if positions.is_empty() || self.epoch <= 0 {
            return Ok(());
        }
        let coordinator = self.coordinator(cluster).await?;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_owned()));
        t.partitions = positions
            .iter()
            .map(|(p, offset)| {
                let mut c = OffsetCommitRequestPartition::default();
                c.partition_index = *p;
                c.committed_offset = *offset;
                c.committed_leader_epoch = -1;
                c.committed_metadata = Some(StrBytes::default());
                c
            })
            .collect();
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.generation_id_or_member_epoch = self.epoch;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.topics = vec![t];
        let resp = cluster
            .send_to(coordinator, &req, OFFSET_COMMIT_VERSION)
            .await?;
        for t in &resp.topics {
            for p in &t.partitions {
                check(
                    p.error_code,
                    None,
                    format!("committing the offset of {topic}-{}", p.partition_index),
                )?;
            }
        }
        Ok(())
    }

    /// Leaves the group so its partitions move to the others at once.
    pub async fn leave(&mut self, cluster: &mut Cluster) -> Result<(), CliError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let coordinator = self.coordinator(cluster).await?;
        let mut req = ConsumerGroupHeartbeatRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.member_epoch = LEAVE_EPOCH;
        let resp = cluster
            .send_to(coordinator, &req, HEARTBEAT_VERSION)
            .await?;
        check(
            resp.error_code,
            resp.error_message.as_deref(),
            format!("leaving group {}", self.group),
        )
    }
}
