//! Dynamic broker settings: the few broker settings Gregor lets change at
//! run time, as Kafka's `kafka-configs --entity-type brokers` sets them,
//! for one broker (`--entity-name 1`) or as every broker's default
//! (`--entity-default`, the resource named ""). They live in the metadata
//! log, so every broker sees them and they survive restarts; a broker's
//! own value wins over the default. A few settings of the properties file
//! may be changed the same way ([`RUNTIME_OVERRIDES`]): a value set here
//! wins over the file's. Every other broker setting is read at start only
//! and refused here.

use std::collections::BTreeMap;

use super::setting::{Described, Kind, Setting, Source, Synonym, Update};
use crate::replication::throttle::{FOLLOWER_RATE, LEADER_RATE};

/// The dynamic settings of every broker resource, by resource name (the
/// broker's id, or "" for the cluster-wide default), each by key.
pub type BrokerConfigs = BTreeMap<String, BTreeMap<String, String>>;

/// Kafka's Long.MAX_VALUE: a replication rate that never throttles.
const UNTHROTTLED: &str = "9223372036854775807";

/// The broker settings that change at run time.
pub static DYNAMIC: &[Setting] = &[
    Setting::new(
        LEADER_RATE,
        Kind::long(0),
        "Bytes per second this broker sends, as leader, of the replicas listed in their topic's `leader.replication.throttled.replicas` to followers that are not in sync; over it their data waits for a later fetch. Set at run time only (`kafka-configs --entity-type brokers`, `kafka-reassign-partitions --throttle`).",
    )
    .default(UNTHROTTLED)
    .update(Update::PerBroker),
    Setting::new(
        FOLLOWER_RATE,
        Kind::long(0),
        "Bytes per second this broker fetches, as follower, of its replicas listed in their topic's `follower.replication.throttled.replicas` while they are not in sync; over it they are left out of its fetches. Set at run time only.",
    )
    .default(UNTHROTTLED)
    .update(Update::PerBroker),
];

/// Broker settings read from the properties file that may also be set at
/// run time (cluster-wide in Kafka), the value set winning over the
/// file's.
pub static RUNTIME_OVERRIDES: &[&str] = &[
    "transaction.partition.verification.enable",
    "producer.id.expiration.ms",
    "num.recovery.threads.per.data.dir",
];

/// Every setting that changes at run time: the dynamic-only ones, then
/// the properties file's that may be overridden.
fn all_dynamic() -> impl Iterator<Item = &'static Setting> {
    DYNAMIC.iter().chain(
        super::table::BROKER
            .iter()
            .filter(|s| RUNTIME_OVERRIDES.contains(&s.key)),
    )
}

/// Why a dynamic broker setting was refused. Each is INVALID_REQUEST for
/// the client, as Kafka answers for broker resources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicConfigError {
    /// The resource name is neither a broker id nor empty.
    #[error("`{0}` is not a broker id, nor empty for the cluster-wide default")]
    Resource(String),
    /// The resource names another broker: its settings are changed and
    /// described through that broker, as in Kafka.
    #[error("this is broker {me}: ask broker {asked} for its own settings, or use the empty name for the cluster-wide default")]
    OtherBroker {
        /// This broker.
        me: i32,
        /// The broker named.
        asked: i32,
    },
    /// Not a broker setting Gregor knows.
    #[error("unknown broker config `{0}`")]
    Unknown(String),
    /// A broker setting read at start only.
    #[error("`{0}` cannot be changed at run time: Gregor reads it from the broker's properties at start (only {list} are dynamic)", list = dynamic_keys())]
    ReadOnly(String),
    /// The value does not parse or is out of range.
    #[error("invalid value `{value}` for broker config `{key}`: {reason}")]
    Invalid {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// APPEND or SUBTRACT on a setting that is not a list.
    #[error("`{0}` is not a list setting: APPEND and SUBTRACT apply to list settings only")]
    NotList(String),
}

fn dynamic_keys() -> String {
    all_dynamic()
        .map(|s| format!("`{}`", s.key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A broker resource of DescribeConfigs and the AlterConfigs requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerResource {
    /// "": the cluster-wide default of every broker.
    Default,
    /// One broker's own settings.
    Broker(i32),
}

impl BrokerResource {
    /// The resource `name` names, asked of broker `me`: its own id or the
    /// default; another broker's id is refused as Kafka refuses it.
    pub fn parse(name: &str, me: i32) -> Result<BrokerResource, DynamicConfigError> {
        if name.is_empty() {
            return Ok(BrokerResource::Default);
        }
        let asked = name
            .parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| DynamicConfigError::Resource(name.to_string()))?;
        if asked != me {
            return Err(DynamicConfigError::OtherBroker { me, asked });
        }
        Ok(BrokerResource::Broker(asked))
    }

    /// Its name in the metadata.
    pub fn name(self) -> String {
        match self {
            BrokerResource::Default => String::new(),
            BrokerResource::Broker(id) => id.to_string(),
        }
    }
}

fn declared(key: &str) -> Option<&'static Setting> {
    all_dynamic().find(|s| s.key == key)
}

/// Whether `key` is a dynamic broker setting.
pub fn is_dynamic(key: &str) -> bool {
    declared(key).is_some()
}

/// Checks a value set for `key`: a dynamic setting of the right type. A
/// static broker setting is refused as read-only, any other key as unknown.
pub fn validate(key: &str, value: &str) -> Result<(), DynamicConfigError> {
    let Some(setting) = declared(key) else {
        return Err(if super::table::BROKER.iter().any(|s| s.key == key) {
            DynamicConfigError::ReadOnly(key.to_string())
        } else {
            DynamicConfigError::Unknown(key.to_string())
        });
    };
    setting
        .check(value)
        .map_err(|reason| DynamicConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        })
}

