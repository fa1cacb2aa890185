//! Scaling down without losing replicas: before the StatefulSet shrinks,
//! every partition with a replica on a broker being removed is reassigned
//! to the brokers that stay.

use std::collections::BTreeMap;

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
    /// Replicas the StatefulSet should have now.
    pub statefulset_replicas: i32,
    /// Reassignments to start.
    pub moves: Vec<Move>,
    /// Why the StatefulSet does not have the desired size yet.
    pub waiting: Option<String>,
}

/// Plans the step from `current` StatefulSet replicas towards `desired`.
pub fn plan(desired: i32, current: i32, kafka: Option<&KafkaView>) -> ScalePlan {
    if desired >= current {
        return ScalePlan {
            statefulset_replicas: desired,
            moves: Vec::new(),
            waiting: None,
        };
    }
    let hold = |why: String, moves| ScalePlan {
        statefulset_replicas: current,
        moves,
        waiting: Some(why),
    };
    let Some(kafka) = kafka else {
        return hold(
            "the cluster's metadata cannot be read to drain the brokers being removed".into(),
            Vec::new(),
        );
    };
    let removed = |b: &i32| *b >= desired;
    let holding: Vec<_> = kafka
        .partitions
        .iter()
        .filter(|p| p.replicas.iter().any(removed))
        .collect();
    if holding.is_empty() {
        return ScalePlan {
            statefulset_replicas: desired,
            moves: Vec::new(),
            waiting: None,
        };
    }
    // Replicas per remaining broker, to place moved replicas on the least
    // loaded ones.
    let mut load: BTreeMap<i32, usize> = (0..desired).map(|b| (b, 0)).collect();
    for p in &kafka.partitions {
        for r in p.replicas.iter().filter(|r| !removed(r)) {
            *load.entry(*r).or_default() += 1;
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
                "{} have more replicas than the {desired} brokers that would remain",
                impossible.join(", ")
            ),
            moves,
        );
    }
    let names: Vec<String> = holding.iter().map(|p| p.label()).collect();
    hold(
        format!(
            "moving {} off brokers {desired}..{}",
            names.join(", "),
            current - 1
        ),
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
                waiting: Some("moving a-0, c-0 off brokers 3..3"),
            },
            Case {
                name: "a move under way is not restarted",
                desired: 3,
                current: 4,
                kafka: Some(view(vec![part("a", &[3, 0, 2], true)])),
                replicas: 4,
                moves: vec![],
                waiting: Some("moving a-0 off brokers 3..3"),
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
            let got = plan(case.desired, case.current, case.kafka.as_ref());
            assert_eq!(got.statefulset_replicas, case.replicas, "{}", case.name);
            let moves: Vec<(&str, Vec<i32>)> = got
                .moves
                .iter()
                .map(|m| (m.topic.as_str(), m.replicas.clone()))
                .collect();
            assert_eq!(moves, case.moves, "{}", case.name);
            assert_eq!(got.waiting.as_deref(), case.waiting, "{}", case.name);
        }
    }
}
