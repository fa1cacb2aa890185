//! The NetworkPolicy of the broker pods: the controller and replication
//! ports only for the cluster's brokers and the operator, the client
//! listeners' ports and the HTTP port (probes, metrics) for anyone. It
//! takes effect where the network plugin enforces policies.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

use crate::crd::cluster::KafkaClusterSpec;
use crate::crd::validate::{CONTROLLER_PORT, HTTP_PORT, REPLICATION_PORT};

use super::names::Names;

/// The label of the operator's pods (the chart's).
const OPERATOR_LABEL: (&str, &str) = ("app.kubernetes.io/name", "gregor-operator");

/// The cluster's NetworkPolicy.
pub fn network_policy(
    names: &Names,
    spec: &KafkaClusterSpec,
    owner: &OwnerReference,
) -> NetworkPolicy {
    let ports = |ports: &[i32]| {
        ports
            .iter()
            .map(|p| NetworkPolicyPort {
                port: Some(IntOrString::Int(*p)),
                protocol: Some("TCP".into()),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let brokers = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(names.selector()),
            ..Default::default()
        }),
        ..Default::default()
    };
    // The operator, in whatever namespace it runs.
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                OPERATOR_LABEL.0.to_string(),
                OPERATOR_LABEL.1.to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut open: Vec<i32> = spec.listeners.iter().map(|l| l.port).collect();
    open.push(HTTP_PORT);
    NetworkPolicy {
        metadata: names.meta(names.statefulset(), owner),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(names.selector()),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![brokers, operator]),
                    ports: Some(ports(&[CONTROLLER_PORT, REPLICATION_PORT])),
                },
                NetworkPolicyIngressRule {
                    from: None,
                    ports: Some(ports(&open)),
                },
            ]),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_brokers_and_the_operator_reach_the_internal_ports() {
        let spec: KafkaClusterSpec = serde_json::from_value(serde_json::json!({
            "replicas": 3,
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal"},
                {"name": "external", "port": 9094, "type": "nodeport"},
            ],
        }))
        .expect("spec");
        let policy = network_policy(
            &Names::new("demo", "kafka"),
            &spec,
            &OwnerReference::default(),
        );
        let spec = policy.spec.expect("spec");
        let rules = spec.ingress.expect("rules");
        let port_list = |r: &NetworkPolicyIngressRule| -> Vec<i32> {
            r.ports
                .iter()
                .flatten()
                .filter_map(|p| match p.port {
                    Some(IntOrString::Int(n)) => Some(n),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(port_list(&rules[0]), [9090, 9091]);
        let peers = rules[0].from.as_ref().expect("peers");
        assert_eq!(peers.len(), 2);
        assert_eq!(
            peers[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(Names::new("demo", "kafka").selector())
        );
        assert!(peers[1].namespace_selector.is_some());
        assert_eq!(port_list(&rules[1]), [9092, 9094, 9644]);
        assert!(rules[1].from.is_none(), "open to anyone");
    }
}
