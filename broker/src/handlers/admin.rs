//! CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::{BTreeMap, HashSet};

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
use crate::security::acl::{Operation, ResourceType};
use crate::topic::{config, NewTopic};

/// Creates topics (or, with `validate_only`, only checks them). Each takes
/// CREATE on the cluster or on the topic; the configs come back only with
/// DESCRIBE_CONFIGS on it.
pub async fn create_topics(
    node: &Node,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let cluster_create = authorize::on_cluster_quietly(node, ctx, Operation::Create);
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
        let result = node
            .topic_changes()
            .create(&new, assignment, request.validate_only)
            .await;
        match result {
            Ok(id) => {
                r.topic_id = id;
                r.num_partitions = partitions;
                r.replication_factor = replication_factor;
                let show_configs = authorize::visible(
                    node,
                    ctx,
                    Operation::DescribeConfigs,
                    ResourceType::Topic,
                    &name,
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
                tracing::info!(topic = %name, error = %e, "create topic refused");
                r.error_code = topic_error(&e).code();
                r.error_message = Some(text(e.to_string()));
            }
        }
        resp.topics.push(r);
    }
    resp
}

/// Deletes topics by name, or (v6+) by id; each takes DELETE on the topic.
pub async fn delete_topics(
    node: &Node,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
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
            None => Err(ResponseError::UnknownTopicId),
            Some(n)
                if !authorize::allowed(node, ctx, Operation::Delete, ResourceType::Topic, &n) =>
            {
                Err(ResponseError::TopicAuthorizationFailed)
            }
            Some(_) if !node.config.delete_topic_enable => {
                Err(ResponseError::TopicDeletionDisabled)
            }
            // Committed offsets live there; the coordinator holds it open.
            Some(n) if n == OFFSETS_TOPIC => Err(ResponseError::InvalidRequest),
            Some(n) => node
                .topic_changes()
                .delete(&n)
                .await
                .map_err(|e| topic_error(&e)),
        };
        match result {
            Ok(deleted_id) => r.topic_id = deleted_id,
            Err(code) => r.error_code = code.code(),
        }
        resp.responses.push(r);
    }
    resp
}

/// Grows topics' partition counts; each takes ALTER on the topic.
pub async fn create_partitions(
    node: &Node,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
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
        } else if let Err(e) = node
            .topic_changes()
            .add_partitions(
                t.name.as_str(),
                t.count,
                t.assignments.as_ref().map(|a| {
                    a.iter()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                }),
                request.validate_only,
            )
            .await
        {
            r.error_code = topic_error(&e).code();
            r.error_message = Some(text(e.to_string()));
        }
        resp.results.push(r);
    }
    resp
}
