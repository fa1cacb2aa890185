//! Rolling restarts: which broker, if any, to restart next so that every
//! pod runs the StatefulSet's current revision without a partition ever
//! falling under `min.insync.replicas`. One broker at a time, the active
//! controller last, and never before the previous broker is back in the ISR.
//! Brokers that are down and outdated go first: a pod that never became
//! ready (an image that cannot be pulled, a memory limit too small) is only
//! replaced by the operator under `OnDelete` updates, so a fixed spec would
//! otherwise never reach it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;

use super::view::{BrokerPod, KafkaView, PartitionView};

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every pod runs the current revision.
    Done,
    /// Restart (delete) these brokers' pods.
    Restart(Vec<Restart>),
    /// Not now; look again later.
    Wait(String),
    /// Never safe as the cluster is: a human has to change something.
    Blocked(String),
}

/// One broker to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// Broker id.
    pub broker: i32,
    /// Why this one, for its event.
    pub reason: String,
}

impl Restart {
    fn one(broker: i32, reason: String) -> Step {
        Step::Restart(vec![Restart { broker, reason }])
    }
}

/// Whether restarting `broker` now keeps every partition at or above its
/// minimum ISR: `Ok`, or the partitions it would break. `Err(true)` means
/// waiting cannot help (replication factor at or below min ISR).
pub fn restart_safety(broker: i32, kafka: &KafkaView) -> Result<(), (bool, Vec<String>)> {
    let mut never = Vec::new();
    let mut not_now = Vec::new();
    for p in kafka
        .partitions
        .iter()
        .filter(|p| p.replicas.contains(&broker))
    {
        if (p.replicas.len() as i32) <= p.min_isr {
            never.push(p.label());
        } else if p.isr.contains(&broker) && (p.isr.len() as i32) - 1 < p.min_isr {
            not_now.push(p.label());
        }
    }
    if !never.is_empty() {
        Err((true, never))
    } else if !not_now.is_empty() {
        Err((false, not_now))
    } else {
        Ok(())
    }
}

/// `parts`, the first few of many with their count.
fn listed(parts: &[String]) -> String {
    const SHOWN: usize = 5;
    match parts.len() {
        n if n <= SHOWN => parts.join(", "),
        n => format!("{} and {} more", parts[..SHOWN].join(", "), n - SHOWN),
    }
}

/// A ready broker that is a replica of a partition but not in its ISR.
fn catching_up<'a>(pods: &[BrokerPod], kafka: &'a KafkaView) -> Option<(i32, &'a PartitionView)> {
    kafka.partitions.iter().find_map(|p| {
        p.replicas
            .iter()
            .find(|r| !p.isr.contains(r) && pods.iter().any(|b| b.id == **r && b.ready))
            .map(|r| (*r, p))
    })
}

/// The next step of rolling the pods of every StatefulSet of `sets`, each
/// as the API server returned it after it was applied with its replicas;
/// a wait while a StatefulSet controller has not caught up: it is still
/// creating pods, or has not seen a changed template (until it has, its
/// update revision is the old one and every pod would look current). One
/// node at a time over all the pools: the rules below do not care which
/// pool a node is in, and a dedicated controller holds no partition.
pub fn step(
    sets: &[(&StatefulSet, i32)],
    pods: &[BrokerPod],
    kafka: Option<&KafkaView>,
    voters: &[i32],
) -> Step {
    let mut revisions = BTreeMap::new();
    for (sts, replicas) in sets {
        let name = sts.metadata.name.clone().unwrap_or_default();
        let status = sts.status.as_ref();
        let revision = status
            .and_then(|s| s.update_revision.clone())
            .unwrap_or_default();
        let template_seen = status.and_then(|s| s.observed_generation) >= sts.metadata.generation;
        let created = pods.iter().filter(|p| p.statefulset == name).count() as i32;
        if revision.is_empty() || created < *replicas {
            return Step::Wait("the StatefulSet is creating pods".into());
        }
        if !template_seen {
            return Step::Wait(
                "the StatefulSet controller has not seen the new pod template yet".into(),
            );
        }
        revisions.insert(name, revision);
    }
    next_step(pods, &revisions, kafka, voters)
}

