//! Prometheus metrics. Counters and latency histograms are bumped on the
//! request path; everything else is read from the broker's state when
//! `/metrics` is scraped, so a gauge can never go stale. Consumer lag is
//! gathered at scrape time too (see [`lag`]).

pub mod lag;

use std::path::PathBuf;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::metadata::image::ClusterImage;
use crate::metadata::store::MetadataView;
use crate::protocol::versions::SUPPORTED;
use crate::replication::throttle::Side;

/// The `api` label of request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabel {
    api: String,
}

/// The `topic` label of per-topic traffic counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

/// The `group` label of a consumer group's figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

/// A consumer group and the state it is in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupStateLabels {
    group: String,
    state: String,
}

/// A consumer group and one partition it has committed an offset for.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupPartitionLabels {
    group: String,
    topic: String,
    partition: String,
}

/// The `dir` label of a log directory's space.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirLabel {
    dir: String,
}

/// A request latency histogram: 0.5 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The `side` label of replication throttle counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SideLabel {
    side: String,
}

/// What one side of replication throttling counts (see
/// `replication::quota`).
#[derive(Clone, Debug, Default)]
pub struct SideCounters {
    /// Bytes of throttled partitions replicated, counted against the
    /// side's rate.
    pub bytes: Counter,
    /// Partitions left out of a fetch (or its answer) because the side was
    /// over its rate.
    pub held_back: Counter,
}

/// The ISR changes of the partitions a broker leads, whoever made them
/// (counted by `topic::TopicRegistry` as the metadata brings them).
#[derive(Clone, Debug, Default)]
pub struct IsrCounters {
    /// Changes that dropped replicas.
    pub shrinks: Counter,
    /// Changes that took replicas back.
    pub expands: Counter,
}

/// What the log cleaner counts (see `log_cleaner`).
#[derive(Clone, Debug, Default)]
pub struct CleanerCounters {
    /// Cleanings finished and swapped in.
    pub cleanings: Counter,
    /// Bytes of segments cleaned (their size before).
    pub bytes_cleaned: Counter,
    /// Bytes those segments shrank by.
    pub bytes_reclaimed: Counter,
    /// Records removed.
    pub records_removed: Counter,
    /// The largest dirty ratio among compacted logs at the last check, in
    /// percent.
    pub max_dirty_percent: Gauge,
    /// Memory of the key map at its largest in the last cleaning.
    pub map_bytes: Gauge,
    /// When a cleaner thread last looked for work (ms since the epoch;
    /// 0: never).
    pub last_run_ms: Gauge,
    /// Cleanings that failed (I/O, undecodable data); the log is left as
    /// it was.
    pub failures: Counter,
}

/// What the network side counts.
pub struct Counters {
    requests: Family<ApiLabel, Counter>,
    /// Time from a request's arrival to its answer, by API.
    latency: Family<ApiLabel, Histogram, fn() -> Histogram>,
    /// One counter and histogram per API key, shared with `requests` and
    /// `latency`, so counting a request takes no lookup.
    by_key: Vec<Option<(Counter, Histogram)>>,
    /// Bytes of request frames read.
    pub received_bytes: Counter,
    /// Bytes of response frames written.
    pub sent_bytes: Counter,
    /// Connections accepted since start.
    pub connections_accepted: Counter,
    /// Connections open now.
    pub connections_open: Gauge,
    /// Connections that failed to authenticate (a TLS handshake refused).
    pub failed_authentication: Counter,
    /// Requests answered with a quota's throttle time.
    pub throttled: Counter,
    /// Bytes replicated of throttled partitions, by side.
    replication_throttled_bytes: Family<SideLabel, Counter>,
    /// Partitions held back by a replication throttle, by side.
    replication_held_back: Family<SideLabel, Counter>,
    /// ISR changes made for partitions led here.
    isr: IsrCounters,
    /// Bytes of record batches producers wrote, by topic.
    topic_bytes_in: Family<TopicLabel, Counter>,
    /// Records producers wrote, by topic.
    topic_messages_in: Family<TopicLabel, Counter>,
    /// Bytes of record batches sent to consumers (not followers), by topic.
    topic_bytes_out: Family<TopicLabel, Counter>,
    /// Scrapes at which a partition leader could not be asked for the high
    /// watermarks consumer lag needs.
    pub lag_lookup_failures: Counter,
    /// The log cleaner's figures.
    pub cleaner: CleanerCounters,
}

