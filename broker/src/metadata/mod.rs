//! Cluster metadata (KRaft's role), kept by a Raft quorum of the controller
//! nodes with `openraft`:
//! - [`records`] are the changes written to the metadata log;
//! - [`image`] is the cluster they describe, built by applying them in order
//!   (pure and deterministic, so every node agrees);
//! - [`placement`] decides where new replicas go;
//! - [`store`] keeps the Raft log, vote and snapshots on disk;
//! - [`network`] is the controller listener's protocol;
//! - [`controller`] is the active controller's work: registrations,
//!   heartbeats, fencing, topic changes;
//! - [`quorum`] starts this node's member and routes requests to the
//!   active controller;
//! - [`registration`] is the broker's side: register, heartbeat, and
//!   controlled shutdown.

pub mod controller;
pub mod image;
pub mod network;
pub mod placement;
pub mod quorum;
pub mod records;
pub mod registration;
pub mod store;

openraft::declare_raft_types!(
    /// Raft types of the metadata quorum.
    pub TypeConfig:
        D = records::MetadataRecord,
        R = records::Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
);

/// A leader of the quorum: a term and the node elected in it. (openraft's
/// "advanced" leader id, which lets several candidates share a term; it is
/// also what openraft 0.9 wrote, so logs and votes on disk stay readable.)
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, u64>;

/// The position of an entry in the metadata log.
pub type LogId = openraft::LogId<LeaderId>;

/// A voter's vote (or a leader's, once a quorum granted it).
pub type Vote = openraft::Vote<LeaderId>;

/// A metadata log entry.
pub type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;

/// Membership as the state machine last applied it.
pub type StoredMembership = openraft::StoredMembership<LeaderId, u64, openraft::BasicNode>;

/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<LeaderId, u64, openraft::BasicNode>;

/// A snapshot: its metadata and the serialized image (see [`store`]).
pub type Snapshot = openraft::Snapshot<LeaderId, u64, openraft::BasicNode, Vec<u8>>;

/// This node's Raft member, over the metadata state machine.
pub type MetadataRaft = openraft::Raft<TypeConfig, store::StateMachine>;
