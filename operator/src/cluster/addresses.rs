//! Where each broker is reached on each listener. Internal listeners use
//! the pod's DNS name; a NodePort listener an address of the node the
//! broker runs on (see `node_address`) and the port the API server gave
//! the broker's Service; a LoadBalancer listener the address the load
//! balancer got. A listener's `configuration.brokers` may give a broker
//! its own host and port instead.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use crate::crd::cluster::{KafkaClusterSpec, ListenerStatus, ListenerType};

use super::broker_config::{Endpoint, ExternalEndpoints, Host};
use super::names::Names;

/// What the cluster's Services say about its external addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct External {
    /// What the brokers advertise on the external listeners, as
    /// far as known (a broker whose load balancer has no address yet, and
    /// no address in the spec, is missing).
    pub endpoints: ExternalEndpoints,
    /// The addresses of every load balancer, by Service name.
    pub load_balancers: BTreeMap<String, Vec<String>>,
}

/// The addresses of node ports on one broker's node, by (broker id,
/// listener name): what `Host::Node` stands for.
pub type NodeAddresses = BTreeMap<(i32, String), String>;

/// The external addresses of brokers `brokers`, from the Services as the
/// API server returned them and the spec's own addresses.
pub fn external(
    names: &Names,
    spec: &KafkaClusterSpec,
    brokers: &[i32],
    services: &BTreeMap<String, Service>,
) -> External {
    let mut endpoints = ExternalEndpoints::new();
    for l in &spec.listeners {
        for &id in brokers {
            let svc = services.get(&names.broker_service(id, &l.name));
            let given = l.broker_override(id);
            let given_host = given.and_then(|b| b.advertised_host.clone());
            let given_port = given.and_then(|b| b.advertised_port);
            let endpoint = match l.kind {
                ListenerType::Internal => None,
                ListenerType::Nodeport => {
                    given_port.or(svc.and_then(node_port)).map(|port| Endpoint {
                        host: given_host.map_or(Host::Node, Host::Fixed),
                        port,
                    })
                }
                ListenerType::Loadbalancer => given_host
                    .or_else(|| svc.and_then(|s| load_balancer_addresses(s).into_iter().next()))
                    .map(|host| Endpoint {
                        host: Host::Fixed(host),
                        port: given_port.unwrap_or(l.port),
                    }),
            };
            if let Some(e) = endpoint {
                endpoints.insert((id, l.name.clone()), e);
            }
        }
    }
    let load_balancers = services
        .iter()
        .map(|(name, svc)| (name.clone(), load_balancer_addresses(svc)))
        .filter(|(_, addresses)| !addresses.is_empty())
        .collect();
    External {
        endpoints,
        load_balancers,
    }
}

fn node_port(svc: &Service) -> Option<i32> {
    svc.spec.as_ref()?.ports.as_ref()?.first()?.node_port
}

