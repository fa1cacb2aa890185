//! ApiVersions: the APIs and versions this broker serves and, from v5
//! (Kafka 4.4, KIP-1242), a check that the client reached the cluster and
//! node it meant to: after a rolling restart moves addresses around (pods
//! on Kubernetes), a client holding a stale address learns at once that it
//! must bootstrap again, instead of talking to the wrong broker.

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::node::Node;
use crate::protocol::{versions, RequestContext};

/// Handles ApiVersions; a refused target check answers with no APIs, as
/// Kafka does, and leaves the connection open.
pub fn api_versions(
    node: &Node,
    ctx: &RequestContext,
    request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let wanted = (request.cluster_id.as_deref(), request.node_id);
    match check_target(wanted, (&node.cluster_id, node.config.node_id)) {
        Ok(()) => versions::advertised(),
        Err(error) => {
            tracing::info!(
                peer = %ctx.client_host,
                client = %ctx.client_id,
                cluster = ?wanted.0,
                node = wanted.1,
                error = ?error,
                "client meant another broker"
            );
            let mut r = ApiVersionsResponse::default();
            r.error_code = error.code();
            r
        }
    }
}

/// Whether a client that means (`cluster`, `node`) may talk to `ours`:
/// both unknown is fine, both given must match, one alone is malformed.
fn check_target(wanted: (Option<&str>, i32), ours: (&str, i32)) -> Result<(), ResponseError> {
    match wanted {
        (None, -1) => Ok(()),
        (Some(cluster), node) if node >= 0 => {
            if (cluster, node) == ours {
                Ok(())
            } else {
                Err(ResponseError::RebootstrapRequired)
            }
        }
        _ => Err(ResponseError::InvalidRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_check_follows_kip_1242() {
        let ours = ("abc", 2);
        let cases = [
            ((None, -1), Ok(())),
            ((Some("abc"), 2), Ok(())),
            ((Some("abc"), 3), Err(ResponseError::RebootstrapRequired)),
            ((Some("xyz"), 2), Err(ResponseError::RebootstrapRequired)),
            ((Some("abc"), -1), Err(ResponseError::InvalidRequest)),
            ((None, 2), Err(ResponseError::InvalidRequest)),
        ];
        for (wanted, want) in cases {
            assert_eq!(check_target(wanted, ours), want, "{wanted:?}");
        }
    }
}
