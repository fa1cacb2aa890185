//! Producer bookkeeping for one partition (Kafka's `ProducerStateEntry`):
//! the last sequence numbers each producer wrote, so a retried batch is
//! recognised and answered with its original offset instead of being
//! written twice; and for transactional producers, where their open
//! transaction began and the coordinator epoch of the last marker, which
//! fences markers from a coordinator that lost its transactions; and the
//! verifications under way before a producer's first transactional batch
//! (KIP-890): a transaction opens here only with the guard its
//! coordinator's verification was started under.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use super::snapshot::ProducerEntry;

/// How many recent batches per producer are remembered for de-duplication;
/// clients keep at most five in flight per connection.
const REMEMBERED_BATCHES: usize = 5;

/// The idempotence and transaction fields of a data batch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    /// Producer id (-1: not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
}

impl BatchIdentity {
    fn last_sequence(&self) -> i32 {
        // Sequences wrap at i32::MAX back to 0.
        ((self.base_sequence as i64 + self.record_count as i64 - 1) % (i32::MAX as i64 + 1)) as i32
    }
}

/// The verdict on an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not idempotent or next in sequence: append it.
    Append,
    /// Already written: answer with the offsets it got then.
    Duplicate {
        /// First offset of the earlier write.
        base_offset: i64,
    },
    /// Sequence gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder,
    /// An older epoch than the producer's current one: INVALID_PRODUCER_EPOCH.
    StaleEpoch,
    /// A batch outside a transaction while the producer has one open:
    /// INVALID_TXN_STATE.
    InvalidTxnState,
    /// A transactional batch that would open a transaction without the
    /// guard of a verification started since the producer's last marker
    /// or batch: INVALID_TXN_STATE.
    Unverified,
}

/// Proof that a producer's transaction coordinator was asked whether a
/// partition is in the transaction (Kafka's `VerificationGuard`): handed
/// out before asking, required when the producer's first transactional
/// batch is appended. A marker or a batch of the producer in between
/// retires it, so an answer that raced the transaction's end cannot open
/// a transaction the coordinator does not know of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    fn new() -> VerificationGuard {
        // Unique in the process, so a guard outlives no rebuild of the
        // partition's state by matching a newer verification.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VerificationGuard(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A verification started for a producer with no transaction open here.
#[derive(Debug, Clone, Copy)]
struct Verifying {
    guard: VerificationGuard,
    /// When it started (entries never used expire with the producers).
    since_ms: i64,
    /// The epoch of the batches being verified.
    epoch: i16,
    /// The lowest sequence among them: a higher one may not be written
    /// before it (a retried lower batch would then be out of order).
    lowest_sequence: i32,
}

/// Who appends a batch, which decides what is checked (Kafka's
/// `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer: epoch, sequence and transaction state.
    Client,
    /// A coordinator writing its own records (the group coordinator's
    /// transactional offset commits, without sequences): epoch and
    /// transaction state.
    Coordinator,
}

/// Why a transaction marker is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerRefusal {
    /// The marker's producer epoch is older than the producer's:
    /// INVALID_PRODUCER_EPOCH.
    StaleEpoch,
    /// An older coordinator epoch than the last marker's:
    /// TRANSACTION_COORDINATOR_FENCED.
    FencedCoordinator {
        /// The producer's last coordinator epoch.
        current: i32,
    },
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// Sequence of its last record (-1: none remembered).
    pub last_sequence: i32,
    /// Timestamp of its last batch or marker (-1: none).
    pub last_timestamp: i64,
    /// Coordinator epoch of its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction (-1: none).
    pub current_txn_start_offset: i64,
}

#[derive(Debug, Clone)]
struct Written {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Clone)]
struct Producer {
    epoch: i16,
    recent: VecDeque<Written>,
    /// Coordinator epoch of its last marker (-1: none yet).
    coordinator_epoch: i32,
    /// Timestamp of its last batch or marker.
    last_timestamp: i64,
    /// First offset of its open transaction.
    txn_first_offset: Option<i64>,
}

