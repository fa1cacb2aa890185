//! DescribeGroups, ListGroups, DeleteGroups and ConsumerGroupDescribe:
//! groups as administrators see them.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup as DescribedConsumerGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse, TopicName,
};

use super::{by_topic, error_code};
use crate::group::admin::ListFilter;
use crate::group::assignor::TopicPartition;
use crate::handlers::errors::group_error;
use crate::handlers::{authorize, text};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::topic::TopicRegistry;

/// Authorized operations when the client did not ask for them.
const NOT_ASKED: i32 = i32::MIN;

const GROUP_DENIED: i16 = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();

/// Whether the request may describe the group.
fn may_describe(node: &Node, ctx: &RequestContext, group: &str) -> bool {
    authorize::allowed(node, ctx, Operation::Describe, ResourceType::Group, group)
}

/// Describes classic groups (DESCRIBE on each); an unknown group is `Dead`.
pub fn describe_groups(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut resp = DescribeGroupsResponse::default();
    let with_operations = request.include_authorized_operations;
    resp.groups = request
        .groups
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup::default();
            d.authorized_operations = NOT_ASKED;
            if !may_describe(node, ctx, &id) {
                d.error_code = GROUP_DENIED;
                d.group_id = id;
                return d;
            }
            if with_operations {
                d.authorized_operations =
                    authorize::operations(node, ctx, ResourceType::Group, &id);
            }
            match node.groups.describe_group(&id) {
                Err(e) => d.error_code = group_error(&e).code(),
                Ok(g) => {
                    d.group_state = text(g.state);
                    d.protocol_type = text(g.protocol_type);
                    d.protocol_data = text(g.protocol);
                    d.members = g
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut dm = DescribedGroupMember::default();
                            dm.member_id = text(m.member_id);
                            dm.group_instance_id = m.instance_id.map(text);
                            dm.client_id = text(m.client_id);
                            // As Java prints an address.
                            dm.client_host = text(format!("/{}", m.client_host));
                            dm.member_metadata = m.metadata;
                            dm.member_assignment = m.assignment;
                            dm
                        })
                        .collect();
                }
            }
            d.group_id = id;
            d
        })
        .collect();
    resp
}

/// Lists the groups of both protocols, with the state (v4) and type (v5)
/// filters: all of them with DESCRIBE on the cluster, else those the
/// principal may describe.
pub fn list_groups(
    node: &Node,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let filter = ListFilter {
        states: request
            .states_filter
            .iter()
            .map(|s| s.to_string())
            .collect(),
        types: request.types_filter.iter().map(|s| s.to_string()).collect(),
    };
    let mut resp = ListGroupsResponse::default();
    match node.groups.list_groups(&filter) {
        Err(e) => resp.error_code = group_error(&e).code(),
        Ok(groups) => {
            let everything = authorize::on_cluster_quietly(node, ctx, Operation::Describe);
            resp.groups = groups
                .into_iter()
                .filter(|g| {
                    everything
                        || authorize::visible(
                            node,
                            ctx,
                            Operation::Describe,
                            ResourceType::Group,
                            &g.group_id,
                        )
                })
                .map(|g| {
                    let mut l = ListedGroup::default();
                    l.group_id = GroupId(text(g.group_id));
                    l.protocol_type = text(g.protocol_type);
                    l.group_state = text(g.state);
                    l.group_type = text(g.group_type.name());
                    l
                })
                .collect();
        }
    }
    resp
}

/// Deletes groups without members, with their offsets (DELETE on each).
pub fn delete_groups(
    node: &Node,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    resp.results = request
        .groups_names
        .into_iter()
        .map(|id| {
            let mut r = DeletableGroupResult::default();
            r.error_code =
                if authorize::allowed(node, ctx, Operation::Delete, ResourceType::Group, &id) {
                    error_code(node.groups.delete_group(&id))
                } else {
                    GROUP_DENIED
                };
            r.group_id = id;
            r
        })
        .collect();
    resp
}

/// Describes consumer-protocol groups. A classic group, or one known only
/// by its offsets, is GROUP_ID_NOT_FOUND here, which sends admin clients
/// to DescribeGroups.
pub fn consumer_group_describe(
    node: &Node,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let topics = &node.topics;
    let mut resp = ConsumerGroupDescribeResponse::default();
    let with_operations = request.include_authorized_operations;
    resp.groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let mut d = DescribedConsumerGroup::default();
            d.authorized_operations = NOT_ASKED;
            if !may_describe(node, ctx, &id) {
                d.error_code = GROUP_DENIED;
                d.error_message = Some(text("not authorized to describe this group"));
                d.group_id = id;
                return d;
            }
            if with_operations {
                d.authorized_operations =
                    authorize::operations(node, ctx, ResourceType::Group, &id);
            }
            match node.groups.describe_consumer_group(&id) {
                Err(e) => {
                    d.error_code = group_error(&e).code();
                    d.error_message = Some(text(e.to_string()));
                }
                Ok(g) => {
                    d.group_state = text(g.state);
                    d.group_epoch = g.epoch;
                    d.assignment_epoch = g.assignment_epoch;
                    d.assignor_name = text(g.assignor);
                    d.members = g
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut dm = Member::default();
                            dm.member_id = text(m.member_id);
                            dm.instance_id = m.instance_id.map(text);
                            dm.member_epoch = m.epoch;
                            dm.client_id = text(m.client_id);
                            dm.client_host = text(format!("/{}", m.client_host));
                            dm.subscribed_topic_names = m
                                .subscriptions
                                .into_iter()
                                .map(|t| TopicName(text(t)))
                                .collect();
                            dm.assignment = described(topics, &m.assigned);
                            dm.target_assignment = described(topics, &m.target);
                            dm
                        })
                        .collect();
                }
            }
            d.group_id = id;
            d
        })
        .collect();
    resp
}

/// An assignment by topic, each topic named and identified.
fn described(topics: &TopicRegistry, set: &BTreeSet<TopicPartition>) -> Assignment {
    let mut a = Assignment::default();
    a.topic_partitions = by_topic(set)
        .into_iter()
        .map(|(name, partitions)| {
            let mut tp = TopicPartitions::default();
            tp.topic_id = topics.get(&name).map(|t| t.id).unwrap_or_default();
            tp.topic_name = TopicName(text(name));
            tp.partitions = partitions;
            tp
        })
        .collect();
    a
}
