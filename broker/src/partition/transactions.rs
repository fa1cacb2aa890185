//! The transactions of one partition and its last stable offset (Kafka's
//! `ProducerStateManager` transaction bookkeeping). A transaction is open
//! from its producer's first transactional batch until its marker; once
//! ended it stays unstable until its marker is below the high watermark,
//! so a read_committed consumer never reads a transaction whose marker a
//! new leader might not have. The last stable offset (LSO) is the first
//! offset of the earliest unstable transaction, bounded by the high
//! watermark and never below the log start. Pure: offsets in, decisions
//! out.

use std::collections::BTreeMap;

use crate::log::txn_index::AbortedTxn;

/// The open and the ended-but-unreplicated transactions of a partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transactions {
    /// Open transactions: first offset → producer.
    open: BTreeMap<i64, i64>,
    /// Ended transactions whose marker may not be replicated yet: first
    /// offset → marker offset.
    unreplicated: BTreeMap<i64, i64>,
}

impl Transactions {
    /// `producer_id` opened a transaction at `first_offset`.
    pub fn open(&mut self, producer_id: i64, first_offset: i64) {
        self.open.insert(first_offset, producer_id);
    }

    /// The transaction of `producer_id` opened at `first_offset` ended
    /// with a marker at `marker_offset`. An aborted one is returned as its
    /// `.txnindex` entry, whose last stable offset is the first offset of
    /// the earliest transaction of another producer still open, else the
    /// offset after the marker (Kafka's `lastStableOffset(completedTxn)`).
    pub fn end(
        &mut self,
        producer_id: i64,
        first_offset: i64,
        marker_offset: i64,
        commit: bool,
    ) -> Option<AbortedTxn> {
        let last_stable_offset = self
            .open
            .iter()
            .find(|(_, p)| **p != producer_id)
            .map_or(marker_offset + 1, |(first, _)| *first);
        self.open.remove(&first_offset);
        self.unreplicated.insert(first_offset, marker_offset);
        (!commit).then_some(AbortedTxn {
            producer_id,
            first_offset,
            last_offset: marker_offset,
            last_stable_offset,
        })
    }

    /// Forgets ended transactions whose marker is below `high_watermark`:
    /// they no longer hold the LSO back.
    pub fn replicated_to(&mut self, high_watermark: i64) {
        self.unreplicated
            .retain(|_, marker| *marker >= high_watermark);
    }

    /// The last stable offset under `high_watermark` with the log starting
    /// at `log_start`.
    pub fn last_stable_offset(&self, high_watermark: i64, log_start: i64) -> i64 {
        let open = self.open.keys().next().copied();
        let unreplicated = self
            .unreplicated
            .iter()
            .filter(|(_, marker)| **marker >= high_watermark)
            .map(|(first, _)| *first)
            .next();
        match open.into_iter().chain(unreplicated).min() {
            Some(first) => first.max(log_start).min(high_watermark),
            None => high_watermark,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn last_stable_offset_table() {
        // Producer 1 opens at 10, producer 2 at 20; 1 aborts at 30.
        let mut t = Transactions::default();
        t.open(1, 10);
        t.open(2, 20);
        let aborted = t.end(1, 10, 30, false).expect("aborted");
        // The next open transaction of another producer bounds it.
        assert_eq!(
            aborted,
            AbortedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 30,
                last_stable_offset: 20
            }
        );
        let cases = [
            // (high watermark, log start, LSO)
            (5, 0, 5),
            // The marker at 30 is not replicated: 10 is still unstable.
            (25, 0, 10),
            (30, 0, 10),
            // Replicated: producer 2's open transaction at 20 holds it.
            (31, 0, 20),
            // Never below the log start.
            (31, 25, 25),
        ];
        for (hw, start, want) in cases {
            assert_eq!(
                t.last_stable_offset(hw, start),
                want,
                "hw {hw} start {start}"
            );
        }
        assert_eq!(t.end(2, 20, 40, true), None);
        assert_eq!(t.last_stable_offset(40, 0), 20);
        assert_eq!(t.last_stable_offset(41, 0), 41);
        t.replicated_to(41);
        assert_eq!(t, Transactions::default());
    }

    #[test]
    fn an_abort_alone_is_stable_after_its_marker() {
        let mut t = Transactions::default();
        t.open(7, 0);
        let e = t.end(7, 0, 3, false).expect("aborted");
        assert_eq!(e.last_stable_offset, 4);
    }

    /// The LSO against a model that keeps every transaction: the earliest
    /// first offset of those not ended below the high watermark.
    #[test]
    fn last_stable_offset_matches_a_model_by_property() {
        for seed in 0..200u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut t = Transactions::default();
            // (producer, first offset, marker offset once ended)
            let mut model: Vec<(i64, i64, Option<i64>)> = Vec::new();
            let mut offset = 0i64;
            let mut hw = 0i64;
            for _ in 0..rng.gen_range(1..60) {
                let producer = rng.gen_range(0..4);
                let open = model.iter().position(|m| m.0 == producer && m.2.is_none());
                match (rng.gen_range(0..3), open) {
                    (0, Some(i)) => {
                        model[i].2 = Some(offset);
                        t.end(producer, model[i].1, offset, rng.gen_bool(0.5));
                    }
                    (_, None) => {
                        model.push((producer, offset, None));
                        t.open(producer, offset);
                    }
                    _ => {}
                }
                offset += 1;
                hw = rng.gen_range(hw..=offset);
                if rng.gen_bool(0.3) {
                    t.replicated_to(hw);
                }
                let want = model
                    .iter()
                    .filter(|m| m.2.is_none_or(|marker| marker >= hw))
                    .map(|m| m.1)
                    .min()
                    .map_or(hw, |first| first.min(hw));
                assert_eq!(t.last_stable_offset(hw, 0), want, "seed {seed}");
            }
        }
    }
}
