//! Metadata: the broker is the whole cluster, its controller and the
//! leader of every partition. Every topic named exists (it is created on
//! the spot); asking for all topics lists those seen so far.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::{Broker, Node, CLUSTER_ID};
use crate::topics::Topic;

/// The answer for `request` at `version`.
pub fn answer(broker: &Broker, version: i16, request: MetadataRequest) -> MetadataResponse {
    let node = &broker.node;
    let mut topics = broker.topics();
    let mut r = MetadataResponse::default();
    r.topics = match request.topics {
        // v0 asks for all topics with an empty list, later versions with none.
        Some(asked) if !(version == 0 && asked.is_empty()) => asked
            .into_iter()
            .map(|asked| match asked.name {
                Some(name) => described(node, &name, topics.named(&name)),
                None => match topics.with_id(&asked.topic_id) {
                    Some((name, topic)) => described(node, name, topic),
                    None => {
                        let mut t = MetadataResponseTopic::default();
                        t.topic_id = asked.topic_id;
                        t.error_code = ResponseError::UnknownTopicId.code();
                        t
                    }
                },
            })
            .collect(),
        _ => topics
            .all()
            .map(|(name, topic)| described(node, name, topic))
            .collect(),
    };
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(node.id);
    b.host = StrBytes::from_string(node.host.clone());
    b.port = node.port;
    r.brokers = vec![b];
    r.cluster_id = Some(StrBytes::from_static_str(CLUSTER_ID));
    r.controller_id = BrokerId(node.id);
    r
}

/// One topic, every partition led by `node` alone.
fn described(node: &Node, name: &TopicName, topic: &Topic) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(name.clone());
    t.topic_id = topic.id();
    t.partitions = (0..topic.partition_count())
        .map(|index| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = i32::try_from(index).unwrap_or(i32::MAX);
            p.leader_id = BrokerId(node.id);
            p.leader_epoch = 0;
            p.replica_nodes = vec![BrokerId(node.id)];
            p.isr_nodes = vec![BrokerId(node.id)];
            p
        })
        .collect();
    t
}
