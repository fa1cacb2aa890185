//! The follower's side of replication: one task per leader broker fetches,
//! with Kafka's own Fetch request (v12, as a replica, in an incremental
//! fetch session: see `session`), every partition this broker follows on
//! that leader, appends what comes back, takes the
//! leader's high watermark, and truncates where the leader says the logs
//! diverge. Partitions under a follower replication throttle are left out
//! of its fetches while the throttle says they wait (see `throttle`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use gregor_client::Connection;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use crate::metadata::store::MetadataView;
use crate::partition::Partition;
use crate::security::sasl::login::{log_in, Login};

use super::answer::{self, VERSION};
use super::quota::ReplicationQuotas;
use super::session::FollowerSession;
use super::throttle::{self, Side, Throttles};

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
    /// This broker's replication throttles.
    pub quotas: Arc<ReplicationQuotas>,
}

/// Whether each followed partition listed for the follower throttle was
/// caught up with its leader's high watermark at its last fetch (Kafka's
/// "lag <= 0"): an in-sync follower, which a throttle never holds back.
/// Unknown (not in sync) until its first fetch. By topic, then partition.
#[derive(Debug, Default)]
struct CaughtUp(HashMap<String, HashMap<i32, bool>>);

impl CaughtUp {
    fn get(&self, topic: &str, partition: i32) -> bool {
        self.0
            .get(topic)
            .and_then(|t| t.get(&partition))
            .copied()
            .unwrap_or(false)
    }

    fn set(&mut self, topic: &str, partition: i32, caught_up: bool) {
        match self.0.get_mut(topic) {
            Some(t) => {
                t.insert(partition, caught_up);
            }
            None => {
                self.0
                    .insert(topic.to_string(), HashMap::from([(partition, caught_up)]));
            }
        }
    }

    /// Keeps only what is known of `partitions`, or nothing when no
    /// partition is listed any more.
    fn keep(&mut self, partitions: &[Arc<Partition>], throttles: &Throttles) {
        if throttles.none_listed(Side::Follower) {
            self.0.clear();
            return;
        }
        if self.0.is_empty() {
            return;
        }
        let followed: HashSet<(&str, i32)> = partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.index))
            .collect();
        for (topic, states) in &mut self.0 {
            states.retain(|index, _| followed.contains(&(topic.as_str(), *index)));
        }
        self.0.retain(|_, states| !states.is_empty());
    }
}

/// How long a follower whose every partition waits for its throttle
/// sleeps at most before it looks again.
const THROTTLED_SLEEP_MAX: Duration = Duration::from_secs(1);

/// Partitions followed, by leader.
pub type Followed = BTreeMap<i32, Vec<Arc<Partition>>>;

/// The partitions followed from one leader, and where each is in that
/// list by topic and index: a fetch answer names thousands of them when
/// the cluster has that many.
#[derive(Default)]
struct FromLeader {
    partitions: Vec<Arc<Partition>>,
    by_name: HashMap<String, HashMap<i32, usize>>,
}

impl FromLeader {
    fn new(partitions: Vec<Arc<Partition>>) -> Self {
        let mut by_name: HashMap<String, HashMap<i32, usize>> = HashMap::new();
        for (i, p) in partitions.iter().enumerate() {
            by_name
                .entry(p.topic.clone())
                .or_default()
                .insert(p.index, i);
        }
        FromLeader {
            partitions,
            by_name,
        }
    }

