//! The `KafkaTopic` resource: a topic of a `KafkaCluster`, kept as declared.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A topic: partitions, replicas and configuration. The spec wins: changes
/// made to the topic by other means are undone, except what cannot be (a
/// topic never loses partitions).
// Clippy takes the `printcolumn(...)` entries, which share keys, for
// repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gregor.dev",
    version = "v1alpha1",
    kind = "KafkaTopic",
    namespaced,
    status = "KafkaTopicStatus",
    shortname = "kt",
    category = "gregor",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// Name of the `KafkaCluster` (in the same namespace) holding the topic.
    #[x_kube(validation = Rule::new("self == oldSelf").message("a topic cannot move to another cluster"))]
    pub cluster: String,
    /// Topic name in Kafka, when it differs from the resource name (Kafka
    /// names may hold `_` and capitals, Kubernetes names may not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("a topic cannot be renamed"))]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,249}$"))]
    pub topic_name: Option<String>,
    /// Number of partitions; it can grow, never shrink.
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: i32,
    /// Replication factor.
    #[schemars(range(min = 1, max = 32))]
    pub replicas: i32,
    /// Topic settings (`retention.ms: 604800000`, `cleanup.policy: delete`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::crd::scalar_map")]
    pub config: BTreeMap<String, serde_json::Value>,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with a reason when it is not.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The topic's name in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// The topic's id in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partitions the topic has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
}
