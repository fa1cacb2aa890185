//! Produce (Kafka's `ReplicaManager.appendRecords`): each partition's batch
//! is appended by its leader under the request's `acks`. With `acks=all` a
//! write is refused before it is appended when the ISR is smaller than
//! `min.insync.replicas`, and answered once the in-sync replicas hold it:
//! the request's writes wait together as one delayed produce, each settled
//! by its own partition's events (its high watermark passing the write, its
//! ISR or leadership changing) or by the request's deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{ReplicaError, ReplicaManager};
use crate::partition::producer_state::VerificationGuard;
use crate::partition::{Appended, InSync, Partition, Replication};
use crate::txn::error::TxnError;

/// Why a partition's write was refused or not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// `acks` is not one Kafka defines.
    #[error("acks={0} is not 0, 1 or -1")]
    InvalidAcks(i16),
    /// The partition's entry carries no record batch.
    #[error("no records")]
    NoRecords,
    /// The replica cannot take the write.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// `acks=all` while the ISR is below `min.insync.replicas`: not written.
    #[error("the partition has {isr} in-sync replica(s); min.insync.replicas is {min}")]
    NotEnoughReplicas {
        /// In-sync replicas.
        isr: usize,
        /// The minimum.
        min: usize,
    },
    /// Written and replicated, but the ISR shrank below
    /// `min.insync.replicas` meanwhile.
    #[error("written, but only {isr} replica(s) are in sync; min.insync.replicas is {min}")]
    NotEnoughReplicasAfterAppend {
        /// In-sync replicas.
        isr: usize,
        /// The minimum.
        min: usize,
    },
    /// Leadership moved before the write was replicated: it may be
    /// truncated, and the client retries at the new leader.
    #[error("leadership moved while the write was being replicated")]
    LostLeadership,
    /// The in-sync replicas did not confirm the write before the deadline.
    #[error("the in-sync replicas did not confirm the write in time")]
    TimedOut,
    /// The transaction's coordinator does not have the partition in the
    /// producer's transaction (KIP-890): the batch would open one nobody
    /// ends. TRANSACTION_ABORTABLE for clients that know it (`abortable`),
    /// else INVALID_TXN_STATE.
    #[error("the partition was not added to the transaction")]
    NotInTransaction {
        /// Whether the client's Produce version knows TRANSACTION_ABORTABLE.
        abortable: bool,
    },
    /// The transaction's coordinator could not confirm the partition is in
    /// the transaction, or refused the producer.
    #[error("{}", unverified(.0))]
    Unverified(TxnError),
    /// The coordinator was still busy with the producer's transaction (its
    /// previous one completing, say) when the leader stopped asking it to
    /// add the partition (transaction version 2): CONCURRENT_TRANSACTIONS,
    /// which the producer retries.
    #[error("another operation on the producer's transaction was still under way; the partition was not added")]
    ConcurrentTransactions,
}

/// Why a write was not verified: the coordinator's refusal, or that it
/// could not answer yet (the client retries).
fn unverified(e: &TxnError) -> String {
    if e.is_retriable() {
        format!("unable to verify the partition has been added to the transaction: {e}")
    } else {
        e.to_string()
    }
}

/// Kafka's `acks`: who must hold a write before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// 0: nobody; the client expects no answer.
    NoAnswer,
    /// 1: the leader.
    Leader,
    /// -1: every in-sync replica, at least `min.insync.replicas` of them.
    All,
}

