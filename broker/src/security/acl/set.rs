//! The ACLs in force, as the metadata image keeps them: a sorted set in
//! which all ACLs of one resource pattern are neighbours, so the ACLs that
//! apply to a resource are found by a few range lookups, not a scan.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::binding::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};
use super::filter::AclFilter;

/// Every ACL of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AclSet(BTreeSet<AclBinding>);

impl AclSet {
    /// Adds an ACL; false when it was there already.
    pub fn insert(&mut self, acl: AclBinding) -> bool {
        self.0.insert(acl)
    }

    /// Removes an ACL; false when it was not there.
    pub fn remove(&mut self, acl: &AclBinding) -> bool {
        self.0.remove(acl)
    }

    /// Whether the ACL is in force.
    pub fn contains(&self, acl: &AclBinding) -> bool {
        self.0.contains(acl)
    }

    /// How many ACLs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every ACL, in resource order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.0.iter()
    }

    /// The ACLs a filter selects.
    pub fn matching<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = &'a AclBinding> {
        self.0.iter().filter(|acl| filter.matches(acl))
    }

    /// The ACLs of one exact resource pattern.
    pub fn of_pattern<'a>(
        &'a self,
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        // The smallest binding of this pattern: empty strings and the first
        // operation and permission sort before every real entry.
        let start = AclBinding {
            resource_type,
            pattern_type,
            name: name.to_string(),
            principal: String::new(),
            host: String::new(),
            operation: Operation::All,
            permission: Permission::Deny,
        };
        self.0.range(start..).take_while(move |acl| {
            acl.resource_type == resource_type
                && acl.pattern_type == pattern_type
                && acl.name == name
        })
    }

    /// Every ACL that applies to the resource `name` of this type: its
    /// literal ACLs, the `*` ACLs, and the prefixed ACLs of each of its
    /// prefixes (the whole name included).
    pub fn applying_to<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        let wildcard = (name != WILDCARD).then_some(WILDCARD);
        let prefixes = name.char_indices().map(|(i, c)| &name[..i + c.len_utf8()]);
        self.of_pattern(resource_type, PatternType::Literal, name)
            .chain(
                wildcard
                    .into_iter()
                    .flat_map(move |w| self.of_pattern(resource_type, PatternType::Literal, w)),
            )
            .chain(
                prefixes
                    .flat_map(move |p| self.of_pattern(resource_type, PatternType::Prefixed, p)),
            )
    }
}

impl FromIterator<AclBinding> for AclSet {
    fn from_iter<I: IntoIterator<Item = AclBinding>>(iter: I) -> AclSet {
        AclSet(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(resource_type: ResourceType, pattern_type: PatternType, name: &str) -> AclBinding {
        AclBinding {
            resource_type,
            pattern_type,
            name: name.into(),
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn finds_literal_wildcard_and_prefix_acls_only() {
        use PatternType::*;
        use ResourceType::*;
        let set: AclSet = [
            acl(Topic, Literal, "orders"),
            acl(Topic, Literal, "*"),
            acl(Topic, Prefixed, "ord"),
            acl(Topic, Prefixed, "orders"),
            acl(Topic, Prefixed, "orders-eu"),
            acl(Topic, Literal, "ord"),
            acl(Topic, Prefixed, "p"),
            acl(Group, Literal, "orders"),
        ]
        .into_iter()
        .collect();
        let mut found: Vec<(PatternType, String)> = set
            .applying_to(Topic, "orders")
            .map(|a| (a.pattern_type, a.name.clone()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                (Literal, "*".to_string()),
                (Literal, "orders".to_string()),
                (Prefixed, "ord".to_string()),
                (Prefixed, "orders".to_string()),
            ]
        );
    }

    #[test]
    fn multibyte_names_are_split_on_characters() {
        let set: AclSet = [acl(ResourceType::Topic, PatternType::Prefixed, "é")]
            .into_iter()
            .collect();
        assert_eq!(set.applying_to(ResourceType::Topic, "éa").count(), 1);
    }
}
