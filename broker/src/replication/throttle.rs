//! Which replication traffic is throttled, as Kafka's replication quotas
//! (KIP-73) decide it. A topic lists throttled replicas for each side of
//! replication, `leader.replication.throttled.replicas` and
//! `follower.replication.throttled.replicas`, as `partition:broker` pairs
//! or `*` for every replica of the topic; each broker has a rate per side,
//! `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` (its own dynamic setting, else
//! the cluster-wide default, else unthrottled).
//!
//! A broker looks for its own id in those lists: on the leader list it
//! throttles what it sends as the partition's leader, on the follower list
//! what it fetches as a follower (`kafka-reassign-partitions --throttle`
//! lists a moving partition's current replicas as leaders and its new ones
//! as followers). The bytes of a listed partition always count against
//! the side's rate, but only a replica that is not in sync is held back
//! when the rate is over its quota: in-sync replicas never wait, so a
//! throttle does not slow `acks=all` producers or shrink the ISR.
//!
//! This module is the pure part: parsing the lists, reading the metadata
//! into one broker's view, and the decision. `quota` measures the rates.

use std::collections::{BTreeSet, HashMap};

use crate::config::dynamic::{self, BrokerConfigs};
use crate::metadata::image::ClusterImage;

/// The topic setting listing the replicas whose leader is throttled.
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic setting listing the follower replicas that are throttled.
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
/// The broker setting bounding what a leader sends of throttled
/// partitions, in bytes per second.
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// The broker setting bounding what a follower fetches of throttled
/// partitions, in bytes per second.
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";

/// A side of replication: the leader sending, or a follower fetching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The partition's leader, answering its followers' fetches.
    Leader,
    /// A follower, fetching from its leader.
    Follower,
}

impl Side {
    /// The topic setting listing this side's throttled replicas.
    pub fn replicas_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_REPLICAS,
            Side::Follower => FOLLOWER_REPLICAS,
        }
    }

    /// The broker setting bounding this side's rate.
    pub fn rate_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_RATE,
            Side::Follower => FOLLOWER_RATE,
        }
    }

    /// Its name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Side::Leader => "leader",
            Side::Follower => "follower",
        }
    }
}

/// A malformed list of throttled replicas; INVALID_CONFIG for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not a replica: expected `*`, or partition:broker pairs separated by commas (`0:1,1:2`)")]
pub struct ReplicaListError {
    /// The entry refused.
    pub entry: String,
}

/// A topic's list of throttled replicas, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottledReplicas {
    /// `*`: every replica of the topic.
    All,
    /// These `(partition, broker)` pairs (none: nothing is throttled).
    Listed(BTreeSet<(i32, i32)>),
}

impl Default for ThrottledReplicas {
    fn default() -> Self {
        ThrottledReplicas::Listed(BTreeSet::new())
    }
}

impl ThrottledReplicas {
    /// Reads a list as Kafka validates it: the comma-separated items,
    /// trimmed, are each empty or `digits:digits`, or together they are
    /// exactly `*`. A pair whose numbers do not fit a partition or broker
    /// id is accepted (Kafka's check is on the digits) but names no replica.
    pub fn parse(value: &str) -> Result<ThrottledReplicas, ReplicaListError> {
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        if items.concat() == "*" {
            return Ok(ThrottledReplicas::All);
        }
        let mut pairs = BTreeSet::new();
        for item in items.into_iter().filter(|i| !i.is_empty()) {
            let refused = || ReplicaListError {
                entry: item.to_string(),
            };
            let (partition, broker) = item.split_once(':').ok_or_else(refused)?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(partition) || !digits(broker) {
                return Err(refused());
            }
            if let (Ok(p), Ok(b)) = (partition.parse::<i32>(), broker.parse::<i32>()) {
                pairs.insert((p, b));
            }
        }
        Ok(ThrottledReplicas::Listed(pairs))
    }

    /// Whether the replica of `partition` on `broker` is listed.
    pub fn names(&self, partition: i32, broker: i32) -> bool {
        match self {
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(pairs) => pairs.contains(&(partition, broker)),
        }
    }

    /// Whether it lists nothing.
    pub fn is_empty(&self) -> bool {
        matches!(self, ThrottledReplicas::Listed(pairs) if pairs.is_empty())
    }
}

