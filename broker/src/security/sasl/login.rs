//! The broker as a SASL client: a follower logs in to its leader's
//! inter-broker listener when that listener is SASL_PLAINTEXT or SASL_SSL,
//! with `sasl.mechanism.inter.broker.protocol` and the `username` and
//! `password` of that listener's JAAS line, or for OAUTHBEARER a token
//! from the identity provider's token endpoint, as a Kafka broker does.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_client::{ClientError, Connection};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::ResponseError;

use super::scram::ScramClient;
use super::token_endpoint::{TokenError, Tokens};
use super::{oauthbearer, plain, Mechanism};
use crate::handlers::text;

/// Who this broker logs in as, and how.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    /// PLAIN or SCRAM with a username and password.
    Password {
        /// The mechanism.
        mechanism: Mechanism,
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// OAUTHBEARER with tokens from the token endpoint.
    Bearer(Arc<Tokens>),
}

impl Login {
    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Login::Password { mechanism, .. } => *mechanism,
            Login::Bearer(_) => Mechanism::OAuthBearer,
        }
    }

    /// Who logs in: the username, or the client id tokens are asked with.
    pub fn who(&self) -> &str {
        match self {
            Login::Password { username, .. } => username,
            Login::Bearer(tokens) => tokens.client_id(),
        }
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("mechanism", &self.mechanism())
            .field("who", &self.who())
            .finish_non_exhaustive()
    }
}

/// Why logging in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The connection failed.
    #[error(transparent)]
    Connection(#[from] ClientError),
    /// No token could be had from the identity provider.
    #[error("OAUTHBEARER login: {0}")]
    Token(#[from] TokenError),
    /// The other broker refused, with its reason.
    #[error("{mechanism} login as {username:?} refused: {reason}")]
    Refused {
        /// The mechanism.
        mechanism: Mechanism,
        /// The user.
        username: String,
        /// What the other broker said.
        reason: String,
    },
}

/// Logs in on a fresh connection; the session's lifetime (`None`: no
/// limit), after which the connection must be replaced.
pub async fn log_in(conn: &mut Connection, login: &Login) -> Result<Option<Duration>, LoginError> {
    let refused = |reason: String| LoginError::Refused {
        mechanism: login.mechanism(),
        username: login.who().to_string(),
        reason,
    };
    let mut handshake = SaslHandshakeRequest::default();
    handshake.mechanism = text(login.mechanism().name());
    let answer = conn.send(&handshake, 1).await?;
    if answer.error_code != 0 {
        let offered: Vec<String> = answer.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(refused(format!(
            "{} (the listener offers {})",
            error_name(answer.error_code),
            offered.join(", ")
        )));
    }
    let lifetime = match login {
        Login::Bearer(tokens) => {
            let message = oauthbearer::client_message(&tokens.token().await?);
            authenticate(conn, message, &refused).await?.1
        }
        Login::Password {
            mechanism: Mechanism::Plain,
            username,
            password,
        } => {
            let message = plain::client_message(username, password);
            authenticate(conn, message, &refused).await?.1
        }
        Login::Password {
            mechanism,
            username,
            password,
        } => {
            let mut client = ScramClient::new(*mechanism, username, password);
            let (server_first, _) = authenticate(conn, client.client_first(), &refused).await?;
            let client_final = client
                .client_final(&server_first)
                .map_err(|e| refused(e.to_string()))?;
            let (server_final, lifetime) = authenticate(conn, client_final, &refused).await?;
            client
                .verify_server_final(&server_final)
                .map_err(|e| refused(e.to_string()))?;
            lifetime
        }
    };
    Ok(lifetime)
}

/// One SaslAuthenticate round: the other side's bytes and session lifetime.
async fn authenticate(
    conn: &mut Connection,
    message: Vec<u8>,
    refused: &impl Fn(String) -> LoginError,
) -> Result<(Bytes, Option<Duration>), LoginError> {
    let mut request = SaslAuthenticateRequest::default();
    request.auth_bytes = Bytes::from(message);
    let answer = conn.send(&request, 2).await?;
    if answer.error_code != 0 {
        let said = answer
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default();
        return Err(refused(format!(
            "{}: {said}",
            error_name(answer.error_code)
        )));
    }
    let lifetime = u64::try_from(answer.session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    Ok((answer.auth_bytes, lifetime))
}

fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("error {code}"),
    }
}
