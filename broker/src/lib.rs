//! Gregor's broker: a Kafka-compatible server.
//!
//! A request travels `server` (listeners, one task per connection) →
//! `protocol` (frames, API versions, decoding with `kafka-protocol`) →
//! `handlers` (one module per API family) → the state in `node`:
//! - [`config`] reads Kafka-style `server.properties` and `GREGOR_*` overrides.
//! - [`topic`] keeps the topics, their settings and partitions.
//! - [`partition`] is one partition: its log plus idempotent-producer state.
//! - [`log`] stores each partition as a segmented log of Kafka record batches.
//! - [`group`] coordinates consumer groups and their committed offsets.
//! - [`producer_id`] hands out producer ids; [`maintenance`] runs retention
//!   and time-based flushing; [`clock`] is wall-clock time in milliseconds.

pub mod clock;
pub mod config;
pub mod dev;
pub mod group;
pub mod handlers;
pub mod ids;
pub mod log;
pub mod maintenance;
pub mod metadata;
pub mod node;
pub mod partition;
pub mod producer_id;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod topic;
