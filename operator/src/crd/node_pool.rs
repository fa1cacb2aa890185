//! The `KafkaNodePool` resource: a group of a `KafkaCluster`'s nodes with
//! the same roles, size, storage, resources and scheduling, run by one
//! StatefulSet. A cluster uses pools when it carries the annotation
//! `gregor.dev/node-pools: enabled`; its pools are the `KafkaNodePool`s of
//! its namespace labelled `gregor.dev/cluster: <cluster>`.
//!
//! Why a resource of its own rather than a list inside the cluster: it is
//! what Strimzi users know (`kubectl scale kafkanodepool brokers
//! --replicas=5`, a pool per team or hardware class, each with its own
//! RBAC), and the scale subresource lets autoscalers and `kubectl scale`
//! size a pool without touching the cluster's spec.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cluster::{PodTemplate, Storage};

/// A pool of a `KafkaCluster`'s nodes. Each node gets an id from the pool's
/// own block of 1000 ids (the first pools made take `0..999`, then
/// `1000..1999`, and so on; controller pools first, then by name), kept in
/// the cluster's status for as long as the cluster exists so that no id is
/// ever handed to another pool. Pods are named `<cluster>-<pool>-<id>`.
// Clippy takes the `printcolumn(...)` entries, which share keys, for
// repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gregor.dev",
    version = "v1alpha1",
    kind = "KafkaNodePool",
    namespaced,
    status = "KafkaNodePoolStatus",
    shortname = "knp",
    category = "gregor",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Roles", type_ = "string", json_path = ".status.roles"),
    printcolumn(name = "NodeIds", type_ = "string", json_path = ".status.nodeIds"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaNodePoolSpec {
    /// Number of nodes. A pool of brokers grows and shrinks (a broker is
    /// drained of its replicas before it goes); a pool of controllers is
    /// the metadata quorum, fixed once the cluster exists.
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// What the pool's nodes do: `controller` (a voter of the metadata
    /// quorum, no client listeners), `broker` (holds partitions, serves
    /// clients), or both (combined nodes). Fixed once the pool exists.
    #[schemars(length(min = 1, max = 2))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("a pool's roles cannot change"))]
    pub roles: Vec<NodeRole>,
    /// The nodes' storage; the cluster's `storage` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// CPU and memory of each node's container; the cluster's `resources`
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra settings of the pool's pods (labels, scheduling, security);
    /// the cluster's `template` when unset (it replaces it whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// A role of the nodes of a pool.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// A voter of the metadata quorum.
    Controller,
    /// Holds partitions and serves clients.
    Broker,
}

/// What the operator made of the pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaNodePoolStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ids of the pool's nodes that run or are being drained.
    #[serde(default)]
    pub node_ids: Vec<i32>,
    /// The pool's roles.
    #[serde(default)]
    pub roles: Vec<NodeRole>,
    /// Nodes the pool's StatefulSet runs now (the scale subresource's
    /// current size).
    #[serde(default)]
    pub replicas: i32,
    /// The label selector of the pool's pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label_selector: String,
}