/// A Service's load-balancer addresses (host names or IPs), in the order
/// its status lists them.
fn load_balancer_addresses(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ingress
                .iter()
                .filter_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The host broker `id` advertises on `listener` per `endpoint`, with its
/// node's address resolved; `None` while the node is not known.
pub fn resolved_host(
    endpoint: &Endpoint,
    id: i32,
    listener: &str,
    nodes: &NodeAddresses,
) -> Option<String> {
    match &endpoint.host {
        Host::Node => nodes.get(&(id, listener.to_string())).cloned(),
        Host::Fixed(host) => Some(host.clone()),
    }
}

/// `bootstrap.servers` per listener. External listeners list every broker
/// of `brokers` whose address is known.
pub fn bootstrap_status(
    names: &Names,
    spec: &KafkaClusterSpec,
    brokers: &[i32],
    external: &ExternalEndpoints,
    nodes: &NodeAddresses,
) -> Vec<ListenerStatus> {
    spec.listeners
        .iter()
        .map(|l| {
            let bootstrap = match l.kind {
                ListenerType::Internal => format!("{}:{}", names.bootstrap_host(&l.name), l.port),
                _ => brokers
                    .iter()
                    .filter_map(|&id| {
                        let e = external.get(&(id, l.name.clone()))?;
                        let host = resolved_host(e, id, &l.name, nodes)?;
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
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServicePort, ServiceSpec, ServiceStatus,
    };

    fn spec() -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": 3,
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal"},
                {"name": "np", "port": 9094, "type": "nodeport", "configuration": {"brokers": [
                    {"broker": 1, "advertisedHost": "kafka-1.example.com"},
                    {"broker": 2, "advertisedPort": 443},
                ]}},
                {"name": "lb", "port": 9095, "type": "loadbalancer", "configuration": {"brokers": [
                    {"broker": 2, "advertisedHost": "lb-2.example.com", "advertisedPort": 19095},
                ]}},
            ],
        }))
        .expect("valid spec")
    }

    /// A Service with a node port and load-balancer addresses (an IP,
    /// then host names).
    pub(crate) fn svc(node_port: Option<i32>, lb: &[&str]) -> Service {
        Service {
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    node_port,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: (!lb.is_empty()).then(|| ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        lb.iter()
                            .map(|a| match a.parse::<std::net::IpAddr>() {
                                Ok(_) => LoadBalancerIngress {
                                    ip: Some(a.to_string()),
                                    ..Default::default()
                                },
                                Err(_) => LoadBalancerIngress {
                                    hostname: Some(a.to_string()),
                                    ..Default::default()
                                },
                            })
                            .collect(),
                    ),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_from_services_and_the_spec() {
        let names = Names::new("c", "ns");
        let services = BTreeMap::from([
            ("c-broker-0-np".to_string(), svc(Some(31000), &[])),
            ("c-broker-1-np".to_string(), svc(Some(31001), &[])),
            // Broker 2's node port is not assigned yet: its given port is
            // enough.
            ("c-broker-2-np".to_string(), svc(None, &[])),
            (
                "c-broker-0-lb".to_string(),
                svc(Some(32000), &["203.0.113.5", "lb-0.example.net"]),
            ),
            // Broker 1's load balancer is not provisioned yet.
            ("c-broker-1-lb".to_string(), svc(Some(32001), &[])),
            // Broker 2's is not either, but it advertises its own address.
            (
                "c-lb-bootstrap".to_string(),
                svc(Some(32009), &["203.0.113.9"]),
            ),
        ]);
        let got = external(&names, &spec(), &[0, 1, 2], &services);
        let e = &got.endpoints;
        let at = |id: i32, l: &str| e.get(&(id, l.to_string())).cloned();
        let fixed = |h: &str, port| {
            Some(Endpoint {
                host: Host::Fixed(h.into()),
                port,
            })
        };
        let cases = [
            (
                "a node port",
                at(0, "np"),
                Some(Endpoint {
                    host: Host::Node,
                    port: 31000,
                }),
            ),
            (
                "a given host",
                at(1, "np"),
                fixed("kafka-1.example.com", 31001),
            ),
            (
                "a given port",
                at(2, "np"),
                Some(Endpoint {
                    host: Host::Node,
                    port: 443,
                }),
            ),
            (
                "the first LB address",
                at(0, "lb"),
                fixed("203.0.113.5", 9095),
            ),
            ("no LB address yet", at(1, "lb"), None),
            (
                "a given LB host and port",
                at(2, "lb"),
                fixed("lb-2.example.com", 19095),
            ),
            ("an internal listener", at(0, "plain"), None),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            got.load_balancers,
            BTreeMap::from([
                (
                    "c-broker-0-lb".to_string(),
                    vec!["203.0.113.5".to_string(), "lb-0.example.net".to_string()]
                ),
                (
                    "c-lb-bootstrap".to_string(),
                    vec!["203.0.113.9".to_string()]
                ),
            ])
        );

        // Broker 2 is not scheduled: its node's address is unknown.
        let nodes = NodeAddresses::from([
            ((0, "np".to_string()), "10.1.0.1".to_string()),
            ((1, "np".to_string()), "10.1.0.2".to_string()),
        ]);
        let status = bootstrap_status(&names, &spec(), &[0, 1, 2], e, &nodes);
        let got: Vec<(&str, &str)> = status
            .iter()
            .map(|s| (s.name.as_str(), s.bootstrap.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("plain", "c-plain-bootstrap.ns.svc:9092"),
                ("np", "10.1.0.1:31000,kafka-1.example.com:31001"),
                ("lb", "203.0.113.5:9095,lb-2.example.com:19095"),
            ]
        );
    }
}
