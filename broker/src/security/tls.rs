//! TLS for the SSL listeners (rustls, with the ring provider): the server
//! configuration built from a listener's settings, the client configuration
//! a node uses to reach the others on an SSL inter-broker or controller
//! listener, the principal a client certificate names, and renewal: when
//! the key store or trust store files change on disk, new connections (in
//! and out) get the new certificates, with no restart (Kubernetes rewrites
//! mounted Secrets in place when they are renewed). Reading the stores,
//! PEM or PKCS12, is [`crate::security::store`]'s work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::tls::{ClientAuth, TlsSettings, TlsVersion, TrustStore};
use crate::security::store::{self, KeyPair, StoreError};

/// How often the key and trust store files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(10);

/// Why a listener's TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key store or trust store cannot be read or used.
    #[error("listener {listener}: {source}")]
    Store {
        /// The listener.
        listener: String,
        /// Which store, and what is wrong with it.
        source: StoreError,
    },
    /// A node that dials others on the listener has no trust store to
    /// check their certificates with.
    #[error("listener {listener}: nodes reaching each other over SSL (the inter-broker and controller listeners) verify each other's certificates: set ssl.truststore.location or ssl.truststore.certificates")]
    NoTrustStore {
        /// The listener.
        listener: String,
    },
    /// A cipher suite name that Gregor does not offer.
    #[error("listener {listener}: ssl.cipher.suites: unknown or unsupported suite {name}; Gregor offers {offered}")]
    CipherSuite {
        /// The listener.
        listener: String,
        /// The name given.
        name: String,
        /// The names Gregor knows.
        offered: String,
    },
    /// rustls refused the combination (suites that fit none of the
    /// versions, a key that does not match the certificate, ...).
    #[error("listener {listener}: {reason}")]
    Refused {
        /// The listener.
        listener: String,
        /// rustls's reason.
        reason: String,
    },
}

/// A listener's TLS configuration as it stands, renewed when its files
/// change.
#[derive(Debug)]
pub struct ListenerTls {
    settings: TlsSettings,
    current: RwLock<Configs>,
    /// Whether this node also connects to others on this listener.
    dials: bool,
    stamps: Mutex<Vec<Stamp>>,
}

/// The configurations built from one reading of the stores.
#[derive(Debug)]
struct Configs {
    server: Arc<ServerConfig>,
    client: Option<Arc<ClientConfig>>,
}

impl ListenerTls {
    /// Reads the stores and builds the configuration, with the client side
    /// too when this node `dials` others on the listener (the inter-broker
    /// and controller listeners); any error stops the node from starting
    /// with the reason.
    pub fn load(settings: TlsSettings, dials: bool) -> Result<ListenerTls, TlsError> {
        let stamps = stamps(&settings);
        let configs = configs(&settings, dials)?;
        Ok(ListenerTls {
            settings,
            current: RwLock::new(configs),
            dials,
            stamps: Mutex::new(stamps),
        })
    }

    /// The listener's name.
    pub fn listener(&self) -> &str {
        &self.settings.listener
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let configs = self.current.read().unwrap_or_else(|e| e.into_inner());
        tokio_rustls::TlsAcceptor::from(configs.server.clone())
    }

    /// The client configuration in force now, for connecting to another
    /// node on this listener; `None` unless loaded to dial.
    pub fn client(&self) -> Option<Arc<ClientConfig>> {
        let configs = self.current.read().unwrap_or_else(|e| e.into_inner());
        configs.client.clone()
    }

    /// The principal of a client certificate: its subject through the
    /// listener's `ssl.principal.mapping.rules`; the reason when none
    /// applies.
    pub fn principal(&self, der: &[u8]) -> Result<String, String> {
        let subject = crate::security::principal::subject_name(der)
            .ok_or("the client certificate's subject does not parse")?;
        match self.settings.principal_rules.apply(&subject) {
            Some(user) => Ok(format!("User:{user}")),
            None => Err(format!(
                "no ssl.principal.mapping.rules rule applies to the certificate subject {subject}"
            )),
        }
    }

