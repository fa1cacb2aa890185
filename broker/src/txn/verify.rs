//! Asking a transaction's coordinator, before writing to partitions for
//! a producer's transaction, whether they are in it (KIP-890 part 1) or,
//! for producers of transaction version 2 (which send no
//! AddPartitionsToTxn), to add them (part 2): partition leaders ask before
//! the first batch of every transaction, the group coordinator before a
//! TxnOffsetCommit. The coordinator of the id is asked directly when it is
//! this broker, else with AddPartitionsToTxn over the inter-broker
//! listener (v4 `verify_only`, or v5), as Kafka's brokers ask each other,
//! gathered with other producers' asks to the same broker (`asks`).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::TxnError;
use super::log::TRANSACTION_TOPIC;
use super::state::{ProducerIdEpoch, EPOCH_BUMP_VERSION};
use crate::group::offset_records::partition_for;
use crate::metadata::image::NO_LEADER;
use crate::node::Node;

/// What the coordinator is asked about the partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Whether they are in the transaction (AddPartitionsToTxn v4,
    /// `verify_only`): producers before transaction version 2 add them
    /// themselves.
    Verify,
    /// Add them to the transaction (AddPartitionsToTxn v5): producers of
    /// transaction version 2 leave that to the brokers they write to.
    Add,
}

impl Ask {
    /// The AddPartitionsToTxn version that asks it.
    fn version(self) -> i16 {
        match self {
            Ask::Verify => 4,
            Ask::Add => 5,
        }
    }
}

/// Whether each of `partitions` is in `producer`'s transaction of
/// `transactional_id` (with [`Ask::Add`]: was added to it), asked of its
/// coordinator: this broker's own, or the leader of the id's transaction
/// log partition.
pub async fn verify(
    node: &Node,
    transactional_id: &str,
    producer: ProducerIdEpoch,
    partitions: &[(String, i32)],
    ask: Ask,
) -> Result<Vec<bool>, TxnError> {
    let image = node.image();
    let local = &node.txns;
    let Some(count) = image
        .topics
        .get(TRANSACTION_TOPIC)
        .map(|t| t.partitions.len() as i32)
    else {
        return Err(TxnError::InvalidProducerIdMapping);
    };
    let index = partition_for(transactional_id, count);
    let leader = image
        .partition(TRANSACTION_TOPIC, index)
        .map_or(NO_LEADER, |p| p.leader);
    if leader == NO_LEADER {
        return Err(TxnError::NotAvailable(
            "the transaction log partition has no leader".into(),
        ));
    }
    if leader == node.config.node_id {
        return match ask {
            Ask::Verify => local.verify_partitions(transactional_id, producer, partitions),
            Ask::Add => {
                let wanted: BTreeSet<(String, i32)> = partitions.iter().cloned().collect();
                local
                    .add_partitions(transactional_id, producer, wanted, EPOCH_BUMP_VERSION)
                    .await
                    .map(|()| vec![true; partitions.len()])
            }
        };
    }
    let asked = transaction(transactional_id, producer, partitions, ask);
    let results = node
        .txn_asks
        .ask(image.clone(), leader, ask.version(), asked)
        .await?;
    let mut codes: BTreeMap<(String, i32), i16> = BTreeMap::new();
    for t in &results {
        for p in &t.results_by_partition {
            codes.insert(
                (t.name.to_string(), p.partition_index),
                p.partition_error_code,
            );
        }
    }
    partitions
        .iter()
        .map(|p| match codes.get(p).copied() {
            Some(0) => Ok(true),
            Some(c) if c == ResponseError::TransactionAbortable.code() => Ok(false),
            Some(c) => Err(from_code(c)),
            None => Err(TxnError::NotAvailable(
                "the coordinator left a partition out".into(),
            )),
        })
        .collect()
}

/// One transaction's part of the request.
fn transaction(
    transactional_id: &str,
    producer: ProducerIdEpoch,
    partitions: &[(String, i32)],
    ask: Ask,
) -> AddPartitionsToTxnTransaction {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in partitions {
        by_topic.entry(topic).or_default().push(*p);
    }
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = TransactionalId(StrBytes::from_string(transactional_id.to_string()));
    t.producer_id = ProducerId(producer.id);
    t.producer_epoch = producer.epoch;
    t.verify_only = ask == Ask::Verify;
    t.topics = by_topic
        .into_iter()
        .map(|(topic, ps)| {
            let mut at = AddPartitionsToTxnTopic::default();
            at.name = TopicName(StrBytes::from_string(topic.to_string()));
            at.partitions = ps;
            at
        })
        .collect();
    t
}

/// The coordinator's refusal an error code stands for.
pub(super) fn from_code(code: i16) -> TxnError {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::InvalidProducerIdMapping) => TxnError::InvalidProducerIdMapping,
        Some(ResponseError::ProducerFenced | ResponseError::InvalidProducerEpoch) => {
            TxnError::ProducerFenced
        }
        Some(ResponseError::ConcurrentTransactions) => TxnError::Concurrent,
        Some(ResponseError::NotCoordinator) => TxnError::NotCoordinator,
        Some(ResponseError::CoordinatorLoadInProgress) => TxnError::LoadInProgress,
        Some(ResponseError::InvalidRequest) => {
            TxnError::InvalidRequest("refused by the coordinator")
        }
        other => TxnError::NotAvailable(format!("the coordinator answered {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_request_names_each_topic_once() {
        let t = transaction(
            "t",
            ProducerIdEpoch { id: 5, epoch: 2 },
            &[("b".into(), 1), ("a".into(), 0), ("b".into(), 0)],
            Ask::Verify,
        );
        assert!(t.verify_only);
        assert_eq!((t.producer_id.0, t.producer_epoch), (5, 2));
        let topics: Vec<(String, Vec<i32>)> = t
            .topics
            .iter()
            .map(|x| (x.name.to_string(), x.partitions.clone()))
            .collect();
        assert_eq!(topics, [("a".into(), vec![0]), ("b".into(), vec![1, 0])]);
        let add = transaction("t", ProducerIdEpoch { id: 5, epoch: 2 }, &[], Ask::Add);
        assert!(!add.verify_only);
        assert_eq!(
            from_code(ResponseError::ProducerFenced.code()),
            TxnError::ProducerFenced
        );
        assert_eq!(
            from_code(ResponseError::InvalidProducerEpoch.code()),
            TxnError::ProducerFenced
        );
    }
}
