//! Produce: the request's batches to the replica manager, its outcomes back.

use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::errors::produce_error;
use super::{authorize, text};
use crate::log::batch;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::quota::manager::QuotaKind;
use crate::replica_manager::produce::{Produce, TopicWrites, Write};
use crate::security::acl::{Operation, ResourceType};

/// A partition's answer when the write is refused before it is tried.
fn refused(index: i32, error: ResponseError, message: &str) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    r.error_code = error.code();
    r.error_message = Some(text(message));
    r
}

/// Whether some partition's records are transactional (Kafka's
/// `RequestUtils.hasTransactionalRecords`: each entry's first batch).
fn has_transactional_records(request: &ProduceRequest) -> bool {
    request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref())
        .any(|r| batch::parse_prefix(r, 0).is_ok_and(|h| h.is_transactional()))
}

/// Appends every partition's records (see `replica_manager::produce`).
/// Transactional records need the request's transactional id, and WRITE
/// on it (else the whole request is refused with
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka does); every producer
/// needs WRITE on each topic. The request's bytes count against the
/// client's `producer_byte_rate`; the answer carries the time it must wait
/// (the caller sends no answer for acks=0 but still holds the connection).
pub async fn produce(
    node: &Node,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> ProduceResponse {
    let mut resp = ProduceResponse::default();
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref().map(|r| r.len()))
        .sum();
    resp.throttle_time_ms = super::quota_throttle(node, ctx, QuotaKind::Produce, bytes).0;
    let transaction_refused = has_transactional_records(&request)
        && request.transactional_id.as_ref().is_none_or(|id| {
            !authorize::allowed(
                node,
                ctx,
                Operation::Write,
                ResourceType::TransactionalId,
                id,
            )
        });
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut authorized = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        let refusal = if transaction_refused {
            Some((
                ResponseError::TransactionalIdAuthorizationFailed,
                "transactional records need a transactional id this client may write with",
            ))
        } else if !authorize::allowed(
            node,
            ctx,
            Operation::Write,
            ResourceType::Topic,
            &topic.name,
        ) {
            Some((
                ResponseError::TopicAuthorizationFailed,
                "not authorized to write to this topic",
            ))
        } else {
            None
        };
        if let Some((error, message)) = refusal {
            out.partition_responses = topic
                .partition_data
                .iter()
                .map(|p| refused(p.index, error, message))
                .collect();
            resp.responses.push(out);
            authorized.push(false);
            continue;
        }
        resp.responses.push(out);
        authorized.push(true);
        topics.push(TopicWrites {
            topic: topic.name.to_string(),
            // Moved, not copied: the batch is stored as the client sent it.
            writes: topic
                .partition_data
                .into_iter()
                .map(|p| Write {
                    partition: p.index,
                    records: p.records,
                })
                .collect(),
        });
    }
    // Each write's partition and size, for the answer and the per-topic
    // traffic counters.
    let indexes: Vec<Vec<(i32, usize)>> = topics
        .iter()
        .map(|t| {
            t.writes
                .iter()
                .map(|w| (w.partition, w.records.as_ref().map_or(0, |r| r.len())))
                .collect()
        })
        .collect();
    let produced = node
        .replicas
        .produce(Produce {
            acks: request.acks,
            timeout: Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0)),
            topics,
        })
        .await;
    let written = resp
        .responses
        .iter_mut()
        .zip(authorized)
        .filter_map(|(out, ok)| ok.then_some(out));
    for ((out, indexes), outcomes) in written.zip(indexes).zip(produced) {
        for ((index, size), outcome) in indexes.into_iter().zip(outcomes) {
            let mut r = PartitionProduceResponse::default();
            r.index = index;
            match outcome {
                Ok(a) => {
                    node.metrics.produced(
                        out.name.as_str(),
                        size as u64,
                        u64::try_from(a.end_offset - a.base_offset).unwrap_or(0),
                    );
                    r.base_offset = a.base_offset;
                    r.log_start_offset = a.log_start_offset;
                    r.log_append_time_ms = a.log_append_time;
                }
                Err(e) => {
                    let code = produce_error(&e);
                    if code == ResponseError::KafkaStorageError {
                        tracing::error!(topic = %out.name.as_str(), partition = index, error = %e, "append failed");
                    } else {
                        tracing::debug!(topic = %out.name.as_str(), partition = index, error = %e, "produce refused");
                    }
                    r = refused(index, code, &e.to_string());
                }
            }
            out.partition_responses.push(r);
        }
    }
    resp
}