    /// Rebuilds the configuration when a store file changed since the last
    /// look. `Ok(true)` when it was renewed; on an error the configuration
    /// in force stays, and the same files are not tried again until they
    /// change once more.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.settings);
        {
            let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let configs = configs(&self.settings, self.dials)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
        Ok(true)
    }
}

fn configs(settings: &TlsSettings, dials: bool) -> Result<Configs, TlsError> {
    Ok(Configs {
        server: Arc::new(server_config(settings)?),
        client: match dials {
            true => Some(Arc::new(client_config(settings)?)),
            false => None,
        },
    })
}

/// Loads every SSL listener's configuration, by listener name; the
/// inter-broker and controller listeners' with their client side.
pub fn load_listeners(
    config: &crate::config::BrokerConfig,
) -> Result<BTreeMap<String, Arc<ListenerTls>>, TlsError> {
    config
        .tls
        .iter()
        .map(|(name, settings)| {
            let dials = *name == config.inter_broker_listener
                || Some(name) == config.controller_listener.as_ref();
            Ok((
                name.clone(),
                Arc::new(ListenerTls::load(settings.clone(), dials)?),
            ))
        })
        .collect()
}

/// Checks every SSL listener's files every [`RELOAD_CHECK`], forever.
pub async fn watch(listeners: Vec<Arc<ListenerTls>>) {
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for l in &listeners {
            match l.reload_if_changed() {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(
                        listener = l.listener(),
                        "TLS certificates renewed from disk"
                    )
                }
                Err(e) => tracing::warn!(
                    listener = l.listener(),
                    error = %e,
                    "TLS stores changed but cannot be used; keeping the previous certificates"
                ),
            }
        }
    }
}

/// The client side of `settings`' listener, for a node reaching another
/// on it: the other node's certificate must chain to the trust store
/// (and name its host, unless host checks are off), and this node
/// presents its own certificate, so a listener with
/// `ssl.client.auth=required` accepts it.
fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    let provider = provider(settings)?;
    let roots = match &settings.trust_store {
        Some(t) => trust_roots(settings, t)?,
        None => {
            return Err(TlsError::NoTrustStore {
                listener: settings.listener.clone(),
            })
        }
    };
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| refused(settings, e))?;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = if settings.verify_host {
        verifier
    } else {
        Arc::new(AnyName(verifier))
    };
    let KeyPair { chain, key } = key_pair(settings)?;
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(settings))
        .map_err(|e| refused(settings, e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| refused(settings, e))
}

fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let provider = provider(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings))
        .map_err(|e| refused(settings, e))?;
    let builder = match (&settings.trust_store, settings.client_auth) {
        (Some(t), auth) if auth != ClientAuth::None => {
            let roots = Arc::new(trust_roots(settings, t)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| refused(settings, e))?)
        }
        _ => builder.with_no_client_auth(),
    };
    let KeyPair { chain, key } = key_pair(settings)?;
    builder
        .with_single_cert(chain, key)
        .map_err(|e| refused(settings, e))
}

/// ring's suites, narrowed to `ssl.cipher.suites` when it names any.
fn provider(settings: &TlsSettings) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        let all = provider.cipher_suites.clone();
        let mut chosen = Vec::new();
        for name in &settings.cipher_suites {
            match all.iter().find(|s| iana_name(s) == *name) {
                Some(s) => chosen.push(*s),
                None => {
                    return Err(TlsError::CipherSuite {
                        listener: settings.listener.clone(),
                        name: name.clone(),
                        offered: all.iter().map(iana_name).collect::<Vec<_>>().join(", "),
                    })
                }
            }
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

/// A suite's IANA name, as Java and `ssl.cipher.suites` write it (rustls
/// prefixes the TLS 1.3 ones `TLS13_`).
fn iana_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn versions(settings: &TlsSettings) -> Vec<&'static SupportedProtocolVersion> {
    settings
        .versions
        .iter()
        .map(|v| match v {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        })
        .collect()
}

