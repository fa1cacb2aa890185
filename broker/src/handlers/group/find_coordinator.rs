//! FindCoordinator: which broker coordinates a group, or a transactional
//! id.

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
use crate::txn::TRANSACTION_TOPIC;

/// Key type of FindCoordinator for transactions.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// A group is coordinated by the leader of its `__consumer_offsets`
/// partition, a transactional id by the leader of its
/// `__transaction_state` partition, each reached at its address on the
/// request's listener; finding one takes DESCRIBE on the group or the
/// transactional id. The transaction log is created when first asked for,
/// as Kafka does (COORDINATOR_NOT_AVAILABLE until it is there).
pub async fn find_coordinator(
    node: &Node,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let transaction = request.key_type == KEY_TYPE_TRANSACTION;
    let (topic, resource, refused) = if transaction {
        (
            TRANSACTION_TOPIC,
            ResourceType::TransactionalId,
            ResponseError::TransactionalIdAuthorizationFailed,
        )
    } else {
        (
            OFFSETS_TOPIC,
            ResourceType::Group,
            ResponseError::GroupAuthorizationFailed,
        )
    };
    if transaction && !node.image().topics.contains_key(TRANSACTION_TOPIC) {
        node.create_transaction_topic().await;
    }
    let image = node.image();
    let locate = |key: &str| -> Result<(i32, String, i32), ResponseError> {
        if !authorize::allowed(node, ctx, Operation::Describe, resource, key) {
            return Err(refused);
        }
        if transaction && key.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        let t = image
            .topics
            .get(topic)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let index = partition_for(key, t.partitions.len() as i32);
        let leader = image
            .partition(topic, index)
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
                resp.node_id = BrokerId(-1);
                resp.port = -1;
            }
        }
    }
    resp
}
