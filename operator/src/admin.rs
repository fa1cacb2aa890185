//! The operator's Kafka admin client: the few admin requests it needs, sent
//! over the Kafka protocol to any broker of a cluster (Gregor brokers
//! forward metadata changes to the active controller themselves).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gregor_client::{ClientError, Connection};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiVersionsRequest, BrokerId, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeLogDirsRequest,
    ElectLeadersRequest, IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::cluster::view::{KafkaView, PartitionView};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout the brokers get for metadata changes.
const CHANGE_TIMEOUT_MS: i32 = 30_000;
/// Resource type of topics in the configs APIs.
const TOPIC_RESOURCE: i8 = 2;
/// Resource type of brokers in the configs APIs (an empty name is the
/// cluster-wide default).
const BROKER_RESOURCE: i8 = 4;
/// `config_source` of settings set on the topic itself.
const TOPIC_CONFIG_SOURCE: i8 = 1;

/// What an admin request can run into.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No bootstrap address answered.
    #[error("no broker of {bootstrap} answers: {reason}")]
    Unreachable {
        /// The addresses tried.
        bootstrap: String,
        /// The last failure.
        reason: String,
    },
    /// The connection failed mid-request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A request did not finish in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The cluster refused the request.
    #[error("{op} failed: {code:?}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        /// The request.
        op: &'static str,
        /// Kafka's error code.
        code: ResponseError,
        /// The broker's message, if any.
        message: Option<String>,
    },
}

/// A topic as the cluster has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// The topic id.
    pub id: String,
    /// Replicas of each partition, by partition index.
    pub replicas: BTreeMap<i32, Vec<i32>>,
    /// Settings set on the topic itself (not defaults).
    pub config: BTreeMap<String, String>,
}

/// A connection to one broker of a cluster.
pub struct Admin {
    conn: Connection,
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

pub(crate) fn check(
    op: &'static str,
    code: i16,
    message: Option<&StrBytes>,
) -> Result<(), AdminError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(AdminError::Kafka {
            op,
            code,
            message: message.map(|m| m.to_string()),
        }),
    }
}

impl Admin {
    /// Connects to the first answering address of `bootstrap`
    /// (comma-separated `host:port`s of replication listeners), over TLS
    /// with the operator's identity `tls`.
    pub async fn connect(
        bootstrap: &str,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Self, AdminError> {
        let mut reason = "no address given".to_string();
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match tokio::time::timeout(
                Duration::from_secs(5),
                Connection::connect_tls(addr, tls.clone(), "gregor-operator"),
            )
            .await
            {
                Ok(Ok(conn)) => return Ok(Self { conn }),
                Ok(Err(e)) => reason = format!("{addr}: {e}"),
                Err(_) => reason = format!("{addr}: connection timed out"),
            }
        }
        Err(AdminError::Unreachable {
            bootstrap: bootstrap.into(),
            reason,
        })
    }

    /// Whether the broker at `addr` completes a TLS handshake with `tls`
    /// (its certificate trusted, ours accepted) and answers ApiVersions.
    pub async fn probe(addr: &str, tls: &Arc<rustls::ClientConfig>) -> Result<(), AdminError> {
        let mut admin = Self::connect(addr, tls).await?;
        let response = admin
            .send("ApiVersions", &ApiVersionsRequest::default(), 3)
            .await?;
        match ResponseError::try_from_code(response.error_code) {
            None => Ok(()),
            Some(code) => Err(AdminError::Kafka {
                op: "ApiVersions",
                code,
                message: None,
            }),
        }
    }

