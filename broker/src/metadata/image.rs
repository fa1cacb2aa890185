//! The cluster as the metadata log describes it: brokers, topics, and for
//! every partition its replicas, ISR, leader and epochs. `apply` is a pure,
//! deterministic function, so every node that applies the same records holds
//! the same image; leader elections on fencing happen here for that reason.
//!
//! Versions of the image share structure: topics are a persistent map and a
//! topic's partitions a persistent vector, and the collections that change
//! rarely (ACLs, credentials, quotas, dynamic configs) are shared behind an
//! `Arc`. Cloning an image costs a few reference counts, and a record that
//! changes a partition copies that partition and the path to it, not the
//! cluster. Readers hold an `Arc<ClusterImage>` while the state machine
//! applies the next batch to its own clone.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::dynamic::{self, BrokerConfigs};
use crate::quota::store::ClientQuotas;
use crate::security::acl::AclSet;
use crate::security::sasl::scram::ScramCredential;
use crate::security::sasl::Mechanism;
use uuid::Uuid;

use super::features::FeatureLevels;
use super::records::{Applied, BrokerEndpoint, MetadataRecord, Refusal};

/// "No leader" in Kafka's encoding.
pub const NO_LEADER: i32 = -1;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// `node.id`.
    pub id: i32,
    /// The log index of its registration (KRaft's broker epoch).
    pub epoch: i64,
    /// The process that registered.
    pub incarnation: Uuid,
    /// The storage it registered with (nil: unknown).
    #[serde(default)]
    pub storage: Uuid,
    /// Advertised listeners.
    pub endpoints: Vec<BrokerEndpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced brokers lead nothing and are not in ISRs they could leave.
    pub fenced: bool,
}

impl BrokerRegistration {
    /// Its address on `listener`.
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
    /// Replicas being added by a reassignment.
    pub adding: Vec<i32>,
    /// Replicas being removed by a reassignment.
    pub removing: Vec<i32>,
    /// The replica that left the ISR most recently and has not rejoined
    /// it. When it left it held every record below the high watermark, and
    /// an `acks=all` write is acknowledged only while the ISR has at least
    /// `min.insync.replicas` members, so it holds every record acknowledged
    /// that way whenever the ISR is down to its last member. That is whom
    /// the partition falls back to when its last in-sync replica comes back
    /// without its data (KIP-966's eligible leader replicas, kept to the one
    /// that matters).
    #[serde(default)]
    pub last_left_isr: Option<i32>,
}

/// Topics by name, sharing structure between versions (serialized as a map,
/// like the `BTreeMap` it replaced).
pub type Topics = rpds::RedBlackTreeMapSync<String, TopicImage>;

/// A topic's partitions by index, sharing structure between versions
/// (serialized as a list, like the `Vec` it replaced).
pub type Partitions = rpds::VectorSync<PartitionImage>;

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Topic id.
    pub id: Uuid,
    /// Setting overrides.
    pub configs: BTreeMap<String, String>,
    /// Partitions by index.
    pub partitions: Partitions,
}

/// The whole cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterImage {
    /// The cluster id, set once by the first active controller.
    pub cluster_id: String,
    /// Registered brokers.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by name.
    pub topics: Topics,
    /// SCRAM credentials by user and mechanism.
    #[serde(default)]
    pub scram: Arc<BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>>,
    /// The ACLs in force.
    #[serde(default)]
    pub acls: Arc<AclSet>,
    /// The client quotas in force.
    #[serde(default)]
    pub quotas: Arc<ClientQuotas>,
    /// The dynamic broker settings, by broker id ("" for the cluster-wide
    /// default).
    #[serde(default)]
    pub broker_configs: Arc<BrokerConfigs>,
    /// The level of each cluster-wide feature.
    #[serde(default)]
    pub features: FeatureLevels,
    /// The next unreserved producer id.
    pub next_producer_id: i64,
}

impl ClusterImage {
    /// Brokers that are registered and not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// A partition, if it exists.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    /// Whether this image names `node` leader of `topic`'s partition
    /// `partition`.
    pub fn is_leader(&self, node: i32, topic: &str, partition: i32) -> bool {
        self.partition(topic, partition)
            .is_some_and(|p| p.leader == node)
    }

