//! Broker configuration: Kafka's property names, read from a properties file
//! and overridden by `GREGOR_*` environment variables.
//!
//! Every key Gregor accepts is declared once, in [`table`]: a key not there
//! is an error (a typo must not silently fall back to a default), and every
//! value is checked against its declaration before it is used.

pub mod authorizer;
pub mod dynamic;
pub mod listener;
pub mod oauthbearer;
pub mod properties;
pub mod quorum;
pub mod sasl;
pub mod setting;
pub mod table;
pub mod tls;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use listener::{Endpoint, Listener, SecurityProtocol};
use properties::Property;
pub use values::Values;

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
    /// A listener's settings do not fit together.
    #[error("listener {listener}: {reason}")]
    Listener {
        /// The listener's name.
        listener: String,
        /// What is wrong and what to set.
        reason: String,
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
    /// `max.incremental.fetch.session.cache.slots`
    pub fetch_session_slots: i32,
    /// `min.incremental.fetch.session.eviction.ms`
    pub fetch_session_eviction_ms: i32,
    /// `num.recovery.threads.per.data.dir`: threads per log directory
    /// opening the logs at start and closing them at shutdown.
    pub recovery_threads_per_data_dir: usize,
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
    /// `max.request.partition.size.limit`: the most partitions in one
    /// DescribeTopicPartitions answer.
    pub max_request_partition_size_limit: i32,
    /// `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// The TLS settings of each SSL and SASL_SSL listener, by listener name.
    pub tls: BTreeMap<String, tls::TlsSettings>,
    /// The SASL settings of each SASL_PLAINTEXT and SASL_SSL listener, by
    /// listener name.
    pub sasl: BTreeMap<String, sasl::SaslSettings>,
    /// `sasl.server.max.receive.size`: the largest frame accepted before a
    /// client has authenticated.
    pub sasl_max_receive_size: usize,
    /// `connection.failed.authentication.delay.ms`
    pub failed_authentication_delay_ms: u64,
    /// How this broker logs in to the others when the inter-broker
    /// listener is SASL.
    pub inter_broker_login: Option<crate::security::sasl::login::Login>,
    /// The ACL authorizer (`authorizer.class.name`); `None` when every
    /// request is allowed.
    pub authorizer: Option<crate::security::acl::Authorizer>,
    /// `http.listener` (`[host]:port`, Gregor's own): where `/livez`,
    /// `/readyz` and `/metrics` are served. Off when unset.
    pub http_listener: Option<Listener>,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`
    pub producer_id_expiration_ms: i32,
    /// `producer.id.expiration.check.interval.ms`
    pub producer_id_expiration_check_interval_ms: i32,
    /// The log cleaner's `log.cleaner.*` settings.
    pub cleaner: CleanerSettings,
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
    /// `offsets.topic.segment.bytes`
    pub offsets_topic_segment_bytes: i32,
    /// The transaction coordinator's settings.
    pub transactions: TransactionSettings,
    /// `group.consumer.session.timeout.ms`
    pub group_consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`
    pub group_consumer_heartbeat_interval_ms: u64,
    /// `min.insync.replicas`: the default of topics that do not set it.
    pub min_insync_replicas: i32,
    /// `quota.window.num`
    pub quota_window_num: u32,
    /// `quota.window.size.seconds`
    pub quota_window_size_seconds: u32,
    /// `replication.quota.window.num`
    pub replication_quota_window_num: u32,
    /// `replication.quota.window.size.seconds`
    pub replication_quota_window_size_seconds: u32,
    /// Every setting as given, for DescribeConfigs and the topics'
    /// defaults.
    pub values: Values,
}

/// The log cleaner's settings (`log.cleaner.*`; the per-topic ones are in
/// `log::LogConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`
    pub enable: bool,
    /// `log.cleaner.threads`
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: key map memory, all threads.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`, all threads.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`
    pub backoff_ms: u64,
}