/// The next step of rolling `pods` to the `revisions` of their
/// StatefulSets (by name). `kafka` is `None` when the cluster cannot be
/// asked; `voters` are the quorum's nodes.
pub fn next_step(
    pods: &[BrokerPod],
    revisions: &BTreeMap<String, String>,
    kafka: Option<&KafkaView>,
    voters: &[i32],
) -> Step {
    let outdated =
        |b: &&BrokerPod| b.restart_asked || b.revision.as_ref() != revisions.get(&b.statefulset);
    let why = |b: &BrokerPod| match b.restart_asked {
        true => "was asked to restart (gregor.dev/manual-rolling-update)",
        false => "runs an old revision",
    };
    if pods.iter().all(|b| !outdated(&b)) {
        return Step::Done;
    }
    if let Some(b) = pods.iter().find(|b| b.terminating) {
        return Step::Wait(format!("broker {} is restarting", b.id));
    }
    // An outdated broker that is down serves nobody: restart it first (its
    // old revision may be why it is down). While other brokers serve, one at
    // a time like any restart. When none is ready there is no availability
    // to protect, and waiting for each replaced pod would only delay the
    // recovery: all of them go together.
    let down: Vec<&BrokerPod> = pods.iter().filter(outdated).filter(|b| !b.ready).collect();
    if !down.is_empty() {
        let none_ready = pods.iter().all(|b| !b.ready);
        let take = if none_ready { down.len() } else { 1 };
        let down_why = if none_ready {
            ", and no broker is ready"
        } else {
            ""
        };
        return Step::Restart(
            down.iter()
                .take(take)
                .map(|b| Restart {
                    broker: b.id,
                    reason: format!("broker {} is not ready and {}{down_why}", b.id, why(b)),
                })
                .collect(),
        );
    }
    if let Some(b) = pods.iter().find(|b| !b.ready) {
        return Step::Wait(format!("broker {} is not ready", b.id));
    }
    let Some(kafka) = kafka else {
        return Step::Wait("the cluster's metadata cannot be read".into());
    };
    if let Some((broker, p)) = catching_up(pods, kafka) {
        return Step::Wait(format!(
            "broker {broker} is not back in the ISR of {}",
            p.label()
        ));
    }
    let mut candidates: Vec<&BrokerPod> = pods.iter().filter(outdated).collect();
    // The active controller is a voter; a broker names itself in its
    // place when that is a dedicated controller (not a broker), which the
    // operator then cannot tell apart from the other voters.
    let voter = |b: &BrokerPod| voters.contains(&b.id);
    candidates.sort_by_key(|b| (voter(b) && kafka.controller == Some(b.id), voter(b), b.id));
    let Some(next) = candidates.first() else {
        return Step::Done;
    };
    match restart_safety(next.id, kafka) {
        Ok(()) => Restart::one(next.id, format!("broker {} {}", next.id, why(next))),
        // Asked for by hand: waiting can never make it safe, and the user
        // asked; the partitions without a replica to spare are said.
        Err((true, parts)) if next.restart_asked => Restart::one(
            next.id,
            format!(
                "broker {} {}; {} have no replica to spare (replication factor not above min.insync.replicas) and pause while it restarts",
                next.id,
                why(next),
                listed(&parts)
            ),
        ),
        Err((true, parts)) => Step::Blocked(format!(
            "restarting broker {} would take {} below min.insync.replicas whatever happens: their replication factor is not above it",
            next.id,
            parts.join(", ")
        )),
        Err((false, parts)) => Step::Wait(format!(
            "restarting broker {} now would take {} below min.insync.replicas",
            next.id,
            parts.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeSet;

    fn pod(id: i32, ready: bool, revision: &str) -> BrokerPod {
        BrokerPod {
            id,
            ready,
            revision: Some(revision.into()),
            ..Default::default()
        }
    }

    fn part(name: &str, replicas: &[i32], isr: &[i32], min_isr: i32) -> PartitionView {
        PartitionView {
            topic: name.into(),
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: isr.first().copied().unwrap_or(-1),
            min_isr,
            reassigning: false,
        }
    }

    fn kafka(controller: i32, partitions: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            brokers: BTreeSet::from([0, 1, 2, 3]),
            controller: Some(controller),
            partitions,
            ..Default::default()
        }
    }

    #[test]
    fn waits_for_the_statefulset_controller() {
        let sts = |generation: i64, observed: Option<i64>, revision: Option<&str>| StatefulSet {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            status: Some(StatefulSetStatus {
                observed_generation: observed,
                update_revision: revision.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        };
        let creating = Step::Wait("the StatefulSet is creating pods".into());
        let unseen =
            Step::Wait("the StatefulSet controller has not seen the new pod template yet".into());
        let current = vec![pod(0, true, "r2"), pod(1, true, "r2")];
        let cases = [
            ("no status yet", StatefulSet::default(), 2, creating.clone()),
            (
                "no revision yet",
                sts(1, Some(1), None),
                2,
                creating.clone(),
            ),
            (
                "fewer pods than replicas",
                sts(1, Some(1), Some("r2")),
                3,
                creating,
            ),
            (
                "a template not seen yet",
                sts(2, Some(1), Some("r2")),
                2,
                unseen.clone(),
            ),
            ("never observed", sts(1, None, Some("r2")), 2, unseen),
            (
                "caught up, every pod current",
                sts(2, Some(2), Some("r2")),
                2,
                Step::Done,
            ),
            (
                "caught up, an outdated pod",
                sts(2, Some(2), Some("r3")),
                2,
                Restart::one(1, "broker 1 runs an old revision".into()),
            ),
        ];
        let view = kafka(0, vec![part("t", &[0, 1], &[0, 1], 1)]);
        for (name, sts, replicas, want) in cases {
            assert_eq!(
                step(&[(&sts, replicas)], &current, Some(&view), &[0, 1, 2]),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn scenarios() {
        let healthy = vec![
            part("t", &[0, 1, 2], &[0, 1, 2], 2),
            part("u", &[3, 1, 2], &[3, 1, 2], 2),
        ];
        struct Case {
            name: &'static str,
            pods: Vec<BrokerPod>,
            kafka: Option<KafkaView>,
            want: Step,
        }
        let restart = |broker: i32, reason: &str| Restart::one(broker, reason.into());
        let restart_all = |brokers: &[i32]| {
            Step::Restart(
                brokers
                    .iter()
                    .map(|b| Restart {
                        broker: *b,
                        reason: format!("broker {b} is not ready and runs an old revision, and no broker is ready"),
                    })
                    .collect(),
            )
        };
        let cases = vec![
            Case {
                name: "all current",
                pods: (0..4).map(|i| pod(i, true, "new")).collect(),
                kafka: Some(kafka(0, healthy.clone())),
                want: Step::Done,
            },
            Case {
                name: "broker-only nodes first, then voters, active controller last",
                pods: (0..4).map(|i| pod(i, true, "old")).collect(),
                kafka: Some(kafka(1, healthy.clone())),
                want: restart(3, "broker 3 runs an old revision"),
            },
            Case {
                name: "a broker asked to restart goes through the same checks",
                pods: (0..4)
                    .map(|i| BrokerPod {
                        restart_asked: i == 2,
                        ..pod(i, true, "new")
                    })
                    .collect(),
                kafka: Some(kafka(0, healthy.clone())),
                want: restart(2, "broker 2 was asked to restart (gregor.dev/manual-rolling-update)"),
            },
            Case {
                name: "a broker asked to restart waits while another catches up",
                pods: (0..4)
                    .map(|i| BrokerPod {
                        restart_asked: i == 2,
                        ..pod(i, true, "new")
                    })
                    .collect(),
                kafka: Some(kafka(0, vec![part("t", &[0, 1, 2], &[0, 2], 2)])),
                want: Step::Wait("broker 1 is not back in the ISR of t-0".into()),
            },
            Case {
                name: "a lone broker asked to restart goes although its partitions cannot spare it",
                pods: vec![BrokerPod {
                    restart_asked: true,
                    ..pod(0, true, "new")
                }],
                kafka: Some(kafka(
                    0,
                    (0..7).map(|i| PartitionView { partition: i, ..part("o", &[0], &[0], 1) }).collect(),
                )),
                want: restart(
                    0,
                    "broker 0 was asked to restart (gregor.dev/manual-rolling-update); o-0, o-1, o-2, o-3, o-4 and 2 more have no replica to spare (replication factor not above min.insync.replicas) and pause while it restarts",
                ),
            },
            Case {
                name: "a lone broker on a new revision is not restarted on its own",
                pods: vec![pod(0, true, "old")],
                kafka: Some(kafka(0, vec![part("o", &[0], &[0], 1)])),
                want: Step::Blocked(
                    "restarting broker 0 would take o-0 below min.insync.replicas whatever happens: their replication factor is not above it".into(),
                ),
            },
            Case {
                name: "voters before the active controller",
                pods: vec![pod(0, true, "old"), pod(1, true, "old"), pod(2, true, "old"), pod(3, true, "new")],
                kafka: Some(kafka(0, healthy.clone())),
                want: restart(1, "broker 1 runs an old revision"),
            },
            Case {
                name: "a broker named controller in a dedicated controller's place goes with the brokers",
                pods: (0..4).map(|i| pod(i, true, "old")).collect(),
                kafka: Some(kafka(3, healthy.clone())),
                want: restart(3, "broker 3 runs an old revision"),
            },
            Case {
                name: "the active controller last",
                pods: vec![pod(0, true, "old"), pod(1, true, "new"), pod(2, true, "new"), pod(3, true, "new")],
                kafka: Some(kafka(0, healthy.clone())),
                want: restart(0, "broker 0 runs an old revision"),
            },
            Case {
                name: "a restarted broker still catching up holds the roll",
                pods: vec![pod(0, true, "old"), pod(1, true, "old"), pod(2, true, "old"), pod(3, true, "new")],
                kafka: Some(kafka(0, vec![part("t", &[0, 1, 2], &[0, 1, 2], 2), part("u", &[3, 1, 2], &[1, 2], 2)])),
                want: Step::Wait("broker 3 is not back in the ISR of u-0".into()),
            },
            Case {
                name: "a restarting pod holds the roll",
                pods: vec![
                    BrokerPod { terminating: true, ..pod(0, true, "old") },
                    pod(1, true, "old"), pod(2, true, "new"), pod(3, true, "new"),
                ],
                kafka: Some(kafka(0, healthy.clone())),
                want: Step::Wait("broker 0 is restarting".into()),
            },
            Case {
                name: "a new pod not ready yet holds the roll",
                pods: vec![pod(0, true, "old"), pod(1, false, "new"), pod(2, true, "new"), pod(3, true, "new")],
                kafka: Some(kafka(0, healthy.clone())),
                want: Step::Wait("broker 1 is not ready".into()),
            },
            Case {
                name: "an outdated broker that is down goes first, whatever the ISR",
                pods: vec![pod(0, true, "old"), pod(1, true, "old"), pod(2, false, "old"), pod(3, true, "old")],
                kafka: Some(kafka(0, vec![part("t", &[0, 1, 2], &[0, 1], 2)])),
                want: restart(2, "broker 2 is not ready and runs an old revision"),
            },
            Case {
                name: "two outdated brokers down while others serve: one at a time",
                pods: vec![pod(0, true, "old"), pod(1, false, "old"), pod(2, false, "old"), pod(3, true, "old")],
                kafka: Some(kafka(0, healthy.clone())),
                want: restart(1, "broker 1 is not ready and runs an old revision"),
            },
            Case {
                name: "a spec fixed while no broker ever became ready: all outdated brokers together",
                pods: (0..4).map(|i| pod(i, false, "old")).collect(),
                kafka: None,
                want: restart_all(&[0, 1, 2, 3]),
            },
            Case {
                name: "none ready, some already replaced and starting: the outdated rest together",
                pods: vec![pod(0, false, "new"), pod(1, false, "old"), pod(2, false, "new"), pod(3, false, "old")],
                kafka: None,
                want: restart_all(&[1, 3]),
            },
            Case {
                name: "replaced pods still terminating hold the next step",
                pods: vec![
                    BrokerPod { terminating: true, ..pod(0, false, "old") },
                    pod(1, false, "old"), pod(2, false, "new"), pod(3, false, "new"),
                ],
                kafka: None,
                want: Step::Wait("broker 0 is restarting".into()),
            },
            Case {
                name: "a current pod that never became ready is not the rollout's to restart",
                pods: vec![pod(0, true, "old"), pod(1, true, "old"), pod(2, false, "new"), pod(3, true, "old")],
                kafka: Some(kafka(0, healthy.clone())),
                want: Step::Wait("broker 2 is not ready".into()),
            },
            Case {
                name: "a partition at min ISR blocks the restart for now",
                pods: vec![pod(0, true, "new"), pod(1, true, "new"), pod(2, true, "new"), pod(3, true, "old")],
                kafka: Some(kafka(0, vec![part("u", &[3, 1, 2], &[3, 1], 2)])),
                want: Step::Wait("broker 2 is not back in the ISR of u-0".into()),
            },
            Case {
                name: "at min ISR because a replica's broker is gone",
                pods: vec![pod(0, true, "new"), pod(1, true, "new"), pod(2, true, "new"), pod(3, true, "old")],
                kafka: Some(kafka(0, vec![part("u", &[3, 1, 7], &[3, 1], 2)])),
                want: Step::Wait("restarting broker 3 now would take u-0 below min.insync.replicas".into()),
            },
            Case {
                name: "replication factor at min ISR can never roll",
                pods: vec![pod(0, true, "new"), pod(1, true, "new"), pod(2, true, "new"), pod(3, true, "old")],
                kafka: Some(kafka(0, vec![part("u", &[3, 1], &[3, 1], 2)])),
                want: Step::Blocked("restarting broker 3 would take u-0 below min.insync.replicas whatever happens: their replication factor is not above it".into()),
            },
            Case {
                name: "no metadata, nothing restarted",
                pods: (0..4).map(|i| pod(i, true, "old")).collect(),
                kafka: None,
                want: Step::Wait("the cluster's metadata cannot be read".into()),
            },
        ];
        for case in cases {
            let revisions = BTreeMap::from([(String::new(), "new".to_string())]);
            let got = next_step(&case.pods, &revisions, case.kafka.as_ref(), &[0, 1, 2]);
            assert_eq!(got, case.want, "{}", case.name);
        }
    }
}
