//! The balancer's arithmetic: where replicas and preferred leaders should
//! be so brokers carry even shares of replicas, bytes and leaders, moving
//! as few replicas as that takes. A pure function of the placement as it is.
//!
//! Three passes, each keeping what the one before reached:
//! 1. replica counts: a replica goes from the fullest broker to the
//!    emptiest until no two brokers differ by more than one; of the
//!    candidates, the one that brings both brokers' bytes nearest the mean;
//! 2. bytes: between the brokers with most and least bytes, a move (while
//!    counts stay within one) or a swap of a bigger replica for a smaller
//!    one, while the gap narrows and is more than a tolerance;
//! 3. leaders: replicas reordered within partitions until no two brokers
//!    are the preferred leader of more than one partition apart.
//!
//! A replica only moves where its partition keeps as many racks as it had,
//! and replicas on brokers outside the given set stay where they are.

use std::collections::BTreeMap;

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// Size of the partition's log (its largest replica's), in bytes.
    pub bytes: u64,
}

/// The brokers to spread over, with their racks (`None`: no rack).
pub type Brokers = BTreeMap<i32, Option<String>>;

/// How far from the mean a broker's bytes may be before the bytes pass
/// moves anything: a fortieth of it (2.5 %), leaving room for what is
/// written while the replicas move.
const BYTES_TOLERANCE: u64 = 40;

/// The placements that change, with their new replicas.
pub fn plan(brokers: &Brokers, partitions: &[Placement]) -> Vec<Placement> {
    let mut layout = Layout::new(brokers, partitions);
    layout.even_counts();
    layout.even_bytes();
    layout.even_leaders();
    partitions
        .iter()
        .zip(layout.replicas)
        .filter(|(p, replicas)| p.replicas != *replicas)
        .map(|(p, replicas)| Placement {
            replicas,
            ..p.clone()
        })
        .collect()
}

/// The placement being worked on, with each broker's totals.
struct Layout<'a> {
    brokers: &'a Brokers,
    replicas: Vec<Vec<i32>>,
    sizes: Vec<u64>,
    counts: BTreeMap<i32, usize>,
    bytes: BTreeMap<i32, u64>,
}

impl<'a> Layout<'a> {
    fn new(brokers: &'a Brokers, partitions: &[Placement]) -> Self {
        let mut counts: BTreeMap<i32, usize> = brokers.keys().map(|b| (*b, 0)).collect();
        let mut bytes: BTreeMap<i32, u64> = brokers.keys().map(|b| (*b, 0)).collect();
        for p in partitions {
            for r in &p.replicas {
                if let Some(n) = counts.get_mut(r) {
                    *n += 1;
                }
                if let Some(n) = bytes.get_mut(r) {
                    *n += p.bytes;
                }
            }
        }
        Self {
            brokers,
            replicas: partitions.iter().map(|p| p.replicas.clone()).collect(),
            sizes: partitions.iter().map(|p| p.bytes).collect(),
            counts,
            bytes,
        }
    }

    /// Whether partition `p` keeps as many racks with `to` instead of
    /// `from`: unless `to`'s rack is there already while `from`'s would go.
    fn racks_kept(&self, p: usize, from: i32, to: i32) -> bool {
        let rack = |b: i32| self.brokers.get(&b).and_then(|r| r.as_deref());
        let (leaving, coming) = (rack(from), rack(to));
        if leaving == coming {
            return true;
        }
        let mut others = self.replicas[p]
            .iter()
            .filter(|r| **r != from)
            .map(|r| rack(*r));
        let (mut has_leaving, mut has_coming) = (false, false);
        for r in others.by_ref() {
            has_leaving |= r == leaving;
            has_coming |= r == coming;
        }
        has_leaving || !has_coming
    }

    /// Whether partition `p`'s replica on `from` may go to `to`.
    fn movable(&self, p: usize, from: i32, to: i32) -> bool {
        self.replicas[p].contains(&from)
            && !self.replicas[p].contains(&to)
            && self.racks_kept(p, from, to)
    }

    fn move_replica(&mut self, p: usize, from: i32, to: i32) {
        for r in self.replicas[p].iter_mut().filter(|r| **r == from) {
            *r = to;
        }
        let size = self.sizes[p];
        *self.counts.entry(from).or_default() -= 1;
        *self.counts.entry(to).or_default() += 1;
        *self.bytes.entry(from).or_default() -= size;
        *self.bytes.entry(to).or_default() += size;
    }

    fn mean_bytes(&self) -> u64 {
        let total: u64 = self.bytes.values().sum();
        total / self.bytes.len().max(1) as u64
    }

