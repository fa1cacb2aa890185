//! Named listeners: `listeners`, `advertised.listeners` and
//! `listener.security.protocol.map`.

use std::collections::BTreeMap;

use super::properties::Property;
use super::{invalid, ConfigError};

/// A host and port clients are told to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// A socket the broker binds, under a listener name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, e.g. `INTERNAL`.
    pub name: String,
    /// Address to bind; empty means every interface.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// How its connections are protected (`listener.security.protocol.map`).
    pub protocol: SecurityProtocol,
}

/// A listener's security protocol, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Neither encrypted nor authenticated.
    Plaintext,
    /// TLS; clients may authenticate with a certificate.
    Ssl,
    /// Clients authenticate with SASL; not encrypted.
    SaslPlaintext,
    /// TLS, and clients authenticate with SASL.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections start with a TLS handshake.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Parses `NAME:PROTOCOL,...`.
pub fn parse_protocol_map(p: &Property) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for entry in p.value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, protocol)) = entry.split_once(':') else {
            return Err(invalid(p, format!("`{entry}` is not NAME:PROTOCOL")));
        };
        map.insert(name.trim().to_string(), protocol.trim().to_string());
    }
    Ok(map)
}

/// Splits `NAME://host:port` into its parts; `[v6]` hosts keep no brackets.
fn parse_one(p: &Property, entry: &str) -> Result<(String, String, u16), ConfigError> {
    let bad = |why: &str| invalid(p, format!("`{entry}`: {why}"));
    let (name, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad("expected NAME://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected NAME://host:port"))?;
    let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return Err(bad("listener name is empty"));
    }
    Ok((name.to_string(), host.to_string(), port))
}

/// Parses `http.listener`: `[host]:port`, an empty host meaning every
/// interface.
pub fn parse_http(p: &Property) -> Result<Listener, ConfigError> {
    let bad = || invalid(p, "expected [host]:port, e.g. :9644".into());
    let (host, port) = p.value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(Listener {
        name: "HTTP".into(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        protocol: SecurityProtocol::Plaintext,
    })
}

/// Parses `listeners`; every name must be in the protocol map, with a
/// protocol Gregor serves.
pub fn parse_listeners(
    p: &Property,
    protocol_map: &BTreeMap<String, String>,
) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for entry in p.value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, host, port) = parse_one(p, entry)?;
        let protocol = match protocol_map.get(&name).map(String::as_str) {
            Some("PLAINTEXT") => SecurityProtocol::Plaintext,
            Some("SSL") => SecurityProtocol::Ssl,
            Some("SASL_PLAINTEXT") => SecurityProtocol::SaslPlaintext,
            Some("SASL_SSL") => SecurityProtocol::SaslSsl,
            Some(other) => {
                return Err(invalid(
                    p,
                    format!("listener {name} uses {other}; the protocols are PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL"),
                ))
            }
            None => {
                return Err(invalid(
                    p,
                    format!("listener {name} is not in listener.security.protocol.map"),
                ))
            }
        };
        if out.iter().any(|l| l.name == name) {
            return Err(invalid(p, format!("listener {name} appears twice")));
        }
        out.push(Listener {
            name,
            host,
            port,
            protocol,
        });
    }
    if out.is_empty() {
        return Err(invalid(p, "no listeners".into()));
    }
    Ok(out)
}

/// Parses `advertised.listeners`; each name must be a bound listener.
/// Listeners it leaves out advertise their bound address.
pub fn parse_advertised(
    p: &Property,
    listeners: &[Listener],
) -> Result<BTreeMap<String, Endpoint>, ConfigError> {
    let mut out = advertise_bound(listeners);
    for entry in p.value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, host, port) = parse_one(p, entry)?;
        if !listeners.iter().any(|l| l.name == name) {
            return Err(invalid(p, format!("{name} is not in `listeners`")));
        }
        if host.is_empty() || host == "0.0.0.0" || host == "::" {
            return Err(invalid(
                p,
                format!("{name} must advertise a reachable host"),
            ));
        }
        out.insert(name, Endpoint { host, port });
    }
    Ok(out)
}

/// Advertises each listener's bound address, or this machine's host name
/// when it binds every interface (what Kafka does).
pub fn advertise_bound(listeners: &[Listener]) -> BTreeMap<String, Endpoint> {
    listeners
        .iter()
        .map(|l| {
            let host = match l.host.as_str() {
                "" | "0.0.0.0" | "::" => local_host_name(),
                h => h.to_string(),
            };
            (l.name.clone(), Endpoint { host, port: l.port })
        })
        .collect()
}

fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(v: &str) -> Property {
        Property {
            key: "k".into(),
            value: v.into(),
            origin: "t".into(),
        }
    }

    /// The map in force when `listener.security.protocol.map` is not given.
    fn default_protocol_map() -> BTreeMap<String, String> {
        let declared = crate::config::table::BROKER
            .iter()
            .find(|s| s.key == "listener.security.protocol.map")
            .and_then(|s| s.default)
            .expect("declared with a default");
        parse_protocol_map(&prop(declared)).expect("the default parses")
    }

    #[test]
    fn two_named_listeners_with_their_own_advertised_addresses() {
        let map = parse_protocol_map(&prop("INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT")).expect("map");
        let ls = parse_listeners(&prop("INTERNAL://0.0.0.0:29092,EXTERNAL://:9092"), &map)
            .expect("listeners");
        assert_eq!(ls[0].port, 29092);
        assert_eq!(ls[1].host, "");
        let adv = parse_advertised(
            &prop("INTERNAL://kafka-1:29092,EXTERNAL://localhost:9092"),
            &ls,
        )
        .expect("advertised");
        assert_eq!(adv["INTERNAL"].host, "kafka-1");
        assert_eq!(adv["EXTERNAL"].port, 9092);
    }

    #[test]
    fn rejects_what_cannot_work() {
        let map = default_protocol_map();
        for bad in [
            "PLAINTEXT:9092",
            "NOPE://:1",
            "PLAINTEXT://:x",
            "PLAINTEXT://:1,PLAINTEXT://:2",
        ] {
            assert!(parse_listeners(&prop(bad), &map).is_err(), "{bad}");
        }
        let ls = parse_listeners(
            &prop("PLAINTEXT://:9092,SSL://:9093,SASL_PLAINTEXT://:9094,SASL_SSL://:9095"),
            &map,
        )
        .expect("ok");
        assert_eq!(
            ls.iter().map(|l| l.protocol).collect::<Vec<_>>(),
            [
                SecurityProtocol::Plaintext,
                SecurityProtocol::Ssl,
                SecurityProtocol::SaslPlaintext,
                SecurityProtocol::SaslSsl
            ]
        );
        assert!(parse_advertised(&prop("OTHER://h:1"), &ls).is_err());
        assert!(parse_advertised(&prop("PLAINTEXT://0.0.0.0:1"), &ls).is_err());
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        let ls =
            parse_listeners(&prop("PLAINTEXT://[::1]:9092"), &default_protocol_map()).expect("ok");
        assert_eq!(ls[0].host, "::1");
    }

    #[test]
    fn http_listener_is_host_and_port() {
        let cases = [
            (":9644", Some(("", 9644))),
            ("127.0.0.1:8080", Some(("127.0.0.1", 8080))),
            ("[::]:9644", Some(("::", 9644))),
            ("9644", None),
            (":http", None),
            (":70000", None),
        ];
        for (value, want) in cases {
            let got = parse_http(&prop(value)).ok();
            let got = got.as_ref().map(|l| (l.host.as_str(), l.port));
            assert_eq!(got, want, "{value}");
        }
    }
}
