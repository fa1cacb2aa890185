//! Idempotent-producer bookkeeping for one partition: the last sequence
//! numbers each producer wrote, so a retried batch is recognised and answered
//! with its original offset instead of being written twice.

use std::collections::{HashMap, VecDeque};

/// How many recent batches per producer are remembered for de-duplication;
/// clients keep at most five in flight per connection.
const REMEMBERED_BATCHES: usize = 5;

/// The idempotence fields of a record batch header.
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
}

/// Sequence state of every producer that wrote to a partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

impl ProducerStates {
    /// Decides what to do with a batch, without changing any state.
    pub fn check(&self, b: &BatchIdentity) -> Check {
        if b.producer_id < 0 {
            return Check::Append;
        }
        let Some(p) = self.producers.get(&b.producer_id) else {
            // A producer we have no state for must start at sequence 0.
            return if b.base_sequence == 0 {
                Check::Append
            } else {
                Check::OutOfOrder
            };
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

    /// Records a batch that was appended at `base_offset`.
    pub fn record(&mut self, b: &BatchIdentity, base_offset: i64) {
        if b.producer_id < 0 {
            return;
        }
        let p = self.producers.entry(b.producer_id).or_insert(Producer {
            epoch: b.producer_epoch,
            recent: VecDeque::new(),
        });
        if b.producer_epoch != p.epoch {
            p.epoch = b.producer_epoch;
            p.recent.clear();
        }
        if p.recent.len() == REMEMBERED_BATCHES {
            p.recent.pop_front();
        }
        p.recent.push_back(Written {
            first_seq: b.base_sequence,
            last_seq: b.last_sequence(),
            base_offset,
        });
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
        }
    }

    #[test]
    fn sequence_table() {
        let mut s = ProducerStates::default();
        s.record(&batch(7, 0, 0, 3), 100); // seqs 0..=2 at offset 100
        s.record(&batch(7, 0, 3, 2), 103); // seqs 3..=4 at offset 103
        let cases = [
            (batch(-1, -1, -1, 5), Check::Append),
            (batch(7, 0, 5, 1), Check::Append),
            (batch(7, 0, 3, 2), Check::Duplicate { base_offset: 103 }),
            (batch(7, 0, 0, 3), Check::Duplicate { base_offset: 100 }),
            (batch(7, 0, 9, 1), Check::OutOfOrder),
            (batch(7, 1, 0, 1), Check::Append),
            (batch(7, 1, 4, 1), Check::OutOfOrder),
            (batch(8, 0, 0, 1), Check::Append),
            (batch(8, 0, 1, 1), Check::OutOfOrder),
        ];
        for (b, want) in cases {
            assert_eq!(s.check(&b), want, "{b:?}");
        }
        s.record(&batch(7, 1, 0, 1), 105);
        assert_eq!(s.check(&batch(7, 0, 5, 1)), Check::StaleEpoch);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            s.record(&batch(1, 0, i, 1), i as i64);
        }
        assert_eq!(s.check(&batch(1, 0, 0, 1)), Check::OutOfOrder);
        assert_eq!(
            s.check(&batch(1, 0, 1, 1)),
            Check::Duplicate { base_offset: 1 }
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, i32::MAX - 1, 2), 0);
        assert_eq!(s.check(&batch(1, 0, 0, 1)), Check::Append);
    }
}