    /// A topic's name by id.
    pub fn topic_name(&self, id: Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.as_str())
    }

    /// Partitions not led by their preferred replica (the first) although
    /// it is live and in sync: where `auto.leader.rebalance.enable` moves
    /// leadership back.
    pub fn preferred_leader_elections(&self) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for (name, t) in &self.topics {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Some(&preferred) = p.replicas.first() {
                    if p.leader != preferred
                        && p.isr.contains(&preferred)
                        && self.is_live(preferred)
                    {
                        out.push((name.clone(), i as i32));
                    }
                }
            }
        }
        out
    }

    /// Applies one record; `index` is its position in the metadata log.
    pub fn apply(&mut self, index: u64, record: &MetadataRecord) -> Applied {
        match self.try_apply(index, record) {
            Ok(a) => a,
            Err(r) => Applied::Refused(r),
        }
    }

    fn try_apply(&mut self, index: u64, record: &MetadataRecord) -> Result<Applied, Refusal> {
        match record {
            MetadataRecord::InitCluster {
                cluster_id,
                bootstrap,
            } => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id.clone();
                    for record in bootstrap {
                        if let Applied::Refused(r) = self.apply(index, record) {
                            tracing::warn!(reason = %r, "a bootstrap record was refused");
                        }
                    }
                }
                Ok(Applied::Done)
            }
            MetadataRecord::RegisterBroker {
                id,
                incarnation,
                storage,
                endpoints,
                rack,
            } => {
                // A new process of a live broker id is refused, unless it
                // runs on the same storage: the old process then cannot be
                // running (each process locks its log directories), so this
                // is a restart, and its registration replaces (fences) the
                // old one at once instead of waiting out its session.
                let mut lost_storage = false;
                if let Some(old) = self.brokers.get(id) {
                    let restart = !storage.is_nil() && old.storage == *storage;
                    if !old.fenced && old.incarnation != *incarnation && !restart {
                        return Err(Refusal::DuplicateBroker(*id));
                    }
                    // Known storage replaced by other storage: the broker's
                    // disk was lost (or emptied) while it was down.
                    lost_storage =
                        !storage.is_nil() && !old.storage.is_nil() && old.storage != *storage;
                }
                let epoch = index as i64;
                // A restart leaves every ISR it could and leads nothing until
                // it is unfenced, exactly like a fenced broker.
                self.fence(*id);
                if lost_storage {
                    self.forget_replicas_of(*id);
                }
                self.brokers.insert(
                    *id,
                    BrokerRegistration {
                        id: *id,
                        epoch,
                        incarnation: *incarnation,
                        storage: *storage,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: true,
                    },
                );
                Ok(Applied::BrokerEpoch(epoch))
            }
            MetadataRecord::UnfenceBroker { id, epoch } => {
                self.check_epoch(*id, *epoch)?;
                if let Some(b) = self.brokers.get_mut(id) {
                    b.fenced = false;
                }
                self.unfence(*id);
                Ok(Applied::Done)
            }
            MetadataRecord::FenceBroker { id, epoch } => {
                self.check_epoch(*id, *epoch)?;
                self.fence(*id);
                if let Some(b) = self.brokers.get_mut(id) {
                    b.fenced = true;
                }
                Ok(Applied::Done)
            }
            MetadataRecord::CreateTopic {
                name,
                id,
                configs,
                assignment,
            } => {
                if self.topics.contains_key(name) {
                    return Err(Refusal::TopicExists(name.clone()));
                }
                let partitions = assignment
                    .iter()
                    .map(|replicas| self.new_partition(replicas))
                    .collect::<Result<Partitions, _>>()?;
                self.topics.insert_mut(
                    name.clone(),
                    TopicImage {
                        id: *id,
                        configs: configs.clone(),
                        partitions,
                    },
                );
                Ok(Applied::Done)
            }
            MetadataRecord::CreatePartitions { name, assignment } => {
                let new = assignment
                    .iter()
                    .map(|replicas| self.new_partition(replicas))
                    .collect::<Result<Vec<_>, _>>()?;
                let topic = self.topic_mut(name)?;
                for p in new {
                    topic.partitions.push_back_mut(p);
                }
                Ok(Applied::Done)
            }
            MetadataRecord::DeleteTopic { name } => {
                if !self.topics.remove_mut(name) {
                    return Err(unknown_topic(name));
                }
                Ok(Applied::Done)
            }
            MetadataRecord::SetTopicConfigs { name, configs } => {
                self.topic_mut(name)?.configs = configs.clone();
                Ok(Applied::Done)
            }
            MetadataRecord::ChangeIsr {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.change_isr(
                topic,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
            MetadataRecord::ElectPreferredLeader { topic, partition } => {
                self.elect_preferred(topic, *partition)
            }
            MetadataRecord::Reassign {
                topic,
                partition,
                target,
            } => self.reassign(topic, *partition, target.as_deref()),
            MetadataRecord::AllocateProducerIds { count } => {
                let first = self.next_producer_id;
                self.next_producer_id = first.saturating_add((*count).max(1));
                Ok(Applied::ProducerIds(first))
            }
            MetadataRecord::SetScramCredential {
                user,
                mechanism,
                credential,
            } => {
                Arc::make_mut(&mut self.scram)
                    .entry(user.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
                Ok(Applied::Done)
            }
            MetadataRecord::DeleteScramCredential { user, mechanism } => {
                if !self
                    .scram
                    .get(user)
                    .is_some_and(|c| c.contains_key(mechanism))
                {
                    return Err(Refusal::ResourceNotFound(format!(
                        "user {user:?} has no {mechanism} credential"
                    )));
                }
                let scram = Arc::make_mut(&mut self.scram);
                if let Some(credentials) = scram.get_mut(user) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        scram.remove(user);
                    }
                }
                Ok(Applied::Done)
            }
            MetadataRecord::CreateAcls { acls } => {
                let set = Arc::make_mut(&mut self.acls);
                for acl in acls {
                    set.insert(acl.clone());
                }
                Ok(Applied::Done)
            }
            MetadataRecord::DeleteAcls { acls } => {
                let set = Arc::make_mut(&mut self.acls);
                for acl in acls {
                    set.remove(acl);
                }
                Ok(Applied::Done)
            }
            MetadataRecord::SetClientQuotas { entity, changes } => {
                Arc::make_mut(&mut self.quotas).apply(entity, changes);
                Ok(Applied::Done)
            }
            MetadataRecord::AlterBrokerConfigs { resource, changes } => {
                dynamic::apply(Arc::make_mut(&mut self.broker_configs), resource, changes);
                Ok(Applied::Done)
            }
            MetadataRecord::SetFeatureLevel { name, level } => {
                self.features
                    .set(index, name, *level)
                    .map_err(|e| Refusal::InvalidUpdateVersion(e.to_string()))?;
                Ok(Applied::Done)
            }
        }
    }

    fn check_epoch(&self, id: i32, epoch: i64) -> Result<(), Refusal> {
        match self.brokers.get(&id) {
            Some(b) if b.epoch == epoch => Ok(()),
            Some(b) => Err(Refusal::StaleBrokerEpoch(format!(
                "broker {id} is registered with epoch {}, not {epoch}",
                b.epoch
            ))),
            None => Err(Refusal::StaleBrokerEpoch(format!(
                "broker {id} is not registered"
            ))),
        }
    }

    /// The topic, copied first if another version shares it. (A missing
    /// one is looked for without copying anything.)
    fn topic_mut(&mut self, name: &str) -> Result<&mut TopicImage, Refusal> {
        if !self.topics.contains_key(name) {
            return Err(unknown_topic(name));
        }
        self.topics.get_mut(name).ok_or_else(|| unknown_topic(name))
    }

    /// The partition, copied first (with the path to it) if another
    /// version shares it.
    fn partition_mut(&mut self, topic: &str, p: i32) -> Result<&mut PartitionImage, Refusal> {
        let missing = || Refusal::UnknownTopicOrPartition(format!("{topic}-{p} does not exist"));
        let i = usize::try_from(p).map_err(|_| missing())?;
        if self.partition(topic, p).is_none() {
            return Err(missing());
        }
        self.topic_mut(topic)?
            .partitions
            .get_mut(i)
            .ok_or_else(missing)
    }

    /// Changes every partition `affected` selects with `change`, copying
    /// those partitions only: the others stay shared with older versions.
    fn change_partitions(
        &mut self,
        affected: impl Fn(&PartitionImage) -> bool,
        mut change: impl FnMut(&mut PartitionImage),
    ) {
        let targets: Vec<(String, usize)> = self
            .topics
            .iter()
            .flat_map(|(name, t)| {
                t.partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| affected(p))
                    .map(move |(i, _)| (name.clone(), i))
            })
            .collect();
        for (name, i) in targets {
            if let Some(p) = self
                .topics
                .get_mut(&name)
                .and_then(|t| t.partitions.get_mut(i))
            {
                change(p);
            }
        }
    }

    fn new_partition(&self, replicas: &[i32]) -> Result<PartitionImage, Refusal> {
        check_replica_list(replicas)?;
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| self.is_live(*r))
            .collect();
        // A partition whose replicas are all down starts offline with every
        // replica in its ISR, so the first of them to come back leads it.
        let (leader, isr) = match isr.first() {
            Some(l) => (*l, isr),
            None => (NO_LEADER, replicas.to_vec()),
        };
        Ok(PartitionImage {
            replicas: replicas.to_vec(),
            isr,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
            last_left_isr: None,
        })
    }

    /// Takes `id` out of every ISR it can leave and moves its leaderships.
    fn fence(&mut self, id: i32) {
        let live: Vec<i32> = self
            .live_brokers()
            .map(|b| b.id)
            .filter(|b| *b != id)
            .collect();
        // The last in-sync copy stays in the ISR (so it can lead again
        // when it returns) but the partition goes offline if it led it.
        let affected =
            |p: &PartitionImage| p.isr.contains(&id) && (p.isr != [id] || p.leader == id);
        self.change_partitions(affected, |p| {
            let rest: Vec<i32> = p.isr.iter().copied().filter(|r| *r != id).collect();
            if rest.is_empty() {
                p.leader = NO_LEADER;
                p.leader_epoch += 1;
                p.partition_epoch += 1;
                return;
            }
            p.isr = rest;
            p.last_left_isr = Some(id);
            if p.leader == id {
                p.leader = first_live_in_isr(p, &live);
                p.leader_epoch += 1;
            }
            p.partition_epoch += 1;
        });
    }

    /// Broker `id` came back without its data: where it was the last
    /// in-sync replica (which fencing keeps), the replica that left the ISR
    /// last takes its place, leading if it is live; it holds every record
    /// acknowledged with `acks=all`, and the returning broker holds nothing.
    /// Without such a replica no copy of the partition survives, and the
    /// broker stays in the ISR, to lead it again empty. It is no longer a
    /// replica to fall back to either.
    fn forget_replicas_of(&mut self, id: i32) {
        let live: Vec<i32> = self.live_brokers().map(|b| b.id).collect();
        let affected = |p: &PartitionImage| {
            p.last_left_isr == Some(id) || (p.isr == [id] && p.last_left_isr.is_some())
        };
        self.change_partitions(affected, |p| {
            if p.last_left_isr == Some(id) {
                p.last_left_isr = None;
            }
            if p.isr != [id] {
                return;
            }
            let Some(heir) = p.last_left_isr.take() else {
                return;
            };
            p.isr = vec![heir];
            if p.leader == id || p.leader == NO_LEADER {
                p.leader = if live.contains(&heir) {
                    heir
                } else {
                    NO_LEADER
                };
                p.leader_epoch += 1;
            }
            p.partition_epoch += 1;
        });
    }

    /// Gives leaderless partitions whose ISR holds `id` a leader again.
    fn unfence(&mut self, id: i32) {
        let affected = |p: &PartitionImage| p.leader == NO_LEADER && p.isr.contains(&id);
        self.change_partitions(affected, |p| {
            p.leader = id;
            p.leader_epoch += 1;
            p.partition_epoch += 1;
        });
    }

    fn change_isr(
        &mut self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[i32],
    ) -> Result<Applied, Refusal> {
        let live: Vec<i32> = self.live_brokers().map(|b| b.id).collect();
        let p = self.partition_mut(topic, partition)?;
        if p.leader != leader || p.leader_epoch != leader_epoch {
            return Err(Refusal::FencedLeaderEpoch(format!(
                "{topic}-{partition}: leader {leader} epoch {leader_epoch} is not the current leader {} epoch {}",
                p.leader, p.leader_epoch
            )));
        }
        if p.partition_epoch != partition_epoch {
            return Err(Refusal::InvalidUpdateVersion(format!(
                "{topic}-{partition}: partition epoch {partition_epoch} is stale (now {})",
                p.partition_epoch
            )));
        }
        check_replica_list(isr)?;
        if !isr.contains(&leader) {
            return Err(Refusal::InvalidReplicaAssignment(format!(
                "{topic}-{partition}: the ISR must contain its leader {leader}"
            )));
        }
        if let Some(bad) = isr
            .iter()
            .find(|r| !p.replicas.contains(r) || (!p.isr.contains(r) && !live.contains(r)))
        {
            return Err(Refusal::IneligibleReplica(format!(
                "{topic}-{partition}: broker {bad} cannot join the ISR (not a live replica)"
            )));
        }
        let left = p
            .replicas
            .iter()
            .copied()
            .find(|r| p.isr.contains(r) && !isr.contains(r));
        if p.last_left_isr.is_some_and(|r| isr.contains(&r)) {
            p.last_left_isr = None;
        }
        if left.is_some() {
            p.last_left_isr = left;
        }
        p.isr = isr.to_vec();
        p.partition_epoch += 1;
        finish_reassignment(p, &live);
        Ok(Applied::Partition {
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        })
    }

    fn elect_preferred(&mut self, topic: &str, partition: i32) -> Result<Applied, Refusal> {
        let live: Vec<i32> = self.live_brokers().map(|b| b.id).collect();
        let p = self.partition_mut(topic, partition)?;
        let Some(&preferred) = p.replicas.first() else {
            return Err(Refusal::PreferredLeaderNotAvailable(format!(
                "{topic}-{partition} has no replicas"
            )));
        };
        if p.leader == preferred {
            return Err(Refusal::ElectionNotNeeded(format!(
                "{topic}-{partition} is already led by its preferred replica {preferred}"
            )));
        }
        if !p.isr.contains(&preferred) || !live.contains(&preferred) {
            return Err(Refusal::PreferredLeaderNotAvailable(format!(
                "{topic}-{partition}: preferred replica {preferred} is not a live member of the ISR"
            )));
        }
        p.leader = preferred;
        p.leader_epoch += 1;
        p.partition_epoch += 1;
        Ok(Applied::Partition {
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        })
    }

    fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Result<Applied, Refusal> {
        let live: Vec<i32> = self.live_brokers().map(|b| b.id).collect();
        let registered: Vec<i32> = self.brokers.keys().copied().collect();
        let p = self.partition_mut(topic, partition)?;
        let original: Vec<i32> = p
            .replicas
            .iter()
            .copied()
            .filter(|r| !p.adding.contains(r))
            .collect();
        let target = match target {
            Some(t) => t.to_vec(),
            None if p.adding.is_empty() && p.removing.is_empty() => {
                return Err(Refusal::NoReassignmentInProgress(format!(
                    "{topic}-{partition} is not being reassigned"
                )))
            }
            None => original.clone(),
        };
        check_replica_list(&target)?;
        if let Some(b) = target.iter().find(|b| !registered.contains(b)) {
            return Err(Refusal::InvalidReplicaAssignment(format!(
                "broker {b} is not registered"
            )));
        }
        // During a move the partition is replicated to the new replicas
        // followed by the ones being removed, as in Kafka; it ends when
        // every new replica is in the ISR. (So a cancelled move keeps the
        // old replicas but not necessarily their old order.)
        let mut replicas = target.clone();
        replicas.extend(original.iter().filter(|r| !target.contains(r)));
        p.adding = target
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect();
        p.removing = original
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        p.isr.retain(|r| replicas.contains(r));
        p.replicas = replicas;
        p.partition_epoch += 1;
        finish_reassignment(p, &live);
        Ok(Applied::Partition {
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        })
    }
}