impl Default for Counters {
    fn default() -> Self {
        let requests = Family::<ApiLabel, Counter>::default();
        let latency = Family::<ApiLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let mut by_key = Vec::new();
        for (api, _, _) in SUPPORTED {
            let key = *api as i16 as usize;
            if by_key.len() <= key {
                by_key.resize(key + 1, None);
            }
            let label = ApiLabel {
                api: format!("{api:?}"),
            };
            by_key[key] = Some((
                requests.get_or_create(&label).clone(),
                latency.get_or_create(&label).clone(),
            ));
        }
        Counters {
            requests,
            latency,
            by_key,
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            failed_authentication: Counter::default(),
            throttled: Counter::default(),
            replication_throttled_bytes: Family::default(),
            replication_held_back: Family::default(),
            isr: IsrCounters::default(),
            topic_bytes_in: Family::default(),
            topic_messages_in: Family::default(),
            topic_bytes_out: Family::default(),
            lag_lookup_failures: Counter::default(),
            cleaner: CleanerCounters::default(),
        }
    }
}

impl Counters {
    /// The counters of one side of replication throttling, shared with
    /// the code that measures it.
    pub fn replication(&self, side: Side) -> SideCounters {
        let label = SideLabel {
            side: side.label().to_string(),
        };
        SideCounters {
            bytes: self
                .replication_throttled_bytes
                .get_or_create(&label)
                .clone(),
            held_back: self.replication_held_back.get_or_create(&label).clone(),
        }
    }

    /// The counters of ISR changes, shared with the code that sees them.
    pub fn isr(&self) -> IsrCounters {
        self.isr.clone()
    }

    /// Counts one request of `api`.
    pub fn request(&self, api: ApiKey) {
        if let Some(Some((c, _))) = self.by_key.get(api as i16 as usize) {
            c.inc();
        }
    }

    /// Records that a request of `api` was answered `took` after it
    /// arrived (a long poll's or acks=all produce's wait included, as in
    /// Kafka's TotalTimeMs).
    pub fn answered(&self, api: ApiKey, took: Duration) {
        if let Some(Some((_, h))) = self.by_key.get(api as i16 as usize) {
            h.observe(took.as_secs_f64());
        }
    }

    /// Counts a batch producers wrote to `topic`: its bytes and records.
    /// Once per partition written, never per record.
    pub fn produced(&self, topic: &str, bytes: u64, records: u64) {
        let label = TopicLabel {
            topic: topic.to_string(),
        };
        self.topic_bytes_in.get_or_create(&label).inc_by(bytes);
        self.topic_messages_in.get_or_create(&label).inc_by(records);
    }

    /// Counts bytes of `topic` sent to a consumer.
    pub fn consumed(&self, topic: &str, bytes: u64) {
        self.topic_bytes_out
            .get_or_create(&TopicLabel {
                topic: topic.to_string(),
            })
            .inc_by(bytes);
    }
}

/// This broker's share of the cluster's partitions, as the metadata says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCounts {
    /// Partitions with a replica here.
    pub replicas: i64,
    /// Partitions this broker leads.
    pub leaders: i64,
    /// Partitions led here whose ISR is smaller than their replica set.
    pub under_replicated: i64,
    /// Partitions led here whose ISR is below their `min.insync.replicas`:
    /// acks=all producers are refused.
    pub under_min_isr: i64,
    /// Partitions of the whole cluster without a leader.
    pub offline: i64,
}

