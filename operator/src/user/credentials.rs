//! A user's credentials: a generated password and its SCRAM form (RFC
//! 5802: what the brokers store), or a client certificate; and the Secret
//! the operator gives the user, with ready-to-use client settings.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};

/// Iterations of SCRAM's key derivation, Kafka's default.
pub const SCRAM_ITERATIONS: u32 = 4096;
/// Kafka's code for SCRAM-SHA-512 in the admin protocol.
pub const SCRAM_SHA_512: i8 = 2;
/// Length of a generated password.
const PASSWORD_LENGTH: usize = 32;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Secret keys.
pub const PASSWORD_KEY: &str = "password";
/// See [`PASSWORD_KEY`].
pub const JAAS_KEY: &str = "sasl.jaas.config";
/// See [`PASSWORD_KEY`].
pub const PROPERTIES_KEY: &str = "client.properties";
/// See [`PASSWORD_KEY`].
pub const CERT_KEY: &str = "user.crt";
/// See [`PASSWORD_KEY`].
pub const KEY_KEY: &str = "user.key";
/// See [`PASSWORD_KEY`].
pub const CA_KEY: &str = "ca.crt";

/// A new random password of letters and digits.
pub fn generate_password() -> Result<String, ring::error::Unspecified> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(PASSWORD_LENGTH);
    let mut byte = [0u8; 1];
    while out.len() < PASSWORD_LENGTH {
        rng.fill(&mut byte)?;
        // Rejection sampling keeps every character equally likely.
        if usize::from(byte[0]) < 256 - 256 % ALPHABET.len() {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// SCRAM-SHA-512's stored form of `password`: a new random salt and the
/// salted password.
pub fn scram_sha_512(password: &str) -> Result<(Vec<u8>, Vec<u8>), ring::error::Unspecified> {
    let mut salt = vec![0u8; 32];
    SystemRandom::new().fill(&mut salt)?;
    let mut salted = vec![0u8; 64];
    let iterations = NonZeroU32::new(SCRAM_ITERATIONS).ok_or(ring::error::Unspecified)?;
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    Ok((salt, salted))
}

/// Where a user's clients connect: a listener's bootstrap addresses and
/// whether it is TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Whether the listener is TLS.
    pub tls: bool,
}

/// The Secret of a SCRAM user: the password, the JAAS line, and client
/// properties for `endpoint` (the first listener taking SCRAM-SHA-512),
/// trusting `cluster_ca` when it is TLS.
pub fn scram_secret(
    username: &str,
    password: &str,
    endpoint: Option<&Endpoint>,
    cluster_ca: &str,
) -> BTreeMap<String, String> {
    let quoted = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        quoted(username),
        quoted(password)
    );
    let mut props = Vec::new();
    let tls = endpoint.is_some_and(|e| e.tls);
    if let Some(e) = endpoint {
        props.push(("bootstrap.servers", e.bootstrap.clone()));
    }
    props.push((
        "security.protocol",
        if tls { "SASL_SSL" } else { "SASL_PLAINTEXT" }.into(),
    ));
    props.push(("sasl.mechanism", "SCRAM-SHA-512".into()));
    props.push(("sasl.jaas.config", jaas.clone()));
    if tls {
        props.push(("ssl.truststore.type", "PEM".into()));
        props.push(("ssl.truststore.certificates", cluster_ca.into()));
    }
    BTreeMap::from([
        (PASSWORD_KEY.into(), password.into()),
        (JAAS_KEY.into(), jaas),
        (PROPERTIES_KEY.into(), properties(&props)),
        (CA_KEY.into(), cluster_ca.into()),
    ])
}

/// The Secret of a certificate user: its certificate and key, the cluster
/// CA, and client properties for `endpoint` (the first listener taking
/// client certificates).
pub fn tls_secret(
    certificate: &str,
    key: &str,
    endpoint: Option<&Endpoint>,
    cluster_ca: &str,
) -> BTreeMap<String, String> {
    let mut props = Vec::new();
    if let Some(e) = endpoint {
        props.push(("bootstrap.servers", e.bootstrap.clone()));
    }
    props.extend([
        ("security.protocol", "SSL".to_string()),
        ("ssl.keystore.type", "PEM".into()),
        ("ssl.keystore.certificate.chain", certificate.into()),
        ("ssl.keystore.key", key.into()),
        ("ssl.truststore.type", "PEM".into()),
        ("ssl.truststore.certificates", cluster_ca.into()),
    ]);
    BTreeMap::from([
        (CERT_KEY.into(), certificate.into()),
        (KEY_KEY.into(), key.into()),
        (PROPERTIES_KEY.into(), properties(&props)),
        (CA_KEY.into(), cluster_ca.into()),
    ])
}

/// A properties file: PEM blocks and other multi-line values keep their
/// line breaks (`\n`, continued on the next line).
fn properties(entries: &[(&str, String)]) -> String {
    entries
        .iter()
        .map(|(k, v)| {
            let value = v.trim_end().replace('\\', "\\\\").replace('\n', "\\n\\\n");
            format!("{k}={value}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_random_letters_and_digits() {
        let a = generate_password().expect("random");
        let b = generate_password().expect("random");
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn scram_stores_what_rfc_5802_derives() {
        // The salted password is Hi(password, salt, i): PBKDF2 with
        // HMAC-SHA-512, checked here against its definition's first block.
        let (salt, salted) = scram_sha_512("pencil").expect("random");
        assert_eq!((salt.len(), salted.len()), (32, 64));
        let mut again = vec![0u8; 64];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA512,
            NonZeroU32::new(SCRAM_ITERATIONS).expect("nonzero"),
            &salt,
            b"pencil",
            &mut again,
        );
        assert_eq!(salted, again);
        assert!(ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA512,
            NonZeroU32::new(SCRAM_ITERATIONS).expect("nonzero"),
            &salt,
            b"pencil",
            &salted
        )
        .is_ok());
    }

    #[test]
    fn client_properties_are_ready_to_use() {
        let ca = "-----BEGIN CERTIFICATE-----\nAAA\nBBB\n-----END CERTIFICATE-----\n";
        let endpoint = Endpoint {
            bootstrap: "demo-tls-bootstrap.kafka.svc:9093".into(),
            tls: true,
        };
        let secret = scram_secret("alice", "s3cret", Some(&endpoint), ca);
        let props = &secret[PROPERTIES_KEY];
        assert_eq!(
            props,
            "bootstrap.servers=demo-tls-bootstrap.kafka.svc:9093\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.certificates=-----BEGIN CERTIFICATE-----\\n\\\nAAA\\n\\\nBBB\\n\\\n-----END CERTIFICATE-----\n"
        );
        // A password of the user's own may hold what JAAS quotes.
        let odd = scram_secret("alice", r#"a"b\c"#, None, ca);
        assert!(
            odd[JAAS_KEY].ends_with(r#"username="alice" password="a\"b\\c";"#),
            "{}",
            odd[JAAS_KEY]
        );
        let plain = scram_secret("alice", "s3cret", None, ca);
        assert!(plain[PROPERTIES_KEY].starts_with("security.protocol=SASL_PLAINTEXT\n"));
        let user = tls_secret("CERT", "KEY", Some(&endpoint), ca);
        assert!(user[PROPERTIES_KEY].contains("\nssl.keystore.key=KEY\n"));
        assert_eq!(
            user.keys().collect::<Vec<_>>(),
            ["ca.crt", "client.properties", "user.crt", "user.key"]
        );
    }
}
