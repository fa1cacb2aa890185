//! FindCoordinator; the group protocol itself lives in `crate::group`.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use super::text;
use crate::node::Node;
use crate::protocol::RequestContext;

/// Key type of FindCoordinator for transactions.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Every group is coordinated by this broker (on the request's listener);
/// transaction coordinators do not exist yet.
pub fn find_coordinator(
    node: &Arc<Node>,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let endpoint = node.endpoint(&ctx.listener);
    let host = endpoint.map(|e| e.host.clone()).unwrap_or_default();
    let port = endpoint.map(|e| e.port as i32).unwrap_or(-1);
    let error = if req.key_type == KEY_TYPE_TRANSACTION {
        ResponseError::CoordinatorNotAvailable.code()
    } else {
        0
    };
    let mut resp = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                c.error_code = error;
                if error == 0 {
                    c.node_id = BrokerId(node.config.node_id);
                    c.host = text(host.clone());
                    c.port = port;
                } else {
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                }
                c
            })
            .collect();
    } else {
        resp.error_code = error;
        if error == 0 {
            resp.node_id = BrokerId(node.config.node_id);
            resp.host = text(host);
            resp.port = port;
        } else {
            resp.node_id = BrokerId(-1);
            resp.port = -1;
        }
    }
    resp
}
