//! The `KafkaCluster` resource: what a user declares about a Gregor cluster,
//! and the status the operator reports back.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Gregor cluster: brokers, their listeners, storage and configuration.
// Clippy takes the `printcolumn(...)` entries, which share keys, for
// repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gregor.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    status = "KafkaClusterStatus",
    shortname = "kc",
    category = "gregor",
    printcolumn(name = "Brokers", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyBrokers"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Bootstrap",
        type_ = "string",
        json_path = ".status.listeners[0].bootstrap",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Number of brokers. Required without node pools; with them
    /// (annotation `gregor.dev/node-pools: enabled`) each `KafkaNodePool`
    /// has its own and this must be unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: Option<i32>,
    /// How many of the brokers (the lowest-numbered ones) also form the
    /// metadata quorum. Default: 3, or 1 for a cluster of one or two brokers.
    /// Fixed once the cluster exists. Unset with node pools: the quorum is
    /// the nodes of the pools with the `controller` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub controllers: Option<i32>,
    /// Gregor version to run; picks the image tag when `image` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Broker image; overrides the operator's default image for `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPU and memory of each broker container (with node pools, of the
    /// pools that do not set their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Where brokers keep their logs (with node pools, the pools' that do
    /// not set their own).
    #[serde(default)]
    pub storage: Storage,
    /// Client listeners. Gregor adds its own replication and controller
    /// listeners (ports 9091 and 9090).
    #[schemars(length(min = 1, max = 8))]
    pub listeners: Vec<Listener>,
    /// Broker settings, as in Kafka's server.properties (`num.partitions: 6`).
    /// Settings the operator decides (ids, roles, listeners, directories,
    /// quorum, rack) are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::crd::scalar_map")]
    pub config: BTreeMap<String, serde_json::Value>,
    /// `min.insync.replicas` of the cluster. Default: 2 for three or more
    /// brokers, else 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_insync_replicas: Option<i32>,
    /// Rack awareness: spread replicas over the values of a node label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<Rack>,
    /// Extra settings for the broker pods (with node pools, of the pools
    /// that do not set their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
    /// The authority that signs the brokers' certificates (and the
    /// operator's), trusted by clients of TLS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ca: Option<CertificateAuthority>,
    /// The authority that signs users' client certificates, trusted by
    /// listeners with `tls` authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients_ca: Option<CertificateAuthority>,
    /// Turns on access control lists; anyone may do anything when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// The NetworkPolicy of the broker pods (made unless turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySettings>,
    /// The built-in balancer: after a scale-up, and when asked with the
    /// `gregor.dev/rebalance: "true"` annotation, replicas and preferred
    /// leaders move so every broker carries an even share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceSettings>,
}

/// How the built-in balancer moves replicas.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceSettings {
    /// Rebalance by itself when brokers are added. Default: true.
    #[serde(default = "default_true")]
    pub on_scale_up: bool,
    /// Replication throttle of the moves, in bytes per second per broker
    /// (Kafka's `leader.replication.throttled.rate` and
    /// `follower.replication.throttled.rate`, set as the cluster-wide
    /// default while moves run). Replicas in sync are never throttled.
    /// Default: 50 MiB/s.
    #[serde(default = "default_throttle")]
    #[schemars(range(min = 1024))]
    pub throttle_bytes_per_second: i64,
    /// Partitions moved in one batch; the next batch starts when the whole
    /// batch has moved. Default: 10.
    #[serde(default = "default_batch")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_moves: i32,
}

impl Default for RebalanceSettings {
    fn default() -> Self {
        Self {
            on_scale_up: true,
            throttle_bytes_per_second: default_throttle(),
            max_concurrent_moves: default_batch(),
        }
    }
}

fn default_throttle() -> i64 {
    50 * 1024 * 1024
}

fn default_batch() -> i32 {
    10
}

