//! Gregor's Kubernetes operator.
//!
//! - `crd`: the `KafkaCluster`, `KafkaTopic` and `KafkaUser` resources
//!   (the CRDs in `crds/` are generated from them by the `crdgen` binary)
//!   and the spec checks the schema cannot express.
//! - `cluster`: what a `KafkaCluster` becomes (ConfigMap, Services,
//!   StatefulSet, PodDisruptionBudget, certificates) and the decisions
//!   about a running cluster (rolling restarts, healing, draining before
//!   scale-down, storage changes), as pure functions; `cluster::reconcile`
//!   applies them.
//! - `topic`: a `KafkaTopic`'s plan and reconcile pass; `user`: a
//!   `KafkaUser`'s credentials, ACLs and quotas and its reconcile pass.
//! - `admin`: the Kafka admin requests the operator sends to a cluster.
//! - `pki`: the cluster's certificate authorities and certificates, and
//!   when to renew them; `tls`: the operator's TLS identity towards a
//!   cluster, for the admin client.
//! - `conditions`, `context`, `error`: shared pieces of the reconcilers;
//!   `pause`: the annotation that stops them for one resource.
//! - `metrics`, `http`: the operator's own metrics, served with its
//!   probes.
//! - `mock_api` (tests only): a scripted API server for reconcile passes.

pub mod admin;
pub mod cluster;
pub mod conditions;
pub mod context;
pub mod crd;
pub mod error;
pub mod http;
pub mod metrics;
#[cfg(test)]
mod mock_api;
pub mod pause;
pub mod pki;
pub mod tls;
pub mod topic;
pub mod user;
