//! `sasl.jaas.config`: the one login module a SASL listener's mechanism is
//! configured with, in the syntax of a JAAS configuration file entry that
//! Kafka accepts in that property:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="admin" password="admin-secret"
//!     user_admin="admin-secret" user_alice=alice-secret;
//! ```
//!
//! That is a login module class name, a control flag (`required`,
//! `requisite`, `sufficient` or `optional`, in any case), options
//! `key=value` whose value is a bare word or a string in double or single
//! quotes with backslash escapes, and a closing `;`. Whitespace, newlines
//! and `//` or `/* */` comments may stand between any two tokens, as in
//! Kafka, whose tokenizer treats every other character except `;`, `=`,
//! quotes and `/` as part of a word. Exactly one login module: Kafka
//! refuses a `sasl.jaas.config` with more.
//!
//! Option values are passwords, so neither the errors nor `Debug` show
//! them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::Mechanism;

/// The login module class of the PLAIN mechanism.
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// The login module class of the SCRAM mechanisms.
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The login module of OAUTHBEARER.
pub const OAUTHBEARER_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// The prefix of PLAIN's options that define a user: `user_alice="pw"`.
const PLAIN_USER_PREFIX: &str = "user_";

/// A login module's JAAS control flag. Kafka parses it and, with its single
/// login module per listener, then has no use for it; it is kept so that
/// a configuration reads back as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFlag {
    /// `required`
    Required,
    /// `requisite`
    Requisite,
    /// `sufficient`
    Sufficient,
    /// `optional`
    Optional,
}

impl ControlFlag {
    /// The flag as written in a JAAS configuration.
    pub fn name(&self) -> &'static str {
        match self {
            ControlFlag::Required => "required",
            ControlFlag::Requisite => "requisite",
            ControlFlag::Sufficient => "sufficient",
            ControlFlag::Optional => "optional",
        }
    }
}

impl fmt::Display for ControlFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ControlFlag {
    type Err = ();

    /// Case-insensitive, as Kafka upper-cases the flag before matching it.
    fn from_str(word: &str) -> Result<Self, Self::Err> {
        [
            ControlFlag::Required,
            ControlFlag::Requisite,
            ControlFlag::Sufficient,
            ControlFlag::Optional,
        ]
        .into_iter()
        .find(|flag| flag.name().eq_ignore_ascii_case(word))
        .ok_or(())
    }
}

/// A parsed `sasl.jaas.config`.
///
/// `Debug` shows the option keys but not their values.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The login module's class name.
    pub login_module: String,
    /// Its control flag.
    pub flag: ControlFlag,
    /// Its options. A key given twice keeps its last value, as in Kafka.
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// The options with every value replaced.
        struct Redacted<'a>(&'a BTreeMap<String, String>);

        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.keys().map(|key| (key, format_args!("[hidden]"))))
                    .finish()
            }
        }

        f.debug_struct("JaasConfig")
            .field("login_module", &self.login_module)
            .field("flag", &self.flag)
            .field("options", &Redacted(&self.options))
            .finish()
    }
}

/// Where in the text of a `sasl.jaas.config` something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset from the start.
    pub offset: usize,
    /// Line, from 1.
    pub line: usize,
    /// Character in the line, from 1.
    pub column: usize,
}

impl Position {
    fn of(text: &str, offset: usize) -> Position {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Position {
            offset,
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a `sasl.jaas.config` is refused. Errors say where and what was
/// expected, and describe what was found by its kind only: the text there
/// may be a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    /// A token of the wrong kind.
    #[error("sasl.jaas.config: {at}: expected {expected}, found {found}")]
    Unexpected {
        /// Where the token starts.
        at: Position,
        /// What would have fitted.
        expected: &'static str,
        /// The kind of token there.
        found: &'static str,
    },
    /// A control flag that is none of the four.
    #[error("sasl.jaas.config: {at}: unknown login module control flag; expected required, requisite, sufficient or optional")]
    ControlFlag {
        /// Where the flag starts.
        at: Position,
    },
    /// `key=` with no value after it.
    #[error("sasl.jaas.config: {at}: option {key:?} has no value; expected a word or a quoted string after '='")]
    MissingValue {
        /// Where the value should be.
        at: Position,
        /// The option.
        key: String,
    },
    /// A quoted value not closed on its line.
    #[error("sasl.jaas.config: {at}: quoted value not closed before the end of its line")]
    UnterminatedQuote {
        /// Where the quote opens.
        at: Position,
    },
    /// A `/*` comment never closed.
    #[error("sasl.jaas.config: {at}: comment not closed with */")]
    UnterminatedComment {
        /// Where the comment opens.
        at: Position,
    },
    /// A `/` that starts no comment. Kafka would silently take the rest of
    /// the line as a comment; a value with a `/` in it must be quoted.
    #[error("sasl.jaas.config: {at}: unexpected '/'; a value containing '/' must be quoted")]
    StraySlash {
        /// Where the slash is.
        at: Position,
    },
    /// The login module does not belong to the listener's mechanism.
    #[error(
        "sasl.jaas.config: login module {found} does not serve {mechanism}; expected {expected}"
    )]
    WrongModule {
        /// The mechanism the configuration is for.
        mechanism: Mechanism,
        /// The login module class given.
        found: String,
        /// The class the mechanism needs.
        expected: &'static str,
    },
}

