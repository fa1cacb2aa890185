//! A listener's TLS settings: Kafka's `ssl.*` keys, each of which may also
//! be given for one listener as `listener.name.<listener>.ssl.*`. This
//! decides what the key store, trust store and handshake must be; reading
//! the files and building the TLS configuration is
//! [`crate::security::tls`]'s work.

use std::fmt;
use std::path::PathBuf;

use super::properties::Property;
use super::setting::list_items;
use super::values::Values;
use super::{invalid, ConfigError};
use crate::security::principal::PrincipalRules;

/// Text that must never be shown (a private key): `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps secret text read from the settings.
    pub(crate) fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret made up by a test.
    #[cfg(test)]
    pub fn for_tests(text: &str) -> Secret {
        Secret(text.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(hidden)")
    }
}

/// Where the broker's certificate chain and private key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// One PEM file holding the key and the chain (`ssl.keystore.location`).
    File(PathBuf),
    /// PEM text in the settings (`ssl.keystore.certificate.chain` and
    /// `ssl.keystore.key`).
    Text {
        /// The certificate chain, leaf first.
        chain: String,
        /// The private key.
        key: Secret,
    },
}

/// Where the trusted certificate authorities come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustStore {
    /// A PEM file of certificates (`ssl.truststore.location`).
    File(PathBuf),
    /// PEM text in the settings (`ssl.truststore.certificates`).
    Text(String),
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client must present a certificate the trust store accepts.
    Required,
    /// A client may present one; if it does, it must be trusted.
    Requested,
    /// Clients are not asked for one.
    None,
}

/// A TLS version of `ssl.enabled.protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// Everything one SSL listener needs to accept connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The listener's name.
    pub listener: String,
    /// The broker's certificate and key.
    pub key_store: KeyStore,
    /// The authorities client certificates must chain to, if any.
    pub trust_store: Option<TrustStore>,
    /// Whether clients are asked for a certificate.
    pub client_auth: ClientAuth,
    /// The versions offered.
    pub versions: Vec<TlsVersion>,
    /// The cipher suites offered, by IANA name; empty for every one.
    pub cipher_suites: Vec<String>,
    /// Whether a broker connecting to another on this listener checks that
    /// the other's certificate names the host it connects to
    /// (`ssl.endpoint.identification.algorithm=https`, Kafka's default).
    pub verify_host: bool,
    /// `ssl.principal.mapping.rules`: a client certificate's subject to
    /// the user it authenticates.
    pub principal_rules: PrincipalRules,
}

impl TlsSettings {
    /// The TLS settings in force for `listener`.
    pub fn for_listener(values: &Values, listener: &str) -> Result<TlsSettings, ConfigError> {
        let get = |key: &str| values.for_listener(listener, key);
        let refuse = |reason: String| ConfigError::Listener {
            listener: listener.to_string(),
            reason,
        };
        let key_store = match (
            get("ssl.keystore.location"),
            get("ssl.keystore.certificate.chain"),
            get("ssl.keystore.key"),
        ) {
            (Some(location), None, None) => KeyStore::File(PathBuf::from(&location.value)),
            (None, Some(chain), Some(key)) => KeyStore::Text {
                chain: chain.value,
                key: Secret(key.value),
            },
            (Some(location), _, _) => {
                return Err(invalid(
                    &location,
                    "give either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both".into(),
                ))
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(refuse(
                    "ssl.keystore.certificate.chain and ssl.keystore.key go together".into(),
                ))
            }
            (None, None, None) => {
                return Err(refuse(
                    "an SSL listener needs a key store: set ssl.keystore.location (a PEM file of the key and certificate chain), or ssl.keystore.certificate.chain and ssl.keystore.key".into(),
                ))
            }
        };
        pem_only(get("ssl.keystore.type"), "key store")?;
        if let Some(p) = get("ssl.key.password") {
            return Err(ConfigError::Invalid {
                key: p.key,
                value: "(hidden)".into(),
                origin: p.origin,
                reason: "encrypted private keys are not read yet; give the key unencrypted (PKCS#8 or PKCS#1 PEM) and protect the file instead".into(),
            });
        }
        let trust_store =
            match (
                get("ssl.truststore.location"),
                get("ssl.truststore.certificates"),
            ) {
                (Some(location), None) => Some(TrustStore::File(PathBuf::from(&location.value))),
                (None, Some(certs)) => Some(TrustStore::Text(certs.value)),
                (Some(location), Some(_)) => return Err(invalid(
                    &location,
                    "give either ssl.truststore.location or ssl.truststore.certificates, not both"
                        .into(),
                )),
                (None, None) => None,
            };
        if trust_store.is_some() {
            pem_only(get("ssl.truststore.type"), "trust store")?;
        }
        let client_auth = match get("ssl.client.auth").map(|p| p.value) {
            Some(v) if v == "required" => ClientAuth::Required,
            Some(v) if v == "requested" => ClientAuth::Requested,
            _ => ClientAuth::None,
        };
        if client_auth != ClientAuth::None && trust_store.is_none() {
            return Err(refuse(
                "ssl.client.auth asks clients for certificates, so a trust store is needed: set ssl.truststore.location or ssl.truststore.certificates".into(),
            ));
        }
        let versions = get("ssl.enabled.protocols")
            .map(|p| list_items(&p.value))
            .unwrap_or_default()
            .iter()
            .map(|v| match v.as_str() {
                "TLSv1.2" => TlsVersion::V1_2,
                _ => TlsVersion::V1_3,
            })
            .collect();
        let cipher_suites = get("ssl.cipher.suites")
            .map(|p| list_items(&p.value))
            .unwrap_or_default();
        let verify_host = match get("ssl.endpoint.identification.algorithm") {
            Some(p) if p.value.is_empty() => false,
            Some(p) if p.value.eq_ignore_ascii_case("https") => true,
            Some(p) => return Err(invalid(&p, "expected https or nothing".into())),
            None => true,
        };
        let principal_rules = match get("ssl.principal.mapping.rules") {
            Some(p) => PrincipalRules::parse(&p.value).map_err(|reason| invalid(&p, reason))?,
            None => PrincipalRules::default(),
        };
        Ok(TlsSettings {
            principal_rules,
            verify_host,
            listener: listener.to_string(),
            key_store,
            trust_store,
            client_auth,
            versions,
            cipher_suites,
        })
    }
}

