//! Kafka's StandardAuthorizer decision, as plain functions over the ACLs in
//! force: super users may do anything; otherwise a matching DENY wins over
//! any ALLOW; an ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE
//! and an ALLOW of ALTER_CONFIGS also allows DESCRIBE_CONFIGS (a DENY
//! implies nothing); with no match, a resource that has no ACLs at all
//! follows `allow.everyone.if.no.acl.found` and any other is denied.

use std::collections::BTreeSet;
use std::fmt;

use super::binding::{
    AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD, WILDCARD_PRINCIPAL,
};
use super::set::AclSet;

/// The authorizer's settings (`super.users`, `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    /// Principals allowed everything, as `Type:name`.
    pub super_users: BTreeSet<String>,
    /// What a resource without any ACL allows.
    pub allow_if_no_acl: bool,
}

/// Who asks: the principal and the client's IP address.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `Type:name`.
    pub principal: &'a str,
    /// The client's IP address as text.
    pub host: &'a str,
}

/// What decided, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The principal is a super user.
    SuperUser,
    /// This ACL matched.
    Acl(AclBinding),
    /// The resource has no ACL at all.
    NoAcls,
    /// The resource has ACLs, none of which matched.
    NoMatch,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::SuperUser => f.write_str("super user"),
            Rule::Acl(acl) => write!(f, "ACL {acl}"),
            Rule::NoAcls => {
                f.write_str("the resource has no ACL, so allow.everyone.if.no.acl.found decides")
            }
            Rule::NoMatch => f.write_str("no matching ALLOW ACL"),
        }
    }
}

/// An authorization decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the operation may proceed.
    pub allowed: bool,
    /// What decided.
    pub rule: Rule,
}

/// The result of one ACL for an operation: `None` when it does not apply.
fn verdict(acl: &AclBinding, who: Subject<'_>, operation: Operation) -> Option<bool> {
    if acl.principal != who.principal && acl.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if acl.host != WILDCARD && acl.host != who.host {
        return None;
    }
    let applies = acl.operation == Operation::All
        || acl.operation == operation
        || (acl.permission == Permission::Allow && implies(acl.operation, operation));
    applies.then_some(acl.permission == Permission::Allow)
}

/// Whether an ALLOW of `granted` also allows `wanted`.
fn implies(granted: Operation, wanted: Operation) -> bool {
    use Operation::*;
    match wanted {
        Describe => matches!(granted, Read | Write | Delete | Alter),
        DescribeConfigs => granted == AlterConfigs,
        _ => false,
    }
}

impl Authorizer {
    /// Whether `who` may do `operation` on the resource `name` of this type.
    pub fn decide(
        &self,
        acls: &AclSet,
        who: Subject<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        if self.super_users.contains(who.principal) {
            return Decision {
                allowed: true,
                rule: Rule::SuperUser,
            };
        }
        let mut any = false;
        let mut allow = None;
        for acl in acls.applying_to(resource_type, name) {
            any = true;
            match verdict(acl, who, operation) {
                Some(false) => {
                    return Decision {
                        allowed: false,
                        rule: Rule::Acl(acl.clone()),
                    }
                }
                Some(true) if allow.is_none() => allow = Some(acl),
                _ => {}
            }
        }
        match (allow, any) {
            (Some(acl), _) => Decision {
                allowed: true,
                rule: Rule::Acl(acl.clone()),
            },
            (None, false) => Decision {
                allowed: self.allow_if_no_acl,
                rule: Rule::NoAcls,
            },
            (None, true) => Decision {
                allowed: false,
                rule: Rule::NoMatch,
            },
        }
    }

