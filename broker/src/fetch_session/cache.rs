//! The broker's fetch sessions, bounded by
//! `max.incremental.fetch.session.cache.slots`. When every slot is taken,
//! a new session may take the place of one unused for
//! `min.incremental.fetch.session.eviction.ms`; failing that, of an older
//! session that is smaller (a consumer's, before a follower's), as Kafka's
//! cache decides. A fetcher refused a slot is served without a session.

use std::collections::HashMap;

use super::session::FetchSession;

/// The sessions and their limits.
#[derive(Debug)]
pub struct SessionCache {
    /// Sessions at most.
    slots: usize,
    /// How long a session is safe from eviction after it was created, and
    /// how long unused before any new session may take its slot.
    eviction_ms: i64,
    sessions: HashMap<i32, FetchSession>,
}

/// Which sessions rank lowest: consumers' before followers', then the
/// smallest, then the lowest id (Kafka's order).
fn rank(s: &FetchSession) -> (bool, usize, i32) {
    (s.privileged, s.partitions.len(), s.id)
}

impl SessionCache {
    /// An empty cache.
    pub fn new(slots: usize, eviction_ms: i64) -> SessionCache {
        SessionCache {
            slots,
            eviction_ms,
            sessions: HashMap::new(),
        }
    }

    /// The session `id`, if cached.
    pub fn get_mut(&mut self, id: i32) -> Option<&mut FetchSession> {
        self.sessions.get_mut(&id)
    }

    /// Forgets session `id`; whether there was one.
    pub fn remove(&mut self, id: i32) -> bool {
        self.sessions.remove(&id).is_some()
    }

    /// Sessions cached.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions cached over all sessions.
    pub fn partitions(&self) -> usize {
        self.sessions.values().map(|s| s.partitions.len()).sum()
    }

    /// Caches `session` (its id is set here) if a slot is free or can be
    /// freed; its id, or `None` (served without a session), and the
    /// session it evicted, if any.
    pub fn insert(
        &mut self,
        mut session: FetchSession,
        now_ms: i64,
        random: impl FnMut() -> i32,
    ) -> (Option<i32>, Option<i32>) {
        let mut evicted = None;
        if self.sessions.len() >= self.slots {
            match self.victim(session.privileged, session.partitions.len(), now_ms) {
                Some(id) => {
                    self.sessions.remove(&id);
                    evicted = Some(id);
                }
                None => return (None, None),
            }
        }
        session.id = self.new_id(random);
        let id = session.id;
        self.sessions.insert(id, session);
        (Some(id), evicted)
    }

    /// The session a new one (`privileged`, of `size` partitions) may
    /// replace: the least recently used if unused for the eviction time;
    /// else the lowest ranked of those it may evict (a follower: any
    /// consumer's, or a follower's past its protected time; a consumer:
    /// one past its protected time), when it ranks no higher than the new
    /// one.
    fn victim(&self, privileged: bool, size: usize, now_ms: i64) -> Option<i32> {
        let stale = self
            .sessions
            .values()
            .min_by_key(|s| (s.last_used_ms, s.id))?;
        if now_ms - stale.last_used_ms > self.eviction_ms {
            return Some(stale.id);
        }
        let protected = |s: &FetchSession| now_ms - s.created_ms <= self.eviction_ms;
        let lowest = self
            .sessions
            .values()
            .filter(|s| {
                if privileged {
                    !s.privileged || !protected(s)
                } else {
                    !protected(s)
                }
            })
            .min_by_key(|s| rank(s))?;
        ((privileged, size, 0) >= rank(lowest)).then_some(lowest.id)
    }

    /// A positive id no session has.
    fn new_id(&self, mut random: impl FnMut() -> i32) -> i32 {
        loop {
            let id = random().checked_abs().unwrap_or(1);
            if id != 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_session::session::{CachedPartition, SessionTopic};
    use crate::replica_manager::fetch::FetchPosition;

    fn session(privileged: bool, size: usize, created_ms: i64, last_used_ms: i64) -> FetchSession {
        let p = CachedPartition::new(
            SessionTopic::Name("t".into()),
            FetchPosition {
                partition: 0,
                fetch_offset: 0,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                max_bytes: 1,
            },
        );
        FetchSession {
            id: 0,
            privileged,
            uses_topic_ids: true,
            epoch: 1,
            created_ms,
            last_used_ms,
            partitions: vec![p; size],
        }
    }

    fn counter() -> impl FnMut() -> i32 {
        let mut next = 0;
        move || {
            next += 1;
            next
        }
    }

    #[test]
    fn a_full_cache_makes_room_as_kafkas_does() {
        // Eviction time 100 ms; the cache holds two sessions, created at
        // 0 and used at 50 and 60: (consumer?, size) of each, the new
        // session's, the time, and which of the two goes (none: refused).
        let cases = [
            // Both unused past 100 ms at 160+: the least recent goes.
            ((false, 5), (false, 5), (false, 1), 151, Some(1)),
            // Within protection: a consumer cannot evict anything...
            ((false, 5), (false, 5), (false, 9), 90, None),
            // ... a follower evicts the smallest consumer session.
            ((false, 5), (false, 3), (true, 1), 90, Some(2)),
            // ... but not a protected follower's.
            ((true, 5), (true, 3), (true, 9), 90, None),
            // Past protection, a bigger consumer session evicts the
            // smallest; a smaller one does not.
            ((false, 5), (false, 3), (false, 4), 140, Some(2)),
            ((false, 5), (false, 3), (false, 2), 140, None),
            // A follower's session outranks a consumer's of any size.
            ((true, 1), (false, 50), (false, 60), 140, Some(2)),
        ];
        for (a, b, new, now, want) in cases {
            let mut cache = SessionCache::new(2, 100);
            let mut ids = counter();
            let (first, _) = cache.insert(session(a.0, a.1, 0, 50), 0, &mut ids);
            let (second, _) = cache.insert(session(b.0, b.1, 0, 60), 0, &mut ids);
            assert_eq!((first, second), (Some(1), Some(2)));
            let (id, evicted) = cache.insert(session(new.0, new.1, now, now), now, &mut ids);
            assert_eq!(evicted, want, "{a:?} {b:?} {new:?} at {now}");
            assert_eq!(id.is_some(), want.is_some());
            assert_eq!(cache.len(), 2);
        }
    }

    #[test]
    fn ids_are_positive_and_unused_and_no_slots_means_no_sessions() {
        let mut cache = SessionCache::new(3, 100);
        let mut same = || -7;
        assert_eq!(
            cache.insert(session(false, 1, 0, 0), 0, &mut same).0,
            Some(7)
        );
        let mut values = [7, 0, i32::MIN, 9].into_iter();
        let (id, _) = cache.insert(session(false, 1, 0, 0), 0, move || {
            values.next().unwrap_or(11)
        });
        // 7 is taken, 0 is no id, i32::MIN has no absolute value.
        assert_eq!(id, Some(1));
        assert_eq!(cache.partitions(), 2);
        let mut none = SessionCache::new(0, 100);
        assert_eq!(
            none.insert(session(true, 1, 0, 0), 0, counter()),
            (None, None)
        );
    }
}
