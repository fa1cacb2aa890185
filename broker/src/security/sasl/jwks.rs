//! The identity provider's signing keys for OAUTHBEARER: a JSON Web Key
//! Set (RFC 7517) read from the file `sasl.oauthbearer.jwks.endpoint.url`
//! names (`file:///path`), and read again when the file changes, so a
//! provider's key rotation reaches the broker without a restart. Keys of
//! kinds Gregor cannot verify with (or marked for encryption) are skipped;
//! a set with no usable key is an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};

/// How often the key set's file is checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(10);

/// Why a key set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file cannot be read.
    #[error("JWKS {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a key set Gregor can use.
    #[error("JWKS {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The usable keys of one key set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the signature keys Gregor can use.
    pub fn parse(text: &[u8]) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys: Vec<Jwk> = document
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter(|k| jsonwebtoken::DecodingKey::from_jwk(k).is_ok())
            .collect();
        if keys.is_empty() {
            return Err("no signature key Gregor can use (RSA, EC P-256/P-384 or Ed25519)".into());
        }
        Ok(KeySet { keys })
    }

    /// The keys a token signed with key id `kid` may have used: that key,
    /// or every key when the token names none.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.common.key_id.as_deref() == kid)
    }
}

/// A key set kept in step with its file.
#[derive(Debug)]
pub struct Jwks {
    path: PathBuf,
    current: RwLock<Arc<KeySet>>,
    /// A checksum of the file's bytes at the last read.
    stamp: Mutex<Option<u32>>,
}

impl Jwks {
    /// Reads the key set; an error stops the broker from starting.
    pub fn load(path: &Path) -> Result<Jwks, JwksError> {
        let bytes = read(path)?;
        let keys = parse(path, &bytes)?;
        Ok(Jwks {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(keys)),
            stamp: Mutex::new(Some(crc32c::crc32c(&bytes))),
        })
    }

    /// The keys in force now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the file again if it changed. `Ok(true)` when the keys were
    /// renewed; on an error the keys in force stay, and the same contents
    /// are not tried again.
    pub fn reload_if_changed(&self) -> Result<bool, JwksError> {
        let bytes = read(&self.path)?;
        let stamp = Some(crc32c::crc32c(&bytes));
        {
            let mut seen = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == stamp {
                return Ok(false);
            }
            *seen = stamp;
        }
        let keys = parse(&self.path, &bytes)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(true)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwksError> {
    std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, bytes: &[u8]) -> Result<KeySet, JwksError> {
    KeySet::parse(bytes).map_err(|reason| JwksError::Invalid {
        path: path.to_path_buf(),
        reason,
    })
}

/// Checks every key set's file every [`RELOAD_CHECK`], forever.
pub async fn watch(sets: Vec<Arc<Jwks>>) {
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for set in &sets {
            match set.reload_if_changed() {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(jwks = %set.path().display(), "OAUTHBEARER keys renewed")
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "OAUTHBEARER key set changed but cannot be used; keeping the previous keys"
                ),
            }
        }
    }
}

/// Signing keys made for tests, with their public JWKs.
#[cfg(test)]
pub(crate) mod test_keys {
    use base64::Engine;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use ring::rand::SystemRandom;
    use ring::signature::{self, KeyPair};

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A new key: what signs, its algorithm, and its public JWK.
    pub struct TestKey {
        pub signing: EncodingKey,
        pub alg: Algorithm,
        pub jwk: serde_json::Value,
    }

    /// An ECDSA P-256 key (ES256) with key id `kid`.
    pub fn ec(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("pair");
        // An uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        TestKey {
            signing: EncodingKey::from_ec_der(pkcs8.as_ref()),
            alg: Algorithm::ES256,
            jwk: serde_json::json!({"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
                                    "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        }
    }

    /// An Ed25519 key (EdDSA) with key id `kid`.
    pub fn ed25519(kid: &str) -> TestKey {
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        TestKey {
            signing: EncodingKey::from_ed_der(pkcs8.as_ref()),
            alg: Algorithm::EdDSA,
            jwk: serde_json::json!({"kty": "OKP", "kid": kid, "crv": "Ed25519",
                                    "x": b64(pair.public_key().as_ref())}),
        }
    }

    /// A JWKS document of these keys' public halves.
    pub fn document(keys: &[&TestKey]) -> String {
        serde_json::json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::{document, ec, ed25519};
    use super::*;

    #[test]
    fn usable_signature_keys_are_kept() {
        let (a, b) = (ec("a"), ed25519("b"));
        let mut encryption = ec("enc");
        encryption.jwk["use"] = "enc".into();
        let unknown = serde_json::json!({"keys": [a.jwk.clone(), {"kty": "XYZ"}]}).to_string();
        let cases: Vec<(String, Result<usize, &str>)> = vec![
            (document(&[&a, &b]), Ok(2)),
            // An encryption key and an unknown kind are skipped.
            (document(&[&a, &encryption]), Ok(1)),
            (unknown, Ok(1)),
            (r#"{"keys":[]}"#.into(), Err("no signature key")),
            (r#"{"kty":"RSA"}"#.into(), Err("not a JWKS document")),
            ("not json".into(), Err("not a JWKS document")),
        ];
        for (text, want) in cases {
            match (KeySet::parse(text.as_bytes()), want) {
                (Ok(set), Ok(n)) => assert_eq!(set.keys.len(), n, "{text}"),
                (Err(e), Err(words)) => assert!(e.contains(words), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_token_names_its_key_or_may_use_any() {
        let set = KeySet::parse(document(&[&ec("r1"), &ec("e1")]).as_bytes()).expect("set");
        let ids = |kid| {
            set.candidates(kid)
                .map(|k| k.common.key_id.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Some("e1")), ["e1"]);
        assert_eq!(ids(None), ["r1", "e1"]);
        assert!(ids(Some("gone")).is_empty());
    }

    #[test]
    fn a_changed_file_renews_the_keys_and_a_broken_one_keeps_them() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("jwks.json");
        let (a, b) = (ec("a"), ec("b"));
        std::fs::write(&path, document(&[&a])).expect("write");
        let jwks = Jwks::load(&path).expect("loads");
        assert_eq!(jwks.keys().candidates(None).count(), 1);
        assert!(!jwks.reload_if_changed().expect("unchanged"));
        std::fs::write(&path, document(&[&a, &b])).expect("write");
        assert!(jwks.reload_if_changed().expect("renewed"));
        assert_eq!(jwks.keys().candidates(None).count(), 2);
        std::fs::write(&path, "{").expect("write");
        assert!(jwks.reload_if_changed().is_err());
        assert_eq!(jwks.keys().candidates(None).count(), 2);
        assert!(Jwks::load(&dir.path().join("missing.json")).is_err());
    }
}
