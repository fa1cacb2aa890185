//! Whole reconcile passes against a scripted API server (`mock_api`): the
//! requests a pass sends, in order, and what it makes of the answers. The
//! scenarios have no broker pods, so no pass talks to brokers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use serde_json::{json, Value};

use super::{reconcile, BUSY_INTERVAL, INVALID_INTERVAL};
use crate::cluster::broker_config::tests::digest;
use crate::cluster::names::{Names, FIELD_MANAGER};
use crate::context::Context;
use crate::crd::KafkaCluster;
use crate::mock_api::{self, Call};

const NS: &str = "kafka";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/kafka/events?";
const STATUS: &str = "/apis/gregor.dev/v1alpha1/namespaces/kafka/kafkaclusters/demo/status?";

/// Cluster `demo` at `generation`, with `spec` and `status`.
fn cluster(generation: i64, spec: Value, status: Value) -> KafkaCluster {
    serde_json::from_value(json!({
        "apiVersion": "gregor.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {
            "name": "demo", "namespace": NS, "uid": "c0ffee",
            "generation": generation, "resourceVersion": "7",
        },
        "spec": spec,
        "status": status,
    }))
    .expect("a valid KafkaCluster")
}

/// `kc` as the API server returns it.
fn object(kc: KafkaCluster) -> Value {
    serde_json::to_value(kc).expect("serializable")
}

fn three_brokers() -> Value {
    json!({
        "replicas": 3,
        "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
        "config": {"num.partitions": 6},
    })
}

fn context(client: kube::Client) -> Arc<Context> {
    Arc::new(Context {
        client,
        reporter: Reporter {
            controller: FIELD_MANAGER.into(),
            instance: None,
        },
        image_repository: "repo/gregor".into(),
        default_version: "1.0.0".into(),
        thresholds: Default::default(),
        troubles: Mutex::new(BTreeMap::new()),
        told: Mutex::new(BTreeMap::new()),
        started: Instant::now(),
        metrics: Default::default(),
    })
}

/// Runs one pass over `kc` against `script`; returns what the pass asked
/// for next. Panics if the pass failed or sent other requests.
async fn pass(kc: KafkaCluster, script: Vec<Call>) -> Action {
    let (client, server) = mock_api::pair();
    let server = server.run(script);
    let action = tokio::time::timeout(
        Duration::from_secs(10),
        reconcile(Arc::new(kc), context(client)),
    )
    .await
    .expect("the pass ends");
    // The script's own failure, if any, says more than the pass's.
    server.await.expect("the API server's script");
    action.expect("the pass succeeds")
}

/// An event `reason` of `type_` about the cluster.
fn event(type_: &str, reason: &str) -> Call {
    Call::post(
        EVENTS,
        json!({
            "type": type_, "reason": reason, "action": reason,
            "reportingController": FIELD_MANAGER,
            "regarding": {"kind": "KafkaCluster", "name": "demo", "namespace": NS},
        }),
    )
}

/// The metadata every object of the cluster carries: its labels, and the
/// cluster as controlling owner.
fn owned(name: &str) -> Value {
    json!({
        "name": name,
        "namespace": NS,
        "labels": {"gregor.dev/cluster": "demo", "app.kubernetes.io/managed-by": FIELD_MANAGER},
        "ownerReferences": [{
            "apiVersion": "gregor.dev/v1alpha1", "kind": "KafkaCluster",
            "name": "demo", "uid": "c0ffee", "controller": true,
        }],
    })
}

/// The conditions as `[type, status, reason]`, in order.
fn conditions(expected: &[[&str; 3]]) -> Value {
    expected
        .iter()
        .map(|[t, s, r]| json!({"type": t, "status": s, "reason": r}))
        .collect()
}

/// The broker pods, none yet.
fn pods_listed() -> Call {
    Call::list(
        "/api/v1/namespaces/kafka/pods?&labelSelector=app.kubernetes.io%2Fcomponent%3Dbroker%2Cgregor.dev%2Fcluster%3Ddemo",
        "Pod",
        Vec::new(),
    )
}

