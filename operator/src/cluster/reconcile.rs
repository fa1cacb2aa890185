//! The `KafkaCluster` controller's reconcile pass, as the list of steps in
//! [`reconcile`]. A step only does: read what is there, ask the pure
//! modules what should be, write it with server-side apply, act on one
//! decision, report status and events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admin::Admin;
use crate::conditions::{conditions, Decided};
use crate::context::Context;
use crate::crd::cluster::{
    AuthenticationType, CertificateStatus, ListenerStatus, NodePoolRecord, RebalanceState,
    RebalanceStatus,
};
use crate::crd::validate::{lifetimes, REPLICATION_PORT};
use crate::crd::{
    validate_cluster, Invalid, KafkaCluster, KafkaClusterStatus, KafkaNodePool, KafkaNodePoolSpec,
    KafkaNodePoolStatus,
};
use crate::error::Error;
use crate::pause;
use crate::pki::authority::Authority;
use crate::pki::certificate::CertificateInfo;
use crate::pki::{self, renewal};
use crate::tls;
use rustls::ClientConfig;

use super::addresses::{self, bootstrap_status, External, NodeAddresses};
use super::broker_config::{broker_properties, config_digest, min_insync, ExternalEndpoints};
use super::certificate_report;
use super::certificates::{
    self, broker_certificates, operator_certificate, plan_authority, plan_leaves, secret_data,
    AuthorityPlan, Rotating, SecretData, Stored, Which, OPERATOR_KEY,
};
use super::failures::{self, Failure};
use super::health::{self, Heal};
use super::names::{Names, CLUSTER_LABEL, FIELD_MANAGER, SOLE_POOL};
use super::rollout::{self, Step};
use super::scale::{self, ScalePlan};
use super::status::{self, Seen};
use super::storage::{self, Growth};
use super::topology::{self, Pool, Size, Topology};
use super::trouble::Trouble;
use super::view::{self, BrokerPod, KafkaView, MANUAL_RESTART};
use super::{
    configmap, network_policy, node_address, pdb, provider_trust, services, statefulset, volumes,
};

/// Annotation carrying a broker pod's rack, read by the broker at start.
const RACK_ANNOTATION: &str = "gregor.dev/rack";
/// How often a healthy cluster is looked at again (ISR, registration).
const WATCH_INTERVAL: Duration = Duration::from_secs(15);
/// How soon to look again while something is under way.
const BUSY_INTERVAL: Duration = Duration::from_secs(5);
/// Validity of the throwaway certificates that probe whether brokers
/// trust a new authority.
const PROBE_VALIDITY_SECONDS: i64 = 3600;
/// How soon to look again at a spec that cannot be applied (an edit of
/// it triggers a pass anyway).
const INVALID_INTERVAL: Duration = Duration::from_secs(300);

/// Reconciles one `KafkaCluster`: the steps below, in order.
pub async fn reconcile(kc: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let mut pass = Pass::new(&kc, &ctx)?;
    if pause::is_paused(kc.as_ref()) {
        return pass.report_paused().await;
    }
    if let Err(invalid) = pass.validate() {
        return pass.report_invalid(&invalid).await;
    }
    let owner = kc.controller_owner_ref(&()).ok_or(Error::Missing("uid"))?;
    pass.announce_generation().await;
    // The pools and their StatefulSets as found; without node pools, one.
    let found = pass.current_statefulsets().await?;
    let mut topology = match pass.topology(&found).await? {
        Ok(topology) => topology,
        Err(invalid) => return pass.report_invalid(&invalid).await,
    };
    pass.names = topology.names(&pass.names.cluster, &pass.names.namespace);

    // The objects the cluster becomes, sized by scaling. A step the API
    // server refuses is noted and the pass goes on with what does not
    // depend on it; reading failures end the pass (the API is away).
    let mut trouble = Trouble::default();
    // Storage a pool's running nodes cannot take is refused, and the rest
    // of the spec applied over the storage they have.
    for (what, why) in topology.keep_running_storage(&found) {
        trouble.note(&what, &why);
    }
    // Brokers being drained before a scale-down still run and need theirs.
    let running = topology.ids(Size::Running);
    let running_brokers = topology.brokers(Size::Running);
    let external = match pass.apply_services(&owner, &topology).await {
        Ok(external) => external,
        Err(e) => {
            trouble.note("the Services", &e);
            pass.existing_external(&running_brokers).await?
        }
    };
    let pods = pass.observe_pods(&topology, &mut trouble).await?;
    let certificates = match pass
        .apply_certificates(
            &owner,
            &running,
            &running_brokers,
            &external,
            &pods.node_addresses,
        )
        .await
    {
        Ok(certificates) => certificates,
        // The user's CA Secret missing or unreadable: said in status.
        Err(Error::Certificates(why)) => return pass.report_certificates_unavailable(&why).await,
        Err(e) => {
            let why = format!("their Secrets cannot be written: {e}");
            return pass.report_certificates_unavailable(&why).await;
        }
    };
    let trust = match pass.provider_trust().await {
        Ok(trust) => trust,
        Err(Error::Certificates(why)) => return pass.report_certificates_unavailable(&why).await,
        Err(e) => return Err(e),
    };
    let tls = &certificates.tls;
    let has_pods = found.values().any(|sts| has_pods(Some(sts)));
    let kafka = pass
        .ask_brokers(has_pods, &running_brokers, topology.broker_count(), tls)
        .await;
    let plan = pass
        .scale(
            &topology,
            &running_brokers,
            kafka.as_ref(),
            tls,
            &mut trouble,
        )
        .await;
    // Each pool as it runs from now on: the sizes scaling allows.
    let mut now = topology.clone();
    for pool in &mut now.pools {
        pool.current = plan
            .replicas
            .get(&pool.name)
            .copied()
            .unwrap_or(pool.desired);
    }
    // Pods are not rolled onto a configuration that was not written.
    let (pending, sets) = match pass
        .apply_config(&owner, &now, &external.endpoints, &trust)
        .await
    {
        Ok(pending) => {
            let sets = pass
                .apply_statefulsets(&owner, &now, &trust, &found, &mut trouble)
                .await;
            (pending, sets)
        }
        Err(e) => {
            trouble.note("the ConfigMap", &e);
            (Vec::new(), found.clone())
        }
    };
    if let Err(e) = pass.apply_pdb(&owner).await {
        trouble.note("the PodDisruptionBudget", &e);
    }
    if let Err(e) = pass.apply_network_policy(&owner).await {
        trouble.note("the NetworkPolicy", &e);
    }

    // The running cluster: failures told, one restart at most.
    let failing = failures::failures(&pods.brokers);
    pass.tell_failures(&failing).await?;
    // The rollout first, healing when it is done.
    let step = match sets.len() {
        // A broker restarted now would find no file: the roll waits for
        // the addresses (the status says which).
        _ if !pending.is_empty() => Step::Wait(format!(
            "brokers {pending:?} wait for their external addresses"
        )),
        n if n < now.pools.len() => Step::Wait("the StatefulSet is not created yet".into()),
        _ => {
            pass.roll(&now, &sets, &pods.brokers, kafka.as_ref(), &mut trouble)
                .await
        }
    };
    let desired_brokers = topology.brokers(Size::Desired);
    // Healing looks after brokers: a dedicated controller registers with
    // nobody and holds no partition.
    let broker_pods: Vec<BrokerPod> = pods
        .brokers
        .iter()
        .filter(|b| now.is_broker(b.id))
        .cloned()
        .collect();
    let healing = match (&step, &kafka) {
        (Step::Done, Some(kafka)) => {
            pass.heal(&broker_pods, kafka, &running_brokers, tls, &mut trouble)
                .await?
        }
        _ => None,
    };
    // Balancing, once every broker runs the spec and none is draining.
    let rebalance = match (&step, &kafka, &plan.waiting) {
        (Step::Done, Some(kafka), None) => {
            pass.rebalance(kafka, &desired_brokers, tls, &mut trouble)
                .await?
        }
        _ => pass.status.rebalance.clone(),
    };
    let rebalancing = rebalance
        .as_ref()
        .filter(|r| r.state == RebalanceState::Moving)
        .map(|r| {
            format!(
                "{} ({} of {} partitions done): {}",
                r.reason, r.done, r.planned, r.message
            )
        });

    // What the pass saw and did, in status.
    // Each pool's claims of the volumes it resized.
    let resized: Vec<String> = now
        .pools
        .iter()
        .flat_map(|p| {
            let templates = storage::resized(sets.get(&p.name), &volumes::data_volumes(&p.storage));
            let names = &pass.names;
            templates
                .into_iter()
                .flat_map(move |t| p.ids(p.current).map(move |id| names.claim(&t, id)))
        })
        .collect();
    let growing = match resized.is_empty() {
        false => pass.growing_claims(&resized).await?,
        true => None,
    };
    let failing = failures::summary(&failing);
    let trouble = trouble.message();
    let wanted = topology.ids(Size::Desired);
    let seen = Seen {
        want: wanted.len() as i32,
        ready: pods.ready(&wanted),
        step: &step,
        scaling: plan.waiting.as_deref(),
        pending: &pending,
        kafka: kafka.as_ref(),
        healing: healing.as_deref(),
        failing: failing.as_ref().map(|(r, m)| (*r, m.as_str())),
        trouble: trouble.as_deref(),
        growing: growing.as_deref(),
        rebalancing: rebalancing.as_deref(),
    };
    let listeners = bootstrap_status(
        &pass.names,
        &kc.spec,
        &desired_brokers,
        &external.endpoints,
        &pods.node_addresses,
    );
    let ready: BTreeSet<i32> = pods
        .brokers
        .iter()
        .filter(|b| b.ready)
        .map(|b| b.id)
        .collect();
    let report = Report {
        topology: &now,
        ready_brokers: pods.ready(&desired_brokers),
        ready: &ready,
    };
    pass.report_status(&seen, &report, listeners, certificates, rebalance)
        .await
}

