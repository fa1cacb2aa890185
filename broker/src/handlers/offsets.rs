//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords: each partition's
//! question to the replica manager (see `replica_manager::offsets`), its
//! answer back.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use kafka_protocol::ResponseError;

use super::authorize;
use super::errors::replica_error;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::replica_manager::fetch::Isolation;
use crate::replica_manager::offsets::OffsetQuery;
use crate::security::acl::{Operation, ResourceType};

const TOPIC_DENIED: i16 = ResponseError::TopicAuthorizationFailed.code();

/// Answers ListOffsets: by special timestamp or the first offset at or after
/// a time.
pub fn list_offsets(
    node: &Node,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    // Kafka's isolation_level: 1 is read_committed.
    let isolation = if request.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    for topic in request.topics {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = topic.name.clone();
        let allowed = authorize::allowed(
            node,
            ctx,
            Operation::Describe,
            ResourceType::Topic,
            &topic.name,
        );
        for part in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = part.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            if !allowed {
                r.error_code = TOPIC_DENIED;
                out.partitions.push(r);
                continue;
            }
            let found = node.replicas.list_offset(
                topic.name.as_str(),
                part.partition_index,
                part.current_leader_epoch,
                OffsetQuery::from_timestamp(part.timestamp),
                isolation,
            );
            match found {
                Ok(Some(found)) => {
                    r.offset = found.offset;
                    r.timestamp = found.timestamp;
                    // Leader epochs appear in v4.
                    if ctx.api_version >= 4 {
                        r.leader_epoch = found.leader_epoch;
                    }
                }
                Ok(None) => {}
                Err(e) => r.error_code = replica_error(&e).code(),
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

/// Answers OffsetForLeaderEpoch: where the largest epoch at or below the
/// asked one ends. A broker asking (replica id >= 0) needs CLUSTER_ACTION on
/// the cluster, a consumer DESCRIBE on the topic.
pub fn offset_for_leader_epoch(
    node: &Node,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    let follower_allowed = (request.replica_id.0 >= 0)
        .then(|| authorize::on_cluster(node, ctx, Operation::ClusterAction));
    for topic in request.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = topic.topic.clone();
        let allowed = follower_allowed.unwrap_or_else(|| {
            authorize::allowed(
                node,
                ctx,
                Operation::Describe,
                ResourceType::Topic,
                &topic.topic,
            )
        });
        for part in topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = part.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            if !allowed {
                r.error_code = TOPIC_DENIED;
                out.partitions.push(r);
                continue;
            }
            let found = node.replicas.offset_for_leader_epoch(
                topic.topic.as_str(),
                part.partition,
                part.current_leader_epoch,
                part.leader_epoch,
            );
            match found {
                Ok((epoch, end)) => {
                    r.leader_epoch = epoch;
                    r.end_offset = end;
                }
                Err(e) => r.error_code = replica_error(&e).code(),
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

/// Answers DeleteRecords: moves each partition's log start forward.
pub fn delete_records(
    node: &Node,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for topic in request.topics {
        let mut out = DeleteRecordsTopicResult::default();
        out.name = topic.name.clone();
        let allowed = authorize::allowed(
            node,
            ctx,
            Operation::Delete,
            ResourceType::Topic,
            &topic.name,
        );
        for part in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = part.partition_index;
            r.low_watermark = -1;
            if !allowed {
                r.error_code = TOPIC_DENIED;
                out.partitions.push(r);
                continue;
            }
            match node.replicas.delete_records(
                topic.name.as_str(),
                part.partition_index,
                part.offset,
            ) {
                Ok(low) => r.low_watermark = low,
                Err(e) => r.error_code = replica_error(&e).code(),
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}
