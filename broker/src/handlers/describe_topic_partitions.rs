//! DescribeTopicPartitions (KIP-966): where each partition of the named
//! topics (or of all topics) lives, in topic-name order and in pages. An
//! answer holds at most `response_partition_limit` partitions (and no more
//! than `max.request.partition.size.limit`) and a cursor where the next
//! page starts; Kafka 4's admin client (`kafka-topics --describe`) asks
//! this before Metadata and follows the cursor. Gregor keeps no eligible
//! leader replicas beyond the one that left the ISR last, so both ELR
//! lists are empty, as on a Kafka cluster without ELR.

use std::ops::Range;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{authorize, text};
use crate::metadata::image::{ClusterImage, PartitionImage, NO_LEADER};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::topic::name;

/// Kafka's marker for "authorized operations not computed".
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// Answers DescribeTopicPartitions as Kafka does. Named topics the
/// principal may not DESCRIBE are answered TOPIC_AUTHORIZATION_FAILED
/// (after the others, whether or not they exist); an "all topics" answer
/// leaves them out. A cursor outside the named topics, or at a negative
/// partition, makes the whole request INVALID_REQUEST.
pub fn describe_topic_partitions(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = node.image();
    let all = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.as_str(), c.partition_index));
    let from = cursor.map_or("", |(topic, _)| topic);
    // Sorted and without duplicates, from the cursor's topic on.
    let mut names: Vec<&str> = if all {
        image
            .topics
            .keys()
            .map(String::as_str)
            .filter(|n| *n >= from)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| *n >= from)
            .collect()
    };
    names.sort_unstable();
    names.dedup();
    let start = match cursor {
        Some((topic, _)) if !all && !names.contains(&topic) => None,
        Some((_, partition)) => usize::try_from(partition).ok(),
        None => Some(0),
    };
    let Some(start) = start else {
        return refused(&request, ResponseError::InvalidRequest);
    };

    let mut refused_topics = Vec::new();
    let mut topics = Vec::new();
    for n in names {
        let may = if all {
            authorize::visible(node, ctx, Operation::Describe, ResourceType::Topic, n)
        } else {
            authorize::allowed(node, ctx, Operation::Describe, ResourceType::Topic, n)
        };
        if may {
            topics.push((n, image.topics.get(n).map(|t| t.partitions.len())));
        } else if !all {
            refused_topics.push(topic_error(
                n,
                ResponseError::TopicAuthorizationFailed,
                false,
            ));
        }
    }
    let first = match cursor {
        Some((topic, _)) if topics.first().is_some_and(|(n, _)| *n == topic) => start,
        _ => 0,
    };
    let limit = request
        .response_partition_limit
        .min(node.config.max_request_partition_size_limit)
        .max(1) as usize;
    let page = page(&topics, first, limit, all);

    let mut resp = DescribeTopicPartitionsResponse::default();
    for (i, range) in page.topics {
        let n = topics[i].0;
        let mut t = match range {
            Some(range) => describe(&image, &ctx.listener, n, range),
            None if name::validate(n).is_err() => {
                topic_error(n, ResponseError::InvalidTopicException, is_internal(n))
            }
            None => topic_error(n, ResponseError::UnknownTopicOrPartition, is_internal(n)),
        };
        t.topic_authorized_operations = authorize::operations(node, ctx, ResourceType::Topic, n);
        resp.topics.push(t);
    }
    resp.topics.extend(refused_topics);
    resp.next_cursor = page.next.map(|(i, partition)| {
        let mut c = Cursor::default();
        c.topic_name = TopicName(text(topics[i].0));
        c.partition_index = i32::try_from(partition).unwrap_or(i32::MAX);
        c
    });
    resp
}

/// Kafka's internal topics (its `Topic.isInternal`).
fn is_internal(name: &str) -> bool {
    [
        crate::group::offsets::OFFSETS_TOPIC,
        crate::txn::log::TRANSACTION_TOPIC,
        "__share_group_state",
    ]
    .contains(&name)
}

/// The answer to a request refused whole: each named topic with `error`.
fn refused(
    request: &DescribeTopicPartitionsRequest,
    error: ResponseError,
) -> DescribeTopicPartitionsResponse {
    let mut resp = DescribeTopicPartitionsResponse::default();
    resp.topics = request
        .topics
        .iter()
        .map(|t| topic_error(t.name.as_str(), error, false))
        .collect();
    resp
}

fn topic_error(
    name: &str,
    error: ResponseError,
    internal: bool,
) -> DescribeTopicPartitionsResponseTopic {
    let mut t = DescribeTopicPartitionsResponseTopic::default();
    t.error_code = error.code();
    t.name = Some(TopicName(text(name)));
    t.topic_id = Uuid::nil();
    t.is_internal = internal;
    t.topic_authorized_operations = OPERATIONS_OMITTED;
    t
}

