//! Produce: append each partition's batch to its log.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::errors::partition_error;
use super::text;
use crate::node::Node;

/// Appends every partition's records; `None` for acks=0, which gets no reply.
pub fn produce(node: &Arc<Node>, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks = req.acks;
    let valid_acks = matches!(acks, -1..=1);
    if req.transactional_id.is_some() {
        tracing::warn!("transactional produce refused: transactions are not supported yet");
    }
    let mut resp = ProduceResponse::default();
    for topic in req.topic_data {
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        for part in topic.partition_data {
            let mut r = PartitionProduceResponse::default();
            r.index = part.index;
            r.base_offset = -1;
            r.log_append_time_ms = -1;
            r.log_start_offset = -1;
            let outcome = if !valid_acks {
                Err((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks={acks} is not 0, 1 or -1"),
                ))
            } else if req.transactional_id.is_some() {
                Err((
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "transactions are not supported yet".to_string(),
                ))
            } else {
                append(node, topic.name.as_str(), part.index, part.records)
            };
            match outcome {
                Ok(a) => {
                    r.base_offset = a.base_offset;
                    r.log_start_offset = a.log_start_offset;
                }
                Err((code, message)) => {
                    tracing::debug!(topic = %topic.name.as_str(), partition = part.index, %message, "produce refused");
                    r.error_code = code.code();
                    r.error_message = Some(text(message));
                }
            }
            out.partition_responses.push(r);
        }
        resp.responses.push(out);
    }
    (acks != 0).then_some(resp)
}

fn append(
    node: &Node,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
) -> Result<crate::partition::Appended, (ResponseError, String)> {
    let p = node.topics.partition(topic, partition).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        )
    })?;
    let Some(records) = records else {
        return Err((ResponseError::InvalidRecord, "no records".to_string()));
    };
    // Offsets and the leader epoch are written into the batch header in
    // place; the rest of the client's bytes are stored as sent.
    let mut records = bytes::BytesMut::from(records);
    p.append(&mut records).map_err(|e| {
        let code = partition_error(&e);
        if code == ResponseError::KafkaStorageError {
            tracing::error!(topic, partition, error = %e, "append failed");
        }
        (code, e.to_string())
    })
}
