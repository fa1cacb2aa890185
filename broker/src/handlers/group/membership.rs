//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the classic group
//! protocol's membership requests.

use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};

use super::error_code;
use crate::group::membership::{
    JoinOutcome, JoinRequest, LeavingMember, MemberIdentity, SyncRequest,
};
use crate::handlers::errors::group_error;
use crate::handlers::{authorize, text};
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Whether the request may take part in the group (READ on it).
fn member_allowed(node: &Node, ctx: &RequestContext, group: &str) -> bool {
    authorize::allowed(node, ctx, Operation::Read, ResourceType::Group, group)
}

const GROUP_DENIED: i16 = kafka_protocol::ResponseError::GroupAuthorizationFailed.code();

/// First JoinGroup version with a rebalance timeout of its own.
const REBALANCE_TIMEOUT_VERSION: i16 = 1;
/// First JoinGroup version whose new members must come back with the id
/// they are given (KIP-394).
const KNOWN_MEMBER_ID_VERSION: i16 = 4;
/// First JoinGroup version that can tell a leader to keep the assignment
/// (KIP-814).
const SKIP_ASSIGNMENT_VERSION: i16 = 9;
/// First LeaveGroup version that names its members (KIP-345).
const BATCH_LEAVE_VERSION: i16 = 3;

/// Joins a member; answers once the rebalance completes.
pub async fn join_group(
    node: &Node,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = ctx.api_version;
    if !member_allowed(node, ctx, &request.group_id) {
        let mut r = JoinGroupResponse::default();
        r.error_code = GROUP_DENIED;
        r.generation_id = -1;
        r.protocol_name = Some(text(""));
        r.member_id = request.member_id;
        return r;
    }
    let session_timeout = millis(request.session_timeout_ms);
    let join = JoinRequest {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        session_timeout,
        rebalance_timeout: if version >= REBALANCE_TIMEOUT_VERSION {
            millis(request.rebalance_timeout_ms)
        } else {
            session_timeout
        },
        require_known_member_id: version >= KNOWN_MEMBER_ID_VERSION,
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
    };
    join_response(version, node.groups.join_group(join).await)
}

fn join_response(version: i16, outcome: JoinOutcome) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    match outcome {
        Ok(joined) => {
            r.generation_id = joined.generation;
            r.protocol_type = joined.protocol_type.map(text);
            r.protocol_name = Some(text(joined.protocol.unwrap_or_default()));
            r.leader = text(joined.leader);
            r.member_id = text(joined.member_id);
            r.skip_assignment = joined.skip_assignment && version >= SKIP_ASSIGNMENT_VERSION;
            r.members = joined
                .members
                .into_iter()
                .map(|m| {
                    let mut out = JoinGroupResponseMember::default();
                    out.member_id = text(m.member_id);
                    out.group_instance_id = m.instance_id.map(text);
                    out.metadata = m.metadata;
                    out
                })
                .collect();
        }
        Err(refused) => {
            r.error_code = group_error(&refused.error).code();
            r.generation_id = -1;
            r.protocol_name = Some(text(""));
            r.member_id = text(refused.member_id);
        }
    }
    r
}

/// Hands a member its assignment.
pub async fn sync_group(
    node: &Node,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    if !member_allowed(node, ctx, &request.group_id) {
        let mut r = SyncGroupResponse::default();
        r.error_code = GROUP_DENIED;
        return r;
    }
    let sync = SyncRequest {
        group_id: request.group_id.to_string(),
        member: MemberIdentity {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.map(|s| s.to_string()),
            generation: request.generation_id,
        },
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let mut r = SyncGroupResponse::default();
    match node.groups.sync_group(sync).await {
        Ok(synced) => {
            r.assignment = synced.assignment;
            r.protocol_type = synced.protocol_type.map(text);
            r.protocol_name = synced.protocol.map(text);
        }
        Err(e) => r.error_code = group_error(&e).code(),
    }
    r
}

/// Keeps a member's session alive.
pub fn heartbeat(
    node: &Node,
    ctx: &RequestContext,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    if !member_allowed(node, ctx, &request.group_id) {
        let mut r = HeartbeatResponse::default();
        r.error_code = GROUP_DENIED;
        return r;
    }
    let member = MemberIdentity {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
        generation: request.generation_id,
    };
    let mut r = HeartbeatResponse::default();
    r.error_code = error_code(node.groups.heartbeat(&request.group_id, &member));
    r
}

/// Removes members: one before v3, each with its own result from v3.
pub fn leave_group(
    node: &Node,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let batch = ctx.api_version >= BATCH_LEAVE_VERSION;
    if !member_allowed(node, ctx, &request.group_id) {
        let mut r = LeaveGroupResponse::default();
        r.error_code = GROUP_DENIED;
        return r;
    }
    let leaving: Vec<LeavingMember> = if batch {
        request
            .members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            instance_id: None,
        }]
    };
    let mut r = LeaveGroupResponse::default();
    match node.groups.leave_group(&request.group_id, &leaving) {
        Err(e) => r.error_code = group_error(&e).code(),
        Ok(results) if batch => {
            r.members = leaving
                .into_iter()
                .zip(results)
                .map(|(m, result)| {
                    let mut out = MemberResponse::default();
                    out.member_id = text(m.member_id);
                    out.group_instance_id = m.instance_id.map(text);
                    out.error_code = error_code(result);
                    out
                })
                .collect();
        }
        // The single member's result is the response's.
        Ok(results) => {
            r.error_code = results
                .into_iter()
                .map(error_code)
                .find(|c| *c != 0)
                .unwrap_or(0)
        }
    }
    r
}

/// A duration the client sent in milliseconds (negative: none).
fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}