impl Acks {
    /// The setting a request carries; `None` for a value Kafka does not
    /// define.
    pub fn parse(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::NoAnswer),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// One partition's batch.
#[derive(Debug)]
pub struct Write {
    /// Partition index.
    pub partition: i32,
    /// The record batch as the client sent it.
    pub records: Option<Bytes>,
    /// For a transactional batch, the guard of the verification its
    /// coordinator confirmed (`None`: none was needed), or why it was not.
    pub verified: Result<Option<VerificationGuard>, ProduceError>,
}

/// One topic's batches.
#[derive(Debug)]
pub struct TopicWrites {
    /// Topic name.
    pub topic: String,
    /// Its partitions' batches.
    pub writes: Vec<Write>,
}

/// A produce request.
#[derive(Debug)]
pub struct Produce {
    /// `acks` as sent (validated here).
    pub acks: i16,
    /// How long `acks=all` waits for the in-sync replicas.
    pub timeout: Duration,
    /// The batches, by topic.
    pub topics: Vec<TopicWrites>,
}

/// Each partition's outcome, in the request's order.
pub type Produced = Vec<Vec<Result<Appended, ProduceError>>>;

impl ReplicaManager {
    /// Appends every partition's batch; with `acks=all` answers once every
    /// written partition is settled (replicated, refused, or out of time).
    pub async fn produce(&self, request: Produce) -> Produced {
        let deadline = tokio::time::Instant::now() + request.timeout;
        let acks = Acks::parse(request.acks);
        let mut produced: Produced = Vec::with_capacity(request.topics.len());
        // Where each acks=all answer goes once settled.
        let mut held = Vec::new();
        for topic in request.topics {
            let mut outcomes = Vec::with_capacity(topic.writes.len());
            for write in topic.writes {
                let appended = match acks {
                    None => Err(ProduceError::InvalidAcks(request.acks)),
                    Some(acks) => self.append(acks, &topic.topic, write),
                };
                if let (Some(Acks::All), Ok((p, a))) = (acks, &appended) {
                    held.push(((produced.len(), outcomes.len()), (p.clone(), *a)));
                }
                outcomes.push(appended.map(|(_, a)| a));
            }
            produced.push(outcomes);
        }
        let (places, writes): (Vec<_>, Vec<_>) = held.into_iter().unzip();
        let replications = await_replication(&writes, deadline).await;
        for (((t, i), (p, _)), replication) in places.into_iter().zip(&writes).zip(replications) {
            if let Err(e) = settle(replication, self.min_insync_replicas(&p.topic)) {
                produced[t][i] = Err(e);
            }
        }
        produced
    }

