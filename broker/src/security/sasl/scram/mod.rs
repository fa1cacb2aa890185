//! SCRAM (RFC 5802), with SHA-256 (RFC 7677) and SHA-512, as Kafka uses it
//! (KIP-84; credentials managed through the admin API, KIP-554).
//!
//! The server never sees the password: the metadata quorum keeps a
//! [`ScramCredential`] per user and mechanism (salt, iterations,
//! StoredKey, ServerKey), and the client proves it knows the password by
//! a proof bound to both sides' nonces; the server then proves it holds the
//! credential by its own signature.
//!
//! - [`credential`]: deriving credentials from a password or a salted
//!   password.
//! - [`ScramServer`]: the broker authenticating a client.
//! - [`ScramClient`]: the broker authenticating itself to another broker.
//!
//! Kafka's ways that Gregor keeps: passwords are not SASLprep-normalized;
//! no channel binding (gs2 flag `n` only); unknown extensions are ignored
//! but delegation tokens (`tokenauth=true`) are refused, as Gregor has
//! none; an authorization id must be the username. Where RFC 5802 is
//! stricter than Kafka, Gregor follows the RFC: the client-final message
//! must repeat the gs2 header in `c=`, an `m=` extension fails the
//! exchange, and the AuthMessage is built from the messages as sent.

pub mod credential;

mod client;
mod message;
mod server;

pub use client::ScramClient;
pub use credential::{random_salt, salted_password, ScramCredential};
pub use server::ScramServer;

/// The fewest iterations Kafka accepts for a SCRAM credential, for both
/// mechanisms; a client refuses a server that asks for fewer.
pub const MIN_ITERATIONS: u32 = 4096;

/// The most iterations Kafka's controller accepts in
/// AlterUserScramCredentials.
pub const MAX_ITERATIONS: u32 = 16384;

/// An iteration count AlterUserScramCredentials must refuse, with
/// Kafka's messages (error code UNACCEPTABLE_CREDENTIAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IterationsError {
    /// Below [`MIN_ITERATIONS`].
    #[error("Too few iterations")]
    TooFew,
    /// Above [`MAX_ITERATIONS`].
    #[error("Too many iterations")]
    TooMany,
}

