//! The marker sender: writes the commit or abort marker of each prepared
//! transaction to every partition in it, through WriteTxnMarkers to each
//! partition's leader (this broker included, over its own listener, as
//! Kafka's coordinator does), and completes the transaction once all of
//! them have it. One task per broker sends the markers queued for it
//! together in one request; one task per transaction retries the
//! partitions that failed (a leader moving, too few in-sync replicas)
//! against the leaders the metadata names then, until the coordinator no
//! longer holds the transaction as prepared. Partitions of deleted topics
//! are skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_client::Connection;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::write_txn_markers_response::WritableTxnMarkerResult;
use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot, watch};

use super::coordinator::TransactionCoordinator;
use crate::inter_broker::{negotiate, InterBroker};
use crate::metadata::image::NO_LEADER;
use crate::metadata::store::MetadataView;

/// How the coordinator names itself to the leaders.
const CLIENT_ID: &str = "gregor-txn-markers";

/// How long one WriteTxnMarkers may take (the leaders wait for their
/// in-sync replicas).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause before the partitions that failed are tried again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Markers sent together to one broker at most.
const MAX_BATCH: usize = 500;

/// A prepared transaction whose markers are to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    /// The transactional id.
    pub transactional_id: String,
    /// The coordinator epoch it was prepared in.
    pub coordinator_epoch: i32,
    /// The producer's id.
    pub producer_id: i64,
    /// The producer's epoch.
    pub producer_epoch: i16,
    /// Commit (true) or abort.
    pub commit: bool,
    /// The transaction version the producer spoke (2: the leaders hold
    /// the marker's epoch to KIP-1228's stricter rule).
    pub transaction_version: i8,
    /// The partitions in the transaction.
    pub partitions: BTreeSet<(String, i32)>,
}

/// One marker for one broker, with where its answer goes.
struct Queued {
    marker: WritableTxnMarker,
    reply: oneshot::Sender<Result<WritableTxnMarkerResult, String>>,
}

/// What happened to the partitions of one round.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// These partitions have their marker.
    Written(Vec<(String, i32)>),
    /// The partitions' replicas refuse the marker for good: the
    /// transaction was fenced (a newer coordinator or producer epoch).
    Fenced(ResponseError),
}

/// Runs the sender until the coordinator's queue closes.
pub async fn run(
    coordinator: Arc<TransactionCoordinator>,
    mut jobs: mpsc::UnboundedReceiver<MarkerJob>,
    dial: InterBroker,
    image: watch::Receiver<MetadataView>,
) {
    let brokers = Arc::new(Brokers {
        queues: Mutex::new(HashMap::new()),
        dial,
        image: image.clone(),
    });
    while let Some(job) = jobs.recv().await {
        tokio::spawn(deliver(
            coordinator.clone(),
            brokers.clone(),
            image.clone(),
            job,
        ));
    }
}

/// Writes one transaction's markers and completes it.
async fn deliver(
    coordinator: Arc<TransactionCoordinator>,
    brokers: Arc<Brokers>,
    image: watch::Receiver<MetadataView>,
    job: MarkerJob,
) {
    let mut remaining = job.partitions.clone();
    loop {
        if !coordinator.job_stands(&job) {
            return;
        }
        let current = image.borrow().image.clone();
        remaining.retain(|(topic, index)| {
            let exists = current.partition(topic, *index).is_some();
            if !exists {
                tracing::info!(transactional_id = %job.transactional_id, topic, partition = index, "skipping the marker of a deleted partition");
            }
            exists
        });
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for (topic, index) in &remaining {
            let leader = current
                .partition(topic, *index)
                .map_or(NO_LEADER, |p| p.leader);
            if leader != NO_LEADER {
                by_leader
                    .entry(leader)
                    .or_default()
                    .push((topic.clone(), *index));
            }
        }
        let rounds = by_leader
            .into_iter()
            .map(|(leader, partitions)| brokers.send(leader, &job, partitions));
        for outcome in futures_util::future::join_all(rounds).await {
            match outcome {
                Outcome::Written(done) => {
                    for p in done {
                        remaining.remove(&p);
                    }
                }
                Outcome::Fenced(code) => {
                    tracing::warn!(transactional_id = %job.transactional_id, error = ?code, "a leader refused the transaction's marker for good; leaving it to the current coordinator");
                    return;
                }
            }
        }
        if remaining.is_empty() {
            coordinator.complete(&job).await;
            return;
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// The per-broker senders.
struct Brokers {
    queues: Mutex<HashMap<i32, mpsc::UnboundedSender<Queued>>>,
    dial: InterBroker,
    image: watch::Receiver<MetadataView>,
}

impl Brokers {
    /// Sends `job`'s marker for `partitions` to `leader`; the partitions
    /// that have it.
    async fn send(&self, leader: i32, job: &MarkerJob, partitions: Vec<(String, i32)>) -> Outcome {
        let marker = marker(job, &partitions);
        let (reply, answer) = oneshot::channel();
        let queued = Queued { marker, reply };
        let sent = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let queue = queues
                .entry(leader)
                .and_modify(|q| {
                    if q.is_closed() {
                        *q = self.spawn(leader);
                    }
                })
                .or_insert_with(|| self.spawn(leader));
            queue.send(queued).is_ok()
        };
        if !sent {
            return Outcome::Written(Vec::new());
        }
        match answer.await {
            Ok(Ok(result)) => judge(&job.transactional_id, leader, &result),
            Ok(Err(e)) => {
                tracing::debug!(transactional_id = %job.transactional_id, leader, error = %e, "markers not delivered; retrying");
                Outcome::Written(Vec::new())
            }
            Err(_) => Outcome::Written(Vec::new()),
        }
    }

    /// Starts the sender task of `broker`; it ends when idle for long.
    fn spawn(&self, broker: i32) -> mpsc::UnboundedSender<Queued> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_to(broker, rx, self.dial.clone(), self.image.clone()));
        tx
    }
}

