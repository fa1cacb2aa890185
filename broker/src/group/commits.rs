//! A group's committed offsets: commits (checked against the committing
//! member, confirmed once replicated), lookups and deletions.

use std::collections::{BTreeMap, HashSet};

use gregor_client::batch::Transactional;

use super::coordinator::{replicated, GroupCoordinator, Inner};
use super::error::GroupError;
use super::membership::MemberIdentity;
use super::offset_records::Committed;
use super::state::GroupState;
use super::subscription::subscribed_topics;
use crate::partition::producer_state::VerificationGuard;

/// Longest metadata string a commit may carry (Kafka's
/// `offset.metadata.max.bytes` default).
const MAX_OFFSET_METADATA: usize = 4096;

/// An offset commit.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Group id.
    pub group_id: String,
    /// Who commits: a member, with its generation (classic protocol) or
    /// member epoch (consumer protocol); or, with an empty member id and a
    /// negative generation, a client outside any group membership.
    pub member: MemberIdentity,
    /// The offsets, in request order.
    pub offsets: Vec<PartitionOffset>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The commit.
    pub committed: Committed,
}

/// One partition's committed offset, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCommitted {
    /// Partition index.
    pub partition: i32,
    /// Its offset, unless none was committed.
    pub committed: Option<Committed>,
    /// A transaction not yet ended committed an offset of it, and the
    /// client asked for stable offsets only (UNSTABLE_OFFSET_COMMIT).
    pub unstable: bool,
}

/// A topic's committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCommitted {
    /// Topic name.
    pub topic: String,
    /// Its partitions.
    pub partitions: Vec<PartitionCommitted>,
}

/// Per partition, in request order: committed, or why not.
pub type PartitionResults = Vec<Result<(), GroupError>>;

impl GroupCoordinator {
    /// Commits offsets, and answers once the offsets partition's in-sync
    /// replicas hold them (like a produce with acks=all). `Err` refuses the
    /// whole commit; otherwise each partition has its own result.
    pub async fn commit_offsets(&self, req: CommitRequest) -> Result<PartitionResults, GroupError> {
        let group_id = &req.group_id;
        let (mut results, write) = {
            let mut inner = self.lock();
            check_committer(&inner, group_id, &req.member)?;
            // Valid commits are written together, in one batch.
            let (mut results, accepted) = self.screen(req.offsets);
            if !accepted.is_empty() {
                if let Err(e) = inner.offsets.commit(group_id, accepted) {
                    tracing::error!(group = %group_id, error = %e, "cannot store committed offsets");
                    fail_accepted(&mut results, GroupError::Storage);
                }
            }
            inner.saw_member(group_id, &req.member.member_id);
            (results, inner.offsets.take_last_write())
        };
        if let Err(e) = replicated(group_id, write).await {
            fail_accepted(&mut results, e);
        }
        Ok(results)
    }

    /// Starts the verification of `producer`'s commits for `group_id`
    /// on the group's offsets partition, before the transaction's
    /// coordinator is asked whether that partition is in the transaction
    /// (see [`crate::partition::Partition::start_verification`]).
    pub fn start_verification(
        &self,
        group_id: &str,
        producer: Transactional,
    ) -> Result<Option<VerificationGuard>, GroupError> {
        let inner = self.lock();
        inner.check_coordinator(group_id)?;
        let p = inner
            .offsets
            .partition_of(group_id)
            .map_err(|_| GroupError::NotCoordinator)?;
        p.start_verification(producer.producer_id, producer.producer_epoch, -1)
            .map_err(|_| GroupError::NotCoordinator)
    }

    /// Commits offsets in `producer`'s transaction (TxnOffsetCommit)
    /// under the `guard` of its verification, checked against the
    /// committing member as any commit; they count once the transaction
    /// commits (see [`GroupCoordinator::end_transaction`]).
    pub async fn commit_transactional_offsets(
        &self,
        req: CommitRequest,
        producer: Transactional,
        guard: Option<VerificationGuard>,
    ) -> Result<PartitionResults, GroupError> {
        let group_id = &req.group_id;
        let (mut results, write) = {
            let mut inner = self.lock();
            check_transactional_committer(&inner, group_id, &req.member)?;
            let (mut results, accepted) = self.screen(req.offsets);
            if !accepted.is_empty() {
                if let Err(e) = inner
                    .offsets
                    .commit_transactional(group_id, producer, guard, accepted)
                {
                    tracing::error!(group = %group_id, producer_id = producer.producer_id, error = %e, "cannot store transactional offsets");
                    fail_accepted(&mut results, GroupError::Storage);
                }
            }
            (results, inner.offsets.take_last_write())
        };
        if let Err(e) = replicated(group_id, write).await {
            fail_accepted(&mut results, e);
        }
        Ok(results)
    }

    /// `producer_id`'s transaction ended on offsets partition `index`: the
    /// offsets it committed there count (`commit`) or are dropped. Called
    /// once its marker is written and replicated.
    pub fn end_transaction(&self, index: i32, producer_id: i64, commit: bool) {
        self.lock()
            .offsets
            .end_transaction(index, producer_id, commit);
    }

