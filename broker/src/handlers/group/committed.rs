//! OffsetCommit, OffsetFetch and OffsetDelete: a group's committed offsets.

use std::collections::BTreeSet;

use gregor_client::batch::Transactional;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::ResponseError;

use super::error_code;
use crate::group::commits::{CommitRequest, PartitionOffset, TopicCommitted};
use crate::group::membership::MemberIdentity;
use crate::group::offset_records::partition_for;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::group::Committed;
use crate::handlers::errors::group_error;
use crate::handlers::{authorize, text};
use crate::node::Node;
use crate::partition::producer_state::VerificationGuard;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::ProducerIdEpoch;
use crate::txn::verify::{verify, Ask};

const GROUP_DENIED: i16 = ResponseError::GroupAuthorizationFailed.code();
const TOPIC_DENIED: i16 = ResponseError::TopicAuthorizationFailed.code();

/// First OffsetFetch version with a top-level error; before it a group's
/// error is given on every partition asked for.
const TOP_LEVEL_ERROR_VERSION: i16 = 2;
/// First OffsetFetch version that asks for several groups (KIP-709).
const MULTI_GROUP_VERSION: i16 = 8;

/// Whether each topic may be committed for: READ on it, and on the group
/// (`group_allowed`).
fn readable<'a>(
    node: &Node,
    ctx: &RequestContext,
    group_allowed: bool,
    topics: impl Iterator<Item = &'a str>,
) -> Vec<bool> {
    topics
        .map(|t| {
            group_allowed && authorize::allowed(node, ctx, Operation::Read, ResourceType::Topic, t)
        })
        .collect()
}

/// One partition's commit as a request carries it.
fn offset_of(
    topic: &str,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&kafka_protocol::protocol::StrBytes>,
) -> PartitionOffset {
    PartitionOffset {
        topic: topic.to_string(),
        partition,
        committed: Committed {
            offset,
            leader_epoch,
            metadata: metadata.map(|m| m.to_string()).unwrap_or_default(),
        },
    }
}

/// Commits offsets; each partition answers once its offset is replicated.
/// Committing takes READ on the group and on each topic.
pub async fn offset_commit(
    node: &Node,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_allowed = authorize::allowed(
        node,
        ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    );
    let topic_allowed = readable(
        node,
        ctx,
        group_allowed,
        request.topics.iter().map(|t| t.name.as_str()),
    );
    let offsets = request
        .topics
        .iter()
        .zip(&topic_allowed)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(|p| {
                offset_of(
                    &t.name,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_ref(),
                )
            })
        })
        .collect();
    let commit = CommitRequest {
        group_id: request.group_id.to_string(),
        member: MemberIdentity {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: request.generation_id_or_member_epoch,
        },
        offsets,
    };
    // A refusal of the whole commit is every partition's answer.
    let count: usize = commit.offsets.len();
    let codes: Vec<i16> = if !group_allowed {
        Vec::new()
    } else {
        match node.groups.commit_offsets(commit).await {
            Ok(results) => results.into_iter().map(error_code).collect(),
            Err(e) => vec![group_error(&e).code(); count],
        }
    };
    let mut codes = codes.into_iter();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = request
        .topics
        .into_iter()
        .zip(topic_allowed)
        .map(|(t, ok)| {
            let mut out = OffsetCommitResponseTopic::default();
            out.name = t.name;
            out.topic_id = t.topic_id;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut rp = OffsetCommitResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = match (group_allowed, ok) {
                        (false, _) => GROUP_DENIED,
                        (true, false) => TOPIC_DENIED,
                        (true, true) => codes.next().unwrap_or_default(),
                    };
                    rp
                })
                .collect();
            out
        })
        .collect();
    resp
}

