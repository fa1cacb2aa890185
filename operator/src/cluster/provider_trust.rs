//! The certificates brokers trust for an identity provider: an `oauth`
//! listener's `tlsTrustedCertificates`, gathered from the user's Secrets
//! into one PEM file per listener in the brokers' ConfigMap (the broker
//! takes one trust file per listener, in the OAUTHBEARER JAAS line's
//! `ssl.truststore.location`). Certificates are public, so a ConfigMap
//! holds them; their text counts in the configuration digest, so a new
//! provider certificate rolls the brokers, which load it at start.

use std::collections::BTreeMap;

use crate::crd::cluster::{AuthenticationType, KafkaClusterSpec, TrustedCertificate};
use crate::pki::certificate::CertificateInfo;

use super::broker_config::CONFIG_DIR;
use super::certificates::SecretData;

/// The ConfigMap key of listener `listener`'s provider trust file.
pub fn file_name(listener: &str) -> String {
    format!("{listener}-oauth-trust.pem")
}

/// Where a broker finds listener `listener`'s provider trust file.
pub fn path(listener: &str) -> String {
    format!("{CONFIG_DIR}/{}", file_name(listener))
}

/// The listeners that name provider certificates, with the certificates.
pub fn wanted(spec: &KafkaClusterSpec) -> Vec<(&str, &[TrustedCertificate])> {
    spec.listeners
        .iter()
        .filter_map(|l| {
            let auth = l.authentication.as_ref()?;
            (auth.kind == AuthenticationType::Oauth && !auth.tls_trusted_certificates.is_empty())
                .then_some((l.name.as_str(), auth.tls_trusted_certificates.as_slice()))
        })
        .collect()
}

/// The trust files (ConfigMap key to PEM text) of every listener in
/// `wanted`, from the Secrets `secrets` holds by name; the error names the
/// Secret or key that is missing or holds no certificate.
pub fn files(
    wanted: &[(&str, &[TrustedCertificate])],
    secrets: &BTreeMap<String, SecretData>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (listener, certificates) in wanted {
        let mut pem = String::new();
        for c in certificates.iter() {
            let text = secrets
                .get(&c.secret_name)
                .ok_or_else(|| {
                    format!(
                        "listener {listener}: Secret {} (tlsTrustedCertificates) not found",
                        c.secret_name
                    )
                })?
                .get(&c.certificate)
                .ok_or_else(|| {
                    format!(
                        "listener {listener}: Secret {} has no key {}",
                        c.secret_name, c.certificate
                    )
                })?;
            let problem = match CertificateInfo::parse_all(text) {
                Ok(found) if found.is_empty() => Some("no PEM certificate".to_string()),
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(problem) = problem {
                return Err(format!(
                    "listener {listener}: Secret {} key {}: {problem}",
                    c.secret_name, c.certificate
                ));
            }
            pem.push_str(text.trim_end());
            pem.push('\n');
        }
        out.insert(file_name(listener), pem);
    }
    Ok(out)
}

/// `digest` (of the brokers' properties) extended with the trust files,
/// unchanged when there are none.
pub fn digest(digest: String, files: &BTreeMap<String, String>) -> String {
    if files.is_empty() {
        return digest;
    }
    let text: String = files.iter().flat_map(|(k, v)| [k.as_str(), v]).collect();
    format!("{digest}-{:08x}", crc32c::crc32c(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::authority::Authority;

    fn trusted(secret: &str, key: &str) -> TrustedCertificate {
        TrustedCertificate {
            secret_name: secret.into(),
            certificate: key.into(),
        }
    }

    #[test]
    fn trust_files_gather_the_named_certificates() {
        let a = Authority::generate("idp-a", 0, 3600).expect("ca");
        let b = Authority::generate("idp-b", 0, 3600).expect("ca");
        let secrets = BTreeMap::from([
            (
                "idp".to_string(),
                SecretData::from([("ca.crt".to_string(), a.info().pem().to_string())]),
            ),
            (
                "other".to_string(),
                SecretData::from([
                    ("tls.crt".to_string(), b.info().pem().to_string()),
                    ("junk".to_string(), "not a certificate".to_string()),
                ]),
            ),
        ]);
        let both = [trusted("idp", "ca.crt"), trusted("other", "tls.crt")];
        let files = files(&[("oauth", &both)], &secrets).expect("files");
        let pem = &files["oauth-oauth-trust.pem"];
        assert_eq!(CertificateInfo::parse_all(pem).expect("pem").len(), 2);

        let cases: [(&[TrustedCertificate], &str); 3] = [
            (
                &[trusted("gone", "ca.crt")],
                "Secret gone (tlsTrustedCertificates) not found",
            ),
            (
                &[trusted("idp", "tls.crt")],
                "Secret idp has no key tls.crt",
            ),
            (&[trusted("other", "junk")], "Secret other key junk"),
        ];
        for (certificates, problem) in cases {
            let error = super::files(&[("oauth", certificates)], &secrets).expect_err(problem);
            assert!(error.contains(problem), "{error}");
        }
    }

    #[test]
    fn the_digest_changes_with_the_trust_only_when_there_is_some() {
        let none = BTreeMap::new();
        assert_eq!(digest("abc".into(), &none), "abc");
        let one = BTreeMap::from([("l".to_string(), "x".to_string())]);
        let other = BTreeMap::from([("l".to_string(), "y".to_string())]);
        assert_ne!(digest("abc".into(), &one), digest("abc".into(), &other));
    }
}
