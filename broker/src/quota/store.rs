//! The client quotas in force, by entity, as the metadata image keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::entity::{QuotaEntity, QuotaValue};

/// One entity's quotas, by key.
pub type Values = BTreeMap<String, QuotaValue>;

/// Every entity's quotas. Stored as a list of pairs: JSON maps take only
/// string keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "Vec<(QuotaEntity, Values)>",
    into = "Vec<(QuotaEntity, Values)>"
)]
pub struct ClientQuotas(BTreeMap<QuotaEntity, Values>);

impl From<Vec<(QuotaEntity, Values)>> for ClientQuotas {
    fn from(pairs: Vec<(QuotaEntity, Values)>) -> ClientQuotas {
        ClientQuotas(pairs.into_iter().collect())
    }
}

impl From<ClientQuotas> for Vec<(QuotaEntity, Values)> {
    fn from(quotas: ClientQuotas) -> Vec<(QuotaEntity, Values)> {
        quotas.0.into_iter().collect()
    }
}

impl ClientQuotas {
    /// Sets (`Some`) or removes (`None`) an entity's keys; an entity left
    /// without keys is gone.
    pub fn apply(&mut self, entity: &QuotaEntity, changes: &BTreeMap<String, Option<QuotaValue>>) {
        let values = self.0.entry(entity.clone()).or_default();
        for (key, value) in changes {
            match value {
                Some(v) => {
                    values.insert(key.clone(), *v);
                }
                None => {
                    values.remove(key);
                }
            }
        }
        if values.is_empty() {
            self.0.remove(entity);
        }
    }

    /// Whether no quota is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An entity's quotas.
    pub fn get(&self, entity: &QuotaEntity) -> Option<&Values> {
        self.0.get(entity)
    }

    /// Every entity with its quotas.
    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &Values)> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_and_remove_keys_and_survive_json() {
        let alice = QuotaEntity::parse([("user", Some("alice"))]).expect("valid");
        let mut quotas = ClientQuotas::default();
        let set = BTreeMap::from([("producer_byte_rate".to_string(), Some(QuotaValue(1024.0)))]);
        quotas.apply(&alice, &set);
        let text = serde_json::to_string(&quotas).expect("serializes");
        assert_eq!(
            serde_json::from_str::<ClientQuotas>(&text).expect("parses"),
            quotas
        );
        let remove = BTreeMap::from([("producer_byte_rate".to_string(), None)]);
        quotas.apply(&alice, &remove);
        assert_eq!(quotas.iter().count(), 0);
    }
}
