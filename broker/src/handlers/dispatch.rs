//! From a decoded request to its response: the request's context, the
//! handler of its API, the client's request quota, and the encoded answer.
//!
//! The request quota (`request_percentage`, KIP-124) is charged with the
//! time the broker spends running the request's handler: the time inside
//! its polls, not the time it waits for replicas or for a long poll's
//! data, as Kafka charges request-handler thread time and not purgatory
//! time. Followers' fetches are exempt, as in Kafka.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::node::Node;
use crate::protocol::frame::{Frame, Placeholders};
use crate::protocol::{
    api_versions_fallback, decode_frame, encode_response, ConnectionInfo, Decoded, ProtocolError,
    RequestContext,
};

/// What a request comes to.
pub struct Answer {
    /// The encoded response; `None` when none is sent (Produce with
    /// acks=0).
    pub response: Option<Frame>,
    /// How long the connection takes no further request: the client went
    /// over its quota (KIP-219 mutes the connection for the throttle time
    /// the response carries).
    pub throttle: Duration,
}

/// A handler's response and the throttle time it carries.
struct Outcome {
    response: Option<ResponseKind>,
    throttle_ms: i32,
    /// The record sets a fetch response holds placeholders for.
    records: Placeholders,
}

/// Handles one request frame (without its size prefix).
pub async fn handle_frame(
    node: Arc<Node>,
    frame: Bytes,
    conn: ConnectionInfo,
) -> Result<Answer, ProtocolError> {
    let (api, version, header, request) = match decode_frame(frame)? {
        Decoded::ApiVersionsFallback { correlation_id } => {
            return Ok(Answer {
                response: Some(api_versions_fallback(correlation_id).into()),
                throttle: Duration::ZERO,
            });
        }
        Decoded::Request {
            api,
            version,
            header,
            request,
        } => (api, version, header, *request),
    };
    let arrived = Instant::now();
    node.metrics.request(api);
    let correlation_id = header.correlation_id;
    let ctx = RequestContext {
        api,
        api_version: version,
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: conn.peer,
        listener: conn.listener,
        principal: conn.principal,
    };
    let exempt = from_follower(&request);
    let mut handling = std::pin::pin!(dispatch(&node, &ctx, request));
    let mut busy = Duration::ZERO;
    let mut outcome = std::future::poll_fn(|cx| {
        let start = Instant::now();
        let polled = handling.as_mut().poll(cx);
        busy += start.elapsed();
        polled
    })
    .await;
    if !exempt {
        let quotas = &node.image().quotas;
        if !quotas.is_empty() {
            let throttle = node.quotas.record_time(
                quotas,
                super::quota_user(&ctx),
                &ctx.client_id,
                busy,
                node.quotas.now_ms(),
            );
            let ms = i32::try_from(throttle.ms).unwrap_or(i32::MAX);
            if ms > outcome.throttle_ms {
                outcome.throttle_ms = ms;
                if let Some(response) = outcome.response.as_mut() {
                    set_throttle(response, ms);
                }
            }
        }
    }
    // Followers' fetches wait out replica.fetch.wait.max.ms by design;
    // they would drown what consumers' fetches take.
    if !exempt {
        node.metrics.answered(api, arrived.elapsed());
    }
    let throttle = Duration::from_millis(u64::try_from(outcome.throttle_ms).unwrap_or(0));
    let response = match outcome.response {
        Some(r) => {
            let encoded = encode_response(api, version, correlation_id, &r)?;
            Some(if outcome.records.is_empty() {
                encoded.into()
            } else {
                // Flexible versions (response header v1) prefix a records
                // field with a varint.
                let flexible = api.response_header_version(version) >= 1;
                Frame::splice(encoded, outcome.records, flexible).map_err(|e| {
                    ProtocolError::Encode {
                        api,
                        version,
                        reason: e.to_string(),
                    }
                })?
            })
        }
        None => None,
    };
    Ok(Answer { response, throttle })
}

