//! Checks on a spec that the CRD schema cannot express. A spec that fails
//! them is reported in status (condition `Degraded`, reason
//! `InvalidSpec`) and nothing is changed.

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::{AuthenticationType, CertificateAuthority, KafkaClusterSpec, Listener};
use super::exposure;
use super::topic::KafkaTopicSpec;
use crate::cluster::volumes;
use crate::pki::renewal::Lifetimes;

/// Ports of the listeners the operator adds to every broker.
pub const CONTROLLER_PORT: i32 = 9090;
/// See [`CONTROLLER_PORT`].
pub const REPLICATION_PORT: i32 = 9091;
/// The broker's HTTP port: probes and metrics.
pub const HTTP_PORT: i32 = 9644;

/// Broker settings the operator writes itself; a user setting them would
/// break the cluster's wiring.
const OWNED_BROKER_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "process.roles",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "controller.listener.names",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "log.dirs",
    "log.dir",
    "metadata.log.dir",
    "broker.rack",
    "min.insync.replicas",
    "http.listener",
    "authorizer.class.name",
    "super.users",
];

/// Prefixes of broker settings the operator writes itself: its own
/// listeners' security.
const OWNED_BROKER_PREFIXES: &[&str] = &["listener.name.controller.", "listener.name.replication."];

/// Why a spec cannot be applied: every problem found, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct Invalid {
    /// One sentence per problem.
    pub problems: Vec<String>,
}

/// Checks a `KafkaCluster` spec. `pooled`: the cluster uses node pools.
/// `recorded_controllers` is the quorum size the cluster was created with,
/// if it exists already (without node pools).
pub fn validate_cluster(
    spec: &KafkaClusterSpec,
    pooled: bool,
    recorded_controllers: Option<i32>,
) -> Result<(), Invalid> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for l in &spec.listeners {
        if matches!(l.name.as_str(), "replication" | "controller") {
            problems.push(format!(
                "listeners: the name {:?} is the operator's own listener",
                l.name
            ));
        }
        if !names.insert(l.name.as_str()) {
            problems.push(format!("listeners: the name {:?} is used twice", l.name));
        }
        if [CONTROLLER_PORT, REPLICATION_PORT, HTTP_PORT].contains(&l.port) {
            problems.push(format!(
                "listeners.{}: port {} is taken by the operator's controller, replication and HTTP listeners ({CONTROLLER_PORT}, {REPLICATION_PORT}, {HTTP_PORT})",
                l.name, l.port
            ));
        } else if !ports.insert(l.port) {
            problems.push(format!(
                "listeners.{}: port {} is used twice",
                l.name, l.port
            ));
        }
    }
    let mut node_ports = BTreeSet::new();
    for l in &spec.listeners {
        check_authentication(l, &mut problems);
        exposure::check_listener(l, spec.replicas, &mut node_ports, &mut problems);
    }
    for key in spec.config.keys() {
        let owned = OWNED_BROKER_KEYS.contains(&key.as_str())
            || OWNED_BROKER_PREFIXES.iter().any(|p| key.starts_with(p));
        if owned {
            let hint = match key.as_str() {
                "min.insync.replicas" => " (use spec.minInsyncReplicas)",
                "authorizer.class.name" | "super.users" => " (use spec.authorization)",
                _ => "",
            };
            problems.push(format!(
                "config.{key}: set by the operator and cannot be overridden{hint}"
            ));
        }
    }
    check_scalars(&spec.config, &mut problems);
    volumes::check(&spec.storage, &mut problems);
    for (field, ca) in [
        ("clusterCa", &spec.cluster_ca),
        ("clientsCa", &spec.clients_ca),
    ] {
        if let Some(ca) = ca {
            if let Err(problem) = lifetimes(ca) {
                problems.push(format!("{field}: {problem}"));
            }
        }
    }
    if let Some(authorization) = &spec.authorization {
        if authorization
            .super_users
            .iter()
            .any(|u| u.trim().is_empty())
        {
            problems.push("authorization.superUsers: a name is empty".into());
        }
    }
    match (pooled, spec.replicas) {
        // The pools' own checks are `cluster::topology`'s: they need the
        // pools.
        (true, replicas) => {
            if replicas.is_some() || spec.controllers.is_some() {
                problems.push(
                    "replicas, controllers: set by the KafkaNodePools of a cluster with node pools; leave them out".into(),
                );
            }
        }
        (false, None) => problems.push(
            "replicas: required, unless the cluster uses node pools (annotation gregor.dev/node-pools: enabled)".into(),
        ),
        (false, Some(replicas)) => check_quorum(spec, replicas, recorded_controllers, &mut problems),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Invalid { problems })
    }
}

