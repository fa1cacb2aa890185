//! SASL on one connection of a SASL_PLAINTEXT or SASL_SSL listener, as
//! Kafka runs it: before a client has authenticated it may send only
//! ApiVersions, then SaslHandshake naming a mechanism, then the mechanism's
//! messages, each in a SaslAuthenticate request (or, after a v0 handshake,
//! as bare size-prefixed tokens). Anything else closes the connection. Once
//! authenticated, requests go to their handlers under the client's
//! principal; a new SaslHandshake starts a re-authentication (KIP-368),
//! which must prove the same principal, and a session that outlived
//! `connections.max.reauth.ms` is closed at its next request.
//!
//! The state machine decides; `connection` reads, writes and closes.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::ResponseError;
use tokio::time::{Duration, Instant};

use crate::config::sasl::SaslSettings;
use crate::handlers::text;
use crate::protocol::{decode_frame, encode_response, Decoded};
use crate::security::sasl::jwks::Jwks;
use crate::security::sasl::oauthbearer::{self, Bearer};
use crate::security::sasl::scram::{ScramCredential, ScramServer};
use crate::security::sasl::{plain, Mechanism, SaslError};

/// What to do with a frame.
#[derive(Debug)]
pub enum Verdict {
    /// A request for the handlers.
    Dispatch(Bytes),
    /// The authenticator's own answer, to write.
    Answer(BytesMut),
    /// Authentication failed: write the answer if there is one, wait
    /// `connection.failed.authentication.delay.ms`, then close.
    Refuse {
        /// What the client is told (none after a v0 handshake: Kafka closes).
        answer: Option<BytesMut>,
        /// Who tried, if known (`User:name`).
        principal: Option<String>,
        /// Why, for the log.
        reason: String,
    },
    /// A frame out of place: close at once, without an answer.
    Close(String),
}

/// Where the exchange stands.
#[derive(Debug)]
enum State {
    /// No exchange running: before authenticating, or serving.
    Idle,
    /// SaslHandshake accepted `mechanism`; its first message is next.
    Handshaken { mechanism: Mechanism, raw: bool },
    /// SCRAM between the client's first and final messages.
    Scram { server: ScramServer, raw: bool },
}

/// One connection's SASL state.
#[derive(Debug)]
pub struct Authenticator {
    settings: SaslSettings,
    /// The identity provider's keys, when the listener offers OAUTHBEARER.
    jwks: Option<Arc<Jwks>>,
    state: State,
    /// `User:<name>` once authenticated.
    principal: Option<String>,
    /// The mechanism the session was established with.
    session_mechanism: Option<Mechanism>,
    /// When the session ends (`connections.max.reauth.ms`).
    expires: Option<Instant>,
}

impl Authenticator {
    /// A connection on a listener with `settings` (and the listener's
    /// OAUTHBEARER keys, if it offers it), not yet authenticated.
    pub fn new(settings: SaslSettings, jwks: Option<Arc<Jwks>>) -> Self {
        Authenticator {
            settings,
            jwks,
            state: State::Idle,
            principal: None,
            session_mechanism: None,
            expires: None,
        }
    }

    /// The authenticated principal, once there is one.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Whether requests may be read at their full size
    /// (`socket.request.max.bytes`) rather than SASL's bound.
    pub fn authenticated(&self) -> bool {
        self.principal.is_some()
    }

    /// Decides about one frame (without its size prefix); `scram` finds a
    /// user's SCRAM credential in the metadata.
    pub fn on_frame(
        &mut self,
        frame: Bytes,
        scram: impl FnOnce(&str, Mechanism) -> Option<ScramCredential>,
    ) -> Verdict {
        if matches!(
            self.state,
            State::Handshaken { raw: true, .. } | State::Scram { raw: true, .. }
        ) {
            return self.token(&frame, None, scram);
        }
        let Some(api) = api_key(&frame) else {
            return Verdict::Close("a frame too short for a request header".into());
        };
        match (&self.state, api) {
            (State::Idle, ApiKey::SaslHandshake) => self.handshake(frame),
            (State::Idle, _) if self.principal.is_some() => match self.expires {
                Some(at) if Instant::now() >= at => Verdict::Close(format!(
                    "the SASL session of {} ended (connections.max.reauth.ms) without re-authentication",
                    self.principal.as_deref().unwrap_or_default()
                )),
                _ => Verdict::Dispatch(frame),
            },
            (State::Idle, ApiKey::ApiVersions) => Verdict::Dispatch(frame),
            (State::Idle, api) => {
                Verdict::Close(format!("{api:?} request before SASL authentication"))
            }
            (_, ApiKey::SaslAuthenticate) => match decode(frame) {
                Ok((version, correlation_id, RequestKind::SaslAuthenticate(r))) => {
                    self.token(&r.auth_bytes, Some((version, correlation_id)), scram)
                }
                Ok(_) => Verdict::Close("SaslAuthenticate did not decode as one".into()),
                Err(why) => Verdict::Close(why),
            },
            // Requests of a client re-authenticating are served under the
            // session it already has.
            (_, _) if self.principal.is_some() => Verdict::Dispatch(frame),
            (_, api) => Verdict::Close(format!(
                "{api:?} request in the middle of a SASL exchange"
            )),
        }
    }