/// A new cluster's certificates: both authorities made, each broker's
/// certificate and the operator's issued, every Secret owned by the
/// cluster.
fn certificates_made() -> Vec<Call> {
    let secret = |name: &str| format!("/api/v1/namespaces/kafka/secrets/{name}");
    let mut calls: Vec<Call> = [
        "demo-cluster-ca",
        "demo-cluster-ca-cert",
        "demo-clients-ca",
        "demo-clients-ca-cert",
        "demo-broker-certs",
        "demo-operator-certs",
    ]
    .into_iter()
    .map(|name| Call::get_missing(&secret(name)))
    .collect();
    for which in ["cluster", "clients"] {
        for (name, keys) in [
            (format!("demo-{which}-ca"), vec!["ca.crt", "ca.key"]),
            (format!("demo-{which}-ca-cert"), vec!["ca.crt"]),
        ] {
            calls.push(
                Call::apply(
                    &secret(&name),
                    json!({"kind": "Secret", "metadata": owned(&name), "type": "Opaque"}),
                )
                .check(move |s| {
                    let got: Vec<&str> = s["data"]
                        .as_object()
                        .expect("data")
                        .keys()
                        .map(String::as_str)
                        .collect();
                    assert_eq!(got, keys);
                }),
            );
        }
        calls.push(event("Normal", "CertificateAuthority").check(move |ev| {
            let note = ev["note"].as_str().expect("note");
            assert!(
                note.starts_with(&format!("made the {which} CA, valid until ")),
                "{note}"
            );
        }));
    }
    calls.push(
        Call::apply(
            &secret("demo-broker-certs"),
            json!({"kind": "Secret", "metadata": owned("demo-broker-certs")}),
        )
        .check(|s| {
            let got: Vec<&str> = s["data"]
                .as_object()
                .expect("data")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                got,
                [
                    "demo-broker-0.pem",
                    "demo-broker-1.pem",
                    "demo-broker-2.pem"
                ]
            );
        }),
    );
    calls.push(Call::apply(
        &secret("demo-operator-certs"),
        json!({"kind": "Secret", "metadata": owned("demo-operator-certs")}),
    ));
    calls.push(event("Normal", "CertificatesIssued").check(|ev| {
        assert_eq!(
            ev["note"],
            "issued certificates: demo-broker-0 (new), demo-broker-1 (new), demo-broker-2 (new), operator (new)"
        );
    }));
    calls
}

