//! The brokers' StatefulSet. Updates are `OnDelete`: the operator decides
//! when each broker restarts (see `rollout`), never the StatefulSet
//! controller.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetOrdinals, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::cluster::{KafkaClusterSpec, StorageType};
use crate::crd::validate::{CONTROLLER_PORT, HTTP_PORT, REPLICATION_PORT};

use super::broker_config::{CONFIG_DIR, RACK_ENV};
use super::names::Names;
use super::node_address;
use super::security::{CERTS_DIR, CLIENTS_CA_DIR, CLUSTER_CA_DIR};
use super::topology::{Pool, Topology};
use super::volumes::{data_volumes, delete_claims, DataVolume};

/// Annotation on the pod template with the digest of the brokers'
/// configuration files (`broker_config::config_digest`); a change makes a
/// new StatefulSet revision, which the operator then rolls out.
pub const CONFIG_DIGEST: &str = "gregor.dev/config-digest";
/// Name of the broker container in each pod.
pub const BROKER_CONTAINER: &str = "broker";
/// The broker process runs as this user and group (the image's).
const BROKER_UID: i64 = 65532;
/// Time a broker gets for a controlled shutdown before it is killed.
const GRACE_SECONDS: i64 = 60;
/// Time a broker that failed its liveness probe gets to exit before it is
/// killed: it has not answered for half a minute, so it is not moving its
/// leaderships away; waiting the full controlled-shutdown grace would only
/// keep its partitions' clients waiting longer for the restart.
const HUNG_GRACE_SECONDS: i64 = 10;

/// The broker image of `spec`: its own, else `repository` tagged with the
/// spec's version, else with `default_version`.
pub fn image(spec: &KafkaClusterSpec, repository: &str, default_version: &str) -> String {
    spec.image.clone().unwrap_or_else(|| {
        let version = spec.version.as_deref().unwrap_or(default_version);
        format!("{repository}:{version}")
    })
}

