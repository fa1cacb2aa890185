//! Gregor's broker: a Kafka-compatible server.
//!
//! A request travels `server` (accepting on the sockets [`bind`] opened,
//! one task per connection, TLS from [`security`] on SSL listeners) →
//! `protocol` (frames, API versions, decoding with `kafka-protocol`) →
//! `handlers` (one module per API family, translating the request into calls
//! on the services in `node` and their outcomes into the response) → the
//! state in `node`:
//! - [`config`] reads Kafka-style `server.properties` and `GREGOR_*` overrides;
//!   [`config_docs`] renders its tables and the topics' as the settings page.
//! - [`metadata`] is the cluster's metadata quorum (openraft): brokers,
//!   topics and partition leadership, decided by the active controller.
//! - [`topic`] holds every topic and opens this broker's replicas, following
//!   the metadata.
//! - [`partition`] is one replica: its log, producer and transaction
//!   state (the last stable offset), leader-epoch history and its role (a leader tracks its followers, the
//!   ISR and the high watermark; a follower copies its leader).
//! - [`replication`] works between brokers: followers fetch from their
//!   leaders, leaders send ISR changes to the controller.
//! - [`replica_manager`] serves this broker's replicas (Kafka's
//!   ReplicaManager): produce with `acks`, fetch for consumers and
//!   followers, offset lookups, the delayed produces and fetches the
//!   partitions' events complete, and every ISR change a leader asks for;
//!   [`fetch_session`] keeps the incremental fetch sessions (KIP-227) of
//!   consumers and followers.
//! - [`log`] stores each partition as a segmented log of Kafka record batches;
//!   [`log_dirs`] claims the directories it lives in for this process;
//!   [`log_cleaner`] runs the threads that compact logs of
//!   `cleanup.policy=compact`.
//! - [`group`] coordinates consumer groups and their committed offsets, for
//!   the `__consumer_offsets` partitions this broker leads; [`txn`]
//!   coordinates transactions for the `__transaction_state` partitions it
//!   leads, writing their markers through [`inter_broker`] connections.
//!   Both load their partitions as [`leadership`] decides.
//! - [`http`] serves `/livez`, `/readyz` and [`metrics`] on `http.listener`.
//! - [`tasks`] owns the broker's long-lived tasks and stops them together
//!   at shutdown, after `server` has drained the connections.
//! - [`security`] also decides what an authenticated principal may do
//!   (ACLs, `security::acl`); [`quota`] keeps the client quotas.
//! - [`producer_id`] hands out producer ids; [`maintenance`] runs retention,
//!   time-based flushing and ISR checks; [`parallel`] spreads the opening
//!   and closing of many logs over a few threads; [`clock`] is wall-clock time in
//!   milliseconds; [`durable`] replaces files whole, so a crash leaves the
//!   old or the new; [`ids`] prints ids as Kafka does; [`dev`] writes the
//!   configuration of `gregor dev`'s three brokers.
//!
//! The replica layers depend one way: `replica_manager` → `replication` →
//! `partition` → `log`: a replica knows nothing of the brokers it is copied
//! between, and replication nothing of how clients' requests are served.

pub mod bind;
pub mod clock;
pub mod config;
pub mod config_docs;
pub mod dev;
pub mod durable;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod inter_broker;
pub mod leadership;
pub mod log;
pub mod log_cleaner;
pub mod log_dirs;
pub mod maintenance;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod parallel;
pub mod partition;
pub mod producer_id;
pub mod protocol;
pub mod quota;
pub mod replica_manager;
pub mod replication;
pub mod security;
pub mod server;
pub mod tasks;
pub mod topic;
pub mod txn;
