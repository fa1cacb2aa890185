//! `gregor topics`: list, describe, create and delete topics, printed the
//! way `kafka-topics.sh` prints them.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, TopicInfo};
use crate::error::{check, CliError};

const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 6;
const TIMEOUT_MS: i32 = 30_000;

/// Topic names, one per line, sorted.
pub async fn list(cluster: &mut Cluster) -> Result<String, CliError> {
    let topics = cluster.metadata(None).await?;
    Ok(topics.keys().map(|n| format!("{n}\n")).collect())
}

/// A description of `topic`, or of every topic.
pub async fn describe(cluster: &mut Cluster, topic: Option<&str>) -> Result<String, CliError> {
    let topics = match topic {
        Some(name) => BTreeMap::from([(name.to_owned(), cluster.topic(name).await?)]),
        None => cluster.metadata(None).await?,
    };
    Ok(topics.values().map(describe_one).collect())
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn describe_one(t: &TopicInfo) -> String {
    let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
    let mut out = format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\n",
        t.name,
        t.id,
        t.partitions.len(),
        rf
    );
    for p in &t.partitions {
        let leader = if p.leader < 0 {
            "none".to_owned()
        } else {
            p.leader.to_string()
        };
        out.push_str(&format!(
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\n",
            t.name,
            p.index,
            leader,
            ids(&p.replicas),
            ids(&p.isr)
        ));
    }
    out
}

/// What `topics create` asks for.
pub struct NewTopic<'a> {
    /// Name.
    pub name: &'a str,
    /// Partitions (-1: the broker's `num.partitions`).
    pub partitions: i32,
    /// Replication factor (-1: the broker's `default.replication.factor`).
    pub replication_factor: i16,
    /// `key=value` topic configs.
    pub configs: &'a [String],
}

/// Creates a topic.
pub async fn create(cluster: &mut Cluster, new: NewTopic<'_>) -> Result<String, CliError> {
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_string(new.name.to_owned()));
    topic.num_partitions = new.partitions;
    topic.replication_factor = new.replication_factor;
    for c in new.configs {
        let (k, v) = c
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--config {c}: expected key=value")))?;
        let mut config = CreatableTopicConfig::default();
        config.name = StrBytes::from_string(k.trim().to_owned());
        config.value = Some(StrBytes::from_string(v.trim().to_owned()));
        topic.configs.push(config);
    }
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    req.timeout_ms = TIMEOUT_MS;
    let resp = cluster.send_any(&req, CREATE_TOPICS_VERSION).await?;
    for r in &resp.topics {
        check(
            r.error_code,
            r.error_message.as_deref(),
            format!("creating topic {}", new.name),
        )?;
    }
    Ok(format!("Created topic {}.\n", new.name))
}

/// Deletes a topic.
pub async fn delete(cluster: &mut Cluster, name: &str) -> Result<String, CliError> {
    let mut state = DeleteTopicState::default();
    state.name = Some(TopicName(StrBytes::from_string(name.to_owned())));
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![state];
    req.timeout_ms = TIMEOUT_MS;
    let resp = cluster.send_any(&req, DELETE_TOPICS_VERSION).await?;
    for r in &resp.responses {
        check(
            r.error_code,
            r.error_message.as_deref(),
            format!("deleting topic {name}"),
        )?;
    }
    Ok(format!("Deleted topic {name}.\n"))
}