/// One topic's partitions `range`, as seen from `listener`: a leader not
/// reachable there is no leader, and replicas on brokers that are fenced,
/// unregistered or not on that listener are offline.
fn describe(
    image: &ClusterImage,
    listener: &str,
    name: &str,
    range: Range<usize>,
) -> DescribeTopicPartitionsResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let reachable = |id: &i32| {
        image
            .brokers
            .get(id)
            .is_some_and(|b| b.endpoint(listener).is_some())
    };
    let mut t = DescribeTopicPartitionsResponseTopic::default();
    t.name = Some(TopicName(text(name)));
    t.is_internal = is_internal(name);
    let Some(topic) = image.topics.get(name) else {
        return t;
    };
    t.topic_id = topic.id;
    t.partitions = range
        .filter_map(|i| Some((i, topic.partitions.get(i)?)))
        .map(|(i, p): (usize, &PartitionImage)| {
            let mut m = DescribeTopicPartitionsResponsePartition::default();
            m.partition_index = i32::try_from(i).unwrap_or(i32::MAX);
            m.leader_id = BrokerId(if reachable(&p.leader) {
                p.leader
            } else {
                NO_LEADER
            });
            m.leader_epoch = p.leader_epoch;
            m.replica_nodes = ids(&p.replicas);
            m.isr_nodes = ids(&p.isr);
            m.eligible_leader_replicas = Some(Vec::new());
            m.last_known_elr = Some(Vec::new());
            m.offline_replicas = p
                .replicas
                .iter()
                .filter(|r| !reachable(r) || image.brokers.get(r).is_none_or(|b| b.fenced))
                .map(|r| BrokerId(*r))
                .collect();
            m
        })
        .collect();
    t
}

/// Which topics and partitions one answer holds.
#[derive(Debug, PartialEq, Eq)]
struct Page {
    /// Topics answered (by index), each with the partitions it describes,
    /// or `None` for a topic that does not exist.
    topics: Vec<(usize, Option<Range<usize>>)>,
    /// Where the next answer starts (topic index, partition), if anywhere.
    next: Option<(usize, usize)>,
}

/// Pages `topics` (name order, with their partition counts, `None` for a
/// topic that does not exist) from partition `first` of the first topic,
/// at most `limit` partitions, as Kafka's broker does: a topic that does
/// not fit whole ends the page with a cursor inside it; a page that is
/// full exactly ends with a cursor at the start of the next topic; a topic
/// that does not exist is answered (unless `all`: listing every topic, it
/// has just been deleted) and costs nothing.
fn page(topics: &[(&str, Option<usize>)], first: usize, limit: usize, all: bool) -> Page {
    let mut out = Page {
        topics: Vec::new(),
        next: None,
    };
    let mut remaining = limit;
    for (i, (_, count)) in topics.iter().enumerate() {
        if remaining == 0 {
            out.next = Some((i, 0));
            break;
        }
        let start = if i == 0 { first } else { 0 };
        let Some(count) = *count else {
            if !all {
                out.topics.push((i, None));
            }
            continue;
        };
        let end = count.min(start.saturating_add(remaining));
        out.topics.push((i, Some(start..end.max(start))));
        if end < count {
            out.next = Some((i, end));
            break;
        }
        remaining -= end.saturating_sub(start);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Topics with their partition counts (`None`: no such topic).
    type Topics = Vec<(&'static str, Option<usize>)>;

    #[test]
    fn pages_follow_kafkas_broker() {
        let (a, b, gone, c) = (
            ("a", Some(3)),
            ("b", Some(2)),
            ("gone", None),
            ("c", Some(1)),
        );
        let cases: Vec<(&str, Topics, usize, usize, bool, Page)> = vec![
            (
                "everything fits",
                vec![a, b, c],
                0,
                10,
                false,
                Page {
                    topics: vec![(0, Some(0..3)), (1, Some(0..2)), (2, Some(0..1))],
                    next: None,
                },
            ),
            (
                "a topic split by the limit",
                vec![a, b],
                0,
                4,
                false,
                Page {
                    topics: vec![(0, Some(0..3)), (1, Some(0..1))],
                    next: Some((1, 1)),
                },
            ),
            (
                "full exactly: the cursor is the next topic's start",
                vec![a, b, c],
                0,
                5,
                false,
                Page {
                    topics: vec![(0, Some(0..3)), (1, Some(0..2))],
                    next: Some((2, 0)),
                },
            ),
            (
                "from a cursor inside the first topic",
                vec![a, b],
                2,
                2,
                false,
                Page {
                    topics: vec![(0, Some(2..3)), (1, Some(0..1))],
                    next: Some((1, 1)),
                },
            ),
            (
                "a cursor past the first topic's end",
                vec![a, b],
                7,
                2,
                false,
                Page {
                    topics: vec![(0, Some(7..7)), (1, Some(0..2))],
                    next: None,
                },
            ),
            (
                "a missing topic named costs nothing",
                vec![a, gone, c],
                0,
                4,
                false,
                Page {
                    topics: vec![(0, Some(0..3)), (1, None), (2, Some(0..1))],
                    next: None,
                },
            ),
            (
                "a missing topic of a listing is left out",
                vec![a, gone, c],
                0,
                4,
                true,
                Page {
                    topics: vec![(0, Some(0..3)), (2, Some(0..1))],
                    next: None,
                },
            ),
            (
                "a missing topic after a full page is not answered",
                vec![a, gone],
                0,
                3,
                false,
                Page {
                    topics: vec![(0, Some(0..3))],
                    next: Some((1, 0)),
                },
            ),
            (
                "one partition at a time",
                vec![a],
                1,
                1,
                false,
                Page {
                    topics: vec![(0, Some(1..2))],
                    next: Some((0, 2)),
                },
            ),
            (
                "no topics",
                vec![],
                0,
                5,
                true,
                Page {
                    topics: vec![],
                    next: None,
                },
            ),
        ];
        for (case, topics, first, limit, all, want) in cases {
            assert_eq!(page(&topics, first, limit, all), want, "{case}");
        }
    }

    #[test]
    fn kafkas_internal_topics_are_internal() {
        for (name, internal) in [
            ("__consumer_offsets", true),
            ("__transaction_state", true),
            ("__share_group_state", true),
            ("__other", false),
            ("orders", false),
        ] {
            assert_eq!(is_internal(name), internal, "{name}");
        }
    }
}
