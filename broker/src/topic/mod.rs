//! Topics as this broker holds them: every topic of the cluster metadata,
//! with the partitions this broker has a replica of opened. The registry
//! follows the metadata image (`sync`); topics are changed through the
//! active controller, never here.

pub mod changes;
pub mod config;
pub mod name;
pub mod partition_file;
pub mod placement;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::metadata::image::ClusterImage;
use crate::partition::{Partition, PartitionError};
use crate::replication::fetcher::Followed;
use crate::topic::config::TopicDefaults;
use crate::topic::placement::Placement;

/// Errors of topic administration, mapped to Kafka error codes by handlers.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The name breaks Kafka's naming rules.
    #[error(transparent)]
    InvalidName(#[from] name::InvalidName),
    /// A topic with this name exists.
    #[error("topic `{0}` already exists")]
    Exists(String),
    /// No such topic.
    #[error("topic `{0}` does not exist")]
    Unknown(String),
    /// Partition count is not positive, or would shrink.
    #[error("{0}")]
    InvalidPartitions(String),
    /// Replication factor cannot be met.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// A topic setting was refused.
    #[error(transparent)]
    Config(#[from] config::TopicConfigError),
    /// Internal topics cannot be changed this way.
    #[error("topic `{0}` is internal")]
    Internal(String),
    /// Opening a partition failed.
    #[error("cannot open partition {topic}-{partition}: {source}")]
    Partition {
        /// Topic.
        topic: String,
        /// Partition index.
        partition: i32,
        /// Cause.
        source: PartitionError,
    },
    /// The controller could not be reached.
    #[error("{0}")]
    Controller(String),
    /// The controller refused the change.
    #[error(transparent)]
    Refused(crate::metadata::records::Refusal),
}

/// A topic and this broker's replicas of its partitions.
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Settings that differ from the broker defaults.
    pub configs: BTreeMap<String, String>,
    /// Partitions in index order; `None` where this broker has no replica.
    pub partitions: Vec<Option<Arc<Partition>>>,
}

impl Topic {
    /// This broker's replicas of the topic's partitions.
    pub fn local(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.partitions.iter().flatten()
    }
}

/// What a new topic should look like.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Setting overrides.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// Checks what can be checked without the controller: the name, the
    /// counts and the settings.
    pub fn validate(&self) -> Result<(), TopicError> {
        name::validate(&self.name)?;
        if self.partitions <= 0 {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be larger than 0, got {}",
                self.partitions
            )));
        }
        if self.replication_factor <= 0 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor must be larger than 0, got {}",
                self.replication_factor
            )));
        }
        for (k, v) in &self.configs {
            config::validate(k, v)?;
        }
        Ok(())
    }
}

/// Every topic, and this broker's replicas.
pub struct TopicRegistry {
    node_id: i32,
    placement: Placement,
    defaults: TopicDefaults,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    synced: tokio::sync::watch::Sender<u64>,
}

