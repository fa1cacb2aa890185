//! Each broker's properties file. Every broker gets its own file so that
//! adding a broker (or a load balancer address appearing) touches only
//! that broker's configuration, never the others'. The digest that rolls
//! the brokers is rendered by the same code, so that whatever a file says
//! counts.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::crd::cluster::{KafkaClusterSpec, Listener, ListenerType, NodeAddressType};
use crate::crd::validate::{config_value, CONTROLLER_PORT, HTTP_PORT, REPLICATION_PORT};

use super::names::Names;
use super::topology::{Pool, Topology};
use super::{node_address, security, volumes};

/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/gregor";
/// Environment variable holding the broker's rack, when rack awareness is on.
pub const RACK_ENV: &str = "BROKER_RACK";

/// The host of an address a broker advertises on an external listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// The address of the node the broker runs on, chosen for the
    /// listener (see `node_address`): the broker reads it at start, so
    /// that a broker moved to another node advertises that one.
    Node,
    /// A host name or IP address: a load balancer's, or the spec's.
    Fixed(String),
}

/// An address a broker advertises on an external listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP.
    pub host: Host,
    /// Port.
    pub port: i32,
}

impl Endpoint {
    /// The address as the broker's properties file writes it for
    /// `listener`.
    fn rendered(&self, listener: &str) -> String {
        match &self.host {
            Host::Node => format!(
                "${{env:{}}}:{}",
                node_address::env_name(listener),
                self.port
            ),
            Host::Fixed(host) => format!("{host}:{}", self.port),
        }
    }
}

/// External addresses by (broker id, listener name).
pub type ExternalEndpoints = BTreeMap<(i32, String), Endpoint>;

/// The effective `min.insync.replicas`: the spec's, else 2 for three or more
/// brokers, else 1.
pub fn min_insync(spec: &KafkaClusterSpec, brokers: i32) -> i32 {
    spec.min_insync_replicas
        .unwrap_or(if brokers >= 3 { 2 } else { 1 })
}

/// What a node does, which decides the shape of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A broker that is also a voter (combined mode).
    Combined,
    /// A broker only.
    Broker,
    /// A voter only: no client or replication listener.
    Controller,
}

impl Kind {
    /// What node `id` of `topology` does.
    pub fn of(topology: &Topology, id: i32) -> Self {
        match (topology.is_broker(id), topology.is_voter(id)) {
            (true, true) => Self::Combined,
            (true, false) => Self::Broker,
            (false, _) => Self::Controller,
        }
    }

    /// The kinds of node `pool` has: without node pools, the voters and
    /// the other brokers of the one pool.
    fn in_pool(topology: &Topology, pool: &Pool) -> Vec<Self> {
        match (topology.pooled, pool.broker, pool.controller) {
            (false, _, _) => vec![Self::Combined, Self::Broker],
            (true, true, true) => vec![Self::Combined],
            (true, true, false) => vec![Self::Broker],
            (true, false, _) => vec![Self::Controller],
        }
    }

    fn voter(self) -> bool {
        self != Self::Broker
    }
}

/// The properties of node `id`, or `None` while one of its external
/// addresses is unknown (a load balancer not provisioned yet).
pub fn broker_properties(
    names: &Names,
    spec: &KafkaClusterSpec,
    topology: &Topology,
    id: i32,
    external: &ExternalEndpoints,
) -> Option<String> {
    let kind = Kind::of(topology, id);
    render(names, spec, topology, &For::Broker { id, kind, external })
}

/// Digest of the configuration of `pool`'s nodes as [`broker_properties`]
/// writes it, for its pod template: a change makes a new StatefulSet
/// revision, which the operator rolls out. It covers every line of every
/// file of the pool except what is the node's own (its id, host name and
/// external addresses), so that adding a broker or a load balancer address
/// appearing changes one broker's file without rolling the others, and a
/// change that only brokers see leaves a pool of controllers alone. The
/// pod template needs no digest: a change to it is a new revision by
/// itself.
pub fn config_digest(
    names: &Names,
    spec: &KafkaClusterSpec,
    topology: &Topology,
    pool: &Pool,
) -> String {
    // A voter's file and a broker-only node's differ by more than their
    // own values (roles, advertised controller listener): each kind the
    // pool has counts.
    let files: String = Kind::in_pool(topology, pool)
        .into_iter()
        .filter_map(|kind| render(names, spec, topology, &For::StandIn { kind, pool }))
        .collect();
    format!("{:08x}", crc32c::crc32c(files.as_bytes()))
}