/// The broker pods' NetworkPolicy: the controller and replication ports
/// only for the cluster's brokers and the operator's pods (label
/// `app.kubernetes.io/name: gregor-operator`), the listeners' and HTTP
/// ports for anyone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySettings {
    /// Make it (the default). Turn it off when the operator does not run
    /// as a pod labelled as the chart's, or to write your own.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// Broker storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// `persistent-claim` (a PersistentVolumeClaim per broker),
    /// `ephemeral` (an emptyDir: data is lost with the pod) or `jbod`
    /// (several claims per broker, listed in `volumes`).
    #[serde(rename = "type", default)]
    pub kind: StorageType,
    /// Size of each broker's volume, as a Kubernetes quantity (with
    /// `jbod`, each volume has its own).
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"))]
    pub size: String,
    /// Storage class of the claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Delete the claims when the cluster is deleted (default: keep them).
    #[serde(default)]
    pub delete_claim: bool,
    /// With `type: jbod`: each broker's volumes, one claim and one
    /// directory of `log.dirs` each. Fixed once the cluster exists; each
    /// volume's `size` can grow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<JbodVolume>,
}

/// One of a broker's volumes in `jbod` storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JbodVolume {
    /// The volume's number: its claim is `data-<id>-<pod>`, mounted at
    /// `/var/lib/gregor/data-<id>`.
    #[schemars(range(min = 0, max = 99))]
    pub id: i32,
    /// Only `persistent-claim` (the default); accepted for manifests
    /// written for Strimzi.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<JbodVolumeType>,
    /// Size of the volume, as a Kubernetes quantity.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"))]
    pub size: String,
    /// Storage class of the volume's claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Delete the claims with the cluster; when given, the same for every
    /// volume (a StatefulSet keeps or deletes a broker's claims together).
    /// Default: `storage.deleteClaim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_claim: Option<bool>,
}

/// The kinds of a `jbod` volume.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JbodVolumeType {
    /// A PersistentVolumeClaim per broker.
    PersistentClaim,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            kind: StorageType::default(),
            size: default_storage_size(),
            class: None,
            delete_claim: false,
            volumes: Vec::new(),
        }
    }
}

fn default_storage_size() -> String {
    "10Gi".into()
}

/// Kinds of broker storage.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StorageType {
    /// One PersistentVolumeClaim per broker, kept across restarts.
    #[default]
    PersistentClaim,
    /// An emptyDir per pod.
    Ephemeral,
    /// Several PersistentVolumeClaims per broker (`volumes`), the broker
    /// spreading its partitions over them.
    Jbod,
}

/// A client listener.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Listener name: up to 11 lowercase letters and digits, starting with a
    /// letter (it names container ports, which are limited to 15).
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]{0,10}$"))]
    pub name: String,
    /// Port the brokers listen on for it.
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// How clients reach it.
    #[serde(rename = "type")]
    pub kind: ListenerType,
    /// Encrypt it with TLS, with certificates signed by the cluster CA.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// How its clients authenticate; unset, anyone may connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<ListenerAuthentication>,
    /// How the listener is exposed: node addresses, load balancer options,
    /// addresses advertised per broker (Strimzi's listener
    /// `configuration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ListenerConfiguration>,
}

impl Listener {
    /// The listener's `configuration`, empty when unset.
    pub fn config(&self) -> ListenerConfiguration {
        self.configuration.clone().unwrap_or_default()
    }

    /// The overrides of broker `id` on this listener, if any.
    pub fn broker_override(&self, id: i32) -> Option<&BrokerListenerConfiguration> {
        self.configuration
            .as_ref()?
            .brokers
            .iter()
            .find(|b| b.broker == id)
    }
}

/// How a listener is exposed, with Strimzi's field names. Fields that do
/// not apply to the listener's type are refused (in status).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerConfiguration {
    /// `nodeport`: the kind of the node's address (from the Node's
    /// `status.addresses`) each broker advertises. Tried first; when the
    /// node has none of it, the others are tried in the default order:
    /// ExternalDNS, ExternalIP, Hostname, InternalDNS, InternalIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_node_port_address_type: Option<NodeAddressType>,
    /// `nodeport` and `loadbalancer`: the `externalTrafficPolicy` of the
    /// listener's Services, bootstrap and per broker. Unset: `Local` on
    /// the per-broker Services (each has one broker behind it, reached
    /// without a hop to another node) and Kubernetes' default (`Cluster`)
    /// on the bootstrap Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<ExternalTrafficPolicy>,
    /// `loadbalancer`: the `loadBalancerClass` of the listener's Services,
    /// which picks the load-balancer implementation (e.g.
    /// `service.k8s.aws/nlb`). Kubernetes keeps a Service's class once it
    /// is made: a change is refused by the API server (in status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `loadbalancer`: the client address ranges (CIDRs, such as
    /// `10.0.0.0/8`) the load balancers let in, where the platform
    /// supports it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<String>,
    /// Annotations on every Service of the listener (bootstrap and per
    /// broker), e.g. a cloud's load-balancer settings. `bootstrap` and
    /// `brokers` add their own over these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The listener's bootstrap Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapListenerConfiguration>,
    /// Per broker: the address it advertises, its node port, its
    /// Service's annotations. `nodeport` and `loadbalancer` listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerListenerConfiguration>,
}

