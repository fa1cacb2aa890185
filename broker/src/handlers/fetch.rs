//! Fetch: the request to the replica manager (see
//! `replica_manager::fetch`), its records and positions back.

use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use kafka_protocol::ResponseError;

use super::authorize;
use super::errors::replica_error;
use crate::node::Node;
use crate::protocol::frame::Placeholders;
use crate::protocol::RequestContext;
use crate::quota::manager::QuotaKind;
use crate::replica_manager::fetch::{
    FetchParams, FetchPosition, FetchedData, Isolation, LeaderThrottle,
};
use crate::replica_manager::TopicRef;
use crate::replication::throttle::Side;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's `isolation_level` for read_committed.
const READ_COMMITTED: i8 = 1;

/// Whether each requested topic may be fetched: a broker copying
/// partitions needs CLUSTER_ACTION on the cluster, a consumer READ on the
/// topic. A topic id this broker does not know is left to the replica
/// manager, which answers UNKNOWN_TOPIC_ID.
fn authorized(
    node: &Node,
    ctx: &RequestContext,
    request: &FetchRequest,
    follower: bool,
) -> Vec<bool> {
    if follower {
        let ok = authorize::on_cluster(node, ctx, Operation::ClusterAction);
        return vec![ok; request.topics.len()];
    }
    let image = node.image();
    request
        .topics
        .iter()
        .map(|t| {
            let name = if ctx.api_version >= 13 {
                match image.topic_name(t.topic_id) {
                    Some(name) => name.to_string(),
                    None => return true,
                }
            } else {
                t.topic.to_string()
            };
            authorize::allowed(node, ctx, Operation::Read, ResourceType::Topic, &name)
        })
        .collect()
}

