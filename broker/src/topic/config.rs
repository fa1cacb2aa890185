//! Per-topic settings (`retention.ms`, `segment.bytes`, ...): which exist,
//! how they are validated, and how a topic's overrides combine with the
//! broker's `log.*` defaults.

use std::collections::BTreeMap;

use crate::config::LogDefaults;
use crate::log::LogConfig;

/// Why a topic setting was refused; becomes INVALID_CONFIG for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// Not a topic setting Gregor knows.
    #[error("unknown topic config `{0}`")]
    Unknown(String),
    /// Value does not parse or is out of range.
    #[error("invalid value `{value}` for topic config `{key}`: {reason}")]
    Invalid {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
}

/// How a setting's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    /// An integer no smaller than the bound.
    Long(i64),
    /// One of the listed words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list of at least one of the listed words.
    ListOf(&'static [&'static str]),
}

/// Topic settings Gregor honours, each with the broker key its default
/// comes from. Kafka's config-type codes for DescribeConfigs v3+: LONG=5,
/// INT=3, STRING=2, LIST=7.
const KNOWN: &[(&str, Kind, i8)] = &[
    ("cleanup.policy", Kind::ListOf(&["delete"]), 7),
    (
        "compression.type",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        2,
    ),
    ("flush.messages", Kind::Long(1), 5),
    ("flush.ms", Kind::Long(0), 5),
    ("index.interval.bytes", Kind::Long(0), 3),
    ("max.message.bytes", Kind::Long(0), 3),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        2,
    ),
    ("min.insync.replicas", Kind::Long(1), 3),
    ("retention.bytes", Kind::Long(-1), 5),
    ("retention.ms", Kind::Long(-1), 5),
    ("segment.bytes", Kind::Long(14), 3),
    ("segment.ms", Kind::Long(1), 5),
];

/// Checks one setting.
pub fn validate(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let (_, kind, _) = KNOWN
        .iter()
        .find(|(k, _, _)| *k == key)
        .ok_or_else(|| TopicConfigError::Unknown(key.to_string()))?;
    let invalid = |reason| TopicConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    match kind {
        Kind::Long(min) => match value.trim().parse::<i64>() {
            Ok(v) if v >= *min => Ok(()),
            Ok(_) => Err(invalid("too small")),
            Err(_) => Err(invalid("expected an integer")),
        },
        Kind::OneOf(words) if words.contains(&value.trim()) => Ok(()),
        Kind::OneOf(_) => Err(invalid("not a supported value")),
        Kind::ListOf(words) => {
            let items = list_items(value);
            if items.is_empty() {
                Err(invalid("expected at least one value"))
            } else if items.iter().all(|i| words.contains(&i.as_str())) {
                Ok(())
            } else {
                Err(invalid("not a supported value"))
            }
        }
    }
}

/// Whether `key` is a list setting, the only kind IncrementalAlterConfigs
/// may APPEND to or SUBTRACT from.
pub fn is_list(key: &str) -> bool {
    KNOWN
        .iter()
        .any(|(k, kind, _)| *k == key && matches!(kind, Kind::ListOf(_)))
}

/// The items of a comma-separated list value.
pub fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .collect()
}

/// The value of `key` in effect for a topic: its override, else the
/// broker default.
pub fn value_of(key: &str, overrides: &BTreeMap<String, String>, d: &LogDefaults) -> String {
    overrides
        .get(key)
        .cloned()
        .unwrap_or_else(|| default_value(key, d))
}

/// A described setting, for DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Setting name.
    pub name: String,
    /// Effective value.
    pub value: String,
    /// True when the topic overrides the default.
    pub is_override: bool,
    /// Kafka's config-type code.
    pub config_type: i8,
}