/// The transaction coordinator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionSettings {
    /// `transaction.state.log.num.partitions`
    pub log_partitions: i32,
    /// `transaction.state.log.replication.factor`
    pub log_replication_factor: i16,
    /// `transaction.state.log.min.isr`
    pub log_min_isr: i32,
    /// `transaction.state.log.segment.bytes`
    pub log_segment_bytes: i32,
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub abort_interval_ms: i32,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i32,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    pub expiry_interval_ms: i32,
    /// `transaction.partition.verification.enable`
    pub verify_partitions: bool,
    /// `add.partitions.to.txn.retry.backoff.ms`
    pub add_retry_backoff_ms: i32,
    /// `add.partitions.to.txn.retry.backoff.max.ms`
    pub add_retry_max_ms: i32,
}

fn invalid(p: &Property, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: p.key.clone(),
        value: p.value.clone(),
        origin: p.origin.clone(),
        reason,
    }
}

/// `key` as given or else its declared default, for the settings parsed
/// further where they are used.
fn declared(v: &Values, key: &'static str) -> Result<Property, ConfigError> {
    v.property(key).ok_or(ConfigError::Missing(key))
}

impl BrokerConfig {
    /// Where the metadata quorum keeps its log, snapshots and the
    /// records a new cluster starts with.
    pub fn metadata_quorum_dir(&self) -> PathBuf {
        self.metadata_log_dir.join("__cluster_metadata-0")
    }

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
        let v = Values::check(table::BROKER, props)?;
        for p in v.ignored() {
            tracing::info!(key = %p.key, origin = %p.origin, "setting accepted; Gregor does not need it");
        }
        let node_id = v
            .optional::<i32>("node.id")?
            .or(v.optional::<i32>("broker.id")?)
            .ok_or(ConfigError::Missing("node.id"))?;

        let protocol_map =
            listener::parse_protocol_map(&declared(&v, "listener.security.protocol.map")?)?;
        let listeners = listener::parse_listeners(&declared(&v, "listeners")?, &protocol_map)?;
        let advertised = match v.given("advertised.listeners") {
            Some(p) => listener::parse_advertised(p, &listeners)?,
            None => listener::advertise_bound(&listeners),
        };
        let controller_listener =
            quorum::controller_listener(v.given("controller.listener.names"), &listeners)?;
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
        let roles = quorum::roles(&declared(&v, "process.roles")?)?;
        if let Some(p) = v.given("controller.quorum.bootstrap.servers") {
            return Err(invalid(
                p,
                "the quorum's members are fixed: list them in controller.quorum.voters".into(),
            ));
        }
        let voters = quorum::voters(
            v.given("controller.quorum.voters"),
            node_id,
            roles,
            controller_listener.as_deref(),
            &listeners,
        )?;
        let inter_broker_listener = match v.given("inter.broker.listener.name") {
            Some(p) if Some(&p.value) == controller_listener.as_ref() => {
                return Err(invalid(
                    p,
                    "the controller listener serves the quorum only".into(),
                ))
            }
            Some(p) if listeners.iter().any(|l| l.name == p.value) => p.value.clone(),
            Some(p) => return Err(invalid(p, "no listener has this name".into())),
            None => listeners
                .iter()
                .map(|l| l.name.clone())
                .find(|n| Some(n) != controller_listener.as_ref())
                .unwrap_or_default(),
        };
        let mut tls = BTreeMap::new();
        let mut sasl = BTreeMap::new();
        for l in &listeners {
            if l.protocol == SecurityProtocol::Plaintext {
                continue;
            }
            if Some(&l.name) == controller_listener.as_ref() && l.protocol.sasl() {
                return Err(ConfigError::Listener {
                    listener: l.name.clone(),
                    reason: "the controller listener takes PLAINTEXT or SSL; for authenticated controllers use SSL with ssl.client.auth=required and certificate principals".into(),
                });
            }
            if l.protocol.tls() {
                tls.insert(l.name.clone(), tls::TlsSettings::for_listener(&v, &l.name)?);
            }
            if l.protocol.sasl() {
                sasl.insert(
                    l.name.clone(),
                    sasl::SaslSettings::for_listener(&v, &l.name)?,
                );
            }
        }
        let inter_broker_login = match sasl.get(&inter_broker_listener) {
            Some(settings) => Some(sasl::inter_broker_login(
                &v,
                &inter_broker_listener,
                settings,
            )?),
            None => None,
        };
        if roles.broker && listeners.len() == usize::from(controller_listener.is_some()) {
            return Err(ConfigError::Missing("listeners"));
        }

