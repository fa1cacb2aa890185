//! This broker's shared state: configuration, its place in the metadata
//! quorum, topics and the service of their replicas, groups and producer
//! ids. Every connection's handlers read it through an `Arc<Node>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::config::dynamic;
use crate::config::{BrokerConfig, Endpoint};
use crate::group::offsets::OFFSETS_TOPIC;
use crate::group::{GroupCoordinator, GroupSettings};
use crate::ids::new_cluster_id;
use crate::inter_broker::InterBroker;
use crate::log::Cleanup;
use crate::log_dirs::{LogDirError, LogDirs};
use crate::metadata::controller::{ControllerRequest, ControllerResponse};
use crate::metadata::image::ClusterImage;
use crate::metadata::listener::ListenerSecurity;
use crate::metadata::network::Dialer;
use crate::metadata::quorum::{Quorum, QuorumError, QuorumSettings};
use crate::metadata::records::{Applied, BrokerEndpoint, MetadataRecord, Refusal};
use crate::metadata::registration::{self, Registration, RegistrationError};
use crate::partition::Partition;
use crate::producer_id::ProducerIdAllocator;
use crate::replica_manager::{ReplicaManager, ReplicaSettings};
use crate::replication::fetcher::{self, FetchSettings, Followed};
use crate::replication::isr::IsrProposer;
use crate::replication::quota::ReplicationQuotas;
use crate::replication::throttle::Side;
use crate::security::sasl::jwks::{Jwks, JwksError};
use crate::security::tls::{load_listeners, ListenerTls, TlsError};
use crate::tasks::Tasks;
use crate::topic::changes::{TopicChanges, ADMIN_TIMEOUT};
use crate::topic::TopicRegistry;
use crate::txn::coordinator::CoordinatorSettings;
use crate::txn::{TransactionCoordinator, TRANSACTION_TOPIC};