/// `replicas` brokers of a cluster without node pools, the lowest
/// `controllers` of them voters: enough brokers for the quorum and for
/// `minInsyncReplicas`, and the quorum as it was created.
fn check_quorum(
    spec: &KafkaClusterSpec,
    replicas: i32,
    recorded_controllers: Option<i32>,
    problems: &mut Vec<String>,
) {
    if let Some(m) = spec.min_insync_replicas {
        if m > replicas {
            problems.push(format!(
                "minInsyncReplicas: {m} is more than the {replicas} brokers"
            ));
        }
    }
    let controllers = spec.controllers.unwrap_or(default_controllers(replicas));
    if let Some(recorded) = recorded_controllers {
        if recorded != controllers {
            problems.push(format!(
                "controllers: the quorum was created with {recorded} controllers and cannot change to {controllers}"
            ));
        }
    }
    let quorum = recorded_controllers.unwrap_or(controllers);
    if replicas < quorum {
        problems.push(format!(
            "replicas: {replicas} is fewer than the {quorum} controllers; the controllers are the first brokers and must stay"
        ));
    }
}

/// A listener's authentication fits its transport and has what its
/// mechanism needs.
fn check_authentication(l: &Listener, problems: &mut Vec<String>) {
    let Some(auth) = &l.authentication else {
        return;
    };
    let field = format!("listeners.{}.authentication", l.name);
    if auth.kind == AuthenticationType::Tls && !l.tls {
        problems.push(format!(
            "{field}: type tls authenticates clients by their TLS certificates and needs tls: true on the listener"
        ));
    }
    let oauth_fields = [
        ("jwksEndpointUri", &auth.jwks_endpoint_uri),
        ("validIssuerUri", &auth.valid_issuer_uri),
        ("validAudience", &auth.valid_audience),
        ("userNameClaim", &auth.user_name_claim),
    ];
    if auth.kind == AuthenticationType::Oauth {
        for (name, value) in &oauth_fields[..2] {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                problems.push(format!("{field}.{name}: needed by type oauth"));
            }
        }
        for (i, t) in auth.tls_trusted_certificates.iter().enumerate() {
            if t.secret_name.trim().is_empty() || t.certificate.trim().is_empty() {
                problems.push(format!(
                    "{field}.tlsTrustedCertificates[{i}]: needs secretName and certificate (the Secret's key)"
                ));
            }
        }
    } else {
        for (name, value) in oauth_fields {
            if value.is_some() {
                problems.push(format!("{field}.{name}: only type oauth takes it"));
            }
        }
        if !auth.tls_trusted_certificates.is_empty() {
            problems.push(format!(
                "{field}.tlsTrustedCertificates: only type oauth takes it"
            ));
        }
    }
}

/// A certificate authority's validity and renewal window, in seconds.
pub fn lifetimes(ca: &CertificateAuthority) -> Result<Lifetimes, String> {
    let validity = duration_seconds(&ca.validity)
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            format!(
                "validity {:?} is not a duration above zero such as 8760h or 90m",
                ca.validity
            )
        })?;
    let renew_before = duration_seconds(&ca.renew_before).ok_or_else(|| {
        format!(
            "renewBefore {:?} is not a duration such as 720h or 30m",
            ca.renew_before
        )
    })?;
    if renew_before >= validity {
        return Err(format!(
            "renewBefore {} must be shorter than validity {}",
            ca.renew_before, ca.validity
        ));
    }
    Ok(Lifetimes {
        validity,
        renew_before,
    })
}