    fn handshake(&mut self, frame: Bytes) -> Verdict {
        let (version, correlation_id, request) = match decode(frame) {
            Ok((version, correlation_id, RequestKind::SaslHandshake(r))) => {
                (version, correlation_id, r)
            }
            Ok(_) => return Verdict::Close("SaslHandshake did not decode as one".into()),
            Err(why) => return Verdict::Close(why),
        };
        let mut response = SaslHandshakeResponse::default();
        response.mechanisms = self
            .settings
            .mechanisms
            .iter()
            .map(|m| text(m.name()))
            .collect();
        let asked = request.mechanism.to_string();
        let answer = |response: SaslHandshakeResponse| {
            encode_response(
                ApiKey::SaslHandshake,
                version,
                correlation_id,
                &ResponseKind::SaslHandshake(response),
            )
            .ok()
        };
        let offered = asked
            .parse::<Mechanism>()
            .ok()
            .filter(|m| self.settings.mechanisms.contains(m));
        let Some(mechanism) = offered else {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            return Verdict::Refuse {
                answer: answer(response),
                principal: self.principal.clone(),
                reason: format!("SASL mechanism {asked:?} is not enabled on this listener"),
            };
        };
        if self.session_mechanism.is_some_and(|m| m != mechanism) {
            response.error_code = ResponseError::IllegalSaslState.code();
            return Verdict::Refuse {
                answer: answer(response),
                principal: self.principal.clone(),
                reason: format!("re-authentication with {mechanism}, not the session's mechanism"),
            };
        }
        self.state = State::Handshaken {
            mechanism,
            raw: version == 0,
        };
        match answer(response) {
            Some(a) => Verdict::Answer(a),
            None => Verdict::Close("cannot encode the SaslHandshake answer".into()),
        }
    }

    /// One message of the mechanism; `request` is SaslAuthenticate's
    /// version and correlation id, `None` for a bare token.
    fn token(
        &mut self,
        bytes: &[u8],
        request: Option<(i16, i32)>,
        scram: impl FnOnce(&str, Mechanism) -> Option<ScramCredential>,
    ) -> Verdict {
        let state = std::mem::replace(&mut self.state, State::Idle);
        let (outcome, mechanism, raw) = match state {
            State::Handshaken {
                mechanism: Mechanism::Plain,
                raw,
            } => {
                let outcome = plain::parse(bytes)
                    .and_then(|r| plain::verify(self.settings.plain_users.passwords(), &r))
                    .map(|user| (user, Vec::new()));
                (outcome, Mechanism::Plain, raw)
            }
            State::Handshaken {
                mechanism: Mechanism::OAuthBearer,
                raw,
            } => {
                return match self.bearer(bytes) {
                    Ok(bearer) => self.authenticated_as(
                        &bearer.user,
                        Mechanism::OAuthBearer,
                        Vec::new(),
                        request,
                        raw,
                        Some(bearer.lifetime_ms),
                    ),
                    Err(e) => self.refuse(&e, request, raw),
                }
            }
            State::Handshaken { mechanism, raw } => {
                let mut server = ScramServer::new(mechanism);
                match server.client_first(bytes, |user| scram(user, mechanism)) {
                    Ok(server_first) => {
                        self.state = State::Scram { server, raw };
                        return self.answer(request, raw, server_first, 0);
                    }
                    Err(e) => (Err(e), mechanism, raw),
                }
            }
            State::Scram { mut server, raw } => {
                let mechanism = server.mechanism();
                (server.client_final(bytes), mechanism, raw)
            }
            State::Idle => {
                return Verdict::Close("SaslAuthenticate without a SaslHandshake before it".into())
            }
        };
        match outcome {
            Ok((user, reply)) => self.authenticated_as(&user, mechanism, reply, request, raw, None),
            Err(e) => self.refuse(&e, request, raw),
        }
    }

