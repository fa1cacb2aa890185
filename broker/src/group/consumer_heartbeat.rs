//! The consumer group protocol's heartbeat (KIP-848): a member joins,
//! stays, reconciles its assignment or leaves, and learns its epoch and
//! assignment. The group's state machine is `consumer`; this checks the
//! request, stores what changed and waits for it to be replicated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::assignor::TopicPartition;
use super::consumer::{ConsumerGroup, Heartbeat};
use super::coordinator::{replicated, GroupCoordinator};
use super::error::GroupError;

/// Server-side assignors a member may ask for. Both names get the uniform
/// assignment; "range" is accepted so clients configured for it still work.
pub(super) const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The member's id (given by the coordinator on its first heartbeat).
    pub member_id: String,
    /// Its epoch now.
    pub epoch: i32,
    /// How often it should heartbeat.
    pub heartbeat_interval: Duration,
    /// Its full assignment, when it must learn it.
    pub assignment: Option<BTreeSet<TopicPartition>>,
}

impl GroupCoordinator {
    /// Handles one heartbeat of a member of `group_id`. A member joining
    /// without an id (`hb.member_id` empty) is given one. `topic_regex` is
    /// a subscription by regular expression, which is refused (an empty
    /// one means none: librdkafka sends it with every subscription by
    /// names). What changed is stored, and replicated, before the member
    /// hears of it, so a new coordinator knows every epoch and assignment
    /// a member was given.
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        topic_regex: Option<&str>,
        mut hb: Heartbeat,
    ) -> Result<HeartbeatAnswer, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::MissingGroupId);
        }
        if topic_regex.is_some_and(|r| !r.is_empty()) {
            return Err(GroupError::RegexSubscription);
        }
        if hb
            .server_assignor
            .as_ref()
            .is_some_and(|a| !ASSIGNORS.contains(&a.as_str()))
        {
            return Err(GroupError::UnsupportedAssignor);
        }
        if hb.member_id.is_empty() {
            hb.member_id = uuid::Uuid::new_v4().to_string();
        }
        let member_id = hb.member_id.clone();
        let (outcome, write) = {
            let mut inner = self.lock();
            inner.check_coordinator(group_id)?;
            if inner.classic_group_has_members(group_id) {
                return Err(GroupError::ClassicGroupInUse);
            }
            let group = inner
                .consumer_groups
                .entry(group_id.to_string())
                .or_insert_with(|| ConsumerGroup::new(group_id));
            let mut wanted = group.subscribed_topics();
            wanted.extend(hb.subscriptions.iter().flatten().cloned());
            let partitions: BTreeMap<String, i32> = wanted
                .into_iter()
                .filter_map(|name| {
                    let count = self.topics.get(&name)?.partitions.len() as i32;
                    Some((name, count))
                })
                .collect();
            let outcome = group.heartbeat(
                hb,
                &partitions,
                self.settings.consumer_session_timeout,
                Instant::now(),
            );
            self.persist_consumer_group(&mut inner, group_id);
            (outcome, inner.offsets.take_last_write())
        };
        replicated(group_id, write).await?;
        let reply = outcome?;
        Ok(HeartbeatAnswer {
            member_id,
            epoch: reply.epoch,
            heartbeat_interval: self.settings.consumer_heartbeat_interval,
            assignment: reply.assignment,
        })
    }
}
