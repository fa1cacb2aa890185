//! Broker configuration: Kafka's property names, read from a properties file
//! and overridden by `GREGOR_*` environment variables.
//!
//! Every key is either used, or a Kafka tuning knob that Gregor does not need
//! (accepted and logged), or an error: a typo must not silently fall back to
//! a default.

pub mod listener;
pub mod properties;
pub mod quorum;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::log::LogConfig;

pub use listener::{Endpoint, Listener};
use properties::Property;

/// Why the configuration cannot be used. Each message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The properties file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File that failed.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A required key is absent.
    #[error("missing required setting `{0}`")]
    Missing(&'static str),
    /// A key Gregor does not know.
    #[error("unknown setting `{key}` (from {origin})")]
    Unknown {
        /// The key.
        key: String,
        /// File and line, or environment variable.
        origin: String,
    },
    /// A value that does not parse or is out of range.
    #[error("invalid value `{value}` for `{key}` (from {origin}): {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The offending value.
        value: String,
        /// File and line, or environment variable.
        origin: String,
        /// What was expected.
        reason: String,
    },
}

/// Defaults for per-topic settings, from the broker's `log.*` keys: the
/// log's own settings plus those the log does not act on itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    /// `log.segment.bytes`, `log.roll.*`, `log.retention.*`,
    /// `log.index.interval.bytes`, `message.max.bytes`, `log.flush.*`.
    pub config: LogConfig,
    /// `log.cleanup.policy`
    pub cleanup_policy: String,
    /// `min.insync.replicas`
    pub min_insync_replicas: i32,
}

#[cfg(test)]
impl LogDefaults {
    /// Small, fixed defaults for unit tests.
    pub fn for_tests() -> Self {
        LogDefaults {
            config: LogConfig {
                segment_ms: 1000,
                retention_ms: 5000,
                ..LogConfig::default()
            },
            cleanup_policy: "delete".into(),
            min_insync_replicas: 1,
        }
    }
}

/// Everything the broker reads from its configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`
    pub node_id: i32,
    /// `listeners`: where to bind, by listener name.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`: what clients are told, by listener name.
    pub advertised: BTreeMap<String, Endpoint>,
    /// `inter.broker.listener.name`
    pub inter_broker_listener: String,
    /// `controller.listener.names`: the listener the metadata quorum uses,
    /// if this node has one (a lone node needs none).
    pub controller_listener: Option<String>,
    /// `controller.quorum.voters`: node id → `host:port` of its controller
    /// listener. Without the setting, this node alone.
    pub voters: BTreeMap<i32, String>,
    /// `process.roles`
    pub roles: quorum::Roles,
    /// This node's controller listener as others reach it.
    pub controller_address: Option<String>,
    /// `controller.quorum.election.timeout.ms`
    pub controller_election_timeout_ms: u64,
    /// `broker.session.timeout.ms`: silence after which a broker is fenced.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.rack`
    pub broker_rack: Option<String>,
    /// `auto.leader.rebalance.enable`
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`
    pub leader_imbalance_check_interval_seconds: u64,
    /// `replica.lag.time.max.ms`: a follower behind for longer leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms`
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.max.bytes`
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`
    pub replica_fetch_response_max_bytes: i32,
    /// `metadata.log.dir` (default: the first of `log.dirs`).
    pub metadata_log_dir: PathBuf,
    /// `log.dirs` (or `log.dir`)
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`
    pub num_partitions: i32,
    /// `default.replication.factor`
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`
    pub auto_create_topics: bool,
    /// `delete.topic.enable`
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `http.listener` (`[host]:port`, Gregor's own): where `/livez`,
    /// `/readyz` and `/metrics` are served. Off when unset.
    pub http_listener: Option<Listener>,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms`
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`
    pub group_max_session_timeout_ms: u64,
    /// `offsets.topic.num.partitions`
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`
    pub offsets_topic_replication_factor: i16,
    /// `group.consumer.session.timeout.ms`
    pub group_consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`
    pub group_consumer_heartbeat_interval_ms: u64,
    /// Defaults for every topic's log.
    pub log: LogDefaults,
}

/// Kafka settings that tune the JVM broker's internals. Gregor has no use for
/// them but accepts them so an existing `server.properties` starts unchanged.
const ACCEPTED_AND_IGNORED: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "queued.max.requests",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

/// Tracks which keys have been consumed so leftovers can be reported.
struct Settings {
    props: BTreeMap<String, Property>,
}

