//! Healing: noticing a broker that stays fenced or out of the ISR while its
//! pod looks fine, restarting it once that has lasted past a threshold, and
//! restoring preferred leaders once every broker is healthy again.
//! A pod that is not ready (crash-looping, OOM-killed, its image missing) is
//! the kubelet's and the rollout's, never healing's: it has no trouble, and
//! while it lasts healing restarts nobody. A container the kubelet restarted
//! is a new process, so its trouble's clock starts again.

use std::collections::BTreeMap;

use super::rollout::restart_safety;
use super::view::{BrokerPod, KafkaView};

/// A way a broker can be unwell while its pod is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trouble {
    /// Not registered with the quorum (fenced or never registered).
    Fenced,
    /// A replica of some partition that is not in its ISR.
    OutOfIsr,
}

/// A broker's trouble and since when it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lasting {
    /// The trouble.
    pub trouble: Trouble,
    /// Since when, in seconds on the operator's clock.
    pub since: u64,
    /// The broker container's restart count when it was last seen.
    pub restarts: i32,
}

/// Each troubled broker's trouble, by broker id.
pub type Troubles = BTreeMap<i32, Lasting>;

/// How long a trouble may last before the broker is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// For [`Trouble::Fenced`].
    pub fenced_secs: u64,
    /// For [`Trouble::OutOfIsr`].
    pub out_of_isr_secs: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            fenced_secs: 120,
            out_of_isr_secs: 300,
        }
    }
}

/// What healing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heal {
    /// Restart (delete) this broker's pod.
    Restart {
        /// Broker id.
        broker: i32,
        /// Why, for the event.
        reason: String,
    },
    /// Move leadership back to the preferred replicas of these partitions.
    ElectPreferred(Vec<(String, i32)>),
}

/// Updates `previous` with what is seen `now`: troubles that go on keep
/// their start, new ones start now, cured ones are dropped. Pods that are
/// not ready are left to Kubernetes and the rollout; one whose container
/// was restarted since starts its clock again.
pub fn observe(previous: &Troubles, now: u64, pods: &[BrokerPod], kafka: &KafkaView) -> Troubles {
    let mut out = Troubles::new();
    for pod in pods.iter().filter(|p| p.ready && !p.terminating) {
        let trouble = if !kafka.brokers.contains(&pod.id) {
            Some(Trouble::Fenced)
        } else if kafka
            .partitions
            .iter()
            .any(|p| p.leader >= 0 && p.replicas.contains(&pod.id) && !p.isr.contains(&pod.id))
        {
            Some(Trouble::OutOfIsr)
        } else {
            None
        };
        if let Some(trouble) = trouble {
            let restarts = pod.facts.restarts;
            let since = match previous.get(&pod.id) {
                Some(old) if old.trouble == trouble && old.restarts == restarts => old.since,
                _ => now,
            };
            out.insert(
                pod.id,
                Lasting {
                    trouble,
                    since,
                    restarts,
                },
            );
        }
    }
    out
}

