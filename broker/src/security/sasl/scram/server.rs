//! The broker's side of one SCRAM exchange.
//!
//! ```text
//! client-first  ->  look the user up, answer server-first (our nonce,
//!                   the user's salt and iterations)
//! client-final  ->  check the proof against StoredKey, answer
//!                   server-final (our signature): authenticated
//! ```
//!
//! Failures follow Kafka's `ScramSaslServer`: an unknown user is refused
//! at once, at the client-first message, with the same generic answer as
//! a wrong password later; an authorization id other than the username
//! gets Kafka's own sentence, once the user is known to exist.

use std::fmt;
use std::mem;

use super::credential::{xor, Hash, ScramCredential};
use super::message::{encode_base64, parse_client_final, parse_client_first, random_nonce};
use super::MIN_ITERATIONS;
use crate::security::sasl::{fixed_time, Mechanism, Refusal, SaslError};

/// One SCRAM exchange, server side: feed it the client's two messages in
/// turn. After any error the exchange is over and refuses everything.
///
/// `Debug` shows the mechanism and how far the exchange got.
pub struct ScramServer {
    mechanism: Mechanism,
    hash: Hash,
    state: State,
    /// The nonce part to add instead of a random one (tests reproducing
    /// published exchanges).
    fixed_nonce: Option<String>,
}

/// How far the exchange got.
enum State {
    /// Waiting for client-first.
    Started,
    /// Sent server-first; waiting for client-final.
    Challenged(Box<Challenge>),
    /// Sent server-final: the client is authenticated.
    Authenticated,
    /// Refused; nothing more is accepted.
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Started => "started",
            State::Challenged(_) => "challenged",
            State::Authenticated => "authenticated",
            State::Failed => "failed",
        }
    }
}

/// What the server-first message committed to, kept for the final step.
struct Challenge {
    username: String,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state.name())
            .finish()
    }
}

impl ScramServer {
    /// A new exchange for a SCRAM mechanism.
    ///
    /// # Panics
    ///
    /// If `mechanism` is PLAIN.
    pub fn new(mechanism: Mechanism) -> ScramServer {
        ScramServer {
            mechanism,
            hash: Hash::of(mechanism),
            state: State::Started,
            fixed_nonce: None,
        }
    }

    /// An exchange that adds `nonce` to the client's instead of a random
    /// one, to reproduce a published exchange byte for byte.
    #[cfg(test)]
    pub(crate) fn with_nonce(mechanism: Mechanism, nonce: &str) -> ScramServer {
        ScramServer {
            fixed_nonce: Some(nonce.to_string()),
            ..ScramServer::new(mechanism)
        }
    }

    /// The mechanism being run.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the client has proved who it is.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
    }

    /// Takes the client-first message and answers the server-first one.
    /// `lookup` gives the credential of a username for this mechanism,
    /// `None` if the user has none.
    pub fn client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, SaslError> {
        match mem::replace(&mut self.state, State::Failed) {
            State::Started => {}
            other => return Err(self.out_of_turn("client-first", &other)),
        }
        let challenge = self.challenge(message, lookup)?;
        let server_first = challenge.server_first.clone().into_bytes();
        self.state = State::Challenged(Box::new(challenge));
        Ok(server_first)
    }

    /// Takes the client-final message; if its proof holds, gives the
    /// authenticated username and the server-final message to send.
    pub fn client_final(&mut self, message: &[u8]) -> Result<(String, Vec<u8>), SaslError> {
        let challenge = match mem::replace(&mut self.state, State::Failed) {
            State::Challenged(challenge) => challenge,
            other => return Err(self.out_of_turn("client-final", &other)),
        };
        let server_final = self.verify(&challenge, message)?;
        self.state = State::Authenticated;
        Ok((challenge.username, server_final))
    }

    fn challenge(
        &self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Challenge, SaslError> {
        let mechanism = self.mechanism;
        let first = parse_client_first(mechanism, message)?;
        let username = &first.username;
        if first.token_auth {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!("{username:?} asked for delegation-token authentication, which Gregor does not support"),
            ));
        }
        let credential = lookup(username).ok_or_else(|| {
            SaslError::invalid_credentials(
                mechanism,
                format!("unknown user {username:?} (no {mechanism} credential)"),
            )
        })?;
        if let Some(authzid) = first
            .authzid
            .as_ref()
            .filter(|authzid| *authzid != username)
        {
            return Err(SaslError::AuthenticationFailed {
                mechanism,
                reason: format!("user {username:?} asked to act as {authzid:?}"),
                refusal: Refusal::AuthorizationIdNotUsername,
            });
        }
        if credential.iterations < MIN_ITERATIONS {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!(
                    "the credential of {username:?} has {} iterations, fewer than the minimum {MIN_ITERATIONS}",
                    credential.iterations
                ),
            ));
        }
        let len = self.hash.len();
        if credential.stored_key.len() != len || credential.server_key.len() != len {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!(
                    "the stored credential of {username:?} does not have {mechanism}'s key length"
                ),
            ));
        }
        let our_part = match &self.fixed_nonce {
            Some(nonce) => nonce.clone(),
            None => random_nonce().map_err(|_| {
                SaslError::invalid_credentials(mechanism, "no random numbers for the server nonce")
            })?,
        };
        let nonce = format!("{}{our_part}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            encode_base64(&credential.salt),
            credential.iterations
        );
        Ok(Challenge {
            username: first.username.clone(),
            credential,
            gs2_header: first.gs2_header.to_string(),
            client_first_bare: first.bare.to_string(),
            server_first,
            nonce,
        })
    }

    /// Checks client-final against the challenge (RFC 5802 section 3):
    /// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage) must hash
    /// to StoredKey. Gives server-final.
    fn verify(&self, challenge: &Challenge, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        let mechanism = self.mechanism;
        let username = &challenge.username;
        let last = parse_client_final(mechanism, message)?;
        // Without channel binding, c= is the gs2 header again: a client
        // that sent another one may have been tampered with on the way.
        if last.channel_binding != challenge.gs2_header.as_bytes() {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!("{username:?}: the channel binding (c=) does not repeat the gs2 header"),
            ));
        }
        // Kafka accepts a nonce that ends with the agreed one: librdkafka
        // before 2.x (Debian's kcat among its users) repeats its own part
        // in front. The proof still covers the message as sent.
        if !last.nonce.ends_with(&challenge.nonce) {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!("{username:?}: the nonce in client-final is not the one agreed"),
            ));
        }
        let credential = &challenge.credential;
        if last.proof.len() != self.hash.len() {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!(
                    "{username:?}: a proof of {} bytes, not {}",
                    last.proof.len(),
                    self.hash.len()
                ),
            ));
        }
        let auth_message = format!(
            "{},{},{}",
            challenge.client_first_bare, challenge.server_first, last.without_proof
        );
        let client_signature = self
            .hash
            .hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key = xor(&last.proof, &client_signature);
        if !fixed_time::equal(&credential.stored_key, &self.hash.digest(&client_key)) {
            return Err(SaslError::invalid_credentials(
                mechanism,
                format!("{username:?}: wrong proof (wrong password)"),
            ));
        }
        let server_signature = self
            .hash
            .hmac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", encode_base64(&server_signature)).into_bytes())
    }

    fn out_of_turn(&self, message: &str, state: &State) -> SaslError {
        SaslError::malformed(
            self.mechanism,
            format!(
                "{message} message out of turn: the exchange is {}",
                state.name()
            ),
        )
    }
}
