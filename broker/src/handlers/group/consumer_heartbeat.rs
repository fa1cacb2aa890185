//! ConsumerGroupHeartbeat: the consumer group protocol's one request
//! (KIP-848). Partitions travel as topic ids; the coordinator names topics.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::by_topic;
use crate::group::assignor::TopicPartition;
use crate::group::consumer::Heartbeat;
use crate::handlers::errors::group_error;
use crate::handlers::{authorize, text};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Handles one heartbeat: join, stay, reconcile or leave. Membership takes
/// READ on the group, and each subscribed topic DESCRIBE.
pub async fn consumer_group_heartbeat(
    node: &Node,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let refuse = |error: kafka_protocol::ResponseError, message: String| {
        let mut resp = ConsumerGroupHeartbeatResponse::default();
        resp.error_code = error.code();
        resp.error_message = Some(text(message));
        resp
    };
    if !authorize::allowed(
        node,
        ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return refuse(
            kafka_protocol::ResponseError::GroupAuthorizationFailed,
            "not authorized to join this group".into(),
        );
    }
    let denied: Vec<String> = request
        .subscribed_topic_names
        .iter()
        .flatten()
        .filter(|t| !authorize::allowed(node, ctx, Operation::Describe, ResourceType::Topic, t))
        .map(|t| t.to_string())
        .collect();
    if !denied.is_empty() {
        return refuse(
            kafka_protocol::ResponseError::TopicAuthorizationFailed,
            format!("not authorized to describe the subscribed topics {denied:?}"),
        );
    }
    let topics = &node.topics;
    // Partitions of topics this broker does not know (deleted) are left out.
    let owned: Option<BTreeSet<TopicPartition>> = request.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .filter_map(|t| {
                topics
                    .get_by_id(t.topic_id)
                    .map(|topic| (topic, &t.partitions))
            })
            .flat_map(|(topic, parts)| parts.iter().map(move |p| (topic.name.clone(), *p)))
            .collect()
    });
    let hb = Heartbeat {
        member_id: request.member_id.to_string(),
        epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
        subscriptions: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        owned,
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()),
    };
    let regex = request.subscribed_topic_regex.as_deref();
    let answer = node
        .groups
        .consumer_heartbeat(&request.group_id, regex, hb)
        .await;
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    match answer {
        Err(e) => {
            resp.error_code = group_error(&e).code();
            resp.error_message = Some(text(e.to_string()));
        }
        Ok(answer) => {
            resp.member_id = Some(text(answer.member_id));
            resp.member_epoch = answer.epoch;
            resp.heartbeat_interval_ms = answer.heartbeat_interval.as_millis() as i32;
            resp.assignment = answer.assignment.map(|set| {
                let mut a = Assignment::default();
                a.topic_partitions = by_topic(&set)
                    .into_iter()
                    .filter_map(|(name, partitions)| {
                        let mut tp = TopicPartitions::default();
                        tp.topic_id = topics.get(&name)?.id;
                        tp.partitions = partitions;
                        Some(tp)
                    })
                    .collect();
                a
            });
        }
    }
    resp
}
