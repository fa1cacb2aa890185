//! SASL authentication as Kafka does it, without the sockets: the pure
//! logic of the mechanisms a SASL_PLAINTEXT or SASL_SSL listener offers.
//!
//! A Kafka client picks a mechanism in SaslHandshake and then sends the
//! mechanism's messages one by one as the opaque bytes of SaslAuthenticate
//! requests; the broker answers each with the mechanism's next message, or
//! with SASL_AUTHENTICATION_FAILED and a text for the user. This module is
//! what turns those bytes into a verdict:
//!
//! - [`Mechanism`] names the mechanisms Gregor offers, exactly as they are
//!   spelled on the wire and in `sasl.enabled.mechanisms`.
//! - [`jaas`] reads a listener's `sasl.jaas.config`: PLAIN's users and
//!   passwords, and the credentials the broker itself logs in with when it
//!   is the client on a SASL inter-broker listener.
//! - [`plain`] is RFC 4616 PLAIN: one message, the password in it.
//! - [`login`] is the broker as a client: a follower logging in to its
//!   leader's SASL inter-broker listener (for OAUTHBEARER with tokens from
//!   the provider's token endpoint, [`token_endpoint`]);
//! - [`scram`] is RFC 5802 SCRAM with SHA-256 (RFC 7677) and SHA-512:
//!   credentials derived from a password (what the metadata quorum
//!   stores), the server's and the client's side of the exchange.
//! - [`oauthbearer`] is RFC 7628 OAUTHBEARER: one message carrying a JWT,
//!   checked against the identity provider's keys ([`jwks`], from a file or
//!   fetched from the provider by [`idp`]) and the expected issuer and
//!   audience, as Kafka's OAuthBearerValidatorCallbackHandler.
//!
//! Every failure is a [`SaslError`]: its `Display` is for the broker's log
//! (it may name the user, never a password or key) and
//! [`SaslError::client_message`] is the text Kafka would put in
//! SaslAuthenticate's `error_message`, which reveals no more than Kafka's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod fixed_time;
pub mod idp;
pub mod jaas;
pub mod jwks;
pub mod login;
pub mod oauthbearer;
pub mod plain;
pub mod scram;
pub mod token_endpoint;