/// What to do about `troubles` at `now`: at most one restart (the longest
/// trouble past its threshold, if the restart is safe and no other broker
/// is down), or, with every broker healthy, a preferred-leader election.
pub fn decide(
    troubles: &Troubles,
    now: u64,
    thresholds: Thresholds,
    pods: &[BrokerPod],
    kafka: &KafkaView,
) -> Option<Heal> {
    let all_up = pods.iter().all(|p| p.ready && !p.terminating);
    if troubles.is_empty() {
        if !all_up {
            return None;
        }
        let moves: Vec<(String, i32)> = kafka
            .partitions
            .iter()
            .filter(|p| {
                p.replicas
                    .first()
                    .is_some_and(|r| *r != p.leader && p.isr.contains(r))
            })
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        return (!moves.is_empty()).then_some(Heal::ElectPreferred(moves));
    }
    if !all_up {
        return None;
    }
    let mut due: Vec<(u64, i32, Trouble)> = troubles
        .iter()
        .filter_map(|(id, t)| {
            let limit = match t.trouble {
                Trouble::Fenced => thresholds.fenced_secs,
                Trouble::OutOfIsr => thresholds.out_of_isr_secs,
            };
            (now.saturating_sub(t.since) >= limit).then_some((t.since, *id, t.trouble))
        })
        .collect();
    due.sort();
    due.into_iter().find_map(|(since, broker, t)| {
        restart_safety(broker, kafka).ok()?;
        let what = match t {
            Trouble::Fenced => "not registered with the quorum",
            Trouble::OutOfIsr => "out of the ISR",
        };
        Some(Heal::Restart {
            broker,
            reason: format!(
                "broker {broker} has been {what} for {} s while its pod is ready",
                now.saturating_sub(since)
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::{Note, PartitionView, PodFacts, Termination};
    use std::collections::BTreeSet;

    fn pods(ready: &[bool]) -> Vec<BrokerPod> {
        ready
            .iter()
            .enumerate()
            .map(|(i, r)| BrokerPod {
                id: i as i32,
                ready: *r,
                revision: Some("r".into()),
                restart_asked: false,
                ..Default::default()
            })
            .collect()
    }

    fn part(topic: &str, replicas: &[i32], isr: &[i32], leader: i32) -> PartitionView {
        PartitionView {
            topic: topic.into(),
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            min_isr: 2,
            reassigning: false,
        }
    }

    fn view(brokers: &[i32], partitions: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            brokers: brokers.iter().copied().collect::<BTreeSet<_>>(),
            controller: Some(0),
            partitions,
            ..Default::default()
        }
    }

    const T: Thresholds = Thresholds {
        fenced_secs: 120,
        out_of_isr_secs: 300,
    };

    #[test]
    fn scenarios() {
        struct Case {
            name: &'static str,
            pods: Vec<BrokerPod>,
            kafka: KafkaView,
            troubles_since: u64,
            now: u64,
            want: Option<Heal>,
        }
        let cases = vec![
            Case {
                name: "healthy and balanced: nothing",
                pods: pods(&[true, true, true]),
                kafka: view(&[0, 1, 2], vec![part("t", &[0, 1, 2], &[0, 1, 2], 0)]),
                troubles_since: 0,
                now: 1000,
                want: None,
            },
            Case {
                name: "out of ISR, not for long enough",
                pods: pods(&[true, true, true]),
                kafka: view(&[0, 1, 2], vec![part("t", &[0, 1, 2], &[0, 1], 0)]),
                troubles_since: 1000,
                now: 1299,
                want: None,
            },
            Case {
                name: "out of ISR past the threshold: restart it",
                pods: pods(&[true, true, true]),
                kafka: view(&[0, 1, 2], vec![part("t", &[0, 1, 2], &[0, 1], 0)]),
                troubles_since: 1000,
                now: 1300,
                want: Some(Heal::Restart {
                    broker: 2,
                    reason: "broker 2 has been out of the ISR for 300 s while its pod is ready".into(),
                }),
            },
            Case {
                name: "fenced past the threshold: restart it",
                pods: pods(&[true, true, true]),
                kafka: view(&[0, 1], vec![part("t", &[0, 1, 2], &[0, 1], 0)]),
                troubles_since: 1000,
                now: 1120,
                want: Some(Heal::Restart {
                    broker: 2,
                    reason: "broker 2 has been not registered with the quorum for 120 s while its pod is ready".into(),
                }),
            },
            Case {
                name: "another broker down: no second restart",
                pods: pods(&[true, false, true]),
                kafka: view(&[0, 2], vec![part("t", &[0, 1, 2], &[0], 0)]),
                troubles_since: 0,
                now: 10_000,
                want: None,
            },
            Case {
                name: "a broker crash-looping for memory is the kubelet's: no restart of it or another",
                pods: {
                    let mut p = pods(&[true, true, true]);
                    p[1].ready = false;
                    p[1].facts = PodFacts {
                        phase: "Running".into(),
                        waiting: Some(Note {
                            reason: "CrashLoopBackOff".into(),
                            message: String::new(),
                        }),
                        terminated: Some(Termination {
                            reason: "OOMKilled".into(),
                            exit_code: 137,
                            message: String::new(),
                        }),
                        restarts: 4,
                        memory_limit: Some("64Mi".into()),
                        ..Default::default()
                    };
                    p
                },
                kafka: view(&[0, 2], vec![part("t", &[0, 1, 2], &[0, 2], 0), part("u", &[2, 0, 1], &[2], 2)]),
                troubles_since: 0,
                now: 10_000,
                want: None,
            },
            Case {
                name: "restart would break min ISR elsewhere: wait",
                pods: pods(&[true, true, true]),
                kafka: view(
                    &[0, 1, 2],
                    vec![part("t", &[0, 1, 2], &[0, 1], 0), part("u", &[2, 0, 1], &[2, 0], 2)],
                ),
                troubles_since: 0,
                now: 10_000,
                want: None,
            },
            Case {
                name: "recovered but leaders moved: elect preferred",
                pods: pods(&[true, true, true]),
                kafka: view(
                    &[0, 1, 2],
                    vec![part("t", &[0, 1, 2], &[0, 1, 2], 1), part("u", &[2, 0, 1], &[2, 0, 1], 2)],
                ),
                troubles_since: 0,
                now: 10,
                want: Some(Heal::ElectPreferred(vec![("t".into(), 0)])),
            },
            Case {
                name: "preferred leader not in ISR: no election",
                pods: pods(&[true, true, true]),
                kafka: view(&[0, 1, 2], vec![part("t", &[2, 0, 1], &[0, 1], 0)]),
                troubles_since: 0,
                now: 10,
                want: None,
            },
        ];
        for case in cases {
            let troubles = observe(
                &Troubles::new(),
                case.troubles_since,
                &case.pods,
                &case.kafka,
            );
            let got = decide(&troubles, case.now, T, &case.pods, &case.kafka);
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn troubles_keep_their_start() {
        let p = pods(&[true, true, true]);
        let out = view(&[0, 1, 2], vec![part("t", &[0, 1, 2], &[0, 1], 0)]);
        let seen = |t: &Troubles| t.get(&2).map(|l| (l.trouble, l.since));
        let first = observe(&Troubles::new(), 100, &p, &out);
        assert_eq!(seen(&first), Some((Trouble::OutOfIsr, 100)));
        let later = observe(&first, 200, &p, &out);
        assert_eq!(seen(&later), Some((Trouble::OutOfIsr, 100)));
        let fenced = view(&[0, 1], out.partitions.clone());
        assert_eq!(
            seen(&observe(&later, 300, &p, &fenced)),
            Some((Trouble::Fenced, 300))
        );
        let healed = view(&[0, 1, 2], vec![part("t", &[0, 1, 2], &[0, 1, 2], 0)]);
        assert!(observe(&later, 400, &p, &healed).is_empty());
        // The kubelet restarted the container (an OOM kill, a failed
        // liveness probe) between two looks: a new process, a new clock.
        let mut restarted = p.clone();
        restarted[2].facts.restarts = 1;
        assert_eq!(
            seen(&observe(&later, 250, &restarted, &out)),
            Some((Trouble::OutOfIsr, 250))
        );
        // Not ready in between: the trouble is dropped and starts anew.
        let mut down = p.clone();
        down[2].ready = false;
        let gone = observe(&later, 260, &down, &out);
        assert!(gone.is_empty());
        assert_eq!(
            seen(&observe(&gone, 270, &p, &out)),
            Some((Trouble::OutOfIsr, 270))
        );
    }
}