/// What to do when a pass fails: log, and try again soon.
pub fn error_policy(kc: Arc<KafkaCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %kc.name_any(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// One pass over one cluster: what every step reads.
struct Pass<'a> {
    kc: &'a KafkaCluster,
    ctx: &'a Context,
    names: Names,
    /// The status as the pass found it.
    status: KafkaClusterStatus,
    generation: Option<i64>,
}

/// The broker pods as Kubernetes reports them.
struct Pods {
    /// Every node's pod (brokers and dedicated controllers).
    brokers: Vec<BrokerPod>,
    /// The address of its node each scheduled broker advertises, per
    /// NodePort listener.
    node_addresses: NodeAddresses,
}

impl Pods {
    /// The nodes among `pods`, pods of the StatefulSets `statefulsets`.
    fn new(statefulsets: &[String], pods: &[Pod], node_addresses: NodeAddresses) -> Self {
        let brokers = pods
            .iter()
            .filter_map(|p| {
                statefulsets
                    .iter()
                    .find_map(|sts| BrokerPod::from_pod(sts, p))
            })
            .collect();
        Self {
            brokers,
            node_addresses,
        }
    }

    /// Ready nodes among `ids` (the others are leaving).
    fn ready(&self, ids: &[i32]) -> i32 {
        self.brokers
            .iter()
            .filter(|b| b.ready && ids.contains(&b.id))
            .count() as i32
    }
}

/// What the status says of the pools.
struct Report<'a> {
    /// The pools as they run from this pass on.
    topology: &'a Topology,
    /// Ready brokers of those the spec asks for.
    ready_brokers: i32,
    /// Ids of the ready nodes.
    ready: &'a BTreeSet<i32>,
}

/// Replicas of the StatefulSet as found, 0 when there is none yet.
fn replicas_of(sts: Option<&StatefulSet>) -> i32 {
    sts.and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(0)
}

/// Whether the StatefulSet as found has created pods: without any, no
/// broker runs to answer admin requests.
fn has_pods(sts: Option<&StatefulSet>) -> bool {
    sts.and_then(|s| s.status.as_ref())
        .is_some_and(|s| s.replicas > 0)
}

