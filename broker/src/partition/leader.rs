//! What a partition leader knows about its followers, and what it decides
//! from that: the high watermark (the smallest log end among the ISR), which
//! followers have caught up and may join the ISR, and which fell behind for
//! longer than `replica.lag.time.max.ms` and must leave it. Pure: time and
//! offsets come in as arguments.

use std::collections::BTreeMap;

use crate::metadata::image::PartitionImage;

/// An ISR change the leader wants from the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The partition epoch it has seen.
    pub partition_epoch: i32,
    /// The ISR it wants.
    pub isr: Vec<i32>,
}

/// One follower's progress as seen from its fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    /// Its log end (the offset it last fetched from).
    log_end: i64,
    /// Last time it was caught up with the leader.
    caught_up_ms: i64,
    /// When it last fetched, and the leader's log end then.
    last_fetch_ms: i64,
    leader_end_at_last_fetch: i64,
}

/// The leader's side of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    /// This broker.
    pub me: i32,
    /// Its leader epoch.
    pub epoch: i32,
    /// The partition epoch of the ISR below.
    pub partition_epoch: i32,
    /// All replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas, as committed in the metadata.
    pub isr: Vec<i32>,
    /// Where this epoch's records start: a follower is not in sync before
    /// it has reached it.
    pub epoch_start: i64,
    /// The high watermark.
    pub high_watermark: i64,
    followers: BTreeMap<i32, Progress>,
}

impl LeaderState {
    /// Leadership of `image` taken at `now` with the log ending at
    /// `log_end`; followers in the ISR are presumed caught up until they
    /// show otherwise.
    pub fn new(
        me: i32,
        image: &PartitionImage,
        log_end: i64,
        high_watermark: i64,
        now: i64,
    ) -> Self {
        let (epoch, partition_epoch) = (image.leader_epoch, image.partition_epoch);
        let (replicas, isr) = (image.replicas.clone(), image.isr.clone());
        let followers = replicas
            .iter()
            .filter(|r| **r != me)
            .map(|r| {
                (
                    *r,
                    Progress {
                        log_end: -1,
                        caught_up_ms: if isr.contains(r) { now } else { 0 },
                        last_fetch_ms: 0,
                        leader_end_at_last_fetch: -1,
                    },
                )
            })
            .collect();
        let mut s = LeaderState {
            me,
            epoch,
            partition_epoch,
            replicas,
            isr,
            epoch_start: log_end,
            high_watermark: high_watermark.min(log_end),
            followers,
        };
        s.advance(log_end);
        s
    }

    /// New ISR or replicas from the metadata (same epoch).
    pub fn update(&mut self, partition_epoch: i32, replicas: Vec<i32>, isr: Vec<i32>, now: i64) {
        for r in &replicas {
            if *r != self.me && !self.followers.contains_key(r) {
                self.followers.insert(
                    *r,
                    Progress {
                        log_end: -1,
                        caught_up_ms: 0,
                        last_fetch_ms: 0,
                        leader_end_at_last_fetch: -1,
                    },
                );
            }
        }
        for r in &isr {
            if let Some(p) = self.followers.get_mut(r) {
                if !self.isr.contains(r) {
                    p.caught_up_ms = now;
                }
            }
        }
        self.followers.retain(|r, _| replicas.contains(r));
        self.partition_epoch = partition_epoch;
        self.replicas = replicas;
        self.isr = isr;
    }

    /// Moves the high watermark to the smallest log end among the ISR;
    /// returns whether it moved. It never moves back.
    pub fn advance(&mut self, log_end: i64) -> bool {
        let min = self
            .isr
            .iter()
            .map(|r| {
                if *r == self.me {
                    log_end
                } else {
                    self.followers.get(r).map(|p| p.log_end).unwrap_or(-1)
                }
            })
            .min()
            .unwrap_or(log_end);
        if min > self.high_watermark {
            self.high_watermark = min;
            true
        } else {
            false
        }
    }

    /// A follower fetched from `fetch_offset` at `now` while the leader's
    /// log ended at `log_end`. Returns whether the high watermark moved.
    pub fn on_fetch(&mut self, follower: i32, fetch_offset: i64, log_end: i64, now: i64) -> bool {
        let Some(p) = self.followers.get_mut(&follower) else {
            return false;
        };
        if fetch_offset >= log_end {
            p.caught_up_ms = now;
        } else if fetch_offset >= p.leader_end_at_last_fetch && p.leader_end_at_last_fetch >= 0 {
            // It has everything the leader had at its previous fetch.
            p.caught_up_ms = p.caught_up_ms.max(p.last_fetch_ms);
        }
        p.log_end = fetch_offset;
        p.last_fetch_ms = now;
        p.leader_end_at_last_fetch = log_end;
        self.advance(log_end)
    }

