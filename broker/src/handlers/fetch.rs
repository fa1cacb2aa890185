//! Fetch: the request to the replica manager (see
//! `replica_manager::fetch`), its records and positions back, through the
//! fetcher's session when it has one (see `fetch_session`).

use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize;
use super::errors::replica_error;
use super::leader_hint::{self, LeaderHints};
use crate::clock::now_ms;
use crate::fetch_session::session::{
    FetchSession, Forgotten, Named, PartitionAnswer, SessionTopic,
};
use crate::fetch_session::{Context, FetchMetadata};
use crate::log::file_slice::FileSlice;
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

/// Whether each topic may be fetched: a broker copying partitions needs
/// CLUSTER_ACTION on the cluster, a consumer READ on the topic. A topic id
/// this broker does not know is left to the replica manager, which
/// answers UNKNOWN_TOPIC_ID.
fn authorized(node: &Node, ctx: &RequestContext, topics: &[Wanted], follower: bool) -> Vec<bool> {
    if follower {
        let ok = authorize::on_cluster(node, ctx, Operation::ClusterAction);
        return vec![ok; topics.len()];
    }
    let image = node.image();
    topics
        .iter()
        .map(|(topic, _)| {
            let name = match topic {
                SessionTopic::Name(name) => name.clone(),
                SessionTopic::Id(id) => match image.topic_name(*id) {
                    Some(name) => name.to_string(),
                    None => return true,
                },
            };
            authorize::allowed(node, ctx, Operation::Read, ResourceType::Topic, &name)
        })
        .collect()
}

/// A topic's partitions a fetch reads, in order.
type Wanted = (SessionTopic, Vec<FetchPosition>);

/// The partitions a fetch names, and those it forgets, as its session
/// keeps them (topics by id from v13, KIP-516).
fn named(request: &FetchRequest, by_id: bool) -> (Vec<Named>, Vec<Forgotten>) {
    let topic = |name: &str, id| {
        if by_id {
            SessionTopic::Id(id)
        } else {
            SessionTopic::Name(name.to_string())
        }
    };
    let named = request
        .topics
        .iter()
        .flat_map(|t| {
            let topic = topic(t.topic.as_str(), t.topic_id);
            t.partitions.iter().map(move |p| {
                (
                    topic.clone(),
                    FetchPosition {
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        current_leader_epoch: p.current_leader_epoch,
                        last_fetched_epoch: p.last_fetched_epoch,
                        max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    },
                )
            })
        })
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let topic = topic(t.topic.as_str(), t.topic_id);
            t.partitions.iter().map(move |p| (topic.clone(), *p))
        })
        .collect();
    (named, forgotten)
}

/// Partitions in order, grouped by topic where consecutive ones share it,
/// as a response lists them.
fn by_topic(partitions: &[Named]) -> Vec<Wanted> {
    let mut topics: Vec<Wanted> = Vec::new();
    for (topic, position) in partitions {
        match topics.last_mut() {
            Some((last, positions)) if last == topic => positions.push(*position),
            _ => topics.push((topic.clone(), vec![*position])),
        }
    }
    topics
}

/// The session a fetch is served in.
enum Session {
    /// None: everything is sent.
    Sessionless,
    /// One made of this full fetch's partitions.
    New,
    /// An incremental fetch's, as it left it.
    Existing(FetchSession),
}

/// What one partition answers, before the session picks what is sent.
struct Answer {
    data: PartitionData,
    records: FileSlice,
}

impl Answer {
    /// What the session looks at.
    fn summary(&self) -> PartitionAnswer {
        PartitionAnswer {
            records: self.records.len(),
            high_watermark: self.data.high_watermark,
            log_start_offset: self.data.log_start_offset,
            failed: self.data.error_code != 0 || self.data.diverging_epoch.epoch >= 0,
        }
    }
}