/// How long a broker's sender keeps its connection without work.
const IDLE: Duration = Duration::from_secs(60);

/// Sends the markers queued for `broker`, those waiting together in one
/// request, over one connection kept while there is work. Each connection
/// first asks which WriteTxnMarkers versions the broker serves: version 2
/// tells it the transaction version (KIP-1228), which a broker of an
/// earlier release (a rolling upgrade) does not take.
async fn send_to(
    broker: i32,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    dial: InterBroker,
    image: watch::Receiver<MetadataView>,
) {
    let mut conn: Option<(Connection, i16)> = None;
    loop {
        let first = match tokio::time::timeout(IDLE, queue.recv()).await {
            Ok(Some(q)) => q,
            // Idle or closed: a new task starts with the next marker.
            Ok(None) | Err(_) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            match tokio::time::timeout(REQUEST_TIMEOUT, connect(&dial, &image, broker)).await {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    fail(batch, &e);
                    continue;
                }
                Err(_) => {
                    fail(batch, "no answer in time");
                    continue;
                }
            }
        }
        let Some((c, version)) = conn.as_mut() else {
            continue;
        };
        let request = request(&batch, *version);
        match tokio::time::timeout(REQUEST_TIMEOUT, c.send(&request, *version)).await {
            Ok(Ok(response)) => {
                let mut results = response.markers.into_iter();
                for q in batch {
                    let result = results
                        .next()
                        .filter(|r| r.producer_id == q.marker.producer_id)
                        .ok_or_else(|| "the answer does not match the request".to_string());
                    // The transaction's task may have given up; nothing to do.
                    let _ = q.reply.send(result);
                }
            }
            Ok(Err(e)) => {
                conn = None;
                fail(batch, &e.to_string());
            }
            Err(_) => {
                conn = None;
                fail(batch, "no answer in time");
            }
        }
    }
}

