//! The identity provider's signing keys for OAUTHBEARER: a JSON Web Key
//! Set (RFC 7517) from where `sasl.oauthbearer.jwks.endpoint.url` says.
//!
//! - A `file:` URL is read at start (a broken file stops the broker) and
//!   read again when it changes, so a rotation reaches the broker without
//!   a restart.
//! - An `http:`/`https:` URL is fetched every
//!   `sasl.oauthbearer.jwks.endpoint.refresh.ms`, retried after a failure
//!   with a backoff growing from `...retry.backoff.ms` to
//!   `...retry.backoff.max.ms`, and fetched early when a token names a key
//!   id the set does not have (a provider that just rotated), at most once
//!   per [`EXPEDITE_GAP`]. Unlike Kafka, whose broker fails to start when
//!   the provider cannot be reached, Gregor starts and serves everything
//!   else: OAUTHBEARER logins are refused, saying why, until the first
//!   fetch succeeds. A failed refresh keeps the keys in force.
//!
//! Keys of kinds Gregor cannot verify with (or marked for encryption) are
//! skipped; a set with no usable key is an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use tokio::sync::Notify;

use super::idp::{Idp, IdpError};

/// How often a key set's file is checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(10);

/// The least time between two fetches asked for by unknown key ids, so a
/// client sending made-up key ids cannot make the broker hammer the
/// provider.
pub const EXPEDITE_GAP: Duration = Duration::from_secs(10);

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
    /// The provider could not be asked.
    #[error("JWKS {0}")]
    Fetch(#[from] IdpError),
    /// The document is not a key set Gregor can use.
    #[error("JWKS {from}: {reason}")]
    Invalid {
        /// The file or URL.
        from: String,
        /// What is wrong.
        reason: String,
    },
}

