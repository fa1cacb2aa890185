//! Produce: append each partition's batch to its log.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::errors::partition_error;
use super::text;
use crate::node::Node;
use crate::partition::{Appended, Partition, Replication};

/// Appends every partition's records; `None` for acks=0, which gets no reply.
/// With acks=-1 the answer waits until the in-sync replicas hold every
/// partition's batch (the high watermarks pass them), within the request's
/// timeout; the partitions are awaited together, and each is answered as
/// soon as its write is replicated or its leadership ends.
pub async fn produce(node: &Arc<Node>, req: ProduceRequest) -> Option<ProduceResponse> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
    let acks = req.acks;
    let valid_acks = matches!(acks, -1..=1);
    if req.transactional_id.is_some() {
        tracing::warn!("transactional produce refused: transactions are not supported yet");
    }
    let mut resp = ProduceResponse::default();
    // Where each acks=all answer comes from, once replicated.
    let mut held = Vec::new();
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
                append(node, topic.name.as_str(), part.index, part.records, acks)
            };
            match outcome {
                Ok((p, a)) => {
                    if acks == -1 {
                        held.push((resp.responses.len(), out.partition_responses.len(), p, a));
                    }
                    r.base_offset = a.base_offset;
                    r.log_start_offset = a.log_start_offset;
                    r.log_append_time_ms = a.log_append_time;
                }
                Err((code, message)) => refuse(&mut r, topic.name.as_str(), code, message),
            }
            out.partition_responses.push(r);
        }
        resp.responses.push(out);
    }
    let waits = held
        .iter()
        .map(|(_, _, p, a)| await_isr(node, p, *a, deadline));
    let outcomes = futures_util::future::join_all(waits).await;
    for ((t, i, p, _), outcome) in held.iter().zip(outcomes) {
        if let Err((code, message)) = outcome {
            let r = &mut resp.responses[*t].partition_responses[*i];
            r.base_offset = -1;
            r.log_start_offset = -1;
            refuse(r, &p.topic, code, message);
        }
    }
    (acks != 0).then_some(resp)
}

fn refuse(r: &mut PartitionProduceResponse, topic: &str, code: ResponseError, message: String) {
    tracing::debug!(topic, partition = r.index, %message, "produce refused");
    r.error_code = code.code();
    r.error_message = Some(text(message));
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
        if let Some(in_sync) = p.in_sync().filter(|s| !s.satisfies(min)) {
            return Err((
                ResponseError::NotEnoughReplicas,
                format!(
                    "{topic}-{partition} has {} in-sync replica(s); min.insync.replicas is {min}",
                    in_sync.isr
                ),
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
/// replicated on `min.insync.replicas` when it does. A leader that lost its
/// leadership meanwhile answers at once: the client retries at the new one.
async fn await_isr(
    node: &Node,
    p: &Partition,
    appended: Appended,
    deadline: tokio::time::Instant,
) -> Result<(), (ResponseError, String)> {
    let replication = p
        .await_replication(appended.leader_epoch, appended.end_offset, deadline)
        .await;
    let min = min_insync_replicas(node, &p.topic);
    match replication {
        Replication::Done(in_sync) if in_sync.satisfies(min) => Ok(()),
        Replication::Done(in_sync) => Err((
            ResponseError::NotEnoughReplicasAfterAppend,
            format!(
                "written, but only {} replica(s) are in sync; min.insync.replicas is {min}",
                in_sync.isr
            ),
        )),
        Replication::LostLeadership => Err((
            ResponseError::NotLeaderOrFollower,
            "leadership moved while the write was being replicated".to_string(),
        )),
        Replication::Pending | Replication::TimedOut => Err((
            ResponseError::RequestTimedOut,
            "the in-sync replicas did not confirm the write in time".to_string(),
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
        .unwrap_or(node.config.min_insync_replicas)
        .max(1) as usize
}