impl Producer {
    fn new(epoch: i16) -> Producer {
        Producer {
            epoch,
            recent: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            txn_first_offset: None,
        }
    }

    /// Takes `epoch`: a new one forgets the sequences of the old.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.recent.clear();
        }
    }
}

/// Sequence state of every producer that wrote to a partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
    /// Verifications under way, by producer.
    verifying: HashMap<i64, Verifying>,
}

impl ProducerStates {
    /// Decides what to do with a batch appended by `origin` under `guard`
    /// (the verification it was appended after, if any), without changing
    /// any state: a client's retry is recognised first, then a
    /// transaction's opening must be verified, then epoch, sequence
    /// (clients only) and transaction state are checked, in Kafka's order.
    pub fn check(
        &self,
        b: &BatchIdentity,
        origin: Origin,
        guard: Option<VerificationGuard>,
    ) -> Check {
        if b.producer_id < 0 {
            return Check::Append;
        }
        let verdict = match origin {
            Origin::Client => self.check_sequence(b),
            Origin::Coordinator => match self.producers.get(&b.producer_id) {
                Some(p) if b.producer_epoch < p.epoch => Check::StaleEpoch,
                _ => Check::Append,
            },
        };
        if let Check::Duplicate { .. } = verdict {
            return verdict;
        }
        let open = self.in_transaction(b.producer_id, None);
        let verified =
            guard.is_some() && self.verifying.get(&b.producer_id).map(|v| v.guard) == guard;
        if b.transactional
            && !self.in_transaction(b.producer_id, Some(b.producer_epoch))
            && !verified
        {
            return Check::Unverified;
        }
        match verdict {
            Check::Append if open && !b.transactional => Check::InvalidTxnState,
            other => other,
        }
    }