/// Why an APPEND or SUBTRACT on `key` is refused: no dynamic broker
/// setting is a list, so a dynamic one is refused for that, any other key
/// as [`validate`] refuses it.
pub fn list_op_refusal(key: &str) -> DynamicConfigError {
    match validate(key, "") {
        Err(e @ (DynamicConfigError::ReadOnly(_) | DynamicConfigError::Unknown(_))) => e,
        _ => DynamicConfigError::NotList(key.to_string()),
    }
}

/// The value of `key` in force on broker `broker`: its own, else the
/// cluster-wide default; `None` when neither is set.
pub fn value<'a>(configs: &'a BrokerConfigs, broker: i32, key: &str) -> Option<&'a str> {
    [broker.to_string(), String::new()]
        .iter()
        .find_map(|name| configs.get(name)?.get(key))
        .map(String::as_str)
}

/// The changes that make `resource`'s settings `wanted` (AlterConfigs
/// replaces them all): each wanted value set, every other stored key
/// removed.
pub fn replacement(
    configs: &BrokerConfigs,
    resource: BrokerResource,
    wanted: &BTreeMap<String, String>,
) -> BTreeMap<String, Option<String>> {
    let stored = configs.get(&resource.name());
    stored
        .into_iter()
        .flat_map(|s| s.keys())
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| (k.clone(), None))
        .chain(wanted.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
        .collect()
}

/// Applies changes to one resource's settings (`None` removes a key); a
/// resource left without settings is gone.
pub fn apply(configs: &mut BrokerConfigs, name: &str, changes: &BTreeMap<String, Option<String>>) {
    let settings = configs.entry(name.to_string()).or_default();
    for (key, value) in changes {
        match value {
            Some(v) => {
                settings.insert(key.clone(), v.clone());
            }
            None => {
                settings.remove(key);
            }
        }
    }
    if settings.is_empty() {
        configs.remove(name);
    }
}

