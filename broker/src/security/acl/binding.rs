//! An ACL as Kafka defines it: a resource pattern (type, name, literal or
//! prefixed) and an entry (principal, host, operation, allow or deny), with
//! the numbers the CreateAcls, DescribeAcls and DeleteAcls messages give
//! each part.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name every ACL on the cluster resource carries.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A resource name or host that stands for every one (`*`).
pub const WILDCARD: &str = "*";

/// The principal that stands for every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! coded {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value with this number on the wire.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Its number on the wire.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $text),+
                })
            }
        }
    };
}

coded!(
    /// What kind of thing an ACL protects.
    ResourceType {
        /// A topic.
        Topic = 2 => "Topic",
        /// A consumer group.
        Group = 3 => "Group",
        /// The cluster itself (always named `kafka-cluster`).
        Cluster = 4 => "Cluster",
        /// A producer's transactional id.
        TransactionalId = 5 => "TransactionalId",
        /// A delegation token.
        DelegationToken = 6 => "DelegationToken",
        /// A user (for creating tokens on its behalf).
        User = 7 => "User",
    }
);

coded!(
    /// How an ACL's resource name is matched.
    PatternType {
        /// The name exactly, or every name when it is `*`.
        Literal = 3 => "LITERAL",
        /// Every name that starts with it.
        Prefixed = 4 => "PREFIXED",
    }
);

coded!(
    /// What an ACL allows or denies.
    Operation {
        /// Every operation.
        All = 2 => "All",
        /// Read (consume, join a group).
        Read = 3 => "Read",
        /// Write (produce).
        Write = 4 => "Write",
        /// Create (topics).
        Create = 5 => "Create",
        /// Delete (topics, records, groups).
        Delete = 6 => "Delete",
        /// Alter (partitions, the cluster's placement and ACLs).
        Alter = 7 => "Alter",
        /// Describe (see that it exists, its metadata and offsets).
        Describe = 8 => "Describe",
        /// What brokers do to each other (replication).
        ClusterAction = 9 => "ClusterAction",
        /// Read configurations.
        DescribeConfigs = 10 => "DescribeConfigs",
        /// Change configurations.
        AlterConfigs = 11 => "AlterConfigs",
        /// Produce idempotently (allowed as well by Write on any topic).
        IdempotentWrite = 12 => "IdempotentWrite",
        /// Create delegation tokens.
        CreateTokens = 13 => "CreateTokens",
        /// Describe delegation tokens.
        DescribeTokens = 14 => "DescribeTokens",
    }
);

coded!(
    /// Whether an ACL allows or denies.
    Permission {
        /// Denies; wins over any allow.
        Deny = 2 => "Deny",
        /// Allows.
        Allow = 3 => "Allow",
    }
);

impl ResourceType {
    /// The operations that mean something on this kind of resource, the
    /// ones an `authorized_operations` field reports on.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }
}

/// One ACL. The field order is the sort order the authorizer's lookups
/// rely on: all ACLs of one resource pattern are neighbours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// How `name` is matched.
    pub pattern_type: PatternType,
    /// The resource name, a prefix of names, or `*`.
    pub name: String,
    /// `Type:name` (`User:alice`), or `User:*` for everyone.
    pub principal: String,
    /// The client's IP address, or `*` for any.
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// Allow or deny.
    pub permission: Permission,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern={}:{}:{}, principal={}, host={}, operation={}, permission={})",
            self.resource_type,
            self.pattern_type,
            self.name,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Why a requested ACL or filter cannot be used; Kafka answers these with
/// INVALID_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A code that is unknown, or that only a filter may use (ANY, MATCH).
    #[error("invalid {field} {code} in an ACL: {expected}")]
    Code {
        /// Which field.
        field: &'static str,
        /// The code given.
        code: i8,
        /// What would be accepted.
        expected: &'static str,
    },
    /// An empty resource name.
    #[error("an ACL's resource name must not be empty")]
    EmptyName,
    /// A principal that is not `Type:name`.
    #[error("invalid principal {0:?}: expected Type:name, such as User:alice")]
    Principal(String),
    /// An empty host.
    #[error("an ACL's host must not be empty: use * for any host")]
    EmptyHost,
}

