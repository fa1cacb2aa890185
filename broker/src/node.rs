//! This broker's shared state: configuration, identity, topics, groups and
//! producer ids. Every connection's handlers read it through an `Arc<Node>`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BrokerConfig, Endpoint};
use crate::group::offsets::{OffsetStoreError, OFFSETS_TOPIC};
use crate::group::{GroupCoordinator, GroupSettings};
use crate::producer_id::ProducerIdAllocator;
use crate::topic::{NewTopic, TopicError, TopicRegistry};

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A log directory cannot be created or read.
    #[error("log directory {path}: {source}")]
    LogDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The log directory belongs to another node or cluster.
    #[error("log directory {path} belongs to node {found}, but this is node.id={expected}")]
    WrongNode {
        /// The directory.
        path: std::path::PathBuf,
        /// node.id in its meta.properties.
        found: String,
        /// This broker's node.id.
        expected: i32,
    },
    /// Loading topics failed.
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// Committed offsets could not be loaded.
    #[error("loading committed offsets: {0}")]
    Offsets(#[from] OffsetStoreError),
}

/// One running broker.
pub struct Node {
    /// Its configuration.
    pub config: BrokerConfig,
    /// Cluster id, kept in each log directory's `meta.properties`.
    pub cluster_id: String,
    /// Topics and partitions.
    pub topics: TopicRegistry,
    /// Consumer groups.
    pub groups: Arc<GroupCoordinator>,
    /// Producer ids for idempotent producers.
    pub producer_ids: ProducerIdAllocator,
    /// Bumped after every append; long-polling fetches wait on it.
    pub appended: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Node {
    /// Prepares the log directories, recovers every partition and loads state.
    pub fn start(config: BrokerConfig) -> Result<Arc<Node>, StartError> {
        let mut cluster_id = None;
        for dir in &config.log_dirs {
            let id = claim_log_dir(dir, config.node_id, cluster_id.as_deref())?;
            cluster_id.get_or_insert(id);
        }
        let cluster_id = cluster_id.unwrap_or_else(new_cluster_id);
        let appended = Arc::new(tokio::sync::watch::channel(0u64).0);
        let topics = TopicRegistry::open(&config.log_dirs, config.log.clone(), appended.clone())?;
        let producer_ids = ProducerIdAllocator::open(&config.log_dirs[0]).map_err(|source| {
            StartError::LogDir {
                path: config.log_dirs[0].clone(),
                source,
            }
        })?;
        let settings = GroupSettings {
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
            consumer_session_timeout: Duration::from_millis(
                config.group_consumer_session_timeout_ms,
            ),
            consumer_heartbeat_interval: Duration::from_millis(
                config.group_consumer_heartbeat_interval_ms,
            ),
        };
        let offsets_topic = match topics.get(OFFSETS_TOPIC) {
            Some(t) => t,
            None => topics.create(&offsets_topic(&config), 1)?,
        };
        let groups = Arc::new(GroupCoordinator::open(offsets_topic, settings)?);
        Ok(Arc::new(Node {
            config,
            cluster_id,
            topics,
            groups,
            producer_ids,
            appended,
        }))
    }

    /// The address this broker advertises on `listener`.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.config.advertised_endpoint(listener)
    }

    /// Brokers currently alive (this one, until the cluster issue lands).
    pub fn live_brokers(&self) -> usize {
        1
    }
}

/// A fresh cluster id: 16 random bytes in URL-safe base64, as Kafka's are.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// Creates `dir` if needed and checks or writes its `meta.properties`, the
/// same file Kafka keeps, so a directory is never used by two nodes.
/// The internal topic of committed offsets, as Kafka sets it up: kept
/// forever (superseded records are dropped by the coordinator's
/// checkpoints), with segments and batches sized for it.
fn offsets_topic(config: &BrokerConfig) -> NewTopic {
    NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: config.offsets_topic_num_partitions,
        replication_factor: 1,
        configs: [
            ("retention.ms", "-1"),
            ("segment.bytes", "104857600"),
            ("max.message.bytes", "10485760"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

fn claim_log_dir(dir: &Path, node_id: i32, cluster_id: Option<&str>) -> Result<String, StartError> {
    let io = |source| StartError::LogDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let meta = dir.join("meta.properties");
    match std::fs::read_to_string(&meta) {
        Ok(text) => {
            let props = crate::config::properties::parse(&text, &meta.display().to_string());
            let found = props
                .get("node.id")
                .map(|p| p.value.clone())
                .unwrap_or_default();
            if found != node_id.to_string() {
                return Err(StartError::WrongNode {
                    path: dir.to_path_buf(),
                    found,
                    expected: node_id,
                });
            }
            Ok(props
                .get("cluster.id")
                .map(|p| p.value.clone())
                .unwrap_or_else(new_cluster_id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = cluster_id
                .map(str::to_string)
                .unwrap_or_else(new_cluster_id);
            let text = format!("version=1\ncluster.id={id}\nnode.id={node_id}\n");
            std::fs::write(&meta, text).map_err(io)?;
            Ok(id)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn a_log_dir_is_claimed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = claim_log_dir(dir.path(), 1, None).expect("claim");
        assert_eq!(claim_log_dir(dir.path(), 1, None).expect("again"), first);
        assert!(matches!(
            claim_log_dir(dir.path(), 2, None),
            Err(StartError::WrongNode { .. })
        ));
    }
}
