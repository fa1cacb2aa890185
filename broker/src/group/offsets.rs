//! Committed offsets: kept in memory, written as records to the internal
//! `__consumer_offsets` topic (see `offset_records`), and rebuilt from it
//! when this broker comes to lead a partition of it (read apart from the
//! store, `LoadedPartition`, then merged). A group's commits go to one
//! partition of that topic, chosen as Kafka chooses it. The topic is
//! compacted: the log cleaner drops superseded records (see `node`'s
//! `offsets_topic_configs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gregor_client::batch::Transactional;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::consumer_records::StoredConsumerGroup;
use super::offset_records::{self, Committed, GroupMetadata, OffsetRecord};
use crate::clock::now_ms;
use crate::log::control::Marker;
use crate::partition::producer_state::VerificationGuard;
use crate::partition::replay::{replay, replay_from, ReplayError};
use crate::partition::{Appended, Partition, PartitionError};

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Records per batch when writing many commits at once; with metadata of at
/// most 4 KiB each this stays under the topic's `max.message.bytes`.
const BATCH_RECORDS: usize = 100;

/// Why the offsets topic could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    /// Appending to or reading the partition failed.
    #[error("__consumer_offsets partition {partition}: {source}")]
    Partition {
        /// Partition index.
        partition: i32,
        /// Cause.
        source: PartitionError,
    },
    /// This broker holds no replica of the group's partition.
    #[error("__consumer_offsets partition {partition} has no replica on this broker")]
    NotLocal {
        /// Partition index.
        partition: i32,
    },
    /// Stored records could not be decoded.
    #[error("__consumer_offsets partition {partition}: undecodable records: {reason}")]
    Decode {
        /// Partition index.
        partition: i32,
        /// Decoder message.
        reason: String,
    },
}

/// Offsets of one group: (topic, partition) → committed.
pub type GroupOffsets = BTreeMap<(String, i32), Committed>;

/// What the records of the offsets topic say, record by record applied:
/// each group's offsets, each classic group's membership and each
/// consumer-protocol group; and the offsets committed in transactions not
/// yet ended (TxnOffsetCommit), which count once their commit marker is
/// written and never after an abort.
#[derive(Debug, Default)]
pub struct StoredGroups {
    offsets: BTreeMap<String, GroupOffsets>,
    metadata: BTreeMap<String, GroupMetadata>,
    consumer_groups: BTreeMap<String, StoredConsumerGroup>,
    /// Group → producer id → the offsets its transaction committed.
    pending: BTreeMap<String, HashMap<i64, GroupOffsets>>,
}

impl StoredGroups {
    /// Stored membership of every classic group, as of its last rebalance.
    pub fn group_metadata(&self) -> &BTreeMap<String, GroupMetadata> {
        &self.metadata
    }

    /// Consumer-protocol groups as stored, to resume them.
    pub fn consumer_groups(&self) -> &BTreeMap<String, StoredConsumerGroup> {
        &self.consumer_groups
    }

    /// Applies one record.
    fn apply(&mut self, rec: OffsetRecord) {
        match rec {
            OffsetRecord::Commit {
                group,
                topic,
                partition,
                committed,
            } => {
                self.offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), committed);
            }
            OffsetRecord::Delete {
                group,
                topic,
                partition,
            } => {
                let Some(g) = self.offsets.get_mut(&group) else {
                    return;
                };
                g.remove(&(topic, partition));
                if g.is_empty() {
                    self.offsets.remove(&group);
                }
            }
            OffsetRecord::Group { group, metadata } => {
                match metadata {
                    Some(m) => self.metadata.insert(group, m),
                    None => self.metadata.remove(&group),
                };
            }
            OffsetRecord::ConsumerGroup(rec) => {
                StoredConsumerGroup::apply(&mut self.consumer_groups, rec)
            }
        }
    }

    /// Holds a commit of `producer_id`'s transaction until it ends.
    fn hold(
        &mut self,
        producer_id: i64,
        group: String,
        topic: String,
        partition: i32,
        c: Committed,
    ) {
        self.pending
            .entry(group)
            .or_default()
            .entry(producer_id)
            .or_default()
            .insert((topic, partition), c);
    }

    /// Ends `producer_id`'s transaction for the groups `mine` selects: its
    /// offsets count on commit, are dropped on abort.
    fn end_transaction(&mut self, producer_id: i64, commit: bool, mine: impl Fn(&String) -> bool) {
        for (group, producers) in self.pending.iter_mut().filter(|(g, _)| mine(g)) {
            let Some(offsets) = producers.remove(&producer_id) else {
                continue;
            };
            if commit {
                self.offsets
                    .entry(group.clone())
                    .or_default()
                    .extend(offsets);
            }
        }
        self.pending.retain(|_, producers| !producers.is_empty());
    }

    /// Whether a transaction not yet ended committed an offset of the
    /// group's partition.
    fn unstable(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending.get(group).is_some_and(|producers| {
            producers
                .values()
                .any(|o| o.contains_key(&(topic.to_string(), partition)))
        })
    }

    /// Takes in the groups of another partition.
    fn absorb(&mut self, other: StoredGroups) {
        self.offsets.extend(other.offsets);
        self.metadata.extend(other.metadata);
        self.consumer_groups.extend(other.consumer_groups);
        self.pending.extend(other.pending);
    }

    /// Forgets every group `mine` selects.
    fn forget(&mut self, mine: impl Fn(&String) -> bool) {
        self.offsets.retain(|g, _| !mine(g));
        self.metadata.retain(|g, _| !mine(g));
        self.consumer_groups.retain(|g, _| !mine(g));
        self.pending.retain(|g, _| !mine(g));
    }
}

