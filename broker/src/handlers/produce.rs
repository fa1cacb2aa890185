//! Produce: the request's batches to the replica manager, its outcomes back.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{
    NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::errors::produce_error;
use super::leader_hint::{self, LeaderHints};
use super::{authorize, text};
use crate::log::batch;
use crate::node::Node;
use crate::partition::producer_state::VerificationGuard;
use crate::protocol::RequestContext;
use crate::quota::manager::QuotaKind;
use crate::replica_manager::produce::{Produce, ProduceError, TopicWrites, Write};
use crate::security::acl::{Operation, ResourceType};
use crate::txn::add_retry::{ask_until_taken, AddRetry, Answer};
use crate::txn::error::TxnError;
use crate::txn::state::ProducerIdEpoch;
use crate::txn::verify::{verify, Ask};

/// A partition's answer when the write is refused before it is tried.
fn refused(index: i32, error: ResponseError, message: &str) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    r.error_code = error.code();
    r.error_message = Some(text(message));
    r
}

/// Whether some partition's records are transactional (Kafka's
/// `RequestUtils.hasTransactionalRecords`: each entry's first batch).
fn has_transactional_records(request: &ProduceRequest) -> bool {
    request.topic_data.iter().any(|t| {
        t.partition_data
            .iter()
            .any(|p| transactional_write("", p.index, p.records.as_ref()).is_some())
    })
}

/// A transactional batch of a request: where it goes and whose it is.
struct TransactionalWrite {
    topic: String,
    partition: i32,
    producer: ProducerIdEpoch,
    base_sequence: i32,
}

/// The write of `records` to `topic`-`partition`, if its (first) batch
/// is transactional.
fn transactional_write(
    topic: &str,
    partition: i32,
    records: Option<&bytes::Bytes>,
) -> Option<TransactionalWrite> {
    let h = batch::parse_prefix(records?, 0).ok()?;
    h.is_transactional().then(|| TransactionalWrite {
        topic: topic.to_string(),
        partition,
        producer: ProducerIdEpoch {
            id: h.producer_id,
            epoch: h.producer_epoch,
        },
        base_sequence: h.base_sequence,
    })
}

/// The verification outcome of each transactional write, by topic and
/// partition.
type Verified = HashMap<(String, i32), Result<Option<VerificationGuard>, ProduceError>>;

/// Before a producer's first batch of a transaction is appended to a
/// partition, its coordinator must have that partition in the
/// transaction (KIP-890 part 1, Kafka's `handleProduceAppend`): else a
/// batch that arrives after its transaction ended would open one nobody
/// ends, holding back every read_committed consumer. Each such write
/// starts a verification on its leader replica, the coordinator is asked
/// once for all of them, and each gets the guard its append must bring,
/// or why it may not be written. Writes of a transaction already open on
/// their partition need no asking.
async fn verify_transactional_writes(
    node: &Node,
    ctx: &RequestContext,
    transactional_id: &str,
    writes: Vec<TransactionalWrite>,
) -> Verified {
    let mut verified = Verified::new();
    let Some(producer) = writes.first().map(|w| w.producer) else {
        return verified;
    };
    // Kafka refuses a request mixing producers' transactional batches.
    if writes.iter().any(|w| w.producer != producer) {
        for w in writes {
            verified.insert(
                (w.topic, w.partition),
                Err(ProduceError::Unverified(TxnError::InvalidProducerIdMapping)),
            );
        }
        return verified;
    }
    let mut asked = Vec::new();
    for w in writes {
        // A replica that cannot start one (unknown, not the leader) refuses
        // the append itself with the reason.
        if let Ok(Some(guard)) = node.replicas.start_verification(
            &w.topic,
            w.partition,
            producer.id,
            producer.epoch,
            w.base_sequence,
        ) {
            verified.insert((w.topic.clone(), w.partition), Ok(Some(guard)));
            asked.push((w.topic, w.partition));
        }
    }
    // Producers of transaction version 2 send no AddPartitionsToTxn: the
    // leader adds for them, whatever the verification setting says.
    let ask = if ctx.api_version >= IMPLICIT_ADD_SINCE {
        Ask::Add
    } else {
        Ask::Verify
    };
    if asked.is_empty() || (ask == Ask::Verify && !node.verify_partitions()) {
        return verified;
    }
    // An add refused while the producer's previous transaction completes
    // is asked again, as Kafka's leaders do.
    let settings = &node.config.transactions;
    let retry = AddRetry::new(settings.add_retry_backoff_ms, settings.add_retry_max_ms);
    let answers = ask_until_taken(retry, ask, || {
        verify(node, transactional_id, producer, &asked, ask)
    })
    .await;
    for (i, place) in asked.into_iter().enumerate() {
        let Some(refusal) = refusal(&answers, i, ask, ctx.api_version) else {
            continue;
        };
        tracing::debug!(
            transactional_id,
            producer_id = producer.id,
            topic = %place.0,
            partition = place.1,
            error = %refusal,
            "transactional write not verified"
        );
        verified.insert(place, Err(refusal));
    }
    verified
}