/// Whether a listed partition's data waits for a later fetch: only when
/// its replica on the other side is not in sync and the side's rate is
/// over its quota (Kafka's `shouldLeaderThrottle` and
/// `shouldFollowerThrottle`; throttling an in-sync replica could push it
/// out of the ISR).
pub fn holds_back(listed: bool, in_sync: bool, over_quota: bool) -> bool {
    listed && !in_sync && over_quota
}

/// One broker's throttles as the metadata has them: its two rates and,
/// per topic, the lists that may name its replicas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throttles {
    me: i32,
    leader_rate: Option<f64>,
    follower_rate: Option<f64>,
    leader: HashMap<String, ThrottledReplicas>,
    follower: HashMap<String, ThrottledReplicas>,
}

impl Throttles {
    /// Broker `me`'s throttles in `image`. A stored list that no longer
    /// parses (they are checked on the way in) throttles nothing.
    pub fn from_image(image: &ClusterImage, me: i32) -> Throttles {
        let lists = |side: Side| -> HashMap<String, ThrottledReplicas> {
            image
                .topics
                .iter()
                .filter_map(|(name, t)| {
                    let list =
                        ThrottledReplicas::parse(t.configs.get(side.replicas_key())?).ok()?;
                    (!list.is_empty()).then(|| (name.clone(), list))
                })
                .collect()
        };
        Throttles {
            me,
            leader_rate: rate(&image.broker_configs, me, Side::Leader),
            follower_rate: rate(&image.broker_configs, me, Side::Follower),
            leader: lists(Side::Leader),
            follower: lists(Side::Follower),
        }
    }

    /// Whether this broker's replica of the partition is listed on `side`.
    pub fn listed(&self, side: Side, topic: &str, partition: i32) -> bool {
        let lists = match side {
            Side::Leader => &self.leader,
            Side::Follower => &self.follower,
        };
        lists
            .get(topic)
            .is_some_and(|l| l.names(partition, self.me))
    }

    /// The side's quota in bytes per second; `None`: unthrottled.
    pub fn rate(&self, side: Side) -> Option<f64> {
        match side {
            Side::Leader => self.leader_rate,
            Side::Follower => self.follower_rate,
        }
    }

    /// Whether no partition is listed on `side` for this broker.
    pub fn none_listed(&self, side: Side) -> bool {
        match side {
            Side::Leader => self.leader.is_empty(),
            Side::Follower => self.follower.is_empty(),
        }
    }
}

