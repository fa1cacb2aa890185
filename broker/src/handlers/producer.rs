//! InitProducerId: ids for idempotent producers.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::authorize;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Gives an idempotent producer a fresh id, or bumps the epoch of the id it
/// already has (KIP-360). Transactional ids are refused until transactions
/// are built. An idempotent producer needs IDEMPOTENT_WRITE on the cluster
/// or WRITE on some topic (KIP-679).
pub async fn init_producer_id(
    node: &Node,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.is_empty())
    {
        // Final for the client, as in FindCoordinator (handlers/group.rs).
        resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    let idempotent = authorize::on_cluster_quietly(node, ctx, Operation::IdempotentWrite)
        || authorize::on_any(node, ctx, Operation::Write, ResourceType::Topic);
    // Asked again, logged, only when refused: the cluster check alone
    // decides nothing while a topic's WRITE may still allow it.
    if !idempotent && !authorize::on_cluster(node, ctx, Operation::IdempotentWrite) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return resp;
    }
    if request.producer_id.0 >= 0
        && request.producer_epoch >= 0
        && request.producer_epoch < i16::MAX - 1
    {
        resp.producer_id = request.producer_id;
        resp.producer_epoch = request.producer_epoch + 1;
        return resp;
    }
    match node.producer_ids.next(&node.quorum).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot reserve producer ids");
            resp.error_code = ResponseError::CoordinatorNotAvailable.code();
        }
    }
    resp
}
