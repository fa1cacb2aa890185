//! What it takes to make a topic match its `KafkaTopic`: pure comparison of
//! the spec with the topic as the cluster has it. Impossible changes are
//! refused with a reason; they never delete anything.

use std::collections::{BTreeMap, BTreeSet};

use crate::admin::TopicState;
use crate::cluster::rebalance;

/// Topic settings that belong to whoever moves replicas (the balancer,
/// `kafka-reassign-partitions --throttle`) while moves run: left alone
/// unless the spec sets them.
const OPERATIONAL: [&str; 2] = [rebalance::LEADER_REPLICAS, rebalance::FOLLOWER_REPLICAS];

/// The desired topic, with config values as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replicas: i32,
    /// Topic settings.
    pub config: BTreeMap<String, String>,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create the topic.
    Create,
    /// Grow to this many partitions.
    AddPartitions(i32),
    /// Set these settings and remove those.
    Config {
        /// Settings to set.
        set: BTreeMap<String, String>,
        /// Settings to remove (back to the cluster default).
        delete: Vec<String>,
    },
    /// Reassign partitions to new replica lists: `(partition, replicas)`.
    Replicas(Vec<(i32, Vec<i32>)>),
}

/// The changes, and the refusals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changes to make, in order.
    pub changes: Vec<Change>,
    /// Why part of the spec cannot be applied.
    pub refused: Vec<String>,
}

