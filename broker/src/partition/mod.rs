//! One partition replica on this broker: its log, its producers' sequence
//! state, its leader-epoch history, and its role: leader (tracking its
//! followers and the high watermark) or follower (copying its leader).
//! - [`epochs`] is the log's leader-epoch history (divergence,
//!   OffsetForLeaderEpoch);
//! - [`leader`] is the leader's bookkeeping of its followers (pure);
//! - [`producer_state`] de-duplicates idempotent producers' batches.

pub mod epochs;
pub mod leader;
pub mod producer_state;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::log::cleaner::{CleanJob, CleanOutput, Cleanable, CleanedGroup};
use crate::log::{batch, Log, LogConfig, LogError};
use crate::metadata::image::{PartitionImage, NO_LEADER};
use epochs::{EpochHistory, ReplicaFetch};
use leader::{IsrChange, LeaderState};
use producer_state::{BatchIdentity, Check, ProducerStates};

/// Errors of a partition operation, each mapping to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// From the log (I/O, corrupt batch, too large, out of range).
    #[error(transparent)]
    Log(#[from] LogError),
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
    /// Bumped whenever something a waiting request may wait for changes:
    /// the log end, the high watermark, the role, the leader epoch, the ISR,
    /// or the replica leaving this broker. Held produces and long-polling
    /// fetches of this partition sleep on it.
    changes: watch::Sender<u64>,
}

impl Partition {
    /// Opens (recovering if needed) the partition's log in `dir` and rebuilds
    /// producer state from it.
    pub fn open(
        topic: &str,
        index: i32,
        me: i32,
        dir: &Path,
        config: LogConfig,
    ) -> Result<Self, PartitionError> {
        let log = Log::open(dir, config)?;
        let (producers, epochs) = rebuild_state(&log)?;
        Ok(Partition {
            topic: topic.to_string(),
            index,
            me,
            state: Mutex::new(State {
                log,
                producers,
                epochs,
                role: Role::Follower {
                    leader: NO_LEADER,
                    epoch: -1,
                    high_watermark: 0,
                },
            }),
            changes: watch::channel(0).0,
        })
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
                state.epochs.assign(image.leader_epoch, log_end);
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
    /// retries.
    pub fn append(&self, records: &mut [u8]) -> Result<Appended, PartitionError> {
        // The header alone decides de-duplication; the log validates the
        // whole batch (CRC, records) once, when it is really appended.
        let h = &batch::parse_header(records, 0).map_err(LogError::from)?;
        if h.size != records.len() {
            return Err(PartitionError::ExtraBytes(records.len() - h.size));
        }
        let id = BatchIdentity {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            record_count: h.record_count,
        };
        let mut state = self.lock();
        check_leader(&state, -1)?;
        let epoch = match &state.role {
            Role::Leader(l) => l.epoch,
            Role::Follower { .. } => -1,
        };
        let (base_offset, log_append_time) = match state.producers.check(&id) {
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
            Check::Append => {
                let info = state.log.append(records, epoch)?;
                state.producers.record(&id, info.base_offset);
                (info.base_offset, info.log_append_time)
            }
        };
        let end_offset = base_offset + i64::from(h.record_count.max(1));
        let log_start_offset = state.log.log_start_offset();
        let log_end = state.log.log_end_offset();
        if let Role::Leader(l) = &mut state.role {
            l.advance(log_end);
        }
        drop(state);
        self.changed();
        Ok(Appended {
            base_offset,
            end_offset,
            log_start_offset,
            leader_epoch: epoch,
            log_append_time,
        })
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
            let headers = state.log.append_replicated(records)?;
            let State {
                producers, epochs, ..
            } = &mut *state;
            for h in &headers {
                note_batch(producers, epochs, h);
            }
        }
        let log_end = state.log.log_end_offset();
        let hw_before = high_watermark(&state);
        if let Role::Follower { high_watermark, .. } = &mut state.role {
            *high_watermark = leader_high_watermark.min(log_end).max(*high_watermark);
        }
        let moved = high_watermark(&state) != hw_before;
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
        state.epochs.truncate_from(offset);
        let before = state.log.log_end_offset();
        if offset >= before {
            return Ok(());
        }
        state.log.truncate_to(offset)?;
        let (producers, _) = rebuild_state(&state.log)?;
        state.producers = producers;
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
        state.log.reset_to(offset)?;
        state.epochs = EpochHistory::default();
        state.producers = ProducerStates::default();
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

    /// Reads whole batches from `offset`, at most `max_bytes` unless the
    /// first batch alone is larger and `min_one` is set. Consumers
    /// (`replica` false) read up to the high watermark, followers to the
    /// log end.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        replica: bool,
    ) -> Result<(Bytes, Watermarks), PartitionError> {
        let state = self.lock();
        let marks = watermarks(&state);
        let data = state.log.read(offset, max_bytes, min_one)?;
        let data = if replica {
            data
        } else {
            below(data, marks.high_watermark)
        };
        Ok((data, marks))
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
        state.epochs.truncate_before(start);
        Ok(start)
    }

