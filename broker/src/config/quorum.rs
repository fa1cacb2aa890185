//! The metadata quorum's settings: `process.roles`,
//! `controller.listener.names` and `controller.quorum.voters`.

use std::collections::BTreeMap;

use super::properties::Property;
use super::{invalid, ConfigError, Listener};

/// Every node is a broker and a controller (Kafka's combined mode); the
/// setting is checked so a file written for dedicated roles fails clearly.
pub fn check_roles(p: &Property) -> Result<(), ConfigError> {
    let mut roles: Vec<&str> = p.value.split(',').map(str::trim).collect();
    roles.sort_unstable();
    if roles == ["broker", "controller"] {
        Ok(())
    } else {
        Err(invalid(
            p,
            "Gregor runs every node as broker and controller: use `broker,controller`".into(),
        ))
    }
}

/// The controller listener's name: from `controller.listener.names` (the
/// first name), or a listener called `CONTROLLER`, or none.
pub fn controller_listener(
    p: Option<Property>,
    listeners: &[Listener],
) -> Result<Option<String>, ConfigError> {
    match p {
        Some(p) => {
            let name = p.value.split(',').map(str::trim).next().unwrap_or_default();
            if listeners.iter().any(|l| l.name == name) {
                Ok(Some(name.to_string()))
            } else {
                Err(invalid(&p, format!("no listener is named `{name}`")))
            }
        }
        None => Ok(listeners
            .iter()
            .find(|l| l.name == "CONTROLLER")
            .map(|l| l.name.clone())),
    }
}

/// Parses `id@host:port,...`. Without the setting this node is the only
/// voter, reachable on its controller listener if it has one.
pub fn voters(
    p: Option<Property>,
    node_id: i32,
    controller_listener: Option<&str>,
    listeners: &[Listener],
) -> Result<BTreeMap<i32, String>, ConfigError> {
    let Some(p) = p else {
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
        let bad = |why: &str| invalid(&p, format!("`{entry}`: {why}"));
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
    if !out.contains_key(&node_id) {
        return Err(invalid(
            &p,
            format!("this node (node.id={node_id}) must be one of the voters"),
        ));
    }
    if out.len() > 1 && controller_listener.is_none() {
        return Err(ConfigError::Missing("controller.listener.names"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn voters_parse_and_must_include_this_node() {
        let ls = [listener("PLAINTEXT", 9092), listener("CONTROLLER", 9093)];
        let v = voters(
            Some(prop("1@a:9093,2@b:9093,3@c:9093")),
            2,
            Some("CONTROLLER"),
            &ls,
        )
        .expect("valid");
        assert_eq!(v.len(), 3);
        assert_eq!(v[&2], "b:9093");
        for bad in ["1@a:9093", "x@a:1", "2@a", "2@:1", "2@a:1,2@b:1"] {
            assert!(
                voters(Some(prop(bad)), 2, Some("CONTROLLER"), &ls).is_err(),
                "{bad}"
            );
        }
        assert!(voters(Some(prop("1@a:1,2@b:1")), 2, None, &ls).is_err());
    }

    #[test]
    fn a_lone_node_is_its_own_quorum() {
        let ls = [listener("PLAINTEXT", 9092)];
        assert_eq!(
            voters(None, 5, None, &ls).expect("ok"),
            BTreeMap::from([(5, String::new())])
        );
        let ls = [listener("PLAINTEXT", 9092), listener("CONTROLLER", 9093)];
        let name = controller_listener(None, &ls).expect("ok");
        assert_eq!(name.as_deref(), Some("CONTROLLER"));
        assert_eq!(
            voters(None, 5, name.as_deref(), &ls).expect("ok")[&5],
            "127.0.0.1:9093"
        );
    }

    #[test]
    fn roles_must_be_combined() {
        let p = |v: &str| Property {
            key: "process.roles".into(),
            value: v.into(),
            origin: "t".into(),
        };
        assert!(check_roles(&p("broker,controller")).is_ok());
        assert!(check_roles(&p("controller, broker")).is_ok());
        assert!(check_roles(&p("broker")).is_err());
    }
}