    pub(crate) async fn send<R: Request>(
        &mut self,
        op: &'static str,
        req: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.conn.send(req, version))
            .await
            .map_err(|_| AdminError::Timeout(op))?
            .map_err(AdminError::from)
    }

    async fn metadata(&mut self, topics: Option<&[&str]>) -> Result<MetadataResponse, AdminError> {
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut m = MetadataRequestTopic::default();
                    m.name = Some(name(t));
                    m
                })
                .collect()
        });
        req.allow_auto_topic_creation = false;
        self.send("Metadata", &req, 12).await
    }

    /// Brokers, controller and every partition, with each topic's
    /// `min.insync.replicas` (`default_min_isr` unless the topic sets it)
    /// and the reassignments under way.
    pub async fn describe_cluster(
        &mut self,
        default_min_isr: i32,
    ) -> Result<KafkaView, AdminError> {
        let meta = self.metadata(None).await?;
        let topics: Vec<String> = meta
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        let mut min_isr: BTreeMap<String, i32> = BTreeMap::new();
        if !topics.is_empty() {
            let mut req = DescribeConfigsRequest::default();
            req.resources = topics
                .iter()
                .map(|t| {
                    let mut r = DescribeConfigsResource::default();
                    r.resource_type = TOPIC_RESOURCE;
                    r.resource_name = StrBytes::from_string(t.clone());
                    r.configuration_keys =
                        Some(vec![StrBytes::from_static_str("min.insync.replicas")]);
                    r
                })
                .collect();
            let resp = self.send("DescribeConfigs", &req, 4).await?;
            for r in resp.results.iter().filter(|r| r.error_code == 0) {
                let value = r
                    .configs
                    .iter()
                    .find(|c| c.name.as_str() == "min.insync.replicas")
                    .and_then(|c| c.value.as_ref())
                    .and_then(|v| v.parse().ok());
                if let Some(v) = value {
                    min_isr.insert(r.resource_name.to_string(), v);
                }
            }
        }
        let mut reassigning = BTreeSet::new();
        let mut req = ListPartitionReassignmentsRequest::default();
        req.timeout_ms = CHANGE_TIMEOUT_MS;
        // Null: every partition.
        req.topics = None;
        let resp = self.send("ListPartitionReassignments", &req, 0).await?;
        check(
            "ListPartitionReassignments",
            resp.error_code,
            resp.error_message.as_ref(),
        )?;
        for t in resp.topics {
            for p in t.partitions {
                reassigning.insert((t.name.0.to_string(), p.partition_index));
            }
        }
        let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
        let mut partitions = Vec::new();
        for t in &meta.topics {
            let Some(topic) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            for p in &t.partitions {
                partitions.push(PartitionView {
                    min_isr: min_isr.get(&topic).copied().unwrap_or(default_min_isr),
                    reassigning: reassigning.contains(&(topic.clone(), p.partition_index)),
                    topic: topic.clone(),
                    partition: p.partition_index,
                    replicas: ids(&p.replica_nodes),
                    isr: ids(&p.isr_nodes),
                    leader: p.leader_id.0,
                });
            }
        }
        Ok(KafkaView {
            brokers: meta.brokers.iter().map(|b| b.node_id.0).collect(),
            racks: meta
                .brokers
                .iter()
                .filter_map(|b| Some((b.node_id.0, b.rack.as_ref()?.to_string())))
                .collect(),
            controller: (meta.controller_id.0 >= 0).then_some(meta.controller_id.0),
            partitions,
        })
    }

    /// The topic named `topic`, or `None` if the cluster has none.
    pub async fn describe_topic(&mut self, topic: &str) -> Result<Option<TopicState>, AdminError> {
        let meta = self.metadata(Some(&[topic])).await?;
        let Some(t) = meta.topics.first() else {
            return Ok(None);
        };
        if ResponseError::try_from_code(t.error_code)
            == Some(ResponseError::UnknownTopicOrPartition)
        {
            return Ok(None);
        }
        check("Metadata", t.error_code, None)?;
        let replicas = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.replica_nodes.iter().map(|b| b.0).collect(),
                )
            })
            .collect();
        let mut req = DescribeConfigsRequest::default();
        let mut r = DescribeConfigsResource::default();
        r.resource_type = TOPIC_RESOURCE;
        r.resource_name = StrBytes::from_string(topic.to_owned());
        // Null asks for every setting (the crate defaults to an empty list,
        // which asks for none).
        r.configuration_keys = None;
        req.resources = vec![r];
        let resp = self.send("DescribeConfigs", &req, 4).await?;
        let mut config = BTreeMap::new();
        for r in &resp.results {
            check("DescribeConfigs", r.error_code, r.error_message.as_ref())?;
            for c in r
                .configs
                .iter()
                .filter(|c| c.config_source == TOPIC_CONFIG_SOURCE)
            {
                if let Some(v) = &c.value {
                    config.insert(c.name.to_string(), v.to_string());
                }
            }
        }
        Ok(Some(TopicState {
            id: t.topic_id.to_string(),
            replicas,
            config,
        }))
    }

    /// Creates a topic.
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        config: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut t = CreatableTopic::default();
        t.name = name(topic);
        t.num_partitions = partitions;
        t.replication_factor = replication_factor;
        t.configs = config
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.clone());
                c.value = Some(StrBytes::from_string(v.clone()));
                c
            })
            .collect();
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = CHANGE_TIMEOUT_MS;
        let resp = self.send("CreateTopics", &req, 7).await?;
        for r in &resp.topics {
            check("CreateTopics", r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(&mut self, topic: &str, count: i32) -> Result<(), AdminError> {
        let mut t = CreatePartitionsTopic::default();
        t.name = name(topic);
        t.count = count;
        // Null: the cluster places the new partitions.
        t.assignments = None;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = CHANGE_TIMEOUT_MS;
        let resp = self.send("CreatePartitions", &req, 3).await?;
        for r in &resp.results {
            check("CreatePartitions", r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Sets `set` and removes `delete` on a topic's own settings.
    pub async fn alter_topic_config(
        &mut self,
        topic: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), AdminError> {
        self.alter_config(TOPIC_RESOURCE, topic, set, delete).await
    }

    /// Sets `set` and removes `delete` on the brokers' cluster-wide
    /// dynamic defaults (`kafka-configs --entity-type brokers
    /// --entity-default`).
    pub async fn alter_broker_defaults(
        &mut self,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), AdminError> {
        self.alter_config(BROKER_RESOURCE, "", set, delete).await
    }

    async fn alter_config(
        &mut self,
        resource_type: i8,
        resource: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), AdminError> {
        let op = |k: &str, op: i8, v: Option<&String>| {
            let mut c = AlterableConfig::default();
            c.name = StrBytes::from_string(k.to_owned());
            c.config_operation = op;
            c.value = v.map(|v| StrBytes::from_string(v.clone()));
            c
        };
        let mut r = AlterConfigsResource::default();
        r.resource_type = resource_type;
        r.resource_name = StrBytes::from_string(resource.to_owned());
        r.configs = set.iter().map(|(k, v)| op(k, 0, Some(v))).collect();
        r.configs.extend(delete.iter().map(|k| op(k, 1, None)));
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        let resp = self.send("IncrementalAlterConfigs", &req, 1).await?;
        for r in &resp.responses {
            check(
                "IncrementalAlterConfigs",
                r.error_code,
                r.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// Starts moving partitions to new replicas: `(topic, partition, replicas)`.
    pub async fn reassign(&mut self, moves: &[(String, i32, Vec<i32>)]) -> Result<(), AdminError> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (topic, partition, replicas) in moves {
            let mut p = ReassignablePartition::default();
            p.partition_index = *partition;
            p.replicas = Some(replicas.iter().map(|b| BrokerId(*b)).collect());
            by_topic.entry(topic).or_default().push(p);
        }
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.timeout_ms = CHANGE_TIMEOUT_MS;
        req.topics = by_topic
            .into_iter()
            .map(|(t, partitions)| {
                let mut r = ReassignableTopic::default();
                r.name = name(t);
                r.partitions = partitions;
                r
            })
            .collect();
        let resp = self.send("AlterPartitionReassignments", &req, 0).await?;
        check(
            "AlterPartitionReassignments",
            resp.error_code,
            resp.error_message.as_ref(),
        )?;
        for t in &resp.responses {
            for p in &t.partitions {
                check(
                    "AlterPartitionReassignments",
                    p.error_code,
                    p.error_message.as_ref(),
                )?;
            }
        }
        Ok(())
    }

    /// Size of each partition's log on this broker, in bytes.
    pub async fn partition_sizes(&mut self) -> Result<BTreeMap<(String, i32), u64>, AdminError> {
        let mut req = DescribeLogDirsRequest::default();
        // Null: every partition.
        req.topics = None;
        let resp = self.send("DescribeLogDirs", &req, 1).await?;
        check("DescribeLogDirs", resp.error_code, None)?;
        let mut sizes = BTreeMap::new();
        for dir in &resp.results {
            check("DescribeLogDirs", dir.error_code, None)?;
            for t in &dir.topics {
                for p in &t.partitions {
                    sizes.insert(
                        (t.name.0.to_string(), p.partition_index),
                        p.partition_size.max(0) as u64,
                    );
                }
            }
        }
        Ok(sizes)
    }

    /// Moves leadership of `partitions` back to their preferred replicas.
    pub async fn elect_preferred(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<(), AdminError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t).or_default().push(*p);
        }
        let mut req = ElectLeadersRequest::default();
        req.election_type = 0;
        req.timeout_ms = CHANGE_TIMEOUT_MS;
        req.topic_partitions = Some(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    let mut tp = TopicPartitions::default();
                    tp.topic = name(t);
                    tp.partitions = ps;
                    tp
                })
                .collect(),
        );
        let resp = self.send("ElectLeaders", &req, 2).await?;
        check("ElectLeaders", resp.error_code, None)?;
        for t in &resp.replica_election_results {
            for p in &t.partition_result {
                // Already led by the preferred replica: nothing to do.
                if ResponseError::try_from_code(p.error_code)
                    != Some(ResponseError::ElectionNotNeeded)
                {
                    check("ElectLeaders", p.error_code, p.error_message.as_ref())?;
                }
            }
        }
        Ok(())
    }

    /// Deletes a topic; a topic already gone is not an error.
    pub async fn delete_topic(&mut self, topic: &str) -> Result<(), AdminError> {
        let mut state = DeleteTopicState::default();
        state.name = Some(name(topic));
        let mut req = DeleteTopicsRequest::default();
        req.topics = vec![state];
        req.timeout_ms = CHANGE_TIMEOUT_MS;
        let resp = self.send("DeleteTopics", &req, 6).await?;
        for r in &resp.responses {
            if ResponseError::try_from_code(r.error_code)
                != Some(ResponseError::UnknownTopicOrPartition)
            {
                check("DeleteTopics", r.error_code, r.error_message.as_ref())?;
            }
        }
        Ok(())
    }
}
