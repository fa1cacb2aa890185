//! Key stores and trust stores, read into what rustls takes: a certificate
//! chain with its private key, and the certificates to trust. A store is a
//! PEM file, PEM text in the settings ([`pem`]) or a PKCS12 file
//! ([`pkcs12`]); which one, and its passwords, `crate::config::tls`
//! decided. Errors name the store (its file) and what is wrong with it,
//! never a password or key material.

pub mod pem;
pub mod pkcs12;

use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::config::tls::{KeyStore, TrustStore};

/// A certificate chain, leaf first, and the private key of its leaf.
#[derive(Debug)]
pub struct KeyPair {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's file cannot be read.
    #[error("cannot read the {store} {path}: {source}")]
    Read {
        /// Which store.
        store: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A PEM store does not hold what is needed.
    #[error("{store}: {source}")]
    Pem {
        /// Which store and where it comes from.
        store: String,
        /// What is missing or wrong.
        source: pem::PemError,
    },
    /// A PKCS12 store cannot be opened or does not hold what is needed.
    #[error("{store}: {source}")]
    Pkcs12 {
        /// Which store and where it comes from.
        store: String,
        /// What is missing or wrong.
        source: pkcs12::Pkcs12Error,
    },
    /// A trust store whose certificates rustls cannot use.
    #[error("{store}: no usable CERTIFICATE in it ({ignored} could not be parsed)")]
    NoUsableCertificate {
        /// Which store and where it comes from.
        store: String,
        /// How many certificates did not parse.
        ignored: usize,
    },
}

/// The chain and key `store` holds.
pub fn key_pair(store: &KeyStore) -> Result<KeyPair, StoreError> {
    match store {
        KeyStore::PemFile { path, key_password } => {
            let text = read("key store", path)?;
            pem::key_pair(&text, &text, key_password.as_ref()).map_err(|source| StoreError::Pem {
                store: format!("key store {}", path.display()),
                source,
            })
        }
        KeyStore::PemText {
            chain,
            key,
            key_password,
        } => pem::key_pair(
            chain.as_bytes(),
            key.expose().as_bytes(),
            key_password.as_ref(),
        )
        .map_err(|source| StoreError::Pem {
            store: "ssl.keystore.certificate.chain / ssl.keystore.key".into(),
            source,
        }),
        KeyStore::Pkcs12 { path, password } => {
            let bytes = read("PKCS12 key store", path)?;
            pkcs12::key_pair(&bytes, password).map_err(|source| StoreError::Pkcs12 {
                store: format!("PKCS12 key store {}", path.display()),
                source,
            })
        }
    }
}

/// The certificates `store` trusts.
pub fn trust_roots(store: &TrustStore) -> Result<RootCertStore, StoreError> {
    let (what, certs) = match store {
        TrustStore::PemFile(path) => {
            let what = format!("trust store {}", path.display());
            let text = read("trust store", path)?;
            let certs = pem::certificates(&text).map_err(|source| StoreError::Pem {
                store: what.clone(),
                source,
            })?;
            (what, certs)
        }
        TrustStore::PemText(text) => {
            let what = "ssl.truststore.certificates".to_string();
            let certs = pem::certificates(text.as_bytes()).map_err(|source| StoreError::Pem {
                store: what.clone(),
                source,
            })?;
            (what, certs)
        }
        TrustStore::Pkcs12 { path, password } => {
            let what = format!("PKCS12 trust store {}", path.display());
            let bytes = read("PKCS12 trust store", path)?;
            let certs = pkcs12::certificates(&bytes, password.as_ref()).map_err(|source| {
                StoreError::Pkcs12 {
                    store: what.clone(),
                    source,
                }
            })?;
            (what, certs)
        }
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(StoreError::NoUsableCertificate {
            store: what,
            ignored,
        });
    }
    Ok(roots)
}

fn read(store: &'static str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::Read {
        store,
        path: path.to_path_buf(),
        source,
    })
}
