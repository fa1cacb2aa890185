//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords: questions and
//! changes about where a partition's log starts and ends.

use std::sync::Arc;

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

use super::errors::partition_error;
use crate::node::Node;

/// Special ListOffsets timestamps (KIP-79, KIP-734, KIP-1005).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Answers ListOffsets: by special timestamp or the first offset at or after
/// a time.
pub fn list_offsets(
    node: &Arc<Node>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for topic in req.topics {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = topic.name.clone();
        for part in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = part.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            let replica = node
                .replica(topic.name.as_str(), part.partition_index)
                .and_then(|p| {
                    p.check_leader(part.current_leader_epoch)
                        .map(|()| p)
                        .map_err(|e| partition_error(&e))
                });
            match replica {
                Err(code) => r.error_code = code.code(),
                Ok(p) => {
                    let marks = p.watermarks();
                    let found = match part.timestamp {
                        LATEST => Ok(Some((marks.high_watermark, -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((marks.log_start_offset, -1))),
                        MAX_TIMESTAMP => p.max_timestamp(),
                        ts if ts >= 0 => p.offset_for_timestamp(ts),
                        // Tiered-storage positions: nothing is tiered here.
                        _ => Ok(None),
                    };
                    match found {
                        Ok(Some((offset, ts))) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            // Leader epochs appear in v4.
                            if version >= 4 {
                                r.leader_epoch = p.epoch_at(offset.saturating_sub(1).max(0));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => r.error_code = partition_error(&e).code(),
                    }
                }
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

/// Answers OffsetForLeaderEpoch from the leader-epoch history: where the
/// largest epoch at or below the asked one ends.
pub fn offset_for_leader_epoch(
    node: &Arc<Node>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for topic in req.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = topic.topic.clone();
        for part in topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = part.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            let found = node
                .replica(topic.topic.as_str(), part.partition)
                .and_then(|p| {
                    p.check_leader(part.current_leader_epoch)
                        .map(|()| p.end_offset_for(part.leader_epoch))
                        .map_err(|e| partition_error(&e))
                });
            match found {
                Ok((epoch, end)) => {
                    r.leader_epoch = epoch;
                    r.end_offset = end;
                }
                Err(code) => r.error_code = code.code(),
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

/// Answers DeleteRecords: moves each partition's log start forward.
pub fn delete_records(node: &Arc<Node>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for topic in req.topics {
        let mut out = DeleteRecordsTopicResult::default();
        out.name = topic.name.clone();
        for part in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = part.partition_index;
            r.low_watermark = -1;
            let replica = node
                .replica(topic.name.as_str(), part.partition_index)
                .and_then(|p| {
                    p.check_leader(-1)
                        .map(|()| p)
                        .map_err(|e| partition_error(&e))
                });
            match replica {
                Err(code) => r.error_code = code.code(),
                Ok(p) => match p.delete_records_before(part.offset) {
                    Ok(low) => r.low_watermark = low,
                    Err(e) => r.error_code = partition_error(&e).code(),
                },
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}
