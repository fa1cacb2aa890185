//! The custom resources: Rust types from which the CRDs in `crds/` are
//! generated (`crdgen`), and the checks the schema cannot express.

pub mod cluster;
pub mod exposure;
pub mod node_pool;
pub mod topic;
pub mod user;
pub mod validate;

pub use cluster::{KafkaCluster, KafkaClusterSpec, KafkaClusterStatus};
pub use node_pool::{KafkaNodePool, KafkaNodePoolSpec, KafkaNodePoolStatus, NodeRole};
pub use topic::{KafkaTopic, KafkaTopicSpec, KafkaTopicStatus};
pub use user::{KafkaUser, KafkaUserSpec, KafkaUserStatus};
pub use validate::{validate_cluster, validate_topic, Invalid};

/// Schema of a `config` map: any keys and values; the operator checks that
/// values are scalars (strings, numbers, booleans).
pub(crate) fn scalar_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
