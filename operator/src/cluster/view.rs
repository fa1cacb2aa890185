//! What the operator sees of a running cluster, as plain data: its broker
//! pods (from Kubernetes) and its brokers and partitions (from the Kafka
//! admin protocol). The rollout, healing, scaling and failure-reporting
//! decisions are functions of this view.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::statefulset::BROKER_CONTAINER;

/// Annotation asking for a restart through the roller: on a broker pod,
/// that broker; on a `KafkaCluster`, every broker (the operator moves it to
/// the pods and removes it from the cluster).
pub const MANUAL_RESTART: &str = "gregor.dev/manual-rolling-update";

/// Whether `annotations` ask for a restart ([`MANUAL_RESTART`] is "true").
pub fn restart_asked(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(MANUAL_RESTART)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// One broker pod as Kubernetes reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerPod {
    /// Node id (the pod's ordinal).
    pub id: i32,
    /// The StatefulSet (of its pool) the pod belongs to.
    pub statefulset: String,
    /// The pod passes its readiness probe.
    pub ready: bool,
    /// The pod is being deleted.
    pub terminating: bool,
    /// The StatefulSet revision the pod was created from.
    pub revision: Option<String>,
    /// The pod carries [`MANUAL_RESTART`]: restart it like an outdated one.
    pub restart_asked: bool,
    /// What the scheduler and the kubelet say about it.
    pub facts: PodFacts,
}

/// What the scheduler and the kubelet report about a broker pod and its
/// broker container, from which failures are told apart from a start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// The pod's phase: `Pending`, `Running`, `Failed`, ...
    pub phase: String,
    /// The pod's own reason and message, which the kubelet sets when it
    /// fails or evicts the pod (`Evicted`, ...).
    pub pod_note: Option<Note>,
    /// The scheduler's message while it cannot place the pod.
    pub unschedulable: Option<String>,
    /// Why the broker container is waiting (`ImagePullBackOff`,
    /// `CrashLoopBackOff`, ...), with the kubelet's message.
    pub waiting: Option<Note>,
    /// How the broker container ended: now, if it is terminated, else its
    /// previous run.
    pub terminated: Option<Termination>,
    /// Times the kubelet has restarted the broker container.
    pub restarts: i32,
    /// The broker container's memory limit as written in the pod
    /// (a Kubernetes quantity).
    pub memory_limit: Option<String>,
}

/// A reason with its message, as Kubernetes writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note {
    /// CamelCase reason.
    pub reason: String,
    /// Text for humans (may be empty).
    pub message: String,
}

/// How a container run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Termination {
    /// The runtime's reason: `OOMKilled`, `Error`, `Completed`, ...
    pub reason: String,
    /// The process's exit code.
    pub exit_code: i32,
    /// The container's termination message (may be empty).
    pub message: String,
}

impl BrokerPod {
    /// The broker behind `pod`, a pod of the StatefulSet named
    /// `statefulset`; `None` when its name carries no ordinal.
    pub fn from_pod(statefulset: &str, pod: &Pod) -> Option<Self> {
        let id = pod
            .metadata
            .name
            .as_deref()?
            .strip_prefix(statefulset)?
            .strip_prefix('-')?
            .parse()
            .ok()?;
        let status = pod.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let ready = conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let unschedulable = conditions
            .iter()
            .find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
            .map(|c| c.message.clone().unwrap_or_default());
        let container: Option<ContainerStatus> = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.name == BROKER_CONTAINER);
        let (waiting, terminated, restarts) = match container {
            Some(c) => {
                let state = c.state.unwrap_or_default();
                let waiting = state.waiting.map(|w| Note {
                    reason: w.reason.unwrap_or_default(),
                    message: w.message.unwrap_or_default(),
                });
                let terminated = state
                    .terminated
                    .or_else(|| c.last_state.and_then(|s| s.terminated))
                    .map(|t| Termination {
                        reason: t.reason.unwrap_or_default(),
                        exit_code: t.exit_code,
                        message: t.message.unwrap_or_default(),
                    });
                (waiting, terminated, c.restart_count)
            }
            None => (None, None, 0),
        };
        let phase = status.phase.unwrap_or_default();
        let pod_note = status.reason.map(|reason| Note {
            reason,
            message: status.message.unwrap_or_default(),
        });
        let memory_limit = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == BROKER_CONTAINER))
            .and_then(|c| c.resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .map(|q| q.0.clone());
        Some(BrokerPod {
            id,
            statefulset: statefulset.into(),
            ready,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            revision: pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("controller-revision-hash"))
                .cloned(),
            restart_asked: pod.metadata.annotations.as_ref().is_some_and(restart_asked),
            facts: PodFacts {
                phase,
                pod_note,
                unschedulable,
                waiting,
                terminated,
                restarts,
                memory_limit,
            },
        })
    }
}

/// One partition as the cluster's metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader, -1 when offline.
    pub leader: i32,
    /// `min.insync.replicas` that applies to it.
    pub min_isr: i32,
    /// A reassignment of it is under way.
    pub reassigning: bool,
}

impl PartitionView {
    /// `topic-partition`, as Kafka tools print it.
    pub fn label(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// The cluster as its brokers describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaView {
    /// Registered, unfenced brokers.
    pub brokers: BTreeSet<i32>,
    /// Racks of the brokers that have one.
    pub racks: BTreeMap<i32, String>,
    /// The active controller, if a broker reports it.
    pub controller: Option<i32>,
    /// Every partition.
    pub partitions: Vec<PartitionView>,
}

impl KafkaView {
    /// Partitions with fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.isr.len() < p.replicas.len())
            .count()
    }