/// Seconds of a duration written in hours, minutes and seconds, in that
/// order (`8760h`, `1h30m`, `45s`).
pub fn duration_seconds(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text;
    let mut units = ["h", "m", "s"].into_iter().zip([3600, 60, 1]);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let value: i64 = rest[..digits].parse().ok()?;
        let unit = &rest[digits..digits + 1];
        let (_, scale) = units.by_ref().find(|(u, _)| *u == unit)?;
        total = total.checked_add(value.checked_mul(scale)?)?;
        rest = &rest[digits + 1..];
    }
    Some(total)
}

/// Quorum size when the spec does not say: 3, or 1 below three brokers.
pub fn default_controllers(replicas: i32) -> i32 {
    if replicas >= 3 {
        3
    } else {
        1
    }
}

/// Checks a `KafkaTopic` spec.
pub fn validate_topic(spec: &KafkaTopicSpec) -> Result<(), Invalid> {
    let mut problems = Vec::new();
    check_scalars(&spec.config, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Invalid { problems })
    }
}

fn check_scalars(config: &BTreeMap<String, serde_json::Value>, problems: &mut Vec<String>) {
    for (key, value) in config {
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            problems.push(format!(
                "config.{key}: must be a string, number or boolean, not {value}"
            ));
        }
    }
}

