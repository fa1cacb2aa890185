//! One incremental fetch session (KIP-227): the partitions a fetcher reads,
//! in the order they are read, each with what the fetcher last asked and
//! what it was last told. An incremental fetch names only what changed;
//! its answer holds only the partitions with something to say.

use uuid::Uuid;

use crate::replica_manager::fetch::FetchPosition;

/// A topic as the session's fetches name it: by id from Fetch v13, by
/// name before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionTopic {
    /// By name (Fetch v7-v12).
    Name(String),
    /// By id (Fetch v13+).
    Id(Uuid),
}

/// A partition a fetch names, and where to read it from.
pub type Named = (SessionTopic, FetchPosition);

/// A partition a fetch forgets: its topic and index.
pub type Forgotten = (SessionTopic, i32);

/// A partition of the session: where the fetcher reads it from, and the
/// offsets it was last told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPartition {
    /// Its topic.
    pub topic: SessionTopic,
    /// What the fetcher asked last.
    pub position: FetchPosition,
    /// The high watermark last sent (-1: none, or an error was).
    high_watermark: i64,
    /// The log start offset last sent.
    log_start_offset: i64,
}

/// What a partition answers this time, as far as the session cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAnswer {
    /// Record bytes it carries.
    pub records: usize,
    /// Its high watermark.
    pub high_watermark: i64,
    /// Its log start offset.
    pub log_start_offset: i64,
    /// Whether it answers an error (or a diverging log).
    pub failed: bool,
}

impl CachedPartition {
    /// A partition a fetch just named, nothing sent yet.
    pub fn new(topic: SessionTopic, position: FetchPosition) -> CachedPartition {
        CachedPartition {
            topic,
            position,
            high_watermark: -1,
            log_start_offset: -1,
        }
    }

    /// Whether `answer` must be sent (records, an error, or offsets the
    /// fetcher has not been told), remembering what is sent when
    /// `update` (not when the answer is held back by a throttle).
    pub fn must_send(&mut self, answer: &PartitionAnswer, update: bool) -> bool {
        let mut send = answer.records > 0 || answer.failed;
        if self.high_watermark != answer.high_watermark {
            send = true;
            if update {
                self.high_watermark = answer.high_watermark;
            }
        }
        if self.log_start_offset != answer.log_start_offset {
            send = true;
            if update {
                self.log_start_offset = answer.log_start_offset;
            }
        }
        if answer.failed && update {
            // Sent again once the error has gone.
            self.high_watermark = -1;
        }
        send
    }
}

/// A fetch session.
#[derive(Debug, Clone)]
pub struct FetchSession {
    /// Its id, as the fetcher names it.
    pub id: i32,
    /// Whether a follower broker fetches with it (kept over consumers'
    /// sessions when the cache is full).
    pub privileged: bool,
    /// Whether its fetches name topics by id (Fetch v13+).
    pub uses_topic_ids: bool,
    /// The epoch its next fetch must carry.
    pub epoch: i32,
    /// When it was created and last used (milliseconds).
    pub created_ms: i64,
    /// When it was last used.
    pub last_used_ms: i64,
    /// Its partitions, in the order they are read.
    pub partitions: Vec<CachedPartition>,
}

