//! A certificate authority the operator signs with: made here (rcgen) or
//! supplied by the user as a PEM certificate and key.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use super::certificate::CertificateInfo;
use super::PkiError;

/// Certificates start being valid a little before they are made, so that
/// a peer whose clock is slightly behind accepts them.
pub const BACKDATE_SECONDS: i64 = 300;

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate.
    pub certificate: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("Issued")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A broker: serves TLS and dials other brokers with it.
    ServerAndClient,
    /// A client (a user, the operator).
    Client,
}

/// What to put in a certificate the authority signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRequest {
    /// Subject: the common name.
    pub common_name: String,
    /// Subject: the organization, if any.
    pub organization: Option<String>,
    /// Subject alternative names: DNS names and IP addresses.
    pub names: Vec<String>,
    /// What it is for.
    pub usage: Usage,
}

/// A certificate authority that can sign.
pub struct Authority {
    issued: Issued,
    info: CertificateInfo,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("subject", &self.info.subject)
            .field("not_after", &self.info.not_after)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Makes a new self-signed authority named `common_name`, valid for
    /// `validity` seconds from `now`.
    pub fn generate(common_name: &str, now: i64, validity: i64) -> Result<Authority, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(common_name, Some("gregor.dev"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, now - BACKDATE_SECONDS, now + validity)?;
        let key = KeyPair::generate().map_err(PkiError::Sign)?;
        let certificate = params.self_signed(&key).map_err(PkiError::Sign)?;
        Authority::load(&certificate.pem(), &key.serialize_pem())
    }

    /// An authority from its PEM certificate and key (the first
    /// certificate of `certificate` is the authority's).
    pub fn load(certificate: &str, key: &str) -> Result<Authority, PkiError> {
        let info = CertificateInfo::parse(certificate)?;
        if !info.is_ca {
            return Err(PkiError::Unreadable(format!(
                "{} is not a certificate authority (no basicConstraints CA:TRUE)",
                info.subject
            )));
        }
        let signing_key =
            KeyPair::from_pem(key).map_err(|e| PkiError::Unreadable(format!("the CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(certificate, signing_key)
            .map_err(|e| PkiError::Unreadable(format!("the CA certificate: {e}")))?;
        Ok(Authority {
            issued: Issued {
                certificate: certificate.to_string(),
                key: key.to_string(),
            },
            info,
            issuer,
        })
    }

    /// The authority's certificate and key.
    pub fn issued(&self) -> &Issued {
        &self.issued
    }

    /// What the authority's certificate says.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// Signs a new key's certificate, valid for `validity` seconds from
    /// `now` but never beyond the authority's own end.
    pub fn issue(
        &self,
        request: &LeafRequest,
        now: i64,
        validity: i64,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(&request.common_name, request.organization.as_deref());
        params.subject_alt_names = request
            .names
            .iter()
            .map(|name| match name.parse() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) if dns_name(name) => name
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| PkiError::BadName(name.clone())),
                Err(_) => Err(PkiError::BadName(name.clone())),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match request.usage {
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        set_validity(
            &mut params,
            now - BACKDATE_SECONDS,
            (now + validity).min(self.info.not_after),
        )?;
        let key = KeyPair::generate().map_err(PkiError::Sign)?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::Sign)?;
        Ok(Issued {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A host name as DNS has them (RFC 1123 labels), optionally with a
/// leading `*.` wildcard.
fn dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn subject(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name.push(DnType::CommonName, common_name);
    name
}

fn set_validity(params: &mut CertificateParams, from: i64, to: i64) -> Result<(), PkiError> {
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(|_| PkiError::BadTime(t));
    params.not_before = at(from)?;
    params.not_after = at(to)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    #[test]
    fn signs_what_it_is_asked_and_reloads_from_its_pem() {
        let ca = Authority::generate("demo cluster CA 0", NOW, 30 * DAY).expect("ca");
        let request = LeafRequest {
            common_name: "demo-broker".into(),
            organization: Some("gregor.dev".into()),
            names: vec!["b0.demo.svc".into(), "10.1.2.3".into()],
            usage: Usage::ServerAndClient,
        };
        // Asked for longer than the authority lives: capped at its end.
        let leaf = ca.issue(&request, NOW, 90 * DAY).expect("issued");
        let info = CertificateInfo::parse(&leaf.certificate).expect("readable");
        assert_eq!(info.names, ["10.1.2.3", "b0.demo.svc"]);
        assert_eq!(info.not_after, ca.info().not_after);
        assert_eq!(info.not_before, NOW - BACKDATE_SECONDS);
        assert!(!info.is_ca);
        assert!(info.signed_by(ca.info()));
        assert!(info.subject.contains("CN=demo-broker"), "{}", info.subject);

        let reloaded = Authority::load(&ca.issued().certificate, &ca.issued().key).expect("ca");
        let again = reloaded.issue(&request, NOW, DAY).expect("issued");
        let again = CertificateInfo::parse(&again.certificate).expect("readable");
        assert!(again.signed_by(ca.info()));
        assert_eq!(again.not_after, NOW + DAY);

        let stranger = Authority::generate("demo cluster CA 0", NOW, DAY).expect("ca");
        assert!(!info.signed_by(stranger.info()), "same name, other key");
    }

    #[test]
    fn refuses_what_cannot_be_an_authority_or_a_name() {
        let ca = Authority::generate("ca", NOW, DAY).expect("ca");
        let leaf = ca
            .issue(
                &LeafRequest {
                    common_name: "alice".into(),
                    organization: None,
                    names: Vec::new(),
                    usage: Usage::Client,
                },
                NOW,
                DAY,
            )
            .expect("issued");
        let not_ca = Authority::load(&leaf.certificate, &leaf.key).expect_err("a leaf");
        assert!(
            not_ca.to_string().contains("not a certificate authority"),
            "{not_ca}"
        );
        assert!(Authority::load("garbage", &leaf.key).is_err());
        assert!(Authority::load(&ca.issued().certificate, "garbage").is_err());
        let bad = ca.issue(
            &LeafRequest {
                common_name: "b".into(),
                organization: None,
                names: vec!["not a name!".into()],
                usage: Usage::ServerAndClient,
            },
            NOW,
            DAY,
        );
        assert!(matches!(bad, Err(PkiError::BadName(_))), "{bad:?}");
        // The key is not printed.
        assert!(!format!("{leaf:?}").contains("PRIVATE KEY"));
    }
}