    /// The operations `who` may do on the resource, as the bit field an
    /// `authorized_operations` response field carries (bit n for the
    /// operation numbered n).
    pub fn authorized_operations(
        &self,
        acls: &AclSet,
        who: Subject<'_>,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .operations()
            .iter()
            .filter(|op| self.decide(acls, who, **op, resource_type, name).allowed)
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Whether `who` may do `operation` on at least one resource of this
    /// type (Kafka's `authorizeByResourceType`, KIP-679: an idempotent
    /// producer needs WRITE on some topic). Some ALLOW ACL of the
    /// principal for the operation must not be overruled by a DENY: a DENY
    /// on `*`, on the same literal name, or on a prefix of the name.
    pub fn allowed_on_any(
        &self,
        acls: &AclSet,
        who: Subject<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.super_users.contains(who.principal) {
            return true;
        }
        let applicable: Vec<&AclBinding> = acls
            .iter()
            .filter(|acl| {
                acl.resource_type == resource_type
                    && (acl.operation == operation || acl.operation == Operation::All)
                    && (acl.principal == who.principal || acl.principal == WILDCARD_PRINCIPAL)
                    && (acl.host == who.host || acl.host == WILDCARD)
            })
            .collect();
        let denies: Vec<&&AclBinding> = applicable
            .iter()
            .filter(|a| a.permission == Permission::Deny)
            .collect();
        if denies
            .iter()
            .any(|d| d.pattern_type == PatternType::Literal && d.name == WILDCARD)
        {
            return false;
        }
        let overruled = |allow: &AclBinding| {
            denies.iter().any(|d| match d.pattern_type {
                PatternType::Prefixed => allow.name.starts_with(&d.name),
                PatternType::Literal => {
                    allow.pattern_type == PatternType::Literal && d.name == allow.name
                }
            })
        };
        applicable
            .iter()
            .filter(|a| a.permission == Permission::Allow)
            .any(|a| !overruled(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    fn acl(
        pattern_type: PatternType,
        name: &str,
        principal: &str,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: Topic,
            pattern_type,
            name: name.into(),
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }

    const ALICE: Subject<'static> = Subject {
        principal: "User:alice",
        host: "10.0.0.1",
    };

    fn decide(acls: &[AclBinding], operation: Operation, name: &str) -> bool {
        let set: AclSet = acls.iter().cloned().collect();
        Authorizer::default()
            .decide(&set, ALICE, operation, Topic, name)
            .allowed
    }

    #[test]
    fn the_standard_authorizer_rules() {
        let a = "User:alice";
        // (acls, operation, topic, allowed)
        let table: Vec<(&str, Vec<AclBinding>, Operation, &str, bool)> = vec![
            ("no acls, default deny", vec![], Read, "t", false),
            (
                "literal allow",
                vec![acl(Literal, "t", a, "*", Read, Allow)],
                Read,
                "t",
                true,
            ),
            (
                "other topic",
                vec![acl(Literal, "u", a, "*", Read, Allow)],
                Read,
                "t",
                false,
            ),
            (
                "other operation",
                vec![acl(Literal, "t", a, "*", Write, Allow)],
                Read,
                "t",
                false,
            ),
            (
                "all allows read",
                vec![acl(Literal, "t", a, "*", All, Allow)],
                Read,
                "t",
                true,
            ),
            (
                "wildcard name",
                vec![acl(Literal, "*", a, "*", Read, Allow)],
                Read,
                "t",
                true,
            ),
            (
                "prefix",
                vec![acl(Prefixed, "orders-", a, "*", Read, Allow)],
                Read,
                "orders-eu",
                true,
            ),
            (
                "prefix not matching",
                vec![acl(Prefixed, "orders-", a, "*", Read, Allow)],
                Read,
                "orders",
                false,
            ),
            (
                "literal is not a prefix",
                vec![acl(Literal, "ord", a, "*", Read, Allow)],
                Read,
                "orders",
                false,
            ),
            (
                "wildcard principal",
                vec![acl(Literal, "t", "User:*", "*", Read, Allow)],
                Read,
                "t",
                true,
            ),
            (
                "other principal",
                vec![acl(Literal, "t", "User:bob", "*", Read, Allow)],
                Read,
                "t",
                false,
            ),
            (
                "host matches",
                vec![acl(Literal, "t", a, "10.0.0.1", Read, Allow)],
                Read,
                "t",
                true,
            ),
            (
                "host differs",
                vec![acl(Literal, "t", a, "10.0.0.2", Read, Allow)],
                Read,
                "t",
                false,
            ),
            (
                "read implies describe",
                vec![acl(Literal, "t", a, "*", Read, Allow)],
                Describe,
                "t",
                true,
            ),
            (
                "write implies describe",
                vec![acl(Literal, "t", a, "*", Write, Allow)],
                Describe,
                "t",
                true,
            ),
            (
                "create does not imply describe",
                vec![acl(Literal, "t", a, "*", Create, Allow)],
                Describe,
                "t",
                false,
            ),
            (
                "alter configs implies describe configs",
                vec![acl(Literal, "t", a, "*", AlterConfigs, Allow)],
                DescribeConfigs,
                "t",
                true,
            ),
            (
                "deny beats allow",
                vec![
                    acl(Literal, "t", a, "*", Read, Allow),
                    acl(Prefixed, "t", a, "*", Read, Deny),
                ],
                Read,
                "t",
                false,
            ),
            (
                "deny on wildcard name",
                vec![
                    acl(Literal, "t", a, "*", All, Allow),
                    acl(Literal, "*", "User:*", "*", Write, Deny),
                ],
                Write,
                "t",
                false,
            ),
            (
                "deny of read does not deny describe",
                vec![
                    acl(Literal, "t", a, "*", Write, Allow),
                    acl(Literal, "t", a, "*", Read, Deny),
                ],
                Describe,
                "t",
                true,
            ),
            (
                "deny all denies describe",
                vec![
                    acl(Literal, "t", a, "*", Read, Allow),
                    acl(Literal, "t", a, "*", All, Deny),
                ],
                Describe,
                "t",
                false,
            ),
            (
                "deny for another host does not apply",
                vec![
                    acl(Literal, "t", a, "*", Read, Allow),
                    acl(Literal, "t", a, "10.9.9.9", Read, Deny),
                ],
                Read,
                "t",
                true,
            ),
        ];
        for (what, acls, op, name, expected) in table {
            assert_eq!(decide(&acls, op, name), expected, "{what}");
        }
    }

    #[test]
    fn no_acl_rule_applies_only_to_resources_without_acls() {
        let open = Authorizer {
            allow_if_no_acl: true,
            ..Authorizer::default()
        };
        let set: AclSet = [acl(Literal, "t", "User:bob", "*", Read, Allow)]
            .into_iter()
            .collect();
        assert!(!open.decide(&set, ALICE, Read, Topic, "t").allowed);
        let free = open.decide(&set, ALICE, Read, Topic, "u");
        assert!(free.allowed);
        assert_eq!(free.rule, Rule::NoAcls);
    }

    #[test]
    fn super_users_may_do_anything() {
        let auth = Authorizer {
            super_users: ["User:alice".to_string()].into(),
            allow_if_no_acl: false,
        };
        let set: AclSet = [acl(Literal, "t", "User:alice", "*", All, Deny)]
            .into_iter()
            .collect();
        assert_eq!(
            auth.decide(&set, ALICE, Write, Topic, "t").rule,
            Rule::SuperUser
        );
    }

    #[test]
    fn authorized_operations_sets_one_bit_per_allowed_operation() {
        let set: AclSet = [acl(Literal, "t", "User:alice", "*", Read, Allow)]
            .into_iter()
            .collect();
        let bits = Authorizer::default().authorized_operations(&set, ALICE, Topic, "t");
        assert_eq!(bits, (1 << Read.code()) | (1 << Describe.code()));
    }

    #[test]
    fn allowed_on_any_resource_of_a_type() {
        let a = "User:alice";
        let table: Vec<(&str, Vec<AclBinding>, bool)> = vec![
            ("nothing", vec![], false),
            (
                "one literal",
                vec![acl(Literal, "t", a, "*", Write, Allow)],
                true,
            ),
            ("all", vec![acl(Prefixed, "x", a, "*", All, Allow)], true),
            (
                "read only",
                vec![acl(Literal, "t", a, "*", Read, Allow)],
                false,
            ),
            (
                "denied by the same literal",
                vec![
                    acl(Literal, "t", a, "*", Write, Allow),
                    acl(Literal, "t", a, "*", Write, Deny),
                ],
                false,
            ),
            (
                "denied by a prefix",
                vec![
                    acl(Literal, "orders", a, "*", Write, Allow),
                    acl(Prefixed, "ord", a, "*", Write, Deny),
                ],
                false,
            ),
            (
                "a literal deny does not overrule a prefix allow",
                vec![
                    acl(Prefixed, "ord", a, "*", Write, Allow),
                    acl(Literal, "ord", a, "*", Write, Deny),
                ],
                true,
            ),
            (
                "denied everywhere",
                vec![
                    acl(Literal, "t", a, "*", Write, Allow),
                    acl(Literal, "*", "User:*", "*", Write, Deny),
                ],
                false,
            ),
            (
                "someone else's",
                vec![acl(Literal, "t", "User:bob", "*", Write, Allow)],
                false,
            ),
        ];
        for (what, acls, expected) in table {
            let set: AclSet = acls.into_iter().collect();
            assert_eq!(
                Authorizer::default().allowed_on_any(&set, ALICE, Write, Topic),
                expected,
                "{what}"
            );
        }
    }
}