    /// Partitions without a leader.
    pub fn offline(&self) -> usize {
        self.partitions.iter().filter(|p| p.leader < 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker pod as the API server returns it, with the given status.
    fn pod(name: &str, status: serde_json::Value) -> Pod {
        let pod = serde_json::json!({
            "metadata": {
                "name": name,
                "labels": {"controller-revision-hash": "demo-broker-5d9c"},
            },
            "spec": {"containers": [{
                "name": "broker",
                "image": "nope:1",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}},
            }]},
            "status": status,
        });
        match serde_json::from_value(pod) {
            Ok(pod) => pod,
            Err(e) => panic!("not a pod: {e}"),
        }
    }

    fn broker(status: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "name": "broker", "image": "nope:1", "imageID": "", "ready": false,
            "restartCount": status["restartCount"],
            "state": status["state"], "lastState": status["lastState"],
        })
    }

    #[test]
    fn facts_from_pods() {
        let not_ready = serde_json::json!([
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "PodScheduled", "status": "True"},
        ]);
        struct Case {
            name: &'static str,
            pod: Pod,
            want: Option<BrokerPod>,
        }
        let cases = vec![
            Case {
                name: "another StatefulSet's pod",
                pod: pod("demo-broker-extra-0", serde_json::json!({})),
                want: None,
            },
            Case {
                name: "an image that cannot be pulled",
                pod: pod(
                    "demo-broker-2",
                    serde_json::json!({
                        "phase": "Pending",
                        "conditions": not_ready,
                        "containerStatuses": [broker(serde_json::json!({
                            "restartCount": 0,
                            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\""}},
                            "lastState": {},
                        }))],
                    }),
                ),
                want: Some(BrokerPod {
                    id: 2,
                    statefulset: "demo-broker".into(),
                    ready: false,
                    terminating: false,
                    revision: Some("demo-broker-5d9c".into()),
                    restart_asked: false,
                    facts: PodFacts {
                        phase: "Pending".into(),
                        waiting: Some(Note {
                            reason: "ImagePullBackOff".into(),
                            message: "Back-off pulling image \"nope:1\"".into(),
                        }),
                        memory_limit: Some("64Mi".into()),
                        ..Default::default()
                    },
                }),
            },
            Case {
                name: "killed for memory and backing off",
                pod: pod(
                    "demo-broker-0",
                    serde_json::json!({
                        "phase": "Running",
                        "conditions": not_ready,
                        "containerStatuses": [broker(serde_json::json!({
                            "restartCount": 3,
                            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=broker"}},
                            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                        }))],
                    }),
                ),
                want: Some(BrokerPod {
                    id: 0,
                    statefulset: "demo-broker".into(),
                    ready: false,
                    terminating: false,
                    revision: Some("demo-broker-5d9c".into()),
                    restart_asked: false,
                    facts: PodFacts {
                        phase: "Running".into(),
                        waiting: Some(Note {
                            reason: "CrashLoopBackOff".into(),
                            message: "back-off 40s restarting failed container=broker".into(),
                        }),
                        terminated: Some(Termination {
                            reason: "OOMKilled".into(),
                            exit_code: 137,
                            message: String::new(),
                        }),
                        restarts: 3,
                        memory_limit: Some("64Mi".into()),
                        ..Default::default()
                    },
                }),
            },
            Case {
                name: "no node has room",
                pod: pod(
                    "demo-broker-1",
                    serde_json::json!({
                        "phase": "Pending",
                        "conditions": [{
                            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/1 nodes are available: 1 Insufficient memory.",
                        }],
                    }),
                ),
                want: Some(BrokerPod {
                    id: 1,
                    statefulset: "demo-broker".into(),
                    ready: false,
                    terminating: false,
                    revision: Some("demo-broker-5d9c".into()),
                    restart_asked: false,
                    facts: PodFacts {
                        phase: "Pending".into(),
                        unschedulable: Some(
                            "0/1 nodes are available: 1 Insufficient memory.".into(),
                        ),
                        memory_limit: Some("64Mi".into()),
                        ..Default::default()
                    },
                }),
            },
            Case {
                name: "evicted",
                pod: pod(
                    "demo-broker-1",
                    serde_json::json!({
                        "phase": "Failed",
                        "reason": "Evicted",
                        "message": "The node was low on resource: memory.",
                    }),
                ),
                want: Some(BrokerPod {
                    id: 1,
                    statefulset: "demo-broker".into(),
                    ready: false,
                    terminating: false,
                    revision: Some("demo-broker-5d9c".into()),
                    restart_asked: false,
                    facts: PodFacts {
                        phase: "Failed".into(),
                        pod_note: Some(Note {
                            reason: "Evicted".into(),
                            message: "The node was low on resource: memory.".into(),
                        }),
                        memory_limit: Some("64Mi".into()),
                        ..Default::default()
                    },
                }),
            },
            Case {
                name: "ready",
                pod: pod(
                    "demo-broker-4",
                    serde_json::json!({
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [broker(serde_json::json!({
                            "restartCount": 1,
                            "state": {"running": {}},
                            "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "message": "no rack"}},
                        }))],
                    }),
                ),
                want: Some(BrokerPod {
                    id: 4,
                    statefulset: "demo-broker".into(),
                    ready: true,
                    terminating: false,
                    revision: Some("demo-broker-5d9c".into()),
                    restart_asked: false,
                    facts: PodFacts {
                        phase: "Running".into(),
                        terminated: Some(Termination {
                            reason: "Error".into(),
                            exit_code: 1,
                            message: "no rack".into(),
                        }),
                        restarts: 1,
                        memory_limit: Some("64Mi".into()),
                        ..Default::default()
                    },
                }),
            },
        ];
        for case in cases {
            let got = BrokerPod::from_pod("demo-broker", &case.pod);
            assert_eq!(got, case.want, "{}", case.name);
        }
    }
}
