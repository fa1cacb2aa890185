//! `KafkaUser`: who the user is in Kafka and how far the cluster is from
//! its spec (`plan`), its credentials and Secret (`credentials`), the admin
//! requests for them (`kafka`), and the reconcile pass (`reconcile`).

pub mod credentials;
pub mod kafka;
pub mod plan;
pub mod reconcile;
