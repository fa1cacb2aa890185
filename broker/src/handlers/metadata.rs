//! Metadata and DescribeCluster: which brokers exist, at which address (on
//! the listener the request came in on), and where each partition lives.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::ResponseError;

use super::{authorize, text};
use crate::group::offsets::OFFSETS_TOPIC;
use crate::metadata::image::{ClusterImage, TopicImage, NO_LEADER};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::binding::CLUSTER_NAME;
use crate::security::acl::{Operation, ResourceType};
use crate::topic::{name, NewTopic, TopicError};

/// Kafka's marker for "authorized operations not requested".
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// Answers Metadata, creating requested topics when auto-creation is on.
/// A topic the principal may not DESCRIBE is left out of an "all topics"
/// answer and answered TOPIC_AUTHORIZATION_FAILED when named, whether or
/// not it exists; auto-creation takes CREATE on the cluster or the topic.
pub async fn metadata(
    node: &Node,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    resp.cluster_id = Some(text(node.cluster_id.clone()));
    resp.controller_id = BrokerId(controller_id(node));
    resp.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        authorize::operations(node, ctx, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        OPERATIONS_OMITTED
    };
    let with_operations = request.include_topic_authorized_operations;

    // v0 sends an empty list for "all topics"; v1+ sends null.
    let wanted = match request.topics {
        Some(t) if !(t.is_empty() && ctx.api_version == 0) => t,
        _ => {
            let image = node.image();
            resp.brokers = brokers(node, &image, &ctx.listener);
            resp.topics = image
                .topics
                .iter()
                .filter(|(name, _)| {
                    authorize::visible(node, ctx, Operation::Describe, ResourceType::Topic, name)
                })
                .map(|(name, t)| describe(node, ctx, &image, name, t, with_operations))
                .collect();
            return resp;
        }
    };
    let auto_create = (request.allow_auto_topic_creation || ctx.api_version < 4)
        && node.config.auto_create_topics;
    let image = node.image();
    // Each named topic's answer when it is not described: refused, or
    // (when it may be created) created first.
    let mut refused = vec![None; wanted.len()];
    for (t, refusal) in wanted.iter().zip(refused.iter_mut()) {
        let name = match &t.name {
            Some(n) => n.to_string(),
            None => match image.topic_name(t.topic_id) {
                Some(name) => name.to_string(),
                None => continue,
            },
        };
        if !authorize::allowed(node, ctx, Operation::Describe, ResourceType::Topic, &name) {
            *refusal = Some(ResponseError::TopicAuthorizationFailed);
            continue;
        }
        if t.name.is_none()
            || node.topics.get(&name).is_some()
            || !auto_create
            || name::validate(&name).is_err()
        {
            continue;
        }
        let may_create = authorize::on_cluster_quietly(node, ctx, Operation::Create)
            || authorize::allowed(node, ctx, Operation::Create, ResourceType::Topic, &name);
        if may_create {
            create(node, &name).await;
        } else {
            *refusal = Some(ResponseError::TopicAuthorizationFailed);
        }
    }
    let image = node.image();
    resp.brokers = brokers(node, &image, &ctx.listener);
    for (t, refusal) in wanted.into_iter().zip(refused) {
        let found = match (refusal, &t.name) {
            (Some(code), _) => Err(code),
            (None, Some(n)) => match image.topics.get_key_value(n.as_str()) {
                Some(found) => Ok(found),
                None if name::validate(n.as_str()).is_err() => {
                    Err(ResponseError::InvalidTopicException)
                }
                None if auto_create => Err(ResponseError::LeaderNotAvailable),
                None => Err(ResponseError::UnknownTopicOrPartition),
            },
            (None, None) => image
                .topics
                .iter()
                .find(|(_, topic)| topic.id == t.topic_id)
                .ok_or(ResponseError::UnknownTopicId),
        };
        match found {
            Ok((name, topic)) => {
                resp.topics
                    .push(describe(node, ctx, &image, name, topic, with_operations))
            }
            Err(code) => {
                let mut r = MetadataResponseTopic::default();
                r.error_code = code.code();
                r.name = t.name.clone();
                r.topic_id = t.topic_id;
                r.topic_authorized_operations = OPERATIONS_OMITTED;
                resp.topics.push(r);
            }
        }
    }
    resp
}