/// Answers TxnOffsetCommit: a transactional producer commits its
/// consumer's offsets as part of its transaction (`sendOffsetsToTransaction`).
/// It takes WRITE on the transactional id, READ on the group and on each
/// topic, as Kafka checks them.
pub async fn txn_offset_commit(
    node: &Node,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let txn_allowed = authorize::allowed(
        node,
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id,
    );
    let group_allowed = txn_allowed
        && authorize::allowed(
            node,
            ctx,
            Operation::Read,
            ResourceType::Group,
            &request.group_id,
        );
    let topic_allowed = readable(
        node,
        ctx,
        group_allowed,
        request.topics.iter().map(|t| t.name.as_str()),
    );
    let offsets = request
        .topics
        .iter()
        .zip(&topic_allowed)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(|p| {
                offset_of(
                    &t.name,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_ref(),
                )
            })
        })
        .collect();
    let commit = CommitRequest {
        group_id: request.group_id.to_string(),
        member: MemberIdentity {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: request.generation_id,
        },
        offsets,
    };
    let producer = Transactional {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
    };
    let count: usize = commit.offsets.len();
    let codes: Vec<i16> = if !group_allowed || count == 0 {
        Vec::new()
    } else {
        match verify_offsets_partition(node, ctx, &request, producer).await {
            Err(code) => vec![code; count],
            Ok(guard) => match node
                .groups
                .commit_transactional_offsets(commit, producer, guard)
                .await
            {
                Ok(results) => results.into_iter().map(error_code).collect(),
                Err(e) => vec![group_error(&e).code(); count],
            },
        }
    };
    let mut codes = codes.into_iter();
    let mut resp = TxnOffsetCommitResponse::default();
    resp.topics = request
        .topics
        .into_iter()
        .zip(topic_allowed)
        .map(|(t, ok)| {
            let mut out = TxnOffsetCommitResponseTopic::default();
            out.name = t.name;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut rp = TxnOffsetCommitResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = match (txn_allowed, group_allowed, ok) {
                        (false, _, _) => ResponseError::TransactionalIdAuthorizationFailed.code(),
                        (true, false, _) => GROUP_DENIED,
                        (true, true, false) => TOPIC_DENIED,
                        (true, true, true) => codes.next().unwrap_or_default(),
                    };
                    rp
                })
                .collect();
            out
        })
        .collect();
    resp
}

/// Before a TxnOffsetCommit writes, the transaction's coordinator must
/// have the group's offsets partition in the producer's transaction
/// (AddOffsetsToTxn), as Kafka verifies it (KIP-890 part 1), or add it
/// (from version 5, part 2): the guard
/// the commit's append brings (`None`: the transaction is already open
/// there), or the error code the commit gets. TxnOffsetCommit has no
/// PRODUCER_FENCED: a fenced producer gets INVALID_PRODUCER_EPOCH.
async fn verify_offsets_partition(
    node: &Node,
    ctx: &RequestContext,
    request: &TxnOffsetCommitRequest,
    producer: Transactional,
) -> Result<Option<VerificationGuard>, i16> {
    let image = node.image();
    let count = image
        .topics
        .get(OFFSETS_TOPIC)
        .map(|t| t.partitions.len() as i32)
        .ok_or(ResponseError::CoordinatorNotAvailable.code())?;
    let partition = (
        OFFSETS_TOPIC.to_string(),
        partition_for(&request.group_id, count),
    );
    let guard = node
        .groups
        .start_verification(&request.group_id, producer)
        .map_err(|e| group_error(&e).code())?;
    let Some(guard) = guard else {
        return Ok(None);
    };
    // Producers of transaction version 2 send no AddOffsetsToTxn: the
    // group coordinator adds the offsets partition for them.
    let ask = if ctx.api_version >= IMPLICIT_ADD_SINCE {
        Ask::Add
    } else {
        Ask::Verify
    };
    if ask == Ask::Verify && !node.verify_partitions() {
        return Ok(Some(guard));
    }
    let producer = ProducerIdEpoch {
        id: producer.producer_id,
        epoch: producer.producer_epoch,
    };
    let partitions = std::slice::from_ref(&partition);
    let verified = verify(node, &request.transactional_id, producer, partitions, ask).await;
    match verified {
        Ok(added) if added.first() == Some(&true) => Ok(Some(guard)),
        Ok(_) if ctx.api_version >= ABORTABLE_SINCE => {
            Err(ResponseError::TransactionAbortable.code())
        }
        Ok(_) => Err(ResponseError::InvalidTxnState.code()),
        Err(e) => Err(e.code(ctx.api_version, i16::MAX).code()),
    }
}