/// Answers a fetch, full or incremental (KIP-227, see `fetch_session`).
/// The records stay in their files: the response holds placeholders for
/// them, which the frame splices out (see `protocol::frame`).
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
    let meta = FetchMetadata {
        session_id: request.session_id,
        epoch: request.session_epoch,
        follower: replica.is_some(),
        uses_topic_ids: ctx.api_version >= 13,
    };
    let (named, forgotten) = named(&request, meta.uses_topic_ids);
    let mut resp = FetchResponse::default();
    let (partitions, session) = match node.fetch_sessions.open(&meta, named, &forgotten, now_ms()) {
        Context::Refused(error) => {
            resp.error_code = error.code();
            return (resp, Placeholders::default());
        }
        Context::Full {
            create: false,
            partitions,
        } => (partitions, Session::Sessionless),
        Context::Full {
            create: true,
            partitions,
        } => (partitions, Session::New),
        Context::Incremental(session) => {
            let partitions = session
                .partitions
                .iter()
                .map(|p| (p.topic.clone(), p.position))
                .collect();
            (partitions, Session::Existing(session))
        }
    };
    let topics = by_topic(&partitions);
    let answers = read(node, ctx, &params, &topics).await;
    let bytes: usize = answers.iter().map(|a| a.records.len()).sum();
    let throttled = params.replica.is_none() && throttle_consumer(node, ctx, &mut resp, bytes);
    let summaries: Vec<PartitionAnswer> = answers.iter().map(Answer::summary).collect();
    let sent = match session {
        Session::Sessionless => vec![true; answers.len()],
        // Made unless the answer is held back.
        Session::New => {
            if !throttled {
                resp.session_id =
                    node.fetch_sessions
                        .create(&meta, partitions, &summaries, now_ms());
            }
            vec![true; answers.len()]
        }
        Session::Existing(session) => {
            resp.session_id = session.id;
            node.fetch_sessions.respond(session, &summaries, !throttled)
        }
    };
    let mut held = Placeholders::default();
    if throttled {
        return (resp, held);
    }
    let mut answers = answers.into_iter().zip(sent);
    for (topic, positions) in &topics {
        let mut out = FetchableTopicResponse::default();
        let mut size = 0;
        match topic {
            SessionTopic::Name(name) => out.topic = TopicName(StrBytes::from_string(name.clone())),
            SessionTopic::Id(id) => out.topic_id = *id,
        }
        for (answer, send) in answers.by_ref().take(positions.len()) {
            if send {
                let Answer { mut data, records } = answer;
                size += records.len();
                data.records = Some(held.hold(records));
                out.partitions.push(data);
            }
        }
        if size > 0 {
            consumed(node, &out, size);
        }
        if !out.partitions.is_empty() {
            resp.responses.push(out);
        }
    }
    if ctx.api_version >= leader_hint::FETCH_LEADER_SINCE && resp.responses.iter().any(refused) {
        let hints = LeaderHints::new(node.image(), &ctx.listener);
        name_leaders(&mut resp, hints, ctx.api_version);
    }
    (resp, held)
}

/// Whether some partition of `t` was refused for leadership.
fn refused(t: &FetchableTopicResponse) -> bool {
    t.partitions
        .iter()
        .any(|p| leader_hint::wanted(p.error_code))
}

/// Fills the current leader of each partition refused for leadership
/// (KIP-951), and from v16 the leaders' addresses.
fn name_leaders(resp: &mut FetchResponse, mut hints: LeaderHints, version: i16) {
    for t in &mut resp.responses {
        if !refused(t) {
            continue;
        }
        let name = if t.topic.is_empty() {
            hints.topic_name(t.topic_id)
        } else {
            Some(t.topic.to_string())
        };
        let Some(name) = name else { continue };
        for p in &mut t.partitions {
            if leader_hint::wanted(p.error_code) {
                let (leader, epoch) = hints.leader(&name, p.partition_index);
                p.current_leader.leader_id = BrokerId(leader);
                p.current_leader.leader_epoch = epoch;
            }
        }
    }
    if version >= leader_hint::FETCH_ENDPOINTS_SINCE {
        resp.node_endpoints = hints
            .endpoints()
            .map(|e| {
                let mut n = NodeEndpoint::default();
                n.node_id = BrokerId(e.node_id);
                n.host = super::text(e.host);
                n.port = e.port;
                n.rack = e.rack.map(super::text);
                n
            })
            .collect();
    }
}

