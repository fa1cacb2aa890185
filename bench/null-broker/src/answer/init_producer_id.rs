//! InitProducerId: a new producer id at epoch 0 for whoever asks (an
//! idempotent producer; transactions are not served).

use kafka_protocol::messages::{InitProducerIdResponse, ProducerId};

use crate::broker::Broker;

/// The answer: a producer id never given before.
pub fn answer(broker: &Broker) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(broker.next_producer_id());
    r.producer_epoch = 0;
    r
}