/// The first TxnOffsetCommit version with TRANSACTION_ABORTABLE (KIP-890).
const ABORTABLE_SINCE: i16 = 4;

/// The first TxnOffsetCommit version of transaction version 2.
const IMPLICIT_ADD_SINCE: i16 = 5;

/// The partitions asked for, by topic (`None`: all the group has).
type Wanted = Option<Vec<(String, Vec<i32>)>>;

/// One group's part of an OffsetFetch: what was asked, what was found (or
/// why not), and the topics the principal may not see.
#[derive(Debug)]
struct GroupFetch {
    group_id: GroupId,
    wanted: Wanted,
    found: Result<Vec<TopicCommitted>, ResponseError>,
    hidden: BTreeSet<String>,
}

/// Answers OffsetFetch: one group before v8, several from v8. A group takes
/// DESCRIBE on it; a topic named in the request that the principal may not
/// DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED, and one it did not name
/// is left out.
pub fn offset_fetch(
    node: &Node,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    // KIP-447: offsets a transaction not yet ended committed are refused
    // (UNSTABLE_OFFSET_COMMIT, retriable) instead of answered.
    let require_stable = request.require_stable;
    let asked: Vec<(GroupId, Wanted)> = if ctx.api_version >= MULTI_GROUP_VERSION {
        request
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                (g.group_id, wanted)
            })
            .collect()
    } else {
        let wanted = request.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        vec![(request.group_id, wanted)]
    };
    let fetched = asked
        .into_iter()
        .map(|(group_id, wanted)| {
            if !authorize::allowed(
                node,
                ctx,
                Operation::Describe,
                ResourceType::Group,
                &group_id,
            ) {
                return GroupFetch {
                    group_id,
                    wanted,
                    found: Err(ResponseError::GroupAuthorizationFailed),
                    hidden: BTreeSet::new(),
                };
            }
            let found = node
                .groups
                .fetch_offsets(&group_id, wanted.as_deref(), require_stable)
                .map_err(|e| group_error(&e));
            let hidden = match (&wanted, &found) {
                (Some(wanted), _) => wanted
                    .iter()
                    .map(|(topic, _)| topic)
                    .filter(|t| {
                        !authorize::allowed(node, ctx, Operation::Describe, ResourceType::Topic, t)
                    })
                    .cloned()
                    .collect(),
                (None, Ok(topics)) => topics
                    .iter()
                    .map(|t| &t.topic)
                    .filter(|t| {
                        !authorize::visible(node, ctx, Operation::Describe, ResourceType::Topic, t)
                    })
                    .cloned()
                    .collect(),
                (None, Err(_)) => BTreeSet::new(),
            };
            GroupFetch {
                group_id,
                wanted,
                found,
                hidden,
            }
        })
        .collect();
    offset_fetch_response(ctx.api_version, fetched)
}

/// One partition of an OffsetFetch answer, in either layout.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error: i16,
}

impl Row {
    fn found(partition: i32, committed: Option<Committed>) -> Row {
        let c = committed.unwrap_or(Committed {
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
        });
        Row {
            partition,
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata,
            error: 0,
        }
    }
}

