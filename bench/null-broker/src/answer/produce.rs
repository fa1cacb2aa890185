//! Produce: each partition's batches are counted, not stored; the answer
//! is the offset they would start at. The last batch is kept as the
//! template fetches are answered with. acks=0 gets no answer.

use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use crate::batch;
use crate::broker::Broker;
use crate::topics::Topic;

/// The answer, unless the producer asked for none (acks=0).
pub fn answer(broker: &Broker, request: ProduceRequest) -> Option<ProduceResponse> {
    let mut appended = false;
    let mut topics = broker.topics();
    let responses = request
        .topic_data
        .into_iter()
        .map(|data| {
            let topic = topics.named(&data.name);
            let mut t = TopicProduceResponse::default();
            t.partition_responses = data
                .partition_data
                .into_iter()
                .map(|p| {
                    let mut answer = PartitionProduceResponse::default();
                    answer.index = p.index;
                    answer.log_start_offset = 0;
                    match append(topic, p) {
                        Ok(base) => {
                            answer.base_offset = base;
                            appended = true;
                        }
                        Err(e) => answer.error_code = e.code(),
                    }
                    answer
                })
                .collect();
            t.name = data.name;
            t
        })
        .collect();
    drop(topics);
    if appended {
        broker.wake_fetches();
    }
    (request.acks != 0).then(|| {
        let mut r = ProduceResponse::default();
        r.responses = responses;
        r
    })
}

/// Counts `data` into its partition; its base offset.
fn append(topic: &mut Topic, data: PartitionProduceData) -> Result<i64, ResponseError> {
    let index = data.index;
    let partition = topic
        .partition_mut(index)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    let records = data.records.unwrap_or_default();
    let produced = batch::read_produced(&records).map_err(|e| {
        tracing::warn!(partition = index, error = %e, "refusing produced records");
        ResponseError::CorruptMessage
    })?;
    Ok(partition.append(produced))
}