    /// Starts the verification of a producer's transactional batch on
    /// this broker's leader replica of `topic`-`partition` (see
    /// [`Partition::start_verification`]).
    pub fn start_verification(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<Option<VerificationGuard>, ReplicaError> {
        Ok(self.replica(topic, partition)?.start_verification(
            producer_id,
            producer_epoch,
            base_sequence,
        )?)
    }

    /// Appends one batch as the partition's leader.
    fn append(
        &self,
        acks: Acks,
        topic: &str,
        write: Write,
    ) -> Result<(Arc<Partition>, Appended), ProduceError> {
        let guard = write.verified?;
        let p = self.replica(topic, write.partition)?;
        let records = write.records.ok_or(ProduceError::NoRecords)?;
        admit(acks, p.in_sync(), self.min_insync_replicas(topic))?;
        let appended = p.append(records, guard).map_err(ReplicaError::from)?;
        Ok((p, appended))
    }
}

/// Whether a write may be appended: `acks=all` needs `min.insync.replicas`
/// in the ISR first (a replica that does not lead, `in_sync` none, is
/// refused by the append itself).
pub(super) fn admit(acks: Acks, in_sync: Option<InSync>, min: usize) -> Result<(), ProduceError> {
    match in_sync {
        Some(s) if acks == Acks::All && !s.satisfies(min) => {
            Err(ProduceError::NotEnoughReplicas { isr: s.isr, min })
        }
        _ => Ok(()),
    }
}

/// The answer to an `acks=all` write whose wait is over: replicated, and
/// still on `min.insync.replicas` when it was.
pub(super) fn settle(replication: Replication, min: usize) -> Result<(), ProduceError> {
    match replication {
        Replication::Done(s) if s.satisfies(min) => Ok(()),
        Replication::Done(s) => Err(ProduceError::NotEnoughReplicasAfterAppend { isr: s.isr, min }),
        Replication::LostLeadership => Err(ProduceError::LostLeadership),
        Replication::Pending | Replication::TimedOut => Err(ProduceError::TimedOut),
    }
}

/// Kafka's delayed produce: every held write of a request waits at once,
/// each until its partition's high watermark passes it or the leadership
/// it was written under ends, at the latest until `deadline`.
pub(super) async fn await_replication(
    writes: &[(Arc<Partition>, Appended)],
    deadline: tokio::time::Instant,
) -> Vec<Replication> {
    let waits = writes
        .iter()
        .map(|(p, a)| p.await_replication(a.leader_epoch, a.end_offset, deadline));
    futures_util::future::join_all(waits).await
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::super::fetch::{FetchParams, FetchPosition};
    use super::super::tests::{manager, partition, resync, TOPIC};
    use super::super::TopicRef;
    use super::*;
    use crate::log::batch::tests::encode;
    use crate::metadata::image::PartitionImage;

    #[test]
    fn acks_are_0_1_or_all() {
        let cases = [
            (0, Some(Acks::NoAnswer)),
            (1, Some(Acks::Leader)),
            (-1, Some(Acks::All)),
            (2, None),
            (-2, None),
        ];
        for (acks, want) in cases {
            assert_eq!(Acks::parse(acks), want, "acks={acks}");
        }
    }

    #[test]
    fn only_acks_all_needs_the_minimum_isr_before_writing() {
        let isr = |isr| Some(InSync { isr, replicas: 3 });
        let refused = |isr| Err::<(), _>(ProduceError::NotEnoughReplicas { isr, min: 2 });
        let cases = [
            // (acks, the leader's ISR, min.insync.replicas, verdict)
            (Acks::All, isr(1), 2, refused(1)),
            (Acks::All, isr(2), 2, Ok(())),
            (Acks::All, isr(3), 2, Ok(())),
            (Acks::Leader, isr(1), 2, Ok(())),
            (Acks::NoAnswer, isr(1), 2, Ok(())),
            // Not the leader: the append refuses it.
            (Acks::All, None, 2, Ok(())),
        ];
        for (acks, in_sync, min, want) in cases {
            assert_eq!(
                format!("{:?}", admit(acks, in_sync, min)),
                format!("{want:?}"),
                "{acks:?} {in_sync:?} min {min}"
            );
        }
    }

    #[test]
    fn a_write_whose_wait_is_over_is_answered_as_kafka_does() {
        let done = |isr| Replication::Done(InSync { isr, replicas: 3 });
        let cases = [
            // (how the wait ended, min.insync.replicas, answer)
            (done(3), 2, Ok(())),
            (done(2), 2, Ok(())),
            (
                done(1),
                2,
                Err(ProduceError::NotEnoughReplicasAfterAppend { isr: 1, min: 2 }),
            ),
            (done(1), 1, Ok(())),
            (
                Replication::LostLeadership,
                1,
                Err(ProduceError::LostLeadership),
            ),
            (Replication::TimedOut, 1, Err(ProduceError::TimedOut)),
            (Replication::Pending, 1, Err(ProduceError::TimedOut)),
        ];
        for (replication, min, want) in cases {
            assert_eq!(
                format!("{:?}", settle(replication, min)),
                format!("{want:?}"),
                "{replication:?} min {min}"
            );
        }
    }

    /// A request writing one batch to each of `partitions` of [`TOPIC`].
    fn request(acks: i16, timeout_ms: u64, partitions: &[i32]) -> Produce {
        let batch = encode(&["a", "b"], &[1, 2], Compression::None).freeze();
        Produce {
            acks,
            timeout: Duration::from_millis(timeout_ms),
            topics: vec![TopicWrites {
                topic: TOPIC.into(),
                writes: partitions
                    .iter()
                    .map(|p| Write {
                        partition: *p,
                        records: Some(batch.clone()),
                        verified: Ok(None),
                    })
                    .collect(),
            }],
        }
    }

    /// Each partition's outcome, as text.
    fn outcomes(produced: Produced) -> Vec<String> {
        produced
            .into_iter()
            .flatten()
            .map(|r| match r {
                Ok(a) => format!("ok {}", a.base_offset),
                Err(e) => format!("{e:?}"),
            })
            .collect()
    }

    /// Replicas 1, 2 and 3, all in sync, led by 1 in epoch 1.
    fn of_three() -> PartitionImage {
        partition(&[1, 2, 3], &[1, 2, 3], 1)
    }

    /// Later metadata: the ISR or leadership changed (partition epoch 2).
    fn changed(isr: &[i32], leader: i32, leader_epoch: i32) -> PartitionImage {
        PartitionImage {
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch: 2,
            ..of_three()
        }
    }

    /// Waits at most a few seconds: a delayed produce left waiting fails.
    async fn soon<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .expect("answered well before the request's timeout")
    }

