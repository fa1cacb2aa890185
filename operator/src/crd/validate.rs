//! Checks on a spec that the CRD schema cannot express. A spec that fails
//! them is reported in status (condition `Degraded`, reason
//! `InvalidSpec`) and nothing is changed.

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::KafkaClusterSpec;
use super::topic::KafkaTopicSpec;

/// Ports of the listeners the operator adds to every broker.
pub const CONTROLLER_PORT: i32 = 9090;
/// See [`CONTROLLER_PORT`].
pub const REPLICATION_PORT: i32 = 9091;
/// The broker's HTTP port: probes and metrics.
pub const HTTP_PORT: i32 = 9644;

/// Broker settings the operator writes itself; a user setting them would
/// break the cluster's wiring.
const OWNED_BROKER_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "process.roles",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "controller.listener.names",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "log.dirs",
    "log.dir",
    "metadata.log.dir",
    "broker.rack",
    "min.insync.replicas",
    "http.listener",
];

/// Why a spec cannot be applied: every problem found, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct Invalid {
    /// One sentence per problem.
    pub problems: Vec<String>,
}

/// Checks a `KafkaCluster` spec. `recorded_controllers` is the quorum size
/// the cluster was created with, if it exists already.
pub fn validate_cluster(
    spec: &KafkaClusterSpec,
    recorded_controllers: Option<i32>,
) -> Result<(), Invalid> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for l in &spec.listeners {
        if matches!(l.name.as_str(), "replication" | "controller") {
            problems.push(format!(
                "listeners: the name {:?} is the operator's own listener",
                l.name
            ));
        }
        if !names.insert(l.name.as_str()) {
            problems.push(format!("listeners: the name {:?} is used twice", l.name));
        }
        if [CONTROLLER_PORT, REPLICATION_PORT, HTTP_PORT].contains(&l.port) {
            problems.push(format!(
                "listeners.{}: port {} is taken by the operator's controller, replication and HTTP listeners ({CONTROLLER_PORT}, {REPLICATION_PORT}, {HTTP_PORT})",
                l.name, l.port
            ));
        } else if !ports.insert(l.port) {
            problems.push(format!(
                "listeners.{}: port {} is used twice",
                l.name, l.port
            ));
        }
    }
    for key in spec.config.keys() {
        if OWNED_BROKER_KEYS.contains(&key.as_str()) {
            let hint = if key == "min.insync.replicas" {
                " (use spec.minInsyncReplicas)"
            } else {
                ""
            };
            problems.push(format!(
                "config.{key}: set by the operator and cannot be overridden{hint}"
            ));
        }
    }
    check_scalars(&spec.config, &mut problems);
    if let Some(m) = spec.min_insync_replicas {
        if m > spec.replicas {
            problems.push(format!(
                "minInsyncReplicas: {m} is more than the {} brokers",
                spec.replicas
            ));
        }
    }
    let controllers = spec
        .controllers
        .unwrap_or(default_controllers(spec.replicas));
    if let Some(recorded) = recorded_controllers {
        if recorded != controllers {
            problems.push(format!(
                "controllers: the quorum was created with {recorded} controllers and cannot change to {controllers}"
            ));
        }
    }
    let quorum = recorded_controllers.unwrap_or(controllers);
    if spec.replicas < quorum {
        problems.push(format!(
            "replicas: {} is fewer than the {quorum} controllers; the controllers are the first brokers and must stay",
            spec.replicas
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Invalid { problems })
    }
}

/// Quorum size when the spec does not say: 3, or 1 below three brokers.
pub fn default_controllers(replicas: i32) -> i32 {
    if replicas >= 3 {
        3
    } else {
        1
    }
}

/// Checks a `KafkaTopic` spec.
pub fn validate_topic(spec: &KafkaTopicSpec) -> Result<(), Invalid> {
    let mut problems = Vec::new();
    check_scalars(&spec.config, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Invalid { problems })
    }
}