/// A new cluster's pass up to its ConfigMap: the Services, the pods (none),
/// the certificates.
fn a_new_clusters_first_steps() -> Vec<Call> {
    let mut script = vec![
        event("Normal", "Applying"),
        Call::get_missing("/apis/apps/v1/namespaces/kafka/statefulsets/demo-broker"),
        Call::apply(
            "/api/v1/namespaces/kafka/services/demo-brokers",
            json!({"kind": "Service", "metadata": owned("demo-brokers"),
                   "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}}),
        ),
        Call::apply(
            "/api/v1/namespaces/kafka/services/demo-plain-bootstrap",
            json!({"kind": "Service", "metadata": owned("demo-plain-bootstrap"),
                   "spec": {"type": "ClusterIP", "ports": [{"name": "plain", "port": 9092}]}}),
        ),
        // Both are the cluster's own: nothing to prune.
        Call::list(
            "/api/v1/namespaces/kafka/services?&labelSelector=gregor.dev%2Fcluster%3Ddemo",
            "Service",
            vec![
                json!({"metadata": owned("demo-brokers")}),
                json!({"metadata": owned("demo-plain-bootstrap")}),
            ],
        ),
        pods_listed(),
    ];
    script.extend(certificates_made());
    script
}

#[tokio::test]
async fn a_new_cluster_is_applied_and_reported() {
    let kc = cluster(1, three_brokers(), Value::Null);
    let names = Names::new("demo", NS);
    let digest = digest(&names, &kc.spec, 3);
    let mut script = a_new_clusters_first_steps();
    script.extend([
        Call::apply(
            "/api/v1/namespaces/kafka/configmaps/demo-config",
            json!({"kind": "ConfigMap", "metadata": owned("demo-config")}),
        )
        .check(|cm| {
            let files = cm["data"].as_object().expect("data");
            let keys: Vec<&str> = files.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "demo-broker-0.properties",
                    "demo-broker-1.properties",
                    "demo-broker-2.properties"
                ]
            );
            let broker1 = files["demo-broker-1.properties"].as_str().expect("text");
            for line in [
                "node.id=1",
                "process.roles=broker,controller",
                "num.partitions=6",
                "min.insync.replicas=2",
            ] {
                assert!(broker1.lines().any(|l| l == line), "{line} in {broker1}");
            }
        }),
        Call::apply(
            "/apis/apps/v1/namespaces/kafka/statefulsets/demo-broker",
            json!({
                "kind": "StatefulSet",
                "metadata": owned("demo-broker"),
                "spec": {
                    "replicas": 3,
                    "updateStrategy": {"type": "OnDelete"},
                    "template": {
                        "metadata": {"annotations": {"gregor.dev/config-digest": digest}},
                        "spec": {"containers": [{"name": "broker", "image": "repo/gregor:1.0.0"}]},
                    },
                },
            }),
        ),
        Call::apply(
            "/apis/policy/v1/namespaces/kafka/poddisruptionbudgets/demo-broker",
            json!({"kind": "PodDisruptionBudget", "metadata": owned("demo-broker"),
                   "spec": {"maxUnavailable": 1}}),
        ),
        Call::apply(
            "/apis/networking.k8s.io/v1/namespaces/kafka/networkpolicies/demo-broker",
            json!({"kind": "NetworkPolicy", "metadata": owned("demo-broker"),
                   "spec": {"policyTypes": ["Ingress"]}}),
        ),
        Call::merge_patch(
            STATUS,
            json!({"status": {
                "observedGeneration": 1,
                "readyBrokers": 0,
                "controllers": 3,
                "listeners": [{"name": "plain", "bootstrap": "demo-plain-bootstrap.kafka.svc:9092"}],
                "conditions": conditions(&[
                    ["Ready", "False", "RollingRestart"],
                    ["Reconciling", "True", "RollingRestart"],
                    ["Degraded", "False", "Healthy"],
                    ["CertificatesExpiring", "False", "Valid"],
                ]),
            }}),
            object(cluster(1, three_brokers(), Value::Null)),
        )
        .check(|patch| {
            let names: Vec<&str> = patch["status"]["certificates"]
                .as_array()
                .expect("certificates")
                .iter()
                .map(|c| c["name"].as_str().expect("name"))
                .collect();
            assert_eq!(
                names,
                ["cluster CA", "clients CA", "demo-broker-0", "demo-broker-1", "demo-broker-2", "operator"]
            );
        }),
    ]);
    assert_eq!(pass(kc, script).await, Action::requeue(BUSY_INTERVAL));
}

