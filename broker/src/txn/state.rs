//! One transactional id's state and the transitions Kafka's coordinator
//! allows, as pure functions: each takes the current state and a request
//! and answers with the next state to write to the transaction log, or the
//! error the client gets. The coordinator writes, then applies.
//!
//! Both of Kafka's transaction protocols are served, chosen per request
//! as Kafka does: before KIP-890 part 2 (`transaction.version` below 2) a
//! producer's epoch is bumped by InitProducerId and by the coordinator
//! fencing it; from it, every EndTxn bumps the epoch too (so a late batch
//! of an ended transaction is fenced), and an exhausted epoch moves the
//! id to a new producer id when the transaction completes.

use std::collections::BTreeSet;

use super::error::TxnError;

/// Kafka's transaction states, with their ids in the transaction log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction under way (a new id, or after InitProducerId).
    Empty = 0,
    /// Partitions were added; records may be written.
    Ongoing = 1,
    /// EndTxn(commit) is written: markers go out.
    PrepareCommit = 2,
    /// EndTxn(abort), a timeout or a fencing is written: markers go out.
    PrepareAbort = 3,
    /// Every partition has its commit marker.
    CompleteCommit = 4,
    /// Every partition has its abort marker.
    CompleteAbort = 5,
    /// Being removed (expired).
    Dead = 6,
    /// Kafka's transient state while fencing; never written by Gregor.
    PrepareEpochFence = 7,
}

impl TxnState {
    /// The state of a stored id.
    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions give it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether markers are being written (a commit or an abort decided).
    pub fn preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// Whether no transaction is under way.
    fn idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// A transactional id's state, as the transaction log stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer id the transactional id holds.
    pub producer_id: i64,
    /// Its current epoch (-1: none handed out yet).
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId gets
    /// the same answer (KIP-360); -1 when unknown. Not stored.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// Where the transaction stands.
    pub state: TxnState,
    /// The partitions in the transaction, as (topic, partition).
    pub partitions: BTreeSet<(String, i32)>,
    /// When the transaction began (its first partition), -1 if none.
    pub start_ms: i64,
    /// When the state last changed.
    pub last_update_ms: i64,
    /// The producer id before the last move to a new one (-1: none), so
    /// a retried EndTxn across the move is recognised.
    pub previous_producer_id: i64,
    /// The producer id the id moves to when the transaction being ended
    /// completes (its epoch was exhausted), else -1.
    pub next_producer_id: i64,
    /// The transaction version the producer spoke when its transaction
    /// began (2: the epoch is bumped by every EndTxn).
    pub client_version: i16,
}

/// Epochs at or above this are exhausted: the id gets a new producer id.
const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

/// The first transaction version whose EndTxn bumps the epoch (KIP-890
/// part 2): EndTxn, TxnOffsetCommit and AddPartitionsToTxn from version
/// 5 and Produce from 12 speak it.
pub const EPOCH_BUMP_VERSION: i16 = 2;

/// What EndTxn does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPlan {
    /// The outcome is already written (a retry): answer with the id's
    /// current producer.
    Done(ProducerIdEpoch),
    /// Write this PrepareCommit or PrepareAbort state; the producer
    /// writes as [`TxnMetadata::answer`] says from now on.
    Write(TxnMetadata),
    /// The epoch is exhausted: allocate a producer id and plan again
    /// with it.
    NewProducerId,
}

/// A producer's id and epoch, as a request names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdEpoch {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// What InitProducerId does with an existing transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPlan {
    /// Write this state (the epoch bumped, or kept for a retry) and answer
    /// with its producer id and epoch.
    Write(TxnMetadata),
    /// The epochs of the producer id are used up: allocate a new producer
    /// id, then write [`rotated`]'s state.
    NewProducerId,
    /// A transaction is under way: abort it under this fencing state
    /// (PrepareAbort, epoch bumped), and answer CONCURRENT_TRANSACTIONS so
    /// the producer retries once the abort is complete.
    FenceOngoing(TxnMetadata),
}