async fn dispatch(node: &Arc<Node>, ctx: &RequestContext, request: RequestKind) -> Outcome {
    use super::*;
    use RequestKind as Rq;
    use ResponseKind as Rs;
    let mut records = Placeholders::default();
    let response = match request {
        Rq::ApiVersions(r) => Rs::ApiVersions(api_versions::api_versions(node, ctx, r)),
        Rq::CreateAcls(r) => Rs::CreateAcls(acls::create_acls(node, ctx, r).await),
        Rq::DescribeAcls(r) => Rs::DescribeAcls(acls::describe_acls(node, ctx, r)),
        Rq::DeleteAcls(r) => Rs::DeleteAcls(acls::delete_acls(node, ctx, r).await),
        Rq::AlterClientQuotas(r) => {
            Rs::AlterClientQuotas(quotas::alter_client_quotas(node, ctx, r).await)
        }
        Rq::DescribeClientQuotas(r) => {
            Rs::DescribeClientQuotas(quotas::describe_client_quotas(node, ctx, r))
        }
        Rq::AlterUserScramCredentials(r) => {
            Rs::AlterUserScramCredentials(scram::alter_user_scram_credentials(node, ctx, r).await)
        }
        Rq::DescribeUserScramCredentials(r) => {
            Rs::DescribeUserScramCredentials(scram::describe_user_scram_credentials(node, ctx, r))
        }
        // A SASL listener's connections handle these before dispatch (see
        // `server::authenticate`); anywhere else they are out of place.
        Rq::SaslHandshake(_) => Rs::SaslHandshake(
            kafka_protocol::messages::SaslHandshakeResponse::default()
                .with_error_code(kafka_protocol::ResponseError::IllegalSaslState.code()),
        ),
        Rq::SaslAuthenticate(_) => Rs::SaslAuthenticate(
            kafka_protocol::messages::SaslAuthenticateResponse::default()
                .with_error_code(kafka_protocol::ResponseError::IllegalSaslState.code())
                .with_error_message(Some(super::text(
                    "this listener does not use SASL; SaslAuthenticate is out of place",
                ))),
        ),
        Rq::Metadata(r) => Rs::Metadata(metadata::metadata(node, ctx, r).await),
        Rq::DescribeCluster(r) => Rs::DescribeCluster(metadata::describe_cluster(node, ctx, r)),
        Rq::DescribeTopicPartitions(r) => Rs::DescribeTopicPartitions(
            describe_topic_partitions::describe_topic_partitions(node, ctx, r),
        ),
        Rq::ElectLeaders(r) => Rs::ElectLeaders(placement::elect_leaders(node, ctx, r).await),
        Rq::UpdateFeatures(r) => Rs::UpdateFeatures(features::update_features(node, ctx, r).await),
        Rq::AlterPartitionReassignments(r) => Rs::AlterPartitionReassignments(
            placement::alter_partition_reassignments(node, ctx, r).await,
        ),
        Rq::ListPartitionReassignments(r) => {
            Rs::ListPartitionReassignments(placement::list_partition_reassignments(node, ctx, r))
        }
        Rq::Produce(r) => {
            let answered = r.acks != 0;
            let response = produce::produce(node, ctx, r).await;
            if !answered {
                // acks=0 gets no answer, but a throttle still holds the
                // connection.
                return Outcome {
                    response: None,
                    throttle_ms: response.throttle_time_ms,
                    records,
                };
            }
            Rs::Produce(response)
        }
        Rq::Fetch(r) => {
            let (response, held) = fetch::fetch(node, ctx, r).await;
            records = held;
            Rs::Fetch(response)
        }
        Rq::ListOffsets(r) => Rs::ListOffsets(offsets::list_offsets(node, ctx, r)),
        Rq::OffsetForLeaderEpoch(r) => {
            Rs::OffsetForLeaderEpoch(offsets::offset_for_leader_epoch(node, ctx, r))
        }
        Rq::DeleteRecords(r) => Rs::DeleteRecords(offsets::delete_records(node, ctx, r)),
        Rq::WriteTxnMarkers(r) => {
            Rs::WriteTxnMarkers(txn_markers::write_txn_markers(node, ctx, r).await)
        }
        Rq::DescribeProducers(r) => {
            Rs::DescribeProducers(describe_producers::describe_producers(node, ctx, r))
        }
        Rq::InitProducerId(r) => Rs::InitProducerId(producer::init_producer_id(node, ctx, r).await),
        Rq::CreateTopics(r) => Rs::CreateTopics(admin::create_topics(node, ctx, r).await),
        Rq::DeleteTopics(r) => Rs::DeleteTopics(admin::delete_topics(node, ctx, r).await),
        Rq::CreatePartitions(r) => {
            Rs::CreatePartitions(admin::create_partitions(node, ctx, r).await)
        }
        Rq::DescribeConfigs(r) => Rs::DescribeConfigs(configs::describe_configs(node, ctx, r)),
        Rq::AlterConfigs(r) => Rs::AlterConfigs(configs::alter_configs(node, ctx, r).await),
        Rq::IncrementalAlterConfigs(r) => {
            Rs::IncrementalAlterConfigs(configs::incremental_alter_configs(node, ctx, r).await)
        }
        Rq::FindCoordinator(r) => {
            Rs::FindCoordinator(group::find_coordinator::find_coordinator(node, ctx, r).await)
        }
        Rq::AddPartitionsToTxn(r) => {
            Rs::AddPartitionsToTxn(txn::add_partitions_to_txn(node, ctx, r).await)
        }
        Rq::AddOffsetsToTxn(r) => Rs::AddOffsetsToTxn(txn::add_offsets_to_txn(node, ctx, r).await),
        Rq::EndTxn(r) => Rs::EndTxn(txn::end_txn(node, ctx, r).await),
        Rq::DescribeTransactions(r) => {
            Rs::DescribeTransactions(txn::describe_transactions(node, ctx, r))
        }
        Rq::ListTransactions(r) => Rs::ListTransactions(txn::list_transactions(node, ctx, r)),
        Rq::JoinGroup(r) => Rs::JoinGroup(group::membership::join_group(node, ctx, r).await),
        Rq::SyncGroup(r) => Rs::SyncGroup(group::membership::sync_group(node, ctx, r).await),
        Rq::Heartbeat(r) => Rs::Heartbeat(group::membership::heartbeat(node, ctx, r)),
        Rq::LeaveGroup(r) => Rs::LeaveGroup(group::membership::leave_group(node, ctx, r)),
        Rq::OffsetCommit(r) => {
            Rs::OffsetCommit(group::committed::offset_commit(node, ctx, r).await)
        }
        Rq::OffsetFetch(r) => Rs::OffsetFetch(group::committed::offset_fetch(node, ctx, r)),
        Rq::TxnOffsetCommit(r) => {
            Rs::TxnOffsetCommit(group::committed::txn_offset_commit(node, ctx, r).await)
        }
        Rq::DescribeGroups(r) => Rs::DescribeGroups(group::admin::describe_groups(node, ctx, r)),
        Rq::ListGroups(r) => Rs::ListGroups(group::admin::list_groups(node, ctx, r)),
        Rq::DeleteGroups(r) => Rs::DeleteGroups(group::admin::delete_groups(node, ctx, r)),
        Rq::DescribeLogDirs(r) => Rs::DescribeLogDirs(log_dirs::describe_log_dirs(node, ctx, r)),
        Rq::ConsumerGroupHeartbeat(r) => Rs::ConsumerGroupHeartbeat(
            group::consumer_heartbeat::consumer_group_heartbeat(node, ctx, r).await,
        ),
        Rq::ConsumerGroupDescribe(r) => {
            Rs::ConsumerGroupDescribe(group::admin::consumer_group_describe(node, ctx, r))
        }
        Rq::OffsetDelete(r) => Rs::OffsetDelete(group::committed::offset_delete(node, ctx, r)),
        // `versions::is_supported` lets only the APIs above through.
        other => {
            tracing::error!(request = ?other, "no handler for an advertised API");
            return Outcome {
                response: None,
                throttle_ms: 0,
                records,
            };
        }
    };
    // The throttles of the byte-rate and controller mutation quotas, which
    // the handlers decide; the request quota's is added in `handle_frame`.
    let throttle_ms = match &response {
        Rs::Produce(r) => r.throttle_time_ms,
        Rs::Fetch(r) => r.throttle_time_ms,
        Rs::CreateTopics(r) => r.throttle_time_ms,
        Rs::CreatePartitions(r) => r.throttle_time_ms,
        Rs::DeleteTopics(r) => r.throttle_time_ms,
        _ => 0,
    };
    Outcome {
        response: Some(response),
        throttle_ms,
        records,
    }
}

