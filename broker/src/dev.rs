//! `gregor dev`: a local three-broker cluster in one command, shaped like
//! the usual three-broker Kafka example. Broker `n` (1, 2, 3) listens on
//! `INTERNAL` 2909(n+1) (used between brokers), `EXTERNAL` 909(n+1) (for
//! clients) and `CONTROLLER` 1909(n+1) (the metadata quorum); its files are
//! under `<data>/broker-<n>`.
//!
//! With `--secure` it is the setup production Kafka clusters use: a
//! certificate authority and one broker certificate made here (kept under
//! `<data>/secure`), `INTERNAL` and `CONTROLLER` SSL with client
//! certificates required, `EXTERNAL` SASL_SSL with SCRAM-SHA-512, ACLs on
//! (the brokers' certificate and the `admin` user are super users), and the
//! `admin` user's SCRAM credential seeded before the first start. Clients
//! get ready files: `client.properties` for Kafka's tools and Java clients,
//! `librdkafka.conf` for kcat and librdkafka.
//!
//! This module writes those files; `main` runs the processes.

use std::path::{Path, PathBuf};

use rand::distributions::{Alphanumeric, DistString};

/// How many brokers `gregor dev` starts.
pub const BROKERS: i32 = 3;

/// The three listener ports of broker `n`: internal, external, controller.
pub fn ports(n: i32) -> (u16, u16, u16) {
    let k = (n - 1) as u16;
    (29092 + k, 9092 + k, 19092 + k)
}

/// The user `--secure` creates, a super user.
pub const ADMIN: &str = "admin";

/// The subject of the brokers' certificate, and so their principal.
const BROKER_SUBJECT: &str = "gregor-dev-broker";

/// The keys and password of a `--secure` cluster, under `<data>/secure`.
#[derive(Debug, Clone)]
pub struct Secure {
    /// The authority's certificate (PEM), the clients' trust store.
    pub trust_store: PathBuf,
    /// The brokers' key and certificate chain (PEM).
    pub key_store: PathBuf,
    /// The `admin` user's password.
    pub password: String,
}

/// Why the `--secure` files cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// rcgen refused.
    #[error("cannot make the development certificates: {0}")]
    Certificate(#[from] rcgen::Error),
}

impl Secure {
    /// The files under `root/secure`, made the first time (a new authority,
    /// broker certificate for localhost and 127.0.0.1, and password) and
    /// reused after, so a kept cluster keeps working.
    pub fn at(root: &Path) -> Result<Secure, SecureError> {
        let dir = root.join("secure");
        let secure = Secure {
            trust_store: dir.join("ca.pem"),
            key_store: dir.join("broker.pem"),
            password: String::new(),
        };
        let password_file = dir.join("admin.password");
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| SecureError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        if password_file.exists() && secure.trust_store.exists() && secure.key_store.exists() {
            let password = read(&password_file)?.trim().to_string();
            return Ok(Secure { password, ..secure });
        }
        let (ca, broker) = certificates()?;
        let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        write_private(&dir, &secure.trust_store, &ca)?;
        write_private(&dir, &secure.key_store, &broker)?;
        write_private(&dir, &password_file, &password)?;
        Ok(Secure { password, ..secure })
    }

    /// The `--add-scram` value that seeds the `admin` user.
    pub fn add_scram(&self) -> String {
        format!("SCRAM-SHA-512=[name={ADMIN},password={}]", self.password)
    }

    /// Settings for Kafka's tools and Java clients (`--command-config`).
    pub fn client_properties(&self) -> String {
        format!(
            "# Written by `gregor dev --secure`: the {ADMIN} user over SASL_SSL.\n\
             bootstrap.servers={bootstrap}\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{ADMIN}\" password=\"{password}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={trust}\n",
            bootstrap = bootstrap(),
            password = self.password,
            trust = self.trust_store.display(),
        )
    }

    /// The same for librdkafka (`kcat -F`, confluent-kafka's settings).
    pub fn librdkafka_conf(&self) -> String {
        format!(
            "# Written by `gregor dev --secure`: the {ADMIN} user over SASL_SSL.\n\
             bootstrap.servers={bootstrap}\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanisms=SCRAM-SHA-512\n\
             sasl.username={ADMIN}\n\
             sasl.password={password}\n\
             ssl.ca.location={trust}\n",
            bootstrap = bootstrap(),
            password = self.password,
            trust = self.trust_store.display(),
        )
    }

    fn server_properties(&self) -> String {
        format!(
            "listener.security.protocol.map=INTERNAL:SSL,EXTERNAL:SASL_SSL,CONTROLLER:SSL\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location={key_store}\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={trust_store}\n\
             listener.name.internal.ssl.client.auth=required\n\
             listener.name.controller.ssl.client.auth=required\n\
             sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             authorizer.class.name={authorizer}\n\
             super.users=User:CN={BROKER_SUBJECT};User:{ADMIN}\n",
            key_store = self.key_store.display(),
            trust_store = self.trust_store.display(),
            authorizer = crate::config::authorizer::STANDARD_AUTHORIZER,
        )
    }
}