/// Completes a reassignment whose new replicas are all in the ISR: the
/// replicas become the target, the removed ones leave, and leadership moves
/// if the leader was removed.
fn finish_reassignment(p: &mut PartitionImage, live: &[i32]) {
    if p.adding.iter().any(|r| !p.isr.contains(r)) {
        return;
    }
    if p.adding.is_empty() && p.removing.is_empty() {
        return;
    }
    let removing = std::mem::take(&mut p.removing);
    p.adding.clear();
    p.replicas.retain(|r| !removing.contains(r));
    p.isr.retain(|r| !removing.contains(r));
    if p.last_left_isr.is_some_and(|r| !p.replicas.contains(&r)) {
        p.last_left_isr = None;
    }
    if removing.contains(&p.leader) || p.leader == NO_LEADER {
        p.leader = first_live_in_isr(p, live);
        p.leader_epoch += 1;
    }
    p.partition_epoch += 1;
}

/// The leader to elect: the first replica (in preference order) that is in
/// the ISR and live, else none (unclean election never happens).
fn first_live_in_isr(p: &PartitionImage, live: &[i32]) -> i32 {
    p.replicas
        .iter()
        .copied()
        .find(|r| p.isr.contains(r) && live.contains(r))
        .unwrap_or(NO_LEADER)
}