    /// Applies retention below the high watermark; returns the number of
    /// segments removed.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, PartitionError> {
        let mut state = self.lock();
        let hw = high_watermark(&state);
        let deleted = state.log.enforce_retention(now_ms, hw)?;
        let start = state.log.log_start_offset();
        state.epochs.truncate_before(start);
        Ok(deleted)
    }

    /// How dirty the log is, if it is compacted, and the
    /// `min.cleanable.dirty.ratio` it is cleaned at.
    pub fn cleanable(&self, now_ms: i64) -> Option<(Cleanable, f64)> {
        let state = self.lock();
        let c = state.log.cleanable(now_ms, high_watermark(&state))?;
        Some((c, state.log.config().min_cleanable_dirty_ratio))
    }

    /// A cleaning of the log, if one is due (see `log::cleaner`).
    pub fn plan_clean(&self, now_ms: i64) -> Option<CleanJob> {
        let state = self.lock();
        let last = state.producers.last_batches();
        state.log.plan_clean(now_ms, high_watermark(&state), last)
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
    Watermarks {
        high_watermark: high_watermark(state),
        log_start_offset: state.log.log_start_offset(),
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

/// The whole batches of `data` that end below `limit`.
fn below(data: Bytes, limit: i64) -> Bytes {
    let mut pos = 0;
    while pos < data.len() {
        match batch::parse_header(&data, pos) {
            Ok(h) if h.last_offset < limit => pos += h.size,
            _ => break,
        }
    }
    data.slice(..pos)
}

/// Records a stored batch's producer sequence and leader epoch.
fn note_batch(producers: &mut ProducerStates, epochs: &mut EpochHistory, h: &batch::BatchHeader) {
    epochs.assign(h.leader_epoch, h.base_offset);
    producers.record(
        &BatchIdentity {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            // The sequences the batch took when written: a compacted batch
            // keeps its offsets but may have lost records.
            record_count: h.offset_count() as i32,
        },
        h.base_offset,
    );
}

/// Replays the batch headers of the log so idempotent producers that retry
/// across a broker restart are still de-duplicated, and so the leader-epoch
/// history is known.
fn rebuild_state(log: &Log) -> Result<(ProducerStates, EpochHistory), PartitionError> {
    const CHUNK: usize = 1 << 20;
    let mut states = ProducerStates::default();
    let mut epochs = EpochHistory::default();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, CHUNK, true)?;
        let headers = batch::validate_stored(&data).map_err(LogError::from)?;
        let Some(last) = headers.last() else { break };
        for h in &headers {
            note_batch(&mut states, &mut epochs, h);
        }
        offset = last.last_offset + 1;
    }
    Ok((states, epochs))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let mut batch = encode(&["a", "b"], &[1, 2], Compression::None);
        p.append(&mut batch).expect("append")
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
}
