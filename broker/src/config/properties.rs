//! Reading Java-style `.properties` text, the format of Kafka's
//! `server.properties`, and turning `GREGOR_*` environment variables into
//! property names.

use std::collections::BTreeMap;

/// One `key=value` pair with the line it came from, so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Property name, e.g. `log.dirs`.
    pub key: String,
    /// Value with surrounding white space removed.
    pub value: String,
    /// Where it came from: `file:line` or the environment variable's name.
    pub origin: String,
}

/// Parses properties text: `key=value`, `key: value` or `key value`; `#` and
/// `!` start comments; a trailing backslash continues a line; `\t`, `\n`,
/// `\\` and `\=` style escapes are unescaped. Later keys win over earlier ones.
pub fn parse(text: &str, source: &str) -> BTreeMap<String, Property> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let mut logical = raw.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(&key);
        out.insert(
            key.clone(),
            Property {
                key,
                value: unescape(value.trim()),
                origin: format!("{source}:{}", index + 1),
            },
        );
    }
    out
}

/// An odd number of trailing backslashes means the line continues.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (String, &str) {
    let mut key = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                key.push(c);
                if let Some((_, escaped)) = chars.next() {
                    key.push(escaped);
                }
            }
            '=' | ':' => return (key, &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (key, rest);
            }
            c => key.push(c),
        }
    }
    (key, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Replaces each `${env:NAME}` in `value` with `env[NAME]`, as Kafka's
/// `EnvVarConfigProvider` does; a container can then advertise, say, the
/// address of the node it runs on. Fails with the name of an unset variable.
pub fn expand_env(value: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    const OPEN: &str = "${env:";
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(OPEN) {
        let Some(len) = rest[start + OPEN.len()..].find('}') else {
            break;
        };
        let name = &rest[start + OPEN.len()..start + OPEN.len() + len];
        let resolved = env.get(name).ok_or_else(|| name.to_string())?;
        out.push_str(&rest[..start]);
        out.push_str(resolved);
        rest = &rest[start + OPEN.len() + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The environment prefix for configuration overrides.
pub const ENV_PREFIX: &str = "GREGOR_";

/// Maps `GREGOR_LOG_DIRS` to `log.dirs` with the rules of Apache Kafka's
/// container image: `_` is `.`, `__` is `_`, `___` is `-`.
pub fn env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    if rest.is_empty() {
        return None;
    }
    let lower = rest.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut chars = lower.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut run = 1;
        while chars.peek() == Some(&'_') {
            chars.next();
            run += 1;
        }
        out.push_str(match run {
            1 => ".",
            2 => "_",
            _ => "-",
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_environment_references() {
        let env = BTreeMap::from([("HOST_IP".to_string(), "10.0.0.7".to_string())]);
        let cases = [
            ("plain", Ok("plain".to_string())),
            (
                "EXTERNAL://${env:HOST_IP}:31001,X://${env:HOST_IP}:2",
                Ok("EXTERNAL://10.0.0.7:31001,X://10.0.0.7:2".to_string()),
            ),
            ("${env:MISSING}", Err("MISSING".to_string())),
            ("${env:HOST_IP", Ok("${env:HOST_IP".to_string())),
            ("${file:x}", Ok("${file:x}".to_string())),
        ];
        for (input, want) in cases {
            assert_eq!(expand_env(input, &env), want, "{input}");
        }
    }

    #[test]
    fn parses_the_forms_kafka_files_use() {
        let text = "# comment\n! also\nnode.id=1\nlisteners : PLAINTEXT://:9092\n\
                    log.dirs /tmp/a\nlong=a,\\\n  b\nempty=\nkey\\=x=y\n";
        let p = parse(text, "f");
        let get = |k: &str| p.get(k).map(|v| v.value.as_str());
        assert_eq!(get("node.id"), Some("1"));
        assert_eq!(get("listeners"), Some("PLAINTEXT://:9092"));
        assert_eq!(get("log.dirs"), Some("/tmp/a"));
        assert_eq!(get("long"), Some("a,b"));
        assert_eq!(get("empty"), Some(""));
        assert_eq!(get("key=x"), Some("y"));
        assert_eq!(p["node.id"].origin, "f:3");
    }

    #[test]
    fn env_names_map_like_kafkas_image() {
        let cases = [
            ("GREGOR_LOG_DIRS", Some("log.dirs")),
            ("GREGOR_NODE_ID", Some("node.id")),
            ("GREGOR_A__B", Some("a_b")),
            ("GREGOR_A___B", Some("a-b")),
            ("GREGOR_", None),
            ("PATH", None),
        ];
        for (var, want) in cases {
            assert_eq!(env_key(var).as_deref(), want, "{var}");
        }
    }
}
