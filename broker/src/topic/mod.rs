//! Topics as this broker holds them: every topic of the cluster metadata,
//! with the partitions this broker has a replica of opened. The registry
//! follows the metadata image (`sync`); topics are changed through the
//! active controller, never here.

pub mod changes;
pub mod config;
pub mod name;
pub mod partition_file;
pub mod placement;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;

use crate::metadata::image::{ClusterImage, TopicImage, Topics};
use crate::metrics::IsrCounters;
use crate::partition::{InSync, Partition, PartitionError};
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
    /// What the last sync that changed the topic left: its followed
    /// replicas with their leaders, and whether every replica the image
    /// places here is open. An unchanged topic is taken as it is.
    synced: Synced,
}

/// See [`Topic::synced`].
#[derive(Default)]
struct Synced {
    followed: Vec<(i32, Arc<Partition>)>,
    complete: bool,
}

/// Adds the replicas of `topic` this broker follows to `followed`.
fn follow(followed: &mut Followed, topic: &Topic) {
    for (leader, p) in &topic.synced.followed {
        followed.entry(*leader).or_default().push(p.clone());
    }
}

/// Whether a topic's image is the one synced with last time: the same
/// entry of a map sharing structure with the last one, or equal.
fn unchanged(previous: Option<&TopicImage>, now: &TopicImage) -> bool {
    previous.is_some_and(|p| std::ptr::eq(p, now) || p == now)
}

/// Whether `held` needs nothing from a sync with `now`: its image is the
/// last one synced with, and every replica of it here already took that.
fn untouched(held: &Topic, previous: Option<&TopicImage>, now: &TopicImage) -> bool {
    held.synced.complete && unchanged(previous, now)
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
    /// The topics of the image last synced with: a topic unchanged since
    /// keeps its replicas as they are, so a metadata change costs in
    /// proportion to what it changed, not to the cluster's size.
    last_synced: Mutex<Topics>,
    synced: tokio::sync::watch::Sender<u64>,
    /// ISR changes of the partitions led here, counted as they arrive.
    isr_changes: IsrCounters,
    /// Threads opening new replicas side by side (at start, every one).
    open_threads: usize,
}

impl TopicRegistry {
    /// An empty registry for broker `node_id`; `sync` fills it.
    pub fn new(node_id: i32, log_dirs: &[PathBuf], defaults: TopicDefaults) -> Self {
        TopicRegistry {
            node_id,
            placement: Placement::new(log_dirs),
            defaults,
            topics: RwLock::new(BTreeMap::new()),
            last_synced: Mutex::new(Topics::new_sync()),
            synced: tokio::sync::watch::channel(0).0,
            isr_changes: IsrCounters::default(),
            open_threads: 1,
        }
    }

    /// The broker whose replicas these are.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Opens new replicas on up to `threads` threads.
    pub fn opening_on(mut self, threads: usize) -> Self {
        self.open_threads = threads;
        self
    }

    /// Counts, in `counters`, the ISR changes of the partitions this
    /// broker leads, whoever made them (the leader itself, or the
    /// controller dropping a fenced broker).
    pub fn counting_isr_changes(mut self, counters: IsrCounters) -> Self {
        self.isr_changes = counters;
        self
    }

    /// Counts a change of `p`'s ISR while it stayed led here; `before` is
    /// its ISR before the metadata change was applied. Leader epochs are
    /// not compared: an ISR change counts whether or not the controller
    /// moved the epoch with it.
    fn count_isr_change(&self, before: Option<InSync>, p: &Partition) {
        let (Some(before), Some(after)) = (before, p.in_sync()) else {
            return;
        };
        if after.isr < before.isr {
            self.isr_changes.shrinks.inc();
        } else if after.isr > before.isr {
            self.isr_changes.expands.inc();
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
        let previous = std::mem::replace(
            &mut *self.last_synced.lock().unwrap_or_else(|e| e.into_inner()),
            image.topics.clone(),
        );
        let mut opened = self.open_new(image, &current, &previous);
        let mut followed = Followed::new();
        let mut next = BTreeMap::new();
        for (name, t) in &image.topics {
            let old = current.get(name).filter(|o| o.id == t.id);
            if let Some(old) = old.filter(|o| untouched(o, previous.get(name), t)) {
                // Every replica already has the role this image gives it.
                follow(&mut followed, old);
                next.insert(name.clone(), old.clone());
                continue;
            }
            let mut synced = Synced {
                followed: Vec::new(),
                complete: true,
            };
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
                    (true, None) => opened.remove(&(name.as_str(), index)).flatten(),
                    (false, Some(gone)) => {
                        gone.retire();
                        tracing::info!(topic = %name, partition = index, "replica moved away; removing its data");
                        self.remove_later(name, index);
                        None
                    }
                    (false, None) => None,
                });
                match partitions.last() {
                    Some(Some(local)) => {
                        let led = local.in_sync();
                        if let Some(pos) = local.apply(p) {
                            synced.followed.push((pos.leader, local.clone()));
                        }
                        self.count_isr_change(led, local);
                    }
                    _ if local => synced.complete = false,
                    _ => {}
                }
            }
            let topic = Arc::new(Topic {
                name: name.clone(),
                id: t.id,
                configs: t.configs.clone(),
                partitions,
                synced,
            });
            follow(&mut followed, &topic);
            next.insert(name.clone(), topic);
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

