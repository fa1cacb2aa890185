//! `gregor dev`: a local three-broker cluster in one command, shaped like
//! the usual three-broker Kafka example. Broker `n` (1, 2, 3) listens on
//! `INTERNAL` 2909(n+1) (used between brokers), `EXTERNAL` 909(n+1) (for
//! clients) and `CONTROLLER` 1909(n+1) (the metadata quorum); its files are
//! under `<data>/broker-<n>`. This module writes each broker's
//! `server.properties`; `main` runs the processes.

use std::path::Path;

/// How many brokers `gregor dev` starts.
pub const BROKERS: i32 = 3;

/// The three listener ports of broker `n`: internal, external, controller.
pub fn ports(n: i32) -> (u16, u16, u16) {
    let k = (n - 1) as u16;
    (29092 + k, 9092 + k, 19092 + k)
}

/// `server.properties` of broker `n` with its data under `dir`.
pub fn server_properties(n: i32, dir: &Path) -> String {
    let (internal, external, controller) = ports(n);
    let voters: Vec<String> = (1..=BROKERS)
        .map(|m| format!("{m}@127.0.0.1:{}", ports(m).2))
        .collect();
    format!(
        "# Written by `gregor dev`; edits are overwritten at the next start.\n\
         node.id={n}\n\
         process.roles=broker,controller\n\
         listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://0.0.0.0:{external},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://localhost:{external}\n\
         listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=INTERNAL\n\
         controller.listener.names=CONTROLLER\n\
         controller.quorum.voters={voters}\n\
         log.dirs={data}\n\
         num.partitions=3\n\
         default.replication.factor=3\n\
         min.insync.replicas=2\n\
         offsets.topic.replication.factor=3\n",
        voters = voters.join(","),
        data = dir.join("data").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{properties, BrokerConfig};

    #[test]
    fn every_dev_broker_has_a_valid_config_of_its_own() {
        let root = Path::new("/tmp/gregor-dev-test");
        let mut ports_seen = std::collections::BTreeSet::new();
        for n in 1..=BROKERS {
            let text = server_properties(n, &root.join(format!("broker-{n}")));
            let c = BrokerConfig::from_properties(properties::parse(&text, "dev"))
                .expect("valid config");
            assert_eq!(c.node_id, n);
            assert_eq!(c.voters.len(), 3);
            assert_eq!(c.inter_broker_listener, "INTERNAL");
            assert_eq!(
                c.advertised_endpoint("EXTERNAL").map(|e| e.port),
                Some(ports(n).1)
            );
            assert!(c.advertised_endpoint("CONTROLLER").is_none());
            for l in &c.listeners {
                assert!(ports_seen.insert(l.port), "port {} used twice", l.port);
            }
        }
    }
}
