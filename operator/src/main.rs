//! The `gregor-operator` command: runs the `KafkaCluster`, `KafkaTopic`
//! and `KafkaUser` controllers against the cluster found by the usual
//! kubeconfig rules (in-cluster service account, or `KUBECONFIG`), once it
//! holds the leader lease when leader election is on, and serves its
//! probes and metrics. With `--apply-crds` it first brings the cluster's
//! CRDs to its own version.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use gregor_operator::cluster::health::Thresholds;
use gregor_operator::cluster::names::{CLUSTER_LABEL, FIELD_MANAGER};
use gregor_operator::context::Context;
use gregor_operator::crd::{KafkaCluster, KafkaNodePool, KafkaTopic, KafkaUser};
use gregor_operator::error::Error;
use gregor_operator::metrics::Metrics;
use gregor_operator::{cluster, topic, user};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, ResourceExt};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch::Receiver;
use tokio::task::JoinHandle;

/// How the task renewing the lease ended.
type LeaseResult = kube_lease_manager::Result<LeaseManager>;

#[derive(Parser)]
#[command(
    name = "gregor-operator",
    version,
    about = "Runs Gregor clusters on Kubernetes"
)]
struct Args {
    /// Namespace to watch; repeat for several. Without it, all namespaces.
    #[arg(long = "namespace", value_name = "NS")]
    namespaces: Vec<String>,
    /// Image repository of the broker, used with a cluster's `version`.
    #[arg(long, default_value = "ghcr.io/gregor-dev/gregor")]
    image_repository: String,
    /// Broker version for clusters that name none.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    default_version: String,
    /// Seconds a ready broker may stay fenced before it is restarted.
    #[arg(long, default_value_t = 120)]
    fenced_restart_secs: u64,
    /// Seconds a ready broker may stay out of the ISR before it is restarted.
    #[arg(long, default_value_t = 300)]
    out_of_isr_restart_secs: u64,
    /// Where the probes (`/healthz`, `/readyz`) and `/metrics` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_address: SocketAddr,
    /// Run the controllers only while holding the Lease `gregor-operator`
    /// in `POD_NAMESPACE`, so that several replicas can run with one
    /// acting; a replica that loses the lease exits.
    #[arg(long)]
    leader_election: bool,
    /// Apply this version's CRDs at start (server-side apply), unless the
    /// cluster's come from a newer operator, and start once they are
    /// established. Needs get, create and patch on the CRDs.
    #[arg(long)]
    apply_crds: bool,
}

