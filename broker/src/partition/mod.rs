//! One partition replica on this broker: its log, its producers' sequence
//! and transaction state, its leader-epoch history, and its role: leader
//! (tracking its followers and the high watermark) or follower (copying
//! its leader).
//! - [`epochs`] is the log's leader-epoch history (divergence,
//!   OffsetForLeaderEpoch);
//! - [`leader`] is the leader's bookkeeping of its followers (pure);
//! - [`producer_state`] de-duplicates idempotent producers' batches and
//!   fences transaction markers;
//! - [`transactions`] tracks open transactions and the last stable offset;
//! - [`snapshot`] reads and writes the producer snapshots and the
//!   leader-epoch checkpoint, in Kafka's formats;
//! - [`replay`] hands a replica's records to the coordinators that load it.
//!
//! Transactions: a transactional batch opens its producer's transaction;
//! a marker (a control batch, [`Partition::append_marker`] on the leader)
//! ends it, and an abort is recorded in the `.txnindex` of the segment
//! holding the marker. Followers track the same from the batches they copy.
//!
//! Opening: a replica rebuilds its producers, open transactions and epoch
//! history from its newest producer snapshot and its leader-epoch
//! checkpoint, replaying only the batches after the snapshot; without a
//! usable snapshot, or with `.txnindex` files to rebuild, it replays its
//! whole log. As Kafka does, a snapshot is written whenever an append
//! rolls a new segment (of the state before that append, at the log end
//! before it) and at clean shutdown ([`Partition::close`]); the checkpoint
//! whenever the history changes, and before every snapshot.

pub mod epochs;
pub mod leader;
pub mod producer_state;
pub mod replay;
pub mod snapshot;
pub mod transactions;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
#[cfg(test)]
use bytes::BytesMut;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::log::cleaner::{CleanJob, CleanOutput, Cleanable, CleanedGroup};
use crate::log::control::{self, Marker};
use crate::log::file_slice::FileSlice;
use crate::log::txn_index::AbortedTxn;
use crate::log::{batch, Log, LogConfig, LogError};
use crate::metadata::image::{PartitionImage, NO_LEADER};
use epochs::{EpochHistory, ReplicaFetch};
use leader::{IsrChange, LeaderState};
use producer_state::{
    ActiveProducer, BatchIdentity, Check, MarkerRefusal, Origin, ProducerStates, VerificationGuard,
};
use snapshot::SnapshotError;
use transactions::Transactions;

/// Errors of a partition operation, each mapping to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// From the log (I/O, corrupt batch, too large, out of range).
    #[error(transparent)]
    Log(#[from] LogError),
    /// Producer snapshots or the leader-epoch checkpoint could not be
    /// written or removed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Produce v3+ carries exactly one batch per partition.
    #[error("a produce request must carry exactly one record batch per partition; {0} bytes follow the first")]
    ExtraBytes(usize),
    /// Idempotent sequence gap.
    #[error("out-of-order sequence from producer {producer_id}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
    },
    /// Idempotent producer with an old epoch.
    #[error("producer {producer_id} epoch {epoch} is stale")]
    StaleEpoch {
        /// The producer.
        producer_id: i64,
        /// The stale epoch.
        epoch: i16,
    },
    /// This broker does not lead the partition.
    #[error("this broker is not the leader of the partition (leader: {leader})")]
    NotLeader {
        /// The leader as this broker knows it (-1: none).
        leader: i32,
    },
    /// The client knows a newer leader epoch than this broker.
    #[error("leader epoch {requested} is newer than this broker's {current}")]
    UnknownLeaderEpoch {
        /// The client's epoch.
        requested: i32,
        /// This broker's.
        current: i32,
    },
    /// The client's leader epoch is older than the current one.
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch {
        /// The client's epoch.
        requested: i32,
        /// The current one.
        current: i32,
    },
    /// A data batch outside a transaction from a producer whose
    /// transaction is open here.
    #[error("producer {producer_id} has a transaction open on this partition; its batch must be transactional")]
    InvalidTxnState {
        /// The producer.
        producer_id: i64,
    },
    /// A transactional batch that would open its producer's transaction
    /// here without its coordinator having confirmed the partition is in
    /// it (KIP-890): INVALID_TXN_STATE.
    #[error("producer {producer_id}'s transactional batch is not part of a transaction its coordinator knows on this partition")]
    Unverified {
        /// The producer.
        producer_id: i64,
    },
    /// A control batch sent to be appended as data: only transaction
    /// coordinators write markers, through `append_marker`.
    #[error("clients are not allowed to write control records")]
    ControlBatch,
    /// A marker from a transaction coordinator older than the last one
    /// that wrote for the producer.
    #[error(
        "coordinator epoch {epoch} for producer {producer_id} is older than the current {current}"
    )]
    CoordinatorFenced {
        /// The producer.
        producer_id: i64,
        /// The marker's coordinator epoch.
        epoch: i32,
        /// The last coordinator epoch seen for the producer.
        current: i32,
    },
}

/// What an accepted produce wrote (or had already written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Offset after the batch: the high watermark `acks=all` waits for.
    pub end_offset: i64,
    /// Log start offset after the write.
    pub log_start_offset: i64,
    /// The leader epoch it was written in: the write is confirmed only by
    /// this leadership's high watermark.
    pub leader_epoch: i32,
    /// The batch's timestamp under `message.timestamp.type=LogAppendTime`
    /// (-1: the producer's timestamps stand, or a retried batch).
    pub log_append_time: i64,
}

/// The leader's in-sync replicas, for `min.insync.replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InSync {
    /// Replicas in the ISR (the leader included).
    pub isr: usize,
    /// All replicas of the partition.
    pub replicas: usize,
}

impl InSync {
    /// Whether the ISR satisfies `min_insync` the way Kafka applies it: a
    /// minimum above the replication factor counts as the replication
    /// factor, so a topic of fewer replicas than the broker-wide default
    /// still takes `acks=all` writes.
    pub fn satisfies(&self, min_insync: usize) -> bool {
        self.isr >= min_insync.min(self.replicas).max(1)
    }
}

/// Where a write stands with the in-sync replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// The high watermark has not passed it yet.
    Pending,
    /// Every in-sync replica holds it; the ISR as it is now.
    Done(InSync),
    /// This replica no longer leads in the epoch it was written in: the
    /// write may be truncated, and the new leader decides.
    LostLeadership,
    /// The request's time ran out first.
    TimedOut,
}

/// Offsets a fetch response reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Offsets below it are on every in-sync replica; consumers read up to it.
    pub high_watermark: i64,
    /// Offsets below it belong to no transaction that may still change:
    /// read_committed consumers read up to it.
    pub last_stable_offset: i64,
    /// First offset still stored.
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub log_end_offset: i64,
}

/// What this replica does.
#[derive(Debug, Clone)]
enum Role {
    /// Leads: appends, serves reads, tracks followers.
    Leader(LeaderState),
    /// Copies `leader` (or waits for one, `NO_LEADER`).
    Follower {
        leader: i32,
        epoch: i32,
        high_watermark: i64,
    },
}

struct State {
    log: Log,
    producers: ProducerStates,
    txns: Transactions,
    epochs: EpochHistory,
    role: Role,
}

/// Where a follower fetches from, for the fetcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerPosition {
    /// Its leader.
    pub leader: i32,
    /// The leader epoch it knows.
    pub epoch: i32,
    /// Its log end: where to fetch from.
    pub fetch_offset: i64,
    /// The epoch of its last record (-1: empty log).
    pub last_fetched_epoch: i32,
}