/// Plans the changes from `current` (None: no such topic) to `desired` on a
/// cluster whose live brokers are `brokers`; `load` counts the replicas
/// each broker holds, to place new replicas on the least loaded.
pub fn plan(
    desired: &Desired,
    current: Option<&TopicState>,
    brokers: &BTreeSet<i32>,
    load: &BTreeMap<i32, usize>,
) -> Plan {
    let mut out = Plan::default();
    if desired.replicas as usize > brokers.len() {
        out.refused.push(format!(
            "replicas: {} is more than the {} brokers available",
            desired.replicas,
            brokers.len()
        ));
    }
    let Some(current) = current else {
        if out.refused.is_empty() {
            out.changes.push(Change::Create);
        }
        return out;
    };
    let have = current.replicas.len() as i32;
    if desired.partitions < have {
        out.refused.push(format!(
            "partitions: the topic has {have} partitions and Kafka cannot remove partitions; keeping {have}"
        ));
    } else if desired.partitions > have {
        out.changes.push(Change::AddPartitions(desired.partitions));
    }
    let set: BTreeMap<String, String> = desired
        .config
        .iter()
        .filter(|(k, v)| current.config.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete: Vec<String> = current
        .config
        .keys()
        .filter(|k| !desired.config.contains_key(*k) && !OPERATIONAL.contains(&k.as_str()))
        .cloned()
        .collect();
    if !set.is_empty() || !delete.is_empty() {
        out.changes.push(Change::Config { set, delete });
    }
    if desired.replicas as usize <= brokers.len() {
        let moves = replica_moves(desired.replicas as usize, current, brokers, load);
        if !moves.is_empty() {
            out.changes.push(Change::Replicas(moves));
        }
    }
    out
}

/// New replica lists for partitions whose replication factor differs from
/// `rf`: extra replicas go to the least loaded live brokers; when shrinking,
/// the last replicas go and the preferred leader stays.
fn replica_moves(
    rf: usize,
    current: &TopicState,
    brokers: &BTreeSet<i32>,
    load: &BTreeMap<i32, usize>,
) -> Vec<(i32, Vec<i32>)> {
    let mut load = load.clone();
    let mut out = Vec::new();
    for (partition, replicas) in &current.replicas {
        if replicas.len() == rf {
            continue;
        }
        let mut next = replicas.clone();
        if next.len() > rf {
            next.truncate(rf);
        }
        while next.len() < rf {
            let Some(b) = brokers
                .iter()
                .filter(|b| !next.contains(b))
                .min_by_key(|b| (load.get(b).copied().unwrap_or(0), **b))
                .copied()
            else {
                break;
            };
            *load.entry(b).or_default() += 1;
            next.push(b);
        }
        out.push((*partition, next));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(partitions: i32, replicas: i32, config: &[(&str, &str)]) -> Desired {
        Desired {
            partitions,
            replicas,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn state(replicas: &[&[i32]], config: &[(&str, &str)]) -> TopicState {
        TopicState {
            id: "id".into(),
            replicas: replicas
                .iter()
                .enumerate()
                .map(|(i, r)| (i as i32, r.to_vec()))
                .collect(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn scenarios() {
        let brokers: BTreeSet<i32> = [0, 1, 2].into();
        let load: BTreeMap<i32, usize> = [(0, 5), (1, 2), (2, 3)].into();
        struct Case {
            name: &'static str,
            desired: Desired,
            current: Option<TopicState>,
            changes: Vec<Change>,
            refused: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                name: "missing topic is created",
                desired: desired(6, 3, &[]),
                current: None,
                changes: vec![Change::Create],
                refused: vec![],
            },
            Case {
                name: "more replicas than brokers: refused, nothing created",
                desired: desired(6, 4, &[]),
                current: None,
                changes: vec![],
                refused: vec!["replicas: 4 is more than the 3 brokers available"],
            },
            Case {
                name: "in sync: nothing",
                desired: desired(2, 2, &[("retention.ms", "1000")]),
                current: Some(state(&[&[0, 1], &[1, 2]], &[("retention.ms", "1000")])),
                changes: vec![],
                refused: vec![],
            },
            Case {
                name: "grow partitions, set and remove config",
                desired: desired(3, 2, &[("retention.ms", "2000")]),
                current: Some(state(&[&[0, 1], &[1, 2]], &[("retention.ms", "1000"), ("segment.ms", "5")])),
                changes: vec![
                    Change::AddPartitions(3),
                    Change::Config {
                        set: [("retention.ms".to_string(), "2000".to_string())].into(),
                        delete: vec!["segment.ms".into()],
                    },
                ],
                refused: vec![],
            },
            Case {
                name: "throttles of moves under way are left alone",
                desired: desired(2, 2, &[]),
                current: Some(state(
                    &[&[0, 1], &[1, 2]],
                    &[("leader.replication.throttled.replicas", "0:0,0:1"), ("follower.replication.throttled.replicas", "0:2")],
                )),
                changes: vec![],
                refused: vec![],
            },
            Case {
                name: "fewer partitions refused, the rest still applied",
                desired: desired(1, 2, &[("retention.ms", "2000")]),
                current: Some(state(&[&[0, 1], &[1, 2]], &[])),
                changes: vec![Change::Config {
                    set: [("retention.ms".to_string(), "2000".to_string())].into(),
                    delete: vec![],
                }],
                refused: vec!["partitions: the topic has 2 partitions and Kafka cannot remove partitions; keeping 2"],
            },
            Case {
                name: "replication factor up: least loaded brokers",
                desired: desired(2, 3, &[]),
                current: Some(state(&[&[0, 2], &[0, 1]], &[])),
                changes: vec![Change::Replicas(vec![(0, vec![0, 2, 1]), (1, vec![0, 1, 2])])],
                refused: vec![],
            },
            Case {
                name: "replication factor down keeps the preferred leader",
                desired: desired(1, 1, &[]),
                current: Some(state(&[&[2, 0, 1]], &[])),
                changes: vec![Change::Replicas(vec![(0, vec![2])])],
                refused: vec![],
            },
        ];
        for case in cases {
            let got = plan(&case.desired, case.current.as_ref(), &brokers, &load);
            assert_eq!(got.changes, case.changes, "{}", case.name);
            assert_eq!(got.refused, case.refused, "{}", case.name);
        }
    }
}