/// A SASL mechanism Gregor offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password in clear, checked against the
    /// listener's JAAS configuration.
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677).
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512` (RFC 5802 with SHA-512, as Kafka defines it).
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628): a JWT from an identity provider.
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism, in a stable order.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    /// The name on the wire and in configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Whether this is one of the SCRAM mechanisms (credentials in the
    /// metadata quorum rather than in the JAAS configuration).
    pub fn is_scram(&self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha512)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mechanism name Gregor does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SASL mechanism {0:?}; Gregor offers PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER")]
pub struct UnknownMechanism(pub String);

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    /// Exact and case-sensitive, as Kafka matches a SaslHandshake's
    /// mechanism against `sasl.enabled.mechanisms`: `plain` is not `PLAIN`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .into_iter()
            .find(|mechanism| mechanism.name() == name)
            .ok_or_else(|| UnknownMechanism(name.to_string()))
    }
}

/// What a failed exchange tells the client, in Kafka's words.
///
/// Kafka sends the text of a `SaslAuthenticationException` as it is and
/// replaces the text of any other `SaslException` by one generic sentence
/// naming only the mechanism, so that a client cannot learn, for instance,
/// whether a user exists. Each variant is one of those answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The generic answer: "Authentication failed during authentication
    /// due to invalid credentials with SASL mechanism M". Kafka gives it for
    /// every SCRAM failure and for malformed messages of any mechanism.
    InvalidCredentials,
    /// PLAIN's answer to an unknown user or a wrong password: "Authentication
    /// failed: Invalid username or password".
    InvalidUsernameOrPassword,
    /// The answer of PLAIN and SCRAM when the client asks to act as someone
    /// other than the user it proved to be (an authorization id that is not
    /// the username).
    AuthorizationIdNotUsername,
}

/// Why a SASL exchange failed.
///
/// `Display` is for the broker's log: it may name the user and say what
/// exactly was wrong, but never holds a password, salted password or key.
/// [`SaslError::client_message`] is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// A message that does not parse, or that comes out of turn; `what`
    /// says what is wrong with it.
    #[error("{mechanism}: malformed message: {what}")]
    Malformed {
        /// The mechanism being run.
        mechanism: Mechanism,
        /// What is wrong, for the log.
        what: String,
    },
    /// A well-formed exchange whose credentials are refused.
    #[error("{mechanism}: authentication failed: {reason}")]
    AuthenticationFailed {
        /// The mechanism being run.
        mechanism: Mechanism,
        /// Why, for the log; may name the user.
        reason: String,
        /// What the client is told.
        refusal: Refusal,
    },
}

impl SaslError {
    /// A message that does not parse.
    pub fn malformed(mechanism: Mechanism, what: impl Into<String>) -> SaslError {
        SaslError::Malformed {
            mechanism,
            what: what.into(),
        }
    }

    /// Refused credentials, answered with Kafka's generic sentence.
    pub fn invalid_credentials(mechanism: Mechanism, reason: impl Into<String>) -> SaslError {
        SaslError::AuthenticationFailed {
            mechanism,
            reason: reason.into(),
            refusal: Refusal::InvalidCredentials,
        }
    }

    /// The mechanism that failed.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            SaslError::Malformed { mechanism, .. }
            | SaslError::AuthenticationFailed { mechanism, .. } => *mechanism,
        }
    }

    /// The text for SaslAuthenticate's `error_message` (error code
    /// SASL_AUTHENTICATION_FAILED), as Kafka words it for a first
    /// authentication.
    pub fn client_message(&self) -> String {
        self.client_text("authentication")
    }

    /// The same text when a connection re-authenticates (KIP-368), where
    /// Kafka's generic sentence says "re-authentication".
    pub fn client_message_on_reauthentication(&self) -> String {
        self.client_text("re-authentication")
    }

    fn client_text(&self, phase: &str) -> String {
        let refusal = match self {
            // Kafka parses messages inside the mechanism, whose
            // `SaslException`s all get the generic sentence.
            SaslError::Malformed { .. } => Refusal::InvalidCredentials,
            SaslError::AuthenticationFailed { refusal, .. } => *refusal,
        };
        match refusal {
            Refusal::InvalidCredentials => format!(
                "Authentication failed during {phase} due to invalid credentials with SASL mechanism {}",
                self.mechanism()
            ),
            Refusal::InvalidUsernameOrPassword => {
                "Authentication failed: Invalid username or password".to_string()
            }
            Refusal::AuthorizationIdNotUsername => {
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip_exactly() {
        let cases: &[(&str, Option<Mechanism>)] = &[
            ("PLAIN", Some(Mechanism::Plain)),
            ("SCRAM-SHA-256", Some(Mechanism::ScramSha256)),
            ("SCRAM-SHA-512", Some(Mechanism::ScramSha512)),
            // Kafka compares names case-sensitively.
            ("plain", None),
            ("scram-sha-256", None),
            ("SCRAM-SHA-1", None),
            ("GSSAPI", None),
            ("OAUTHBEARER", Some(Mechanism::OAuthBearer)),
            ("oauthbearer", None),
            (" PLAIN", None),
            ("", None),
        ];
        for (name, expected) in cases {
            match (name.parse::<Mechanism>(), expected) {
                (Ok(parsed), Some(expected)) => {
                    assert_eq!(parsed, *expected, "{name}");
                    assert_eq!(parsed.name(), *name);
                    assert_eq!(parsed.to_string(), *name);
                }
                (Err(UnknownMechanism(carried)), None) => assert_eq!(carried, *name),
                (got, want) => panic!("{name:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn mechanisms_serialize_as_their_names() {
        for mechanism in Mechanism::ALL {
            let json = serde_json::to_string(&mechanism).expect("serialize");
            assert_eq!(json, format!("\"{}\"", mechanism.name()));
            let back: Mechanism = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, mechanism);
        }
        assert!(serde_json::from_str::<Mechanism>("\"plain\"").is_err());
    }

    #[test]
    fn only_scram_mechanisms_are_scram() {
        assert!(!Mechanism::Plain.is_scram());
        assert!(Mechanism::ScramSha256.is_scram());
        assert!(Mechanism::ScramSha512.is_scram());
        assert!(!Mechanism::OAuthBearer.is_scram());
    }

    #[test]
    fn client_messages_are_kafkas() {
        let cases: &[(SaslError, &str)] = &[
            (
                SaslError::malformed(Mechanism::Plain, "expected 3 tokens"),
                "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN",
            ),
            (
                SaslError::invalid_credentials(Mechanism::ScramSha256, "wrong proof for alice"),
                "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256",
            ),
            (
                SaslError::invalid_credentials(Mechanism::ScramSha512, "unknown user bob"),
                "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
            ),
            (
                SaslError::AuthenticationFailed {
                    mechanism: Mechanism::Plain,
                    reason: "wrong password for alice".into(),
                    refusal: Refusal::InvalidUsernameOrPassword,
                },
                "Authentication failed: Invalid username or password",
            ),
            (
                SaslError::AuthenticationFailed {
                    mechanism: Mechanism::ScramSha256,
                    reason: "alice asked to act as bob".into(),
                    refusal: Refusal::AuthorizationIdNotUsername,
                },
                "Authentication failed: Client requested an authorization id that is different from username",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.client_message(), *text, "{error}");
        }
        assert_eq!(
            SaslError::malformed(Mechanism::ScramSha512, "x").client_message_on_reauthentication(),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
    }

    #[test]
    fn the_log_text_names_the_mechanism_and_the_reason() {
        let error = SaslError::invalid_credentials(Mechanism::ScramSha256, "unknown user bob");
        assert_eq!(
            error.to_string(),
            "SCRAM-SHA-256: authentication failed: unknown user bob"
        );
        assert_eq!(error.mechanism(), Mechanism::ScramSha256);
    }
}