/// A config value as Kafka's properties files write it.
pub fn config_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster::{
        Authorization, AuthorizationType, ListenerAuthentication, ListenerType, TrustedCertificate,
    };

    fn spec(replicas: i32) -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": replicas,
            "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
        }))
        .expect("valid spec")
    }

    fn listener(name: &str, port: i32) -> Listener {
        Listener {
            name: name.into(),
            port,
            kind: ListenerType::Internal,
            tls: false,
            authentication: None,
            configuration: None,
        }
    }

    fn authenticated(kind: AuthenticationType, tls: bool) -> Listener {
        Listener {
            tls,
            authentication: Some(ListenerAuthentication {
                kind,
                jwks_endpoint_uri: None,
                valid_issuer_uri: None,
                valid_audience: None,
                user_name_claim: None,
                tls_trusted_certificates: Vec::new(),
            }),
            ..listener("secure", 9093)
        }
    }

    #[test]
    fn cluster_checks() {
        struct Case {
            name: &'static str,
            change: fn(&mut KafkaClusterSpec),
            recorded: Option<i32>,
            problem: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "plain three brokers",
                change: |_| {},
                recorded: None,
                problem: None,
            },
            Case {
                name: "same controllers as recorded",
                change: |_| {},
                recorded: Some(3),
                problem: None,
            },
            Case {
                name: "quorum size changed",
                change: |s| s.controllers = Some(5),
                recorded: Some(3),
                problem: Some("cannot change to 5"),
            },
            Case {
                name: "scaled below the quorum",
                change: |s| s.replicas = Some(2),
                recorded: Some(3),
                problem: Some("fewer than the 3 controllers"),
            },
            Case {
                name: "owned key",
                change: |s| {
                    s.config.insert("advertised.listeners".into(), "x".into());
                },
                recorded: None,
                problem: Some("config.advertised.listeners: set by the operator"),
            },
            Case {
                name: "min.insync.replicas in config",
                change: |s| {
                    s.config.insert("min.insync.replicas".into(), 2.into());
                },
                recorded: None,
                problem: Some("use spec.minInsyncReplicas"),
            },
            Case {
                name: "nested config value",
                change: |s| {
                    s.config
                        .insert("num.partitions".into(), serde_json::json!({"a": 1}));
                },
                recorded: None,
                problem: Some("config.num.partitions: must be a string"),
            },
            Case {
                name: "scalar config values",
                change: |s| {
                    s.config.insert("num.partitions".into(), 6.into());
                    s.config
                        .insert("auto.create.topics.enable".into(), false.into());
                },
                recorded: None,
                problem: None,
            },
            Case {
                name: "duplicate listener name",
                change: |s| s.listeners.push(listener("plain", 9093)),
                recorded: None,
                problem: Some("\"plain\" is used twice"),
            },
            Case {
                name: "duplicate port",
                change: |s| s.listeners.push(listener("other", 9092)),
                recorded: None,
                problem: Some("port 9092 is used twice"),
            },
            Case {
                name: "operator's port",
                change: |s| s.listeners.push(listener("other", 9091)),
                recorded: None,
                problem: Some("port 9091 is taken"),
            },
            Case {
                name: "a broker's address on an internal listener",
                change: |s| {
                    s.listeners[0].configuration = serde_json::from_value(serde_json::json!({
                        "brokers": [{"broker": 0, "advertisedHost": "kafka-0.example.com"}]
                    }))
                    .ok()
                },
                recorded: None,
                problem: Some("listeners.plain.configuration.brokers: only nodeport and loadbalancer listeners take it, not internal"),
            },
            Case {
                name: "a broker that the cluster does not have",
                change: |s| {
                    s.listeners[0].kind = ListenerType::Nodeport;
                    s.listeners[0].configuration = serde_json::from_value(serde_json::json!({
                        "brokers": [{"broker": 3, "advertisedPort": 443}]
                    }))
                    .ok()
                },
                recorded: None,
                problem: Some("listeners.plain.configuration.brokers[0].broker: 3 is not a broker of this cluster (0 to 2)"),
            },
            Case {
                name: "operator's listener name",
                change: |s| s.listeners.push(listener("replication", 9095)),
                recorded: None,
                problem: Some("operator's own listener"),
            },
            Case {
                name: "SCRAM over TLS",
                change: |s| s.listeners.push(authenticated(AuthenticationType::ScramSha512, true)),
                recorded: None,
                problem: None,
            },
            Case {
                name: "client certificates without TLS",
                change: |s| s.listeners.push(authenticated(AuthenticationType::Tls, false)),
                recorded: None,
                problem: Some("listeners.secure.authentication: type tls authenticates clients by their TLS certificates"),
            },
            Case {
                name: "oauth without its provider",
                change: |s| s.listeners.push(authenticated(AuthenticationType::Oauth, true)),
                recorded: None,
                problem: Some("listeners.secure.authentication.jwksEndpointUri: needed by type oauth"),
            },
            Case {
                name: "oauth settings on SCRAM",
                change: |s| {
                    let mut l = authenticated(AuthenticationType::ScramSha256, false);
                    if let Some(a) = l.authentication.as_mut() {
                        a.user_name_claim = Some("email".into());
                    }
                    s.listeners.push(l)
                },
                recorded: None,
                problem: Some("userNameClaim: only type oauth takes it"),
            },
            Case {
                name: "a provider's certificate without its key",
                change: |s| {
                    let mut l = authenticated(AuthenticationType::Oauth, true);
                    if let Some(a) = l.authentication.as_mut() {
                        a.jwks_endpoint_uri = Some("https://idp/jwks".into());
                        a.valid_issuer_uri = Some("https://idp".into());
                        a.tls_trusted_certificates.push(TrustedCertificate {
                            secret_name: "idp-ca".into(),
                            certificate: "".into(),
                        });
                    }
                    s.listeners.push(l)
                },
                recorded: None,
                problem: Some("tlsTrustedCertificates[0]: needs secretName and certificate"),
            },
            Case {
                name: "a provider's certificate on SCRAM",
                change: |s| {
                    let mut l = authenticated(AuthenticationType::ScramSha512, true);
                    if let Some(a) = l.authentication.as_mut() {
                        a.tls_trusted_certificates.push(TrustedCertificate {
                            secret_name: "idp-ca".into(),
                            certificate: "ca.crt".into(),
                        });
                    }
                    s.listeners.push(l)
                },
                recorded: None,
                problem: Some("tlsTrustedCertificates: only type oauth takes it"),
            },
            Case {
                name: "the authorizer in config",
                change: |s| {
                    s.config.insert("super.users".into(), "User:me".into());
                },
                recorded: None,
                problem: Some("config.super.users: set by the operator and cannot be overridden (use spec.authorization)"),
            },
            Case {
                name: "the replication listener's TLS in config",
                change: |s| {
                    s.config.insert("listener.name.replication.ssl.client.auth".into(), "none".into());
                },
                recorded: None,
                problem: Some("config.listener.name.replication.ssl.client.auth: set by the operator"),
            },
            Case {
                name: "an empty super user",
                change: |s| {
                    s.authorization = Some(Authorization {
                        kind: AuthorizationType::Simple,
                        super_users: vec![" ".into()],
                    })
                },
                recorded: None,
                problem: Some("authorization.superUsers: a name is empty"),
            },
            Case {
                name: "a renewal window as long as the validity",
                change: |s| {
                    s.clients_ca = Some(CertificateAuthority {
                        validity: "1h".into(),
                        renew_before: "60m".into(),
                        ..Default::default()
                    })
                },
                recorded: None,
                problem: Some("clientsCa: renewBefore 60m must be shorter than validity 1h"),
            },
            Case {
                name: "a validity of nothing",
                change: |s| {
                    s.cluster_ca = Some(CertificateAuthority {
                        validity: "0h".into(),
                        ..Default::default()
                    })
                },
                recorded: None,
                problem: Some("clusterCa: validity \"0h\" is not a duration above zero"),
            },
            Case {
                name: "min insync above brokers",
                change: |s| s.min_insync_replicas = Some(4),
                recorded: None,
                problem: Some("minInsyncReplicas: 4 is more than the 3 brokers"),
            },
        ];
        for case in cases {
            let mut s = spec(3);
            (case.change)(&mut s);
            let result = validate_cluster(&s, false, case.recorded);
            match (case.problem, result) {
                (None, Ok(())) => {}
                (Some(p), Err(e)) => assert!(
                    e.to_string().contains(p),
                    "{}: {e} does not mention {p:?}",
                    case.name
                ),
                (want, got) => panic!("{}: wanted {want:?}, got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn mechanisms_are_spelled_as_kafka_spells_them() {
        for (text, kind) in [
            ("tls", AuthenticationType::Tls),
            ("scram-sha-512", AuthenticationType::ScramSha512),
            ("scram-sha-256", AuthenticationType::ScramSha256),
            ("oauth", AuthenticationType::Oauth),
        ] {
            assert_eq!(serde_json::to_value(kind).expect("json"), text);
        }
        let user: crate::crd::user::UserAuthenticationType =
            serde_json::from_value("scram-sha-512".into()).expect("a user's mechanism");
        assert_eq!(user, crate::crd::user::UserAuthenticationType::ScramSha512);
    }

    #[test]
    fn durations_are_hours_minutes_and_seconds() {
        let cases = [
            ("8760h", Some(8760 * 3600)),
            ("1h30m", Some(5400)),
            ("90m", Some(5400)),
            ("45s", Some(45)),
            ("1h2m3s", Some(3723)),
            ("0s", Some(0)),
            ("", None),
            ("10", None),
            ("1d", None),
            ("30m1h", None),
            ("1h1h", None),
            ("h", None),
            ("99999999999999999999h", None),
        ];
        for (text, want) in cases {
            assert_eq!(duration_seconds(text), want, "{text:?}");
        }
    }

    #[test]
    fn small_clusters_have_one_controller() {
        assert_eq!(default_controllers(1), 1);
        assert_eq!(default_controllers(2), 1);
        assert_eq!(default_controllers(3), 3);
        assert_eq!(default_controllers(7), 3);
        assert!(validate_cluster(&spec(1), false, None).is_ok());
    }
}