/// How often a start still opening its replicas says so.
const OPENING_REPORT: Duration = Duration::from_secs(30);

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A log directory cannot be used.
    #[error(transparent)]
    LogDir(#[from] LogDirError),
    /// The controller listener cannot be bound.
    #[error(transparent)]
    Bind(#[from] crate::bind::BindError),
    /// The metadata quorum could not start.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// An SSL listener's TLS stores cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An OAUTHBEARER listener's key set cannot be used.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// The broker could not register.
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    /// The offsets topic could not be created.
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    OffsetsTopic(String),
}

/// One running broker.
pub struct Node {
    /// Its configuration.
    pub config: BrokerConfig,
    /// Cluster id, kept in each log directory's `meta.properties`.
    pub cluster_id: String,
    /// This node's member of the metadata quorum.
    pub quorum: Arc<Quorum>,
    /// Topics and this broker's replicas.
    pub topics: Arc<TopicRegistry>,
    /// Consumer groups.
    pub groups: Arc<GroupCoordinator>,
    /// The SSL listeners' TLS, by listener name, renewed from disk.
    pub tls: BTreeMap<String, Arc<ListenerTls>>,
    /// The OAUTHBEARER listeners' identity provider keys, by listener
    /// name, renewed from disk.
    pub jwks: BTreeMap<String, Arc<Jwks>>,
    /// Producer ids for idempotent and transactional producers.
    pub producer_ids: Arc<ProducerIdAllocator>,
    /// Transactions.
    pub txns: Arc<TransactionCoordinator>,
    /// How this broker reaches the others.
    pub inter_broker: InterBroker,
    /// Asks to other brokers' transaction coordinators, gathered per broker.
    pub txn_asks: crate::txn::asks::Asks,
    /// Produce, fetch and offset lookups on this broker's replicas, and the
    /// ISR changes it asks for as a leader.
    pub replicas: ReplicaManager,
    /// Request-path counters for `/metrics`.
    pub metrics: crate::metrics::Counters,
    /// The client quotas' rates.
    pub quotas: crate::quota::manager::QuotaManager,
    /// The replication throttles' rates, shared with the replica fetcher.
    pub replication_quotas: Arc<ReplicationQuotas>,
    /// Consumers' and followers' incremental fetch sessions.
    pub fetch_sessions: crate::fetch_session::FetchSessions,
    /// The broker's long-lived tasks, stopped together at shutdown.
    pub tasks: Tasks,
    /// This broker's registration epoch.
    epoch: Arc<watch::Sender<i64>>,
    /// Set to stop heartbeating at shutdown.
    stop_heartbeats: watch::Sender<bool>,
    /// Held while this broker asks the controller for the transaction log
    /// topic, so concurrent FindCoordinator requests ask once.
    creating_txn_topic: tokio::sync::Mutex<()>,
    /// The locked log directories, released when the node is dropped.
    _log_dirs: LogDirs,
}

impl Node {
    /// Joins the metadata quorum, registers, opens this broker's replicas
    /// and loads group state.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Node>, StartError> {
        let tasks = Tasks::new();
        // Unusable certificates or keys stop the broker before it joins the
        // cluster.
        let tls = load_tls(&config, &tasks)?;
        let jwks = config
            .sasl
            .iter()
            .filter_map(|(name, s)| Some((name, s.oauth.as_ref()?)))
            .map(|(name, oauth)| Ok((name.clone(), Arc::new(Jwks::load(&oauth.jwks)?))))
            .collect::<Result<BTreeMap<_, _>, JwksError>>()?;
        for keys in jwks.values() {
            tasks.spawn("OAUTHBEARER key renewal", keys.clone().maintain());
        }
        let (quorum, log_dirs) = start_quorum(&config, &tasks, &tls).await?;

        let metrics = crate::metrics::Counters::default();
        let topics = Arc::new(
            TopicRegistry::new(
                config.node_id,
                &config.log_dirs,
                crate::topic::config::TopicDefaults::new(config.values.clone()),
            )
            .counting_isr_changes(metrics.isr())
            .opening_on(config.recovery_threads_per_data_dir * config.log_dirs.len()),
        );
        let followed = watch::channel(Followed::new()).0;
        let replication_quotas = Arc::new(ReplicationQuotas::new(
            config.node_id,
            config.replication_quota_window_num as usize,
            u64::from(config.replication_quota_window_size_seconds) * 1000,
            metrics.replication(Side::Leader),
            metrics.replication(Side::Follower),
        ));
        tasks.spawn(
            "replica fetcher",
            fetcher::run(
                FetchSettings {
                    me: config.node_id,
                    listener: config.inter_broker_listener.clone(),
                    tls: tls.get(&config.inter_broker_listener).cloned(),
                    login: config.inter_broker_login.clone(),
                    max_wait: Duration::from_millis(config.replica_fetch_wait_max_ms),
                    partition_max_bytes: config.replica_fetch_max_bytes,
                    max_bytes: config.replica_fetch_response_max_bytes,
                    quotas: replication_quotas.clone(),
                },
                quorum.subscribe(),
                followed.subscribe(),
            ),
        );
        tasks.spawn(
            "metadata follower",
            follow_metadata(quorum.clone(), topics.clone(), followed, tasks.clone()),
        );

        let me = Registration {
            id: config.node_id,
            incarnation: Uuid::new_v4(),
            storage: log_dirs.storage_id,
            endpoints: config
                .kafka_listeners()
                .filter_map(|l| {
                    let e = config.advertised_endpoint(&l.name)?;
                    Some(BrokerEndpoint {
                        listener: l.name.clone(),
                        host: e.host.clone(),
                        port: e.port,
                    })
                })
                .collect(),
            rack: config.broker_rack.clone(),
            controller_address: (!config.roles.controller)
                .then(|| config.controller_address.clone())
                .flatten(),
        };
        // Long enough for an earlier process's session to run out after the
        // controller (maybe this node) restarted.
        let patience =
            Duration::from_millis(config.broker_session_timeout_ms * 2) + Duration::from_secs(5);
        let epoch = registration::register(&quorum, &me, patience).await?;
        tracing::info!(epoch, "registered with the controller");
        let epoch = Arc::new(watch::channel(epoch).0);
        let stop_heartbeats = watch::channel(false).0;
        tasks.spawn(
            "heartbeat",
            registration::heartbeat(
                quorum.clone(),
                me,
                epoch.clone(),
                Duration::from_millis(config.broker_heartbeat_interval_ms),
                patience,
                stop_heartbeats.subscribe(),
            ),
        );
        // As Kafka does, clients are served only once the replicas reflect
        // the metadata up to this registration (their logs are open): one
        // reaching this node earlier hears NOT_LEADER_OR_FOLLOWER or
        // NOT_COORDINATOR for partitions the metadata already gives it,
        // which some clients (librdkafka's offset queries) do not retry.
        // Heartbeats go on meanwhile, so a long opening does not end the
        // registration's session.
        let registered_at = u64::try_from(*epoch.borrow()).unwrap_or(0);
        while !topics.wait_synced(registered_at, OPENING_REPORT).await {
            tracing::info!(
                index = registered_at,
                "still opening this node's replicas; clients are served once they are open"
            );
        }

        let cluster_id = cluster_id(&quorum).await;
        log_dirs.record_cluster_id(&cluster_id)?;

        let offsets_topic = offsets_topic(&config, &quorum, &topics).await?;
        let settings = GroupSettings {
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
            consumer_session_timeout: Duration::from_millis(
                config.group_consumer_session_timeout_ms,
            ),
            consumer_heartbeat_interval: Duration::from_millis(
                config.group_consumer_heartbeat_interval_ms,
            ),
        };
        let groups = Arc::new(GroupCoordinator::new(
            offsets_topic.partitions.len() as i32,
            settings,
            topics.clone(),
            quorum.subscribe(),
        ));
        let lead_groups = groups.clone();
        tasks.spawn(
            "group coordination follower",
            follow_leadership(
                topics.clone(),
                OFFSETS_TOPIC,
                tasks.clone(),
                Arc::new(move |led: &[Arc<Partition>]| lead_groups.lead(led)),
            ),
        );
        let inter_broker = InterBroker::new(
            config.inter_broker_listener.clone(),
            tls.get(&config.inter_broker_listener).cloned(),
            config.inter_broker_login.clone(),
        );
        let producer_ids = Arc::new(ProducerIdAllocator::default());
        let txns = start_transactions(
            &config,
            &quorum,
            &topics,
            &producer_ids,
            &inter_broker,
            &tasks,
        );
        let replicas = ReplicaManager::new(
            topics.clone(),
            IsrProposer::new(quorum.clone(), config.node_id),
            ReplicaSettings {
                max_lag: Duration::from_millis(config.replica_lag_time_max_ms),
                min_insync_replicas: config.min_insync_replicas,
            },
        );
        let quotas = crate::quota::manager::QuotaManager::new(
            config.quota_window_num as usize,
            u64::from(config.quota_window_size_seconds) * 1000,
        );
        let fetch_sessions = crate::fetch_session::FetchSessions::new(
            usize::try_from(config.fetch_session_slots).unwrap_or(0),
            i64::from(config.fetch_session_eviction_ms),
        );
        Ok(Arc::new(Node {
            config,
            cluster_id,
            quorum,
            topics,
            groups,
            tls,
            jwks,
            producer_ids,
            txns,
            txn_asks: crate::txn::asks::Asks::new(inter_broker.clone()),
            inter_broker,
            replicas,
            metrics,
            quotas,
            replication_quotas,
            fetch_sessions,
            tasks,
            epoch,
            stop_heartbeats,
            creating_txn_topic: tokio::sync::Mutex::new(()),
            _log_dirs: log_dirs,
        }))
    }

    /// The address this broker advertises on `listener`.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.config.advertised_endpoint(listener)
    }

    /// The cluster metadata as this broker has applied it.
    pub fn image(&self) -> Arc<ClusterImage> {
        self.quorum.view().image
    }

    /// `transaction.partition.verification.enable` in force: as set at run
    /// time, else as the properties file says.
    pub fn verify_partitions(&self) -> bool {
        self.setting(
            "transaction.partition.verification.enable",
            self.config.transactions.verify_partitions,
        )
    }

    /// `producer.id.expiration.ms` in force: as set at run time, else as
    /// the properties file says.
    pub fn producer_id_expiration_ms(&self) -> i64 {
        self.setting(
            "producer.id.expiration.ms",
            i64::from(self.config.producer_id_expiration_ms),
        )
    }

    /// `num.recovery.threads.per.data.dir` in force: as set at run time,
    /// else as the properties file says.
    pub fn recovery_threads_per_data_dir(&self) -> usize {
        self.setting(
            "num.recovery.threads.per.data.dir",
            self.config.recovery_threads_per_data_dir,
        )
    }

    /// A setting of [`dynamic::RUNTIME_OVERRIDES`]: its run-time value
    /// (checked when it was set), else `file`.
    fn setting<T: std::str::FromStr>(&self, key: &str, file: T) -> T {
        let image = self.image();
        dynamic::value(&image.broker_configs, self.config.node_id, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(file)
    }

    /// A user's SCRAM credential for `mechanism`, as the metadata has it.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: crate::security::sasl::Mechanism,
    ) -> Option<crate::security::sasl::scram::ScramCredential> {
        self.image().scram.get(user)?.get(&mechanism).cloned()
    }

    /// Topic changes through the controller, seen through this broker's
    /// registry.
    pub fn topic_changes(&self) -> TopicChanges<'_> {
        TopicChanges {
            quorum: &self.quorum,
            topics: &self.topics,
        }
    }

    /// Whether this broker is stopping: its controlled shutdown has begun.
    pub fn stopping(&self) -> bool {
        *self.stop_heartbeats.borrow()
    }

    /// Moves this broker's leaderships away (it is fenced), before it stops
    /// serving.
    pub async fn shutdown(&self) {
        self.stop_heartbeats.send_replace(true);
        let epoch = *self.epoch.borrow();
        if registration::controlled_shutdown(
            &self.quorum,
            self.config.node_id,
            epoch,
            Duration::from_secs(10),
        )
        .await
        {
            tracing::info!("controlled shutdown: leadership moved away");
        } else {
            tracing::warn!("controlled shutdown not confirmed by the controller; stopping anyway");
        }
    }
}