/// Whom a properties file is rendered for.
enum For<'a> {
    /// Node `id`, with the external addresses known so far.
    Broker {
        id: i32,
        kind: Kind,
        external: &'a ExternalEndpoints,
    },
    /// Any node of a kind in `pool`, with placeholders for its own
    /// values: what is the same in every file of that kind.
    StandIn { kind: Kind, pool: &'a Pool },
}

impl For<'_> {
    fn id(&self) -> String {
        match self {
            Self::Broker { id, .. } => id.to_string(),
            Self::StandIn { .. } => "<id>".into(),
        }
    }

    fn host(&self, names: &Names) -> String {
        match self {
            Self::Broker { id, .. } => names.pod_host(*id),
            Self::StandIn { .. } => "<host>".into(),
        }
    }

    fn pod(&self, names: &Names) -> String {
        match self {
            Self::Broker { id, .. } => names.pod(*id),
            Self::StandIn { .. } => "<pod>".into(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Broker { kind, .. } | Self::StandIn { kind, .. } => *kind,
        }
    }

    /// The node's `log.dirs`: a directory on each data volume of its
    /// pool's storage.
    fn log_dirs(&self, spec: &KafkaClusterSpec, topology: &Topology) -> String {
        let storage = match self {
            Self::Broker { id, .. } => topology.pool_of(*id).map(|p| &p.storage),
            Self::StandIn { pool, .. } => Some(&pool.storage),
        };
        volumes::log_dirs(storage.unwrap_or(&spec.storage))
    }

    /// The address advertised on external listener `listener`, `None` while
    /// unknown. A stand-in's names the kind of address, the node address
    /// preferred and the addresses the spec gives brokers, so that
    /// changing any of them changes what the brokers advertise.
    fn external(&self, listener: &Listener) -> Option<Endpoint> {
        match self {
            Self::Broker { id, external, .. } => {
                external.get(&(*id, listener.name.clone())).cloned()
            }
            Self::StandIn { .. } => {
                let config = listener.config();
                let preferred = config
                    .preferred_node_port_address_type
                    .map_or("the default order", |t| t.as_str());
                let overrides: Vec<String> = config
                    .brokers
                    .iter()
                    .filter(|b| b.advertised_host.is_some() || b.advertised_port.is_some())
                    .map(|b| {
                        format!(
                            "{}={}:{}",
                            b.broker,
                            b.advertised_host.as_deref().unwrap_or("-"),
                            b.advertised_port.map_or("-".into(), |p| p.to_string())
                        )
                    })
                    .collect();
                Some(Endpoint {
                    host: Host::Fixed(format!(
                        "<{:?} address, {preferred} first, given {overrides:?}>",
                        listener.kind
                    )),
                    port: 0,
                })
            }
        }
    }
}