fn check_scalars(config: &BTreeMap<String, serde_json::Value>, problems: &mut Vec<String>) {
    for (key, value) in config {
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            problems.push(format!(
                "config.{key}: must be a string, number or boolean, not {value}"
            ));
        }
    }
}

/// A config value as Kafka's properties files write it.
pub fn config_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster::{Listener, ListenerType};

    fn spec(replicas: i32) -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": replicas,
            "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
        }))
        .expect("valid spec")
    }

    fn listener(name: &str, port: i32) -> Listener {
        Listener {
            name: name.into(),
            port,
            kind: ListenerType::Internal,
        }
    }

    #[test]
    fn cluster_checks() {
        struct Case {
            name: &'static str,
            change: fn(&mut KafkaClusterSpec),
            recorded: Option<i32>,
            problem: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "plain three brokers",
                change: |_| {},
                recorded: None,
                problem: None,
            },
            Case {
                name: "same controllers as recorded",
                change: |_| {},
                recorded: Some(3),
                problem: None,
            },
            Case {
                name: "quorum size changed",
                change: |s| s.controllers = Some(5),
                recorded: Some(3),
                problem: Some("cannot change to 5"),
            },
            Case {
                name: "scaled below the quorum",
                change: |s| s.replicas = 2,
                recorded: Some(3),
                problem: Some("fewer than the 3 controllers"),
            },
            Case {
                name: "owned key",
                change: |s| {
                    s.config.insert("advertised.listeners".into(), "x".into());
                },
                recorded: None,
                problem: Some("config.advertised.listeners: set by the operator"),
            },
            Case {
                name: "min.insync.replicas in config",
                change: |s| {
                    s.config.insert("min.insync.replicas".into(), 2.into());
                },
                recorded: None,
                problem: Some("use spec.minInsyncReplicas"),
            },
            Case {
                name: "nested config value",
                change: |s| {
                    s.config
                        .insert("num.partitions".into(), serde_json::json!({"a": 1}));
                },
                recorded: None,
                problem: Some("config.num.partitions: must be a string"),
            },
            Case {
                name: "scalar config values",
                change: |s| {
                    s.config.insert("num.partitions".into(), 6.into());
                    s.config
                        .insert("auto.create.topics.enable".into(), false.into());
                },
                recorded: None,
                problem: None,
            },
            Case {
                name: "duplicate listener name",
                change: |s| s.listeners.push(listener("plain", 9093)),
                recorded: None,
                problem: Some("\"plain\" is used twice"),
            },
            Case {
                name: "duplicate port",
                change: |s| s.listeners.push(listener("other", 9092)),
                recorded: None,
                problem: Some("port 9092 is used twice"),
            },
            Case {
                name: "operator's port",
                change: |s| s.listeners.push(listener("other", 9091)),
                recorded: None,
                problem: Some("port 9091 is taken"),
            },
            Case {
                name: "operator's listener name",
                change: |s| s.listeners.push(listener("replication", 9095)),
                recorded: None,
                problem: Some("operator's own listener"),
            },
            Case {
                name: "min insync above brokers",
                change: |s| s.min_insync_replicas = Some(4),
                recorded: None,
                problem: Some("minInsyncReplicas: 4 is more than the 3 brokers"),
            },
        ];
        for case in cases {
            let mut s = spec(3);
            (case.change)(&mut s);
            let result = validate_cluster(&s, case.recorded);
            match (case.problem, result) {
                (None, Ok(())) => {}
                (Some(p), Err(e)) => assert!(
                    e.to_string().contains(p),
                    "{}: {e} does not mention {p:?}",
                    case.name
                ),
                (want, got) => panic!("{}: wanted {want:?}, got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn small_clusters_have_one_controller() {
        assert_eq!(default_controllers(1), 1);
        assert_eq!(default_controllers(2), 1);
        assert_eq!(default_controllers(3), 3);
        assert_eq!(default_controllers(7), 3);
        assert!(validate_cluster(&spec(1), None).is_ok());
    }
}
