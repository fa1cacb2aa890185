//! Checks on a listener's `configuration` (how it is exposed) that the
//! CRD schema cannot express: each option fits the listener's type, each
//! broker named exists and is named once, addresses are host names or IP
//! addresses, ranges are CIDRs. Problems are sentences naming the field,
//! as `validate` reports them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::cluster::{Listener, ListenerType};

/// Adds the problems of `listener`'s configuration, on a cluster of
/// `replicas` brokers (`None` with node pools, whose ids are the pools'
/// and not checked here), to `problems`; `node_ports` collects the node ports
/// asked for so far (a port asked twice is a problem).
pub fn check_listener(
    listener: &Listener,
    replicas: Option<i32>,
    node_ports: &mut BTreeSet<i32>,
    problems: &mut Vec<String>,
) {
    let Some(config) = &listener.configuration else {
        return;
    };
    let field = format!("listeners.{}.configuration", listener.name);
    let kind = listener.kind;
    let mut only = |name: &str, set: bool, allowed: &[ListenerType], which: &str| {
        if set && !allowed.contains(&kind) {
            problems.push(format!(
                "{field}.{name}: only {which} listeners take it, not {}",
                type_name(kind)
            ));
        }
    };
    const EXTERNAL: &[ListenerType] = &[ListenerType::Nodeport, ListenerType::Loadbalancer];
    only(
        "preferredNodePortAddressType",
        config.preferred_node_port_address_type.is_some(),
        &[ListenerType::Nodeport],
        "nodeport",
    );
    only(
        "externalTrafficPolicy",
        config.external_traffic_policy.is_some(),
        EXTERNAL,
        "nodeport and loadbalancer",
    );
    only(
        "class",
        config.class.is_some(),
        &[ListenerType::Loadbalancer],
        "loadbalancer",
    );
    only(
        "loadBalancerSourceRanges",
        !config.load_balancer_source_ranges.is_empty(),
        &[ListenerType::Loadbalancer],
        "loadbalancer",
    );
    let bootstrap_port = config.bootstrap.as_ref().and_then(|b| b.node_port);
    only(
        "bootstrap.nodePort",
        bootstrap_port.is_some(),
        EXTERNAL,
        "nodeport and loadbalancer",
    );
    // Internal listeners advertise each pod's DNS name: nothing per broker.
    only(
        "brokers",
        !config.brokers.is_empty(),
        EXTERNAL,
        "nodeport and loadbalancer",
    );

    if let Some(class) = &config.class {
        if !is_qualified_class(class) {
            problems.push(format!(
                "{field}.class: {class:?} is not a load-balancer class, a name with a domain prefix such as example.com/internal"
            ));
        }
    }
    for (i, range) in config.load_balancer_source_ranges.iter().enumerate() {
        if !is_cidr(range) {
            problems.push(format!(
                "{field}.loadBalancerSourceRanges[{i}]: {range:?} is not a CIDR range such as 10.0.0.0/8 or fd00::/8"
            ));
        }
    }
    if let Some(bootstrap) = &config.bootstrap {
        for (i, name) in bootstrap.alternative_names.iter().enumerate() {
            if !(is_host(name) || name.strip_prefix("*.").is_some_and(is_dns_name)) {
                problems.push(format!(
                    "{field}.bootstrap.alternativeNames[{i}]: {name:?} is not a host name or IP address"
                ));
            }
        }
    }
    if let Some(port) = bootstrap_port {
        if !node_ports.insert(port) {
            problems.push(format!(
                "{field}.bootstrap.nodePort: {port} is asked for another Service too"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, b) in config.brokers.iter().enumerate() {
        let at = format!("{field}.brokers[{i}]");
        let outside = match replicas {
            Some(replicas) => b.broker < 0 || b.broker >= replicas,
            None => b.broker < 0,
        };
        if outside {
            let range = replicas.map_or(String::new(), |r| format!(" (0 to {})", r - 1));
            problems.push(format!(
                "{at}.broker: {} is not a broker of this cluster{range}",
                b.broker
            ));
        } else if !seen.insert(b.broker) {
            problems.push(format!("{at}.broker: broker {} is listed twice", b.broker));
        }
        if let Some(host) = &b.advertised_host {
            if !is_host(host) {
                problems.push(format!(
                    "{at}.advertisedHost: {host:?} is not a host name or IP address"
                ));
            }
        }
        if let Some(port) = b.node_port {
            if !node_ports.insert(port) {
                problems.push(format!(
                    "{at}.nodePort: {port} is asked for another Service too"
                ));
            }
        }
    }
}

/// The listener type as the spec writes it.
fn type_name(kind: ListenerType) -> &'static str {
    match kind {
        ListenerType::Internal => "internal",
        ListenerType::Nodeport => "nodeport",
        ListenerType::Loadbalancer => "loadbalancer",
    }
}

/// An IP address or a DNS name: what a certificate can name and a client
/// can connect to.
pub fn is_host(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok() || is_dns_name(text)
}

/// A DNS name as RFC 1123 writes host names: dot-separated labels of
/// letters, digits and hyphens, none starting or ending with a hyphen.
fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An address range as `address/prefix`, the prefix within the address's
/// length.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => prefix <= 32,
        Ok(IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// A `loadBalancerClass` as Kubernetes takes it: `prefix/name`, the prefix
/// a DNS name, the name up to 63 letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit.
fn is_qualified_class(text: &str) -> bool {
    let Some((prefix, name)) = text.split_once('/') else {
        return false;
    };
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    is_dns_name(prefix)
        && name.len() <= 63
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(listener: serde_json::Value, replicas: i32) -> Vec<String> {
        let listener: Listener = serde_json::from_value(listener).expect("a listener");
        let mut out = Vec::new();
        check_listener(&listener, Some(replicas), &mut BTreeSet::new(), &mut out);
        out
    }

    #[test]
    fn options_fit_the_listener_type() {
        use serde_json::json;
        let cases = [
            (
                "every nodeport option",
                json!({"name": "np", "port": 9094, "type": "nodeport", "configuration": {
                    "preferredNodePortAddressType": "InternalIP", "externalTrafficPolicy": "Cluster",
                    "annotations": {"a": "b"},
                    "bootstrap": {"nodePort": 31000, "alternativeNames": ["kafka.example.com", "*.kafka.example.com", "10.0.0.1"]},
                    "brokers": [{"broker": 0, "advertisedHost": "b0.example.com", "advertisedPort": 443, "nodePort": 31001},
                                {"broker": 2, "advertisedHost": "fd00::2"}]}}),
                vec![],
            ),
            (
                "every loadbalancer option",
                json!({"name": "lb", "port": 9095, "type": "loadbalancer", "configuration": {
                    "class": "example.com/internal", "externalTrafficPolicy": "Local",
                    "loadBalancerSourceRanges": ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"],
                    "brokers": [{"broker": 1, "advertisedHost": "LB-1.Example.com"}]}}),
                vec![],
            ),
            (
                "load balancer options on a nodeport listener",
                json!({"name": "np", "port": 9094, "type": "nodeport", "configuration": {
                    "class": "example.com/x", "loadBalancerSourceRanges": ["10.0.0.0/8"]}}),
                vec![
                    "listeners.np.configuration.class: only loadbalancer listeners take it, not nodeport",
                    "listeners.np.configuration.loadBalancerSourceRanges: only loadbalancer listeners take it, not nodeport",
                ],
            ),
            (
                "external options on an internal listener",
                json!({"name": "plain", "port": 9092, "type": "internal", "configuration": {
                    "preferredNodePortAddressType": "Hostname", "externalTrafficPolicy": "Local",
                    "bootstrap": {"nodePort": 31000, "alternativeNames": ["kafka.internal"]},
                    "brokers": [{"broker": 0, "advertisedHost": "b0.example.com"}]}}),
                vec![
                    "listeners.plain.configuration.preferredNodePortAddressType: only nodeport listeners take it, not internal",
                    "listeners.plain.configuration.externalTrafficPolicy: only nodeport and loadbalancer listeners take it, not internal",
                    "listeners.plain.configuration.bootstrap.nodePort: only nodeport and loadbalancer listeners take it, not internal",
                    "listeners.plain.configuration.brokers: only nodeport and loadbalancer listeners take it, not internal",
                ],
            ),
            (
                "node address preference on a load balancer",
                json!({"name": "lb", "port": 9095, "type": "loadbalancer", "configuration": {
                    "preferredNodePortAddressType": "ExternalIP"}}),
                vec!["listeners.lb.configuration.preferredNodePortAddressType: only nodeport listeners take it, not loadbalancer"],
            ),
            (
                "brokers out of range and twice",
                json!({"name": "np", "port": 9094, "type": "nodeport", "configuration": {"brokers": [
                    {"broker": 3}, {"broker": 1}, {"broker": 1}]}}),
                vec![
                    "listeners.np.configuration.brokers[0].broker: 3 is not a broker of this cluster (0 to 2)",
                    "listeners.np.configuration.brokers[2].broker: broker 1 is listed twice",
                ],
            ),
            (
                "bad addresses, ranges and class",
                json!({"name": "lb", "port": 9095, "type": "loadbalancer", "configuration": {
                    "class": "internal",
                    "loadBalancerSourceRanges": ["10.0.0.0/33", "10.0.0.1", "fd00::/129", "example.com/8"],
                    "bootstrap": {"alternativeNames": ["bad name", "*"]},
                    "brokers": [{"broker": 0, "advertisedHost": "under_score.example.com"},
                                {"broker": 1, "advertisedHost": "-x.example.com"},
                                {"broker": 2, "advertisedHost": ""}]}}),
                vec![
                    "listeners.lb.configuration.class: \"internal\" is not a load-balancer class, a name with a domain prefix such as example.com/internal",
                    "listeners.lb.configuration.loadBalancerSourceRanges[0]: \"10.0.0.0/33\" is not a CIDR range such as 10.0.0.0/8 or fd00::/8",
                    "listeners.lb.configuration.loadBalancerSourceRanges[1]: \"10.0.0.1\" is not a CIDR range such as 10.0.0.0/8 or fd00::/8",
                    "listeners.lb.configuration.loadBalancerSourceRanges[2]: \"fd00::/129\" is not a CIDR range such as 10.0.0.0/8 or fd00::/8",
                    "listeners.lb.configuration.loadBalancerSourceRanges[3]: \"example.com/8\" is not a CIDR range such as 10.0.0.0/8 or fd00::/8",
                    "listeners.lb.configuration.bootstrap.alternativeNames[0]: \"bad name\" is not a host name or IP address",
                    "listeners.lb.configuration.bootstrap.alternativeNames[1]: \"*\" is not a host name or IP address",
                    "listeners.lb.configuration.brokers[0].advertisedHost: \"under_score.example.com\" is not a host name or IP address",
                    "listeners.lb.configuration.brokers[1].advertisedHost: \"-x.example.com\" is not a host name or IP address",
                    "listeners.lb.configuration.brokers[2].advertisedHost: \"\" is not a host name or IP address",
                ],
            ),
            (
                "a node port asked twice",
                json!({"name": "np", "port": 9094, "type": "nodeport", "configuration": {
                    "bootstrap": {"nodePort": 31000},
                    "brokers": [{"broker": 0, "nodePort": 31000}]}}),
                vec!["listeners.np.configuration.brokers[0].nodePort: 31000 is asked for another Service too"],
            ),
        ];
        for (name, listener, want) in cases {
            assert_eq!(problems(listener, 3), want, "{name}");
        }
    }
}
