//! The records of the metadata log: every change to the cluster's shape is
//! one of these, proposed by the active controller, committed by the quorum
//! and applied in the same order on every node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::quota::entity::{QuotaEntity, QuotaValue};
use crate::security::acl::AclBinding;
use crate::security::sasl::scram::ScramCredential;
use crate::security::sasl::Mechanism;

/// One address a broker can be reached at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// Listener name (`INTERNAL`, `EXTERNAL`, ...).
    pub listener: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
}

/// A change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// Names the cluster; only the first such record counts.
    InitCluster {
        /// Kafka-style cluster id.
        cluster_id: String,
        /// The records the cluster starts with (`gregor format`), applied
        /// with the first such record only.
        #[serde(default)]
        bootstrap: Vec<MetadataRecord>,
    },
    /// A broker (re)joins; it stays fenced until its first heartbeat.
    RegisterBroker {
        /// `node.id`.
        id: i32,
        /// Random per process start: tells a restart from a duplicate id.
        incarnation: Uuid,
        /// The directory id of its first log directory (nil before this
        /// was recorded): a new incarnation on the same storage is a
        /// restart of the same broker.
        #[serde(default)]
        storage: Uuid,
        /// Its advertised listeners.
        endpoints: Vec<BrokerEndpoint>,
        /// `broker.rack`.
        rack: Option<String>,
    },
    /// The broker heartbeats and may lead partitions again.
    UnfenceBroker {
        /// Broker.
        id: i32,
        /// Its registration epoch.
        epoch: i64,
    },
    /// The broker stopped heartbeating or is shutting down: it leads nothing
    /// and leaves every ISR it can leave.
    FenceBroker {
        /// Broker.
        id: i32,
        /// Its registration epoch.
        epoch: i64,
    },
    /// A new topic with its replica assignment (one broker list per partition).
    CreateTopic {
        /// Name.
        name: String,
        /// Topic id.
        id: Uuid,
        /// Setting overrides.
        configs: BTreeMap<String, String>,
        /// Replicas of each partition, preferred leader first.
        assignment: Vec<Vec<i32>>,
    },
    /// More partitions for a topic.
    CreatePartitions {
        /// Topic.
        name: String,
        /// Replicas of each new partition.
        assignment: Vec<Vec<i32>>,
    },
    /// The topic is gone.
    DeleteTopic {
        /// Topic.
        name: String,
    },
    /// A topic's overrides are replaced.
    SetTopicConfigs {
        /// Topic.
        name: String,
        /// The new overrides.
        configs: BTreeMap<String, String>,
    },
    /// The partition leader changes the ISR (Kafka's AlterPartition).
    ChangeIsr {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The leader asking.
        leader: i32,
        /// Its leader epoch.
        leader_epoch: i32,
        /// The partition epoch it last saw.
        partition_epoch: i32,
        /// The ISR it wants.
        isr: Vec<i32>,
    },
    /// Make the preferred replica (the first) the leader if it can be.
    ElectPreferredLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// Start moving a partition to `target`, or cancel a move (`None`).
    Reassign {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The replicas it should end with.
        target: Option<Vec<i32>>,
    },
    /// Reserve a block of producer ids.
    AllocateProducerIds {
        /// How many.
        count: i64,
    },
    /// A user's SCRAM credential for one mechanism is set or replaced
    /// (AlterUserScramCredentials).
    SetScramCredential {
        /// The user.
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        mechanism: Mechanism,
        /// Salt, keys and iterations; never the password.
        credential: ScramCredential,
    },
    /// A user's SCRAM credential for one mechanism is removed.
    DeleteScramCredential {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: Mechanism,
    },
    /// ACLs come into force (CreateAcls); one already in force stays.
    CreateAcls {
        /// The ACLs.
        acls: Vec<AclBinding>,
    },
    /// ACLs are removed (DeleteAcls); one no longer in force is skipped.
    DeleteAcls {
        /// The ACLs.
        acls: Vec<AclBinding>,
    },
    /// A broker resource's dynamic settings are set or removed (Kafka's
    /// ConfigRecord for a BROKER resource).
    AlterBrokerConfigs {
        /// The broker's id, or "" for the cluster-wide default.
        resource: String,
        /// Each key's new value, or `None` to remove it.
        changes: BTreeMap<String, Option<String>>,
    },
    /// A cluster-wide feature runs at a new level (UpdateFeatures).
    SetFeatureLevel {
        /// The feature.
        name: String,
        /// Its level.
        level: i16,
    },
    /// An entity's client quotas are set or removed (AlterClientQuotas).
    SetClientQuotas {
        /// Who they are for.
        entity: QuotaEntity,
        /// Each key's new value, or `None` to remove it.
        changes: BTreeMap<String, Option<QuotaValue>>,
    },
}

/// What applying a record produced, for the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Nothing to report.
    Done,
    /// The broker's registration epoch.
    BrokerEpoch(i64),
    /// The partition's epochs after the change.
    Partition {
        /// Leader epoch.
        leader_epoch: i32,
        /// Partition epoch.
        partition_epoch: i32,
    },
    /// First id of the reserved block.
    ProducerIds(i64),
    /// The record was refused; nothing changed.
    Refused(Refusal),
}

/// Why a record changed nothing. Each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// No such topic or partition.
    #[error("{0}")]
    UnknownTopicOrPartition(String),
    /// The topic already exists.
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    /// The broker is not registered, or with another epoch.
    #[error("{0}")]
    StaleBrokerEpoch(String),
    /// Another live process registered this broker id.
    #[error("broker {0} is already registered by a running process")]
    DuplicateBroker(i32),
    /// The request's leader epoch is not the current one.
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// The request's partition epoch is not the current one.
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// A replica named is not eligible (fenced, or not a replica).
    #[error("{0}")]
    IneligibleReplica(String),
    /// More replicas asked for than there are brokers.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// The assignment or ISR is malformed.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// The preferred leader cannot lead now.
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// Already led by its preferred replica.
    #[error("{0}")]
    ElectionNotNeeded(String),
    /// Cancelling a move that is not in progress.
    #[error("{0}")]
    NoReassignmentInProgress(String),
    /// Removing something that is not there (a SCRAM credential).
    #[error("{0}")]
    ResourceNotFound(String),
}