/// A connection to `broker`, with the WriteTxnMarkers version to send on it.
async fn connect(
    dial: &InterBroker,
    image: &watch::Receiver<MetadataView>,
    broker: i32,
) -> Result<(Connection, i16), String> {
    let current = image.borrow().image.clone();
    let (mut conn, _) = dial
        .connect(&current, broker, CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?;
    match negotiate(&mut conn, ApiKey::WriteTxnMarkers).await {
        Ok(Some(version)) => Ok((conn, version)),
        Ok(None) => Err(format!(
            "broker {broker} serves no WriteTxnMarkers version this broker sends"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The request carrying `batch`'s markers at `version`: before version 2
/// a marker cannot say its transaction version.
fn request(batch: &[Queued], version: i16) -> WriteTxnMarkersRequest {
    let mut request = WriteTxnMarkersRequest::default();
    request.markers = batch
        .iter()
        .map(|q| {
            let mut m = q.marker.clone();
            if version < 2 {
                m.transaction_version = 0;
            }
            m
        })
        .collect();
    request
}

fn fail(batch: Vec<Queued>, why: &str) {
    for q in batch {
        let _ = q.reply.send(Err(why.to_string()));
    }
}

/// The marker of `job` for `partitions`.
fn marker(job: &MarkerJob, partitions: &[(String, i32)]) -> WritableTxnMarker {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        by_topic.entry(topic).or_default().push(*index);
    }
    let mut m = WritableTxnMarker::default();
    m.producer_id = ProducerId(job.producer_id);
    m.producer_epoch = job.producer_epoch;
    m.transaction_result = job.commit;
    m.coordinator_epoch = job.coordinator_epoch;
    m.transaction_version = job.transaction_version;
    m.topics = by_topic
        .into_iter()
        .map(|(topic, indexes)| {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_string()));
            t.partition_indexes = indexes;
            t
        })
        .collect();
    m
}

/// Which partitions of a leader's answer have their marker (Kafka's
/// `TransactionMarkerRequestCompletionHandler`): written, or retried on
/// errors that pass (leadership, replicas, time); a fenced producer epoch
/// or coordinator ends the job.
fn judge(transactional_id: &str, leader: i32, result: &WritableTxnMarkerResult) -> Outcome {
    let mut written = Vec::new();
    for topic in &result.topics {
        for p in &topic.partitions {
            let name = topic.name.to_string();
            match ResponseError::try_from_code(p.error_code) {
                None => written.push((name, p.partition_index)),
                Some(
                    code @ (ResponseError::InvalidProducerEpoch
                    | ResponseError::TransactionCoordinatorFenced),
                ) => return Outcome::Fenced(code),
                // Markers of a format or version the replica does not
                // have cannot be written; Kafka counts them as done.
                Some(
                    ResponseError::UnsupportedForMessageFormat | ResponseError::UnsupportedVersion,
                ) => written.push((name, p.partition_index)),
                Some(code) => {
                    tracing::debug!(transactional_id, leader, topic = %name, partition = p.partition_index, error = ?code, "marker not written; retrying");
                }
            }
        }
    }
    Outcome::Written(written)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerTopicResult,
    };

    use super::*;

    fn result(codes: &[(i32, ResponseError)], ok: &[i32]) -> WritableTxnMarkerResult {
        let mut t = WritableTxnMarkerTopicResult::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        for p in ok {
            let mut r = WritableTxnMarkerPartitionResult::default();
            r.partition_index = *p;
            t.partitions.push(r);
        }
        for (p, code) in codes {
            let mut r = WritableTxnMarkerPartitionResult::default();
            r.partition_index = *p;
            r.error_code = code.code();
            t.partitions.push(r);
        }
        let mut m = WritableTxnMarkerResult::default();
        m.topics.push(t);
        m
    }

    #[test]
    fn answers_are_judged_as_kafka_does() {
        let written =
            |ps: &[i32]| Outcome::Written(ps.iter().map(|p| ("t".to_string(), *p)).collect());
        let cases = [
            (result(&[], &[0, 1]), written(&[0, 1])),
            (
                result(&[(1, ResponseError::NotLeaderOrFollower)], &[0]),
                written(&[0]),
            ),
            (
                result(&[(1, ResponseError::NotEnoughReplicas)], &[]),
                written(&[]),
            ),
            (
                result(&[(1, ResponseError::UnsupportedForMessageFormat)], &[0]),
                written(&[0, 1]),
            ),
            (
                result(&[(1, ResponseError::TransactionCoordinatorFenced)], &[0]),
                Outcome::Fenced(ResponseError::TransactionCoordinatorFenced),
            ),
            (
                result(&[(2, ResponseError::InvalidProducerEpoch)], &[]),
                Outcome::Fenced(ResponseError::InvalidProducerEpoch),
            ),
        ];
        for (r, want) in cases {
            assert_eq!(judge("x", 1, &r), want, "{r:?}");
        }
    }

    #[test]
    fn a_marker_names_its_partitions_by_topic() {
        let job = MarkerJob {
            transactional_id: "x".into(),
            coordinator_epoch: 4,
            producer_id: 9,
            producer_epoch: 2,
            commit: true,
            transaction_version: 2,
            partitions: BTreeSet::new(),
        };
        let m = marker(&job, &[("b".into(), 1), ("a".into(), 3), ("b".into(), 0)]);
        assert_eq!(
            (m.producer_id.0, m.producer_epoch, m.coordinator_epoch),
            (9, 2, 4)
        );
        assert!(m.transaction_result);
        let topics: Vec<(String, Vec<i32>)> = m
            .topics
            .iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect();
        assert_eq!(topics, [("a".into(), vec![3]), ("b".into(), vec![1, 0])]);
    }

    #[test]
    fn the_transaction_version_goes_only_where_the_request_can_carry_it() {
        use bytes::BytesMut;
        use kafka_protocol::protocol::Encodable;

        let job = MarkerJob {
            transactional_id: "x".into(),
            coordinator_epoch: 0,
            producer_id: 9,
            producer_epoch: 3,
            commit: false,
            transaction_version: 2,
            partitions: BTreeSet::new(),
        };
        let batch = vec![Queued {
            marker: marker(&job, &[("a".into(), 0)]),
            reply: oneshot::channel().0,
        }];
        for (version, carried) in [(1, 0), (2, 2)] {
            let r = request(&batch, version);
            assert_eq!(r.markers[0].transaction_version, carried, "v{version}");
            r.encode(&mut BytesMut::new(), version)
                .unwrap_or_else(|e| panic!("v{version} encodes: {e}"));
        }
    }
}
