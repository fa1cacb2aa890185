//! A listener's TLS settings: Kafka's `ssl.*` keys, each of which may also
//! be given for one listener as `listener.name.<listener>.ssl.*`. This
//! decides what the key store, trust store and handshake must be; reading
//! the files and building the TLS configuration is
//! [`crate::security::tls`]'s work.
//!
//! Store types, as Kafka takes them:
//! - `PEM`: a file (`ssl.*.location`) or text in the settings; a PEM store
//!   has no password of its own, so `ssl.keystore.password` and
//!   `ssl.truststore.password` are refused with it, as Kafka refuses them.
//!   `ssl.key.password` decrypts an `ENCRYPTED PRIVATE KEY` (PKCS#8) and is
//!   refused with a key that is not encrypted.
//! - `PKCS12`: a file with its `ssl.keystore.password`, required as Kafka
//!   requires it. `ssl.key.password`, when given, must be the store's
//!   password: keytool and openssl encrypt the key with the store's
//!   password, and the PKCS12 reader opens a store with one password.
//!   A PKCS12 trust store may go without `ssl.truststore.password`; Java
//!   then skips the integrity check and reads the certificates that are not
//!   encrypted, while Gregor reads such a store only when it has no
//!   integrity check (MAC) and no encryption at all (the PKCS12 reader
//!   always checks a MAC it finds), and otherwise asks for the password.
//!   Java's keytool encrypts trust store certificates by default, so Java
//!   would find no certificate in such a store without the password either.
//! - `JKS`, Kafka's default type, is refused with the `keytool` command
//!   that converts a JKS store to PKCS12.

use std::fmt;
use std::path::{Path, PathBuf};

use super::properties::Property;
use super::setting::list_items;
use super::values::Values;
use super::{invalid, ConfigError};
use crate::security::principal::PrincipalRules;

/// Text that must never be shown (a private key, a password): `Debug`
/// hides it.
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
    /// One PEM file holding the key and the chain (`ssl.keystore.type=PEM`
    /// with `ssl.keystore.location`).
    PemFile {
        /// The file.
        path: PathBuf,
        /// `ssl.key.password`, for an encrypted private key.
        key_password: Option<Secret>,
    },
    /// PEM text in the settings (`ssl.keystore.certificate.chain` and
    /// `ssl.keystore.key`).
    PemText {
        /// The certificate chain, leaf first.
        chain: String,
        /// The private key.
        key: Secret,
        /// `ssl.key.password`, for an encrypted private key.
        key_password: Option<Secret>,
    },
    /// A PKCS12 file (`ssl.keystore.type=PKCS12` with
    /// `ssl.keystore.location` and `ssl.keystore.password`).
    Pkcs12 {
        /// The file.
        path: PathBuf,
        /// The store's password, which also opens its key.
        password: Secret,
    },
}

impl KeyStore {
    /// The file the store is read from, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            KeyStore::PemFile { path, .. } | KeyStore::Pkcs12 { path, .. } => Some(path),
            KeyStore::PemText { .. } => None,
        }
    }
}

/// Where the trusted certificate authorities come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustStore {
    /// A PEM file of certificates (`ssl.truststore.type=PEM` with
    /// `ssl.truststore.location`).
    PemFile(PathBuf),
    /// PEM text in the settings (`ssl.truststore.certificates`).
    PemText(String),
    /// A PKCS12 file (`ssl.truststore.type=PKCS12` with
    /// `ssl.truststore.location`).
    Pkcs12 {
        /// The file.
        path: PathBuf,
        /// `ssl.truststore.password`; without it only a store with no
        /// integrity check and no encryption can be read.
        password: Option<Secret>,
    },
}

impl TrustStore {
    /// The file the store is read from, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            TrustStore::PemFile(path) | TrustStore::Pkcs12 { path, .. } => Some(path),
            TrustStore::PemText(_) => None,
        }
    }
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
        let key_store = key_store(&get, &refuse)?;
        let trust_store = trust_store(&get)?;
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

/// The store types Gregor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

