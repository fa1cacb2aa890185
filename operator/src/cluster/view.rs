//! What the operator sees of a running cluster, as plain data: its broker
//! pods (from Kubernetes) and its brokers and partitions (from the Kafka
//! admin protocol). The rollout, healing and scaling decisions are
//! functions of this view.

use std::collections::BTreeSet;

/// One broker pod as Kubernetes reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPod {
    /// Broker id (the pod's ordinal).
    pub id: i32,
    /// The pod passes its readiness probe.
    pub ready: bool,
    /// The pod is being deleted.
    pub terminating: bool,
    /// The StatefulSet revision the pod was created from.
    pub revision: Option<String>,
}

/// One partition as the cluster's metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader, -1 when offline.
    pub leader: i32,
    /// `min.insync.replicas` that applies to it.
    pub min_isr: i32,
    /// A reassignment of it is under way.
    pub reassigning: bool,
}

impl PartitionView {
    /// `topic-partition`, as Kafka tools print it.
    pub fn label(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// The cluster as its brokers describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaView {
    /// Registered, unfenced brokers.
    pub brokers: BTreeSet<i32>,
    /// The active controller, if a broker reports it.
    pub controller: Option<i32>,
    /// Every partition.
    pub partitions: Vec<PartitionView>,
}

impl KafkaView {
    /// Partitions with fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.isr.len() < p.replicas.len())
            .count()
    }

    /// Partitions without a leader.
    pub fn offline(&self) -> usize {
        self.partitions.iter().filter(|p| p.leader < 0).count()
    }
}
