//! The follower's side of replication: one task per leader broker fetches,
//! with Kafka's own Fetch request (v12, as a replica), every partition this
//! broker follows on that leader, appends what comes back, takes the
//! leader's high watermark, and truncates where the leader says the logs
//! diverge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_client::Connection;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use crate::metadata::store::MetadataView;
use crate::partition::Partition;
use crate::security::sasl::login::{log_in, Login};

/// Fetch version used between brokers: replica id in the body, leader
/// epochs, diverging-epoch answers, topics by name.
const VERSION: i16 = 12;

/// How followers name themselves to their leaders.
const CLIENT_ID: &str = "gregor-replica";

/// How followers fetch.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// This broker.
    pub me: i32,
    /// `inter.broker.listener.name`: where leaders are reached.
    pub listener: String,
    /// TLS to reach them, when that listener is SSL (its client side,
    /// renewed with the listener's certificates).
    pub tls: Option<Arc<crate::security::tls::ListenerTls>>,
    /// How to log in to them, when that listener is SASL.
    pub login: Option<Login>,
    /// `replica.fetch.wait.max.ms`
    pub max_wait: Duration,
    /// `replica.fetch.max.bytes`
    pub partition_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`
    pub max_bytes: i32,
}

/// Partitions followed, by leader.
pub type Followed = BTreeMap<i32, Vec<Arc<Partition>>>;

/// Runs one fetch task per leader with followed partitions, starting and
/// ending them as `followed` changes; they end with it.
pub async fn run(
    settings: FetchSettings,
    image: watch::Receiver<MetadataView>,
    mut followed: watch::Receiver<Followed>,
) {
    let mut tasks: BTreeMap<i32, AbortOnDropHandle<()>> = BTreeMap::new();
    loop {
        let leaders: Vec<i32> = followed.borrow_and_update().keys().copied().collect();
        tasks.retain(|leader, task| leaders.contains(leader) && !task.is_finished());
        for leader in leaders {
            tasks.entry(leader).or_insert_with(|| {
                AbortOnDropHandle::new(tokio::spawn(follow(
                    leader,
                    settings.clone(),
                    image.clone(),
                    followed.clone(),
                )))
            });
        }
        if followed.changed().await.is_err() {
            return;
        }
    }
}

/// Fetches from `leader` until it leads nothing this broker follows.
async fn follow(
    leader: i32,
    settings: FetchSettings,
    image: watch::Receiver<MetadataView>,
    followed: watch::Receiver<Followed>,
) {
    let mut conn: Option<Connection> = None;
    // When the leader ends the SASL session: replace the connection first.
    let mut session_ends: Option<tokio::time::Instant> = None;
    loop {
        if session_ends.is_some_and(|at| tokio::time::Instant::now() >= at) {
            conn = None;
            session_ends = None;
        }
        let partitions = followed.borrow().get(&leader).cloned().unwrap_or_default();
        if partitions.is_empty() {
            return;
        }
        if conn.is_none() {
            let addr = image
                .borrow()
                .image
                .brokers
                .get(&leader)
                .filter(|b| !b.fenced)
                .and_then(|b| b.endpoint(&settings.listener))
                .map(|e| format!("{}:{}", e.host, e.port));
            let Some(addr) = addr else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            // The client side as renewed now, for a new connection.
            let connected = match settings.tls.as_ref().and_then(|t| t.client()) {
                Some(tls) => Connection::connect_tls(&addr, tls, CLIENT_ID).await,
                None => Connection::connect(&addr, CLIENT_ID).await,
            };
            let connected = match (connected, &settings.login) {
                (Ok(mut c), Some(login)) => match log_in(&mut c, login).await {
                    Ok(lifetime) => {
                        // Well before the end, as a Kafka client re-logs in.
                        session_ends = lifetime.map(|l| tokio::time::Instant::now() + l * 9 / 10);
                        Ok(c)
                    }
                    Err(e) => {
                        tracing::warn!(leader, %addr, error = %e, "cannot log in to leader");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                },
                (connected, _) => connected,
            };
            match connected {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    // A refused TLS handshake will not fix itself; say so.
                    match &e {
                        gregor_client::ClientError::Io(io)
                            if io.kind() == std::io::ErrorKind::InvalidData =>
                        {
                            tracing::warn!(leader, %addr, error = %e, "cannot reach leader")
                        }
                        _ => tracing::debug!(leader, %addr, error = %e, "cannot reach leader"),
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        let Some(connection) = conn.as_mut() else {
            continue;
        };
        let Some(request) = build(&settings, &partitions) else {
            // Every partition changed role; wait for the next metadata.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let timeout = settings.max_wait + Duration::from_secs(10);
        match tokio::time::timeout(timeout, connection.send(&request, VERSION)).await {
            Ok(Ok(resp)) => {
                if !apply(&partitions, resp) {
                    // Errors (not leader, fenced epoch): the metadata is
                    // about to change; don't spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(leader, error = %e, "fetch from leader failed");
                conn = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => {
                tracing::debug!(leader, "fetch from leader timed out");
                conn = None;
            }
        }
    }
}

fn build(settings: &FetchSettings, partitions: &[Arc<Partition>]) -> Option<FetchRequest> {
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    for p in partitions {
        let Some(pos) = p.position() else { continue };
        let mut fp = FetchPartition::default();
        fp.partition = p.index;
        fp.current_leader_epoch = pos.epoch;
        fp.fetch_offset = pos.fetch_offset;
        fp.last_fetched_epoch = pos.last_fetched_epoch;
        fp.log_start_offset = p.watermarks().log_start_offset;
        fp.partition_max_bytes = settings.partition_max_bytes;
        topics.entry(p.topic.clone()).or_default().push(fp);
    }
    if topics.is_empty() {
        return None;
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(settings.me);
    req.max_wait_ms = settings.max_wait.as_millis() as i32;
    req.min_bytes = 1;
    req.max_bytes = settings.max_bytes;
    req.session_epoch = -1;
    req.topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(name));
            t.partitions = partitions;
            t
        })
        .collect();
    Some(req)
}

/// Applies a fetch response; false when some partition reported an error.
fn apply(partitions: &[Arc<Partition>], resp: FetchResponse) -> bool {
    let mut clean = true;
    for t in resp.responses {
        for d in t.partitions {
            let Some(p) = partitions
                .iter()
                .find(|p| p.topic == t.topic.as_str() && p.index == d.partition_index)
            else {
                continue;
            };
            let Some(pos) = p.position() else { continue };
            let outcome = match ResponseError::try_from_code(d.error_code) {
                None if d.diverging_epoch.epoch >= 0 || d.diverging_epoch.end_offset >= 0 => {
                    // Keep what both logs agree on: up to where the
                    // leader's epoch ends, or ours does.
                    let to = if d.diverging_epoch.epoch < 0 {
                        d.diverging_epoch.end_offset.max(0)
                    } else {
                        let (_, ours) = p.end_offset_for(d.diverging_epoch.epoch);
                        d.diverging_epoch.end_offset.min(ours.max(0))
                    };
                    p.truncate_to(to)
                }
                None => p
                    .append_replicated(
                        pos.epoch,
                        d.records.as_deref().unwrap_or_default(),
                        d.high_watermark,
                    )
                    .and_then(|()| {
                        // Records the leader deleted (retention,
                        // DeleteRecords) go here too.
                        if d.log_start_offset > p.watermarks().log_start_offset {
                            p.delete_records_before(d.log_start_offset).map(|_| ())
                        } else {
                            Ok(())
                        }
                    }),
                Some(ResponseError::OffsetOutOfRange) => {
                    clean = false;
                    // Behind the leader's log start: start over from there.
                    if pos.fetch_offset < d.log_start_offset {
                        p.reset_to(d.log_start_offset)
                    } else {
                        p.truncate_to(d.high_watermark.max(0))
                    }
                }
                Some(e) => {
                    clean = false;
                    tracing::debug!(topic = %p.topic, partition = p.index, error = ?e, "leader refused fetch");
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                clean = false;
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cannot apply fetched data");
            }
        }
    }
    clean
}