/// The broker-level default of each topic setting, as text.
fn default_value(key: &str, d: &LogDefaults) -> String {
    match key {
        "cleanup.policy" => d.cleanup_policy.clone(),
        "compression.type" => "producer".into(),
        "flush.messages" => d.config.flush_messages.to_string(),
        "flush.ms" => d.config.flush_ms.to_string(),
        "index.interval.bytes" => d.config.index_interval_bytes.to_string(),
        "max.message.bytes" => d.config.max_message_bytes.to_string(),
        "message.timestamp.type" => if d.config.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        }
        .into(),
        "min.insync.replicas" => d.min_insync_replicas.to_string(),
        "retention.bytes" => d.config.retention_bytes.to_string(),
        "retention.ms" => d.config.retention_ms.to_string(),
        "segment.bytes" => d.config.segment_bytes.to_string(),
        "segment.ms" => d.config.segment_ms.to_string(),
        _ => String::new(),
    }
}

/// Every topic setting with its effective value.
pub fn describe(overrides: &BTreeMap<String, String>, defaults: &LogDefaults) -> Vec<Described> {
    KNOWN
        .iter()
        .map(|(key, _, config_type)| match overrides.get(*key) {
            Some(v) => Described {
                name: key.to_string(),
                value: v.clone(),
                is_override: true,
                config_type: *config_type,
            },
            None => Described {
                name: key.to_string(),
                value: default_value(key, defaults),
                is_override: false,
                config_type: *config_type,
            },
        })
        .collect()
}

fn effective<T: std::str::FromStr>(
    overrides: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> T {
    // Overrides were validated on the way in; a value that no longer parses
    // (a hand-edited metadata file) falls back to the default.
    overrides
        .get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The log settings for a topic with these overrides.
pub fn log_config(overrides: &BTreeMap<String, String>, d: &LogDefaults) -> LogConfig {
    LogConfig {
        segment_bytes: effective(overrides, "segment.bytes", d.config.segment_bytes),
        segment_ms: effective(overrides, "segment.ms", d.config.segment_ms),
        retention_ms: effective(overrides, "retention.ms", d.config.retention_ms),
        retention_bytes: effective(overrides, "retention.bytes", d.config.retention_bytes),
        index_interval_bytes: effective(
            overrides,
            "index.interval.bytes",
            d.config.index_interval_bytes,
        ),
        max_message_bytes: effective(overrides, "max.message.bytes", d.config.max_message_bytes),
        flush_messages: effective(overrides, "flush.messages", d.config.flush_messages),
        flush_ms: effective(overrides, "flush.ms", d.config.flush_ms),
        max_decompressed_message_bytes: d.config.max_decompressed_message_bytes,
        log_append_time: overrides
            .get("message.timestamp.type")
            .map_or(d.config.log_append_time, |t| t.trim() == "LogAppendTime"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> LogDefaults {
        LogDefaults::for_tests()
    }

    #[test]
    fn validation_table() {
        let cases = [
            ("retention.ms", "1000", true),
            ("retention.ms", "-1", true),
            ("retention.ms", "-2", false),
            ("retention.ms", "soon", false),
            ("segment.bytes", "13", false),
            ("cleanup.policy", "delete", true),
            ("cleanup.policy", "compact", false),
            ("cleanup.policy", "delete,delete", true),
            ("cleanup.policy", "delete,compact", false),
            ("cleanup.policy", "", false),
            ("no.such.thing", "1", false),
        ];
        for (k, v, ok) in cases {
            assert_eq!(validate(k, v).is_ok(), ok, "{k}={v}");
        }
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "42".to_string());
        let c = log_config(&o, &defaults());
        assert_eq!(c.retention_ms, 42);
        assert_eq!(c.segment_ms, 1000);
        let d = describe(&o, &defaults());
        let r = d.iter().find(|x| x.name == "retention.ms").expect("listed");
        assert!(r.is_override);
        assert_eq!(r.value, "42");
        let s = d.iter().find(|x| x.name == "segment.ms").expect("listed");
        assert!(!s.is_override);
    }
}