fn check_replica_list(replicas: &[i32]) -> Result<(), Refusal> {
    if replicas.is_empty() {
        return Err(Refusal::InvalidReplicaAssignment(
            "a partition needs at least one replica".into(),
        ));
    }
    let mut seen = replicas.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != replicas.len() {
        return Err(Refusal::InvalidReplicaAssignment(format!(
            "replica list {replicas:?} names a broker twice"
        )));
    }
    Ok(())
}

fn unknown_topic(name: &str) -> Refusal {
    Refusal::UnknownTopicOrPartition(format!("topic `{name}` does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(img: &mut ClusterImage, index: u64, id: i32) -> i64 {
        let rec = MetadataRecord::RegisterBroker {
            id,
            incarnation: Uuid::from_u128(id as u128 * 1000 + index as u128),
            storage: Uuid::from_u128(id as u128),
            endpoints: vec![],
            rack: None,
        };
        match img.apply(index, &rec) {
            Applied::BrokerEpoch(e) => e,
            other => panic!("{other:?}"),
        }
    }

    /// Three live brokers (epochs 1, 2, 3) and topic `t` with one
    /// partition on replicas [1, 2, 3].
    fn cluster() -> ClusterImage {
        let mut img = ClusterImage::default();
        for id in 1..=3 {
            let epoch = register(&mut img, id as u64, id);
            assert_eq!(
                img.apply(10 + id as u64, &MetadataRecord::UnfenceBroker { id, epoch }),
                Applied::Done
            );
        }
        img.apply(
            20,
            &MetadataRecord::CreateTopic {
                name: "t".into(),
                id: Uuid::from_u128(7),
                configs: BTreeMap::new(),
                assignment: vec![vec![1, 2, 3]],
            },
        );
        img
    }

    fn p(img: &ClusterImage) -> &PartitionImage {
        img.partition("t", 0).expect("partition")
    }

    #[test]
    fn new_partitions_are_led_by_their_first_live_replica() {
        let img = cluster();
        assert_eq!(p(&img).leader, 1);
        assert_eq!(p(&img).isr, vec![1, 2, 3]);
    }

    #[test]
    fn fencing_moves_leadership_within_the_isr() {
        let mut img = cluster();
        img.apply(30, &MetadataRecord::FenceBroker { id: 1, epoch: 1 });
        assert_eq!((p(&img).leader, p(&img).leader_epoch), (2, 1));
        assert_eq!(p(&img).isr, vec![2, 3]);
        img.apply(31, &MetadataRecord::FenceBroker { id: 2, epoch: 2 });
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (3, vec![3]));
        // The last in-sync replica stays in the ISR; the partition goes
        // offline instead of electing an out-of-sync replica.
        img.apply(32, &MetadataRecord::FenceBroker { id: 3, epoch: 3 });
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (NO_LEADER, vec![3]));
        // Broker 1 returning does not lead: it is not in the ISR.
        let e = register(&mut img, 33, 1);
        img.apply(34, &MetadataRecord::UnfenceBroker { id: 1, epoch: e });
        assert_eq!(p(&img).leader, NO_LEADER);
        let e = register(&mut img, 35, 3);
        img.apply(36, &MetadataRecord::UnfenceBroker { id: 3, epoch: e });
        assert_eq!((p(&img).leader, p(&img).leader_epoch), (3, 4));
    }

    /// A new process of broker `id` on `storage`, and its first heartbeat.
    fn restart_on(img: &mut ClusterImage, index: u64, id: i32, storage: u128) {
        let rec = MetadataRecord::RegisterBroker {
            id,
            incarnation: Uuid::from_u128(index as u128),
            storage: Uuid::from_u128(storage),
            endpoints: vec![],
            rack: None,
        };
        let Applied::BrokerEpoch(epoch) = img.apply(index, &rec) else {
            panic!("registration refused");
        };
        assert_eq!(
            img.apply(index + 1, &MetadataRecord::UnfenceBroker { id, epoch }),
            Applied::Done
        );
    }

    #[test]
    fn a_last_in_sync_replica_back_without_its_data_leads_nothing() {
        // Broker 2 is fenced, then the leader (1) drops 3 from the ISR, then
        // 1 is fenced too: the last in-sync replica, kept in the ISR.
        let shrunk = || {
            let mut img = cluster();
            img.apply(30, &MetadataRecord::FenceBroker { id: 2, epoch: 2 });
            assert_eq!(p(&img).last_left_isr, Some(2));
            let shrink = MetadataRecord::ChangeIsr {
                topic: "t".into(),
                partition: 0,
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 1,
                isr: vec![1],
            };
            assert!(matches!(img.apply(31, &shrink), Applied::Partition { .. }));
            assert_eq!(p(&img).last_left_isr, Some(3));
            img.apply(32, &MetadataRecord::FenceBroker { id: 1, epoch: 1 });
            assert_eq!((p(&img).leader, p(&img).isr.clone()), (NO_LEADER, vec![1]));
            img
        };

        // Back on its own storage, it leads again, as before.
        let mut img = shrunk();
        restart_on(&mut img, 40, 1, 1);
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (1, vec![1]));

        // Back on an empty disk: 3, the last to leave the ISR, leads.
        let mut img = shrunk();
        restart_on(&mut img, 40, 1, 101);
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (3, vec![3]));
        assert_eq!(p(&img).last_left_isr, None);

        // The same with 3 down: offline until 3 returns, then 3 leads.
        let mut img = shrunk();
        img.apply(35, &MetadataRecord::FenceBroker { id: 3, epoch: 3 });
        restart_on(&mut img, 40, 1, 101);
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (NO_LEADER, vec![3]));
        restart_on(&mut img, 50, 3, 3);
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (3, vec![3]));

        // 3 lost its disk as well: no copy is left, and 1 leads it again
        // (empty) rather than keep it offline for good.
        let mut img = shrunk();
        img.apply(35, &MetadataRecord::FenceBroker { id: 3, epoch: 3 });
        restart_on(&mut img, 40, 3, 103);
        assert_eq!(p(&img).last_left_isr, None);
        restart_on(&mut img, 50, 1, 101);
        assert_eq!((p(&img).leader, p(&img).isr.clone()), (1, vec![1]));

        // A replica that rejoins the ISR is no longer the one that left.
        let mut img = cluster();
        img.apply(30, &MetadataRecord::FenceBroker { id: 2, epoch: 2 });
        restart_on(&mut img, 31, 2, 2);
        let grow = MetadataRecord::ChangeIsr {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 1,
            isr: vec![1, 3, 2],
        };
        assert!(matches!(img.apply(33, &grow), Applied::Partition { .. }));
        assert_eq!(p(&img).last_left_isr, None);
    }

    #[test]
    fn a_restart_on_the_same_storage_replaces_the_live_registration() {
        let mut img = cluster();
        let rec = MetadataRecord::RegisterBroker {
            id: 2,
            incarnation: Uuid::from_u128(99),
            storage: Uuid::from_u128(2),
            endpoints: vec![],
            rack: None,
        };
        assert_eq!(img.apply(40, &rec), Applied::BrokerEpoch(40));
        // Fenced until the new process heartbeats: it leads nothing yet.
        assert!(img.brokers[&2].fenced);
        assert_eq!(img.brokers[&2].incarnation, Uuid::from_u128(99));
    }

    #[test]
    fn a_second_live_process_cannot_take_a_broker_id() {
        let mut img = cluster();
        // Other storage, or storage unknown (an older broker).
        for storage in [Uuid::from_u128(77), Uuid::nil()] {
            let rec = MetadataRecord::RegisterBroker {
                id: 2,
                incarnation: Uuid::from_u128(99),
                storage,
                endpoints: vec![],
                rack: None,
            };
            assert_eq!(
                img.apply(40, &rec),
                Applied::Refused(Refusal::DuplicateBroker(2))
            );
        }
        let rec = MetadataRecord::RegisterBroker {
            id: 2,
            incarnation: Uuid::from_u128(99),
            storage: Uuid::from_u128(77),
            endpoints: vec![],
            rack: None,
        };
        assert_eq!(
            img.apply(40, &rec),
            Applied::Refused(Refusal::DuplicateBroker(2))
        );
        // Once the old process is fenced (its heartbeats stopped), a new
        // process may register the id.
        img.apply(41, &MetadataRecord::FenceBroker { id: 2, epoch: 2 });
        assert_eq!(img.apply(42, &rec), Applied::BrokerEpoch(42));
    }

    #[test]
    fn stale_epochs_are_refused() {
        let mut img = cluster();
        let cases = [
            (MetadataRecord::FenceBroker { id: 1, epoch: 9 }, "epoch"),
            (
                MetadataRecord::ChangeIsr {
                    topic: "t".into(),
                    partition: 0,
                    leader: 2,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    isr: vec![2],
                },
                "not the current leader",
            ),
            (
                MetadataRecord::ChangeIsr {
                    topic: "t".into(),
                    partition: 0,
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 5,
                    isr: vec![1],
                },
                "stale",
            ),
            (
                MetadataRecord::ChangeIsr {
                    topic: "t".into(),
                    partition: 0,
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    isr: vec![2, 3],
                },
                "must contain its leader",
            ),
            (
                MetadataRecord::ChangeIsr {
                    topic: "t".into(),
                    partition: 0,
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    isr: vec![1, 4],
                },
                "cannot join",
            ),
        ];
        for (rec, text) in cases {
            match img.apply(50, &rec) {
                Applied::Refused(r) => assert!(r.to_string().contains(text), "{rec:?}: {r}"),
                other => panic!("{rec:?} was applied: {other:?}"),
            }
        }
        assert_eq!(p(&img).partition_epoch, 0);
    }

    #[test]
    fn isr_shrinks_and_expands_through_the_leader() {
        let mut img = cluster();
        let change = |isr: Vec<i32>, partition_epoch| MetadataRecord::ChangeIsr {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: 0,
            partition_epoch,
            isr,
        };
        assert_eq!(
            img.apply(60, &change(vec![1, 2], 0)),
            Applied::Partition {
                leader_epoch: 0,
                partition_epoch: 1
            }
        );
        assert_eq!(p(&img).isr, vec![1, 2]);
        img.apply(61, &change(vec![1, 2, 3], 1));
        assert_eq!(p(&img).isr, vec![1, 2, 3]);
    }

    #[test]
    fn preferred_leader_election() {
        let mut img = cluster();
        assert!(matches!(
            img.apply(
                70,
                &MetadataRecord::ElectPreferredLeader {
                    topic: "t".into(),
                    partition: 0
                }
            ),
            Applied::Refused(Refusal::ElectionNotNeeded(_))
        ));
        img.apply(71, &MetadataRecord::FenceBroker { id: 1, epoch: 1 });
        let e = register(&mut img, 72, 1);
        img.apply(73, &MetadataRecord::UnfenceBroker { id: 1, epoch: e });
        let elect = MetadataRecord::ElectPreferredLeader {
            topic: "t".into(),
            partition: 0,
        };
        // Not back in the ISR yet.
        assert!(matches!(
            img.apply(74, &elect),
            Applied::Refused(Refusal::PreferredLeaderNotAvailable(_))
        ));
        let cur = p(&img).clone();
        img.apply(
            75,
            &MetadataRecord::ChangeIsr {
                topic: "t".into(),
                partition: 0,
                leader: cur.leader,
                leader_epoch: cur.leader_epoch,
                partition_epoch: cur.partition_epoch,
                isr: vec![2, 3, 1],
            },
        );
        assert_eq!(img.preferred_leader_elections(), vec![("t".to_string(), 0)]);
        assert!(matches!(img.apply(76, &elect), Applied::Partition { .. }));
        assert_eq!(p(&img).leader, 1);
        assert!(img.preferred_leader_elections().is_empty());
    }

    #[test]
    fn reassignment_completes_when_new_replicas_are_in_sync() {
        let mut img = cluster();
        let e = register(&mut img, 80, 4);
        img.apply(81, &MetadataRecord::UnfenceBroker { id: 4, epoch: e });
        img.apply(
            82,
            &MetadataRecord::Reassign {
                topic: "t".into(),
                partition: 0,
                target: Some(vec![2, 3, 4]),
            },
        );
        let during = p(&img).clone();
        assert_eq!(during.replicas, vec![2, 3, 4, 1]);
        assert_eq!(
            (during.adding.clone(), during.removing.clone()),
            (vec![4], vec![1])
        );
        assert_eq!(during.leader, 1);
        img.apply(
            83,
            &MetadataRecord::ChangeIsr {
                topic: "t".into(),
                partition: 0,
                leader: 1,
                leader_epoch: during.leader_epoch,
                partition_epoch: during.partition_epoch,
                isr: vec![1, 2, 3, 4],
            },
        );
        let after = p(&img);
        assert_eq!(after.replicas, vec![2, 3, 4]);
        assert_eq!(after.isr, vec![2, 3, 4]);
        assert_eq!(after.leader, 2);
        assert!(after.adding.is_empty() && after.removing.is_empty());
    }

    #[test]
    fn cancelling_a_reassignment_restores_the_replicas() {
        let mut img = cluster();
        let e = register(&mut img, 90, 4);
        img.apply(91, &MetadataRecord::UnfenceBroker { id: 4, epoch: e });
        let reassign = |target| MetadataRecord::Reassign {
            topic: "t".into(),
            partition: 0,
            target,
        };
        assert!(matches!(
            img.apply(92, &reassign(None)),
            Applied::Refused(Refusal::NoReassignmentInProgress(_))
        ));
        img.apply(93, &reassign(Some(vec![4, 2, 3])));
        img.apply(94, &reassign(None));
        let mut replicas = p(&img).replicas.clone();
        replicas.sort_unstable();
        assert_eq!(replicas, vec![1, 2, 3]);
        assert!(p(&img).adding.is_empty() && p(&img).removing.is_empty());
        assert_eq!(p(&img).leader, 1);
    }

    /// Whether two versions share one partition (rather than hold copies).
    fn shared(a: &ClusterImage, b: &ClusterImage, topic: &str, partition: i32) -> bool {
        match (a.partition(topic, partition), b.partition(topic, partition)) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            _ => false,
        }
    }

    #[test]
    fn a_record_copies_only_the_partitions_it_changes() {
        // Brokers 1-4; `t` on 1,2,3; `u`'s partition 1 on 2,3,4.
        let mut base = cluster();
        let e = register(&mut base, 21, 4);
        base.apply(22, &MetadataRecord::UnfenceBroker { id: 4, epoch: e });
        base.apply(
            23,
            &MetadataRecord::CreateTopic {
                name: "u".into(),
                id: Uuid::from_u128(8),
                configs: BTreeMap::new(),
                assignment: vec![vec![1, 2, 3], vec![2, 3, 4], vec![1, 2, 3]],
            },
        );
        let all = [("t", 0), ("u", 0), ("u", 1), ("u", 2)];
        let cases: Vec<(MetadataRecord, &[(&str, i32)])> = vec![
            (
                MetadataRecord::ChangeIsr {
                    topic: "u".into(),
                    partition: 1,
                    leader: 2,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    isr: vec![2, 3],
                },
                &[("u", 1)],
            ),
            (MetadataRecord::FenceBroker { id: 4, epoch: e }, &[("u", 1)]),
            (
                MetadataRecord::FenceBroker { id: 1, epoch: 1 },
                &[("t", 0), ("u", 0), ("u", 2)],
            ),
            (
                MetadataRecord::SetTopicConfigs {
                    name: "u".into(),
                    configs: BTreeMap::from([("retention.ms".into(), "1".into())]),
                },
                &[],
            ),
            (
                MetadataRecord::CreatePartitions {
                    name: "t".into(),
                    assignment: vec![vec![3, 4, 1]],
                },
                &[],
            ),
            (
                MetadataRecord::DeleteTopic { name: "t".into() },
                &[("t", 0)],
            ),
            (
                MetadataRecord::CreateAcls {
                    acls: Default::default(),
                },
                &[],
            ),
        ];
        for (record, changed) in cases {
            let mut next = base.clone();
            let applied = next.apply(30, &record);
            assert!(
                !matches!(applied, Applied::Refused(_)),
                "{record:?}: {applied:?}"
            );
            for (topic, partition) in all {
                assert_eq!(
                    shared(&base, &next, topic, partition),
                    !changed.contains(&(topic, partition)),
                    "{record:?}: {topic}-{partition}"
                );
            }
            // The older version is as it was.
            assert_eq!(base.partition("u", 1).map(|p| p.isr.len()), Some(3));
            assert!(Arc::ptr_eq(&base.scram, &next.scram));
        }
    }

    /// An image as versions before the persistent collections wrote it
    /// into `snapshot.json` (topics a JSON object, partitions a list, the
    /// shared collections inline).
    const EARLIER_IMAGE: &str = r#"{
        "cluster_id": "c",
        "brokers": {"1": {"id": 1, "epoch": 3, "incarnation": "00000000-0000-0000-0000-000000000001",
            "storage": "00000000-0000-0000-0000-000000000002",
            "endpoints": [{"listener": "PLAINTEXT", "host": "a", "port": 9092}],
            "rack": null, "fenced": false}},
        "topics": {
            "a": {"id": "00000000-0000-0000-0000-00000000000a", "configs": {"cleanup.policy": "compact"},
                "partitions": [
                    {"replicas": [1], "isr": [1], "leader": 1, "leader_epoch": 2, "partition_epoch": 5,
                     "adding": [], "removing": [], "last_left_isr": null},
                    {"replicas": [1], "isr": [1], "leader": -1, "leader_epoch": 0, "partition_epoch": 0,
                     "adding": [], "removing": []}]},
            "b": {"id": "00000000-0000-0000-0000-00000000000b", "configs": {}, "partitions": []}},
        "scram": {},
        "acls": [],
        "broker_configs": {"": {"log.retention.ms": "1000"}},
        "next_producer_id": 7000
    }"#;

    #[test]
    fn an_image_written_by_earlier_versions_loads() {
        let img: ClusterImage = serde_json::from_str(EARLIER_IMAGE).expect("loads");
        assert_eq!(img.topics.size(), 2);
        let a = &img.topics["a"];
        assert_eq!(a.configs["cleanup.policy"], "compact");
        assert_eq!(a.partitions.len(), 2);
        assert_eq!(
            (a.partitions[0].leader_epoch, a.partitions[1].leader),
            (2, NO_LEADER)
        );
        assert_eq!(img.broker_configs[""]["log.retention.ms"], "1000");
        assert_eq!(img.next_producer_id, 7000);
        // Written again, it has the same shape, and loads as the same image.
        let written = serde_json::to_value(&img).expect("serializes");
        let earlier: serde_json::Value = serde_json::from_str(EARLIER_IMAGE).expect("json");
        assert_eq!(
            written["topics"]["a"]["partitions"][0],
            earlier["topics"]["a"]["partitions"][0]
        );
        assert_eq!(written["brokers"], earlier["brokers"]);
        assert_eq!(written["broker_configs"], earlier["broker_configs"]);
        let again: ClusterImage = serde_json::from_value(written).expect("loads again");
        assert_eq!(again, img);
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let mut img = ClusterImage::default();
        let a = img.apply(1, &MetadataRecord::AllocateProducerIds { count: 1000 });
        let b = img.apply(2, &MetadataRecord::AllocateProducerIds { count: 1000 });
        assert_eq!(
            (a, b),
            (Applied::ProducerIds(0), Applied::ProducerIds(1000))
        );
    }
}
