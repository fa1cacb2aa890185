//! Micro-benchmarks of the metadata image at scale, through the real
//! record path: the state machine applies Raft entries of metadata records
//! and publishes each new image, as on every node of a cluster. Clusters of
//! 1,000 to 100,000 partitions are created with `CreateTopic` records; then
//! one ISR change is applied per batch (what AlterPartition costs), a topic
//! is created and deleted, and the image is snapshotted and loaded again. The apply cost should not grow
//! with the size of the cluster.
//! Run with `cargo bench -p gregor-broker --bench metadata_image`.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gregor_broker::metadata::records::{Applied, MetadataRecord};
use gregor_broker::metadata::store::StateMachine;
use gregor_broker::metadata::TypeConfig;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Cluster shapes: (topics, partitions per topic), three replicas each.
const SHAPES: [(usize, usize); 4] = [(10, 100), (100, 100), (1_000, 100), (10_000, 10)];

/// Records per entry batch while a cluster is created.
const CREATE_BATCH: usize = 100;

/// A state machine holding a cluster, and where its log is.
struct Cluster {
    rt: Runtime,
    sm: StateMachine,
    /// The next log index.
    index: u64,
    topics: Vec<String>,
    /// The partition epoch of partition 0 of each topic.
    epochs: Vec<i32>,
    dir: tempfile::TempDir,
}

fn entry(index: u64, record: MetadataRecord) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(record),
    }
}

impl Cluster {
    /// Three live brokers and `topics` topics of `partitions` partitions.
    fn new(topics: usize, partitions: usize) -> Cluster {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let sm = StateMachine::open(dir.path()).expect("state machine");
        let mut c = Cluster {
            rt,
            sm,
            index: 1,
            topics: (0..topics).map(|t| format!("topic-{t:05}")).collect(),
            epochs: vec![0; topics],
            dir,
        };
        for id in 1..=3 {
            let epoch = c.index as i64;
            c.apply(vec![MetadataRecord::RegisterBroker {
                id,
                incarnation: Uuid::from_u128(id as u128),
                storage: Uuid::from_u128(id as u128),
                endpoints: vec![],
                rack: None,
            }]);
            c.apply(vec![MetadataRecord::UnfenceBroker { id, epoch }]);
        }
        let creates: Vec<MetadataRecord> = (0..topics)
            .map(|t| MetadataRecord::CreateTopic {
                name: c.topics[t].clone(),
                id: Uuid::from_u128(t as u128 + 1),
                configs: BTreeMap::new(),
                assignment: (0..partitions)
                    .map(|p| {
                        let first = (t + p) as i32 % 3;
                        (0..3).map(|r| (first + r) % 3 + 1).collect()
                    })
                    .collect(),
            })
            .collect();
        for batch in creates.chunks(CREATE_BATCH) {
            c.apply(batch.to_vec());
        }
        c
    }

    /// Applies `records` as one batch of entries.
    fn apply(&mut self, records: Vec<MetadataRecord>) -> Vec<Applied> {
        let entries: Vec<_> = records
            .into_iter()
            .map(|r| {
                self.index += 1;
                entry(self.index - 1, r)
            })
            .collect();
        self.rt.block_on(self.sm.apply(entries)).expect("applies")
    }

    /// The next ISR change, on partition 0 of the topic after the last
    /// one changed: it alternately leaves and rejoins the ISR its leader's
    /// successor.
    fn change_isr(&mut self, n: usize) -> MetadataRecord {
        let t = n % self.topics.len();
        let leader = (t as i32 % 3) + 1;
        let epoch = self.epochs[t];
        self.epochs[t] += 1;
        let follower = leader % 3 + 1;
        let other = follower % 3 + 1;
        let isr = if epoch % 2 == 0 {
            vec![leader, other]
        } else {
            vec![leader, other, follower]
        };
        MetadataRecord::ChangeIsr {
            topic: self.topics[t].clone(),
            partition: 0,
            leader,
            leader_epoch: 0,
            partition_epoch: epoch,
            isr,
        }
    }
}

fn apply_isr_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("metadata apply");
    for (topics, partitions) in SHAPES {
        let mut cluster = Cluster::new(topics, partitions);
        let mut n = 0;
        group.bench_function(
            format!("one ISR change, {topics} topics x {partitions} partitions"),
            |b| {
                b.iter(|| {
                    let record = cluster.change_isr(n);
                    n += 1;
                    let applied = cluster.apply(vec![record]);
                    assert!(
                        matches!(applied[..], [Applied::Partition { .. }]),
                        "{applied:?}"
                    );
                })
            },
        );
    }
    group.finish();
}

fn create_topic(c: &mut Criterion) {
    let mut group = c.benchmark_group("metadata apply");
    for (topics, partitions) in SHAPES {
        let mut cluster = Cluster::new(topics, partitions);
        let mut n = 0;
        group.bench_function(
            format!(
                "create and delete a 10-partition topic, {topics} topics x {partitions} partitions"
            ),
            |b| {
                b.iter(|| {
                    let name = format!("new-{n}");
                    let create = MetadataRecord::CreateTopic {
                        name: name.clone(),
                        id: Uuid::from_u128(1 << 64 | n),
                        configs: BTreeMap::new(),
                        assignment: vec![vec![1, 2, 3]; 10],
                    };
                    n += 1;
                    assert_eq!(cluster.apply(vec![create]), vec![Applied::Done]);
                    let delete = MetadataRecord::DeleteTopic { name };
                    assert_eq!(cluster.apply(vec![delete]), vec![Applied::Done]);
                })
            },
        );
    }
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    let (topics, partitions) = (1_000, 100);
    let mut cluster = Cluster::new(topics, partitions);
    let mut group = c.benchmark_group("metadata snapshot");
    group.sample_size(10);
    let name = format!("{topics} topics x {partitions} partitions");
    group.bench_function(format!("build, {name}"), |b| {
        b.iter(|| {
            cluster
                .rt
                .block_on(cluster.sm.build_snapshot())
                .expect("snapshot")
        })
    });
    let size = std::fs::metadata(cluster.dir.path().join("snapshot.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!("snapshot.json of {name}: {size} bytes");
    group.bench_function(format!("load, {name}"), |b| {
        b.iter_batched(
            || (),
            |()| {
                let sm = StateMachine::open(cluster.dir.path()).expect("loads");
                let view = sm.subscribe().borrow().clone();
                assert_eq!(view.image.topics.size(), topics);
                view
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(metadata_image, apply_isr_change, create_topic, snapshot);
criterion_main!(metadata_image);
