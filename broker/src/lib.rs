//! Gregor's broker: a Kafka-compatible server.
//!
//! A request travels `server` (accepting on the sockets [`bind`] opened,
//! one task per connection) →
//! `protocol` (frames, API versions, decoding with `kafka-protocol`) →
//! `handlers` (one module per API family) → the state in `node`:
//! - [`config`] reads Kafka-style `server.properties` and `GREGOR_*` overrides.
//! - [`metadata`] is the cluster's metadata quorum (openraft): brokers,
//!   topics and partition leadership, decided by the active controller.
//! - [`topic`] holds every topic and opens this broker's replicas, following
//!   the metadata.
//! - [`partition`] is one replica: its log, idempotent-producer state,
//!   leader-epoch history and its role (leader or follower).
//! - [`replication`] copies partitions from leaders to followers and keeps
//!   the ISR and high watermark.
//! - [`log`] stores each partition as a segmented log of Kafka record batches;
//!   [`log_dirs`] claims the directories it lives in for this process.
//! - [`group`] coordinates consumer groups and their committed offsets, for
//!   the `__consumer_offsets` partitions this broker leads.
//! - [`http`] serves `/livez`, `/readyz` and [`metrics`] on `http.listener`.
//! - [`tasks`] owns the broker's long-lived tasks and stops them together
//!   at shutdown, after `server` has drained the connections.
//! - [`producer_id`] hands out producer ids; [`maintenance`] runs retention,
//!   time-based flushing and ISR checks; [`clock`] is wall-clock time in
//!   milliseconds; [`ids`] prints ids as Kafka does; [`dev`] writes the
//!   configuration of `gregor dev`'s three brokers.

pub mod bind;
pub mod clock;
pub mod config;
pub mod dev;
pub mod group;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod log;
pub mod log_dirs;
pub mod maintenance;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod partition;
pub mod producer_id;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod tasks;
pub mod topic;
