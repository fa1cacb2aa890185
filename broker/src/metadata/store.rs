//! Durable storage of the metadata quorum for `openraft`: the Raft log and
//! vote (`log.jsonl`, `state.json`) and the state machine, which is the
//! [`ClusterImage`] with its latest snapshot (`snapshot.json`), all in one
//! directory. Entries are one JSON object per line, appended and synced
//! before Raft is told they are stored; rewrites (truncation, purging) go
//! through a temporary file and a rename so a crash leaves the old or the
//! new file, never half of one. A torn last line is dropped on start.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::image::ClusterImage;
use super::records::Applied;
use super::TypeConfig;
use crate::durable::{write_atomically, write_atomically_with};

type NodeId = u64;
type Node = openraft::BasicNode;

/// The metadata every node has applied, published after each batch.
#[derive(Debug, Clone, Default)]
pub struct MetadataView {
    /// The cluster.
    pub image: Arc<ClusterImage>,
    /// Log index of the last applied entry (0 before any).
    pub applied_index: u64,
}

/// The Raft log of this node.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Default, Serialize, Deserialize)]
struct HardState {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

struct LogInner {
    dir: PathBuf,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    hard: HardState,
    file: File,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens (creating) the log in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let hard = match std::fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(io_err)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HardState::default(),
            Err(e) => return Err(e),
        };
        let path = dir.join("log.jsonl");
        let mut entries = BTreeMap::new();
        let mut good_len = 0u64;
        let mut torn = false;
        if let Ok(f) = File::open(&path) {
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line)?;
                if n == 0 {
                    break;
                }
                match serde_json::from_str::<Entry<TypeConfig>>(line.trim_end()) {
                    Ok(e) if line.ends_with('\n') => {
                        good_len += n as u64;
                        entries.insert(e.log_id.index, e);
                    }
                    _ => {
                        torn = true;
                        break;
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if torn {
            tracing::warn!(file = %path.display(), "metadata log ends in a torn entry; dropping it");
            file.set_len(good_len)?;
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogInner {
                dir: dir.to_path_buf(),
                entries,
                hard,
                file,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogInner {
    fn save_hard(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.hard).map_err(io_err)?;
        write_atomically(&self.dir.join("state.json"), &bytes)
    }

    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut text = Vec::new();
        for e in self.entries.values() {
            serde_json::to_writer(&mut text, e).map_err(io_err)?;
            text.push(b'\n');
        }
        let path = self.dir.join("log.jsonl");
        write_atomically(&path, &text)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        // A range that starts past its end holds nothing (BTreeMap::range
        // would panic on it).
        if is_empty_range(&range) {
            return Ok(Vec::new());
        }
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

/// Whether `range` holds no index.
fn is_empty_range(range: &impl RangeBounds<u64>) -> bool {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let start = match range.start_bound() {
        Included(&s) => u128::from(s),
        Excluded(&s) => u128::from(s) + 1,
        Unbounded => 0,
    };
    let end = match range.end_bound() {
        Included(&e) => u128::from(e) + 1,
        Excluded(&e) => u128::from(e),
        Unbounded => u128::MAX,
    };
    start >= end
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last_purged = inner.hard.last_purged;
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.hard.vote = Some(*vote);
        inner
            .save_hard()
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().hard.vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.hard.committed = committed;
        inner
            .save_hard()
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().hard.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut text = Vec::new();
        let mut batch = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut text, &e).map_err(|e| StorageIOError::write_logs(&e))?;
            text.push(b'\n');
            batch.push(e);
        }
        let written = inner
            .file
            .write_all(&text)
            .and_then(|_| inner.file.sync_data());
        if let Err(e) = &written {
            tracing::error!(error = %e, "cannot write the metadata log");
        } else {
            for e in batch {
                inner.entries.insert(e.log_id.index, e);
            }
        }
        let failed = written.as_ref().err().map(StorageIOError::write_logs);
        callback.log_io_completed(written);
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.entries.retain(|i, _| *i < log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.hard.last_purged = Some(log_id);
        inner
            .save_hard()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.entries.retain(|i, _| *i > log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// What a snapshot holds: everything applied up to its last log id.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    image: Arc<ClusterImage>,
}

/// `snapshot.json` as read: the meta and the serialized [`SnapshotData`]
/// (a JSON array of its bytes, the layout earlier releases write and read).
#[derive(Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Node>,
    data: Vec<u8>,
}

/// `snapshot.json` as written: the same layout, from borrowed parts and
/// straight to the file (the text is about four times the size of the
/// data; at 100,000 partitions, tens of megabytes never held in memory).
#[derive(Serialize)]
struct SnapshotFile<'a> {
    meta: &'a SnapshotMeta<NodeId, Node>,
    data: &'a [u8],
}

/// The snapshot on disk. Only its meta stays in memory: the data is read
/// back when a follower needs it, which is rare.
struct SavedSnapshot {
    path: PathBuf,
    meta: Option<SnapshotMeta<NodeId, Node>>,
}

impl SavedSnapshot {
    /// Writes `meta` and `data` unless the file holds a newer snapshot
    /// already (a build that took its image before an install finished).
    fn save(&mut self, meta: &SnapshotMeta<NodeId, Node>, data: &[u8]) -> std::io::Result<()> {
        if self
            .meta
            .as_ref()
            .is_some_and(|saved| saved.last_log_id > meta.last_log_id)
        {
            return Ok(());
        }
        write_atomically_with(&self.path, |w| {
            serde_json::to_writer(w, &SnapshotFile { meta, data }).map_err(std::io::Error::from)
        })?;
        self.meta = Some(meta.clone());
        Ok(())
    }

    /// The saved snapshot, read back from its file.
    fn load(&self) -> std::io::Result<Option<Snapshot<TypeConfig>>> {
        let Some(meta) = &self.meta else {
            return Ok(None);
        };
        let stored: StoredSnapshot =
            serde_json::from_reader(BufReader::new(File::open(&self.path)?)).map_err(io_err)?;
        if stored.meta.snapshot_id != meta.snapshot_id {
            return Err(io_err(format!(
                "{} holds snapshot {}, not {}",
                self.path.display(),
                stored.meta.snapshot_id,
                meta.snapshot_id
            )));
        }
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

struct SmInner {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    /// The image as applied so far. It is published as it is (readers
    /// hold the `Arc`), and the next batch applies to a copy that shares
    /// all it does not change (see [`ClusterImage`]).
    image: Arc<ClusterImage>,
    snapshots_built: u64,
}

/// The state machine: applies committed records to the [`ClusterImage`]
/// and publishes each new view.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<SmInner>>,
    /// Apart from `inner`: writing a snapshot (serializing the image and
    /// syncing the file) does not hold up applying entries.
    saved: Arc<Mutex<SavedSnapshot>>,
    publish: Arc<watch::Sender<MetadataView>>,
}

impl StateMachine {
    /// Opens the state machine in `dir`, starting from its saved snapshot.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut inner = SmInner {
            last_applied: None,
            membership: StoredMembership::default(),
            image: Arc::default(),
            snapshots_built: 0,
        };
        let mut saved = SavedSnapshot {
            path: dir.join("snapshot.json"),
            meta: None,
        };
        match std::fs::read(&saved.path) {
            Ok(b) => {
                let stored: StoredSnapshot = serde_json::from_slice(&b).map_err(io_err)?;
                let data: SnapshotData = serde_json::from_slice(&stored.data).map_err(io_err)?;
                inner.last_applied = data.last_applied;
                inner.membership = data.membership;
                inner.image = data.image;
                saved.meta = Some(stored.meta);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let view = MetadataView {
            image: inner.image.clone(),
            applied_index: inner.last_applied.map(|l| l.index).unwrap_or(0),
        };
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(inner)),
            saved: Arc::new(Mutex::new(saved)),
            publish: Arc::new(watch::channel(view).0),
        })
    }

    /// Follows every applied change.
    pub fn subscribe(&self) -> watch::Receiver<MetadataView> {
        self.publish.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, SmInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn saved(&self) -> MutexGuard<'_, SavedSnapshot> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, inner: &SmInner) {
        self.publish.send_replace(MetadataView {
            image: inner.image.clone(),
            applied_index: inner.last_applied.map(|l| l.index).unwrap_or(0),
        });
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // The image is shared, not copied: entries go on being applied
        // (to a new version) while this one is serialized and written.
        let (meta, data) = {
            let mut inner = self.lock();
            inner.snapshots_built += 1;
            let snapshot_id = match inner.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id, l.index, inner.snapshots_built),
                None => format!("none-{}", inner.snapshots_built),
            };
            let meta = SnapshotMeta {
                last_log_id: inner.last_applied,
                last_membership: inner.membership.clone(),
                snapshot_id,
            };
            let data = SnapshotData {
                last_applied: inner.last_applied,
                membership: inner.membership.clone(),
                image: inner.image.clone(),
            };
            (meta, data)
        };
        let data =
            serde_json::to_vec(&data).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.saved()
            .save(&meta, &data)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut out = Vec::new();
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => Applied::Done,
                EntryPayload::Normal(record) => {
                    let image = Arc::make_mut(&mut inner.image);
                    let applied = image.apply(entry.log_id.index, &record);
                    if let Applied::Refused(r) = &applied {
                        tracing::debug!(?record, reason = %r, "metadata record refused");
                    }
                    applied
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                    Applied::Done
                }
            };
            out.push(result);
        }
        self.publish(&inner);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        self.saved()
            .save(meta, &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let mut inner = self.lock();
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.image = data.image;
        self.publish(&inner);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.saved()
            .load()
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::MetadataRecord;
    use openraft::{CommittedLeaderId, LogId};

    fn entry(index: u64, record: MetadataRecord) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(record),
        }
    }

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            configs: Default::default(),
            assignment: vec![vec![1]],
        }
    }

    #[tokio::test]
    async fn a_snapshot_carries_the_image_to_another_node() {
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let mut sm = StateMachine::open(a.path()).expect("open");
        sm.apply(vec![entry(1, topic("t")), entry(2, topic("u"))])
            .await
            .expect("apply");
        let snap = sm.build_snapshot().await.expect("snapshot");
        let mut other = StateMachine::open(b.path()).expect("open");
        other
            .install_snapshot(&snap.meta, snap.snapshot)
            .await
            .expect("install");
        let view = other.subscribe().borrow().clone();
        assert_eq!(view.applied_index, 2);
        assert!(view.image.topics.contains_key("t") && view.image.topics.contains_key("u"));
        // Both survive a restart from their snapshot files, and offer the
        // snapshot to followers from them.
        let built = snap_bytes(&sm).await;
        for dir in [a.path(), b.path()] {
            let mut reopened = StateMachine::open(dir).expect("reopen");
            assert_eq!(reopened.subscribe().borrow().image.topics.size(), 2);
            assert_eq!(snap_bytes(&reopened).await, built);
            let current = reopened
                .get_current_snapshot()
                .await
                .expect("read")
                .expect("a snapshot");
            assert_eq!(current.meta, snap.meta);
        }
    }

    /// The data of the current snapshot, read from its file.
    async fn snap_bytes(sm: &StateMachine) -> Vec<u8> {
        let current = sm.clone().get_current_snapshot().await.expect("read");
        current.expect("a snapshot").snapshot.into_inner()
    }

    #[tokio::test]
    async fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().expect("dir");
        let mut sm = StateMachine::open(dir.path()).expect("open");
        sm.apply(vec![entry(1, topic("t"))]).await.expect("apply");
        let older = sm.build_snapshot().await.expect("snapshot");
        sm.apply(vec![entry(2, topic("u"))]).await.expect("apply");
        let newer = sm.build_snapshot().await.expect("snapshot");
        // A build that took its image before a newer snapshot was saved
        // finishes last.
        sm.saved()
            .save(&older.meta, older.snapshot.get_ref())
            .expect("save");
        let reopened = StateMachine::open(dir.path()).expect("reopen");
        assert_eq!(reopened.subscribe().borrow().applied_index, 2);
        assert_eq!(
            snap_bytes(&reopened).await,
            newer.snapshot.into_inner(),
            "the file holds the newer snapshot"
        );
    }

    /// 1,000 topics of 100 partitions (three replicas each on brokers
    /// 1-3), created through the state machine in batches of 100 records;
    /// the next log index.
    async fn large_cluster(sm: &mut StateMachine) -> u64 {
        let mut index = 1;
        for id in 1..=3 {
            let register = MetadataRecord::RegisterBroker {
                id,
                incarnation: uuid::Uuid::from_u128(id as u128),
                storage: uuid::Uuid::from_u128(id as u128),
                endpoints: vec![],
                rack: None,
            };
            let unfence = MetadataRecord::UnfenceBroker {
                id,
                epoch: index as i64,
            };
            sm.apply(vec![entry(index, register), entry(index + 1, unfence)])
                .await
                .expect("apply");
            index += 2;
        }
        for batch in 0..10 {
            let entries: Vec<_> = (0..100)
                .map(|i| {
                    let t = batch * 100 + i;
                    let record = MetadataRecord::CreateTopic {
                        name: format!("topic-{t:04}"),
                        id: uuid::Uuid::from_u128(t as u128 + 1),
                        configs: Default::default(),
                        assignment: vec![vec![1, 2, 3]; 100],
                    };
                    entry(index + i as u64, record)
                })
                .collect();
            index += entries.len() as u64;
            let applied = sm.apply(entries).await.expect("apply");
            assert!(applied.iter().all(|a| *a == Applied::Done));
        }
        index
    }

    #[tokio::test]
    async fn a_hundred_thousand_partitions_share_structure_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let mut sm = StateMachine::open(dir.path()).expect("open");
        let index = large_cluster(&mut sm).await;
        let views = sm.subscribe();
        let before = views.borrow().image.clone();
        let shrink = MetadataRecord::ChangeIsr {
            topic: "topic-0500".into(),
            partition: 50,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1, 2],
        };
        let applied = sm.apply(vec![entry(index, shrink)]).await.expect("apply");
        assert!(matches!(applied[..], [Applied::Partition { .. }]));
        let after = views.borrow().image.clone();
        // The new version holds a copy of the one partition it changed and
        // shares every other with the version readers still hold.
        let shared = |t: &str, p: usize| {
            std::ptr::eq(
                &before.topics[t].partitions[p],
                &after.topics[t].partitions[p],
            )
        };
        assert!(!shared("topic-0500", 50));
        assert!(shared("topic-0500", 49) && shared("topic-0500", 51));
        assert!(shared("topic-0000", 0) && shared("topic-0999", 99));
        assert_eq!(
            before.topics["topic-0500"].partitions[50].isr,
            vec![1, 2, 3]
        );
        assert_eq!(after.topics["topic-0500"].partitions[50].isr, vec![1, 2]);

        sm.build_snapshot().await.expect("snapshot");
        let reopened = StateMachine::open(dir.path()).expect("reopen");
        let view = reopened.subscribe().borrow().clone();
        assert_eq!(view.applied_index, index);
        assert_eq!(view.image.topics.size(), 1_000);
        assert_eq!(*view.image, *after);
    }

    #[tokio::test]
    async fn the_log_survives_a_restart_and_drops_a_torn_entry() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let store = LogStore::open(dir.path()).expect("open");
            let mut inner = store.lock();
            let mut text = Vec::new();
            for i in 1..=3 {
                serde_json::to_writer(&mut text, &entry(i, topic(&format!("t{i}")))).expect("json");
                text.push(b'\n');
            }
            text.extend_from_slice(b"{\"log_id\":");
            inner.file.write_all(&text).expect("write");
        }
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id.map(|l| l.index), Some(3));
        store
            .truncate(LogId::new(CommittedLeaderId::new(1, 1), 2))
            .await
            .expect("truncate");
        store
            .purge(LogId::new(CommittedLeaderId::new(1, 1), 1))
            .await
            .expect("purge");
        drop(store);
        let mut store = LogStore::open(dir.path()).expect("reopen");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id.map(|l| l.index), Some(1));
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(1));
        assert!(store
            .try_get_log_entries(0..10)
            .await
            .expect("read")
            .is_empty());
    }

    #[tokio::test]
    async fn a_range_that_starts_past_its_end_reads_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = LogStore::open(dir.path()).expect("open");
        {
            let mut inner = store.lock();
            for i in 1..=3 {
                inner.entries.insert(i, entry(i, topic(&format!("t{i}"))));
            }
        }
        use std::ops::Bound::{Excluded, Included};
        for (range, want) in [
            ((Included(5), Excluded(2)), 0),
            ((Excluded(2), Excluded(2)), 0),
            ((Included(2), Excluded(2)), 0),
            ((Included(2), Included(2)), 1),
            ((Excluded(1), Included(3)), 2),
        ] {
            let got = store.try_get_log_entries(range).await.expect("read");
            assert_eq!(got.len(), want, "{range:?}");
        }
    }
}
