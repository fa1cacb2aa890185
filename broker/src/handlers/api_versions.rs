//! ApiVersions: the APIs and versions this broker serves, the features
//! it supports and the levels the cluster runs them at (from v3; what
//! `kafka-features describe` shows and what tells Kafka's clients to use
//! transaction version 2) and, from v5
//! (Kafka 4.4, KIP-1242), a check that the client reached the cluster and
//! node it meant to: after a rolling restart moves addresses around (pods
//! on Kubernetes), a client holding a stale address learns at once that it
//! must bootstrap again, instead of talking to the wrong broker.

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::metadata::features::{self, FeatureLevels};
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
        Ok(()) => with_features(versions::advertised(), &node.image().features),
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

/// The answer with the supported features and their finalized levels.
fn with_features(mut r: ApiVersionsResponse, levels: &FeatureLevels) -> ApiVersionsResponse {
    r.supported_features = features::SUPPORTED
        .iter()
        .map(|f| {
            let mut k = SupportedFeatureKey::default();
            k.name = StrBytes::from_static_str(f.name);
            k.min_version = f.min;
            k.max_version = f.max;
            k
        })
        .collect();
    r.finalized_features = levels
        .finalized()
        .into_iter()
        .map(|(name, level)| {
            let mut k = FinalizedFeatureKey::default();
            k.name = StrBytes::from_static_str(name);
            k.min_version_level = level;
            k.max_version_level = level;
            k
        })
        .collect();
    r.finalized_features_epoch = levels.epoch();
    r
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
    fn features_are_advertised_with_their_levels() {
        let r = with_features(ApiVersionsResponse::default(), &FeatureLevels::default());
        let supported: Vec<(String, i16, i16)> = r
            .supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect();
        assert_eq!(supported, [("transaction.version".to_string(), 0, 2)]);
        let finalized: Vec<(String, i16)> = r
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        assert_eq!(finalized, [("transaction.version".to_string(), 2)]);
    }

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
