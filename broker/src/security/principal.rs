//! Who a TLS client is: the subject of its certificate, written as Kafka
//! writes it (RFC 2253, most specific name first: `CN=alice,OU=eng,O=Acme`),
//! turned into a user name by `ssl.principal.mapping.rules` (KIP-371): the
//! first rule whose pattern matches the whole name rewrites it, optionally
//! in lower or upper case; `DEFAULT` keeps the name as it is.

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The principal of a client that has not authenticated (no SASL, no
/// client certificate).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    /// The distinguished name as it is.
    Default,
    /// `RULE:pattern/replacement/[LU]`.
    Rewrite {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Parsed `ssl.principal.mapping.rules`; equal when written alike.
#[derive(Debug, Clone)]
pub struct PrincipalRules {
    rules: Vec<Rule>,
    text: String,
}

impl Default for PrincipalRules {
    fn default() -> Self {
        PrincipalRules {
            rules: vec![Rule::Default],
            text: "DEFAULT".into(),
        }
    }
}

impl PartialEq for PrincipalRules {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PrincipalRules {}

impl PrincipalRules {
    /// Parses Kafka's syntax: `RULE:pattern/replacement/[LU]` and
    /// `DEFAULT`, separated by commas (a `/` inside a pattern or
    /// replacement is written `\/`).
    pub fn parse(text: &str) -> Result<PrincipalRules, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| format!("`{rest}`: expected RULE:pattern/replacement/"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("`{rest}`: expected RULE:pattern/replacement/"))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("pattern `{pattern}`: {e}"))?;
                rules.push(Rule::Rewrite {
                    pattern,
                    replacement,
                    case,
                });
                rest = after;
            } else {
                return Err(format!("`{rest}`: expected RULE:... or DEFAULT"));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("`{rest}`: expected a comma between rules")),
            }
        }
        if rules.is_empty() {
            return Err("no rules: use DEFAULT".into());
        }
        Ok(PrincipalRules {
            rules,
            text: text.to_string(),
        })
    }

    /// The user name for `distinguished_name`; `None` when no rule applies
    /// (Kafka refuses such a client).
    pub fn apply(&self, distinguished_name: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(distinguished_name.to_string()),
            Rule::Rewrite {
                pattern,
                replacement,
                case,
            } => {
                if !pattern.is_match(distinguished_name) {
                    return None;
                }
                let name = pattern
                    .replace(distinguished_name, replacement.as_str())
                    .into_owned();
                Some(match case {
                    Case::Keep => name,
                    Case::Lower => name.to_lowercase(),
                    Case::Upper => name.to_uppercase(),
                })
            }
        })
    }
}

/// Text up to the next unescaped `/` (with `\/` unescaped), and what
/// follows that slash.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if text[i + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// The subject of a DER certificate as RFC 2253 writes it; `None` when it
/// does not parse.
pub fn subject_name(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut parts = Vec::new();
    // RFC 2253 starts from the last relative name of the sequence.
    let rdns: Vec<_> = cert.subject().iter().collect();
    for rdn in rdns.into_iter().rev() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type();
                let key = match oid.to_id_string().as_str() {
                    "2.5.4.3" => "CN".to_string(),
                    "2.5.4.6" => "C".to_string(),
                    "2.5.4.7" => "L".to_string(),
                    "2.5.4.8" => "ST".to_string(),
                    "2.5.4.9" => "STREET".to_string(),
                    "2.5.4.10" => "O".to_string(),
                    "2.5.4.11" => "OU".to_string(),
                    "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                    "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                    other => other.to_string(),
                };
                let value = attribute.as_str().map(escape).unwrap_or_default();
                format!("{key}={value}")
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    Some(parts.join(","))
}

/// RFC 2253's escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_rewrite_the_first_match_as_kafka_does() {
        let rules = PrincipalRules::parse(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .expect("rules");
        let cases = [
            (
                "CN=kafka-broker,OU=ServiceUsers,O=Acme",
                Some("kafka-broker"),
            ),
            ("CN=Alice,OU=Eng,O=Acme", Some("alice@eng")),
            ("O=Acme,CN=bob.smith", Some("BOB.SMITH")),
            ("O=Acme", Some("O=Acme")),
        ];
        for (dn, expected) in cases {
            assert_eq!(rules.apply(dn).as_deref(), expected, "{dn}");
        }
        let strict = PrincipalRules::parse(r"RULE:^CN=([^,]*)$/$1/").expect("rules");
        assert_eq!(strict.apply("CN=a,O=b"), None, "no rule applies");
        let slashes = PrincipalRules::parse(r"RULE:^CN=(.*)\/(.*)$/$2\/$1/").expect("rules");
        assert_eq!(slashes.apply("CN=a/b").as_deref(), Some("b/a"));
        assert_eq!(
            PrincipalRules::default().apply("CN=x").as_deref(),
            Some("CN=x")
        );
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "",
            "RULE:abc",
            "RULE:a/b",
            "NOPE",
            "DEFAULT DEFAULT",
            "RULE:(/x/",
        ] {
            assert!(PrincipalRules::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subjects_are_written_as_rfc_2253() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CountryName, "US");
        name.push(rcgen::DnType::OrganizationName, "Acme, Inc");
        name.push(rcgen::DnType::OrganizationalUnitName, "Eng");
        name.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = name;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        assert_eq!(
            subject_name(cert.der()).as_deref(),
            Some(r"CN=alice,OU=Eng,O=Acme\, Inc,C=US")
        );
        assert_eq!(subject_name(b"not a certificate"), None);
    }
}
