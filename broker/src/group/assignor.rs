//! The server-side "uniform" assignor of the consumer group protocol
//! (KIP-848): spreads the subscribed partitions evenly over the members that
//! subscribe to them, keeping each member's current partitions where it can
//! so that a rebalance moves as little as possible. Pure: data in, data out.

use std::collections::{BTreeMap, BTreeSet};

/// A partition, by topic name and index.
pub type TopicPartition = (String, i32);

/// One member as the assignor sees it.
#[derive(Debug, Clone, Default)]
pub struct MemberSubscription {
    /// Topics it subscribes to.
    pub topics: BTreeSet<String>,
    /// Its current target assignment (to keep where possible).
    pub current: BTreeSet<TopicPartition>,
}

/// The new target assignment: member id → partitions. `partitions` gives
/// each existing topic's partition count; subscriptions to missing topics
/// are ignored.
pub fn assign(
    members: &BTreeMap<String, MemberSubscription>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartition>> = members
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    if members.is_empty() {
        return target;
    }
    let all: Vec<TopicPartition> = partitions
        .iter()
        .filter(|(topic, _)| members.values().any(|m| m.topics.contains(*topic)))
        .flat_map(|(topic, count)| (0..*count).map(move |p| (topic.clone(), p)))
        .collect();
    // No member keeps more than an even share.
    let quota = all.len().div_ceil(members.len());
    let mut taken = BTreeSet::new();
    for (id, m) in members {
        for tp in &m.current {
            let valid =
                m.topics.contains(&tp.0) && partitions.get(&tp.0).is_some_and(|n| tp.1 < *n);
            if valid && target[id].len() < quota && taken.insert(tp.clone()) {
                if let Some(t) = target.get_mut(id) {
                    t.insert(tp.clone());
                }
            }
        }
    }
    for tp in all {
        if taken.contains(&tp) {
            continue;
        }
        let least_loaded = members
            .iter()
            .filter(|(_, m)| m.topics.contains(&tp.0))
            .min_by_key(|(id, _)| (target[*id].len(), (*id).clone()))
            .map(|(id, _)| id.clone());
        if let Some(id) = least_loaded {
            if let Some(t) = target.get_mut(&id) {
                t.insert(tp.clone());
            }
            taken.insert(tp);
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(topics: &[&str], current: &[(&str, i32)]) -> MemberSubscription {
        MemberSubscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            current: current.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        }
    }

    fn counts(target: &BTreeMap<String, BTreeSet<TopicPartition>>) -> Vec<usize> {
        target.values().map(|s| s.len()).collect()
    }

    #[test]
    fn spreads_evenly_and_covers_everything_once() {
        let partitions = BTreeMap::from([("a".to_string(), 6), ("b".to_string(), 1)]);
        let cases = [
            (1, vec![7]),
            (2, vec![4, 3]),
            (3, vec![3, 2, 2]),
            (8, vec![1, 1, 1, 1, 1, 1, 1, 0]),
        ];
        for (n, want) in cases {
            let members: BTreeMap<String, MemberSubscription> = (0..n)
                .map(|i| (format!("m{i}"), member(&["a", "b"], &[])))
                .collect();
            let target = assign(&members, &partitions);
            assert_eq!(counts(&target), want, "{n} members");
            let union: BTreeSet<_> = target.values().flatten().cloned().collect();
            assert_eq!(union.len(), 7);
        }
    }

    #[test]
    fn a_new_member_takes_only_what_balance_requires() {
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let mut members = BTreeMap::from([(
            "old".to_string(),
            member(&["t"], &[("t", 0), ("t", 1), ("t", 2), ("t", 3)]),
        )]);
        members.insert("new".to_string(), member(&["t"], &[]));
        let target = assign(&members, &partitions);
        assert_eq!(counts(&target), vec![2, 2]);
        // The old member keeps two of its own; nothing else moves.
        assert!(target["old"]
            .iter()
            .all(|tp| members["old"].current.contains(tp)));
    }

    #[test]
    fn members_get_only_topics_they_subscribe_to() {
        let partitions = BTreeMap::from([
            ("x".to_string(), 2),
            ("y".to_string(), 2),
            ("z".to_string(), 3),
        ]);
        let members = BTreeMap::from([
            ("m1".to_string(), member(&["x"], &[("y", 0)])),
            ("m2".to_string(), member(&["x", "y", "missing"], &[])),
        ]);
        let target = assign(&members, &partitions);
        assert!(target["m1"].iter().all(|(t, _)| t == "x"));
        let union: BTreeSet<_> = target.values().flatten().cloned().collect();
        assert_eq!(union.len(), 4, "z has no subscriber and is not assigned");
    }

    #[test]
    fn partitions_that_no_longer_exist_are_dropped() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let members = BTreeMap::from([("m".to_string(), member(&["t"], &[("t", 5), ("gone", 0)]))]);
        let target = assign(&members, &partitions);
        assert_eq!(
            target["m"],
            BTreeSet::from([("t".to_string(), 0), ("t".to_string(), 1)])
        );
    }
}
