//! The transaction coordinator's APIs: AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions
//! (InitProducerId with a transactional id is in `producer`), each
//! authorized as Kafka does and translated to the coordinator in `txn`.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::ResponseError;

use super::{authorize, text};
use crate::clock::now_ms;
use crate::group::offset_records::partition_for;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::{ProducerIdEpoch, TxnState, EPOCH_BUMP_VERSION};
use crate::txn::TxnError;

/// The first AddPartitionsToTxn version with PRODUCER_FENCED (older ones
/// get INVALID_PRODUCER_EPOCH); the same for AddOffsetsToTxn and EndTxn.
const FENCED_SINCE: i16 = 2;

/// The first EndTxn and AddPartitionsToTxn version of transaction
/// version 2 (KIP-890 part 2).
const EPOCH_BUMP_SINCE: i16 = 5;

/// The transaction version an EndTxn or AddPartitionsToTxn of
/// `api_version` speaks.
fn transaction_version(api_version: i16) -> i16 {
    if api_version >= EPOCH_BUMP_SINCE {
        EPOCH_BUMP_VERSION
    } else {
        0
    }
}

/// Whether the request may write with `transactional_id`.
fn may_write(node: &Node, ctx: &RequestContext, transactional_id: &str) -> bool {
    authorize::allowed(
        node,
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    )
}

fn producer(id: ProducerId, epoch: i16) -> ProducerIdEpoch {
    ProducerIdEpoch { id: id.0, epoch }
}

fn refused(e: &TxnError, ctx: &RequestContext, transactional_id: &str) -> ResponseError {
    let code = e.code(ctx.api_version, FENCED_SINCE);
    tracing::debug!(transactional_id, peer = %ctx.client_host, error = %e, ?code, "transaction request refused");
    code
}

/// The per-partition answer of one transaction's AddPartitionsToTxn.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    code: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            let mut r = AddPartitionsToTxnTopicResult::default();
            r.name = t.name.clone();
            r.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = AddPartitionsToTxnPartitionResult::default();
                    pr.partition_index = *p;
                    pr.partition_error_code = code(t.name.as_str(), *p);
                    pr
                })
                .collect();
            r
        })
        .collect()
}

/// One transaction's partitions added (or, KIP-890's `verify_only` from
/// a partition leader, checked), the answer per partition. `version`: the
/// transaction version of the producer the partitions are added for.
async fn add_one(
    node: &Node,
    ctx: &RequestContext,
    transactional_id: &str,
    who: ProducerIdEpoch,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    if !may_write(node, ctx, transactional_id) {
        let code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return topic_results(topics, |_, _| code);
    }
    // Kafka refuses the whole request when some partition is not
    // writable or not known; the others are not attempted.
    let mut problems: BTreeMap<(String, i32), ResponseError> = BTreeMap::new();
    let image = node.image();
    for t in topics {
        let allowed = authorize::allowed(
            node,
            ctx,
            Operation::Write,
            ResourceType::Topic,
            t.name.as_str(),
        );
        for p in &t.partitions {
            let key = (t.name.to_string(), *p);
            if !allowed {
                problems.insert(key, ResponseError::TopicAuthorizationFailed);
            } else if image.partition(t.name.as_str(), *p).is_none() {
                problems.insert(key, ResponseError::UnknownTopicOrPartition);
            }
        }
    }
    if !problems.is_empty() {
        return topic_results(topics, |t, p| {
            problems
                .get(&(t.to_string(), p))
                .copied()
                .unwrap_or(ResponseError::OperationNotAttempted)
                .code()
        });
    }
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    if verify_only {
        return match node
            .txns
            .verify_partitions(transactional_id, who, &partitions)
        {
            Ok(added) => {
                let added: BTreeMap<(String, i32), bool> =
                    partitions.into_iter().zip(added).collect();
                topic_results(topics, |t, p| {
                    if added.get(&(t.to_string(), p)).copied().unwrap_or(false) {
                        0
                    } else {
                        ResponseError::TransactionAbortable.code()
                    }
                })
            }
            Err(e) => {
                let code = refused(&e, ctx, transactional_id).code();
                topic_results(topics, |_, _| code)
            }
        };
    }
    let wanted: BTreeSet<(String, i32)> = partitions.into_iter().collect();
    match node
        .txns
        .add_partitions(transactional_id, who, wanted, version)
        .await
    {
        Ok(()) => topic_results(topics, |_, _| 0),
        Err(e) => {
            let code = refused(&e, ctx, transactional_id).code();
            topic_results(topics, |_, _| code)
        }
    }
}

