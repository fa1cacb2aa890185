//! The `gregor-operator` command: runs the `KafkaCluster` and `KafkaTopic`
//! controllers against the cluster found by the usual kubeconfig rules
//! (in-cluster service account, or `KUBECONFIG`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use futures::StreamExt;
use gregor_operator::cluster::health::Thresholds;
use gregor_operator::cluster::names::{CLUSTER_LABEL, FIELD_MANAGER};
use gregor_operator::context::Context;
use gregor_operator::crd::{KafkaCluster, KafkaTopic, KafkaUser};
use gregor_operator::{cluster, topic, user};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, ResourceExt};

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
}

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
    });
    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.into_iter().map(Some).collect()
    };
    tracing::info!(?scopes, "gregor-operator starting");
    let mut tasks = Vec::new();
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
    for t in futures::future::join_all(tasks).await {
        if let Err(e) = t {
            eprintln!("gregor-operator: a controller failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
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
        .watches(api::<Pod>(&client, ns), owned, |pod| {
            let cluster = pod.labels().get(CLUSTER_LABEL)?.clone();
            Some(ObjectRef::<KafkaCluster>::new(&cluster).within(&pod.namespace()?))
        })
        .shutdown_on_signal()
        .run(
            cluster::reconcile::reconcile,
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
            topic::reconcile::reconcile,
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
            user::reconcile::reconcile,
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
