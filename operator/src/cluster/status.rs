//! The cluster's `Ready`, `Reconciling` and `Degraded` conditions, decided
//! from what a reconcile pass saw and did.

use crate::conditions::Decided;

use super::rollout::Step;
use super::view::KafkaView;

/// What the conditions are decided from.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Brokers the spec asks for.
    pub want: i32,
    /// Of those, brokers whose pods are ready.
    pub ready: i32,
    /// The rollout's step.
    pub step: &'a Step,
    /// Why a scale-down is still draining brokers, if it is.
    pub scaling: Option<&'a str>,
    /// Brokers whose external addresses are not assigned yet.
    pub pending: &'a [i32],
    /// The cluster as its brokers describe it, if one answers.
    pub kafka: Option<&'a KafkaView>,
    /// Healing's note on brokers that stay fenced or out of an ISR.
    pub healing: Option<&'a str>,
    /// Reason and message of failing broker pods (see `failures`).
    pub failing: Option<(&'a str, &'a str)>,
    /// What the pass could not apply (see `trouble`).
    pub trouble: Option<&'a str>,
    /// Claims still growing to the spec's size.
    pub growing: Option<&'a str>,
    /// The rebalance under way, if one is (it leaves the cluster ready).
    pub rebalancing: Option<&'a str>,
}

/// The three conditions. `Degraded` names the most pressing problem:
/// objects the operator could not apply first (nothing it does can fix
/// them), then failing broker pods (the cause of most others), then a rollout
/// that can never proceed, offline partitions, brokers not ready while
/// nothing is under way, healing, under-replication. `Ready` is true only
/// with every broker ready, the cluster answering and nothing to report;
/// otherwise it carries the problem's reason, or what is under way.
pub fn decide(seen: &Seen) -> Vec<Decided> {
    let Seen {
        want,
        ready,
        step,
        scaling,
        pending,
        kafka,
        healing,
        failing,
        trouble,
        growing,
        rebalancing,
    } = *seen;
    let mut reconciling = None;
    if !pending.is_empty() {
        reconciling = Some((
            "WaitingForAddresses",
            format!("external addresses of brokers {pending:?} are not assigned yet"),
        ));
    } else if let Some(why) = scaling {
        reconciling = Some(("Draining", why.to_string()));
    } else if let Some(claims) = growing {
        reconciling = Some(("ExpandingStorage", claims.to_string()));
    } else if let Step::Restart(restarts) = step {
        let reasons: Vec<&str> = restarts.iter().map(|r| r.reason.as_str()).collect();
        reconciling = Some(("RollingRestart", reasons.join("; ")));
    } else if let Step::Wait(reason) = step {
        reconciling = Some(("RollingRestart", reason.clone()));
    } else if let Step::Blocked(why) = step {
        // Pods run an old revision: the spec is not all applied.
        reconciling = Some(("RestartBlocked", why.clone()));
    }
    let mut degraded = None;
    if let Some(message) = trouble {
        degraded = Some(("ApplyFailed", message.to_string()));
    } else if let Some((reason, message)) = failing {
        degraded = Some((reason, message.to_string()));
    } else if let Step::Blocked(why) = step {
        degraded = Some(("RestartBlocked", why.clone()));
    } else if let Some(k) = kafka.filter(|k| k.offline() > 0) {
        degraded = Some((
            "OfflinePartitions",
            format!("{} partitions have no leader", k.offline()),
        ));
    } else if ready < want && reconciling.is_none() {
        degraded = Some((
            "BrokersNotReady",
            format!("{ready} of {want} brokers are ready"),
        ));
    } else if let Some(note) = healing {
        degraded = Some(("Healing", note.to_string()));
    } else if let Some(k) = kafka.filter(|k| k.under_replicated() > 0) {
        degraded = Some((
            "UnderReplicated",
            format!("{} partitions are under-replicated", k.under_replicated()),
        ));
    }
    let is_ready = ready == want && kafka.is_some() && degraded.is_none() && reconciling.is_none();
    // Clients are served as usual while replicas move.
    if let (None, Some(what)) = (&reconciling, rebalancing) {
        reconciling = Some(("Rebalancing", what.to_string()));
    }
    let ready_reason = if is_ready {
        ("Ready", format!("{ready} brokers ready"))
    } else if kafka.is_none() && ready == want {
        (
            "Unreachable",
            "no broker answers admin requests".to_string(),
        )
    } else if let Some((r, m)) = degraded.as_ref().or(reconciling.as_ref()) {
        (*r, m.clone())
    } else {
        (
            "WaitingForBrokers",
            format!("{ready} of {want} brokers are ready"),
        )
    };
    vec![
        Decided::new("Ready", is_ready, ready_reason.0, ready_reason.1),
        match reconciling {
            Some((r, m)) => Decided::new("Reconciling", true, r, m),
            None => Decided::new(
                "Reconciling",
                false,
                "UpToDate",
                "every broker runs the current spec",
            ),
        },
        match degraded {
            Some((r, m)) => Decided::new("Degraded", true, r, m),
            None => Decided::new("Degraded", false, "Healthy", "no problem seen"),
        },
    ]
}

