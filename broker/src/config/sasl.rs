//! A SASL listener's settings: which mechanisms it offers
//! (`sasl.enabled.mechanisms`), PLAIN's users and the broker's own
//! credentials from `<mechanism>.sasl.jaas.config`, and how long a session
//! lasts before the client must re-authenticate (`connections.max.reauth.ms`).
//! Each may be given for one listener as `listener.name.<listener>.<key>`,
//! the way Kafka's broker configurations give them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::oauthbearer::OAuthSettings;
use super::properties::Property;
use super::setting::list_items;
use super::tls::Secret;
use super::values::Values;
use super::ConfigError;
use crate::security::sasl::login::Login;
use crate::security::sasl::token_endpoint::{TokenRequest, Tokens};
use crate::security::sasl::{idp, jaas, Mechanism};

/// What one SASL_PLAINTEXT or SASL_SSL listener accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// The mechanisms offered, in the order configured.
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users and their passwords (`user_<name>="<password>"`).
    pub plain_users: PlainUsers,
    /// The username and password this broker logs in with, by mechanism,
    /// when it connects to this listener of another broker.
    pub client: BTreeMap<Mechanism, (String, Secret)>,
    /// `connections.max.reauth.ms`: a session's lifetime; 0 for no limit.
    pub max_reauth_ms: u64,
    /// How bearer tokens are checked, when OAUTHBEARER is offered.
    pub oauth: Option<OAuthSettings>,
}