/// Where a key set comes from, and how often it is asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file, read again when it changes.
    File(PathBuf),
    /// An HTTP(S) endpoint of the provider.
    Url {
        /// The endpoint.
        url: String,
        /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`.
        refresh: Duration,
        /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms`.
        backoff: Duration,
        /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms`.
        backoff_max: Duration,
        /// The JAAS line's `ssl.truststore.location`, trusted next to the
        /// system's roots.
        trust_store: Option<String>,
    },
}

impl JwksSource {
    fn describe(&self) -> String {
        match self {
            JwksSource::File(path) => path.display().to_string(),
            JwksSource::Url { url, .. } => url.clone(),
        }
    }
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

    /// Whether the set has no key at all (a provider not reached yet).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A key set kept in step with its source.
#[derive(Debug)]
pub struct Jwks {
    source: JwksSource,
    idp: Option<Idp>,
    current: RwLock<Arc<KeySet>>,
    /// A checksum of the document at the last read.
    stamp: Mutex<Option<u32>>,
    /// Wakes the refresher early (an unknown key id).
    soon: Notify,
}

impl Jwks {
    /// The key set of `source`. A file is read now and an error stops the
    /// broker; a URL is fetched by [`Jwks::maintain`], so the set starts
    /// empty.
    pub fn load(source: &JwksSource) -> Result<Jwks, JwksError> {
        let (keys, stamp, idp) = match source {
            JwksSource::File(path) => {
                let bytes = read(path)?;
                let keys = parse(source, &bytes)?;
                (keys, Some(crc32c::crc32c(&bytes)), None)
            }
            JwksSource::Url { trust_store, .. } => (
                KeySet::default(),
                None,
                Some(Idp::new(trust_store.as_deref())?),
            ),
        };
        Ok(Jwks {
            source: source.clone(),
            idp,
            current: RwLock::new(Arc::new(keys)),
            stamp: Mutex::new(stamp),
            soon: Notify::new(),
        })
    }

    /// The keys in force now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where the keys come from, for messages.
    pub fn origin(&self) -> String {
        self.source.describe()
    }

    /// A token named a key id the set lacks: fetch the set again soon
    /// (URL sources only; files are watched anyway).
    pub fn key_missing(&self) {
        self.soon.notify_one();
    }

    /// Takes a new document. `Ok(true)` when the keys were renewed; the
    /// same document is not parsed twice, and a broken one keeps the keys
    /// in force.
    fn renew(&self, bytes: &[u8]) -> Result<bool, JwksError> {
        let stamp = Some(crc32c::crc32c(bytes));
        {
            let mut seen = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == stamp {
                return Ok(false);
            }
            *seen = stamp;
        }
        let keys = parse(&self.source, bytes)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(true)
    }

    /// Reads the file again if it changed (file sources).
    pub fn reload_if_changed(&self) -> Result<bool, JwksError> {
        match &self.source {
            JwksSource::File(path) => self.renew(&read(path)?),
            JwksSource::Url { .. } => Ok(false),
        }
    }

    /// Asks the provider once (URL sources).
    pub async fn fetch(&self) -> Result<bool, JwksError> {
        match (&self.source, &self.idp) {
            (JwksSource::Url { url, .. }, Some(idp)) => self.renew(&idp.get(url).await?),
            _ => self.reload_if_changed(),
        }
    }

    /// Keeps the set in step with its source, for ever.
    pub async fn maintain(self: Arc<Self>) {
        match self.source.clone() {
            JwksSource::File(_) => self.watch_file().await,
            JwksSource::Url {
                refresh,
                backoff,
                backoff_max,
                ..
            } => self.refresh_from_url(refresh, backoff, backoff_max).await,
        }
    }

    async fn watch_file(&self) {
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.report(self.reload_if_changed());
        }
    }

    async fn refresh_from_url(&self, refresh: Duration, backoff: Duration, max: Duration) {
        let mut failures = 0u32;
        loop {
            let asked = Instant::now();
            let outcome = self.fetch().await;
            let wait = match &outcome {
                Ok(_) => {
                    failures = 0;
                    refresh
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    retry_after(failures, backoff, max)
                }
            };
            self.report(outcome);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.soon.notified() => {
                    tokio::time::sleep_until((asked + EXPEDITE_GAP).into()).await;
                }
            }
        }
    }

    fn report(&self, outcome: Result<bool, JwksError>) {
        match outcome {
            Ok(false) => {}
            Ok(true) => tracing::info!(jwks = %self.origin(), "OAUTHBEARER keys renewed"),
            Err(e) if self.keys().is_empty() => tracing::error!(
                error = %e,
                "OAUTHBEARER has no keys yet: logins are refused until the key set is fetched"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "OAUTHBEARER key set cannot be renewed; keeping the previous keys"
            ),
        }
    }
}

/// How long to wait after the `failures`-th failure in a row: `backoff`
/// doubled each time, at most `max`.
pub fn retry_after(failures: u32, backoff: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    backoff.saturating_mul(1 << doublings).min(max)
}

fn read(path: &Path) -> Result<Vec<u8>, JwksError> {
    std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(source: &JwksSource, bytes: &[u8]) -> Result<KeySet, JwksError> {
    KeySet::parse(bytes).map_err(|reason| JwksError::Invalid {
        from: source.describe(),
        reason,
    })
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
        let jwks = Jwks::load(&JwksSource::File(path.clone())).expect("loads");
        assert_eq!(jwks.keys().candidates(None).count(), 1);
        assert!(!jwks.reload_if_changed().expect("unchanged"));
        std::fs::write(&path, document(&[&a, &b])).expect("write");
        assert!(jwks.reload_if_changed().expect("renewed"));
        assert_eq!(jwks.keys().candidates(None).count(), 2);
        std::fs::write(&path, "{").expect("write");
        assert!(jwks.reload_if_changed().is_err());
        assert_eq!(jwks.keys().candidates(None).count(), 2);
        assert!(Jwks::load(&JwksSource::File(dir.path().join("missing.json"))).is_err());
    }

    #[test]
    fn failed_fetches_back_off_up_to_the_maximum() {
        let (b, max) = (Duration::from_millis(100), Duration::from_secs(10));
        let cases = [
            (1, 100),
            (2, 200),
            (3, 400),
            (7, 6400),
            (8, 10_000),
            (500, 10_000),
        ];
        for (failures, ms) in cases {
            assert_eq!(
                retry_after(failures, b, max),
                Duration::from_millis(ms),
                "{failures}"
            );
        }
    }
}