    /// The ISR the leader should ask for now, if it differs from the
    /// committed one: out-of-sync followers that caught up join, and
    /// followers silent or behind for longer than `max_lag_ms` leave.
    fn wanted_isr(&self, now: i64, max_lag_ms: i64) -> Option<Vec<i32>> {
        let mut isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.me
                    || self
                        .followers
                        .get(r)
                        .is_some_and(|p| now - p.caught_up_ms <= max_lag_ms)
            })
            .collect();
        for (r, p) in &self.followers {
            if !isr.contains(r)
                && p.log_end >= self.high_watermark
                && p.log_end >= self.epoch_start
                && now - p.caught_up_ms <= max_lag_ms
            {
                isr.push(*r);
            }
        }
        (isr != self.isr).then_some(isr)
    }

    /// [`Self::wanted_isr`] as a request to the controller, naming the
    /// leadership and ISR version it is based on.
    pub fn isr_change(&self, now: i64, max_lag_ms: i64) -> Option<IsrChange> {
        self.wanted_isr(now, max_lag_ms).map(|isr| IsrChange {
            leader_epoch: self.epoch,
            partition_epoch: self.partition_epoch,
            isr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 10_000;

    fn image(
        epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
    ) -> PartitionImage {
        PartitionImage {
            replicas,
            isr,
            leader: 1,
            leader_epoch: epoch,
            partition_epoch,
            adding: vec![],
            removing: vec![],
            last_left_isr: None,
        }
    }

    /// Leader 1 with followers 2 and 3, all in sync at offset 100.
    fn leader() -> LeaderState {
        LeaderState::new(1, &image(5, 7, vec![1, 2, 3], vec![1, 2, 3]), 100, 100, 0)
    }

    #[test]
    fn the_high_watermark_is_the_smallest_isr_log_end() {
        let mut l = leader();
        assert_eq!(l.high_watermark, 100);
        // The leader appends up to 150; followers fetch at their pace.
        assert!(!l.on_fetch(2, 150, 150, 10));
        assert!(l.on_fetch(3, 120, 150, 10));
        assert_eq!(l.high_watermark, 120);
        assert!(l.on_fetch(3, 150, 150, 20));
        assert_eq!(l.high_watermark, 150);
        // It never moves back.
        l.on_fetch(2, 140, 150, 30);
        assert_eq!(l.high_watermark, 150);
    }

    #[test]
    fn a_lagging_follower_leaves_and_a_caught_up_one_returns() {
        let mut l = leader();
        let cases: &[(i64, i32, i64, Option<Vec<i32>>)] = &[
            // (now, fetching follower, its offset, ISR wanted afterwards)
            (1_000, 2, 100, None),
            (1_000, 3, 100, None),
            (9_000, 2, 100, None),
            // 3 has not fetched since 1 000: out after 10 s of silence.
            (11_500, 2, 100, Some(vec![1, 2])),
        ];
        for (now, f, offset, want) in cases {
            l.on_fetch(*f, *offset, 100, *now);
            assert_eq!(&l.wanted_isr(*now, LAG), want, "at {now}");
        }
        l.update(8, vec![1, 2, 3], vec![1, 2], 11_500);
        assert_eq!(l.wanted_isr(11_600, LAG), None);
        // 3 comes back behind: not yet; at the log end: back in.
        l.on_fetch(3, 50, 100, 12_000);
        assert_eq!(l.wanted_isr(12_000, LAG), None);
        l.on_fetch(3, 100, 100, 12_500);
        assert_eq!(l.wanted_isr(12_500, LAG), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_follower_that_keeps_up_under_load_stays_in_sync() {
        let mut l = leader();
        // The leader's log grows by 10 between fetches; the follower always
        // fetches from where the leader was at its previous fetch.
        let mut end = 100;
        for step in 1..100 {
            let now = step * 500;
            let offset = end;
            end += 10;
            l.on_fetch(2, offset, end, now);
            l.on_fetch(3, offset, end, now);
            assert_eq!(l.wanted_isr(now, LAG), None, "step {step}");
        }
    }

    #[test]
    fn a_new_leaders_followers_must_reach_its_epoch_start() {
        let mut l = LeaderState::new(1, &image(6, 0, vec![1, 2], vec![1]), 200, 150, 0);
        l.on_fetch(2, 180, 200, 100);
        assert_eq!(l.wanted_isr(100, LAG), None);
        l.on_fetch(2, 200, 200, 200);
        assert_eq!(l.wanted_isr(200, LAG), Some(vec![1, 2]));
    }
}
