//! The custom resources: Rust types from which the CRDs in `crds/` are
//! generated (`crdgen`) and which the operator applies itself
//! (`upgrade`), and the checks the schema cannot express.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub mod cluster;
pub mod exposure;
pub mod node_pool;
pub mod topic;
pub mod upgrade;
pub mod user;
pub mod validate;

pub use cluster::{KafkaCluster, KafkaClusterSpec, KafkaClusterStatus};
pub use node_pool::{KafkaNodePool, KafkaNodePoolSpec, KafkaNodePoolStatus, NodeRole};
pub use topic::{KafkaTopic, KafkaTopicSpec, KafkaTopicStatus};
pub use user::{KafkaUser, KafkaUserSpec, KafkaUserStatus};
pub use validate::{validate_cluster, validate_topic, Invalid};

/// Annotation on each CRD naming the version of the operator that made it,
/// so that an older operator never replaces a newer one's CRDs.
pub const VERSION_ANNOTATION: &str = "gregor.dev/operator-version";

/// Every CRD of this version, stamped with it (`VERSION_ANNOTATION`): what
/// `crdgen` writes to `crds/` and what the operator applies with
/// `--apply-crds`, so that the two cannot differ.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    [
        KafkaCluster::crd(),
        KafkaNodePool::crd(),
        KafkaTopic::crd(),
        KafkaUser::crd(),
    ]
    .into_iter()
    .map(|mut crd| {
        crd.metadata.annotations.get_or_insert_default().insert(
            VERSION_ANNOTATION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        );
        crd
    })
    .collect()
}

/// Schema of a `config` map: any keys and values; the operator checks that
/// values are scalars (strings, numbers, booleans).
pub(crate) fn scalar_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
