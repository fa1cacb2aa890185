//! Whether requests are checked against ACLs (`authorizer.class.name`),
//! and the exceptions (`super.users`, `allow.everyone.if.no.acl.found`).
//! A Kafka config file names the authorizer by its Java class; Gregor
//! accepts the name of Kafka's StandardAuthorizer, whose rules it follows,
//! so the same file turns authorization on for both.

use super::values::Values;
use super::{declared, invalid, ConfigError};
use crate::security::acl::binding::check_principal;
use crate::security::acl::Authorizer;

/// The class name of Kafka's KRaft authorizer.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The ZooKeeper-era authorizer, gone from Kafka 4.
const ZOOKEEPER_AUTHORIZER: &str = "kafka.security.authorizer.AclAuthorizer";

/// The authorizer the settings ask for; `None` when requests are not
/// authorized.
pub fn from_values(v: &Values) -> Result<Option<Authorizer>, ConfigError> {
    let class = declared(v, "authorizer.class.name")?;
    match class.value.trim() {
        "" => return Ok(None),
        STANDARD_AUTHORIZER => {}
        ZOOKEEPER_AUTHORIZER => {
            return Err(invalid(
                &class,
                format!("AclAuthorizer kept its ACLs in ZooKeeper and is gone from Kafka 4; set {STANDARD_AUTHORIZER}, which keeps them in the metadata quorum"),
            ))
        }
        _ => {
            return Err(invalid(
                &class,
                format!("Gregor loads no Java classes; its authorizer follows Kafka's StandardAuthorizer: set {STANDARD_AUTHORIZER}, or leave the setting empty for no authorization"),
            ))
        }
    }
    let users = declared(v, "super.users")?;
    let mut super_users = std::collections::BTreeSet::new();
    for user in users
        .value
        .split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        check_principal(user).map_err(|e| invalid(&users, e.to_string()))?;
        super_users.insert(user.to_string());
    }
    Ok(Some(Authorizer {
        super_users,
        allow_if_no_acl: v.get("allow.everyone.if.no.acl.found")?,
    }))
}