/// A group's answer as rows: its error code and its partitions by topic.
/// Before v2 there is no group error field, so a refused group's error is
/// on every partition asked for.
fn rows(version: i16, fetch: GroupFetch) -> (i16, Vec<(String, Vec<Row>)>) {
    let named = fetch.wanted.is_some();
    match fetch.found {
        Ok(topics) => {
            let rows = topics
                .into_iter()
                .filter(|t| named || !fetch.hidden.contains(&t.topic))
                .map(|t| {
                    let denied = fetch.hidden.contains(&t.topic);
                    let rows = t
                        .partitions
                        .into_iter()
                        .map(|p| match denied {
                            true => Row {
                                error: TOPIC_DENIED,
                                ..Row::found(p.partition, None)
                            },
                            false if p.unstable => Row {
                                error: ResponseError::UnstableOffsetCommit.code(),
                                ..Row::found(p.partition, None)
                            },
                            false => Row::found(p.partition, p.committed),
                        })
                        .collect();
                    (t.topic, rows)
                })
                .collect();
            (0, rows)
        }
        Err(e) if version < TOP_LEVEL_ERROR_VERSION => {
            let code = e.code();
            let rows = fetch
                .wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partitions)| {
                    let rows = partitions
                        .into_iter()
                        .map(|p| Row {
                            error: code,
                            ..Row::found(p, None)
                        })
                        .collect();
                    (topic, rows)
                })
                .collect();
            (0, rows)
        }
        Err(e) => (e.code(), Vec::new()),
    }
}

/// The OffsetFetch response of every version, from each group's result:
/// the single group at the top level before v8, a list of groups from v8.
fn offset_fetch_response(version: i16, fetched: Vec<GroupFetch>) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    for fetch in fetched {
        let group_id = fetch.group_id.clone();
        let (error, topics) = rows(version, fetch);
        if version >= MULTI_GROUP_VERSION {
            let mut g = OffsetFetchResponseGroup::default();
            g.group_id = group_id;
            g.error_code = error;
            g.topics = topics
                .into_iter()
                .map(|(name, rows)| {
                    let mut t = OffsetFetchResponseTopics::default();
                    t.name = TopicName(text(name));
                    t.partitions = rows.into_iter().map(partitions_row).collect();
                    t
                })
                .collect();
            resp.groups.push(g);
        } else {
            resp.error_code = error;
            resp.topics = topics
                .into_iter()
                .map(|(name, rows)| {
                    let mut t = OffsetFetchResponseTopic::default();
                    t.name = TopicName(text(name));
                    t.partitions = rows.into_iter().map(partition_row).collect();
                    t
                })
                .collect();
        }
    }
    resp
}

/// A row in the single-group layout.
fn partition_row(row: Row) -> OffsetFetchResponsePartition {
    let mut p = OffsetFetchResponsePartition::default();
    p.partition_index = row.partition;
    p.committed_offset = row.offset;
    p.committed_leader_epoch = row.leader_epoch;
    p.metadata = Some(text(row.metadata));
    p.error_code = row.error;
    p
}

/// A row in the multi-group layout.
fn partitions_row(row: Row) -> OffsetFetchResponsePartitions {
    let mut p = OffsetFetchResponsePartitions::default();
    p.partition_index = row.partition;
    p.committed_offset = row.offset;
    p.committed_leader_epoch = row.leader_epoch;
    p.metadata = Some(text(row.metadata));
    p.error_code = row.error;
    p
}

