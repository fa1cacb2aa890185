//! The `KafkaTopic` controller's reconcile pass: find the cluster, compare
//! the topic with the spec (`plan`), make the changes through the Kafka
//! admin protocol, report status. Deletion goes through a finalizer, so the
//! topic is deleted before the resource is gone; a resource annotated
//! `gregor.dev/managed: "false"` is left alone and its topic kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event};
use kube::{Api, Resource, ResourceExt};

use crate::admin::Admin;
use crate::cluster::names::Names;
use crate::cluster::topology;
use crate::conditions::{conditions, Decided};
use crate::context::Context;
use crate::crd::validate::config_value;
use crate::crd::{validate_topic, KafkaCluster, KafkaTopic, KafkaTopicStatus};
use crate::error::Error;
use crate::pause;
use crate::tls;

use super::plan::{plan, Change, Desired};

/// Finalizer that makes deleting a `KafkaTopic` delete its topic.
pub const FINALIZER: &str = "gregor.dev/topic";
/// Annotation that, set to `"false"`, detaches a resource from its topic.
pub const MANAGED_ANNOTATION: &str = "gregor.dev/managed";

fn topic_name(kt: &KafkaTopic) -> String {
    kt.spec.topic_name.clone().unwrap_or_else(|| kt.name_any())
}

fn managed(kt: &KafkaTopic) -> bool {
    kt.annotations().get(MANAGED_ANNOTATION).map(String::as_str) != Some("false")
}

