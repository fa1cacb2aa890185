//! The `KafkaCluster` controller's reconcile pass. It only does: read what
//! is there, ask the pure modules what should be, write it with
//! server-side apply, act on one decision, report status and events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admin::Admin;
use crate::conditions::{conditions, Decided};
use crate::context::Context;
use crate::crd::validate::default_controllers;
use crate::crd::{validate_cluster, KafkaCluster, KafkaClusterStatus};
use crate::error::Error;

use super::addresses::{bootstrap_status, external_endpoints};
use super::broker_config::{broker_properties, min_insync};
use super::failures::{self, Failure};
use super::health::{self, Heal};
use super::names::{Names, CLUSTER_LABEL, FIELD_MANAGER};
use super::rollout::{self, Step};
use super::scale;
use super::status::{self, Seen};
use super::view::{BrokerPod, KafkaView};
use super::{configmap, pdb, services, statefulset};

/// Annotation carrying a broker pod's rack, read by the broker at start.
const RACK_ANNOTATION: &str = "gregor.dev/rack";
/// How often a healthy cluster is looked at again (ISR, registration).
const WATCH_INTERVAL: Duration = Duration::from_secs(15);
/// How soon to look again while something is under way.
const BUSY_INTERVAL: Duration = Duration::from_secs(5);

/// Writes `obj` with server-side apply and returns what the API server
/// holds afterwards.
async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let name = obj.meta().name.clone().ok_or(Error::Missing("name"))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(obj)).await?)
}

