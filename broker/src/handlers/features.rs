//! UpdateFeatures: `kafka-features upgrade` and `downgrade` set the level
//! the cluster runs a feature at (see `metadata::features`); it takes
//! ALTER on the cluster. `kafka-features describe` reads the levels from
//! ApiVersions.

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::ResponseError;

use super::{authorize, propose, text};
use crate::metadata::features::UpgradeType;
use crate::metadata::records::MetadataRecord;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::Operation;

/// Checks every update against the levels in force, then sets them all,
/// or none when one is refused (as Kafka's controller does). Versions 0
/// and 1 answer per feature; from 2 only the request's error counts.
pub async fn update_features(
    node: &Node,
    ctx: &RequestContext,
    request: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    let outcome = update(node, ctx, &request).await;
    let mut resp = UpdateFeaturesResponse::default();
    if let Err((error, message)) = &outcome {
        resp.error_code = error.code();
        resp.error_message = Some(text(message.clone()));
    }
    if ctx.api_version < 2 {
        resp.results = request
            .feature_updates
            .iter()
            .map(|u| {
                let mut r = UpdatableFeatureResult::default();
                r.feature = u.feature.clone();
                if let Err((error, message)) = &outcome {
                    r.error_code = error.code();
                    r.error_message = Some(text(message.clone()));
                }
                r
            })
            .collect();
    }
    resp
}

async fn update(
    node: &Node,
    ctx: &RequestContext,
    request: &UpdateFeaturesRequest,
) -> Result<(), (ResponseError, String)> {
    if !authorize::on_cluster(node, ctx, Operation::Alter) {
        return Err((
            ResponseError::ClusterAuthorizationFailed,
            "changing feature levels takes ALTER on the cluster".to_string(),
        ));
    }
    let image = node.image();
    let levels = &image.features;
    let mut changes = Vec::new();
    for u in &request.feature_updates {
        let how = if ctx.api_version == 0 {
            Some(if u.allow_downgrade {
                UpgradeType::SafeDowngrade
            } else {
                UpgradeType::Upgrade
            })
        } else {
            UpgradeType::from_code(u.upgrade_type)
        };
        let how = how.ok_or_else(|| {
            (
                ResponseError::InvalidRequest,
                format!("unknown upgrade type {}", u.upgrade_type),
            )
        })?;
        let name = u.feature.to_string();
        // A level below 1 asks for the feature to be removed: level 0.
        let level = u.max_version_level.max(0);
        levels
            .check(&name, level, how)
            .map_err(|e| (ResponseError::InvalidUpdateVersion, e.to_string()))?;
        changes.push((name, level));
    }
    if request.validate_only {
        return Ok(());
    }
    for (name, level) in changes {
        let shown = format!("{name}={level}");
        propose(node, MetadataRecord::SetFeatureLevel { name, level }).await?;
        tracing::info!(principal = %ctx.principal, peer = %ctx.client_host, feature = %shown, "feature level changed");
    }
    Ok(())
}