/// Counts partitions for broker `me`. `default_min_isr` applies to topics
/// without their own `min.insync.replicas`.
pub fn partition_counts(image: &ClusterImage, me: i32, default_min_isr: i32) -> PartitionCounts {
    let mut c = PartitionCounts::default();
    for topic in image.topics.values() {
        let min_isr = topic
            .configs
            .get("min.insync.replicas")
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(default_min_isr);
        for p in &topic.partitions {
            if p.leader < 0 {
                c.offline += 1;
            }
            if p.replicas.contains(&me) {
                c.replicas += 1;
            }
            if p.leader == me {
                c.leaders += 1;
                if p.isr.len() < p.replicas.len() {
                    c.under_replicated += 1;
                }
                if (p.isr.len() as i64) < i64::from(min_isr) {
                    c.under_min_isr += 1;
                }
            }
        }
    }
    c
}

/// The process's own figures, under the names Prometheus' client
/// libraries use (`process_*`), so the usual dashboards find them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time.
    pub cpu_seconds: f64,
    /// Resident memory.
    pub resident_bytes: u64,
    /// Open file descriptors (sockets and segment files).
    pub open_fds: u64,
}

impl ProcessStats {
    /// Reads them for this process; what cannot be read stays zero.
    pub fn read() -> Self {
        use nix::sys::resource::{getrusage, UsageWho};
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        ProcessStats {
            cpu_seconds: getrusage(UsageWho::RUSAGE_SELF)
                .map(|u| seconds(u.user_time()) + seconds(u.system_time()))
                .unwrap_or(0.0),
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| vm_rss_bytes(&s))
                .unwrap_or(0),
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        }
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The space of the file system holding one log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpace {
    /// The directory, as `log.dirs` names it.
    pub dir: PathBuf,
    /// Size of its file system.
    pub capacity_bytes: u64,
    /// What an unprivileged process can still write there (the broker
    /// runs as one).
    pub free_bytes: u64,
}

impl DirSpace {
    /// Reads it now; `None` when the file system cannot be asked.
    pub fn read(dir: &std::path::Path) -> Option<DirSpace> {
        let s = nix::sys::statvfs::statvfs(dir).ok()?;
        let fragment = s.fragment_size();
        Some(DirSpace {
            dir: dir.to_path_buf(),
            capacity_bytes: s.blocks().saturating_mul(fragment),
            free_bytes: s.blocks_available().saturating_mul(fragment),
        })
    }
}

fn render_cleaner(r: &mut Registry, c: &CleanerCounters) {
    for (name, help, counter) in [
        ("log_cleaner_cleanings", "Cleanings of compacted logs finished", &c.cleanings),
        ("log_cleaner_bytes_cleaned", "Bytes of segments the log cleaner rewrote (their size before)", &c.bytes_cleaned),
        ("log_cleaner_bytes_reclaimed", "Bytes the log cleaner freed", &c.bytes_reclaimed),
        ("log_cleaner_records_removed", "Records the log cleaner removed: superseded, tombstones past delete.retention.ms, records without a key", &c.records_removed),
        ("log_cleaner_failures", "Cleanings that failed and left their log as it was (see the broker log)", &c.failures),
    ] {
        r.register(name, help, counter.clone());
    }
    r.register(
        "log_cleaner_max_dirty_percent",
        "The largest share, in percent, of a compacted log on this broker not yet cleaned, at the cleaner's last check",
        c.max_dirty_percent.clone(),
    );
    r.register(
        "log_cleaner_map_bytes",
        "Memory the cleaner's key map took at its largest in the last cleaning (at most log.cleaner.dedupe.buffer.size)",
        c.map_bytes.clone(),
    );
    let last = c.last_run_ms.get();
    gauge(
        r,
        "log_cleaner_time_since_last_run_ms",
        "Milliseconds since a cleaner thread last looked for logs to clean (-1: not yet)",
        if last > 0 {
            crate::clock::now_ms().saturating_sub(last)
        } else {
            -1
        },
    );
}

/// Everything a broker reports at one scrape.
pub struct BrokerSnapshot<'a> {
    /// This node.
    pub node_id: i32,
    /// The metadata this node has applied.
    pub metadata: &'a MetadataView,
    /// The active controller, if known.
    pub active_controller: Option<i32>,
    /// The metadata quorum's Raft term as this node sees it.
    pub quorum_epoch: u64,
    /// Connections and requests the controller listener refused.
    pub controller_refusals: u64,
    /// Request-path counters; `None` on a dedicated controller.
    pub counters: Option<&'a Counters>,
    /// Partition counts; `None` on a dedicated controller.
    pub partitions: Option<PartitionCounts>,
    /// Bytes of this broker's partition logs on disk.
    pub log_bytes: Option<u64>,
    /// Incremental fetch sessions cached and the partitions they hold;
    /// `None` on a dedicated controller.
    pub fetch_sessions: Option<(usize, usize)>,
    /// The file systems of its log directories.
    pub log_dirs: Vec<DirSpace>,
    /// The consumer groups this broker coordinates, with their lag;
    /// `None` on a dedicated controller.
    pub groups: Option<&'a [lag::GroupLag]>,
    /// The process.
    pub process: ProcessStats,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// A gauge's value from an unsigned count.
fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The consumer groups' figures: state, members, committed offsets and
/// lag. A group's total is left out when a partition's lag is unknown, so
/// it is never an underestimate that looks whole.
fn render_groups(r: &mut Registry, groups: &[lag::GroupLag]) {
    let state = Family::<GroupStateLabels, Gauge>::default();
    let members = Family::<GroupLabel, Gauge>::default();
    let committed = Family::<GroupPartitionLabels, Gauge>::default();
    let partition_lag = Family::<GroupPartitionLabels, Gauge>::default();
    let total_lag = Family::<GroupLabel, Gauge>::default();
    for g in groups {
        let group = GroupLabel {
            group: g.group.clone(),
        };
        state
            .get_or_create(&GroupStateLabels {
                group: g.group.clone(),
                state: g.state.to_string(),
            })
            .set(1);
        members.get_or_create(&group).set(signed(g.members as u64));
        for p in &g.partitions {
            let labels = GroupPartitionLabels {
                group: g.group.clone(),
                topic: p.topic.clone(),
                partition: p.partition.to_string(),
            };
            committed.get_or_create(&labels).set(p.committed);
            if let Some(lag) = p.lag() {
                partition_lag.get_or_create(&labels).set(lag);
            }
        }
        if let Some(total) = g.total_lag() {
            total_lag.get_or_create(&group).set(total);
        }
    }
    r.register(
        "consumer_group_state",
        "1 for the state each consumer group coordinated here is in (Empty, Stable, PreparingRebalance, ...)",
        state,
    );
    r.register(
        "consumer_group_members",
        "Members of each consumer group coordinated here",
        members,
    );
    r.register(
        "consumer_group_committed_offset",
        "Offset each consumer group committed for a partition: the next record it will read",
        committed,
    );
    r.register(
        "consumer_group_lag",
        "Records of a partition a consumer group has not committed yet: the partition's high watermark minus the committed offset (never below 0)",
        partition_lag,
    );
    r.register(
        "consumer_group_total_lag",
        "A consumer group's lag summed over its partitions; absent while a partition's high watermark cannot be read",
        total_lag,
    );
}

/// Renders a scrape in the Prometheus text format.
pub fn render(s: &BrokerSnapshot<'_>) -> String {
    let mut root = Registry::default();
    let cpu = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    cpu.inc_by(s.process.cpu_seconds);
    root.register("process_cpu_seconds", "User and system CPU time", cpu);
    gauge(
        &mut root,
        "process_resident_memory_bytes",
        "Resident memory",
        i64::try_from(s.process.resident_bytes).unwrap_or(i64::MAX),
    );
    gauge(
        &mut root,
        "process_open_fds",
        "Open file descriptors",
        i64::try_from(s.process.open_fds).unwrap_or(i64::MAX),
    );
    let r = root.sub_registry_with_prefix("gregor");
    let image = &s.metadata.image;
    let me = image.brokers.get(&s.node_id);
    gauge(r, "node_id", "This node's node.id", i64::from(s.node_id));
    gauge(
        r,
        "active_controller",
        "Node id of the metadata quorum's active controller (-1: none known)",
        s.active_controller.map_or(-1, i64::from),
    );
    gauge(
        r,
        "metadata_quorum_epoch",
        "The metadata quorum's epoch (Raft term) as this node sees it; it grows with every election",
        i64::try_from(s.quorum_epoch).unwrap_or(i64::MAX),
    );
    gauge(
        r,
        "metadata_applied_index",
        "Index of the last metadata log entry this node applied",
        i64::try_from(s.metadata.applied_index).unwrap_or(i64::MAX),
    );
    let refused = Counter::<u64>::default();
    refused.inc_by(s.controller_refusals);
    r.register(
        "controller_listener_refused",
        "Connections and requests the controller listener refused: a failed TLS handshake, or a principal without CLUSTER_ACTION",
        refused,
    );
    let fenced = image.brokers.values().filter(|b| b.fenced).count();
    gauge(
        r,
        "cluster_brokers_unfenced",
        "Registered brokers the controller considers alive",
        (image.brokers.len() - fenced) as i64,
    );
    gauge(
        r,
        "cluster_brokers_fenced",
        "Registered brokers the controller has fenced",
        fenced as i64,
    );
    if let Some(c) = s.counters {
        gauge(
            r,
            "broker_fenced",
            "1 while this broker is unregistered or fenced",
            i64::from(me.is_none_or(|b| b.fenced)),
        );
        r.register(
            "requests",
            "Kafka requests received, by API",
            c.requests.clone(),
        );
        r.register(
            "network_received_bytes",
            "Bytes of Kafka request frames read",
            c.received_bytes.clone(),
        );
        r.register(
            "network_sent_bytes",
            "Bytes of Kafka response frames written",
            c.sent_bytes.clone(),
        );
        r.register(
            "connections_accepted",
            "Kafka connections accepted",
            c.connections_accepted.clone(),
        );
        r.register(
            "connections_open",
            "Kafka connections open now",
            c.connections_open.clone(),
        );
        r.register(
            "failed_authentication",
            "Kafka connections refused while authenticating (TLS handshake failures, SASL failures)",
            c.failed_authentication.clone(),
        );
        r.register(
            "throttled_requests",
            "Requests answered with a throttle time: their client went over its quota",
            c.throttled.clone(),
        );
        r.register(
            "replication_throttled_bytes",
            "Bytes of partitions listed in *.replication.throttled.replicas replicated by this broker, as leader (sent) or follower (fetched), counted against its *.replication.throttled.rate",
            c.replication_throttled_bytes.clone(),
        );
        r.register(
            "replication_held_back",
            "Partitions a replication throttle left out of a fetch (follower) or of its answer (leader) because the rate was over its quota",
            c.replication_held_back.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, by API (waits for acks=all and fetch long polls included)",
            c.latency.clone(),
        );
        r.register(
            "isr_shrinks",
            "ISR changes of partitions led here that dropped replicas (asked by this leader, or made by the controller when it fenced a broker)",
            c.isr.shrinks.clone(),
        );
        r.register(
            "isr_expands",
            "ISR changes of partitions led here that took replicas back",
            c.isr.expands.clone(),
        );
        r.register(
            "topic_bytes_in",
            "Bytes of record batches producers wrote to partitions led here, by topic (replication not included)",
            c.topic_bytes_in.clone(),
        );
        r.register(
            "topic_messages_in",
            "Records producers wrote to partitions led here, by topic",
            c.topic_messages_in.clone(),
        );
        r.register(
            "topic_bytes_out",
            "Bytes of record batches sent to consumers from partitions led here, by topic (replication not included)",
            c.topic_bytes_out.clone(),
        );
        r.register(
            "consumer_lag_lookup_failures",
            "Times a scrape could not ask a partition leader for the high watermarks consumer lag needs; that leader's partitions then have no lag series",
            c.lag_lookup_failures.clone(),
        );
        render_cleaner(r, &c.cleaner);
    }
    if let Some(groups) = s.groups {
        render_groups(r, groups);
    }
    if let Some(p) = s.partitions {
        for (name, help, value) in [
            (
                "partition_replicas",
                "Partitions with a replica on this broker",
                p.replicas,
            ),
            (
                "partition_leaders",
                "Partitions this broker leads",
                p.leaders,
            ),
            (
                "under_replicated_partitions",
                "Partitions led here with fewer in-sync replicas than replicas",
                p.under_replicated,
            ),
            (
                "under_min_isr_partitions",
                "Partitions led here with fewer in-sync replicas than min.insync.replicas",
                p.under_min_isr,
            ),
            (
                "cluster_offline_partitions",
                "Partitions of the cluster without a leader",
                p.offline,
            ),
        ] {
            gauge(r, name, help, value);
        }
    }
    if let Some(bytes) = s.log_bytes {
        gauge(
            r,
            "log_size_bytes",
            "Bytes of this broker's partition logs on disk",
            signed(bytes),
        );
    }
    if let Some((sessions, partitions)) = s.fetch_sessions {
        gauge(
            r,
            "fetch_sessions",
            "Incremental fetch sessions (KIP-227) this broker keeps",
            signed(sessions as u64),
        );
        gauge(
            r,
            "fetch_session_partitions",
            "Partitions held by this broker's incremental fetch sessions",
            signed(partitions as u64),
        );
    }
    if !s.log_dirs.is_empty() {
        let capacity = Family::<DirLabel, Gauge>::default();
        let free = Family::<DirLabel, Gauge>::default();
        for d in &s.log_dirs {
            let label = DirLabel {
                dir: d.dir.display().to_string(),
            };
            capacity.get_or_create(&label).set(signed(d.capacity_bytes));
            free.get_or_create(&label).set(signed(d.free_bytes));
        }
        r.register(
            "log_dir_capacity_bytes",
            "Size of the file system holding each log directory",
            capacity,
        );
        r.register(
            "log_dir_free_bytes",
            "Bytes still free for the broker on the file system holding each log directory",
            free,
        );
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &root);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::{PartitionImage, TopicImage};

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: vec![],
            removing: vec![],
            last_left_isr: None,
        }
    }

    fn topic(configs: &[(&str, &str)], partitions: Vec<PartitionImage>) -> TopicImage {
        TopicImage {
            id: uuid::Uuid::new_v4(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partitions: partitions.into_iter().collect(),
        }
    }

    #[test]
    fn counts_partitions_from_one_brokers_point_of_view() {
        let mut image = ClusterImage::default();
        image.topics.insert_mut(
            "a".into(),
            topic(
                &[],
                vec![
                    partition(&[1, 2, 3], &[1, 2, 3], 1), // healthy, led here
                    partition(&[1, 2, 3], &[1], 1),       // under min ISR 2
                    partition(&[2, 3, 1], &[2, 3], 2),    // follower out of ISR
                    partition(&[2, 3], &[], -1),          // offline, not here
                ],
            ),
        );
        image.topics.insert_mut(
            "b".into(),
            topic(
                &[("min.insync.replicas", "3")],
                vec![partition(&[1, 2, 3], &[1, 2], 1)],
            ),
        );
        let cases = [
            (
                1,
                PartitionCounts {
                    replicas: 4,
                    leaders: 3,
                    under_replicated: 2,
                    under_min_isr: 2,
                    offline: 1,
                },
            ),
            (
                2,
                PartitionCounts {
                    replicas: 5,
                    leaders: 1,
                    under_replicated: 1,
                    under_min_isr: 0,
                    offline: 1,
                },
            ),
            (
                4,
                PartitionCounts {
                    offline: 1,
                    ..Default::default()
                },
            ),
        ];
        for (me, want) in cases {
            assert_eq!(partition_counts(&image, me, 2), want, "broker {me}");
        }
    }

    #[test]
    fn renders_counters_and_gauges_in_the_text_format() {
        let counters = Counters::default();
        counters.request(ApiKey::Produce);
        counters.request(ApiKey::Produce);
        counters.request(ApiKey::Fetch);
        counters.received_bytes.inc_by(100);
        counters.replication(Side::Leader).bytes.inc_by(5);
        counters.replication(Side::Follower);
        counters.answered(ApiKey::Produce, Duration::from_millis(3));
        counters.produced("t", 100, 4);
        counters.consumed("t", 60);
        counters.isr().shrinks.inc();
        let view = MetadataView {
            image: std::sync::Arc::new(ClusterImage::default()),
            applied_index: 7,
        };
        let text = render(&BrokerSnapshot {
            node_id: 3,
            metadata: &view,
            active_controller: Some(1),
            quorum_epoch: 5,
            controller_refusals: 2,
            counters: Some(&counters),
            partitions: Some(PartitionCounts::default()),
            log_bytes: Some(42),
            fetch_sessions: Some((2, 7)),
            log_dirs: vec![DirSpace {
                dir: "/var/lib/gregor".into(),
                capacity_bytes: 1000,
                free_bytes: 250,
            }],
            groups: Some(&[lag::GroupLag {
                group: "g".into(),
                state: "Stable",
                members: 2,
                partitions: vec![
                    lag::PartitionLag {
                        topic: "t".into(),
                        partition: 0,
                        committed: 5,
                        high_watermark: Some(9),
                    },
                    lag::PartitionLag {
                        topic: "t".into(),
                        partition: 1,
                        committed: 3,
                        high_watermark: None,
                    },
                ],
            }]),
            process: ProcessStats {
                cpu_seconds: 1.5,
                resident_bytes: 3 << 20,
                open_fds: 12,
            },
        });
        for line in [
            "gregor_requests_total{api=\"Produce\"} 2",
            "gregor_requests_total{api=\"Fetch\"} 1",
            "gregor_requests_total{api=\"Metadata\"} 0",
            "gregor_network_received_bytes_total 100",
            "gregor_replication_throttled_bytes_total{side=\"leader\"} 5",
            "gregor_replication_throttled_bytes_total{side=\"follower\"} 0",
            "gregor_replication_held_back_total{side=\"follower\"} 0",
            "gregor_broker_fenced 1",
            "gregor_active_controller 1",
            "gregor_metadata_quorum_epoch 5",
            "gregor_metadata_applied_index 7",
            "gregor_controller_listener_refused_total 2",
            "gregor_log_size_bytes 42",
            "gregor_fetch_sessions 2",
            "gregor_fetch_session_partitions 7",
            "gregor_log_dir_capacity_bytes{dir=\"/var/lib/gregor\"} 1000",
            "gregor_log_dir_free_bytes{dir=\"/var/lib/gregor\"} 250",
            "gregor_request_duration_seconds_count{api=\"Produce\"} 1",
            "gregor_request_duration_seconds_bucket{le=\"0.004\",api=\"Produce\"} 1",
            "gregor_request_duration_seconds_count{api=\"Fetch\"} 0",
            "gregor_topic_bytes_in_total{topic=\"t\"} 100",
            "gregor_topic_messages_in_total{topic=\"t\"} 4",
            "gregor_topic_bytes_out_total{topic=\"t\"} 60",
            "gregor_isr_shrinks_total 1",
            "gregor_isr_expands_total 0",
            "gregor_consumer_group_state{group=\"g\",state=\"Stable\"} 1",
            "gregor_consumer_group_members{group=\"g\"} 2",
            "gregor_consumer_group_committed_offset{group=\"g\",topic=\"t\",partition=\"0\"} 5",
            "gregor_consumer_group_committed_offset{group=\"g\",topic=\"t\",partition=\"1\"} 3",
            "gregor_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"0\"} 4",
            "process_cpu_seconds_total 1.5",
            "process_resident_memory_bytes 3145728",
            "process_open_fds 12",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // Partition 1's high watermark is unknown: no lag for it, and no
        // total that would look whole.
        assert!(
            !text.contains("gregor_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"1\"}")
        );
        assert!(!text.contains("gregor_consumer_group_total_lag{"), "{text}");
    }

    #[test]
    fn resident_memory_from_proc_status() {
        let status = "Name:\tgregor\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(2 << 20));
        assert_eq!(vm_rss_bytes("Name:\tgregor\n"), None);
        assert!(ProcessStats::read().resident_bytes > 0);
    }
}