/// A listener's bootstrap Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapListenerConfiguration {
    /// More names and addresses clients use to bootstrap (a DNS alias of
    /// the bootstrap Service, say): added to every broker's certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternative_names: Vec<String>,
    /// `nodeport` and `loadbalancer`: the node port asked for the
    /// bootstrap Service (one the API server allocates when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Annotations of the bootstrap Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One broker on a `nodeport` or `loadbalancer` listener.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerListenerConfiguration {
    /// The broker's id (`0` to `replicas - 1`).
    #[schemars(range(min = 0))]
    pub broker: i32,
    /// The host name or IP address the broker advertises instead of its
    /// node's or load balancer's; added to its certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
    /// The port the broker advertises instead of its node port (or, on a
    /// `loadbalancer` listener, the listener's port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub advertised_port: Option<i32>,
    /// The node port asked for the broker's Service (one the API server
    /// allocates when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port: Option<i32>,
    /// Annotations of the broker's Service, over the listener's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `nodeport`: the kind of node address (a Node's
/// `status.addresses[].type`) each broker advertises, tried first; when
/// the node has none of it, the others are tried in Strimzi's order:
/// ExternalDNS, ExternalIP, Hostname, InternalDNS, InternalIP.
// This text describes the field in the CRD: the schema of an optional
// enum is the enum's own.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum NodeAddressType {
    /// A DNS name of the node reachable from outside the cluster.
    #[serde(rename = "ExternalDNS")]
    ExternalDns,
    /// An IP address of the node reachable from outside the cluster.
    #[serde(rename = "ExternalIP")]
    ExternalIp,
    /// The node's host name, as the kubelet reports it.
    Hostname,
    /// A DNS name of the node inside the cluster's network.
    #[serde(rename = "InternalDNS")]
    InternalDns,
    /// An IP address of the node inside the cluster's network.
    #[serde(rename = "InternalIP")]
    InternalIp,
}

impl NodeAddressType {
    /// The order tried when no type is preferred (or the node has none of
    /// the preferred one), as Strimzi's.
    pub const DEFAULT_ORDER: [NodeAddressType; 5] = [
        Self::ExternalDns,
        Self::ExternalIp,
        Self::Hostname,
        Self::InternalDns,
        Self::InternalIp,
    ];

    /// The type as a Node's `status.addresses[].type` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExternalDns => "ExternalDNS",
            Self::ExternalIp => "ExternalIP",
            Self::Hostname => "Hostname",
            Self::InternalDns => "InternalDNS",
            Self::InternalIp => "InternalIP",
        }
    }
}

/// `nodeport` and `loadbalancer`: the `externalTrafficPolicy` of the
/// listener's Services. `Local` takes a client only to a broker on the
/// node its traffic arrives at (no hop, the client's address kept);
/// `Cluster` lets it hop to another node. Unset: `Local` on the
/// per-broker Services, Kubernetes' default (`Cluster`) on the bootstrap
/// Service.
// This text describes the field in the CRD, as above.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExternalTrafficPolicy {
    /// Any node forwards to the broker, wherever it runs.
    Cluster,
    /// Only the broker's own node answers.
    Local,
}

impl ExternalTrafficPolicy {
    /// The value of a Service's `externalTrafficPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "Cluster",
            Self::Local => "Local",
        }
    }
}

