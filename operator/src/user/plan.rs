//! What a `KafkaUser` should be in its cluster, and how far the cluster is
//! from it: the user's name, its ACL bindings and quotas, and the changes
//! that make the cluster's match the spec (the spec wins: bindings of the
//! user that it does not list are removed).

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::user::{
    AclOperation, AclPatternType, AclResourceType, AclRule, AclType, UserAuthenticationType,
    UserQuotas,
};

/// The resource name Kafka gives the cluster in ACLs.
const CLUSTER_RESOURCE: &str = "kafka-cluster";

/// The user's name in Kafka: the resource's name, as SCRAM knows it, or
/// `CN=<name>` for a certificate's subject as the brokers map it.
pub fn username(name: &str, kind: UserAuthenticationType) -> String {
    match kind {
        UserAuthenticationType::ScramSha512 => name.to_string(),
        UserAuthenticationType::Tls | UserAuthenticationType::TlsExternal => format!("CN={name}"),
    }
}

/// One ACL binding of a user, in Kafka's codes (the admin protocol's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    /// Resource type: topic 2, group 3, cluster 4, transactional id 5.
    pub resource_type: i8,
    /// Resource name (or prefix).
    pub resource_name: String,
    /// Pattern: literal 3, prefixed 4.
    pub pattern_type: i8,
    /// The host it applies from.
    pub host: String,
    /// Operation (Kafka's `AclOperation` code).
    pub operation: i8,
    /// Deny 2, allow 3.
    pub permission_type: i8,
}

/// The bindings the spec's rules make, one per operation.
pub fn bindings(rules: &[AclRule]) -> BTreeSet<Binding> {
    let mut out = BTreeSet::new();
    for rule in rules {
        let (resource_type, resource_name) = match rule.resource.kind {
            AclResourceType::Topic => (2, rule.resource.name.clone()),
            AclResourceType::Group => (3, rule.resource.name.clone()),
            AclResourceType::Cluster => (4, Some(CLUSTER_RESOURCE.to_string())),
            AclResourceType::TransactionalId => (5, rule.resource.name.clone()),
        };
        let pattern_type = match rule.resource.pattern_type {
            AclPatternType::Literal => 3,
            AclPatternType::Prefix => 4,
        };
        let permission_type = match rule.kind {
            AclType::Deny => 2,
            AclType::Allow => 3,
        };
        for op in &rule.operations {
            out.insert(Binding {
                resource_type,
                resource_name: resource_name.clone().unwrap_or_default(),
                pattern_type,
                host: rule.host.clone(),
                operation: operation_code(*op),
                permission_type,
            });
        }
    }
    out
}

fn operation_code(op: AclOperation) -> i8 {
    match op {
        AclOperation::All => 2,
        AclOperation::Read => 3,
        AclOperation::Write => 4,
        AclOperation::Create => 5,
        AclOperation::Delete => 6,
        AclOperation::Alter => 7,
        AclOperation::Describe => 8,
        AclOperation::ClusterAction => 9,
        AclOperation::DescribeConfigs => 10,
        AclOperation::AlterConfigs => 11,
        AclOperation::IdempotentWrite => 12,
    }
}

/// Bindings to create and to delete so that the user's are `wanted`.
pub fn acl_changes(
    wanted: &BTreeSet<Binding>,
    existing: &BTreeSet<Binding>,
) -> (Vec<Binding>, Vec<Binding>) {
    (
        wanted.difference(existing).cloned().collect(),
        existing.difference(wanted).cloned().collect(),
    )
}

/// The spec's quotas by Kafka's keys.
pub fn quotas(spec: Option<&UserQuotas>) -> BTreeMap<String, f64> {
    let Some(q) = spec else {
        return BTreeMap::new();
    };
    [
        ("producer_byte_rate", q.producer_byte_rate),
        ("consumer_byte_rate", q.consumer_byte_rate),
        ("request_percentage", q.request_percentage),
        ("controller_mutation_rate", q.controller_mutation_rate),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v? as f64)))
    .collect()
}

