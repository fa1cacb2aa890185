//! KIP-951: a Produce or Fetch refused because this broker does not lead
//! the partition (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH) names the
//! partition's current leader and epoch, and the answer carries that
//! leader's address on the request's listener. Kafka's clients (3.7 and
//! later) then send the retry straight there instead of first asking for
//! Metadata, which is most of what a failover costs them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::metadata::image::{ClusterImage, NO_LEADER};

/// The first Produce version with the leader hint (`CurrentLeader` and
/// `NodeEndpoints`).
pub const PRODUCE_SINCE: i16 = 10;
/// The first Fetch version with a partition's `CurrentLeader`.
pub const FETCH_LEADER_SINCE: i16 = 12;
/// The first Fetch version with `NodeEndpoints`.
pub const FETCH_ENDPOINTS_SINCE: i16 = 16;

/// A leader's address on one listener, as the answer lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// Whether a partition's error is one the hint comes with.
pub fn wanted(error_code: i16) -> bool {
    error_code == ResponseError::NotLeaderOrFollower.code()
        || error_code == ResponseError::FencedLeaderEpoch.code()
}

/// The current leaders of the refused partitions of one answer, and the
/// addresses of those that are live.
pub struct LeaderHints {
    image: Arc<ClusterImage>,
    listener: String,
    endpoints: BTreeMap<i32, Endpoint>,
}

impl LeaderHints {
    /// Hints from `image`, with addresses on `listener`.
    pub fn new(image: Arc<ClusterImage>, listener: &str) -> LeaderHints {
        LeaderHints {
            image,
            listener: listener.to_string(),
            endpoints: BTreeMap::new(),
        }
    }

    /// The name of the topic with id `id`, for fetches that name topics
    /// by id.
    pub fn topic_name(&self, id: uuid::Uuid) -> Option<String> {
        self.image.topic_name(id).map(str::to_string)
    }

    /// `(leader id, leader epoch)` of `topic`-`partition` as the metadata
    /// knows it, `(-1, -1)` when there is none (unknown partition, no
    /// leader, or a leader fenced or without this listener, which the
    /// client could not reach). The leader's address is kept for
    /// [`LeaderHints::endpoints`].
    pub fn leader(&mut self, topic: &str, partition: i32) -> (i32, i32) {
        match current_leader(&self.image, topic, partition, &self.listener) {
            Some((epoch, endpoint)) => {
                let leader = endpoint.node_id;
                self.endpoints.insert(leader, endpoint);
                (leader, epoch)
            }
            None => (NO_LEADER, -1),
        }
    }

    /// The addresses of the leaders named, once each.
    pub fn endpoints(self) -> impl Iterator<Item = Endpoint> {
        self.endpoints.into_values()
    }
}

/// The leader epoch of `topic`-`partition` and its live leader's address
/// on `listener`.
fn current_leader(
    image: &ClusterImage,
    topic: &str,
    partition: i32,
    listener: &str,
) -> Option<(i32, Endpoint)> {
    let p = image.partition(topic, partition)?;
    let broker = image.brokers.get(&p.leader).filter(|b| !b.fenced)?;
    let e = broker.endpoint(listener)?;
    Some((
        p.leader_epoch,
        Endpoint {
            node_id: broker.id,
            host: e.host.clone(),
            port: i32::from(e.port),
            rack: broker.rack.clone(),
        },
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metadata::image::{BrokerRegistration, PartitionImage, TopicImage};
    use crate::metadata::records::BrokerEndpoint;

    /// Broker `id`, at `host-<id>:<9000 + id>` on `listener`.
    pub(crate) fn broker(id: i32, listener: &str, fenced: bool) -> BrokerRegistration {
        BrokerRegistration {
            id,
            epoch: 1,
            incarnation: uuid::Uuid::nil(),
            storage: uuid::Uuid::nil(),
            endpoints: vec![BrokerEndpoint {
                listener: listener.into(),
                host: format!("host-{id}"),
                port: 9000 + id as u16,
            }],
            rack: None,
            fenced,
        }
    }

    /// Topic `t` whose partitions have these (leader, leader epoch).
    pub(crate) fn image(brokers: Vec<BrokerRegistration>, leaders: &[(i32, i32)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        for b in brokers {
            image.brokers.insert(b.id, b);
        }
        let partitions = leaders
            .iter()
            .map(|&(leader, leader_epoch)| PartitionImage {
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                leader,
                leader_epoch,
                partition_epoch: 0,
                adding: vec![],
                removing: vec![],
                last_left_isr: None,
            })
            .collect();
        image.topics.insert_mut(
            "t".to_string(),
            TopicImage {
                id: uuid::Uuid::nil(),
                configs: Default::default(),
                partitions,
            },
        );
        image
    }

    #[test]
    fn a_refused_partition_names_its_live_leader_on_the_requests_listener() {
        let image = Arc::new(image(
            vec![
                broker(1, "INTERNAL", false),
                broker(2, "CLIENTS", false),
                broker(3, "CLIENTS", true),
            ],
            // (partition leader, leader epoch)
            &[(2, 5), (3, 7), (NO_LEADER, 9), (1, 4)],
        ));
        let mut hints = LeaderHints::new(image, "CLIENTS");
        // (partition, what the answer says)
        let cases = [
            (0, (2, 5)),
            // Fenced: the client could not reach it.
            (1, (NO_LEADER, -1)),
            (2, (NO_LEADER, -1)),
            // Live, but not on the client's listener.
            (3, (NO_LEADER, -1)),
            // No such partition.
            (4, (NO_LEADER, -1)),
        ];
        for (partition, want) in cases {
            assert_eq!(hints.leader("t", partition), want, "partition {partition}");
        }
        assert_eq!(hints.leader("other", 0), (NO_LEADER, -1));
        let endpoints: Vec<Endpoint> = hints.endpoints().collect();
        assert_eq!(
            endpoints,
            vec![Endpoint {
                node_id: 2,
                host: "host-2".into(),
                port: 9002,
                rack: None,
            }]
        );
    }

    #[test]
    fn only_leadership_errors_carry_the_hint() {
        for (error, want) in [
            (ResponseError::NotLeaderOrFollower, true),
            (ResponseError::FencedLeaderEpoch, true),
            (ResponseError::UnknownTopicOrPartition, false),
            (ResponseError::NotEnoughReplicas, false),
        ] {
            assert_eq!(wanted(error.code()), want, "{error:?}");
        }
        assert!(!wanted(0));
    }
}
