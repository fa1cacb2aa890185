//! Fetch (Kafka's `ReplicaManager.fetchMessages`) for consumers and for
//! followers. A consumer reads up to the high watermark (read_uncommitted)
//! or the last stable offset (read_committed, with the aborted
//! transactions overlapping what it read); a follower reads up to the log
//! end, and its fetch position is its progress: the leader
//! records it, advances the high watermark, and asks for the ISR change it
//! calls for. A fetch without `min_bytes` to return is a delayed fetch: it
//! sleeps until one of its own partitions changes (see
//! `Partition::subscribe`) or `max_wait` passes, then reads again. A
//! follower's read of a partition under the leader replication throttle
//! comes back empty while the throttle holds it back (see
//! `replication::throttle`); those bytes do not count towards `min_bytes`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{replica_of, ReplicaError, ReplicaManager, TopicRef};
use crate::log::file_slice::FileSlice;
use crate::log::txn_index::AbortedTxn;
use crate::partition::epochs::ReplicaFetch;
use crate::partition::{Partition, Watermarks};
use crate::replication::quota::ReplicationQuotas;
use crate::replication::throttle::{self, Side, Throttles};

/// The leader replication throttle a follower's fetch is served under.
#[derive(Debug, Clone)]
pub struct LeaderThrottle {
    /// This broker's throttles as the metadata has them now.
    pub throttles: Arc<Throttles>,
    /// Its rates.
    pub quotas: Arc<ReplicationQuotas>,
}

impl LeaderThrottle {
    /// Whether the follower's read of `p`, a partition listed for this
    /// leader, waits: the follower is not in sync and the rate is over.
    fn holds_back(&self, p: &Partition, follower: i32) -> bool {
        let over = self
            .quotas
            .over_quota(Side::Leader, self.throttles.rate(Side::Leader));
        throttle::holds_back(true, p.in_isr(follower), over)
    }
}

/// What a consumer may read (Kafka's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Below the last stable offset, told which transactions were aborted.
    ReadCommitted,
}

/// What a fetch asks for as a whole.
#[derive(Debug, Clone)]
pub struct FetchParams {
    /// The broker fetching as a follower; `None` for a consumer.
    pub replica: Option<i32>,
    /// A consumer's isolation level (a follower reads to the log end).
    pub isolation: Isolation,
    /// For a follower, the leader throttle it is under (`None`: none).
    pub throttle: Option<LeaderThrottle>,
    /// How long to wait for `min_bytes`.
    pub max_wait: Duration,
    /// Bytes that answer at once.
    pub min_bytes: usize,
    /// Bytes the answer carries at most (the first batch may exceed it).
    pub max_bytes: usize,
}

/// Where to read one partition from, and what the fetcher knows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    /// Partition index.
    pub partition: i32,
    /// The first offset wanted.
    pub fetch_offset: i64,
    /// The leader epoch the fetcher knows (-1: none).
    pub current_leader_epoch: i32,
    /// The epoch of a follower's last record (-1: none).
    pub last_fetched_epoch: i32,
    /// Bytes this partition returns at most.
    pub max_bytes: usize,
}

/// The partitions to read, by topic.
pub type FetchTargets = [(TopicRef, Vec<FetchPosition>)];

/// What one partition answers.
#[derive(Debug)]
pub struct Fetched {
    /// The replica's offsets, when it is stored here.
    pub watermarks: Option<Watermarks>,
    /// Its records, where the follower's log diverges, or why neither.
    pub outcome: Result<FetchedData, ReplicaError>,
    /// For read_committed, the aborted transactions overlapping the
    /// records.
    pub aborted: Vec<AbortedTxn>,
}

/// What a readable partition answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedData {
    /// Whole batches from the fetch offset (maybe none), still in their
    /// segment file.
    Records(FileSlice),
    /// The follower must truncate to `end_offset` (the end of `epoch` on
    /// the leader) before fetching again.
    Diverging {
        /// Largest leader epoch at or below the follower's last one.
        epoch: i32,
        /// Where that epoch ends on the leader.
        end_offset: i64,
    },
}

/// One read of every requested partition.
struct Pass {
    /// Per topic, per partition, in the request's order.
    fetched: Vec<Vec<Fetched>>,
    /// Record bytes read.
    bytes: usize,
    /// Whether some partition cannot be read as asked.
    failed: bool,
    /// Record bytes of partitions listed for the leader throttle.
    throttled_bytes: u64,
    /// Partitions the leader throttle held back.
    held: u64,
}