/// Quota keys to set (`Some`) or remove (`None`) so that the user's are
/// `wanted`.
pub fn quota_changes(
    wanted: &BTreeMap<String, f64>,
    existing: &BTreeMap<String, f64>,
) -> Vec<(String, Option<f64>)> {
    let set = wanted
        .iter()
        .filter(|(k, v)| existing.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), Some(*v)));
    let removed = existing
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| (k.clone(), None));
    set.chain(removed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::user::AclResource;

    fn rule(kind: AclResourceType, name: Option<&str>, ops: &[AclOperation]) -> AclRule {
        AclRule {
            resource: AclResource {
                kind,
                name: name.map(str::to_string),
                pattern_type: AclPatternType::Literal,
            },
            operations: ops.to_vec(),
            host: "*".into(),
            kind: AclType::Allow,
        }
    }

    #[test]
    fn users_are_named_as_their_mechanism_makes_them() {
        assert_eq!(
            username("alice", UserAuthenticationType::ScramSha512),
            "alice"
        );
        assert_eq!(username("bob", UserAuthenticationType::Tls), "CN=bob");
        assert_eq!(
            username("bob", UserAuthenticationType::TlsExternal),
            "CN=bob"
        );
    }

    #[test]
    fn rules_become_one_binding_per_operation_and_the_spec_wins() {
        let mut deny = rule(
            AclResourceType::Topic,
            Some("secret"),
            &[AclOperation::Read],
        );
        deny.kind = AclType::Deny;
        deny.resource.pattern_type = AclPatternType::Prefix;
        let rules = vec![
            rule(
                AclResourceType::Topic,
                Some("orders"),
                &[AclOperation::Read, AclOperation::Describe],
            ),
            rule(
                AclResourceType::Group,
                Some("billing"),
                &[AclOperation::Read],
            ),
            rule(
                AclResourceType::Cluster,
                None,
                &[AclOperation::IdempotentWrite],
            ),
            deny,
        ];
        let wanted = bindings(&rules);
        let codes: Vec<(i8, &str, i8, i8, i8)> = wanted
            .iter()
            .map(|b| {
                (
                    b.resource_type,
                    b.resource_name.as_str(),
                    b.pattern_type,
                    b.operation,
                    b.permission_type,
                )
            })
            .collect();
        assert_eq!(
            codes,
            [
                (2, "orders", 3, 3, 3),
                (2, "orders", 3, 8, 3),
                (2, "secret", 4, 3, 2),
                (3, "billing", 3, 3, 3),
                (4, "kafka-cluster", 3, 12, 3),
            ]
        );
        // Someone added a write on orders and removed the group's read.
        let mut existing = wanted.clone();
        let stray = Binding {
            operation: 4,
            ..wanted.first().expect("one").clone()
        };
        existing.insert(stray.clone());
        let group = wanted
            .iter()
            .find(|b| b.resource_type == 3)
            .expect("group")
            .clone();
        existing.remove(&group);
        assert_eq!(acl_changes(&wanted, &existing), (vec![group], vec![stray]));
        assert_eq!(acl_changes(&wanted, &wanted), (vec![], vec![]));
    }

    #[test]
    fn quotas_are_set_changed_and_removed() {
        let spec = UserQuotas {
            producer_byte_rate: Some(1_048_576),
            request_percentage: Some(50),
            ..Default::default()
        };
        let wanted = quotas(Some(&spec));
        let existing = BTreeMap::from([
            ("producer_byte_rate".to_string(), 1_048_576.0),
            ("request_percentage".to_string(), 25.0),
            ("consumer_byte_rate".to_string(), 1000.0),
        ]);
        assert_eq!(
            quota_changes(&wanted, &existing),
            [
                ("request_percentage".to_string(), Some(50.0)),
                ("consumer_byte_rate".to_string(), None),
            ]
        );
        assert!(quota_changes(&wanted, &wanted).is_empty());
        assert_eq!(quotas(None), BTreeMap::new());
    }
}