    #[tokio::test]
    async fn acks_1_is_answered_once_the_leader_has_the_write() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![of_three()]).await;
        let produced = soon(m.produce(request(1, 60_000, &[0]))).await;
        assert_eq!(outcomes(produced), ["ok 0"]);
    }

    #[tokio::test]
    async fn acks_all_below_the_minimum_isr_is_refused_unwritten() {
        let dir = tempfile::tempdir().expect("dir");
        let few = partition(&[1, 2, 3], &[1], 1);
        let (m, _) = manager(dir.path(), &[("min.insync.replicas", "2")], vec![few]).await;
        let produced = soon(m.produce(request(-1, 60_000, &[0]))).await;
        assert_eq!(outcomes(produced), ["NotEnoughReplicas { isr: 1, min: 2 }"]);
        let p = m.replica(TOPIC, 0).expect("replica");
        assert_eq!(p.watermarks().log_end_offset, 0);
    }

    #[tokio::test]
    async fn a_delayed_produce_completes_when_the_isr_shrinks() {
        let dir = tempfile::tempdir().expect("dir");
        let min2 = [("min.insync.replicas", "2")];
        let (m, topics) = manager(dir.path(), &min2, vec![of_three(), of_three()]).await;
        // Partition 0 keeps follower 2; partition 1 is left with its leader.
        let shrink = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            m.fetch(&follower(2), &at_end(&m, &[0])).await;
            let shrunk = vec![changed(&[1, 2], 1, 1), changed(&[1], 1, 1)];
            resync(&topics, &min2, shrunk, 2);
        };
        let (produced, ()) =
            soon(async { tokio::join!(m.produce(request(-1, 60_000, &[0, 1])), shrink) }).await;
        assert_eq!(
            outcomes(produced),
            ["ok 0", "NotEnoughReplicasAfterAppend { isr: 1, min: 2 }"]
        );
    }

    #[tokio::test]
    async fn a_delayed_produce_completes_when_leadership_moves() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, topics) = manager(dir.path(), &[], vec![of_three(), of_three()]).await;
        let moved = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let next = vec![changed(&[2, 3], 2, 2), changed(&[1], 1, 1)];
            resync(&topics, &[], next, 2);
        };
        let (produced, ()) =
            soon(async { tokio::join!(m.produce(request(-1, 60_000, &[0, 1])), moved) }).await;
        assert_eq!(outcomes(produced), ["LostLeadership", "ok 0"]);
    }

    #[tokio::test]
    async fn a_delayed_produce_completes_at_its_deadline() {
        let dir = tempfile::tempdir().expect("dir");
        let (m, _) = manager(dir.path(), &[], vec![of_three(), of_three()]).await;
        // Partition 0's followers confirm its write; partition 1's never do,
        // and the answer for both waits for the deadline.
        let confirm = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            for f in [2, 3] {
                m.fetch(&follower(f), &at_end(&m, &[0])).await;
            }
        };
        let started = tokio::time::Instant::now();
        let (produced, ()) =
            soon(async { tokio::join!(m.produce(request(-1, 300, &[0, 1])), confirm) }).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(outcomes(produced), ["ok 0", "TimedOut"]);
    }

    /// A follower's fetch that does not wait.
    fn follower(id: i32) -> FetchParams {
        FetchParams {
            replica: Some(id),
            isolation: super::super::fetch::Isolation::ReadUncommitted,
            throttle: None,
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: 1 << 20,
        }
    }

    /// Fetch positions at the leader's log end of `partitions`: a follower
    /// holding everything.
    fn at_end(m: &ReplicaManager, partitions: &[i32]) -> Vec<(TopicRef, Vec<FetchPosition>)> {
        let positions = partitions
            .iter()
            .map(|i| FetchPosition {
                partition: *i,
                fetch_offset: m
                    .replica(TOPIC, *i)
                    .expect("replica")
                    .watermarks()
                    .log_end_offset,
                current_leader_epoch: 1,
                last_fetched_epoch: 1,
                max_bytes: 1 << 20,
            })
            .collect();
        vec![(TopicRef::Name(TOPIC.into()), positions)]
    }
}