/// Checks an iteration count from an AlterUserScramCredentials upsertion
/// (an INT32 on the wire) against Kafka's bounds.
pub fn check_iterations(iterations: i32) -> Result<u32, IterationsError> {
    match u32::try_from(iterations) {
        Ok(count) if count > MAX_ITERATIONS => Err(IterationsError::TooMany),
        Ok(count) if count >= MIN_ITERATIONS => Ok(count),
        _ => Err(IterationsError::TooFew),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::credential::{xor, Hash};
    use super::*;
    use crate::security::sasl::{Mechanism, Refusal, SaslError};

    const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    const GENERIC_256: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256";

    fn salt() -> Vec<u8> {
        STANDARD.decode(RFC_SALT).expect("base64")
    }

    /// A user store of one mechanism.
    struct Users {
        mechanism: Mechanism,
        credentials: BTreeMap<String, ScramCredential>,
    }

    impl Users {
        fn new(mechanism: Mechanism, users: &[(&str, &str)]) -> Users {
            let credentials = users
                .iter()
                .map(|(name, password)| {
                    let credential =
                        ScramCredential::from_password(mechanism, password, random_salt(), 4096);
                    (name.to_string(), credential)
                })
                .collect();
            Users {
                mechanism,
                credentials,
            }
        }

        fn lookup(&self) -> impl FnOnce(&str) -> Option<ScramCredential> + '_ {
            |name| self.credentials.get(name).cloned()
        }
    }

    /// A whole exchange between our client and our server; the username
    /// the server authenticated, or the first error of either side.
    fn exchange(users: &Users, username: &str, password: &str) -> Result<String, SaslError> {
        let mut client = ScramClient::new(users.mechanism, username, password);
        let mut server = ScramServer::new(users.mechanism);
        let server_first = server.client_first(&client.client_first(), users.lookup())?;
        let client_final = client.client_final(&server_first)?;
        let (authenticated, server_final) = server.client_final(&client_final)?;
        assert!(server.is_authenticated());
        client.verify_server_final(&server_final)?;
        Ok(authenticated)
    }

    /// client-final for any gs2 header, computed here from the RFC's
    /// formulas, for the cases our client never sends.
    fn client_final_for(
        mechanism: Mechanism,
        password: &str,
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> String {
        let hash = Hash::of(mechanism);
        let first = server_first
            .split(',')
            .map(|field| field.split_at(2))
            .collect::<BTreeMap<_, _>>();
        let salted = hash.hi(
            password.as_bytes(),
            &STANDARD.decode(first["s="]).expect("salt"),
            first["i="].parse().expect("iterations"),
        );
        let client_key = hash.client_key(&salted);
        let without_proof = format!("c={},r={}", STANDARD.encode(gs2_header), first["r="]);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hash.hmac(&hash.digest(&client_key), auth_message.as_bytes());
        format!(
            "{without_proof},p={}",
            STANDARD.encode(xor(&client_key, &signature))
        )
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("UTF-8")
    }

    /// The published exchanges, byte for byte: RFC 7677 section 3 for
    /// SHA-256, and the same inputs under SHA-512 computed independently
    /// with Python's hashlib and hmac.
    #[test]
    fn reproduces_published_exchanges() {
        let cases = [
            (
                Mechanism::ScramSha256,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
            (
                Mechanism::ScramSha512,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==",
                "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==",
            ),
        ];
        for (mechanism, expected_client_final, expected_server_final) in cases {
            let credential = ScramCredential::from_password(mechanism, "pencil", salt(), 4096);
            let mut client = ScramClient::with_nonce(mechanism, "user", "pencil", RFC_CLIENT_NONCE);
            let mut server = ScramServer::with_nonce(mechanism, RFC_SERVER_NONCE);

            let client_first = client.client_first();
            assert_eq!(text(&client_first), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");

            let server_first = server
                .client_first(&client_first, |name| {
                    (name == "user").then(|| credential.clone())
                })
                .expect("server-first");
            assert_eq!(
                text(&server_first),
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
            );

            let client_final = client.client_final(&server_first).expect("client-final");
            assert_eq!(text(&client_final), expected_client_final, "{mechanism}");

            let (user, server_final) = server.client_final(&client_final).expect("server-final");
            assert_eq!(user, "user");
            assert_eq!(text(&server_final), expected_server_final, "{mechanism}");
            assert!(server.is_authenticated());

            client.verify_server_final(&server_final).expect("verified");
        }
    }

    #[test]
    fn clients_and_servers_agree() {
        let cases: &[(Mechanism, &str, &str, u32)] = &[
            (Mechanism::ScramSha256, "alice", "alice-secret", 4096),
            (Mechanism::ScramSha512, "alice", "alice-secret", 4096),
            (Mechanism::ScramSha512, "bob,=x", "pässwörd ✓", 8192),
            (Mechanism::ScramSha256, "=2C", "=,", 16384),
            (Mechanism::ScramSha512, "User:odd name", "", 4096),
        ];
        for (mechanism, username, password, iterations) in cases {
            let credential =
                ScramCredential::from_password(*mechanism, password, random_salt(), *iterations);
            let users = Users {
                mechanism: *mechanism,
                credentials: [(username.to_string(), credential)].into(),
            };
            assert_eq!(
                exchange(&users, username, password).as_deref(),
                Ok(*username),
                "{mechanism} {username}"
            );
        }
    }

    #[test]
    fn wrong_password_and_unknown_user_look_alike_to_the_client() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let users = Users::new(mechanism, &[("alice", "alice-secret")]);
            let generic = format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
            );
            let cases = [
                ("alice", "alice-secreT", "wrong proof"),
                ("alice", "", "wrong proof"),
                ("Alice", "alice-secret", "unknown user \"Alice\""),
                ("carol", "alice-secret", "unknown user \"carol\""),
            ];
            for (username, password, reason) in cases {
                let error = exchange(&users, username, password).expect_err("refused");
                assert_eq!(error.client_message(), generic, "{username}");
                let SaslError::AuthenticationFailed { reason: got, .. } = &error else {
                    panic!("{error:?}");
                };
                assert!(got.contains(reason), "{got}");
                assert!(!got.contains("secret"), "{got}");
            }
        }
    }

    #[test]
    fn an_unknown_user_is_refused_at_client_first() {
        let users = Users::new(Mechanism::ScramSha256, &[("alice", "pw")]);
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        let error = server
            .client_first(b"n,,n=carol,r=abc", users.lookup())
            .expect_err("refused");
        assert_eq!(error.client_message(), GENERIC_256);
        // And the exchange is over.
        let later = server
            .client_final(b"c=biws,r=abcdef,p=AA==")
            .expect_err("refused");
        assert!(matches!(later, SaslError::Malformed { .. }), "{later:?}");
    }

    /// One exchange up to the server's client-final step, with the
    /// client-final message rewritten by `tamper`.
    fn tampered(tamper: impl FnOnce(String) -> String) -> Result<(String, Vec<u8>), SaslError> {
        let users = Users::new(Mechanism::ScramSha256, &[("alice", "pw")]);
        let mut client = ScramClient::new(Mechanism::ScramSha256, "alice", "pw");
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        let server_first = server
            .client_first(&client.client_first(), users.lookup())
            .expect("server-first");
        let client_final = client.client_final(&server_first).expect("client-final");
        let client_final = tamper(text(&client_final).to_string());
        server.client_final(client_final.as_bytes())
    }

    #[test]
    fn tampered_client_final_messages_are_refused() {
        let flip_proof_bit = |message: String| {
            let (head, proof) = message.rsplit_once(",p=").expect("proof");
            let mut proof = STANDARD.decode(proof).expect("base64");
            proof[7] ^= 0x10;
            format!("{head},p={}", STANDARD.encode(proof))
        };
        let short_proof = |message: String| {
            let (head, _) = message.rsplit_once(",p=").expect("proof");
            format!("{head},p={}", STANDARD.encode([0u8; 31]))
        };
        let other_nonce = |message: String| message.replacen(",r=", ",r=x", 1);
        let cut_nonce = |message: String| {
            let (head, proof) = message.rsplit_once(",p=").expect("proof");
            format!("{},p={proof}", &head[..head.len() - 1])
        };
        let claims_binding = |message: String| message.replacen("c=biws", "c=eSws", 1);
        let extension = |message: String| message.replacen(",p=", ",x=1,p=", 1);
        let garbage = |_: String| "garbage".to_string();

        type Tamper = Box<dyn FnOnce(String) -> String>;
        let cases: Vec<(Tamper, &str)> = vec![
            (Box::new(flip_proof_bit), "wrong proof"),
            (Box::new(short_proof), "a proof of 31 bytes, not 32"),
            // A prefix is let through (old librdkafka repeats its part
            // there), but the proof no longer fits the message.
            (Box::new(other_nonce), "wrong proof"),
            (
                Box::new(cut_nonce),
                "nonce in client-final is not the one agreed",
            ),
            (Box::new(claims_binding), "does not repeat the gs2 header"),
            // The proof covers the message as sent, extensions included.
            (Box::new(extension), "wrong proof"),
            (Box::new(garbage), "no proof"),
        ];
        for (tamper, reason) in cases {
            let error = tampered(tamper).expect_err("refused");
            assert_eq!(error.client_message(), GENERIC_256);
            let logged = error.to_string();
            assert!(logged.contains(reason), "{logged}");
        }
        assert_eq!(
            tampered(|message| message).map(|(user, _)| user).as_deref(),
            Ok("alice")
        );
    }

    #[test]
    fn an_authorization_id_must_be_the_username() {
        let mechanism = Mechanism::ScramSha256;
        let users = Users::new(mechanism, &[("alice", "pw"), ("a,b", "pw")]);
        let authzid_text = "Authentication failed: Client requested an authorization id that is different from username";
        // (client-first, password, outcome: the user, or the client's text)
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("n,a=alice,n=alice,r=abc", Ok("alice")),
            ("n,a=a=2Cb,n=a=2Cb,r=abc", Ok("a,b")),
            ("n,a=bob,n=alice,r=abc", Err(authzid_text)),
            ("n,a=Alice,n=alice,r=abc", Err(authzid_text)),
            // An unknown user is refused before its authorization id is
            // looked at, so that answer tells nothing about who exists.
            ("n,a=alice,n=carol,r=abc", Err(GENERIC_256)),
        ];
        for (client_first, expected) in cases {
            let mut server = ScramServer::new(mechanism);
            let result = server
                .client_first(client_first.as_bytes(), users.lookup())
                .and_then(|server_first| {
                    let (header, bare) =
                        client_first.split_at(client_first.find(",n=").expect("n=") + 1);
                    let client_final =
                        client_final_for(mechanism, "pw", header, bare, text(&server_first));
                    server.client_final(client_final.as_bytes())
                });
            match (result, expected) {
                (Ok((user, _)), Ok(want)) => assert_eq!(user, *want),
                (Err(error), Err(want)) => assert_eq!(error.client_message(), *want),
                (got, want) => panic!("{client_first}: got {got:?}, want {want:?}"),
            }
        }
        // The authorization id's refusal is the dedicated one.
        let error = ScramServer::new(mechanism)
            .client_first(b"n,a=bob,n=alice,r=abc", users.lookup())
            .expect_err("refused");
        assert!(matches!(
            error,
            SaslError::AuthenticationFailed {
                refusal: Refusal::AuthorizationIdNotUsername,
                ..
            }
        ));
    }

    #[test]
    fn the_server_refuses_what_gregor_does_not_support() {
        let users = Users::new(Mechanism::ScramSha256, &[("alice", "pw")]);
        let cases: &[(&[u8], &str)] = &[
            (b"n,,n=alice,r=abc,tokenauth=true", "delegation-token"),
            (b"y,,n=alice,r=abc", "gs2 flag y"),
            (b"p=tls-server-end-point,,n=alice,r=abc", "gs2 flag p"),
            (b"n,,m=x,n=alice,r=abc", "extension (m=)"),
            (b"n,,n=alice,r=abc,", "attribute without '='"),
            (b"\0alice\0pw", "no gs2 header"),
        ];
        for (message, reason) in cases {
            let mut server = ScramServer::new(Mechanism::ScramSha256);
            let error = server
                .client_first(message, users.lookup())
                .expect_err("refused");
            assert_eq!(error.client_message(), GENERIC_256);
            assert!(error.to_string().contains(reason), "{error}");
        }
        // Extensions other than tokenauth are ignored, as in Kafka.
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        server
            .client_first(b"n,,n=alice,r=abc,tokenauth=false,other=1", users.lookup())
            .expect("accepted");
    }

    #[test]
    fn the_server_refuses_unusable_stored_credentials() {
        let weak = ScramCredential::from_password(Mechanism::ScramSha256, "pw", salt(), 4095);
        let other_hash = ScramCredential::from_password(Mechanism::ScramSha512, "pw", salt(), 4096);
        let cases = [
            (weak, "4095 iterations, fewer than the minimum 4096"),
            (other_hash, "key length"),
        ];
        for (credential, reason) in cases {
            let mut server = ScramServer::new(Mechanism::ScramSha256);
            let error = server
                .client_first(b"n,,n=alice,r=abc", |_| Some(credential))
                .expect_err("refused");
            assert_eq!(error.client_message(), GENERIC_256);
            assert!(error.to_string().contains(reason), "{error}");
        }
    }

    #[test]
    fn messages_out_of_turn_end_the_exchange() {
        let users = Users::new(Mechanism::ScramSha256, &[("alice", "pw")]);
        let first = b"n,,n=alice,r=abc";

        // client-final first.
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        let error = server
            .client_final(b"c=biws,r=abc,p=AA==")
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("client-final message out of turn: the exchange is started"),
            "{error}"
        );
        let error = server
            .client_first(first, users.lookup())
            .expect_err("refused");
        assert!(
            error.to_string().contains("the exchange is failed"),
            "{error}"
        );

        // client-first twice.
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        server
            .client_first(first, users.lookup())
            .expect("server-first");
        let error = server
            .client_first(first, users.lookup())
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("client-first message out of turn: the exchange is challenged"),
            "{error}"
        );

        // Anything after success.
        let mut client = ScramClient::new(Mechanism::ScramSha256, "alice", "pw");
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        let server_first = server
            .client_first(&client.client_first(), users.lookup())
            .expect("server-first");
        let client_final = client.client_final(&server_first).expect("client-final");
        server.client_final(&client_final).expect("authenticated");
        let error = server.client_final(&client_final).expect_err("refused");
        assert!(
            error.to_string().contains("the exchange is authenticated"),
            "{error}"
        );
        assert!(!server.is_authenticated());
        assert!(matches!(error, SaslError::Malformed { .. }));
        assert_eq!(error.client_message(), GENERIC_256);

        // The client, likewise.
        let mut client = ScramClient::new(Mechanism::ScramSha256, "alice", "pw");
        let error = client
            .client_final(b"r=abcdef,s=AA==,i=4096")
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("server-first message out of turn: the exchange is initial"),
            "{error}"
        );
        let error = client.verify_server_final(b"v=AA==").expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("server-final message out of turn: the exchange is failed"),
            "{error}"
        );
    }

    #[test]
    fn the_client_checks_the_server_first_message() {
        let nonce = "fixed-client-nonce";
        let cases: &[(String, Option<&str>)] = &[
            (format!("r={nonce}SERVER,s={RFC_SALT},i=4096"), None),
            (format!("r={nonce}SERVER,s={RFC_SALT},i=16384"), None),
            (
                format!("r={nonce}SERVER,s={RFC_SALT},i=4095"),
                Some("4095 iterations, fewer than the minimum 4096"),
            ),
            (
                format!("r={nonce}SERVER,s={RFC_SALT},i=1"),
                Some("fewer than the minimum"),
            ),
            (
                format!("r={nonce}SERVER,s={RFC_SALT},i=0"),
                Some("fewer than the minimum"),
            ),
            (
                format!("r={nonce}SERVER,s={RFC_SALT},i=16385"),
                Some("16385 iterations, more than the maximum 16384"),
            ),
            (
                format!("r={nonce}SERVER,s={RFC_SALT},i=4294967295"),
                Some("more than the maximum"),
            ),
            (
                format!("r={nonce},s={RFC_SALT},i=4096"),
                Some("does not extend ours"),
            ),
            (
                format!("r=other{nonce},s={RFC_SALT},i=4096"),
                Some("does not extend ours"),
            ),
            (
                format!("r=fixed-client-noncX,s={RFC_SALT},i=4096"),
                Some("does not extend ours"),
            ),
            (
                format!("r={nonce}SERVER,i=4096,s={RFC_SALT}"),
                Some("expected s=<salt>"),
            ),
            ("e=other-error".to_string(), Some("expected r=<nonce>")),
        ];
        for (server_first, refusal) in cases {
            let mut client = ScramClient::with_nonce(Mechanism::ScramSha256, "alice", "pw", nonce);
            client.client_first();
            match (client.client_final(server_first.as_bytes()), refusal) {
                (Ok(client_final), None) => {
                    assert!(text(&client_final).starts_with(&format!("c=biws,r={nonce}SERVER,p=")));
                }
                (Err(error), Some(reason)) => {
                    assert!(
                        error.to_string().contains(reason),
                        "{server_first}: {error}"
                    );
                }
                (got, want) => panic!("{server_first}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_client_checks_the_server_final_message() {
        let mechanism = Mechanism::ScramSha256;
        let users = Users::new(mechanism, &[("alice", "pw")]);
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            (
                "e=invalid-proof",
                Some("the server refused \"alice\": invalid-proof"),
            ),
            ("v=AAAA", Some("the server's signature is wrong")),
            ("x=1", Some("expected v=<signature> or e=<error>")),
        ];
        for (replacement, refusal) in cases {
            let mut client = ScramClient::new(mechanism, "alice", "pw");
            let mut server = ScramServer::new(mechanism);
            let server_first = server
                .client_first(&client.client_first(), users.lookup())
                .expect("server-first");
            let client_final = client.client_final(&server_first).expect("client-final");
            let (_, server_final) = server.client_final(&client_final).expect("server-final");
            let server_final = if replacement.is_empty() {
                server_final
            } else {
                replacement.as_bytes().to_vec()
            };
            match (client.verify_server_final(&server_final), refusal) {
                (Ok(()), None) => {}
                (Err(error), Some(reason)) => {
                    assert!(error.to_string().contains(reason), "{error}")
                }
                (got, want) => panic!("{replacement}: got {got:?}, want {want:?}"),
            }
        }

        // A server that does not hold the credential cannot sign: it
        // answers client-final, but with the wrong signature.
        let mut client = ScramClient::new(mechanism, "alice", "pw");
        let impostor = Users::new(mechanism, &[("alice", "not-pw")]);
        let mut server = ScramServer::new(mechanism);
        let server_first = server
            .client_first(&client.client_first(), impostor.lookup())
            .expect("server-first");
        let client_final = client.client_final(&server_first).expect("client-final");
        let forged = format!(
            "v={}",
            STANDARD.encode(Hash::of(mechanism).hmac(b"guess", client_final.as_slice()))
        );
        let error = client
            .verify_server_final(forged.as_bytes())
            .expect_err("refused");
        assert!(error.to_string().contains("signature is wrong"), "{error}");
    }

    #[test]
    fn the_client_sends_saslnames_and_a_fresh_nonce_each_start() {
        let mut client = ScramClient::new(Mechanism::ScramSha512, "a,b=c", "pw");
        let first = text(&client.client_first()).to_string();
        assert!(first.starts_with("n,,n=a=2Cb=3Dc,r="), "{first}");
        let again = text(&client.client_first()).to_string();
        assert_ne!(first, again);
    }

    #[test]
    fn debug_shows_no_secrets() {
        let client = ScramClient::new(Mechanism::ScramSha256, "alice", "hunter2");
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("[hidden]"),
            "{shown}"
        );

        let users = Users::new(Mechanism::ScramSha256, &[("alice", "hunter2")]);
        let mut server = ScramServer::new(Mechanism::ScramSha256);
        server
            .client_first(b"n,,n=alice,r=abc", users.lookup())
            .expect("server-first");
        let shown = format!("{server:?}");
        assert_eq!(
            shown,
            "ScramServer { mechanism: ScramSha256, state: \"challenged\" }"
        );
    }

    #[test]
    fn iteration_counts_within_kafkas_bounds() {
        let cases = [
            (i32::MIN, Err(IterationsError::TooFew)),
            (-1, Err(IterationsError::TooFew)),
            (0, Err(IterationsError::TooFew)),
            (4095, Err(IterationsError::TooFew)),
            (4096, Ok(4096)),
            (8192, Ok(8192)),
            (16384, Ok(16384)),
            (16385, Err(IterationsError::TooMany)),
            (i32::MAX, Err(IterationsError::TooMany)),
        ];
        for (iterations, expected) in cases {
            assert_eq!(check_iterations(iterations), expected, "{iterations}");
        }
        assert_eq!(IterationsError::TooFew.to_string(), "Too few iterations");
        assert_eq!(IterationsError::TooMany.to_string(), "Too many iterations");
    }

    #[test]
    #[should_panic(expected = "PLAIN is not a SCRAM mechanism")]
    fn plain_has_no_scram_server() {
        let _ = ScramServer::new(Mechanism::Plain);
    }
}
