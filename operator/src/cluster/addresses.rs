//! Where each broker is reached on each listener. Internal listeners use
//! the pod's DNS name; a NodePort listener the node the broker runs on
//! (resolved by the broker at start from `HOST_IP`) and the port the API
//! server gave the broker's Service; a LoadBalancer listener the address
//! the load balancer got.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use crate::crd::cluster::{KafkaClusterSpec, ListenerStatus, ListenerType};

use super::broker_config::{Endpoint, ExternalEndpoints, HOST_IP_ENV};
use super::names::Names;

/// External endpoints of brokers `0..brokers` known from the per-broker
/// Services as the API server returned them. Brokers whose address is not
/// assigned yet are missing.
pub fn external_endpoints(
    names: &Names,
    spec: &KafkaClusterSpec,
    brokers: i32,
    services: &BTreeMap<String, Service>,
) -> ExternalEndpoints {
    let mut out = ExternalEndpoints::new();
    for l in &spec.listeners {
        for id in 0..brokers {
            let Some(svc) = services.get(&names.broker_service(id, &l.name)) else {
                continue;
            };
            let endpoint = match l.kind {
                ListenerType::Internal => None,
                ListenerType::Nodeport => node_port(svc).map(|port| Endpoint {
                    host: format!("${{env:{HOST_IP_ENV}}}"),
                    port,
                }),
                ListenerType::Loadbalancer => {
                    load_balancer_host(svc).map(|host| Endpoint { host, port: l.port })
                }
            };
            if let Some(e) = endpoint {
                out.insert((id, l.name.clone()), e);
            }
        }
    }
    out
}

fn node_port(svc: &Service) -> Option<i32> {
    svc.spec.as_ref()?.ports.as_ref()?.first()?.node_port
}

fn load_balancer_host(svc: &Service) -> Option<String> {
    let ingress = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    let first = ingress.first()?;
    first.hostname.clone().or_else(|| first.ip.clone())
}

/// `bootstrap.servers` per listener. External listeners list every broker
/// whose address is known (`host_ips`: the node IP of each scheduled pod).
pub fn bootstrap_status(
    names: &Names,
    spec: &KafkaClusterSpec,
    external: &ExternalEndpoints,
    host_ips: &BTreeMap<i32, String>,
) -> Vec<ListenerStatus> {
    spec.listeners
        .iter()
        .map(|l| {
            let bootstrap = match l.kind {
                ListenerType::Internal => format!("{}:{}", names.bootstrap_host(&l.name), l.port),
                _ => (0..spec.replicas)
                    .filter_map(|id| {
                        let e = external.get(&(id, l.name.clone()))?;
                        let host = if l.kind == ListenerType::Nodeport {
                            host_ips.get(&id)?.clone()
                        } else {
                            e.host.clone()
                        };
                        Some(format!("{host}:{}", e.port))
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            };
            ListenerStatus {
                name: l.name.clone(),
                bootstrap,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServicePort, ServiceSpec, ServiceStatus,
    };

    fn spec() -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": 2,
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal"},
                {"name": "np", "port": 9094, "type": "nodeport"},
                {"name": "lb", "port": 9095, "type": "loadbalancer"},
            ],
        }))
        .expect("valid spec")
    }

    fn svc(node_port: Option<i32>, lb: Option<&str>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    node_port,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: lb.map(|ip| ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![LoadBalancerIngress {
                        ip: Some(ip.into()),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_from_services() {
        let names = Names::new("c", "ns");
        let services = BTreeMap::from([
            ("c-broker-0-np".to_string(), svc(Some(31000), None)),
            ("c-broker-1-np".to_string(), svc(Some(31001), None)),
            (
                "c-broker-0-lb".to_string(),
                svc(Some(32000), Some("203.0.113.5")),
            ),
            // Broker 1's load balancer is not provisioned yet.
            ("c-broker-1-lb".to_string(), svc(Some(32001), None)),
        ]);
        let e = external_endpoints(&names, &spec(), 2, &services);
        let np0 = &e[&(0, "np".to_string())];
        assert_eq!((np0.host.as_str(), np0.port), ("${env:HOST_IP}", 31000));
        let lb0 = &e[&(0, "lb".to_string())];
        assert_eq!((lb0.host.as_str(), lb0.port), ("203.0.113.5", 9095));
        assert!(!e.contains_key(&(1, "lb".to_string())));

        let status = bootstrap_status(
            &names,
            &spec(),
            &e,
            &BTreeMap::from([(0, "10.1.0.1".to_string()), (1, "10.1.0.2".to_string())]),
        );
        let got: Vec<(&str, &str)> = status
            .iter()
            .map(|s| (s.name.as_str(), s.bootstrap.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("plain", "c-plain-bootstrap.ns.svc:9092"),
                ("np", "10.1.0.1:31000,10.1.0.2:31001"),
                ("lb", "203.0.113.5:9095"),
            ]
        );
    }
}
