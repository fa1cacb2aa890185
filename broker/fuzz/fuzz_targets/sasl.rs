//! Arbitrary bytes as what a client sends a SASL listener: as a JAAS
//! configuration line, as PLAIN, SCRAM and OAUTHBEARER messages (and a
//! JWKS document), and as a sequence of
//! frames through a connection's authenticator (each frame: a 2-byte
//! length, then that many bytes). Each must answer, refuse or close, never
//! panic or hang.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use gregor_broker::config::properties::Property;
use gregor_broker::config::sasl::SaslSettings;
use gregor_broker::config::table::BROKER;
use gregor_broker::config::values::Values;
use gregor_broker::security::sasl::scram::{ScramCredential, ScramServer};
use gregor_broker::security::sasl::jwks::KeySet;
use gregor_broker::security::sasl::{jaas, oauthbearer, plain, Mechanism};
use gregor_broker::server::authenticate::Authenticator;
use libfuzzer_sys::fuzz_target;

/// A user's credential, derived once (PBKDF2 is slow on purpose).
fn credential() -> &'static ScramCredential {
    static CREDENTIAL: OnceLock<ScramCredential> = OnceLock::new();
    CREDENTIAL.get_or_init(|| {
        ScramCredential::from_password(Mechanism::ScramSha256, "pw", b"salt".to_vec(), 4096)
    })
}

/// A key set of one (made-up) P-256 key: tokens get as far as their
/// signature check.
fn bearer_keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","kid":"k","crv":"P-256","x":"{zeros}","y":"{zeros}"}}]}}"#
        );
        KeySet::parse(jwks.as_bytes()).expect("a key set")
    })
}

fn bearer_rules() -> oauthbearer::TokenRules {
    oauthbearer::TokenRules {
        audiences: ["kafka".to_string()].into(),
        issuer: Some("idp".into()),
        subject_claim: "sub".into(),
        clock_skew_seconds: 30,
    }
}

fn settings() -> &'static SaslSettings {
    static SETTINGS: OnceLock<SaslSettings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let lines = [
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
            (
                "plain.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_a="b";"#,
            ),
        ];
        let props: BTreeMap<String, Property> = lines
            .iter()
            .map(|(k, v)| {
                let p = Property {
                    key: k.to_string(),
                    value: v.to_string(),
                    origin: "fuzz".into(),
                };
                (k.to_string(), p)
            })
            .collect();
        let values = Values::check(BROKER, props).expect("valid settings");
        SaslSettings::for_listener(&values, "SASL").expect("SASL settings")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = jaas::parse(&String::from_utf8_lossy(data));
    if let Ok(response) = plain::parse(data) {
        let _ = plain::verify(settings().plain_users.passwords(), &response);
    }
    let mut server = ScramServer::new(Mechanism::ScramSha256);
    if server.client_first(data, |_| Some(credential().clone())).is_ok() {
        let _ = server.client_final(data);
    }
    if let Ok((token, _)) = oauthbearer::parse(data) {
        let _ = oauthbearer::validate(&token, bearer_keys(), &bearer_rules(), 0);
    }
    let _ = KeySet::parse(data);
    let mut authenticator = Authenticator::new(settings().clone(), None);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = Bytes::copy_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        let _ = authenticator.on_frame(frame, |_, _| Some(credential().clone()));
    }
});
