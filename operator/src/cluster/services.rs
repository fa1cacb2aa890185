//! The cluster's Services: a headless one giving each broker pod a DNS
//! name, a bootstrap Service per listener, and for external listeners one
//! Service per broker, so that each broker is reachable at the address it
//! advertises. A listener's `configuration` adds annotations, node ports
//! and the load balancers' options; an option left out of the spec is
//! left out of the applied Service, so server-side apply removes it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::cluster::{ExternalTrafficPolicy, KafkaClusterSpec, Listener, ListenerType};
use crate::crd::validate::{CONTROLLER_PORT, REPLICATION_PORT};

use super::names::Names;
use super::topology::{Size, Topology};

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn service_type(kind: ListenerType) -> &'static str {
    match kind {
        ListenerType::Internal => "ClusterIP",
        ListenerType::Nodeport => "NodePort",
        ListenerType::Loadbalancer => "LoadBalancer",
    }
}

/// Every Service of the cluster of `topology`, whose running brokers each
/// get their own on the external listeners, in a stable order.
pub fn services(
    names: &Names,
    spec: &KafkaClusterSpec,
    topology: &Topology,
    owner: &OwnerReference,
) -> Vec<Service> {
    let mut out = vec![headless(names, spec, owner)];
    let clients = topology.broker_selector(names);
    out.extend(
        spec.listeners
            .iter()
            .map(|l| bootstrap(names, l, &clients, owner)),
    );
    let brokers = topology.brokers(Size::Running);
    for l in spec
        .listeners
        .iter()
        .filter(|l| l.kind != ListenerType::Internal)
    {
        out.extend(brokers.iter().map(|id| per_broker(names, l, *id, owner)));
    }
    out
}

