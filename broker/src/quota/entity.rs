//! Client quotas as Kafka stores them (KIP-546): an entity (a user, a
//! client id, both, or an IP address, each a name or the default) and its
//! values (`producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
//! `controller_mutation_rate`, `connection_creation_rate`); what an
//! AlterClientQuotas entry may change and which entities a
//! DescribeClientQuotas filter selects.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of entity a quota names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityType {
    /// A user (the principal's name, without `User:`).
    User,
    /// A `client.id`.
    ClientId,
    /// A client's IP address.
    Ip,
}

impl EntityType {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EntityType::User => "user",
            EntityType::ClientId => "client-id",
            EntityType::Ip => "ip",
        }
    }

    fn parse(name: &str) -> Option<EntityType> {
        match name {
            "user" => Some(EntityType::User),
            "client-id" => Some(EntityType::ClientId),
            "ip" => Some(EntityType::Ip),
            _ => None,
        }
    }
}

/// Who a quota is for: each part's name, or `None` for that part's default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity(pub BTreeMap<EntityType, Option<String>>);

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(t, n)| format!("{}={}", t.name(), n.as_deref().unwrap_or("<default>")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A quota value; always finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct QuotaValue(pub f64);

// Values are checked finite before they are stored, so equality is total.
impl Eq for QuotaValue {}

/// Why a quota request is refused (Kafka answers INVALID_REQUEST).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    /// An entity type other than user, client-id and ip.
    #[error("unknown entity type {0:?}: expected user, client-id or ip")]
    EntityType(String),
    /// The same entity type twice.
    #[error("entity type {0} appears twice")]
    DuplicateType(&'static str),
    /// No entity type at all.
    #[error("a quota entity needs at least one of user, client-id and ip")]
    EmptyEntity,
    /// ip with user or client-id.
    #[error("an ip quota cannot be combined with user or client-id")]
    IpCombined,
    /// A key that does not apply to the entity.
    #[error("{key} is not a quota of {entity}: {expected}")]
    Key {
        /// The key.
        key: String,
        /// The entity, as text.
        entity: String,
        /// The keys that would be accepted.
        expected: &'static str,
    },
    /// A value out of range.
    #[error("invalid value {value} for {key}: {why}")]
    Value {
        /// The key.
        key: String,
        /// The value given.
        value: f64,
        /// What is wrong.
        why: &'static str,
    },
    /// The same key changed twice in one entry.
    #[error("{0} is changed twice in one entry")]
    DuplicateKey(String),
    /// A filter's match type or match string that do not fit.
    #[error("{0}")]
    Filter(String),
}

/// The quotas a user or client id may have, and whether each is a whole
/// number (Kafka's LONG) or a fraction (DOUBLE).
const CLIENT_KEYS: &[(&str, bool)] = &[
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];
const IP_KEYS: &[(&str, bool)] = &[("connection_creation_rate", true)];

impl QuotaEntity {
    /// The entity an AlterClientQuotas or DescribeClientQuotas entry names.
    pub fn parse<'a>(
        parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, QuotaError> {
        let mut map = BTreeMap::new();
        for (kind, name) in parts {
            let t = EntityType::parse(kind).ok_or_else(|| QuotaError::EntityType(kind.into()))?;
            if map.insert(t, name.map(str::to_string)).is_some() {
                return Err(QuotaError::DuplicateType(t.name()));
            }
        }
        if map.is_empty() {
            return Err(QuotaError::EmptyEntity);
        }
        if map.contains_key(&EntityType::Ip) && map.len() > 1 {
            return Err(QuotaError::IpCombined);
        }
        Ok(QuotaEntity(map))
    }

    fn keys(&self) -> (&'static [(&'static str, bool)], &'static str) {
        if self.0.contains_key(&EntityType::Ip) {
            (IP_KEYS, "an ip takes connection_creation_rate")
        } else {
            (
                CLIENT_KEYS,
                "users and client ids take producer_byte_rate, consumer_byte_rate, request_percentage and controller_mutation_rate",
            )
        }
    }

    /// Checks one entry's changes (`None`: remove the key); the changes to
    /// record.
    pub fn check_changes(
        &self,
        changes: impl IntoIterator<Item = (String, Option<f64>)>,
    ) -> Result<BTreeMap<String, Option<QuotaValue>>, QuotaError> {
        let (keys, expected) = self.keys();
        let mut out = BTreeMap::new();
        for (key, value) in changes {
            let Some((_, whole)) = keys.iter().find(|(k, _)| *k == key) else {
                return Err(QuotaError::Key {
                    key,
                    entity: self.to_string(),
                    expected,
                });
            };
            let checked = match value {
                None => None,
                Some(v) => {
                    let refuse = |why| QuotaError::Value {
                        key: key.clone(),
                        value: v,
                        why,
                    };
                    if !v.is_finite() || v < 0.0 {
                        return Err(refuse("must be a finite number, 0 or more"));
                    }
                    if *whole && v.fract() != 0.0 {
                        return Err(refuse("must be a whole number"));
                    }
                    if key == "request_percentage" && v == 0.0 {
                        return Err(refuse("must be more than 0"));
                    }
                    Some(QuotaValue(v))
                }
            };
            if out.insert(key.clone(), checked).is_some() {
                return Err(QuotaError::DuplicateKey(key));
            }
        }
        Ok(out)
    }
}

