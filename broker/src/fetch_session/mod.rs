//! Incremental fetch sessions (KIP-227), for consumers and followers.
//!
//! A fetcher that sends epoch 0 asks for a session: its fetch is full (it
//! names every partition), and the answer carries the id of the session
//! the broker made of those partitions. Its next fetches carry that id
//! and the next epoch, and name only what changed (a new fetch offset, a
//! partition added, one forgotten); the broker reads every partition of
//! the session and answers only those with records, an error or offsets
//! the fetcher has not been told. An idle partition costs nothing on the
//! wire. Epoch -1 is a fetch without a session. A fetch naming a session
//! the broker does not have, or the wrong epoch, is answered with the
//! error and the fetcher starts over with a full fetch.
//!
//! [`session`] holds one session's partitions and decides what an answer
//! carries; [`cache`] bounds the sessions and decides which to evict.

pub mod cache;
pub mod session;

use std::sync::Mutex;

use kafka_protocol::ResponseError;

use cache::SessionCache;
use session::{next_epoch, CachedPartition, FetchSession, Forgotten, Named, PartitionAnswer};

/// The epoch of a fetch that wants no session.
pub const FINAL_EPOCH: i32 = -1;
/// The epoch of a fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;

/// What a fetch says about its session.
#[derive(Debug, Clone)]
pub struct FetchMetadata {
    /// Its session id (0: none).
    pub session_id: i32,
    /// Its session epoch.
    pub epoch: i32,
    /// Whether a follower broker fetches.
    pub follower: bool,
    /// Whether it names topics by id (Fetch v13+).
    pub uses_topic_ids: bool,
}

