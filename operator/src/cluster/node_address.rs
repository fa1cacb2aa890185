//! The node address a broker advertises on a `nodeport` listener: one of
//! the addresses its Node reports (`status.addresses`), chosen by the
//! listener's `preferredNodePortAddressType` and then Strimzi's default
//! order. The operator writes the choice on the broker's pod as an
//! annotation, which the broker reads at start through the downward API
//! (an environment variable its properties file names), so that a broker
//! moved to another node advertises that node as soon as it starts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeAddress};

use crate::crd::cluster::{KafkaClusterSpec, Listener, ListenerType, NodeAddressType};

/// Prefix of the pod annotation holding the node address of a listener.
const ANNOTATION_PREFIX: &str = "gregor.dev/node-address-";
/// Prefix of the environment variable the annotation becomes.
const ENV_PREFIX: &str = "NODE_ADDRESS_";

/// The pod annotation holding the address broker pods advertise on
/// `listener` (a `nodeport` listener).
pub fn annotation(listener: &str) -> String {
    format!("{ANNOTATION_PREFIX}{listener}")
}

/// The environment variable of the broker container holding that
/// annotation's value.
pub fn env_name(listener: &str) -> String {
    format!("{ENV_PREFIX}{}", listener.to_ascii_uppercase())
}

/// The address of kind `preferred` if the node has one, else the first
/// kind of [`NodeAddressType::DEFAULT_ORDER`] it has; of several addresses
/// of one kind, the first listed. `None` when the node reports none of
/// these kinds.
pub fn choose(addresses: &[NodeAddress], preferred: Option<NodeAddressType>) -> Option<String> {
    let first_of = |kind: NodeAddressType| {
        addresses
            .iter()
            .find(|a| a.type_ == kind.as_str() && !a.address.trim().is_empty())
            .map(|a| a.address.clone())
    };
    preferred
        .into_iter()
        .chain(NodeAddressType::DEFAULT_ORDER)
        .find_map(first_of)
}

/// The listeners whose brokers advertise a node address.
pub fn node_port_listeners(spec: &KafkaClusterSpec) -> impl Iterator<Item = &Listener> {
    spec.listeners
        .iter()
        .filter(|l| l.kind == ListenerType::Nodeport)
}

/// The address a broker on `node` advertises, per `nodeport` listener
/// (listeners for which the node has no address are left out).
pub fn for_node(spec: &KafkaClusterSpec, node: &Node) -> BTreeMap<String, String> {
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default();
    node_port_listeners(spec)
        .filter_map(|l| {
            let preferred = l
                .configuration
                .as_ref()
                .and_then(|c| c.preferred_node_port_address_type);
            Some((l.name.clone(), choose(addresses, preferred)?))
        })
        .collect()
}

/// The annotations a broker pod on a node with `addresses` (per listener,
/// from [`for_node`]) needs, of those `current` lacks or has otherwise.
pub fn missing_annotations(
    addresses: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    addresses
        .iter()
        .map(|(listener, address)| (annotation(listener), address.clone()))
        .filter(|(key, value)| current.get(key) != Some(value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeStatus;

    fn addresses(list: &[(&str, &str)]) -> Vec<NodeAddress> {
        list.iter()
            .map(|(t, a)| NodeAddress {
                type_: t.to_string(),
                address: a.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_preferred_kind_then_strimzis_order() {
        use NodeAddressType::*;
        let all = addresses(&[
            ("InternalIP", "10.0.0.1"),
            ("InternalIP", "10.0.0.2"),
            ("Hostname", "node-1"),
            ("InternalDNS", "node-1.internal"),
            ("ExternalIP", "203.0.113.1"),
            ("ExternalDNS", "node-1.example.com"),
        ]);
        let kubelet = addresses(&[("InternalIP", "10.0.0.1"), ("Hostname", "node-1")]);
        type Case<'a> = (
            &'a str,
            &'a [NodeAddress],
            Option<NodeAddressType>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (
                "every kind, none preferred",
                &all,
                None,
                Some("node-1.example.com"),
            ),
            (
                "ExternalIP preferred",
                &all,
                Some(ExternalIp),
                Some("203.0.113.1"),
            ),
            ("Hostname preferred", &all, Some(Hostname), Some("node-1")),
            (
                "InternalDNS preferred",
                &all,
                Some(InternalDns),
                Some("node-1.internal"),
            ),
            // Of two addresses of a kind, the first.
            (
                "InternalIP preferred",
                &all,
                Some(InternalIp),
                Some("10.0.0.1"),
            ),
            // A kubelet without a cloud provider reports these two: the
            // host name comes before the internal IP.
            ("a bare kubelet's node", &kubelet, None, Some("node-1")),
            (
                "a bare kubelet's, InternalIP",
                &kubelet,
                Some(InternalIp),
                Some("10.0.0.1"),
            ),
            // The preferred kind missing: the default order.
            (
                "ExternalDNS missing",
                &kubelet,
                Some(ExternalDns),
                Some("node-1"),
            ),
            (
                "only internal addresses",
                &addresses(&[("InternalIP", "10.0.0.1"), ("InternalDNS", "n1.internal")]),
                None,
                Some("n1.internal"),
            ),
            (
                "an empty address skipped",
                &addresses(&[("ExternalIP", " "), ("InternalIP", "10.0.0.1")]),
                None,
                Some("10.0.0.1"),
            ),
            (
                "an unknown kind only",
                &addresses(&[("Other", "x")]),
                None,
                None,
            ),
            ("no addresses", &[], Some(InternalIp), None),
        ];
        for (name, list, preferred, want) in cases {
            assert_eq!(choose(list, *preferred).as_deref(), *want, "{name}");
        }
    }

    #[test]
    fn annotations_per_nodeport_listener() {
        let spec: KafkaClusterSpec = serde_json::from_value(serde_json::json!({
            "replicas": 1,
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal"},
                {"name": "ext", "port": 9094, "type": "nodeport",
                 "configuration": {"preferredNodePortAddressType": "InternalIP"}},
                {"name": "byname", "port": 9095, "type": "nodeport"},
                {"name": "lb", "port": 9096, "type": "loadbalancer"},
            ],
        }))
        .expect("spec");
        let node = Node {
            status: Some(NodeStatus {
                addresses: Some(addresses(&[
                    ("InternalIP", "10.0.0.1"),
                    ("Hostname", "node-1"),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let chosen = for_node(&spec, &node);
        assert_eq!(
            chosen,
            BTreeMap::from([
                ("byname".to_string(), "node-1".to_string()),
                ("ext".to_string(), "10.0.0.1".to_string()),
            ])
        );
        assert_eq!(env_name("ext"), "NODE_ADDRESS_EXT");
        let current = BTreeMap::from([
            (
                "gregor.dev/node-address-ext".to_string(),
                "10.0.0.9".to_string(),
            ),
            (
                "gregor.dev/node-address-byname".to_string(),
                "node-1".to_string(),
            ),
            ("gregor.dev/rack".to_string(), "zone-a".to_string()),
        ]);
        // Only what differs is written: the node moved for `ext`.
        assert_eq!(
            missing_annotations(&chosen, &current),
            BTreeMap::from([(
                "gregor.dev/node-address-ext".to_string(),
                "10.0.0.1".to_string()
            )])
        );
        assert!(missing_annotations(&chosen, &{
            let mut c = current.clone();
            c.insert("gregor.dev/node-address-ext".into(), "10.0.0.1".into());
            c
        })
        .is_empty());
        // A node without status yet: nothing to advertise.
        assert!(for_node(&spec, &Node::default()).is_empty());
    }
}