    /// Opens, side by side, this broker's replicas in `image` that `current`
    /// does not hold yet; each is `None` when it cannot be opened.
    fn open_new<'a>(
        &self,
        image: &'a ClusterImage,
        current: &BTreeMap<String, Arc<Topic>>,
        previous: &Topics,
    ) -> HashMap<(&'a str, i32), Option<Arc<Partition>>> {
        let mut wanted = Vec::new();
        for (name, t) in &image.topics {
            let old = current.get(name).filter(|o| o.id == t.id);
            if old.is_some_and(|o| untouched(o, previous.get(name), t)) {
                continue;
            }
            let log_config = config::log_config(&t.configs, &self.defaults);
            for (i, p) in t.partitions.iter().enumerate() {
                let held = old.is_some_and(|o| o.partitions.get(i).is_some_and(Option::is_some));
                if p.replicas.contains(&self.node_id) && !held {
                    wanted.push((name.as_str(), t.id, i as i32, log_config.clone()));
                }
            }
        }
        let opened =
            crate::parallel::map(&wanted, self.open_threads, |(name, id, index, config)| {
                self.open(name, *id, *index, config.clone())
            });
        wanted
            .into_iter()
            .map(|(name, _, index, _)| (name, index))
            .zip(opened)
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::PartitionImage;

    /// A partition on brokers 1 and 2, led by `leader` in `epoch`.
    fn partition(leader: i32, epoch: i32) -> PartitionImage {
        PartitionImage {
            replicas: vec![1, 2],
            isr: vec![1, 2],
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
            adding: Vec::new(),
            removing: Vec::new(),
            last_left_isr: None,
        }
    }

    fn topic(id: u128, partitions: Vec<PartitionImage>) -> TopicImage {
        TopicImage {
            id: Uuid::from_u128(id),
            configs: BTreeMap::new(),
            partitions: partitions.into_iter().collect(),
        }
    }

    /// Who broker 1 follows, as (leader, topic, partition).
    fn following(followed: &Followed) -> Vec<(i32, String, i32)> {
        followed
            .iter()
            .flat_map(|(leader, ps)| ps.iter().map(|p| (*leader, p.topic.clone(), p.index)))
            .collect()
    }

    #[test]
    fn a_metadata_change_touches_only_the_topics_it_changed() {
        let dir = tempfile::tempdir().expect("dir");
        let topics = TopicRegistry::new(1, &[dir.path().to_path_buf()], TopicDefaults::for_tests());
        let mut image = ClusterImage::default();
        image
            .topics
            .insert_mut("a".into(), topic(1, vec![partition(2, 0), partition(1, 0)]));
        image
            .topics
            .insert_mut("b".into(), topic(2, vec![partition(2, 0)]));
        let followed = topics.sync(&image, 1);
        assert_eq!(
            following(&followed),
            vec![(2, "a".into(), 0), (2, "b".into(), 0)]
        );
        let a = topics.get("a").expect("a");
        let b = topics.get("b").expect("b");

        // b's leader moves here; a is as it was.
        image
            .topics
            .insert_mut("b".into(), topic(2, vec![partition(1, 1)]));
        let followed = topics.sync(&image, 2);
        assert_eq!(following(&followed), vec![(2, "a".into(), 0)]);
        assert!(
            Arc::ptr_eq(&a, &topics.get("a").expect("a")),
            "a kept as it was"
        );
        assert!(!Arc::ptr_eq(&b, &topics.get("b").expect("b")));
        assert!(topics.partition("b", 0).expect("b-0").is_leader());

        // An equal image that shares nothing with the last one changes
        // nothing either.
        let mut copy = ClusterImage::default();
        copy.topics
            .insert_mut("a".into(), topic(1, vec![partition(2, 0), partition(1, 0)]));
        copy.topics
            .insert_mut("b".into(), topic(2, vec![partition(1, 1)]));
        let followed = topics.sync(&copy, 3);
        assert_eq!(following(&followed), vec![(2, "a".into(), 0)]);
        assert!(Arc::ptr_eq(&a, &topics.get("a").expect("a")));
    }

    #[test]
    fn new_replicas_open_side_by_side_each_in_its_place() {
        let dir = tempfile::tempdir().expect("dir");
        let topics = TopicRegistry::new(1, &[dir.path().to_path_buf()], TopicDefaults::for_tests())
            .opening_on(3);
        let mut image = ClusterImage::default();
        // Broker 1 leads the even partitions of a and b and follows the odd.
        let ten = || (0..10).map(|i| partition(1 + i % 2, 0)).collect::<Vec<_>>();
        image.topics.insert_mut("a".into(), topic(1, ten()));
        image.topics.insert_mut("b".into(), topic(2, ten()));
        let followed = topics.sync(&image, 1);
        assert_eq!(following(&followed).len(), 10, "the odd ones followed");
        for name in ["a", "b"] {
            for index in 0..10 {
                let p = topics.partition(name, index).expect("opened");
                assert_eq!((p.topic.as_str(), p.index), (name, index));
                assert_eq!(p.is_leader(), index % 2 == 0, "{name}-{index}");
            }
        }
        // A partition added later opens too; those held stay as they were.
        let a0 = topics.partition("a", 0).expect("a-0");
        let mut eleven = ten();
        eleven.push(partition(1, 0));
        image.topics.insert_mut("a".into(), topic(1, eleven));
        topics.sync(&image, 2);
        assert!(topics.partition("a", 10).expect("a-10").is_leader());
        assert!(Arc::ptr_eq(&a0, &topics.partition("a", 0).expect("a-0")));
    }
}
