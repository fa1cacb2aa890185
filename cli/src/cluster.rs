//! The cluster as a client sees it: bootstrap servers, the brokers and
//! topics the metadata names, and one connection per broker.

use std::collections::{BTreeMap, HashMap};

use gregor_client::{ClientError, Connection};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::error::{check, CliError};

/// Metadata v12: topic ids, no cluster-wide authorized operations.
const METADATA_VERSION: i16 = 12;
/// FindCoordinator v4: batched keys.
const FIND_COORDINATOR_VERSION: i16 = 4;

/// One partition's placement.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    /// Partition index.
    pub index: i32,
    /// Leader broker id (-1: none).
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

/// One topic.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic id.
    pub id: uuid::Uuid,
    /// Whether Kafka calls it internal (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions, by index.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The leader of partition `p`; LEADER_NOT_AVAILABLE about `doing`
    /// ("writing to", "reading") while it has none.
    pub fn leader(&self, p: i32, doing: &str) -> Result<i32, CliError> {
        match self.partitions.iter().find(|info| info.index == p) {
            Some(info) if info.leader >= 0 => Ok(info.leader),
            _ => Err(CliError::Kafka {
                what: format!("{doing} {}-{p}", self.name),
                code: ResponseError::LeaderNotAvailable.code(),
                message: None,
            }),
        }
    }
}

/// Connections to a cluster.
pub struct Cluster {
    bootstrap: String,
    client_id: String,
    brokers: BTreeMap<i32, String>,
    connections: HashMap<i32, Connection>,
    /// The connection metadata requests go to.
    any: Option<Connection>,
}

impl Cluster {
    /// Connects to the first answering server of `bootstrap`
    /// (`host:port,host:port`).
    pub async fn connect(bootstrap: &str, client_id: &str) -> Result<Self, CliError> {
        let mut cluster = Cluster {
            bootstrap: bootstrap.to_owned(),
            client_id: client_id.to_owned(),
            brokers: BTreeMap::new(),
            connections: HashMap::new(),
            any: None,
        };
        cluster.any = Some(cluster.bootstrap_connection().await?);
        Ok(cluster)
    }

    async fn bootstrap_connection(&self) -> Result<Connection, CliError> {
        let mut last = None;
        let servers = self
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty());
        // Known brokers first: the bootstrap list may be a single address
        // that just went away.
        let known: Vec<String> = self.brokers.values().cloned().collect();
        for addr in known.iter().map(String::as_str).chain(servers) {
            match Connection::connect(addr, &self.client_id).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(last) => Err(CliError::Unreachable {
                servers: self.bootstrap.clone(),
                last,
            }),
            None => Err(CliError::Usage("--bootstrap-server is empty".into())),
        }
    }

    /// Sends `request` to any broker, reconnecting once if the connection
    /// broke.
    pub async fn send_any<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, CliError> {
        if let Some(conn) = self.any.as_mut() {
            match conn.send(request, version).await {
                Ok(r) => return Ok(r),
                Err(_) => self.any = None,
            }
        }
        let mut conn = self.bootstrap_connection().await?;
        let response = conn.send(request, version).await?;
        self.any = Some(conn);
        Ok(response)
    }

    /// Sends `request` to broker `id`, connecting if needed. A failed
    /// connection is dropped so the next call reconnects.
    pub async fn send_to<R: Request>(
        &mut self,
        id: i32,
        request: &R,
        version: i16,
    ) -> Result<R::Response, CliError> {
        if !self.connections.contains_key(&id) {
            let addr = self
                .brokers
                .get(&id)
                .ok_or_else(|| CliError::Usage(format!("broker {id} is not in the metadata")))?;
            let conn = connect_retrying(addr, &self.client_id)
                .await
                .map_err(|last| CliError::BrokerUnreachable {
                    id,
                    addr: addr.clone(),
                    last,
                })?;
            self.connections.insert(id, conn);
        }
        let Some(conn) = self.connections.get_mut(&id) else {
            return Err(CliError::Usage(format!("broker {id} is not connected")));
        };
        let result = conn.send(request, version).await;
        if result.is_err() {
            self.connections.remove(&id);
        }
        Ok(result?)
    }

    /// Fetches metadata for `topics` (all topics when `None`) and
    /// remembers the brokers' addresses.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<BTreeMap<String, TopicInfo>, CliError> {
        let mut req = MetadataRequest::default();
        req.allow_auto_topic_creation = false;
        req.topics = topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    let mut t = MetadataRequestTopic::default();
                    t.name = Some(TopicName(StrBytes::from_string(n.clone())));
                    t
                })
                .collect()
        });
        let resp: MetadataResponse = self.send_any(&req, METADATA_VERSION).await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        let mut out = BTreeMap::new();
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else {
                continue;
            };
            if t.error_code == ResponseError::UnknownTopicOrPartition.code() {
                continue;
            }
            check(t.error_code, None, format!("topic {name}"))?;
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            out.insert(
                name.clone(),
                TopicInfo {
                    name,
                    id: t.topic_id,
                    internal: t.is_internal,
                    partitions,
                },
            );
        }
        Ok(out)
    }

    /// Metadata for one topic that must exist.
    pub async fn topic(&mut self, name: &str) -> Result<TopicInfo, CliError> {
        self.metadata(Some(&[name.to_owned()]))
            .await?
            .remove(name)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "topic {name} does not exist (gregor topics create --topic {name})"
                ))
            })
    }

    /// The broker coordinating `group`.
    pub async fn coordinator(&mut self, group: &str) -> Result<i32, CliError> {
        let mut req = FindCoordinatorRequest::default();
        req.key_type = 0;
        req.coordinator_keys = vec![StrBytes::from_string(group.to_owned())];
        let resp = self.send_any(&req, FIND_COORDINATOR_VERSION).await?;
        let c = resp
            .coordinators
            .first()
            .ok_or_else(|| CliError::Usage("FindCoordinator answered nothing".into()))?;
        check(
            c.error_code,
            c.error_message.as_deref(),
            format!("finding the coordinator of group {group}"),
        )?;
        self.brokers
            .insert(c.node_id.0, format!("{}:{}", c.host, c.port));
        Ok(c.node_id.0)
    }
}

/// How many times a broker is dialled before giving up, the first retry
/// after [`FIRST_BACKOFF`], each later one after twice the wait before.
const CONNECT_ATTEMPTS: u32 = 5;

/// The wait before the first retry.
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Connects to `addr`, retrying a failed attempt a few times with a
/// growing backoff as Kafka's clients do (`reconnect.backoff.ms`): a
/// broker restarting or a name server that missed one lookup is not the
/// end of a command.
async fn connect_retrying(addr: &str, client_id: &str) -> Result<Connection, ClientError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match Connection::connect(addr, client_id).await {
            Ok(c) => return Ok(c),
            Err(e) if attempt >= CONNECT_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        }
    }
}