/// The one writer of a node's properties file.
fn render(
    names: &Names,
    spec: &KafkaClusterSpec,
    topology: &Topology,
    who: &For,
) -> Option<String> {
    let id = who.id();
    let host = who.host(names);
    let kind = who.kind();
    if kind == Kind::Controller {
        return Some(render_controller(names, spec, topology, who));
    }
    let voter = kind.voter();
    let mut listeners = vec![
        format!("CONTROLLER://:{CONTROLLER_PORT}"),
        format!("REPLICATION://:{REPLICATION_PORT}"),
    ];
    let mut advertised = vec![format!("REPLICATION://{host}:{REPLICATION_PORT}")];
    if !voter {
        // Gregor's active controller pushes the metadata log to nodes that
        // are not voters: they must say where.
        advertised.insert(0, format!("CONTROLLER://{host}:{CONTROLLER_PORT}"));
    }
    let mut protocols = vec!["CONTROLLER:SSL".to_string(), "REPLICATION:SSL".to_string()];
    for l in &spec.listeners {
        let name = l.name.to_ascii_uppercase();
        listeners.push(format!("{name}://:{}", l.port));
        protocols.push(format!("{name}:{}", security::protocol(l)));
        let address = match l.kind {
            ListenerType::Internal => format!("{host}:{}", l.port),
            ListenerType::Nodeport | ListenerType::Loadbalancer => {
                who.external(l)?.rendered(&l.name)
            }
        };
        advertised.push(format!("{name}://{address}"));
    }
    let voters = voters(names, topology);
    let roles = if voter { "broker,controller" } else { "broker" };

    let mut out = String::new();
    // Where a node's address comes from, said in the file: which kind is
    // chosen reaches the broker through its pod's annotation, and a change
    // of it must restart the brokers as a change of the file does.
    for l in node_address::node_port_listeners(spec) {
        let preferred = l
            .configuration
            .as_ref()
            .and_then(|c| c.preferred_node_port_address_type);
        let order: Vec<&str> = preferred
            .into_iter()
            .chain(
                NodeAddressType::DEFAULT_ORDER
                    .into_iter()
                    .filter(|t| Some(*t) != preferred),
            )
            .map(NodeAddressType::as_str)
            .collect();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "# {}: the node's address from annotation {}, the first of {}",
            l.name.to_ascii_uppercase(),
            node_address::annotation(&l.name),
            order.join(", ")
        );
    }
    let mut line = |k: &str, v: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{k}={v}");
    };
    line("node.id", &id);
    line("process.roles", roles);
    line("controller.quorum.voters", &voters);
    line("controller.listener.names", "CONTROLLER");
    line("listeners", &listeners.join(","));
    line("advertised.listeners", &advertised.join(","));
    line("listener.security.protocol.map", &protocols.join(","));
    line("inter.broker.listener.name", "REPLICATION");
    line("http.listener", &format!(":{HTTP_PORT}"));
    line("log.dirs", &who.log_dirs(spec, topology));
    line(
        "min.insync.replicas",
        &min_insync(spec, topology.broker_count()).to_string(),
    );
    if spec.rack.is_some() {
        line("broker.rack", &format!("${{env:{RACK_ENV}}}"));
    }
    for (k, v) in security::properties(names, spec, &who.pod(names), true) {
        line(&k, &v);
    }
    for (k, v) in &spec.config {
        line(k, &escape(&config_value(v)));
    }
    Some(format!(
        "# Broker {id} of KafkaCluster {}/{}, written by gregor-operator.\n{out}",
        names.namespace, names.cluster
    ))
}

