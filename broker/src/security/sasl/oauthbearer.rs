//! OAUTHBEARER (RFC 7628) as Kafka's broker runs it with
//! OAuthBearerValidatorCallbackHandler: the client's one message carries a
//! JWT in `auth=Bearer <token>`; the token must be signed by a key of the
//! identity provider's JWKS with an asymmetric algorithm, be within its
//! `exp` (and `nbf`) give or take `sasl.oauthbearer.clock.skew.seconds`,
//! have an `iat`, name the expected issuer and one of the expected
//! audiences (unless the settings explicitly waive them), and carry the
//! subject claim, whose value becomes the principal `User:<subject>`. The
//! session ends when the token expires.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::jwks::KeySet;
use super::{Mechanism, SaslError};

/// What a token must satisfy (`sasl.oauthbearer.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// `sasl.oauthbearer.expected.audience`; empty only when
    /// `sasl.oauthbearer.allow.unverified.audience` waives the check.
    pub audiences: BTreeSet<String>,
    /// `sasl.oauthbearer.expected.issuer`; `None` only when
    /// `sasl.oauthbearer.allow.unverified.issuer` waives the check.
    pub issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`.
    pub subject_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`.
    pub clock_skew_seconds: u64,
}

/// An accepted token: who it names and how long it is good for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    /// The subject claim's value.
    pub user: String,
    /// Milliseconds until the token expires.
    pub lifetime_ms: u64,
}

/// The algorithms a token may be signed with: asymmetric ones only, so a
/// token cannot be "signed" with a public key used as an HMAC secret.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn malformed(what: impl Into<String>) -> SaslError {
    SaslError::malformed(Mechanism::OAuthBearer, what)
}

fn refused(reason: impl Into<String>) -> SaslError {
    SaslError::invalid_credentials(Mechanism::OAuthBearer, reason)
}

/// The token of the client's message: `n,[a=<authzid>],` then
/// `\x01`-separated `key=value` pairs, one of them `auth=Bearer <token>`,
/// then a closing `\x01`. Also the authorization id, if one is given.
pub fn parse(message: &[u8]) -> Result<(String, Option<String>), SaslError> {
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let (header, rest) = text
        .split_once('\u{1}')
        .ok_or_else(|| malformed("no key/value pairs after the GS2 header"))?;
    let authzid = match header.split(',').collect::<Vec<_>>()[..] {
        ["n", "", ""] | ["y", "", ""] => None,
        ["n", a, ""] | ["y", a, ""] => Some(
            a.strip_prefix("a=")
                .ok_or_else(|| malformed("GS2 header: authorization id without a="))?
                .to_string(),
        ),
        _ => return Err(malformed("GS2 header: expected n,[a=<authzid>],")),
    };
    let pairs = rest
        .strip_suffix("\u{1}\u{1}")
        .or_else(|| rest.strip_suffix('\u{1}').filter(|r| r.is_empty()))
        .ok_or_else(|| malformed("the message does not end with two \\x01"))?;
    let mut token = None;
    for pair in pairs.split('\u{1}').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed("a pair without '='"))?;
        if key == "auth" {
            let (scheme, t) = value
                .split_once(' ')
                .ok_or_else(|| malformed("auth is not '<scheme> <token>'"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(malformed(format!("auth scheme {scheme:?} is not Bearer")));
            }
            token = Some(t.trim_start().to_string());
        } else if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(malformed("an extension name that is not letters"));
        }
        // Other extensions are accepted and unused, as Kafka's validator does.
    }
    let token = token.ok_or_else(|| malformed("no auth=Bearer <token>"))?;
    Ok((token, authzid))
}

/// The client's message carrying `token`, as a broker logging in to
/// another sends it.
pub fn client_message(token: &str) -> Vec<u8> {
    format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
}

/// Checks the client's message against `keys` and `rules` at `now_ms`
/// (milliseconds since the epoch).
pub fn authenticate(
    message: &[u8],
    keys: &KeySet,
    rules: &TokenRules,
    now_ms: u64,
) -> Result<Bearer, SaslError> {
    let (token, authzid) = parse(message)?;
    let bearer = validate(&token, keys, rules, now_ms)?;
    match authzid {
        Some(a) if a != bearer.user => Err(refused(format!(
            "the token of {} asks to act as {a}",
            bearer.user
        ))),
        _ => Ok(bearer),
    }
}

/// Whether the client's message carries a token signed with a key id the
/// set does not have (the provider may have rotated its keys since the
/// set was fetched).
pub fn names_unknown_key(message: &[u8], keys: &KeySet) -> bool {
    let Ok((token, _)) = parse(message) else {
        return false;
    };
    match jsonwebtoken::decode_header(&token) {
        Ok(header) => {
            header.kid.is_some() && keys.candidates(header.kid.as_deref()).next().is_none()
        }
        Err(_) => false,
    }
}