impl ReplicaManager {
    /// Answers a fetch: every partition's records, once `min_bytes` are
    /// there, some partition cannot be read as asked, or `max_wait` has
    /// passed. No fetch sessions: every fetch names all its partitions.
    pub async fn fetch(&self, params: &FetchParams, targets: &FetchTargets) -> Vec<Vec<Fetched>> {
        let pass = self.fetch_passes(params, targets).await;
        if let Some(t) = &params.throttle {
            // What is sent counts, as in Kafka, whether the follower is in
            // sync or not: the rate bounds all replication of the listed
            // partitions.
            t.quotas.record(Side::Leader, pass.throttled_bytes);
            t.quotas.held_back(Side::Leader, pass.held);
        }
        pass.fetched
    }

    /// Reads until the fetch can be answered; the last read.
    async fn fetch_passes(&self, params: &FetchParams, targets: &FetchTargets) -> Pass {
        let deadline = tokio::time::Instant::now() + params.max_wait;
        let mut changes = self.watch(targets);
        loop {
            // Mark the current state as seen before reading, so a change
            // that lands during the read wakes the wait below.
            for c in &mut changes {
                c.borrow_and_update();
            }
            let pass = self.read_once(params, targets);
            let expired = tokio::time::Instant::now() >= deadline;
            if completes(pass.bytes, params.min_bytes, pass.failed, expired) {
                return pass;
            }
            if changes.is_empty() {
                tokio::time::sleep_until(deadline).await;
                return self.read_once(params, targets);
            }
            let any =
                futures_util::future::select_all(changes.iter_mut().map(|c| Box::pin(c.changed())));
            tokio::select! {
                (changed, _, _) = any => {
                    if changed.is_err() {
                        return pass;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return self.read_once(params, targets);
                }
            }
        }
    }

    /// Change signals of the requested partitions stored here: a delayed
    /// fetch wakes for its own partitions only.
    fn watch(&self, targets: &FetchTargets) -> Vec<watch::Receiver<u64>> {
        targets
            .iter()
            .filter_map(|(topic, positions)| Some((self.topic(topic)?, positions)))
            .flat_map(|(topic, positions)| {
                positions
                    .iter()
                    .filter_map(move |pos| replica_of(&topic, pos.partition).ok())
            })
            .map(|p| p.subscribe())
            .collect()
    }

    /// Reads every requested partition once, within the fetch's byte
    /// limits.
    fn read_once(&self, params: &FetchParams, targets: &FetchTargets) -> Pass {
        let mut remaining = params.max_bytes;
        let mut bytes = 0;
        let mut failed = false;
        let mut throttled_bytes = 0;
        let mut held = 0;
        let fetched = targets
            .iter()
            .map(|(topic_ref, positions)| {
                let topic = self.topic(topic_ref);
                positions
                    .iter()
                    .map(|pos| {
                        let replica = match &topic {
                            Some(t) => replica_of(t, pos.partition),
                            None => Err(topic_ref.unknown()),
                        };
                        let p = match replica {
                            Ok(p) => p,
                            Err(e) => {
                                failed = true;
                                return Fetched {
                                    watermarks: None,
                                    outcome: Err(e),
                                    aborted: Vec::new(),
                                };
                            }
                        };
                        // Past the first records, a batch larger than what
                        // is left waits for the next fetch.
                        let limit = pos.max_bytes.min(remaining);
                        // The leader throttle, when this partition is
                        // listed for it.
                        let throttle = params.throttle.as_ref().filter(|t| {
                            params.replica.is_some()
                                && t.throttles.listed(Side::Leader, &p.topic, p.index)
                        });
                        let read = Read {
                            follower: params.replica,
                            isolation: params.isolation,
                            limit,
                            min_one: bytes == 0,
                        };
                        let mut aborted = Vec::new();
                        let outcome = self.read(&p, pos, &read, throttle, &mut aborted);
                        let outcome = match outcome {
                            Ok((FetchedData::Records(records), true)) => {
                                held += 1;
                                Ok(FetchedData::Records(records))
                            }
                            Ok((FetchedData::Records(records), false)) => {
                                remaining = remaining.saturating_sub(records.len());
                                bytes += records.len();
                                if throttle.is_some() {
                                    throttled_bytes += records.len() as u64;
                                }
                                Ok(FetchedData::Records(records))
                            }
                            Ok((diverging @ FetchedData::Diverging { .. }, _)) => {
                                failed = true;
                                Ok(diverging)
                            }
                            Err(e) => {
                                failed = true;
                                Err(e)
                            }
                        };
                        Fetched {
                            watermarks: Some(p.watermarks()),
                            outcome,
                            aborted,
                        }
                    })
                    .collect()
            })
            .collect();
        Pass {
            fetched,
            bytes,
            failed,
            throttled_bytes,
            held,
        }
    }

    /// Reads one partition: as its leader in the epoch the fetcher knows,
    /// and, for a follower, once its log is known not to diverge, noting
    /// its progress and asking for the ISR change it calls for. A
    /// follower's read under `throttle` may be held back: no records, and
    /// `true`. A read_committed consumer's aborted transactions go to
    /// `aborted`.
    fn read(
        &self,
        p: &Partition,
        pos: &FetchPosition,
        read: &Read,
        throttle: Option<&LeaderThrottle>,
        aborted: &mut Vec<AbortedTxn>,
    ) -> Result<(FetchedData, bool), ReplicaError> {
        let (follower, limit, min_one) = (read.follower, read.limit, read.min_one);
        let verdict = match follower {
            Some(f) => {
                let (verdict, change) = p.replica_fetch(
                    f,
                    pos.current_leader_epoch,
                    pos.fetch_offset,
                    pos.last_fetched_epoch,
                    self.max_lag_ms,
                )?;
                if let Some(change) = change {
                    self.propose(p, change);
                }
                verdict
            }
            None => {
                p.check_leader(pos.current_leader_epoch)?;
                ReplicaFetch::Serve
            }
        };
        Ok(match verdict {
            ReplicaFetch::Serve => {
                // The follower's progress was noted above either way: held
                // back, it still counts for the high watermark and the ISR.
                if let (Some(f), Some(t)) = (follower, throttle) {
                    if t.holds_back(p, f) {
                        return Ok((FetchedData::Records(FileSlice::default()), true));
                    }
                }
                let records = if follower.is_none() && read.isolation == Isolation::ReadCommitted {
                    let (records, _, overlapping) =
                        p.read_committed(pos.fetch_offset, limit, min_one)?;
                    *aborted = overlapping;
                    records
                } else {
                    p.read(pos.fetch_offset, limit, min_one, follower.is_some())?
                        .0
                };
                (FetchedData::Records(records), false)
            }
            ReplicaFetch::Diverging { epoch, end_offset } => {
                (FetchedData::Diverging { epoch, end_offset }, false)
            }
        })
    }
}

/// How one partition is read.
struct Read {
    /// The follower reading, if one is.
    follower: Option<i32>,
    /// A consumer's isolation level.
    isolation: Isolation,
    /// Bytes it may return at most.
    limit: usize,
    /// Whether a first batch larger than `limit` is returned whole.
    min_one: bool,
}

/// Whether a fetch answers now (Kafka's `DelayedFetch.tryComplete`): it has
/// `min_bytes`, some partition cannot be read as asked (an error, a
/// diverging log: waiting would not change that), or its time is up.
fn completes(bytes: usize, min_bytes: usize, failed: bool, expired: bool) -> bool {
    bytes >= min_bytes || failed || expired
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::super::tests::{manager, partition, TOPIC};
    use super::*;
    use crate::log::batch::tests::encode;

    #[test]
    fn a_fetch_answers_with_enough_bytes_a_failure_or_at_its_deadline() {
        let cases = [
            // (bytes read, min_bytes, a partition failed, deadline passed, answer now)
            (0, 1, false, false, false),
            (0, 0, false, false, true),
            (10, 1, false, false, true),
            (10, 100, false, false, false),
            (0, 1, true, false, true),
            (0, 1, false, true, true),
        ];
        for (bytes, min, failed, expired, want) in cases {
            assert_eq!(
                completes(bytes, min, failed, expired),
                want,
                "{bytes} of {min}, failed {failed}, expired {expired}"
            );
        }
    }

    fn consumer(max_wait: Duration) -> FetchParams {
        FetchParams {
            replica: None,
            isolation: Isolation::ReadUncommitted,
            throttle: None,
            max_wait,
            min_bytes: 1,
            max_bytes: 1 << 20,
        }
    }

    fn from_start(partition: i32) -> Vec<(TopicRef, Vec<FetchPosition>)> {
        vec![(
            TopicRef::Name(TOPIC.into()),
            vec![FetchPosition {
                partition,
                fetch_offset: 0,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                max_bytes: 1 << 20,
            }],
        )]
    }

    fn append(m: &ReplicaManager, partition: i32) {
        let batch = encode(&["a", "b"], &[1, 2], Compression::None);
        m.replica(TOPIC, partition)
            .expect("replica")
            .append(batch.freeze(), None)
            .expect("append");
    }

    fn records(fetched: &[Vec<Fetched>]) -> usize {
        match &fetched[0][0].outcome {
            Ok(FetchedData::Records(r)) => r.len(),
            other => panic!("no records: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_delayed_fetch_is_completed_by_an_append_to_its_own_partition_only() {
        let dir = tempfile::tempdir().expect("dir");
        let alone = partition(&[1], &[1], 1);
        let (m, _) = manager(dir.path(), &[], vec![alone.clone(), alone]).await;
        let params = consumer(Duration::from_secs(60));
        let targets = from_start(0);
        let fetch = m.fetch(&params, &targets);
        tokio::pin!(fetch);
        let waiting = Duration::from_millis(200);
        assert!(tokio::time::timeout(waiting, &mut fetch).await.is_err());
        append(&m, 1);
        assert!(
            tokio::time::timeout(waiting, &mut fetch).await.is_err(),
            "a write to another partition answered the fetch"
        );
        append(&m, 0);
        let fetched = tokio::time::timeout(Duration::from_secs(5), &mut fetch)
            .await
            .expect("the write to its partition answers the fetch");
        assert!(records(&fetched) > 0);
    }

    #[tokio::test]
    async fn a_consumers_delayed_fetch_waits_for_the_high_watermark() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1, 2], &[1, 2], 1)]).await;
        let params = consumer(Duration::from_secs(60));
        let targets = from_start(0);
        let fetch = m.fetch(&params, &targets);
        tokio::pin!(fetch);
        append(&m, 0);
        // Written on the leader alone: not readable yet.
        let waiting = Duration::from_millis(200);
        assert!(tokio::time::timeout(waiting, &mut fetch).await.is_err());
        // The follower fetches past it: the high watermark moves and the
        // consumer is answered.
        let mut copied = from_start(0);
        copied[0].1[0].fetch_offset = 2;
        copied[0].1[0].last_fetched_epoch = 1;
        let as_follower = FetchParams {
            replica: Some(2),
            isolation: Isolation::ReadUncommitted,
            throttle: None,
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: 1 << 20,
        };
        let answer = m.fetch(&as_follower, &copied).await;
        assert_eq!(answer[0][0].watermarks.map(|w| w.high_watermark), Some(2));
        let fetched = tokio::time::timeout(Duration::from_secs(5), &mut fetch)
            .await
            .expect("the high watermark answers the fetch");
        assert!(records(&fetched) > 0);
    }

    #[tokio::test]
    async fn unknown_partitions_and_diverging_followers_are_answered_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1, 2], &[1, 2], 1)]).await;
        append(&m, 0);
        let params = consumer(Duration::from_secs(60));
        let mut targets = from_start(0);
        targets.push((
            TopicRef::Id(uuid::Uuid::from_u128(8)),
            from_start(0)[0].1.clone(),
        ));
        let fetched = tokio::time::timeout(Duration::from_secs(5), m.fetch(&params, &targets))
            .await
            .expect("answered at once");
        assert!(matches!(
            fetched[1][0].outcome,
            Err(ReplicaError::UnknownTopicId(_))
        ));
        assert_eq!(fetched[1][0].watermarks, None);
        // A follower that wrote 5 records in epoch 0, which never had any
        // here: it must truncate to where this log's history starts.
        let mut diverged = from_start(0);
        diverged[0].1[0].fetch_offset = 5;
        diverged[0].1[0].last_fetched_epoch = 0;
        let as_follower = FetchParams {
            replica: Some(2),
            ..params
        };
        let fetched =
            tokio::time::timeout(Duration::from_secs(5), m.fetch(&as_follower, &diverged))
                .await
                .expect("answered at once");
        assert_eq!(
            fetched[0][0].outcome.as_ref().ok(),
            Some(&FetchedData::Diverging {
                epoch: -1,
                end_offset: 0
            })
        );
    }

    #[tokio::test]
    async fn a_throttled_leader_holds_back_only_followers_out_of_sync() {
        use std::collections::BTreeMap;

        use crate::metadata::image::{ClusterImage, TopicImage};
        use crate::metrics::SideCounters;
        use crate::replication::throttle::{LEADER_RATE, LEADER_REPLICAS};

        let dir = tempfile::tempdir().expect("dir");
        // Broker 1 leads; 2 is in sync, 3 (a replica being added) is not.
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1, 2, 3], &[1, 2], 1)]).await;
        append(&m, 0);
        let mut image = ClusterImage::default();
        image.topics.insert_mut(
            TOPIC.into(),
            TopicImage {
                id: uuid::Uuid::nil(),
                configs: BTreeMap::from([(LEADER_REPLICAS.to_string(), "0:1".to_string())]),
                partitions: Default::default(),
            },
        );
        Arc::make_mut(&mut image.broker_configs).insert(
            "1".into(),
            BTreeMap::from([(LEADER_RATE.to_string(), "10".to_string())]),
        );
        let counters = SideCounters::default();
        let quotas = Arc::new(ReplicationQuotas::new(
            1,
            11,
            1000,
            counters.clone(),
            SideCounters::default(),
        ));
        let throttle = LeaderThrottle {
            throttles: quotas.throttles(&Arc::new(image)),
            quotas: quotas.clone(),
        };
        let follower = |id| FetchParams {
            replica: Some(id),
            isolation: Isolation::ReadUncommitted,
            throttle: Some(throttle.clone()),
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: 1 << 20,
        };
        // Within the quota, the follower out of sync is served, and what
        // is sent counts.
        let sent = records(&m.fetch(&follower(3), &from_start(0)).await);
        assert!(sent > 0);
        assert_eq!(counters.bytes.get(), sent as u64);
        // 10 bytes a second over the 10 s a new rate spans: 100 bytes.
        quotas.record(Side::Leader, 100);
        assert_eq!(records(&m.fetch(&follower(3), &from_start(0)).await), 0);
        assert_eq!(counters.held_back.get(), 1);
        // An in-sync follower is never held back; it still counts.
        assert_eq!(records(&m.fetch(&follower(2), &from_start(0)).await), sent);
        assert_eq!(counters.bytes.get(), 2 * sent as u64 + 100);
        // A partition not listed is not throttled at all.
        let unlisted = FetchParams {
            throttle: Some(LeaderThrottle {
                throttles: quotas.throttles(&Arc::new(ClusterImage::default())),
                quotas: quotas.clone(),
            }),
            ..follower(3)
        };
        assert_eq!(records(&m.fetch(&unlisted, &from_start(0)).await), sent);
        assert_eq!(counters.bytes.get(), 2 * sent as u64 + 100);
    }

    #[tokio::test]
    async fn a_read_committed_fetch_waits_for_the_lso_and_learns_the_abort() {
        use crate::log::txn_index::AbortedTxn;
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };

        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![partition(&[1], &[1], 1)]).await;
        let p = m.replica(TOPIC, 0).expect("replica");
        let record = Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 9,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: 0,
            timestamp: crate::clock::now_ms(),
            key: Some(bytes::Bytes::from("k")),
            value: Some(bytes::Bytes::from("v")),
            headers: Default::default(),
        };
        let mut batch = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut batch, [&record], &options).expect("encode");
        let guard = p.start_verification(9, 0, 0).expect("verify");
        p.append(batch.freeze(), guard).expect("append");
        let committed = FetchParams {
            isolation: Isolation::ReadCommitted,
            ..consumer(Duration::from_secs(60))
        };
        let targets = from_start(0);
        let fetch = m.fetch(&committed, &targets);
        tokio::pin!(fetch);
        // The open transaction holds the LSO at 0; read_uncommitted sees it.
        assert!(tokio::time::timeout(Duration::from_millis(200), &mut fetch)
            .await
            .is_err());
        let uncommitted = m.fetch(&consumer(Duration::ZERO), &targets).await;
        assert!(records(&uncommitted) > 0);
        let marks = uncommitted[0][0].watermarks.expect("marks");
        assert_eq!((marks.high_watermark, marks.last_stable_offset), (1, 0));
        p.append_marker(9, 0, 0, false, 1).expect("abort");
        let fetched = tokio::time::timeout(Duration::from_secs(5), &mut fetch)
            .await
            .expect("the marker moves the LSO and answers the fetch");
        assert!(records(&fetched) > 0);
        assert_eq!(
            fetched[0][0].aborted,
            [AbortedTxn {
                producer_id: 9,
                first_offset: 0,
                last_offset: 1,
                last_stable_offset: 2
            }]
        );
        assert_eq!(
            fetched[0][0].watermarks.map(|w| w.last_stable_offset),
            Some(2)
        );
    }
}