    fn get(&self, topic: &str, index: i32) -> Option<&Arc<Partition>> {
        let i = *self.by_name.get(topic)?.get(&index)?;
        self.partitions.get(i)
    }
}

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
    mut followed: watch::Receiver<Followed>,
) {
    let mut conn: Option<Connection> = None;
    // When the leader ends the SASL session: replace the connection first.
    let mut session_ends: Option<tokio::time::Instant> = None;
    let mut caught_up = CaughtUp::default();
    let mut session = FollowerSession::default();
    // Taken again only when the metadata changed who follows what.
    followed.mark_changed();
    let mut from_leader = FromLeader::default();
    loop {
        if session_ends.is_some_and(|at| tokio::time::Instant::now() >= at) {
            conn = None;
            session_ends = None;
        }
        if followed.has_changed().unwrap_or(true) {
            from_leader = FromLeader::new(
                followed
                    .borrow_and_update()
                    .get(&leader)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        let partitions = &from_leader.partitions;
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
        let current = image.borrow().image.clone();
        let throttles = settings.quotas.throttles(&current);
        caught_up.keep(partitions, &throttles);
        let (request, held) = build(&settings, partitions, &throttles, &caught_up, &mut session);
        settings.quotas.held_back(Side::Follower, held as u64);
        let Some(request) = request else {
            let pause = if held > 0 {
                // Every partition waits for the throttle: until its rate
                // is back within the quota.
                let wait = settings
                    .quotas
                    .wait_ms(Side::Follower, throttles.rate(Side::Follower));
                Duration::from_millis(wait).clamp(Duration::from_millis(10), THROTTLED_SLEEP_MAX)
            } else {
                // Every partition changed role; wait for the next metadata.
                Duration::from_millis(50)
            };
            tokio::time::sleep(pause).await;
            continue;
        };
        let timeout = settings.max_wait + Duration::from_secs(10);
        let throttled = Throttled {
            throttles: &throttles,
            quotas: &settings.quotas,
        };
        let mut clean = true;
        // Each partition is appended as soon as it is read: the answer
        // is never held whole.
        let fetched = tokio::time::timeout(timeout, async {
            let mut body = connection.send_streamed(&request, VERSION).await?;
            answer::read(&mut body, |topic, data| {
                clean &= apply(&from_leader, topic, data, &throttled, &mut caught_up);
            })
            .await
        })
        .await;
        match fetched {
            Ok(Ok(head)) => {
                session.answered(head.error_code, head.session_id);
                if !clean {
                    // Errors (not leader, fenced epoch): the metadata is
                    // about to change; don't spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(leader, error = %e, "fetch from leader failed");
                conn = None;
                session.restart();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => {
                tracing::debug!(leader, "fetch from leader timed out");
                conn = None;
                session.restart();
            }
        }
    }
}

/// The fetch of every followed partition that has a position, except
/// those the follower throttle holds back, in `session`; and how many it
/// held back.
fn build(
    settings: &FetchSettings,
    partitions: &[Arc<Partition>],
    throttles: &Throttles,
    caught_up: &CaughtUp,
    session: &mut FollowerSession,
) -> (Option<FetchRequest>, usize) {
    // One look at the rate serves the whole fetch, as in Kafka.
    let over_quota = !throttles.none_listed(Side::Follower)
        && settings
            .quotas
            .over_quota(Side::Follower, throttles.rate(Side::Follower));
    let mut held = 0;
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    for p in partitions {
        let Some(pos) = p.position() else { continue };
        if over_quota && throttles.listed(Side::Follower, &p.topic, p.index) {
            let in_sync = caught_up.get(&p.topic, p.index);
            if throttle::holds_back(true, in_sync, over_quota) {
                held += 1;
                continue;
            }
        }
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
        return (None, held);
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(settings.me);
    req.max_wait_ms = settings.max_wait.as_millis() as i32;
    req.min_bytes = 1;
    req.max_bytes = settings.max_bytes;
    session.prepare(&mut req, topics);
    (Some(req), held)
}

/// The follower throttle a response is measured against.
struct Throttled<'a> {
    throttles: &'a Throttles,
    quotas: &'a ReplicationQuotas,
}

/// Applies one partition of a fetch answer, noting whether it is caught
/// up and counting the bytes of a throttled one against the follower rate;
/// false when the leader reported an error for it.
fn apply(
    partitions: &FromLeader,
    topic: &str,
    d: PartitionData,
    throttled: &Throttled<'_>,
    caught_up: &mut CaughtUp,
) -> bool {
    let Some(p) = partitions.get(topic, d.partition_index) else {
        return true;
    };
    let Some(pos) = p.position() else {
        return true;
    };
    let mut clean = true;
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
        None => {
            let records = d.records.as_deref().unwrap_or_default();
            p.append_replicated(pos.epoch, records, d.high_watermark)
                .and_then(|()| {
                    // Records the leader deleted (retention,
                    // DeleteRecords) go here too.
                    if d.log_start_offset > p.watermarks().log_start_offset {
                        p.delete_records_before(d.log_start_offset).map(|_| ())
                    } else {
                        Ok(())
                    }
                })
                .map(|()| {
                    if throttled
                        .throttles
                        .listed(Side::Follower, &p.topic, p.index)
                    {
                        // In sync when nothing below the leader's
                        // high watermark is missing here.
                        let log_end = p.watermarks().log_end_offset;
                        caught_up.set(&p.topic, p.index, log_end >= d.high_watermark);
                        // Kafka counts every listed partition's
                        // bytes, in sync or not, so the rate bounds
                        // all of their replication traffic.
                        throttled
                            .quotas
                            .record(Side::Follower, records.len() as u64);
                    }
                })
        }
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
    clean
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::log::LogConfig;
    use crate::metadata::image::{ClusterImage, PartitionImage, TopicImage};
    use crate::metrics::SideCounters;
    use crate::replication::throttle::{FOLLOWER_RATE, FOLLOWER_REPLICAS};

    /// Broker 3's replica of partition 0 of `topic`, following broker 1.
    fn follower(dir: &std::path::Path, topic: &str) -> Arc<Partition> {
        let p =
            Partition::open(topic, 0, 3, &dir.join(topic), LogConfig::default()).expect("opens");
        p.apply(&PartitionImage {
            replicas: vec![1, 3],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: vec![3],
            removing: vec![],
            last_left_isr: None,
        });
        Arc::new(p)
    }

    fn topic(configs: &[(&str, &str)]) -> TopicImage {
        TopicImage {
            id: uuid::Uuid::nil(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partitions: Default::default(),
        }
    }

    /// The partitions in a fetch, by topic.
    fn asked(request: &Option<FetchRequest>) -> Vec<String> {
        request
            .iter()
            .flat_map(|r| &r.topics)
            .map(|t| t.topic.to_string())
            .collect()
    }

    #[test]
    fn a_follower_over_its_rate_leaves_out_listed_partitions_out_of_sync() {
        let dir = tempfile::tempdir().expect("dir");
        let (moving, other) = (
            follower(dir.path(), "moving"),
            follower(dir.path(), "other"),
        );
        let mut image = ClusterImage::default();
        image
            .topics
            .insert_mut("moving".into(), topic(&[(FOLLOWER_REPLICAS, "0:3")]));
        image.topics.insert_mut("other".into(), topic(&[]));
        std::sync::Arc::make_mut(&mut image.broker_configs).insert(
            String::new(),
            BTreeMap::from([(FOLLOWER_RATE.to_string(), "10".to_string())]),
        );
        let quotas = Arc::new(ReplicationQuotas::new(
            3,
            11,
            1000,
            SideCounters::default(),
            SideCounters::default(),
        ));
        let settings = FetchSettings {
            me: 3,
            listener: "INTERNAL".into(),
            tls: None,
            login: None,
            max_wait: Duration::from_millis(500),
            partition_max_bytes: 1 << 20,
            max_bytes: 10 << 20,
            quotas: quotas.clone(),
        };
        let throttles = quotas.throttles(&Arc::new(image));
        let partitions = [moving, other.clone()];
        let mut caught_up = CaughtUp::default();
        // Within the rate, everything is fetched.
        let (request, held) = build(
            &settings,
            &partitions,
            &throttles,
            &caught_up,
            &mut FollowerSession::default(),
        );
        assert_eq!(
            (asked(&request), held),
            (vec!["moving".into(), "other".into()], 0)
        );
        // Over it (10 bytes a second over 10 s: 100 bytes), the listed
        // partition waits; the other is fetched.
        quotas.record(Side::Follower, 101);
        let (request, held) = build(
            &settings,
            &partitions,
            &throttles,
            &caught_up,
            &mut FollowerSession::default(),
        );
        assert_eq!((asked(&request), held), (vec!["other".into()], 1));
        // Caught up with its leader, it is in sync and never waits.
        caught_up.set("moving", 0, true);
        let (request, held) = build(
            &settings,
            &partitions,
            &throttles,
            &caught_up,
            &mut FollowerSession::default(),
        );
        assert_eq!(held, 0);
        assert_eq!(asked(&request).len(), 2);
        // Only the listed partition waiting: no fetch at all.
        caught_up.set("moving", 0, false);
        let (request, held) = build(
            &settings,
            &partitions[..1],
            &throttles,
            &caught_up,
            &mut FollowerSession::default(),
        );
        assert_eq!((request.is_none(), held), (true, 1));
        // What is known of partitions no longer followed is forgotten.
        caught_up.keep(&[other], &throttles);
        assert!(!caught_up.get("moving", 0));
        assert!(caught_up.0.is_empty());
    }
}