/// The type `ssl.keystore.type` or `ssl.truststore.type` gives; JKS
/// (Kafka's default) is refused with the command that converts the store.
fn store_type(p: Option<Property>, location: Option<&Property>) -> Result<StoreType, ConfigError> {
    let Some(p) = p else {
        // Unreachable while the table declares a default; PEM is what
        // Gregor read before it knew the others.
        return Ok(StoreType::Pem);
    };
    match p.value.as_str() {
        "PEM" => Ok(StoreType::Pem),
        "PKCS12" => Ok(StoreType::Pkcs12),
        _ => {
            let from = location.map_or("store.jks", |l| l.value.as_str());
            let default = if p.origin == "default" {
                " (Kafka's default type)"
            } else {
                ""
            };
            Err(invalid(
                &p,
                format!(
                    "Gregor does not read JKS stores{default}: convert it to PKCS12 with `keytool -importkeystore -srckeystore {from} -srcstoretype JKS -destkeystore {to} -deststoretype PKCS12` and set {key}=PKCS12 (or give PEM with {key}=PEM)",
                    to = p12_name(from),
                    key = p.key,
                ),
            ))
        }
    }
}

/// Where `keytool` should write the PKCS12 copy of the JKS store `from`.
fn p12_name(from: &str) -> String {
    match from.strip_suffix(".jks") {
        Some(stem) => format!("{stem}.p12"),
        None => format!("{from}.p12"),
    }
}

/// The key store `get` (the listener's settings) describes.
fn key_store(
    get: &dyn Fn(&str) -> Option<Property>,
    refuse: &dyn Fn(String) -> ConfigError,
) -> Result<KeyStore, ConfigError> {
    let location = get("ssl.keystore.location");
    let chain = get("ssl.keystore.certificate.chain");
    let key = get("ssl.keystore.key");
    let password = get("ssl.keystore.password");
    let key_password = get("ssl.key.password");
    if location.is_none() && chain.is_none() && key.is_none() {
        return Err(refuse(
            "an SSL listener needs a key store: set ssl.keystore.type=PKCS12 with ssl.keystore.location and ssl.keystore.password, or ssl.keystore.type=PEM with ssl.keystore.location (a PEM file of the key and certificate chain) or with ssl.keystore.certificate.chain and ssl.keystore.key".into(),
        ));
    }
    match store_type(get("ssl.keystore.type"), location.as_ref())? {
        StoreType::Pem => {
            if let Some(p) = password {
                return Err(invalid_secret(
                    &p,
                    "a PEM key store has no password of its own (as in Kafka): leave it out, and set ssl.key.password if the private key is encrypted".into(),
                ));
            }
            let key_password = key_password.map(|p| Secret(p.value));
            match (location, chain, key) {
                (Some(location), None, None) => Ok(KeyStore::PemFile {
                    path: PathBuf::from(&location.value),
                    key_password,
                }),
                (None, Some(chain), Some(key)) => Ok(KeyStore::PemText {
                    chain: chain.value,
                    key: Secret(key.value),
                    key_password,
                }),
                (Some(location), _, _) => Err(invalid(
                    &location,
                    "give either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both".into(),
                )),
                _ => Err(refuse(
                    "ssl.keystore.certificate.chain and ssl.keystore.key go together".into(),
                )),
            }
        }
        StoreType::Pkcs12 => {
            if let Some(text) = chain.or(key) {
                return Err(invalid_shown_as(
                    &text,
                    "(PEM text)",
                    "PEM text needs ssl.keystore.type=PEM; a PKCS12 key store is a file, given by ssl.keystore.location".into(),
                ));
            }
            let Some(location) = location else {
                return Err(refuse(
                    "a PKCS12 key store needs ssl.keystore.location".into(),
                ));
            };
            let Some(password) = password else {
                return Err(refuse(format!(
                    "the PKCS12 key store {} needs its password: set ssl.keystore.password",
                    location.value
                )));
            };
            if let Some(k) = key_password.filter(|k| k.value != password.value) {
                return Err(invalid_secret(
                    &k,
                    "it differs from ssl.keystore.password, and Gregor reads PKCS12 key stores whose key is encrypted with the store's password (as keytool and openssl write them): leave ssl.key.password out or make it the store's password".into(),
                ));
            }
            Ok(KeyStore::Pkcs12 {
                path: PathBuf::from(&location.value),
                password: Secret(password.value),
            })
        }
    }
}

