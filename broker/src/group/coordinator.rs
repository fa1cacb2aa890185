//! The group coordinator: serves the groups of the `__consumer_offsets`
//! partitions this broker leads, for both group protocols, with their
//! committed offsets. It speaks plain data; `handlers::group` translates
//! the Kafka requests.
//!
//! State lives in one `Inner` behind a std mutex that is never held across
//! an await, nor while a partition's log is read. Clients waiting for a
//! rebalance park on oneshot channels; timers (initial delay, rebalance
//! timeout) and the session sweeper are tasks that re-take the lock and
//! check they still apply. The operations of each protocol are in
//! `membership` (classic), `consumer_heartbeat` (KIP-848), `commits` and
//! `admin`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::consumer::ConsumerGroup;
use super::error::GroupError;
use super::membership::Entry;
use super::offset_records::partition_for;
use super::offsets::{LoadedPartition, OffsetStore, OffsetStoreError, OFFSETS_TOPIC};
use super::state::Group;
use crate::clock::now_ms;
use crate::leadership::{Leadership, LoadTicket};
use crate::metadata::store::MetadataView;
use crate::partition::{Appended, Partition, Replication};
use crate::topic::TopicRegistry;

/// Coordinator settings from the broker configuration.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout: Duration,
    /// `group.consumer.session.timeout.ms` (consumer protocol)
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms` (consumer protocol)
    pub consumer_heartbeat_interval: Duration,
}

/// How long a write of group records waits for replication (Kafka's
/// `offsets.commit.timeout.ms` default).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Inner {
    /// Groups of the classic protocol, with their waiting clients.
    pub(super) groups: HashMap<String, Entry>,
    /// Groups of the consumer protocol (KIP-848).
    pub(super) consumer_groups: HashMap<String, ConsumerGroup>,
    pub(super) offsets: OffsetStore,
    /// The offsets partitions served or being loaded.
    leadership: Leadership,
    /// The metadata this broker applied. An offsets partition it names
    /// this broker leader of, which `lead` has not taken up yet (that
    /// waits for the replicas to follow the metadata, which opens logs),
    /// is about to load: its groups get COORDINATOR_LOAD_IN_PROGRESS, as
    /// in Kafka, not NOT_COORDINATOR, which FindCoordinator would answer
    /// by sending clients back to this broker.
    metadata: watch::Receiver<MetadataView>,
    node_id: i32,
}

/// Coordinates every consumer group on this broker.
pub struct GroupCoordinator {
    pub(super) inner: Arc<Mutex<Inner>>,
    /// Partitions of the offsets topic.
    partitions: i32,
    pub(super) settings: GroupSettings,
    /// Topic names and ids, partition counts.
    pub(super) topics: Arc<TopicRegistry>,
}

/// One offsets partition read and its groups resumed, ready to merge.
struct Restored {
    loaded: LoadedPartition,
    classic: Vec<Group>,
    consumer: Vec<ConsumerGroup>,
}

impl GroupCoordinator {
    /// A coordinator over an offsets topic of `partitions` partitions; it
    /// serves the groups of the partitions it is given to lead (`lead`),
    /// and knows from `metadata` which ones it is about to be given.
    pub fn new(
        partitions: i32,
        settings: GroupSettings,
        topics: Arc<TopicRegistry>,
        metadata: watch::Receiver<MetadataView>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            inner: Arc::new(Mutex::new(Inner {
                groups: HashMap::new(),
                consumer_groups: HashMap::new(),
                offsets: OffsetStore::new(partitions),
                leadership: Leadership::default(),
                metadata,
                node_id: topics.node_id(),
            })),
            partitions,
            settings,
            topics,
        }
    }

    /// Serves exactly the groups of `led`, the offsets partitions this
    /// broker leads now: newly led ones are loaded from their log (groups
    /// of both protocols resume with their members, generation or epochs
    /// and assignments, each member with a fresh session), the others are
    /// dropped, so their clients get NOT_COORDINATOR and find the new
    /// coordinator. Reading a log takes as long as the log is big, so it
    /// happens without the lock (requests for the loading groups get
    /// COORDINATOR_LOAD_IN_PROGRESS meanwhile). Blocking: call it off the
    /// request threads.
    pub fn lead(&self, led: &[Arc<Partition>]) {
        for load in self.follow(led) {
            let Some(p) = led.iter().find(|p| p.index == load.index) else {
                continue;
            };
            let restored = self.restore(p);
            self.finish_load(p, &load, restored);
        }
    }

    /// Gives up the partitions no longer led and plans the loads.
    fn follow(&self, led: &[Arc<Partition>]) -> Vec<LoadTicket> {
        let epochs: Vec<(i32, i32)> = led
            .iter()
            .filter_map(|p| p.leader_epoch().map(|e| (p.index, e)))
            .collect();
        let mut inner = self.lock();
        let moves = inner.leadership.follow(&epochs);
        for index in moves.resign {
            let Inner {
                groups,
                consumer_groups,
                offsets,
                ..
            } = &mut *inner;
            offsets.unload(index);
            groups.retain(|g, _| offsets.partition_for(g) != index);
            consumer_groups.retain(|g, _| offsets.partition_for(g) != index);
            tracing::info!(
                partition = index,
                "no longer coordinating the groups of this offsets partition"
            );
        }
        moves.load
    }

    /// Reads partition `p` and resumes its groups, without the lock.
    fn restore(&self, p: &Partition) -> Result<Restored, OffsetStoreError> {
        let loaded = LoadedPartition::read(p)?;
        let now = Instant::now();
        let mine = |id: &String| partition_for(id, self.partitions) == p.index;
        let classic = loaded
            .groups
            .group_metadata()
            .iter()
            .filter(|(id, _)| mine(id))
            .map(|(id, md)| Group::from_metadata(id, md, now))
            .collect();
        let name_of = |topic| self.topics.get_by_id(topic).map(|t| t.name.clone());
        let session = self.settings.consumer_session_timeout;
        let consumer = loaded
            .groups
            .consumer_groups()
            .iter()
            .filter(|(id, _)| mine(id))
            .map(|(id, stored)| ConsumerGroup::restore(id, stored, name_of, session, now))
            .collect();
        Ok(Restored {
            loaded,
            classic,
            consumer,
        })
    }

    /// Merges a finished load, unless leadership moved while it read.
    fn finish_load(
        &self,
        p: &Arc<Partition>,
        load: &LoadTicket,
        restored: Result<Restored, OffsetStoreError>,
    ) {
        let mut inner = self.lock();
        let restored = match restored {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(partition = p.index, error = %e, "cannot load groups");
                inner.leadership.abandon(load);
                return;
            }
        };
        // Checked under the lock: leadership changes reach the coordinator
        // through `follow`, which takes it too.
        if !inner.leadership.finish(load, p.leader_epoch()) {
            tracing::info!(
                partition = p.index,
                "leadership moved while loading this offsets partition; its load is dropped"
            );
            return;
        }
        if let Err(e) = inner.offsets.merge(p.clone(), restored.loaded) {
            // The groups are served; only markers written during the load
            // are not settled (their offsets stay pending, as before).
            tracing::error!(partition = p.index, error = %e, "cannot read the markers written while loading");
        }
        for group in restored.classic {
            let id = group.id.clone();
            inner.groups.insert(id, Entry::restored(group));
        }
        for group in restored.consumer {
            inner.consumer_groups.insert(group.id.clone(), group);
        }
        tracing::info!(
            partition = p.index,
            "coordinating the groups of this offsets partition"
        );
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Forces committed offsets to disk (at shutdown).
    pub fn flush(&self) -> Result<(), OffsetStoreError> {
        self.lock().offsets.sync()
    }

    /// Removes members whose session timed out. Run periodically.
    pub fn expire_sessions(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut changed = Vec::new();
        for (group_id, group) in inner.consumer_groups.iter_mut() {
            let gone = group.expire(now);
            for id in &gone {
                tracing::info!(group = %group_id, member = %id, "member session expired");
            }
            if !gone.is_empty() {
                changed.push(group_id.clone());
            }
        }
        for group_id in changed {
            self.persist_consumer_group(&mut inner, &group_id);
        }
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for group_id in ids {
            let Some(entry) = inner.groups.get_mut(&group_id) else {
                continue;
            };
            for id in entry.expired(now) {
                tracing::info!(group = %group_id, member = %id, "member session expired");
                self.remove_member(entry, &group_id, &id);
            }
            inner.persist(&group_id);
        }
    }

    /// Expires sessions forever.
    pub async fn run_session_sweeper(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            self.expire_sessions();
        }
    }

    /// Writes the records of a consumer-protocol group's changes (none
    /// when nothing changed); the caller may wait for their replication
    /// (`OffsetStore::take_last_write`).
    pub(super) fn persist_consumer_group(&self, inner: &mut Inner, group_id: &str) {
        let stored = inner
            .consumer_groups
            .get(group_id)
            .map(|g| g.to_stored(|name| self.topics.get(name).map(|t| t.id)));
        if let Err(e) = inner.offsets.save_consumer_group(group_id, stored) {
            tracing::error!(group = %group_id, error = %e, "cannot store group membership");
        }
    }
}

impl Inner {
    /// Whether this broker serves `group` now: NOT_COORDINATOR when it
    /// does not lead the group's partition, COORDINATOR_LOAD_IN_PROGRESS
    /// while it loads it.
    pub(super) fn check_coordinator(&self, group: &str) -> Result<(), GroupError> {
        let index = self.offsets.partition_for(group);
        if self.offsets.serves(group) {
            Ok(())
        } else if self.leadership.is_loading(index) || self.elected(index) {
            Err(GroupError::LoadInProgress)
        } else {
            Err(GroupError::NotCoordinator)
        }
    }

    /// Whether the applied metadata names this broker leader of offsets
    /// partition `index`.
    fn elected(&self, index: i32) -> bool {
        self.metadata
            .borrow()
            .image
            .is_leader(self.node_id, OFFSETS_TOPIC, index)
    }

    /// Whether some offsets partition is being loaded (a listing of every
    /// group would miss its groups).
    pub(super) fn loading(&self) -> bool {
        self.leadership.any_loading()
    }

    /// Stores a group's membership if it settled since it was last stored.
    pub(super) fn persist(&mut self, group_id: &str) {
        let Some(entry) = self.groups.get_mut(group_id) else {
            return;
        };
        if !entry.dirty {
            return;
        }
        entry.dirty = false;
        let metadata = entry.group.to_metadata(now_ms());
        if let Err(e) = self.offsets.save_group(group_id, Some(metadata)) {
            tracing::error!(group = %group_id, error = %e, "cannot store group membership");
        }
    }

    /// Whether a classic-protocol group of this id has live members.
    pub(super) fn classic_group_has_members(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|e| !e.group.members.is_empty())
    }
}

pub(super) fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits, like a produce with acks=all, until the offsets partition's
/// in-sync replicas hold the last write of a request (`None`: it wrote
/// nothing).
pub(super) async fn replicated(
    group_id: &str,
    write: Option<(Arc<Partition>, Appended)>,
) -> Result<(), GroupError> {
    let Some((p, appended)) = write else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
    match p
        .await_replication(appended.leader_epoch, appended.end_offset, deadline)
        .await
    {
        Replication::Done(_) => Ok(()),
        Replication::Pending | Replication::TimedOut => {
            tracing::warn!(group = %group_id, "group records not replicated in time");
            Err(GroupError::ReplicationTimedOut)
        }
        // The client finds the new coordinator and tries again.
        Replication::LostLeadership => Err(GroupError::CoordinatorMoved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offset_records::Committed;
    use crate::group::offsets::tests::{offsets_led_by_one, registry};
    use crate::metadata::image::ClusterImage;
    use crate::topic::config::TopicDefaults;

    /// A coordinator of broker 1 that has applied `image`.
    fn coordinator(topics: TopicRegistry, image: ClusterImage) -> GroupCoordinator {
        let settings = GroupSettings {
            initial_rebalance_delay: Duration::ZERO,
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(60),
            consumer_session_timeout: Duration::from_secs(45),
            consumer_heartbeat_interval: Duration::from_secs(5),
        };
        let metadata = MetadataView {
            image: Arc::new(image),
            applied_index: 3,
        };
        GroupCoordinator::new(3, settings, Arc::new(topics), watch::channel(metadata).1)
    }

    fn committed(c: &GroupCoordinator, group: &str) -> Result<Option<i64>, GroupError> {
        let found = c.fetch_offsets(group, None, false)?;
        Ok(found
            .first()
            .and_then(|t| t.partitions.first())
            .and_then(|p| p.committed.as_ref())
            .map(|c| c.offset))
    }

    #[test]
    fn a_load_overtaken_by_a_resignation_is_not_merged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (topics, topic) = registry(dir.path());
        let led: Vec<Arc<Partition>> = topic.local().cloned().collect();
        let c = coordinator(topics, offsets_led_by_one());
        c.lead(&led);
        let commit = Committed {
            offset: 7,
            leader_epoch: -1,
            metadata: String::new(),
        };
        c.lock()
            .offsets
            .commit("g", vec![("t".into(), 0, commit)])
            .expect("commit");
        // Given up while the replicas still lead here: the groups are
        // about to load again.
        c.lead(&[]);
        assert_eq!(committed(&c, "g"), Err(GroupError::LoadInProgress));

        // Led again: while the log is read, the group is loading.
        let loads = c.follow(&led);
        assert_eq!(loads.len(), led.len());
        assert_eq!(committed(&c, "g"), Err(GroupError::LoadInProgress));
        let restored: Vec<_> = loads
            .iter()
            .map(|l| {
                let p = &led[l.index as usize];
                (p, c.restore(p))
            })
            .collect();
        // Given up before the reads are merged: they are dropped.
        c.follow(&[]);
        for (load, (p, read)) in loads.iter().zip(restored) {
            c.finish_load(p, load, read);
        }
        assert_eq!(committed(&c, "g"), Err(GroupError::LoadInProgress));
        assert_eq!(c.lock().offsets.loaded().count(), 0);

        c.lead(&led);
        assert_eq!(committed(&c, "g"), Ok(Some(7)));
    }

    #[test]
    fn a_group_is_loading_from_the_moment_its_partition_is_led_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let unsynced =
            || TopicRegistry::new(1, &[dir.path().join("b1")], TopicDefaults::for_tests());
        // Named leader by the metadata while the replicas have not
        // followed it yet (at a start they are still opening their logs).
        let c = coordinator(unsynced(), offsets_led_by_one());
        assert_eq!(committed(&c, "g"), Err(GroupError::LoadInProgress));
        // Leading, not yet taken up by `lead`.
        let (topics, _) = registry(dir.path());
        let c = coordinator(topics, offsets_led_by_one());
        assert_eq!(committed(&c, "g"), Err(GroupError::LoadInProgress));
        // Not named leader.
        let c = coordinator(unsynced(), ClusterImage::default());
        assert_eq!(committed(&c, "g"), Err(GroupError::NotCoordinator));
    }
}
