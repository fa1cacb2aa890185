//! The cluster's Services: a headless one giving each broker pod a DNS
//! name, a bootstrap Service per listener, and for external listeners one
//! Service per broker, so that each broker is reachable at the address it
//! advertises.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::cluster::{KafkaClusterSpec, Listener, ListenerType};
use crate::crd::validate::{CONTROLLER_PORT, REPLICATION_PORT};

use super::names::Names;

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

/// Every Service of the cluster with `brokers` brokers, in a stable order.
pub fn services(
    names: &Names,
    spec: &KafkaClusterSpec,
    brokers: i32,
    owner: &OwnerReference,
) -> Vec<Service> {
    let mut out = vec![headless(names, spec, owner)];
    out.extend(spec.listeners.iter().map(|l| bootstrap(names, l, owner)));
    for l in spec
        .listeners
        .iter()
        .filter(|l| l.kind != ListenerType::Internal)
    {
        out.extend((0..brokers).map(|id| per_broker(names, l, id, owner)));
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

/// The bootstrap Service of one listener: any ready broker.
fn bootstrap(names: &Names, listener: &Listener, owner: &OwnerReference) -> Service {
    Service {
        metadata: names.meta(names.bootstrap(&listener.name), owner),
        spec: Some(ServiceSpec {
            type_: Some(service_type(listener.kind).into()),
            selector: Some(names.selector()),
            ports: Some(vec![port(&listener.name, listener.port)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Broker `id`'s Service on an external listener.
fn per_broker(names: &Names, listener: &Listener, id: i32, owner: &OwnerReference) -> Service {
    Service {
        metadata: names.meta(names.broker_service(id, &listener.name), owner),
        spec: Some(ServiceSpec {
            type_: Some(service_type(listener.kind).into()),
            selector: Some(names.pod_selector(id)),
            ports: Some(vec![port(&listener.name, listener.port)]),
            // Traffic for a broker must reach that broker, not hop through
            // another node.
            external_traffic_policy: Some("Local".into()),
            publish_not_ready_addresses: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}