/// The trust store `get` (the listener's settings) describes, if any.
fn trust_store(get: &dyn Fn(&str) -> Option<Property>) -> Result<Option<TrustStore>, ConfigError> {
    let location = get("ssl.truststore.location");
    let certificates = get("ssl.truststore.certificates");
    let password = get("ssl.truststore.password");
    if location.is_none() && certificates.is_none() {
        // A password with no store opens nothing; it may be given for
        // every listener while only some have a trust store.
        return Ok(None);
    }
    match store_type(get("ssl.truststore.type"), location.as_ref())? {
        StoreType::Pem => {
            if let Some(p) = password {
                return Err(invalid_secret(
                    &p,
                    "a PEM trust store has no password (as in Kafka): leave it out".into(),
                ));
            }
            match (location, certificates) {
                (Some(location), None) => Ok(Some(TrustStore::PemFile(PathBuf::from(
                    &location.value,
                )))),
                (None, Some(certs)) => Ok(Some(TrustStore::PemText(certs.value))),
                (Some(location), Some(_)) => Err(invalid(
                    &location,
                    "give either ssl.truststore.location or ssl.truststore.certificates, not both"
                        .into(),
                )),
                (None, None) => Ok(None),
            }
        }
        StoreType::Pkcs12 => match (location, certificates) {
            (Some(location), None) => Ok(Some(TrustStore::Pkcs12 {
                path: PathBuf::from(&location.value),
                password: password.map(|p| Secret(p.value)),
            })),
            (_, Some(certs)) => Err(invalid_shown_as(
                &certs,
                "(PEM text)",
                "PEM text needs ssl.truststore.type=PEM; a PKCS12 trust store is a file, given by ssl.truststore.location".into(),
            )),
            (None, None) => Ok(None),
        },
    }
}

/// `invalid` for a password, whose value must not be shown.
fn invalid_secret(p: &Property, reason: String) -> ConfigError {
    invalid_shown_as(p, "(hidden)", reason)
}

