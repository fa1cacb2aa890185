//! Topic changes a broker asks of the active controller on behalf of an
//! admin request: each is checked here first (names, counts, settings),
//! decided and committed by the controller, and returns once this broker's
//! registry shows the result.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{NewTopic, TopicError};
use crate::metadata::controller::ControllerRequest;
use crate::metadata::records::{Applied, MetadataRecord, Refusal};
use crate::node::Node;

async fn ask(node: &Node, req: ControllerRequest) -> Result<(), TopicError> {
    match node.change(req).await.map_err(TopicError::Controller)? {
        Applied::Refused(r) => Err(r.into()),
        _ => Ok(()),
    }
}

/// Creates a topic (or only checks it), placing replicas unless
/// `assignment` lists them. Returns the new topic's id (nil when only
/// checking).
pub async fn create(
    node: &Node,
    new: &NewTopic,
    assignment: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<Uuid, TopicError> {
    new.validate()?;
    ask(
        node,
        ControllerRequest::CreateTopic {
            name: new.name.clone(),
            partitions: new.partitions,
            replication_factor: new.replication_factor,
            configs: new.configs.clone(),
            assignment,
            validate_only,
        },
    )
    .await?;
    if validate_only {
        return Ok(Uuid::nil());
    }
    node.topics
        .get(&new.name)
        .map(|t| t.id)
        .ok_or_else(|| TopicError::Unknown(new.name.clone()))
}

/// Deletes a topic; returns its id.
pub async fn delete(node: &Node, name: &str) -> Result<Uuid, TopicError> {
    let id = node
        .topics
        .get(name)
        .map(|t| t.id)
        .ok_or_else(|| TopicError::Unknown(name.into()))?;
    ask(
        node,
        ControllerRequest::Propose(MetadataRecord::DeleteTopic { name: name.into() }),
    )
    .await?;
    Ok(id)
}

/// Grows a topic to `count` partitions.
pub async fn add_partitions(
    node: &Node,
    name: &str,
    count: i32,
    assignment: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), TopicError> {
    let current = node
        .topics
        .get(name)
        .ok_or_else(|| TopicError::Unknown(name.into()))?
        .partitions
        .len() as i32;
    if count < current {
        return Err(TopicError::InvalidPartitions(format!(
            "topic `{name}` has {current} partitions; the count can only grow, not become {count}"
        )));
    }
    if count == current {
        return Err(TopicError::InvalidPartitions(format!(
            "topic `{name}` already has {current} partitions"
        )));
    }
    ask(
        node,
        ControllerRequest::CreatePartitions {
            name: name.into(),
            count,
            assignment,
            validate_only,
        },
    )
    .await
}

/// Replaces a topic's setting overrides (already validated).
pub async fn set_configs(
    node: &Node,
    name: &str,
    configs: BTreeMap<String, String>,
) -> Result<(), TopicError> {
    if node.topics.get(name).is_none() {
        return Err(TopicError::Unknown(name.into()));
    }
    ask(
        node,
        ControllerRequest::Propose(MetadataRecord::SetTopicConfigs {
            name: name.into(),
            configs,
        }),
    )
    .await
}

impl From<Refusal> for TopicError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TopicExists(name) => TopicError::Exists(name),
            other => TopicError::Refused(other),
        }
    }
}
