//! PLAIN (RFC 4616): the client sends, in one message, an optional
//! authorization id, its username and its password, separated by NUL
//! bytes; the broker checks the password against the listener's JAAS
//! users ([`super::jaas::plain_users`]) and answers with an empty message.
//!
//! As in Kafka, a client may not ask to act as someone else: an
//! authorization id other than the username is refused, after the
//! password has been checked.

use std::collections::BTreeMap;
use std::fmt;

use super::{fixed_time, Mechanism, Refusal, SaslError};

/// A client's PLAIN message.
///
/// `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainResponse {
    /// Who the client asks to act as; empty for "the username itself".
    pub authzid: String,
    /// Who the client is.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl fmt::Debug for PlainResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainResponse")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &format_args!("[hidden]"))
            .finish()
    }
}

/// Parses `[authzid] NUL username NUL password`: exactly three UTF-8 parts,
/// the username and password not empty.
///
/// Errors never quote the message: it holds the password.
pub fn parse(message: &[u8]) -> Result<PlainResponse, SaslError> {
    let malformed = |what: &str| SaslError::malformed(Mechanism::Plain, what);
    let mut parts = message.split(|byte| *byte == 0);
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "expected 3 parts separated by NUL ([authzid] NUL username NUL password)",
        ));
    };
    let text = |part: &[u8], name: &str| {
        String::from_utf8(part.to_vec()).map_err(|_| malformed(&format!("{name} is not UTF-8")))
    };
    let response = PlainResponse {
        authzid: text(authzid, "authorization id")?,
        username: text(username, "username")?,
        password: text(password, "password")?,
    };
    // Kafka's own wording for these two.
    if response.username.is_empty() {
        return Err(malformed("username not specified"));
    }
    if response.password.is_empty() {
        return Err(malformed("password not specified"));
    }
    Ok(response)
}

/// Checks a response against `users` (name to password) and gives the
/// authenticated username.
///
/// The password is compared in fixed time, and an unknown user costs a
/// comparison too and gets the same answer as a wrong password, so the
/// client cannot tell which it was. The log reason does.
pub fn verify(
    users: &BTreeMap<String, String>,
    response: &PlainResponse,
) -> Result<String, SaslError> {
    let refused = |reason: String| SaslError::AuthenticationFailed {
        mechanism: Mechanism::Plain,
        reason,
        refusal: Refusal::InvalidUsernameOrPassword,
    };
    match users.get(&response.username) {
        Some(expected) => {
            if !fixed_time::equal(expected.as_bytes(), response.password.as_bytes()) {
                return Err(refused(format!(
                    "wrong password for user {:?}",
                    response.username
                )));
            }
        }
        None => {
            // Same work as for a known user, against nothing.
            let _ = fixed_time::equal(&[], response.password.as_bytes());
            return Err(refused(format!("unknown user {:?}", response.username)));
        }
    }
    // Checked after the password, as Kafka does, so that this answer
    // tells nothing to whoever does not know it.
    if !response.authzid.is_empty() && response.authzid != response.username {
        return Err(SaslError::AuthenticationFailed {
            mechanism: Mechanism::Plain,
            reason: format!(
                "user {:?} asked to act as {:?}",
                response.username, response.authzid
            ),
            refusal: Refusal::AuthorizationIdNotUsername,
        });
    }
    Ok(response.username.clone())
}

