//! CreateTopics, DeleteTopics and CreatePartitions. Each topic's partitions
//! created, added or deleted count against the client's controller
//! mutation quota (`quota::mutation`): a topic the quota refuses is
//! answered with THROTTLING_QUOTA_EXCEEDED and left alone, and the response
//! carries the time the client must wait.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::errors::topic_error;
use super::{authorize, text};
use crate::group::offsets::OFFSETS_TOPIC;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::quota::mutation::{MutationQuota, Throttled};
use crate::security::acl::{Operation, ResourceType};
use crate::topic::{config, NewTopic, TopicError};

/// Creates topics (or, with `validate_only`, only checks them). Each takes
/// CREATE on the cluster or on the topic; the configs come back only with
/// DESCRIBE_CONFIGS on it. The topics that pass the checks here go to the
/// controller together, so a request of many waits about as long as one
/// of them.
pub async fn create_topics(
    node: &Node,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let cluster_create = authorize::on_cluster_quietly(node, ctx, Operation::Create);
    let mut mutations = super::mutation_quota(node, ctx, request.validate_only);
    // Topics to create: where each is answered, what it is, its placement
    // if the request gives one, and the partitions counted by the quota.
    let mut pending = Vec::new();
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.as_str().to_string()))
        .map(|t| t.name.as_str().to_string())
        .collect();
    for t in request.topics {
        let name = t.name.as_str().to_string();
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        if duplicates.contains(&name) {
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = Some(text(format!(
                "topic `{name}` appears more than once in the request"
            )));
            resp.topics.push(r);
            continue;
        }
        if !cluster_create
            && !authorize::allowed(node, ctx, Operation::Create, ResourceType::Topic, &name)
        {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            r.error_message = Some(text("not authorized to create this topic"));
            resp.topics.push(r);
            continue;
        }
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            node.config.num_partitions
        } else {
            t.num_partitions
        };
        let replication_factor = match t.assignments.first() {
            Some(a) => a.broker_ids.len() as i16,
            None if t.replication_factor == -1 => node.config.default_replication_factor,
            None => t.replication_factor,
        };
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let new = NewTopic {
            name: name.clone(),
            partitions,
            replication_factor,
            configs,
        };
        let assignment = (!t.assignments.is_empty()).then(|| {
            let mut a: Vec<_> = t.assignments.iter().collect();
            a.sort_by_key(|a| a.partition_index);
            a.iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        if let Err(e) = node.topic_changes().check(&new) {
            refuse(&mut r, &name, &e);
            resp.topics.push(r);
            continue;
        }
        let count = usize::try_from(partitions).unwrap_or(0);
        if let Err(throttled) = mutations.admit(count) {
            refused_by_quota(ctx, &name, throttled);
            r.error_code = ResponseError::ThrottlingQuotaExceeded.code();
            r.error_message = Some(text(throttled.to_string()));
            resp.topics.push(r);
            continue;
        }
        r.num_partitions = partitions;
        r.replication_factor = replication_factor;
        pending.push((resp.topics.len(), new, assignment, count));
        resp.topics.push(r);
    }
    let changes = node.topic_changes();
    let created = futures_util::future::join_all(pending.iter().map(|(_, new, assignment, _)| {
        changes.create(new, assignment.clone(), request.validate_only)
    }))
    .await;
    for ((at, new, _, count), result) in pending.into_iter().zip(created) {
        let name = new.name.as_str();
        let r = &mut resp.topics[at];
        match result {
            Ok(id) => {
                r.topic_id = id;
                let show_configs = authorize::visible(
                    node,
                    ctx,
                    Operation::DescribeConfigs,
                    ResourceType::Topic,
                    name,
                );
                if ctx.api_version >= 5 && !show_configs {
                    r.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                } else if ctx.api_version >= 5 {
                    r.configs = Some(
                        config::describe(&new.configs, node.topics.defaults())
                            .into_iter()
                            .map(|d| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = text(d.name);
                                c.value = d.value.map(text);
                                c.read_only = d.read_only;
                                c.config_source = d.source.code();
                                c.is_sensitive = d.sensitive;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                mutations.refund(count);
                r.num_partitions = -1;
                r.replication_factor = -1;
                refuse(r, name, &e);
            }
        }
    }
    resp.throttle_time_ms = mutations.throttle_ms();
    resp
}

/// Answers a topic whose creation was refused.
fn refuse(r: &mut CreatableTopicResult, name: &str, e: &TopicError) {
    tracing::info!(topic = %name, error = %e, "create topic refused");
    r.error_code = topic_error(e).code();
    r.error_message = Some(text(e.to_string()));
}

/// Logs a topic the controller mutation quota refused.
fn refused_by_quota(ctx: &RequestContext, topic: &str, throttled: Throttled) {
    tracing::info!(
        topic,
        principal = %ctx.principal,
        client_id = %ctx.client_id,
        throttle_ms = throttled.ms,
        "topic refused: controller mutation quota exceeded"
    );
}

/// Deletes topics by name, or (v6+) by id; each takes DELETE on the topic,
/// or DELETE on the cluster for all of them (as Kafka's controller does).
pub async fn delete_topics(
    node: &Node,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
    let cluster_delete = authorize::on_cluster_quietly(node, ctx, Operation::Delete);
    let mut mutations = super::mutation_quota(node, ctx, false);
    let targets: Vec<(Option<TopicName>, Uuid)> = if request.topics.is_empty() {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    } else {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    };
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        r.topic_id = id;
        let resolved = match &name {
            Some(n) => Some(n.as_str().to_string()),
            None => node.topics.get_by_id(id).map(|t| t.name.clone()),
        };
        r.name = resolved
            .as_ref()
            .map(|n| TopicName(text(n.clone())))
            .or(name);
        let result = match resolved {
            None => Err((ResponseError::UnknownTopicId, None)),
            Some(n)
                if !cluster_delete
                    && !authorize::allowed(
                        node,
                        ctx,
                        Operation::Delete,
                        ResourceType::Topic,
                        &n,
                    ) =>
            {
                Err((ResponseError::TopicAuthorizationFailed, None))
            }
            Some(_) if !node.config.delete_topic_enable => {
                Err((ResponseError::TopicDeletionDisabled, None))
            }
            // Committed offsets live there; the coordinator holds it open.
            Some(n) if n == OFFSETS_TOPIC => Err((ResponseError::InvalidRequest, None)),
            Some(n) => delete_topic(node, ctx, &mut mutations, &n).await,
        };
        match result {
            Ok(deleted_id) => r.topic_id = deleted_id,
            Err((code, message)) => {
                r.error_code = code.code();
                r.error_message = message.map(text);
            }
        }
        resp.responses.push(r);
    }
    resp.throttle_time_ms = mutations.throttle_ms();
    resp
}

/// Deletes one topic whose deletion is allowed, if the client's quota
/// admits its partitions; the error and its message otherwise.
async fn delete_topic(
    node: &Node,
    ctx: &RequestContext,
    mutations: &mut MutationQuota<'_>,
    name: &str,
) -> Result<Uuid, (ResponseError, Option<String>)> {
    // A topic this broker does not know is left for `delete` to report.
    let count = node.topics.get(name).map_or(0, |t| t.partitions.len());
    if count > 0 {
        if let Err(throttled) = mutations.admit(count) {
            refused_by_quota(ctx, name, throttled);
            return Err((
                ResponseError::ThrottlingQuotaExceeded,
                Some(throttled.to_string()),
            ));
        }
    }
    let deleted = node.topic_changes().delete(name).await;
    if deleted.is_err() {
        mutations.refund(count);
    }
    deleted.map_err(|e| (topic_error(&e), None))
}

/// Grows topics' partition counts; each takes ALTER on the topic.
pub async fn create_partitions(
    node: &Node,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    let mut mutations = super::mutation_quota(node, ctx, request.validate_only);
    for t in request.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        if !authorize::allowed(node, ctx, Operation::Alter, ResourceType::Topic, &t.name) {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            r.error_message = Some(text("not authorized to alter this topic"));
        } else if t.name.as_str() == OFFSETS_TOPIC {
            // Groups are mapped to its partitions by their count.
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = Some(text(format!(
                "the partition count of {OFFSETS_TOPIC} cannot change"
            )));
        } else if let Err((code, message)) =
            add_partitions(node, ctx, &mut mutations, &t, request.validate_only).await
        {
            r.error_code = code.code();
            r.error_message = Some(text(message));
        }
        resp.results.push(r);
    }
    resp.throttle_time_ms = mutations.throttle_ms();
    resp
}

/// Grows one topic the client may alter, if its quota admits the
/// partitions added; the error and its message otherwise.
async fn add_partitions(
    node: &Node,
    ctx: &RequestContext,
    mutations: &mut MutationQuota<'_>,
    t: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    // Counts that do not grow the topic (or an unknown topic) are left
    // for `add_partitions` to refuse.
    let current = node.topics.get(t.name.as_str()).map(|t| t.partitions.len());
    let added = current.map_or(0, |c| {
        usize::try_from(t.count).unwrap_or(0).saturating_sub(c)
    });
    if added > 0 {
        if let Err(throttled) = mutations.admit(added) {
            refused_by_quota(ctx, t.name.as_str(), throttled);
            return Err((
                ResponseError::ThrottlingQuotaExceeded,
                throttled.to_string(),
            ));
        }
    }
    let assignment = t.assignments.as_ref().map(|a| {
        a.iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect()
    });
    let grown = node
        .topic_changes()
        .add_partitions(t.name.as_str(), t.count, assignment, validate_only)
        .await;
    if grown.is_err() {
        mutations.refund(added);
    }
    grown.map_err(|e| (topic_error(&e), e.to_string()))
}