/// `invalid` with `shown` in place of the value: a secret, or PEM text
/// too long to be worth repeating.
fn invalid_shown_as(p: &Property, shown: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: p.key.clone(),
        value: shown.into(),
        origin: p.origin.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings as `key=value` pairs.
    type Lines = &'static [(&'static str, &'static str)];

    fn values(lines: &[(&str, &str)]) -> Values {
        Values::broker_for_tests(lines)
    }

    fn pem_file(path: &str) -> KeyStore {
        KeyStore::PemFile {
            path: path.into(),
            key_password: None,
        }
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
        assert_eq!(external.key_store, pem_file("/external.pem"));
        assert_eq!(external.client_auth, ClientAuth::Requested);
        assert_eq!(
            external.trust_store,
            Some(TrustStore::PemFile("/ca.pem".into()))
        );
        assert_eq!(external.versions, [TlsVersion::V1_3]);
        let internal = TlsSettings::for_listener(&v, "INTERNAL").expect("internal");
        assert_eq!(internal.key_store, pem_file("/all.pem"));
        assert_eq!(internal.client_auth, ClientAuth::None);
        assert_eq!(internal.trust_store, None);
    }

    #[test]
    fn stores_of_each_type_are_read_from_their_settings() {
        let secret = Secret::for_tests;
        let cases: &[(Lines, KeyStore, Option<TrustStore>)] = &[
            (
                &[
                    ("ssl.keystore.type", "PKCS12"),
                    ("ssl.keystore.location", "/k.p12"),
                    ("ssl.keystore.password", "store-pw"),
                    ("ssl.truststore.type", "PKCS12"),
                    ("ssl.truststore.location", "/t.p12"),
                    ("ssl.truststore.password", "trust-pw"),
                ],
                KeyStore::Pkcs12 {
                    path: "/k.p12".into(),
                    password: secret("store-pw"),
                },
                Some(TrustStore::Pkcs12 {
                    path: "/t.p12".into(),
                    password: Some(secret("trust-pw")),
                }),
            ),
            // Kafka's key password, when it is the store's.
            (
                &[
                    ("ssl.keystore.type", "PKCS12"),
                    ("ssl.keystore.location", "/k.p12"),
                    ("ssl.keystore.password", "pw"),
                    ("ssl.key.password", "pw"),
                    ("ssl.truststore.type", "PKCS12"),
                    ("ssl.truststore.location", "/t.p12"),
                ],
                KeyStore::Pkcs12 {
                    path: "/k.p12".into(),
                    password: secret("pw"),
                },
                Some(TrustStore::Pkcs12 {
                    path: "/t.p12".into(),
                    password: None,
                }),
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.key.password", "key-pw"),
                    ("ssl.truststore.type", "PEM"),
                    ("ssl.truststore.certificates", "CA"),
                ],
                KeyStore::PemFile {
                    path: "/k.pem".into(),
                    key_password: Some(secret("key-pw")),
                },
                Some(TrustStore::PemText("CA".into())),
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.certificate.chain", "chain"),
                    ("ssl.keystore.key", "key"),
                    // No trust store: the password opens nothing.
                    ("ssl.truststore.password", "unused"),
                ],
                KeyStore::PemText {
                    chain: "chain".into(),
                    key: secret("key"),
                    key_password: None,
                },
                None,
            ),
        ];
        for (lines, key_store, trust_store) in cases {
            let s = TlsSettings::for_listener(&values(lines), "SSL").expect("accepted");
            assert_eq!(&s.key_store, key_store, "{lines:?}");
            assert_eq!(&s.trust_store, trust_store, "{lines:?}");
        }
    }

    #[test]
    fn incomplete_or_unreadable_stores_are_refused_with_the_reason() {
        let cases: &[(Lines, &[&str])] = &[
            (&[("ssl.keystore.type", "PEM")], &["needs a key store"]),
            (
                &[("ssl.keystore.type", "PKCS12")],
                &["needs a key store", "ssl.keystore.password"],
            ),
            // JKS, Kafka's default, with the command that converts it.
            (
                &[("ssl.keystore.location", "/stores/k.jks")],
                &[
                    "ssl.keystore.type",
                    "(from default)",
                    "Kafka's default type",
                    "keytool -importkeystore -srckeystore /stores/k.jks -srcstoretype JKS -destkeystore /stores/k.p12 -deststoretype PKCS12",
                ],
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.truststore.type", "JKS"),
                    ("ssl.truststore.location", "/t"),
                ],
                &["`ssl.truststore.type`", "-srckeystore /t ", "/t.p12"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.certificate.chain", "x"),
                ],
                &["go together"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.client.auth", "required"),
                ],
                &["a trust store is needed"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.keystore.password", "s3cret"),
                ],
                &["`ssl.keystore.password`", "no password of its own"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.truststore.type", "PEM"),
                    ("ssl.truststore.location", "/t.pem"),
                    ("ssl.truststore.password", "s3cret"),
                ],
                &["`ssl.truststore.password`", "no password"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PKCS12"),
                    ("ssl.keystore.location", "/k.p12"),
                ],
                &["/k.p12", "set ssl.keystore.password"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PKCS12"),
                    ("ssl.keystore.location", "/k.p12"),
                    ("ssl.keystore.password", "s3cret"),
                    ("ssl.key.password", "s3cret-too"),
                ],
                &["`ssl.key.password`", "differs from ssl.keystore.password"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PKCS12"),
                    ("ssl.keystore.certificate.chain", "x"),
                    ("ssl.keystore.key", "s3cret"),
                ],
                &["ssl.keystore.type=PEM", "ssl.keystore.location"],
            ),
            (
                &[
                    ("ssl.keystore.type", "PKCS12"),
                    ("ssl.keystore.location", "/k.p12"),
                    ("ssl.keystore.password", "s3cret"),
                    ("ssl.truststore.type", "PKCS12"),
                    ("ssl.truststore.certificates", "CA"),
                ],
                &["`ssl.truststore.certificates`", "ssl.truststore.location"],
            ),
        ];
        for (lines, want) in cases {
            let err = TlsSettings::for_listener(&values(lines), "SSL")
                .expect_err("refused")
                .to_string();
            for w in *want {
                assert!(err.contains(w), "{lines:?}: {err}");
            }
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn passwords_and_private_keys_are_never_shown() {
        let cases: &[Lines] = &[
            &[
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.certificate.chain", "chain"),
                ("ssl.keystore.key", "very-secret-key"),
                ("ssl.key.password", "very-secret-password"),
            ],
            &[
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.location", "/k.p12"),
                ("ssl.keystore.password", "very-secret-password"),
                ("ssl.truststore.type", "PKCS12"),
                ("ssl.truststore.location", "/t.p12"),
                ("ssl.truststore.password", "very-secret-trust"),
            ],
        ];
        for lines in cases {
            let s = TlsSettings::for_listener(&values(lines), "SSL").expect("settings");
            let shown = format!("{s:?}");
            assert!(!shown.contains("very-secret"), "{shown}");
        }
    }
}
