//! The authenticator driven by real clients' messages (the broker's own
//! PLAIN and SCRAM client halves), frame by frame.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, RequestHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request};
use kafka_protocol::ResponseError;

use super::*;
use crate::config::sasl::SaslSettings;
use crate::config::values::Values;
use crate::security::sasl::scram::{self, ScramClient};

const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;

fn settings(reauth_ms: &str) -> SaslSettings {
    settings_from(&[
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
        ("listener.name.sasl.plain.sasl.jaas.config", PLAIN_JAAS),
        ("connections.max.reauth.ms", reauth_ms),
    ])
}

fn settings_from(lines: &[(&str, &str)]) -> SaslSettings {
    SaslSettings::for_listener(&Values::broker_for_tests(lines), "SASL").expect("settings")
}

fn bob() -> Option<ScramCredential> {
    let salt = scram::random_salt();
    Some(ScramCredential::from_password(
        Mechanism::ScramSha512,
        "bob-secret",
        salt,
        4096,
    ))
}

fn frame<R: Encodable + Request>(request: &R, version: i16, correlation_id: i32) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    let mut buf = BytesMut::new();
    let api = ApiKey::try_from(R::KEY).expect("known api");
    header
        .encode(&mut buf, api.request_header_version(version))
        .expect("header");
    request.encode(&mut buf, version).expect("body");
    buf.freeze()
}

fn handshake(mechanism: &str, version: i16) -> Bytes {
    let mut r = SaslHandshakeRequest::default();
    r.mechanism = crate::handlers::text(mechanism);
    frame(&r, version, 1)
}

fn authenticate(bytes: Vec<u8>) -> Bytes {
    let mut r = SaslAuthenticateRequest::default();
    r.auth_bytes = Bytes::from(bytes);
    frame(&r, 2, 2)
}