/// `controller.quorum.voters`: every voter at its pod's controller
/// listener.
fn voters(names: &Names, topology: &Topology) -> String {
    topology
        .voters
        .iter()
        .map(|v| format!("{v}@{}:{CONTROLLER_PORT}", names.pod_host(*v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The file of a dedicated controller (`process.roles=controller`): the
/// controller listener alone, which it advertises so that the quorum's
/// members find each other, no client, replication or rack setting.
fn render_controller(
    names: &Names,
    spec: &KafkaClusterSpec,
    topology: &Topology,
    who: &For,
) -> String {
    let id = who.id();
    let host = who.host(names);
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{k}={v}");
    };
    line("node.id", &id);
    line("process.roles", "controller");
    line("controller.quorum.voters", &voters(names, topology));
    line("controller.listener.names", "CONTROLLER");
    line("listeners", &format!("CONTROLLER://:{CONTROLLER_PORT}"));
    line(
        "advertised.listeners",
        &format!("CONTROLLER://{host}:{CONTROLLER_PORT}"),
    );
    line("listener.security.protocol.map", "CONTROLLER:SSL");
    line("http.listener", &format!(":{HTTP_PORT}"));
    line("log.dirs", &who.log_dirs(spec, topology));
    for (k, v) in security::properties(names, spec, &who.pod(names), false) {
        line(&k, &v);
    }
    for (k, v) in &spec.config {
        line(k, &escape(&config_value(v)));
    }
    format!(
        "# Controller {id} of KafkaCluster {}/{}, written by gregor-operator.\n{out}",
        names.namespace, names.cluster
    )
}

/// Escapes what a properties file would otherwise read differently.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cluster::addresses::tests::svc as addresses_svc;
    use crate::crd::cluster::{
        AuthenticationType, Authorization, AuthorizationType, CertificateAuthority,
        ListenerAuthentication, NetworkPolicySettings, PodTemplate, Rack, RebalanceSettings,
    };
    use crate::crd::cluster::{
        BrokerListenerConfiguration, ExternalTrafficPolicy, ListenerConfiguration, NodeAddressType,
    };
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeSet;

    /// The topology of `spec` without node pools, `controllers` voters.
    pub(crate) fn single(spec: &KafkaClusterSpec, controllers: i32) -> Topology {
        Topology::single(spec, controllers, 0)
    }

    /// The digest of `spec`'s one pool.
    pub(crate) fn digest(names: &Names, spec: &KafkaClusterSpec, controllers: i32) -> String {
        let topology = single(spec, controllers);
        config_digest(names, spec, &topology, &topology.pools[0])
    }

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
                    host: Host::Node,
                    port: 31000,
                },
            ),
            (
                (3, "external".to_string()),
                Endpoint {
                    host: Host::Node,
                    port: 31003,
                },
            ),
        ]);
        let p0 = broker_properties(&names, &spec(), &single(&spec(), 3), 0, &external)
            .expect("complete");
        let want = "\
# Broker 0 of KafkaCluster kafka/demo, written by gregor-operator.
# EXTERNAL: the node's address from annotation gregor.dev/node-address-external, the first of ExternalDNS, ExternalIP, Hostname, InternalDNS, InternalIP
node.id=0
process.roles=broker,controller
controller.quorum.voters=0@demo-broker-0.demo-brokers.kafka.svc:9090,1@demo-broker-1.demo-brokers.kafka.svc:9090,2@demo-broker-2.demo-brokers.kafka.svc:9090
controller.listener.names=CONTROLLER
listeners=CONTROLLER://:9090,REPLICATION://:9091,PLAIN://:9092,EXTERNAL://:9094
advertised.listeners=REPLICATION://demo-broker-0.demo-brokers.kafka.svc:9091,PLAIN://demo-broker-0.demo-brokers.kafka.svc:9092,EXTERNAL://${env:NODE_ADDRESS_EXTERNAL}:31000
listener.security.protocol.map=CONTROLLER:SSL,REPLICATION:SSL,PLAIN:PLAINTEXT,EXTERNAL:PLAINTEXT
inter.broker.listener.name=REPLICATION
http.listener=:9644
log.dirs=/var/lib/gregor/data
min.insync.replicas=2
listener.name.controller.ssl.keystore.type=PEM
listener.name.controller.ssl.keystore.location=/etc/gregor-tls/certs/demo-broker-0.pem
listener.name.controller.ssl.truststore.type=PEM
listener.name.controller.ssl.truststore.location=/etc/gregor-tls/cluster-ca/ca.crt
listener.name.controller.ssl.client.auth=required
listener.name.replication.ssl.keystore.type=PEM
listener.name.replication.ssl.keystore.location=/etc/gregor-tls/certs/demo-broker-0.pem
listener.name.replication.ssl.truststore.type=PEM
listener.name.replication.ssl.truststore.location=/etc/gregor-tls/cluster-ca/ca.crt
listener.name.replication.ssl.client.auth=required
auto.create.topics.enable=false
num.partitions=6
";
        assert_eq!(p0, want);
        let p3 = broker_properties(&names, &spec(), &single(&spec(), 3), 3, &external)
            .expect("complete");
        assert!(p3.contains("\nprocess.roles=broker\n"), "{p3}");
        assert!(
            p3.contains(
                "advertised.listeners=CONTROLLER://demo-broker-3.demo-brokers.kafka.svc:9090,"
            ),
            "{p3}"
        );
        assert!(
            p3.contains("EXTERNAL://${env:NODE_ADDRESS_EXTERNAL}:31003"),
            "{p3}"
        );
    }

    /// The files of brokers `0..count`, with made-up node ports and load
    /// balancer addresses, and the spec's own addresses.
    fn files(spec: &KafkaClusterSpec, controllers: i32, count: i32) -> Vec<String> {
        let names = Names::new("demo", "kafka");
        let mut services = BTreeMap::new();
        for l in &spec.listeners {
            for id in 0..count {
                let lb = format!("lb-{id}.example");
                let svc = match l.kind {
                    ListenerType::Internal => continue,
                    ListenerType::Nodeport => addresses_svc(Some(31000 + id), &[]),
                    ListenerType::Loadbalancer => addresses_svc(Some(32000 + id), &[&lb]),
                };
                services.insert(names.broker_service(id, &l.name), svc);
            }
        }
        let ids: Vec<i32> = (0..count).collect();
        let external = crate::cluster::addresses::external(&names, spec, &ids, &services);
        (0..count)
            .map(|id| {
                broker_properties(
                    &names,
                    spec,
                    &single(spec, controllers),
                    id,
                    &external.endpoints,
                )
                .expect("complete")
            })
            .collect()
    }

    /// Spec changes, and whether they change the files of the brokers that
    /// stay. Shared with the pod template's test of what rolls the brokers.
    pub(crate) type Mutation = (&'static str, fn(&mut KafkaClusterSpec), bool);

    /// A spec change for every field of the spec, on [`rack_spec`].
    pub(crate) const MUTATIONS: &[Mutation] = &[
        (
            "a setting added",
            |s| {
                s.config.insert("log.retention.hours".into(), 72.into());
            },
            true,
        ),
        (
            "a setting removed",
            |s| {
                s.config.remove("num.partitions");
            },
            true,
        ),
        (
            "a setting's value",
            |s| {
                s.config.insert("num.partitions".into(), 12.into());
            },
            true,
        ),
        (
            "minInsyncReplicas",
            |s| s.min_insync_replicas = Some(3),
            true,
        ),
        (
            "minInsyncReplicas set to its default",
            |s| s.min_insync_replicas = Some(2),
            false,
        ),
        ("rack awareness off", |s| s.rack = None, true),
        (
            // The broker reads its rack from its pod's annotation.
            "the rack's node label",
            |s| {
                s.rack = Some(Rack {
                    topology_key: "topology.kubernetes.io/region".into(),
                })
            },
            false,
        ),
        ("a listener's port", |s| s.listeners[0].port = 9093, true),
        (
            "a listener renamed",
            |s| s.listeners[0].name = "tls".into(),
            true,
        ),
        (
            "a listener added",
            |s| {
                s.listeners.push(Listener {
                    name: "tls".into(),
                    port: 9095,
                    kind: ListenerType::Internal,
                    tls: true,
                    authentication: None,
                    configuration: None,
                })
            },
            true,
        ),
        ("a listener's TLS", |s| s.listeners[0].tls = true, true),
        (
            "a listener's authentication",
            |s| {
                s.listeners[0].authentication = Some(ListenerAuthentication {
                    kind: AuthenticationType::ScramSha512,
                    jwks_endpoint_uri: None,
                    valid_issuer_uri: None,
                    valid_audience: None,
                    user_name_claim: None,
                    tls_trusted_certificates: Vec::new(),
                })
            },
            true,
        ),
        (
            "authorization",
            |s| {
                s.authorization = Some(Authorization {
                    kind: AuthorizationType::Simple,
                    super_users: vec!["admin".into()],
                })
            },
            true,
        ),
        (
            // Certificates are renewed in place: the files' paths stay.
            "the cluster CA's validity",
            |s| {
                s.cluster_ca = Some(CertificateAuthority {
                    validity: "100h".into(),
                    ..Default::default()
                })
            },
            false,
        ),
        (
            "the NetworkPolicy turned off",
            |s| s.network_policy = Some(NetworkPolicySettings { enabled: false }),
            false,
        ),
        (
            "the clients CA's renewal window",
            |s| {
                s.clients_ca = Some(CertificateAuthority {
                    renew_before: "10h".into(),
                    ..Default::default()
                })
            },
            false,
        ),
        (
            "a listener's type, internal to nodeport",
            |s| s.listeners[0].kind = ListenerType::Nodeport,
            true,
        ),
        (
            "a listener's type, nodeport to loadbalancer",
            |s| s.listeners[1].kind = ListenerType::Loadbalancer,
            true,
        ),
        (
            "the node address a nodeport listener prefers",
            |s| {
                s.listeners[1].configuration = Some(ListenerConfiguration {
                    preferred_node_port_address_type: Some(NodeAddressType::InternalIp),
                    ..Default::default()
                })
            },
            true,
        ),
        (
            "a broker's advertised host",
            |s| s.listeners[1].configuration = Some(given(1, Some("kafka-1.example.com"), None)),
            true,
        ),
        (
            "a broker's advertised port",
            |s| s.listeners[1].configuration = Some(given(0, None, Some(443))),
            true,
        ),
        (
            // Only the Services read these.
            "a listener's Service options",
            |s| {
                s.listeners[1].configuration = Some(ListenerConfiguration {
                    external_traffic_policy: Some(ExternalTrafficPolicy::Cluster),
                    annotations: BTreeMap::from([("a".to_string(), "b".to_string())]),
                    brokers: vec![BrokerListenerConfiguration {
                        broker: 0,
                        node_port: Some(31555),
                        annotations: BTreeMap::from([("c".to_string(), "d".to_string())]),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
            false,
        ),
        (
            "fewer brokers, with a smaller default minimum ISR",
            |s| s.replicas = Some(2),
            true,
        ),
        ("more brokers", |s| s.replicas = Some(7), false),
        ("fewer brokers", |s| s.replicas = Some(3), false),
        (
            // Fixed once the cluster exists: validation refuses a change.
            "the quorum's size",
            |s| s.controllers = Some(3),
            false,
        ),
        ("the image", |s| s.image = Some("gregor:2".into()), false),
        ("the version", |s| s.version = Some("2.0.0".into()), false),
        (
            "resources",
            |s| {
                s.resources = Some(ResourceRequirements {
                    limits: Some(BTreeMap::from([(
                        "memory".to_string(),
                        Quantity("1Gi".into()),
                    )])),
                    ..Default::default()
                })
            },
            false,
        ),
        (
            "the pod template",
            |s| {
                s.template = Some(PodTemplate {
                    priority_class_name: Some("high".into()),
                    ..Default::default()
                })
            },
            false,
        ),
        ("storage", |s| s.storage.size = "20Gi".into(), false),
        (
            "the balancer's settings",
            |s| {
                s.rebalance = Some(RebalanceSettings {
                    on_scale_up: false,
                    ..Default::default()
                })
            },
            false,
        ),
    ];

    /// A listener configuration giving broker `broker` its own host or
    /// port.
    fn given(broker: i32, host: Option<&str>, port: Option<i32>) -> ListenerConfiguration {
        ListenerConfiguration {
            brokers: vec![BrokerListenerConfiguration {
                broker,
                advertised_host: host.map(str::to_string),
                advertised_port: port,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// [`spec`] with rack awareness, so that it can be turned off.
    pub(crate) fn rack_spec() -> KafkaClusterSpec {
        KafkaClusterSpec {
            rack: Some(Rack {
                topology_key: "topology.kubernetes.io/zone".into(),
            }),
            ..spec()
        }
    }

    #[test]
    fn the_digest_changes_with_what_brokers_read() {
        // The status is no input of the digest: it cannot roll the brokers.
        // The quorum size is the status's, not the spec's; one voter makes
        // two brokers a valid cluster.
        const CONTROLLERS: i32 = 1;
        let names = Names::new("demo", "kafka");
        let before = rack_spec();
        for (name, mutate, want) in MUTATIONS {
            let mut after = before.clone();
            mutate(&mut after);
            assert_ne!(after, before, "{name}: no change");
            let staying = before.replicas.min(after.replicas).unwrap_or_default();
            let files_changed =
                files(&before, CONTROLLERS, staying) != files(&after, CONTROLLERS, staying);
            let digest_changed =
                digest(&names, &before, CONTROLLERS) != digest(&names, &after, CONTROLLERS);
            assert_eq!(files_changed, *want, "{name}: the files");
            assert_eq!(digest_changed, files_changed, "{name}: the digest");
        }
    }

    #[test]
    fn every_spec_field_is_changed_by_a_mutation() {
        // A new field of the spec needs its row above, saying whether it
        // reaches the brokers' files.
        let schema =
            serde_json::to_value(schemars::schema_for!(KafkaClusterSpec)).expect("serializable");
        let fields: BTreeSet<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let before = serde_json::to_value(rack_spec()).expect("serializable");
        let mut changed = BTreeSet::new();
        for (_, mutate, _) in MUTATIONS {
            let mut after = rack_spec();
            mutate(&mut after);
            let after = serde_json::to_value(after).expect("serializable");
            changed.extend(
                fields
                    .iter()
                    .filter(|f| before.get(f.as_str()) != after.get(f.as_str()))
                    .cloned(),
            );
        }
        assert_eq!(changed, fields);
    }

    #[test]
    fn the_digest_leaves_out_what_is_each_brokers_own() {
        let names = Names::new("demo", "kafka");
        let s = spec();
        let before = digest(&names, &s, 3);
        // A load balancer address appearing, or a node port assigned, is
        // in that broker's file only.
        let mut external = ExternalEndpoints::new();
        let first = broker_properties(&names, &s, &single(&s, 3), 3, &external);
        external.insert(
            (3, "external".into()),
            Endpoint {
                host: Host::Node,
                port: 31003,
            },
        );
        assert_ne!(
            first,
            broker_properties(&names, &s, &single(&s, 3), 3, &external)
        );
        assert_eq!(digest(&names, &s, 3), before);
        // Another cluster's digest differs: its quorum is elsewhere.
        assert_ne!(digest(&Names::new("other", "kafka"), &s, 3), before);
    }

    #[test]
    fn waits_for_external_addresses() {
        let names = Names::new("demo", "kafka");
        assert_eq!(
            broker_properties(
                &names,
                &spec(),
                &single(&spec(), 3),
                1,
                &ExternalEndpoints::new()
            ),
            None
        );
    }

    /// Two pools: "voters", 3 dedicated controllers, and "brokers",
    /// `brokers` brokers.
    pub(crate) fn voter_and_broker_pools(
        brokers: i32,
    ) -> Vec<(String, crate::crd::KafkaNodePoolSpec)> {
        [("voters", 3, "controller"), ("brokers", brokers, "broker")]
            .into_iter()
            .map(|(name, replicas, role)| {
                let pool = serde_json::json!({"replicas": replicas, "roles": [role]});
                (
                    name.to_string(),
                    serde_json::from_value(pool).expect("pool"),
                )
            })
            .collect()
    }

    /// The topology of [`voter_and_broker_pools`] for a new cluster.
    pub(crate) fn pooled(spec: &KafkaClusterSpec, brokers: i32) -> Topology {
        let pools = voter_and_broker_pools(brokers);
        Topology::pooled("demo", spec, &pools, &[], &BTreeMap::new()).expect("valid pools")
    }

    #[test]
    fn a_dedicated_controller_and_a_broker_of_its_quorum() {
        let s = spec();
        let topology = pooled(&s, 3);
        let names = topology.names("demo", "kafka");
        let external = ExternalEndpoints::from([(
            (1000, "external".to_string()),
            Endpoint {
                host: Host::Node,
                port: 31000,
            },
        )]);
        let controller =
            broker_properties(&names, &s, &topology, 1, &ExternalEndpoints::new()).expect("file");
        let voters = "controller.quorum.voters=0@demo-voters-0.demo-brokers.kafka.svc:9090,1@demo-voters-1.demo-brokers.kafka.svc:9090,2@demo-voters-2.demo-brokers.kafka.svc:9090";
        let want = format!(
            "\
# Controller 1 of KafkaCluster kafka/demo, written by gregor-operator.
node.id=1
process.roles=controller
{voters}
controller.listener.names=CONTROLLER
listeners=CONTROLLER://:9090
advertised.listeners=CONTROLLER://demo-voters-1.demo-brokers.kafka.svc:9090
listener.security.protocol.map=CONTROLLER:SSL
http.listener=:9644
log.dirs=/var/lib/gregor/data
listener.name.controller.ssl.keystore.type=PEM
listener.name.controller.ssl.keystore.location=/etc/gregor-tls/certs/demo-voters-1.pem
listener.name.controller.ssl.truststore.type=PEM
listener.name.controller.ssl.truststore.location=/etc/gregor-tls/cluster-ca/ca.crt
listener.name.controller.ssl.client.auth=required
auto.create.topics.enable=false
num.partitions=6
"
        );
        assert_eq!(controller, want);
        let broker = broker_properties(&names, &s, &topology, 1000, &external).expect("file");
        for line in [
            "node.id=1000",
            "process.roles=broker",
            voters,
            "advertised.listeners=CONTROLLER://demo-brokers-1000.demo-brokers.kafka.svc:9090,REPLICATION://demo-brokers-1000.demo-brokers.kafka.svc:9091,PLAIN://demo-brokers-1000.demo-brokers.kafka.svc:9092,EXTERNAL://${env:NODE_ADDRESS_EXTERNAL}:31000",
            "min.insync.replicas=2",
        ] {
            assert!(broker.contains(&format!("\n{line}\n")), "{line} in {broker}");
        }
    }

    #[test]
    fn each_pool_has_a_log_directory_on_each_of_its_volumes() {
        let s = spec();
        let pool = |replicas: i32, role: &str, storage: serde_json::Value| {
            let mut pool = serde_json::json!({"replicas": replicas, "roles": [role]});
            if !storage.is_null() {
                pool["storage"] = storage;
            }
            serde_json::from_value(pool).expect("pool")
        };
        let jbod = serde_json::json!({"type": "jbod", "volumes": [
            {"id": 1, "size": "20Gi"}, {"id": 0, "size": "10Gi"}]});
        let pools: Vec<(String, crate::crd::KafkaNodePoolSpec)> = vec![
            (
                "voters".into(),
                pool(3, "controller", serde_json::Value::Null),
            ),
            ("brokers".into(), pool(3, "broker", jbod)),
        ];
        let topology =
            Topology::pooled("demo", &s, &pools, &[], &BTreeMap::new()).expect("valid pools");
        let names = topology.names("demo", "kafka");
        let external = ExternalEndpoints::from([(
            (1000, "external".to_string()),
            Endpoint {
                host: Host::Node,
                port: 31000,
            },
        )]);
        let file = |id| broker_properties(&names, &s, &topology, id, &external).expect("file");
        let cases = [
            (0, "log.dirs=/var/lib/gregor/data"),
            (
                1000,
                "log.dirs=/var/lib/gregor/data-0/log,/var/lib/gregor/data-1/log",
            ),
        ];
        for (id, line) in cases {
            assert!(
                file(id).contains(&format!("\n{line}\n")),
                "{id}: {}",
                file(id)
            );
        }
        // The digest a pool's pods carry is of its own volumes.
        let digest = |t: &Topology| config_digest(&names, &s, t, &t.pools[1]);
        assert_ne!(digest(&topology), digest(&pooled(&s, 3)));
    }

    /// A change made to a spec.
    type Change = fn(&mut KafkaClusterSpec);

    #[test]
    fn each_pool_rolls_on_what_its_nodes_read() {
        let names_of = |t: &Topology| t.names("demo", "kafka");
        let digests = |s: &KafkaClusterSpec, brokers: i32| {
            let t = pooled(s, brokers);
            let names = names_of(&t);
            let d: Vec<String> = t
                .pools
                .iter()
                .map(|p| config_digest(&names, s, &t, p))
                .collect();
            d
        };
        let before = spec();
        let base = digests(&before, 3);
        // (change, controllers roll, brokers roll)
        let cases: [(&str, Change, bool, bool); 4] = [
            ("nothing", |_| {}, false, false),
            (
                "a client listener's port",
                |s| s.listeners[0].port = 9093,
                false,
                true,
            ),
            (
                "a setting",
                |s| {
                    s.config.insert("num.partitions".into(), 12.into());
                },
                true,
                true,
            ),
            (
                "minInsyncReplicas",
                |s| s.min_insync_replicas = Some(1),
                false,
                true,
            ),
        ];
        for (name, mutate, controllers, brokers) in cases {
            let mut after = before.clone();
            mutate(&mut after);
            let got = digests(&after, 3);
            assert_eq!(
                (got[0] != base[0], got[1] != base[1]),
                (controllers, brokers),
                "{name}"
            );
        }
        // More brokers: no pool rolls.
        assert_eq!(digests(&before, 5), base);
    }

    #[test]
    fn min_insync_defaults() {
        let mut s = spec();
        assert_eq!(min_insync(&s, 4), 2);
        assert_eq!(min_insync(&s, 2), 1);
        s.min_insync_replicas = Some(2);
        assert_eq!(min_insync(&s, 2), 2);
    }
}