/// AddPartitionsToTxn: from a producer (v0-3, one transaction) or from
/// a broker verifying its producers' transactions (v4+, several,
/// CLUSTER_ACTION needed) or, from v5, adding to them for producers of
/// transaction version 2.
pub async fn add_partitions_to_txn(
    node: &Node,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut resp = AddPartitionsToTxnResponse::default();
    if ctx.api_version < 4 {
        let id = request.v3_and_below_transactional_id.to_string();
        let who = producer(
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
        );
        resp.results_by_topic_v3_and_below =
            add_one(node, ctx, &id, who, &request.v3_and_below_topics, false, 0).await;
        return resp;
    }
    if !authorize::on_cluster(node, ctx, Operation::ClusterAction) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return resp;
    }
    for t in &request.transactions {
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = t.transactional_id.clone();
        let who = producer(t.producer_id, t.producer_epoch);
        r.topic_results = add_one(
            node,
            ctx,
            t.transactional_id.as_str(),
            who,
            &t.topics,
            t.verify_only,
            transaction_version(ctx.api_version),
        )
        .await;
        resp.results_by_transaction.push(r);
    }
    resp
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the
/// transaction, so TxnOffsetCommit may write there.
pub async fn add_offsets_to_txn(
    node: &Node,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut resp = AddOffsetsToTxnResponse::default();
    let id = request.transactional_id.as_str();
    let group = request.group_id.as_str();
    let code = if !may_write(node, ctx, id) {
        ResponseError::TransactionalIdAuthorizationFailed.code()
    } else if !authorize::allowed(node, ctx, Operation::Read, ResourceType::Group, group) {
        ResponseError::GroupAuthorizationFailed.code()
    } else {
        match node
            .image()
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| t.partitions.len() as i32)
        {
            None => ResponseError::CoordinatorNotAvailable.code(),
            Some(count) => {
                let partition = (OFFSETS_TOPIC.to_string(), partition_for(group, count));
                let who = producer(request.producer_id, request.producer_epoch);
                match node
                    .txns
                    .add_partitions(id, who, BTreeSet::from([partition]), 0)
                    .await
                {
                    Ok(()) => 0,
                    Err(e) => refused(&e, ctx, id).code(),
                }
            }
        }
    };
    resp.error_code = code;
    resp
}

/// EndTxn: commit or abort; from v5 (transaction version 2) the epoch is
/// bumped and the answer carries the producer id and epoch to go on with.
pub async fn end_txn(node: &Node, ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    let mut resp = EndTxnResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    let id = request.transactional_id.as_str();
    if !may_write(node, ctx, id) {
        resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    let who = producer(request.producer_id, request.producer_epoch);
    let version = transaction_version(ctx.api_version);
    match node.txns.end_txn(id, who, request.committed, version).await {
        Ok(next) => {
            resp.producer_id = ProducerId(next.id);
            resp.producer_epoch = next.epoch;
        }
        Err(e) => resp.error_code = refused(&e, ctx, id).code(),
    }
    resp
}

/// DescribeTransactions: each id's state, where this broker coordinates
/// it; the partitions shown are those of topics the client may describe.
pub fn describe_transactions(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut resp = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut s = TransactionState::default();
        s.transactional_id = id.clone();
        s.transaction_state = text("");
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        s.transaction_start_time_ms = -1;
        if !authorize::allowed(
            node,
            ctx,
            Operation::Describe,
            ResourceType::TransactionalId,
            id.as_str(),
        ) {
            s.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            resp.transaction_states.push(s);
            continue;
        }
        match node.txns.describe(id.as_str()) {
            Ok(m) => {
                s.transaction_state = text(m.state.name());
                s.transaction_timeout_ms = m.timeout_ms;
                s.transaction_start_time_ms = m.start_ms;
                s.producer_id = ProducerId(m.producer_id);
                s.producer_epoch = m.producer_epoch;
                let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, p) in &m.partitions {
                    topics.entry(topic.clone()).or_default().push(*p);
                }
                s.topics = topics
                    .into_iter()
                    .filter(|(t, _)| {
                        authorize::visible(node, ctx, Operation::Describe, ResourceType::Topic, t)
                    })
                    .map(|(t, partitions)| {
                        let mut d = TopicData::default();
                        d.topic = TopicName(text(t));
                        d.partitions = partitions;
                        d
                    })
                    .collect();
            }
            Err(e) => s.error_code = e.code(ctx.api_version, 0).code(),
        }
        resp.transaction_states.push(s);
    }
    resp
}

