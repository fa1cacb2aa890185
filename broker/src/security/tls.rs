//! TLS for the SSL listeners (rustls, with the ring provider): the server
//! configuration built from a listener's settings, the client configuration
//! a node uses to reach the others on an SSL inter-broker or controller
//! listener, the principal a client certificate names, and renewal: when
//! the key store or trust store files change on disk, new connections (in
//! and out) get the new certificates, with no restart (Kubernetes rewrites
//! mounted Secrets in place when they are renewed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::tls::{ClientAuth, KeyStore, TlsSettings, TlsVersion, TrustStore};

/// How often the key and trust store files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(10);

/// Why a listener's TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A store file cannot be read.
    #[error("listener {listener}: cannot read {path}: {source}")]
    Read {
        /// The listener.
        listener: String,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A store holds no usable PEM item of the kind needed.
    #[error("listener {listener}: {what}: {reason}")]
    Store {
        /// The listener.
        listener: String,
        /// Which store and where it comes from.
        what: String,
        /// What is missing or wrong.
        reason: String,
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
            return Err(store_error(
                settings,
                "trust store".into(),
                "nodes reaching each other over SSL (the inter-broker and controller listeners) verify each other's certificates: set ssl.truststore.location or ssl.truststore.certificates".into(),
            ))
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
    let (chain, key) = key_pair(settings)?;
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
    let (chain, key) = key_pair(settings)?;
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

fn key_pair(
    settings: &TlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (what, chain_pem, key_pem) = match &settings.key_store {
        KeyStore::File(path) => {
            let text = read(settings, path)?;
            (format!("key store {}", path.display()), text.clone(), text)
        }
        KeyStore::Text { chain, key } => (
            "ssl.keystore.certificate.chain / ssl.keystore.key".into(),
            chain.clone().into_bytes(),
            key.expose().as_bytes().to_vec(),
        ),
    };
    let chain = certificates(&chain_pem).map_err(|reason| {
        store_error(
            settings,
            what.clone(),
            format!("certificate chain: {reason}"),
        )
    })?;
    if chain.is_empty() {
        return Err(store_error(settings, what, "no CERTIFICATE in it".into()));
    }
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            let reason = if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED PRIVATE KEY") {
                "the private key is encrypted; Gregor reads unencrypted keys only so far"
            } else {
                "no PRIVATE KEY in it"
            };
            return Err(store_error(settings, what, reason.into()));
        }
        // The PEM error names no key material, only what is malformed.
        Err(e) => return Err(store_error(settings, what, format!("private key: {e}"))),
    };
    Ok((chain, key))
}

fn trust_roots(settings: &TlsSettings, store: &TrustStore) -> Result<RootCertStore, TlsError> {
    let (what, pem) = match store {
        TrustStore::File(path) => (
            format!("trust store {}", path.display()),
            read(settings, path)?,
        ),
        TrustStore::Text(text) => (
            "ssl.truststore.certificates".into(),
            text.clone().into_bytes(),
        ),
    };
    let certs = certificates(&pem).map_err(|reason| store_error(settings, what.clone(), reason))?;
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(store_error(
            settings,
            what,
            format!("no usable CERTIFICATE in it ({ignored} could not be parsed)"),
        ));
    }
    Ok(roots)
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn read(settings: &TlsSettings, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        listener: settings.listener.clone(),
        path: path.to_path_buf(),
        source,
    })
}

fn store_error(settings: &TlsSettings, what: String, reason: String) -> TlsError {
    TlsError::Store {
        listener: settings.listener.clone(),
        what,
        reason,
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
    let key = match &settings.key_store {
        KeyStore::File(p) => Some(p),
        KeyStore::Text { .. } => None,
    };
    let trust = match &settings.trust_store {
        Some(TrustStore::File(p)) => Some(p),
        _ => None,
    };
    key.into_iter()
        .chain(trust)
        .map(|path| Stamp {
            path: path.clone(),
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

    use super::*;
    use crate::config::tls::Secret;

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
            key_store: KeyStore::Text {
                chain: leaf.chain.clone(),
                key: Secret::for_tests(&leaf.key),
            },
            trust_store: trust.map(|a| TrustStore::Text(a.pem())),
            client_auth: auth,
            versions: vec![TlsVersion::V1_2, TlsVersion::V1_3],
            cipher_suites: Vec::new(),
            verify_host: true,
            principal_rules: Default::default(),
        }
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
                s.key_store = KeyStore::Text {
                    chain: c.chain.clone(),
                    key: Secret::for_tests(&c.key),
                };
                client_config(&s).expect("client")
            } else {
                let roots = trust_roots(&s, &TrustStore::Text(ca.pem())).expect("roots");
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
        s.trust_store = Some(TrustStore::Text(stranger.pem()));
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
        s.key_store = KeyStore::File("/nonexistent/broker.pem".into());
        let err = ListenerTls::load(s, false)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("/nonexistent/broker.pem"), "{err}");
    }

    #[tokio::test]
    async fn renewed_files_are_served_without_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let store = dir.path().join("broker.pem");
        let old_ca = Authority::new();
        let write = |leaf: &Leaf| {
            // Renewal as Kubernetes does it: a new file moved into place.
            let next = dir.path().join("next.pem");
            std::fs::write(&next, format!("{}{}", leaf.key, leaf.chain)).expect("write");
            std::fs::rename(&next, &store).expect("rename");
        };
        write(&old_ca.sign("localhost"));
        let mut s = settings(&old_ca.sign("localhost"), None, ClientAuth::None);
        s.key_store = KeyStore::File(store.clone());
        let server = ListenerTls::load(s.clone(), false).expect("server");
        let client = settings(&old_ca.sign("client"), None, ClientAuth::None);
        let trusting = |ca: &Authority| {
            let mut c = client.clone();
            c.trust_store = Some(TrustStore::Text(ca.pem()));
            client_config(&c).expect("client")
        };
        assert!(handshake(&server, trusting(&old_ca), "localhost")
            .await
            .is_ok());
        assert!(!server.reload_if_changed().expect("unchanged"));

        let new_ca = Authority::new();
        write(&new_ca.sign("localhost"));
        assert!(server.reload_if_changed().expect("renewed"));
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
        s.key_store = KeyStore::File(store.clone());
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
