//! PEM stores (`ssl.keystore.type=PEM`, `ssl.truststore.type=PEM`): a key
//! store is a private key and its certificate chain, a trust store
//! certificates. The private key is PKCS#8 (`PRIVATE KEY`), as Kafka takes
//! it, or PKCS#1 and SEC1 (`RSA PRIVATE KEY`, `EC PRIVATE KEY`), which
//! rustls reads too; or, as in Kafka, an `ENCRYPTED PRIVATE KEY` (PKCS#8
//! with PBES2, what `openssl pkcs8 -topk8` writes) opened with
//! `ssl.key.password`.

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::KeyPair;
use crate::config::tls::Secret;

/// What is missing or wrong in a PEM store. No variant carries key
/// material or a password.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// A section that does not parse.
    #[error("{part}: {reason}")]
    Malformed {
        /// Which part: the certificate chain or the private key.
        part: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// No certificate at all.
    #[error("no CERTIFICATE in it")]
    NoCertificate,
    /// No private key at all.
    #[error("no PRIVATE KEY in it")]
    NoKey,
    /// An encrypted key, and no password for it.
    #[error("the private key is encrypted (ENCRYPTED PRIVATE KEY): set ssl.key.password")]
    KeyPasswordNeeded,
    /// A password for a key that is not encrypted.
    #[error("ssl.key.password is set but the private key is not encrypted: leave ssl.key.password out (Kafka refuses it too)")]
    KeyNotEncrypted,
    /// The encrypted key does not open with the password given.
    #[error("ssl.key.password does not decrypt the ENCRYPTED PRIVATE KEY ({0})")]
    Undecryptable(String),
    /// OpenSSL's traditional encryption (`Proc-Type: 4,ENCRYPTED`), which
    /// Kafka does not read either.
    #[error("the private key is encrypted the traditional OpenSSL way (Proc-Type: 4,ENCRYPTED); convert it to an ENCRYPTED PRIVATE KEY (PKCS#8): `openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key.pkcs8.pem`")]
    TraditionalEncryption,
}

/// The chain in `chain_pem` and the key in `key_pem` (the same text for
/// a key store file), the key decrypted with `key_password` when it is an
/// `ENCRYPTED PRIVATE KEY`.
pub fn key_pair(
    chain_pem: &[u8],
    key_pem: &[u8],
    key_password: Option<&Secret>,
) -> Result<KeyPair, PemError> {
    // Checked first: rustls's PEM reader fails on the section's headers,
    // even when only reading the certificates beside it.
    if String::from_utf8_lossy(key_pem).contains("Proc-Type: 4,ENCRYPTED") {
        return Err(PemError::TraditionalEncryption);
    }
    let chain = certificates(chain_pem).map_err(|e| match e {
        PemError::Malformed { reason, .. } => PemError::Malformed {
            part: "certificate chain",
            reason,
        },
        other => other,
    })?;
    if chain.is_empty() {
        return Err(PemError::NoCertificate);
    }
    let key = match (encrypted_key(key_pem), key_password) {
        (Some(Err(reason)), _) => {
            return Err(PemError::Malformed {
                part: "ENCRYPTED PRIVATE KEY",
                reason,
            })
        }
        (Some(Ok(_)), None) => return Err(PemError::KeyPasswordNeeded),
        (Some(Ok(der)), Some(password)) => decrypt(&der, password)?,
        (None, password) => match PrivateKeyDer::from_pem_slice(key_pem) {
            Ok(_) if password.is_some() => return Err(PemError::KeyNotEncrypted),
            Ok(key) => key,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(PemError::NoKey),
            // The PEM error names no key material, only what is malformed.
            Err(e) => {
                return Err(PemError::Malformed {
                    part: "private key",
                    reason: e.to_string(),
                })
            }
        },
    };
    Ok(KeyPair { chain, key })
}

/// Every certificate in `pem`.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Malformed {
            part: "certificates",
            reason: e.to_string(),
        })
}

const BEGIN_ENCRYPTED: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const END_ENCRYPTED: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The DER of the first `ENCRYPTED PRIVATE KEY` section of `pem`, if it
/// has one (rustls's PEM reader skips that section kind).
fn encrypted_key(pem: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let text = String::from_utf8_lossy(pem);
    let start = text.find(BEGIN_ENCRYPTED)? + BEGIN_ENCRYPTED.len();
    let Some(length) = text[start..].find(END_ENCRYPTED) else {
        return Some(Err(format!("no {END_ENCRYPTED} line")));
    };
    let base64: String = text[start..start + length]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|e| format!("not base64: {e}")),
    )
}

/// The PKCS#8 key inside an `EncryptedPrivateKeyInfo`.
fn decrypt(der: &[u8], password: &Secret) -> Result<PrivateKeyDer<'static>, PemError> {
    let info =
        pkcs8::EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| PemError::Malformed {
            part: "ENCRYPTED PRIVATE KEY",
            reason: e.to_string(),
        })?;
    let key = info
        .decrypt(password.expose())
        .map_err(|e| PemError::Undecryptable(e.to_string()))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key.as_bytes().to_vec(),
    )))
}
