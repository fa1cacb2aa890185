//! Cluster-wide feature levels (Kafka's finalized features, KIP-584): the
//! features the brokers support, the level the cluster runs each at, and
//! whether a change of level (UpdateFeatures, `kafka-features upgrade` and
//! `downgrade`) may be made. Clients read the levels from ApiVersions.
//!
//! Gregor has one: `transaction.version`. At 2 (KIP-890 part 2) Kafka's
//! 4.x clients bump the producer epoch with every transaction and let the
//! brokers add partitions to it. A cluster that never set it runs at 2,
//! as a new Kafka 4 cluster does; level 0 keeps every client on the older
//! protocol.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `transaction.version`.
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// A feature the brokers support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Its name.
    pub name: &'static str,
    /// The lowest level supported.
    pub min: i16,
    /// The highest level supported.
    pub max: i16,
    /// The level of a cluster that never set it.
    pub default: i16,
}

/// Every feature Gregor supports.
pub const SUPPORTED: &[Feature] = &[Feature {
    name: TRANSACTION_VERSION,
    min: 0,
    max: 2,
    default: 2,
}];

/// How a level may move (UpdateFeatures' upgrade type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    /// Upwards only.
    Upgrade,
    /// Downwards, losing nothing.
    SafeDowngrade,
    /// Downwards, possibly losing metadata.
    UnsafeDowngrade,
}

impl UpgradeType {
    /// The type of a request's code (v0's `allow_downgrade` maps to a
    /// safe downgrade); `None` for an unknown code.
    pub fn from_code(code: i8) -> Option<UpgradeType> {
        match code {
            1 => Some(UpgradeType::Upgrade),
            2 => Some(UpgradeType::SafeDowngrade),
            3 => Some(UpgradeType::UnsafeDowngrade),
            _ => None,
        }
    }
}

/// Why a change of level is refused (INVALID_UPDATE_VERSION).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// A feature no broker supports.
    #[error("feature {0} is not supported by this cluster")]
    Unknown(String),
    /// A level outside the supported range.
    #[error("feature {name} supports levels {min} to {max}, not {level}")]
    OutOfRange {
        /// The feature.
        name: String,
        /// The level asked for.
        level: i16,
        /// Lowest supported.
        min: i16,
        /// Highest supported.
        max: i16,
    },
    /// A lower level asked for as an upgrade.
    #[error("lowering {name} from {current} to {level} needs a downgrade, not an upgrade")]
    NotAnUpgrade {
        /// The feature.
        name: String,
        /// Its level now.
        current: i16,
        /// The level asked for.
        level: i16,
    },
    /// A higher level asked for as a downgrade.
    #[error("raising {name} from {current} to {level} is an upgrade, not a downgrade")]
    NotADowngrade {
        /// The feature.
        name: String,
        /// Its level now.
        current: i16,
        /// The level asked for.
        level: i16,
    },
}

/// The level the cluster runs each feature at, and the metadata log
/// index of the last change (the features' epoch in ApiVersions, so a
/// client that talks to several brokers keeps the newest answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLevels {
    levels: BTreeMap<String, i16>,
    epoch: i64,
}

impl FeatureLevels {
    /// The level of `name` (0 for a feature Gregor does not know).
    pub fn level(&self, name: &str) -> i16 {
        self.levels.get(name).copied().unwrap_or_else(|| {
            SUPPORTED
                .iter()
                .find(|f| f.name == name)
                .map_or(0, |f| f.default)
        })
    }

    /// The finalized features, as ApiVersions lists them: those above 0.
    pub fn finalized(&self) -> Vec<(&'static str, i16)> {
        SUPPORTED
            .iter()
            .map(|f| (f.name, self.level(f.name)))
            .filter(|(_, level)| *level > 0)
            .collect()
    }

    /// The index of the last change, 0 before any.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Whether `name` may be set to `level` as `how` says.
    pub fn check(&self, name: &str, level: i16, how: UpgradeType) -> Result<(), UpdateError> {
        supported(name, level)?;
        let current = self.level(name);
        match how {
            UpgradeType::Upgrade if level < current => Err(UpdateError::NotAnUpgrade {
                name: name.to_string(),
                current,
                level,
            }),
            UpgradeType::SafeDowngrade | UpgradeType::UnsafeDowngrade if level > current => {
                Err(UpdateError::NotADowngrade {
                    name: name.to_string(),
                    current,
                    level,
                })
            }
            _ => Ok(()),
        }
    }

    /// Sets `name` to `level` at metadata log `index`; a feature Gregor
    /// does not support or a level out of its range is refused.
    pub fn set(&mut self, index: u64, name: &str, level: i16) -> Result<(), UpdateError> {
        supported(name, level)?;
        self.levels.insert(name.to_string(), level);
        self.epoch = i64::try_from(index).unwrap_or(i64::MAX);
        Ok(())
    }
}

/// Whether `name` is supported at `level`.
fn supported(name: &str, level: i16) -> Result<(), UpdateError> {
    let f = SUPPORTED
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| UpdateError::Unknown(name.to_string()))?;
    if (f.min..=f.max).contains(&level) {
        Ok(())
    } else {
        Err(UpdateError::OutOfRange {
            name: name.to_string(),
            level,
            min: f.min,
            max: f.max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_cluster_runs_transaction_version_2() {
        let f = FeatureLevels::default();
        assert_eq!(f.level(TRANSACTION_VERSION), 2);
        assert_eq!(f.finalized(), [(TRANSACTION_VERSION, 2)]);
        assert_eq!(f.epoch(), 0);
        assert_eq!(f.level("group.version"), 0);
    }

    #[test]
    fn level_changes_follow_their_upgrade_type() {
        use UpgradeType::*;
        let mut f = FeatureLevels::default();
        f.set(7, TRANSACTION_VERSION, 1).expect("set");
        assert_eq!((f.level(TRANSACTION_VERSION), f.epoch()), (1, 7));
        let tv = TRANSACTION_VERSION;
        let cases: Vec<(&str, i16, UpgradeType, bool)> = vec![
            (tv, 2, Upgrade, true),
            (tv, 1, Upgrade, true),
            (tv, 0, Upgrade, false),
            (tv, 0, SafeDowngrade, true),
            (tv, 0, UnsafeDowngrade, true),
            (tv, 2, SafeDowngrade, false),
            (tv, 3, Upgrade, false),
            (tv, -1, SafeDowngrade, false),
            ("metadata.version", 1, Upgrade, false),
        ];
        for (name, level, how, ok) in cases {
            assert_eq!(
                f.check(name, level, how).is_ok(),
                ok,
                "{name} {level} {how:?}"
            );
        }
        f.set(9, TRANSACTION_VERSION, 0).expect("set");
        assert!(f.finalized().is_empty(), "level 0 is not finalized");
        assert!(f.set(10, "kraft.version", 1).is_err());
        assert_eq!(f.epoch(), 9);
    }
}