/// Reconciles one `KafkaCluster`.
pub async fn reconcile(kc: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kc.namespace().ok_or(Error::Missing("namespace"))?;
    let names = Names::new(&kc.name_any(), &ns);
    let client = ctx.client.clone();
    let status = kc.status.clone().unwrap_or_default();
    let generation = kc.meta().generation;

    if let Err(invalid) = validate_cluster(&kc.spec, status.controllers) {
        if status.observed_generation != generation {
            ctx.event(kc.as_ref(), true, "InvalidSpec", invalid.to_string())
                .await;
        }
        let decided = vec![
            Decided::new("Ready", false, "InvalidSpec", invalid.to_string()),
            Decided::new("Reconciling", false, "InvalidSpec", "fix the spec"),
            Decided::new("Degraded", true, "InvalidSpec", invalid.to_string()),
        ];
        let next = KafkaClusterStatus {
            observed_generation: generation,
            conditions: conditions(decided, &status.conditions, generation),
            ..status.clone()
        };
        patch_status(&client, &names, &next).await?;
        return Ok(Action::requeue(Duration::from_secs(300)));
    }
    let controllers = status
        .controllers
        .or(kc.spec.controllers)
        .unwrap_or(default_controllers(kc.spec.replicas));
    let owner = kc.controller_owner_ref(&()).ok_or(Error::Missing("uid"))?;
    if status.observed_generation != generation {
        ctx.event(
            kc.as_ref(),
            false,
            "Applying",
            format!("applying generation {}", generation.unwrap_or_default()),
        )
        .await;
    }

    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let current = sts_api.get_opt(&names.statefulset()).await?;
    let current_replicas = current
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    // Brokers being drained before a scale-down still run and need theirs.
    let running = current_replicas.max(kc.spec.replicas);

    // Services first: external addresses come from them.
    let svc_api: Api<Service> = Api::namespaced(client.clone(), &ns);
    let mut applied = BTreeMap::new();
    for svc in services::services(&names, &kc.spec, running, &owner) {
        let got = apply(&svc_api, &svc).await?;
        applied.insert(got.name_any(), got);
    }
    prune_services(&svc_api, &names, &applied).await?;

    let external = external_endpoints(&names, &kc.spec, running, &applied);
    let kafka = describe(&names, &kc, running).await;

    // Scaling down first drains the brokers that go.
    let plan = scale::plan(kc.spec.replicas, current_replicas, kafka.as_ref());
    if !plan.moves.is_empty() {
        let moves: Vec<(String, i32, Vec<i32>)> = plan
            .moves
            .iter()
            .map(|m| (m.topic.clone(), m.partition, m.replicas.clone()))
            .collect();
        let mut admin = Admin::connect(&names.admin_bootstrap(current_replicas)).await?;
        admin.reassign(&moves).await?;
        let list: Vec<String> = plan
            .moves
            .iter()
            .map(|m| format!("{}-{} to {:?}", m.topic, m.partition, m.replicas))
            .collect();
        ctx.event(
            kc.as_ref(),
            false,
            "Draining",
            format!("moving {}", list.join(", ")),
        )
        .await;
    }
    let replicas = plan.statefulset_replicas;

    // Every broker that runs or will run gets its file; one whose external
    // address is not known yet has none and its pod waits.
    let mut files = BTreeMap::new();
    let mut pending = Vec::new();
    for id in 0..replicas {
        match broker_properties(&names, &kc.spec, controllers, id, &external) {
            Some(text) => {
                files.insert(names.config_key(id), text);
            }
            None => pending.push(id),
        }
    }
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    apply(&cm_api, &configmap::configmap(&names, &owner, files)).await?;

    let image = kc.spec.image.clone().unwrap_or_else(|| {
        let version = kc.spec.version.as_deref().unwrap_or(&ctx.default_version);
        format!("{}:{version}", ctx.image_repository)
    });
    let digest = config_digest(&kc, min_insync(&kc.spec));
    let mut sts = statefulset::statefulset(&names, &kc.spec, &image, &digest, &owner);
    if let Some(spec) = sts.spec.as_mut() {
        spec.replicas = Some(replicas);
    }
    let sts = apply(&sts_api, &sts).await?;
    let pdb_api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    apply(&pdb_api, &pdb::pdb(&names, &owner)).await?;

    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pods = pod_api
        .list(&ListParams::default().labels(&selector(&names)))
        .await?
        .items;
    if kc.spec.rack.is_some() {
        label_racks(&ctx, &kc, &pods).await?;
    }
    let mut brokers = Vec::new();
    let mut host_ips = BTreeMap::new();
    for (pod, broker) in pods
        .iter()
        .filter_map(|p| Some((p, BrokerPod::from_pod(&names.statefulset(), p)?)))
    {
        if let Some(ip) = pod.status.as_ref().and_then(|s| s.host_ip.clone()) {
            host_ips.insert(broker.id, ip);
        }
        brokers.push(broker);
    }
    let revision = sts
        .status
        .as_ref()
        .and_then(|s| s.update_revision.clone())
        .unwrap_or_default();
    // Until the StatefulSet controller has seen a changed template, its
    // update revision is the old one and every pod would look current.
    let template_seen =
        sts.status.as_ref().and_then(|s| s.observed_generation) >= sts.metadata.generation;

    let failing = failures::failures(&brokers);
    tell_failures(&ctx, &kc, &names, &failing).await?;

    // One restart at a time: the rollout first, healing when it is done.
    let step = if revision.is_empty() || (brokers.len() as i32) < replicas {
        Step::Wait("the StatefulSet is creating pods".into())
    } else if !template_seen {
        Step::Wait("the StatefulSet controller has not seen the new pod template yet".into())
    } else {
        rollout::next_step(&brokers, &revision, kafka.as_ref(), controllers)
    };
    let mut heal_note = None;
    match &step {
        Step::Restart(restarts) => {
            for r in restarts {
                restart(&pod_api, &names, r.broker).await?;
                ctx.event(
                    kc.as_ref(),
                    false,
                    "RollingRestart",
                    format!("restarting broker {}: {}", r.broker, r.reason),
                )
                .await;
            }
        }
        Step::Blocked(why) => {
            if status.observed_generation != generation {
                ctx.event(kc.as_ref(), true, "RestartBlocked", why.clone())
                    .await;
            }
        }
        Step::Done => {
            if let Some(kafka) = &kafka {
                heal_note = heal(&ctx, &kc, &names, &pod_api, &brokers, kafka, replicas).await?;
            }
        }
        Step::Wait(_) => {}
    }

    let ready = brokers
        .iter()
        .filter(|b| b.ready && b.id < replicas)
        .count() as i32;
    let failing = failures::summary(&failing);
    let decided = status::decide(&Seen {
        want: kc.spec.replicas,
        ready,
        step: &step,
        scaling: plan.waiting.as_deref(),
        pending: &pending,
        kafka: kafka.as_ref(),
        healing: heal_note.as_deref(),
        failing: failing.as_ref().map(|(r, m)| (*r, m.as_str())),
    });
    let busy = decided.iter().any(|d| d.kind == "Reconciling" && d.status);
    let next = KafkaClusterStatus {
        observed_generation: generation,
        conditions: conditions(decided, &status.conditions, generation),
        ready_brokers: ready,
        controllers: Some(controllers),
        listeners: bootstrap_status(&names, &kc.spec, &external, &host_ips),
        under_replicated_partitions: kafka.as_ref().map(|k| k.under_replicated() as i32),
        offline_partitions: kafka.as_ref().map(|k| k.offline() as i32),
    };
    if next != status {
        patch_status(&client, &names, &next).await?;
    }
    Ok(Action::requeue(if busy {
        BUSY_INTERVAL
    } else {
        WATCH_INTERVAL
    }))
}

