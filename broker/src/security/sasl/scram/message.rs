//! The syntax of SCRAM's four messages (RFC 5802 section 7), apart from
//! what they mean:
//!
//! ```text
//! client-first  gs2-header client-first-bare     n,,n=user,r=<client nonce>
//! server-first  r=<nonce>,s=<salt>,i=<iterations>
//! client-final  c=<base64 gs2-header>,r=<nonce>,p=<proof>
//! server-final  v=<server signature>  or  e=<error>
//! ```
//!
//! Attributes are single letters, values run to the next comma, binary
//! values are base64. Each message may end in extensions `name=value`,
//! which are ignored, except Kafka's `tokenauth` (delegation tokens,
//! KIP-48) in the client-first message, reported so that it can be
//! refused. Errors describe what is wrong without quoting the message.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::security::sasl::{Mechanism, SaslError};

/// Random bytes in a nonce this side adds: 192 bits, more than Kafka's
/// 130, printed as 32 characters.
const NONCE_BYTES: usize = 24;

/// The client's first message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ClientFirst<'a> {
    /// The gs2 header as sent (`n,,` or `n,a=<authzid>,`): the client-final
    /// message must echo it in `c=`.
    pub gs2_header: &'a str,
    /// The authorization id, decoded, if the client gave one.
    pub authzid: Option<String>,
    /// client-first-message-bare, as sent: part of the AuthMessage.
    pub bare: &'a str,
    /// The username, decoded.
    pub username: String,
    /// The client's nonce.
    pub nonce: &'a str,
    /// Whether the client asks for delegation-token authentication
    /// (`tokenauth=true`).
    pub token_auth: bool,
}

/// Parses a client-first message.
pub(super) fn parse_client_first(
    mechanism: Mechanism,
    message: &[u8],
) -> Result<ClientFirst<'_>, SaslError> {
    let malformed = |what: &str| malformed(mechanism, "client-first", what);
    let text = utf8(mechanism, "client-first", message)?;

    let (flag, rest) = text
        .split_once(',')
        .ok_or_else(|| malformed("no gs2 header"))?;
    match flag {
        "n" => {}
        // RFC 5802 lets a server without channel binding accept "y"; Kafka
        // accepts "n" alone, and so does Gregor.
        "y" => {
            return Err(SaslError::invalid_credentials(
                mechanism,
                "the client supports channel binding (gs2 flag y), which Gregor does not offer",
            ))
        }
        _ if flag.starts_with("p=") => {
            return Err(SaslError::invalid_credentials(
                mechanism,
                "the client requires channel binding (gs2 flag p), which Gregor does not offer",
            ))
        }
        _ => return Err(malformed("the gs2 header starts with neither n, y nor p=")),
    }
    let (authzid_field, bare) = rest
        .split_once(',')
        .ok_or_else(|| malformed("the gs2 header is not closed by ','"))?;
    let authzid = match authzid_field {
        "" => None,
        field => {
            let encoded = field
                .strip_prefix("a=")
                .ok_or_else(|| malformed("expected a=<authzid> or nothing in the gs2 header"))?;
            Some(decode_saslname(encoded).map_err(|what| malformed(&format!("authzid: {what}")))?)
        }
    };
    let gs2_header = &text[..text.len() - bare.len()];

    let mut fields = bare.split(',');
    let first = fields.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(SaslError::invalid_credentials(
            mechanism,
            "the client requires an extension (m=) Gregor does not know",
        ));
    }
    let username = first
        .strip_prefix("n=")
        .ok_or_else(|| malformed("expected n=<username> after the gs2 header"))?;
    let username =
        decode_saslname(username).map_err(|what| malformed(&format!("username: {what}")))?;
    let nonce = fields
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .ok_or_else(|| malformed("expected r=<nonce> after the username"))?;
    check_nonce(nonce).map_err(|what| malformed(&format!("nonce: {what}")))?;

    let mut token_auth = false;
    for field in fields {
        let (name, value) = extension(field).map_err(&malformed)?;
        // Kafka reads the flag with Java's Boolean.parseBoolean.
        if name == "tokenauth" && value.eq_ignore_ascii_case("true") {
            token_auth = true;
        }
    }

    Ok(ClientFirst {
        gs2_header,
        authzid,
        bare,
        username,
        nonce,
        token_auth,
    })
}

