//! Each broker's properties file. Every broker gets its own file so that
//! adding a broker (or a load balancer address appearing) touches only
//! that broker's configuration, never the others'.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::crd::cluster::{KafkaClusterSpec, ListenerType};
use crate::crd::validate::{config_value, CONTROLLER_PORT, HTTP_PORT, REPLICATION_PORT};

use super::names::Names;

/// Where the broker keeps its logs inside the container: a folder of the
/// data volume, so a fresh volume's `lost+found` is not taken for a topic.
pub const LOG_DIR: &str = "/var/lib/gregor/data";
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/gregor";
/// Environment variable holding the IP of the node a pod runs on.
pub const HOST_IP_ENV: &str = "HOST_IP";
/// Environment variable holding the broker's rack, when rack awareness is on.
pub const RACK_ENV: &str = "BROKER_RACK";

/// An address a broker advertises on an external listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP; may be `${env:HOST_IP}`, resolved by the broker.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// External addresses by (broker id, listener name).
pub type ExternalEndpoints = BTreeMap<(i32, String), Endpoint>;

/// The effective `min.insync.replicas`: the spec's, else 2 for three or more
/// brokers, else 1.
pub fn min_insync(spec: &KafkaClusterSpec) -> i32 {
    spec.min_insync_replicas
        .unwrap_or(if spec.replicas >= 3 { 2 } else { 1 })
}

/// The properties of broker `id`, or `None` while one of its external
/// addresses is unknown (a load balancer not provisioned yet).
pub fn broker_properties(
    names: &Names,
    spec: &KafkaClusterSpec,
    controllers: i32,
    id: i32,
    external: &ExternalEndpoints,
) -> Option<String> {
    let host = names.pod_host(id);
    let mut listeners = vec![
        format!("CONTROLLER://:{CONTROLLER_PORT}"),
        format!("REPLICATION://:{REPLICATION_PORT}"),
    ];
    let mut advertised = vec![format!("REPLICATION://{host}:{REPLICATION_PORT}")];
    if id >= controllers {
        // Gregor's active controller pushes the metadata log to nodes that
        // are not voters: they must say where.
        advertised.insert(0, format!("CONTROLLER://{host}:{CONTROLLER_PORT}"));
    }
    let mut protocols = vec![
        "CONTROLLER:PLAINTEXT".to_string(),
        "REPLICATION:PLAINTEXT".to_string(),
    ];
    for l in &spec.listeners {
        let name = l.name.to_ascii_uppercase();
        listeners.push(format!("{name}://:{}", l.port));
        protocols.push(format!("{name}:PLAINTEXT"));
        let endpoint = match l.kind {
            ListenerType::Internal => Endpoint {
                host: host.clone(),
                port: l.port,
            },
            ListenerType::Nodeport | ListenerType::Loadbalancer => {
                external.get(&(id, l.name.clone()))?.clone()
            }
        };
        advertised.push(format!("{name}://{}:{}", endpoint.host, endpoint.port));
    }
    let voters: Vec<String> = (0..controllers)
        .map(|v| format!("{v}@{}:{CONTROLLER_PORT}", names.pod_host(v)))
        .collect();
    let roles = if id < controllers {
        "broker,controller"
    } else {
        "broker"
    };

    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{k}={v}");
    };
    line("node.id", &id.to_string());
    line("process.roles", roles);
    line("controller.quorum.voters", &voters.join(","));
    line("controller.listener.names", "CONTROLLER");
    line("listeners", &listeners.join(","));
    line("advertised.listeners", &advertised.join(","));
    line("listener.security.protocol.map", &protocols.join(","));
    line("inter.broker.listener.name", "REPLICATION");
    line("http.listener", &format!(":{HTTP_PORT}"));
    line("log.dirs", LOG_DIR);
    line("min.insync.replicas", &min_insync(spec).to_string());
    if spec.rack.is_some() {
        line("broker.rack", &format!("${{env:{RACK_ENV}}}"));
    }
    for (k, v) in &spec.config {
        line(k, &escape(&config_value(v)));
    }
    Some(format!(
        "# Broker {id} of KafkaCluster {}/{}, written by gregor-operator.\n{out}",
        names.namespace, names.cluster
    ))
}

/// Escapes what a properties file would otherwise read differently.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": 4,
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal"},
                {"name": "external", "port": 9094, "type": "nodeport"},
            ],
            "config": {"num.partitions": 6, "auto.create.topics.enable": false},
        }))
        .expect("valid spec")
    }

    #[test]
    fn a_controller_and_a_broker_only_node() {
        let names = Names::new("demo", "kafka");
        let external = ExternalEndpoints::from([
            (
                (0, "external".to_string()),
                Endpoint {
                    host: "${env:HOST_IP}".into(),
                    port: 31000,
                },
            ),
            (
                (3, "external".to_string()),
                Endpoint {
                    host: "${env:HOST_IP}".into(),
                    port: 31003,
                },
            ),
        ]);
        let p0 = broker_properties(&names, &spec(), 3, 0, &external).expect("complete");
        let want = "\
# Broker 0 of KafkaCluster kafka/demo, written by gregor-operator.
node.id=0
process.roles=broker,controller
controller.quorum.voters=0@demo-broker-0.demo-brokers.kafka.svc:9090,1@demo-broker-1.demo-brokers.kafka.svc:9090,2@demo-broker-2.demo-brokers.kafka.svc:9090
controller.listener.names=CONTROLLER
listeners=CONTROLLER://:9090,REPLICATION://:9091,PLAIN://:9092,EXTERNAL://:9094
advertised.listeners=REPLICATION://demo-broker-0.demo-brokers.kafka.svc:9091,PLAIN://demo-broker-0.demo-brokers.kafka.svc:9092,EXTERNAL://${env:HOST_IP}:31000
listener.security.protocol.map=CONTROLLER:PLAINTEXT,REPLICATION:PLAINTEXT,PLAIN:PLAINTEXT,EXTERNAL:PLAINTEXT
inter.broker.listener.name=REPLICATION
http.listener=:9644
log.dirs=/var/lib/gregor/data
min.insync.replicas=2
auto.create.topics.enable=false
num.partitions=6
";
        assert_eq!(p0, want);
        let p3 = broker_properties(&names, &spec(), 3, 3, &external).expect("complete");
        assert!(p3.contains("\nprocess.roles=broker\n"), "{p3}");
        assert!(
            p3.contains(
                "advertised.listeners=CONTROLLER://demo-broker-3.demo-brokers.kafka.svc:9090,"
            ),
            "{p3}"
        );
        assert!(p3.contains("EXTERNAL://${env:HOST_IP}:31003"), "{p3}");
    }

    #[test]
    fn waits_for_external_addresses() {
        let names = Names::new("demo", "kafka");
        assert_eq!(
            broker_properties(&names, &spec(), 3, 1, &ExternalEndpoints::new()),
            None
        );
    }

    #[test]
    fn min_insync_defaults() {
        let mut s = spec();
        assert_eq!(min_insync(&s), 2);
        s.replicas = 2;
        assert_eq!(min_insync(&s), 1);
        s.min_insync_replicas = Some(2);
        assert_eq!(min_insync(&s), 2);
    }
}
