//! How a setting is declared: its key, the values it takes, its default,
//! a line of documentation, how Kafka lets it change and whether its value
//! is secret. The broker's settings ([`super::table`]) and the topics'
//! ([`crate::topic::config`]) are tables of these; parsing, DescribeConfigs
//! and the generated reference page all read those tables, so a setting
//! declared once is checked, described and documented everywhere.

/// Which of Kafka's numeric types a number is; they differ in range and in
/// the type DescribeConfigs reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Kafka's SHORT (16 bits).
    Short,
    /// Kafka's INT (32 bits).
    Int,
    /// Kafka's LONG (64 bits).
    Long,
}

/// The values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false` (any case, as Kafka reads them).
    Bool,
    /// An integer within `min..=max`.
    Number {
        /// Kafka's type.
        width: Width,
        /// Smallest value accepted.
        min: i64,
        /// Largest value accepted.
        max: i64,
    },
    /// Free text; the broker may check it further where it is used.
    Text,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list; the broker may check its items where it is
    /// used.
    List,
    /// A comma-separated list of one or more of these words.
    ListOf(&'static [&'static str]),
    /// Kafka's list of throttled replicas: `*`, or `partition:broker`
    /// pairs separated by commas (see `replication::throttle`).
    ReplicaList,
    /// A DOUBLE of at least 0, and at most 1 when `fraction`.
    Double {
        /// Only 0 to 1 (a ratio).
        fraction: bool,
    },
}

impl Kind {
    /// A SHORT of at least `min`.
    pub const fn short(min: i64) -> Kind {
        Kind::Number {
            width: Width::Short,
            min,
            max: i16::MAX as i64,
        }
    }

    /// An INT of at least `min`.
    pub const fn int(min: i64) -> Kind {
        Kind::int_between(min, i32::MAX as i64)
    }

    /// An INT within `min..=max`.
    pub const fn int_between(min: i64, max: i64) -> Kind {
        Kind::Number {
            width: Width::Int,
            min,
            max,
        }
    }

    /// Any INT.
    pub const ANY_INT: Kind = Kind::int(i32::MIN as i64);

    /// A LONG of at least `min`.
    pub const fn long(min: i64) -> Kind {
        Kind::Number {
            width: Width::Long,
            min,
            max: i64::MAX,
        }
    }

    /// Any LONG.
    pub const ANY_LONG: Kind = Kind::long(i64::MIN);

    /// Kafka's config-type code, as DescribeConfigs (v3+) reports it.
    pub fn type_code(&self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::Text | Kind::OneOf(_) => 2,
            Kind::Number { width, .. } => match width {
                Width::Int => 3,
                Width::Short => 4,
                Width::Long => 5,
            },
            Kind::Double { .. } => 6,
            Kind::List | Kind::ListOf(_) | Kind::ReplicaList => 7,
        }
    }

    /// Kafka's name of the type, for the reference page.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Bool => "boolean",
            Kind::Text | Kind::OneOf(_) => "string",
            Kind::Number { width, .. } => match width {
                Width::Short => "short",
                Width::Int => "int",
                Width::Long => "long",
            },
            Kind::Double { .. } => "double",
            Kind::List | Kind::ListOf(_) | Kind::ReplicaList => "list",
        }
    }

    /// The values accepted, in words: what an error message and the
    /// reference page say is allowed.
    pub fn allowed(&self) -> String {
        match self {
            Kind::Bool => "true or false".into(),
            Kind::Number { width, min, max } => {
                let (lowest, highest) = width.range();
                match (*min > lowest, *max < highest) {
                    (false, false) => "any integer".into(),
                    (true, false) => format!("an integer of at least {min}"),
                    (false, true) => format!("an integer of at most {max}"),
                    (true, true) => format!("an integer from {min} to {max}"),
                }
            }
            Kind::Text => "any text".into(),
            Kind::OneOf(words) => format!("one of {}", words.join(", ")),
            Kind::List => "a comma-separated list".into(),
            Kind::ListOf(words) => format!("one or more of {}, comma-separated", words.join(", ")),
            Kind::ReplicaList => "`*`, or partition:broker pairs, comma-separated".into(),
            Kind::Double { fraction: true } => "a number from 0 to 1".into(),
            Kind::Double { fraction: false } => "a number of at least 0".into(),
        }
    }

    /// Checks `value`; the error says what is wrong and what is allowed.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let value = value.trim();
        let refused = || Err(format!("expected {}", self.allowed()));
        match self {
            Kind::Bool if parse_bool(value).is_some() => Ok(()),
            Kind::Bool => refused(),
            Kind::Number { min, max, .. } => match value.parse::<i64>() {
                Ok(n) if n < *min => Err(format!("must be at least {min}")),
                Ok(n) if n > *max => Err(format!("must be at most {max}")),
                Ok(_) => Ok(()),
                Err(_) => Err("expected an integer".into()),
            },
            Kind::Text | Kind::List => Ok(()),
            Kind::OneOf(words) if words.contains(&value) => Ok(()),
            Kind::OneOf(_) => refused(),
            Kind::ListOf(words) => {
                let items = list_items(value);
                if !items.is_empty() && items.iter().all(|i| words.contains(&i.as_str())) {
                    Ok(())
                } else {
                    refused()
                }
            }
            Kind::ReplicaList => crate::replication::throttle::ThrottledReplicas::parse(value)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Kind::Double { fraction } => match value.parse::<f64>() {
                Ok(n) if n >= 0.0 && (!fraction || n <= 1.0) => Ok(()),
                _ => refused(),
            },
        }
    }
}

