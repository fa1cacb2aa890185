//! Topic changes a broker asks of the active controller on behalf of an
//! admin request: each is checked here first (names, counts, settings),
//! decided and committed by the controller, and returns once this broker's
//! registry shows the result.

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use super::{name, NewTopic, TopicError, TopicRegistry};
use crate::metadata::controller::{ControllerRequest, ControllerResponse};
use crate::metadata::quorum::Quorum;
use crate::metadata::records::{Applied, MetadataRecord, Refusal};

/// How long admin changes wait for the controller and for this broker to
/// see their effect.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The way to the controller (`quorum`) and the registry that shows a
/// change once this broker has applied it.
pub struct TopicChanges<'a> {
    pub quorum: &'a Quorum,
    pub topics: &'a TopicRegistry,
}

impl TopicChanges<'_> {
    /// Sends a change to the active controller and waits until this
    /// broker's topics reflect it. The outcome, or why there is none.
    pub async fn apply(&self, req: ControllerRequest) -> Result<Applied, String> {
        match self.quorum.request(req, ADMIN_TIMEOUT).await {
            Ok(ControllerResponse::Applied { index, applied }) => {
                if index > 0 && !self.topics.wait_synced(index, ADMIN_TIMEOUT).await {
                    tracing::warn!(index, "change committed but not yet applied here");
                }
                Ok(applied)
            }
            Ok(other) => Err(format!("unexpected controller answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn ask(&self, req: ControllerRequest) -> Result<(), TopicError> {
        match self.apply(req).await.map_err(TopicError::Controller)? {
            Applied::Refused(r) => Err(r.into()),
            _ => Ok(()),
        }
    }

    /// What this broker can tell of a topic to create without the
    /// controller, in the order Kafka's controller answers: an invalid
    /// name first, then a topic that exists, and only then what is wrong
    /// with the rest, so that tools creating their topics idempotently see
    /// TOPIC_ALREADY_EXISTS whatever counts and settings they ask for.
    pub fn check(&self, new: &NewTopic) -> Result<(), TopicError> {
        name::validate(&new.name)?;
        if self.topics.get(&new.name).is_some() {
            return Err(TopicError::Exists(new.name.clone()));
        }
        new.validate()
    }

    /// Creates a topic (or only checks it), placing replicas unless
    /// `assignment` lists them. Returns the new topic's id (nil when only
    /// checking).
    pub async fn create(
        &self,
        new: &NewTopic,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Uuid, TopicError> {
        self.check(new)?;
        self.ask(ControllerRequest::CreateTopic {
            name: new.name.clone(),
            partitions: new.partitions,
            replication_factor: new.replication_factor,
            configs: new.configs.clone(),
            assignment,
            validate_only,
        })
        .await?;
        if validate_only {
            return Ok(Uuid::nil());
        }
        self.topics
            .get(&new.name)
            .map(|t| t.id)
            .ok_or_else(|| TopicError::Unknown(new.name.clone()))
    }

    /// Deletes a topic; returns its id.
    pub async fn delete(&self, name: &str) -> Result<Uuid, TopicError> {
        let id = self
            .topics
            .get(name)
            .map(|t| t.id)
            .ok_or_else(|| TopicError::Unknown(name.into()))?;
        self.ask(ControllerRequest::Propose(MetadataRecord::DeleteTopic {
            name: name.into(),
        }))
        .await?;
        Ok(id)
    }

    /// Grows a topic to `count` partitions.
    pub async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let current = self
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
        self.ask(ControllerRequest::CreatePartitions {
            name: name.into(),
            count,
            assignment,
            validate_only,
        })
        .await
    }

    /// Replaces a topic's setting overrides (already validated).
    pub async fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        if self.topics.get(name).is_none() {
            return Err(TopicError::Unknown(name.into()));
        }
        self.ask(ControllerRequest::Propose(
            MetadataRecord::SetTopicConfigs {
                name: name.into(),
                configs,
            },
        ))
        .await
    }
}

impl From<Refusal> for TopicError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TopicExists(name) => TopicError::Exists(name),
            other => TopicError::Refused(other),
        }
    }
}
