//! ConsumerGroupHeartbeat and ConsumerGroupDescribe: the requests of the
//! consumer group protocol (KIP-848), translated to and from the plain data
//! of `consumer`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::assignor::TopicPartition;
use super::consumer::{ConsumerGroup, ConsumerGroupError, Heartbeat};
use super::coordinator::{GroupCoordinator, COMMIT_TIMEOUT};
use crate::partition::Replication;

/// Server-side assignors a member may ask for. Both names get the uniform
/// assignment; "range" is accepted so clients configured for it still work.
const ASSIGNORS: [&str; 2] = ["uniform", "range"];

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

impl GroupCoordinator {
    /// Handles ConsumerGroupHeartbeat: join, stay, reconcile or leave.
    pub async fn consumer_group_heartbeat(
        &self,
        req: ConsumerGroupHeartbeatRequest,
        client_id: &str,
        client_host: &str,
    ) -> ConsumerGroupHeartbeatResponse {
        let topics = &self.topics;
        let mut resp = ConsumerGroupHeartbeatResponse::default();
        let fail =
            |mut resp: ConsumerGroupHeartbeatResponse, code: ResponseError, message: &str| {
                resp.error_code = code.code();
                resp.error_message = Some(text(message));
                resp
            };
        let group_id = req.group_id.to_string();
        if group_id.is_empty() {
            return fail(
                resp,
                ResponseError::InvalidRequest,
                "group id must not be empty",
            );
        }
        // An empty regex means "none" (librdkafka sends it with every
        // subscription by names).
        if req
            .subscribed_topic_regex
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return fail(
                resp,
                ResponseError::InvalidRequest,
                "regular-expression subscriptions are not supported yet",
            );
        }
        if let Some(assignor) = &req.server_assignor {
            if !ASSIGNORS.contains(&assignor.as_str()) {
                return fail(
                    resp,
                    ResponseError::UnsupportedAssignor,
                    "supported assignors: uniform, range",
                );
            }
        }
        let member_id = if req.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            req.member_id.to_string()
        };
        let subscriptions: Option<BTreeSet<String>> = req
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect());
        let owned: Option<BTreeSet<TopicPartition>> = req.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .filter_map(|t| {
                    topics
                        .get_by_id(t.topic_id)
                        .map(|topic| (topic, &t.partitions))
                })
                .flat_map(|(topic, parts)| parts.iter().map(move |p| (topic.name.clone(), *p)))
                .collect()
        });

        let (outcome, pending) = {
            let mut inner = self.lock();
            if let Err(code) = Self::check_coordinator(&inner, &group_id) {
                return fail(resp, code, "this broker does not coordinate the group");
            }
            if inner.classic_group_has_members(&group_id) {
                return fail(
                    resp,
                    ResponseError::GroupIdNotFound,
                    "the group is in use by members of the classic protocol",
                );
            }
            let group = inner
                .consumer_groups
                .entry(group_id.clone())
                .or_insert_with(|| ConsumerGroup::new(&group_id));
            let mut wanted = group.subscribed_topics();
            wanted.extend(subscriptions.iter().flatten().cloned());
            let partitions: BTreeMap<String, i32> = wanted
                .into_iter()
                .filter_map(|name| topics.get(&name).map(|t| (name, t.partitions.len() as i32)))
                .collect();
            let hb = Heartbeat {
                member_id: member_id.clone(),
                epoch: req.member_epoch,
                instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
                subscriptions,
                owned,
                client_id: client_id.to_string(),
                client_host: client_host.to_string(),
                rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
            };
            let outcome = group.heartbeat(
                hb,
                &partitions,
                self.settings.consumer_session_timeout,
                Instant::now(),
            );
            // What changed is stored before the member hears of it, so a new
            // coordinator knows every epoch and assignment a member was given.
            self.persist_consumer_group(&mut inner, &group_id);
            let pending = inner.offsets.take_last_write();
            (outcome, pending)
        };
        if let Some((p, appended)) = pending {
            let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
            match p
                .await_replication(appended.leader_epoch, appended.end_offset, deadline)
                .await
            {
                Replication::Done(_) => {}
                Replication::LostLeadership => {
                    return fail(
                        resp,
                        ResponseError::NotCoordinator,
                        "this broker no longer coordinates the group",
                    )
                }
                Replication::Pending | Replication::TimedOut => {
                    return fail(
                        resp,
                        ResponseError::RequestTimedOut,
                        "the group's new state was not replicated in time",
                    )
                }
            }
        }
        match outcome {
            Ok(reply) => {
                resp.member_id = Some(text(member_id));
                resp.member_epoch = reply.epoch;
                resp.heartbeat_interval_ms =
                    self.settings.consumer_heartbeat_interval.as_millis() as i32;
                resp.assignment = reply.assignment.map(|set| {
                    let mut a = Assignment::default();
                    a.topic_partitions = by_topic(&set)
                        .into_iter()
                        .filter_map(|(name, parts)| {
                            let topic = topics.get(&name)?;
                            let mut tp = TopicPartitions::default();
                            tp.topic_id = topic.id;
                            tp.partitions = parts;
                            Some(tp)
                        })
                        .collect();
                    a
                });
                resp
            }
            Err(e) => {
                let (code, message) = match e {
                    ConsumerGroupError::UnknownMember => {
                        (ResponseError::UnknownMemberId, "unknown member")
                    }
                    ConsumerGroupError::FencedEpoch => {
                        (ResponseError::FencedMemberEpoch, "member epoch is fenced")
                    }
                    ConsumerGroupError::MissingSubscription => (
                        ResponseError::InvalidRequest,
                        "a joining member must send its subscription",
                    ),
                    ConsumerGroupError::UnreleasedInstance => (
                        ResponseError::UnreleasedInstanceId,
                        "the instance id is still in use",
                    ),
                };
                fail(resp, code, message)
            }
        }
    }

    /// Handles ConsumerGroupDescribe. A classic group, or one known only by
    /// its offsets, is GROUP_ID_NOT_FOUND here, which sends admin clients
    /// to DescribeGroups.
    pub async fn consumer_group_describe(
        &self,
        req: ConsumerGroupDescribeRequest,
    ) -> ConsumerGroupDescribeResponse {
        let topics = &self.topics;
        use kafka_protocol::messages::consumer_group_describe_response::{
            Assignment as DescribedAssignment, DescribedGroup, Member,
            TopicPartitions as DescribedPartitions,
        };
        let describe = |set: &BTreeSet<TopicPartition>| {
            let mut a = DescribedAssignment::default();
            a.topic_partitions = by_topic(set)
                .into_iter()
                .map(|(name, parts)| {
                    let mut tp = DescribedPartitions::default();
                    tp.topic_id = topics.get(&name).map(|t| t.id).unwrap_or_default();
                    tp.topic_name = TopicName(text(name));
                    tp.partitions = parts;
                    tp
                })
                .collect();
            a
        };
        let inner = self.lock();
        let mut resp = ConsumerGroupDescribeResponse::default();
        for id in req.group_ids {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            d.authorized_operations = i32::MIN;
            if let Err(code) = Self::check_coordinator(&inner, id.as_str()) {
                d.error_code = code.code();
                resp.groups.push(d);
                continue;
            }
            match inner.consumer_groups.get(id.as_str()) {
                Some(g) => {
                    d.group_state = StrBytes::from_static_str(g.state());
                    d.group_epoch = g.epoch;
                    d.assignment_epoch = g.epoch;
                    d.assignor_name = StrBytes::from_static_str(ASSIGNORS[0]);
                    d.members = g
                        .members
                        .values()
                        .map(|m| {
                            let mut dm = Member::default();
                            dm.member_id = text(m.id.clone());
                            dm.instance_id = m.instance_id.clone().map(text);
                            dm.member_epoch = m.epoch;
                            dm.client_id = text(m.client_id.clone());
                            dm.client_host = text(format!("/{}", m.client_host));
                            dm.subscribed_topic_names = m
                                .subscriptions
                                .iter()
                                .map(|t| TopicName(text(t.clone())))
                                .collect();
                            dm.assignment = describe(&m.assigned);
                            dm.target_assignment = describe(&m.target);
                            dm
                        })
                        .collect();
                }
                None => {
                    d.error_code = ResponseError::GroupIdNotFound.code();
                    d.error_message = Some(text(format!(
                        "group {} is not a consumer group",
                        id.as_str()
                    )));
                }
            }
            resp.groups.push(d);
        }
        resp
    }
}

/// Partitions grouped by topic, each list sorted.
fn by_topic(set: &BTreeSet<TopicPartition>) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, p) in set {
        out.entry(topic.clone()).or_default().push(*p);
    }
    out
}
