//! Metadata and DescribeCluster: which brokers exist, at which address (on
//! the listener the request came in on), and where each partition lives.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::ResponseError;

use super::text;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::topic::{name, NewTopic, Topic};

/// Kafka's marker for "authorized operations not requested".
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// Answers Metadata, creating requested topics when auto-creation is on.
pub fn metadata(node: &Arc<Node>, ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    let endpoint = node.endpoint(&ctx.listener);
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(node.config.node_id);
    broker.host = text(endpoint.map(|e| e.host.clone()).unwrap_or_default());
    broker.port = endpoint.map(|e| e.port as i32).unwrap_or(0);
    resp.brokers = vec![broker];
    resp.cluster_id = Some(text(node.cluster_id.clone()));
    resp.controller_id = BrokerId(node.config.node_id);
    resp.cluster_authorized_operations = OPERATIONS_OMITTED;

    // v0 sends an empty list for "all topics"; v1+ sends null.
    let wanted = match req.topics {
        Some(t) if !(t.is_empty() && ctx.api_version == 0) => t,
        _ => {
            resp.topics = node
                .topics
                .all()
                .iter()
                .map(|t| describe(node, t))
                .collect();
            return resp;
        }
    };
    let auto_create = req.allow_auto_topic_creation || ctx.api_version < 4;
    for t in wanted {
        let topic = match &t.name {
            Some(n) => lookup_or_create(
                node,
                n.as_str(),
                auto_create && node.config.auto_create_topics,
            ),
            None => node
                .topics
                .get_by_id(t.topic_id)
                .ok_or(ResponseError::UnknownTopicId),
        };
        match topic {
            Ok(topic) => resp.topics.push(describe(node, &topic)),
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

fn lookup_or_create(node: &Node, name: &str, create: bool) -> Result<Arc<Topic>, ResponseError> {
    if let Some(t) = node.topics.get(name) {
        return Ok(t);
    }
    if name::validate(name).is_err() {
        return Err(ResponseError::InvalidTopicException);
    }
    if !create {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let new = NewTopic {
        name: name.to_string(),
        partitions: node.config.num_partitions,
        replication_factor: node.config.default_replication_factor,
        configs: Default::default(),
    };
    match node.topics.create(&new, node.live_brokers()) {
        Ok(t) => Ok(t),
        // Another request created it first.
        Err(crate::topic::TopicError::Exists(_)) => node
            .topics
            .get(name)
            .ok_or(ResponseError::UnknownTopicOrPartition),
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
            Err(super::errors::topic_error(&e))
        }
    }
}

fn describe(node: &Node, topic: &Topic) -> MetadataResponseTopic {
    let me = BrokerId(node.config.node_id);
    let mut r = MetadataResponseTopic::default();
    r.name = Some(TopicName(text(topic.name.clone())));
    r.topic_id = topic.id;
    r.is_internal = topic.name.starts_with("__");
    r.topic_authorized_operations = OPERATIONS_OMITTED;
    r.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut m = MetadataResponsePartition::default();
            m.partition_index = p.index;
            m.leader_id = me;
            m.leader_epoch = 0;
            m.replica_nodes = vec![me];
            m.isr_nodes = vec![me];
            m
        })
        .collect();
    r
}

/// Answers DescribeCluster with this broker's address on the request's listener.
pub fn describe_cluster(
    node: &Arc<Node>,
    ctx: &RequestContext,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    let endpoint = node.endpoint(&ctx.listener);
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(node.config.node_id);
    b.host = text(endpoint.map(|e| e.host.clone()).unwrap_or_default());
    b.port = endpoint.map(|e| e.port as i32).unwrap_or(0);
    resp.brokers = vec![b];
    resp.cluster_id = text(node.cluster_id.clone());
    resp.controller_id = BrokerId(node.config.node_id);
    resp.cluster_authorized_operations = OPERATIONS_OMITTED;
    resp
}