/// Acts on healing: at most one restart or one preferred-leader election.
/// Returns a note for the status while a trouble lasts.
async fn heal(
    ctx: &Context,
    kc: &KafkaCluster,
    names: &Names,
    pod_api: &Api<Pod>,
    brokers: &[BrokerPod],
    kafka: &KafkaView,
    replicas: i32,
) -> Result<Option<String>, Error> {
    let key = format!("{}/{}", names.namespace, names.cluster);
    let now = ctx.now();
    let troubles = {
        let mut all = ctx
            .troubles
            .lock()
            .map_err(|_| Error::Missing("healing memory (poisoned lock)"))?;
        let previous = all.remove(&key).unwrap_or_default();
        let next = health::observe(&previous, now, brokers, kafka);
        all.insert(key, next.clone());
        next
    };
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
    match health::decide(&troubles, now, ctx.thresholds, brokers, kafka) {
        Some(Heal::Restart { broker, reason }) => {
            restart(pod_api, names, broker).await?;
            ctx.event(kc, true, "HealingRestart", reason).await;
        }
        Some(Heal::ElectPreferred(partitions)) => {
            let mut admin = Admin::connect(&names.admin_bootstrap(replicas)).await?;
            admin.elect_preferred(&partitions).await?;
            let list: Vec<String> = partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect();
            ctx.event(
                kc,
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

/// Publishes a Warning event for each broker pod that started failing, or
/// fails another way, since the last pass; a failure that lasts is told
/// once (again after an operator restart, which forgets).
async fn tell_failures(
    ctx: &Context,
    kc: &KafkaCluster,
    names: &Names,
    failing: &[Failure],
) -> Result<(), Error> {
    let key = format!("{}/{}", names.namespace, names.cluster);
    let tell: Vec<Failure> = {
        let mut all = ctx
            .told
            .lock()
            .map_err(|_| Error::Missing("failure memory (poisoned lock)"))?;
        let previous = all.remove(&key).unwrap_or_default();
        let (tell, told) = failures::to_tell(&previous, failing);
        all.insert(key, told);
        tell.into_iter().cloned().collect()
    };
    for f in tell {
        ctx.event(kc, true, f.kind.reason(), f.message).await;
    }
    Ok(())
}

/// Deletes the cluster's Services that the spec no longer asks for (a
/// listener removed, a broker gone after scale-down).
async fn prune_services(
    api: &Api<Service>,
    names: &Names,
    wanted: &BTreeMap<String, Service>,
) -> Result<(), Error> {
    let label = format!("{CLUSTER_LABEL}={}", names.cluster);
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

/// Deletes a broker's pod; the StatefulSet controller recreates it from the
/// current revision.
async fn restart(pod_api: &Api<Pod>, names: &Names, broker: i32) -> Result<(), Error> {
    match pod_api
        .delete(&names.pod(broker), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Annotates each scheduled broker pod with its node's rack label, which
/// the broker reads at start (a broker that starts before it exits and is
/// restarted by the kubelet).
async fn label_racks(ctx: &Context, kc: &KafkaCluster, pods: &[Pod]) -> Result<(), Error> {
    let Some(rack) = &kc.spec.rack else {
        return Ok(());
    };
    let node_api: Api<Node> = Api::all(ctx.client.clone());
    let ns = kc.namespace().ok_or(Error::Missing("namespace"))?;
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    for pod in pods {
        if pod.annotations().contains_key(RACK_ANNOTATION) {
            continue;
        }
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let Some(value) = node_api
            .get_opt(&node)
            .await?
            .and_then(|n| n.labels().get(&rack.topology_key).cloned())
        else {
            continue;
        };
        let patch = serde_json::json!({"metadata": {"annotations": {RACK_ANNOTATION: value}}});
        pod_api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    Ok(())
}

fn selector(names: &Names) -> String {
    names
        .selector()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The cluster as its brokers see it, or `None` if none answers.
async fn describe(names: &Names, kc: &KafkaCluster, count: i32) -> Option<KafkaView> {
    let result = async {
        let mut admin = Admin::connect(&names.admin_bootstrap(count)).await?;
        admin.describe_cluster(min_insync(&kc.spec)).await
    }
    .await;
    match result {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::debug!(cluster = %names.cluster, error = %e, "cannot describe the cluster");
            None
        }
    }
}

/// Digest of what every broker reads at start besides its own addresses:
/// a change rolls the brokers.
fn config_digest(kc: &KafkaCluster, min_isr: i32) -> String {
    let shared = serde_json::json!({
        "config": kc.spec.config,
        "minInsync": min_isr,
        "listeners": kc.spec.listeners,
        "rack": kc.spec.rack,
    });
    format!("{:08x}", crc32c::crc32c(shared.to_string().as_bytes()))
}

async fn patch_status(
    client: &kube::Client,
    names: &Names,
    status: &KafkaClusterStatus,
) -> Result<(), Error> {
    let api: Api<KafkaCluster> = Api::namespaced(client.clone(), &names.namespace);
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &names.cluster,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// What to do when a pass fails: log, and try again soon.
pub fn error_policy(kc: Arc<KafkaCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %kc.name_any(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}