/// The client's final message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ClientFinal<'a> {
    /// client-final-message-without-proof, as sent: part of the AuthMessage.
    pub without_proof: &'a str,
    /// The decoded `c=`: the gs2 header again, as no channel binding data
    /// follows it.
    pub channel_binding: Vec<u8>,
    /// The whole nonce, client's and server's parts.
    pub nonce: &'a str,
    /// ClientProof.
    pub proof: Vec<u8>,
}

/// Parses a client-final message.
pub(super) fn parse_client_final(
    mechanism: Mechanism,
    message: &[u8],
) -> Result<ClientFinal<'_>, SaslError> {
    let malformed = |what: &str| malformed(mechanism, "client-final", what);
    let text = utf8(mechanism, "client-final", message)?;

    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| malformed("no proof (p=) at the end"))?;
    let proof = decode_base64(proof).ok_or_else(|| malformed("the proof is not base64"))?;

    let mut fields = without_proof.split(',');
    let channel_binding = fields
        .next()
        .and_then(|field| field.strip_prefix("c="))
        .ok_or_else(|| malformed("expected c=<channel binding> first"))?;
    let channel_binding = decode_base64(channel_binding)
        .ok_or_else(|| malformed("the channel binding is not base64"))?;
    let nonce = fields
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .ok_or_else(|| malformed("expected r=<nonce> after the channel binding"))?;
    check_nonce(nonce).map_err(|what| malformed(&format!("nonce: {what}")))?;
    for field in fields {
        extension(field).map_err(&malformed)?;
    }

    Ok(ClientFinal {
        without_proof,
        channel_binding,
        nonce,
        proof,
    })
}

/// The server's first message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ServerFirst<'a> {
    /// The whole nonce, client's and server's parts.
    pub nonce: &'a str,
    /// The user's salt.
    pub salt: Vec<u8>,
    /// The user's iteration count.
    pub iterations: u32,
}

/// Parses a server-first message.
pub(super) fn parse_server_first(
    mechanism: Mechanism,
    message: &[u8],
) -> Result<ServerFirst<'_>, SaslError> {
    let malformed = |what: &str| malformed(mechanism, "server-first", what);
    let text = utf8(mechanism, "server-first", message)?;

    let mut fields = text.split(',');
    let first = fields.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(SaslError::invalid_credentials(
            mechanism,
            "the server requires an extension (m=) Gregor does not know",
        ));
    }
    let nonce = first
        .strip_prefix("r=")
        .ok_or_else(|| malformed("expected r=<nonce> first"))?;
    check_nonce(nonce).map_err(|what| malformed(&format!("nonce: {what}")))?;
    let salt = fields
        .next()
        .and_then(|field| field.strip_prefix("s="))
        .ok_or_else(|| malformed("expected s=<salt> after the nonce"))?;
    let salt = decode_base64(salt).ok_or_else(|| malformed("the salt is not base64"))?;
    let iterations = fields
        .next()
        .and_then(|field| field.strip_prefix("i="))
        .ok_or_else(|| malformed("expected i=<iterations> after the salt"))?;
    let iterations = parse_digits(iterations)
        .ok_or_else(|| malformed("the iteration count is not a number that fits 32 bits"))?;
    for field in fields {
        extension(field).map_err(&malformed)?;
    }

    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// The server's final message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ServerFinal {
    /// `v=`: the ServerSignature, proving the server knows the credential.
    Verifier(Vec<u8>),
    /// `e=`: the server's reason for failing the exchange.
    Error(String),
}

/// Parses a server-final message.
pub(super) fn parse_server_final(
    mechanism: Mechanism,
    message: &[u8],
) -> Result<ServerFinal, SaslError> {
    let malformed = |what: &str| malformed(mechanism, "server-final", what);
    let text = utf8(mechanism, "server-final", message)?;

    let mut fields = text.split(',');
    let first = fields.next().unwrap_or_default();
    let outcome = if let Some(error) = first.strip_prefix("e=") {
        ServerFinal::Error(error.to_string())
    } else if let Some(verifier) = first.strip_prefix("v=") {
        ServerFinal::Verifier(
            decode_base64(verifier)
                .ok_or_else(|| malformed("the server signature is not base64"))?,
        )
    } else {
        return Err(malformed("expected v=<signature> or e=<error>"));
    };
    for field in fields {
        extension(field).map_err(&malformed)?;
    }
    Ok(outcome)
}

