//! Kafka's topic naming rules.

/// Why a topic name is refused (INVALID_TOPIC_EXCEPTION).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic name `{name}`: {reason}")]
pub struct InvalidName {
    /// The name given.
    pub name: String,
    /// The rule it breaks.
    pub reason: &'static str,
}

/// Longest allowed name; Kafka keeps room for a partition suffix in the
/// directory name.
pub const MAX_LEN: usize = 249;

/// Checks a topic name: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not
/// `.` or `..`.
pub fn validate(name: &str) -> Result<(), InvalidName> {
    let fail = |reason| {
        Err(InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("the name is empty");
    }
    if name == "." || name == ".." {
        return fail("`.` and `..` are not allowed");
    }
    if name.len() > MAX_LEN {
        return fail("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return fail("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_rules() {
        let long = "a".repeat(250);
        let cases = [
            ("orders", true),
            ("a.b_c-D9", true),
            ("", false),
            (".", false),
            ("..", false),
            ("has space", false),
            ("slash/", false),
            ("ünicode", false),
            (long.as_str(), false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate(name).is_ok(), ok, "{name:?}");
        }
    }
}