/// Seconds the leader lease lasts without a renewal, and how long before
/// its end the holder renews it.
const LEASE_SECONDS: u64 = 15;
const LEASE_GRACE_SECONDS: u64 = 5;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gregor-operator: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gregor-operator: cannot reach the Kubernetes API: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before the probes are served: a replica is ready once the CRDs it
    // needs are, so `helm upgrade --wait` returns with them upgraded.
    if args.apply_crds {
        if let Err(e) = gregor_operator::crd::upgrade::apply(&client).await {
            eprintln!("gregor-operator: cannot apply the CRDs: {e}");
            return ExitCode::FAILURE;
        }
    }
    let ctx = Arc::new(Context {
        client: client.clone(),
        reporter: Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
        image_repository: args.image_repository,
        default_version: args.default_version,
        thresholds: Thresholds {
            fenced_secs: args.fenced_restart_secs,
            out_of_isr_secs: args.out_of_isr_restart_secs,
        },
        troubles: Mutex::new(BTreeMap::new()),
        told: Mutex::new(BTreeMap::new()),
        started: Instant::now(),
        metrics: Arc::new(Metrics::default()),
    });
    let serving = tokio::spawn(gregor_operator::http::serve(
        args.http_address,
        ctx.metrics.clone(),
    ));
    // Held until the process ends: dropping the receiver stops the
    // lease's renewal and releases it.
    let mut leading = None;
    if args.leader_election {
        // A standby stopped while it waits has nothing to hand over.
        let lease = tokio::select! {
            lease = lead(client.clone()) => lease,
            () = terminated() => return ExitCode::SUCCESS,
        };
        match lease {
            Ok(lease) => leading = Some(lease),
            Err(e) => {
                eprintln!("gregor-operator: leader election: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ctx.metrics.set_leader(true);
    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.into_iter().map(Some).collect()
    };
    tracing::info!(?scopes, "gregor-operator starting");
    let mut tasks = vec![tokio::spawn(async move {
        if let Ok(Err(e)) = serving.await {
            eprintln!("gregor-operator: cannot serve probes and metrics: {e}");
        }
    })];
    if let Some((lease, _)) = &leading {
        let mut lease = lease.clone();
        tasks.push(tokio::spawn(async move {
            // The lease lost (or its task gone): stop acting at once.
            let _ = lease.wait_for(|leads| !*leads).await;
            eprintln!("gregor-operator: lost the leader lease; exiting");
        }));
    }
    for ns in scopes {
        tasks.push(tokio::spawn(clusters(
            client.clone(),
            ns.clone(),
            ctx.clone(),
        )));
        tasks.push(tokio::spawn(topics(
            client.clone(),
            ns.clone(),
            ctx.clone(),
        )));
        tasks.push(tokio::spawn(users(client.clone(), ns, ctx.clone())));
    }
    // Any task ending ends the operator: a controller stops only on a
    // signal, and the others end on a failure.
    let (ended, _, rest) = futures::future::select_all(tasks).await;
    for task in rest {
        task.abort();
        let _ = task.await;
    }
    // Released rather than left to expire, so the next leader starts now.
    if let Some((lease, renewing)) = leading {
        drop(lease);
        let _ = tokio::time::timeout(Duration::from_secs(5), renewing).await;
    }
    if let Err(e) = ended {
        eprintln!("gregor-operator: a controller failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Waits until this replica holds the leader lease; the receiver turns
/// false if it is lost, and the task renewing it releases it once every
/// receiver is gone.
async fn lead(client: Client) -> Result<(Receiver<bool>, JoinHandle<LeaseResult>), String> {
    let namespace = std::env::var("POD_NAMESPACE")
        .map_err(|_| "POD_NAMESPACE is not set (the chart sets it from the pod)".to_string())?;
    let identity = std::env::var("POD_NAME")
        .map_err(|_| "POD_NAME is not set (the chart sets it from the pod)".to_string())?;
    let manager = LeaseManagerBuilder::new(client, "gregor-operator")
        .with_namespace(&namespace)
        .with_identity(&identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let (mut leading, renewing) = manager.watch().await;
    tracing::info!(%namespace, %identity, "waiting for the leader lease gregor-operator");
    leading
        .wait_for(|leads| *leads)
        .await
        .map_err(|_| "the lease task ended".to_string())?;
    tracing::info!(%identity, "holding the leader lease");
    Ok((leading, renewing))
}

/// Resolves on SIGTERM (the kubelet stopping the pod) or Ctrl-C.
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `reconcile` over `obj`, counted and timed as a pass over `kind`.
async fn measured<K, F, Fut>(
    kind: &'static str,
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    let metrics = ctx.metrics.clone();
    metrics.pass_started(kind);
    let started = Instant::now();
    let result = reconcile(obj, ctx).await;
    metrics.pass_ended(kind, result.is_ok(), started.elapsed());
    result
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn clusters(client: Client, ns: Option<String>, ctx: Arc<Context>) {
    let ns = ns.as_deref();
    let owned = watcher::Config::default().labels(CLUSTER_LABEL);
    Controller::new(api::<KafkaCluster>(&client, ns), watcher::Config::default())
        .owns(api::<StatefulSet>(&client, ns), owned.clone())
        .owns(api::<Service>(&client, ns), owned.clone())
        .owns(api::<ConfigMap>(&client, ns), owned.clone())
        .owns(api::<PodDisruptionBudget>(&client, ns), owned.clone())
        // Pods belong to the StatefulSet; map them to their cluster by label.
        .watches(api::<Pod>(&client, ns), owned.clone(), |pod| {
            let cluster = pod.labels().get(CLUSTER_LABEL)?.clone();
            Some(ObjectRef::<KafkaCluster>::new(&cluster).within(&pod.namespace()?))
        })
        // A node pool names its cluster by the same label.
        .watches(api::<KafkaNodePool>(&client, ns), owned, |pool| {
            let cluster = pool.labels().get(CLUSTER_LABEL)?.clone();
            Some(ObjectRef::<KafkaCluster>::new(&cluster).within(&pool.namespace()?))
        })
        .shutdown_on_signal()
        .run(
            |kc, ctx| measured("KafkaCluster", kc, ctx, cluster::reconcile::reconcile),
            cluster::reconcile::error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "cluster reconcile");
            }
        })
        .await;
}

async fn topics(client: Client, ns: Option<String>, ctx: Arc<Context>) {
    let ns = ns.as_deref();
    Controller::new(api::<KafkaTopic>(&client, ns), watcher::Config::default())
        .shutdown_on_signal()
        .run(
            |kt, ctx| measured("KafkaTopic", kt, ctx, topic::reconcile::reconcile),
            topic::reconcile::error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "topic reconcile");
            }
        })
        .await;
}

async fn users(client: Client, ns: Option<String>, ctx: Arc<Context>) {
    let ns = ns.as_deref();
    Controller::new(api::<KafkaUser>(&client, ns), watcher::Config::default())
        .shutdown_on_signal()
        .run(
            |ku, ctx| measured("KafkaUser", ku, ctx, user::reconcile::reconcile),
            user::reconcile::error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "user reconcile");
            }
        })
        .await;
}
