//! DescribeProducers: the producers each partition replica stored here
//! knows (their epoch, last sequence and timestamp, coordinator epoch and
//! open transaction), as `kafka-transactions.sh describe-producers`
//! shows them. Needs READ on the topic.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kafka_protocol::ResponseError;

use super::errors::replica_error;
use super::{authorize, text};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Answers DescribeProducers. As in Kafka, any replica stored here
/// answers, leader or follower.
pub fn describe_producers(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut resp = DescribeProducersResponse::default();
    for topic in request.topics {
        let mut out = TopicResponse::default();
        out.name = topic.name.clone();
        let allowed =
            authorize::allowed(node, ctx, Operation::Read, ResourceType::Topic, &topic.name);
        for index in topic.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            if !allowed {
                p.error_code = ResponseError::TopicAuthorizationFailed.code();
                out.partitions.push(p);
                continue;
            }
            match node.replicas.active_producers(topic.name.as_str(), index) {
                Ok(producers) => {
                    p.active_producers = producers
                        .into_iter()
                        .map(|a| {
                            let mut s = ProducerState::default();
                            s.producer_id = a.producer_id.into();
                            s.producer_epoch = i32::from(a.producer_epoch);
                            s.last_sequence = a.last_sequence;
                            s.last_timestamp = a.last_timestamp;
                            s.coordinator_epoch = a.coordinator_epoch;
                            s.current_txn_start_offset = a.current_txn_start_offset;
                            s
                        })
                        .collect();
                }
                Err(e) => {
                    p.error_code = replica_error(&e).code();
                    p.error_message = Some(text(e.to_string()));
                }
            }
            out.partitions.push(p);
        }
        resp.topics.push(out);
    }
    resp
}