    /// Whether `producer_id` has a transaction open here (of `epoch`, if
    /// given: a producer of transaction version 2 begins each transaction
    /// under a new epoch, so one of an older epoch is not the batch's).
    fn in_transaction(&self, producer_id: i64, epoch: Option<i16>) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|p| p.txn_first_offset.is_some() && epoch.is_none_or(|e| e == p.epoch))
    }

    /// Starts (or joins) the verification of `producer_id`'s batch of
    /// `epoch` from `base_sequence`, before its coordinator is asked;
    /// `None` when its transaction of that epoch is already open here and
    /// needs none.
    pub fn start_verification(
        &mut self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        now_ms: i64,
    ) -> Option<VerificationGuard> {
        if self.in_transaction(producer_id, Some(epoch)) {
            return None;
        }
        let v = self.verifying.entry(producer_id).or_insert(Verifying {
            guard: VerificationGuard::new(),
            since_ms: now_ms,
            epoch,
            lowest_sequence: base_sequence,
        });
        if epoch > v.epoch || (epoch == v.epoch && base_sequence < v.lowest_sequence) {
            v.epoch = epoch;
            v.lowest_sequence = base_sequence;
        }
        Some(v.guard)
    }

    /// The idempotence verdict on a client's batch.
    fn check_sequence(&self, b: &BatchIdentity) -> Check {
        if self
            .verifying
            .get(&b.producer_id)
            .is_some_and(|v| b.base_sequence > v.lowest_sequence)
        {
            return Check::OutOfOrder;
        }
        let Some(p) = self.producers.get(&b.producer_id) else {
            // A producer with no state here may go on from any sequence,
            // as in Kafka: its state expired (`producer.id.expiration.ms`)
            // or went with the segments that held its batches.
            return Check::Append;
        };
        if b.producer_epoch < p.epoch {
            return Check::StaleEpoch;
        }
        if b.producer_epoch > p.epoch {
            return if b.base_sequence == 0 {
                Check::Append
            } else {
                Check::OutOfOrder
            };
        }
        if let Some(w) = p
            .recent
            .iter()
            .find(|w| w.first_seq == b.base_sequence && w.last_seq == b.last_sequence())
        {
            return Check::Duplicate {
                base_offset: w.base_offset,
            };
        }
        let expected = p
            .recent
            .back()
            .map(|w| {
                if w.last_seq == i32::MAX {
                    0
                } else {
                    w.last_seq + 1
                }
            })
            .unwrap_or(0);
        if b.base_sequence == expected {
            Check::Append
        } else {
            Check::OutOfOrder
        }
    }

    /// The base offset of each producer's last batch: the log cleaner
    /// keeps those batches' headers so the sequences survive a restart.
    pub fn last_batches(&self) -> std::collections::HashSet<i64> {
        self.producers
            .values()
            .filter_map(|p| p.recent.back().map(|w| w.base_offset))
            .collect()
    }

    /// Records a batch that was appended at `base_offset` with newest
    /// timestamp `max_timestamp`. Returns `base_offset` when the batch
    /// opened a transaction of its producer.
    pub fn record(
        &mut self,
        b: &BatchIdentity,
        base_offset: i64,
        max_timestamp: i64,
    ) -> Option<i64> {
        if b.producer_id < 0 {
            return None;
        }
        // Its transaction is open now (or it wrote outside one): a
        // verification under way has served its purpose.
        if b.transactional {
            self.verifying.remove(&b.producer_id);
        }
        let p = self
            .producers
            .entry(b.producer_id)
            .or_insert_with(|| Producer::new(b.producer_epoch));
        p.set_epoch(b.producer_epoch);
        p.last_timestamp = max_timestamp;
        // A coordinator's batch has no sequence to remember.
        if b.base_sequence >= 0 {
            if p.recent.len() == REMEMBERED_BATCHES {
                p.recent.pop_front();
            }
            p.recent.push_back(Written {
                first_seq: b.base_sequence,
                last_seq: b.last_sequence(),
                base_offset,
            });
        }
        if b.transactional && p.txn_first_offset.is_none() {
            p.txn_first_offset = Some(base_offset);
            return Some(base_offset);
        }
        None
    }

    /// Whether a marker of `producer_epoch` and `transaction_version` from
    /// a coordinator in `coordinator_epoch` may end `producer_id`'s
    /// transaction (Kafka's checks on a marker a coordinator sends).
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        transaction_version: i8,
    ) -> Result<(), MarkerRefusal> {
        let Some(p) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        // From transaction version 2 (KIP-890) the coordinator bumps the
        // epoch before it writes the markers, so a marker's epoch is above
        // that of its transaction's batches (KIP-1228). One at the
        // producer's epoch is the retry of a marker written already when
        // no transaction is open, and a late marker of an earlier
        // transaction when one is.
        let stale = if transaction_version >= 2 {
            producer_epoch < p.epoch || (producer_epoch == p.epoch && p.txn_first_offset.is_some())
        } else {
            producer_epoch < p.epoch
        };
        if stale {
            return Err(MarkerRefusal::StaleEpoch);
        }
        if coordinator_epoch < p.coordinator_epoch {
            return Err(MarkerRefusal::FencedCoordinator {
                current: p.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a marker of `producer_epoch` and `coordinator_epoch`,
    /// stamped `timestamp`: the producer's transaction is over. Returns
    /// where it began, if one was open (a marker of an empty transaction
    /// ends nothing).
    pub fn end_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Option<i64> {
        // The marker retires the verifications it may have overtaken (a
        // stale answer must not open a transaction the coordinator ended),
        // but not one of a newer transaction: under transaction version 2
        // the marker comes with the bumped epoch the producer's next
        // transaction already writes with, and that transaction may have
        // started its verification before this marker landed; a stale
        // batch of the ended one is fenced by its older epoch instead.
        let bumped = self
            .producers
            .get(&producer_id)
            .is_some_and(|p| producer_epoch > p.epoch);
        if self
            .verifying
            .get(&producer_id)
            .is_some_and(|v| v.epoch < producer_epoch || (v.epoch == producer_epoch && !bumped))
        {
            self.verifying.remove(&producer_id);
        }
        let p = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| Producer::new(producer_epoch));
        p.set_epoch(producer_epoch);
        p.coordinator_epoch = coordinator_epoch;
        p.last_timestamp = timestamp;
        p.txn_first_offset.take()
    }

    /// Forgets the producers idle for `expiration_ms` (their last batch or
    /// marker stamped that long before `now_ms`) with no transaction open,
    /// and the verifications started that long ago (Kafka's
    /// `producer.id.expiration.ms`); how many producers went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, p| {
            p.txn_first_offset.is_some() || now_ms.saturating_sub(p.last_timestamp) < expiration_ms
        });
        self.verifying
            .retain(|_, v| now_ms.saturating_sub(v.since_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// Every producer's state as a snapshot holds it, by id: of the
    /// batches remembered, only the last (Kafka's snapshot layout).
    pub fn snapshot_entries(&self) -> Vec<ProducerEntry> {
        let mut out: Vec<ProducerEntry> = self
            .producers
            .iter()
            .map(|(id, p)| {
                let (last_sequence, last_offset, offset_delta) = match p.recent.back() {
                    Some(w) => {
                        let delta = sequence_span(w.first_seq, w.last_seq);
                        (w.last_seq, w.base_offset + i64::from(delta), delta)
                    }
                    None => (-1, -1, 0),
                };
                ProducerEntry {
                    producer_id: *id,
                    epoch: p.epoch,
                    last_sequence,
                    last_offset,
                    offset_delta,
                    timestamp: p.last_timestamp,
                    coordinator_epoch: p.coordinator_epoch,
                    current_txn_first_offset: p.txn_first_offset.unwrap_or(-1),
                }
            })
            .collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// The state a snapshot's `entries` describe: each producer remembers
    /// its last batch only, so a retry of that one is still recognised
    /// (Kafka's de-duplication after loading a snapshot), and its open
    /// transaction. No verification is under way.
    pub fn from_snapshot(entries: &[ProducerEntry]) -> ProducerStates {
        let producers = entries
            .iter()
            .map(|e| {
                let mut p = Producer::new(e.epoch);
                p.coordinator_epoch = e.coordinator_epoch;
                p.last_timestamp = e.timestamp;
                p.txn_first_offset =
                    (e.current_txn_first_offset >= 0).then_some(e.current_txn_first_offset);
                // A producer whose only batches were a coordinator's has
                // no sequence to remember.
                if e.last_offset >= 0 && e.last_sequence >= 0 && e.offset_delta >= 0 {
                    p.recent.push_back(Written {
                        first_seq: first_sequence(e.last_sequence, e.offset_delta),
                        last_seq: e.last_sequence,
                        base_offset: e.last_offset.saturating_sub(i64::from(e.offset_delta)),
                    });
                }
                (e.producer_id, p)
            })
            .collect();
        ProducerStates {
            producers,
            verifying: HashMap::new(),
        }
    }

    /// Every producer with state here, by id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(id, p)| ActiveProducer {
                producer_id: *id,
                producer_epoch: p.epoch,
                last_sequence: p.recent.back().map_or(-1, |w| w.last_seq),
                last_timestamp: p.last_timestamp,
                coordinator_epoch: p.coordinator_epoch,
                current_txn_start_offset: p.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }
}

/// How many sequences after `first` the sequence `last` is, across the
/// wrap at i32::MAX: a batch's last offset minus its first.
fn sequence_span(first: i32, last: i32) -> i32 {
    if last >= first {
        last - first
    } else {
        (i32::MAX - first) + last + 1
    }
}

/// The first sequence of a batch whose last is `last` and which spans
/// `span` more (Kafka's `decrementSequence`); `span` is not negative.
fn first_sequence(last: i32, span: i32) -> i32 {
    if last >= span {
        last - span
    } else {
        i32::MAX - (span - last) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, n: i32) -> BatchIdentity {
        BatchIdentity {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: n,
            transactional: false,
        }
    }

    fn txn(pid: i64, epoch: i16, seq: i32, n: i32) -> BatchIdentity {
        BatchIdentity {
            transactional: true,
            ..batch(pid, epoch, seq, n)
        }
    }

    #[test]
    fn sequence_table() {
        let mut s = ProducerStates::default();
        s.record(&batch(7, 0, 0, 3), 100, 0); // seqs 0..=2 at offset 100
        s.record(&batch(7, 0, 3, 2), 103, 0); // seqs 3..=4 at offset 103
        let cases = [
            (batch(-1, -1, -1, 5), Check::Append),
            (batch(7, 0, 5, 1), Check::Append),
            (batch(7, 0, 3, 2), Check::Duplicate { base_offset: 103 }),
            (batch(7, 0, 0, 3), Check::Duplicate { base_offset: 100 }),
            (batch(7, 0, 9, 1), Check::OutOfOrder),
            (batch(7, 1, 0, 1), Check::Append),
            (batch(7, 1, 4, 1), Check::OutOfOrder),
            (batch(8, 0, 0, 1), Check::Append),
            // A producer unknown here goes on from where it is.
            (batch(8, 0, 1, 1), Check::Append),
        ];
        for (b, want) in cases {
            assert_eq!(s.check(&b, Origin::Client, None), want, "{b:?}");
        }
        s.record(&batch(7, 1, 0, 1), 105, 0);
        assert_eq!(
            s.check(&batch(7, 0, 5, 1), Origin::Client, None),
            Check::StaleEpoch
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            s.record(&batch(1, 0, i, 1), i as i64, 0);
        }
        assert_eq!(
            s.check(&batch(1, 0, 0, 1), Origin::Client, None),
            Check::OutOfOrder
        );
        assert_eq!(
            s.check(&batch(1, 0, 1, 1), Origin::Client, None),
            Check::Duplicate { base_offset: 1 }
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, i32::MAX - 1, 2), 0, 0);
        assert_eq!(
            s.check(&batch(1, 0, 0, 1), Origin::Client, None),
            Check::Append
        );
    }

    #[test]
    fn transactions_open_with_a_transactional_batch_and_close_with_a_marker() {
        let mut s = ProducerStates::default();
        // (what happens, the first offset of an open transaction after it)
        assert_eq!(s.record(&batch(1, 0, 0, 1), 0, 10), None);
        assert_eq!(s.record(&txn(1, 0, 1, 2), 1, 11), Some(1));
        // Later batches of the same transaction open nothing.
        assert_eq!(s.record(&txn(1, 0, 3, 1), 3, 12), None);
        // A batch outside the transaction while it is open is refused.
        assert_eq!(
            s.check(&batch(1, 0, 4, 1), Origin::Client, None),
            Check::InvalidTxnState
        );
        assert_eq!(
            s.check(&txn(1, 0, 4, 1), Origin::Client, None),
            Check::Append
        );
        let open = s.active()[0];
        assert_eq!(
            (
                open.current_txn_start_offset,
                open.last_sequence,
                open.last_timestamp
            ),
            (1, 3, 12)
        );
        assert_eq!(s.end_txn(1, 0, 5, 20), Some(1));
        // A marker of an empty transaction ends nothing.
        assert_eq!(s.end_txn(1, 0, 5, 21), None);
        let closed = s.active()[0];
        assert_eq!(
            (
                closed.current_txn_start_offset,
                closed.coordinator_epoch,
                closed.last_timestamp
            ),
            (-1, 5, 21)
        );
        assert_eq!(
            s.check(&batch(1, 0, 4, 1), Origin::Client, None),
            Check::Append
        );
    }

    #[test]
    fn a_marker_of_transaction_version_2_must_come_with_a_bumped_epoch() {
        let mut s = ProducerStates::default();
        // Producer 1 at epoch 3 with a transaction open.
        s.record(&txn(1, 3, 0, 1), 0, 0);
        let cases = [
            // (producer epoch, transaction version, verdict)
            (3, 2, Err(MarkerRefusal::StaleEpoch)),
            (2, 2, Err(MarkerRefusal::StaleEpoch)),
            (4, 2, Ok(())),
            (3, 1, Ok(())),
            (3, 0, Ok(())),
        ];
        for (epoch, version, want) in cases {
            assert_eq!(
                s.check_marker(1, epoch, 0, version),
                want,
                "{epoch} v{version}"
            );
        }
        // Once a marker of epoch 4 ended it, the same marker again (its
        // answer lost) is taken; one of an older epoch is not.
        s.end_txn(1, 4, 0, 0);
        assert_eq!(s.check_marker(1, 4, 0, 2), Ok(()));
        assert_eq!(s.check_marker(1, 3, 0, 2), Err(MarkerRefusal::StaleEpoch));
    }

    #[test]
    fn markers_are_fenced_by_producer_and_coordinator_epochs() {
        let mut s = ProducerStates::default();
        s.record(&txn(1, 3, 0, 1), 0, 0);
        s.end_txn(1, 3, 7, 0);
        let cases = [
            // (producer epoch, coordinator epoch, verdict)
            (3, 7, Ok(())),
            (4, 8, Ok(())),
            (2, 7, Err(MarkerRefusal::StaleEpoch)),
            (3, 6, Err(MarkerRefusal::FencedCoordinator { current: 7 })),
        ];
        for (epoch, coordinator, want) in cases {
            assert_eq!(
                s.check_marker(1, epoch, coordinator, 1),
                want,
                "{epoch} {coordinator}"
            );
        }
        // A producer never seen here takes any marker.
        assert_eq!(s.check_marker(2, 0, 0, 1), Ok(()));
        // A marker of a newer epoch forgets the old epoch's sequences.
        s.end_txn(1, 4, 8, 0);
        assert_eq!(
            s.check(&batch(1, 4, 0, 1), Origin::Client, None),
            Check::Append
        );
        assert_eq!(
            s.check(&batch(1, 3, 1, 1), Origin::Client, None),
            Check::StaleEpoch
        );
    }

    #[test]
    fn a_coordinators_batches_are_checked_for_epoch_and_transaction_only() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 2, 0, 1), 0, 0);
        let own = |epoch, transactional| BatchIdentity {
            producer_id: 1,
            producer_epoch: epoch,
            base_sequence: -1,
            record_count: 1,
            transactional,
        };
        let g = s.start_verification(1, 2, -1, 0);
        assert_eq!(
            s.check(&own(2, true), Origin::Coordinator, g),
            Check::Append
        );
        assert_eq!(
            s.check(&own(1, true), Origin::Coordinator, g),
            Check::StaleEpoch
        );
        // The same batch from a client is out of sequence.
        assert_eq!(s.check(&own(2, true), Origin::Client, g), Check::OutOfOrder);
        assert_eq!(s.record(&own(2, true), 1, 0), Some(1));
        // No sequence was remembered: the client's next is still 1.
        assert_eq!(
            s.check(&txn(1, 2, 1, 1), Origin::Client, None),
            Check::Append
        );
        assert_eq!(
            s.check(&own(2, false), Origin::Coordinator, None),
            Check::InvalidTxnState
        );
    }

    #[test]
    fn a_transaction_opens_only_under_a_verification_still_standing() {
        let mut s = ProducerStates::default();
        // Unverified, a transactional batch opens nothing.
        assert_eq!(
            s.check(&txn(1, 0, 0, 1), Origin::Client, None),
            Check::Unverified
        );
        let g = s.start_verification(1, 0, 0, 0);
        assert!(g.is_some());
        // Asking again while it is under way joins it.
        assert_eq!(s.start_verification(1, 0, 0, 0), g);
        assert_eq!(s.check(&txn(1, 0, 0, 1), Origin::Client, g), Check::Append);
        // A marker in between (the transaction ended while the coordinator
        // was asked) retires the guard: the stale answer opens nothing.
        s.end_txn(1, 0, 0, 0);
        assert_eq!(
            s.check(&txn(1, 0, 0, 1), Origin::Client, g),
            Check::Unverified
        );
        let fresh = s.start_verification(1, 0, 0, 0);
        assert_ne!(fresh, g);
        assert_eq!(s.record(&txn(1, 0, 0, 1), 5, 0), Some(5));
        // Open, the transaction needs no verification and the guard is gone.
        assert_eq!(s.start_verification(1, 0, 1, 0), None);
        assert_eq!(
            s.check(&txn(1, 0, 1, 1), Origin::Client, None),
            Check::Append
        );
        assert_eq!(
            s.check(&txn(1, 0, 1, 1), Origin::Client, fresh),
            Check::Append
        );
        // A retry of a written batch is still recognised without a guard.
        s.end_txn(1, 0, 0, 1);
        assert_eq!(
            s.check(&txn(1, 0, 0, 1), Origin::Client, None),
            Check::Duplicate { base_offset: 5 }
        );
    }

    #[test]
    fn a_bumped_marker_keeps_the_verification_of_the_next_transaction() {
        // Transaction version 2: the next transaction (epoch 5) starts its
        // verification before the marker of the one at epoch 4 lands, with
        // epoch 5; the coordinator then adds the partition.
        let mut s = ProducerStates::default();
        s.start_verification(1, 4, 0, 0);
        assert_eq!(s.record(&txn(1, 4, 0, 1), 10, 0), Some(10));
        let next = s.start_verification(1, 5, 0, 0);
        assert_eq!(s.end_txn(1, 5, 0, 11), Some(10));
        assert_eq!(
            s.check(&txn(1, 5, 0, 1), Origin::Client, next),
            Check::Append
        );
        // Before version 2 the marker has the transaction's own epoch: a
        // verification under way is retired (its answer may be stale).
        let mut s = ProducerStates::default();
        s.start_verification(2, 4, 0, 0);
        s.record(&txn(2, 4, 0, 1), 20, 0);
        let stale = s.start_verification(2, 4, 1, 0);
        assert_eq!(stale, None, "open: none needed");
        s.end_txn(2, 4, 0, 21);
        let g = s.start_verification(2, 4, 1, 0);
        s.end_txn(2, 4, 0, 22);
        assert_eq!(
            s.check(&txn(2, 4, 1, 1), Origin::Client, g),
            Check::Unverified
        );
    }

    #[test]
    fn a_transaction_of_a_newer_epoch_is_verified_while_the_old_one_is_open() {
        // Transaction version 2: the producer's next transaction comes under
        // the next epoch, possibly before the old one's marker is here.
        let mut s = ProducerStates::default();
        let g = s.start_verification(1, 4, 0, 0);
        assert_eq!(s.record(&txn(1, 4, 0, 1), 10, 0), Some(10));
        assert_eq!(s.start_verification(1, 4, 1, 0), None, "open at its epoch");
        let next = s.start_verification(1, 5, 0, 0);
        assert!(next.is_some() && next != g, "a newer epoch is asked about");
        assert_eq!(
            s.check(&txn(1, 5, 0, 1), Origin::Client, None),
            Check::Unverified
        );
        // A non-transactional batch is refused while any transaction is open.
        assert_eq!(
            s.check(&batch(1, 5, 0, 1), Origin::Client, None),
            Check::InvalidTxnState
        );
        // The marker comes under the bumped epoch; the next transaction
        // starts its sequences over.
        s.end_txn(1, 5, 0, 11);
        let fresh = s.start_verification(1, 5, 0, 0);
        assert_eq!(
            s.check(&txn(1, 5, 0, 1), Origin::Client, fresh),
            Check::Append
        );
    }

    #[test]
    fn while_verifying_no_later_sequence_overtakes_the_lowest() {
        let mut s = ProducerStates::default();
        let cases = [
            // (epoch, base sequence verified, the lowest after it)
            (0, 4, 4),
            (0, 2, 2),
            (0, 6, 2),
            // A new epoch starts over; an older one changes nothing.
            (1, 0, 0),
            (0, 3, 0),
        ];
        for (epoch, seq, lowest) in cases {
            s.start_verification(1, epoch, seq, 0);
            let over = batch(1, epoch, lowest + 1, 1);
            assert_eq!(
                s.check(&over, Origin::Client, None),
                Check::OutOfOrder,
                "{epoch} {seq}"
            );
            assert_eq!(s.verifying[&1].lowest_sequence, lowest, "{epoch} {seq}");
        }
    }

    #[test]
    fn a_snapshot_keeps_each_producers_last_batch_and_open_transaction() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, 0, 3), 0, 10);
        s.record(&batch(1, 0, 3, 2), 3, 11);
        // Sequences wrapping inside the last batch.
        s.record(&batch(2, 4, i32::MAX - 1, 3), 5, 12);
        s.record(&txn(3, 1, 0, 1), 8, 13);
        // A coordinator's own batch: no sequence.
        let own = BatchIdentity {
            producer_id: 4,
            producer_epoch: 2,
            base_sequence: -1,
            record_count: 1,
            transactional: true,
        };
        s.record(&own, 9, 14);
        s.end_txn(5, 0, 6, 15);
        let entries = s.snapshot_entries();
        let last = |pid: i64| {
            let e = entries
                .iter()
                .find(|e| e.producer_id == pid)
                .expect("entry");
            (e.last_sequence, e.last_offset, e.offset_delta)
        };
        assert_eq!(last(1), (4, 4, 1));
        assert_eq!(last(2), (0, 7, 2));
        assert_eq!(last(4), (-1, -1, 0));
        let loaded = ProducerStates::from_snapshot(&entries);
        assert_eq!(loaded.active(), s.active());
        assert_eq!(loaded.snapshot_entries(), entries);
        assert_eq!(loaded.last_batches(), s.last_batches());
        let cases = [
            // Only the last batch is remembered.
            (batch(1, 0, 3, 2), Check::Duplicate { base_offset: 3 }),
            (batch(1, 0, 0, 3), Check::OutOfOrder),
            (batch(1, 0, 5, 1), Check::Append),
            (
                batch(2, 4, i32::MAX - 1, 3),
                Check::Duplicate { base_offset: 5 },
            ),
            (batch(2, 4, 1, 1), Check::Append),
            // Producer 3's transaction is still open.
            (batch(3, 1, 1, 1), Check::InvalidTxnState),
            (txn(3, 1, 1, 1), Check::Append),
            (batch(4, 1, 0, 1), Check::StaleEpoch),
        ];
        for (b, want) in cases {
            assert_eq!(loaded.check(&b, Origin::Client, None), want, "{b:?}");
        }
        assert_eq!(
            loaded.check_marker(5, 0, 5, 1),
            Err(MarkerRefusal::FencedCoordinator { current: 6 })
        );
    }

    #[test]
    fn idle_producers_expire_unless_their_transaction_is_open() {
        let mut s = ProducerStates::default();
        // (producer, last stamped at, transactional)
        s.record(&batch(1, 0, 0, 1), 0, 100);
        s.record(&batch(2, 0, 0, 1), 1, 900);
        let g = s.start_verification(3, 0, 0, 100);
        s.record(&txn(3, 0, 0, 1), 2, 100);
        s.start_verification(4, 0, 0, 100);
        s.start_verification(5, 0, 0, 900);
        assert!(g.is_some());
        assert_eq!(s.expire(1100, 1000), 1);
        let left: Vec<i64> = s.active().iter().map(|p| p.producer_id).collect();
        // 1 is idle too long; 2 is recent; 3's transaction is open.
        assert_eq!(left, [2, 3]);
        // The verification started at 100 and never used went too.
        assert_eq!(
            s.check(&txn(4, 0, 0, 1), Origin::Client, None),
            Check::Unverified
        );
        assert!(!s.verifying.contains_key(&4));
        assert!(s.verifying.contains_key(&5));
        // Producer 1, forgotten, goes on from its next sequence.
        assert_eq!(
            s.check(&batch(1, 0, 1, 1), Origin::Client, None),
            Check::Append
        );
        // Once its transaction ends, 3 expires as any other.
        s.end_txn(3, 0, 0, 200);
        assert_eq!(s.expire(1300, 1000), 1);
        let left: Vec<i64> = s.active().iter().map(|p| p.producer_id).collect();
        assert_eq!(left, [2]);
    }
}