#[tokio::test]
async fn an_object_the_api_server_refuses_is_reported_and_the_rest_applied() {
    let kc = cluster(1, three_brokers(), Value::Null);
    let refusal = "StatefulSet.apps \"demo-broker\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden";
    let message = format!("could not apply the StatefulSet: {refusal}");
    let mut script = a_new_clusters_first_steps();
    script.extend([
        Call::apply(
            "/api/v1/namespaces/kafka/configmaps/demo-config",
            json!({"kind": "ConfigMap"}),
        ),
        Call::apply(
            "/apis/apps/v1/namespaces/kafka/statefulsets/demo-broker",
            json!({"kind": "StatefulSet"}),
        )
        .refused(422, "Invalid", refusal),
        // The pass goes on with what does not need the StatefulSet.
        Call::apply(
            "/apis/policy/v1/namespaces/kafka/poddisruptionbudgets/demo-broker",
            json!({"kind": "PodDisruptionBudget"}),
        ),
        Call::apply(
            "/apis/networking.k8s.io/v1/namespaces/kafka/networkpolicies/demo-broker",
            json!({"kind": "NetworkPolicy"}),
        ),
        event("Warning", "ApplyFailed").check({
            let message = message.clone();
            move |ev| {
                assert!(
                    ev["note"].as_str().is_some_and(|n| n.starts_with(&message)),
                    "{ev}"
                )
            }
        }),
        Call::merge_patch(
            STATUS,
            json!({"status": {"conditions": conditions(&[
                ["Ready", "False", "ApplyFailed"],
                ["Reconciling", "True", "RollingRestart"],
                ["Degraded", "True", "ApplyFailed"],
                ["CertificatesExpiring", "False", "Valid"],
            ])}}),
            object(cluster(1, three_brokers(), Value::Null)),
        ),
    ]);
    assert_eq!(pass(kc, script).await, Action::requeue(BUSY_INTERVAL));
}

#[tokio::test]
async fn a_paused_cluster_is_left_alone_and_says_so() {
    let ready = json!({"observedGeneration": 1, "conditions": [{
        "type": "Ready", "status": "True", "reason": "Ready", "message": "3 brokers ready",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }]});
    let mut kc = cluster(2, three_brokers(), ready);
    kc.metadata.annotations = Some(BTreeMap::from([(
        "gregor.dev/pause-reconciliation".to_string(),
        "true".to_string(),
    )]));
    // No object is read or written: the pause is told, and the last
    // conditions stay next to it.
    let script = vec![
        event("Normal", "ReconciliationPaused"),
        Call::merge_patch(
            STATUS,
            json!({"status": {"observedGeneration": 1, "conditions": conditions(&[
                ["Ready", "True", "Ready"],
                ["ReconciliationPaused", "True", "ReconciliationPaused"],
            ])}}),
            object(cluster(2, three_brokers(), Value::Null)),
        ),
    ];
    assert_eq!(pass(kc, script).await, Action::requeue(INVALID_INTERVAL));
}

#[tokio::test]
async fn an_invalid_spec_is_reported_and_nothing_applied() {
    let mut spec = three_brokers();
    spec["config"]["node.id"] = json!(7);
    let invalid = conditions(&[
        ["Ready", "False", "InvalidSpec"],
        ["Reconciling", "False", "InvalidSpec"],
        ["Degraded", "True", "InvalidSpec"],
    ]);
    let why = "config.node.id: set by the operator and cannot be overridden";
    // A new generation is told in an event once; a pass over one already
    // reported only writes the status again, keeping what it recorded.
    let cases = [
        ("a new generation", Value::Null, true),
        (
            "a generation already reported",
            json!({"observedGeneration": 2, "controllers": 3}),
            false,
        ),
    ];
    for (name, status, told) in cases {
        let mut script = Vec::new();
        if told {
            script.push(event("Warning", "InvalidSpec").check(move |ev| {
                assert_eq!(ev["note"], why, "{name}");
            }));
        }
        let mut want = json!({"status": {"observedGeneration": 2, "conditions": invalid}});
        if !status.is_null() {
            want["status"]["controllers"] = json!(3);
        }
        script.push(
            Call::merge_patch(
                STATUS,
                want,
                object(cluster(2, spec.clone(), status.clone())),
            )
            .check(move |patch| {
                let ready = &patch["status"]["conditions"][0]["message"];
                assert_eq!(ready, why, "{name}");
            }),
        );
        let action = pass(cluster(2, spec.clone(), status), script).await;
        assert_eq!(action, Action::requeue(INVALID_INTERVAL), "{name}");
    }
}
