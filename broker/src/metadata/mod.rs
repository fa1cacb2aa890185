//! Cluster metadata (KRaft's role), kept by a Raft quorum of the controller
//! nodes with `openraft`:
//! - [`records`] are the changes written to the metadata log;
//! - [`image`] is the cluster they describe, built by applying them in order
//!   (pure and deterministic, so every node agrees);
//! - [`bootstrap`] holds what a new cluster starts with (`gregor format`);
//! - [`features`] are the cluster-wide feature levels (`transaction.version`);
//! - [`placement`] decides where new replicas go;
//! - [`store`] keeps the Raft log, vote and snapshots on disk;
//! - [`network`] is the controller listener's protocol, and how a node
//!   dials the others (over TLS when the listener is SSL);
//! - [`listener`] serves the controller listener: TLS handshake, the peer's
//!   principal, CLUSTER_ACTION checked with an authorizer;
//! - [`controller`] is the active controller's work: registrations,
//!   heartbeats, fencing, topic changes;
//! - [`election`] calls an election only after a pre-vote a majority
//!   granted, so a voter that was cut off does not unseat a working leader;
//! - [`rejoin`] keeps a voter that lost its metadata log out of elections
//!   until it has copied the log again;
//! - [`quorum`] starts this node's member and routes requests to the
//!   active controller;
//! - [`registration`] is the broker's side: register, heartbeat, and
//!   controlled shutdown.

pub mod bootstrap;
pub mod controller;
pub mod election;
pub mod features;
pub mod image;
pub mod listener;
pub mod network;
pub mod placement;
pub mod quorum;
pub mod records;
pub mod registration;
pub mod rejoin;
pub mod store;

openraft::declare_raft_types!(
    /// Raft types of the metadata quorum.
    pub TypeConfig:
        D = records::MetadataRecord,
        R = records::Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);