/// Checks one JWT.
pub fn validate(
    token: &str,
    keys: &KeySet,
    rules: &TokenRules,
    now_ms: u64,
) -> Result<Bearer, SaslError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| malformed(format!("the token's header: {e}")))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refused(format!(
            "the token is signed with {:?}; only asymmetric algorithms are accepted",
            header.alg
        )));
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = rules.clock_skew_seconds;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if !rules.audiences.is_empty() {
        validation.set_audience(&rules.audiences.iter().collect::<Vec<_>>());
        required.push("aud");
    } else {
        validation.validate_aud = false;
    }
    if let Some(issuer) = &rules.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let mut last = None;
    let mut claims = None;
    for jwk in keys.candidates(header.kid.as_deref()) {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        ) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let claims = match (claims, last) {
        (Some(c), _) => c,
        (None, Some(e)) => return Err(refused(format!("token refused: {e}"))),
        (None, None) => {
            return Err(refused(format!(
                "no key of the JWKS matches the token's key id {:?}",
                header.kid
            )))
        }
    };
    if !claims.contains_key("iat") {
        return Err(refused("the token has no iat claim"));
    }
    let user = match claims.get(&rules.subject_claim) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(refused(format!(
                "the token has no {} claim (sasl.oauthbearer.sub.claim.name) naming a user",
                rules.subject_claim
            )))
        }
    };
    let expires_ms = claims
        .get("exp")
        .and_then(serde_json::Value::as_f64)
        .map(|s| (s * 1000.0) as u64)
        .unwrap_or(0);
    Ok(Bearer {
        user,
        lifetime_ms: expires_ms.saturating_sub(now_ms),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::jwks::test_keys::{document, ec, ed25519, TestKey};
    use super::*;

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn rules() -> TokenRules {
        TokenRules {
            audiences: BTreeSet::from(["kafka".to_string()]),
            issuer: Some("https://idp.example".into()),
            subject_claim: "sub".into(),
            clock_skew_seconds: 30,
        }
    }

    fn claims() -> serde_json::Value {
        json!({"sub": "alice", "iss": "https://idp.example", "aud": "kafka",
               "iat": now(), "exp": now() + 600, "scope": "kafka"})
    }

    fn sign(key: &TestKey, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(key.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &key.signing).expect("signed")
    }

    /// A message's token and authorization id, or words of the error.
    type Parsed<'a> = Result<(&'a str, Option<&'a str>), &'a str>;

    #[test]
    fn messages_parse_as_rfc_7628_says() {
        let cases: &[(&str, Parsed)] = &[
            ("n,,\u{1}auth=Bearer t.o.k\u{1}\u{1}", Ok(("t.o.k", None))),
            (
                "n,a=alice,\u{1}auth=bearer t.o.k\u{1}\u{1}",
                Ok(("t.o.k", Some("alice"))),
            ),
            (
                "n,,\u{1}traceId=abc\u{1}auth=Bearer t.o.k\u{1}\u{1}",
                Ok(("t.o.k", None)),
            ),
            ("n,,\u{1}auth=Basic dXNlcg==\u{1}\u{1}", Err("not Bearer")),
            ("n,,\u{1}\u{1}", Err("no auth=Bearer")),
            (
                "p=tls-unique,,\u{1}auth=Bearer t\u{1}\u{1}",
                Err("GS2 header"),
            ),
            ("n,,\u{1}auth=Bearer t\u{1}", Err("two \\x01")),
            ("n,,", Err("no key/value pairs")),
            (
                "n,,\u{1}x-1=y\u{1}auth=Bearer t\u{1}\u{1}",
                Err("extension name"),
            ),
        ];
        for (text, want) in cases {
            let got = parse(text.as_bytes());
            match (&got, want) {
                (Ok((token, authzid)), Ok((t, a))) => {
                    assert_eq!((token.as_str(), authzid.as_deref()), (*t, *a), "{text:?}")
                }
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{text:?}: {e}"),
                _ => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn tokens_are_checked_as_kafkas_validator_does() {
        let (good, other) = (ec("k1"), ed25519("k2"));
        let stranger = ec("k1");
        let keys = KeySet::parse(document(&[&good, &other]).as_bytes()).expect("keys");
        let with = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims();
            change(&mut c);
            c
        };
        let without = |key: &str| {
            let mut c = claims();
            c.as_object_mut().expect("an object").remove(key);
            c
        };
        let cases: Vec<(&str, String, Result<&str, &str>)> = vec![
            (
                "signed by k1",
                sign(&good, Some("k1"), &claims()),
                Ok("alice"),
            ),
            (
                "Ed25519 key, no kid",
                sign(&other, None, &claims()),
                Ok("alice"),
            ),
            (
                "audience among several",
                sign(
                    &good,
                    Some("k1"),
                    &with(&|c| c["aud"] = json!(["x", "kafka"])),
                ),
                Ok("alice"),
            ),
            (
                "a stranger's key under k1",
                sign(&stranger, Some("k1"), &claims()),
                Err("InvalidSignature"),
            ),
            (
                "unknown kid",
                sign(&good, Some("k9"), &claims()),
                Err("no key of the JWKS"),
            ),
            (
                "expired",
                sign(&good, Some("k1"), &with(&|c| c["exp"] = json!(now() - 60))),
                Err("ExpiredSignature"),
            ),
            (
                "expired within the skew",
                sign(&good, Some("k1"), &with(&|c| c["exp"] = json!(now() - 10))),
                Ok("alice"),
            ),
            (
                "not yet valid",
                sign(&good, Some("k1"), &with(&|c| c["nbf"] = json!(now() + 600))),
                Err("ImmatureSignature"),
            ),
            (
                "no exp",
                sign(&good, Some("k1"), &without("exp")),
                Err("exp"),
            ),
            (
                "no iat",
                sign(&good, Some("k1"), &without("iat")),
                Err("iat"),
            ),
            (
                "wrong issuer",
                sign(
                    &good,
                    Some("k1"),
                    &with(&|c| c["iss"] = json!("https://evil")),
                ),
                Err("InvalidIssuer"),
            ),
            (
                "wrong audience",
                sign(&good, Some("k1"), &with(&|c| c["aud"] = json!("other"))),
                Err("InvalidAudience"),
            ),
            (
                "no audience",
                sign(&good, Some("k1"), &without("aud")),
                Err("aud"),
            ),
            (
                "no subject",
                sign(&good, Some("k1"), &without("sub")),
                Err("no sub claim"),
            ),
            (
                "empty subject",
                sign(&good, Some("k1"), &with(&|c| c["sub"] = json!(" "))),
                Err("no sub claim"),
            ),
            ("not a JWT", "abc".into(), Err("header")),
            (
                "unsigned",
                format!(
                    "{}.{}.",
                    b64(r#"{"alg":"none"}"#),
                    b64(&claims().to_string())
                ),
                Err("header"),
            ),
            ("HMAC", hmac_token(), Err("only asymmetric")),
        ];
        for (name, token, want) in cases {
            let got = authenticate(&client_message(&token), &keys, &rules(), now() * 1000);
            match (&got, want) {
                (Ok(b), Ok(user)) => {
                    assert_eq!(b.user, user, "{name}");
                    assert!(b.lifetime_ms <= 600_000, "{name}: {b:?}");
                }
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{name}: {e}"),
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn b64(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn hmac_token() -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(b"public key bytes");
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims(), &key).expect("signed")
    }

    #[test]
    fn waived_checks_and_another_subject_claim() {
        let key = ec("k1");
        let keys = KeySet::parse(document(&[&key]).as_bytes()).expect("keys");
        let open = TokenRules {
            audiences: BTreeSet::new(),
            issuer: None,
            subject_claim: "client_id".into(),
            clock_skew_seconds: 0,
        };
        let claims = json!({"client_id": "svc-orders", "iss": "anyone", "aud": "anything",
                            "iat": now(), "exp": now() + 60});
        let bearer = authenticate(
            &client_message(&sign(&key, Some("k1"), &claims)),
            &keys,
            &open,
            now() * 1000,
        )
        .expect("accepted");
        assert_eq!(bearer.user, "svc-orders");
        // An authorization id must be the token's own subject.
        let token = sign(&key, Some("k1"), &claims);
        let as_other = format!("n,a=bob,\u{1}auth=Bearer {token}\u{1}\u{1}");
        let err =
            authenticate(as_other.as_bytes(), &keys, &open, now() * 1000).expect_err("refused");
        assert!(err.to_string().contains("act as bob"), "{err}");
        assert!(err.client_message().contains("OAUTHBEARER"));
    }

    #[test]
    fn a_token_of_a_key_the_set_lacks_asks_for_a_refresh() {
        let (known, rotated) = (ec("k1"), ec("k2"));
        let keys = KeySet::parse(document(&[&known]).as_bytes()).expect("keys");
        let cases = [
            (client_message(&sign(&known, Some("k1"), &claims())), false),
            (client_message(&sign(&rotated, Some("k2"), &claims())), true),
            // Without a key id every key is tried: nothing to refresh for.
            (client_message(&sign(&rotated, None, &claims())), false),
            (b"garbage".to_vec(), false),
        ];
        for (text, unknown) in cases {
            assert_eq!(names_unknown_key(&text, &keys), unknown);
        }
    }
}
