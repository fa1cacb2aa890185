//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics, and
//! a read-only view of the broker's settings.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::ResponseError;

use super::{authorize, text};
use crate::config::setting::{list_items, Described};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::binding::CLUSTER_NAME;
use crate::security::acl::{Operation, ResourceType};
use crate::topic::config;

/// Kafka's resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;

/// Whether the request may read (DESCRIBE_CONFIGS) or change
/// (ALTER_CONFIGS) a resource's settings: a topic's on the topic, a
/// broker's on the cluster. Other resource types are refused further on.
fn authorized(
    node: &Node,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Result<(), (ResponseError, String)> {
    let (allowed, error) = match resource_type {
        TOPIC => (
            authorize::allowed(node, ctx, operation, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
        ),
        BROKER | BROKER_LOGGER => (
            authorize::allowed(node, ctx, operation, ResourceType::Cluster, CLUSTER_NAME),
            ResponseError::ClusterAuthorizationFailed,
        ),
        _ => return Ok(()),
    };
    if allowed {
        Ok(())
    } else {
        Err((error, format!("not authorized to {operation} here")))
    }
}

/// Describes topic settings or the broker's: every declared one, with its
/// source, and its synonyms and documentation when asked for.
pub fn describe_configs(
    node: &Node,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for res in req.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let name = res.resource_name.to_string();
        let allowed = authorized(
            node,
            ctx,
            Operation::DescribeConfigs,
            res.resource_type,
            &name,
        );
        let entries: Result<Vec<Described>, (ResponseError, String)> = match res.resource_type {
            _ if allowed.is_err() => allowed.map(|()| Vec::new()),
            TOPIC => match node.topics.get(&name) {
                Some(t) => Ok(config::describe(&t.configs, node.topics.defaults())),
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic `{name}` does not exist"),
                )),
            },
            BROKER if name.is_empty() || name == node.config.node_id.to_string() => {
                Ok(node.config.values.describe())
            }
            BROKER => Err((
                ResponseError::InvalidRequest,
                format!("no broker `{name}` here"),
            )),
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} is not supported"),
            )),
        };
        match entries {
            Ok(entries) => {
                let keys = res.configuration_keys.as_ref();
                r.configs = entries
                    .into_iter()
                    .filter(|d| keys.is_none_or(|ks| ks.iter().any(|x| x.as_str() == d.name)))
                    .map(|d| result(d, req.include_synonyms, req.include_documentation))
                    .collect();
            }
            Err((code, message)) => {
                r.error_code = code.code();
                r.error_message = Some(text(message));
            }
        }
        resp.results.push(r);
    }
    resp
}

/// One described setting in the response's terms.
fn result(d: Described, synonyms: bool, documentation: bool) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = text(d.name);
    c.value = d.value.map(text);
    c.read_only = d.read_only;
    c.config_source = d.source.code();
    c.is_sensitive = d.sensitive;
    c.config_type = d.config_type;
    if synonyms {
        c.synonyms = d
            .synonyms
            .into_iter()
            .map(|s| {
                let mut y = DescribeConfigsSynonym::default();
                y.name = text(s.name);
                y.value = s.value.map(text);
                y.source = s.source.code();
                y
            })
            .collect();
    }
    if documentation {
        c.documentation = Some(text(d.doc));
    }
    c
}

/// Validates and applies a topic's complete new override set.
async fn apply(
    node: &Node,
    resource_type: i8,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    if resource_type != TOPIC {
        return Err((
            ResponseError::InvalidRequest,
            "only topic settings can be changed at run time".to_string(),
        ));
    }
    if node.topics.get(name).is_none() {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("topic `{name}` does not exist"),
        ));
    }
    for (k, v) in &configs {
        config::validate(k, v).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    }
    if validate_only {
        return Ok(());
    }
    node.topic_changes()
        .set_configs(name, configs)
        .await
        .map_err(|e| (super::errors::topic_error(&e), e.to_string()))?;
    tracing::info!(topic = name, "topic settings changed");
    Ok(())
}

/// AlterConfigs: replaces a topic's overrides with the given set.
pub async fn alter_configs(
    node: &Node,
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let configs = res
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let outcome = match authorized(
            node,
            ctx,
            Operation::AlterConfigs,
            res.resource_type,
            res.resource_name.as_str(),
        ) {
            Ok(()) => {
                apply(
                    node,
                    res.resource_type,
                    res.resource_name.as_str(),
                    configs,
                    req.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err((code, message)) = outcome {
            r.error_code = code.code();
            r.error_message = Some(text(message));
        }
        resp.responses.push(r);
    }
    resp
}

/// IncrementalAlterConfigs: SET (0) and DELETE (1) a setting, APPEND (2)
/// items to or SUBTRACT (3) items from a list setting (its value in effect,
/// the broker default when the topic has no override; as in Kafka, an item
/// already present is not appended twice).
pub async fn incremental_alter_configs(
    node: &Node,
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let name = res.resource_name.to_string();
        let mut configs = node
            .topics
            .get(&name)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        let mut outcome = authorized(node, ctx, Operation::AlterConfigs, res.resource_type, &name);
        let changes = if outcome.is_ok() {
            &res.configs[..]
        } else {
            &[]
        };
        for c in changes {
            let key = c.name.to_string();
            match (c.config_operation, c.value.as_ref()) {
                (0, Some(v)) => {
                    configs.insert(key, v.to_string());
                }
                (1, _) => {
                    configs.remove(&key);
                }
                (2 | 3, Some(_)) if !config::is_list(&key) => {
                    outcome = Err((
                        ResponseError::InvalidConfig,
                        format!("`{key}` is not a list setting: APPEND and SUBTRACT apply to list settings only"),
                    ));
                }
                (op @ (2 | 3), Some(v)) => {
                    let mut items =
                        list_items(&config::value_of(&key, &configs, node.topics.defaults()));
                    let given = list_items(v);
                    if op == 2 {
                        for item in given {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                    } else {
                        items.retain(|i| !given.contains(i));
                    }
                    configs.insert(key, items.join(","));
                }
                (op, _) => {
                    outcome = Err((
                        ResponseError::InvalidConfig,
                        format!("operation {op} on `{key}` is not supported"),
                    ));
                }
            }
        }
        // Gregor has no dynamic broker settings, so deleting one (as
        // kafka-reassign-partitions does to clear replication throttles) is
        // a no-op, as it is in Kafka for a setting that is not set.
        let removes_only = res.configs.iter().all(|c| c.config_operation == 1);
        let outcome = match outcome {
            Ok(()) if res.resource_type == BROKER && removes_only => Ok(()),
            Ok(()) => apply(node, res.resource_type, &name, configs, req.validate_only).await,
            Err(e) => Err(e),
        };
        if let Err((code, message)) = outcome {
            r.error_code = code.code();
            r.error_message = Some(text(message));
        }
        resp.responses.push(r);
    }
    resp
}