/// The StatefulSet of `pool` of `topology`, running `image`, whose pods'
/// configuration digests to `config_digest`. Its pods' ordinals are their
/// node ids: a pool's StatefulSet starts at the pool's first id.
pub fn statefulset(
    names: &Names,
    spec: &KafkaClusterSpec,
    topology: &Topology,
    pool: &Pool,
    image: &str,
    config_digest: &str,
    owner: &OwnerReference,
) -> StatefulSet {
    let template = pool.template.clone().unwrap_or_default();
    let selector = topology.pool_selector(names, pool);
    let mut labels = template.labels.clone();
    labels.extend(names.labels());
    labels.extend(selector.clone());
    labels.extend(topology.pool_labels(pool));
    let mut annotations = template.annotations.clone();
    annotations.insert(CONFIG_DIGEST.into(), config_digest.into());

    // A dedicated controller serves the quorum and its probes only.
    let mut ports = vec![container_port("controller", CONTROLLER_PORT)];
    if pool.broker {
        ports.push(container_port("replication", REPLICATION_PORT));
    }
    ports.push(container_port("http", HTTP_PORT));
    let client_listeners = match pool.broker {
        true => spec.listeners.as_slice(),
        false => &[],
    };
    ports.extend(
        client_listeners
            .iter()
            .map(|l| container_port(&l.name, l.port)),
    );
    let mut env = vec![field_env("POD_NAME", "metadata.name")];
    // The node's address each NodePort listener advertises, which the
    // operator writes on the pod once it is scheduled: a broker that
    // starts before refuses the empty address, and the kubelet restarts it.
    env.extend(
        node_address::node_port_listeners(spec)
            .filter(|_| pool.broker)
            .map(|l| {
                field_env(
                    &node_address::env_name(&l.name),
                    &format!(
                        "metadata.annotations['{}']",
                        node_address::annotation(&l.name)
                    ),
                )
            }),
    );
    if spec.rack.is_some() && pool.broker {
        env.push(field_env(
            RACK_ENV,
            "metadata.annotations['gregor.dev/rack']",
        ));
    }
    let data = data_volumes(&pool.storage);
    let container = Container {
        name: BROKER_CONTAINER.into(),
        image: Some(image.into()),
        image_pull_policy: template.image_pull_policy.map(|p| p.as_str().into()),
        args: Some(vec![
            "broker".into(),
            format!("{CONFIG_DIR}/$(POD_NAME).properties"),
        ]),
        env: Some(env),
        ports: Some(ports),
        resources: pool.resources.clone(),
        volume_mounts: Some(
            data.iter()
                .map(|v| VolumeMount {
                    name: v.name.clone(),
                    mount_path: v.mount.clone(),
                    ..Default::default()
                })
                .chain([VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                }])
                .chain([
                    read_only_mount("certs", CERTS_DIR),
                    read_only_mount("cluster-ca", CLUSTER_CA_DIR),
                    read_only_mount("clients-ca", CLIENTS_CA_DIR),
                ])
                .collect(),
        ),
        // Ready once registered and serving; a fenced broker stays ready
        // and is the operator's to heal. Liveness is answered from the
        // first moment of the process, so log recovery never trips it; a
        // frozen or wedged process stops answering and is restarted.
        readiness_probe: Some(http_probe("/readyz", 5)),
        liveness_probe: Some(Probe {
            termination_grace_period_seconds: Some(HUNG_GRACE_SECONDS),
            ..http_probe("/livez", 10)
        }),
        security_context: Some(
            template
                .container_security_context
                .clone()
                .unwrap_or_else(container_security_context),
        ),
        ..Default::default()
    };

    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.configmap(),
                ..Default::default()
            }),
            ..Default::default()
        },
        secret_volume("certs", names.broker_certs()),
        secret_volume("cluster-ca", names.ca_cert("cluster")),
        secret_volume("clients-ca", names.ca_cert("clients")),
    ];
    let mut claims = None;
    match pool.storage.kind {
        StorageType::Ephemeral => volumes.extend(data.iter().map(|v| Volume {
            name: v.name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity(v.size.clone())),
                ..Default::default()
            }),
            ..Default::default()
        })),
        StorageType::PersistentClaim | StorageType::Jbod => {
            claims = Some(data.iter().map(|v| claim_template(names, v)).collect());
        }
    }
    let retention = if delete_claims(&pool.storage) {
        "Delete"
    } else {
        "Retain"
    };

    StatefulSet {
        metadata: names.meta(names.pool_statefulset(&pool.name), owner),
        spec: Some(StatefulSetSpec {
            replicas: Some(pool.desired),
            ordinals: topology.pooled.then_some(StatefulSetOrdinals {
                start: Some(pool.first_id),
            }),
            service_name: Some(names.headless()),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            // The quorum needs its members up together: ordered start would
            // wait for broker 0 to be ready, which needs the others.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention.into()),
                    when_scaled: Some(retention.into()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    termination_grace_period_seconds: Some(GRACE_SECONDS),
                    security_context: Some(
                        template
                            .security_context
                            .clone()
                            .unwrap_or_else(pod_security_context),
                    ),
                    image_pull_secrets: (!template.image_pull_secrets.is_empty())
                        .then(|| template.image_pull_secrets.clone()),
                    affinity: Some(template.affinity.clone().unwrap_or_else(|| apart(names))),
                    topology_spread_constraints: Some(
                        template
                            .topology_spread_constraints
                            .clone()
                            .unwrap_or_else(|| spread(names, spec)),
                    ),
                    tolerations: (!template.tolerations.is_empty())
                        .then(|| template.tolerations.clone()),
                    node_selector: (!template.node_selector.is_empty())
                        .then(|| template.node_selector.clone()),
                    priority_class_name: template.priority_class_name.clone(),
                    ..Default::default()
                }),
            },
            volume_claim_templates: claims,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Node label every node carries with its own name.
const HOSTNAME_KEY: &str = "kubernetes.io/hostname";

/// Each broker preferably on a node without another broker of the
/// cluster: losing a node then costs one broker. A preference, so that
/// more brokers than nodes still schedule.
fn apart(names: &Names) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: HOSTNAME_KEY.into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(names.selector()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Brokers spread evenly over nodes, and over racks when rack awareness is
/// on, so that losing one node or zone takes as few replicas as it can.
/// Soft (`ScheduleAnyway`): a cluster with more brokers than nodes or zones
/// still schedules; a hard rule is the user's to add through
/// `template.affinity`.
fn spread(names: &Names, spec: &KafkaClusterSpec) -> Vec<TopologySpreadConstraint> {
    let mut keys = vec![HOSTNAME_KEY.to_string()];
    if let Some(rack) = &spec.rack {
        if rack.topology_key != HOSTNAME_KEY {
            keys.push(rack.topology_key.clone());
        }
    }
    keys.into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key,
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(names.selector()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The broker pods' security context unless the cluster replaces it: Pod
fn read_only_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// A Secret as files. Kubernetes' default mode (readable by all) is kept:
/// the broker is the container's only process, whatever user it is
/// assigned, and the kubelet renews the files in place when the Secret
/// changes (the broker reloads them).
fn secret_volume(volume: &str, secret: String) -> Volume {
    Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The claim template of data volume `v`.
fn claim_template(names: &Names, v: &DataVolume) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(v.name.clone()),
            labels: Some(names.labels()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: v.class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(v.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Security "restricted", the image's user, and the data volume given to
/// that user's group (checked only at the volume's root, so a large volume
/// is not walked at every start).
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(BROKER_UID),
        run_as_group: Some(BROKER_UID),
        fs_group: Some(BROKER_UID),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The broker container's security context unless the cluster replaces it:
/// no privileges, no capabilities, and a read-only root file system (the
/// broker writes only to its data volume).
fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..Default::default()
    }
}

/// A probe of the broker's HTTP port: three failures in a row count.
fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(HTTP_PORT),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    use crate::cluster::volumes::{self, DATA_DIR};

    /// The StatefulSet of `spec` without node pools.
    fn single(
        names: &Names,
        spec: &KafkaClusterSpec,
        image: &str,
        digest: &str,
        owner: &OwnerReference,
    ) -> StatefulSet {
        let topology = Topology::single(spec, 1, 0);
        statefulset(
            names,
            spec,
            &topology,
            &topology.pools[0],
            image,
            digest,
            owner,
        )
    }

    fn spec(template: Value) -> KafkaClusterSpec {
        let mut spec = json!({
            "replicas": 3,
            "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
        });
        if !template.is_null() {
            spec["template"] = template;
        }
        serde_json::from_value(spec).expect("valid spec")
    }

    /// The parts of the pod template that pull and security settings
    /// decide, as the API server would receive them.
    fn pod_parts(sts: &StatefulSet) -> Value {
        let pod = serde_json::to_value(&sts.spec.as_ref().expect("spec").template.spec)
            .expect("serializable");
        let container = &pod["containers"][0];
        json!({
            "securityContext": pod["securityContext"],
            "imagePullSecrets": pod["imagePullSecrets"],
            "containerSecurityContext": container["securityContext"],
            "imagePullPolicy": container["imagePullPolicy"],
        })
    }

    fn restricted_pod() -> Value {
        json!({
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    }

    fn restricted_container() -> Value {
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
        })
    }

    #[test]
    fn what_rolls_the_brokers() {
        use crate::cluster::broker_config::tests::digest;
        use crate::cluster::broker_config::tests::{rack_spec, MUTATIONS};
        // Spec changes that reach the brokers through their pod, not their
        // configuration files.
        let through_the_pod = [
            "the rack's node label",
            "the image",
            "the version",
            "resources",
            "the pod template",
        ];
        let names = Names::new("demo", "kafka");
        // The pod template, the digest of the brokers' files included: a
        // change is a new StatefulSet revision, which the operator rolls out.
        let template = |spec: &KafkaClusterSpec| {
            let digest = digest(&names, spec, 1);
            let image = image(spec, "repo/gregor", "1.0.0");
            single(&names, spec, &image, &digest, &OwnerReference::default())
                .spec
                .expect("spec")
                .template
        };
        let before = rack_spec();
        for name in through_the_pod {
            assert!(MUTATIONS.iter().any(|m| m.0 == name), "{name}");
        }
        for (name, mutate, files_change) in MUTATIONS {
            let mut after = before.clone();
            mutate(&mut after);
            let want = *files_change || through_the_pod.contains(name);
            assert_eq!(template(&before) != template(&after), want, "{name}");
        }
    }

    #[test]
    fn the_image_is_the_specs_or_the_operators_for_a_version() {
        let cases = [
            ("neither", json!({}), "repo/gregor:0.1.0"),
            (
                "a version",
                json!({"version": "0.2.0"}),
                "repo/gregor:0.2.0",
            ),
            (
                "an image wins over a version",
                json!({"version": "0.2.0", "image": "mirror/gregor@sha256:ab"}),
                "mirror/gregor@sha256:ab",
            ),
        ];
        for (name, extra, want) in cases {
            let mut spec = serde_json::to_value(spec(Value::Null)).expect("serializable");
            if let (Some(s), Value::Object(extra)) = (spec.as_object_mut(), extra) {
                s.extend(extra);
            }
            let spec: KafkaClusterSpec = serde_json::from_value(spec).expect("valid spec");
            assert_eq!(image(&spec, "repo/gregor", "0.1.0"), want, "{name}");
        }
    }

    #[test]
    fn brokers_spread_over_nodes_and_racks() {
        let names = Names::new("demo", "kafka");
        let cases = [
            (
                "no rack awareness: over nodes",
                json!(null),
                vec![HOSTNAME_KEY],
            ),
            (
                "rack awareness: over nodes and racks",
                json!({"topologyKey": "topology.kubernetes.io/zone"}),
                vec![HOSTNAME_KEY, "topology.kubernetes.io/zone"],
            ),
            (
                "racks that are nodes: once",
                json!({"topologyKey": HOSTNAME_KEY}),
                vec![HOSTNAME_KEY],
            ),
        ];
        for (name, rack, want) in cases {
            let mut spec = spec(Value::Null);
            spec.rack = serde_json::from_value(rack).expect("valid rack");
            let got = spread(&names, &spec);
            let keys: Vec<&str> = got.iter().map(|c| c.topology_key.as_str()).collect();
            assert_eq!(keys, want, "{name}");
            for c in &got {
                assert_eq!(
                    (c.max_skew, c.when_unsatisfiable.as_str()),
                    (1, "ScheduleAnyway"),
                    "{name}"
                );
                assert_eq!(
                    c.label_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.clone()),
                    Some(names.selector()),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn scheduling_defaults_keep_brokers_apart_unless_replaced() {
        let names = Names::new("demo", "kafka");
        let pod_spec = |template: Value| {
            let spec = spec(template);
            let sts = single(&names, &spec, "img", "d", &OwnerReference::default());
            sts.spec.and_then(|s| s.template.spec).expect("a pod spec")
        };
        let default = pod_spec(Value::Null);
        let preferred = default
            .affinity
            .and_then(|a| a.pod_anti_affinity)
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
            .expect("anti-affinity by default");
        assert_eq!(preferred[0].pod_affinity_term.topology_key, HOSTNAME_KEY);
        assert_eq!(
            default.topology_spread_constraints.map(|c| c.len()),
            Some(1)
        );

        let replaced = pod_spec(json!({
            "affinity": {"nodeAffinity": {}},
            "topologySpreadConstraints": [],
        }));
        let affinity = replaced.affinity.expect("the user's affinity");
        assert!(affinity.pod_anti_affinity.is_none() && affinity.node_affinity.is_some());
        assert_eq!(replaced.topology_spread_constraints, Some(vec![]));
    }

    #[test]
    fn pull_settings_and_security_contexts() {
        let openshift = json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
        let bind_low_ports = json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "runAsNonRoot": true,
        });
        let cases = [
            (
                "no template: restricted defaults, Kubernetes' pull policy",
                Value::Null,
                json!({
                    "securityContext": restricted_pod(),
                    "imagePullSecrets": null,
                    "containerSecurityContext": restricted_container(),
                    "imagePullPolicy": null,
                }),
            ),
            (
                "a template without pull or security settings keeps the defaults",
                json!({"labels": {"team": "a"}, "imagePullSecrets": []}),
                json!({
                    "securityContext": restricted_pod(),
                    "imagePullSecrets": null,
                    "containerSecurityContext": restricted_container(),
                    "imagePullPolicy": null,
                }),
            ),
            (
                "pull secrets and policy",
                json!({
                    "imagePullSecrets": [{"name": "registry"}, {"name": "mirror"}],
                    "imagePullPolicy": "Always",
                }),
                json!({
                    "securityContext": restricted_pod(),
                    "imagePullSecrets": [{"name": "registry"}, {"name": "mirror"}],
                    "containerSecurityContext": restricted_container(),
                    "imagePullPolicy": "Always",
                }),
            ),
            (
                "a pod context replaces the default whole: no user or fsGroup (OpenShift)",
                json!({"securityContext": openshift}),
                json!({
                    "securityContext": openshift,
                    "imagePullSecrets": null,
                    "containerSecurityContext": restricted_container(),
                    "imagePullPolicy": null,
                }),
            ),
            (
                "an empty pod context leaves every pod setting unset",
                json!({"securityContext": {}}),
                json!({
                    "securityContext": {},
                    "imagePullSecrets": null,
                    "containerSecurityContext": restricted_container(),
                    "imagePullPolicy": null,
                }),
            ),
            (
                "a container context replaces the default whole",
                json!({"containerSecurityContext": bind_low_ports, "imagePullPolicy": "Never"}),
                json!({
                    "securityContext": restricted_pod(),
                    "imagePullSecrets": null,
                    "containerSecurityContext": bind_low_ports,
                    "imagePullPolicy": "Never",
                }),
            ),
        ];
        let names = Names::new("demo", "kafka");
        let owner = OwnerReference::default();
        for (name, template, want) in cases {
            let sts = single(&names, &spec(template), "gregor:1", "d1", &owner);
            assert_eq!(pod_parts(&sts), want, "{name}");
        }
    }

    #[test]
    fn the_broker_writes_only_to_its_data_volume() {
        let names = Names::new("demo", "kafka");
        let sts = single(
            &names,
            &spec(Value::Null),
            "gregor:1",
            "d1",
            &OwnerReference::default(),
        );
        let pod = sts.spec.expect("spec").template.spec.expect("pod spec");
        let mounts: Vec<(String, Option<bool>)> = pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.mount_path.clone(), m.read_only))
            .collect();
        // A read-only root file system leaves these mounts as the only
        // places the broker can write to: its data, and no config or certificate.
        assert_eq!(
            mounts,
            [
                (DATA_DIR.to_string(), None),
                (CONFIG_DIR.to_string(), Some(true)),
                (CERTS_DIR.to_string(), Some(true)),
                (CLUSTER_CA_DIR.to_string(), Some(true)),
                (CLIENTS_CA_DIR.to_string(), Some(true)),
            ]
        );
        let log_dirs = volumes::log_dirs(&spec(Value::Null).storage);
        assert!(log_dirs.starts_with(&format!("{DATA_DIR}/")), "{log_dirs}");
    }

    #[test]
    fn each_jbod_volume_is_a_claim_and_a_mount_of_its_own() {
        let names = Names::new("demo", "kafka");
        let mut spec = spec(Value::Null);
        spec.storage = serde_json::from_value(json!({
            "type": "jbod", "class": "fast", "deleteClaim": true,
            "volumes": [{"id": 1, "size": "20Gi", "class": "slow"}, {"id": 0, "size": "10Gi"}],
        }))
        .expect("valid storage");
        let sts = single(&names, &spec, "gregor:1", "d1", &OwnerReference::default())
            .spec
            .expect("spec");
        let claims: Vec<_> = sts
            .volume_claim_templates
            .iter()
            .flatten()
            .map(|c| {
                let spec = c.spec.as_ref().expect("claim spec");
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    spec.storage_class_name.clone().unwrap_or_default(),
                    spec.resources
                        .as_ref()
                        .and_then(|r| r.requests.as_ref())
                        .expect("requests")["storage"]
                        .0
                        .clone(),
                )
            })
            .collect();
        let claim = |n: &str, c: &str, s: &str| (n.to_string(), c.to_string(), s.to_string());
        assert_eq!(
            claims,
            [
                claim("data-0", "fast", "10Gi"),
                claim("data-1", "slow", "20Gi")
            ]
        );
        let pod = sts.template.spec.expect("pod spec");
        let writable: Vec<_> = pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| m.read_only.is_none())
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            writable,
            [
                ("data-0", "/var/lib/gregor/data-0"),
                ("data-1", "/var/lib/gregor/data-1")
            ]
        );
        let retention = sts
            .persistent_volume_claim_retention_policy
            .expect("retention");
        assert_eq!(retention.when_deleted.as_deref(), Some("Delete"));
    }

    #[test]
    fn each_pool_has_its_statefulset() {
        use crate::cluster::broker_config::tests::pooled;
        let mut spec = spec(Value::Null);
        spec.replicas = None;
        let topology = pooled(&spec, 3);
        let names = topology.names("demo", "kafka");
        let owner = OwnerReference::default();
        let sets: Vec<Value> = topology
            .pools
            .iter()
            .map(|p| {
                let sts = statefulset(&names, &spec, &topology, p, "gregor:1", "d", &owner);
                serde_json::to_value(sts).expect("serializable")
            })
            .collect();
        let container = |sts: &Value| sts["spec"]["template"]["spec"]["containers"][0].clone();
        let ports = |sts: &Value| -> Vec<String> {
            container(sts)["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .map(|p| p["name"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        for (sts, name, start, ports_want, broker) in [
            (
                &sets[0],
                "demo-voters",
                0,
                vec!["controller", "http"],
                "false",
            ),
            (
                &sets[1],
                "demo-brokers",
                1000,
                vec!["controller", "replication", "http", "plain"],
                "true",
            ),
        ] {
            assert_eq!(sts["metadata"]["name"], name);
            // Pod ordinals are node ids.
            assert_eq!(sts["spec"]["ordinals"]["start"], start);
            assert_eq!(sts["spec"]["replicas"], 3);
            let pool = name.trim_start_matches("demo-");
            assert_eq!(
                sts["spec"]["selector"]["matchLabels"]["gregor.dev/pool"],
                pool
            );
            let labels = &sts["spec"]["template"]["metadata"]["labels"];
            assert_eq!(labels["gregor.dev/broker-role"], broker);
            assert_eq!(labels["gregor.dev/cluster"], "demo");
            assert_eq!(ports(sts), ports_want);
            assert_eq!(sts["spec"]["serviceName"], "demo-brokers");
        }
    }

    #[test]
    fn a_pool_has_its_own_storage_resources_and_template() {
        let mut spec = spec(json!({"priorityClassName": "cluster"}));
        spec.replicas = None;
        let pool: crate::crd::KafkaNodePoolSpec = serde_json::from_value(json!({
            "replicas": 1, "roles": ["broker"],
            "storage": {"type": "jbod", "class": "fast", "volumes": [
                {"id": 0, "size": "100Gi"}, {"id": 1, "size": "50Gi"}]},
            "resources": {"limits": {"memory": "2Gi"}},
            "template": {"priorityClassName": "brokers"},
        }))
        .expect("pool");
        let voters: crate::crd::KafkaNodePoolSpec =
            serde_json::from_value(json!({"replicas": 1, "roles": ["controller"]})).expect("pool");
        let pools = vec![("big".to_string(), pool), ("voters".to_string(), voters)];
        let topology =
            Topology::pooled("demo", &spec, &pools, &[], &BTreeMap::new()).expect("valid pools");
        let names = topology.names("demo", "kafka");
        let of = |name: &str| {
            let p = topology
                .pools
                .iter()
                .find(|p| p.name == name)
                .expect("pool");
            let sts = statefulset(
                &names,
                &spec,
                &topology,
                p,
                "g:1",
                "d",
                &OwnerReference::default(),
            );
            serde_json::to_value(sts).expect("serializable")
        };
        // Claims and mounts of its own (JBOD), the cluster's one volume
        // for the other pool.
        let claims = |sts: &Value| -> Vec<(String, String, String)> {
            sts["spec"]["volumeClaimTemplates"]
                .as_array()
                .expect("claims")
                .iter()
                .map(|c| {
                    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
                    (
                        text(&c["metadata"]["name"]),
                        text(&c["spec"]["resources"]["requests"]["storage"]),
                        text(&c["spec"]["storageClassName"]),
                    )
                })
                .collect()
        };
        let mounts = |sts: &Value| -> Vec<String> {
            sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                .as_array()
                .expect("mounts")
                .iter()
                .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("data")))
                .map(|m| m["mountPath"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let owned = |n: &str, s: &str, c: &str| (n.to_string(), s.to_string(), c.to_string());
        let big = of("big");
        assert_eq!(
            claims(&big),
            [
                owned("data-0", "100Gi", "fast"),
                owned("data-1", "50Gi", "fast")
            ]
        );
        assert_eq!(
            mounts(&big),
            ["/var/lib/gregor/data-0", "/var/lib/gregor/data-1"]
        );
        let pod = &big["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["resources"]["limits"]["memory"], "2Gi");
        assert_eq!(pod["priorityClassName"], "brokers");
        // The other pool takes the cluster's.
        let voters = of("voters");
        assert_eq!(claims(&voters), [owned("data", "10Gi", "-")]);
        assert_eq!(mounts(&voters), ["/var/lib/gregor"]);
        assert_eq!(
            voters["spec"]["template"]["spec"]["priorityClassName"],
            "cluster"
        );
    }
}
