//! The leader-epoch history of one partition's log: at which offset each
//! leader epoch's records start. A leader answers OffsetForLeaderEpoch and
//! detects a follower's diverging log from it. It is kept in the
//! partition's `leader-epoch-checkpoint` and, when the log is opened,
//! completed from the headers of the batches replayed (every batch carries
//! its leader epoch).

/// Kafka's "no epoch".
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's "no offset".
pub const UNDEFINED_OFFSET: i64 = -1;

/// A follower's fetch as the leader judges it from this history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaFetch {
    /// Serve records from the fetch offset.
    Serve,
    /// The follower's log diverges: it must truncate to `end_offset` (the
    /// end of `epoch` here) before fetching again.
    Diverging {
        /// Largest epoch at or below the follower's last one.
        epoch: i32,
        /// Where that epoch ends here.
        end_offset: i64,
    },
}

/// Epoch → start offset, in increasing order of both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochHistory {
    entries: Vec<(i32, i64)>,
}

impl EpochHistory {
    /// The history of `entries` (epoch, start offset), which must increase
    /// in both, as a checkpoint read back holds them.
    pub fn from_entries(entries: Vec<(i32, i64)>) -> EpochHistory {
        EpochHistory { entries }
    }

    /// Every epoch and the offset its records start at, oldest first.
    /// Every change of the history adds or removes entries, so their count
    /// tells whether it changed.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Notes that records of `epoch` start at `offset` (ignored unless the
    /// epoch is newer than the latest known).
    pub fn assign(&mut self, epoch: i32, offset: i64) {
        if epoch < 0 {
            return;
        }
        match self.entries.last() {
            Some((last, _)) if *last >= epoch => {}
            _ => self.entries.push((epoch, offset)),
        }
    }

    /// The latest epoch with records (or assigned by a new leader).
    pub fn latest(&self) -> i32 {
        self.entries.last().map(|e| e.0).unwrap_or(UNDEFINED_EPOCH)
    }

