//! Where partitions live and who leads them: ElectLeaders
//! (`kafka-leader-election`), AlterPartitionReassignments and
//! ListPartitionReassignments (`kafka-reassign-partitions`). Each change is
//! a metadata record decided by the active controller.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::propose;
use super::{authorize, text};
use crate::metadata::records::MetadataRecord;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::Operation;

/// Why a placement request is refused without ALTER (DESCRIBE to list) on
/// the cluster.
const NOT_ALLOWED: &str =
    "moving partitions and leaders takes ALTER on the cluster (DESCRIBE to list the moves)";

/// Kafka's election type for "make the preferred replica the leader".
const PREFERRED: i8 = 0;

/// A proposal's outcome as an error code and message.
async fn decide(node: &Node, record: MetadataRecord) -> (i16, Option<String>) {
    match propose(node, record).await {
        Ok(()) => (0, None),
        Err((error, message)) => (error.code(), Some(message)),
    }
}

/// Elects the preferred replica of the given partitions (all, when none are
/// named). Unclean elections are refused: Gregor never elects a replica
/// outside the ISR.
pub async fn elect_leaders(
    node: &Node,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    if !authorize::on_cluster(node, ctx, Operation::Alter) {
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_code = denied;
        resp.replica_election_results = request
            .topic_partitions
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let mut out = ReplicaElectionResult::default();
                out.topic = t.topic;
                out.partition_result = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut r = PartitionResult::default();
                        r.partition_id = p;
                        r.error_code = denied;
                        r.error_message = Some(text(NOT_ALLOWED));
                        r
                    })
                    .collect();
                out
            })
            .collect();
        return resp;
    }
    let everything = request.topic_partitions.is_none();
    let wanted: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(list) => list
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
        None => node
            .image()
            .topics
            .iter()
            .map(|(name, t)| (name.clone(), (0..t.partitions.len() as i32).collect()))
            .collect(),
    };
    for (topic, partitions) in wanted {
        let mut out = ReplicaElectionResult::default();
        out.topic = TopicName(text(topic.clone()));
        for partition in partitions {
            let (code, message) = if request.election_type != PREFERRED {
                (
                    ResponseError::InvalidRequest.code(),
                    Some(
                        "unclean leader election is not supported: leaders come from the ISR"
                            .into(),
                    ),
                )
            } else {
                decide(
                    node,
                    MetadataRecord::ElectPreferredLeader {
                        topic: topic.clone(),
                        partition,
                    },
                )
                .await
            };
            // Asked for everything, Kafka reports only the partitions that
            // needed an election.
            if everything && code == ResponseError::ElectionNotNeeded.code() {
                continue;
            }
            let mut r = PartitionResult::default();
            r.partition_id = partition;
            r.error_code = code;
            r.error_message = message.map(text);
            out.partition_result.push(r);
        }
        if !out.partition_result.is_empty() {
            resp.replica_election_results.push(out);
        }
    }
    resp
}

/// Starts (or, with no replicas, cancels) moving partitions to new replicas.
pub async fn alter_partition_reassignments(
    node: &Node,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut resp = AlterPartitionReassignmentsResponse::default();
    resp.allow_replication_factor_change = request.allow_replication_factor_change;
    if !authorize::on_cluster(node, ctx, Operation::Alter) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(text(NOT_ALLOWED));
        return resp;
    }
    for t in request.topics {
        let mut out = ReassignableTopicResponse::default();
        out.name = t.name.clone();
        for p in t.partitions {
            let target: Option<Vec<i32>> = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            let current = node
                .image()
                .partition(t.name.as_str(), p.partition_index)
                .map(|p| p.replicas.len() - p.adding.len());
            let (code, message) = match (&target, current) {
                (Some(target), Some(n))
                    if !request.allow_replication_factor_change && target.len() != n =>
                {
                    (
                        ResponseError::InvalidReplicationFactor.code(),
                        Some(format!(
                            "the move would change the replication factor from {n} to {}",
                            target.len()
                        )),
                    )
                }
                _ => {
                    decide(
                        node,
                        MetadataRecord::Reassign {
                            topic: t.name.to_string(),
                            partition: p.partition_index,
                            target,
                        },
                    )
                    .await
                }
            };
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = p.partition_index;
            r.error_code = code;
            r.error_message = message.map(text);
            out.partitions.push(r);
        }
        resp.responses.push(out);
    }
    resp
}

/// Lists the moves in progress.
pub fn list_partition_reassignments(
    node: &Node,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = node.image();
    let mut resp = ListPartitionReassignmentsResponse::default();
    if !authorize::on_cluster(node, ctx, Operation::Describe) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(text(NOT_ALLOWED));
        return resp;
    }
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    for (name, topic) in &image.topics {
        let asked: Option<&Vec<i32>> = match &request.topics {
            None => None,
            Some(list) => match list.iter().find(|t| t.name.as_str() == name) {
                Some(t) => Some(&t.partition_indexes),
                None => continue,
            },
        };
        let mut out = OngoingTopicReassignment::default();
        out.name = TopicName(text(name.clone()));
        for (i, p) in topic.partitions.iter().enumerate() {
            let i = i as i32;
            if asked.is_some_and(|a| !a.contains(&i)) {
                continue;
            }
            if p.adding.is_empty() && p.removing.is_empty() {
                continue;
            }
            let mut r = OngoingPartitionReassignment::default();
            r.partition_index = i;
            r.replicas = ids(&p.replicas);
            r.adding_replicas = ids(&p.adding);
            r.removing_replicas = ids(&p.removing);
            out.partitions.push(r);
        }
        if !out.partitions.is_empty() {
            resp.topics.push(out);
        }
    }
    resp
}
