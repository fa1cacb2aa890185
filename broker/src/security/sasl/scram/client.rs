//! The broker's side of a SCRAM exchange when it is the client: on a SASL
//! inter-broker listener, logging in to another broker with the
//! `username` and `password` of the listener's JAAS configuration.
//!
//! ```text
//! client_first()           ->  n,,n=<user>,r=<our nonce>
//! client_final(server-first)  ->  c=biws,r=<nonce>,p=<proof>
//! verify_server_final(server-final)   the server knew our credential
//! ```
//!
//! Like Kafka's client it sends no authorization id and no extensions.
//! It refuses a server nonce that does not extend its own and an
//! iteration count outside Kafka's bounds: below, the credential is weak;
//! above, a server could make this broker spend as long as it likes on
//! PBKDF2, and Kafka's controller never stores such counts.

use std::fmt;

use super::credential::{xor, Hash};
use super::message::{
    encode_base64, encode_saslname, parse_server_final, parse_server_first, random_nonce,
    ServerFinal,
};
use super::{MAX_ITERATIONS, MIN_ITERATIONS};
use crate::security::sasl::{fixed_time, Mechanism, SaslError};

/// Without channel binding or authorization id, the gs2 header is `n,,`;
/// its base64 is what client-final's `c=` carries.
const GS2_HEADER: &str = "n,,";

/// One SCRAM exchange, client side.
///
/// `Debug` shows the mechanism, the username and how far the exchange
/// got, not the password.
pub struct ScramClient {
    mechanism: Mechanism,
    hash: Hash,
    username: String,
    password: String,
    state: State,
    /// The nonce to send instead of a random one (tests reproducing
    /// published exchanges).
    fixed_nonce: Option<String>,
}

/// How far the exchange got.
enum State {
    /// Nothing sent yet.
    Initial,
    /// Sent client-first with this nonce and bare message.
    Started { nonce: String, bare: String },
    /// Sent client-final; the server must prove itself with this
    /// signature.
    Proved { server_signature: Vec<u8> },
    /// Refused; nothing more is accepted.
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Started { .. } => "started",
            State::Proved { .. } => "proved",
            State::Failed => "failed",
        }
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &format_args!("[hidden]"))
            .field("state", &self.state.name())
            .finish()
    }
}

impl ScramClient {
    /// A new exchange logging in as `username` with `password`.
    ///
    /// # Panics
    ///
    /// If `mechanism` is PLAIN.
    pub fn new(
        mechanism: Mechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            hash: Hash::of(mechanism),
            username: username.into(),
            password: password.into(),
            state: State::Initial,
            fixed_nonce: None,
        }
    }

    /// An exchange that sends `nonce` instead of a random one, to
    /// reproduce a published exchange byte for byte.
    #[cfg(test)]
    pub(crate) fn with_nonce(
        mechanism: Mechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> ScramClient {
        ScramClient {
            fixed_nonce: Some(nonce.to_string()),
            ..ScramClient::new(mechanism, username, password)
        }
    }

    /// The mechanism being run.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The client-first message. Calling it again starts the exchange
    /// over, with a new nonce.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails: there is no sound
    /// nonce to send instead.
    pub fn client_first(&mut self) -> Vec<u8> {
        let nonce = match &self.fixed_nonce {
            Some(nonce) => nonce.clone(),
            None => random_nonce().expect("the operating system's random source failed"),
        };
        let bare = format!("n={},r={nonce}", encode_saslname(&self.username));
        let message = format!("{GS2_HEADER}{bare}").into_bytes();
        self.state = State::Started { nonce, bare };
        message
    }

    /// Takes the server-first message and gives the client-final one,
    /// carrying the proof that we know the password.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let (our_nonce, bare) = match std::mem::replace(&mut self.state, State::Failed) {
            State::Started { nonce, bare } => (nonce, bare),
            other => {
                return Err(SaslError::malformed(
                    self.mechanism,
                    format!(
                        "server-first message out of turn: the exchange is {}",
                        other.name()
                    ),
                ))
            }
        };
        let mechanism = self.mechanism;
        let first = parse_server_first(mechanism, server_first)?;
        // The server's nonce must start with ours and add its own part,
        // or the exchange could be a replay.
        if !first.nonce.starts_with(&our_nonce) || first.nonce.len() == our_nonce.len() {
            return Err(SaslError::invalid_credentials(
                mechanism,
                "the server's nonce does not extend ours",
            ));
        }
        if first.iterations < MIN_ITERATIONS {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!(
                    "the server asks for {} iterations, fewer than the minimum {MIN_ITERATIONS}",
                    first.iterations
                ),
            ));
        }
        if first.iterations > MAX_ITERATIONS {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!(
                    "the server asks for {} iterations, more than the maximum {MAX_ITERATIONS}",
                    first.iterations
                ),
            ));
        }

        let salted = self
            .hash
            .hi(self.password.as_bytes(), &first.salt, first.iterations);
        let client_key = self.hash.client_key(&salted);
        let stored_key = self.hash.digest(&client_key);
        let without_proof = format!(
            "c={},r={}",
            encode_base64(GS2_HEADER.as_bytes()),
            first.nonce
        );
        // The parse checked it is UTF-8: nothing is replaced.
        let server_first = String::from_utf8_lossy(server_first);
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_signature = self
            .hash
            .hmac(&self.hash.server_key(&salted), auth_message.as_bytes());

        self.state = State::Proved { server_signature };
        Ok(format!("{without_proof},p={}", encode_base64(&proof)).into_bytes())
    }

    /// Checks the server-final message: the server's signature proves it
    /// holds our credential; `e=` is the server refusing us.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let mechanism = self.mechanism;
        let State::Proved { server_signature } = &self.state else {
            return Err(SaslError::malformed(
                mechanism,
                format!(
                    "server-final message out of turn: the exchange is {}",
                    self.state.name()
                ),
            ));
        };
        match parse_server_final(mechanism, server_final)? {
            ServerFinal::Error(error) => Err(SaslError::invalid_credentials(
                mechanism,
                format!("the server refused {:?}: {error}", self.username),
            )),
            ServerFinal::Verifier(signature) => {
                if fixed_time::equal(server_signature, &signature) {
                    Ok(())
                } else {
                    Err(SaslError::invalid_credentials(
                        mechanism,
                        "the server's signature is wrong: it does not hold our credential",
                    ))
                }
            }
        }
    }
}