/// Deletes a group's offsets of some partitions: DELETE on the group, READ
/// on each topic.
pub fn offset_delete(
    node: &Node,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let mut resp = OffsetDeleteResponse::default();
    if !authorize::allowed(
        node,
        ctx,
        Operation::Delete,
        ResourceType::Group,
        &request.group_id,
    ) {
        resp.error_code = GROUP_DENIED;
        return resp;
    }
    let topic_allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| authorize::allowed(node, ctx, Operation::Read, ResourceType::Topic, &t.name))
        .collect();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .zip(&topic_allowed)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let mut codes = match node.groups.delete_offsets(&request.group_id, &partitions) {
        Ok(results) => results.into_iter().map(error_code),
        Err(e) => {
            resp.error_code = group_error(&e).code();
            return resp;
        }
    };
    resp.topics = request
        .topics
        .into_iter()
        .zip(topic_allowed)
        .map(|(t, ok)| {
            let mut out = OffsetDeleteResponseTopic::default();
            out.name = t.name;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut rp = OffsetDeleteResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = if ok {
                        codes.next().unwrap_or_default()
                    } else {
                        TOPIC_DENIED
                    };
                    rp
                })
                .collect();
            out
        })
        .collect();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::commits::PartitionCommitted;
    use crate::group::GroupError;

    fn committed(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: 3,
            metadata: "m".into(),
        }
    }

    /// Group `g` asked for partitions 0 and 1 of `t`; offset 5 is
    /// committed for partition 0.
    fn fetched(group: &str, refused: Option<GroupError>) -> GroupFetch {
        let found = TopicCommitted {
            topic: "t".into(),
            partitions: vec![
                PartitionCommitted {
                    partition: 0,
                    committed: Some(committed(5)),
                    unstable: false,
                },
                PartitionCommitted {
                    partition: 1,
                    committed: None,
                    unstable: false,
                },
            ],
        };
        GroupFetch {
            group_id: GroupId(text(group)),
            wanted: Some(vec![("t".into(), vec![0, 1])]),
            found: refused.map_or(Ok(vec![found]), |e| Err(group_error(&e))),
            hidden: BTreeSet::new(),
        }
    }

    /// A response flattened: top-level error, then per group its id, error
    /// and (topic, partition, offset, error) rows.
    type Flat = (i16, Vec<(String, i16, Vec<(String, i32, i64, i16)>)>);

    fn flatten(r: &OffsetFetchResponse) -> Flat {
        let single = r.topics.iter().flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        });
        let mut groups: Vec<_> = r
            .groups
            .iter()
            .map(|g| {
                let rows = g.topics.iter().flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        )
                    })
                });
                (g.group_id.to_string(), g.error_code, rows.collect())
            })
            .collect();
        let single: Vec<_> = single.collect();
        if !single.is_empty() {
            groups.insert(0, (String::new(), 0, single));
        }
        (r.error_code, groups)
    }

    #[test]
    fn offset_fetch_layout_table() {
        let nc = ResponseError::NotCoordinator.code();
        let found = vec![("t".to_string(), 0, 5, 0), ("t".to_string(), 1, -1, 0)];
        let refused = vec![("t".to_string(), 0, -1, nc), ("t".to_string(), 1, -1, nc)];
        let single = |rows: &Vec<(String, i32, i64, i16)>| vec![(String::new(), 0, rows.clone())];
        let cases: Vec<(i16, Vec<GroupFetch>, Flat)> = vec![
            (1, vec![fetched("g", None)], (0, single(&found))),
            // No group error field before v2: it is on every partition.
            (
                1,
                vec![fetched("g", Some(GroupError::NotCoordinator))],
                (0, single(&refused)),
            ),
            (
                2,
                vec![fetched("g", Some(GroupError::NotCoordinator))],
                (nc, vec![]),
            ),
            (7, vec![fetched("g", None)], (0, single(&found))),
            (
                8,
                vec![
                    fetched("g", None),
                    fetched("h", Some(GroupError::NotCoordinator)),
                ],
                (
                    0,
                    vec![("g".into(), 0, found.clone()), ("h".into(), nc, vec![])],
                ),
            ),
        ];
        for (version, groups, want) in cases {
            let r = offset_fetch_response(version, groups);
            assert_eq!(flatten(&r), want, "v{version}");
        }
    }

    #[test]
    fn topics_the_principal_may_not_see_are_refused_when_named_and_hidden_otherwise() {
        let mut named = fetched("g", None);
        named.hidden.insert("t".into());
        let (_, topics) = rows(5, named);
        assert_eq!(topics.len(), 1);
        assert!(topics[0]
            .1
            .iter()
            .all(|r| r.error == TOPIC_DENIED && r.offset == -1));
        let mut all = fetched("g", None);
        all.wanted = None;
        all.hidden.insert("t".into());
        assert!(rows(5, all).1.is_empty());
    }

    #[test]
    fn offset_fetch_rows_carry_what_was_committed() {
        let (error, topics) = rows(5, fetched("g", None));
        assert_eq!(error, 0);
        let want = vec![
            Row {
                partition: 0,
                offset: 5,
                leader_epoch: 3,
                metadata: "m".into(),
                error: 0,
            },
            Row {
                partition: 1,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error: 0,
            },
        ];
        assert_eq!(topics, vec![("t".to_string(), want)]);
    }
}
