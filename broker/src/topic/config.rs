//! Per-topic settings (`retention.ms`, `segment.bytes`, ...): which exist,
//! how they are validated, and how a topic's overrides combine with the
//! broker's defaults.

use std::collections::BTreeMap;

use crate::config::setting::{Described, Kind, Setting, Source, Synonym};
use crate::config::values::FromValue;
use crate::config::Values;
use crate::log::{Cleanup, LogConfig};

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
        reason: String,
    },
}

/// The topic settings Gregor honours, each with the broker setting its
/// default comes from. Types, defaults and bounds are Kafka's, except that
/// `segment.bytes` may be small (tests roll segments quickly).
pub static TOPIC: &[Setting] = &[
    Setting::topic(
        "cleanup.policy",
        Kind::ListOf(&["delete", "compact"]),
        "What happens to old segments: `delete` them by retention, `compact` them to the latest record of each key (the log cleaner), or both.",
    )
    .default("delete")
    .default_from("log.cleanup.policy"),
    Setting::topic(
        "delete.retention.ms",
        Kind::long(0),
        "How long a compacted topic keeps a tombstone (a key with a null value) after the cleaner first sees it.",
    )
    .default("86400000")
    .default_from("log.cleaner.delete.retention.ms"),
    Setting::topic(
        "compression.type",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        "Accepted and reported; batches are stored as the producer compressed them.",
    )
    .default("producer"),
    Setting::topic(
        "flush.messages",
        Kind::long(1),
        "fsync after this many records.",
    )
    .default("9223372036854775807")
    .default_from("log.flush.interval.messages"),
    Setting::topic(
        "flush.ms",
        Kind::long(0),
        "fsync when unflushed records are this old.",
    )
    .default("9223372036854775807")
    .default_from("log.flush.interval.ms"),
    Setting::topic(
        "follower.replication.throttled.replicas",
        Kind::ReplicaList,
        "Replicas (`partition:broker`, or `*` for all) whose fetching as followers counts against their broker's `follower.replication.throttled.rate` and, while not in sync, waits when over it. `kafka-reassign-partitions --throttle` sets and clears it.",
    )
    .default(""),
    Setting::topic(
        "index.interval.bytes",
        Kind::int(0),
        "Bytes between entries of the sparse offset index.",
    )
    .default("4096")
    .default_from("log.index.interval.bytes"),
    Setting::topic(
        "leader.replication.throttled.replicas",
        Kind::ReplicaList,
        "Replicas (`partition:broker`, or `*` for all) whose leader's sending counts against that broker's `leader.replication.throttled.rate`; to followers not in sync it waits when over it. `kafka-reassign-partitions --throttle` sets and clears it.",
    )
    .default(""),
    Setting::topic(
        "max.decompressed.message.bytes",
        Kind::int_between(1, 2_147_483_639),
        "The largest record accepted once its batch is decompressed; a produce with a larger one fails with INVALID_RECORD. Uncompressed batches are not checked.",
    )
    .default("2147483639")
    .default_from("max.decompressed.message.bytes"),
    Setting::topic(
        "max.message.bytes",
        Kind::int(0),
        "The largest record batch accepted, as sent (compressed); a larger one fails with MESSAGE_TOO_LARGE.",
    )
    .default("1048588")
    .default_from("message.max.bytes"),
    Setting::topic(
        "max.compaction.lag.ms",
        Kind::long(1),
        "The longest a record may stay uncompacted: older dirty records are cleaned whatever the dirty ratio, and the active segment rolls at this age.",
    )
    .default("9223372036854775807")
    .default_from("log.cleaner.max.compaction.lag.ms"),
    Setting::topic(
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "Keep the producer's timestamps (`CreateTime`) or stamp the time of the append (`LogAppendTime`).",
    )
    .default("CreateTime")
    .default_from("log.message.timestamp.type"),
    Setting::topic(
        "min.cleanable.dirty.ratio",
        Kind::Double { fraction: true },
        "A compacted log is cleaned once its uncleaned part is this share of it.",
    )
    .default("0.5")
    .default_from("log.cleaner.min.cleanable.ratio"),
    Setting::topic(
        "min.compaction.lag.ms",
        Kind::long(0),
        "The shortest time a record stays uncompacted.",
    )
    .default("0")
    .default_from("log.cleaner.min.compaction.lag.ms"),
    Setting::topic(
        "min.insync.replicas",
        Kind::int(1),
        "In-sync replicas an `acks=all` produce needs; fewer fail it with NOT_ENOUGH_REPLICAS.",
    )
    .default("1")
    .default_from("min.insync.replicas"),
    Setting::topic(
        "retention.bytes",
        Kind::long(-1),
        "The oldest segments are deleted beyond this size per partition; -1: no limit.",
    )
    .default("-1")
    .default_from("log.retention.bytes"),
    Setting::topic(
        "retention.ms",
        Kind::long(-1),
        "Segments whose newest record is older are deleted; -1 keeps them.",
    )
    .default("604800000")
    .default_from("log.retention.ms"),
    Setting::topic(
        "segment.bytes",
        Kind::int(14),
        "A segment larger than this is rolled.",
    )
    .default("1073741824")
    .default_from("log.segment.bytes"),
    Setting::topic(
        "segment.ms",
        Kind::long(1),
        "A segment older than this is rolled.",
    )
    .default("604800000")
    .default_from("log.roll.ms"),
];

