//! What a SCRAM server keeps of a user's password (RFC 5802 section 3):
//! the salt, the iteration count, StoredKey = H(HMAC(SaltedPassword,
//! "Client Key")) and ServerKey = HMAC(SaltedPassword, "Server Key"), where
//! SaltedPassword = Hi(password, salt, iterations) is PBKDF2 with the
//! mechanism's HMAC. Enough to check a client's proof and to prove itself,
//! not to log in as the user.

use std::fmt;
use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

use crate::security::sasl::Mechanism;

/// Length of the salts [`random_salt`] draws: as long as a SHA-256 output,
/// well past RFC 5802's advice that salts be unique per user.
const SALT_LEN: usize = 32;

/// A user's SCRAM credential for one mechanism, as the metadata quorum
/// stores it (Kafka's `UserScramCredentialRecord`).
///
/// `Debug` shows the iteration count only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt the password was hashed with.
    pub salt: Vec<u8>,
    /// H(ClientKey): what a client's proof is checked against.
    pub stored_key: Vec<u8>,
    /// The key the server signs the exchange with.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = format_args!("[hidden]");
        f.debug_struct("ScramCredential")
            .field("salt", &hidden)
            .field("stored_key", &hidden)
            .field("server_key", &hidden)
            .field("iterations", &self.iterations)
            .finish()
    }
}