/// Parses the value of a `sasl.jaas.config` property.
pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
    let mut lexer = Lexer { text, at: 0 };

    let (at, token) = lexer.next_token()?;
    let login_module = match token {
        Token::Word(word) => word,
        other => return Err(lexer.unexpected(at, "a login module class name", &other)),
    };

    let (at, token) = lexer.next_token()?;
    let flag = match token {
        Token::Word(word) => word.parse().map_err(|()| JaasError::ControlFlag {
            at: Position::of(text, at),
        })?,
        other => {
            return Err(lexer.unexpected(
                at,
                "a control flag (required, requisite, sufficient or optional)",
                &other,
            ))
        }
    };

    let mut options = BTreeMap::new();
    loop {
        let (at, token) = lexer.next_token()?;
        let key = match token {
            Token::Semicolon => break,
            Token::Word(key) => key,
            other => return Err(lexer.unexpected(at, "an option name or ';'", &other)),
        };
        let (at, token) = lexer.next_token()?;
        if token != Token::Equals {
            // Not naming the would-be key: after a missing '=' it may well
            // be a value that lost its key.
            return Err(lexer.unexpected(at, "'=' after an option name", &token));
        }
        let (at, token) = lexer.next_token()?;
        let value = match token {
            Token::Word(value) | Token::Quoted(value) => value,
            Token::Equals | Token::Semicolon | Token::End => {
                return Err(JaasError::MissingValue {
                    at: Position::of(text, at),
                    key,
                })
            }
        };
        options.insert(key, value);
    }

    let (at, token) = lexer.next_token()?;
    if token != Token::End {
        return Err(lexer.unexpected(
            at,
            "the end after ';' (sasl.jaas.config holds exactly one login module)",
            &token,
        ));
    }

    Ok(JaasConfig {
        login_module,
        flag,
        options,
    })
}

/// The users PLAIN accepts: every `user_<name>="<password>"` option, by
/// name. Like Kafka, only a PLAIN login module's options define users.
pub fn plain_users(config: &JaasConfig) -> BTreeMap<String, String> {
    if config.login_module != PLAIN_LOGIN_MODULE {
        return BTreeMap::new();
    }
    config
        .options
        .iter()
        .filter_map(|(key, password)| {
            let name = key.strip_prefix(PLAIN_USER_PREFIX)?;
            // An empty name could never log in: PLAIN refuses an empty
            // username.
            (!name.is_empty()).then(|| (name.to_string(), password.clone()))
        })
        .collect()
}

/// The `username` and `password` options: what the broker logs in with
/// when it is the client on this listener (PLAIN and SCRAM alike). `None`
/// unless both are there.
pub fn client_credentials(config: &JaasConfig) -> Option<(String, String)> {
    let username = config.options.get("username")?;
    let password = config.options.get("password")?;
    Some((username.clone(), password.clone()))
}

/// Checks that the login module is the one `mechanism` works with:
/// PlainLoginModule for PLAIN, ScramLoginModule for the SCRAM mechanisms,
/// OAuthBearerLoginModule for OAUTHBEARER.
pub fn expect_module(config: &JaasConfig, mechanism: Mechanism) -> Result<(), JaasError> {
    let expected = match mechanism {
        Mechanism::Plain => PLAIN_LOGIN_MODULE,
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => SCRAM_LOGIN_MODULE,
        Mechanism::OAuthBearer => OAUTHBEARER_LOGIN_MODULE,
    };
    if config.login_module == expected {
        Ok(())
    } else {
        Err(JaasError::WrongModule {
            mechanism,
            found: config.login_module.clone(),
            expected,
        })
    }
}

