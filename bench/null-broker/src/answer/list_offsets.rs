//! ListOffsets: every log starts at 0 and ends at its counter; there are
//! no timestamps to look up.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;

/// Kafka's special timestamps: the log end, the log start, and the start
/// of the local and of the tiered log (both the log start here).
const LATEST: i64 = -1;
const EARLIEST: [i64; 3] = [-2, -4, -5];

/// The answer: the offsets asked for, or -1 ("none") for a timestamp.
pub fn answer(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = broker.topics();
    let mut r = ListOffsetsResponse::default();
    r.topics = request
        .topics
        .into_iter()
        .map(|asked| {
            let topic = topics.named(&asked.name);
            let mut t = ListOffsetsTopicResponse::default();
            t.partitions = asked
                .partitions
                .iter()
                .map(|p| {
                    let mut answer = ListOffsetsPartitionResponse::default();
                    answer.partition_index = p.partition_index;
                    match topic.partition(p.partition_index) {
                        None => answer.error_code = ResponseError::UnknownTopicOrPartition.code(),
                        Some(partition) => {
                            answer.timestamp = -1;
                            answer.offset = match p.timestamp {
                                LATEST => partition.end(),
                                t if EARLIEST.contains(&t) => 0,
                                _ => -1,
                            };
                        }
                    }
                    answer
                })
                .collect();
            t.name = asked.name;
            t
        })
        .collect();
    r
}