/// A new authority's certificate, and a broker key and certificate chain
/// it signed, as PEM.
fn certificates() -> Result<(String, String), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut params = CertificateParams::new(Vec::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "gregor dev CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, BROKER_SUBJECT);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok((
        ca.pem(),
        format!("{}{}{}", key.serialize_pem(), cert.pem(), ca.pem()),
    ))
}

/// Writes a file only its owner may read (keys and passwords).
fn write_private(dir: &Path, path: &Path, text: &str) -> Result<(), SecureError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| SecureError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io)
}

/// The clients' bootstrap servers.
pub fn bootstrap() -> String {
    (1..=BROKERS)
        .map(|n| format!("localhost:{}", ports(n).1))
        .collect::<Vec<_>>()
        .join(",")
}

/// `server.properties` of broker `n` with its data under `dir`, secured
/// as `secure` says when given.
pub fn server_properties(n: i32, dir: &Path, secure: Option<&Secure>) -> String {
    let (internal, external, controller) = ports(n);
    let voters: Vec<String> = (1..=BROKERS)
        .map(|m| format!("{m}@127.0.0.1:{}", ports(m).2))
        .collect();
    format!(
        "# Written by `gregor dev`; edits are overwritten at the next start.\n\
         node.id={n}\n\
         process.roles=broker,controller\n\
         listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://0.0.0.0:{external},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://localhost:{external}\n\
         {security}\
         inter.broker.listener.name=INTERNAL\n\
         controller.listener.names=CONTROLLER\n\
         controller.quorum.voters={voters}\n\
         log.dirs={data}\n\
         num.partitions=3\n\
         default.replication.factor=3\n\
         min.insync.replicas=2\n\
         offsets.topic.replication.factor=3\n",
        voters = voters.join(","),
        data = dir.join("data").display(),
        security = match secure {
            Some(s) => s.server_properties(),
            None => "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n".into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::config::{properties, BrokerConfig};

    #[test]
    fn every_dev_broker_has_a_valid_config_of_its_own() {
        let root = Path::new("/tmp/gregor-dev-test");
        let mut ports_seen = std::collections::BTreeSet::new();
        for n in 1..=BROKERS {
            let text = server_properties(n, &root.join(format!("broker-{n}")), None);
            let c = BrokerConfig::from_properties(properties::parse(&text, "dev"))
                .expect("valid config");
            assert_eq!(c.node_id, n);
            assert_eq!(c.voters.len(), 3);
            assert_eq!(c.inter_broker_listener, "INTERNAL");
            assert_eq!(
                c.advertised_endpoint("EXTERNAL").map(|e| e.port),
                Some(ports(n).1)
            );
            assert!(c.advertised_endpoint("CONTROLLER").is_none());
            for l in &c.listeners {
                assert!(ports_seen.insert(l.port), "port {} used twice", l.port);
            }
        }
    }

    #[test]
    fn a_secure_cluster_keeps_its_keys_and_starts_from_valid_configs() {
        let root = tempfile::tempdir().expect("dir");
        let secure = Secure::at(root.path()).expect("made");
        assert_eq!(secure.password.len(), 24);
        let again = Secure::at(root.path()).expect("reused");
        assert_eq!(again.password, secure.password);
        let stores = crate::config::tls::TlsSettings::for_listener;
        for n in 1..=BROKERS {
            let text = server_properties(n, &root.path().join(format!("b{n}")), Some(&secure));
            let c = BrokerConfig::from_properties(properties::parse(&text, "dev"))
                .expect("valid config");
            assert_eq!(c.tls.len(), 3, "INTERNAL, EXTERNAL and CONTROLLER are TLS");
            assert!(c.sasl.contains_key("EXTERNAL"));
            let authorizer = c.authorizer.as_ref().expect("ACLs on");
            assert!(authorizer.super_users.contains("User:admin"));
            // The broker certificate's subject is the super user named.
            let tls = crate::security::tls::ListenerTls::load(
                stores(&c.values, "CONTROLLER").expect("settings"),
                true,
            )
            .expect("the made stores load");
            let pem = std::fs::read(&secure.key_store).expect("key store");
            let der = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .next()
                .expect("a certificate")
                .expect("parses");
            let principal = tls.principal(&der).expect("principal");
            assert!(authorizer.super_users.contains(&principal), "{principal}");
        }
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
        };
        assert_eq!(mode(&secure.key_store), 0o600);
        assert!(secure
            .client_properties()
            .contains("security.protocol=SASL_SSL"));
        assert!(secure
            .librdkafka_conf()
            .contains("sasl.mechanisms=SCRAM-SHA-512"));
        let record = crate::metadata::bootstrap::parse_add_scram(&secure.add_scram());
        assert!(record.is_ok());
    }
}