/// A partition replica this broker stores.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    /// This broker.
    me: i32,
    state: Mutex<State>,
    /// How many batches opening replayed (see [`Partition::replayed_at_open`]).
    replayed_at_open: usize,
    /// Bumped whenever something a waiting request may wait for changes:
    /// the log end, the high watermark, the role, the leader epoch, the ISR,
    /// or the replica leaving this broker. Held produces and long-polling
    /// fetches of this partition sleep on it.
    changes: watch::Sender<u64>,
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir` and rebuilds
    /// producer state and the epoch history from its newest producer
    /// snapshot and leader-epoch checkpoint and the batches after it, or
    /// from the whole log (see the module's documentation).
    pub fn open(
        topic: &str,
        index: i32,
        me: i32,
        dir: &Path,
        config: LogConfig,
    ) -> Result<Self, PartitionError> {
        match crate::durable::remove_leftovers(dir) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(
                    topic,
                    partition = index,
                    removed,
                    "removed temporary files a crash left"
                )
            }
            Err(e) => {
                tracing::warn!(topic, partition = index, error = %e, "cannot remove temporary files a crash left")
            }
        }
        let mut log = Log::open(dir, config)?;
        let saved = match snapshot::read_checkpoint(dir) {
            Ok(saved) => saved.map(EpochHistory::from_entries),
            Err(e) => {
                tracing::warn!(topic, partition = index, error = %e, "ignoring the leader-epoch checkpoint; replaying the whole log");
                None
            }
        };
        let rebuilt = rebuild_state(&mut log, saved.clone())?;
        match rebuilt.snapshot {
            Some(offset) => {
                tracing::info!(
                    topic,
                    partition = index,
                    snapshot = offset,
                    replayed = rebuilt.replayed,
                    "opened from a producer snapshot"
                )
            }
            // An empty log (a new replica) has nothing to say.
            None if rebuilt.replayed == 0 => {
                tracing::debug!(topic, partition = index, "opened an empty log")
            }
            None => {
                tracing::info!(
                    topic,
                    partition = index,
                    replayed = rebuilt.replayed,
                    "opened by replaying the whole log"
                )
            }
        }
        let state = State {
            log,
            producers: rebuilt.producers,
            txns: rebuilt.txns,
            epochs: rebuilt.epochs,
            role: Role::Follower {
                leader: NO_LEADER,
                epoch: -1,
                high_watermark: 0,
            },
        };
        // A new partition has no history to keep yet.
        if saved.unwrap_or_default() != state.epochs {
            save_epochs(&state);
        }
        Ok(Partition {
            topic: topic.to_string(),
            index,
            me,
            state: Mutex::new(state),
            replayed_at_open: rebuilt.replayed,
            changes: watch::channel(0).0,
        })
    }

    /// How many batches opening the replica replayed: those after the
    /// producer snapshot it started from, or the whole log's. A restart
    /// that replays little is what the snapshots are for.
    pub fn replayed_at_open(&self) -> usize {
        self.replayed_at_open
    }

    /// At clean shutdown: forces the log to disk and writes a producer
    /// snapshot at its end, so the next open replays nothing. The replica
    /// stays usable.
    pub fn close(&self) -> Result<(), PartitionError> {
        let mut state = self.lock();
        state.log.flush()?;
        // Recovery distrusts the active segment's `.txnindex`; written
        // whole before the snapshot, it is adopted with it.
        state.log.save_active_aborted()?;
        let end = state.log.log_end_offset();
        Ok(write_snapshot(&state, end)?)
    }

    /// Takes the role the metadata gives this replica. Returns where to
    /// fetch from when it is (now) a follower.
    pub fn apply(&self, image: &PartitionImage) -> Option<FollowerPosition> {
        let now = now_ms();
        let mut state = self.lock();
        let log_end = state.log.log_end_offset();
        let current_hw = high_watermark(&state);
        let before = role_key(&state);
        match &mut state.role {
            Role::Leader(l) if image.leader == self.me && l.epoch == image.leader_epoch => {
                if l.partition_epoch != image.partition_epoch {
                    l.update(
                        image.partition_epoch,
                        image.replicas.clone(),
                        image.isr.clone(),
                        now,
                    );
                    l.advance(log_end);
                }
            }
            _ if image.leader == self.me => {
                change_epochs(&mut state, |e| e.assign(image.leader_epoch, log_end));
                tracing::info!(topic = %self.topic, partition = self.index, epoch = image.leader_epoch, log_end, "leading");
                state.role =
                    Role::Leader(LeaderState::new(self.me, image, log_end, current_hw, now));
            }
            _ => {
                state.role = Role::Follower {
                    leader: image.leader,
                    epoch: image.leader_epoch,
                    high_watermark: current_hw.min(log_end),
                };
            }
        }
        let position = self.follower_position(&state);
        let moved = role_key(&state) != before;
        drop(state);
        if moved {
            self.changed();
        }
        position
    }

    /// The replica leaves this broker (its topic deleted or the replica
    /// moved away): whatever waits on it is answered as by a replica that
    /// lost its leadership.
    pub fn retire(&self) {
        self.lock().role = Role::Follower {
            leader: NO_LEADER,
            epoch: -1,
            high_watermark: 0,
        };
        self.changed();
    }

    fn follower_position(&self, state: &State) -> Option<FollowerPosition> {
        match state.role {
            Role::Follower { leader, epoch, .. } if leader != NO_LEADER => Some(FollowerPosition {
                leader,
                epoch,
                fetch_offset: state.log.log_end_offset(),
                last_fetched_epoch: state.epochs.latest(),
            }),
            _ => None,
        }
    }

    /// Where this follower fetches from now (`None` when leading).
    pub fn position(&self) -> Option<FollowerPosition> {
        self.follower_position(&self.lock())
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes on every change of the log end, high watermark, role or ISR
    /// (see `changes`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether this replica leads the partition.
    pub fn is_leader(&self) -> bool {
        matches!(self.lock().role, Role::Leader(_))
    }

    /// The leader epoch this replica leads in (`None` when following).
    pub fn leader_epoch(&self) -> Option<i32> {
        match &self.lock().role {
            Role::Leader(l) => Some(l.epoch),
            Role::Follower { .. } => None,
        }
    }

    /// The in-sync replicas when leading, for `min.insync.replicas`.
    pub fn in_sync(&self) -> Option<InSync> {
        match &self.lock().role {
            Role::Leader(l) => Some(InSync {
                isr: l.isr.len(),
                replicas: l.replicas.len(),
            }),
            Role::Follower { .. } => None,
        }
    }

    /// Whether `replica` is in the ISR this replica leads with (never when
    /// following): a replication throttle does not hold it back.
    pub fn in_isr(&self, replica: i32) -> bool {
        match &self.lock().role {
            Role::Leader(l) => l.isr.contains(&replica),
            Role::Follower { .. } => false,
        }
    }

    /// Where a write that ends at `end_offset`, made as leader in
    /// `leader_epoch`, stands now.
    pub fn replication(&self, leader_epoch: i32, end_offset: i64) -> Replication {
        match &self.lock().role {
            Role::Leader(l) if l.epoch != leader_epoch => Replication::LostLeadership,
            Role::Leader(l) if l.high_watermark >= end_offset => Replication::Done(InSync {
                isr: l.isr.len(),
                replicas: l.replicas.len(),
            }),
            Role::Leader(_) => Replication::Pending,
            Role::Follower { .. } => Replication::LostLeadership,
        }
    }

    /// Waits, until `deadline`, for a write to be replicated: answered as
    /// soon as the high watermark passes it or the leadership it was
    /// written under ends (Kafka's delayed produce).
    pub async fn await_replication(
        &self,
        leader_epoch: i32,
        end_offset: i64,
        deadline: tokio::time::Instant,
    ) -> Replication {
        let mut changes = self.subscribe();
        loop {
            changes.borrow_and_update();
            match self.replication(leader_epoch, end_offset) {
                Replication::Pending => {}
                done => return done,
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Replication::LostLeadership;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return match self.replication(leader_epoch, end_offset) {
                        Replication::Pending => Replication::TimedOut,
                        done => done,
                    };
                }
            }
        }
    }

    /// Checks a client's view of the leader (`current_leader_epoch`, -1 for
    /// none) against this replica: it must be the leader, in that epoch.
    pub fn check_leader(&self, current_leader_epoch: i32) -> Result<(), PartitionError> {
        check_leader(&self.lock(), current_leader_epoch)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the log as its last
        // completed write left it, so the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one produced batch as leader, de-duplicating idempotent
    /// retries and opening the producer's transaction if the batch is
    /// transactional, which needs the `guard` of a verification started
    /// here (see [`Partition::start_verification`]).
    pub fn append(
        &self,
        records: Bytes,
        guard: Option<VerificationGuard>,
    ) -> Result<Appended, PartitionError> {
        self.append_from(records, Origin::Client, guard)
    }

    /// Appends a coordinator's own batch as leader (Kafka's
    /// `AppendOrigin.COORDINATOR`): the group coordinator's transactional
    /// offset commits carry the producer's id and epoch but no sequence
    /// (base sequence -1), so only the epoch and transaction state are
    /// checked; the transaction is tracked as any other.
    pub fn append_as_coordinator(
        &self,
        records: Bytes,
        guard: Option<VerificationGuard>,
    ) -> Result<Appended, PartitionError> {
        self.append_from(records, Origin::Coordinator, guard)
    }

    /// Before a producer's transactional batch is appended here as leader,
    /// its coordinator is asked whether this partition is in the
    /// transaction (KIP-890); this starts that verification and returns
    /// the guard the append must bring, or `None` when the producer's
    /// transaction is already open here and needs no asking.
    pub fn start_verification(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<Option<VerificationGuard>, PartitionError> {
        let mut state = self.lock();
        check_leader(&state, -1)?;
        Ok(state
            .producers
            .start_verification(producer_id, producer_epoch, base_sequence, now_ms()))
    }

    /// Forgets the producers idle for `expiration_ms` with no transaction
    /// open here (`producer.id.expiration.ms`); how many went.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.lock().producers.expire(now_ms, expiration_ms)
    }

    fn append_from(
        &self,
        records: Bytes,
        origin: Origin,
        guard: Option<VerificationGuard>,
    ) -> Result<Appended, PartitionError> {
        // The header alone decides de-duplication; the log validates the
        // whole batch (CRC, records) once, when it is really appended.
        let h = &batch::parse_header(&records, 0).map_err(LogError::from)?;
        if h.size != records.len() {
            return Err(PartitionError::ExtraBytes(records.len() - h.size));
        }
        if h.is_control() {
            return Err(PartitionError::ControlBatch);
        }
        let id = BatchIdentity {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            record_count: h.record_count,
            transactional: h.is_transactional(),
        };
        let mut state = self.lock();
        check_leader(&state, -1)?;
        let epoch = match &state.role {
            Role::Leader(l) => l.epoch,
            Role::Follower { .. } => -1,
        };
        let (base_offset, log_append_time) = match state.producers.check(&id, origin, guard) {
            Check::Duplicate { base_offset } => (base_offset, -1),
            Check::OutOfOrder => {
                return Err(PartitionError::OutOfOrderSequence {
                    producer_id: id.producer_id,
                })
            }
            Check::StaleEpoch => {
                return Err(PartitionError::StaleEpoch {
                    producer_id: id.producer_id,
                    epoch: id.producer_epoch,
                })
            }
            Check::InvalidTxnState => {
                return Err(PartitionError::InvalidTxnState {
                    producer_id: id.producer_id,
                })
            }
            Check::Unverified => {
                return Err(PartitionError::Unverified {
                    producer_id: id.producer_id,
                })
            }
            Check::Append => {
                let active_before = state.log.active_base_offset();
                let info = state.log.append(records, epoch)?;
                snapshot_if_rolled(&state, active_before);
                let stamped = if info.log_append_time >= 0 {
                    info.log_append_time
                } else {
                    h.max_timestamp
                };
                if let Some(first) = state.producers.record(&id, info.base_offset, stamped) {
                    state.txns.open(id.producer_id, first);
                }
                (info.base_offset, info.log_append_time)
            }
        };
        let end_offset = base_offset + i64::from(h.record_count.max(1));
        Ok(self.appended_as_leader(state, base_offset, end_offset, epoch, log_append_time))
    }

    /// Writes a transaction marker as leader: a control batch ending
    /// `producer_id`'s transaction here, COMMIT or ABORT, from a
    /// coordinator in `coordinator_epoch`, of `transaction_version`.
    /// Refused, as in Kafka, when the producer epoch is older than the
    /// producer's, or from version 2 not newer while a transaction is open
    /// (INVALID_PRODUCER_EPOCH), or the coordinator epoch is older than
    /// the last marker's (TRANSACTION_COORDINATOR_FENCED). An abort is
    /// recorded in the `.txnindex` of the segment the marker lands in.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        transaction_version: i8,
    ) -> Result<Appended, PartitionError> {
        let marker = Marker {
            commit,
            coordinator_epoch,
        };
        let mut state = self.lock();
        check_leader(&state, -1)?;
        let epoch = match &state.role {
            Role::Leader(l) => l.epoch,
            Role::Follower { .. } => -1,
        };
        match state.producers.check_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            transaction_version,
        ) {
            Ok(()) => {}
            Err(MarkerRefusal::StaleEpoch) => {
                return Err(PartitionError::StaleEpoch {
                    producer_id,
                    epoch: producer_epoch,
                })
            }
            Err(MarkerRefusal::FencedCoordinator { current }) => {
                return Err(PartitionError::CoordinatorFenced {
                    producer_id,
                    epoch: coordinator_epoch,
                    current,
                })
            }
        }
        let now = now_ms();
        let records = marker
            .encode(producer_id, producer_epoch, now)
            .map_err(LogError::from)?;
        let active_before = state.log.active_base_offset();
        let info = state.log.append(records.freeze(), epoch)?;
        snapshot_if_rolled(&state, active_before);
        let stamped = if info.log_append_time >= 0 {
            info.log_append_time
        } else {
            now
        };
        let State {
            log,
            producers,
            txns,
            ..
        } = &mut *state;
        let ended = producers.end_txn(producer_id, producer_epoch, coordinator_epoch, stamped);
        if let Some(first) = ended {
            if let Some(aborted) = txns.end(producer_id, first, info.base_offset, commit) {
                log.append_aborted(aborted)?;
            }
        }
        let end_offset = info.last_offset + 1;
        Ok(self.appended_as_leader(
            state,
            info.base_offset,
            end_offset,
            epoch,
            info.log_append_time,
        ))
    }

    /// After a leader's append: the high watermark may move (a leader
    /// alone in its ISR), waiting requests are woken, and the write is
    /// described.
    fn appended_as_leader(
        &self,
        mut state: MutexGuard<'_, State>,
        base_offset: i64,
        end_offset: i64,
        leader_epoch: i32,
        log_append_time: i64,
    ) -> Appended {
        let log_start_offset = state.log.log_start_offset();
        let log_end = state.log.log_end_offset();
        if let Role::Leader(l) = &mut state.role {
            l.advance(log_end);
        }
        let hw = high_watermark(&state);
        state.txns.replicated_to(hw);
        drop(state);
        self.changed();
        Appended {
            base_offset,
            end_offset,
            log_start_offset,
            leader_epoch,
            log_append_time,
        }
    }

    /// A follower's fetch, judged by the leader: whether its log diverges,
    /// else its progress is recorded. Returns the verdict and an ISR change
    /// to ask for, if its progress calls for one.
    pub fn replica_fetch(
        &self,
        follower: i32,
        current_leader_epoch: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_lag_ms: i64,
    ) -> Result<(ReplicaFetch, Option<IsrChange>), PartitionError> {
        let now = now_ms();
        let mut state = self.lock();
        check_leader(&state, current_leader_epoch)?;
        let log_end = state.log.log_end_offset();
        if let Some(diverging) = state
            .epochs
            .divergence(last_fetched_epoch, fetch_offset, log_end)
        {
            return Ok((diverging, None));
        }
        let Role::Leader(l) = &mut state.role else {
            return Err(PartitionError::NotLeader { leader: NO_LEADER });
        };
        let hw_before = l.high_watermark;
        l.on_fetch(follower, fetch_offset, log_end, now);
        let change = l.isr_change(now, max_lag_ms);
        let moved = l.high_watermark != hw_before;
        drop(state);
        if moved {
            self.changed();
        }
        Ok((ReplicaFetch::Serve, change))
    }

    /// The ISR change the leader wants now, if any (lagging followers).
    pub fn isr_change(&self, max_lag_ms: i64) -> Option<IsrChange> {
        match &self.lock().role {
            Role::Leader(l) => l.isr_change(now_ms(), max_lag_ms),
            Role::Follower { .. } => None,
        }
    }

    /// Appends batches fetched from the leader (as follower, at `epoch`)
    /// and takes its high watermark.
    pub fn append_replicated(
        &self,
        epoch: i32,
        records: &[u8],
        leader_high_watermark: i64,
    ) -> Result<(), PartitionError> {
        let mut state = self.lock();
        match state.role {
            Role::Follower { epoch: e, .. } if e == epoch => {}
            _ => {
                return Err(PartitionError::FencedLeaderEpoch {
                    requested: epoch,
                    current: -1,
                })
            }
        }
        if !records.is_empty() {
            let active_before = state.log.active_base_offset();
            let headers = state.log.append_replicated(records)?;
            snapshot_if_rolled(&state, active_before);
            let epochs_before = state.epochs.entries().len();
            let State {
                log,
                producers,
                txns,
                epochs,
                ..
            } = &mut *state;
            for h in &headers {
                let batch = &records[h.position..h.position + h.size];
                if let Some(aborted) = note_batch(producers, txns, epochs, h, batch)? {
                    log.append_aborted(aborted)?;
                }
            }
            save_epochs_if_changed(&state, epochs_before);
        }
        let log_end = state.log.log_end_offset();
        let hw_before = high_watermark(&state);
        if let Role::Follower { high_watermark, .. } = &mut state.role {
            *high_watermark = leader_high_watermark.min(log_end).max(*high_watermark);
        }
        let hw = high_watermark(&state);
        state.txns.replicated_to(hw);
        let moved = hw != hw_before;
        drop(state);
        if moved || !records.is_empty() {
            self.changed();
        }
        Ok(())
    }

    /// Drops records at or after `offset`: a follower whose log diverged
    /// from its leader's.
    pub fn truncate_to(&self, offset: i64) -> Result<(), PartitionError> {
        let mut state = self.lock();
        // Epochs assigned without records (a leadership that wrote nothing)
        // go too, or the follower would report them again.
        change_epochs(&mut state, |e| e.truncate_from(offset));
        let before = state.log.log_end_offset();
        if offset >= before {
            return Ok(());
        }
        // The snapshots of the records truncated go first: one left behind
        // would be taken at the next open for the state of other records
        // written at the same offsets since.
        snapshot::remove_above(state.log.dir(), offset)?;
        state.log.truncate_to(offset)?;
        // The history in memory is already right; the replay only redoes
        // the epochs after the snapshot.
        let known = state.epochs.clone();
        let rebuilt = rebuild_state(&mut state.log, Some(known))?;
        state.producers = rebuilt.producers;
        state.txns = rebuilt.txns;
        if let Role::Follower { high_watermark, .. } = &mut state.role {
            *high_watermark = (*high_watermark).min(offset);
        }
        drop(state);
        self.changed();
        tracing::warn!(topic = %self.topic, partition = self.index, from = before, to = offset, "truncated a log that diverged from its leader");
        Ok(())
    }

    /// Empties the replica and restarts it at `offset`: a follower behind
    /// its leader's log start.
    pub fn reset_to(&self, offset: i64) -> Result<(), PartitionError> {
        let mut state = self.lock();
        // As in `truncate_to`: no snapshot may outlive its records (-1: all).
        snapshot::remove_above(state.log.dir(), -1)?;
        state.log.reset_to(offset)?;
        state.epochs = EpochHistory::default();
        save_epochs(&state);
        state.producers = ProducerStates::default();
        state.txns = Transactions::default();
        if let Role::Follower { high_watermark, .. } = &mut state.role {
            *high_watermark = offset;
        }
        drop(state);
        self.changed();
        tracing::warn!(topic = %self.topic, partition = self.index, offset, "replica restarted at the leader's log start");
        Ok(())
    }

    /// The leader epoch of the records at `offset`.
    pub fn epoch_at(&self, offset: i64) -> i32 {
        self.lock().epochs.epoch_at(offset)
    }

    /// Kafka's OffsetForLeaderEpoch: the largest epoch at or below `epoch`
    /// and where its records end.
    pub fn end_offset_for(&self, epoch: i32) -> (i32, i64) {
        let state = self.lock();
        state
            .epochs
            .end_offset_for(epoch, state.log.log_end_offset())
    }

    /// Whole batches from `offset`, at most `max_bytes` unless the first
    /// batch alone is larger and `min_one` is set: where they lie, to be
    /// sent or read after the partition's lock is released. Consumers
    /// (`replica` false) read up to the high watermark, followers to the
    /// log end.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        replica: bool,
    ) -> Result<(FileSlice, Watermarks), PartitionError> {
        let state = self.lock();
        let marks = watermarks(&state);
        let below = if replica {
            i64::MAX
        } else {
            marks.high_watermark
        };
        let data = state.log.slice(offset, max_bytes, min_one, below)?;
        Ok((data, marks))
    }

    /// Reads for a read_committed consumer: whole batches from `offset`
    /// that end below the last stable offset (at most `max_bytes` unless
    /// the first batch alone is larger and `min_one` is set), and the
    /// aborted transactions the consumer must drop records of: those
    /// overlapping the batches read, as Kafka sends them.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(FileSlice, Watermarks, Vec<AbortedTxn>), PartitionError> {
        let state = self.lock();
        let marks = watermarks(&state);
        let data = state
            .log
            .slice(offset, max_bytes, min_one, marks.last_stable_offset)?;
        let aborted = match data.last_offset() {
            Some(last) => state.log.collect_aborted(offset, last + 1),
            None => Vec::new(),
        };
        Ok((data, marks, aborted))
    }

    /// Every producer with state on this replica, for DescribeProducers.
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.lock().producers.active()
    }

    /// Bytes stored, and the log directory (of `log.dirs`) holding them.
    pub fn disk_usage(&self) -> (u64, std::path::PathBuf) {
        let state = self.lock();
        let dir = state
            .log
            .dir()
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        (state.log.size_bytes(), dir)
    }

    /// Current offsets.
    pub fn watermarks(&self) -> Watermarks {
        watermarks(&self.lock())
    }

    /// First offset with a timestamp at or after `ts`, and that timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, PartitionError> {
        Ok(self.lock().log.offset_for_timestamp(ts)?)
    }

    /// Where this replica's log ended when its current leadership began,
    /// if it leads.
    pub fn leader_epoch_start(&self) -> Option<i64> {
        match &self.lock().role {
            Role::Leader(l) => Some(l.epoch_start),
            Role::Follower { .. } => None,
        }
    }

    /// Offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, PartitionError> {
        Ok(self.lock().log.max_timestamp()?)
    }

    /// Deletes records below `offset` (-1: the high watermark).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, PartitionError> {
        let mut state = self.lock();
        let target = if offset == -1 {
            high_watermark(&state)
        } else {
            offset
        };
        let start = state.log.delete_records_before(target)?;
        change_epochs(&mut state, |e| e.truncate_before(start));
        Ok(start)
    }

    /// Applies retention below the high watermark; returns the number of
    /// segments removed.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, PartitionError> {
        let mut state = self.lock();
        let hw = high_watermark(&state);
        let deleted = state.log.enforce_retention(now_ms, hw)?;
        let start = state.log.log_start_offset();
        change_epochs(&mut state, |e| e.truncate_before(start));
        Ok(deleted)
    }

    /// How dirty the log is, if it is compacted, and the
    /// `min.cleanable.dirty.ratio` it is cleaned at.
    pub fn cleanable(&self, now_ms: i64) -> Option<(Cleanable, f64)> {
        let state = self.lock();
        let c = state.log.cleanable(now_ms, cleanable_to(&state))?;
        Some((c, state.log.config().min_cleanable_dirty_ratio))
    }

    /// A cleaning of the log, if one is due (see `log::cleaner`).
    pub fn plan_clean(&self, now_ms: i64) -> Option<CleanJob> {
        let state = self.lock();
        let last = state.producers.last_batches();
        state.log.plan_clean(now_ms, cleanable_to(&state), last)
    }

    /// Swaps a cleaned group in; `false` when the log changed under it and
    /// it was dropped.
    pub fn install_cleaned(&self, group: CleanedGroup) -> Result<bool, LogError> {
        self.lock().log.install_group(group)
    }

    /// Records a finished cleaning.
    pub fn finish_clean(&self, out: &CleanOutput) -> Result<(), PartitionError> {
        Ok(self.lock().log.finish_clean(out)?)
    }

    /// The log's `cleanup.policy`.
    pub fn cleanup(&self) -> crate::log::Cleanup {
        self.lock().log.config().cleanup
    }

    /// Replaces the log settings (after a topic config change).
    pub fn set_config(&self, config: LogConfig) {
        self.lock().log.set_config(config);
    }

    /// Writes buffered data to disk.
    pub fn flush(&self) -> Result<(), PartitionError> {
        Ok(self.lock().log.flush()?)
    }

    /// Flushes if `flush.ms` has passed since the last flush.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<bool, PartitionError> {
        Ok(self.lock().log.flush_if_due(now_ms)?)
    }
}

fn high_watermark(state: &State) -> i64 {
    match &state.role {
        Role::Leader(l) => l.high_watermark,
        Role::Follower { high_watermark, .. } => *high_watermark,
    }
}

/// Where the cleaner must stop: the last stable offset, as Kafka's first
/// uncleanable offset, so no record of a transaction that may still abort
/// (or whose marker may still be lost) is compacted.
fn cleanable_to(state: &State) -> i64 {
    watermarks(state).last_stable_offset
}

/// What waiting requests watch of the role: its leader, leader epoch,
/// partition epoch (the ISR's version) and high watermark.
fn role_key(state: &State) -> (i32, i32, i32, i64) {
    match &state.role {
        Role::Leader(l) => (l.me, l.epoch, l.partition_epoch, l.high_watermark),
        Role::Follower {
            leader,
            epoch,
            high_watermark,
        } => (*leader, *epoch, -1, *high_watermark),
    }
}

fn watermarks(state: &State) -> Watermarks {
    let high_watermark = high_watermark(state);
    let log_start_offset = state.log.log_start_offset();
    Watermarks {
        high_watermark,
        last_stable_offset: state
            .txns
            .last_stable_offset(high_watermark, log_start_offset),
        log_start_offset,
        log_end_offset: state.log.log_end_offset(),
    }
}

fn check_leader(state: &State, current_leader_epoch: i32) -> Result<(), PartitionError> {
    match &state.role {
        Role::Leader(l) if current_leader_epoch < 0 || current_leader_epoch == l.epoch => Ok(()),
        Role::Leader(l) if current_leader_epoch > l.epoch => {
            Err(PartitionError::UnknownLeaderEpoch {
                requested: current_leader_epoch,
                current: l.epoch,
            })
        }
        Role::Leader(l) => Err(PartitionError::FencedLeaderEpoch {
            requested: current_leader_epoch,
            current: l.epoch,
        }),
        Role::Follower { leader, epoch, .. } => {
            if current_leader_epoch > *epoch {
                Err(PartitionError::UnknownLeaderEpoch {
                    requested: current_leader_epoch,
                    current: *epoch,
                })
            } else {
                Err(PartitionError::NotLeader { leader: *leader })
            }
        }
    }
}

/// Records a stored batch (`batch` its bytes): its leader epoch, its
/// producer's sequence, and the transaction it opens or, as a marker,
/// ends. Returns the aborted transaction a marker ended, for the
/// `.txnindex`. No check: the batch is in the log already (replayed, or
/// copied from the leader, which checked it).
fn note_batch(
    producers: &mut ProducerStates,
    txns: &mut Transactions,
    epochs: &mut EpochHistory,
    h: &batch::BatchHeader,
    batch: &[u8],
) -> Result<Option<AbortedTxn>, PartitionError> {
    epochs.assign(h.leader_epoch, h.base_offset);
    if h.is_control() {
        let Some(marker) = control::read_marker(batch, &batch::BatchHeader { position: 0, ..*h })
            .map_err(LogError::from)?
        else {
            return Ok(None);
        };
        let ended = producers.end_txn(
            h.producer_id,
            h.producer_epoch,
            marker.coordinator_epoch,
            h.max_timestamp,
        );
        return Ok(
            ended.and_then(|first| txns.end(h.producer_id, first, h.base_offset, marker.commit))
        );
    }
    let id = BatchIdentity {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        // The sequences the batch took when written: a compacted batch
        // keeps its offsets but may have lost records.
        record_count: h.offset_count() as i32,
        transactional: h.is_transactional(),
    };
    if let Some(first) = producers.record(&id, h.base_offset, h.max_timestamp) {
        txns.open(h.producer_id, first);
    }
    Ok(None)
}

/// Writes the leader-epoch checkpoint if the history changed since it
/// held `before` entries (every change adds or removes some).
fn save_epochs_if_changed(state: &State, before: usize) {
    if state.epochs.entries().len() != before {
        save_epochs(state);
    }
}

/// Changes the epoch history with `change`, and the checkpoint with it.
fn change_epochs(state: &mut State, change: impl FnOnce(&mut EpochHistory)) {
    let before = state.epochs.entries().len();
    change(&mut state.epochs);
    save_epochs_if_changed(state, before);
}

/// Writes the leader-epoch checkpoint, unsynced: an open trusts it only
/// below the snapshot it starts from, and before every producer snapshot
/// it is written again and synced (no snapshot is written if that fails),
/// so whatever checkpoint is on disk knows the epochs below every snapshot
/// there; one lost or damaged costs a replay of the whole log. This keeps
/// the fsyncs off leadership changes, hundreds of them at a broker's start.
/// A failure is only logged, for the same reasons.
fn save_epochs(state: &State) {
    let dir = state.log.dir();
    if let Err(e) = snapshot::write_checkpoint(dir, state.epochs.entries(), false) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot write the leader-epoch checkpoint");
    }
}

/// After an append begun with the active segment based at
/// `active_before`: if it rolled a new segment, snapshots the producers as
/// they were before it (its batches are not recorded yet), at the new
/// segment's base, the log end before the append. A failure is only
/// logged: the append is done, and the next open replays more.
fn snapshot_if_rolled(state: &State, active_before: i64) {
    let base = state.log.active_base_offset();
    if base == active_before {
        return;
    }
    if let Err(e) = write_snapshot(state, base) {
        tracing::warn!(dir = %state.log.dir().display(), offset = base, error = %e, "cannot write a producer snapshot");
    }
}

/// Writes the producer snapshot of `offset`, which the state must cover
/// exactly (every batch below it, none above), and the leader-epoch
/// checkpoint before it, so the checkpoint on disk knows every epoch below
/// any snapshot there.
fn write_snapshot(state: &State, offset: i64) -> Result<(), SnapshotError> {
    let dir = state.log.dir();
    snapshot::write_checkpoint(dir, state.epochs.entries(), true)?;
    let entries = state.producers.snapshot_entries();
    snapshot::write(dir, offset, &entries, state.log.active_base_offset())
}

/// The newest producer snapshot a replay of `log` may start from, and its
/// entries. The replay rebuilds the `.txnindex` of every segment whose
/// index is unknown since the log opened (always the active one, which
/// recovery checks), so it must start at or below the first of them; but
/// the snapshot a clean shutdown took at the log end (see
/// [`Partition::close`]) came with the active segment's index written
/// whole, which is then adopted.
fn usable_snapshot(log: &mut Log) -> Option<(i64, Vec<snapshot::ProducerEntry>)> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let dir = log.dir().to_path_buf();
    let (offset, entries) = snapshot::newest_valid(&dir, start, end)?;
    let Some(unknown) = log.first_aborted_unknown() else {
        return Some((offset, entries));
    };
    if offset <= unknown
        || (offset == end && log.adopt_active_aborted() && log.first_aborted_unknown().is_none())
    {
        return Some((offset, entries));
    }
    snapshot::newest_valid(&dir, start, unknown)
}

/// A replica's state rebuilt from its log (see [`rebuild_state`]).
struct Rebuilt {
    producers: ProducerStates,
    txns: Transactions,
    epochs: EpochHistory,
    /// The offset of the snapshot the replay began at (`None`: the log
    /// start).
    snapshot: Option<i64>,
    /// How many batches were replayed.
    replayed: usize,
}

/// Rebuilds the producers' state (so idempotent producers that retry
/// across a broker restart are still de-duplicated), the open
/// transactions and the leader-epoch history: from the newest usable
/// producer snapshot (see [`usable_snapshot`]), `known_epochs` (the
/// checkpoint's, or the history in memory, which must know every epoch
/// below the snapshot) and the batches after the snapshot; else, without
/// either, from every batch of the log. The `.txnindex` files the log
/// could not trust at open are rebuilt from the aborts the replay finds.
fn rebuild_state(
    log: &mut Log,
    known_epochs: Option<EpochHistory>,
) -> Result<Rebuilt, PartitionError> {
    const CHUNK: usize = 1 << 20;
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let dir = log.dir().to_path_buf();
    // Left by a truncation or a torn tail cut at recovery: they describe
    // records no longer in the log.
    snapshot::remove_above(&dir, end)?;
    let from_snapshot = known_epochs
        .and_then(|epochs| usable_snapshot(log).map(|(offset, entries)| (offset, entries, epochs)));
    let mut txns = Transactions::default();
    let (mut states, mut epochs, snapshot_at) = match from_snapshot {
        Some((offset, entries, mut epochs)) => {
            for e in entries.iter().filter(|e| e.current_txn_first_offset >= 0) {
                txns.open(e.producer_id, e.current_txn_first_offset);
            }
            // The replay finds the epochs from the snapshot on again; the
            // checkpoint may hold some of records a truncation took away.
            epochs.truncate_from(offset);
            epochs.truncate_before(start);
            (
                ProducerStates::from_snapshot(&entries),
                epochs,
                Some(offset),
            )
        }
        None => (ProducerStates::default(), EpochHistory::default(), None),
    };
    let mut aborted = Vec::new();
    let mut replayed = 0;
    let mut offset = snapshot_at.unwrap_or(start);
    while offset < end {
        let data = log.read(offset, CHUNK, true)?;
        let headers = batch::validate_stored(&data).map_err(LogError::from)?;
        let Some(last) = headers.last() else { break };
        for h in &headers {
            let bytes = &data[h.position..h.position + h.size];
            aborted.extend(note_batch(&mut states, &mut txns, &mut epochs, h, bytes)?);
        }
        replayed += headers.len();
        offset = last.last_offset + 1;
    }
    if log.aborted_unknown() {
        log.restore_aborted(&aborted)?;
    }
    Ok(Rebuilt {
        producers: states,
        txns,
        epochs,
        snapshot: snapshot_at,
        replayed,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::log::batch::tests::encode;
    use kafka_protocol::records::Compression;

    fn image(leader: i32, leader_epoch: i32, isr: &[i32]) -> PartitionImage {
        PartitionImage {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch: leader_epoch,
            adding: Vec::new(),
            removing: Vec::new(),
            last_left_isr: None,
        }
    }

    fn leader_of_three(dir: &Path) -> Partition {
        let p = Partition::open("t", 0, 1, dir, LogConfig::default()).expect("open");
        p.apply(&image(1, 1, &[1, 2, 3]));
        p
    }

    fn append(p: &Partition) -> Appended {
        let batch = encode(&["a", "b"], &[1, 2], Compression::None);
        p.append(batch.freeze(), None).expect("append")
    }

    fn later(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    /// A leader of three holding one write, and the task awaiting its
    /// replication for up to a minute.
    fn held_write(
        dir: &Path,
    ) -> (
        std::sync::Arc<Partition>,
        Appended,
        tokio::task::JoinHandle<Replication>,
    ) {
        let p = std::sync::Arc::new(leader_of_three(dir));
        let a = append(&p);
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move {
                p.await_replication(a.leader_epoch, a.end_offset, later(60_000))
                    .await
            })
        };
        (p, a, waiting)
    }

    async fn answer(waiting: tokio::task::JoinHandle<Replication>) -> Replication {
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("answered")
            .expect("task")
    }

    #[tokio::test]
    async fn a_held_write_is_answered_when_the_followers_confirm_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (p, a, waiting) = held_write(dir.path());
        for follower in [2, 3] {
            p.replica_fetch(follower, 1, a.end_offset, 1, 30_000)
                .expect("fetch");
        }
        let done = answer(waiting).await;
        assert_eq!(
            done,
            Replication::Done(InSync {
                isr: 3,
                replicas: 3
            })
        );
    }

    #[tokio::test]
    async fn a_held_write_is_answered_at_once_when_leadership_moves() {
        let dir = tempfile::tempdir().expect("dir");
        let (p, a, waiting) = held_write(dir.path());
        p.apply(&image(2, 2, &[2, 3]));
        assert_eq!(answer(waiting).await, Replication::LostLeadership);
        // Leading again in a later epoch does not confirm the old write.
        p.apply(&image(1, 3, &[1]));
        assert_eq!(
            p.replication(a.leader_epoch, a.end_offset),
            Replication::LostLeadership
        );
    }

    #[tokio::test]
    async fn a_held_write_times_out_without_its_followers() {
        let dir = tempfile::tempdir().expect("dir");
        let p = leader_of_three(dir.path());
        let a = append(&p);
        let done = p
            .await_replication(a.leader_epoch, a.end_offset, later(50))
            .await;
        assert_eq!(done, Replication::TimedOut);
    }

    #[tokio::test]
    async fn a_retired_replica_answers_its_held_writes() {
        let dir = tempfile::tempdir().expect("dir");
        let (p, _, waiting) = held_write(dir.path());
        p.retire();
        assert_eq!(answer(waiting).await, Replication::LostLeadership);
    }

    #[test]
    fn the_minimum_isr_counts_as_at_most_the_replication_factor() {
        let cases = [
            // (isr, replicas, min.insync.replicas, satisfied)
            (1, 1, 2, true),
            (1, 3, 2, false),
            (2, 3, 2, true),
            (2, 2, 3, true),
            (1, 2, 3, false),
            (1, 1, 1, true),
        ];
        for (isr, replicas, min, ok) in cases {
            assert_eq!(
                InSync { isr, replicas }.satisfies(min),
                ok,
                "{isr}/{replicas} min {min}"
            );
        }
    }

    /// A producer's batch of `n` records at sequence `seq`, transactional
    /// or only idempotent.
    fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> BytesMut {
        keyed_batch(pid, epoch, seq, n, transactional, "k")
    }

    /// As `producer_batch`, its keys `{prefix}0`, `{prefix}1`, ...
    fn keyed_batch(
        pid: i64,
        epoch: i16,
        seq: i32,
        n: usize,
        transactional: bool,
        prefix: &str,
    ) -> BytesMut {
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: seq + i as i32,
                // Now: records of the past would roll a segment per batch.
                timestamp: now_ms() + i as i64,
                key: Some(Bytes::from(format!("{prefix}{i}"))),
                value: Some(Bytes::from("v")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
        buf
    }

    /// A leader alone in its ISR: its high watermark follows its log end.
    fn sole_leader(dir: &Path, config: LogConfig) -> Partition {
        let p = Partition::open("t", 0, 1, dir, config).expect("open");
        p.apply(&image(1, 1, &[1]));
        p
    }

    fn txn_append(p: &Partition, pid: i64, seq: i32, n: usize) -> i64 {
        let guard = p.start_verification(pid, 0, seq).expect("verify");
        p.append(producer_batch(pid, 0, seq, n, true).freeze(), guard)
            .expect("append")
            .base_offset
    }

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    /// Producer 1 writes 0..2 and aborts at 2; producer 2 writes 3..4 and
    /// stays open; producer 1 writes 5 and commits at 6; producer 2 aborts
    /// at 7.
    fn two_transactions(p: &Partition) {
        assert_eq!(txn_append(p, 1, 0, 2), 0);
        p.append_marker(1, 0, 0, false, 1).expect("abort");
        assert_eq!(txn_append(p, 2, 0, 2), 3);
        assert_eq!(p.watermarks().last_stable_offset, 3);
        assert_eq!(txn_append(p, 1, 2, 1), 5);
        p.append_marker(1, 0, 0, true, 1).expect("commit");
        assert_eq!(p.watermarks().last_stable_offset, 3);
        p.append_marker(2, 0, 0, false, 1).expect("abort");
    }

    #[test]
    fn a_read_committed_consumer_reads_to_the_lso_and_learns_the_aborts() {
        let dir = tempfile::tempdir().expect("dir");
        let p = sole_leader(dir.path(), LogConfig::default());
        two_transactions(&p);
        let marks = p.watermarks();
        assert_eq!((marks.high_watermark, marks.last_stable_offset), (8, 8));
        let (data, _, aborted) = p.read_committed(0, 1 << 20, true).expect("read");
        assert_eq!(data.last_offset(), Some(7));
        assert_eq!(aborted, [entry(1, 0, 2, 3), entry(2, 3, 7, 8)]);
        // From past producer 1's abort, only producer 2's overlaps.
        let (_, _, aborted) = p.read_committed(5, 1 << 20, true).expect("read");
        assert_eq!(aborted, [entry(2, 3, 7, 8)]);
        // Kafka's bytes in the segment's .txnindex.
        let file = std::fs::read(dir.path().join("00000000000000000000.txnindex")).expect("index");
        assert_eq!(file.len(), 68);
        assert_eq!(&file[..2], &[0, 0]);
        assert_eq!(&file[2..10], &1i64.to_be_bytes());
    }

    #[test]
    fn the_lso_waits_for_the_marker_to_be_replicated() {
        let dir = tempfile::tempdir().expect("dir");
        let p = leader_of_three(dir.path());
        txn_append(&p, 1, 0, 2);
        p.append_marker(1, 0, 0, true, 1).expect("commit");
        // Nothing replicated: HW and LSO at 0.
        assert_eq!(p.watermarks().last_stable_offset, 0);
        for f in [2, 3] {
            p.replica_fetch(f, 1, 2, 1, 30_000).expect("fetch");
        }
        // The records are replicated, the marker is not: still unstable.
        let marks = p.watermarks();
        assert_eq!((marks.high_watermark, marks.last_stable_offset), (2, 0));
        let (data, _, _) = p.read_committed(0, 1 << 20, true).expect("read");
        assert!(data.is_empty());
        for f in [2, 3] {
            p.replica_fetch(f, 1, 3, 1, 30_000).expect("fetch");
        }
        assert_eq!(p.watermarks().last_stable_offset, 3);
    }

    #[test]
    fn markers_are_fenced_and_clients_cannot_write_them() {
        let dir = tempfile::tempdir().expect("dir");
        let p = sole_leader(dir.path(), LogConfig::default());
        let guard = p.start_verification(1, 3, 0).expect("verify");
        p.append(producer_batch(1, 3, 0, 1, true).freeze(), guard)
            .expect("append");
        p.append_marker(1, 3, 5, true, 1).expect("commit");
        assert!(matches!(
            p.append_marker(1, 2, 5, true, 1),
            Err(PartitionError::StaleEpoch { epoch: 2, .. })
        ));
        assert!(matches!(
            p.append_marker(1, 3, 4, false, 1),
            Err(PartitionError::CoordinatorFenced {
                epoch: 4,
                current: 5,
                ..
            })
        ));
        let marker = Marker {
            commit: true,
            coordinator_epoch: 9,
        }
        .encode(1, 3, 0)
        .expect("encode");
        assert!(matches!(
            p.append(marker.freeze(), None),
            Err(PartitionError::ControlBatch)
        ));
        // A new transaction opens only verified.
        assert!(matches!(
            p.append(producer_batch(1, 3, 1, 1, true).freeze(), None),
            Err(PartitionError::Unverified { producer_id: 1 })
        ));
        let guard = p.start_verification(1, 3, 1).expect("verify");
        p.append(producer_batch(1, 3, 1, 1, true).freeze(), guard)
            .expect("append");
        // Inside a transaction, an idempotent batch is out of place.
        assert!(matches!(
            p.append(producer_batch(1, 3, 2, 1, false).freeze(), None),
            Err(PartitionError::InvalidTxnState { producer_id: 1 })
        ));
        let open = p.active_producers()[0];
        assert_eq!(
            (
                open.producer_epoch,
                open.coordinator_epoch,
                open.current_txn_start_offset,
                open.last_sequence
            ),
            (3, 5, 2, 1)
        );
        // A coordinator's transactional batch has no sequence.
        let guard = p.start_verification(7, 0, -1).expect("verify");
        p.append_as_coordinator(producer_batch(7, 0, -1, 1, true).freeze(), guard)
            .expect("coordinator append");
        assert_eq!(p.active_producers()[1].current_txn_start_offset, 3);
    }

    #[test]
    fn a_follower_tracks_transactions_and_the_index_as_its_leader() {
        let dir = tempfile::tempdir().expect("dir");
        let leader = sole_leader(&dir.path().join("l"), LogConfig::default());
        two_transactions(&leader);
        let follower =
            Partition::open("t", 0, 2, &dir.path().join("f"), LogConfig::default()).expect("open");
        follower.apply(&PartitionImage {
            leader: 1,
            ..image(1, 1, &[1])
        });
        let (data, _) = leader.read(0, 1 << 20, true, true).expect("read");
        let data = data.read().expect("bytes");
        // Copied with the leader's high watermark at 4: producer 2's
        // transaction from 3 holds the LSO.
        follower.append_replicated(1, &data, 4).expect("replicate");
        assert_eq!(follower.watermarks().last_stable_offset, 3);
        follower.append_replicated(1, &[], 8).expect("hw");
        assert_eq!(follower.watermarks().last_stable_offset, 8);
        let (_, _, aborted) = follower.read_committed(0, 1 << 20, true).expect("read");
        assert_eq!(aborted, [entry(1, 0, 2, 3), entry(2, 3, 7, 8)]);
        // Diverged from 7: producer 2's abort goes, its transaction is
        // open again.
        follower.truncate_to(7).expect("truncate");
        let marks = follower.watermarks();
        assert_eq!((marks.high_watermark, marks.last_stable_offset), (7, 3));
        let (_, _, aborted) = follower.read_committed(0, 1 << 20, true).expect("read");
        assert_eq!(aborted, [entry(1, 0, 2, 3)]);
        follower.reset_to(20).expect("reset");
        assert_eq!(follower.watermarks().last_stable_offset, 20);
        assert!(follower.active_producers().is_empty());
    }

    #[test]
    fn transactions_and_the_index_are_rebuilt_when_the_replica_opens() {
        let dir = tempfile::tempdir().expect("dir");
        let small = LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        };
        let segments = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .expect("dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".txnindex"))
                .collect();
            names.sort();
            names
        };
        let files = {
            let p = sole_leader(dir.path(), small.clone());
            two_transactions(&p);
            // Producer 3 leaves a transaction open.
            txn_append(&p, 3, 0, 1);
            let files: Vec<(String, Vec<u8>)> = segments(dir.path())
                .into_iter()
                .map(|n| {
                    let bytes = std::fs::read(dir.path().join(&n)).expect("read");
                    (n, bytes)
                })
                .collect();
            assert!(files.len() > 2, "several segments: {files:?}");
            files
        };
        // Every index lost: rebuilt the same from the log.
        for (name, _) in &files {
            std::fs::remove_file(dir.path().join(name)).expect("rm");
        }
        let p = sole_leader(dir.path(), small.clone());
        for (name, bytes) in &files {
            assert_eq!(
                &std::fs::read(dir.path().join(name)).expect("rebuilt"),
                bytes,
                "{name}"
            );
        }
        // Producer 3's transaction is still open after the restart.
        assert_eq!(p.watermarks().last_stable_offset, 8);
        assert_eq!(p.active_producers()[2].current_txn_start_offset, 8);
        // Reads go a segment at a time.
        let (_, _, aborted) = p.read_committed(0, 1 << 20, false).expect("read");
        assert_eq!(aborted, [entry(1, 0, 2, 3)]);
        let (_, _, aborted) = p.read_committed(7, 1 << 20, false).expect("read");
        assert_eq!(aborted, [entry(2, 3, 7, 8)]);
        p.append_marker(3, 0, 0, true, 1).expect("commit");
        assert_eq!(p.watermarks().last_stable_offset, 10);
    }

    /// Every `.txnindex` entry in `dir`, file by file.
    fn index_files(dir: &Path) -> Vec<(String, Vec<AbortedTxn>)> {
        let mut out: Vec<(String, Vec<AbortedTxn>)> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txnindex"))
            .map(|p| {
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                let entries =
                    crate::log::txn_index::read(&p.with_extension("log")).expect("readable");
                (name, entries)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn cleaning_carries_the_aborted_transactions_of_the_segments_it_rewrites() {
        use crate::log::cleaner::Throttle;
        use crate::log::offset_map::OffsetMap;
        use crate::log::Cleanup;

        let dir = tempfile::tempdir().expect("dir");
        let compacted = LogConfig {
            segment_bytes: 200,
            cleanup: Cleanup {
                delete: false,
                compact: true,
            },
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        };
        let p = sole_leader(dir.path(), compacted.clone());
        two_transactions(&p);
        for seq in 0..6 {
            p.append(producer_batch(4, 0, 2 * seq, 2, false).freeze(), None)
                .expect("append");
        }
        let all: Vec<AbortedTxn> = index_files(dir.path())
            .into_iter()
            .flat_map(|(_, e)| e)
            .collect();
        assert_eq!(all, [entry(1, 0, 2, 3), entry(2, 3, 7, 8)]);
        let job = p.plan_clean(now_ms()).expect("due");
        let out = job
            .run(
                &mut OffsetMap::with_memory(1 << 20),
                &mut Throttle::new(f64::MAX),
                &mut |g| p.install_cleaned(g),
            )
            .expect("clean")
            .expect("installed");
        p.finish_clean(&out).expect("finish");
        assert!(out.stats.records_removed > 0);
        // Rewritten, the entries are all still there, each in the segment
        // that now holds its marker.
        let after = index_files(dir.path());
        let carried: Vec<AbortedTxn> = after.iter().flat_map(|(_, e)| e.clone()).collect();
        assert_eq!(carried, all);
        let (_, _, aborted) = p.read_committed(7, 1 << 20, false).expect("read");
        assert_eq!(aborted, [entry(2, 3, 7, 8)]);
        // And a reopened replica trusts them as they are.
        drop(p);
        let p = sole_leader(dir.path(), compacted);
        let holding = |files: Vec<(String, Vec<AbortedTxn>)>| {
            files
                .into_iter()
                .filter(|(_, e)| !e.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(holding(index_files(dir.path())), holding(after));
        assert_eq!(
            p.watermarks().last_stable_offset,
            p.watermarks().log_end_offset
        );
    }

    #[test]
    fn an_aborted_record_never_shadows_its_keys_committed_one() {
        use crate::log::cleaner::Throttle;
        use crate::log::offset_map::OffsetMap;
        use crate::log::Cleanup;

        let dir = tempfile::tempdir().expect("dir");
        let p = sole_leader(
            dir.path(),
            LogConfig {
                segment_bytes: 200,
                cleanup: Cleanup {
                    delete: false,
                    compact: true,
                },
                min_cleanable_dirty_ratio: 0.0,
                ..LogConfig::default()
            },
        );
        // Keys k0, k1 committed by producer 1 at 0-1 (marker 2), written
        // again by producer 2 and aborted at 3-4 (marker 5).
        txn_append(&p, 1, 0, 2);
        p.append_marker(1, 0, 0, true, 1).expect("commit");
        txn_append(&p, 2, 0, 2);
        p.append_marker(2, 0, 0, false, 1).expect("abort");
        for seq in 0..6 {
            p.append(
                keyed_batch(4, 0, seq, 1, false, &format!("other{seq}-")).freeze(),
                None,
            )
            .expect("append");
        }
        let job = p.plan_clean(now_ms()).expect("due");
        let out = job
            .run(
                &mut OffsetMap::with_memory(1 << 20),
                &mut Throttle::new(f64::MAX),
                &mut |g| p.install_cleaned(g),
            )
            .expect("clean")
            .expect("installed");
        p.finish_clean(&out).expect("finish");
        let mut kept = Vec::new();
        let mut at = 0;
        while at < 6 {
            let (data, _) = p.read(at, 1 << 20, true, true).expect("read");
            let data = data.read().expect("bytes");
            for h in batch::validate_stored(&data).expect("valid") {
                kept.push((h.base_offset, h.producer_id, h.record_count, h.is_control()));
                at = h.last_offset + 1;
            }
        }
        // The committed records stay; the aborted ones went (producer 2's
        // batch keeps its empty header: its last); markers stay.
        assert_eq!(
            kept,
            [
                (0, 1, 2, false),
                (2, 1, 1, true),
                (3, 2, 0, false),
                (5, 2, 1, true)
            ]
        );
    }

    #[test]
    fn an_open_transaction_is_not_cleaned() {
        use crate::log::Cleanup;

        let dir = tempfile::tempdir().expect("dir");
        let p = sole_leader(
            dir.path(),
            LogConfig {
                segment_bytes: 200,
                cleanup: Cleanup {
                    delete: false,
                    compact: true,
                },
                min_cleanable_dirty_ratio: 0.0,
                ..LogConfig::default()
            },
        );
        p.append(producer_batch(4, 0, 0, 2, false).freeze(), None)
            .expect("append");
        txn_append(&p, 1, 0, 2);
        for seq in 1..6 {
            p.append(producer_batch(4, 0, 2 * seq, 2, false).freeze(), None)
                .expect("append");
        }
        let (c, _) = p.cleanable(now_ms()).expect("compacted");
        assert_eq!(c.first_uncleanable, 2);
        p.append_marker(1, 0, 0, false, 1).expect("abort");
        let (c, _) = p.cleanable(now_ms()).expect("compacted");
        assert!(c.first_uncleanable > 2);
    }

    #[test]
    fn a_torn_active_segment_has_its_index_rebuilt_from_what_is_left() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let p = sole_leader(dir.path(), LogConfig::default());
            two_transactions(&p);
        }
        let log = dir.path().join("00000000000000000000.log");
        // The last marker (producer 2's abort at 7) torn off mid-write.
        let len = std::fs::metadata(&log).expect("log").len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .expect("open");
        f.set_len(len - 10).expect("tear");
        drop(f);
        let p = sole_leader(dir.path(), LogConfig::default());
        assert_eq!(p.watermarks().log_end_offset, 7);
        assert_eq!(
            index_files(dir.path()),
            [(
                "00000000000000000000.txnindex".to_string(),
                vec![entry(1, 0, 2, 3)]
            )]
        );
        // Producer 2's transaction is open again, and its abort lands.
        assert_eq!(p.watermarks().last_stable_offset, 3);
        p.append_marker(2, 0, 0, false, 1).expect("abort");
        let (_, _, aborted) = p.read_committed(0, 1 << 20, false).expect("read");
        assert_eq!(aborted, [entry(1, 0, 2, 3), entry(2, 3, 7, 8)]);
    }

    /// Segments of about two batches: every few appends roll one.
    fn small_segments() -> LogConfig {
        LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        }
    }

    /// Idempotent batches of producer 4 at 0, 2 and 4; producer 1 commits
    /// 6-7 at 8; leader epoch 2 from 9; producer 2's transaction opens at
    /// 9 and stays open; producer 5 aborts 11 at 12; producer 6 writes
    /// 13, 14, 15 outside transactions.
    fn snapshot_workload(p: &Partition) {
        for seq in 0..3 {
            p.append(producer_batch(4, 0, 2 * seq, 2, false).freeze(), None)
                .expect("append");
        }
        assert_eq!(txn_append(p, 1, 0, 2), 6);
        p.append_marker(1, 0, 0, true, 1).expect("commit");
        p.apply(&image(1, 2, &[1]));
        assert_eq!(txn_append(p, 2, 0, 2), 9);
        assert_eq!(txn_append(p, 5, 0, 1), 11);
        p.append_marker(5, 0, 3, false, 1).expect("abort");
        for seq in 0..3 {
            p.append(producer_batch(6, 0, seq, 1, false).freeze(), None)
                .expect("append");
        }
        assert_eq!(p.watermarks().log_end_offset, 16);
    }

    /// What a restart must keep: the producers (DescribeProducers), the
    /// watermarks, and OffsetForLeaderEpoch's answers.
    fn kept_state(p: &Partition) -> (Vec<ActiveProducer>, Watermarks, Vec<(i32, i64)>) {
        let epochs = (0..4).map(|e| p.end_offset_for(e)).collect();
        (p.active_producers(), p.watermarks(), epochs)
    }

    /// The base offsets of the batches of `p` from `from` on.
    fn batch_bases(p: &Partition, from: i64) -> Vec<i64> {
        let mut bases = Vec::new();
        let mut at = from;
        while at < p.watermarks().log_end_offset {
            let (data, _) = p.read(at, 1 << 20, true, true).expect("read");
            let data = data.read().expect("bytes");
            for h in batch::validate_stored(&data).expect("valid") {
                bases.push(h.base_offset);
                at = h.last_offset + 1;
            }
        }
        bases
    }

    /// Copies every file of `from` into a new directory `to`.
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("dir") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }

    #[test]
    fn a_reopened_replica_replays_only_the_batches_after_its_snapshot() {
        let dir = tempfile::tempdir().expect("dir");
        let before = {
            let p = sole_leader(dir.path(), small_segments());
            snapshot_workload(&p);
            kept_state(&p)
            // Dropped without `close`: as after a crash, only the
            // snapshots of segment rolls are there.
        };
        let snapshots = snapshot::list(dir.path()).expect("list");
        assert_eq!(snapshots.len(), 2, "{snapshots:?}");
        let newest = snapshots[1];
        assert!(
            newest > 4,
            "producer 4's last batch is only in the snapshot"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(snapshot::CHECKPOINT)).expect("checkpoint"),
            "0\n2\n1 0\n2 9\n"
        );
        let p = sole_leader(dir.path(), small_segments());
        let all = batch_bases(&p, 0);
        let after = batch_bases(&p, newest);
        assert!(after.len() < all.len());
        assert_eq!(p.replayed_at_open(), after.len());
        p.apply(&image(1, 2, &[1]));
        assert_eq!(kept_state(&p), before);
        // Producer 2's transaction is still open at 9 ...
        let open = p.active_producers()[1];
        assert_eq!((open.producer_id, open.current_txn_start_offset), (2, 9));
        assert_eq!(p.watermarks().last_stable_offset, 9);
        // ... a retry of producer 4's last batch gets its first offset ...
        let retry = p
            .append(producer_batch(4, 0, 4, 2, false).freeze(), None)
            .expect("retry");
        assert_eq!(retry.base_offset, 4);
        assert_eq!(p.watermarks().log_end_offset, 16);
        // ... and producer 4 goes on where it was.
        assert!(matches!(
            p.append(producer_batch(4, 0, 7, 1, false).freeze(), None),
            Err(PartitionError::OutOfOrderSequence { producer_id: 4 })
        ));
        p.append(producer_batch(4, 0, 6, 1, false).freeze(), None)
            .expect("next");
        p.append_marker(2, 0, 0, true, 1).expect("commit");
        let marks = p.watermarks();
        assert_eq!(marks.last_stable_offset, marks.log_end_offset);
        // A clean shutdown snapshots the log end: nothing to replay.
        p.close().expect("close");
        let end = marks.log_end_offset;
        assert_eq!(snapshot::list(dir.path()).expect("list").last(), Some(&end));
        let after_close = kept_state(&p);
        drop(p);
        let p = sole_leader(dir.path(), small_segments());
        assert_eq!(p.replayed_at_open(), 0);
        assert_eq!(kept_state(&p), after_close);
    }

    #[test]
    fn a_damaged_snapshot_falls_back_to_an_older_one_or_the_whole_log() {
        let dir = tempfile::tempdir().expect("dir");
        let built = dir.path().join("built");
        let before = {
            let p = sole_leader(&built, small_segments());
            snapshot_workload(&p);
            kept_state(&p)
        };
        let snapshots = snapshot::list(&built).expect("list");
        let damage = |dir: &Path, offset: i64| {
            let path = dir.join(snapshot::file_name(offset));
            let mut bytes = std::fs::read(&path).expect("read");
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
            std::fs::write(&path, bytes).expect("write");
        };
        // (snapshots damaged, the one the replay starts from)
        let cases = [
            (vec![snapshots[1]], Some(snapshots[0])),
            (snapshots.clone(), None),
        ];
        for (i, (damaged, from)) in cases.into_iter().enumerate() {
            let copy = dir.path().join(format!("case{i}"));
            copy_dir(&built, &copy);
            for offset in &damaged {
                damage(&copy, *offset);
            }
            let p = sole_leader(&copy, small_segments());
            assert_eq!(
                p.replayed_at_open(),
                batch_bases(&p, from.unwrap_or(0)).len(),
                "{damaged:?}"
            );
            assert_eq!(kept_state(&p), before, "{damaged:?}");
            // The damaged ones are gone.
            let left = snapshot::list(&copy).expect("list");
            assert!(damaged.iter().all(|d| !left.contains(d)), "{left:?}");
        }
        // A checkpoint that cannot be read: the whole log, the same state.
        let copy = dir.path().join("checkpoint");
        copy_dir(&built, &copy);
        std::fs::write(copy.join(snapshot::CHECKPOINT), "0\n5\n").expect("write");
        let p = sole_leader(&copy, small_segments());
        assert_eq!(p.replayed_at_open(), batch_bases(&p, 0).len());
        assert_eq!(kept_state(&p), before);
    }

    /// A replica on broker 2 following broker 1 in leader epoch 2.
    fn follower_of_one(dir: &Path) -> Partition {
        let p = Partition::open("t", 0, 2, dir, small_segments()).expect("open");
        p.apply(&PartitionImage {
            leader: 1,
            ..image(1, 2, &[1, 2])
        });
        p
    }

    /// Copies `leader`'s batches that end below `upto` to `follower`.
    fn copy_log(leader: &Partition, follower: &Partition, upto: i64) {
        loop {
            let at = follower.watermarks().log_end_offset;
            let marks = leader.watermarks();
            let slice = leader.lock().log.slice(at, 1 << 20, true, upto);
            let data = slice.expect("slice").read().expect("read");
            if data.is_empty() {
                return;
            }
            follower
                .append_replicated(2, &data, marks.high_watermark)
                .expect("replicate");
        }
    }

    #[test]
    fn truncating_below_the_newest_snapshot_removes_it_and_rebuilds_the_state() {
        let dir = tempfile::tempdir().expect("dir");
        let leader = sole_leader(&dir.path().join("l"), small_segments());
        snapshot_workload(&leader);
        let f_dir = dir.path().join("f");
        let follower = follower_of_one(&f_dir);
        // One batch at a time, as the leader's log rolled.
        for end in batch_bases(&leader, 0).into_iter().skip(1).chain([16]) {
            copy_log(&leader, &follower, end);
        }
        assert_eq!(kept_state(&follower).2, kept_state(&leader).2);
        // The follower snapshotted its own rolls.
        let snapshots = snapshot::list(&f_dir).expect("list");
        assert_eq!(snapshots.len(), 2, "{snapshots:?}");
        let newest = snapshots[1];
        let to = *batch_bases(&follower, 0)
            .iter()
            .rfind(|b| **b < newest)
            .expect("a batch below the newest snapshot");
        follower.truncate_to(to).expect("truncate");
        assert!(
            snapshot::list(&f_dir)
                .expect("list")
                .iter()
                .all(|s| *s <= to),
            "truncated at {to}"
        );
        // The same as a replica that only ever copied the batches below.
        let reference = follower_of_one(&dir.path().join("r"));
        copy_log(&leader, &reference, to);
        assert_eq!(kept_state(&follower), kept_state(&reference));
        drop(follower);
        let follower = follower_of_one(&f_dir);
        assert!(follower.replayed_at_open() < batch_bases(&follower, 0).len());
        // Reopened, the high watermark starts over; the rest is the same.
        let (producers, _, epochs) = kept_state(&reference);
        let (reopened, _, reopened_epochs) = kept_state(&follower);
        assert_eq!((reopened, reopened_epochs), (producers, epochs));
        // And the rest of the leader's log follows as before.
        copy_log(&leader, &follower, 16);
        assert_eq!(
            kept_state(&follower).0,
            kept_state(&leader).0,
            "producers after catching up"
        );
        follower.reset_to(16).expect("reset");
        assert_eq!(snapshot::list(&f_dir).expect("list"), Vec::<i64>::new());
        assert_eq!(
            std::fs::read_to_string(f_dir.join(snapshot::CHECKPOINT)).expect("checkpoint"),
            "0\n0\n"
        );
    }

    /// The size of the newest segment file in `dir`.
    fn active_segment(dir: &Path) -> (std::path::PathBuf, u64) {
        let path = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .max()
            .expect("a segment");
        let len = std::fs::metadata(&path).expect("size").len();
        (path, len)
    }

    /// Every entry of the `.txnindex` files in `dir`, in offset order.
    fn all_aborted(dir: &Path) -> Vec<AbortedTxn> {
        index_files(dir).into_iter().flat_map(|(_, e)| e).collect()
    }

    #[test]
    fn a_shutdown_snapshot_is_used_only_with_the_index_it_left() {
        let dir = tempfile::tempdir().expect("dir");
        let shut_down = {
            let p = sole_leader(dir.path(), small_segments());
            snapshot_workload(&p);
            p.close().expect("close");
            kept_state(&p)
        };
        let roll = snapshot::list(dir.path()).expect("list")[0];
        let (active, len) = active_segment(dir.path());
        let aborted_before = {
            // Large segments from here: no roll, no snapshot but the
            // shutdown's and the one it keeps.
            let p = sole_leader(dir.path(), LogConfig::default());
            assert_eq!(p.replayed_at_open(), 0);
            assert_eq!(kept_state(&p), shut_down);
            let aborted = all_aborted(dir.path());
            assert_eq!(aborted, [entry(5, 11, 12, 9)]);
            // Producer 7 aborts at 17, and the broker dies; the disk keeps
            // the abort's `.txnindex` entry but loses the records.
            assert_eq!(txn_append(&p, 7, 0, 1), 16);
            p.append_marker(7, 0, 0, false, 1).expect("abort");
            aborted
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&active)
            .expect("open");
        f.set_len(len).expect("lose the tail");
        drop(f);
        // The log ends at the shutdown's snapshot again, but the index
        // names a marker it does not hold: the replay starts below the
        // active segment and rebuilds its index.
        let p = sole_leader(dir.path(), LogConfig::default());
        assert_eq!(p.replayed_at_open(), batch_bases(&p, roll).len());
        assert!(p.replayed_at_open() > 0);
        assert_eq!(kept_state(&p), shut_down);
        assert_eq!(all_aborted(dir.path()), aborted_before);
        // Records after the shutdown's snapshot, kept this time: it is
        // passed over for the one at the active segment's base.
        assert_eq!(txn_append(&p, 7, 0, 1), 16);
        p.append_marker(7, 0, 0, false, 1).expect("abort");
        let after = kept_state(&p);
        drop(p);
        let p = sole_leader(dir.path(), LogConfig::default());
        assert_eq!(p.replayed_at_open(), batch_bases(&p, roll).len());
        assert_eq!(kept_state(&p), after);
        assert_eq!(
            all_aborted(dir.path()),
            [entry(5, 11, 12, 9), entry(7, 16, 17, 9)]
        );
    }
}