impl Width {
    /// The smallest and largest value of the type.
    fn range(self) -> (i64, i64) {
        match self {
            Width::Short => (i16::MIN.into(), i16::MAX.into()),
            Width::Int => (i32::MIN.into(), i32::MAX.into()),
            Width::Long => (i64::MIN, i64::MAX),
        }
    }
}

/// Reads a boolean as Kafka does: `true` or `false` in any case.
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
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

/// How Kafka lets a setting change while the broker runs (its "update
/// mode"). Gregor reads broker settings at start only; the mode is given
/// so a Kafka user knows what to expect there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Only at start.
    ReadOnly,
    /// Per broker, at run time.
    PerBroker,
    /// For the whole cluster, at run time.
    ClusterWide,
    /// A topic setting: per topic, at run time (AlterConfigs).
    PerTopic,
}

impl Update {
    /// Kafka's name for the mode.
    pub fn name(self) -> &'static str {
        match self {
            Update::ReadOnly => "read-only",
            Update::PerBroker => "per-broker",
            Update::ClusterWide => "cluster-wide",
            Update::PerTopic => "per-topic",
        }
    }
}

/// Another key Kafka treats as a way to give the same setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynonymOf {
    /// The key this one stands in for.
    pub key: &'static str,
    /// What a value of this key is multiplied by to be one of `key`'s
    /// (3 600 000 from hours to milliseconds; 1 when the units agree).
    pub scale: i64,
}

/// One declared setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Kafka's property name.
    pub key: &'static str,
    /// The values it takes.
    pub kind: Kind,
    /// Its value when not given, as Kafka writes it; `None`: no value.
    pub default: Option<&'static str>,
    /// One line saying what it does in Gregor.
    pub doc: &'static str,
    /// How Kafka lets it change at run time.
    pub update: Update,
    /// Its value is a secret: never shown.
    pub sensitive: bool,
    /// Also settable per listener (`listener.name.<listener>.<key>`).
    pub per_listener: bool,
    /// For a broker setting, the finer-unit setting this one is a coarser
    /// way to give (`log.retention.hours` for `log.retention.ms`); for a
    /// topic setting, the broker setting its default comes from.
    pub synonym_of: Option<SynonymOf>,
    /// Accepted so a Kafka `server.properties` starts unchanged, but of no
    /// use to Gregor.
    pub ignored: bool,
}

impl Setting {
    /// A read-only setting without a default.
    pub const fn new(key: &'static str, kind: Kind, doc: &'static str) -> Setting {
        Setting {
            key,
            kind,
            default: None,
            doc,
            update: Update::ReadOnly,
            sensitive: false,
            per_listener: false,
            synonym_of: None,
            ignored: false,
        }
    }

    /// A topic setting without a default.
    pub const fn topic(key: &'static str, kind: Kind, doc: &'static str) -> Setting {
        Setting {
            update: Update::PerTopic,
            ..Setting::new(key, kind, doc)
        }
    }

    /// With this default.
    pub const fn default(self, value: &'static str) -> Setting {
        Setting {
            default: Some(value),
            ..self
        }
    }

    /// Changeable at run time in Kafka, so.
    pub const fn update(self, update: Update) -> Setting {
        Setting { update, ..self }
    }