fn key_pair(settings: &TlsSettings) -> Result<KeyPair, TlsError> {
    store::key_pair(&settings.key_store).map_err(|source| store_error(settings, source))
}

fn trust_roots(settings: &TlsSettings, trust: &TrustStore) -> Result<RootCertStore, TlsError> {
    store::trust_roots(trust).map_err(|source| store_error(settings, source))
}

fn store_error(settings: &TlsSettings, source: StoreError) -> TlsError {
    TlsError::Store {
        listener: settings.listener.clone(),
        source,
    }
}

fn refused(settings: &TlsSettings, e: impl std::fmt::Display) -> TlsError {
    TlsError::Refused {
        listener: settings.listener.clone(),
        reason: e.to_string(),
    }
}

/// What a store file held at the last look (a checksum of its bytes;
/// `None` when unreadable). Its contents, not its time: file times are
/// coarse, and a renewal may keep the length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    checksum: Option<u32>,
}

fn stamps(settings: &TlsSettings) -> Vec<Stamp> {
    let key = settings.key_store.file();
    let trust = settings.trust_store.as_ref().and_then(TrustStore::file);
    key.into_iter()
        .chain(trust)
        .map(|path| Stamp {
            path: path.to_path_buf(),
            // Follows symbolic links: a mounted Secret is renewed by
            // pointing its link at a new file.
            checksum: std::fs::read(path).ok().map(|b| crc32c::crc32c(&b)),
        })
        .collect()
}