fn declared(key: &str) -> Option<&'static Setting> {
    TOPIC.iter().find(|s| s.key == key)
}

/// Checks one setting.
pub fn validate(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let setting = declared(key).ok_or_else(|| TopicConfigError::Unknown(key.to_string()))?;
    setting
        .check(value)
        .map_err(|reason| TopicConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        })
}

/// Whether `key` is a list setting, the only kind IncrementalAlterConfigs
/// may APPEND to or SUBTRACT from.
pub fn is_list(key: &str) -> bool {
    declared(key)
        .is_some_and(|s| matches!(s.kind, Kind::List | Kind::ListOf(_) | Kind::ReplicaList))
}

/// The defaults of the topic settings on this broker: each one's broker
/// setting as configured, else Kafka's default for topics.
#[derive(Debug, Clone)]
pub struct TopicDefaults {
    broker: Values,
    values: BTreeMap<&'static str, String>,
}

impl TopicDefaults {
    /// The defaults the broker's settings give.
    pub fn new(broker: Values) -> Self {
        let values = TOPIC
            .iter()
            .filter_map(|s| {
                let value = s
                    .synonym_of
                    .and_then(|b| broker.effective(b.key))
                    .or_else(|| s.default.map(str::to_string))?;
                Some((s.key, value))
            })
            .collect();
        TopicDefaults { broker, values }
    }

    /// The default of topic setting `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Small, fixed defaults for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        let text = "log.roll.ms=1000\nlog.retention.ms=5000\n";
        let props = crate::config::properties::parse(text, "test");
        TopicDefaults::new(
            Values::check(crate::config::table::BROKER, props).expect("valid defaults"),
        )
    }
}

/// The value of `key` in effect for a topic: its override, else the
/// broker default.
pub fn value_of(key: &str, overrides: &BTreeMap<String, String>, d: &TopicDefaults) -> String {
    overrides
        .get(key)
        .map(String::as_str)
        .or_else(|| d.value(key))
        .unwrap_or_default()
        .to_string()
}

/// Every topic setting with its effective value, where it comes from and
/// its synonyms as Kafka lists them: the topic's override, then the broker
/// setting its default comes from.
pub fn describe(overrides: &BTreeMap<String, String>, defaults: &TopicDefaults) -> Vec<Described> {
    TOPIC
        .iter()
        .map(|s| {
            let broker = s
                .synonym_of
                .map(|b| defaults.broker.synonyms(b.key))
                .unwrap_or_default();
            let (value, synonyms) = match overrides.get(s.key) {
                Some(v) => {
                    let own = Synonym {
                        name: s.key.to_string(),
                        value: Some(v.clone()),
                        source: Source::Topic,
                    };
                    (
                        Some(v.clone()),
                        std::iter::once(own).chain(broker).collect(),
                    )
                }
                None => (defaults.value(s.key).map(str::to_string), broker),
            };
            Described {
                name: s.key.to_string(),
                value,
                source: synonyms.first().map_or(Source::Default, |x| x.source),
                read_only: false,
                sensitive: s.sensitive,
                config_type: s.kind.type_code(),
                synonyms,
                doc: s.doc,
            }
        })
        .collect()
}