    /// Brokers from the fewest replicas to the most (then bytes, then id).
    fn by_count(&self) -> Vec<i32> {
        let mut order: Vec<i32> = self.counts.keys().copied().collect();
        order.sort_by_key(|b| (self.counts[b], self.bytes[b], *b));
        order
    }

    /// Pass 1: no two brokers more than one replica apart.
    fn even_counts(&mut self) {
        while let Some((p, from, to)) = self.count_move() {
            self.move_replica(p, from, to);
        }
    }

    /// The next replica to move for counts: from the fullest broker that
    /// has a movable replica to the emptiest that can take it.
    fn count_move(&self) -> Option<(usize, i32, i32)> {
        let order = self.by_count();
        let mean = self.mean_bytes() as i128;
        for &from in order.iter().rev() {
            for &to in &order {
                if self.counts[&from] <= self.counts[&to] + 1 {
                    break;
                }
                let (have_from, have_to) = (self.bytes[&from] as i128, self.bytes[&to] as i128);
                let best = (0..self.replicas.len())
                    .filter(|p| self.movable(*p, from, to))
                    .min_by_key(|p| {
                        let s = self.sizes[*p] as i128;
                        (
                            (have_from - s - mean).abs() + (have_to + s - mean).abs(),
                            *p,
                        )
                    });
                if let Some(p) = best {
                    return Some((p, from, to));
                }
            }
        }
        None
    }

    /// Pass 2: the bytes of the fullest and emptiest broker brought
    /// together, counts kept within one.
    fn even_bytes(&mut self) {
        // Each step narrows the widest gap; the bound only guards against
        // steps that trade one gap for another forever.
        for _ in 0..self.replicas.len() {
            let mean = self.mean_bytes();
            let Some((&most, _)) = self.bytes.iter().max_by_key(|(b, n)| (**n, -**b)) else {
                return;
            };
            let Some((&least, _)) = self.bytes.iter().min_by_key(|(b, n)| (**n, **b)) else {
                return;
            };
            let tolerance = mean / BYTES_TOLERANCE;
            if self.bytes[&most] <= mean + tolerance && self.bytes[&least] + tolerance >= mean {
                return;
            }
            match self.bytes_step(most, least) {
                Some(Step::Move(p)) => self.move_replica(p, most, least),
                Some(Step::Swap(p, q)) => {
                    self.move_replica(p, most, least);
                    self.move_replica(q, least, most);
                }
                None => return,
            }
        }
    }

    /// The move or swap between `most` and `least` that leaves the
    /// smallest gap between them, if it is smaller than now.
    fn bytes_step(&self, most: i32, least: i32) -> Option<Step> {
        let gap = (self.bytes[&most] - self.bytes[&least]) as i128;
        let on_most: Vec<usize> = (0..self.replicas.len())
            .filter(|p| self.movable(*p, most, least))
            .collect();
        let on_least: Vec<usize> = (0..self.replicas.len())
            .filter(|q| self.movable(*q, least, most))
            .collect();
        let mut best: Option<(i128, Step)> = None;
        let mut consider = |left: i128, step: Step| {
            if left < gap && best.as_ref().is_none_or(|(b, _)| left < *b) {
                best = Some((left, step));
            }
        };
        if self.counts[&most] > self.counts[&least] {
            for &p in &on_most {
                let s = self.sizes[p] as i128;
                consider((gap - 2 * s).abs(), Step::Move(p));
            }
        }
        // For each replica leaving `most`, the best one to come back is
        // the one nearest `size - gap / 2`: found by binary search over
        // `least`'s replicas sorted by size (and its neighbour).
        let mut returning: Vec<(u64, usize)> =
            on_least.iter().map(|q| (self.sizes[*q], *q)).collect();
        returning.sort_unstable();
        for &p in &on_most {
            let ideal = (self.sizes[p] as i128 - gap / 2).max(0) as u64;
            let at = returning.partition_point(|(s, _)| *s < ideal);
            for &(size, q) in returning[at.saturating_sub(1)..returning.len().min(at + 1)].iter() {
                let d = self.sizes[p] as i128 - size as i128;
                if d > 0 && p != q {
                    consider((gap - 2 * d).abs(), Step::Swap(p, q));
                }
            }
        }
        best.map(|(_, step)| step)
    }

