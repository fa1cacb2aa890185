//! WriteTxnMarkers: a transaction coordinator (on any broker) asks this
//! broker, leading the partitions, to end a producer's transaction on
//! them with COMMIT or ABORT markers (see `replica_manager::markers`).
//! Only brokers may: the request needs CLUSTER_ACTION on the cluster.

use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;

use super::authorize;
use super::errors::produce_error;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::replica_manager::markers::{MarkersWritten, TxnMarker};
use crate::security::acl::Operation;

/// How long a marker waits for the in-sync replicas: Kafka's default
/// `request.timeout.ms`, which its broker applies to marker writes.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the markers of a request and returns each partition's outcome,
/// in the request's order.
/// On the `__consumer_offsets` partitions whose marker is written and
/// replicated, the group coordinator makes the producer's transactional
/// offset commits count (COMMIT) or drops them (ABORT), as Kafka's
/// `onTransactionCompleted`.
pub async fn write_markers(node: &Node, markers: &[TxnMarker]) -> MarkersWritten {
    let written = node.replicas.write_markers(markers, MARKER_TIMEOUT).await;
    for (marker, topics) in markers.iter().zip(&written) {
        for ((topic, partitions), outcomes) in marker.topics.iter().zip(topics) {
            if topic != OFFSETS_TOPIC {
                continue;
            }
            for (index, outcome) in partitions.iter().zip(outcomes) {
                if outcome.is_ok() {
                    node.groups
                        .end_transaction(*index, marker.producer_id, marker.commit);
                }
            }
        }
    }
    written
}

/// The markers as the replica manager takes them.
fn markers_of(request: &WriteTxnMarkersRequest) -> Vec<TxnMarker> {
    request
        .markers
        .iter()
        .map(|m| TxnMarker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            commit: m.transaction_result,
            transaction_version: m.transaction_version,
            topics: m
                .topics
                .iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect(),
        })
        .collect()
}

/// The response: every partition's outcome, or `refused` for all.
fn response(
    request: &WriteTxnMarkersRequest,
    outcome: impl Fn(usize, usize, usize) -> i16,
) -> WriteTxnMarkersResponse {
    let mut resp = WriteTxnMarkersResponse::default();
    for (m, marker) in request.markers.iter().enumerate() {
        let mut out = WritableTxnMarkerResult::default();
        out.producer_id = marker.producer_id;
        for (t, topic) in marker.topics.iter().enumerate() {
            let mut topic_out = WritableTxnMarkerTopicResult::default();
            topic_out.name = topic.name.clone();
            for (i, partition) in topic.partition_indexes.iter().enumerate() {
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = *partition;
                p.error_code = outcome(m, t, i);
                topic_out.partitions.push(p);
            }
            out.topics.push(topic_out);
        }
        resp.markers.push(out);
    }
    resp
}

/// Answers WriteTxnMarkers.
pub async fn write_txn_markers(
    node: &Node,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    if !authorize::on_cluster(node, ctx, Operation::ClusterAction) {
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        return response(&request, |_, _, _| denied);
    }
    let written = write_markers(node, &markers_of(&request)).await;
    response(&request, |m, t, i| match &written[m][t][i] {
        Ok(_) => 0,
        Err(e) => {
            tracing::debug!(error = %e, "transaction marker not written");
            produce_error(e).code()
        }
    })
}