/// How a fetch is served.
#[derive(Debug)]
pub enum Context {
    /// A full fetch: the partitions it names; a session is made of them
    /// after the read when `create`.
    Full {
        /// Whether the fetcher asked for a session.
        create: bool,
        /// The partitions it names, in order.
        partitions: Vec<Named>,
    },
    /// An incremental fetch: the session as this fetch left it.
    Incremental(FetchSession),
    /// Refused: this error, and no partitions.
    Refused(ResponseError),
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessions {
    cache: Mutex<SessionCache>,
}

impl FetchSessions {
    /// At most `slots` sessions (`max.incremental.fetch.session.cache.slots`),
    /// each safe from eviction for `eviction_ms`
    /// (`min.incremental.fetch.session.eviction.ms`).
    pub fn new(slots: usize, eviction_ms: i64) -> FetchSessions {
        FetchSessions {
            cache: Mutex::new(SessionCache::new(slots, eviction_ms)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sessions cached and the partitions they hold.
    pub fn size(&self) -> (usize, usize) {
        let cache = self.lock();
        (cache.len(), cache.partitions())
    }

    /// How the fetch `meta` is served; an incremental one's partitions
    /// `named` and `forgotten` are applied to its session here.
    pub fn open(
        &self,
        meta: &FetchMetadata,
        named: Vec<Named>,
        forgotten: &[Forgotten],
        now_ms: i64,
    ) -> Context {
        let mut cache = self.lock();
        if meta.epoch == INITIAL_EPOCH || meta.epoch == FINAL_EPOCH {
            // A full fetch ends the session it names, if any.
            if meta.session_id != 0 {
                cache.remove(meta.session_id);
            }
            return Context::Full {
                create: meta.epoch == INITIAL_EPOCH,
                partitions: named,
            };
        }
        let Some(session) = cache.get_mut(meta.session_id) else {
            return Context::Refused(ResponseError::FetchSessionIdNotFound);
        };
        if session.epoch != meta.epoch {
            return Context::Refused(ResponseError::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != meta.uses_topic_ids {
            return Context::Refused(ResponseError::FetchSessionTopicIdError);
        }
        session.update(named, forgotten);
        session.epoch = next_epoch(session.epoch);
        session.last_used_ms = now_ms;
        Context::Incremental(session.clone())
    }

    /// After a full fetch that asked for a session: caches one of its
    /// partitions, as they were just answered; the session's id, or 0
    /// when there is no slot for it.
    pub fn create(
        &self,
        meta: &FetchMetadata,
        partitions: Vec<Named>,
        answers: &[PartitionAnswer],
        now_ms: i64,
    ) -> i32 {
        let partitions = partitions
            .into_iter()
            .zip(answers)
            .map(|((topic, position), answer)| {
                let mut p = CachedPartition::new(topic, position);
                p.must_send(answer, true);
                p
            })
            .collect();
        let session = FetchSession {
            id: 0,
            privileged: meta.follower,
            uses_topic_ids: meta.uses_topic_ids,
            epoch: next_epoch(INITIAL_EPOCH),
            created_ms: now_ms,
            last_used_ms: now_ms,
            partitions,
        };
        let (id, evicted) = self.lock().insert(session, now_ms, rand::random::<i32>);
        if let Some(evicted) = evicted {
            tracing::debug!(evicted, "fetch session evicted to make room");
        }
        id.unwrap_or(0)
    }

    /// After an incremental fetch's read (`session` as [`FetchSessions::open`]
    /// left it, `answers` in its partitions' order): which partitions the
    /// response carries. The cached session learns what was sent unless
    /// the answer is held back by a throttle (`update` false).
    pub fn respond(
        &self,
        mut session: FetchSession,
        answers: &[PartitionAnswer],
        update: bool,
    ) -> Vec<bool> {
        let mut cache = self.lock();
        match cache.get_mut(session.id) {
            // Unless another fetch of the session came meanwhile.
            Some(cached) if cached.epoch == session.epoch => cached.respond(answers, update),
            _ => session.respond(answers, update),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch_session::session::tests::at;
    use crate::fetch_session::session::SessionTopic;

    fn meta(session_id: i32, epoch: i32) -> FetchMetadata {
        FetchMetadata {
            session_id,
            epoch,
            follower: false,
            uses_topic_ids: true,
        }
    }

    fn quiet(high_watermark: i64) -> PartitionAnswer {
        PartitionAnswer {
            records: 0,
            high_watermark,
            log_start_offset: 0,
            failed: false,
        }
    }

    #[test]
    fn a_session_is_made_used_and_refused_as_kafka_answers() {
        let sessions = FetchSessions::new(10, 1000);
        let t = SessionTopic::Id(uuid::Uuid::from_u128(1));
        let named = vec![(t.clone(), at(0, 0)), (t.clone(), at(1, 0))];
        // Epoch -1: no session; epoch 0: one is made after the read.
        assert!(matches!(
            sessions.open(&meta(0, FINAL_EPOCH), named.clone(), &[], 0),
            Context::Full { create: false, .. }
        ));
        assert!(matches!(
            sessions.open(&meta(0, INITIAL_EPOCH), named.clone(), &[], 0),
            Context::Full { create: true, .. }
        ));
        let id = sessions.create(&meta(0, 0), named, &[quiet(5), quiet(5)], 0);
        assert!(id > 0);
        assert_eq!(sessions.size(), (1, 2));
        // Epoch 1 names nothing: both partitions are read, neither sent.
        let Context::Incremental(s) = sessions.open(&meta(id, 1), vec![], &[], 1) else {
            panic!("incremental");
        };
        assert_eq!(s.partitions.len(), 2);
        assert_eq!(
            sessions.respond(s, &[quiet(5), quiet(5)], true),
            [false, false]
        );
        // The same epoch again, an unknown id, the other id style.
        let refused = |m: &FetchMetadata| match sessions.open(m, vec![], &[], 2) {
            Context::Refused(e) => Some(e),
            _ => None,
        };
        assert_eq!(
            refused(&meta(id, 1)),
            Some(ResponseError::InvalidFetchSessionEpoch)
        );
        assert_eq!(
            refused(&meta(id + 1, 2)),
            Some(ResponseError::FetchSessionIdNotFound)
        );
        let by_name = FetchMetadata {
            uses_topic_ids: false,
            ..meta(id, 2)
        };
        assert_eq!(
            refused(&by_name),
            Some(ResponseError::FetchSessionTopicIdError)
        );
        // Epoch 2 forgets partition 1; a full fetch naming the id ends it.
        let Context::Incremental(s) = sessions.open(&meta(id, 2), vec![], &[(t, 1)], 3) else {
            panic!("incremental");
        };
        assert_eq!(s.partitions.len(), 1);
        sessions.open(&meta(id, INITIAL_EPOCH), vec![], &[], 4);
        assert_eq!(sessions.size(), (0, 0));
    }

    #[test]
    fn a_held_back_answer_is_sent_again_next_time() {
        let sessions = FetchSessions::new(10, 1000);
        let t = SessionTopic::Name("t".into());
        let id = sessions.create(&meta(0, 0), vec![(t, at(0, 0))], &[quiet(5)], 0);
        let Context::Incremental(s) = sessions.open(&meta(id, 1), vec![], &[], 1) else {
            panic!("incremental");
        };
        assert_eq!(sessions.respond(s, &[quiet(6)], false), [true]);
        let Context::Incremental(s) = sessions.open(&meta(id, 2), vec![], &[], 2) else {
            panic!("incremental");
        };
        assert_eq!(sessions.respond(s, &[quiet(6)], true), [true]);
    }
}
