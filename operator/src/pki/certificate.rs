//! What a PEM certificate says, as far as the operator decides anything by
//! it: who it names, until when it is valid, and who signed it.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::PkiError;

/// A certificate is not renewed before it is this old (seconds from its
/// start, which is backdated by [`super::authority::BACKDATE_SECONDS`]).
const SHORTEST_RENEWAL_AGE: i64 = super::authority::BACKDATE_SECONDS + 60;

/// The facts of one certificate the operator acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, as x509-parser writes it (for messages and status).
    pub subject: String,
    /// DNS names and IP addresses among its subject alternative names,
    /// sorted, IPs written as text.
    pub names: Vec<String>,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Whether it may sign certificates.
    pub is_ca: bool,
    /// The DER bytes, for checking signatures.
    der: Vec<u8>,
    /// The PEM block it was read from.
    pem: String,
}

impl CertificateInfo {
    /// Reads the first certificate of a PEM text.
    pub fn parse(pem: &str) -> Result<CertificateInfo, PkiError> {
        let (text, der) = pem_blocks(pem)
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::Unreadable("no CERTIFICATE block".into()))?;
        CertificateInfo::from_der(text, der)
    }

    /// Reads every certificate of a PEM text (a trust bundle), in order.
    pub fn parse_all(pem: &str) -> Result<Vec<CertificateInfo>, PkiError> {
        pem_blocks(pem)
            .into_iter()
            .map(|(text, der)| CertificateInfo::from_der(text, der))
            .collect()
    }

    fn from_der(pem: String, der: Vec<u8>) -> Result<CertificateInfo, PkiError> {
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| PkiError::Unreadable(format!("not an X.509 certificate: {e}")))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                            16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                            _ => None,
                        };
                        names.extend(ip.map(|ip| ip.to_string()));
                    }
                    _ => {}
                }
            }
        }
        names.sort();
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            der: der.clone(),
            pem,
        })
    }

    /// The certificate as a PEM block.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Whether `authority` signed this certificate.
    pub fn signed_by(&self, authority: &CertificateInfo) -> bool {
        let (Ok((_, cert)), Ok((_, ca))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&authority.der),
        ) else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// The moment renewal is due: `renew_before` seconds before the end.
    /// A certificate that lives hardly longer than that window (one capped
    /// at its authority's end) would be due as soon as it is made, again
    /// and again: it is renewed at half its life instead.
    pub fn renew_at(&self, renew_before: i64) -> i64 {
        let due = self.not_after - renew_before;
        if due - self.not_before > SHORTEST_RENEWAL_AGE {
            return due;
        }
        due.max(self.not_before + (self.not_after - self.not_before) / 2)
    }
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Every `CERTIFICATE` block of a PEM text: its text and its DER bytes.
fn pem_blocks(pem: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let text = format!("{}\n", &rest[start..start + len + END.len()]);
        rest = &rest[start + len + END.len()..];
        if let Some(Ok(block)) = x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()).next() {
            out.push((text, block.contents));
        }
    }
    out
}