/// Reads every partition of `topics` (those not authorized answer
/// TOPIC_AUTHORIZATION_FAILED), in order.
async fn read(
    node: &Node,
    ctx: &RequestContext,
    params: &FetchParams,
    topics: &[Wanted],
) -> Vec<Answer> {
    let authorized = authorized(node, ctx, topics, params.replica.is_some());
    let targets: Vec<(TopicRef, Vec<FetchPosition>)> = topics
        .iter()
        .zip(&authorized)
        .filter(|(_, ok)| **ok)
        .map(|((topic, positions), _)| {
            let topic = match topic {
                SessionTopic::Name(name) => TopicRef::Name(name.clone()),
                SessionTopic::Id(id) => TopicRef::Id(*id),
            };
            (topic, positions.clone())
        })
        .collect();
    // A fetch refused everything answers at once rather than long-polling
    // over nothing.
    let fetched = if targets.is_empty() {
        Vec::new()
    } else {
        node.replicas.fetch(params, &targets).await
    };
    let mut fetched = fetched.into_iter();
    let mut answers = Vec::new();
    for ((_, positions), ok) in topics.iter().zip(authorized) {
        let partitions = if ok { fetched.next() } else { None };
        let Some(partitions) = partitions else {
            for asked in positions {
                let mut data = unanswered(asked.partition);
                data.error_code = ResponseError::TopicAuthorizationFailed.code();
                answers.push(Answer {
                    data,
                    records: FileSlice::default(),
                });
            }
            continue;
        };
        for (asked, f) in positions.iter().zip(partitions) {
            let mut d = unanswered(asked.partition);
            let mut records = FileSlice::default();
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
            // Kafka answers a consumer's error without offsets; Gregor's
            // followers read the leader's log start and high watermark off
            // OFFSET_OUT_OF_RANGE to start over from.
            let marks = f
                .watermarks
                .filter(|_| f.outcome.is_ok() || params.replica.is_some());
            if let Some(marks) = marks {
                d.high_watermark = marks.high_watermark;
                d.last_stable_offset = marks.last_stable_offset;
                d.log_start_offset = marks.log_start_offset;
            }
            match f.outcome {
                Ok(FetchedData::Records(slice)) => records = slice,
                Ok(FetchedData::Diverging { epoch, end_offset }) => {
                    d.diverging_epoch.epoch = epoch;
                    d.diverging_epoch.end_offset = end_offset;
                }
                Err(e) => d.error_code = replica_error(&e).code(),
            }
            answers.push(Answer { data: d, records });
        }
    }
    answers
}

/// A partition's answer before its offsets are known.
fn unanswered(partition: i32) -> PartitionData {
    let mut d = PartitionData::default();
    d.partition_index = partition;
    d.high_watermark = -1;
    d.last_stable_offset = -1;
    d.log_start_offset = -1;
    d
}

/// Counts a consumer's fetched `bytes` against its `consumer_byte_rate`.
/// A fetch that takes it over its quota is answered empty with the time
/// to wait, and its bytes are not counted, as in Kafka: then `true`.
fn throttle_consumer(
    node: &Node,
    ctx: &RequestContext,
    resp: &mut FetchResponse,
    bytes: usize,
) -> bool {
    let (throttle, key) = super::quota_throttle(node, ctx, QuotaKind::Fetch, bytes);
    resp.throttle_time_ms = throttle;
    if throttle > 0 {
        if let Some(key) = key {
            node.quotas.unrecord(&key, bytes as u64);
        }
        return true;
    }
    false
}

/// Counts `sent` record bytes of topic `t` in the consumed metrics.
fn consumed(node: &Node, t: &FetchableTopicResponse, sent: usize) {
    // Named by id from v13: the name is looked up only for topics that
    // sent something.
    if t.topic.is_empty() {
        if let Some(name) = node.image().topic_name(t.topic_id) {
            node.metrics.consumed(name, sent as u64);
        }
    } else {
        node.metrics.consumed(t.topic.as_str(), sent as u64);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::leader_hint::tests::{broker, image};
    use super::*;

    fn answer(topic: &str, errors: &[ResponseError]) -> FetchableTopicResponse {
        let mut t = FetchableTopicResponse::default();
        t.topic = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = errors
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut p = unanswered(i as i32);
                p.error_code = e.code();
                p
            })
            .collect();
        t
    }

    #[test]
    fn partitions_refused_for_leadership_name_the_leader_and_v16_its_address() {
        use ResponseError as E;
        let image = Arc::new(image(
            vec![broker(1, "CLIENTS", false), broker(2, "CLIENTS", false)],
            &[(1, 3), (2, 4), (2, 5)],
        ));
        // (version, whether the addresses are listed)
        for (version, listed) in [(12, false), (15, false), (16, true), (17, true)] {
            let mut resp = FetchResponse::default();
            resp.responses = vec![answer(
                "t",
                &[
                    E::NotLeaderOrFollower,
                    E::OffsetOutOfRange,
                    E::FencedLeaderEpoch,
                ],
            )];
            name_leaders(
                &mut resp,
                LeaderHints::new(image.clone(), "CLIENTS"),
                version,
            );
            let leaders: Vec<(i32, i32)> = resp.responses[0]
                .partitions
                .iter()
                .map(|p| (p.current_leader.leader_id.0, p.current_leader.leader_epoch))
                .collect();
            // The partition refused for another reason keeps the default.
            assert_eq!(leaders, vec![(1, 3), (-1, -1), (2, 5)], "v{version}");
            let nodes: Vec<(i32, String, i32)> = resp
                .node_endpoints
                .iter()
                .map(|n| (n.node_id.0, n.host.to_string(), n.port))
                .collect();
            let want = if listed {
                vec![
                    (1, "host-1".to_string(), 9001),
                    (2, "host-2".to_string(), 9002),
                ]
            } else {
                vec![]
            };
            assert_eq!(nodes, want, "v{version}");
        }
    }
}