/// Broker `me`'s rate for `side`: its own dynamic setting, else the
/// cluster-wide default; `None` when neither is set. A value that does not
/// parse (they are checked on the way in) leaves the side unthrottled.
fn rate(configs: &BrokerConfigs, me: i32, side: Side) -> Option<f64> {
    let value = dynamic::value(configs, me, side.rate_key())?;
    value.trim().parse::<i64>().ok().map(|n| n as f64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::image::{PartitionImage, TopicImage};

    fn listed(pairs: &[(i32, i32)]) -> ThrottledReplicas {
        ThrottledReplicas::Listed(pairs.iter().copied().collect())
    }

    #[test]
    fn lists_are_parsed_and_checked_as_kafka_does() {
        let ok = |pairs: &[(i32, i32)]| Ok(listed(pairs));
        let refused = |entry: &str| {
            Err(ReplicaListError {
                entry: entry.to_string(),
            })
        };
        let cases = [
            ("", ok(&[])),
            ("  ", ok(&[])),
            ("0:1", ok(&[(0, 1)])),
            ("0:1,1:2", ok(&[(0, 1), (1, 2)])),
            (" 0:1 , 1:2 ", ok(&[(0, 1), (1, 2)])),
            ("0:1,", ok(&[(0, 1)])),
            ("0:1,0:1", ok(&[(0, 1)])),
            ("*", Ok(ThrottledReplicas::All)),
            (" * ", Ok(ThrottledReplicas::All)),
            // Kafka joins the items: a trailing empty one leaves `*`.
            ("*,", Ok(ThrottledReplicas::All)),
            ("*,*", refused("*")),
            ("0:1,*", refused("*")),
            ("0:x", refused("0:x")),
            ("0:", refused("0:")),
            (":1", refused(":1")),
            ("0", refused("0")),
            ("0:1:2", refused("0:1:2")),
            ("0 : 1", refused("0 : 1")),
            ("-1:2", refused("-1:2")),
            ("+1:2", refused("+1:2")),
            ("0:1;1:2", refused("0:1;1:2")),
            // The digits are right; the number names no partition.
            ("99999999999:1,2:3", ok(&[(2, 3)])),
        ];
        for (value, want) in cases {
            assert_eq!(ThrottledReplicas::parse(value), want, "{value:?}");
        }
    }

    #[test]
    fn a_list_names_its_replicas_or_every_one() {
        let cases = [
            (listed(&[(0, 1), (1, 2)]), 0, 1, true),
            (listed(&[(0, 1), (1, 2)]), 1, 2, true),
            (listed(&[(0, 1), (1, 2)]), 0, 2, false),
            (listed(&[(0, 1), (1, 2)]), 1, 1, false),
            (listed(&[]), 0, 1, false),
            (ThrottledReplicas::All, 7, 3, true),
        ];
        for (list, partition, broker, want) in cases {
            assert_eq!(
                list.names(partition, broker),
                want,
                "{list:?} {partition}:{broker}"
            );
        }
    }

    #[test]
    fn only_a_listed_replica_out_of_sync_over_quota_is_held_back() {
        let cases = [
            // (listed, in sync, over quota, held back)
            (true, false, true, true),
            (true, true, true, false),
            (true, false, false, false),
            (false, false, true, false),
            (false, true, false, false),
            (true, true, false, false),
        ];
        for (listed, in_sync, over, want) in cases {
            assert_eq!(
                holds_back(listed, in_sync, over),
                want,
                "listed {listed}, in sync {in_sync}, over quota {over}"
            );
        }
    }

    fn topic(configs: &[(&str, &str)]) -> TopicImage {
        TopicImage {
            id: uuid::Uuid::new_v4(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partitions: [PartitionImage {
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: vec![],
                removing: vec![],
                last_left_isr: None,
            }]
            .into_iter()
            .collect(),
        }
    }

    fn image() -> ClusterImage {
        let mut image = ClusterImage::default();
        // What kafka-reassign-partitions --throttle sets to move partition 0
        // from brokers 1,2 to 2,3.
        image.topics.insert_mut(
            "moving".into(),
            topic(&[(LEADER_REPLICAS, "0:1,0:2"), (FOLLOWER_REPLICAS, "0:3")]),
        );
        image
            .topics
            .insert_mut("everything".into(), topic(&[(LEADER_REPLICAS, "*")]));
        image.topics.insert_mut("plain".into(), topic(&[]));
        let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let configs = std::sync::Arc::make_mut(&mut image.broker_configs);
        configs.insert(
            String::new(),
            set(&[(LEADER_RATE, "1000"), (FOLLOWER_RATE, "2000")]),
        );
        configs.insert("3".into(), set(&[(FOLLOWER_RATE, "500")]));
        image
    }

    #[test]
    fn each_broker_finds_its_own_replicas_and_rates() {
        let image = image();
        let cases = [
            // (broker, side, topic, partition, listed)
            (1, Side::Leader, "moving", 0, true),
            (2, Side::Leader, "moving", 0, true),
            (3, Side::Leader, "moving", 0, false),
            (3, Side::Follower, "moving", 0, true),
            (2, Side::Follower, "moving", 0, false),
            (1, Side::Leader, "moving", 1, false),
            (3, Side::Leader, "everything", 0, true),
            (3, Side::Follower, "everything", 0, false),
            (1, Side::Leader, "plain", 0, false),
            (1, Side::Leader, "unknown", 0, false),
        ];
        for (me, side, t, partition, want) in cases {
            let throttles = Throttles::from_image(&image, me);
            assert_eq!(
                throttles.listed(side, t, partition),
                want,
                "broker {me} {side:?} {t}-{partition}"
            );
        }
        // A broker's own rate overrides the cluster-wide default.
        let rates = |me| {
            let t = Throttles::from_image(&image, me);
            (t.rate(Side::Leader), t.rate(Side::Follower))
        };
        assert_eq!(rates(1), (Some(1000.0), Some(2000.0)));
        assert_eq!(rates(3), (Some(1000.0), Some(500.0)));
        let unset = Throttles::from_image(&ClusterImage::default(), 1);
        assert_eq!(unset.rate(Side::Leader), None);
        assert!(unset.none_listed(Side::Leader) && unset.none_listed(Side::Follower));
    }
}
