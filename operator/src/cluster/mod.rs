//! `KafkaCluster`: the objects a cluster becomes (one builder per kind),
//! the decisions about a running cluster (rollout, health, scale, failures,
//! status, all pure functions of a `view`), and the reconcile pass that
//! ties them to the API.

pub mod addresses;
pub mod balance;
pub mod broker_config;
pub mod certificate_report;
pub mod certificates;
pub mod configmap;
pub mod failures;
pub mod health;
pub mod names;
pub mod network_policy;
pub mod node_address;
pub mod pdb;
pub mod provider_trust;
pub mod rebalance;
pub mod reconcile;
pub mod rollout;
pub mod scale;
pub mod security;
pub mod services;
pub mod statefulset;
pub mod status;
pub mod storage;
pub mod topology;
pub mod trouble;
pub mod view;
pub mod volumes;
