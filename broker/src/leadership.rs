//! Which partitions of its internal topic a coordinator serves, which it is
//! loading and which it must give up, as their leadership moves: the group
//! coordinator's `__consumer_offsets`, the transaction coordinator's
//! `__transaction_state`. Pure: the coordinator reads and merges the
//! partitions; this decides when.
//!
//! A partition is loaded in a leader epoch. Its log is read without the
//! coordinator's lock, so by the time the read is done the partition may
//! have been given up, or given up and led again: the load merges only if
//! it is still the one wanted (its ticket) and the partition is still led
//! in the epoch the read began in. A served partition whose leader epoch
//! moved was led elsewhere meanwhile, so it is given up and loaded afresh.

use std::collections::HashMap;

/// What the coordinator does with one led partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Being read, under `ticket`, for `epoch`.
    Loading { ticket: u64, epoch: i32 },
    /// Loaded in `epoch`; its state is served.
    Serving { epoch: i32 },
}

/// A load to run: read partition `index`, led in `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadTicket {
    /// Partition index.
    pub index: i32,
    /// The leader epoch the load began in.
    pub epoch: i32,
    /// Tells this load from later ones of the same partition.
    ticket: u64,
}

/// What to do after leadership moved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// Served partitions to give up (their state is dropped).
    pub resign: Vec<i32>,
    /// Partitions to load.
    pub load: Vec<LoadTicket>,
}

/// The internal partitions a coordinator serves or loads.
#[derive(Debug, Default)]
pub struct Leadership {
    partitions: HashMap<i32, State>,
    tickets: u64,
}

impl Leadership {
    /// Follows the partitions led now, as `(index, leader epoch)`.
    pub fn follow(&mut self, led: &[(i32, i32)]) -> Moves {
        let now: HashMap<i32, i32> = led.iter().copied().collect();
        let mut moves = Moves::default();
        self.partitions.retain(|index, state| {
            let (epoch, serving) = match *state {
                State::Loading { epoch, .. } => (epoch, false),
                State::Serving { epoch } => (epoch, true),
            };
            let keep = now.get(index) == Some(&epoch);
            if !keep && serving {
                moves.resign.push(*index);
            }
            keep
        });
        for (index, epoch) in led {
            if self.partitions.contains_key(index) {
                continue;
            }
            self.tickets += 1;
            let ticket = self.tickets;
            self.partitions.insert(
                *index,
                State::Loading {
                    ticket,
                    epoch: *epoch,
                },
            );
            moves.load.push(LoadTicket {
                index: *index,
                epoch: *epoch,
                ticket,
            });
        }
        moves.resign.sort_unstable();
        moves.load.sort_unstable_by_key(|l| l.index);
        moves
    }

    /// Whether a finished load may be merged, the partition being led in
    /// `epoch_now` (`None`: not led here) now. If so the partition is
    /// served from here on; a load overtaken by leadership is forgotten,
    /// so the next `follow` loads the partition again if it is led.
    pub fn finish(&mut self, load: &LoadTicket, epoch_now: Option<i32>) -> bool {
        let current = State::Loading {
            ticket: load.ticket,
            epoch: load.epoch,
        };
        if self.partitions.get(&load.index) != Some(&current) {
            return false;
        }
        if epoch_now == Some(load.epoch) {
            self.partitions
                .insert(load.index, State::Serving { epoch: load.epoch });
            true
        } else {
            self.partitions.remove(&load.index);
            false
        }
    }

    /// Forgets a load that failed, so the next `follow` tries again.
    pub fn abandon(&mut self, load: &LoadTicket) {
        let current = State::Loading {
            ticket: load.ticket,
            epoch: load.epoch,
        };
        if self.partitions.get(&load.index) == Some(&current) {
            self.partitions.remove(&load.index);
        }
    }

    /// Whether partition `index` is being loaded.
    pub fn is_loading(&self, index: i32) -> bool {
        matches!(self.partitions.get(&index), Some(State::Loading { .. }))
    }

    /// Whether any partition is being loaded.
    pub fn any_loading(&self) -> bool {
        self.partitions
            .values()
            .any(|s| matches!(s, State::Loading { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions as `(index, leader epoch)`.
    type Led = &'static [(i32, i32)];

    fn indexes(loads: &[LoadTicket]) -> Vec<(i32, i32)> {
        loads.iter().map(|l| (l.index, l.epoch)).collect()
    }

    #[test]
    fn leadership_moves_table() {
        // (served before as (index, epoch), led now, resigned, loaded)
        let cases: [(Led, Led, &[i32], Led); 5] = [
            (&[], &[(0, 1), (3, 2)], &[], &[(0, 1), (3, 2)]),
            (&[(0, 1), (3, 2)], &[(0, 1), (3, 2)], &[], &[]),
            (&[(0, 1), (3, 2)], &[(3, 2)], &[0], &[]),
            // Led elsewhere and back: the groups may have moved on.
            (&[(0, 1)], &[(0, 3)], &[0], &[(0, 3)]),
            (&[(0, 1)], &[], &[0], &[]),
        ];
        for (before, now, resign, load) in cases {
            let mut l = Leadership::default();
            for ticket in l.follow(before).load {
                assert!(l.finish(&ticket, Some(ticket.epoch)));
            }
            let moves = l.follow(now);
            assert_eq!(moves.resign, resign, "{before:?} -> {now:?}");
            assert_eq!(indexes(&moves.load), load, "{before:?} -> {now:?}");
        }
    }

    #[test]
    fn a_load_merges_only_if_nothing_moved_while_it_read() {
        // (what happens between the start and the end of the read, the
        // partition's epoch when it ends, whether the load merges)
        let cases: [(&[Led], Option<i32>, bool); 5] = [
            (&[], Some(1), true),
            // Given up while reading.
            (&[&[]], None, false),
            // Given up and led again: a newer load is under way.
            (&[&[], &[(0, 2)]], Some(2), false),
            // Led again without the coordinator noticing the gap.
            (&[], Some(2), false),
            // Still led in the same epoch, followed again meanwhile.
            (&[&[(0, 1)]], Some(1), true),
        ];
        for (meanwhile, epoch_now, merges) in cases {
            let mut l = Leadership::default();
            let load = l.follow(&[(0, 1)]).load[0];
            assert!(l.is_loading(0));
            for led in meanwhile {
                l.follow(led);
            }
            assert_eq!(l.finish(&load, epoch_now), merges, "{meanwhile:?}");
        }
    }

    #[test]
    fn an_overtaken_or_failed_load_is_started_again() {
        let mut l = Leadership::default();
        let first = l.follow(&[(0, 1)]).load[0];
        assert!(!l.finish(&first, Some(2)));
        assert!(!l.is_loading(0));
        let again = l.follow(&[(0, 2)]).load;
        assert_eq!(indexes(&again), [(0, 2)]);
        l.abandon(&again[0]);
        let third = l.follow(&[(0, 2)]).load;
        assert_eq!(indexes(&third), [(0, 2)]);
        // A stale load's failure does not cancel the newer one.
        l.abandon(&again[0]);
        assert!(l.finish(&third[0], Some(2)));
        assert!(!l.any_loading());
    }
}