impl Settings {
    fn take(&mut self, key: &str) -> Option<Property> {
        self.props.remove(key)
    }

    fn parse<T: FromStr>(&mut self, key: &str, what: &str) -> Result<Option<T>, ConfigError> {
        let Some(p) = self.take(key) else {
            return Ok(None);
        };
        p.value
            .parse::<T>()
            .map(Some)
            .map_err(|_| invalid(&p, format!("expected {what}")))
    }

    fn int<T: FromStr + PartialOrd + Copy + std::fmt::Display>(
        &mut self,
        key: &str,
        default: T,
        min: T,
    ) -> Result<T, ConfigError> {
        let origin = self.props.get(key).cloned();
        let value = self.parse::<T>(key, "an integer")?.unwrap_or(default);
        if value < min {
            if let Some(p) = origin {
                return Err(invalid(&p, format!("must be at least {min}")));
            }
        }
        Ok(value)
    }

    fn bool(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.parse(key, "true or false")?.unwrap_or(default))
    }

    fn string(&mut self, key: &str) -> Option<Property> {
        self.take(key)
    }
}

fn invalid(p: &Property, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: p.key.clone(),
        value: p.value.clone(),
        origin: p.origin.clone(),
        reason,
    }
}

impl BrokerConfig {
    /// Reads `path`, replaces `${env:NAME}` in its values with variables of
    /// `env` (Kafka's `EnvVarConfigProvider` syntax), applies `GREGOR_*`
    /// overrides from `env`, and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let mut props = properties::parse(&text, &path.display().to_string());
        for p in props.values_mut() {
            p.value =
                properties::expand_env(&p.value, &env).map_err(|var| ConfigError::Invalid {
                    key: p.key.clone(),
                    value: p.value.clone(),
                    origin: p.origin.clone(),
                    reason: format!("environment variable {var} is not set"),
                })?;
        }
        for (var, value) in &env {
            if let Some(key) = properties::env_key(var) {
                props.insert(
                    key.clone(),
                    Property {
                        key,
                        value: value.trim().to_string(),
                        origin: format!("environment variable {var}"),
                    },
                );
            }
        }
        Self::from_properties(props)
    }

    /// Validates parsed properties.
    pub fn from_properties(props: BTreeMap<String, Property>) -> Result<Self, ConfigError> {
        let mut s = Settings { props };
        let node_id = s
            .parse::<i32>("node.id", "an integer")?
            .or(s.parse::<i32>("broker.id", "an integer")?)
            .ok_or(ConfigError::Missing("node.id"))?;

        let protocol_map = match s.string("listener.security.protocol.map") {
            Some(p) => listener::parse_protocol_map(&p)?,
            None => listener::default_protocol_map(),
        };
        let listeners = match s.string("listeners") {
            Some(p) => listener::parse_listeners(&p, &protocol_map)?,
            None => listener::parse_listeners(
                &Property {
                    key: "listeners".into(),
                    value: "PLAINTEXT://:9092".into(),
                    origin: "default".into(),
                },
                &protocol_map,
            )?,
        };
        let advertised = match s.string("advertised.listeners") {
            Some(p) => listener::parse_advertised(&p, &listeners)?,
            None => listener::advertise_bound(&listeners),
        };
        let controller_listener =
            quorum::controller_listener(s.string("controller.listener.names"), &listeners)?;
        // Where the active controller reaches this node with the metadata
        // log when it is not a voter.
        let controller_address = controller_listener
            .as_ref()
            .and_then(|name| advertised.get(name))
            .map(|e: &Endpoint| format!("{}:{}", e.host, e.port));
        let advertised = advertised
            .into_iter()
            .filter(|(name, _)| Some(name) != controller_listener.as_ref())
            .collect();
        let roles = quorum::roles(s.string("process.roles"))?;
        if let Some(p) = s.string("controller.quorum.bootstrap.servers") {
            return Err(invalid(
                &p,
                "the quorum's members are fixed: list them in controller.quorum.voters".into(),
            ));
        }
        let voters = quorum::voters(
            s.string("controller.quorum.voters"),
            node_id,
            roles,
            controller_listener.as_deref(),
            &listeners,
        )?;
        let inter_broker_listener = match s.string("inter.broker.listener.name") {
            Some(p) if Some(&p.value) == controller_listener.as_ref() => {
                return Err(invalid(
                    &p,
                    "the controller listener serves the quorum only".into(),
                ))
            }
            Some(p) if listeners.iter().any(|l| l.name == p.value) => p.value,
            Some(p) => return Err(invalid(&p, "no listener has this name".into())),
            None => listeners
                .iter()
                .map(|l| l.name.clone())
                .find(|n| Some(n) != controller_listener.as_ref())
                .unwrap_or_default(),
        };
        if roles.broker && listeners.len() == usize::from(controller_listener.is_some()) {
            return Err(ConfigError::Missing("listeners"));
        }

        let log_dirs = s
            .string("log.dirs")
            .or_else(|| s.string("log.dir"))
            .ok_or(ConfigError::Missing("log.dirs"))?;
        let dirs: Vec<PathBuf> = log_dirs
            .value
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if dirs.is_empty() {
            return Err(invalid(
                &log_dirs,
                "expected one or more directories".into(),
            ));
        }

        // The finest unit given wins, as in Kafka; every one is still checked.
        let retention_ms_key = s.parse::<i64>("log.retention.ms", "an integer")?;
        let retention_minutes = s.parse::<i64>("log.retention.minutes", "an integer")?;
        let retention_hours = s.int("log.retention.hours", 168i64, -1)?;
        let retention_ms = retention_ms_key
            .or(retention_minutes.map(|m| m.saturating_mul(60_000)))
            .unwrap_or(retention_hours.saturating_mul(3_600_000));
        let roll_ms = s.parse::<i64>("log.roll.ms", "an integer")?;
        let roll_hours = s.int("log.roll.hours", 168i64, 1)?;
        let segment_ms = roll_ms.unwrap_or(roll_hours.saturating_mul(3_600_000));
        let cleanup_policy = match s.string("log.cleanup.policy") {
            Some(p) if p.value == "delete" => p.value,
            Some(p) => {
                return Err(invalid(
                    &p,
                    "only `delete` is supported (compaction is not built yet)".into(),
                ))
            }
            None => "delete".into(),
        };
        let log_append_time = match s.string("log.message.timestamp.type") {
            Some(t) if t.value == "CreateTime" => false,
            Some(t) if t.value == "LogAppendTime" => true,
            Some(t) => {
                return Err(invalid(
                    &t,
                    "expected `CreateTime` or `LogAppendTime`".into(),
                ))
            }
            None => false,
        };
        let log = LogDefaults {
            config: LogConfig {
                segment_bytes: s.int("log.segment.bytes", 1u64 << 30, 14)?,
                segment_ms,
                retention_ms,
                retention_bytes: s.int("log.retention.bytes", -1i64, -1)?,
                index_interval_bytes: s.int("log.index.interval.bytes", 4096u32, 0)?,
                max_message_bytes: s.int("message.max.bytes", 1_048_588u32, 0)?,
                flush_messages: s.int("log.flush.interval.messages", u64::MAX >> 1, 1)?,
                flush_ms: s.int("log.flush.interval.ms", i64::MAX, 0)?,
                log_append_time,
                // Kafka 4.4's default: no limit of its own.
                max_decompressed_message_bytes: LogConfig::default().max_decompressed_message_bytes,
            },
            cleanup_policy,
            min_insync_replicas: s.int("min.insync.replicas", 1i32, 1)?,
        };

        let metadata_log_dir = s
            .string("metadata.log.dir")
            .map(|p| PathBuf::from(p.value))
            .unwrap_or_else(|| dirs[0].clone());
        let config = BrokerConfig {
            node_id,
            listeners,
            advertised,
            inter_broker_listener,
            controller_listener,
            voters,
            roles,
            controller_address,
            controller_election_timeout_ms: s.int(
                "controller.quorum.election.timeout.ms",
                1000u64,
                10,
            )?,
            broker_session_timeout_ms: s.int("broker.session.timeout.ms", 9000u64, 1)?,
            broker_heartbeat_interval_ms: s.int("broker.heartbeat.interval.ms", 2000u64, 1)?,
            broker_rack: match s.string("broker.rack") {
                // An empty rack is a rack nobody meant: typically a variable
                // not filled in yet. Starting would spread replicas wrongly.
                Some(p) if p.value.is_empty() => {
                    return Err(invalid(&p, "a rack cannot be empty".into()))
                }
                p => p.map(|p| p.value),
            },
            auto_leader_rebalance: s.bool("auto.leader.rebalance.enable", true)?,
            leader_imbalance_check_interval_seconds: s.int(
                "leader.imbalance.check.interval.seconds",
                300u64,
                1,
            )?,
            replica_lag_time_max_ms: s.int("replica.lag.time.max.ms", 30_000u64, 1)?,
            replica_fetch_wait_max_ms: s.int("replica.fetch.wait.max.ms", 500u64, 0)?,
            replica_fetch_max_bytes: s.int("replica.fetch.max.bytes", 1_048_576i32, 1)?,
            replica_fetch_response_max_bytes: s.int(
                "replica.fetch.response.max.bytes",
                10_485_760i32,
                1,
            )?,
            metadata_log_dir,
            log_dirs: dirs,
            num_partitions: s.int("num.partitions", 1i32, 1)?,
            default_replication_factor: s.int("default.replication.factor", 1i16, 1)?,
            auto_create_topics: s.bool("auto.create.topics.enable", true)?,
            delete_topic_enable: s.bool("delete.topic.enable", true)?,
            socket_request_max_bytes: s.int("socket.request.max.bytes", 104_857_600usize, 64)?,
            http_listener: s
                .string("http.listener")
                .map(|p| listener::parse_http(&p))
                .transpose()?,
            retention_check_interval_ms: s.int("log.retention.check.interval.ms", 300_000u64, 1)?,
            group_initial_rebalance_delay_ms: s.int(
                "group.initial.rebalance.delay.ms",
                3000u64,
                0,
            )?,
            group_min_session_timeout_ms: s.int("group.min.session.timeout.ms", 6000u64, 1)?,
            group_max_session_timeout_ms: s.int("group.max.session.timeout.ms", 1_800_000u64, 1)?,
            offsets_topic_num_partitions: s.int("offsets.topic.num.partitions", 50i32, 1)?,
            offsets_topic_replication_factor: s.int("offsets.topic.replication.factor", 3i16, 1)?,
            group_consumer_session_timeout_ms: s.int(
                "group.consumer.session.timeout.ms",
                45_000u64,
                1,
            )?,
            group_consumer_heartbeat_interval_ms: s.int(
                "group.consumer.heartbeat.interval.ms",
                5_000u64,
                1,
            )?,
            log,
        };

        for key in ACCEPTED_AND_IGNORED {
            if let Some(p) = s.take(key) {
                tracing::info!(key = %p.key, origin = %p.origin, "setting accepted; Gregor does not need it");
            }
        }
        if let Some((_, p)) = s.props.into_iter().next() {
            return Err(ConfigError::Unknown {
                key: p.key,
                origin: p.origin,
            });
        }
        Ok(config)
    }

    /// The advertised endpoint of the named listener.
    pub fn advertised_endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.advertised.get(listener)
    }

    /// The listeners that speak the Kafka protocol (all but the controller's).
    pub fn kafka_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|l| Some(&l.name) != self.controller_listener.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_properties(properties::parse(text, "t"))
    }

    const BASE: &str = "node.id=1\nlog.dirs=/tmp/g\n";

    #[test]
    fn minimal_file_gets_kafka_defaults() {
        let c = load(BASE).expect("valid");
        assert_eq!(c.node_id, 1);
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.log.config.retention_ms, 168 * 3_600_000);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("log.dirs=/x\n", "node.id"),
            ("node.id=1\n", "log.dirs"),
            ("node.id=1\nlog.dirs=/x\nlog.dirz=/y\n", "log.dirz"),
            (
                "node.id=1\nlog.dirs=/x\nnum.partitions=zero\n",
                "num.partitions",
            ),
            (
                "node.id=1\nlog.dirs=/x\nnum.partitions=0\n",
                "num.partitions",
            ),
            ("node.id=x\nlog.dirs=/x\n", "node.id"),
            (
                "node.id=1\nlog.dirs=/x\nauto.create.topics.enable=yes\n",
                "auto.create.topics.enable",
            ),
            (
                "node.id=1\nlog.dirs=/x\ninter.broker.listener.name=NOPE\n",
                "inter.broker.listener.name",
            ),
        ];
        for (text, key) in cases {
            let err = load(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn retention_units_follow_kafkas_precedence() {
        let c = load(&format!(
            "{BASE}log.retention.hours=1\nlog.retention.minutes=2\n"
        ))
        .expect("ok");
        assert_eq!(c.log.config.retention_ms, 120_000);
        let c = load(&format!(
            "{BASE}log.retention.minutes=2\nlog.retention.ms=5\n"
        ))
        .expect("ok");
        assert_eq!(c.log.config.retention_ms, 5);
    }

    #[test]
    fn kafka_tuning_knobs_are_accepted() {
        let c = load(&format!("{BASE}num.network.threads=3\nnum.io.threads=8\n"));
        assert!(c.is_ok());
    }
}