/// A username as a saslname: `=` and `,` written `=3D` and `=2C`.
pub(super) fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A saslname back to the username: `=2C` and `=3D` are the only escapes,
/// any other `=` is refused, and so are NUL and an empty name.
pub(super) fn decode_saslname(saslname: &str) -> Result<String, &'static str> {
    if saslname.is_empty() {
        return Err("empty");
    }
    let mut name = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(at) = rest.find(['=', '\0']) {
        name.push_str(&rest[..at]);
        let escape = &rest[at..];
        if escape.starts_with("=2C") {
            name.push(',');
        } else if escape.starts_with("=3D") {
            name.push('=');
        } else if escape.starts_with('=') {
            return Err("'=' not followed by 2C or 3D");
        } else {
            return Err("contains NUL");
        }
        rest = &escape[3..];
    }
    name.push_str(rest);
    Ok(name)
}

/// A fresh nonce part: random bytes printed in URL-safe base64, whose
/// characters are all printable and none a comma.
pub(super) fn random_nonce() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; NONCE_BYTES];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Base64 as SCRAM writes it (standard alphabet, padded).
pub(super) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// RFC 5802's `printable`: a non-empty run of the visible ASCII characters
/// except the comma.
fn check_nonce(nonce: &str) -> Result<(), &'static str> {
    if nonce.is_empty() {
        return Err("empty");
    }
    if !nonce
        .bytes()
        .all(|byte| (0x21..=0x7e).contains(&byte) && byte != b',')
    {
        return Err("holds characters other than printable ASCII");
    }
    Ok(())
}

/// An extension `name=value`; the name is letters only.
fn extension(field: &str) -> Result<(&str, &str), &'static str> {
    let (name, value) = field.split_once('=').ok_or("an attribute without '='")?;
    if name.is_empty() || !name.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err("an attribute name that is not letters");
    }
    Ok((name, value))
}

/// Decimal digits only (no sign, unlike `str::parse`), fitting a u32.
fn parse_digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn utf8<'a>(mechanism: Mechanism, which: &str, message: &'a [u8]) -> Result<&'a str, SaslError> {
    std::str::from_utf8(message).map_err(|_| malformed(mechanism, which, "not UTF-8"))
}