/// The dynamic settings `resource` has, as Kafka describes them: for a
/// broker, each one set on it or as the default, with its synonyms (its
/// own value, then the default); for the default resource, each one set
/// there. Settings set nowhere are not listed, as in Kafka.
pub fn describe(configs: &BrokerConfigs, resource: BrokerResource) -> Vec<Described> {
    let own = match resource {
        BrokerResource::Broker(id) => configs.get(&id.to_string()),
        BrokerResource::Default => None,
    };
    let default = configs.get("");
    all_dynamic()
        .filter_map(|s| {
            let synonyms: Vec<Synonym> = [
                (own, Source::DynamicBroker),
                (default, Source::DynamicDefaultBroker),
            ]
            .into_iter()
            .filter_map(|(settings, source)| {
                Some(Synonym {
                    name: s.key.to_string(),
                    value: Some(settings?.get(s.key)?.clone()),
                    source,
                })
            })
            .collect();
            let first = synonyms.first()?;
            Some(Described {
                name: s.key.to_string(),
                value: first.value.clone(),
                source: first.source,
                read_only: false,
                sensitive: s.sensitive,
                config_type: s.kind.type_code(),
                synonyms,
                doc: s.doc,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(entries: &[(&str, &str, &str)]) -> BrokerConfigs {
        let mut c = BrokerConfigs::new();
        for (name, key, value) in entries {
            c.entry(name.to_string())
                .or_default()
                .insert(key.to_string(), value.to_string());
        }
        c
    }

    #[test]
    fn values_are_checked_and_static_or_unknown_keys_refused() {
        let cases: [(&str, &str, Result<(), &str>); 8] = [
            (LEADER_RATE, "1000", Ok(())),
            (FOLLOWER_RATE, "0", Ok(())),
            (LEADER_RATE, "9223372036854775807", Ok(())),
            (
                LEADER_RATE,
                "-5",
                Err("invalid value `-5` for broker config `leader.replication.throttled.rate`: must be at least 0"),
            ),
            (
                FOLLOWER_RATE,
                "fast",
                Err("invalid value `fast` for broker config `follower.replication.throttled.rate`: expected an integer"),
            ),
            (
                LEADER_RATE,
                "9223372036854775808",
                Err("expected an integer"),
            ),
            ("num.partitions", "3", Err("`num.partitions` cannot be changed at run time")),
            ("no.such.config", "3", Err("unknown broker config `no.such.config`")),
        ];
        for (key, value, want) in cases {
            match (validate(key, value), want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{key}={value}: {e}"),
                (got, _) => panic!("{key}={value}: {got:?}"),
            }
        }
        assert_eq!(
            list_op_refusal(LEADER_RATE),
            DynamicConfigError::NotList(LEADER_RATE.into())
        );
        assert_eq!(
            list_op_refusal("nope"),
            DynamicConfigError::Unknown("nope".into())
        );
        assert_eq!(
            list_op_refusal("num.partitions"),
            DynamicConfigError::ReadOnly("num.partitions".into())
        );
    }

    #[test]
    fn resources_are_this_broker_or_the_default() {
        assert_eq!(BrokerResource::parse("", 2), Ok(BrokerResource::Default));
        assert_eq!(BrokerResource::parse("2", 2), Ok(BrokerResource::Broker(2)));
        assert_eq!(
            BrokerResource::parse("3", 2),
            Err(DynamicConfigError::OtherBroker { me: 2, asked: 3 })
        );
        for bad in ["x", "-1", " 2"] {
            assert_eq!(
                BrokerResource::parse(bad, 2),
                Err(DynamicConfigError::Resource(bad.into()))
            );
        }
    }

    #[test]
    fn a_brokers_own_value_wins_over_the_default() {
        let c = configs(&[
            ("", LEADER_RATE, "100"),
            ("", FOLLOWER_RATE, "200"),
            ("1", FOLLOWER_RATE, "50"),
        ]);
        assert_eq!(value(&c, 1, LEADER_RATE), Some("100"));
        assert_eq!(value(&c, 1, FOLLOWER_RATE), Some("50"));
        assert_eq!(value(&c, 2, FOLLOWER_RATE), Some("200"));
        assert_eq!(value(&BrokerConfigs::new(), 1, LEADER_RATE), None);
    }

    #[test]
    fn changes_set_and_remove_and_alter_configs_replaces_everything() {
        let mut c = configs(&[("1", LEADER_RATE, "100"), ("1", FOLLOWER_RATE, "200")]);
        let wanted = BTreeMap::from([(FOLLOWER_RATE.to_string(), "300".to_string())]);
        let changes = replacement(&c, BrokerResource::Broker(1), &wanted);
        assert_eq!(
            changes,
            BTreeMap::from([
                (LEADER_RATE.to_string(), None),
                (FOLLOWER_RATE.to_string(), Some("300".to_string())),
            ])
        );
        apply(&mut c, "1", &changes);
        assert_eq!(c, configs(&[("1", FOLLOWER_RATE, "300")]));
        apply(
            &mut c,
            "1",
            &BTreeMap::from([(FOLLOWER_RATE.to_string(), None)]),
        );
        assert!(c.is_empty(), "{c:?}");
        // Removing what is not set changes nothing.
        apply(&mut c, "", &BTreeMap::from([("x".to_string(), None)]));
        assert!(c.is_empty(), "{c:?}");
    }

    /// A described setting: name, value, source and synonyms' sources and
    /// values.
    type Shown = (String, Option<String>, Source, Vec<(Source, String)>);

    #[test]
    fn described_as_kafka_lists_them() {
        let c = configs(&[
            ("", FOLLOWER_RATE, "1000"),
            ("1", FOLLOWER_RATE, "500"),
            ("1", LEADER_RATE, "700"),
        ]);
        let shown = |resource| -> Vec<Shown> {
            describe(&c, resource)
                .into_iter()
                .map(|d| {
                    assert!(!d.read_only && d.config_type == 5, "{d:?}");
                    let synonyms = d
                        .synonyms
                        .iter()
                        .map(|s| (s.source, s.value.clone().unwrap_or_default()))
                        .collect();
                    (d.name, d.value, d.source, synonyms)
                })
                .collect()
        };
        let s = |v: &str| v.to_string();
        assert_eq!(
            shown(BrokerResource::Broker(1)),
            vec![
                (
                    s(LEADER_RATE),
                    Some(s("700")),
                    Source::DynamicBroker,
                    vec![(Source::DynamicBroker, s("700"))]
                ),
                (
                    s(FOLLOWER_RATE),
                    Some(s("500")),
                    Source::DynamicBroker,
                    vec![
                        (Source::DynamicBroker, s("500")),
                        (Source::DynamicDefaultBroker, s("1000"))
                    ]
                ),
            ]
        );
        assert_eq!(
            shown(BrokerResource::Broker(2)),
            vec![(
                s(FOLLOWER_RATE),
                Some(s("1000")),
                Source::DynamicDefaultBroker,
                vec![(Source::DynamicDefaultBroker, s("1000"))]
            )]
        );
        assert_eq!(
            shown(BrokerResource::Default),
            shown(BrokerResource::Broker(2))
        );
        assert!(describe(&BrokerConfigs::new(), BrokerResource::Broker(1)).is_empty());
    }
}