/// One offsets partition's log, read and decoded apart from the store (and
/// so without the coordinator's lock), to be merged into it.
#[derive(Debug)]
pub struct LoadedPartition {
    /// Its groups.
    pub groups: StoredGroups,
    /// The offset the read reached: markers written after it are applied
    /// when the load is merged ([`OffsetStore::merge`]).
    pub read_to: i64,
}

impl LoadedPartition {
    /// Reads `p`'s log from its start and applies every record.
    pub fn read(p: &Partition) -> Result<LoadedPartition, OffsetStoreError> {
        let mut groups = StoredGroups::default();
        let read_to = replay(p, |r| {
            if r.control {
                // A transaction's end: its held commits count or go.
                if let Ok(Some(m)) = Marker::parse(r.key.as_deref(), r.value.as_deref()) {
                    groups.end_transaction(r.producer_id, m.commit, |_| true);
                }
                return Ok(());
            }
            let Some(key) = &r.key else { return Ok(()) };
            match offset_records::decode(key, r.value.as_deref()) {
                Some(OffsetRecord::Commit {
                    group,
                    topic,
                    partition,
                    committed,
                }) if r.transactional => {
                    groups.hold(r.producer_id, group, topic, partition, committed)
                }
                Some(rec) => groups.apply(rec),
                None => {}
            }
            Ok(())
        })
        .map_err(|e| load_error(p.index, e))?;
        Ok(LoadedPartition { groups, read_to })
    }
}

/// A failed replay of offsets partition `partition`.
fn load_error(partition: i32, e: ReplayError) -> OffsetStoreError {
    match e {
        ReplayError::Partition(source) => OffsetStoreError::Partition { partition, source },
        ReplayError::Decode(reason) => OffsetStoreError::Decode { partition, reason },
    }
}

/// The committed offsets, and the classic groups' membership, of the
/// groups whose `__consumer_offsets` partitions this broker leads (loaded).
pub struct OffsetStore {
    /// Partitions of the offsets topic.
    count: i32,
    /// The partitions loaded, by index.
    loaded: BTreeMap<i32, Arc<Partition>>,
    stored: StoredGroups,
    /// The partition and the last write to it, which the caller may wait
    /// to see replicated.
    last_write: Option<(Arc<Partition>, Appended)>,
}

impl OffsetStore {
    /// An empty store over an offsets topic of `count` partitions.
    pub fn new(count: i32) -> OffsetStore {
        OffsetStore {
            count: count.max(1),
            loaded: BTreeMap::new(),
            stored: StoredGroups::default(),
            last_write: None,
        }
    }

    /// Where the last write ends, to wait for its replication.
    pub fn take_last_write(&mut self) -> Option<(Arc<Partition>, Appended)> {
        self.last_write.take()
    }

    /// The offsets partition of `group`.
    pub fn partition_for(&self, group: &str) -> i32 {
        offset_records::partition_for(group, self.count)
    }

    /// Whether this store serves `group` (it leads the group's partition).
    pub fn serves(&self, group: &str) -> bool {
        self.loaded.contains_key(&self.partition_for(group))
    }