/// The epoch after `epoch`: 1 after i32::MAX, never 0 (a new session) or
/// -1 (no session).
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FetchSession {
    /// Applies an incremental fetch: the partitions it names are added or
    /// updated (new ones at the end), those it forgets removed.
    pub fn update(&mut self, named: Vec<Named>, forgotten: &[Forgotten]) {
        self.partitions.retain(|p| {
            !forgotten
                .iter()
                .any(|(t, i)| *t == p.topic && *i == p.position.partition)
        });
        for (topic, position) in named {
            match self
                .partitions
                .iter_mut()
                .find(|p| p.topic == topic && p.position.partition == position.partition)
            {
                Some(p) => p.position = position,
                None => self.partitions.push(CachedPartition::new(topic, position)),
            }
        }
    }

    /// Which partitions of an answer (`answers`, in the order of
    /// `partitions`) an incremental response carries. Unless the answer
    /// is held back (`update` false), the session remembers what was
    /// sent, and the partitions sent move to the end, so the next reads
    /// start with the others (the fetch's byte limit is shared fairly).
    pub fn respond(&mut self, answers: &[PartitionAnswer], update: bool) -> Vec<bool> {
        let sent: Vec<bool> = self
            .partitions
            .iter_mut()
            .zip(answers)
            .map(|(p, a)| p.must_send(a, update))
            .collect();
        if update && sent.iter().any(|s| *s) {
            let (mut moved, mut kept) = (Vec::new(), Vec::new());
            for (p, s) in std::mem::take(&mut self.partitions).into_iter().zip(&sent) {
                if *s {
                    moved.push(p);
                } else {
                    kept.push(p);
                }
            }
            kept.extend(moved);
            self.partitions = kept;
        }
        sent
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Partition `partition` read from `fetch_offset`, 1 MiB at most.
    pub(crate) fn at(partition: i32, fetch_offset: i64) -> FetchPosition {
        FetchPosition {
            partition,
            fetch_offset,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            max_bytes: 1 << 20,
        }
    }

    fn answer(records: usize, high_watermark: i64, failed: bool) -> PartitionAnswer {
        PartitionAnswer {
            records,
            high_watermark,
            log_start_offset: 0,
            failed,
        }
    }

    #[test]
    fn a_partition_is_sent_with_records_errors_or_new_offsets_only() {
        let t = || SessionTopic::Name("t".into());
        // (answer, sent before with hw 10, must send)
        let cases = [
            (answer(0, 10, false), false),
            (answer(5, 10, false), true),
            (answer(0, 11, false), true),
            (answer(0, 10, true), true),
            (
                PartitionAnswer {
                    log_start_offset: 3,
                    ..answer(0, 10, false)
                },
                true,
            ),
        ];
        for (a, want) in cases {
            let mut p = CachedPartition::new(t(), at(0, 0));
            assert!(p.must_send(&answer(0, 10, false), true), "first answer");
            assert_eq!(p.must_send(&a, true), want, "{a:?}");
        }
        // Held back: nothing is remembered, so it is sent next time.
        let mut p = CachedPartition::new(t(), at(0, 0));
        assert!(p.must_send(&answer(0, 10, false), false));
        assert!(p.must_send(&answer(0, 10, false), true));
        // After an error, the partition is sent again when it clears.
        assert!(p.must_send(&answer(0, 10, true), true));
        assert!(p.must_send(&answer(0, 10, false), true));
    }

    #[test]
    fn incremental_fetches_update_add_and_forget_and_sent_partitions_go_last() {
        let t = |n: &str| SessionTopic::Name(n.into());
        let mut s = FetchSession {
            id: 1,
            privileged: false,
            uses_topic_ids: false,
            epoch: 1,
            created_ms: 0,
            last_used_ms: 0,
            partitions: vec![
                CachedPartition::new(t("a"), at(0, 0)),
                CachedPartition::new(t("a"), at(1, 0)),
                CachedPartition::new(t("b"), at(0, 0)),
            ],
        };
        s.update(vec![(t("a"), at(1, 7)), (t("c"), at(0, 0))], &[(t("b"), 0)]);
        let order: Vec<_> = s
            .partitions
            .iter()
            .map(|p| {
                (
                    p.topic.clone(),
                    p.position.partition,
                    p.position.fetch_offset,
                )
            })
            .collect();
        assert_eq!(order, [(t("a"), 0, 0), (t("a"), 1, 7), (t("c"), 0, 0)]);
        // First answers: all new to the fetcher.
        let quiet = answer(0, 0, false);
        assert_eq!(s.respond(&[quiet; 3], true), [true, true, true]);
        // Then only a/1 has records: it alone is sent, and moves last.
        assert_eq!(
            s.respond(&[quiet, answer(9, 0, false), quiet], true),
            [false, true, false]
        );
        let order: Vec<_> = s
            .partitions
            .iter()
            .map(|p| (p.topic.clone(), p.position.partition))
            .collect();
        assert_eq!(order, [(t("a"), 0), (t("c"), 0), (t("a"), 1)]);
    }

    #[test]
    fn epochs_wrap_past_zero_and_minus_one() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
