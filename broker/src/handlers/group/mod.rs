//! The group APIs: each Kafka request translated to a call of the group
//! coordinator (`crate::group`) and its answer back into the response of
//! the request's version.

pub mod admin;
pub mod committed;
pub mod consumer_heartbeat;
pub mod find_coordinator;
pub mod membership;

use std::collections::{BTreeMap, BTreeSet};

use crate::group::assignor::TopicPartition;
use crate::group::GroupError;
use crate::handlers::errors::group_error;

/// The error code of one result (0: none).
fn error_code(result: Result<(), GroupError>) -> i16 {
    result.err().map_or(0, |e| group_error(&e).code())
}

/// Partitions grouped by topic, each list sorted.
fn by_topic(set: &BTreeSet<TopicPartition>) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, p) in set {
        out.entry(topic.clone()).or_default().push(*p);
    }
    out
}