    /// Indexes of the loaded partitions.
    pub fn loaded(&self) -> impl Iterator<Item = i32> + '_ {
        self.loaded.keys().copied()
    }

    /// Serves the groups of partition `p` (now led here) as `loaded` read
    /// them from its log.
    /// Takes in a partition read by [`LoadedPartition::read`]. Transaction
    /// markers written to it since the read reached its end (a
    /// WriteTxnMarkers finds the partition still loading, so its
    /// completion had no commits to settle) are applied now, or the
    /// transactions' held offsets would stay pending.
    pub fn merge(
        &mut self,
        p: Arc<Partition>,
        loaded: LoadedPartition,
    ) -> Result<(), OffsetStoreError> {
        self.stored.absorb(loaded.groups);
        self.loaded.insert(p.index, p.clone());
        let index = p.index;
        let mut ended = Vec::new();
        replay_from(&p, loaded.read_to, |r| {
            if r.control {
                if let Ok(Some(m)) = Marker::parse(r.key.as_deref(), r.value.as_deref()) {
                    ended.push((r.producer_id, m.commit));
                }
            }
            Ok(())
        })
        .map_err(|e| load_error(index, e))?;
        for (producer_id, commit) in ended {
            self.end_transaction(index, producer_id, commit);
        }
        Ok(())
    }

    /// Forgets the groups of partition `index` (led elsewhere now).
    pub fn unload(&mut self, index: i32) {
        self.loaded.remove(&index);
        let count = self.count;
        self.stored
            .forget(|g| offset_records::partition_for(g, count) == index);
    }

    /// Stored membership of every classic group, as of the last rebalance.
    pub fn group_metadata(&self) -> &BTreeMap<String, GroupMetadata> {
        self.stored.group_metadata()
    }

    /// Records a classic group's membership (`None`: the group is gone).
    pub fn save_group(
        &mut self,
        group: &str,
        metadata: Option<GroupMetadata>,
    ) -> Result<(), OffsetStoreError> {
        let value = metadata.as_ref().map(offset_records::group_value);
        self.write(group, vec![(offset_records::group_key(group), value)])?;
        let rec = OffsetRecord::Group {
            group: group.to_string(),
            metadata,
        };
        self.stored.apply(rec);
        Ok(())
    }

    /// Records a consumer-protocol group's new state (`None`: the group is
    /// gone): only the records that changed are written.
    pub fn save_consumer_group(
        &mut self,
        group: &str,
        stored: Option<StoredConsumerGroup>,
    ) -> Result<(), OffsetStoreError> {
        let records = StoredConsumerGroup::changes(
            group,
            self.stored.consumer_groups.get(group),
            stored.as_ref(),
        );
        if records.is_empty() {
            return Ok(());
        }
        self.write(group, records.iter().map(|r| r.encode()).collect())?;
        for rec in records {
            self.stored.apply(OffsetRecord::ConsumerGroup(rec));
        }
        Ok(())
    }

    /// A group's offsets, if it has any.
    pub fn group(&self, group: &str) -> Option<&GroupOffsets> {
        self.stored.offsets.get(group)
    }

    /// Ids of every group with committed offsets.
    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.stored.offsets.keys()
    }

    /// The loaded partition holding `group`'s records.
    pub fn partition_of(&self, group: &str) -> Result<&Arc<Partition>, OffsetStoreError> {
        let index = self.partition_for(group);
        self.loaded
            .get(&index)
            .ok_or(OffsetStoreError::NotLocal { partition: index })
    }

    /// Records commits of one group, all in one batch.
    pub fn commit(
        &mut self,
        group: &str,
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), OffsetStoreError> {
        let entries = commit_records(group, &commits);
        self.write(group, entries)?;
        for (topic, partition, committed) in commits {
            let rec = OffsetRecord::Commit {
                group: group.to_string(),
                topic,
                partition,
                committed,
            };
            self.stored.apply(rec);
        }
        Ok(())
    }

    /// Records commits of one group in `producer`'s transaction, in one
    /// batch of that transaction; they count once its commit marker is
    /// written (see [`OffsetStore::end_transaction`]).
    pub fn commit_transactional(
        &mut self,
        group: &str,
        producer: Transactional,
        guard: Option<VerificationGuard>,
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), OffsetStoreError> {
        let entries = commit_records(group, &commits);
        let p = self.partition_of(group)?.clone();
        if let Some(appended) = append(&p, entries, Some((producer, guard)))? {
            self.last_write = Some((p, appended));
        }
        for (topic, partition, committed) in commits {
            self.stored.hold(
                producer.producer_id,
                group.to_string(),
                topic,
                partition,
                committed,
            );
        }
        Ok(())
    }

    /// `producer_id`'s transaction ended on offsets partition `index` (its
    /// marker is written and replicated): the offsets it committed for the
    /// groups of that partition count, or are dropped.
    pub fn end_transaction(&mut self, index: i32, producer_id: i64, commit: bool) {
        let count = self.count;
        self.stored.end_transaction(producer_id, commit, |g| {
            offset_records::partition_for(g, count) == index
        });
    }

    /// Whether a transaction not yet ended committed an offset of the
    /// group's partition (OffsetFetch's `require_stable`).
    pub fn unstable(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.stored.unstable(group, topic, partition)
    }

    /// Forgets one partition's offset.
    pub fn delete(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<(), OffsetStoreError> {
        self.write(
            group,
            vec![(offset_records::key(group, topic, partition), None)],
        )?;
        let rec = OffsetRecord::Delete {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        };
        self.stored.apply(rec);
        Ok(())
    }

    /// Forgets a whole group.
    pub fn drop_group(&mut self, group: &str) -> Result<(), OffsetStoreError> {
        let keys: Vec<(String, i32)> = self
            .stored
            .offsets
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default();
        let tombstones = keys
            .iter()
            .map(|(t, p)| (offset_records::key(group, t, *p), None))
            .collect();
        self.write(group, tombstones)?;
        self.stored.offsets.remove(group);
        Ok(())
    }

    /// Forces the offsets topic to disk.
    pub fn sync(&self) -> Result<(), OffsetStoreError> {
        for p in self.loaded.values() {
            p.flush().map_err(|source| OffsetStoreError::Partition {
                partition: p.index,
                source,
            })?;
        }
        Ok(())
    }

    fn write(
        &mut self,
        group: &str,
        entries: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), OffsetStoreError> {
        let p = self.partition_of(group)?.clone();
        for chunk in entries.chunks(BATCH_RECORDS) {
            if let Some(appended) = append(&p, chunk.to_vec(), None)? {
                self.last_write = Some((p.clone(), appended));
            }
        }
        Ok(())
    }
}