/// Why the `i`th partition asked about may not be written, from the
/// coordinator's `answer` to `ask` for a Produce of `api_version`; `None`:
/// it is in the transaction.
fn refusal(answer: &Answer, i: usize, ask: Ask, api_version: i16) -> Option<ProduceError> {
    match answer {
        Ok(added) if added.get(i) == Some(&true) => None,
        Ok(_) => Some(ProduceError::NotInTransaction {
            abortable: api_version >= ABORTABLE_SINCE,
        }),
        // What Kafka answers once its leader stops asking to add; older
        // producers, only verified, get NOT_ENOUGH_REPLICAS.
        Err(TxnError::Concurrent) if ask == Ask::Add => Some(ProduceError::ConcurrentTransactions),
        Err(e) => Some(ProduceError::Unverified(e.clone())),
    }
}

/// The first Produce version whose clients handle TRANSACTION_ABORTABLE
/// (KIP-890).
const ABORTABLE_SINCE: i16 = 11;

/// The first Produce version of transaction version 2: the leader adds
/// the partition to the producer's transaction (KIP-890 part 2).
const IMPLICIT_ADD_SINCE: i16 = 12;

/// Appends every partition's records (see `replica_manager::produce`).
/// Transactional records need the request's transactional id, and WRITE
/// on it (else the whole request is refused with
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka does); every producer
/// needs WRITE on each topic. The request's bytes count against the
/// client's `producer_byte_rate`; the answer carries the time it must wait
/// (the caller sends no answer for acks=0 but still holds the connection).
pub async fn produce(
    node: &Node,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> ProduceResponse {
    let mut resp = ProduceResponse::default();
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref().map(|r| r.len()))
        .sum();
    resp.throttle_time_ms = super::quota_throttle(node, ctx, QuotaKind::Produce, bytes).0;
    let transaction_refused = has_transactional_records(&request)
        && request.transactional_id.as_ref().is_none_or(|id| {
            !authorize::allowed(
                node,
                ctx,
                Operation::Write,
                ResourceType::TransactionalId,
                id,
            )
        });
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut authorized = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        let refusal = if transaction_refused {
            Some((
                ResponseError::TransactionalIdAuthorizationFailed,
                "transactional records need a transactional id this client may write with",
            ))
        } else if !authorize::allowed(
            node,
            ctx,
            Operation::Write,
            ResourceType::Topic,
            &topic.name,
        ) {
            Some((
                ResponseError::TopicAuthorizationFailed,
                "not authorized to write to this topic",
            ))
        } else {
            None
        };
        if let Some((error, message)) = refusal {
            out.partition_responses = topic
                .partition_data
                .iter()
                .map(|p| refused(p.index, error, message))
                .collect();
            resp.responses.push(out);
            authorized.push(false);
            continue;
        }
        resp.responses.push(out);
        authorized.push(true);
        topics.push(TopicWrites {
            topic: topic.name.to_string(),
            // Moved, not copied: the batch is stored as the client sent it.
            writes: topic
                .partition_data
                .into_iter()
                .map(|p| Write {
                    partition: p.index,
                    records: p.records,
                    verified: Ok(None),
                })
                .collect(),
        });
    }
    if let Some(id) = &request.transactional_id {
        let writes = topics
            .iter()
            .flat_map(|t| {
                t.writes
                    .iter()
                    .filter_map(|w| transactional_write(&t.topic, w.partition, w.records.as_ref()))
            })
            .collect();
        let mut verified = verify_transactional_writes(node, ctx, id, writes).await;
        // Usually empty: the producer's transactions are already open.
        for t in &mut topics {
            if verified.is_empty() {
                break;
            }
            for w in &mut t.writes {
                if let Some(v) = verified.remove(&(t.topic.clone(), w.partition)) {
                    w.verified = v;
                }
            }
        }
    }
    // Each write's partition and size, for the answer and the per-topic
    // traffic counters.
    let indexes: Vec<Vec<(i32, usize)>> = topics
        .iter()
        .map(|t| {
            t.writes
                .iter()
                .map(|w| (w.partition, w.records.as_ref().map_or(0, |r| r.len())))
                .collect()
        })
        .collect();
    let produced = node
        .replicas
        .produce(Produce {
            acks: request.acks,
            timeout: Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0)),
            topics,
        })
        .await;
    // Made at the first refusal for leadership: most answers have none.
    let mut hints: Option<LeaderHints> = None;
    let written = resp
        .responses
        .iter_mut()
        .zip(authorized)
        .filter_map(|(out, ok)| ok.then_some(out));
    for ((out, indexes), outcomes) in written.zip(indexes).zip(produced) {
        for ((index, size), outcome) in indexes.into_iter().zip(outcomes) {
            let mut r = PartitionProduceResponse::default();
            r.index = index;
            match outcome {
                Ok(a) => {
                    node.metrics.produced(
                        out.name.as_str(),
                        size as u64,
                        u64::try_from(a.end_offset - a.base_offset).unwrap_or(0),
                    );
                    r.base_offset = a.base_offset;
                    r.log_start_offset = a.log_start_offset;
                    r.log_append_time_ms = a.log_append_time;
                }
                Err(e) => {
                    let code = produce_error(&e);
                    if code == ResponseError::KafkaStorageError {
                        tracing::error!(topic = %out.name.as_str(), partition = index, error = %e, "append failed");
                    } else {
                        tracing::debug!(topic = %out.name.as_str(), partition = index, error = %e, "produce refused");
                    }
                    r = refused(index, code, &e.to_string());
                    if ctx.api_version >= leader_hint::PRODUCE_SINCE
                        && leader_hint::wanted(r.error_code)
                    {
                        let hints = hints
                            .get_or_insert_with(|| LeaderHints::new(node.image(), &ctx.listener));
                        let (leader, epoch) = hints.leader(out.name.as_str(), index);
                        r.current_leader.leader_id = BrokerId(leader);
                        r.current_leader.leader_epoch = epoch;
                    }
                }
            }
            out.partition_responses.push(r);
        }
    }
    if let Some(hints) = hints {
        resp.node_endpoints = hints
            .endpoints()
            .map(|e| {
                let mut n = NodeEndpoint::default();
                n.node_id = BrokerId(e.node_id);
                n.host = text(e.host);
                n.port = e.port;
                n.rack = e.rack.map(text);
                n
            })
            .collect();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_transactional_write_gets_from_its_coordinators_answer() {
        use ResponseError as E;
        let busy: Answer = Err(TxnError::Concurrent);
        let loading: Answer = Err(TxnError::LoadInProgress);
        let fenced: Answer = Err(TxnError::ProducerFenced);
        let answered: Answer = Ok(vec![true, false]);
        // (answer, partition, ask, Produce version, the partition's error)
        let cases = [
            (&answered, 0, Ask::Add, 12, None),
            (&answered, 1, Ask::Add, 12, Some(E::TransactionAbortable)),
            (&answered, 1, Ask::Verify, 11, Some(E::TransactionAbortable)),
            (&answered, 1, Ask::Verify, 10, Some(E::InvalidTxnState)),
            // Still concurrent when the leader stopped asking to add: as
            // Kafka answers from Produce v12; a verification (older
            // producers) is reported as NOT_ENOUGH_REPLICAS.
            (&busy, 0, Ask::Add, 12, Some(E::ConcurrentTransactions)),
            (&busy, 0, Ask::Verify, 11, Some(E::NotEnoughReplicas)),
            (&loading, 0, Ask::Add, 12, Some(E::NotEnoughReplicas)),
            (&fenced, 0, Ask::Add, 12, Some(E::InvalidProducerEpoch)),
        ];
        for (answer, i, ask, version, want) in cases {
            let got = refusal(answer, i, ask, version);
            assert_eq!(
                got.as_ref().map(produce_error),
                want,
                "{answer:?}[{i}] {ask:?} v{version}: {got:?}"
            );
        }
    }
}