/// Answers a fetch (no fetch sessions: session id 0 tells clients to send
/// full requests). The records stay in their files: the response holds
/// placeholders for them, which the frame splices out (see
/// `protocol::frame`).
pub async fn fetch(
    node: &Node,
    ctx: &RequestContext,
    request: FetchRequest,
) -> (FetchResponse, Placeholders) {
    // A broker copying partitions names itself (v15+ in replica_state).
    let replica = [request.replica_id.0, request.replica_state.replica_id.0]
        .into_iter()
        .find(|id| *id >= 0);
    let mut params = FetchParams {
        replica,
        isolation: if request.isolation_level == READ_COMMITTED {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        },
        // A follower's fetch is served under this leader's replication
        // throttles, when some partition is listed for them.
        throttle: replica.and_then(|_| {
            let throttles = node.replication_quotas.throttles(&node.image());
            (!throttles.none_listed(Side::Leader)).then(|| LeaderThrottle {
                throttles,
                quotas: node.replication_quotas.clone(),
            })
        }),
        max_wait: Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)),
        min_bytes: usize::try_from(request.min_bytes).unwrap_or(0),
        max_bytes: usize::try_from(request.max_bytes).unwrap_or(0),
    };
    if params.replica.is_none() {
        // A consumer's fetch is bounded by what its quota's window admits.
        let image = node.image();
        let user = super::quota_user(ctx);
        if let Some(most) =
            node.quotas
                .max_in_window(&image.quotas, QuotaKind::Fetch, user, &ctx.client_id)
        {
            params.max_bytes = params
                .max_bytes
                .min(usize::try_from(most).unwrap_or(usize::MAX));
        }
    }
    let authorized = authorized(node, ctx, &request, params.replica.is_some());
    let targets: Vec<(TopicRef, Vec<FetchPosition>)> = request
        .topics
        .iter()
        .zip(&authorized)
        .filter(|(_, ok)| **ok)
        .map(|(t, _)| {
            // Topics are named by id from v13 (KIP-516).
            let topic = if ctx.api_version >= 13 {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.topic.to_string())
            };
            let positions = t
                .partitions
                .iter()
                .map(|p| FetchPosition {
                    partition: p.partition,
                    fetch_offset: p.fetch_offset,
                    current_leader_epoch: p.current_leader_epoch,
                    last_fetched_epoch: p.last_fetched_epoch,
                    max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                })
                .collect();
            (topic, positions)
        })
        .collect();
    // A fetch refused everything answers at once rather than long-polling
    // over nothing.
    let fetched = if targets.is_empty() && !authorized.is_empty() {
        Vec::new()
    } else {
        node.replicas.fetch(&params, &targets).await
    };
    let mut fetched = fetched.into_iter();
    let mut resp = FetchResponse::default();
    let mut held = Placeholders::default();
    // Record bytes per topic, in the response's order.
    let mut sizes = Vec::with_capacity(request.topics.len());
    for (topic, ok) in request.topics.iter().zip(authorized) {
        let mut out = FetchableTopicResponse::default();
        out.topic = topic.topic.clone();
        out.topic_id = topic.topic_id;
        let partitions = if ok { fetched.next() } else { None };
        let Some(partitions) = partitions else {
            for asked in &topic.partitions {
                let mut d = PartitionData::default();
                d.partition_index = asked.partition;
                d.high_watermark = -1;
                d.last_stable_offset = -1;
                d.log_start_offset = -1;
                d.error_code = ResponseError::TopicAuthorizationFailed.code();
                out.partitions.push(d);
            }
            resp.responses.push(out);
            sizes.push(0);
            continue;
        };
        let mut size = 0;
        for (asked, f) in topic.partitions.iter().zip(partitions) {
            let mut d = PartitionData::default();
            d.partition_index = asked.partition;
            d.high_watermark = -1;
            d.last_stable_offset = -1;
            d.log_start_offset = -1;
            if params.isolation == Isolation::ReadCommitted {
                d.aborted_transactions = Some(
                    f.aborted
                        .iter()
                        .map(|a| {
                            let mut t = AbortedTransaction::default();
                            t.producer_id = a.producer_id.into();
                            t.first_offset = a.first_offset;
                            t
                        })
                        .collect(),
                );
            }
            if let Some(marks) = f.watermarks {
                d.high_watermark = marks.high_watermark;
                d.last_stable_offset = marks.last_stable_offset;
                d.log_start_offset = marks.log_start_offset;
            }
            match f.outcome {
                Ok(FetchedData::Records(records)) => {
                    size += records.len();
                    d.records = Some(held.hold(records));
                }
                Ok(FetchedData::Diverging { epoch, end_offset }) => {
                    d.diverging_epoch.epoch = epoch;
                    d.diverging_epoch.end_offset = end_offset;
                }
                Err(e) => d.error_code = replica_error(&e).code(),
            }
            out.partitions.push(d);
        }
        resp.responses.push(out);
        sizes.push(size);
    }
    if params.replica.is_none() && throttle_consumer(node, ctx, &mut resp, &sizes) {
        held = Placeholders::default();
    }
    (resp, held)
}

/// Counts a consumer's fetched bytes (`sizes`: per topic of the response)
/// against its `consumer_byte_rate`. A fetch that takes it over its quota
/// is answered empty with the time to wait, and its bytes are not
/// counted, as in Kafka: then `true`.
fn throttle_consumer(
    node: &Node,
    ctx: &RequestContext,
    resp: &mut FetchResponse,
    sizes: &[usize],
) -> bool {
    let bytes: usize = sizes.iter().sum();
    let (throttle, key) = super::quota_throttle(node, ctx, QuotaKind::Fetch, bytes);
    resp.throttle_time_ms = throttle;
    if throttle > 0 {
        if let Some(key) = key {
            node.quotas.unrecord(&key, bytes as u64);
        }
        resp.responses.clear();
        return true;
    }
    for (t, &sent) in resp.responses.iter().zip(sizes) {
        if sent == 0 {
            continue;
        }
        // Named by id from v13: the name is looked up only for topics
        // that sent something.
        if t.topic.is_empty() {
            if let Some(name) = node.image().topic_name(t.topic_id) {
                node.metrics.consumed(name, sent as u64);
            }
        } else {
            node.metrics.consumed(t.topic.as_str(), sent as u64);
        }
    }
    false
}