/// The records of a group's commits, stamped now.
fn commit_records(
    group: &str,
    commits: &[(String, i32, Committed)],
) -> Vec<(Bytes, Option<Bytes>)> {
    let now = now_ms();
    commits
        .iter()
        .map(|(t, p, c)| {
            (
                offset_records::key(group, t, *p),
                Some(offset_records::value(c, now)),
            )
        })
        .collect()
}

/// Appends records as one batch, as part of `transaction` when given (as
/// a coordinator: the batch has the producer's id and epoch, no sequence;
/// with the guard of its verification).
fn append(
    p: &Partition,
    entries: Vec<(Bytes, Option<Bytes>)>,
    transaction: Option<(Transactional, Option<VerificationGuard>)>,
) -> Result<Option<Appended>, OffsetStoreError> {
    if entries.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let records = entries
        .into_iter()
        .map(|(key, value)| (Some(key), value, now));
    let buf =
        gregor_client::batch::encode_for(records, Compression::None, transaction.map(|t| t.0))
            .map_err(|e| OffsetStoreError::Decode {
                partition: p.index,
                reason: format!("encoding commits: {e}"),
            })?;
    let appended = match transaction {
        Some((_, guard)) => p.append_as_coordinator(buf.freeze(), guard),
        None => p.append(buf.freeze(), None),
    }
    .map_err(|source| OffsetStoreError::Partition {
        partition: p.index,
        source,
    })?;
    Ok(Some(appended))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::metadata::image::ClusterImage;
    use crate::metadata::records::MetadataRecord;
    use crate::topic::config::TopicDefaults;
    use crate::topic::{Topic, TopicRegistry};

    /// A registry on `dir` holding the offsets topic (3 partitions) on
    /// broker 1, as the metadata log would create it.
    pub(in crate::group) fn registry(dir: &std::path::Path) -> (TopicRegistry, Arc<Topic>) {
        let topics = TopicRegistry::new(1, &[dir.to_path_buf()], TopicDefaults::for_tests());
        topics.sync(&offsets_led_by_one(), 3);
        let topic = topics.get(OFFSETS_TOPIC).expect("offsets topic");
        (topics, topic)
    }

    /// Metadata with an offsets topic of 3 partitions, all led by broker 1.
    pub(in crate::group) fn offsets_led_by_one() -> ClusterImage {
        let mut image = ClusterImage::default();
        image.apply(
            1,
            &MetadataRecord::RegisterBroker {
                id: 1,
                storage: uuid::Uuid::nil(),
                incarnation: uuid::Uuid::from_u128(1),
                endpoints: vec![],
                rack: None,
            },
        );
        image.apply(2, &MetadataRecord::UnfenceBroker { id: 1, epoch: 1 });
        image.apply(
            3,
            &MetadataRecord::CreateTopic {
                name: OFFSETS_TOPIC.into(),
                id: uuid::Uuid::from_u128(1),
                configs: [("cleanup.policy", "compact"), ("segment.bytes", "20000")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                assignment: vec![vec![1]; 3],
            },
        );
        image
    }

    /// A store that leads every partition of `topic`.
    fn store(topic: &Topic) -> OffsetStore {
        let mut s = OffsetStore::new(topic.partitions.len() as i32);
        for p in topic.local() {
            let loaded = LoadedPartition::read(p).expect("read");
            s.merge(p.clone(), loaded).expect("merge");
        }
        s
    }

    fn c(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: format!("m{offset}"),
        }
    }

    #[test]
    fn a_marker_written_while_a_partition_loads_settles_its_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_topics, topic) = registry(dir.path());
        let producer = Transactional {
            producer_id: 42,
            producer_epoch: 0,
        };
        let p = {
            let mut s = store(&topic);
            let p = s.partition_of("g").expect("partition").clone();
            let guard = p.start_verification(42, 0, -1).expect("verification");
            s.commit_transactional("g", producer, guard, vec![("t".into(), 0, c(5))])
                .expect("commit");
            p
        };
        // A coordinator loading the partition read it before the commit
        // marker landed, which it then could not apply.
        let loaded = LoadedPartition::read(&p).expect("read");
        p.append_marker(42, 0, 0, true, 1).expect("marker");
        let mut s = OffsetStore::new(3);
        s.merge(p.clone(), loaded).expect("merge");
        let committed = s.group("g").and_then(|g| g.get(&("t".to_string(), 0)));
        assert_eq!(committed, Some(&c(5)));
        assert!(!s.unstable("g", "t", 0));
    }

    #[test]
    fn commits_are_rebuilt_from_the_topic() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (_topics, topic) = registry(dir.path());
            let mut s = store(&topic);
            s.commit("g", vec![("t".into(), 0, c(5)), ("t".into(), 1, c(3))])
                .expect("commit");
            s.commit("g", vec![("t".into(), 0, c(7))]).expect("commit");
            s.delete("g", "t", 1).expect("delete");
            s.commit("h", vec![("t".into(), 0, c(1))]).expect("commit");
            s.drop_group("h").expect("drop");
            s.commit("other", vec![("u".into(), 2, c(9))])
                .expect("commit");
        }
        let (_topics, topic) = registry(dir.path());
        let s = store(&topic);
        let g = s.group("g").expect("group g");
        assert_eq!(g.len(), 1);
        assert_eq!(g.get(&("t".to_string(), 0)), Some(&c(7)));
        assert!(s.group("h").is_none());
        assert_eq!(
            s.group("other").and_then(|o| o.get(&("u".to_string(), 2))),
            Some(&c(9))
        );
    }

    #[test]
    fn the_cleaner_drops_superseded_commits_and_the_groups_load_the_same() {
        use crate::log::cleaner::Throttle;
        use crate::log::offset_map::OffsetMap;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_topics, topic) = registry(dir.path());
        let mut s = store(&topic);
        for i in 0..12_000 {
            s.commit("busy", vec![("t".into(), i % 2, c(i as i64))])
                .expect("commit");
        }
        let p = topic.partitions[offset_records::partition_for("busy", 3) as usize]
            .as_ref()
            .expect("local");
        let (before, _) = p.disk_usage();
        let mut cleanings = 0;
        while let Some(job) = p.plan_clean(now_ms()) {
            let out = job
                .run(
                    &mut OffsetMap::with_memory(1 << 20),
                    &mut Throttle::new(f64::MAX),
                    &mut |g| p.install_cleaned(g),
                )
                .expect("clean")
                .expect("the log stays as planned");
            p.finish_clean(&out).expect("finish");
            cleanings += 1;
            assert!(cleanings < 10, "cleaning does not settle");
        }
        let (after, _) = p.disk_usage();
        // Everything but the active segment is down to two records.
        assert!(
            after < before / 10 && after <= 20_000 + 1000,
            "{before} -> {after}"
        );
        s.commit("busy", vec![("t".into(), 0, c(12_000))])
            .expect("commit after cleaning");
        drop(s);
        let s = store(&topic);
        let g = s.group("busy").expect("group");
        assert_eq!(g.get(&("t".to_string(), 0)), Some(&c(12_000)));
        assert_eq!(g.get(&("t".to_string(), 1)), Some(&c(11_999)));
    }
}
