//! Prometheus metrics. Counters are bumped on the request path; everything
//! else is read from the broker's state when `/metrics` is scraped, so a
//! gauge can never go stale.

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// What the network side counts.
pub struct Counters {
    requests: Family<ApiLabel, Counter>,
    /// One counter per API key, shared with `requests`, so counting a
    /// request is one atomic add without a lookup.
    by_key: Vec<Option<Counter>>,
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
}

impl Default for Counters {
    fn default() -> Self {
        let requests = Family::<ApiLabel, Counter>::default();
        let mut by_key = Vec::new();
        for (api, _, _) in SUPPORTED {
            let key = *api as i16 as usize;
            if by_key.len() <= key {
                by_key.resize(key + 1, None);
            }
            by_key[key] = Some(
                requests
                    .get_or_create(&ApiLabel {
                        api: format!("{api:?}"),
                    })
                    .clone(),
            );
        }
        Counters {
            requests,
            by_key,
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            failed_authentication: Counter::default(),
            throttled: Counter::default(),
            replication_throttled_bytes: Family::default(),
            replication_held_back: Family::default(),
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

    /// Counts one request of `api`.
    pub fn request(&self, api: ApiKey) {
        if let Some(Some(c)) = self.by_key.get(api as i16 as usize) {
            c.inc();
        }
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
    /// The process.
    pub process: ProcessStats,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
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
            i64::try_from(bytes).unwrap_or(i64::MAX),
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
            partitions,
        }
    }

    #[test]
    fn counts_partitions_from_one_brokers_point_of_view() {
        let mut image = ClusterImage::default();
        image.topics.insert(
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
        image.topics.insert(
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
    }

    #[test]
    fn resident_memory_from_proc_status() {
        let status = "Name:\tgregor\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(2 << 20));
        assert_eq!(vm_rss_bytes("Name:\tgregor\n"), None);
        assert!(ProcessStats::read().resident_bytes > 0);
    }
}
