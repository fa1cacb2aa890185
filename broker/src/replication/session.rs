//! The follower's side of an incremental fetch session (KIP-227, Kafka's
//! `FetchSessionHandler`): the first fetch to a leader names every
//! partition and asks for a session; once the leader has made one, each
//! fetch names only the partitions whose position changed since the
//! leader last heard of them, and forgets those no longer fetched. An
//! error about the session, or a lost connection, starts over with a full
//! fetch.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::fetch_session::session::next_epoch;
use crate::fetch_session::INITIAL_EPOCH;

/// What the leader's session holds of one partition: the fields of its
/// last `FetchPartition`.
type Sent = (i64, i32, i32, i64, i32);

fn sent(p: &FetchPartition) -> Sent {
    (
        p.fetch_offset,
        p.current_leader_epoch,
        p.last_fetched_epoch,
        p.log_start_offset,
        p.partition_max_bytes,
    )
}

/// A follower's session with one leader.
#[derive(Debug, Default)]
pub struct FollowerSession {
    /// The leader's id for it (0: none yet).
    id: i32,
    /// The epoch the next fetch carries (0: a full fetch asking for a
    /// session).
    epoch: i32,
    /// What the leader has been told of each partition, by topic and
    /// partition.
    sent: HashMap<(String, i32), Sent>,
}

impl FollowerSession {
    /// Fills `request`'s session fields, topics and forgotten topics to
    /// fetch `wanted` (by topic): all of it in a full fetch, what changed
    /// in an incremental one.
    pub fn prepare(
        &mut self,
        request: &mut FetchRequest,
        wanted: BTreeMap<String, Vec<FetchPartition>>,
    ) {
        request.session_id = self.id;
        request.session_epoch = self.epoch;
        let full = self.epoch == INITIAL_EPOCH;
        let mut forgotten: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        if full {
            self.sent.clear();
        } else {
            self.sent.retain(|(topic, partition), _| {
                let kept = wanted
                    .get(topic)
                    .is_some_and(|ps| ps.iter().any(|p| p.partition == *partition));
                if !kept {
                    forgotten.entry(topic.clone()).or_default().push(*partition);
                }
                kept
            });
        }
        let mut topics = Vec::new();
        for (topic, partitions) in wanted {
            let changed: Vec<FetchPartition> = partitions
                .into_iter()
                .filter(|p| {
                    let now = sent(p);
                    let before = self.sent.insert((topic.clone(), p.partition), now);
                    full || before != Some(now)
                })
                .collect();
            if !changed.is_empty() {
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_string(topic));
                t.partitions = changed;
                topics.push(t);
            }
        }
        request.topics = topics;
        request.forgotten_topics_data = forgotten
            .into_iter()
            .map(|(topic, partitions)| {
                let mut t = ForgottenTopic::default();
                t.topic = TopicName(StrBytes::from_string(topic));
                t.partitions = partitions;
                t
            })
            .collect();
    }

    /// Takes the leader's answer to the fetch last prepared: its top-level
    /// error code and session id.
    pub fn answered(&mut self, error_code: i16, session_id: i32) {
        if error_code != 0 {
            // The session is gone or out of step: start over, closing it.
            self.restart();
        } else if self.epoch == INITIAL_EPOCH {
            // A leader without a slot answers 0: ask again next time.
            self.id = session_id;
            self.epoch = if session_id == 0 {
                INITIAL_EPOCH
            } else {
                next_epoch(INITIAL_EPOCH)
            };
        } else {
            self.epoch = next_epoch(self.epoch);
        }
    }

    /// The fetch went unanswered (a lost connection, a timeout): the next
    /// one is full, and ends this session on the leader.
    pub fn restart(&mut self) {
        self.epoch = INITIAL_EPOCH;
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(partitions: &[(&str, i32, i64)]) -> BTreeMap<String, Vec<FetchPartition>> {
        let mut out: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for (topic, partition, offset) in partitions {
            let mut p = FetchPartition::default();
            p.partition = *partition;
            p.fetch_offset = *offset;
            out.entry(topic.to_string()).or_default().push(p);
        }
        out
    }

    /// A topic and partition.
    type Tp = (String, i32);

    /// (session id, epoch, named partitions, forgotten partitions)
    fn fetch(
        s: &mut FollowerSession,
        partitions: &[(&str, i32, i64)],
    ) -> (i32, i32, Vec<Tp>, Vec<Tp>) {
        let mut r = FetchRequest::default();
        s.prepare(&mut r, wanted(partitions));
        let named = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.to_string(), p.partition))
            })
            .collect();
        let forgotten = r
            .forgotten_topics_data
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
            .collect();
        (r.session_id, r.session_epoch, named, forgotten)
    }

    fn tp(topic: &str, partition: i32) -> Tp {
        (topic.to_string(), partition)
    }

    #[test]
    fn a_session_names_only_what_changed_and_starts_over_after_errors() {
        let mut s = FollowerSession::default();
        let all = [("a", 0, 10), ("a", 1, 20), ("b", 0, 5)];
        // Full, asking for a session.
        assert_eq!(
            fetch(&mut s, &all),
            (0, 0, vec![tp("a", 0), tp("a", 1), tp("b", 0)], vec![])
        );
        s.answered(0, 77);
        // Nothing changed: an empty incremental fetch.
        assert_eq!(fetch(&mut s, &all), (77, 1, vec![], vec![]));
        s.answered(0, 77);
        // a-1 moved on, b-0 is no longer fetched.
        assert_eq!(
            fetch(&mut s, &[("a", 0, 10), ("a", 1, 25)]),
            (77, 2, vec![tp("a", 1)], vec![tp("b", 0)])
        );
        // The leader lost the session: full again, closing it.
        s.answered(70, 0);
        assert_eq!(
            fetch(&mut s, &[("a", 0, 10), ("a", 1, 25)]),
            (77, 0, vec![tp("a", 0), tp("a", 1)], vec![])
        );
        // No slot for a new one: the next fetch is full again.
        s.answered(0, 0);
        assert_eq!(fetch(&mut s, &[("a", 0, 10)]).1, 0);
        s.answered(0, 9);
        assert_eq!(fetch(&mut s, &[("a", 0, 10)]), (9, 1, vec![], vec![]));
        // A lost connection: full.
        s.restart();
        assert_eq!(
            fetch(&mut s, &[("a", 0, 10)]),
            (9, 0, vec![tp("a", 0)], vec![])
        );
    }
}