impl<'a> Pass<'a> {
    fn new(kc: &'a KafkaCluster, ctx: &'a Context) -> Result<Self, Error> {
        let ns = kc.namespace().ok_or(Error::Missing("namespace"))?;
        Ok(Self {
            kc,
            ctx,
            names: Names::new(&kc.name_any(), &ns),
            status: kc.status.clone().unwrap_or_default(),
            generation: kc.meta().generation,
        })
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ctx.client.clone(), &self.names.namespace)
    }

    /// The spec changed since the last status: its events are told once.
    fn new_generation(&self) -> bool {
        self.status.observed_generation != self.generation
    }

    /// Validate: the spec's problems, and whether it still has (or has
    /// not) node pools as it was made.
    fn validate(&self) -> Result<(), Invalid> {
        let pooled = topology::pools_enabled(self.kc.annotations());
        validate_cluster(&self.kc.spec, pooled, self.status.controllers)?;
        let why = match (pooled, &self.status) {
            (false, s) if !s.node_pools.is_empty() => format!(
                "the cluster was made with node pools: it needs its annotation {}: enabled",
                topology::NODE_POOLS
            ),
            (true, s) if s.controllers.is_some() => "the cluster was made without node pools; moving a running cluster to node pools is not supported".into(),
            _ => return Ok(()),
        };
        Err(Invalid {
            problems: vec![why],
        })
    }

    /// The cluster's pools and quorum (fixed once recorded in the
    /// status), from the StatefulSets `found` and, with node pools, the
    /// cluster's `KafkaNodePool`s; or the problems of those pools.
    async fn topology(
        &self,
        found: &BTreeMap<String, StatefulSet>,
    ) -> Result<Result<Topology, Invalid>, Error> {
        let spec = &self.kc.spec;
        let status = &self.status;
        if !topology::pools_enabled(self.kc.annotations()) {
            let current = replicas_of(found.get(SOLE_POOL));
            let controllers = topology::single_controllers(spec, status.controllers);
            return Ok(Ok(Topology::single(spec, controllers, current)));
        }
        let label = format!("{CLUSTER_LABEL}={}", self.names.cluster);
        let pools: Vec<(String, KafkaNodePoolSpec)> = self
            .api::<KafkaNodePool>()
            .list(&ListParams::default().labels(&label))
            .await?
            .items
            .into_iter()
            .map(|p| (p.name_any(), p.spec))
            .collect();
        let found: BTreeMap<String, (i32, i32)> = found
            .iter()
            .map(|(pool, sts)| {
                let spec = sts.spec.as_ref();
                let start = spec
                    .and_then(|s| s.ordinals.as_ref())
                    .and_then(|o| o.start)
                    .unwrap_or_default();
                (pool.clone(), (start, replicas_of(Some(sts))))
            })
            .collect();
        Ok(Topology::pooled(
            &self.names.cluster,
            spec,
            &pools,
            &status.node_pools,
            &found,
        ))
    }

    /// Report a spec that cannot be applied, and change nothing else.
    async fn report_invalid(&self, invalid: &Invalid) -> Result<Action, Error> {
        if self.new_generation() {
            self.ctx
                .event(self.kc, true, "InvalidSpec", invalid.to_string())
                .await;
        }
        let decided = status::invalid(&invalid.to_string());
        let next = KafkaClusterStatus {
            observed_generation: self.generation,
            conditions: conditions(decided, &self.status.conditions, self.generation),
            ..self.status.clone()
        };
        self.patch_status(&next).await?;
        Ok(Action::requeue(INVALID_INTERVAL))
    }

    /// Report the pause (see `pause`): the condition added to those the
    /// last pass reported, which stay as they were.
    async fn report_paused(&self) -> Result<Action, Error> {
        let previous = &self.status.conditions;
        if !previous
            .iter()
            .any(|c| c.type_ == pause::REASON && c.status == "True")
        {
            self.ctx
                .event(self.kc, false, pause::REASON, pause::message())
                .await;
        }
        let decided = Decided::new(pause::REASON, true, pause::REASON, pause::message());
        let mut kept: Vec<_> = previous
            .iter()
            .filter(|c| c.type_ != pause::REASON)
            .cloned()
            .collect();
        kept.extend(conditions(vec![decided], previous, self.generation));
        let next = KafkaClusterStatus {
            conditions: kept,
            ..self.status.clone()
        };
        if next != self.status {
            self.patch_status(&next).await?;
        }
        Ok(Action::requeue(INVALID_INTERVAL))
    }

    /// A Warning event `reason` saying `message`, unless the `Degraded`
    /// condition says it already (it was told when it began).
    async fn warn_once(&self, reason: &str, message: &str) {
        let told = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.message == message);
        if !told {
            self.ctx
                .event(self.kc, true, reason, message.to_string())
                .await;
        }
    }

    /// Report certificates that cannot be made or read (`why`); the
    /// brokers are left as they are.
    async fn report_certificates_unavailable(&self, why: &str) -> Result<Action, Error> {
        let why = format!("certificates: {why}");
        self.warn_once("CertificatesUnavailable", &why).await;
        let decided = status::blocked(
            "CertificatesUnavailable",
            &why,
            "provide the Secret it names",
        );
        let next = KafkaClusterStatus {
            observed_generation: self.generation,
            conditions: conditions(decided, &self.status.conditions, self.generation),
            ..self.status.clone()
        };
        if next != self.status {
            self.patch_status(&next).await?;
        }
        Ok(Action::requeue(WATCH_INTERVAL))
    }

    /// Announce a new generation being applied.
    async fn announce_generation(&self) {
        if self.new_generation() {
            let generation = self.generation.unwrap_or_default();
            self.ctx
                .event(
                    self.kc,
                    false,
                    "Applying",
                    format!("applying generation {generation}"),
                )
                .await;
        }
    }

    /// The StatefulSets of the cluster's pools as they are, by pool name:
    /// without node pools the one StatefulSet, if it exists; with them
    /// every StatefulSet of the cluster, named `<cluster>-<pool>`.
    async fn current_statefulsets(&self) -> Result<BTreeMap<String, StatefulSet>, Error> {
        let api = self.api::<StatefulSet>();
        if !topology::pools_enabled(self.kc.annotations()) {
            let found = api.get_opt(&self.names.statefulset()).await?;
            return Ok(found
                .map(|s| (SOLE_POOL.to_string(), s))
                .into_iter()
                .collect());
        }
        let label = format!("{CLUSTER_LABEL}={}", self.names.cluster);
        let prefix = format!("{}-", self.names.cluster);
        Ok(api
            .list(&ListParams::default().labels(&label))
            .await?
            .items
            .into_iter()
            .filter_map(|sts| {
                let pool = sts.name_any().strip_prefix(&prefix)?.to_string();
                Some((pool, sts))
            })
            .collect())
    }

    /// Apply the Services of the running brokers of `topology` and delete
    /// those no longer asked for; returns the external addresses the
    /// applied ones give (Services come first because of them).
    async fn apply_services(
        &self,
        owner: &OwnerReference,
        topology: &Topology,
    ) -> Result<External, Error> {
        let api = self.api::<Service>();
        let mut applied = BTreeMap::new();
        for svc in services::services(&self.names, &self.kc.spec, topology, owner) {
            let got = apply(&api, &svc).await?;
            applied.insert(got.name_any(), got);
        }
        self.prune_services(&api, &applied).await?;
        Ok(addresses::external(
            &self.names,
            &self.kc.spec,
            &topology.brokers(Size::Running),
            &applied,
        ))
    }

    /// The external addresses the cluster's Services give as they are
    /// (when applying them failed), for brokers `running`.
    async fn existing_external(&self, running: &[i32]) -> Result<External, Error> {
        let label = format!("{CLUSTER_LABEL}={}", self.names.cluster);
        let found: BTreeMap<String, Service> = self
            .api::<Service>()
            .list(&ListParams::default().labels(&label))
            .await?
            .items
            .into_iter()
            .map(|svc| (svc.name_any(), svc))
            .collect();
        Ok(addresses::external(
            &self.names,
            &self.kc.spec,
            running,
            &found,
        ))
    }

    /// Deletes the cluster's Services that the spec no longer asks for (a
    /// listener removed, a broker gone after scale-down).
    async fn prune_services(
        &self,
        api: &Api<Service>,
        wanted: &BTreeMap<String, Service>,
    ) -> Result<(), Error> {
        let label = format!("{CLUSTER_LABEL}={}", self.names.cluster);
        for svc in api.list(&ListParams::default().labels(&label)).await?.items {
            let name = svc.name_any();
            if !wanted.contains_key(&name) {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Ask the brokers `running` how the cluster is: `None` if none
    /// answers, or none runs yet (no pool `has_pods`), which spares the
    /// connect timeouts. The cluster has `brokers` brokers by its spec.
    async fn ask_brokers(
        &self,
        has_pods: bool,
        running: &[i32],
        brokers: i32,
        tls: &Arc<ClientConfig>,
    ) -> Option<KafkaView> {
        if !has_pods {
            return None;
        }
        let result = async {
            let bootstrap = self.names.admin_bootstrap(running.iter().copied());
            let mut admin = Admin::connect(&bootstrap, tls).await?;
            admin
                .describe_cluster(min_insync(&self.kc.spec, brokers))
                .await
        }
        .await;
        match result {
            Ok(view) => Some(view),
            Err(e) => {
                tracing::debug!(cluster = %self.names.cluster, error = %e, "cannot describe the cluster");
                None
            }
        }
    }

    /// Scale: each pool's StatefulSet's size for now; a scale-down first
    /// drains the brokers that go, through the brokers `running`.
    async fn scale(
        &self,
        topology: &Topology,
        running: &[i32],
        kafka: Option<&KafkaView>,
        tls: &Arc<ClientConfig>,
        trouble: &mut Trouble,
    ) -> ScalePlan {
        let plan = scale::plan(topology, kafka);
        if plan.moves.is_empty() {
            return plan;
        }
        let moves: Vec<(String, i32, Vec<i32>)> = plan
            .moves
            .iter()
            .map(|m| (m.topic.clone(), m.partition, m.replicas.clone()))
            .collect();
        let reassigned = async {
            let bootstrap = self.names.admin_bootstrap(running.iter().copied());
            let mut admin = Admin::connect(&bootstrap, tls).await?;
            admin.reassign(&moves).await
        };
        if let Err(e) = reassigned.await {
            // The brokers that go keep running until their replicas moved.
            trouble.note("the reassignments draining brokers", &e);
            return plan;
        }
        let list: Vec<String> = plan
            .moves
            .iter()
            .map(|m| format!("{}-{} to {:?}", m.topic, m.partition, m.replicas))
            .collect();
        self.ctx
            .event(
                self.kc,
                false,
                "Draining",
                format!("moving {}", list.join(", ")),
            )
            .await;
        plan
    }

    /// The identity providers' trust files of `oauth` listeners, from
    /// the Secrets their `tlsTrustedCertificates` name.
    async fn provider_trust(&self) -> Result<BTreeMap<String, String>, Error> {
        let wanted = provider_trust::wanted(&self.kc.spec);
        let mut secrets = BTreeMap::new();
        for (_, certificates) in &wanted {
            for c in certificates.iter() {
                if let Some(data) = self.secret(&c.secret_name).await? {
                    secrets.insert(c.secret_name.clone(), data);
                }
            }
        }
        provider_trust::files(&wanted, &secrets).map_err(Error::Certificates)
    }

    /// Apply the ConfigMap: every node of `topology` its StatefulSet runs
    /// gets its file; a broker whose external address is not known yet has
    /// none and its pod waits. The providers' `trust` files go beside them.
    /// Returns those waiting.
    async fn apply_config(
        &self,
        owner: &OwnerReference,
        topology: &Topology,
        external: &ExternalEndpoints,
        trust: &BTreeMap<String, String>,
    ) -> Result<Vec<i32>, Error> {
        let mut files = trust.clone();
        let mut pending = Vec::new();
        for id in topology.ids(Size::Current) {
            match broker_properties(&self.names, &self.kc.spec, topology, id, external) {
                Some(text) => {
                    files.insert(self.names.config_key(id), text);
                }
                None => pending.push(id),
            }
        }
        let cm = configmap::configmap(&self.names, owner, files);
        apply(&self.api::<ConfigMap>(), &cm).await?;
        Ok(pending)
    }

    /// Apply each pool's StatefulSet (see [`Self::apply_statefulset`]);
    /// returns them by pool as the API server has them, status included,
    /// those that could not be applied as `found`.
    async fn apply_statefulsets(
        &self,
        owner: &OwnerReference,
        topology: &Topology,
        trust: &BTreeMap<String, String>,
        found: &BTreeMap<String, StatefulSet>,
        trouble: &mut Trouble,
    ) -> BTreeMap<String, StatefulSet> {
        let mut out = BTreeMap::new();
        for pool in &topology.pools {
            let current = found.get(&pool.name);
            let applied = self
                .apply_statefulset(owner, topology, pool, trust, current, trouble)
                .await;
            let sts = match applied {
                Ok(sts) => sts,
                Err(e) => {
                    let what = match topology.pooled {
                        true => format!("the StatefulSet of pool {}", pool.name),
                        false => "the StatefulSet".into(),
                    };
                    trouble.note(&what, &e);
                    current.cloned()
                }
            };
            if let Some(sts) = sts {
                out.insert(pool.name.clone(), sts);
            }
        }
        out
    }

    /// Apply `pool`'s StatefulSet with the pods it runs now, its pod
    /// template carrying the digest of its nodes' configuration, and its
    /// claim templates as `current` has them (see `storage`; a larger size
    /// is asked of each claim); returns it as the API server has it,
    /// status included. Dedicated controllers do not read the identity
    /// providers' `trust` files.
    async fn apply_statefulset(
        &self,
        owner: &OwnerReference,
        topology: &Topology,
        pool: &Pool,
        trust: &BTreeMap<String, String>,
        current: Option<&StatefulSet>,
        trouble: &mut Trouble,
    ) -> Result<Option<StatefulSet>, Error> {
        let spec = &self.kc.spec;
        let image = statefulset::image(spec, &self.ctx.image_repository, &self.ctx.default_version);
        let files = config_digest(&self.names, spec, topology, pool);
        let digest = match pool.broker {
            true => provider_trust::digest(files, trust),
            false => files,
        };
        let mut sts =
            statefulset::statefulset(&self.names, spec, topology, pool, &image, &digest, owner);
        if let Some(spec) = sts.spec.as_mut() {
            spec.replicas = Some(pool.current);
        }
        let plan = storage::decide(current, &sts);
        if !plan.is_empty() {
            if let (Some(spec), Some(current)) =
                (sts.spec.as_mut(), current.and_then(|c| c.spec.as_ref()))
            {
                spec.volume_claim_templates = current.volume_claim_templates.clone();
            }
        }
        let what = topology.storage_change(pool);
        for growth in &plan.grow {
            self.expand_claims(pool, growth, trouble).await?;
        }
        for why in &plan.refused {
            trouble.note(&what, why);
        }
        Ok(Some(apply(&self.api::<StatefulSet>(), &sts).await?))
    }

    /// The claims `claims` whose volumes are smaller than they ask for
    /// (being expanded), said for status; `None` when none.
    async fn growing_claims(&self, claims: &[String]) -> Result<Option<String>, Error> {
        let api = self.api::<PersistentVolumeClaim>();
        let mut growing = Vec::new();
        for name in claims {
            if let Some(claim) = api.get_opt(name).await? {
                // A claim not bound yet has no capacity: it is not growing.
                let bound = claim
                    .status
                    .as_ref()
                    .and_then(|s| s.capacity.as_ref())
                    .is_some();
                if bound && !storage::expanded(&claim) {
                    growing.push(format!(
                        "{name} ({} asked)",
                        storage::requested(&claim).unwrap_or("?")
                    ));
                }
            }
        }
        Ok((!growing.is_empty()).then(|| format!("volumes growing: {}", growing.join(", "))))
    }

    /// Grows the claims of `growth`'s template of the nodes `pool` runs;
    /// a claim its StorageClass cannot grow is noted with the API
    /// server's reason.
    async fn expand_claims(
        &self,
        pool: &Pool,
        growth: &Growth,
        trouble: &mut Trouble,
    ) -> Result<(), Error> {
        let api = self.api::<PersistentVolumeClaim>();
        let size = &growth.size;
        for id in pool.ids(pool.current) {
            let name = self.names.claim(&growth.template, id);
            let Some(claim) = api.get_opt(&name).await? else {
                continue;
            };
            if !storage::needs_expanding(&claim, size) {
                continue;
            }
            let patch = serde_json::json!({"spec": {"resources": {"requests": {"storage": size}}}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.ctx
                        .event(
                            self.kc,
                            false,
                            "ExpandingStorage",
                            format!("asked for {size} on claim {name}"),
                        )
                        .await
                }
                Err(e) => trouble.note(&format!("{size} on claim {name}"), &Error::from(e)),
            }
        }
        Ok(())
    }

    /// Apply the PodDisruptionBudget.
    async fn apply_pdb(&self, owner: &OwnerReference) -> Result<(), Error> {
        apply(
            &self.api::<PodDisruptionBudget>(),
            &pdb::pdb(&self.names, owner),
        )
        .await?;
        Ok(())
    }

    /// Apply the NetworkPolicy, or delete it when the spec turns it off.
    async fn apply_network_policy(&self, owner: &OwnerReference) -> Result<(), Error> {
        let api = self.api::<NetworkPolicy>();
        if self
            .kc
            .spec
            .network_policy
            .as_ref()
            .is_none_or(|n| n.enabled)
        {
            apply(
                &api,
                &network_policy::network_policy(&self.names, &self.kc.spec, owner),
            )
            .await?;
            return Ok(());
        }
        match api
            .delete(&self.names.statefulset(), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The pods of the nodes of `topology`, after annotating their racks
    /// when rack awareness is on.
    async fn observe_pods(
        &self,
        topology: &Topology,
        trouble: &mut Trouble,
    ) -> Result<Pods, Error> {
        let selector = self
            .names
            .selector()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&selector))
            .await?
            .items;
        let statefulsets: Vec<String> = topology
            .pools
            .iter()
            .map(|p| self.names.pool_statefulset(&p.name))
            .collect();
        let node_addresses = match self.annotate_pods(&statefulsets, &pods).await {
            Ok(addresses) => addresses,
            Err(e) => {
                trouble.note("the brokers' node annotations", &e);
                NodeAddresses::new()
            }
        };
        if view::restart_asked(self.kc.annotations()) {
            if let Err(e) = self.ask_every_restart(&mut pods).await {
                trouble.note("the manual rolling update", &e);
            }
        }
        Ok(Pods::new(&statefulsets, &pods, node_addresses))
    }

    /// Moves the cluster's manual rolling update annotation onto every
    /// broker pod (`pods` too), where the roller takes it, and removes it
    /// from the cluster.
    async fn ask_every_restart(&self, pods: &mut [Pod]) -> Result<(), Error> {
        let api = self.api::<Pod>();
        let patch = serde_json::json!({"metadata": {"annotations": {MANUAL_RESTART: "true"}}});
        for pod in pods.iter_mut() {
            api.patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
            pod.annotations_mut()
                .insert(MANUAL_RESTART.into(), "true".into());
        }
        self.clear_annotation(MANUAL_RESTART).await?;
        self.ctx
            .event(
                self.kc,
                false,
                "RollingRestart",
                format!("a restart of every broker was asked ({MANUAL_RESTART})"),
            )
            .await;
        Ok(())
    }

    /// Annotates each scheduled broker pod with what the broker reads from
    /// its node at start (a broker that starts before exits, and the
    /// kubelet restarts it): its rack label when rack awareness is on, and
    /// the address it advertises on each NodePort listener (see
    /// `node_address`). Returns those addresses, by broker and listener.
    async fn annotate_pods(
        &self,
        statefulsets: &[String],
        pods: &[Pod],
    ) -> Result<NodeAddresses, Error> {
        let spec = &self.kc.spec;
        let mut out = NodeAddresses::new();
        if spec.rack.is_none() && node_address::node_port_listeners(spec).next().is_none() {
            return Ok(out);
        }
        let node_api: Api<Node> = Api::all(self.ctx.client.clone());
        let pod_api = self.api::<Pod>();
        let mut nodes: BTreeMap<String, Option<Node>> = BTreeMap::new();
        for pod in pods {
            let Some(broker) = statefulsets
                .iter()
                .find_map(|sts| BrokerPod::from_pod(sts, pod))
            else {
                continue;
            };
            let Some(name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                continue;
            };
            let node = match nodes.get(&name) {
                Some(node) => node.clone(),
                None => {
                    let node = node_api.get_opt(&name).await?;
                    nodes.insert(name, node.clone());
                    node
                }
            };
            let Some(node) = node else {
                continue;
            };
            let addresses = node_address::for_node(spec, &node);
            let mut wanted = node_address::missing_annotations(&addresses, pod.annotations());
            out.extend(
                addresses
                    .into_iter()
                    .map(|(listener, address)| ((broker.id, listener), address)),
            );
            if let Some(rack) = &spec.rack {
                // A broker's rack is fixed once told: it is in its data.
                if !pod.annotations().contains_key(RACK_ANNOTATION) {
                    if let Some(value) = node.labels().get(&rack.topology_key) {
                        wanted.insert(RACK_ANNOTATION.into(), value.clone());
                    }
                }
            }
            if wanted.is_empty() {
                continue;
            }
            let patch = serde_json::json!({"metadata": {"annotations": wanted}});
            pod_api
                .patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        Ok(out)
    }

    /// Publishes a Warning event for each broker pod that started failing,
    /// or fails another way, since the last pass; a failure that lasts is
    /// told once (again after an operator restart, which forgets).
    async fn tell_failures(&self, failing: &[Failure]) -> Result<(), Error> {
        let tell: Vec<Failure> = self.remember(
            &self.ctx.told,
            "failure memory (poisoned lock)",
            |previous| {
                let (tell, told) = failures::to_tell(&previous, failing);
                (tell.into_iter().cloned().collect(), told)
            },
        )?;
        for f in tell {
            self.ctx
                .event(self.kc, true, f.kind.reason(), f.message)
                .await;
        }
        Ok(())
    }

    /// Roll: restart the nodes the rollout's next step names, over the
    /// StatefulSets `sets` of the pools of `topology`; returns the step.
    async fn roll(
        &self,
        topology: &Topology,
        sets: &BTreeMap<String, StatefulSet>,
        brokers: &[BrokerPod],
        kafka: Option<&KafkaView>,
        trouble: &mut Trouble,
    ) -> Step {
        let sized: Vec<(&StatefulSet, i32)> = topology
            .pools
            .iter()
            .filter_map(|p| Some((sets.get(&p.name)?, p.current)))
            .collect();
        let step = rollout::step(&sized, brokers, kafka, &topology.voters);
        match &step {
            Step::Restart(restarts) => {
                for r in restarts {
                    if let Err(e) = self.restart(r.broker).await {
                        trouble.note(&format!("the restart of broker {}", r.broker), &e);
                        continue;
                    }
                    self.ctx
                        .event(
                            self.kc,
                            false,
                            "RollingRestart",
                            format!("restarting broker {}: {}", r.broker, r.reason),
                        )
                        .await;
                }
            }
            Step::Blocked(why) => {
                // Told when it begins: status says it from then on.
                let told = self.status.conditions.iter().any(|c| {
                    c.type_ == "Reconciling" && c.reason == "RestartBlocked" && &c.message == why
                });
                if !told {
                    self.ctx
                        .event(self.kc, true, "RestartBlocked", why.clone())
                        .await;
                }
            }
            Step::Done | Step::Wait(_) => {}
        }
        step
    }

    /// Heal: at most one restart or one preferred-leader election. Returns
    /// a note for the status while a trouble lasts.
    async fn heal(
        &self,
        brokers: &[BrokerPod],
        kafka: &KafkaView,
        running: &[i32],
        tls: &Arc<ClientConfig>,
        trouble: &mut Trouble,
    ) -> Result<Option<String>, Error> {
        let now = self.ctx.now();
        let troubles = self.remember(
            &self.ctx.troubles,
            "healing memory (poisoned lock)",
            |previous| {
                let next = health::observe(&previous, now, brokers, kafka);
                (next.clone(), next)
            },
        )?;
        let note = (!troubles.is_empty()).then(|| {
            troubles
                .iter()
                .map(|(id, t)| {
                    format!(
                        "broker {id} {:?} for {} s",
                        t.trouble,
                        now.saturating_sub(t.since)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        match health::decide(&troubles, now, self.ctx.thresholds, brokers, kafka) {
            Some(Heal::Restart { broker, reason }) => match self.restart(broker).await {
                Ok(()) => {
                    self.ctx
                        .event(self.kc, true, "HealingRestart", reason)
                        .await
                }
                Err(e) => trouble.note(&format!("the healing restart of broker {broker}"), &e),
            },
            Some(Heal::ElectPreferred(partitions)) => {
                let elected = async {
                    let bootstrap = self.names.admin_bootstrap(running.iter().copied());
                    let mut admin = Admin::connect(&bootstrap, tls).await?;
                    admin.elect_preferred(&partitions).await
                };
                if let Err(e) = elected.await {
                    trouble.note("the preferred leader election", &e);
                    return Ok(note);
                }
                let list: Vec<String> =
                    partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect();
                self.ctx
                    .event(
                        self.kc,
                        false,
                        "PreferredLeaders",
                        format!(
                            "moved leadership back to the preferred replicas of {}",
                            list.join(", ")
                        ),
                    )
                    .await;
            }
            None => {}
        }
        Ok(note)
    }

    /// Report status: the conditions decided from what the pass `seen`,
    /// written when they changed; the next pass comes sooner while
    /// something is under way.
    async fn report_status(
        &self,
        seen: &Seen<'_>,
        report: &Report<'_>,
        listeners: Vec<ListenerStatus>,
        certificates: Certificates,
        rebalance: Option<RebalanceStatus>,
    ) -> Result<Action, Error> {
        let mut decided = status::decide(seen);
        let degraded = decided.iter().any(|d| d.kind == "Degraded" && d.status);
        self.ctx.metrics.cluster_health(
            &self.names.namespace,
            &self.names.cluster,
            seen.ready,
            degraded,
        );
        let busy = decided.iter().any(|d| d.kind == "Reconciling" && d.status);
        if let Some(message) = seen.trouble {
            self.warn_once("ApplyFailed", message).await;
        }
        let expiring = certificates.expiring;
        let was_expiring = self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == certificate_report::CONDITION && c.status == "True");
        if let (Some(message), false) = (&expiring, was_expiring) {
            self.ctx
                .event(self.kc, true, "CertificateExpiring", message.clone())
                .await;
        }
        decided.push(certificate_report::condition(expiring));
        let topology = report.topology;
        let node_pools = topology.records(&self.status.node_pools, report.ready);
        self.report_pools(topology, &node_pools).await?;
        let next = KafkaClusterStatus {
            observed_generation: self.generation,
            conditions: conditions(decided, &self.status.conditions, self.generation),
            ready_brokers: report.ready_brokers,
            // The quorum of a cluster without node pools: its first
            // brokers, as many as it was made with.
            controllers: (!topology.pooled).then_some(topology.voters.len() as i32),
            listeners,
            under_replicated_partitions: seen.kafka.map(|k| k.under_replicated() as i32),
            offline_partitions: seen.kafka.map(|k| k.offline() as i32),
            certificates: certificates.status,
            rebalance,
            node_pools,
        };
        if next != self.status {
            self.patch_status(&next).await?;
        }
        Ok(Action::requeue(if busy {
            BUSY_INTERVAL
        } else {
            WATCH_INTERVAL
        }))
    }

    /// Writes each `KafkaNodePool`'s status from the cluster's `records`,
    /// when it changed: its nodes, roles, size and pod selector (for the
    /// scale subresource).
    async fn report_pools(
        &self,
        topology: &Topology,
        records: &[NodePoolRecord],
    ) -> Result<(), Error> {
        if !topology.pooled {
            return Ok(());
        }
        let api = self.api::<KafkaNodePool>();
        let label = format!("{CLUSTER_LABEL}={}", self.names.cluster);
        for resource in api.list(&ListParams::default().labels(&label)).await?.items {
            let name = resource.name_any();
            let (Some(pool), Some(record)) = (
                topology.pools.iter().find(|p| p.name == name),
                records.iter().find(|r| r.name == name),
            ) else {
                continue;
            };
            let next = KafkaNodePoolStatus {
                observed_generation: resource.metadata.generation,
                node_ids: record.node_ids.clone(),
                roles: record.roles.clone(),
                replicas: pool.current,
                label_selector: topology
                    .pool_selector(&self.names, pool)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            };
            if resource.status.as_ref() != Some(&next) {
                let patch = serde_json::json!({ "status": next });
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
        }
        Ok(())
    }

    /// Certificates: the cluster and clients CAs (made, or the user's;
    /// replaced step by step), the brokers' and the operator's own, each
    /// Secret written when it changes, in the order that keeps every
    /// connection trusted. Returns the operator's TLS configuration for
    /// admin requests and what to report.
    async fn apply_certificates(
        &self,
        owner: &OwnerReference,
        nodes_running: &[i32],
        running: &[i32],
        external: &External,
        nodes: &NodeAddresses,
    ) -> Result<Certificates, Error> {
        let (spec, names) = (&self.kc.spec, &self.names);
        let now = pki::now();
        let cluster_ca = spec.cluster_ca.clone().unwrap_or_default();
        let clients_ca = spec.clients_ca.clone().unwrap_or_default();
        let cluster_life = lifetimes(&cluster_ca).map_err(Error::Certificates)?;
        let clients_life = lifetimes(&clients_ca).map_err(Error::Certificates)?;
        let stored_cluster = self.stored_authority(Which::Cluster).await?;
        let stored_clients = self.stored_authority(Which::Clients).await?;
        let stored_brokers = self.secret_data(&names.broker_certs()).await?;
        let stored_operator = self.secret_data(&names.operator_certs()).await?;

        // Only an authority the operator made is replaced by it.
        let seen = match cluster_ca.generate_certificate_authority {
            true => {
                self.seen_cluster_rotation(
                    &stored_cluster,
                    &stored_brokers,
                    &stored_operator,
                    running,
                    now,
                )
                .await
            }
            false => renewal::Seen::default(),
        };
        let cluster = plan_authority(
            Which::Cluster,
            &names.cluster,
            &cluster_ca,
            cluster_life,
            &stored_cluster,
            now,
            seen,
        )?;
        let seen = match clients_ca.generate_certificate_authority {
            true => {
                self.seen_clients_rotation(&stored_clients, &cluster.bundle, running, now)
                    .await
            }
            false => renewal::Seen::default(),
        };
        let clients = plan_authority(
            Which::Clients,
            &names.cluster,
            &clients_ca,
            clients_life,
            &stored_clients,
            now,
            seen,
        )?;
        let held = match cluster_ca.generate_certificate_authority {
            true => {
                self.held_authorities(&cluster, &stored_brokers, &stored_operator, running, now)
                    .await
            }
            false => Vec::new(),
        };
        let wanted = broker_certificates(names, spec, nodes_running, external, nodes);
        let brokers = plan_leaves(
            &cluster.signing,
            &held,
            cluster_life,
            now,
            &stored_brokers,
            &wanted,
        )?;
        let operator = plan_leaves(
            &cluster.signing,
            &held,
            cluster_life,
            now,
            &stored_operator,
            &[operator_certificate(names)],
        )?;

        for (which, plan, stored) in [
            (Which::Cluster, &cluster, &stored_cluster),
            (Which::Clients, &clients, &stored_clients),
        ] {
            if let Some(private) = &plan.private {
                self.write_secret(
                    owner,
                    names.ca(which.as_str()),
                    private,
                    stored.private.as_ref(),
                )
                .await?;
            }
            self.write_secret(
                owner,
                names.ca_cert(which.as_str()),
                &plan.public(),
                stored.public.as_ref(),
            )
            .await?;
            if let Some(note) = certificate_report::authority_note(which, plan, stored) {
                self.ctx
                    .event(self.kc, false, "CertificateAuthority", note)
                    .await;
            }
        }
        self.write_secret(
            owner,
            names.broker_certs(),
            &brokers.data,
            Some(&stored_brokers),
        )
        .await?;
        self.write_secret(
            owner,
            names.operator_certs(),
            &operator.data,
            Some(&stored_operator),
        )
        .await?;
        if let Some(note) = certificate_report::issued_note(&[&brokers, &operator]) {
            self.ctx
                .event(self.kc, false, "CertificatesIssued", note)
                .await;
        }
        let identity = operator.data.get(OPERATOR_KEY).ok_or_else(|| {
            Error::Certificates("the operator's certificate was not issued".into())
        })?;
        let tls = tls::client_config(&cluster.bundle, identity).map_err(Error::Certificates)?;
        let (status, expiring) = certificate_report::status(
            now,
            [
                (Which::Cluster, &cluster, cluster_life),
                (Which::Clients, &clients, clients_life),
            ],
            [(&brokers, cluster_life), (&operator, cluster_life)],
        )?;
        Ok(Certificates {
            tls: Arc::new(tls),
            status,
            expiring,
        })
    }

    async fn stored_authority(&self, which: Which) -> Result<Stored, Error> {
        Ok(Stored {
            private: self.secret(&self.names.ca(which.as_str())).await?,
            public: self.secret(&self.names.ca_cert(which.as_str())).await?,
        })
    }

    async fn secret(&self, name: &str) -> Result<Option<SecretData>, Error> {
        Ok(self
            .api::<Secret>()
            .get_opt(name)
            .await?
            .map(|s| secret_data(&s)))
    }

    async fn secret_data(&self, name: &str) -> Result<SecretData, Error> {
        Ok(self.secret(name).await?.unwrap_or_default())
    }

    /// Writes Secret `name` with `data`, unless it holds that already.
    async fn write_secret(
        &self,
        owner: &OwnerReference,
        name: String,
        data: &SecretData,
        stored: Option<&SecretData>,
    ) -> Result<(), Error> {
        if stored == Some(data) {
            return Ok(());
        }
        let secret = certificates::secret(self.names.meta(name, owner), data);
        apply(&self.api::<Secret>(), &secret).await?;
        Ok(())
    }

    /// What the brokers do about a replacement of the cluster CA under way:
    /// whether every broker accepts a certificate of the successor, and
    /// whether every broker serves one of the signing CA (so that the old
    /// one is no longer needed). Probed only while it matters.
    async fn seen_cluster_rotation(
        &self,
        stored: &Stored,
        brokers: &SecretData,
        operator: &SecretData,
        running: &[i32],
        now: i64,
    ) -> renewal::Seen {
        let mut seen = renewal::Seen::default();
        let Some(rotation) = Rotating::read(stored) else {
            return seen;
        };
        if let Some(next) = &rotation.next {
            seen.next_trusted = match self.probe_identity(next, now, &rotation.bundle_with_next()) {
                Some(tls) => self.all_answer(running, REPLICATION_PORT, &tls).await,
                None => false,
            };
        } else if !rotation.others().is_empty() {
            let current = brokers.values().chain(operator.values()).all(|pem| {
                CertificateInfo::parse(pem).is_ok_and(|c| c.signed_by(rotation.signing.info()))
            });
            let identity = operator.get(OPERATOR_KEY);
            seen.old_unused =
                match identity.map(|i| tls::client_config(rotation.signing.info().pem(), i)) {
                    Some(Ok(tls)) if current => {
                        self.all_answer(running, REPLICATION_PORT, &Arc::new(tls))
                            .await
                    }
                    _ => false,
                };
        }
        seen
    }

    /// The cluster CA's authorities other than the signing one whose
    /// certificates stay in use for now: all of them while a broker's or
    /// the operator's certificate is signed by one and some broker does
    /// not accept a certificate of the signing one yet (after its Secret
    /// was deleted, the new authority signs before the brokers trust it).
    /// Probed only then.
    async fn held_authorities(
        &self,
        cluster: &AuthorityPlan,
        brokers: &SecretData,
        operator: &SecretData,
        running: &[i32],
        now: i64,
    ) -> Vec<CertificateInfo> {
        let others: Vec<CertificateInfo> = CertificateInfo::parse_all(&cluster.bundle)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c != cluster.signing.info())
            .collect();
        let lagging = brokers.values().chain(operator.values()).any(|pem| {
            CertificateInfo::parse(pem).is_ok_and(|c| others.iter().any(|o| c.signed_by(o)))
        });
        if !lagging {
            return Vec::new();
        }
        let trusted = match self.probe_identity(&cluster.signing, now, &cluster.bundle) {
            Some(tls) => self.all_answer(running, REPLICATION_PORT, &tls).await,
            None => false,
        };
        match trusted {
            true => Vec::new(),
            false => others,
        }
    }

    /// The same for the clients CA: its successor is trusted once every
    /// listener authenticating clients by certificate accepts one of its
    /// certificates; the old one stays trusted until it expires, as client
    /// applications may hold their certificates for as long.
    async fn seen_clients_rotation(
        &self,
        stored: &Stored,
        cluster_bundle: &str,
        running: &[i32],
        now: i64,
    ) -> renewal::Seen {
        let mut seen = renewal::Seen::default();
        let Some(rotation) = Rotating::read(stored) else {
            return seen;
        };
        if let Some(next) = &rotation.next {
            let ports: Vec<i32> = self
                .kc
                .spec
                .listeners
                .iter()
                .filter(|l| {
                    l.authentication
                        .as_ref()
                        .is_some_and(|a| a.kind == AuthenticationType::Tls)
                })
                .map(|l| l.port)
                .collect();
            seen.next_trusted = match self.probe_identity(next, now, cluster_bundle) {
                Some(tls) => {
                    let mut all = true;
                    for port in ports {
                        all &= self.all_answer(running, port, &tls).await;
                    }
                    all
                }
                None => false,
            };
        } else {
            seen.old_unused = rotation.others().iter().all(|c| c.not_after <= now);
        }
        seen
    }

    /// A throwaway client identity signed by `authority`, trusting
    /// `bundle`.
    fn probe_identity(
        &self,
        authority: &Authority,
        now: i64,
        bundle: &str,
    ) -> Option<Arc<ClientConfig>> {
        let request = operator_certificate(&self.names).request;
        let issued = authority
            .issue(&request, now, PROBE_VALIDITY_SECONDS)
            .ok()?;
        let identity = format!("{}{}", issued.key, issued.certificate);
        tls::client_config(bundle, &identity).ok().map(Arc::new)
    }

    /// Whether every broker of `running` answers on `port` over `tls`.
    async fn all_answer(&self, running: &[i32], port: i32, tls: &Arc<ClientConfig>) -> bool {
        for &id in running {
            let addr = format!("{}:{port}", self.names.pod_host(id));
            if let Err(e) = Admin::probe(&addr, tls).await {
                tracing::debug!(cluster = %self.names.cluster, %addr, error = %e, "certificate probe refused");
                return false;
            }
        }
        true
    }

    /// Deletes a broker's pod; the StatefulSet controller recreates it from
    /// the current revision.
    async fn restart(&self, broker: i32) -> Result<(), Error> {
        match self
            .api::<Pod>()
            .delete(&self.names.pod(broker), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes annotation `key` from the cluster (a request carried out).
    async fn clear_annotation(&self, key: &str) -> Result<(), Error> {
        let clear = serde_json::json!({"metadata": {"annotations": {key: null}}});
        self.api::<KafkaCluster>()
            .patch(
                &self.names.cluster,
                &PatchParams::default(),
                &Patch::Merge(&clear),
            )
            .await?;
        Ok(())
    }

    async fn patch_status(&self, status: &KafkaClusterStatus) -> Result<(), Error> {
        let patch = serde_json::json!({ "status": status });
        self.api::<KafkaCluster>()
            .patch_status(
                &self.names.cluster,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// The cluster's key in the operator's memories (healing, failures).
    fn key(&self) -> String {
        format!("{}/{}", self.names.namespace, self.names.cluster)
    }

    /// Replaces this cluster's entry in one of the operator's memories with
    /// what `next` makes of the previous one, and returns `next`'s answer.
    fn remember<T: Default, R>(
        &self,
        memory: &Mutex<BTreeMap<String, T>>,
        what: &'static str,
        next: impl FnOnce(T) -> (R, T),
    ) -> Result<R, Error> {
        let mut all = memory.lock().map_err(|_| Error::Missing(what))?;
        let previous = all.remove(&self.key()).unwrap_or_default();
        let (answer, entry) = next(previous);
        all.insert(self.key(), entry);
        Ok(answer)
    }
}

/// Writes `obj` with server-side apply and returns what the API server
/// holds afterwards.
/// The certificates step's outcome.
struct Certificates {
    /// The operator's TLS configuration for admin requests.
    tls: Arc<ClientConfig>,
    /// Every certificate in use, for status.
    status: Vec<CertificateStatus>,
    /// The warning about certificates near their end, if any.
    expiring: Option<String>,
}

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let name = obj.meta().name.clone().ok_or(Error::Missing("name"))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(obj)).await?)
}

mod balancing;
#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};

    #[test]
    fn the_statefulset_as_found() {
        let sts = |replicas: Option<i32>, pods: Option<i32>| StatefulSet {
            spec: replicas.map(|r| StatefulSetSpec {
                replicas: Some(r),
                ..Default::default()
            }),
            status: pods.map(|p| StatefulSetStatus {
                replicas: p,
                ..Default::default()
            }),
            ..Default::default()
        };
        let cases = [
            ("none yet", None, 0, false),
            ("just created", Some(sts(Some(3), None)), 3, false),
            ("no pod created yet", Some(sts(Some(3), Some(0))), 3, false),
            ("pods", Some(sts(Some(3), Some(2))), 3, true),
        ];
        for (name, sts, replicas, pods) in cases {
            assert_eq!(replicas_of(sts.as_ref()), replicas, "{name}");
            assert_eq!(has_pods(sts.as_ref()), pods, "{name}");
        }
    }
}
