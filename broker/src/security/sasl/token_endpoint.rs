//! The broker's own OAUTHBEARER tokens, for logging in to other brokers:
//! asked of the identity provider's token endpoint with the client
//! credentials grant (RFC 6749 4.4), as Kafka's
//! OAuthBearerLoginCallbackHandler does with the JAAS line's `clientId`,
//! `clientSecret` and `scope`. A token is reused by every follower
//! connection until 80 % of its lifetime has passed (Kafka's
//! `sasl.login.refresh.window.factor` default), then a new one is asked for.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;

use super::idp::{Idp, IdpError};

/// The part of a token's lifetime it is used for before a new one is asked.
const REFRESH_FACTOR: f64 = 0.8;

/// How the broker asks for tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `sasl.oauthbearer.token.endpoint.url`.
    pub endpoint: String,
    /// The JAAS line's `clientId`.
    pub client_id: String,
    /// The JAAS line's `clientSecret`.
    pub client_secret: String,
    /// The JAAS line's `scope`, if any.
    pub scope: Option<String>,
    /// The JAAS line's `ssl.truststore.location`, trusted next to the
    /// system's roots for an https: endpoint.
    pub trust_store: Option<String>,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The provider could not be asked, or refused.
    #[error("token endpoint {0}")]
    Endpoint(#[from] IdpError),
    /// The answer holds no usable token.
    #[error("token endpoint {endpoint}: {reason}")]
    Answer {
        /// The endpoint.
        endpoint: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

/// A token and when to stop using it.
#[derive(Debug)]
struct Cached {
    token: String,
    /// Seconds since the epoch.
    renew_at: u64,
}

/// The broker's tokens: asked for when needed, shared by its connections.
#[derive(Debug)]
pub struct Tokens {
    request: TokenRequest,
    state: tokio::sync::Mutex<(Option<Idp>, Option<Cached>)>,
}

impl PartialEq for Tokens {
    fn eq(&self, other: &Tokens) -> bool {
        self.request == other.request
    }
}

impl Eq for Tokens {}

impl Tokens {
    /// Tokens asked for as `request` says; nothing is asked yet.
    pub fn new(request: TokenRequest) -> Tokens {
        Tokens {
            request,
            state: tokio::sync::Mutex::new((None, None)),
        }
    }

    /// The client id the tokens are for.
    pub fn client_id(&self) -> &str {
        &self.request.client_id
    }

    /// A token good for now: the one held, or a new one.
    pub async fn token(&self) -> Result<String, TokenError> {
        let now = now_seconds();
        let mut state = self.state.lock().await;
        if let Some(held) = state.1.as_ref().filter(|c| now < c.renew_at) {
            return Ok(held.token.clone());
        }
        let idp = match &state.0 {
            Some(idp) => idp.clone(),
            None => Idp::new(self.request.trust_store.as_deref())?,
        };
        state.0 = Some(idp.clone());
        let answer = idp
            .post_form(
                &self.request.endpoint,
                &basic_authorization(&self.request.client_id, &self.request.client_secret),
                form(self.request.scope.as_deref()),
            )
            .await?;
        let (token, expires) = read_answer(&answer, now).map_err(|reason| TokenError::Answer {
            endpoint: self.request.endpoint.clone(),
            reason,
        })?;
        let lifetime = expires.saturating_sub(now) as f64;
        state.1 = Some(Cached {
            token: token.clone(),
            renew_at: now + (lifetime * REFRESH_FACTOR) as u64,
        });
        Ok(token)
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `Basic` with the form-encoded id and secret, as RFC 6749 2.3.1 asks.
fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(client_secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The request's body.
fn form(scope: Option<&str>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = scope {
        form.append_pair("scope", scope);
    }
    form.finish()
}

/// The token of the endpoint's answer and when it expires (seconds since
/// the epoch), checked as Kafka's login does: a JWT with `exp` and `sub`.
fn read_answer(body: &[u8], now: u64) -> Result<(String, u64), String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("the answer has no access_token: {e}"))?;
    let token = answer.access_token;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("the access token is not a JWT")?;
    let claims: serde_json::Map<String, serde_json::Value> =
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or("the access token's claims are not base64url JSON")?;
    let expires = claims
        .get("exp")
        .and_then(serde_json::Value::as_f64)
        .ok_or("the access token has no exp claim")? as u64;
    if expires <= now {
        return Err("the access token has already expired".into());
    }
    if !claims.get("sub").is_some_and(serde_json::Value::is_string) {
        return Err("the access token has no sub claim".into());
    }
    Ok((token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2ln",
            b64(&serde_json::json!({"alg": "RS256"})),
            b64(&claims)
        )
    }

    #[test]
    fn answers_give_a_token_and_its_expiry_or_say_what_is_wrong() {
        let now = 1_000;
        let good = jwt(serde_json::json!({"sub": "broker-1", "exp": 1_300}));
        let answer = |token: &str| serde_json::json!({"access_token": token}).to_string();
        let cases: Vec<(String, Result<u64, &str>)> = vec![
            (answer(&good), Ok(1_300)),
            ("{}".into(), Err("no access_token")),
            (answer("opaque"), Err("not a JWT")),
            (answer("a.!!.c"), Err("not base64url JSON")),
            (
                answer(&jwt(serde_json::json!({"sub": "b"}))),
                Err("no exp claim"),
            ),
            (
                answer(&jwt(serde_json::json!({"sub": "b", "exp": 999}))),
                Err("already expired"),
            ),
            (
                answer(&jwt(serde_json::json!({"exp": 1_300}))),
                Err("no sub claim"),
            ),
        ];
        for (body, want) in cases {
            match (read_answer(body.as_bytes(), now), want) {
                (Ok((token, exp)), Ok(e)) => assert_eq!((token, exp), (good.clone(), e)),
                (Err(reason), Err(words)) => assert!(reason.contains(words), "{body}: {reason}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_request_is_a_form_with_basic_authorization() {
        assert_eq!(form(None), "grant_type=client_credentials");
        assert_eq!(
            form(Some("kafka admin")),
            "grant_type=client_credentials&scope=kafka+admin"
        );
        // "id:x" and "s&cret" are form-encoded before base64.
        let expected = base64::engine::general_purpose::STANDARD.encode("id%3Ax:s%26cret");
        assert_eq!(
            basic_authorization("id:x", "s&cret"),
            format!("Basic {expected}")
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let request = TokenRequest {
            endpoint: "https://idp/token".into(),
            client_id: "broker".into(),
            client_secret: "hush-hush".into(),
            scope: None,
            trust_store: None,
        };
        assert!(!format!("{request:?}").contains("hush"));
    }
}