/// The message the broker sends as a PLAIN client: no authorization id,
/// like Kafka's own client.
pub fn client_message(username: &str, password: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(2 + username.len() + password.len());
    message.push(0);
    message.extend_from_slice(username.as_bytes());
    message.push(0);
    message.extend_from_slice(password.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice", "alice-secret"), ("bob", "bob pw ✓")]
            .into_iter()
            .map(|(name, password)| (name.to_string(), password.to_string()))
            .collect()
    }

    #[test]
    fn parses_three_nul_separated_parts() {
        let cases: &[(&[u8], &str, &str, &str)] = &[
            (b"\0alice\0alice-secret", "", "alice", "alice-secret"),
            (b"alice\0alice\0pw", "alice", "alice", "pw"),
            (b"admin\0alice\0pw", "admin", "alice", "pw"),
            ("\0bob\0bob pw ✓".as_bytes(), "", "bob", "bob pw ✓"),
            (b"\0a,b=c\0 \t", "", "a,b=c", " \t"),
        ];
        for (message, authzid, username, password) in cases {
            let response = parse(message).expect("parses");
            assert_eq!(
                (
                    response.authzid.as_str(),
                    response.username.as_str(),
                    response.password.as_str()
                ),
                (*authzid, *username, *password)
            );
        }
    }

    #[test]
    fn refuses_malformed_messages_without_quoting_them() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "expected 3 parts"),
            (b"alice", "expected 3 parts"),
            (b"\0alice", "expected 3 parts"),
            (b"\0alice\0SECRET\0", "expected 3 parts"),
            (b"\0alice\0SECRET\0more", "expected 3 parts"),
            (b"\0\0SECRET", "username not specified"),
            (b"\0alice\0", "password not specified"),
            (b"\0\0", "username not specified"),
            (b"\0al\xffice\0SECRET", "username is not UTF-8"),
            (b"\0alice\0SECR\xc3ET", "password is not UTF-8"),
            (b"\xc3\0alice\0SECRET", "authorization id is not UTF-8"),
        ];
        for (message, what) in cases {
            let error = parse(message).expect_err("refused");
            let SaslError::Malformed {
                mechanism,
                what: got,
            } = &error
            else {
                panic!("{message:?}: {error:?}");
            };
            assert_eq!(*mechanism, Mechanism::Plain);
            assert!(got.contains(what), "{message:?}: {got}");
            assert!(!error.to_string().contains("SECRET"), "{error}");
            assert_eq!(
                error.client_message(),
                "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN"
            );
        }
    }

    #[test]
    fn verifies_passwords_and_hides_which_part_was_wrong() {
        const WRONG: &str = "Authentication failed: Invalid username or password";
        const AUTHZID: &str = "Authentication failed: Client requested an authorization id that is different from username";
        // (authzid, username, password, the user or (client text, log reason))
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Result<&'a str, (&'a str, &'a str)>,
        );
        let cases: &[Case] = &[
            ("", "alice", "alice-secret", Ok("alice")),
            ("alice", "alice", "alice-secret", Ok("alice")),
            ("", "bob", "bob pw ✓", Ok("bob")),
            (
                "",
                "alice",
                "alice-secreT",
                Err((WRONG, "wrong password for user \"alice\"")),
            ),
            (
                "",
                "alice",
                "alice-secret ",
                Err((WRONG, "wrong password for user \"alice\"")),
            ),
            (
                "",
                "alice",
                "bob pw ✓",
                Err((WRONG, "wrong password for user \"alice\"")),
            ),
            (
                "",
                "Alice",
                "alice-secret",
                Err((WRONG, "unknown user \"Alice\"")),
            ),
            (
                "",
                "carol",
                "alice-secret",
                Err((WRONG, "unknown user \"carol\"")),
            ),
            (
                "bob",
                "alice",
                "alice-secret",
                Err((AUTHZID, "user \"alice\" asked to act as \"bob\"")),
            ),
            // A wrong password is reported before the authorization id.
            (
                "bob",
                "alice",
                "nope",
                Err((WRONG, "wrong password for user \"alice\"")),
            ),
        ];
        for (authzid, username, password, expected) in cases {
            let response = PlainResponse {
                authzid: authzid.to_string(),
                username: username.to_string(),
                password: password.to_string(),
            };
            match (verify(&users(), &response), expected) {
                (Ok(user), Ok(want)) => assert_eq!(user, *want),
                (Err(error), Err((client, reason))) => {
                    assert_eq!(error.client_message(), *client, "{response:?}");
                    let SaslError::AuthenticationFailed { reason: got, .. } = &error else {
                        panic!("{response:?}: {error:?}");
                    };
                    assert_eq!(got, reason);
                    let shown = error.to_string();
                    assert!(
                        !shown.contains(password) && !shown.contains("secret"),
                        "{shown}"
                    );
                }
                (got, want) => panic!("{response:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_client_message_parses_back() {
        let cases = [("alice", "alice-secret"), ("bob", "bob pw ✓"), ("a,b", "=")];
        for (username, password) in cases {
            let message = client_message(username, password);
            let response = parse(&message).expect("parses");
            assert_eq!(response.authzid, "");
            assert_eq!(response.username, username);
            assert_eq!(response.password, password);
        }
        assert_eq!(client_message("u", "p"), b"\0u\0p");
    }

    #[test]
    fn debug_hides_the_password() {
        let response = parse(b"\0alice\0alice-secret").expect("parses");
        let shown = format!("{response:?}");
        assert!(!shown.contains("alice-secret"), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("[hidden]"),
            "{shown}"
        );
    }
}