/// The three conditions of a spec that cannot be applied (`why`): nothing
/// is changed until it is fixed.
pub fn invalid(why: &str) -> Vec<Decided> {
    blocked("InvalidSpec", why, "fix the spec")
}

/// The three conditions of a pass stopped by `reason` (`why`) until the
/// user does `remedy`.
pub fn blocked(reason: &str, why: &str, remedy: &str) -> Vec<Decided> {
    vec![
        Decided::new("Ready", false, reason, why),
        Decided::new("Reconciling", false, reason, remedy),
        Decided::new("Degraded", true, reason, why),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::rollout::Restart;
    use crate::cluster::view::PartitionView;
    use std::collections::BTreeSet;

    fn kafka(isr: &[i32], leader: i32) -> KafkaView {
        KafkaView {
            brokers: BTreeSet::from([0, 1, 2]),
            controller: Some(0),
            racks: Default::default(),
            partitions: vec![PartitionView {
                topic: "t".into(),
                partition: 0,
                replicas: vec![0, 1, 2],
                isr: isr.to_vec(),
                leader,
                min_isr: 2,
                reassigning: false,
            }],
        }
    }

    /// (status, reason, message) of Ready, Reconciling and Degraded.
    type Want = [(bool, &'static str, &'static str); 3];

    #[test]
    fn scenarios() {
        let healthy = kafka(&[0, 1, 2], 0);
        let offline = kafka(&[], -1);
        let done = Step::Done;
        let not_ready = Step::Wait("broker 2 is not ready".into());
        let replace_all = Step::Restart(
            (0..3)
                .map(|b| Restart {
                    broker: b,
                    reason: format!(
                        "broker {b} is not ready and runs an old revision, and no broker is ready"
                    ),
                })
                .collect(),
        );
        let held = "restarting broker 0 would take o-0 below min.insync.replicas whatever happens: their replication factor is not above it";
        let blocked = Step::Blocked(held.into());
        let base = Seen {
            want: 3,
            ready: 3,
            step: &done,
            scaling: None,
            pending: &[],
            kafka: Some(&healthy),
            healing: None,
            failing: None,
            trouble: None,
            growing: None,
            rebalancing: None,
        };
        let forbidden = "could not apply the StatefulSet: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden";
        let pull = "broker 0: ImagePullBackOff: Back-off pulling image \"nope:1\"; broker 1: ErrImagePull: not found; broker 2: ImagePullBackOff: Back-off pulling image \"nope:1\"";
        let oom = "broker 2 was killed for running out of memory (OOMKilled, exit code 137) with its memory limit of 64Mi (spec.resources.limits.memory); restarted 3 times";
        let cases: Vec<(&str, Seen, Want)> = vec![
            (
                "all well",
                base,
                [
                    (true, "Ready", "3 brokers ready"),
                    (false, "UpToDate", "every broker runs the current spec"),
                    (false, "Healthy", "no problem seen"),
                ],
            ),
            (
                "starting: nothing failing yet",
                Seen { ready: 0, kafka: None, ..base },
                [
                    (false, "BrokersNotReady", "0 of 3 brokers are ready"),
                    (false, "UpToDate", "every broker runs the current spec"),
                    (true, "BrokersNotReady", "0 of 3 brokers are ready"),
                ],
            ),
            (
                "an image that cannot be pulled on every broker",
                Seen { ready: 0, kafka: None, failing: Some(("ImagePullFailed", pull)), ..base },
                [
                    (false, "ImagePullFailed", pull),
                    (false, "UpToDate", "every broker runs the current spec"),
                    (true, "ImagePullFailed", pull),
                ],
            ),
            (
                "the image fixed: pods replaced, the failure reported until they are gone",
                Seen { ready: 0, kafka: None, step: &replace_all, failing: Some(("ImagePullFailed", pull)), ..base },
                [
                    (false, "ImagePullFailed", pull),
                    (
                        true,
                        "RollingRestart",
                        "broker 0 is not ready and runs an old revision, and no broker is ready; broker 1 is not ready and runs an old revision, and no broker is ready; broker 2 is not ready and runs an old revision, and no broker is ready",
                    ),
                    (true, "ImagePullFailed", pull),
                ],
            ),
            (
                "a rollout held by a broker killed for memory, partitions offline too",
                Seen { ready: 2, kafka: Some(&offline), step: &not_ready, failing: Some(("OOMKilled", oom)), ..base },
                [
                    (false, "OOMKilled", oom),
                    (true, "RollingRestart", "broker 2 is not ready"),
                    (true, "OOMKilled", oom),
                ],
            ),
            (
                "a rollout waiting for a starting broker is not a problem",
                Seen { ready: 2, step: &not_ready, ..base },
                [
                    (false, "RollingRestart", "broker 2 is not ready"),
                    (true, "RollingRestart", "broker 2 is not ready"),
                    (false, "Healthy", "no problem seen"),
                ],
            ),
            (
                "every pod ready, no broker answers",
                Seen { kafka: None, ..base },
                [
                    (false, "Unreachable", "no broker answers admin requests"),
                    (false, "UpToDate", "every broker runs the current spec"),
                    (false, "Healthy", "no problem seen"),
                ],
            ),
            (
                "an object the API server refuses comes before failing pods",
                Seen { trouble: Some(forbidden), failing: Some(("OOMKilled", oom)), ..base },
                [
                    (false, "ApplyFailed", forbidden),
                    (false, "UpToDate", "every broker runs the current spec"),
                    (true, "ApplyFailed", forbidden),
                ],
            ),
            (
                "claims growing",
                Seen { growing: Some("claims growing: data-demo-broker-0 (10Gi of 20Gi)"), ..base },
                [
                    (false, "ExpandingStorage", "claims growing: data-demo-broker-0 (10Gi of 20Gi)"),
                    (true, "ExpandingStorage", "claims growing: data-demo-broker-0 (10Gi of 20Gi)"),
                    (false, "Healthy", "no problem seen"),
                ],
            ),
            (
                "a rebalance leaves the cluster ready",
                Seen { rebalancing: Some("5 brokers, up from 3 (2 of 9 partitions done): moving t-1"), ..base },
                [
                    (true, "Ready", "3 brokers ready"),
                    (true, "Rebalancing", "5 brokers, up from 3 (2 of 9 partitions done): moving t-1"),
                    (false, "Healthy", "no problem seen"),
                ],
            ),
            (
                "a restart no pass can make safe waits for the user",
                Seen { step: &blocked, ..base },
                [
                    (false, "RestartBlocked", held),
                    (true, "RestartBlocked", held),
                    (true, "RestartBlocked", held),
                ],
            ),
            (
                "healing under way",
                Seen { healing: Some("broker 2 OutOfIsr for 40 s"), ..base },
                [
                    (false, "Healing", "broker 2 OutOfIsr for 40 s"),
                    (false, "UpToDate", "every broker runs the current spec"),
                    (true, "Healing", "broker 2 OutOfIsr for 40 s"),
                ],
            ),
        ];
        for (name, seen, want) in cases {
            let decided = decide(&seen);
            let got: Vec<(bool, &str, &str)> = decided
                .iter()
                .map(|d| (d.status, d.reason.as_str(), d.message.as_str()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