/// The headless Service: pod DNS names, including pods not ready yet (the
/// quorum must find its members before any of them is ready).
fn headless(names: &Names, spec: &KafkaClusterSpec, owner: &OwnerReference) -> Service {
    let mut ports = vec![
        port("controller", CONTROLLER_PORT),
        port("replication", REPLICATION_PORT),
    ];
    ports.extend(spec.listeners.iter().map(|l| port(&l.name, l.port)));
    Service {
        metadata: names.meta(names.headless(), owner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names.selector()),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The bootstrap Service of one listener: any ready broker, the pods
/// `selector` selects.
fn bootstrap(
    names: &Names,
    listener: &Listener,
    selector: &BTreeMap<String, String>,
    owner: &OwnerReference,
) -> Service {
    let config = listener.config();
    let own = config.bootstrap.clone().unwrap_or_default();
    let mut annotations = config.annotations.clone();
    annotations.extend(own.annotations);
    let mut service = listener_service(
        names.bootstrap(&listener.name),
        names,
        listener,
        owner,
        annotations,
        own.node_port,
        // Kubernetes' default, unless the listener says.
        None,
    );
    if let Some(spec) = service.spec.as_mut() {
        spec.selector = Some(selector.clone());
    }
    service
}

/// Broker `id`'s Service on an external listener.
fn per_broker(names: &Names, listener: &Listener, id: i32, owner: &OwnerReference) -> Service {
    let mut annotations = listener.config().annotations;
    let own = listener.broker_override(id);
    annotations.extend(own.map(|b| b.annotations.clone()).unwrap_or_default());
    let mut service = listener_service(
        names.broker_service(id, &listener.name),
        names,
        listener,
        owner,
        annotations,
        own.and_then(|b| b.node_port),
        // Traffic for a broker must reach that broker, not hop through
        // another node: its node's address is what it advertises on a
        // NodePort listener.
        Some(ExternalTrafficPolicy::Local),
    );
    if let Some(spec) = service.spec.as_mut() {
        spec.selector = Some(names.pod_selector(id));
        spec.publish_not_ready_addresses = Some(true);
    }
    service
}

/// A Service of `listener` named `name`, with the listener's options for
/// its type: `node_port` and the traffic policy (the listener's, else
/// `default_policy`) on NodePort and LoadBalancer Services, the class and
/// source ranges on LoadBalancer ones.
fn listener_service(
    name: String,
    names: &Names,
    listener: &Listener,
    owner: &OwnerReference,
    annotations: BTreeMap<String, String>,
    node_port: Option<i32>,
    default_policy: Option<ExternalTrafficPolicy>,
) -> Service {
    let config = listener.config();
    let mut metadata = names.meta(name, owner);
    if !annotations.is_empty() {
        metadata.annotations = Some(annotations);
    }
    let outside = listener.kind != ListenerType::Internal;
    let balanced = listener.kind == ListenerType::Loadbalancer;
    let mut service_port = port(&listener.name, listener.port);
    if outside {
        service_port.node_port = node_port;
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(service_type(listener.kind).into()),
            ports: Some(vec![service_port]),
            external_traffic_policy: config
                .external_traffic_policy
                .or(default_policy)
                .filter(|_| outside)
                .map(|p| p.as_str().into()),
            load_balancer_class: config.class.clone().filter(|_| balanced),
            load_balancer_source_ranges: Some(config.load_balancer_source_ranges.clone())
                .filter(|r| balanced && !r.is_empty()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The Services of a two-broker cluster with `listener` (and an
    /// internal one), as JSON by name.
    fn shapes(listener: Value) -> BTreeMap<String, Value> {
        let spec: KafkaClusterSpec = serde_json::from_value(json!({
            "replicas": 2,
            "listeners": [{"name": "plain", "port": 9092, "type": "internal"}, listener],
        }))
        .expect("valid spec");
        let topology = Topology::single(&spec, 1, 2);
        services(
            &Names::new("c", "ns"),
            &spec,
            &topology,
            &OwnerReference::default(),
        )
        .into_iter()
        .map(|s| {
            let name = s.metadata.name.clone().unwrap_or_default();
            (name, serde_json::to_value(s).expect("serializable"))
        })
        .collect()
    }

    /// The fields of a Service that the listener's options decide.
    fn options(svc: &Value) -> Value {
        let spec = &svc["spec"];
        json!({
            "type": spec["type"],
            "annotations": svc["metadata"]["annotations"],
            "nodePort": spec["ports"][0]["nodePort"],
            "externalTrafficPolicy": spec["externalTrafficPolicy"],
            "loadBalancerClass": spec["loadBalancerClass"],
            "loadBalancerSourceRanges": spec["loadBalancerSourceRanges"],
        })
    }

    #[test]
    fn each_service_carries_its_listeners_options() {
        let lb = json!({"name": "lb", "port": 9095, "type": "loadbalancer", "configuration": {
            "class": "example.com/lb", "externalTrafficPolicy": "Cluster",
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
            "annotations": {"team": "kafka", "zone": "a"},
            "bootstrap": {"annotations": {"zone": "b"}, "nodePort": 31000},
            "brokers": [{"broker": 1, "annotations": {"dns": "b1.example.com"}, "nodePort": 31001}]}});
        let np = json!({"name": "np", "port": 9094, "type": "nodeport", "configuration": {
            "preferredNodePortAddressType": "InternalIP"}});
        let plain = json!({"name": "plain2", "port": 9093, "type": "internal", "configuration": {
            "annotations": {"a": "b"}}});
        let cases = [
            (
                "the bootstrap load balancer: the bootstrap's annotations over the listener's",
                &lb,
                "c-lb-bootstrap",
                json!({"type": "LoadBalancer", "annotations": {"team": "kafka", "zone": "b"},
                       "nodePort": 31000, "externalTrafficPolicy": "Cluster",
                       "loadBalancerClass": "example.com/lb",
                       "loadBalancerSourceRanges": ["10.0.0.0/8"]}),
            ),
            (
                "a broker's load balancer without options of its own",
                &lb,
                "c-broker-0-lb",
                json!({"type": "LoadBalancer", "annotations": {"team": "kafka", "zone": "a"},
                       "nodePort": null, "externalTrafficPolicy": "Cluster",
                       "loadBalancerClass": "example.com/lb",
                       "loadBalancerSourceRanges": ["10.0.0.0/8"]}),
            ),
            (
                "a broker's load balancer with its own",
                &lb,
                "c-broker-1-lb",
                json!({"type": "LoadBalancer",
                       "annotations": {"team": "kafka", "zone": "a", "dns": "b1.example.com"},
                       "nodePort": 31001, "externalTrafficPolicy": "Cluster",
                       "loadBalancerClass": "example.com/lb",
                       "loadBalancerSourceRanges": ["10.0.0.0/8"]}),
            ),
            (
                // Options left out are not in the applied object, so that
                // server-side apply removes them.
                "a nodeport bootstrap: Kubernetes' traffic policy",
                &np,
                "c-np-bootstrap",
                json!({"type": "NodePort", "annotations": null, "nodePort": null,
                       "externalTrafficPolicy": null, "loadBalancerClass": null,
                       "loadBalancerSourceRanges": null}),
            ),
            (
                "a nodeport broker: Local by default",
                &np,
                "c-broker-1-np",
                json!({"type": "NodePort", "annotations": null, "nodePort": null,
                       "externalTrafficPolicy": "Local", "loadBalancerClass": null,
                       "loadBalancerSourceRanges": null}),
            ),
            (
                "an internal bootstrap with annotations",
                &plain,
                "c-plain2-bootstrap",
                json!({"type": "ClusterIP", "annotations": {"a": "b"}, "nodePort": null,
                       "externalTrafficPolicy": null, "loadBalancerClass": null,
                       "loadBalancerSourceRanges": null}),
            ),
        ];
        for (name, listener, service, want) in cases {
            let all = shapes(listener.clone());
            let svc = all
                .get(service)
                .unwrap_or_else(|| panic!("{name}: no {service}"));
            assert_eq!(options(svc), want, "{name}");
        }
        // An internal listener has no Service per broker.
        assert!(!shapes(plain).keys().any(|n| n.starts_with("c-broker-")));
    }

    #[test]
    fn selectors_stay() {
        let np = json!({"name": "np", "port": 9094, "type": "nodeport"});
        let all = shapes(np);
        assert_eq!(
            all["c-broker-1-np"]["spec"]["selector"],
            json!({"statefulset.kubernetes.io/pod-name": "c-broker-1"})
        );
        assert_eq!(
            all["c-broker-1-np"]["spec"]["publishNotReadyAddresses"],
            json!(true)
        );
        assert_eq!(
            all["c-np-bootstrap"]["spec"]["selector"],
            json!({"app.kubernetes.io/component": "broker", "gregor.dev/cluster": "c"})
        );
        assert_eq!(
            all["c-np-bootstrap"]["spec"]["publishNotReadyAddresses"],
            Value::Null
        );
    }
}
