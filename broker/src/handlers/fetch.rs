//! Fetch: read stored batches, long-polling until `min_bytes` are available
//! or `max_wait_ms` passes. Waiting costs nothing: the task sleeps until one
//! of the requested partitions changes.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::sync::watch;

use super::errors::partition_error;
use crate::node::Node;
use crate::partition::epochs::ReplicaFetch;
use crate::protocol::RequestContext;

/// Answers a fetch (no fetch sessions: session id 0 tells clients to send
/// full requests).
pub async fn fetch(node: &Arc<Node>, ctx: &RequestContext, req: FetchRequest) -> FetchResponse {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let mut changes = watch_partitions(node, ctx, &req);
    loop {
        // Mark the current state as seen before reading, so a change that
        // lands during the read wakes the wait below.
        for c in &mut changes {
            c.borrow_and_update();
        }
        let (resp, bytes, errors) = read_once(node, ctx, &req);
        if bytes >= min_bytes || errors || tokio::time::Instant::now() >= deadline {
            return resp;
        }
        if changes.is_empty() {
            tokio::time::sleep_until(deadline).await;
            return read_once(node, ctx, &req).0;
        }
        let any =
            futures_util::future::select_all(changes.iter_mut().map(|c| Box::pin(c.changed())));
        tokio::select! {
            (changed, _, _) = any => {
                if changed.is_err() {
                    return resp;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return read_once(node, ctx, &req).0;
            }
        }
    }
}

/// Change signals of the requested partitions this broker stores.
fn watch_partitions(
    node: &Node,
    ctx: &RequestContext,
    req: &FetchRequest,
) -> Vec<watch::Receiver<u64>> {
    req.topics
        .iter()
        .filter_map(|topic| resolve(node, ctx, topic).0.map(|name| (name, topic)))
        .flat_map(|(name, topic)| {
            topic
                .partitions
                .iter()
                .filter_map(move |part| node.topics.partition(&name, part.partition))
        })
        .map(|p| p.subscribe())
        .collect()
}

/// One pass over the requested partitions: the response, the bytes it
/// carries, and whether any partition failed.
fn read_once(
    node: &Node,
    ctx: &RequestContext,
    req: &FetchRequest,
) -> (FetchResponse, usize, bool) {
    let mut resp = FetchResponse::default();
    // A broker copying partitions names itself (v15+ in replica_state).
    let follower = [req.replica_id.0, req.replica_state.replica_id.0]
        .into_iter()
        .find(|id| *id >= 0);
    let mut remaining = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    for topic in &req.topics {
        let (name, known) = resolve(node, ctx, topic);
        let mut out = FetchableTopicResponse::default();
        out.topic = topic.topic.clone();
        out.topic_id = topic.topic_id;
        for part in &topic.partitions {
            let mut d = PartitionData::default();
            d.partition_index = part.partition;
            d.high_watermark = -1;
            d.last_stable_offset = -1;
            d.log_start_offset = -1;
            if req.isolation_level == 1 {
                d.aborted_transactions = Some(Vec::new());
            }
            let partition = match name.as_deref() {
                Some(n) => node.replica(n, part.partition),
                None => Err(ResponseError::UnknownTopicOrPartition),
            };
            match partition {
                Err(code) => {
                    errors = true;
                    d.error_code = if known {
                        code.code()
                    } else if ctx.api_version >= 13 {
                        ResponseError::UnknownTopicId.code()
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                }
                Ok(p) => {
                    let limit = (part.partition_max_bytes.max(0) as usize).min(remaining);
                    let verdict = match follower {
                        Some(f) => p
                            .replica_fetch(
                                f,
                                part.current_leader_epoch,
                                part.fetch_offset,
                                part.last_fetched_epoch,
                                node.config.replica_lag_time_max_ms as i64,
                            )
                            .map(|(verdict, change)| {
                                if let Some(change) = change {
                                    node.isr.propose(
                                        &node.quorum,
                                        node.config.node_id,
                                        &p.topic,
                                        p.index,
                                        change,
                                    );
                                }
                                verdict
                            }),
                        None => p
                            .check_leader(part.current_leader_epoch)
                            .map(|()| ReplicaFetch::Serve),
                    };
                    let read = verdict.and_then(|v| match v {
                        ReplicaFetch::Serve => p
                            .read(part.fetch_offset, limit, total == 0, follower.is_some())
                            .map(Some),
                        ReplicaFetch::Diverging { epoch, end_offset } => {
                            d.diverging_epoch.epoch = epoch;
                            d.diverging_epoch.end_offset = end_offset;
                            Ok(None)
                        }
                    });
                    let marks = p.watermarks();
                    d.high_watermark = marks.high_watermark;
                    d.last_stable_offset = marks.high_watermark;
                    d.log_start_offset = marks.log_start_offset;
                    match read {
                        Ok(Some((records, _))) => {
                            remaining = remaining.saturating_sub(records.len());
                            total += records.len();
                            d.records = Some(records);
                        }
                        Ok(None) => errors = true,
                        Err(e) => {
                            errors = true;
                            d.error_code = partition_error(&e).code();
                        }
                    }
                }
            }
            out.partitions.push(d);
        }
        resp.responses.push(out);
    }
    (resp, total, errors)
}

/// The topic's name, from the request or (v13+) from its id, and whether
/// the topic exists.
fn resolve(node: &Node, ctx: &RequestContext, topic: &FetchTopic) -> (Option<String>, bool) {
    if ctx.api_version >= 13 {
        match node.topics.get_by_id(topic.topic_id) {
            Some(t) => (Some(t.name.clone()), true),
            None => (None, false),
        }
    } else {
        let name = topic.topic.as_str().to_string();
        let known = node.topics.get(&name).is_some();
        (Some(name), known)
    }
}
