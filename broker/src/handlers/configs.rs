//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! and brokers: a topic's settings, a broker's settings as read at start,
//! and the dynamic broker settings (`config::dynamic`) of one broker or the
//! cluster-wide default, which these requests change in the metadata log.

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

use super::{authorize, propose, text};
use crate::config::dynamic::{self, BrokerResource, DynamicConfigError};
use crate::config::setting::{list_items, Described};
use crate::metadata::records::MetadataRecord;
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
            BROKER => describe_broker(node, &name),
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

/// A broker resource's settings as Kafka describes them: for this broker,
/// every setting read at start and the dynamic ones set for it or as the
/// default; for the default resource (""), only the dynamic defaults set.
fn describe_broker(node: &Node, name: &str) -> Result<Vec<Described>, (ResponseError, String)> {
    let resource = BrokerResource::parse(name, node.config.node_id).map_err(broker_refusal)?;
    let image = node.image();
    let dynamic = dynamic::describe(&image.broker_configs, resource);
    Ok(match resource {
        BrokerResource::Default => dynamic,
        BrokerResource::Broker(_) => {
            let mut all = node.config.values.describe();
            for d in dynamic {
                // A properties-file setting overridden at run time: the
                // value in force first, the file's among its synonyms.
                match all.iter_mut().find(|s| s.name == d.name) {
                    Some(s) => {
                        let file = std::mem::replace(s, d);
                        s.synonyms.extend(file.synonyms);
                    }
                    None => all.push(d),
                }
            }
            for s in &mut all {
                s.read_only &= !dynamic::is_dynamic(&s.name);
            }
            all
        }
    })
}

/// A refused broker resource or setting: INVALID_REQUEST, as Kafka answers
/// for broker resources (even for a value out of range, KAFKA-13609).
fn broker_refusal(e: DynamicConfigError) -> (ResponseError, String) {
    (ResponseError::InvalidRequest, e.to_string())
}

/// Validates and applies `changes` (a value set, or `None` to remove it)
/// to a broker resource's dynamic settings, through the metadata log.
async fn alter_broker(
    node: &Node,
    resource: BrokerResource,
    changes: BTreeMap<String, Option<String>>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    for (key, value) in &changes {
        if let Some(value) = value {
            dynamic::validate(key, value).map_err(broker_refusal)?;
        }
    }
    // Removing a setting that cannot be set (kafka-reassign-partitions
    // clears replica.alter.log.dirs.io.max.bytes.per.second too) is a
    // no-op, as removing an unset one is in Kafka.
    let changes: BTreeMap<String, Option<String>> = changes
        .into_iter()
        .filter(|(key, value)| value.is_some() || dynamic::is_dynamic(key))
        .collect();
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = changes
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("-{k}"),
        })
        .collect();
    propose(
        node,
        MetadataRecord::AlterBrokerConfigs {
            resource: resource.name(),
            changes,
        },
    )
    .await?;
    tracing::info!(resource = %resource.name(), changes = %shown.join(","), "dynamic broker settings changed");
    Ok(())
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

/// The refusal of a change to a resource other than a topic or a broker.
fn not_alterable() -> (ResponseError, String) {
    (
        ResponseError::InvalidRequest,
        "only topic and broker settings can be changed at run time".to_string(),
    )
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
        return Err(not_alterable());
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

/// AlterConfigs: replaces a topic's overrides, or a broker resource's
/// dynamic settings, with the given set.
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
        let name = res.resource_name.to_string();
        let configs: BTreeMap<String, String> = res
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let outcome = match authorized(node, ctx, Operation::AlterConfigs, res.resource_type, &name)
        {
            Ok(()) if res.resource_type == BROKER => {
                match BrokerResource::parse(&name, node.config.node_id) {
                    Ok(resource) => {
                        let image = node.image();
                        let changes =
                            dynamic::replacement(&image.broker_configs, resource, &configs);
                        alter_broker(node, resource, changes, req.validate_only).await
                    }
                    Err(e) => Err(broker_refusal(e)),
                }
            }
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

/// IncrementalAlterConfigs: SET (0) and DELETE (1) a setting, APPEND (2)
/// items to or SUBTRACT (3) items from a topic's list setting (its value in
/// effect, the broker default when the topic has no override; as in Kafka,
/// an item already present is not appended twice). On a broker resource,
/// SET and DELETE change its dynamic settings.
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
        let ops: Vec<(String, i8, Option<String>)> = res
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let outcome = match authorized(node, ctx, Operation::AlterConfigs, res.resource_type, &name)
        {
            Ok(()) if res.resource_type == BROKER => {
                match BrokerResource::parse(&name, node.config.node_id)
                    .and_then(|resource| Ok((resource, broker_changes(&ops)?)))
                {
                    Ok((resource, changes)) => {
                        alter_broker(node, resource, changes, req.validate_only).await
                    }
                    Err(e) => Err(broker_refusal(e)),
                }
            }
            Ok(()) if res.resource_type != TOPIC => Err(not_alterable()),
            Ok(()) => match topic_changes(node, &name, &ops) {
                Ok(configs) => {
                    apply(node, res.resource_type, &name, configs, req.validate_only).await
                }
                Err(e) => Err(e),
            },
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

/// IncrementalAlterConfigs operations on a broker resource, as changes: a
/// SET's value (checked later with the rest), a DELETE's removal; no
/// dynamic broker setting is a list, so APPEND and SUBTRACT are refused.
fn broker_changes(
    ops: &[(String, i8, Option<String>)],
) -> Result<BTreeMap<String, Option<String>>, DynamicConfigError> {
    let mut changes = BTreeMap::new();
    for (key, op, value) in ops {
        match (op, value) {
            (0, Some(v)) => {
                changes.insert(key.clone(), Some(v.clone()));
            }
            (1, _) => {
                changes.insert(key.clone(), None);
            }
            (2 | 3, _) => return Err(dynamic::list_op_refusal(key)),
            // SET without a value, or an unknown operation.
            _ => {
                return Err(DynamicConfigError::Invalid {
                    key: key.clone(),
                    value: value.clone().unwrap_or_default(),
                    reason: format!("operation {op} with this value is not supported"),
                })
            }
        }
    }
    Ok(changes)
}

/// A topic's overrides after IncrementalAlterConfigs operations (checked
/// later, with the topic).
fn topic_changes(
    node: &Node,
    name: &str,
    ops: &[(String, i8, Option<String>)],
) -> Result<BTreeMap<String, String>, (ResponseError, String)> {
    let mut configs = node
        .topics
        .get(name)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    for (key, op, value) in ops {
        match (op, value) {
            (0, Some(v)) => {
                configs.insert(key.clone(), v.clone());
            }
            (1, _) => {
                configs.remove(key);
            }
            (2 | 3, Some(_)) if !config::is_list(key) => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("`{key}` is not a list setting: APPEND and SUBTRACT apply to list settings only"),
                ));
            }
            (op @ (2 | 3), Some(v)) => {
                let mut items =
                    list_items(&config::value_of(key, &configs, node.topics.defaults()));
                let given = list_items(v);
                if *op == 2 {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                configs.insert(key.clone(), items.join(","));
            }
            (op, _) => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("operation {op} on `{key}` is not supported"),
                ));
            }
        }
    }
    Ok(configs)
}