/// How clients of a listener authenticate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerAuthentication {
    /// The mechanism.
    #[serde(rename = "type")]
    pub kind: AuthenticationType,
    /// `oauth`: URL of the identity provider's JSON Web Key Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_endpoint_uri: Option<String>,
    /// `oauth`: the issuer (`iss`) tokens must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_issuer_uri: Option<String>,
    /// `oauth`: an audience (`aud`) tokens must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_audience: Option<String>,
    /// `oauth`: the claim holding the user name. Default: `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name_claim: Option<String>,
    /// `oauth`: certificates (PEM, in Secrets) the brokers trust for the
    /// identity provider's `https:` endpoint, next to the system's roots.
    /// A change rolls the brokers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_trusted_certificates: Vec<TrustedCertificate>,
}

/// A certificate in a Secret of the cluster's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedCertificate {
    /// The Secret.
    pub secret_name: String,
    /// Its key holding the PEM certificates, e.g. `ca.crt`.
    pub certificate: String,
}

/// Authentication mechanisms of a listener.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticationType {
    /// A client certificate signed by the clients CA (needs `tls: true`);
    /// the user is `CN=<name>`.
    Tls,
    /// SASL SCRAM-SHA-512 with a `KafkaUser`'s password.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// SASL SCRAM-SHA-256 with a `KafkaUser`'s password.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// SASL OAUTHBEARER: tokens of an identity provider.
    Oauth,
}

/// A certificate authority of the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    /// Whether the operator makes and renews the authority (the default),
    /// or the user supplies it: then the Secret `<cluster>-cluster-ca` (or
    /// `-clients-ca`) holds `ca.crt` and `ca.key`, and the operator only
    /// signs with it.
    #[serde(default = "default_true")]
    pub generate_certificate_authority: bool,
    /// How long certificates are valid, as a duration in hours, minutes
    /// and seconds (`8760h`, `90m`). Default: `8760h` (a year) for the
    /// authority, the same capped at the authority's end for the
    /// certificates it signs.
    #[serde(default = "default_validity")]
    #[schemars(regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"))]
    pub validity: String,
    /// How long before the end of its validity a certificate is renewed.
    /// Default: `720h` (30 days).
    #[serde(default = "default_renew_before")]
    #[schemars(regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"))]
    pub renew_before: String,
}

impl Default for CertificateAuthority {
    fn default() -> Self {
        Self {
            generate_certificate_authority: true,
            validity: default_validity(),
            renew_before: default_renew_before(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_validity() -> String {
    "8760h".into()
}

fn default_renew_before() -> String {
    "720h".into()
}

/// Access control.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The authorizer: `simple`, Kafka's ACLs.
    #[serde(rename = "type")]
    pub kind: AuthorizationType,
    /// Users allowed everything, as ACL principals name them without the
    /// `User:` prefix (`CN=admin` for a certificate, `admin` for SCRAM).
    /// The brokers and the operator are always super users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub super_users: Vec<String>,
}

/// Authorizers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationType {
    /// Kafka's ACLs, managed with `kafka-acls` or `KafkaUser`s.
    Simple,
}

/// How clients reach a listener.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListenerType {
    /// Inside the Kubernetes cluster, through each pod's DNS name.
    Internal,
    /// From outside, through a NodePort Service per broker on the node the
    /// broker runs on.
    Nodeport,
    /// From outside, through a LoadBalancer Service per broker.
    Loadbalancer,
}

/// Rack awareness.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rack {
    /// Node label whose value is a broker's rack, such as
    /// `topology.kubernetes.io/zone`.
    pub topology_key: String,
}

/// Extra settings for the broker pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Labels added to every broker pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to every broker pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Scheduling affinity of the broker pods. Default: prefer a node
    /// without another broker of the cluster (pod anti-affinity by
    /// hostname); a value here replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How the broker pods spread. Default: evenly over nodes, and over
    /// racks when rack awareness is on, as a preference; a value here
    /// replaces it (an empty list turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Taints the broker pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node labels the broker pods require.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Priority class of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Secrets (in the cluster's namespace) holding credentials for the
    /// registry of the broker image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// When the kubelet pulls the broker image. Default: Kubernetes' own
    /// (`Always` for a `:latest` tag, else `IfNotPresent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Security context of the broker pods. Default: Pod Security
    /// "restricted" (`runAsNonRoot`, `seccompProfile: RuntimeDefault`), user
    /// and group 65532 (the image's), `fsGroup: 65532` with
    /// `fsGroupChangePolicy: OnRootMismatch` so the data volume is the
    /// broker's. A value here replaces that default whole, nothing is
    /// merged: a field left out is unset, so that on OpenShift, leaving out
    /// `runAsUser` and `fsGroup` lets the platform assign its own (a merge
    /// could never remove a default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Security context of the broker container. Default:
    /// `allowPrivilegeEscalation: false`, `capabilities: {drop: [ALL]}`,
    /// `readOnlyRootFilesystem: true` (the broker writes only to its data
    /// volume), `runAsNonRoot: true`. Like `securityContext`, a value here
    /// replaces the default whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