    /// A coarser-unit way to give `key`: a value of this one times `scale`.
    pub const fn synonym_of(self, key: &'static str, scale: i64) -> Setting {
        Setting {
            synonym_of: Some(SynonymOf { key, scale }),
            ..self
        }
    }

    /// A topic setting whose default is broker setting `key`'s value.
    pub const fn default_from(self, key: &'static str) -> Setting {
        self.synonym_of(key, 1)
    }

    /// Its value is a secret: DescribeConfigs, errors and logs never show it.
    pub const fn sensitive(self) -> Setting {
        Setting {
            sensitive: true,
            ..self
        }
    }

    /// May also be given for one listener, as
    /// `listener.name.<listener>.<key>` (the listener's name in lower case),
    /// which then wins over the plain key for that listener.
    pub const fn per_listener(self) -> Setting {
        Setting {
            per_listener: true,
            ..self
        }
    }

    /// Accepted but of no use to Gregor.
    pub const fn ignored(self) -> Setting {
        Setting {
            ignored: true,
            ..self
        }
    }

    /// Checks a value given for this setting.
    pub fn check(&self, value: &str) -> Result<(), String> {
        self.kind.check(value)
    }
}

/// Where a described value comes from: Kafka's config-source codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set on the topic.
    Topic = 1,
    /// Set at run time for this broker (IncrementalAlterConfigs on the
    /// broker's id).
    DynamicBroker = 2,
    /// Set at run time as every broker's default (IncrementalAlterConfigs
    /// on the broker resource named "").
    DynamicDefaultBroker = 3,
    /// Set in the broker's properties file or environment.
    StaticBroker = 4,
    /// The default.
    Default = 5,
}

impl Source {
    /// Kafka's code.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// A value a setting takes from one source, as DescribeConfigs lists its
/// synonyms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    /// The key that has the value.
    pub name: String,
    /// The value (`None` when secret).
    pub value: Option<String>,
    /// Where it comes from.
    pub source: Source,
}

/// A setting as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The key.
    pub name: String,
    /// The value (`None` when unset and without a default, or secret).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: Source,
    /// Whether AlterConfigs can change it.
    pub read_only: bool,
    /// Whether the value is secret.
    pub sensitive: bool,
    /// Kafka's config-type code.
    pub config_type: i8,
    /// Every source with a value for it, the one in force first.
    pub synonyms: Vec<Synonym>,
    /// The documentation line.
    pub doc: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_kind() {
        let cases: &[(Kind, &str, Result<(), &str>)] = &[
            (Kind::Bool, "true", Ok(())),
            (Kind::Bool, "FALSE", Ok(())),
            (Kind::Bool, "yes", Err("expected true or false")),
            (Kind::int(1), "1", Ok(())),
            (Kind::int(1), " 7 ", Ok(())),
            (Kind::int(1), "0", Err("must be at least 1")),
            (
                Kind::int(1),
                "2147483648",
                Err("must be at most 2147483647"),
            ),
            (Kind::int(1), "many", Err("expected an integer")),
            (Kind::short(1), "32768", Err("must be at most 32767")),
            (Kind::ANY_LONG, "-9223372036854775808", Ok(())),
            (Kind::int_between(1, 10), "11", Err("must be at most 10")),
            (Kind::Text, "", Ok(())),
            (Kind::OneOf(&["a", "b"]), "b", Ok(())),
            (Kind::OneOf(&["a", "b"]), "c", Err("expected one of a, b")),
            (Kind::ListOf(&["a", "b"]), "b, a", Ok(())),
            (
                Kind::ListOf(&["a"]),
                "a,c",
                Err("expected one or more of a, comma-separated"),
            ),
            (
                Kind::ListOf(&["a"]),
                " , ",
                Err("expected one or more of a, comma-separated"),
            ),
        ];
        for (kind, value, want) in cases {
            assert_eq!(
                kind.check(value),
                want.map_err(str::to_string),
                "{kind:?} {value:?}"
            );
        }
    }

    #[test]
    fn allowed_values_read_naturally() {
        let cases = [
            (Kind::ANY_INT, "any integer"),
            (Kind::int(0), "an integer of at least 0"),
            (
                Kind::int_between(1, 2_147_483_639),
                "an integer from 1 to 2147483639",
            ),
            (Kind::short(1), "an integer of at least 1"),
        ];
        for (kind, want) in cases {
            assert_eq!(kind.allowed(), want);
        }
    }
}