/// Loads every SSL listener's TLS and keeps it renewed from disk (a task
/// of `tasks`), for brokers and dedicated controllers alike.
pub fn load_tls(
    config: &BrokerConfig,
    tasks: &Tasks,
) -> Result<BTreeMap<String, Arc<ListenerTls>>, TlsError> {
    let tls = load_listeners(config)?;
    if !tls.is_empty() {
        tasks.spawn(
            "TLS renewal",
            crate::security::tls::watch(tls.values().cloned().collect()),
        );
    }
    Ok(tls)
}

/// Claims the log directories, opens the metadata log and joins the quorum
/// (as a voter, or as a learner for a broker-only node), serving the
/// controller listener (a task of `tasks`; over TLS when `tls` has it).
/// Dedicated controllers run only this.
pub async fn start_quorum(
    config: &BrokerConfig,
    tasks: &Tasks,
    tls: &BTreeMap<String, Arc<ListenerTls>>,
) -> Result<(Arc<Quorum>, LogDirs), StartError> {
    let log_dirs = LogDirs::claim(&config.log_dirs, config.node_id)?;
    let controller_tls = config
        .controller_listener
        .as_ref()
        .and_then(|name| tls.get(name))
        .cloned();
    let controller_socket = match config
        .controller_listener
        .as_ref()
        .and_then(|name| config.listeners.iter().find(|l| &l.name == name))
    {
        Some(l) => Some(crate::bind::bind_all(std::slice::from_ref(l)).await?),
        None => None,
    };
    let quorum = Quorum::start(QuorumSettings {
        node_id: config.node_id,
        voters: config.voters.clone(),
        dir: config.metadata_quorum_dir(),
        election_timeout: Duration::from_millis(config.controller_election_timeout_ms),
        session_timeout: Duration::from_millis(config.broker_session_timeout_ms),
        cluster_id: log_dirs.cluster_id.clone().unwrap_or_else(new_cluster_id),
        preferred_leader_check: config
            .auto_leader_rebalance
            .then(|| Duration::from_secs(config.leader_imbalance_check_interval_seconds)),
        dialer: Dialer::new(controller_tls.clone()),
    })
    .await?;
    if let Some(bound) = controller_socket.into_iter().flatten().next() {
        let security = ListenerSecurity {
            name: bound.listener.name.clone(),
            tls: controller_tls,
            authorizer: config.authorizer.clone(),
        };
        tasks.spawn(
            "controller listener",
            crate::metadata::listener::serve(quorum.clone(), bound.socket, security),
        );
    }
    Ok((quorum, log_dirs))
}