/// How a DescribeClientQuotas component matches names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    /// Exactly this name.
    Exact(String),
    /// The default.
    Default,
    /// Any name, the default included.
    Any,
}

/// A DescribeClientQuotas filter, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilter {
    /// Entity types named exactly (a name, or `None` for the default).
    exact: BTreeMap<EntityType, Option<String>>,
    /// Entity types with any name.
    any: Vec<EntityType>,
    /// Whether an entity must have exactly the filter's types.
    strict: bool,
}

impl QuotaFilter {
    /// A filter from the request's components: (entity type, match type
    /// code 0 = exact, 1 = default, 2 = any, match string).
    pub fn parse<'a>(
        components: impl IntoIterator<Item = (&'a str, i8, Option<&'a str>)>,
        strict: bool,
    ) -> Result<QuotaFilter, QuotaError> {
        let mut exact = BTreeMap::new();
        let mut any = Vec::new();
        for (kind, code, name) in components {
            let t = EntityType::parse(kind).ok_or_else(|| QuotaError::EntityType(kind.into()))?;
            if exact.contains_key(&t) || any.contains(&t) {
                return Err(QuotaError::DuplicateType(t.name()));
            }
            match (code, name) {
                (0, Some(n)) => {
                    exact.insert(t, Some(n.to_string()));
                }
                (1, None) => {
                    exact.insert(t, None);
                }
                (2, None) => any.push(t),
                (0..=2, _) => {
                    return Err(QuotaError::Filter(format!(
                        "match type {code} of {} {} a match string",
                        t.name(),
                        if code == 0 { "needs" } else { "takes no" }
                    )))
                }
                _ => return Err(QuotaError::Filter(format!("unknown match type {code}"))),
            }
        }
        let has = |t| exact.contains_key(&t) || any.contains(&t);
        if has(EntityType::Ip) && (has(EntityType::User) || has(EntityType::ClientId)) {
            return Err(QuotaError::IpCombined);
        }
        Ok(QuotaFilter { exact, any, strict })
    }

    /// Whether the filter selects `entity`. As in Kafka, the components are
    /// alternatives: an entity is selected by any one exact component it
    /// carries, or by carrying any type named with "any"; strict filters
    /// also ask for the entity's types to be exactly the filter's. With no
    /// components a non-strict filter selects everything.
    pub fn matches(&self, entity: &QuotaEntity) -> bool {
        let size = self.exact.len() + self.any.len();
        if self.strict && entity.0.len() != size {
            return false;
        }
        if size == 0 {
            return !self.strict;
        }
        let by_exact = self.exact.iter().any(|(t, name)| {
            entity.0.get(t) == Some(name) && (!self.strict || entity.0 == self.exact)
        });
        by_exact || self.any.iter().any(|t| entity.0.contains_key(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> QuotaEntity {
        QuotaEntity::parse(parts.iter().copied()).expect("valid entity")
    }

    #[test]
    fn entities_are_checked() {
        assert!(QuotaEntity::parse([("user", Some("alice"))]).is_ok());
        assert!(QuotaEntity::parse([("user", None), ("client-id", Some("app"))]).is_ok());
        assert_eq!(
            QuotaEntity::parse([("group", Some("g"))]),
            Err(QuotaError::EntityType("group".into()))
        );
        assert_eq!(
            QuotaEntity::parse([("user", Some("a")), ("user", Some("b"))]),
            Err(QuotaError::DuplicateType("user"))
        );
        assert_eq!(
            QuotaEntity::parse([("ip", Some("1.2.3.4")), ("user", Some("a"))]),
            Err(QuotaError::IpCombined)
        );
        assert_eq!(QuotaEntity::parse([]), Err(QuotaError::EmptyEntity));
    }

    #[test]
    fn values_are_checked_per_key() {
        let user = entity(&[("user", Some("alice"))]);
        let ip = entity(&[("ip", Some("10.0.0.1"))]);
        let ok =
            |e: &QuotaEntity, k: &str, v: f64| e.check_changes([(k.to_string(), Some(v))]).is_ok();
        assert!(ok(&user, "producer_byte_rate", 1024.0));
        assert!(
            !ok(&user, "producer_byte_rate", 10.5),
            "a LONG takes whole numbers"
        );
        assert!(ok(&user, "request_percentage", 12.5));
        assert!(!ok(&user, "request_percentage", 0.0));
        assert!(!ok(&user, "consumer_byte_rate", -1.0));
        assert!(!ok(&user, "consumer_byte_rate", f64::NAN));
        assert!(!ok(&user, "connection_creation_rate", 5.0));
        assert!(ok(&ip, "connection_creation_rate", 5.0));
        assert!(!ok(&ip, "producer_byte_rate", 5.0));
        assert!(user
            .check_changes([("producer_byte_rate".to_string(), None)])
            .is_ok());
        assert_eq!(
            user.check_changes([
                ("producer_byte_rate".to_string(), None),
                ("producer_byte_rate".to_string(), Some(1.0))
            ]),
            Err(QuotaError::DuplicateKey("producer_byte_rate".into()))
        );
    }

    #[test]
    fn filters_select_as_kafka_does() {
        let alice = entity(&[("user", Some("alice"))]);
        let default_user = entity(&[("user", None)]);
        let alice_app = entity(&[("user", Some("alice")), ("client-id", Some("app"))]);
        let app = entity(&[("client-id", Some("app"))]);
        let all = [&alice, &default_user, &alice_app, &app];
        // (components, strict, selected entities)
        type Component<'a> = (&'a str, i8, Option<&'a str>);
        let table: Vec<(Vec<Component>, bool, Vec<&QuotaEntity>)> = vec![
            (vec![], false, all.to_vec()),
            (vec![], true, vec![]),
            (
                vec![("user", 0, Some("alice"))],
                false,
                vec![&alice, &alice_app],
            ),
            (vec![("user", 0, Some("alice"))], true, vec![&alice]),
            (vec![("user", 1, None)], true, vec![&default_user]),
            (vec![("user", 2, None)], true, vec![&alice, &default_user]),
            (
                vec![("user", 2, None)],
                false,
                vec![&alice, &default_user, &alice_app],
            ),
            (
                vec![("user", 0, Some("alice")), ("client-id", 0, Some("app"))],
                true,
                vec![&alice_app],
            ),
            (vec![("client-id", 2, None)], false, vec![&alice_app, &app]),
        ];
        for (components, strict, want) in table {
            let filter = QuotaFilter::parse(components.clone(), strict).expect("valid filter");
            let got: Vec<&QuotaEntity> =
                all.iter().copied().filter(|e| filter.matches(e)).collect();
            assert_eq!(got, want, "{components:?} strict={strict}");
        }
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(QuotaFilter::parse([("user", 0, None)], false).is_err());
        assert!(QuotaFilter::parse([("user", 1, Some("x"))], false).is_err());
        assert!(QuotaFilter::parse([("user", 7, None)], false).is_err());
        assert!(QuotaFilter::parse([("ip", 2, None), ("user", 2, None)], false).is_err());
        assert!(QuotaFilter::parse([("user", 2, None), ("user", 1, None)], false).is_err());
    }
}
