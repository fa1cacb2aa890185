//! Topics on this broker: names, ids, settings and partitions, kept in a
//! registry that is saved to the first log directory so a restart brings
//! every topic back.

pub mod config;
pub mod metadata_file;
pub mod name;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::config::LogDefaults;
use crate::partition::{Partition, PartitionError};
use metadata_file::{MetadataFile, TopicRecord};

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
    /// Saving topic metadata failed.
    #[error("cannot save topic metadata to {path}: {source}")]
    Save {
        /// The metadata file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A topic and its partitions.
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Settings that differ from the broker defaults.
    pub configs: BTreeMap<String, String>,
    /// Partitions in index order.
    pub partitions: Vec<Arc<Partition>>,
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

/// All topics of this broker.
pub struct TopicRegistry {
    log_dirs: Vec<PathBuf>,
    defaults: LogDefaults,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    file: MetadataFile,
    appended: Arc<tokio::sync::watch::Sender<u64>>,
    /// Serialises changes so the metadata file is written in order.
    admin: std::sync::Mutex<()>,
}

fn partition_dir(log_dirs: &[PathBuf], topic: &str, index: i32) -> PathBuf {
    let leaf = format!("{topic}-{index}");
    log_dirs
        .iter()
        .map(|d| d.join(&leaf))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            // Spread new partitions over the directories.
            let i = (index as usize) % log_dirs.len().max(1);
            log_dirs.get(i).unwrap_or(&log_dirs[0]).join(leaf)
        })
}

impl TopicRegistry {
    /// Loads the saved topics and opens (recovering) every partition.
    pub fn open(
        log_dirs: &[PathBuf],
        defaults: LogDefaults,
        appended: Arc<tokio::sync::watch::Sender<u64>>,
    ) -> Result<Self, TopicError> {
        let file = MetadataFile::new(&log_dirs[0]);
        let saved = file.load().map_err(|source| TopicError::Save {
            path: file.path().to_path_buf(),
            source,
        })?;
        let registry = TopicRegistry {
            log_dirs: log_dirs.to_vec(),
            defaults,
            topics: RwLock::new(BTreeMap::new()),
            file,
            appended,
            admin: std::sync::Mutex::new(()),
        };
        let mut topics = BTreeMap::new();
        for record in saved {
            let topic = registry.open_topic(&record)?;
            topics.insert(record.name.clone(), Arc::new(topic));
        }
        *registry.write() = topics;
        Ok(registry)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    fn open_topic(&self, record: &TopicRecord) -> Result<Topic, TopicError> {
        let log_config = config::log_config(&record.configs, &self.defaults);
        let partitions = (0..record.partitions)
            .map(|i| {
                let dir = partition_dir(&self.log_dirs, &record.name, i);
                Partition::open(
                    &record.name,
                    i,
                    &dir,
                    log_config.clone(),
                    self.appended.clone(),
                )
                .map(Arc::new)
                .map_err(|source| TopicError::Partition {
                    topic: record.name.clone(),
                    partition: i,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Topic {
            name: record.name.clone(),
            id: record.id,
            configs: record.configs.clone(),
            partitions,
        })
    }

    fn save(&self, topics: &BTreeMap<String, Arc<Topic>>) -> Result<(), TopicError> {
        let records: Vec<TopicRecord> = topics
            .values()
            .map(|t| TopicRecord {
                name: t.name.clone(),
                id: t.id,
                partitions: t.partitions.len() as i32,
                configs: t.configs.clone(),
            })
            .collect();
        self.file.save(&records).map_err(|source| TopicError::Save {
            path: self.file.path().to_path_buf(),
            source,
        })
    }

    /// The broker-wide log defaults.
    pub fn defaults(&self) -> &LogDefaults {
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

    /// One partition.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let t = self.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i).cloned())
    }

    /// Every topic, by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.read().values().cloned().collect()
    }

    /// Checks a new topic without creating it.
    pub fn validate(&self, new: &NewTopic, live_brokers: usize) -> Result<(), TopicError> {
        name::validate(&new.name)?;
        if self.get(&new.name).is_some() {
            return Err(TopicError::Exists(new.name.clone()));
        }
        if new.partitions <= 0 {
            return Err(TopicError::InvalidPartitions(format!(
                "number of partitions must be larger than 0, got {}",
                new.partitions
            )));
        }
        if new.replication_factor <= 0 {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor must be larger than 0, got {}",
                new.replication_factor
            )));
        }
        if new.replication_factor as usize > live_brokers {
            return Err(TopicError::InvalidReplicationFactor(format!(
                "replication factor {} is larger than the {} available broker(s)",
                new.replication_factor, live_brokers
            )));
        }
        for (k, v) in &new.configs {
            config::validate(k, v)?;
        }
        Ok(())
    }

    /// Creates a topic and its partition logs.
    pub fn create(&self, new: &NewTopic, live_brokers: usize) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.validate(new, live_brokers)?;
        let record = TopicRecord {
            name: new.name.clone(),
            id: Uuid::new_v4(),
            partitions: new.partitions,
            configs: new.configs.clone(),
        };
        let topic = Arc::new(self.open_topic(&record)?);
        let mut topics = self.read().clone();
        topics.insert(new.name.clone(), topic.clone());
        self.save(&topics)?;
        *self.write() = topics;
        tracing::info!(topic = %new.name, partitions = new.partitions, "created topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.into()))?;
        let current = old.partitions.len() as i32;
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
        if validate_only {
            return Ok(());
        }
        let log_config = config::log_config(&old.configs, &self.defaults);
        let mut partitions = old.partitions.clone();
        for i in current..count {
            let dir = partition_dir(&self.log_dirs, name, i);
            let p = Partition::open(name, i, &dir, log_config.clone(), self.appended.clone())
                .map_err(|source| TopicError::Partition {
                    topic: name.into(),
                    partition: i,
                    source,
                })?;
            partitions.push(Arc::new(p));
        }
        self.replace(Topic {
            name: old.name.clone(),
            id: old.id,
            configs: old.configs.clone(),
            partitions,
        })
    }

    /// Replaces a topic's setting overrides (already validated).
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.into()))?;
        let log_config = config::log_config(&configs, &self.defaults);
        for p in &old.partitions {
            p.set_config(log_config.clone());
        }
        self.replace(Topic {
            name: old.name.clone(),
            id: old.id,
            configs,
            partitions: old.partitions.clone(),
        })
    }

    fn replace(&self, topic: Topic) -> Result<(), TopicError> {
        let mut topics = self.read().clone();
        topics.insert(topic.name.clone(), Arc::new(topic));
        self.save(&topics)?;
        *self.write() = topics;
        Ok(())
    }

    /// Deletes a topic and, in the background, its data.
    pub fn delete(&self, name: &str) -> Result<Uuid, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let mut topics = self.read().clone();
        let topic = topics
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.into()))?;
        self.save(&topics)?;
        *self.write() = topics;
        let dirs: Vec<PathBuf> = (0..topic.partitions.len() as i32)
            .map(|i| partition_dir(&self.log_dirs, name, i))
            .collect();
        let id = topic.id;
        drop(topic);
        for dir in dirs {
            remove_later(&dir);
        }
        tracing::info!(topic = %name, "deleted topic");
        Ok(id)
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