impl TxnMetadata {
    /// A new transactional id holding `producer_id`, no epoch yet.
    pub fn new(producer_id: i64, timeout_ms: i32, now: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            producer_epoch: -1,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            previous_producer_id: -1,
            next_producer_id: -1,
            client_version: 0,
        }
    }

    /// InitProducerId (Kafka's `prepareInitProducerIdTransit`). `expected`
    /// is the id and epoch a producer recovering from an error names
    /// (KIP-360); `pending`: a write of this id is under way.
    pub fn plan_init(
        &self,
        timeout_ms: i32,
        expected: Option<ProducerIdEpoch>,
        pending: bool,
        now: i64,
    ) -> Result<InitPlan, TxnError> {
        if pending {
            return Err(TxnError::Concurrent);
        }
        let valid_id = |e: &ProducerIdEpoch| self.producer_epoch == -1 || e.id == self.producer_id;
        if !expected.as_ref().is_none_or(valid_id) {
            return Err(TxnError::ProducerFenced);
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(TxnError::Concurrent),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                if self.producer_epoch >= EPOCH_EXHAUSTED
                    && expected.is_none_or(|e| e.epoch == self.producer_epoch)
                {
                    return Ok(InitPlan::NewProducerId);
                }
                let (epoch, last) = match expected {
                    None => (self.producer_epoch + 1, -1),
                    Some(e) if self.producer_epoch == -1 || e.epoch == self.producer_epoch => {
                        (self.producer_epoch + 1, self.producer_epoch)
                    }
                    // A retry of a bump whose answer was lost.
                    Some(e) if e.epoch == self.last_producer_epoch => {
                        (self.producer_epoch, self.last_producer_epoch)
                    }
                    Some(_) => return Err(TxnError::ProducerFenced),
                };
                Ok(InitPlan::Write(TxnMetadata {
                    producer_epoch: epoch,
                    last_producer_epoch: last,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now,
                    ..self.clone()
                }))
            }
            TxnState::Ongoing => Ok(InitPlan::FenceOngoing(self.fence_and_abort(now))),
            TxnState::Dead | TxnState::PrepareEpochFence => {
                Err(TxnError::InvalidState(self.state.name()))
            }
        }
    }

    /// The state after InitProducerId gave the id a new producer id.
    pub fn rotated(
        &self,
        producer_id: i64,
        timeout_ms: i32,
        expected: Option<ProducerIdEpoch>,
        now: i64,
    ) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: if expected.is_some() {
                self.producer_epoch
            } else {
                -1
            },
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            previous_producer_id: self.producer_id,
            next_producer_id: -1,
            client_version: self.client_version,
        }
    }

    /// The ongoing transaction aborted under a bumped epoch, so the
    /// producer that began it is fenced (InitProducerId of a newer one, or
    /// the transaction timed out).
    pub fn fence_and_abort(&self, now: i64) -> TxnMetadata {
        TxnMetadata {
            producer_epoch: self.producer_epoch.saturating_add(1),
            last_producer_epoch: -1,
            state: TxnState::PrepareAbort,
            last_update_ms: now,
            ..self.clone()
        }
    }

    /// Checks a request of the producer `producer` against this state, in
    /// Kafka's order: the id, the epoch, then a write under way.
    fn check_producer(&self, producer: ProducerIdEpoch, pending: bool) -> Result<(), TxnError> {
        if producer.id != self.producer_id {
            Err(TxnError::InvalidProducerIdMapping)
        } else if producer.epoch != self.producer_epoch {
            Err(TxnError::ProducerFenced)
        } else if pending {
            Err(TxnError::Concurrent)
        } else {
            Ok(())
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets
    /// partition; from transaction version 2, a partition leader or group
    /// coordinator adding for the producer): the state to write, or
    /// `None` when the partitions are already in the transaction.
    /// `version`: the transaction version of the request.
    pub fn add_partitions(
        &self,
        producer: ProducerIdEpoch,
        partitions: &BTreeSet<(String, i32)>,
        pending: bool,
        now: i64,
        version: i16,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        self.check_producer(producer, pending)?;
        if self.state.preparing() {
            return Err(TxnError::Concurrent);
        }
        if self.state == TxnState::Ongoing && partitions.is_subset(&self.partitions) {
            return Ok(None);
        }
        let start_ms = if self.state.idle() {
            now
        } else {
            self.start_ms
        };
        Ok(Some(TxnMetadata {
            state: TxnState::Ongoing,
            partitions: self.partitions.union(partitions).cloned().collect(),
            start_ms,
            last_update_ms: now,
            client_version: version,
            ..self.clone()
        }))
    }

    /// Whether a partition may be written to in the transaction (KIP-890
    /// part 1 verification): `Ok(true)` when it was added.
    pub fn verify_partition(
        &self,
        producer: ProducerIdEpoch,
        partition: &(String, i32),
    ) -> Result<bool, TxnError> {
        self.check_producer(producer, false)?;
        if self.state.preparing() {
            return Err(TxnError::Concurrent);
        }
        Ok(self.partitions.contains(partition))
    }

    /// EndTxn from the producer (Kafka's `endTransaction`), in
    /// `version` of the transaction protocol; `fresh`: a producer id
    /// allocated for an exhausted epoch. From version 2 the prepared state
    /// carries the bumped epoch, and a retry names the epoch before it;
    /// an abort with no transaction under way still bumps the epoch (the
    /// producer cannot know whether a leader added a partition for it).
    pub fn end(
        &self,
        producer: ProducerIdEpoch,
        commit: bool,
        pending: bool,
        now: i64,
        version: i16,
        fresh: Option<i64>,
    ) -> Result<EndPlan, TxnError> {
        use TxnState::*;
        let bumping = self.client_version >= EPOCH_BUMP_VERSION;
        let retry_on_bump = bumping && producer.epoch.checked_add(1) == Some(self.producer_epoch);
        let retry_on_rotation = bumping
            && self.previous_producer_id == producer.id
            && producer.epoch == EPOCH_EXHAUSTED
            && self.producer_epoch == 0;
        let retry = retry_on_bump || retry_on_rotation;
        let same_epoch = producer.epoch == self.producer_epoch;
        let valid_epoch = match self.state {
            _ if !bumping => same_epoch,
            PrepareCommit | PrepareAbort => retry_on_bump,
            CompleteCommit | CompleteAbort => retry || same_epoch,
            _ => same_epoch,
        };
        if producer.id != self.producer_id && !retry_on_rotation {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if pending {
            return Err(TxnError::Concurrent);
        }
        let invalid = Err(TxnError::InvalidState(self.state.name()));
        let done = Ok(EndPlan::Done(ProducerIdEpoch {
            id: self.producer_id,
            epoch: self.producer_epoch,
        }));
        let empty_abort = !commit && version >= EPOCH_BUMP_VERSION;
        match self.state {
            Ongoing => self.prepare(commit, now, version, fresh),
            CompleteCommit if commit => {
                if retry || !bumping {
                    done
                } else {
                    invalid
                }
            }
            CompleteAbort if !commit && (retry || !bumping) => done,
            Empty | CompleteCommit | CompleteAbort if empty_abort && !retry => {
                self.prepare(false, now, version, fresh)
            }
            PrepareCommit if commit => Err(TxnError::Concurrent),
            PrepareAbort if !commit => Err(TxnError::Concurrent),
            _ => invalid,
        }
    }

    /// The PrepareCommit or PrepareAbort state of EndTxn; from version 2
    /// under a bumped epoch, moving to a new producer id once complete
    /// when the epoch is used up.
    fn prepare(
        &self,
        commit: bool,
        now: i64,
        version: i16,
        fresh: Option<i64>,
    ) -> Result<EndPlan, TxnError> {
        let bump = version >= EPOCH_BUMP_VERSION;
        let next_producer_id = match fresh {
            _ if !bump || self.producer_epoch < EPOCH_EXHAUSTED => -1,
            Some(id) => id,
            None => return Ok(EndPlan::NewProducerId),
        };
        Ok(EndPlan::Write(TxnMetadata {
            state: if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            },
            producer_epoch: if bump {
                self.producer_epoch + 1
            } else {
                self.producer_epoch
            },
            last_producer_epoch: if bump {
                self.producer_epoch
            } else {
                self.last_producer_epoch
            },
            next_producer_id,
            client_version: version,
            start_ms: if self.state == TxnState::Ongoing {
                self.start_ms
            } else {
                now
            },
            last_update_ms: now,
            ..self.clone()
        }))
    }

    /// The producer a prepared state hands to its producer: the one its
    /// completion holds.
    pub fn answer(&self) -> ProducerIdEpoch {
        if self.next_producer_id >= 0 {
            ProducerIdEpoch {
                id: self.next_producer_id,
                epoch: 0,
            }
        } else {
            ProducerIdEpoch {
                id: self.producer_id,
                epoch: self.producer_epoch,
            }
        }
    }

    /// The state once every partition has its marker: complete, with no
    /// partitions. `None` if this state is not a prepared one.
    pub fn complete(&self, now: i64) -> Option<TxnMetadata> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let next = self.answer();
        let rotated = next.id != self.producer_id;
        Some(TxnMetadata {
            state,
            producer_id: next.id,
            producer_epoch: next.epoch,
            last_producer_epoch: self.producer_epoch,
            previous_producer_id: if rotated {
                self.producer_id
            } else {
                self.previous_producer_id
            },
            next_producer_id: -1,
            partitions: BTreeSet::new(),
            last_update_ms: now,
            ..self.clone()
        })
    }

    /// Whether the transaction under way outlived its timeout at `now`.
    pub fn timed_out(&self, now: i64) -> bool {
        self.state == TxnState::Ongoing && self.start_ms + i64::from(self.timeout_ms) < now
    }

    /// Whether the id, idle since its last use, may be forgotten at `now`.
    pub fn expired(&self, now: i64, expiration_ms: i64) -> bool {
        self.state.idle() && self.last_update_ms + expiration_ms <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn meta(state: TxnState, epoch: i16, last: i16) -> TxnMetadata {
        TxnMetadata {
            producer_id: 10,
            producer_epoch: epoch,
            last_producer_epoch: last,
            timeout_ms: 60_000,
            state,
            // Only a transaction under way or being ended has partitions.
            partitions: if state == TxnState::Ongoing || state.preparing() {
                BTreeSet::from([("t".to_string(), 0)])
            } else {
                BTreeSet::new()
            },
            start_ms: 500,
            last_update_ms: 600,
            previous_producer_id: -1,
            next_producer_id: -1,
            client_version: 0,
        }
    }

    fn pe(id: i64, epoch: i16) -> Option<ProducerIdEpoch> {
        Some(ProducerIdEpoch { id, epoch })
    }

    /// (epoch, last epoch) written, or the plan's kind.
    fn outcome(r: Result<InitPlan, TxnError>) -> Result<String, TxnError> {
        r.map(|p| match p {
            InitPlan::Write(m) => format!("write {} {}", m.producer_epoch, m.last_producer_epoch),
            InitPlan::NewProducerId => "new id".into(),
            InitPlan::FenceOngoing(m) => format!("fence {} {:?}", m.producer_epoch, m.state),
        })
    }

    #[test]
    fn init_producer_id_table() {
        use TxnState::*;
        let ok = |s: &str| Ok(s.to_string());
        type Case = (
            TxnMetadata,
            Option<ProducerIdEpoch>,
            bool,
            Result<String, TxnError>,
        );
        let cases: Vec<Case> = vec![
            // A new id's first epoch.
            (meta(Empty, -1, -1), None, false, ok("write 0 -1")),
            (meta(CompleteCommit, 3, 2), None, false, ok("write 4 -1")),
            (meta(CompleteAbort, 3, -1), None, false, ok("write 4 -1")),
            // KIP-360: the producer names its current epoch.
            (meta(Empty, 3, -1), pe(10, 3), false, ok("write 4 3")),
            // A retry of that bump, whose answer was lost.
            (meta(Empty, 4, 3), pe(10, 3), false, ok("write 4 3")),
            (
                meta(Empty, 4, 3),
                pe(10, 1),
                false,
                Err(TxnError::ProducerFenced),
            ),
            (
                meta(Empty, 4, 3),
                pe(99, 4),
                false,
                Err(TxnError::ProducerFenced),
            ),
            (
                meta(Ongoing, 4, -1),
                None,
                false,
                ok("fence 5 PrepareAbort"),
            ),
            (
                meta(PrepareCommit, 4, -1),
                None,
                false,
                Err(TxnError::Concurrent),
            ),
            (
                meta(PrepareAbort, 4, -1),
                None,
                false,
                Err(TxnError::Concurrent),
            ),
            (meta(Empty, 4, -1), None, true, Err(TxnError::Concurrent)),
            (
                meta(CompleteCommit, i16::MAX - 1, -1),
                None,
                false,
                ok("new id"),
            ),
        ];
        for (m, expected, pending, want) in cases {
            let got = outcome(m.plan_init(1000, expected, pending, NOW));
            assert_eq!(
                got, want,
                "{:?} epoch {} {expected:?}",
                m.state, m.producer_epoch
            );
        }
    }

    #[test]
    fn init_resets_the_transaction_and_takes_the_new_timeout() {
        let m = meta(TxnState::CompleteCommit, 1, -1);
        let InitPlan::Write(next) = m.plan_init(5000, None, false, NOW).expect("plan") else {
            panic!("expected a write");
        };
        assert_eq!(next.state, TxnState::Empty);
        assert!(next.partitions.is_empty());
        assert_eq!(
            (next.timeout_ms, next.start_ms, next.last_update_ms),
            (5000, -1, NOW)
        );
        let r = m.rotated(77, 5000, None, NOW);
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.state),
            (77, 0, TxnState::Empty)
        );
    }

    #[test]
    fn add_partitions_table() {
        use TxnState::*;
        let parts = |ps: &[i32]| -> BTreeSet<(String, i32)> {
            ps.iter().map(|p| ("t".to_string(), *p)).collect()
        };
        // (state, producer, pending, partitions, outcome: partitions after, start)
        type Want = Result<Option<(Vec<i32>, i64)>, TxnError>;
        type Case = (TxnState, Option<ProducerIdEpoch>, bool, Vec<i32>, Want);
        let cases: Vec<Case> = vec![
            (Empty, pe(10, 2), false, vec![1], Ok(Some((vec![1], NOW)))),
            (
                CompleteAbort,
                pe(10, 2),
                false,
                vec![1],
                Ok(Some((vec![1], NOW))),
            ),
            (
                Ongoing,
                pe(10, 2),
                false,
                vec![1],
                Ok(Some((vec![0, 1], 500))),
            ),
            (Ongoing, pe(10, 2), false, vec![0], Ok(None)),
            (
                Ongoing,
                pe(11, 2),
                false,
                vec![1],
                Err(TxnError::InvalidProducerIdMapping),
            ),
            (
                Ongoing,
                pe(10, 1),
                false,
                vec![1],
                Err(TxnError::ProducerFenced),
            ),
            (
                Ongoing,
                pe(10, 3),
                false,
                vec![1],
                Err(TxnError::ProducerFenced),
            ),
            (Ongoing, pe(10, 2), true, vec![1], Err(TxnError::Concurrent)),
            (
                PrepareCommit,
                pe(10, 2),
                false,
                vec![1],
                Err(TxnError::Concurrent),
            ),
            // The id and epoch come before the pending write.
            (
                Ongoing,
                pe(10, 1),
                true,
                vec![1],
                Err(TxnError::ProducerFenced),
            ),
        ];
        for (state, producer, pending, add, want) in cases {
            let m = meta(state, 2, -1);
            let got = m
                .add_partitions(producer.expect("producer"), &parts(&add), pending, NOW, 0)
                .map(|o| {
                    o.map(|n| {
                        assert_eq!(n.state, Ongoing);
                        (n.partitions.iter().map(|(_, p)| *p).collect(), n.start_ms)
                    })
                });
            assert_eq!(
                got, want,
                "{state:?} {producer:?} pending {pending} add {add:?}"
            );
        }
    }

    #[test]
    fn end_txn_table() {
        use TxnState::*;
        let me = pe(10, 2).expect("producer");
        // (state, commit, outcome: the state to write)
        let cases: Vec<(TxnState, bool, Result<Option<TxnState>, TxnError>)> = vec![
            (Ongoing, true, Ok(Some(PrepareCommit))),
            (Ongoing, false, Ok(Some(PrepareAbort))),
            (CompleteCommit, true, Ok(None)),
            (
                CompleteCommit,
                false,
                Err(TxnError::InvalidState("CompleteCommit")),
            ),
            (CompleteAbort, false, Ok(None)),
            (
                CompleteAbort,
                true,
                Err(TxnError::InvalidState("CompleteAbort")),
            ),
            (PrepareCommit, true, Err(TxnError::Concurrent)),
            (
                PrepareCommit,
                false,
                Err(TxnError::InvalidState("PrepareCommit")),
            ),
            (PrepareAbort, false, Err(TxnError::Concurrent)),
            (Empty, true, Err(TxnError::InvalidState("Empty"))),
        ];
        for (state, commit, want) in cases {
            let got =
                meta(state, 2, -1)
                    .end(me, commit, false, NOW, 0, None)
                    .map(|plan| match plan {
                        EndPlan::Write(m) => {
                            assert_eq!(m.producer_epoch, 2, "no bump before version 2");
                            Some(m.state)
                        }
                        _ => None,
                    });
            assert_eq!(got, want, "{state:?} commit {commit}");
        }
        let fenced = meta(Ongoing, 3, -1).end(me, true, false, NOW, 0, None);
        assert_eq!(fenced, Err(TxnError::ProducerFenced));
    }

    #[test]
    fn end_txn_from_version_2_bumps_the_epoch_table() {
        use TxnState::*;
        let v2 = |state, epoch| TxnMetadata {
            client_version: EPOCH_BUMP_VERSION,
            ..meta(state, epoch, -1)
        };
        let who = |epoch| ProducerIdEpoch { id: 10, epoch };
        let write = |state, epoch| Ok(format!("write {state:?} 10 {epoch}"));
        let done = |epoch| Ok(format!("done 10 {epoch}"));
        // (state and epoch stored, the producer's epoch, commit, outcome)
        type Case = (TxnState, i16, i16, bool, Result<String, TxnError>);
        let cases: Vec<Case> = vec![
            (Ongoing, 2, 2, true, write(PrepareCommit, 3)),
            (Ongoing, 2, 2, false, write(PrepareAbort, 3)),
            (Ongoing, 2, 1, true, Err(TxnError::ProducerFenced)),
            // A retry while the markers go out, and after.
            (PrepareCommit, 3, 2, true, Err(TxnError::Concurrent)),
            (PrepareCommit, 3, 3, true, Err(TxnError::ProducerFenced)),
            (CompleteCommit, 3, 2, true, done(3)),
            (CompleteAbort, 3, 2, false, done(3)),
            (
                CompleteCommit,
                3,
                2,
                false,
                Err(TxnError::InvalidState("CompleteCommit")),
            ),
            // The next transaction's commit with nothing added.
            (
                CompleteCommit,
                3,
                3,
                true,
                Err(TxnError::InvalidState("CompleteCommit")),
            ),
            // An abort with nothing added still bumps the epoch.
            (CompleteCommit, 3, 3, false, write(PrepareAbort, 4)),
            (CompleteAbort, 3, 3, false, write(PrepareAbort, 4)),
            (Empty, 3, 3, false, write(PrepareAbort, 4)),
            (Empty, 3, 3, true, Err(TxnError::InvalidState("Empty"))),
        ];
        for (state, stored, epoch, commit, want) in cases {
            let m = v2(state, stored);
            let got = m
                .end(who(epoch), commit, false, NOW, EPOCH_BUMP_VERSION, None)
                .map(|plan| match plan {
                    EndPlan::Write(n) => {
                        let a = n.answer();
                        format!("write {:?} {} {}", n.state, a.id, a.epoch)
                    }
                    EndPlan::Done(a) => format!("done {} {}", a.id, a.epoch),
                    EndPlan::NewProducerId => "new id".into(),
                });
            assert_eq!(
                got, want,
                "{state:?} stored {stored} producer {epoch} commit {commit}"
            );
        }
        // An empty abort has no partitions to mark.
        let Ok(EndPlan::Write(empty)) =
            v2(Empty, 3).end(who(3), false, false, NOW, EPOCH_BUMP_VERSION, None)
        else {
            panic!("expected a write");
        };
        assert!(empty.partitions.is_empty());
    }

    #[test]
    fn an_exhausted_epoch_moves_to_a_new_producer_id_when_the_transaction_completes() {
        let last = i16::MAX - 1;
        let m = TxnMetadata {
            client_version: EPOCH_BUMP_VERSION,
            ..meta(TxnState::Ongoing, last, -1)
        };
        let me = ProducerIdEpoch {
            id: 10,
            epoch: last,
        };
        assert_eq!(
            m.end(me, true, false, NOW, EPOCH_BUMP_VERSION, None),
            Ok(EndPlan::NewProducerId)
        );
        let Ok(EndPlan::Write(prepared)) =
            m.end(me, true, false, NOW, EPOCH_BUMP_VERSION, Some(77))
        else {
            panic!("expected a write");
        };
        // The markers go out under the old id's last epoch.
        assert_eq!(
            (prepared.producer_id, prepared.producer_epoch),
            (10, i16::MAX)
        );
        assert_eq!(prepared.answer(), ProducerIdEpoch { id: 77, epoch: 0 });
        let done = prepared.complete(NOW).expect("complete");
        assert_eq!(
            (
                done.producer_id,
                done.producer_epoch,
                done.previous_producer_id
            ),
            (77, 0, 10)
        );
        // A retry of that EndTxn names the old id.
        assert_eq!(
            done.end(me, true, false, NOW, EPOCH_BUMP_VERSION, None),
            Ok(EndPlan::Done(ProducerIdEpoch { id: 77, epoch: 0 }))
        );
        assert_eq!(
            done.end(me, false, false, NOW, EPOCH_BUMP_VERSION, None),
            Err(TxnError::InvalidState("CompleteCommit"))
        );
    }

    #[test]
    fn completion_clears_the_partitions_and_timeouts_count_from_the_start() {
        let m = meta(TxnState::PrepareCommit, 2, -1);
        let done = m.complete(NOW).expect("complete");
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(meta(TxnState::Ongoing, 2, -1).complete(NOW), None);

        let ongoing = meta(TxnState::Ongoing, 2, -1);
        assert!(!ongoing.timed_out(500 + 60_000));
        assert!(ongoing.timed_out(500 + 60_001));
        let fenced = ongoing.fence_and_abort(NOW);
        assert_eq!(
            (fenced.producer_epoch, fenced.state),
            (3, TxnState::PrepareAbort)
        );
        assert_eq!(fenced.partitions, ongoing.partitions);

        assert!(meta(TxnState::CompleteAbort, 2, -1).expired(700, 100));
        assert!(!meta(TxnState::Ongoing, 2, -1).expired(10_000, 100));
    }
}