/// Verifies the chain but not the host name
/// (`ssl.endpoint.identification.algorithm` empty).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;

    use super::*;
    use crate::config::tls::{KeyStore, Secret};

    /// A certificate authority that signs leaf certificates.
    struct Authority(CertifiedIssuer<'static, KeyPair>);

    /// A PEM certificate chain and its key.
    struct Leaf {
        chain: String,
        key: String,
    }

    impl Authority {
        fn new() -> Authority {
            let mut params = CertificateParams::new(Vec::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().expect("key");
            Authority(CertifiedIssuer::self_signed(params, key).expect("CA"))
        }

        fn pem(&self) -> String {
            self.0.pem()
        }

        fn sign(&self, name: &str) -> Leaf {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(vec![name.to_string()])
                .expect("params")
                .signed_by(&key, &self.0)
                .expect("signed");
            Leaf {
                chain: cert.pem(),
                key: key.serialize_pem(),
            }
        }
    }

    fn settings(leaf: &Leaf, trust: Option<&Authority>, auth: ClientAuth) -> TlsSettings {
        TlsSettings {
            listener: "SSL".into(),
            key_store: KeyStore::PemText {
                chain: leaf.chain.clone(),
                key: Secret::for_tests(&leaf.key),
                key_password: None,
            },
            trust_store: trust.map(|a| TrustStore::PemText(a.pem())),
            client_auth: auth,
            versions: vec![TlsVersion::V1_2, TlsVersion::V1_3],
            cipher_suites: Vec::new(),
            verify_host: true,
            principal_rules: Default::default(),
        }
    }

    const PASSWORD: &str = "store-secret";

    /// How a PKCS12 store is protected: as keytool and OpenSSL 3 do it
    /// (PBES2 with AES-256, HMAC-SHA-256), or as JDK 8 and OpenSSL 1.x
    /// did (3DES, HMAC-SHA-1).
    #[derive(Debug, Clone, Copy)]
    enum Protection {
        Modern,
        Legacy,
    }

    fn der_certificates(pem: &str) -> Vec<p12_keystore::Certificate> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| p12_keystore::Certificate::from_der(&c.expect("PEM")).expect("X.509"))
            .collect()
    }

    fn write_pkcs12(store: p12_keystore::KeyStore, password: &str, how: Protection) -> Vec<u8> {
        let writer = store.writer(password);
        let writer = match how {
            Protection::Modern => writer,
            Protection::Legacy => writer
                .encryption_algorithm(
                    p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
                )
                .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1),
        };
        writer.write().expect("PKCS12 written")
    }

    /// A PKCS12 key store of `leaves`, each key under its alias.
    fn pkcs12_key_store(leaves: &[(&str, &Leaf)], password: &str, how: Protection) -> Vec<u8> {
        let mut store = p12_keystore::KeyStore::new();
        for (alias, leaf) in leaves {
            let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
            let key = p12_keystore::PrivateKey::from_der(key.secret_der()).expect("PKCS#8");
            let chain = p12_keystore::PrivateKeyChain::new(
                alias.as_bytes(),
                key,
                der_certificates(&leaf.chain),
            );
            store.add_entry(alias, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        }
        write_pkcs12(store, password, how)
    }

    /// A PKCS12 trust store of `authorities`' certificates.
    fn pkcs12_trust_store(authorities: &[&Authority], password: &str, how: Protection) -> Vec<u8> {
        let mut store = p12_keystore::KeyStore::new();
        for (i, ca) in authorities.iter().enumerate() {
            for cert in der_certificates(&ca.pem()) {
                store.add_entry(
                    &format!("ca-{i}"),
                    p12_keystore::KeyStoreEntry::Certificate(cert),
                );
            }
        }
        write_pkcs12(store, password, how)
    }

    /// `leaf`'s key as an ENCRYPTED PRIVATE KEY (PKCS#8, PBES2 with
    /// PBKDF2-SHA-256 and AES-256-CBC, as `openssl pkcs8 -topk8` writes).
    fn encrypted_key(leaf: &Leaf, password: &str) -> String {
        use base64::Engine as _;
        let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
        let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
            2048,
            b"salt-for-tests",
            [7; 16],
        )
        .expect("parameters");
        let encrypted = pkcs8::PrivateKeyInfoRef::try_from(key.secret_der())
            .expect("PKCS#8")
            .encrypt_with_params(params, password)
            .expect("encrypted");
        let base64 = base64::engine::general_purpose::STANDARD.encode(encrypted.as_bytes());
        let lines: Vec<&str> = base64
            .as_bytes()
            .chunks(64)
            .map(|l| std::str::from_utf8(l).expect("ASCII"))
            .collect();
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// A TLS handshake and one byte each way, in memory, connecting to
    /// `name`; the error of whichever side failed.
    async fn handshake(
        server: &ListenerTls,
        client: ClientConfig,
        name: &str,
    ) -> Result<(), String> {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = server.acceptor();
        let server = async move {
            let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
            let mut byte = [0u8];
            s.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            s.write_all(&byte).await.map_err(|e| e.to_string())?;
            s.flush().await.map_err(|e| e.to_string())
        };
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
        let client = async move {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
            let mut c = connector
                .connect(name, b)
                .await
                .map_err(|e| e.to_string())?;
            c.write_all(b"x").await.map_err(|e| e.to_string())?;
            c.flush().await.map_err(|e| e.to_string())?;
            let mut byte = [0u8];
            c.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        };
        let (s, c) = tokio::join!(server, client);
        s.and(c)
    }

    #[tokio::test]
    async fn clients_are_let_in_as_ssl_client_auth_says() {
        let ca = Authority::new();
        let stranger = Authority::new();
        let broker = ca.sign("localhost");
        // Client side: the broker's own client config trusts `ca` and
        // presents `cert`.
        let client = |cert: Option<&Leaf>| {
            let mut s = settings(&broker, Some(&ca), ClientAuth::None);
            if let Some(c) = cert {
                s.key_store = KeyStore::PemText {
                    chain: c.chain.clone(),
                    key: Secret::for_tests(&c.key),
                    key_password: None,
                };
                client_config(&s).expect("client")
            } else {
                let roots = trust_roots(&s, &TrustStore::PemText(ca.pem())).expect("roots");
                ClientConfig::builder_with_provider(provider(&s).expect("provider"))
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
        };
        let trusted = ca.sign("alice");
        let untrusted = stranger.sign("mallory");
        let cases = [
            (ClientAuth::Required, Some(&trusted), true),
            (ClientAuth::Required, Some(&untrusted), false),
            (ClientAuth::Required, None, false),
            (ClientAuth::Requested, Some(&trusted), true),
            (ClientAuth::Requested, Some(&untrusted), false),
            (ClientAuth::Requested, None, true),
            (ClientAuth::None, Some(&trusted), true),
            (ClientAuth::None, None, true),
        ];
        for (auth, cert, admitted) in cases {
            let server =
                ListenerTls::load(settings(&broker, Some(&ca), auth), false).expect("server");
            let outcome = handshake(&server, client(cert), "localhost").await;
            assert_eq!(
                outcome.is_ok(),
                admitted,
                "{auth:?} with {:?}: {outcome:?}",
                cert.map(|c| &c.chain[..40])
            );
        }
    }

    #[tokio::test]
    async fn a_broker_checks_the_host_name_unless_told_not_to() {
        let ca = Authority::new();
        let broker = ca.sign("broker-1.example");
        let server =
            ListenerTls::load(settings(&broker, None, ClientAuth::None), false).expect("server");
        let mut s = settings(&broker, Some(&ca), ClientAuth::None);
        let checked = handshake(&server, client_config(&s).expect("client"), "localhost").await;
        assert!(checked.is_err(), "a certificate for another host passed");
        assert!(handshake(
            &server,
            client_config(&s).expect("client"),
            "broker-1.example"
        )
        .await
        .is_ok());
        s.verify_host = false;
        let unchecked = handshake(&server, client_config(&s).expect("client"), "localhost").await;
        assert!(unchecked.is_ok(), "{unchecked:?}");
        // Not checking the name still checks the chain.
        let stranger = Authority::new();
        s.trust_store = Some(TrustStore::PemText(stranger.pem()));
        let untrusted = handshake(&server, client_config(&s).expect("client"), "localhost").await;
        assert!(untrusted.is_err(), "an untrusted chain passed");
    }

    #[test]
    fn cipher_suites_are_named_as_iana_does() {
        let ca = Authority::new();
        let broker = ca.sign("localhost");
        let mut s = settings(&broker, None, ClientAuth::None);
        s.cipher_suites = vec![
            "TLS_AES_256_GCM_SHA384".into(),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        ];
        let p = provider(&s).expect("known suites");
        assert_eq!(p.cipher_suites.len(), 2);
        s.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_MD5".into()];
        let err = provider(&s).expect_err("not offered").to_string();
        assert!(err.contains("TLS_RSA_WITH_RC4_128_MD5"), "{err}");
        assert!(err.contains("TLS_AES_128_GCM_SHA256"), "{err}");
        // A TLS 1.3 suite alone cannot serve a TLS 1.2-only listener.
        s.cipher_suites = vec!["TLS_AES_256_GCM_SHA384".into()];
        s.versions = vec![TlsVersion::V1_2];
        assert!(ListenerTls::load(s, false).is_err());
    }

    #[test]
    fn unusable_stores_are_refused_with_the_reason() {
        let ca = Authority::new();
        let broker = ca.sign("localhost");
        let other = ca.sign("localhost");
        let mismatched = Leaf {
            chain: broker.chain.clone(),
            key: other.key.clone(),
        };
        let no_key = Leaf {
            chain: broker.chain.clone(),
            key: broker.chain.clone(),
        };
        let no_cert = Leaf {
            chain: broker.key.clone(),
            key: broker.key.clone(),
        };
        for (leaf, want) in [
            (&mismatched, "key"),
            (&no_key, "no PRIVATE KEY"),
            (&no_cert, "no CERTIFICATE"),
        ] {
            let err = ListenerTls::load(settings(leaf, None, ClientAuth::None), false)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("BEGIN PRIVATE KEY"), "key material in {err}");
        }
        let mut s = settings(&broker, None, ClientAuth::None);
        s.key_store = KeyStore::PemFile {
            path: "/nonexistent/broker.pem".into(),
            key_password: None,
        };
        let err = ListenerTls::load(s, false)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("/nonexistent/broker.pem"), "{err}");
    }

    #[tokio::test]
    async fn pkcs12_stores_serve_mutual_tls_as_pem_ones_do() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = Authority::new();
        let stranger = Authority::new();
        for how in [Protection::Modern, Protection::Legacy] {
            let file = |name: &str, bytes: Vec<u8>| {
                let path = dir.path().join(format!("{name}-{how:?}.p12"));
                std::fs::write(&path, bytes).expect("write");
                path
            };
            let key_store = |name: &str, leaf: &Leaf| KeyStore::Pkcs12 {
                path: file(name, pkcs12_key_store(&[(name, leaf)], PASSWORD, how)),
                password: Secret::for_tests(PASSWORD),
            };
            // The broker trusts both authorities; the client only `ca`.
            let trust = TrustStore::Pkcs12 {
                path: file(
                    "trust",
                    pkcs12_trust_store(&[&stranger, &ca], PASSWORD, how),
                ),
                password: Some(Secret::for_tests(PASSWORD)),
            };
            let mut broker = settings(&ca.sign("localhost"), None, ClientAuth::Required);
            broker.key_store = key_store("broker", &ca.sign("localhost"));
            broker.trust_store = Some(trust);
            let server = ListenerTls::load(broker, false).expect("PKCS12 stores load");
            for (client, admitted) in [
                (ca.sign("alice"), true),
                (stranger.sign("bob"), true),
                (Authority::new().sign("mallory"), false),
            ] {
                let mut c = settings(&client, Some(&ca), ClientAuth::None);
                c.key_store = key_store("client", &client);
                c.trust_store = Some(TrustStore::Pkcs12 {
                    path: file("client-trust", pkcs12_trust_store(&[&ca], PASSWORD, how)),
                    password: Some(Secret::for_tests(PASSWORD)),
                });
                let outcome =
                    handshake(&server, client_config(&c).expect("client"), "localhost").await;
                assert_eq!(outcome.is_ok(), admitted, "{how:?}: {outcome:?}");
            }
        }
    }

    #[test]
    fn unusable_pkcs12_stores_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = Authority::new();
        let leaf = ca.sign("localhost");
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            path
        };
        let good = pkcs12_key_store(&[("broker", &leaf)], PASSWORD, Protection::Modern);
        let two = pkcs12_key_store(
            &[("first", &leaf), ("second", &ca.sign("other"))],
            PASSWORD,
            Protection::Modern,
        );
        let keyless = {
            let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
            let key = p12_keystore::PrivateKey::from_der(key.secret_der()).expect("PKCS#8");
            let mut store = p12_keystore::KeyStore::new();
            let chain = p12_keystore::PrivateKeyChain::new(b"lonely".as_slice(), key, Vec::new());
            store.add_entry(
                "lonely",
                p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
            );
            write_pkcs12(store, PASSWORD, Protection::Modern)
        };
        let trust = pkcs12_trust_store(&[&ca], PASSWORD, Protection::Modern);
        let key_store = |name: &str, bytes: &[u8], password: &str| KeyStore::Pkcs12 {
            path: file(name, bytes),
            password: Secret::for_tests(password),
        };
        let trust_store = |name: &str, bytes: &[u8], password: Option<&str>| TrustStore::Pkcs12 {
            path: file(name, bytes),
            password: password.map(Secret::for_tests),
        };
        let mut truncated = good.clone();
        truncated.truncate(good.len() / 2);
        let mut altered = good.clone();
        let middle = altered.len() / 2;
        altered[middle] ^= 0x55;
        let cases: Vec<(KeyStore, Option<TrustStore>, &[&str])> = vec![
            (
                key_store("wrong.p12", &good, "not-the-s3cret"),
                None,
                &["wrong.p12", "ssl.keystore.password does not open it"],
            ),
            (
                key_store("truncated.p12", &truncated, PASSWORD),
                None,
                &["truncated.p12", "not a PKCS12 store"],
            ),
            (
                key_store("altered.p12", &altered, PASSWORD),
                None,
                &["altered.p12"],
            ),
            (
                key_store("pem.p12", leaf.key.as_bytes(), PASSWORD),
                None,
                &["pem.p12", "not a PKCS12 store"],
            ),
            (
                key_store("trust-as-keys.p12", &trust, PASSWORD),
                None,
                &["trust-as-keys.p12", "no private key"],
            ),
            (
                key_store("two.p12", &two, PASSWORD),
                None,
                &[
                    "two.p12",
                    "2 private keys",
                    "first, second",
                    "keytool -delete",
                ],
            ),
            (
                key_store("keyless.p12", &keyless, PASSWORD),
                None,
                &["keyless.p12", "lonely", "no certificate chain"],
            ),
            (
                key_store("good.p12", &good, PASSWORD),
                Some(trust_store("trust.p12", &trust, None)),
                &["trust.p12", "set ssl.truststore.password"],
            ),
            (
                key_store("good.p12", &good, PASSWORD),
                Some(trust_store("trust.p12", &trust, Some("not-the-s3cret"))),
                &["trust.p12", "ssl.truststore.password does not open it"],
            ),
            (
                key_store("good.p12", &good, PASSWORD),
                Some(trust_store("keys-as-trust.p12", &keyless, Some(PASSWORD))),
                &["keys-as-trust.p12", "no certificate in it"],
            ),
            (
                key_store("good.p12", &good, PASSWORD),
                Some(TrustStore::Pkcs12 {
                    path: dir.path().join("missing.p12"),
                    password: None,
                }),
                &["cannot read the PKCS12 trust store", "missing.p12"],
            ),
        ];
        for (key_store, trust_store, want) in cases {
            let mut s = settings(&leaf, None, ClientAuth::Required);
            s.key_store = key_store;
            s.trust_store = trust_store;
            let err = ListenerTls::load(s, false)
                .expect_err("refused")
                .to_string();
            assert!(err.starts_with("listener SSL: "), "{err}");
            for w in want {
                assert!(err.contains(w), "{w:?} not in {err}");
            }
            assert!(!err.contains("s3cret"), "a password in {err}");
            assert!(!err.contains(PASSWORD), "a password in {err}");
        }
    }

    #[tokio::test]
    async fn an_encrypted_pem_key_opens_with_ssl_key_password() {
        let ca = Authority::new();
        let leaf = ca.sign("localhost");
        let encrypted = encrypted_key(&leaf, "key-s3cret");
        let traditional = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let cases: &[(&str, Option<&str>, Result<(), &str>)] = &[
            (&encrypted, Some("key-s3cret"), Ok(())),
            (
                &encrypted,
                Some("wrong"),
                Err("ssl.key.password does not decrypt"),
            ),
            (
                &encrypted,
                None,
                Err("encrypted (ENCRYPTED PRIVATE KEY): set ssl.key.password"),
            ),
            (
                &leaf.key,
                Some("key-s3cret"),
                Err("the private key is not encrypted"),
            ),
            (traditional, Some("key-s3cret"), Err("openssl pkcs8 -topk8")),
        ];
        let dir = tempfile::tempdir().expect("dir");
        for (i, (key, password, want)) in cases.iter().enumerate() {
            // Both ways a PEM key store is given: text, and a file.
            let path = dir.path().join(format!("key-{i}.pem"));
            std::fs::write(&path, format!("{key}{}", leaf.chain)).expect("write");
            let password = password.map(Secret::for_tests);
            let stores = [
                KeyStore::PemText {
                    chain: leaf.chain.clone(),
                    key: Secret::for_tests(key),
                    key_password: password.clone(),
                },
                KeyStore::PemFile {
                    path,
                    key_password: password,
                },
            ];
            for store in stores {
                let mut s = settings(&leaf, None, ClientAuth::None);
                s.key_store = store;
                match (ListenerTls::load(s, false), want) {
                    (Ok(server), Ok(())) => {
                        let client = settings(&leaf, Some(&ca), ClientAuth::None);
                        let client = client_config(&client).expect("client");
                        assert!(handshake(&server, client, "localhost").await.is_ok());
                    }
                    (Err(e), Err(want)) => {
                        let e = e.to_string();
                        assert!(e.contains(want), "{want:?} not in {e}");
                        assert!(!e.contains("s3cret"), "a password in {e}");
                    }
                    (outcome, _) => panic!("case {i}: {:?}", outcome.map(|_| ())),
                }
            }
        }
    }

    #[tokio::test]
    async fn renewed_files_are_served_without_a_restart() {
        for pkcs12 in [false, true] {
            let dir = tempfile::tempdir().expect("dir");
            let store = dir.path().join("broker.store");
            let old_ca = Authority::new();
            let write = |leaf: &Leaf| {
                // Renewal as Kubernetes does it: a new file moved into place.
                let next = dir.path().join("next.store");
                let bytes = match pkcs12 {
                    true => pkcs12_key_store(&[("broker", leaf)], PASSWORD, Protection::Modern),
                    false => format!("{}{}", leaf.key, leaf.chain).into_bytes(),
                };
                std::fs::write(&next, bytes).expect("write");
                std::fs::rename(&next, &store).expect("rename");
            };
            write(&old_ca.sign("localhost"));
            let mut s = settings(&old_ca.sign("localhost"), None, ClientAuth::None);
            s.key_store = match pkcs12 {
                true => KeyStore::Pkcs12 {
                    path: store.clone(),
                    password: Secret::for_tests(PASSWORD),
                },
                false => KeyStore::PemFile {
                    path: store.clone(),
                    key_password: None,
                },
            };
            let server = ListenerTls::load(s.clone(), false).expect("server");
            let client = settings(&old_ca.sign("client"), None, ClientAuth::None);
            let trusting = |ca: &Authority| {
                let mut c = client.clone();
                c.trust_store = Some(TrustStore::PemText(ca.pem()));
                client_config(&c).expect("client")
            };
            assert!(handshake(&server, trusting(&old_ca), "localhost")
                .await
                .is_ok());
            assert!(!server.reload_if_changed().expect("unchanged"));

            let new_ca = Authority::new();
            write(&new_ca.sign("localhost"));
            assert!(server.reload_if_changed().expect("renewed"), "{pkcs12}");
            assert!(handshake(&server, trusting(&new_ca), "localhost")
                .await
                .is_ok());
            assert!(handshake(&server, trusting(&old_ca), "localhost")
                .await
                .is_err());

            // A broken renewal keeps the certificate in force.
            std::fs::write(&store, "not a key store").expect("write");
            assert!(server.reload_if_changed().is_err());
            assert!(handshake(&server, trusting(&new_ca), "localhost")
                .await
                .is_ok());
        }
    }

    #[tokio::test]
    async fn a_dialing_listener_presents_its_renewed_certificate() {
        let dir = tempfile::tempdir().expect("dir");
        let store = dir.path().join("node.pem");
        let write = |leaf: &Leaf| {
            let next = dir.path().join("next.pem");
            std::fs::write(&next, format!("{}{}", leaf.key, leaf.chain)).expect("write");
            std::fs::rename(&next, &store).expect("rename");
        };
        let (old_ca, new_ca) = (Authority::new(), Authority::new());
        // The other node trusts only the new authority for its clients.
        let other = ListenerTls::load(
            settings(
                &old_ca.sign("localhost"),
                Some(&new_ca),
                ClientAuth::Required,
            ),
            false,
        )
        .expect("other");
        write(&old_ca.sign("localhost"));
        let mut s = settings(&old_ca.sign("localhost"), Some(&old_ca), ClientAuth::None);
        s.key_store = KeyStore::PemFile {
            path: store.clone(),
            key_password: None,
        };
        let me = ListenerTls::load(s, true).expect("dialing");
        let client = |tls: &ListenerTls| (*tls.client().expect("client side")).clone();
        assert!(handshake(&other, client(&me), "localhost").await.is_err());

        write(&new_ca.sign("localhost"));
        assert!(me.reload_if_changed().expect("renewed"));
        assert!(handshake(&other, client(&me), "localhost").await.is_ok());
        let listening_only =
            ListenerTls::load(settings(&old_ca.sign("x"), None, ClientAuth::None), false);
        assert!(listening_only.expect("loads").client().is_none());
    }
}
