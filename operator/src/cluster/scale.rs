//! Scaling down without losing replicas: before a pool's StatefulSet
//! shrinks, every partition with a replica on a broker being removed is
//! reassigned to the brokers that stay.

use std::collections::{BTreeMap, BTreeSet};

use super::topology::{Pool, Topology};
use super::view::KafkaView;

/// A partition to reassign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Its new replicas, preferred leader first.
    pub replicas: Vec<i32>,
}

/// What scaling asks for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePlan {
    /// Replicas each pool's StatefulSet should have now, by pool name.
    pub replicas: BTreeMap<String, i32>,
    /// Reassignments to start.
    pub moves: Vec<Move>,
    /// Why a StatefulSet does not have the desired size yet.
    pub waiting: Option<String>,
}

/// Plans the step of every pool of `topology` from its StatefulSet's
/// current size towards its desired one. Pools grow at once; a pool of
/// brokers shrinks once the brokers that go hold no replica, which move
/// to the least loaded of the brokers that run and stay (in any pool).
pub fn plan(topology: &Topology, kafka: Option<&KafkaView>) -> ScalePlan {
    let desired: BTreeMap<String, i32> = topology
        .pools
        .iter()
        .map(|p| (p.name.clone(), p.desired))
        .collect();
    let shrinking: Vec<&Pool> = topology
        .pools
        .iter()
        .filter(|p| p.broker && p.desired < p.current)
        .collect();
    let leaving: BTreeSet<i32> = shrinking
        .iter()
        .flat_map(|p| (p.first_id + p.desired)..(p.first_id + p.current))
        .collect();
    if leaving.is_empty() {
        return ScalePlan {
            replicas: desired,
            moves: Vec::new(),
            waiting: None,
        };
    }
    let hold = |why: String, moves| {
        let mut replicas = desired.clone();
        for p in &shrinking {
            replicas.insert(p.name.clone(), p.current);
        }
        ScalePlan {
            replicas,
            moves,
            waiting: Some(why),
        }
    };
    let Some(kafka) = kafka else {
        return hold(
            "the cluster's metadata cannot be read to drain the brokers being removed".into(),
            Vec::new(),
        );
    };
    let removed = |b: &i32| leaving.contains(b);
    let holding: Vec<_> = kafka
        .partitions
        .iter()
        .filter(|p| p.replicas.iter().any(removed))
        .collect();
    if holding.is_empty() {
        return ScalePlan {
            replicas: desired,
            moves: Vec::new(),
            waiting: None,
        };
    }
    // Replicas per broker that stays and runs, to place moved replicas on
    // the least loaded ones.
    let staying: Vec<i32> = topology
        .pools
        .iter()
        .filter(|p| p.broker)
        .flat_map(|p| p.ids(p.desired.min(p.current)))
        .collect();
    let mut load: BTreeMap<i32, usize> = staying.iter().map(|b| (*b, 0)).collect();
    for p in &kafka.partitions {
        for r in &p.replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
    }
    let mut moves = Vec::new();
    let mut impossible = Vec::new();
    for p in holding.iter().filter(|p| !p.reassigning) {
        let mut replicas = Vec::with_capacity(p.replicas.len());
        for r in &p.replicas {
            if !removed(r) {
                replicas.push(*r);
                continue;
            }
            let target = load
                .iter()
                .filter(|(b, _)| !p.replicas.contains(b) && !replicas.contains(b))
                .min_by_key(|(b, n)| (**n, **b))
                .map(|(b, _)| *b);
            match target {
                Some(b) => {
                    *load.entry(b).or_default() += 1;
                    replicas.push(b);
                }
                None => {
                    impossible.push(p.label());
                    break;
                }
            }
        }
        if replicas.len() == p.replicas.len() {
            moves.push(Move {
                topic: p.topic.clone(),
                partition: p.partition,
                replicas,
            });
        }
    }
    if !impossible.is_empty() {
        return hold(
            format!(
                "{} have more replicas than the {} brokers that would remain",
                impossible.join(", "),
                staying.len()
            ),
            moves,
        );
    }
    let names: Vec<String> = holding.iter().map(|p| p.label()).collect();
    let leaving: Vec<i32> = leaving.into_iter().collect();
    hold(
        format!("moving {} off brokers {leaving:?}", names.join(", ")),
        moves,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::PartitionView;

    fn part(topic: &str, replicas: &[i32], reassigning: bool) -> PartitionView {
        PartitionView {
            topic: topic.into(),
            partition: 0,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            min_isr: 1,
            reassigning,
        }
    }

    fn view(partitions: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            partitions,
            ..Default::default()
        }
    }

    #[test]
    fn scenarios() {
        struct Case {
            name: &'static str,
            desired: i32,
            current: i32,
            kafka: Option<KafkaView>,
            replicas: i32,
            moves: Vec<(&'static str, Vec<i32>)>,
            waiting: Option<&'static str>,
        }
        let cases = vec![
            Case {
                name: "scale up at once",
                desired: 5,
                current: 3,
                kafka: None,
                replicas: 5,
                moves: vec![],
                waiting: None,
            },
            Case {
                name: "nothing on the removed brokers: shrink",
                desired: 3,
                current: 5,
                kafka: Some(view(vec![part("t", &[0, 1, 2], false)])),
                replicas: 3,
                moves: vec![],
                waiting: None,
            },
            Case {
                name: "replicas on removed brokers move to the least loaded",
                desired: 3,
                current: 4,
                kafka: Some(view(vec![
                    part("a", &[3, 0], false),
                    part("b", &[0, 1], false),
                    part("c", &[1, 3], false),
                ])),
                replicas: 4,
                moves: vec![("a", vec![2, 0]), ("c", vec![1, 2])],
                waiting: Some("moving a-0, c-0 off brokers [3]"),
            },
            Case {
                name: "a move under way is not restarted",
                desired: 3,
                current: 4,
                kafka: Some(view(vec![part("a", &[3, 0, 2], true)])),
                replicas: 4,
                moves: vec![],
                waiting: Some("moving a-0 off brokers [3]"),
            },
            Case {
                name: "more replicas than brokers left",
                desired: 2,
                current: 3,
                kafka: Some(view(vec![part("a", &[0, 1, 2], false)])),
                replicas: 3,
                moves: vec![],
                waiting: Some("a-0 have more replicas than the 2 brokers that would remain"),
            },
            Case {
                name: "metadata unreadable: hold",
                desired: 2,
                current: 3,
                kafka: None,
                replicas: 3,
                moves: vec![],
                waiting: Some(
                    "the cluster's metadata cannot be read to drain the brokers being removed",
                ),
            },
        ];
        for case in cases {
            let spec = serde_json::from_value(serde_json::json!({
                "replicas": case.desired,
                "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
            }))
            .expect("valid spec");
            let topology = Topology::single(&spec, 1, case.current);
            let got = plan(&topology, case.kafka.as_ref());
            assert_eq!(got.replicas["broker"], case.replicas, "{}", case.name);
            let moves: Vec<(&str, Vec<i32>)> = got
                .moves
                .iter()
                .map(|m| (m.topic.as_str(), m.replicas.clone()))
                .collect();
            assert_eq!(moves, case.moves, "{}", case.name);
            assert_eq!(got.waiting.as_deref(), case.waiting, "{}", case.name);
        }
    }

    #[test]
    fn a_broker_pool_shrinks_onto_the_brokers_that_stay() {
        let spec = serde_json::from_value(serde_json::json!({
            "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
        }))
        .expect("valid spec");
        let pools = crate::cluster::broker_config::tests::voter_and_broker_pools(3);
        let found = BTreeMap::from([
            ("voters".to_string(), (0, 3)),
            ("brokers".to_string(), (1000, 5)),
        ]);
        let topology = Topology::pooled("demo", &spec, &pools, &[], &found).expect("valid pools");
        let kafka = view(vec![
            part("a", &[1003, 1000], false),
            part("b", &[1004, 1003, 1001], false),
        ]);
        let got = plan(&topology, Some(&kafka));
        // The controllers never take replicas; the pool holds its size.
        assert_eq!(
            got.replicas,
            BTreeMap::from([("brokers".to_string(), 5), ("voters".to_string(), 3)])
        );
        let moves: Vec<(&str, Vec<i32>)> = got
            .moves
            .iter()
            .map(|m| (m.topic.as_str(), m.replicas.clone()))
            .collect();
        assert_eq!(
            moves,
            vec![("a", vec![1002, 1000]), ("b", vec![1000, 1002, 1001])]
        );
        assert_eq!(
            got.waiting.as_deref(),
            Some("moving a-0, b-0 off brokers [1003, 1004]")
        );
        // Drained: the pool shrinks.
        let empty = view(vec![part("a", &[1002, 1000], false)]);
        assert_eq!(plan(&topology, Some(&empty)).replicas["brokers"], 3);
    }
}
