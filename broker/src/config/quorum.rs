//! The metadata quorum's settings: `process.roles`,
//! `controller.listener.names` and `controller.quorum.voters`.

use std::collections::BTreeMap;

use super::properties::Property;
use super::{invalid, ConfigError, Listener};

/// What a node does (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Serves clients and holds partitions.
    pub broker: bool,
    /// Votes in the metadata quorum.
    pub controller: bool,
}

/// Parses `process.roles` (its default is both, Kafka's combined mode).
pub fn roles(p: &Property) -> Result<Roles, ConfigError> {
    let mut roles = Roles {
        broker: false,
        controller: false,
    };
    for role in p.value.split(',').map(str::trim) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => {
                return Err(invalid(
                    p,
                    format!("unknown role `{other}`; use broker, controller or both"),
                ))
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid(p, "a node needs a role".into()));
    }
    Ok(roles)
}

/// The controller listener's name: from `controller.listener.names` (the
/// first name), or a listener called `CONTROLLER`, or none.
pub fn controller_listener(
    p: Option<&Property>,
    listeners: &[Listener],
) -> Result<Option<String>, ConfigError> {
    match p {
        Some(p) => {
            let name = p.value.split(',').map(str::trim).next().unwrap_or_default();
            if listeners.iter().any(|l| l.name == name) {
                Ok(Some(name.to_string()))
            } else {
                Err(invalid(p, format!("no listener is named `{name}`")))
            }
        }
        None => Ok(listeners
            .iter()
            .find(|l| l.name == "CONTROLLER")
            .map(|l| l.name.clone())),
    }
}

/// Parses `id@host:port,...`. Without the setting this node is the only
/// voter, reachable on its controller listener if it has one. A controller
/// must be a voter; a broker-only node must not be one, and needs a
/// controller listener to receive the metadata log on.
pub fn voters(
    p: Option<&Property>,
    node_id: i32,
    roles: Roles,
    controller_listener: Option<&str>,
    listeners: &[Listener],
) -> Result<BTreeMap<i32, String>, ConfigError> {
    let Some(p) = p else {
        if !roles.broker || !roles.controller {
            return Err(ConfigError::Missing("controller.quorum.voters"));
        }
        let addr = controller_listener
            .and_then(|name| listeners.iter().find(|l| l.name == name))
            .map(|l| {
                let host = match l.host.as_str() {
                    "" | "0.0.0.0" | "::" => "127.0.0.1",
                    h => h,
                };
                format!("{host}:{}", l.port)
            })
            .unwrap_or_default();
        return Ok(BTreeMap::from([(node_id, addr)]));
    };
    let mut out = BTreeMap::new();
    for entry in p.value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| invalid(p, format!("`{entry}`: {why}"));
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port"))?;
        let id: i32 = id.parse().map_err(|_| bad("the id is not a number"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected id@host:port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("expected id@host:port"));
        }
        if out.insert(id, addr.to_string()).is_some() {
            return Err(bad("this id appears twice"));
        }
    }
    match (roles.controller, out.contains_key(&node_id)) {
        (true, false) => {
            return Err(invalid(
                p,
                format!("this controller (node.id={node_id}) must be one of the voters"),
            ))
        }
        (false, true) => {
            return Err(invalid(
                p,
                format!("node.id={node_id} is a voter, so process.roles must include controller"),
            ))
        }
        _ => {}
    }
    if (out.len() > 1 || !roles.controller) && controller_listener.is_none() {
        return Err(ConfigError::Missing("controller.listener.names"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecurityProtocol;

    const BOTH: Roles = Roles {
        broker: true,
        controller: true,
    };

    fn prop(v: &str) -> Property {
        Property {
            key: "controller.quorum.voters".into(),
            value: v.into(),
            origin: "t".into(),
        }
    }

    fn listener(name: &str, port: u16) -> Listener {
        Listener {
            name: name.into(),
            host: String::new(),
            port,
            protocol: SecurityProtocol::Plaintext,
        }
    }

    #[test]
    fn voters_parse_and_must_include_this_node() {
        let ls = [listener("PLAINTEXT", 9092), listener("CONTROLLER", 9093)];
        let v = voters(
            Some(&prop("1@a:9093,2@b:9093,3@c:9093")),
            2,
            BOTH,
            Some("CONTROLLER"),
            &ls,
        )
        .expect("valid");
        assert_eq!(v.len(), 3);
        assert_eq!(v[&2], "b:9093");
        for bad in ["1@a:9093", "x@a:1", "2@a", "2@:1", "2@a:1,2@b:1"] {
            assert!(
                voters(Some(&prop(bad)), 2, BOTH, Some("CONTROLLER"), &ls).is_err(),
                "{bad}"
            );
        }
        assert!(voters(Some(&prop("1@a:1,2@b:1")), 2, BOTH, None, &ls).is_err());
        // A broker-only node is not a voter; a voter must be a controller.
        let broker = Roles {
            broker: true,
            controller: false,
        };
        assert!(voters(
            Some(&prop("1@a:1,3@c:1")),
            2,
            broker,
            Some("CONTROLLER"),
            &ls
        )
        .is_ok());
        assert!(voters(
            Some(&prop("1@a:1,2@b:1")),
            2,
            broker,
            Some("CONTROLLER"),
            &ls
        )
        .is_err());
        assert!(voters(None, 2, broker, Some("CONTROLLER"), &ls).is_err());
    }

    #[test]
    fn a_lone_node_is_its_own_quorum() {
        let ls = [listener("PLAINTEXT", 9092)];
        assert_eq!(
            voters(None, 5, BOTH, None, &ls).expect("ok"),
            BTreeMap::from([(5, String::new())])
        );
        let ls = [listener("PLAINTEXT", 9092), listener("CONTROLLER", 9093)];
        let name = controller_listener(None, &ls).expect("ok");
        assert_eq!(name.as_deref(), Some("CONTROLLER"));
        assert_eq!(
            voters(None, 5, BOTH, name.as_deref(), &ls).expect("ok")[&5],
            "127.0.0.1:9093"
        );
    }

    #[test]
    fn roles_parse() {
        let p = |v: &str| Property {
            key: "process.roles".into(),
            value: v.into(),
            origin: "t".into(),
        };
        assert_eq!(roles(&p("controller, broker")).expect("ok"), BOTH);
        assert!(roles(&p("broker")).expect("ok").broker);
        assert!(!roles(&p("controller")).expect("ok").broker);
        assert!(roles(&p("observer")).is_err());
        assert!(roles(&p("")).is_err());
    }
}