    /// Each offset's verdict, and the commits to write: like Kafka, the
    /// partition must exist in the cluster (this broker need not store
    /// it) and the metadata must fit `offset.metadata.max.bytes`.
    fn screen(
        &self,
        offsets: Vec<PartitionOffset>,
    ) -> (PartitionResults, Vec<(String, i32, Committed)>) {
        let mut results = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::new();
        for o in offsets {
            results.push(if !self.topics.exists(&o.topic, o.partition) {
                Err(GroupError::UnknownTopicOrPartition)
            } else if o.committed.metadata.len() > MAX_OFFSET_METADATA {
                Err(GroupError::MetadataTooLarge)
            } else {
                accepted.push((o.topic, o.partition, o.committed));
                Ok(())
            });
        }
        (results, accepted)
    }

    /// A group's committed offsets: of the partitions `wanted`, by topic
    /// (`None`: every partition it has committed). With `require_stable`,
    /// a partition a transaction not yet ended committed is marked
    /// unstable (KIP-447).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
        require_stable: bool,
    ) -> Result<Vec<TopicCommitted>, GroupError> {
        let inner = self.lock();
        inner.check_coordinator(group_id)?;
        let unstable = |topic: &str, partition: i32| {
            require_stable && inner.offsets.unstable(group_id, topic, partition)
        };
        let offsets = inner.offsets.group(group_id);
        let committed = |topic: &str, partition: i32| {
            offsets.and_then(|o| o.get(&(topic.to_string(), partition)).cloned())
        };
        Ok(match wanted {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| TopicCommitted {
                    topic: topic.clone(),
                    partitions: partitions
                        .iter()
                        .map(|p| PartitionCommitted {
                            partition: *p,
                            committed: committed(topic, *p),
                            unstable: unstable(topic, *p),
                        })
                        .collect(),
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<&str, Vec<PartitionCommitted>> = BTreeMap::new();
                for ((topic, p), c) in offsets.into_iter().flatten() {
                    by_topic.entry(topic).or_default().push(PartitionCommitted {
                        partition: *p,
                        committed: Some(c.clone()),
                        unstable: unstable(topic, *p),
                    });
                }
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| TopicCommitted {
                        topic: topic.to_string(),
                        partitions,
                    })
                    .collect()
            }
        })
    }

    /// Deletes a group's offsets of some partitions; refused for the topics
    /// its live members subscribe to.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<PartitionResults, GroupError> {
        let mut inner = self.lock();
        inner.check_coordinator(group_id)?;
        let known = inner.groups.contains_key(group_id)
            || inner.consumer_groups.contains_key(group_id)
            || inner.offsets.group(group_id).is_some();
        if !known {
            return Err(GroupError::GroupNotFound);
        }
        let mut subscribed: HashSet<String> = inner
            .groups
            .get(group_id)
            .map(|e| subscribed_topics(&e.group))
            .unwrap_or_default();
        if let Some(g) = inner.consumer_groups.get(group_id) {
            subscribed.extend(g.subscribed_topics());
        }
        Ok(partitions
            .iter()
            .map(|(topic, partition)| {
                if subscribed.contains(topic) {
                    return Err(GroupError::SubscribedToTopic);
                }
                inner
                    .offsets
                    .delete(group_id, topic, *partition)
                    .map_err(|e| {
                        tracing::error!(group = %group_id, error = %e, "cannot delete committed offsets");
                        GroupError::Storage
                    })
            })
            .collect())
    }
}

/// Whether `member` may commit for the group now.
fn check_committer(
    inner: &Inner,
    group_id: &str,
    member: &MemberIdentity,
) -> Result<(), GroupError> {
    if group_id.is_empty() {
        return Err(GroupError::InvalidGroupId);
    }
    inner.check_coordinator(group_id)?;
    let simple = member.generation < 0 && member.member_id.is_empty();
    if let Some(g) = inner.consumer_groups.get(group_id) {
        return match g.members.get(&member.member_id) {
            _ if simple && g.members.is_empty() => Ok(()),
            None => Err(GroupError::UnknownMember),
            Some(m) if member.generation == m.epoch || member.generation == m.previous_epoch => {
                Ok(())
            }
            Some(_) => Err(GroupError::StaleMemberEpoch),
        };
    }
    match inner.groups.get(group_id) {
        // A commit from outside the group needs a group without members.
        Some(e) if simple && !e.group.members.is_empty() => Err(GroupError::UnknownMember),
        _ if simple => Ok(()),
        None => Err(GroupError::UnknownMember),
        Some(e) => {
            e.group.check_member(
                &member.member_id,
                member.instance_id.as_deref(),
                member.generation,
            )?;
            if e.group.state == GroupState::CompletingRebalance {
                return Err(GroupError::RebalanceInProgress);
            }
            Ok(())
        }
    }
}

/// Whether `member` may commit in a transaction, as Kafka's coordinator
/// judges a TxnOffsetCommit: a group that does not exist takes commits
/// only from outside group membership (a negative generation), and a
/// stale generation or member epoch is ILLEGAL_GENERATION.
fn check_transactional_committer(
    inner: &Inner,
    group_id: &str,
    member: &MemberIdentity,
) -> Result<(), GroupError> {
    let exists =
        inner.groups.contains_key(group_id) || inner.consumer_groups.contains_key(group_id);
    if !group_id.is_empty() && !exists && member.generation >= 0 {
        inner.check_coordinator(group_id)?;
        return Err(GroupError::IllegalGeneration);
    }
    match check_committer(inner, group_id, member) {
        Err(GroupError::StaleMemberEpoch) => Err(GroupError::IllegalGeneration),
        other => other,
    }
}

/// Turns every accepted partition's result into `error`.
fn fail_accepted(results: &mut PartitionResults, error: GroupError) {
    for r in results.iter_mut().filter(|r| r.is_ok()) {
        *r = Err(error.clone());
    }
}