/// ListTransactions: the ids this broker coordinates that the client may
/// describe, filtered by state, producer id and (v1) how long they run.
pub fn list_transactions(
    node: &Node,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut resp = ListTransactionsResponse::default();
    let known = |s: &str| (0..8).filter_map(TxnState::from_id).any(|k| k.name() == s);
    resp.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|s| !known(s.as_str()))
        .cloned()
        .collect();
    let pattern = match id_pattern(request.transactional_id_pattern.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "ListTransactions with a pattern that does not compile");
            resp.error_code = ResponseError::InvalidRegularExpression.code();
            return resp;
        }
    };
    let states: BTreeSet<&str> = request.state_filters.iter().map(|s| s.as_str()).collect();
    let producers: BTreeSet<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let now = now_ms();
    match node.txns.list() {
        Ok(all) => {
            resp.transaction_states = all
                .into_iter()
                .filter(|t| states.is_empty() || states.contains(t.meta.state.name()))
                .filter(|t| producers.is_empty() || producers.contains(&t.meta.producer_id))
                .filter(|t| {
                    pattern
                        .as_ref()
                        .is_none_or(|p| p.is_match(&t.transactional_id))
                })
                .filter(|t| {
                    request.duration_filter < 0 || now - t.meta.start_ms >= request.duration_filter
                })
                .filter(|t| {
                    authorize::visible(
                        node,
                        ctx,
                        Operation::Describe,
                        ResourceType::TransactionalId,
                        &t.transactional_id,
                    )
                })
                .map(|t| {
                    let mut s = ListedState::default();
                    s.transactional_id = TransactionalId(text(t.transactional_id));
                    s.producer_id = ProducerId(t.meta.producer_id);
                    s.transaction_state = text(t.meta.state.name());
                    s
                })
                .collect();
        }
        Err(e) => resp.error_code = e.code(ctx.api_version, 0).code(),
    }
    resp
}

/// ListTransactions v2's transactional-id filter (KIP-1152; `None` when it
/// is absent or empty): a regular expression of RE2's syntax, as Kafka's,
/// that must match the whole id.
fn id_pattern(pattern: Option<&str>) -> Result<Option<regex::Regex>, regex::Error> {
    match pattern {
        None | Some("") => Ok(None),
        Some(p) => regex::Regex::new(&format!("^(?:{p})$")).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transactional_id_pattern_matches_whole_ids() {
        let cases = [
            // (pattern, id, listed)
            (None, "app-1", true),
            (Some(""), "app-1", true),
            (Some("app-.*"), "app-1", true),
            (Some("app-"), "app-1", false),
            (Some("pp-1"), "app-1", false),
            (Some("app-1|other"), "app-1", true),
            (Some("app-[0-9]+"), "app-12", true),
        ];
        for (pattern, id, listed) in cases {
            let p = id_pattern(pattern).expect("compiles");
            assert_eq!(p.is_none_or(|p| p.is_match(id)), listed, "{pattern:?} {id}");
        }
        assert!(id_pattern(Some("(")).is_err());
    }
}