/// Gregor reads PEM stores only so far: JKS (Kafka's default type) and
/// PKCS12 are refused with how to convert them.
fn pem_only(store_type: Option<Property>, what: &str) -> Result<(), ConfigError> {
    match store_type {
        Some(p) if p.value != "PEM" => Err(invalid(
            &p,
            format!(
                "Gregor reads PEM {what}s only so far: set it to PEM and convert the store (e.g. `openssl pkcs12 -in store.p12 -nodes`)"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(lines: &[(&str, &str)]) -> Values {
        Values::broker_for_tests(lines)
    }

    #[test]
    fn a_listener_takes_its_own_settings_over_the_plain_ones() {
        let v = values(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/all.pem"),
            (
                "listener.name.external.ssl.keystore.location",
                "/external.pem",
            ),
            ("listener.name.external.ssl.client.auth", "requested"),
            ("listener.name.external.ssl.truststore.type", "PEM"),
            ("listener.name.external.ssl.truststore.location", "/ca.pem"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ]);
        let external = TlsSettings::for_listener(&v, "EXTERNAL").expect("external");
        assert_eq!(external.key_store, KeyStore::File("/external.pem".into()));
        assert_eq!(external.client_auth, ClientAuth::Requested);
        assert_eq!(
            external.trust_store,
            Some(TrustStore::File("/ca.pem".into()))
        );
        assert_eq!(external.versions, [TlsVersion::V1_3]);
        let internal = TlsSettings::for_listener(&v, "INTERNAL").expect("internal");
        assert_eq!(internal.key_store, KeyStore::File("/all.pem".into()));
        assert_eq!(internal.client_auth, ClientAuth::None);
        assert_eq!(internal.trust_store, None);
    }

    #[test]
    fn incomplete_or_unreadable_stores_are_refused_with_the_reason() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ssl.keystore.type", "PEM")], "needs a key store"),
            (
                &[("ssl.keystore.location", "/k.pem")],
                "PEM key stores only",
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.certificate.chain", "x"),
                ],
                "go together",
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.client.auth", "required"),
                ],
                "a trust store is needed",
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.key.password", "s3cret"),
                ],
                "encrypted private keys",
            ),
        ];
        for (lines, want) in cases {
            let err = TlsSettings::for_listener(&values(lines), "SSL")
                .expect_err("refused")
                .to_string();
            assert!(err.contains(want), "{lines:?}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn a_private_key_is_never_shown() {
        let v = values(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", "chain"),
            ("ssl.keystore.key", "very-secret-key"),
        ]);
        let s = TlsSettings::for_listener(&v, "SSL").expect("settings");
        assert!(!format!("{s:?}").contains("very-secret-key"));
    }
}