/// A token of the JAAS syntax.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word: a class name, a flag, a key or an unquoted value.
    Word(String),
    /// A quoted string, escapes resolved.
    Quoted(String),
    /// `=`
    Equals,
    /// `;`
    Semicolon,
    /// The end of the text.
    End,
}

impl Token {
    /// The token's kind, for errors: never its text.
    fn kind(&self) -> &'static str {
        match self {
            Token::Word(_) => "a word",
            Token::Quoted(_) => "a quoted string",
            Token::Equals => "'='",
            Token::Semicolon => "';'",
            Token::End => "the end of the text",
        }
    }
}

/// Splits the text into tokens, skipping whitespace and comments.
struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
}

impl Lexer<'_> {
    fn unexpected(&self, at: usize, expected: &'static str, found: &Token) -> JaasError {
        JaasError::Unexpected {
            at: Position::of(self.text, at),
            expected,
            found: found.kind(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    /// The next token and the offset where it starts.
    fn next_token(&mut self) -> Result<(usize, Token), JaasError> {
        self.skip_blanks()?;
        let start = self.at;
        let token = match self.peek() {
            None => Token::End,
            Some(';') => {
                self.bump();
                Token::Semicolon
            }
            Some('=') => {
                self.bump();
                Token::Equals
            }
            Some(quote @ ('"' | '\'')) => {
                self.bump();
                Token::Quoted(self.quoted(quote, start)?)
            }
            Some(_) => {
                let rest = &self.text[self.at..];
                let len = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
                self.at += len;
                Token::Word(rest[..len].to_string())
            }
        };
        Ok((start, token))
    }

    /// Skips whitespace (every character up to the space, as in Kafka's
    /// tokenizer) and comments.
    fn skip_blanks(&mut self) -> Result<(), JaasError> {
        loop {
            match (self.peek(), self.peek_second()) {
                (Some(c), _) if is_blank(c) => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    let rest = &self.text[self.at..];
                    self.at += rest.find('\n').unwrap_or(rest.len());
                }
                (Some('/'), Some('*')) => {
                    let opening = self.at;
                    match self.text[opening + 2..].find("*/") {
                        Some(end) => self.at = opening + 2 + end + 2,
                        None => {
                            return Err(JaasError::UnterminatedComment {
                                at: Position::of(self.text, opening),
                            })
                        }
                    }
                }
                (Some('/'), _) => {
                    return Err(JaasError::StraySlash {
                        at: Position::of(self.text, self.at),
                    })
                }
                _ => return Ok(()),
            }
        }
    }

    /// The rest of a string opened by `quote` at `opening`, with the
    /// escapes of Java's `StreamTokenizer` (which Kafka parses with)
    /// resolved: `\n`, `\t`, `\r`, `\b`, `\f`, `\a`, `\v`, octal `\ooo`,
    /// and a backslash before any other character keeps that character.
    fn quoted(&mut self, quote: char, opening: usize) -> Result<String, JaasError> {
        let unterminated = |lexer: &Self| JaasError::UnterminatedQuote {
            at: Position::of(lexer.text, opening),
        };
        let mut value = String::new();
        loop {
            match self.bump() {
                None | Some('\n' | '\r') => return Err(unterminated(self)),
                Some(c) if c == quote => return Ok(value),
                Some('\\') => {
                    let escaped = match self.bump() {
                        None => return Err(unterminated(self)),
                        Some('a') => '\u{7}',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('v') => '\u{b}',
                        Some(first @ '0'..='7') => self.octal(first),
                        Some(other) => other,
                    };
                    value.push(escaped);
                }
                Some(c) => value.push(c),
            }
        }
    }

    /// An octal escape whose first digit is `first`: up to three digits
    /// when the first is 0-3 (so the value fits a byte), else two.
    fn octal(&mut self, first: char) -> char {
        let most = if first <= '3' { 3 } else { 2 };
        let mut code = first as u32 - '0' as u32;
        for _ in 1..most {
            match self.peek() {
                Some(digit @ '0'..='7') => {
                    self.bump();
                    code = code * 8 + (digit as u32 - '0' as u32);
                }
                _ => break,
            }
        }
        // At most 0o377: always a valid char.
        char::from_u32(code).unwrap_or('\u{fffd}')
    }
}

/// Kafka's tokenizer takes every character from NUL to the space as
/// whitespace.
fn is_blank(c: char) -> bool {
    c <= ' '
}

/// Everything that is not whitespace, a token of its own, a quote or the
/// comment character belongs to a word.
fn is_word_char(c: char) -> bool {
    !is_blank(c) && !matches!(c, ';' | '=' | '"' | '\'' | '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    /// A configuration and its login module, flag and options.
    type Accepted<'a> = (&'a str, &'a str, ControlFlag, &'a [(&'a str, &'a str)]);

    #[test]
    fn parses_what_kafka_accepts() {
        let cases: &[Accepted] = &[
            (
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#,
                PLAIN_LOGIN_MODULE,
                ControlFlag::Required,
                &[
                    ("username", "admin"),
                    ("password", "admin-secret"),
                    ("user_admin", "admin-secret"),
                    ("user_alice", "alice-secret"),
                ],
            ),
            (
                "org.apache.kafka.common.security.scram.ScramLoginModule required\n    username=\"broker\"\n    password=\"b-secret\";\n",
                SCRAM_LOGIN_MODULE,
                ControlFlag::Required,
                &[("username", "broker"), ("password", "b-secret")],
            ),
            // No options at all; the flag in any case.
            ("a.B REQUIRED;", "a.B", ControlFlag::Required, &[]),
            ("a.B Requisite ;", "a.B", ControlFlag::Requisite, &[]),
            ("a.B sufficient;", "a.B", ControlFlag::Sufficient, &[]),
            ("a.B optional;", "a.B", ControlFlag::Optional, &[]),
            // Whitespace anywhere between tokens, and none around '='.
            (
                "\n\t a.B \r\n required\n key \n = \n value \n ; \n\n",
                "a.B",
                ControlFlag::Required,
                &[("key", "value")],
            ),
            ("a.B required k=v;", "a.B", ControlFlag::Required, &[("k", "v")]),
            // Bare words take any character but blanks, ; = quotes and /.
            (
                "a.B required k=p@ss:w0rd!#$%^&*()-+.,<>?[]{}|~`\\;",
                "a.B",
                ControlFlag::Required,
                &[("k", "p@ss:w0rd!#$%^&*()-+.,<>?[]{}|~`\\")],
            ),
            ("a.B required k=pässwörd;", "a.B", ControlFlag::Required, &[("k", "pässwörd")]),
            // Quotes of both kinds hold what a word cannot.
            (
                r#"a.B required k="a b;c=d/e'f" j='x "y" z';"#,
                "a.B",
                ControlFlag::Required,
                &[("k", "a b;c=d/e'f"), ("j", r#"x "y" z"#)],
            ),
            // Escapes, as Java's StreamTokenizer resolves them.
            (
                r#"a.B required k="q\"b\\s\'\n\t\r\a\b\f\v\x\101\0612\477";"#,
                "a.B",
                ControlFlag::Required,
                &[("k", "q\"b\\s'\n\t\r\u{7}\u{8}\u{c}\u{b}xA12'7")],
            ),
            ("a.B required k=\"\";", "a.B", ControlFlag::Required, &[("k", "")]),
            // Comments between tokens.
            (
                "// the broker's users\na.B /* flag: */ required // then options\n k=v /* v is a value */;",
                "a.B",
                ControlFlag::Required,
                &[("k", "v")],
            ),
            // A key given twice keeps its last value, as in Kafka.
            (
                "a.B required k=first k=second;",
                "a.B",
                ControlFlag::Required,
                &[("k", "second")],
            ),
        ];
        for (text, module, flag, expected) in cases {
            let config = parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"));
            assert_eq!(config.login_module, *module, "{text:?}");
            assert_eq!(config.flag, *flag, "{text:?}");
            assert_eq!(config.options, options(expected), "{text:?}");
        }
    }

    /// What an error must say, and a secret in the text it must not show.
    enum Expect {
        Unexpected(&'static str, &'static str),
        ControlFlag,
        MissingValue(&'static str),
        UnterminatedQuote,
        UnterminatedComment,
        StraySlash,
    }

    #[test]
    fn refuses_with_the_place_and_without_the_values() {
        let cases: &[(&str, usize, usize, Expect)] = &[
            (
                "",
                1,
                1,
                Expect::Unexpected("a login module class name", "the end of the text"),
            ),
            (
                "  // nothing\n",
                2,
                1,
                Expect::Unexpected("a login module class name", "the end of the text"),
            ),
            (
                "\"a.B\" required;",
                1,
                1,
                Expect::Unexpected("a login module class name", "a quoted string"),
            ),
            (
                "a.B",
                1,
                4,
                Expect::Unexpected(
                    "a control flag (required, requisite, sufficient or optional)",
                    "the end of the text",
                ),
            ),
            (
                "a.B;",
                1,
                4,
                Expect::Unexpected(
                    "a control flag (required, requisite, sufficient or optional)",
                    "';'",
                ),
            ),
            ("a.B mandatory k=SECRET;", 1, 5, Expect::ControlFlag),
            // Not terminated by ';'.
            (
                "a.B required k=SECRET",
                1,
                22,
                Expect::Unexpected("an option name or ';'", "the end of the text"),
            ),
            (
                "a.B required\nk=\"SECRET\"\n",
                3,
                1,
                Expect::Unexpected("an option name or ';'", "the end of the text"),
            ),
            (
                "a.B required =SECRET;",
                1,
                14,
                Expect::Unexpected("an option name or ';'", "'='"),
            ),
            (
                "a.B required \"k\"=SECRET;",
                1,
                14,
                Expect::Unexpected("an option name or ';'", "a quoted string"),
            ),
            // A value without a key reads as a key lacking its '='.
            (
                "a.B required k=v SECRET;",
                1,
                24,
                Expect::Unexpected("'=' after an option name", "';'"),
            ),
            (
                "a.B required k=v SECRET more;",
                1,
                25,
                Expect::Unexpected("'=' after an option name", "a word"),
            ),
            ("a.B required k=;", 1, 16, Expect::MissingValue("k")),
            ("a.B required k=", 1, 16, Expect::MissingValue("k")),
            ("a.B required k==SECRET;", 1, 16, Expect::MissingValue("k")),
            // Exactly one login module.
            (
                "a.B required k=SECRET; c.D required;",
                1,
                24,
                Expect::Unexpected(
                    "the end after ';' (sasl.jaas.config holds exactly one login module)",
                    "a word",
                ),
            ),
            (
                "a.B required;;",
                1,
                14,
                Expect::Unexpected(
                    "the end after ';' (sasl.jaas.config holds exactly one login module)",
                    "';'",
                ),
            ),
            ("a.B required k=\"SECRET;", 1, 16, Expect::UnterminatedQuote),
            (
                "a.B required\n  k='SECRET\n';",
                2,
                5,
                Expect::UnterminatedQuote,
            ),
            (
                "a.B required k=\"SECRET\\",
                1,
                16,
                Expect::UnterminatedQuote,
            ),
            (
                "a.B required k=SECRET /* open",
                1,
                23,
                Expect::UnterminatedComment,
            ),
            ("a.B required k=/SECRET;", 1, 16, Expect::StraySlash),
            ("a.B required k=SECRET/x;", 1, 22, Expect::StraySlash),
        ];
        for (text, line, column, expect) in cases {
            let error = match parse(text) {
                Ok(config) => panic!("{text:?} parsed: {config:?}"),
                Err(error) => error,
            };
            let at = match (&error, expect) {
                (
                    JaasError::Unexpected {
                        at,
                        expected,
                        found,
                    },
                    Expect::Unexpected(want_expected, want_found),
                ) => {
                    assert_eq!(
                        (*expected, *found),
                        (*want_expected, *want_found),
                        "{text:?}"
                    );
                    at
                }
                (JaasError::ControlFlag { at }, Expect::ControlFlag)
                | (JaasError::UnterminatedQuote { at }, Expect::UnterminatedQuote)
                | (JaasError::UnterminatedComment { at }, Expect::UnterminatedComment)
                | (JaasError::StraySlash { at }, Expect::StraySlash) => at,
                (JaasError::MissingValue { at, key }, Expect::MissingValue(want_key)) => {
                    assert_eq!(key, want_key, "{text:?}");
                    at
                }
                (other, _) => panic!("{text:?}: unexpected error {other:?}"),
            };
            assert_eq!((at.line, at.column), (*line, *column), "{text:?}: {error}");
            let shown = error.to_string();
            assert!(
                !shown.contains("SECRET"),
                "{text:?}: error shows a value: {shown}"
            );
            assert!(
                shown.contains(&format!("line {line}, column {column}")),
                "{shown}"
            );
        }
    }

    #[test]
    fn positions_count_characters_on_their_line() {
        let text = "ä\nxyz ü";
        let cases = [(0, 1, 1), (2, 1, 2), (3, 2, 1), (7, 2, 5), (9, 2, 6)];
        for (offset, line, column) in cases {
            let position = Position::of(text, offset);
            assert_eq!(
                (position.offset, position.line, position.column),
                (offset, line, column)
            );
        }
    }

    #[test]
    fn debug_hides_option_values() {
        let config = parse(&format!(
            "{PLAIN_LOGIN_MODULE} required username=\"admin\" password=\"s3cr3t\" user_alice=\"al1ce\";"
        ))
        .expect("parses");
        let shown = format!("{config:?}");
        for secret in ["s3cr3t", "al1ce"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        for visible in [
            PLAIN_LOGIN_MODULE,
            "Required",
            "username",
            "password",
            "user_alice",
            "[hidden]",
        ] {
            assert!(shown.contains(visible), "{visible} missing from {shown}");
        }
    }

    #[test]
    fn plain_users_are_the_user_options_of_a_plain_module() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=admin password=pw user_admin=pw user_alice=a user_bob=\"b b\";",
                &[("admin", "pw"), ("alice", "a"), ("bob", "b b")],
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=admin password=pw;",
                &[],
            ),
            // `user_` alone names nobody; `users_x` and `User_x` are other options.
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_=x users_y=y User_z=z user_user_w=w;",
                &[("user_w", "w")],
            ),
            // Kafka looks users up in PlainLoginModule's options only.
            (
                "org.apache.kafka.common.security.scram.ScramLoginModule required user_alice=a;",
                &[],
            ),
        ];
        for (text, expected) in cases {
            let config = parse(text).expect("parses");
            assert_eq!(plain_users(&config), options(expected), "{text}");
        }
    }

    #[test]
    fn client_credentials_need_both_username_and_password() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("m.M required username=u password=p;", Some(("u", "p"))),
            ("m.M required username=\"\" password=\"\";", Some(("", ""))),
            ("m.M required username=u;", None),
            ("m.M required password=p;", None),
            ("m.M required user_u=p;", None),
        ];
        for (text, expected) in cases {
            let config = parse(text).expect("parses");
            let expected = expected.map(|(u, p)| (u.to_string(), p.to_string()));
            assert_eq!(client_credentials(&config), expected, "{text}");
        }
    }

    #[test]
    fn each_mechanism_expects_its_login_module() {
        let cases = [
            (PLAIN_LOGIN_MODULE, Mechanism::Plain, None),
            (
                PLAIN_LOGIN_MODULE,
                Mechanism::ScramSha256,
                Some(SCRAM_LOGIN_MODULE),
            ),
            (
                PLAIN_LOGIN_MODULE,
                Mechanism::ScramSha512,
                Some(SCRAM_LOGIN_MODULE),
            ),
            (
                SCRAM_LOGIN_MODULE,
                Mechanism::Plain,
                Some(PLAIN_LOGIN_MODULE),
            ),
            (SCRAM_LOGIN_MODULE, Mechanism::ScramSha256, None),
            (SCRAM_LOGIN_MODULE, Mechanism::ScramSha512, None),
            (
                "com.example.Custom",
                Mechanism::Plain,
                Some(PLAIN_LOGIN_MODULE),
            ),
        ];
        for (module, mechanism, refused_for) in cases {
            let config = parse(&format!("{module} required;")).expect("parses");
            match (expect_module(&config, mechanism), refused_for) {
                (Ok(()), None) => {}
                (
                    Err(JaasError::WrongModule {
                        found, expected, ..
                    }),
                    Some(want),
                ) => {
                    assert_eq!(found, module);
                    assert_eq!(expected, want);
                }
                (got, _) => panic!("{module} for {mechanism}: {got:?}"),
            }
        }
    }
}