/// Auto-creates a topic with the broker's defaults.
async fn create(node: &Node, name: &str) {
    let new = NewTopic {
        name: name.to_string(),
        partitions: node.config.num_partitions,
        replication_factor: node.config.default_replication_factor,
        configs: Default::default(),
    };
    match node.topic_changes().create(&new, None, false).await {
        // Another request created it first.
        Ok(_) | Err(TopicError::Exists(_)) => {}
        Err(e) => tracing::warn!(topic = name, error = %e, "auto-creating topic failed"),
    }
}

/// The live brokers, at their address on `listener`.
///
/// A stopping broker is fenced as soon as its leadership has moved, but it
/// answers requests until it closes its connections, and it keeps listing
/// itself meanwhile: Kafka's brokers stay listed until they stop serving,
/// and clients such as librdkafka forget a broker a Metadata answer leaves
/// out. A client that forgot the only broker of a cluster would not
/// reconnect when it comes back until its bootstrap address is retried.
fn brokers(node: &Node, image: &ClusterImage, listener: &str) -> Vec<MetadataResponseBroker> {
    let me = node.config.node_id;
    image
        .brokers
        .values()
        .filter(|b| !b.fenced || (b.id == me && node.stopping()))
        .filter_map(|b| {
            let e = b.endpoint(listener)?;
            let mut r = MetadataResponseBroker::default();
            r.node_id = BrokerId(b.id);
            r.host = text(e.host.clone());
            r.port = e.port as i32;
            r.rack = b.rack.clone().map(text);
            Some(r)
        })
        .collect()
}

fn describe(
    node: &Node,
    ctx: &RequestContext,
    image: &ClusterImage,
    name: &str,
    topic: &TopicImage,
    with_operations: bool,
) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let mut r = MetadataResponseTopic::default();
    r.name = Some(TopicName(text(name.to_string())));
    r.topic_id = topic.id;
    r.is_internal = name == OFFSETS_TOPIC;
    r.topic_authorized_operations = if with_operations {
        authorize::operations(node, ctx, ResourceType::Topic, name)
    } else {
        OPERATIONS_OMITTED
    };
    r.partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = MetadataResponsePartition::default();
            m.partition_index = i as i32;
            if p.leader == NO_LEADER {
                m.error_code = ResponseError::LeaderNotAvailable.code();
            }
            m.leader_id = BrokerId(p.leader);
            m.leader_epoch = p.leader_epoch;
            m.replica_nodes = ids(&p.replicas);
            m.isr_nodes = ids(&p.isr);
            m.offline_replicas = p
                .replicas
                .iter()
                .filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced))
                .map(|r| BrokerId(*r))
                .collect();
            m
        })
        .collect();
    r
}

/// Answers DescribeCluster with the live brokers' addresses on the
/// request's listener (DESCRIBE on the cluster).
pub fn describe_cluster(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    if !authorize::on_cluster(node, ctx, Operation::Describe) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(text("not authorized to describe the cluster"));
        resp.cluster_authorized_operations = OPERATIONS_OMITTED;
        return resp;
    }
    let image = node.image();
    resp.brokers = brokers(node, &image, &ctx.listener)
        .into_iter()
        .map(|b| {
            let mut d = DescribeClusterBroker::default();
            d.broker_id = b.node_id;
            d.host = b.host;
            d.port = b.port;
            d.rack = b.rack;
            d
        })
        .collect();
    resp.cluster_id = text(node.cluster_id.clone());
    resp.controller_id = BrokerId(controller_id(node));
    resp.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        authorize::operations(node, ctx, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        OPERATIONS_OMITTED
    };
    resp
}

/// The "controller" clients send admin requests to: the active controller
/// when it is also a live broker, else this broker (every broker forwards
/// changes to the active controller, as Kafka's KRaft brokers do).
fn controller_id(node: &Node) -> i32 {
    let image = node.image();
    node.quorum
        .active_controller()
        .filter(|c| image.brokers.get(c).is_some_and(|b| !b.fenced))
        .unwrap_or(node.config.node_id)
}
