//! The broker's settings as given: every property of the file and the
//! environment checked against its declaration, the value in force for
//! each key, and how DescribeConfigs reports them.

use std::collections::BTreeMap;

use super::properties::Property;
use super::setting::{parse_bool, Described, Setting, Source, Synonym};
use super::{invalid, ConfigError};

/// Properties checked against a table of settings.
#[derive(Debug, Clone)]
pub struct Values {
    table: &'static [Setting],
    given: BTreeMap<&'static str, Property>,
    /// `listener.name.<listener>.<key>`, by listener (lower case) and key.
    per_listener: BTreeMap<(String, &'static str), Property>,
}

/// The prefix of a setting given for one listener.
const LISTENER_PREFIX: &str = "listener.name.";

impl Values {
    /// Checks every property against `table`: a key not declared there, or
    /// a value its declaration refuses, is an error naming the key.
    pub fn check(
        table: &'static [Setting],
        props: BTreeMap<String, Property>,
    ) -> Result<Values, ConfigError> {
        let mut given = BTreeMap::new();
        let mut per_listener = BTreeMap::new();
        for (_, p) in props {
            let (listener, key) = match p.key.strip_prefix(LISTENER_PREFIX) {
                Some(rest) => match rest.split_once('.') {
                    Some((listener, key)) if !listener.is_empty() => (Some(listener), key),
                    _ => (None, p.key.as_str()),
                },
                None => (None, p.key.as_str()),
            };
            let Some(setting) = table
                .iter()
                .find(|s| s.key == key && (listener.is_none() || s.per_listener))
            else {
                return Err(ConfigError::Unknown {
                    key: p.key,
                    origin: p.origin,
                });
            };
            setting
                .check(&p.value)
                .map_err(|reason| invalid(&p, reason))?;
            match listener {
                Some(l) => {
                    per_listener.insert((l.to_ascii_lowercase(), setting.key), p);
                }
                None => {
                    given.insert(setting.key, p);
                }
            }
        }
        Ok(Values {
            table,
            given,
            per_listener,
        })
    }

    /// The broker's settings from `key=value` lines made up by a test.
    #[cfg(test)]
    pub(crate) fn broker_for_tests(lines: &[(&str, &str)]) -> Values {
        let props = lines
            .iter()
            .map(|(k, v)| {
                let p = Property {
                    key: k.to_string(),
                    value: v.to_string(),
                    origin: "test".into(),
                };
                (k.to_string(), p)
            })
            .collect();
        Values::check(super::table::BROKER, props).expect("valid test settings")
    }

    /// The property in force for `key` on `listener`: given for that
    /// listener (`listener.name.<listener>.<key>`), else for every one,
    /// else the default.
    pub fn for_listener(&self, listener: &str, key: &str) -> Option<Property> {
        let setting = self.setting(key)?;
        self.per_listener
            .get(&(listener.to_ascii_lowercase(), setting.key))
            .cloned()
            .or_else(|| self.property(key))
    }

    /// The property given for `key`, if any.
    pub fn given(&self, key: &str) -> Option<&Property> {
        self.given.get(key)
    }

    /// The properties given for settings Gregor has no use for.
    pub fn ignored(&self) -> impl Iterator<Item = &Property> {
        self.table
            .iter()
            .filter(|s| s.ignored)
            .filter_map(|s| self.given.get(s.key))
    }

    /// `key` as given, or else its default (from origin `default`): for the
    /// settings whose value is parsed further where it is used.
    pub fn property(&self, key: &str) -> Option<Property> {
        self.given(key).cloned().or_else(|| {
            let setting = self.setting(key)?;
            Some(Property {
                key: setting.key.to_string(),
                value: setting.default?.to_string(),
                origin: "default".into(),
            })
        })
    }

    fn setting(&self, key: &str) -> Option<&'static Setting> {
        self.table.iter().find(|s| s.key == key)
    }

