//! FindCoordinator: which broker coordinates a group.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use crate::group::offset_records::partition_for;
use crate::group::offsets::OFFSETS_TOPIC;
use crate::handlers::{authorize, text};
use crate::metadata::image::NO_LEADER;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Key type of FindCoordinator for transactions.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Why a transaction coordinator cannot be found.
const NO_TRANSACTIONS: &str = "transactions are not supported by this broker yet";

/// A group is coordinated by the leader of its `__consumer_offsets`
/// partition, reached at its address on the request's listener; finding it
/// takes DESCRIBE on the group.
///
/// Transaction coordinators do not exist yet. A retriable error here would
/// leave a transactional producer retrying until its own timeout, so the
/// answer is the error clients treat as final for a transactional id
/// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, the same the produce path gives),
/// with a message that says why.
pub fn find_coordinator(
    node: &Node,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let image = node.image();
    if request.key_type == KEY_TYPE_TRANSACTION {
        tracing::warn!(peer = %ctx.client_host, client_id = %ctx.client_id, "transaction coordinator refused: {NO_TRANSACTIONS}");
    }
    let locate = |key: &str| -> Result<(i32, String, i32), ResponseError> {
        if request.key_type == KEY_TYPE_TRANSACTION {
            return Err(ResponseError::TransactionalIdAuthorizationFailed);
        }
        if !authorize::allowed(node, ctx, Operation::Describe, ResourceType::Group, key) {
            return Err(ResponseError::GroupAuthorizationFailed);
        }
        let topic = image
            .topics
            .get(OFFSETS_TOPIC)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let index = partition_for(key, topic.partitions.len() as i32);
        let leader = image
            .partition(OFFSETS_TOPIC, index)
            .map(|p| p.leader)
            .filter(|l| *l != NO_LEADER)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let endpoint = image
            .brokers
            .get(&leader)
            .filter(|b| !b.fenced)
            .and_then(|b| b.endpoint(&ctx.listener))
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        Ok((leader, endpoint.host.clone(), endpoint.port as i32))
    };
    let mut resp = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        resp.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                match locate(key.as_str()) {
                    Ok((id, host, port)) => {
                        c.node_id = BrokerId(id);
                        c.host = text(host);
                        c.port = port;
                    }
                    Err(code) => {
                        c.error_code = code.code();
                        c.error_message = refusal(code);
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                    }
                }
                c
            })
            .collect();
    } else {
        match locate(request.key.as_str()) {
            Ok((id, host, port)) => {
                resp.node_id = BrokerId(id);
                resp.host = text(host);
                resp.port = port;
            }
            Err(code) => {
                resp.error_code = code.code();
                resp.error_message = refusal(code);
                resp.node_id = BrokerId(-1);
                resp.port = -1;
            }
        }
    }
    resp
}

fn refusal(code: ResponseError) -> Option<kafka_protocol::protocol::StrBytes> {
    (code == ResponseError::TransactionalIdAuthorizationFailed).then(|| text(NO_TRANSACTIONS))
}