/// When the kubelet pulls the broker image (the container's
/// `imagePullPolicy`). Unset: Kubernetes' default (`Always` for a `:latest`
/// tag, else `IfNotPresent`).
// This text, not the field's, describes the field in the CRD: the schema
// of an optional enum is the enum's own.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    /// On every container start.
    Always,
    /// Only when the node does not have the image.
    IfNotPresent,
    /// Never: the image must be on the node already.
    Never,
}

impl ImagePullPolicy {
    /// The value of a container's `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Degraded`, each with a reason.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Brokers whose pods are ready.
    #[serde(default)]
    pub ready_brokers: i32,
    /// Size of the metadata quorum the cluster was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<i32>,
    /// Where clients connect, per listener.
    #[serde(default)]
    pub listeners: Vec<ListenerStatus>,
    /// Partitions with fewer in-sync replicas than replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_replicated_partitions: Option<i32>,
    /// Partitions without a leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_partitions: Option<i32>,
    /// The certificate authorities and certificates in use, with their
    /// ends of validity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateStatus>,
    /// The built-in balancer's last or current rebalance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceStatus>,
    /// With node pools: every pool the cluster has had, with its block of
    /// node ids. A removed pool's entry stays, so that its ids (and the
    /// volumes that may hold their data) are never given to another pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<NodePoolRecord>,
}

/// One node pool of a cluster, as the operator runs it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolRecord {
    /// The `KafkaNodePool`'s name.
    pub name: String,
    /// The first id of the pool's block: its nodes' ids are
    /// `firstNodeId` to `firstNodeId + 999` (its StatefulSet's start
    /// ordinal, so that each pod's ordinal is its node id).
    pub first_node_id: i32,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<crate::crd::node_pool::NodeRole>,
    /// Ids of its nodes that run or are being drained.
    #[serde(default)]
    pub node_ids: Vec<i32>,
    /// Of those, nodes whose pods are ready.
    #[serde(default)]
    pub ready: i32,
}

/// A rebalance: why, its plan and how far it got.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceStatus {
    /// Brokers the replicas were last spread over; more brokers than this
    /// starts a rebalance (`onScaleUp`).
    pub brokers: i32,
    /// `Moving` while the plan runs, `Balanced` when it is done.
    pub state: RebalanceState,
    /// Why it started.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What is under way or why it waits.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Partitions the plan moves or reorders.
    #[serde(default)]
    pub planned: i32,
    /// Of those, partitions done.
    #[serde(default)]
    pub done: i32,
    /// Bytes copied to new replicas by the plan (each partition's size
    /// times the replicas it gains).
    #[serde(default)]
    pub bytes: i64,
    /// When the plan was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When its last move finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The plan's moves not done yet: each partition's replicas to be,
    /// preferred leader first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<PlannedMove>,
}

/// Where a rebalance stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RebalanceState {
    /// Nothing to do: the last plan finished (or none was needed).
    #[default]
    Balanced,
    /// A plan's moves are running.
    Moving,
}

/// One partition's replicas to be.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Its replicas, preferred leader first.
    pub replicas: Vec<i32>,
}

/// One certificate in use.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// What it is: `cluster CA`, `clients CA`, a broker pod, `operator`.
    pub name: String,
    /// End of its validity (RFC 3339).
    pub not_after: String,
}

/// Where clients reach one listener.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// Listener name.
    pub name: String,
    /// `bootstrap.servers` for clients of this listener (comma-separated).
    pub bootstrap: String,
}