impl ScramCredential {
    /// The credential for a salted password: what AlterUserScramCredentials
    /// carries, since Kafka's clients salt and hash the password themselves
    /// and send only the result (KIP-554).
    ///
    /// # Panics
    ///
    /// If `mechanism` is PLAIN, which has no SCRAM credentials.
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let hash = Hash::of(mechanism);
        ScramCredential {
            salt,
            stored_key: hash.digest(&hash.client_key(salted_password)),
            server_key: hash.server_key(salted_password),
            iterations,
        }
    }

    /// The credential for a password.
    ///
    /// # Panics
    ///
    /// If `mechanism` is PLAIN, which has no SCRAM credentials.
    pub fn from_password(
        mechanism: Mechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let salted = salted_password(mechanism, password, &salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

/// SaltedPassword = Hi(password, salt, iterations), PBKDF2 with the
/// mechanism's HMAC and an output as long as its hash.
///
/// The password is used as its UTF-8 bytes, without RFC 4013 SASLprep:
/// Kafka's clients and brokers skip it too, and the salted passwords they
/// send must match what this computes. Hi is undefined for 0 iterations,
/// which is taken as 1; callers check [`super::MIN_ITERATIONS`] first.
///
/// # Panics
///
/// If `mechanism` is PLAIN, which has no SCRAM credentials.
pub fn salted_password(
    mechanism: Mechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    Hash::of(mechanism).hi(password.as_bytes(), salt, iterations)
}

/// A fresh random salt.
///
/// # Panics
///
/// If the operating system's random source fails, as the standard
/// library's hash maps do: there is no sound salt to give instead.
pub fn random_salt() -> Vec<u8> {
    let mut salt = vec![0; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .expect("the operating system's random source failed");
    salt
}

/// The hash function and its HMAC behind one SCRAM mechanism.
#[derive(Clone, Copy)]
pub(super) struct Hash {
    hmac: hmac::Algorithm,
    pbkdf2: pbkdf2::Algorithm,
}

impl Hash {
    /// # Panics
    ///
    /// If `mechanism` is not SCRAM: a caller's mistake, never a client's.
    pub(super) fn of(mechanism: Mechanism) -> Hash {
        match mechanism {
            Mechanism::ScramSha256 => Hash {
                hmac: hmac::HMAC_SHA256,
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
            },
            Mechanism::ScramSha512 => Hash {
                hmac: hmac::HMAC_SHA512,
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
            },
            Mechanism::Plain | Mechanism::OAuthBearer => {
                panic!("{mechanism} is not a SCRAM mechanism")
            }
        }
    }

    /// Length of the hash's output, and so of every key, proof and
    /// signature.
    pub(super) fn len(&self) -> usize {
        self.hmac.digest_algorithm().output_len()
    }

    /// H(data)
    pub(super) fn digest(&self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.hmac.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    /// HMAC(key, data)
    pub(super) fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac, key), data)
            .as_ref()
            .to_vec()
    }

    /// Hi(secret, salt, iterations)
    pub(super) fn hi(&self, secret: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        let mut out = vec![0; self.len()];
        pbkdf2::derive(self.pbkdf2, iterations, salt, secret, &mut out);
        out
    }

    /// ClientKey = HMAC(SaltedPassword, "Client Key")
    pub(super) fn client_key(&self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Client Key")
    }

    /// ServerKey = HMAC(SaltedPassword, "Server Key")
    pub(super) fn server_key(&self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Server Key")
    }
}

/// `a XOR b`, byte by byte; the caller makes sure the lengths agree.
pub(super) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        STANDARD.decode(text).expect("base64")
    }

    /// Known values for the inputs of RFC 7677's example ("pencil" and its
    /// salt), computed independently with Python's hashlib and hmac; the
    /// SHA-256 ones reproduce the RFC's messages in the exchange tests.
    #[test]
    fn derives_known_credentials() {
        let cases: &[(Mechanism, &str, &str, u32, &str, &str, &str)] = &[
            (
                Mechanism::ScramSha256,
                "pencil",
                "W22ZaJ0SNY7soEsUEjb6gQ==",
                4096,
                "xKSVEDI6tPlSysH6mUQZOeeOp01r6B3fcJbodRPcYV0=",
                "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
                "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
            ),
            (
                Mechanism::ScramSha512,
                "pencil",
                "W22ZaJ0SNY7soEsUEjb6gQ==",
                4096,
                SHA512_SALTED,
                SHA512_STORED,
                SHA512_SERVER,
            ),
        ];
        for (mechanism, password, salt, iterations, salted, stored, server) in cases {
            let salt = b64(salt);
            let salted_bytes = salted_password(*mechanism, password, &salt, *iterations);
            assert_eq!(STANDARD.encode(&salted_bytes), *salted, "{mechanism}");
            let credential =
                ScramCredential::from_password(*mechanism, password, salt.clone(), *iterations);
            assert_eq!(
                STANDARD.encode(&credential.stored_key),
                *stored,
                "{mechanism}"
            );
            assert_eq!(
                STANDARD.encode(&credential.server_key),
                *server,
                "{mechanism}"
            );
            assert_eq!(credential.salt, salt);
            assert_eq!(credential.iterations, *iterations);
            assert_eq!(
                ScramCredential::from_salted_password(*mechanism, salt, &salted_bytes, *iterations),
                credential
            );
        }
    }

    // Python: salted = hashlib.pbkdf2_hmac("sha512", b"pencil", salt, 4096),
    // stored = sha512(hmac(salted, b"Client Key")), server = hmac(salted,
    // b"Server Key").
    const SHA512_SALTED: &str =
        "8W7+G+Z/HQlQLr1e2SYv3f+6Wjd6tPC2h+XtW6D1Boa4pK4WZHbairO5UdL6kji2OZj0VGG8M6RkgUlJzsljHQ==";
    const SHA512_STORED: &str =
        "6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==";
    const SHA512_SERVER: &str =
        "jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA==";

    #[test]
    fn keys_are_as_long_as_the_hash() {
        for (mechanism, len) in [(Mechanism::ScramSha256, 32), (Mechanism::ScramSha512, 64)] {
            let credential =
                ScramCredential::from_password(mechanism, "pw", b"salt".to_vec(), 4096);
            assert_eq!(credential.stored_key.len(), len);
            assert_eq!(credential.server_key.len(), len);
            assert_eq!(Hash::of(mechanism).len(), len);
        }
    }

    #[test]
    fn zero_iterations_count_as_one() {
        let hash = Hash::of(Mechanism::ScramSha256);
        assert_eq!(hash.hi(b"pw", b"salt", 0), hash.hi(b"pw", b"salt", 1));
        assert_ne!(hash.hi(b"pw", b"salt", 1), hash.hi(b"pw", b"salt", 2));
    }

    #[test]
    fn salts_are_random() {
        let (a, b) = (random_salt(), random_salt());
        assert_eq!(a.len(), SALT_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_hides_salt_and_keys() {
        let credential = ScramCredential {
            salt: vec![0xab; 4],
            stored_key: vec![0xcd; 4],
            server_key: vec![0xef; 4],
            iterations: 8192,
        };
        let shown = format!("{credential:?}");
        for secret in ["171", "205", "239", "ab", "cd", "ef"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("8192"), "{shown}");
    }

    #[test]
    fn serde_round_trips() {
        let credential =
            ScramCredential::from_password(Mechanism::ScramSha512, "pw", random_salt(), 4096);
        let json = serde_json::to_string(&credential).expect("serialize");
        let back: ScramCredential = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, credential);
    }

    #[test]
    #[should_panic(expected = "PLAIN is not a SCRAM mechanism")]
    fn plain_has_no_scram_credential() {
        let _ = salted_password(Mechanism::Plain, "pw", b"salt", 4096);
    }
}