fn answer(v: Verdict) -> Bytes {
    match v {
        Verdict::Answer(a) => a.freeze(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// Skips the size prefix and a response header of `header_version`.
fn body(mut a: Bytes, api: ApiKey, version: i16) -> Bytes {
    let size = a.get_i32();
    assert_eq!(size as usize, a.len());
    a.get_i32();
    if api.response_header_version(version) > 0 {
        assert_eq!(a.get_u8(), 0, "no tagged fields");
    }
    a
}

fn handshake_answer(v: Verdict, version: i16) -> SaslHandshakeResponse {
    let mut b = body(answer(v), ApiKey::SaslHandshake, version);
    SaslHandshakeResponse::decode(&mut b, version).expect("decodes")
}

fn authenticate_answer(a: Bytes) -> SaslAuthenticateResponse {
    let mut b = body(a, ApiKey::SaslAuthenticate, 2);
    SaslAuthenticateResponse::decode(&mut b, 2).expect("decodes")
}

fn no_scram(_: &str, _: Mechanism) -> Option<ScramCredential> {
    None
}

#[test]
fn plain_then_requests_under_the_principal() {
    let mut a = Authenticator::new(settings("0"), None);
    assert!(matches!(
        a.on_frame(frame(&ApiVersionsRequest::default(), 3, 0), no_scram),
        Verdict::Dispatch(_)
    ));
    let hs = handshake_answer(a.on_frame(handshake("PLAIN", 1), no_scram), 1);
    assert_eq!(hs.error_code, 0);
    assert_eq!(
        hs.mechanisms
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>(),
        ["PLAIN", "SCRAM-SHA-512"]
    );
    let ok = authenticate_answer(answer(a.on_frame(
        authenticate(plain::client_message("alice", "alice-secret")),
        no_scram,
    )));
    assert_eq!(ok.error_code, 0);
    assert_eq!(ok.session_lifetime_ms, 0);
    assert_eq!(a.principal(), Some("User:alice"));
    assert!(matches!(
        a.on_frame(frame(&MetadataRequest::default(), 12, 3), no_scram),
        Verdict::Dispatch(_)
    ));
}

#[test]
fn a_wrong_password_is_refused_with_kafkas_answer() {
    let mut a = Authenticator::new(settings("0"), None);
    answer(a.on_frame(handshake("PLAIN", 1), no_scram));
    match a.on_frame(
        authenticate(plain::client_message("alice", "guess")),
        no_scram,
    ) {
        Verdict::Refuse {
            answer: Some(answer),
            reason,
            ..
        } => {
            let r = authenticate_answer(answer.freeze());
            assert_eq!(r.error_code, ResponseError::SaslAuthenticationFailed.code());
            assert_eq!(
                r.error_message.map(|m| m.to_string()).as_deref(),
                Some("Authentication failed: Invalid username or password")
            );
            assert!(
                reason.contains("alice") && !reason.contains("guess"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(a.principal(), None);
}

#[test]
fn scram_sha_512_round_trip_and_a_session_lifetime() {
    let mut a = Authenticator::new(settings("60000"), None);
    let credential = bob();
    let lookup = |user: &str, m: Mechanism| {
        assert_eq!(m, Mechanism::ScramSha512);
        (user == "bob").then(|| credential.clone()).flatten()
    };
    answer(a.on_frame(handshake("SCRAM-SHA-512", 1), lookup));
    let mut client = ScramClient::new(Mechanism::ScramSha512, "bob", "bob-secret");
    let first = authenticate_answer(answer(
        a.on_frame(authenticate(client.client_first()), lookup),
    ));
    assert_eq!(first.error_code, 0);
    let last = client
        .client_final(&first.auth_bytes)
        .expect("server first");
    let done = authenticate_answer(answer(a.on_frame(authenticate(last), lookup)));
    assert_eq!(done.error_code, 0);
    assert_eq!(done.session_lifetime_ms, 60000);
    client
        .verify_server_final(&done.auth_bytes)
        .expect("the server proved it knows the credential");
    assert_eq!(a.principal(), Some("User:bob"));
}

#[test]
fn a_v0_handshake_takes_bare_tokens() {
    let mut a = Authenticator::new(settings("0"), None);
    assert_eq!(
        handshake_answer(a.on_frame(handshake("PLAIN", 0), no_scram), 0).error_code,
        0
    );
    let token = Bytes::from(plain::client_message("alice", "alice-secret"));
    let reply = answer(a.on_frame(token, no_scram));
    assert_eq!(&reply[..], &[0, 0, 0, 0], "an empty token");
    assert_eq!(a.principal(), Some("User:alice"));
}

#[test]
fn out_of_place_frames_close_the_connection() {
    // A request before authenticating.
    let mut a = Authenticator::new(settings("0"), None);
    assert!(matches!(
        a.on_frame(frame(&MetadataRequest::default(), 12, 1), no_scram),
        Verdict::Close(_)
    ));
    // SaslAuthenticate without a handshake.
    let mut a = Authenticator::new(settings("0"), None);
    assert!(matches!(
        a.on_frame(
            authenticate(plain::client_message("alice", "alice-secret")),
            no_scram
        ),
        Verdict::Close(_)
    ));
    // A mechanism the listener does not offer: answered, then closed.
    let mut a = Authenticator::new(settings("0"), None);
    match a.on_frame(handshake("SCRAM-SHA-256", 1), no_scram) {
        Verdict::Refuse {
            answer: Some(answer),
            ..
        } => {
            let mut b = body(answer.freeze(), ApiKey::SaslHandshake, 1);
            let r = SaslHandshakeResponse::decode(&mut b, 1).expect("decodes");
            assert_eq!(r.error_code, ResponseError::UnsupportedSaslMechanism.code());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Garbage.
    let mut a = Authenticator::new(settings("0"), None);
    assert!(matches!(
        a.on_frame(Bytes::from_static(&[0xff]), no_scram),
        Verdict::Close(_)
    ));
}

#[test]
fn re_authentication_keeps_the_principal() {
    let mut a = Authenticator::new(settings("0"), None);
    answer(a.on_frame(handshake("PLAIN", 1), no_scram));
    answer(a.on_frame(
        authenticate(plain::client_message("alice", "alice-secret")),
        no_scram,
    ));
    // Again as alice: fine.
    answer(a.on_frame(handshake("PLAIN", 1), no_scram));
    let again = authenticate_answer(answer(a.on_frame(
        authenticate(plain::client_message("alice", "alice-secret")),
        no_scram,
    )));
    assert_eq!(again.error_code, 0);
    // As someone else: refused.
    let two = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="a" user_eve="e";"#;
    let mut b = Authenticator::new(
        settings_from(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl.plain.sasl.jaas.config", two),
        ]),
        None,
    );
    answer(b.on_frame(handshake("PLAIN", 1), no_scram));
    answer(b.on_frame(authenticate(plain::client_message("alice", "a")), no_scram));
    answer(b.on_frame(handshake("PLAIN", 1), no_scram));
    assert!(matches!(
        b.on_frame(authenticate(plain::client_message("eve", "e")), no_scram),
        Verdict::Refuse { .. }
    ));
}

#[test]
fn a_bearer_token_authenticates_its_subject_until_it_expires() {
    use crate::security::sasl::jwks::{test_keys, JwksSource};
    let key = test_keys::ec("k1");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, test_keys::document(&[&key])).expect("write");
    let url = format!("file://{}", path.display());
    let settings = settings_from(&[
        ("sasl.enabled.mechanisms", "OAUTHBEARER"),
        ("sasl.oauthbearer.jwks.endpoint.url", &url),
        ("sasl.oauthbearer.expected.audience", "kafka"),
        ("sasl.oauthbearer.expected.issuer", "https://idp"),
        ("connections.max.reauth.ms", "3600000"),
    ]);
    let jwks = Arc::new(Jwks::load(&JwksSource::File(path.clone())).expect("keys"));
    let now = jsonwebtoken::get_current_timestamp();
    let token = |sub: &str, issuer: &str| {
        let claims = serde_json::json!({"sub": sub, "iss": issuer, "aud": "kafka",
                                        "iat": now, "exp": now + 120});
        let mut header = jsonwebtoken::Header::new(key.alg);
        header.kid = Some("k1".into());
        let jwt = jsonwebtoken::encode(&header, &claims, &key.signing).expect("signed");
        format!("n,,\u{1}auth=Bearer {jwt}\u{1}\u{1}").into_bytes()
    };

    let mut a = Authenticator::new(settings.clone(), Some(jwks.clone()));
    answer(a.on_frame(handshake("OAUTHBEARER", 1), no_scram));
    let ok = authenticate_answer(answer(
        a.on_frame(authenticate(token("alice", "https://idp")), no_scram),
    ));
    assert_eq!(ok.error_code, 0);
    // The token's two minutes, not connections.max.reauth.ms's hour.
    assert!(
        (100_000..=120_000).contains(&ok.session_lifetime_ms),
        "{}",
        ok.session_lifetime_ms
    );
    assert_eq!(a.principal(), Some("User:alice"));

    let mut b = Authenticator::new(settings, Some(jwks));
    answer(b.on_frame(handshake("OAUTHBEARER", 1), no_scram));
    match b.on_frame(authenticate(token("mallory", "https://evil")), no_scram) {
        Verdict::Refuse { answer, reason, .. } => {
            assert!(reason.contains("InvalidIssuer"), "{reason}");
            let refused = authenticate_answer(answer.expect("answered").freeze());
            assert_eq!(
                refused.error_code,
                ResponseError::SaslAuthenticationFailed.code()
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(b.principal(), None);
}
