//! Produce: the request's batches to the replica manager, its outcomes back.

use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::errors::produce_error;
use super::text;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::replica_manager::produce::{Produce, TopicWrites, Write};

/// Appends every partition's records (see `replica_manager::produce`);
/// `None` for acks=0, which gets no reply.
pub async fn produce(
    node: &Node,
    _ctx: &RequestContext,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let answered = request.acks != 0;
    let mut resp = ProduceResponse::default();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        resp.responses.push(out);
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
    let indexes: Vec<Vec<i32>> = topics
        .iter()
        .map(|t| t.writes.iter().map(|w| w.partition).collect())
        .collect();
    let produced = node
        .replicas
        .produce(Produce {
            acks: request.acks,
            timeout: Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0)),
            transactional: request.transactional_id.is_some(),
            topics,
        })
        .await;
    for ((out, indexes), outcomes) in resp.responses.iter_mut().zip(indexes).zip(produced) {
        for (index, outcome) in indexes.into_iter().zip(outcomes) {
            let mut r = PartitionProduceResponse::default();
            r.index = index;
            match outcome {
                Ok(a) => {
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
                    r.base_offset = -1;
                    r.log_append_time_ms = -1;
                    r.log_start_offset = -1;
                    r.error_code = code.code();
                    r.error_message = Some(text(e.to_string()));
                }
            }
            out.partition_responses.push(r);
        }
    }
    answered.then_some(resp)
}