/// Keeps the topic registry, and the partitions the fetcher follows, in
/// line with the metadata this node applies.
async fn follow_metadata(
    quorum: Arc<Quorum>,
    topics: Arc<TopicRegistry>,
    followed: watch::Sender<Followed>,
    tasks: Tasks,
) {
    let mut rx = quorum.subscribe();
    loop {
        let view = rx.borrow_and_update().clone();
        let registry = topics.clone();
        // Opening replicas reads and recovers logs: keep it off the
        // request-serving threads.
        let synced = tasks
            .spawn_blocking(move || registry.sync(&view.image, view.applied_index))
            .await;
        match synced {
            Ok(f) => {
                followed.send_if_modified(|old| {
                    let same = old.len() == f.len()
                        && old.iter().zip(&f).all(|((a, pa), (b, pb))| {
                            a == b
                                && pa.len() == pb.len()
                                && pa.iter().zip(pb).all(|(x, y)| Arc::ptr_eq(x, y))
                        });
                    if !same {
                        *old = f;
                    }
                    !same
                });
            }
            Err(e) => tracing::error!(error = %e, "applying metadata to the topic registry failed"),
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// What a coordinator does with the partitions of its topic led here.
type Lead = Arc<dyn Fn(&[Arc<Partition>]) + Send + Sync>;

/// Makes a coordinator serve exactly the partitions of its internal
/// `topic` this broker leads, as leadership moves: `lead` is given them
/// after every metadata change this broker applied.
async fn follow_leadership(
    topics: Arc<TopicRegistry>,
    topic: &'static str,
    tasks: Tasks,
    lead: Lead,
) {
    let mut synced = topics.subscribe_synced();
    loop {
        synced.borrow_and_update();
        let led: Vec<Arc<Partition>> = topics
            .get(topic)
            .map(|t| t.local().filter(|p| p.is_leader()).cloned().collect())
            .unwrap_or_default();
        let lead = lead.clone();
        // Loading replays the partition's log: off the request threads.
        if let Err(e) = tasks.spawn_blocking(move || lead(&led)).await {
            tracing::error!(error = %e, topic, "moving coordination failed");
        }
        if synced.changed().await.is_err() {
            return;
        }
    }
}

/// The transaction coordinator, with its marker sender, its timers and
/// its following of the transaction log's leadership as tasks of `tasks`.
fn start_transactions(
    config: &BrokerConfig,
    quorum: &Arc<Quorum>,
    topics: &Arc<TopicRegistry>,
    producer_ids: &Arc<ProducerIdAllocator>,
    inter_broker: &InterBroker,
    tasks: &Tasks,
) -> Arc<TransactionCoordinator> {
    let t = &config.transactions;
    let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(1).max(1));
    let (markers, jobs) = tokio::sync::mpsc::unbounded_channel();
    let txns = Arc::new(TransactionCoordinator::new(
        CoordinatorSettings {
            max_timeout_ms: t.max_timeout_ms,
            abort_interval: ms(t.abort_interval_ms),
            id_expiration_ms: i64::from(t.id_expiration_ms),
            expiry_interval: ms(t.expiry_interval_ms),
            min_isr: usize::try_from(transaction_log_min_isr(config)).unwrap_or(1),
        },
        topics.clone(),
        quorum.clone(),
        producer_ids.clone(),
        markers,
    ));
    tasks.spawn(
        "transaction markers",
        crate::txn::markers::run(txns.clone(), jobs, inter_broker.clone(), quorum.subscribe()),
    );
    tasks.spawn("transaction timers", txns.clone().run_timers());
    let lead_txns = txns.clone();
    tasks.spawn(
        "transaction coordination follower",
        follow_leadership(
            topics.clone(),
            TRANSACTION_TOPIC,
            tasks.clone(),
            Arc::new(move |led: &[Arc<Partition>]| lead_txns.lead(led)),
        ),
    );
    txns
}

/// Whether this node runs alone (no other voters): internal topics then
/// keep one replica.
fn lone(config: &BrokerConfig) -> bool {
    config.voters.len() == 1 && config.voters.contains_key(&config.node_id)
}

/// `min.insync.replicas` of the transaction log: one on a lone node.
fn transaction_log_min_isr(config: &BrokerConfig) -> i32 {
    if lone(config) {
        1
    } else {
        config.transactions.log_min_isr
    }
}

impl Node {
    /// Asks the controller for the transaction log topic, as Kafka does
    /// when a producer first looks for its transaction coordinator:
    /// `transaction.state.log.num.partitions` partitions of
    /// `transaction.state.log.replication.factor` replicas (one on a lone
    /// node). One attempt; a cluster with too few brokers yet is told so
    /// in the log and asked again by the next FindCoordinator.
    pub async fn create_transaction_topic(&self) {
        let Ok(_asking) = self.creating_txn_topic.try_lock() else {
            return;
        };
        if self.topics.get(TRANSACTION_TOPIC).is_some() {
            return;
        }
        let t = &self.config.transactions;
        let rf = if lone(&self.config) {
            1
        } else {
            t.log_replication_factor
        };
        let req = ControllerRequest::CreateTopic {
            name: TRANSACTION_TOPIC.to_string(),
            partitions: t.log_partitions,
            replication_factor: rf,
            configs: crate::txn::log::topic_configs(
                t.log_segment_bytes,
                transaction_log_min_isr(&self.config),
            ),
            assignment: None,
            validate_only: false,
        };
        match self.quorum.request(req, ADMIN_TIMEOUT).await {
            Ok(ControllerResponse::Applied {
                index,
                applied: Applied::Done | Applied::Refused(Refusal::TopicExists(_)),
            }) => {
                tracing::info!("created {TRANSACTION_TOPIC}");
                self.topics.wait_synced(index, ADMIN_TIMEOUT).await;
            }
            Ok(ControllerResponse::Applied {
                applied: Applied::Refused(why),
                ..
            }) => tracing::warn!(?why, "cannot create {TRANSACTION_TOPIC} yet"),
            Ok(other) => tracing::warn!(?other, "cannot create {TRANSACTION_TOPIC}"),
            Err(e) => tracing::warn!(error = %e, "cannot create {TRANSACTION_TOPIC}"),
        }
    }
}

/// The cluster id, once the first active controller has set it.
async fn cluster_id(quorum: &Quorum) -> String {
    let mut rx = quorum.subscribe();
    loop {
        let id = rx.borrow_and_update().image.cluster_id.clone();
        if !id.is_empty() {
            return id;
        }
        if rx.changed().await.is_err() {
            return String::new();
        }
    }
}

/// The settings of the internal topic of committed offsets, as Kafka sets
/// it up: compacted (the log cleaner keeps each group's latest records),
/// with segments (`offsets.topic.segment.bytes`) and batches sized for it.
fn offsets_topic_configs(config: &BrokerConfig) -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact".to_string()),
        (
            "segment.bytes",
            config.offsets_topic_segment_bytes.to_string(),
        ),
        ("max.message.bytes", "10485760".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The internal topic of committed offsets, replicated on
/// `offsets.topic.replication.factor` brokers (one on a lone node). Created
/// by the first broker that needs it; the others wait until their registry
/// holds it. A topic made by an earlier Gregor, which kept it small by
/// rewriting it instead, is switched to compaction.
async fn offsets_topic(
    config: &BrokerConfig,
    quorum: &Quorum,
    topics: &TopicRegistry,
) -> Result<Arc<crate::topic::Topic>, StartError> {
    // A lone node (no voters configured) keeps a single copy; a cluster
    // waits until enough brokers are up.
    let rf = if lone(config) {
        1
    } else {
        config.offsets_topic_replication_factor
    };
    let mut told = false;
    loop {
        if let Some(t) = topics.get(OFFSETS_TOPIC) {
            if Cleanup::parse(t.configs.get("cleanup.policy").map_or("", String::as_str)).compact {
                return Ok(t);
            }
            let mut configs = t.configs.clone();
            configs.remove("retention.ms");
            configs.extend(offsets_topic_configs(config));
            let req = ControllerRequest::Propose(MetadataRecord::SetTopicConfigs {
                name: OFFSETS_TOPIC.to_string(),
                configs,
            });
            match quorum.request(req, ADMIN_TIMEOUT).await {
                Ok(ControllerResponse::Applied { index, .. }) => {
                    topics.wait_synced(index, ADMIN_TIMEOUT).await;
                    tracing::info!("{OFFSETS_TOPIC} is compacted by the log cleaner from now on");
                    continue;
                }
                Ok(other) => return Err(StartError::OffsetsTopic(format!("{other:?}"))),
                Err(e) => return Err(StartError::OffsetsTopic(e.to_string())),
            }
        }
        let req = ControllerRequest::CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            partitions: config.offsets_topic_num_partitions,
            replication_factor: rf,
            configs: offsets_topic_configs(config),
            assignment: None,
            validate_only: false,
        };
        match quorum.request(req, ADMIN_TIMEOUT).await {
            Ok(ControllerResponse::Applied {
                index,
                applied: Applied::Done | Applied::Refused(Refusal::TopicExists(_)),
            }) => {
                topics.wait_synced(index, ADMIN_TIMEOUT).await;
            }
            Ok(ControllerResponse::Applied {
                applied: Applied::Refused(Refusal::InvalidReplicationFactor(why)),
                ..
            }) => {
                if !std::mem::replace(&mut told, true) {
                    tracing::info!(%why, "waiting for brokers to create {OFFSETS_TOPIC}");
                }
                // Brokers become available within a heartbeat or two.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(other) => return Err(StartError::OffsetsTopic(format!("{other:?}"))),
            Err(e) => return Err(StartError::OffsetsTopic(e.to_string())),
        }
    }
}