    /// Pass 3: preferred leaders spread, by reordering replicas only.
    fn even_leaders(&mut self) {
        let mut leads: BTreeMap<i32, usize> = self.brokers.keys().map(|b| (*b, 0)).collect();
        for replicas in &self.replicas {
            if let Some(n) = replicas.first().and_then(|b| leads.get_mut(b)) {
                *n += 1;
            }
        }
        loop {
            let mut order: Vec<i32> = leads.keys().copied().collect();
            order.sort_by_key(|b| (leads[b], *b));
            let found = order.iter().rev().find_map(|&from| {
                order
                    .iter()
                    .take_while(|to| leads[&from] > leads[to] + 1)
                    .find_map(|&to| {
                        self.replicas
                            .iter()
                            .position(|r| r.first() == Some(&from) && r.contains(&to))
                            .map(|p| (p, from, to))
                    })
            });
            let Some((p, from, to)) = found else {
                return;
            };
            if let Some(i) = self.replicas[p].iter().position(|r| *r == to) {
                self.replicas[p].swap(0, i);
            }
            *leads.entry(from).or_default() -= 1;
            *leads.entry(to).or_default() += 1;
        }
    }
}

/// A step of the bytes pass: partition indices.
enum Step {
    /// Partition `.0`'s replica goes from the fullest to the emptiest.
    Move(usize),
    /// Partition `.0`'s replica goes to the emptiest, `.1`'s comes back.
    Swap(usize, usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn brokers(ids: &[i32]) -> Brokers {
        ids.iter().map(|b| (*b, None)).collect()
    }

    fn racked(ids: &[(i32, &str)]) -> Brokers {
        ids.iter().map(|(b, r)| (*b, Some(r.to_string()))).collect()
    }

    /// `count` partitions of topic `t`, replicas laid out round-robin over
    /// `over` brokers as Kafka places a new topic, each `bytes` big.
    fn topic(t: &str, count: i32, rf: usize, over: &[i32], bytes: u64) -> Vec<Placement> {
        (0..count)
            .map(|p| Placement {
                topic: t.into(),
                partition: p,
                replicas: (0..rf)
                    .map(|i| over[(p as usize + i) % over.len()])
                    .collect(),
                bytes,
            })
            .collect()
    }

    /// Each broker's replicas, bytes and preferred leaderships after
    /// applying `changes` to `before`.
    fn shares(
        brokers: &Brokers,
        before: &[Placement],
        changes: &[Placement],
    ) -> BTreeMap<i32, (usize, u64, usize)> {
        let mut after: BTreeMap<(String, i32), Placement> = before
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.clone()))
            .collect();
        for c in changes {
            after.insert((c.topic.clone(), c.partition), c.clone());
        }
        let mut out: BTreeMap<i32, (usize, u64, usize)> =
            brokers.keys().map(|b| (*b, (0, 0, 0))).collect();
        for p in after.values() {
            for (i, r) in p.replicas.iter().enumerate() {
                let e = out.entry(*r).or_default();
                e.0 += 1;
                e.1 += p.bytes;
                if i == 0 {
                    e.2 += 1;
                }
            }
        }
        out
    }

    /// Replicas that must be copied: replicas in `changes` not in `before`.
    fn copied(before: &[Placement], changes: &[Placement]) -> usize {
        changes
            .iter()
            .map(|c| {
                let old = before
                    .iter()
                    .find(|p| p.topic == c.topic && p.partition == c.partition)
                    .map(|p| p.replicas.clone())
                    .unwrap_or_default();
                c.replicas.iter().filter(|r| !old.contains(r)).count()
            })
            .sum()
    }

    fn spread<T: Copy + Ord + Into<u64>>(values: impl Iterator<Item = T>) -> (u64, u64) {
        let v: Vec<u64> = values.map(Into::into).collect();
        (
            v.iter().copied().min().unwrap_or(0),
            v.iter().copied().max().unwrap_or(0),
        )
    }

    #[test]
    fn scale_up_from_three_to_five_evens_every_share() {
        let before = topic("events", 10, 3, &[0, 1, 2], 1000);
        let five = brokers(&[0, 1, 2, 3, 4]);
        let changes = plan(&five, &before);
        let after = shares(&five, &before, &changes);
        for (b, (replicas, bytes, leaders)) in &after {
            assert_eq!(*replicas, 6, "broker {b}: {after:?}");
            assert_eq!(*bytes, 6000, "broker {b}");
            assert_eq!(*leaders, 2, "broker {b}: {after:?}");
        }
        // 30 replicas, 12 of them belong on the new brokers: no more moves.
        assert_eq!(copied(&before, &changes), 12);
    }

    #[test]
    fn a_balanced_cluster_is_left_alone() {
        let before = topic("t", 6, 2, &[0, 1, 2], 500);
        assert!(plan(&brokers(&[0, 1, 2]), &before).is_empty());
    }

    #[test]
    fn bytes_even_out_when_sizes_differ() {
        // Equal counts, but broker 0 holds the big partitions.
        let mut before = Vec::new();
        for (p, replicas, bytes) in [
            (0, vec![0], 9000u64),
            (1, vec![0], 9000),
            (2, vec![1], 1000),
            (3, vec![1], 1000),
            (4, vec![2], 5000),
            (5, vec![2], 5000),
        ] {
            before.push(Placement {
                topic: "t".into(),
                partition: p,
                replicas,
                bytes,
            });
        }
        let three = brokers(&[0, 1, 2]);
        let changes = plan(&three, &before);
        let after = shares(&three, &before, &changes);
        let (least, most) = spread(after.values().map(|s| s.1));
        assert!(
            most - least <= 2000,
            "bytes not even: {after:?} after {changes:?}"
        );
        let (fewest, most_replicas) = spread(after.values().map(|s| s.0 as u64));
        assert!(most_replicas - fewest <= 1, "{after:?}");
    }

    #[test]
    fn racks_are_kept() {
        // Two racks, each partition on both; the new broker 4 is in rack a.
        let before = topic("t", 8, 2, &[0, 1, 2, 3], 100);
        let before: Vec<Placement> = before
            .into_iter()
            .map(|mut p| {
                // Brokers 0 and 2 in rack a, 1 and 3 in rack b: make every
                // partition span both.
                p.replicas = match p.partition % 4 {
                    0 => vec![0, 1],
                    1 => vec![1, 2],
                    2 => vec![2, 3],
                    _ => vec![3, 0],
                };
                p
            })
            .collect();
        let cluster = racked(&[(0, "a"), (1, "b"), (2, "a"), (3, "b"), (4, "a"), (5, "b")]);
        let changes = plan(&cluster, &before);
        let after = shares(&cluster, &before, &changes);
        let (fewest, most) = spread(after.values().map(|s| s.0 as u64));
        assert!(most - fewest <= 1, "{after:?}");
        for c in &changes {
            let racks: BTreeSet<_> = c.replicas.iter().map(|r| cluster[r].clone()).collect();
            assert_eq!(racks.len(), 2, "{c:?} lost a rack");
        }
    }

    #[test]
    fn replicas_on_other_brokers_stay() {
        // Broker 9 is not among those to spread over (it is leaving).
        let before = vec![Placement {
            topic: "t".into(),
            partition: 0,
            replicas: vec![9, 0],
            bytes: 10,
        }];
        let changes = plan(&brokers(&[0, 1]), &before);
        assert!(changes.iter().all(|c| c.replicas.contains(&9)));
    }

    #[test]
    fn leaders_spread_by_reordering_only() {
        // Every partition prefers broker 0.
        let before: Vec<Placement> = (0..6)
            .map(|p| Placement {
                topic: "t".into(),
                partition: p,
                replicas: vec![0, 1, 2],
                bytes: 10,
            })
            .collect();
        let three = brokers(&[0, 1, 2]);
        let changes = plan(&three, &before);
        assert_eq!(copied(&before, &changes), 0);
        let after = shares(&three, &before, &changes);
        assert!(after.values().all(|s| s.2 == 2), "{after:?}");
    }

    #[test]
    fn a_large_cluster_of_uneven_partitions() {
        // 2000 partitions of sizes spread over two orders of magnitude,
        // three brokers to six.
        let mut before = topic("t", 2000, 3, &[0, 1, 2], 0);
        let mut seed = 7u64;
        for p in &mut before {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            p.bytes = 1_000 + (seed >> 33) % 100_000;
        }
        let six = brokers(&[0, 1, 2, 3, 4, 5]);
        let changes = plan(&six, &before);
        let after = shares(&six, &before, &changes);
        let (fewest, most) = spread(after.values().map(|s| s.0 as u64));
        assert!(most - fewest <= 1, "{after:?}");
        let (least, most) = spread(after.values().map(|s| s.1));
        assert!(
            (most - least) * 10 <= least,
            "bytes not within 10 %: {after:?}"
        );
        let (fewest, most) = spread(after.values().map(|s| s.2 as u64));
        assert!(most - fewest <= 1, "{after:?}");
    }

    #[test]
    fn several_topics_with_single_replicas() {
        let mut before = topic("a", 5, 1, &[0, 1], 300);
        before.extend(topic("b", 7, 1, &[0], 100));
        let four = brokers(&[0, 1, 2, 3]);
        let changes = plan(&four, &before);
        let after = shares(&four, &before, &changes);
        let (fewest, most) = spread(after.values().map(|s| s.0 as u64));
        assert!(most - fewest <= 1, "{after:?}");
    }
}