    /// The settings that give `key`'s value, by precedence: `key`, then the
    /// coarser-unit keys standing in for it, in table order.
    fn precedence(&self, key: &str) -> Vec<&'static Setting> {
        self.setting(key)
            .into_iter()
            .chain(
                self.table
                    .iter()
                    .filter(|s| s.synonym_of.is_some_and(|o| o.key == key)),
            )
            .collect()
    }

    /// Every key of `key`'s synonym group (the finest unit first), as Kafka
    /// lists them for any of its members.
    fn synonym_group(&self, key: &str) -> Vec<&'static Setting> {
        let finest = self
            .setting(key)
            .and_then(|s| s.synonym_of)
            .map_or(key, |o| o.key);
        self.precedence(finest)
    }

    /// The value in force for `key`: given for it or for a coarser-unit
    /// synonym (converted), else the first default among them.
    pub fn effective(&self, key: &str) -> Option<String> {
        let order = self.precedence(key);
        let scale = |s: &Setting| s.synonym_of.filter(|o| o.key == key).map_or(1, |o| o.scale);
        order
            .iter()
            .find_map(|s| self.given.get(s.key).map(|p| scaled(&p.value, scale(s))))
            .or_else(|| {
                order
                    .iter()
                    .find_map(|s| s.default.map(|d| scaled(d, scale(s))))
            })
    }

    /// The value in force for `key`, typed; an error when it has none.
    pub fn get<T: FromValue>(&self, key: &'static str) -> Result<T, ConfigError> {
        self.optional(key)?.ok_or(ConfigError::Missing(key))
    }

    /// The value in force for `key`, typed, if it has one.
    pub fn optional<T: FromValue>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some(text) = self.effective(key) else {
            return Ok(None);
        };
        match T::from_value(&text) {
            Some(v) => Ok(Some(v)),
            // The declaration allows more than the field holds.
            None => Err(ConfigError::Invalid {
                key: key.to_string(),
                value: text,
                origin: self
                    .given(key)
                    .map_or_else(|| "default".to_string(), |p| p.origin.clone()),
                reason: "out of the range Gregor supports".into(),
            }),
        }
    }

    /// Every declared setting as DescribeConfigs reports it: its own value
    /// (given, else its default), not one a synonym gives it.
    pub fn describe(&self) -> Vec<Described> {
        self.table
            .iter()
            .map(|s| {
                let given = self.given.get(s.key);
                Described {
                    name: s.key.to_string(),
                    value: given
                        .map(|p| p.value.clone())
                        .or_else(|| s.default.map(str::to_string))
                        .filter(|_| !s.sensitive),
                    source: if given.is_some() {
                        Source::StaticBroker
                    } else {
                        Source::Default
                    },
                    // Gregor applies broker settings at start only, and
                    // refuses AlterConfigs on a broker.
                    read_only: true,
                    sensitive: s.sensitive,
                    config_type: s.kind.type_code(),
                    synonyms: self.synonyms(s.key),
                    doc: s.doc,
                }
            })
            .collect()
    }

    /// Kafka's synonyms of `key`: the values given for its synonym group,
    /// then the group's defaults, each by precedence; the entries before
    /// `key`'s own are left out, as Kafka does.
    pub fn synonyms(&self, key: &str) -> Vec<Synonym> {
        let group = self.synonym_group(key);
        let given = group.iter().filter_map(|s| {
            self.given
                .get(s.key)
                .map(|p| (s, p.value.as_str(), Source::StaticBroker))
        });
        let defaults = group
            .iter()
            .filter_map(|s| s.default.map(|d| (s, d, Source::Default)));
        given
            .chain(defaults)
            .skip_while(|(s, ..)| s.key != key)
            .map(|(s, value, source)| Synonym {
                name: s.key.to_string(),
                value: (!s.sensitive).then(|| value.to_string()),
                source,
            })
            .collect()
    }
}

/// A value of a coarser unit in the finer one. A negative one means "no
/// limit", which Kafka writes -1 whatever the unit.
fn scaled(value: &str, scale: i64) -> String {
    if scale == 1 {
        return value.to_string();
    }
    match value.trim().parse::<i64>() {
        Ok(n) if n < 0 => "-1".into(),
        Ok(n) => n.saturating_mul(scale).to_string(),
        Err(_) => value.to_string(),
    }
}

/// A type a setting's text converts to.
pub trait FromValue: Sized {
    /// The value, or `None` when the text is not one.
    fn from_value(text: &str) -> Option<Self>;
}

impl FromValue for bool {
    fn from_value(text: &str) -> Option<Self> {
        parse_bool(text)
    }
}