impl TopicRegistry {
    /// An empty registry for broker `node_id`; `sync` fills it.
    pub fn new(node_id: i32, log_dirs: &[PathBuf], defaults: TopicDefaults) -> Self {
        TopicRegistry {
            node_id,
            placement: Placement::new(log_dirs),
            defaults,
            topics: RwLock::new(BTreeMap::new()),
            synced: tokio::sync::watch::channel(0).0,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the registry in line with `image` (applied up to `index`):
    /// opens new local replicas, applies setting changes, and removes the
    /// data of deleted topics and of replicas moved away. A replica that
    /// cannot be opened is logged and left out; the others still serve.
    ///
    /// Every local replica takes the role the image gives it; the followers
    /// are returned by leader, for the fetcher.
    pub fn sync(&self, image: &ClusterImage, index: u64) -> Followed {
        let current = self.read().clone();
        let mut followed = Followed::new();
        let mut next = BTreeMap::new();
        for (name, t) in &image.topics {
            let old = current.get(name).filter(|o| o.id == t.id);
            let log_config = config::log_config(&t.configs, &self.defaults);
            let reconfigured = old.is_some_and(|o| o.configs != t.configs);
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for (i, p) in t.partitions.iter().enumerate() {
                let index = i as i32;
                let existing = old.and_then(|o| o.partitions.get(i).cloned().flatten());
                let local = p.replicas.contains(&self.node_id);
                partitions.push(match (local, existing) {
                    (true, Some(e)) => {
                        if reconfigured {
                            e.set_config(log_config.clone());
                        }
                        Some(e)
                    }
                    (true, None) => self.open(name, t.id, index, log_config.clone()),
                    (false, Some(gone)) => {
                        gone.retire();
                        tracing::info!(topic = %name, partition = index, "replica moved away; removing its data");
                        self.remove_later(name, index);
                        None
                    }
                    (false, None) => None,
                });
                if let Some(Some(local)) = partitions.last() {
                    if let Some(pos) = local.apply(p) {
                        followed.entry(pos.leader).or_default().push(local.clone());
                    }
                }
            }
            next.insert(
                name.clone(),
                Arc::new(Topic {
                    name: name.clone(),
                    id: t.id,
                    configs: t.configs.clone(),
                    partitions,
                }),
            );
        }
        for (name, old) in &current {
            if next.get(name).is_some_and(|n| n.id == old.id) {
                continue;
            }
            tracing::info!(topic = %name, "deleted topic");
            for (i, p) in old.partitions.iter().enumerate() {
                if let Some(p) = p {
                    p.retire();
                    self.remove_later(name, i as i32);
                }
            }
        }
        *self.write() = next;
        self.synced.send_replace(index);
        followed
    }

    /// Removes the data of this broker's replica of `topic`'s partition
    /// `index`, if it has any.
    fn remove_later(&self, topic: &str, index: i32) {
        if let Some(dir) = self.placement.existing(topic, index) {
            self.placement.removed(&dir);
            remove_later(&dir);
        }
    }

    fn open(
        &self,
        topic: &str,
        id: Uuid,
        index: i32,
        config: crate::log::LogConfig,
    ) -> Option<Arc<Partition>> {
        let dir = self.placement.dir_for(topic, index);
        let opened = partition_file::claim(&dir, id)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                Partition::open(topic, index, self.node_id, &dir, config).map_err(|e| e.to_string())
            });
        match opened {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::error!(topic, partition = index, dir = %dir.display(), error = %e, "cannot open replica; it stays offline on this broker");
                None
            }
        }
    }

    /// Follows the metadata index the registry reflects.
    pub fn subscribe_synced(&self) -> tokio::sync::watch::Receiver<u64> {
        self.synced.subscribe()
    }

    /// Waits until the registry reflects the metadata log up to `index`.
    pub async fn wait_synced(&self, index: u64, timeout: std::time::Duration) -> bool {
        let mut rx = self.synced.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The broker-wide log defaults.
    pub fn defaults(&self) -> &TopicDefaults {
        &self.defaults
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    /// A topic by id.
    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.read().values().find(|t| t.id == id).cloned()
    }

    /// This broker's replica of one partition.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let t = self.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i).cloned().flatten())
    }

    /// Whether the partition exists in the cluster, stored here or not.
    pub fn exists(&self, topic: &str, index: i32) -> bool {
        self.get(topic)
            .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()))
    }

    /// Every topic, by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.read().values().cloned().collect()
    }
}

/// Renames a deleted partition's directory out of the way at once (so a new
/// topic of the same name starts empty) and removes it off the request path.
fn remove_later(dir: &Path) {
    let doomed = dir.with_extension(format!("{}.deleted", Uuid::new_v4().simple()));
    match std::fs::rename(dir, &doomed) {
        Ok(()) => {
            std::thread::spawn(move || {
                if let Err(e) = std::fs::remove_dir_all(&doomed) {
                    tracing::warn!(dir = %doomed.display(), error = %e, "could not remove deleted partition data");
                }
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not move deleted partition data")
        }
    }
}