/// Checks the principal's `Type:name` form.
pub fn check_principal(principal: &str) -> Result<(), AclError> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(AclError::Principal(principal.to_string())),
    }
}

/// The fields of an ACL as a CreateAcls request carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAcl {
    /// Resource type code.
    pub resource_type: i8,
    /// Resource name.
    pub name: String,
    /// Pattern type code.
    pub pattern_type: i8,
    /// Principal.
    pub principal: String,
    /// Host.
    pub host: String,
    /// Operation code.
    pub operation: i8,
    /// Permission code.
    pub permission: i8,
}

impl AclBinding {
    /// The ACL a CreateAcls entry asks for, if it names a concrete one.
    pub fn parse(raw: RawAcl) -> Result<AclBinding, AclError> {
        let code = |field, code, expected| AclError::Code {
            field,
            code,
            expected,
        };
        let resource_type = ResourceType::from_code(raw.resource_type).ok_or(code(
            "resource type",
            raw.resource_type,
            "TOPIC (2), GROUP (3), CLUSTER (4), TRANSACTIONAL_ID (5), DELEGATION_TOKEN (6) or USER (7)",
        ))?;
        let pattern_type = PatternType::from_code(raw.pattern_type).ok_or(code(
            "pattern type",
            raw.pattern_type,
            "LITERAL (3) or PREFIXED (4)",
        ))?;
        let operation = Operation::from_code(raw.operation).ok_or(code(
            "operation",
            raw.operation,
            "a concrete operation, ALL (2) to DESCRIBE_TOKENS (14)",
        ))?;
        let permission = Permission::from_code(raw.permission).ok_or(code(
            "permission type",
            raw.permission,
            "DENY (2) or ALLOW (3)",
        ))?;
        if raw.name.is_empty() {
            return Err(AclError::EmptyName);
        }
        check_principal(&raw.principal)?;
        if raw.host.is_empty() {
            return Err(AclError::EmptyHost);
        }
        Ok(AclBinding {
            resource_type,
            pattern_type,
            name: raw.name,
            principal: raw.principal,
            host: raw.host,
            operation,
            permission,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawAcl {
        RawAcl {
            resource_type: 2,
            name: "orders".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        }
    }

    #[test]
    fn codes_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_code(t.code()), Some(*t));
        }
        for o in Operation::ALL {
            assert_eq!(Operation::from_code(o.code()), Some(*o));
        }
        assert_eq!(Operation::from_code(1), None, "ANY is a filter's");
        assert_eq!(PatternType::from_code(2), None, "MATCH is a filter's");
    }

    #[test]
    fn a_concrete_acl_parses() {
        let b = AclBinding::parse(raw()).expect("valid");
        assert_eq!(b.resource_type, ResourceType::Topic);
        assert_eq!(b.operation, Operation::Read);
        assert_eq!(b.permission, Permission::Allow);
    }

    #[test]
    fn filters_codes_and_bad_fields_are_refused() {
        type Change = fn(&mut RawAcl);
        let cases: [(&str, Change); 10] = [
            ("any resource", |r| r.resource_type = 1),
            ("unknown resource", |r| r.resource_type = 0),
            ("match pattern", |r| r.pattern_type = 2),
            ("any pattern", |r| r.pattern_type = 1),
            ("any operation", |r| r.operation = 1),
            ("any permission", |r| r.permission = 1),
            ("empty name", |r| r.name.clear()),
            ("principal without type", |r| r.principal = "alice".into()),
            ("principal without name", |r| r.principal = "User:".into()),
            ("empty host", |r| r.host.clear()),
        ];
        for (what, change) in cases {
            let mut r = raw();
            change(&mut r);
            assert!(AclBinding::parse(r).is_err(), "{what} accepted");
        }
    }
}
