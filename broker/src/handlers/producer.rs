//! InitProducerId: ids for idempotent producers, and for transactional
//! ones through the transaction coordinator.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::authorize;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::ProducerIdEpoch;

/// Gives an idempotent producer a fresh id, or bumps the epoch of the id it
/// already has (KIP-360); an idempotent producer needs IDEMPOTENT_WRITE on
/// the cluster or WRITE on some topic (KIP-679). A transactional producer
/// (WRITE on its transactional id needed) gets its id and epoch from the
/// transaction coordinator, which fences earlier producers of the same id.
pub async fn init_producer_id(
    node: &Node,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if let Some(id) = request.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        return transactional(node, ctx, id.as_str(), &request, resp).await;
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

/// The first InitProducerId version with PRODUCER_FENCED (older ones get
/// INVALID_PRODUCER_EPOCH).
const FENCED_SINCE: i16 = 4;

/// InitProducerId with a transactional id.
async fn transactional(
    node: &Node,
    ctx: &RequestContext,
    transactional_id: &str,
    request: &InitProducerIdRequest,
    mut resp: InitProducerIdResponse,
) -> InitProducerIdResponse {
    if !authorize::allowed(
        node,
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    // KIP-360: a producer recovering from an error names its id and epoch.
    let expected = match (request.producer_id.0, request.producer_epoch) {
        (-1, -1) => None,
        (id, epoch) if id >= 0 && epoch >= 0 => Some(ProducerIdEpoch { id, epoch }),
        _ => {
            resp.error_code = ResponseError::InvalidRequest.code();
            return resp;
        }
    };
    match node
        .txns
        .init_producer_id(transactional_id, request.transaction_timeout_ms, expected)
        .await
    {
        Ok(p) => {
            resp.producer_id = ProducerId(p.id);
            resp.producer_epoch = p.epoch;
        }
        Err(e) => resp.error_code = e.code(ctx.api_version, FENCED_SINCE).code(),
    }
    resp
}