        let log_dirs = v
            .given("log.dirs")
            .or_else(|| v.given("log.dir"))
            .ok_or(ConfigError::Missing("log.dirs"))?;
        let dirs: Vec<PathBuf> = log_dirs
            .value
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if dirs.is_empty() {
            return Err(invalid(log_dirs, "expected one or more directories".into()));
        }
        let metadata_log_dir = v
            .given("metadata.log.dir")
            .map(|p| PathBuf::from(&p.value))
            .unwrap_or_else(|| dirs[0].clone());

        Ok(BrokerConfig {
            node_id,
            listeners,
            advertised,
            inter_broker_listener,
            controller_listener,
            voters,
            roles,
            controller_address,
            controller_election_timeout_ms: v.get("controller.quorum.election.timeout.ms")?,
            broker_session_timeout_ms: v.get("broker.session.timeout.ms")?,
            broker_heartbeat_interval_ms: v.get("broker.heartbeat.interval.ms")?,
            broker_rack: match v.given("broker.rack") {
                // An empty rack is a rack nobody meant: typically a variable
                // not filled in yet. Starting would spread replicas wrongly.
                Some(p) if p.value.is_empty() => {
                    return Err(invalid(p, "a rack cannot be empty".into()))
                }
                p => p.map(|p| p.value.clone()),
            },
            auto_leader_rebalance: v.get("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_seconds: v
                .get("leader.imbalance.check.interval.seconds")?,
            replica_lag_time_max_ms: v.get("replica.lag.time.max.ms")?,
            replica_fetch_wait_max_ms: v.get("replica.fetch.wait.max.ms")?,
            replica_fetch_max_bytes: v.get("replica.fetch.max.bytes")?,
            fetch_session_slots: v.get("max.incremental.fetch.session.cache.slots")?,
            fetch_session_eviction_ms: v.get("min.incremental.fetch.session.eviction.ms")?,
            recovery_threads_per_data_dir: v.get("num.recovery.threads.per.data.dir")?,
            replica_fetch_response_max_bytes: v.get("replica.fetch.response.max.bytes")?,
            metadata_log_dir,
            log_dirs: dirs,
            num_partitions: v.get("num.partitions")?,
            default_replication_factor: v.get("default.replication.factor")?,
            auto_create_topics: v.get("auto.create.topics.enable")?,
            delete_topic_enable: v.get("delete.topic.enable")?,
            max_request_partition_size_limit: v.get("max.request.partition.size.limit")?,
            socket_request_max_bytes: v.get("socket.request.max.bytes")?,
            tls,
            sasl,
            sasl_max_receive_size: v.get("sasl.server.max.receive.size")?,
            failed_authentication_delay_ms: v.get("connection.failed.authentication.delay.ms")?,
            inter_broker_login,
            authorizer: authorizer::from_values(&v)?,
            http_listener: v
                .given("http.listener")
                .map(listener::parse_http)
                .transpose()?,
            retention_check_interval_ms: v.get("log.retention.check.interval.ms")?,
            producer_id_expiration_ms: v.get("producer.id.expiration.ms")?,
            producer_id_expiration_check_interval_ms: v
                .get("producer.id.expiration.check.interval.ms")?,
            cleaner: CleanerSettings {
                enable: v.get("log.cleaner.enable")?,
                threads: v.get("log.cleaner.threads")?,
                dedupe_buffer_size: v.get("log.cleaner.dedupe.buffer.size")?,
                io_max_bytes_per_second: v.get("log.cleaner.io.max.bytes.per.second")?,
                backoff_ms: v.get("log.cleaner.backoff.ms")?,
            },
            group_initial_rebalance_delay_ms: v.get("group.initial.rebalance.delay.ms")?,
            group_min_session_timeout_ms: v.get("group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: v.get("group.max.session.timeout.ms")?,
            offsets_topic_num_partitions: v.get("offsets.topic.num.partitions")?,
            offsets_topic_replication_factor: v.get("offsets.topic.replication.factor")?,
            offsets_topic_segment_bytes: v.get("offsets.topic.segment.bytes")?,
            transactions: TransactionSettings {
                log_partitions: v.get("transaction.state.log.num.partitions")?,
                log_replication_factor: v.get("transaction.state.log.replication.factor")?,
                log_min_isr: v.get("transaction.state.log.min.isr")?,
                log_segment_bytes: v.get("transaction.state.log.segment.bytes")?,
                max_timeout_ms: v.get("transaction.max.timeout.ms")?,
                abort_interval_ms: v
                    .get("transaction.abort.timed.out.transaction.cleanup.interval.ms")?,
                id_expiration_ms: v.get("transactional.id.expiration.ms")?,
                expiry_interval_ms: v
                    .get("transaction.remove.expired.transaction.cleanup.interval.ms")?,
                verify_partitions: v.get("transaction.partition.verification.enable")?,
                add_retry_backoff_ms: v.get("add.partitions.to.txn.retry.backoff.ms")?,
                add_retry_max_ms: v.get("add.partitions.to.txn.retry.backoff.max.ms")?,
            },
            group_consumer_session_timeout_ms: v.get("group.consumer.session.timeout.ms")?,
            group_consumer_heartbeat_interval_ms: v.get("group.consumer.heartbeat.interval.ms")?,
            min_insync_replicas: v.get("min.insync.replicas")?,
            quota_window_num: v.get("quota.window.num")?,
            quota_window_size_seconds: v.get("quota.window.size.seconds")?,
            replication_quota_window_num: v.get("replication.quota.window.num")?,
            replication_quota_window_size_seconds: v
                .get("replication.quota.window.size.seconds")?,
            values: v,
        })
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
    use super::setting::{Kind, Width};
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
        assert!(c.roles.broker && c.roles.controller);
        assert_eq!(
            c.values.effective("log.retention.ms").as_deref(),
            Some("604800000")
        );
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
    }

    #[test]
    fn the_controller_listener_takes_plaintext_or_ssl() {
        let with = |protocol: &str| {
            load(&format!(
                "{BASE}listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:{protocol}\n\
                 controller.listener.names=CONTROLLER\n\
                 controller.quorum.voters=1@localhost:9093\n\
                 ssl.keystore.type=PEM\n\
                 ssl.truststore.type=PEM\n\
                 listener.name.controller.ssl.keystore.location=/k.pem\n\
                 listener.name.controller.ssl.truststore.location=/t.pem\n\
                 listener.name.controller.ssl.client.auth=required\n\
                 sasl.enabled.mechanisms=PLAIN\n"
            ))
        };
        let ssl = with("SSL").expect("SSL on the controller listener");
        assert_eq!(ssl.tls["CONTROLLER"].client_auth, tls::ClientAuth::Required);
        assert!(with("PLAINTEXT").expect("plaintext").tls.is_empty());
        for sasl in ["SASL_SSL", "SASL_PLAINTEXT"] {
            let err = with(sasl).expect_err(sasl).to_string();
            assert!(err.contains("PLAINTEXT or SSL"), "{sasl}: {err}");
        }
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
        let retention = |extra: &str| {
            load(&format!("{BASE}{extra}"))
                .expect("ok")
                .values
                .effective("log.retention.ms")
        };
        let cases = [
            ("log.retention.hours=1\nlog.retention.minutes=2\n", "120000"),
            ("log.retention.minutes=2\nlog.retention.ms=5\n", "5"),
            ("log.retention.hours=-1\n", "-1"),
        ];
        for (extra, want) in cases {
            assert_eq!(retention(extra).as_deref(), Some(want), "{extra:?}");
        }
    }

    #[test]
    fn kafka_tuning_knobs_are_accepted() {
        let c = load(&format!("{BASE}num.network.threads=3\nnum.io.threads=8\n"));
        assert!(c.is_ok());
    }

    #[test]
    fn the_table_is_consistent() {
        for (i, s) in table::BROKER.iter().enumerate() {
            assert!(
                table::BROKER[..i].iter().all(|o| o.key != s.key),
                "{} is declared twice",
                s.key
            );
            assert!(!s.doc.is_empty(), "{} has no documentation", s.key);
            if let Some(d) = s.default {
                assert_eq!(s.check(d), Ok(()), "{}: its default is refused", s.key);
            }
            if let Some(o) = s.synonym_of {
                let finer = table::BROKER.iter().position(|f| f.key == o.key);
                assert!(
                    finer.is_some_and(|f| f < i && table::BROKER[f].synonym_of.is_none()),
                    "{} stands for `{}`, which must be declared before it",
                    s.key,
                    o.key
                );
            }
        }
    }

    #[test]
    fn every_declared_key_takes_its_default_and_its_bounds() {
        for s in table::BROKER {
            let mut values: Vec<String> = s.default.iter().map(|d| d.to_string()).collect();
            if let Kind::Number { min, max, .. } = s.kind {
                values.extend([min.to_string(), max.to_string()]);
            }
            for value in values {
                let text = format!("{BASE}{}={value}\n", s.key);
                if let Err(e) = load(&text) {
                    panic!("{} = {value}: {e}", s.key);
                }
            }
        }
    }

    #[test]
    fn out_of_bounds_values_are_refused_saying_what_is_allowed() {
        for s in table::BROKER {
            let mut cases = Vec::new();
            match s.kind {
                Kind::Number { width, min, max } => {
                    cases.push(("x1".to_string(), "expected an integer".to_string()));
                    let (lowest, highest) = match width {
                        Width::Short => (i16::MIN.into(), i16::MAX.into()),
                        Width::Int => (i32::MIN.into(), i32::MAX.into()),
                        Width::Long => (i64::MIN, i64::MAX),
                    };
                    if min > lowest {
                        cases.push(((min - 1).to_string(), format!("must be at least {min}")));
                    }
                    if max < highest {
                        cases.push(((max + 1).to_string(), format!("must be at most {max}")));
                    }
                }
                Kind::Bool => cases.push(("maybe".into(), "expected true or false".into())),
                Kind::OneOf(_) | Kind::ListOf(_) => {
                    cases.push(("nonsense".into(), format!("expected {}", s.kind.allowed())))
                }
                Kind::ReplicaList => cases.push(("0:x".into(), "partition:broker".into())),
                Kind::Double { .. } => {
                    cases.push(("-1".into(), format!("expected {}", s.kind.allowed())))
                }
                Kind::Text | Kind::List => {}
            }
            for (value, reason) in cases {
                let text = format!("{BASE}{}={value}\n", s.key);
                let err = load(&text).expect_err(&text).to_string();
                let want = format!("invalid value `{value}` for `{}`", s.key);
                assert!(
                    err.contains(&want) && err.contains(&reason),
                    "{text:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn describe_lists_every_declared_key_with_its_source() {
        let c = load(&format!("{BASE}num.partitions=3\n")).expect("valid");
        let described = c.values.describe();
        let names: Vec<&str> = described.iter().map(|d| d.name.as_str()).collect();
        let declared: Vec<&str> = table::BROKER.iter().map(|s| s.key).collect();
        assert_eq!(names, declared);
        let get = |k: &str| described.iter().find(|d| d.name == k).expect("listed");
        let partitions = get("num.partitions");
        assert_eq!(partitions.value.as_deref(), Some("3"));
        assert_eq!(partitions.source, setting::Source::StaticBroker);
        assert_eq!(partitions.config_type, 3);
        assert_eq!(partitions.synonyms.len(), 2);
        let decompressed = get("max.decompressed.message.bytes");
        assert_eq!(decompressed.value.as_deref(), Some("2147483639"));
        assert_eq!(decompressed.source, setting::Source::Default);
        assert_eq!(get("broker.rack").value, None);
    }
}