    /// Checks an OAUTHBEARER message's token.
    fn bearer(&self, bytes: &[u8]) -> Result<Bearer, SaslError> {
        let (Some(jwks), Some(oauth)) = (&self.jwks, &self.settings.oauth) else {
            return Err(SaslError::invalid_credentials(
                Mechanism::OAuthBearer,
                "no identity provider keys on this listener",
            ));
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let keys = jwks.keys();
        if keys.is_empty() {
            return Err(SaslError::invalid_credentials(
                Mechanism::OAuthBearer,
                format!(
                    "the identity provider's keys have not been fetched yet from {}",
                    jwks.origin()
                ),
            ));
        }
        let outcome = oauthbearer::authenticate(bytes, &keys, &oauth.rules, now_ms);
        if outcome.is_err() && oauthbearer::names_unknown_key(bytes, &keys) {
            jwks.key_missing();
        }
        outcome
    }

    /// Authenticated as `user`; the session lasts `connections.max.reauth.ms`
    /// or, if shorter, the credential's own `credential_ms` (a token's).
    fn authenticated_as(
        &mut self,
        user: &str,
        mechanism: Mechanism,
        reply: Vec<u8>,
        request: Option<(i16, i32)>,
        raw: bool,
        credential_ms: Option<u64>,
    ) -> Verdict {
        let principal = format!("User:{user}");
        if let Some(before) = self.principal.as_deref().filter(|p| *p != principal) {
            let reason = format!(
                "re-authentication as {principal}: a session cannot change principals (it was {before})"
            );
            return self.refuse_with(
                Some(principal),
                reason,
                "Cannot change principals during re-authentication".into(),
                request,
                raw,
            );
        }
        self.session_mechanism = Some(mechanism);
        self.principal = Some(principal);
        let lifetime = match (self.settings.max_reauth_ms, credential_ms) {
            (0, None) => None,
            (0, Some(c)) => Some(c),
            (max, None) => Some(max),
            (max, Some(c)) => Some(max.min(c)),
        };
        self.expires = lifetime.map(|l| Instant::now() + Duration::from_millis(l));
        self.answer(request, raw, reply, lifetime.unwrap_or(0) as i64)
    }

    fn answer(
        &self,
        request: Option<(i16, i32)>,
        raw: bool,
        reply: Vec<u8>,
        session_lifetime_ms: i64,
    ) -> Verdict {
        match request {
            Some((version, correlation_id)) if !raw => {
                let mut response = SaslAuthenticateResponse::default();
                response.auth_bytes = Bytes::from(reply);
                response.session_lifetime_ms = session_lifetime_ms;
                match encode_response(
                    ApiKey::SaslAuthenticate,
                    version,
                    correlation_id,
                    &ResponseKind::SaslAuthenticate(response),
                ) {
                    Ok(a) => Verdict::Answer(a),
                    Err(e) => Verdict::Close(e.to_string()),
                }
            }
            _ => Verdict::Answer(bare_token(&reply)),
        }
    }

    fn refuse(&mut self, e: &SaslError, request: Option<(i16, i32)>, raw: bool) -> Verdict {
        let client = if self.principal.is_some() {
            e.client_message_on_reauthentication()
        } else {
            e.client_message()
        };
        self.refuse_with(None, e.to_string(), client, request, raw)
    }

    fn refuse_with(
        &mut self,
        principal: Option<String>,
        reason: String,
        client: String,
        request: Option<(i16, i32)>,
        raw: bool,
    ) -> Verdict {
        self.state = State::Idle;
        let answer = match request {
            Some((version, correlation_id)) if !raw => {
                let mut response = SaslAuthenticateResponse::default();
                response.error_code = ResponseError::SaslAuthenticationFailed.code();
                response.error_message = Some(text(client));
                encode_response(
                    ApiKey::SaslAuthenticate,
                    version,
                    correlation_id,
                    &ResponseKind::SaslAuthenticate(response),
                )
                .ok()
            }
            _ => None,
        };
        Verdict::Refuse {
            answer,
            principal: principal.or_else(|| self.principal.clone()),
            reason,
        }
    }
}

/// A request frame's version, correlation id and body.
fn decode(frame: Bytes) -> Result<(i16, i32, RequestKind), String> {
    match decode_frame(frame).map_err(|e| e.to_string())? {
        Decoded::Request {
            version,
            header,
            request,
            ..
        } => Ok((version, header.correlation_id, *request)),
        Decoded::ApiVersionsFallback { .. } => {
            Err("an ApiVersions request of a later version".into())
        }
    }
}

/// The API key of a request frame, if it has one Kafka defines.
fn api_key(frame: &[u8]) -> Option<ApiKey> {
    let raw = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    ApiKey::try_from(raw).ok()
}

/// A token after a v0 handshake: its size, then its bytes.
fn bare_token(reply: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + reply.len());
    out.put_i32(reply.len() as i32);
    out.put_slice(reply);
    out
}

#[cfg(test)]
mod tests;