/// A follower's fetch, exempt from the request quota.
fn from_follower(request: &RequestKind) -> bool {
    match request {
        RequestKind::Fetch(f) => f.replica_id.0 >= 0 || f.replica_state.replica_id.0 >= 0,
        _ => false,
    }
}

/// Puts the throttle time in a response of any API that carries one
/// (SASL's do not; they are answered before dispatch anyway).
fn set_throttle(response: &mut ResponseKind, ms: i32) {
    macro_rules! carrying {
        ($($api:ident),* $(,)?) => {
            match response {
                $(ResponseKind::$api(r) => r.throttle_time_ms = ms,)*
                _ => {}
            }
        };
    }
    carrying!(
        AddOffsetsToTxn,
        AddPartitionsToTxn,
        AlterClientQuotas,
        AlterConfigs,
        AlterPartitionReassignments,
        AlterUserScramCredentials,
        ApiVersions,
        ConsumerGroupDescribe,
        ConsumerGroupHeartbeat,
        CreateAcls,
        CreatePartitions,
        CreateTopics,
        DeleteAcls,
        DeleteGroups,
        DeleteRecords,
        DeleteTopics,
        DescribeAcls,
        DescribeClientQuotas,
        DescribeCluster,
        DescribeConfigs,
        DescribeGroups,
        DescribeLogDirs,
        DescribeProducers,
        DescribeTopicPartitions,
        DescribeTransactions,
        DescribeUserScramCredentials,
        ElectLeaders,
        EndTxn,
        Fetch,
        FindCoordinator,
        Heartbeat,
        IncrementalAlterConfigs,
        InitProducerId,
        JoinGroup,
        LeaveGroup,
        ListGroups,
        ListOffsets,
        ListPartitionReassignments,
        ListTransactions,
        Metadata,
        OffsetCommit,
        OffsetDelete,
        OffsetFetch,
        OffsetForLeaderEpoch,
        Produce,
        SyncGroup,
        TxnOffsetCommit,
        UpdateFeatures,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchRequest, MetadataResponse, ProduceRequest};

    #[test]
    fn followers_fetches_are_exempt_and_throttle_times_land_in_responses() {
        let consumer = FetchRequest::default().with_replica_id((-1).into());
        let follower = FetchRequest::default().with_replica_id(2.into());
        let mut newer = FetchRequest::default().with_replica_id((-1).into());
        newer.replica_state.replica_id = 3.into();
        let cases = [
            (RequestKind::Fetch(consumer), false),
            (RequestKind::Fetch(follower), true),
            (RequestKind::Fetch(newer), true),
            (RequestKind::Produce(ProduceRequest::default()), false),
        ];
        for (request, exempt) in cases {
            assert_eq!(from_follower(&request), exempt);
        }
        let mut metadata = ResponseKind::Metadata(MetadataResponse::default());
        set_throttle(&mut metadata, 250);
        assert!(matches!(metadata, ResponseKind::Metadata(r) if r.throttle_time_ms == 250));
    }
}