    /// Kafka's OffsetForLeaderEpoch answer for `epoch` on a log ending at
    /// `log_end`: the largest epoch at or below it, and the offset where
    /// that epoch's records end (where the next epoch starts, or the log
    /// end for the latest). An epoch older than the whole history ends
    /// where the history starts, as in Kafka: a consumer that read an empty
    /// partition in epoch 0 and asks after the leader moved on must not
    /// be told its position was truncated away.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> (i32, i64) {
        if epoch < 0 {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        let i = self.entries.partition_point(|(e, _)| *e <= epoch);
        if i == 0 {
            return match self.entries.first() {
                Some((_, start)) => (epoch, *start),
                None => (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            };
        }
        let found = self.entries[i - 1].0;
        match self.entries.get(i) {
            Some((_, next_start)) => (found, *next_start),
            None => (found, log_end),
        }
    }

    /// The epoch whose records hold `offset` (-1 when unknown).
    pub fn epoch_at(&self, offset: i64) -> i32 {
        let i = self.entries.partition_point(|(_, start)| *start <= offset);
        if i == 0 {
            UNDEFINED_EPOCH
        } else {
            self.entries[i - 1].0
        }
    }

    /// Whether a follower whose log ends at `fetch_offset` with records of
    /// `last_fetched_epoch` (-1: none) has records this log (ending at
    /// `log_end`) does not: then it must truncate to the returned end
    /// offset before fetching.
    pub fn divergence(
        &self,
        last_fetched_epoch: i32,
        fetch_offset: i64,
        log_end: i64,
    ) -> Option<ReplicaFetch> {
        if last_fetched_epoch < 0 {
            return None;
        }
        let first = self.entries.first().copied();
        if first.is_none_or(|(e, _)| last_fetched_epoch < e) {
            // Older than anything here: only what precedes this log's first
            // known epoch can be shared.
            let first = first.map(|e| e.1).unwrap_or(log_end);
            return (fetch_offset > first).then_some(ReplicaFetch::Diverging {
                epoch: UNDEFINED_EPOCH,
                end_offset: first,
            });
        }
        let (epoch, end_offset) = self.end_offset_for(last_fetched_epoch, log_end);
        (epoch != last_fetched_epoch || end_offset < fetch_offset)
            .then_some(ReplicaFetch::Diverging { epoch, end_offset })
    }

    /// Forgets epochs whose records were all truncated away (start at or
    /// after `offset`).
    pub fn truncate_from(&mut self, offset: i64) {
        self.entries.retain(|(_, start)| *start < offset);
    }

    /// Forgets epochs that ended before `offset` (records deleted from the
    /// start of the log), keeping the one that covers it.
    pub fn truncate_before(&mut self, offset: i64) {
        let covering = self.entries.partition_point(|(_, start)| *start <= offset);
        if covering > 1 {
            self.entries.drain(..covering - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> EpochHistory {
        let mut h = EpochHistory::default();
        for (e, o) in [(0, 0), (0, 5), (2, 10), (1, 12), (5, 20)] {
            h.assign(e, o);
        }
        h
    }

    #[test]
    fn end_offsets_follow_kafkas_rules() {
        let h = history();
        let cases = [
            (-1, (UNDEFINED_EPOCH, UNDEFINED_OFFSET)),
            (0, (0, 10)),
            (1, (0, 10)),
            (2, (2, 20)),
            (4, (2, 20)),
            (5, (5, 30)),
            (9, (5, 30)),
        ];
        for (epoch, want) in cases {
            assert_eq!(h.end_offset_for(epoch, 30), want, "epoch {epoch}");
        }
        assert_eq!(h.latest(), 5);
        assert_eq!(
            [0, 9, 10, 19, 20, 99].map(|o| h.epoch_at(o)),
            [0, 0, 2, 2, 5, 5]
        );
    }

    #[test]
    fn divergence_is_found_where_the_logs_part() {
        use ReplicaFetch::Diverging;
        let h = history();
        let cases = [
            // (follower's last epoch, its log end, verdict)
            (-1, 0, None),
            (5, 30, None),
            (5, 25, None),
            (2, 20, None),
            (2, 15, None),
            // It wrote in epoch 2 past where epoch 2 ended here.
            (
                2,
                22,
                Some(Diverging {
                    epoch: 2,
                    end_offset: 20,
                }),
            ),
            // Epochs 3 and 4 never had records here.
            (
                3,
                22,
                Some(Diverging {
                    epoch: 2,
                    end_offset: 20,
                }),
            ),
            (
                0,
                12,
                Some(Diverging {
                    epoch: 0,
                    end_offset: 10,
                }),
            ),
        ];
        for (epoch, end, want) in cases {
            assert_eq!(
                h.divergence(epoch, end, 30),
                want,
                "epoch {epoch} end {end}"
            );
        }
        // A leader whose history starts at epoch 1, offset 0, and a follower
        // with a stray epoch 0 and no records: nothing to truncate.
        let mut h = EpochHistory::default();
        h.assign(1, 0);
        assert_eq!(h.divergence(0, 0, 0), None);
        let mut h = EpochHistory::default();
        h.assign(1, 10);
        assert_eq!(
            h.divergence(0, 15, 40),
            Some(Diverging {
                epoch: UNDEFINED_EPOCH,
                end_offset: 10
            })
        );
    }

    #[test]
    fn truncation_forgets_epochs_without_records() {
        let mut h = history();
        h.truncate_from(20);
        assert_eq!(h.latest(), 2);
        h.truncate_from(3);
        assert_eq!(h.latest(), 0);
        let mut h = history();
        h.truncate_before(15);
        assert_eq!(h.end_offset_for(0, 30), (0, 10));
        assert_eq!(h.end_offset_for(2, 30), (2, 20));
        let mut h = EpochHistory::default();
        assert_eq!(h.end_offset_for(0, 0), (UNDEFINED_EPOCH, UNDEFINED_OFFSET));
        // A leader's new epoch on an empty log; a consumer still in epoch 0.
        h.assign(2, 0);
        assert_eq!(h.end_offset_for(0, 0), (0, 0));
    }
}