/// Reconciles one `KafkaTopic`.
pub async fn reconcile(kt: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kt.namespace().ok_or(Error::Missing("namespace"))?;
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, kt, |event| async {
        match event {
            Event::Apply(kt) => apply(&kt, &ctx, &ns).await,
            Event::Cleanup(kt) => cleanup(&kt, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// The bootstrap addresses of the topic's cluster; `None` when the cluster
/// does not exist or is being deleted.
async fn cluster_bootstrap(
    ctx: &Context,
    ns: &str,
    cluster: &str,
) -> Result<Option<String>, Error> {
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), ns);
    let Some(kc) = api.get_opt(cluster).await? else {
        return Ok(None);
    };
    if kc.meta().deletion_timestamp.is_some() {
        return Ok(None);
    }
    Ok(Some(topology::admin_bootstrap(&kc, ns)))
}

/// An admin connection to the topic's cluster at `bootstrap`, with the
/// operator's certificate for that cluster.
async fn connect(ctx: &Context, kt: &KafkaTopic, bootstrap: &str) -> Result<Admin, Error> {
    let ns = kt.namespace().ok_or(Error::Missing("namespace"))?;
    let names = Names::new(&kt.spec.cluster, &ns);
    let tls = tls::for_cluster(&ctx.client, &names).await?;
    Ok(Admin::connect(bootstrap, &tls).await?)
}

async fn apply(kt: &KafkaTopic, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let status = kt.status.clone().unwrap_or_default();
    let generation = kt.meta().generation;
    let name = topic_name(kt);
    let mut next = KafkaTopicStatus {
        observed_generation: generation,
        topic_name: Some(name.clone()),
        ..status.clone()
    };
    let outcome = if pause::is_paused(kt) {
        Outcome::Paused
    } else if !managed(kt) {
        Outcome::NotReady(
            "Unmanaged",
            format!("{MANAGED_ANNOTATION} is \"false\": the topic is left alone"),
        )
    } else if let Err(invalid) = validate_topic(&kt.spec) {
        Outcome::NotReady("InvalidSpec", invalid.to_string())
    } else {
        match cluster_bootstrap(ctx, ns, &kt.spec.cluster).await? {
            None => Outcome::Retry(
                "ClusterNotFound",
                format!("KafkaCluster {ns}/{} does not exist", kt.spec.cluster),
            ),
            Some(bootstrap) => match sync(kt, ctx, &name, &bootstrap, &mut next).await {
                Ok(o) => o,
                Err(e) => Outcome::Retry("KafkaError", e.to_string()),
            },
        }
    };
    let (decided, requeue) = match &outcome {
        Outcome::Ready => (
            Decided::new(
                "Ready",
                true,
                "Ready",
                format!("topic {name} matches the spec"),
            ),
            Duration::from_secs(120),
        ),
        Outcome::InProgress(why) => (
            Decided::new("Ready", false, "Reconciling", why.clone()),
            Duration::from_secs(5),
        ),
        Outcome::Refused(why) => (
            Decided::new("Ready", false, "Refused", why.clone()),
            Duration::from_secs(120),
        ),
        Outcome::NotReady(reason, why) => (
            Decided::new("Ready", false, reason, why.clone()),
            Duration::from_secs(300),
        ),
        Outcome::Retry(reason, why) => (
            Decided::new("Ready", false, reason, why.clone()),
            Duration::from_secs(10),
        ),
        Outcome::Paused => (
            Decided::new("Ready", false, pause::REASON, pause::message()),
            Duration::from_secs(300),
        ),
    };
    let changed_reason = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.as_str())
        != Some(decided.reason.as_str());
    if changed_reason
        && !decided.status
        && matches!(
            outcome,
            Outcome::Refused(_) | Outcome::NotReady(..) | Outcome::Paused
        )
    {
        let warning = !matches!(outcome, Outcome::Paused);
        ctx.event(kt, warning, &decided.reason, decided.message.clone())
            .await;
    }
    next.conditions = conditions(vec![decided], &status.conditions, generation);
    if next != status {
        let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), ns);
        let patch = serde_json::json!({ "status": next });
        api.patch_status(
            &kt.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(Action::requeue(requeue))
}

/// How a pass ended.
enum Outcome {
    /// The topic matches the spec.
    Ready,
    /// Changes were made; look again soon.
    InProgress(String),
    /// Part of the spec cannot be applied.
    Refused(String),
    /// Nothing to do until the resource changes.
    NotReady(&'static str, String),
    /// Could not get through; try again soon.
    Retry(&'static str, String),
    /// Paused by its annotation (see `pause`).
    Paused,
}

async fn sync(
    kt: &KafkaTopic,
    ctx: &Context,
    name: &str,
    bootstrap: &str,
    status: &mut KafkaTopicStatus,
) -> Result<Outcome, Error> {
    let mut admin = connect(ctx, kt, bootstrap).await?;
    let view = admin.describe_cluster(1).await?;
    let mut load: BTreeMap<i32, usize> = BTreeMap::new();
    for p in &view.partitions {
        for r in &p.replicas {
            *load.entry(*r).or_default() += 1;
        }
    }
    let desired = Desired {
        partitions: kt.spec.partitions,
        replicas: kt.spec.replicas,
        config: kt
            .spec
            .config
            .iter()
            .map(|(k, v)| (k.clone(), config_value(v)))
            .collect(),
    };
    let current = admin.describe_topic(name).await?;
    let reassigning = view
        .partitions
        .iter()
        .any(|p| p.topic == name && p.reassigning);
    let plan = plan(&desired, current.as_ref(), &view.brokers, &load);
    for change in &plan.changes {
        let note = match change {
            Change::Create => {
                admin
                    .create_topic(
                        name,
                        desired.partitions,
                        desired.replicas as i16,
                        &desired.config,
                    )
                    .await?;
                format!(
                    "created topic {name} with {} partitions and {} replicas",
                    desired.partitions, desired.replicas
                )
            }
            Change::AddPartitions(n) => {
                admin.create_partitions(name, *n).await?;
                format!("grew topic {name} to {n} partitions")
            }
            Change::Config { set, delete } => {
                admin.alter_topic_config(name, set, delete).await?;
                format!("set {set:?} and removed {delete:?} on topic {name}")
            }
            Change::Replicas(moves) => {
                if reassigning {
                    continue;
                }
                let moves: Vec<(String, i32, Vec<i32>)> = moves
                    .iter()
                    .map(|(p, r)| (name.to_string(), *p, r.clone()))
                    .collect();
                admin.reassign(&moves).await?;
                format!(
                    "reassigning {} partitions of {name} to {} replicas",
                    moves.len(),
                    desired.replicas
                )
            }
        };
        ctx.event(kt, false, "Changed", note).await;
    }
    if let Some(t) = &current {
        status.topic_id = Some(t.id.clone());
        status.partitions = Some(t.replicas.len() as i32);
    }
    Ok(if !plan.changes.is_empty() || reassigning {
        Outcome::InProgress(format!("applying {} changes", plan.changes.len()))
    } else if !plan.refused.is_empty() {
        Outcome::Refused(plan.refused.join("; "))
    } else {
        Outcome::Ready
    })
}

async fn cleanup(kt: &KafkaTopic, ctx: &Context, ns: &str) -> Result<Action, Error> {
    if !managed(kt) {
        return Ok(Action::await_change());
    }
    let name = topic_name(kt);
    match cluster_bootstrap(ctx, ns, &kt.spec.cluster).await? {
        // Without its cluster there is no topic left to delete.
        None => {
            tracing::info!(topic = %name, "cluster gone; releasing the resource");
        }
        Some(bootstrap) => {
            let mut admin = connect(ctx, kt, &bootstrap).await?;
            admin.delete_topic(&name).await?;
            ctx.event(kt, false, "Deleted", format!("deleted topic {name}"))
                .await;
        }
    }
    Ok(Action::await_change())
}

/// What to do when a pass fails: log, and try again soon.
pub fn error_policy(kt: Arc<KafkaTopic>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(topic = %kt.name_any(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}
