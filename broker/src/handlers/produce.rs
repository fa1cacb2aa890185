//! Produce: append each partition's batch to its log.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::errors::partition_error;
use super::text;
use crate::node::Node;
use crate::partition::{Appended, Partition};

/// Appends every partition's records; `None` for acks=0, which gets no reply.
/// With acks=-1 each partition's answer waits until the in-sync replicas
/// hold the batch (the high watermark passes it), within the request's
/// timeout.
pub async fn produce(node: &Arc<Node>, req: ProduceRequest) -> Option<ProduceResponse> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
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
                match append(node, topic.name.as_str(), part.index, part.records, acks) {
                    Ok((p, a)) if acks == -1 => wait_for_isr(node, &p, a, deadline).await,
                    Ok((_, a)) => Ok(a),
                    Err(e) => Err(e),
                }
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
    acks: i16,
) -> Result<(Arc<Partition>, Appended), (ResponseError, String)> {
    let p = node.replica(topic, partition).map_err(|code| {
        (
            code,
            format!("{topic}-{partition} is not led by this broker"),
        )
    })?;
    let Some(records) = records else {
        return Err((ResponseError::InvalidRecord, "no records".to_string()));
    };
    if acks == -1 {
        let min = min_insync_replicas(node, topic);
        if let Some(isr) = p.isr_size().filter(|isr| *isr < min) {
            return Err((
                ResponseError::NotEnoughReplicas,
                format!("{topic}-{partition} has {isr} in-sync replica(s); min.insync.replicas is {min}"),
            ));
        }
    }
    // Offsets and the leader epoch are written into the batch header in
    // place; the rest of the client's bytes are stored as sent.
    let mut records = bytes::BytesMut::from(records);
    let appended = p.append(&mut records).map_err(|e| {
        let code = partition_error(&e);
        if code == ResponseError::KafkaStorageError {
            tracing::error!(topic, partition, error = %e, "append failed");
        }
        (code, e.to_string())
    })?;
    Ok((p, appended))
}

/// Waits until the high watermark passes the batch; it must still be
/// replicated on `min.insync.replicas` when it does.
async fn wait_for_isr(
    node: &Node,
    p: &Partition,
    appended: Appended,
    deadline: tokio::time::Instant,
) -> Result<Appended, (ResponseError, String)> {
    let mut hw = p.subscribe_high_watermark();
    let reached = tokio::time::timeout_at(deadline, hw.wait_for(|hw| *hw >= appended.end_offset));
    match reached.await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => {
            return Err((
                ResponseError::RequestTimedOut,
                "the in-sync replicas did not confirm the write in time".to_string(),
            ))
        }
    }
    let min = min_insync_replicas(node, &p.topic);
    match p.isr_size() {
        Some(isr) if isr >= min => Ok(appended),
        Some(isr) => Err((
            ResponseError::NotEnoughReplicasAfterAppend,
            format!("written, but only {isr} replica(s) are in sync; min.insync.replicas is {min}"),
        )),
        None => Err((
            ResponseError::NotLeaderOrFollower,
            "leadership moved while the write was being replicated".to_string(),
        )),
    }
}

/// The topic's `min.insync.replicas`, or the broker default.
fn min_insync_replicas(node: &Node, topic: &str) -> usize {
    node.topics
        .get(topic)
        .and_then(|t| {
            t.configs
                .get("min.insync.replicas")
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(node.config.log.min_insync_replicas)
        .max(1) as usize
}
