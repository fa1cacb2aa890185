//! PKCS12 stores (`ssl.keystore.type=PKCS12`, `ssl.truststore.type=PKCS12`),
//! read with the `p12-keystore` crate: the stores Java's keytool and
//! `openssl pkcs12 -export` write, with their modern protection (PBES2,
//! AES-256, an HMAC-SHA-256 integrity check) or the legacy one (3DES and
//! RC2-40, HMAC-SHA-1) of JDK 8 and OpenSSL 1.x.
//!
//! A key store must hold exactly one private key with its certificate
//! chain: Gregor has no setting that picks a key among several (Kafka has
//! none either; Java picks one by key type). One password opens the store
//! and its key. A trust store trusts every certificate in it (Java trusts
//! only the ones keytool marked as trusted certificate entries, and the
//! leaf of a key entry; a store written by openssl without `-jdktrust`
//! holds none of those for Java, and is read in full here).

use p12_keystore::error::Error as P12Error;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12Archive, Pkcs12ImportPolicy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::KeyPair;
use crate::config::tls::Secret;

/// Why a PKCS12 store cannot be opened or used. No variant carries a
/// password or key material.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs12Error {
    /// Not PKCS12 DER, or damaged.
    #[error("not a PKCS12 store, or a damaged one ({0})")]
    NotPkcs12(String),
    /// The integrity check (MAC) fails with the password given.
    #[error("{property} does not open it: the password is wrong, or the file was altered")]
    WrongPassword {
        /// The password's setting.
        property: &'static str,
    },
    /// The integrity check passed, but the contents do not decrypt.
    #[error("its contents do not decrypt with {property} ({reason})")]
    Undecryptable {
        /// The password's setting.
        property: &'static str,
        /// What the decryption said.
        reason: String,
    },
    /// A trust store with an integrity check or encryption, and no
    /// password to open it with.
    #[error("it is protected by a password: set ssl.truststore.password (Gregor cannot skip the integrity check of a PKCS12 store as Java does when the password is left out)")]
    PasswordNeeded,
    /// An algorithm or parameter the reader does not take.
    #[error("it is protected in a way Gregor does not read ({0}); write it again with keytool or `openssl pkcs12 -export`, whose defaults (AES-256, HMAC-SHA-256) it reads")]
    Unsupported(String),
    /// A key store with no private key.
    #[error("no private key in it (is it a trust store?)")]
    NoKey,
    /// A key store with several private keys.
    #[error("{} private keys in it ({}), and nothing to choose one by: keep one (`keytool -delete -alias <alias> -keystore <this file>`)", .0.len(), .0.join(", "))]
    SeveralKeys(Vec<String>),
    /// A private key without the certificate that goes with it.
    #[error("the private key `{0}` has no certificate chain in the store")]
    NoChain(String),
    /// A trust store with no certificate.
    #[error("no certificate in it")]
    NoCertificate,
}

/// The one private key in the PKCS12 store `bytes`, with its chain.
pub fn key_pair(bytes: &[u8], password: &Secret) -> Result<KeyPair, Pkcs12Error> {
    const PROPERTY: &str = "ssl.keystore.password";
    // Relaxed: a key whose certificate is missing is kept, so the error
    // says so instead of "no private key".
    let store = KeyStore::from_pkcs12(bytes, password.expose(), Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| opening(e, Some(PROPERTY)))?;
    let keys: Vec<_> = store
        .entries()
        .filter_map(|(alias, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => Some((alias, chain)),
            _ => None,
        })
        .collect();
    let (alias, chain) = match keys.as_slice() {
        [] => return Err(Pkcs12Error::NoKey),
        [one] => *one,
        several => {
            return Err(Pkcs12Error::SeveralKeys(
                several.iter().map(|(alias, _)| alias.to_string()).collect(),
            ))
        }
    };
    if chain.certs().is_empty() {
        return Err(Pkcs12Error::NoChain(alias.clone()));
    }
    Ok(KeyPair {
        chain: chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        // The crate hands every key over as PKCS#8.
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
    })
}

/// Every certificate in the PKCS12 store `bytes`. Without a password only
/// a store with no integrity check and no encryption opens.
pub fn certificates(
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<Vec<CertificateDer<'static>>, Pkcs12Error> {
    let property = password.map(|_| "ssl.truststore.password");
    let archive = Pkcs12Archive::from_pkcs12(bytes, password.map_or("", Secret::expose))
        .map_err(|e| opening(e, property))?;
    let certs: Vec<_> = archive
        .certs
        .iter()
        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(Pkcs12Error::NoCertificate);
    }
    Ok(certs)
}

/// Why the store did not open with the password of `property` (`None`:
/// no password given).
fn opening(e: P12Error, property: Option<&'static str>) -> Pkcs12Error {
    match (e, property) {
        (P12Error::MacError(_), Some(property)) => Pkcs12Error::WrongPassword { property },
        (P12Error::MacError(_) | P12Error::UnpadError | P12Error::Pkcs5Error(_), None) => {
            Pkcs12Error::PasswordNeeded
        }
        (e @ (P12Error::UnpadError | P12Error::Pkcs5Error(_)), Some(property)) => {
            Pkcs12Error::Undecryptable {
                property,
                reason: e.to_string(),
            }
        }
        (
            e @ (P12Error::UnsupportedEncryptionScheme
            | P12Error::UnsupportedMacAlgorithm
            | P12Error::UnsupportedContentType
            | P12Error::UnsupportedCertificateType),
            _,
        ) => Pkcs12Error::Unsupported(e.to_string()),
        (P12Error::InvalidParameters, _) => Pkcs12Error::Unsupported(
            "parameters beyond the reader's bounds, such as more than 1,000,000 iterations".into(),
        ),
        (e, _) => Pkcs12Error::NotPkcs12(e.to_string()),
    }
}
