//! Which ACLs a DescribeAcls or DeleteAcls filter selects: every field is
//! either a value or "any", and the pattern type may be MATCH, which selects
//! the ACLs that would apply to the named resource (its literal ACLs, the
//! `*` ACLs and the prefixed ACLs whose prefix it starts with).

use super::binding::{
    AclBinding, AclError, Operation, PatternType, Permission, ResourceType, WILDCARD,
};

/// How a filter matches the pattern type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type; a name must then equal the ACL's.
    Any,
    /// The ACLs that apply to the named resource.
    Match,
    /// Exactly this pattern type.
    Exact(PatternType),
}

/// A filter over ACLs; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// Resource type.
    pub resource_type: Option<ResourceType>,
    /// Resource name.
    pub name: Option<String>,
    /// Pattern type.
    pub pattern: PatternFilter,
    /// Principal.
    pub principal: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Operation.
    pub operation: Option<Operation>,
    /// Permission.
    pub permission: Option<Permission>,
}

/// The fields of a filter as DescribeAcls and DeleteAcls carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFilter {
    /// Resource type code (1 = any).
    pub resource_type: i8,
    /// Resource name, if filtered.
    pub name: Option<String>,
    /// Pattern type code (1 = any, 2 = match).
    pub pattern_type: i8,
    /// Principal, if filtered.
    pub principal: Option<String>,
    /// Host, if filtered.
    pub host: Option<String>,
    /// Operation code (1 = any).
    pub operation: i8,
    /// Permission code (1 = any).
    pub permission: i8,
}

const ANY: i8 = 1;
const MATCH: i8 = 2;

fn any_or<T>(
    code: i8,
    parse: fn(i8) -> Option<T>,
    field: &'static str,
) -> Result<Option<T>, AclError> {
    if code == ANY {
        return Ok(None);
    }
    parse(code).map(Some).ok_or(AclError::Code {
        field,
        code,
        expected: "ANY (1) or a known value",
    })
}

impl AclFilter {
    /// The filter a request carries, if every code in it is known.
    pub fn parse(raw: RawFilter) -> Result<AclFilter, AclError> {
        let pattern = match raw.pattern_type {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            code => PatternFilter::Exact(PatternType::from_code(code).ok_or(AclError::Code {
                field: "pattern type",
                code,
                expected: "ANY (1), MATCH (2), LITERAL (3) or PREFIXED (4)",
            })?),
        };
        Ok(AclFilter {
            resource_type: any_or(raw.resource_type, ResourceType::from_code, "resource type")?,
            name: raw.name,
            pattern,
            principal: raw.principal,
            host: raw.host,
            operation: any_or(raw.operation, Operation::from_code, "operation")?,
            permission: any_or(raw.permission, Permission::from_code, "permission type")?,
        })
    }

    /// Whether `acl` is selected.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.resource_type.is_none_or(|t| t == acl.resource_type)
            && self.matches_name(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }

    fn matches_name(&self, acl: &AclBinding) -> bool {
        match self.pattern {
            PatternFilter::Exact(p) if p != acl.pattern_type => return false,
            _ => {}
        }
        let Some(name) = &self.name else {
            return true;
        };
        match (self.pattern, acl.pattern_type) {
            (PatternFilter::Match, PatternType::Literal) => {
                *name == acl.name || acl.name == WILDCARD
            }
            (PatternFilter::Match, PatternType::Prefixed) => name.starts_with(&acl.name),
            _ => *name == acl.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(pattern_type: PatternType, name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            pattern_type,
            name: name.into(),
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    fn filter(pattern_type: i8, name: Option<&str>) -> AclFilter {
        AclFilter::parse(RawFilter {
            resource_type: 2,
            name: name.map(str::to_string),
            pattern_type,
            principal: None,
            host: None,
            operation: 1,
            permission: 1,
        })
        .expect("valid filter")
    }

    #[test]
    fn names_match_by_pattern_type() {
        use PatternType::*;
        // (filter pattern code, filter name, acl pattern, acl name, selected)
        let table = [
            (1, None, Literal, "orders", true),
            (1, Some("orders"), Literal, "orders", true),
            (1, Some("orders"), Prefixed, "orders", true),
            (1, Some("orders"), Prefixed, "ord", false),
            (3, Some("orders"), Prefixed, "orders", false),
            (4, Some("ord"), Prefixed, "ord", true),
            (2, Some("orders"), Literal, "orders", true),
            (2, Some("orders"), Literal, "*", true),
            (2, Some("orders"), Prefixed, "ord", true),
            (2, Some("orders"), Prefixed, "orders-eu", false),
            (2, Some("orders"), Literal, "ord", false),
            (2, None, Prefixed, "x", true),
        ];
        for (code, name, p, n, expected) in table {
            assert_eq!(
                filter(code, name).matches(&acl(p, n)),
                expected,
                "filter {code} {name:?} on {p} {n}"
            );
        }
    }

    #[test]
    fn entry_fields_filter_exactly() {
        let mut f = filter(1, None);
        f.principal = Some("User:bob".into());
        assert!(!f.matches(&acl(PatternType::Literal, "t")));
        f.principal = Some("User:alice".into());
        f.operation = Some(Operation::Write);
        assert!(!f.matches(&acl(PatternType::Literal, "t")));
        f.operation = Some(Operation::Read);
        assert!(f.matches(&acl(PatternType::Literal, "t")));
    }

    #[test]
    fn unknown_codes_are_refused() {
        let mut raw = RawFilter {
            resource_type: 0,
            name: None,
            pattern_type: 1,
            principal: None,
            host: None,
            operation: 1,
            permission: 1,
        };
        assert!(AclFilter::parse(raw.clone()).is_err());
        raw.resource_type = 1;
        raw.pattern_type = 0;
        assert!(AclFilter::parse(raw.clone()).is_err());
        raw.pattern_type = 1;
        raw.operation = 0;
        assert!(AclFilter::parse(raw).is_err());
    }
}