impl FromValue for String {
    fn from_value(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
}

impl FromValue for f64 {
    fn from_value(text: &str) -> Option<Self> {
        text.trim().parse::<f64>().ok().filter(|n| !n.is_nan())
    }
}

macro_rules! integer_values {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(text: &str) -> Option<Self> {
                text.trim().parse::<i64>().ok().and_then(|n| Self::try_from(n).ok())
            }
        }
    )*};
}
integer_values!(i16, i32, i64, u32, u64, usize);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties;
    use crate::config::setting::Kind;

    static TABLE: &[Setting] = &[
        Setting::new("t.ms", Kind::ANY_LONG, "finest"),
        Setting::new("t.minutes", Kind::ANY_INT, "coarser").synonym_of("t.ms", 60_000),
        Setting::new("t.hours", Kind::int(-1), "coarsest")
            .default("2")
            .synonym_of("t.ms", 3_600_000),
        Setting::new("secret", Kind::Text, "hidden"),
        Setting::new("plain", Kind::int(1), "a number").default("5"),
    ];

    fn values(text: &str) -> Values {
        Values::check(TABLE, properties::parse(text, "t")).expect("valid")
    }

    #[test]
    fn the_finest_unit_given_wins_and_defaults_come_last() {
        let cases = [
            ("", Some("7200000")),
            ("t.hours=1\n", Some("3600000")),
            ("t.hours=1\nt.minutes=2\n", Some("120000")),
            ("t.minutes=2\nt.ms=5\n", Some("5")),
            ("t.minutes=-5\n", Some("-1")),
        ];
        for (text, want) in cases {
            assert_eq!(values(text).effective("t.ms").as_deref(), want, "{text:?}");
        }
        assert_eq!(values("").effective("t.hours").as_deref(), Some("2"));
        assert_eq!(values("").effective("secret"), None);
    }

    #[test]
    fn synonyms_follow_kafkas_order() {
        let names = |text: &str, key: &str| -> Vec<(String, Source)> {
            values(text)
                .synonyms(key)
                .into_iter()
                .map(|s| (s.name, s.source))
                .collect()
        };
        let s = |n: &str, source| (n.to_string(), source);
        // Kafka drops the entries of finer units listed before the key.
        assert_eq!(names("", "t.ms"), vec![]);
        assert_eq!(names("", "t.hours"), vec![s("t.hours", Source::Default)]);
        assert_eq!(
            names("t.minutes=3\n", "t.minutes"),
            vec![
                s("t.minutes", Source::StaticBroker),
                s("t.hours", Source::Default)
            ]
        );
        assert_eq!(
            names("plain=2\n", "plain"),
            vec![
                s("plain", Source::StaticBroker),
                s("plain", Source::Default)
            ]
        );
    }

    #[test]
    fn described_values_are_the_keys_own() {
        let d = values("t.hours=1\n").describe();
        let get = |k: &str| d.iter().find(|x| x.name == k).expect("listed");
        assert_eq!(get("t.ms").value, None);
        assert_eq!(get("t.hours").value.as_deref(), Some("1"));
        assert_eq!(get("t.hours").source, Source::StaticBroker);
        assert_eq!(get("plain").source, Source::Default);
        assert!(d.iter().all(|x| x.read_only));
    }

    #[test]
    fn sensitive_values_are_never_shown() {
        static SECRET: &[Setting] = &[Setting {
            sensitive: true,
            ..Setting::new("password", Kind::Text, "a secret")
        }];
        let v = Values::check(SECRET, properties::parse("password=hunter2\n", "t")).expect("ok");
        let [d] = v.describe().try_into().expect("one setting");
        assert!(d.sensitive);
        assert_eq!(d.value, None);
        assert!(d.synonyms.iter().all(|s| s.value.is_none()));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let cases = [
            ("plian=1\n", "unknown setting `plian`"),
            (
                "plain=0\n",
                "invalid value `0` for `plain` (from t:1): must be at least 1",
            ),
            (
                "plain=x\n",
                "invalid value `x` for `plain` (from t:1): expected an integer",
            ),
        ];
        for (text, want) in cases {
            let err = Values::check(TABLE, properties::parse(text, "t")).expect_err(text);
            assert!(err.to_string().starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn typed_values_stay_in_their_type() {
        let v = values("t.ms=70000\n");
        assert_eq!(v.get::<i64>("t.ms").expect("fits"), 70_000);
        assert!(v.get::<i16>("t.ms").is_err());
        assert!(matches!(
            v.get::<i32>("secret"),
            Err(ConfigError::Missing("secret"))
        ));
    }
}