/// The value of `key` for a topic, typed: its override, else the default.
/// Overrides were validated on the way in; one that no longer parses (a
/// hand-edited metadata file) falls back to the default.
fn effective<T: FromValue>(
    overrides: &BTreeMap<String, String>,
    d: &TopicDefaults,
    key: &str,
    kafka: T,
) -> T {
    overrides
        .get(key)
        .and_then(|v| T::from_value(v))
        .or_else(|| d.value(key).and_then(T::from_value))
        .unwrap_or(kafka)
}

/// The log settings for a topic with these overrides.
pub fn log_config(overrides: &BTreeMap<String, String>, d: &TopicDefaults) -> LogConfig {
    let kafka = LogConfig::default();
    LogConfig {
        segment_bytes: effective(overrides, d, "segment.bytes", kafka.segment_bytes),
        segment_ms: effective(overrides, d, "segment.ms", kafka.segment_ms),
        retention_ms: effective(overrides, d, "retention.ms", kafka.retention_ms),
        retention_bytes: effective(overrides, d, "retention.bytes", kafka.retention_bytes),
        index_interval_bytes: effective(
            overrides,
            d,
            "index.interval.bytes",
            kafka.index_interval_bytes,
        ),
        max_message_bytes: effective(overrides, d, "max.message.bytes", kafka.max_message_bytes),
        max_decompressed_message_bytes: effective(
            overrides,
            d,
            "max.decompressed.message.bytes",
            kafka.max_decompressed_message_bytes,
        ),
        flush_messages: effective(overrides, d, "flush.messages", kafka.flush_messages),
        flush_ms: effective(overrides, d, "flush.ms", kafka.flush_ms),
        log_append_time: value_of("message.timestamp.type", overrides, d).trim() == "LogAppendTime",
        cleanup: Cleanup::parse(&value_of("cleanup.policy", overrides, d)),
        delete_retention_ms: effective(
            overrides,
            d,
            "delete.retention.ms",
            kafka.delete_retention_ms,
        ),
        min_compaction_lag_ms: effective(
            overrides,
            d,
            "min.compaction.lag.ms",
            kafka.min_compaction_lag_ms,
        ),
        max_compaction_lag_ms: effective(
            overrides,
            d,
            "max.compaction.lag.ms",
            kafka.max_compaction_lag_ms,
        ),
        min_cleanable_dirty_ratio: effective(
            overrides,
            d,
            "min.cleanable.dirty.ratio",
            kafka.min_cleanable_dirty_ratio,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(text: &str) -> TopicDefaults {
        let props = crate::config::properties::parse(&format!("node.id=1\n{text}"), "t");
        TopicDefaults::new(Values::check(crate::config::table::BROKER, props).expect("valid"))
    }

    #[test]
    fn validation_table() {
        let cases = [
            ("retention.ms", "1000", Ok(())),
            ("retention.ms", "-1", Ok(())),
            ("retention.ms", "-2", Err("must be at least -1")),
            ("retention.ms", "soon", Err("expected an integer")),
            ("segment.bytes", "13", Err("must be at least 14")),
            ("cleanup.policy", "delete", Ok(())),
            ("cleanup.policy", "compact", Ok(())),
            ("cleanup.policy", "delete,delete", Ok(())),
            ("cleanup.policy", "delete,compact", Ok(())),
            (
                "cleanup.policy",
                "compact,forever",
                Err("expected one or more"),
            ),
            ("min.cleanable.dirty.ratio", "0.01", Ok(())),
            ("min.cleanable.dirty.ratio", "1.5", Err("from 0 to 1")),
            ("min.cleanable.dirty.ratio", "half", Err("from 0 to 1")),
            ("max.compaction.lag.ms", "0", Err("must be at least 1")),
            ("cleanup.policy", "", Err("expected one or more")),
            ("max.decompressed.message.bytes", "1", Ok(())),
            (
                "max.decompressed.message.bytes",
                "0",
                Err("must be at least 1"),
            ),
            (
                "max.decompressed.message.bytes",
                "2147483640",
                Err("must be at most 2147483639"),
            ),
            ("no.such.thing", "1", Err("unknown topic config")),
            ("leader.replication.throttled.replicas", "0:1,1:2", Ok(())),
            ("leader.replication.throttled.replicas", "*", Ok(())),
            ("leader.replication.throttled.replicas", "", Ok(())),
            (
                "follower.replication.throttled.replicas",
                "0:1,x:2",
                Err("`x:2` is not a replica"),
            ),
            (
                "follower.replication.throttled.replicas",
                "*,0:1",
                Err("`*` is not a replica"),
            ),
        ];
        for (k, v, want) in cases {
            match (validate(k, v), want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(reason)) => assert!(e.to_string().contains(reason), "{k}={v}: {e}"),
                (got, _) => panic!("{k}={v}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_table_is_consistent() {
        for s in TOPIC {
            let d = s.default.expect("every topic setting has a default");
            assert_eq!(s.check(d), Ok(()), "{}", s.key);
            if let Some(b) = s.synonym_of {
                let from = crate::config::table::BROKER.iter().find(|x| x.key == b.key);
                assert!(
                    from.is_some(),
                    "{}: `{}` is not a broker setting",
                    s.key,
                    b.key
                );
            }
        }
    }

    #[test]
    fn kafkas_defaults_are_the_logs() {
        let c = log_config(&BTreeMap::new(), &broker("log.dirs=/x\n"));
        assert_eq!(c, LogConfig::default());
    }

    #[test]
    fn defaults_come_from_the_broker_settings() {
        let d = broker("log.retention.hours=2\nlog.flush.interval.ms=5\nmessage.max.bytes=99\n");
        let cases = [
            ("retention.ms", "7200000"),
            ("segment.ms", "604800000"),
            ("flush.ms", "5"),
            ("flush.messages", "9223372036854775807"),
            ("max.message.bytes", "99"),
            ("compression.type", "producer"),
            ("max.decompressed.message.bytes", "2147483639"),
        ];
        for (key, want) in cases {
            assert_eq!(d.value(key), Some(want), "{key}");
        }
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "42".to_string());
        o.insert(
            "max.decompressed.message.bytes".to_string(),
            "100".to_string(),
        );
        let c = log_config(&o, &TopicDefaults::for_tests());
        assert_eq!(c.retention_ms, 42);
        assert_eq!(c.max_decompressed_message_bytes, 100);
        assert_eq!(c.segment_ms, 1000);
        let d = describe(&o, &TopicDefaults::for_tests());
        let r = d.iter().find(|x| x.name == "retention.ms").expect("listed");
        assert_eq!(r.source, Source::Topic);
        assert_eq!(r.value.as_deref(), Some("42"));
        // The broker file sets log.retention.ms, so it follows the override,
        // and the default of its hours synonym after it.
        let names: Vec<_> = r
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            names,
            [
                ("retention.ms", Source::Topic),
                ("log.retention.ms", Source::StaticBroker),
                ("log.retention.hours", Source::Default)
            ]
        );
        let s = d.iter().find(|x| x.name == "segment.ms").expect("listed");
        assert_eq!(s.source, Source::StaticBroker);
        assert_eq!(s.value.as_deref(), Some("1000"));
    }

    #[test]
    fn describe_follows_kafka_for_untouched_topics() {
        let d = describe(&BTreeMap::new(), &broker("log.dirs=/x\n"));
        let names: Vec<&str> = d.iter().map(|x| x.name.as_str()).collect();
        let declared: Vec<&str> = TOPIC.iter().map(|s| s.key).collect();
        assert_eq!(names, declared);
        let get = |k: &str| d.iter().find(|x| x.name == k).expect("listed");
        // Kafka lists no synonym for retention.ms here: log.retention.ms has
        // no value of its own, only its hours synonym has a default.
        assert!(get("retention.ms").synonyms.is_empty());
        assert_eq!(get("retention.ms").source, Source::Default);
        let policy = get("cleanup.policy");
        assert_eq!(policy.synonyms.len(), 1);
        assert_eq!(policy.synonyms[0].name, "log.cleanup.policy");
        assert_eq!(policy.config_type, 7);
        assert!(d
            .iter()
            .all(|x| !x.read_only && x.source == Source::Default));
    }
}
