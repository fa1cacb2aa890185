//! What a cluster's TLS, authentication and authorization become in each
//! broker's properties, and where the certificate files they name are
//! mounted. The operator's own listeners (controller and replication) are
//! always TLS with client certificates, signed by the cluster CA; client
//! listeners are as their spec says.

use crate::crd::cluster::{AuthenticationType, KafkaClusterSpec, Listener};

use super::names::Names;
use super::provider_trust;

// The Secrets are mounted beside the configuration, not inside it: a
// mount point cannot be made inside the read-only ConfigMap volume.
/// Where the Secret of the brokers' certificates is mounted: one PEM file
/// (key, then certificate) per broker, named after its pod.
pub const CERTS_DIR: &str = "/etc/gregor-tls/certs";
/// Where the cluster CA's trust bundle is mounted (`ca.crt`).
pub const CLUSTER_CA_DIR: &str = "/etc/gregor-tls/cluster-ca";
/// Where the clients CA's trust bundle is mounted (`ca.crt`).
pub const CLIENTS_CA_DIR: &str = "/etc/gregor-tls/clients-ca";
/// Key of a trust bundle in its Secret.
pub const CA_CERT_KEY: &str = "ca.crt";
/// The organization in the subject of the certificates the operator
/// makes for brokers and for itself.
pub const ORGANIZATION: &str = "gregor.dev";
/// The authorizer Kafka 4 ships, the one Gregor's brokers follow.
const AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// Kafka's validator of signed bearer tokens.
const OAUTH_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
const OAUTH_LOGIN: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// Kafka's security protocol of a client listener.
pub fn protocol(listener: &Listener) -> &'static str {
    let sasl = matches!(
        listener.authentication.as_ref().map(|a| a.kind),
        Some(
            AuthenticationType::ScramSha512
                | AuthenticationType::ScramSha256
                | AuthenticationType::Oauth
        )
    );
    match (listener.tls, sasl) {
        (false, false) => "PLAINTEXT",
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// The common name of every broker's certificate; with [`ORGANIZATION`]
/// it is the brokers' principal.
pub fn broker_common_name(names: &Names) -> String {
    format!("{}-broker", names.cluster)
}

/// The common name of the operator's certificate for this cluster.
pub fn operator_common_name(names: &Names) -> String {
    format!("{}-operator", names.cluster)
}

/// A principal's name as the brokers derive it from a certificate the
/// operator made (Kafka's default mapping: the subject, RFC 2253).
pub fn certificate_principal(common_name: &str) -> String {
    format!("CN={common_name},O={ORGANIZATION}")
}

/// The security lines of node `pod`'s properties: the TLS, SASL and
/// authorization settings, as (key, value) in a fixed order. A `broker`
/// has the replication and client listeners; a dedicated controller only
/// the controller listener.
pub fn properties(
    names: &Names,
    spec: &KafkaClusterSpec,
    pod: &str,
    broker: bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut set = |k: String, v: String| out.push((k, v));
    let key_store = format!("{CERTS_DIR}/{pod}.pem");
    let cluster_trust = format!("{CLUSTER_CA_DIR}/{CA_CERT_KEY}");
    let internal: &[&str] = match broker {
        true => &["controller", "replication"],
        false => &["controller"],
    };
    let clients: &[Listener] = match broker {
        true => &spec.listeners,
        false => &[],
    };
    for internal in internal {
        let prefix = format!("listener.name.{internal}");
        set(format!("{prefix}.ssl.keystore.type"), "PEM".into());
        set(format!("{prefix}.ssl.keystore.location"), key_store.clone());
        set(format!("{prefix}.ssl.truststore.type"), "PEM".into());
        set(
            format!("{prefix}.ssl.truststore.location"),
            cluster_trust.clone(),
        );
        set(format!("{prefix}.ssl.client.auth"), "required".into());
    }
    for l in clients {
        let prefix = format!("listener.name.{}", l.name);
        if l.tls {
            set(format!("{prefix}.ssl.keystore.type"), "PEM".into());
            set(format!("{prefix}.ssl.keystore.location"), key_store.clone());
        }
        let Some(auth) = &l.authentication else {
            continue;
        };
        match auth.kind {
            AuthenticationType::Tls => {
                set(format!("{prefix}.ssl.truststore.type"), "PEM".into());
                set(
                    format!("{prefix}.ssl.truststore.location"),
                    format!("{CLIENTS_CA_DIR}/{CA_CERT_KEY}"),
                );
                set(format!("{prefix}.ssl.client.auth"), "required".into());
            }
            AuthenticationType::ScramSha512 => {
                set(
                    format!("{prefix}.sasl.enabled.mechanisms"),
                    "SCRAM-SHA-512".into(),
                );
            }
            AuthenticationType::ScramSha256 => {
                set(
                    format!("{prefix}.sasl.enabled.mechanisms"),
                    "SCRAM-SHA-256".into(),
                );
            }
            AuthenticationType::Oauth => {
                set(
                    format!("{prefix}.sasl.enabled.mechanisms"),
                    "OAUTHBEARER".into(),
                );
                set(
                    format!("{prefix}.oauthbearer.sasl.server.callback.handler.class"),
                    OAUTH_VALIDATOR.into(),
                );
                // The provider's certificates, when named, are the JAAS
                // line's trust store, as Kafka takes them.
                let login = match auth.tls_trusted_certificates.is_empty() {
                    true => format!("{OAUTH_LOGIN} required;"),
                    false => format!(
                        "{OAUTH_LOGIN} required ssl.truststore.location=\"{}\";",
                        provider_trust::path(&l.name)
                    ),
                };
                set(format!("{prefix}.oauthbearer.sasl.jaas.config"), login);
                let oauth = [
                    (
                        "sasl.oauthbearer.jwks.endpoint.url",
                        &auth.jwks_endpoint_uri,
                    ),
                    ("sasl.oauthbearer.expected.issuer", &auth.valid_issuer_uri),
                    ("sasl.oauthbearer.expected.audience", &auth.valid_audience),
                    ("sasl.oauthbearer.sub.claim.name", &auth.user_name_claim),
                ];
                for (key, value) in oauth {
                    if let Some(value) = value {
                        set(format!("{prefix}.{key}"), value.clone());
                    }
                }
                if auth.valid_audience.is_none() {
                    set(
                        format!("{prefix}.sasl.oauthbearer.allow.unverified.audience"),
                        "true".into(),
                    );
                }
            }
        }
    }
    if let Some(authorization) = &spec.authorization {
        set("authorizer.class.name".into(), AUTHORIZER.into());
        let own = [broker_common_name(names), operator_common_name(names)]
            .map(|cn| format!("User:{}", certificate_principal(&cn)));
        let users: Vec<String> = own
            .into_iter()
            .chain(
                authorization
                    .super_users
                    .iter()
                    .map(|u| match u.starts_with("User:") {
                        true => u.clone(),
                        false => format!("User:{u}"),
                    }),
            )
            .collect();
        set("super.users".into(), users.join(";"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth_listener(trusted: serde_json::Value) -> KafkaClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": 3,
            "listeners": [{"name": "sso", "port": 9094, "type": "internal", "tls": true,
                "authentication": {"type": "oauth", "jwksEndpointUri": "https://idp/jwks",
                    "validIssuerUri": "https://idp", "tlsTrustedCertificates": trusted}}],
        }))
        .expect("spec")
    }

    #[test]
    fn an_oauth_listener_trusts_its_providers_certificates_in_the_jaas_line() {
        let names = Names::new("demo", "kafka");
        let cases = [
            (
                serde_json::json!([]),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            ),
            (
                serde_json::json!([{"secretName": "idp", "certificate": "ca.crt"}]),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ssl.truststore.location=\"/etc/gregor/sso-oauth-trust.pem\";",
            ),
        ];
        for (trusted, jaas) in cases {
            let props = properties(&names, &oauth_listener(trusted), "demo-broker-0", true);
            let get = |key: &str| {
                props
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(
                get("listener.name.sso.oauthbearer.sasl.jaas.config"),
                Some(jaas)
            );
            assert_eq!(
                get("listener.name.sso.sasl.oauthbearer.jwks.endpoint.url"),
                Some("https://idp/jwks")
            );
            assert_eq!(
                get("listener.name.sso.sasl.oauthbearer.allow.unverified.audience"),
                Some("true")
            );
        }
    }
}