fn malformed(mechanism: Mechanism, which: &str, what: &str) -> SaslError {
    SaslError::malformed(mechanism, format!("{which} message: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Mechanism = Mechanism::ScramSha256;

    /// The log text of an error, asserting it is the kind expected.
    fn malformed_text(error: SaslError) -> String {
        match error {
            SaslError::Malformed { what, .. } => what,
            other => panic!("not malformed: {other:?}"),
        }
    }

    fn refused_text(error: SaslError) -> String {
        match error {
            SaslError::AuthenticationFailed { reason, .. } => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn saslnames_escape_comma_and_equals() {
        let cases = [
            ("user", "user"),
            ("a,b", "a=2Cb"),
            ("a=b", "a=3Db"),
            ("=,", "=3D=2C"),
            (",,==", "=2C=2C=3D=3D"),
            ("=2C", "=3D2C"),
            ("ü ser", "ü ser"),
        ];
        for (name, saslname) in cases {
            assert_eq!(encode_saslname(name), saslname);
            assert_eq!(decode_saslname(saslname).as_deref(), Ok(name));
        }
        let refused = [
            ("", "empty"),
            ("a=b", "'=' not followed by 2C or 3D"),
            ("a=2c", "'=' not followed by 2C or 3D"),
            ("a=", "'=' not followed by 2C or 3D"),
            ("a=3", "'=' not followed by 2C or 3D"),
            ("a\0b", "contains NUL"),
        ];
        for (saslname, why) in refused {
            assert_eq!(decode_saslname(saslname), Err(why), "{saslname:?}");
        }
    }

    /// A client-first message and its gs2 header, authzid, username, nonce
    /// and whether it asks for token authentication.
    type ClientFirstCase<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, &'a str, bool);

    #[test]
    fn parses_client_first_messages() {
        let cases: &[ClientFirstCase] = &[
            ("n,,n=user,r=abc", "n,,", None, "user", "abc", false),
            (
                "n,a=user,n=user,r=abc",
                "n,a=user,",
                Some("user"),
                "user",
                "abc",
                false,
            ),
            (
                "n,a=a=2Cb,n=a=3Db,r=abc",
                "n,a=a=2Cb,",
                Some("a,b"),
                "a=b",
                "abc",
                false,
            ),
            ("n,,n=user,r=%hv)$~!", "n,,", None, "user", "%hv)$~!", false),
            (
                "n,,n=user,r=abc,tokenauth=true",
                "n,,",
                None,
                "user",
                "abc",
                true,
            ),
            (
                "n,,n=user,r=abc,tokenauth=TRUE,x=1",
                "n,,",
                None,
                "user",
                "abc",
                true,
            ),
            (
                "n,,n=user,r=abc,tokenauth=false",
                "n,,",
                None,
                "user",
                "abc",
                false,
            ),
            (
                "n,,n=user,r=abc,ext=,other=a=b",
                "n,,",
                None,
                "user",
                "abc",
                false,
            ),
        ];
        for (message, header, authzid, username, nonce, token_auth) in cases {
            let parsed = parse_client_first(M, message.as_bytes()).expect(message);
            assert_eq!(parsed.gs2_header, *header, "{message}");
            assert_eq!(parsed.authzid.as_deref(), *authzid, "{message}");
            assert_eq!(parsed.bare, &message[header.len()..], "{message}");
            assert_eq!(parsed.username, *username, "{message}");
            assert_eq!(parsed.nonce, *nonce, "{message}");
            assert_eq!(parsed.token_auth, *token_auth, "{message}");
        }
    }

    #[test]
    fn refuses_bad_client_first_messages() {
        // (message, refused rather than malformed, what the log says)
        let cases: &[(&[u8], bool, &str)] = &[
            (b"", false, "no gs2 header"),
            (b"n=user,r=abc", false, "starts with neither"),
            (b"x,,n=user,r=abc", false, "starts with neither"),
            (b"y,,n=user,r=abc", true, "gs2 flag y"),
            (b"p=tls-unique,,n=user,r=abc", true, "gs2 flag p"),
            (b"n,", false, "not closed"),
            (b"n,user,n=user,r=abc", false, "expected a=<authzid>"),
            (b"n,a=,n=user,r=abc", false, "authzid: empty"),
            (b"n,a=x=y,n=user,r=abc", false, "authzid: '=' not followed"),
            (b"n,,m=ext,n=user,r=abc", true, "extension (m=)"),
            (b"n,,r=abc,n=user", false, "expected n=<username>"),
            (b"n,,n=,r=abc", false, "username: empty"),
            (b"n,,n=a=b,r=abc", false, "username: '=' not followed"),
            (b"n,,n=user", false, "expected r=<nonce>"),
            (b"n,,n=user,x=abc", false, "expected r=<nonce>"),
            (b"n,,n=user,r=", false, "nonce: empty"),
            (b"n,,n=user,r=a b", false, "nonce: holds characters"),
            ("n,,n=user,r=ü".as_bytes(), false, "nonce: holds characters"),
            (b"n,,n=user,r=abc,", false, "attribute without '='"),
            (b"n,,n=user,r=abc,x", false, "attribute without '='"),
            (b"n,,n=user,r=abc,1=x", false, "not letters"),
            (b"n,,n=us\xffer,r=abc", false, "not UTF-8"),
        ];
        for (message, refused, what) in cases {
            let error = parse_client_first(M, message).expect_err("refused");
            let text = if *refused {
                refused_text(error)
            } else {
                malformed_text(error)
            };
            assert!(
                text.contains(what),
                "{:?}: {text}",
                String::from_utf8_lossy(message)
            );
        }
    }

    /// A client-final message and its message without proof, channel
    /// binding, nonce and proof.
    type ClientFinalCase<'a> = (&'a str, &'a str, &'a [u8], &'a str, &'a [u8]);

    #[test]
    fn parses_client_final_messages() {
        let cases: &[ClientFinalCase] = &[
            (
                "c=biws,r=abcdef,p=AAEC",
                "c=biws,r=abcdef",
                b"n,,",
                "abcdef",
                &[0, 1, 2],
            ),
            (
                "c=bixhPXVzZXIs,r=abc,p=/w==",
                "c=bixhPXVzZXIs,r=abc",
                b"n,a=user,",
                "abc",
                &[255],
            ),
            // Extensions before the proof are ignored, but are part of
            // the message the proof covers.
            (
                "c=biws,r=abc,x=1,p=AA==",
                "c=biws,r=abc,x=1",
                b"n,,",
                "abc",
                &[0],
            ),
        ];
        for (message, without_proof, binding, nonce, proof) in cases {
            let parsed = parse_client_final(M, message.as_bytes()).expect(message);
            assert_eq!(parsed.without_proof, *without_proof);
            assert_eq!(parsed.channel_binding, *binding);
            assert_eq!(parsed.nonce, *nonce);
            assert_eq!(parsed.proof, *proof);
        }
    }

    #[test]
    fn refuses_bad_client_final_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no proof"),
            (b"c=biws,r=abc", "no proof"),
            (b"c=biws,r=abc,p=***", "proof is not base64"),
            (b"c=biws,r=abc,p=AAE", "proof is not base64"),
            (b"r=abc,c=biws,p=AA==", "expected c="),
            (b"c=b!ws,r=abc,p=AA==", "channel binding is not base64"),
            (b"c=biws,p=AA==", "expected r=<nonce>"),
            (b"c=biws,x=abc,p=AA==", "expected r=<nonce>"),
            (b"c=biws,r=,p=AA==", "nonce: empty"),
            (b"c=biws,r=abc,x,p=AA==", "attribute without '='"),
            (b"c=biws,r=abc,p=AA==\xff", "not UTF-8"),
        ];
        for (message, what) in cases {
            let error = parse_client_final(M, message).expect_err("refused");
            let text = malformed_text(error);
            assert!(
                text.contains(what),
                "{:?}: {text}",
                String::from_utf8_lossy(message)
            );
        }
        // The empty proof decodes to nothing; its length is checked later.
        let parsed = parse_client_final(M, b"c=biws,r=abc,p=").expect("parses");
        assert!(parsed.proof.is_empty());
    }

    #[test]
    fn parses_and_refuses_server_first_messages() {
        let parsed = parse_server_first(M, b"r=abcdef,s=AAEC,i=4096").expect("parses");
        assert_eq!(
            parsed,
            ServerFirst {
                nonce: "abcdef",
                salt: vec![0, 1, 2],
                iterations: 4096
            }
        );
        let parsed = parse_server_first(M, b"r=a,s=,i=0,x=y").expect("parses");
        assert_eq!((parsed.salt.len(), parsed.iterations), (0, 0));

        let cases: &[(&[u8], bool, &str)] = &[
            (b"m=x,r=abc,s=AA==,i=4096", true, "extension (m=)"),
            (b"s=AA==,r=abc,i=4096", false, "expected r=<nonce>"),
            (b"r=,s=AA==,i=4096", false, "nonce: empty"),
            (b"r=abc,i=4096", false, "expected s=<salt>"),
            (b"r=abc,s=A,i=4096", false, "salt is not base64"),
            (b"r=abc,s=AA==", false, "expected i=<iterations>"),
            (b"r=abc,s=AA==,i=", false, "not a number"),
            (b"r=abc,s=AA==,i=+4096", false, "not a number"),
            (b"r=abc,s=AA==,i=-1", false, "not a number"),
            (b"r=abc,s=AA==,i=4294967296", false, "not a number"),
            (b"r=abc,s=AA==,i=4096,", false, "attribute without '='"),
            (b"e=other-error", false, "expected r=<nonce>"),
        ];
        for (message, refused, what) in cases {
            let error = parse_server_first(M, message).expect_err("refused");
            let text = if *refused {
                refused_text(error)
            } else {
                malformed_text(error)
            };
            assert!(
                text.contains(what),
                "{:?}: {text}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn parses_and_refuses_server_final_messages() {
        let cases: &[(&[u8], Result<ServerFinal, &str>)] = &[
            (b"v=AAEC", Ok(ServerFinal::Verifier(vec![0, 1, 2]))),
            (b"v=AAEC,x=1", Ok(ServerFinal::Verifier(vec![0, 1, 2]))),
            (
                b"e=invalid-proof",
                Ok(ServerFinal::Error("invalid-proof".into())),
            ),
            (
                b"e=unknown-user,x=1",
                Ok(ServerFinal::Error("unknown-user".into())),
            ),
            (b"", Err("expected v=<signature> or e=<error>")),
            (b"x=AAEC", Err("expected v=<signature> or e=<error>")),
            (b"v=AAE", Err("signature is not base64")),
            (b"v=AAEC,", Err("attribute without '='")),
            (b"v=\xff", Err("not UTF-8")),
        ];
        for (message, expected) in cases {
            match (parse_server_final(M, message), expected) {
                (Ok(parsed), Ok(want)) => assert_eq!(&parsed, want),
                (Err(error), Err(what)) => {
                    let text = malformed_text(error);
                    assert!(text.contains(what), "{text}");
                }
                (got, want) => panic!("{message:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn nonces_are_fresh_and_printable() {
        let (a, b) = (
            random_nonce().expect("random"),
            random_nonce().expect("random"),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(check_nonce(&a), Ok(()));
    }
}