impl SaslSettings {
    /// The settings in force for `listener`.
    pub fn for_listener(values: &Values, listener: &str) -> Result<SaslSettings, ConfigError> {
        let refuse = |reason: String| ConfigError::Listener {
            listener: listener.to_string(),
            reason,
        };
        let enabled = values
            .for_listener(listener, "sasl.enabled.mechanisms")
            .ok_or(ConfigError::Missing("sasl.enabled.mechanisms"))?;
        let mut mechanisms = Vec::new();
        for name in list_items(&enabled.value) {
            let mechanism = match name.as_str() {
                "GSSAPI" => return Err(refuse(
                    "GSSAPI (Kerberos) is not offered: set sasl.enabled.mechanisms to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default is GSSAPI)".into(),
                )),
                other => other.parse::<Mechanism>().map_err(|e| refuse(e.to_string()))?,
            };
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        if mechanisms.is_empty() {
            return Err(refuse("sasl.enabled.mechanisms names no mechanism".into()));
        }
        let mut plain_users = PlainUsers::default();
        let mut client = BTreeMap::new();
        for mechanism in &mechanisms {
            let key = jaas_key(*mechanism);
            let Some(p) = values.for_listener(listener, &key) else {
                if *mechanism == Mechanism::Plain {
                    return Err(refuse(format!(
                        "PLAIN needs its users: set listener.name.{}.{key} to a PlainLoginModule with user_<name>=\"<password>\" options",
                        listener.to_ascii_lowercase()
                    )));
                }
                // SCRAM's users live in the metadata quorum; the JAAS
                // entry is needed only to log in to other brokers.
                continue;
            };
            let config = jaas::parse(&p.value).map_err(|e| hidden(&p, e.to_string()))?;
            jaas::expect_module(&config, *mechanism).map_err(|e| hidden(&p, e.to_string()))?;
            if *mechanism == Mechanism::Plain {
                plain_users = PlainUsers(jaas::plain_users(&config));
            }
            if let Some((user, password)) = jaas::client_credentials(&config) {
                client.insert(*mechanism, (user, Secret::new(password)));
            }
        }
        let oauth = match mechanisms.contains(&Mechanism::OAuthBearer) {
            true => Some(OAuthSettings::for_listener(values, listener)?),
            false => None,
        };
        Ok(SaslSettings {
            mechanisms,
            plain_users,
            client,
            oauth,
            max_reauth_ms: values
                .for_listener(listener, "connections.max.reauth.ms")
                .map(|p| p.value.parse().unwrap_or(0))
                .unwrap_or(0),
        })
    }
}

/// How this broker logs in to `listener` of the others, the inter-broker
/// listener: `sasl.mechanism.inter.broker.protocol`, which the listener
/// must offer, with the `username` and `password` of its JAAS line.
pub fn inter_broker_login(
    values: &Values,
    listener: &str,
    settings: &SaslSettings,
) -> Result<Login, ConfigError> {
    let refuse = |reason: String| ConfigError::Listener {
        listener: listener.to_string(),
        reason,
    };
    let named = values
        .property("sasl.mechanism.inter.broker.protocol")
        .map(|p| p.value)
        .unwrap_or_default();
    let mechanism: Mechanism = named.parse().map_err(|_| {
        refuse(format!(
            "brokers log in to each other on this listener with sasl.mechanism.inter.broker.protocol, which is {named:?}: set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        ))
    })?;
    if !settings.mechanisms.contains(&mechanism) {
        return Err(refuse(format!(
            "sasl.mechanism.inter.broker.protocol is {mechanism}, which sasl.enabled.mechanisms does not offer here"
        )));
    }
    if mechanism == Mechanism::OAuthBearer {
        return bearer_login(values, listener).map(|r| Login::Bearer(Arc::new(Tokens::new(r))));
    }
    let Some((username, password)) = settings.client.get(&mechanism) else {
        return Err(refuse(format!(
            "brokers log in to each other with {mechanism}: give username and password in listener.name.{}.{}",
            listener.to_ascii_lowercase(),
            jaas_key(mechanism)
        )));
    };
    Ok(Login::Password {
        mechanism,
        username: username.clone(),
        password: password.expose().to_string(),
    })
}

/// Kafka's login handler for brokers' own tokens.
const TOKEN_LOGIN_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler";

/// How this broker asks for its OAUTHBEARER tokens: the listener's
/// `sasl.oauthbearer.token.endpoint.url` and its JAAS line's `clientId`,
/// `clientSecret`, `scope` and `ssl.truststore.location`.
fn bearer_login(values: &Values, listener: &str) -> Result<TokenRequest, ConfigError> {
    let refuse = |reason: String| ConfigError::Listener {
        listener: listener.to_string(),
        reason,
    };
    let lower = listener.to_ascii_lowercase();
    if let Some(p) = values.for_listener(listener, "oauthbearer.sasl.login.callback.handler.class")
    {
        if p.value.trim() != TOKEN_LOGIN_HANDLER {
            return Err(super::invalid(
                &p,
                format!("brokers get their tokens as {TOKEN_LOGIN_HANDLER} does; Gregor loads no Java classes"),
            ));
        }
    }
    let endpoint = values
        .for_listener(listener, "sasl.oauthbearer.token.endpoint.url")
        .filter(|p| !p.value.trim().is_empty())
        .ok_or_else(|| refuse("brokers log in to each other with OAUTHBEARER: set sasl.oauthbearer.token.endpoint.url to the identity provider's token endpoint".into()))?;
    idp::check_url(endpoint.value.trim()).map_err(|e| super::invalid(&endpoint, e.to_string()))?;
    let key = jaas_key(Mechanism::OAuthBearer);
    let needs_client = || {
        refuse(format!(
            "brokers log in to each other with OAUTHBEARER: give clientId and clientSecret in listener.name.{lower}.{key}"
        ))
    };
    let p = values
        .for_listener(listener, &key)
        .ok_or_else(needs_client)?;
    let config = jaas::parse(&p.value).map_err(|e| hidden(&p, e.to_string()))?;
    let option = |name: &str| config.options.get(name).cloned();
    let (Some(client_id), Some(client_secret)) = (option("clientId"), option("clientSecret"))
    else {
        return Err(needs_client());
    };
    Ok(TokenRequest {
        endpoint: endpoint.value.trim().to_string(),
        client_id,
        client_secret,
        scope: option("scope"),
        trust_store: option("ssl.truststore.location"),
    })
}

/// PLAIN's users by name, with their passwords: `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlainUsers(BTreeMap<String, String>);

impl PlainUsers {
    /// Name to password, for checking a client's.
    pub fn passwords(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The key of a mechanism's JAAS configuration, as Kafka spells it
/// (`scram-sha-512.sasl.jaas.config`).
pub fn jaas_key(mechanism: Mechanism) -> String {
    format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase())
}

/// An invalid secret setting: the error names the key, never the value.
fn hidden(p: &Property, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: p.key.clone(),
        value: "(hidden)".into(),
        origin: p.origin.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(lines: &[(&str, &str)]) -> Values {
        Values::broker_for_tests(lines)
    }

    const PLAIN: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;
    const SCRAM: &str = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";"#;

    #[test]
    fn a_listener_offers_its_mechanisms_with_their_users() {
        let v = values(&[
            (
                "listener.name.sasl.sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-512",
            ),
            ("listener.name.sasl.plain.sasl.jaas.config", PLAIN),
            ("listener.name.sasl.scram-sha-512.sasl.jaas.config", SCRAM),
            ("connections.max.reauth.ms", "60000"),
        ]);
        let s = SaslSettings::for_listener(&v, "SASL").expect("settings");
        assert_eq!(s.mechanisms, [Mechanism::Plain, Mechanism::ScramSha512]);
        assert_eq!(format!("{:?}", s.plain_users), r#"["admin", "alice"]"#);
        assert_eq!(s.plain_users.passwords()["alice"], "alice-secret");
        assert_eq!(s.client[&Mechanism::ScramSha512].0, "broker");
        assert_eq!(s.client[&Mechanism::Plain].0, "admin");
        assert_eq!(s.max_reauth_ms, 60000);
    }

    #[test]
    fn unusable_settings_are_refused_without_showing_secrets() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "GSSAPI"),
            (
                &[("sasl.enabled.mechanisms", "OAUTHBEARER")],
                "sasl.oauthbearer.jwks.endpoint.url",
            ),
            (
                &[("sasl.enabled.mechanisms", "plain")],
                "unknown SASL mechanism",
            ),
            (
                &[("sasl.enabled.mechanisms", "PLAIN")],
                "PLAIN needs its users",
            ),
            (
                &[
                    ("sasl.enabled.mechanisms", "PLAIN"),
                    ("listener.name.sasl.plain.sasl.jaas.config", SCRAM),
                ],
                "PlainLoginModule",
            ),
            (
                &[
                    ("sasl.enabled.mechanisms", "PLAIN"),
                    (
                        "listener.name.sasl.plain.sasl.jaas.config",
                        r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_a="top-secret""#,
                    ),
                ],
                "",
            ),
        ];
        for (lines, expected) in cases {
            let error = SaslSettings::for_listener(&values(lines), "SASL")
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{lines:?}: {error}");
            assert!(!error.contains("secret"), "{lines:?}: {error}");
        }
    }

    #[test]
    fn scram_needs_no_jaas_entry_on_a_listener() {
        let v = values(&[("sasl.enabled.mechanisms", "SCRAM-SHA-256")]);
        let s = SaslSettings::for_listener(&v, "SASL").expect("settings");
        assert_eq!(s.mechanisms, [Mechanism::ScramSha256]);
        assert!(s.client.is_empty());
        assert_eq!(s.max_reauth_ms, 0);
    }

    #[test]
    fn brokers_log_in_with_the_inter_broker_mechanism_and_the_listeners_credentials() {
        let base = [
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            ("listener.name.sasl.plain.sasl.jaas.config", PLAIN),
        ];
        let login = |extra: &[(&str, &str)]| {
            let lines: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            let v = values(&lines);
            let settings = SaslSettings::for_listener(&v, "SASL").expect("settings");
            inter_broker_login(&v, "SASL", &settings).map_err(|e| e.to_string())
        };
        let plain = login(&[("sasl.mechanism.inter.broker.protocol", "PLAIN")]).expect("login");
        assert_eq!(
            (plain.mechanism(), plain.who()),
            (Mechanism::Plain, "admin")
        );
        assert!(!format!("{plain:?}").contains("admin-secret"));
        let scram = login(&[
            ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
            ("listener.name.sasl.scram-sha-512.sasl.jaas.config", SCRAM),
        ])
        .expect("login");
        assert_eq!(
            (scram.mechanism(), scram.who()),
            (Mechanism::ScramSha512, "broker")
        );
        let refusals = [
            (vec![], "which is \"GSSAPI\""),
            (
                vec![("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256")],
                "does not offer",
            ),
            (
                vec![("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512")],
                "give username and password in listener.name.sasl.scram-sha-512.sasl.jaas.config",
            ),
        ];
        for (extra, expected) in refusals {
            let error = login(&extra).expect_err("refused");
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn brokers_log_in_with_oauthbearer_tokens_from_the_token_endpoint() {
        const VALIDATING: (&str, &str) = (
            "sasl.oauthbearer.jwks.endpoint.url",
            "https://idp.example/certs",
        );
        let base = [
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            ("sasl.mechanism.inter.broker.protocol", "OAUTHBEARER"),
            VALIDATING,
            ("sasl.oauthbearer.allow.unverified.audience", "true"),
            ("sasl.oauthbearer.allow.unverified.issuer", "true"),
        ];
        let jaas = r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="broker" clientSecret="broker-secret" scope="kafka";"#;
        let login = |extra: &[(&str, &str)]| {
            let lines: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            let v = values(&lines);
            let settings = SaslSettings::for_listener(&v, "SASL").expect("settings");
            inter_broker_login(&v, "SASL", &settings).map_err(|e| e.to_string())
        };
        let endpoint = (
            "sasl.oauthbearer.token.endpoint.url",
            "https://idp.example/token",
        );
        let bearer = login(&[
            endpoint,
            ("listener.name.sasl.oauthbearer.sasl.jaas.config", jaas),
        ])
        .expect("login");
        assert_eq!(
            (bearer.mechanism(), bearer.who()),
            (Mechanism::OAuthBearer, "broker")
        );
        assert!(!format!("{bearer:?}").contains("broker-secret"));
        let refusals = [
            (
                vec![("listener.name.sasl.oauthbearer.sasl.jaas.config", jaas)],
                "set sasl.oauthbearer.token.endpoint.url",
            ),
            (vec![endpoint], "give clientId and clientSecret"),
            (
                vec![
                    endpoint,
                    (
                        "listener.name.sasl.oauthbearer.sasl.jaas.config",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=broker;",
                    ),
                ],
                "give clientId and clientSecret",
            ),
            (
                vec![
                    endpoint,
                    ("listener.name.sasl.oauthbearer.sasl.jaas.config", jaas),
                    (
                        "listener.name.sasl.oauthbearer.sasl.login.callback.handler.class",
                        "com.example.Login",
                    ),
                ],
                "no Java classes",
            ),
        ];
        for (extra, expected) in refusals {
            let error = login(&extra).expect_err("refused");
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("broker-secret"), "{error}");
        }
    }
}
