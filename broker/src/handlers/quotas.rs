//! AlterClientQuotas and DescribeClientQuotas (KIP-546): what
//! `kafka-configs --entity-type users|clients|ips --alter --add-config
//! producer_byte_rate=...` and `--describe` send. Quotas live in the
//! metadata quorum; changing them takes ALTER_CONFIGS on the cluster,
//! listing them DESCRIBE_CONFIGS, as in Kafka.

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::describe_client_quotas_response as describe;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::ResponseError;

use super::{authorize, propose, text};
use crate::metadata::records::MetadataRecord;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::quota::entity::{QuotaEntity, QuotaFilter};
use crate::security::acl::Operation;

/// Sets and removes client quotas, entry by entry.
pub async fn alter_client_quotas(
    node: &Node,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = authorize::on_cluster(node, ctx, Operation::AlterConfigs);
    let mut response = AlterClientQuotasResponse::default();
    for entry in request.entries {
        let echoed: Vec<EntityData> = entry
            .entity
            .iter()
            .map(|e| {
                EntityData::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect();
        let outcome = if !allowed {
            Err((
                ResponseError::ClusterAuthorizationFailed,
                "changing client quotas takes ALTER_CONFIGS on the cluster".to_string(),
            ))
        } else {
            let checked = QuotaEntity::parse(
                entry
                    .entity
                    .iter()
                    .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
            )
            .and_then(|entity| {
                let changes = entity.check_changes(
                    entry
                        .ops
                        .iter()
                        .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value))),
                )?;
                Ok((entity, changes))
            })
            .map_err(|e| (ResponseError::InvalidRequest, e.to_string()));
            match checked {
                Err(refused) => Err(refused),
                Ok(_) if request.validate_only => Ok(()),
                Ok((entity, changes)) => {
                    let shown = entity.to_string();
                    let outcome =
                        propose(node, MetadataRecord::SetClientQuotas { entity, changes }).await;
                    if outcome.is_ok() {
                        tracing::info!(principal = %ctx.principal, peer = %ctx.client_host, entity = %shown, "client quotas changed");
                    }
                    outcome
                }
            }
        };
        let mut result = EntryData::default().with_entity(echoed);
        if let Err((error, message)) = outcome {
            result.error_code = error.code();
            result.error_message = Some(text(message));
        }
        response.entries.push(result);
    }
    response
}

/// Lists the quotas of the entities a filter selects.
pub fn describe_client_quotas(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refuse = |error: ResponseError, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(text(message)))
    };
    if !authorize::on_cluster(node, ctx, Operation::DescribeConfigs) {
        return refuse(
            ResponseError::ClusterAuthorizationFailed,
            "listing client quotas takes DESCRIBE_CONFIGS on the cluster".into(),
        );
    }
    let filter = match QuotaFilter::parse(
        request
            .components
            .iter()
            .map(|c| (c.entity_type.as_str(), c.match_type, c._match.as_deref())),
        request.strict,
    ) {
        Ok(f) => f,
        Err(e) => return refuse(ResponseError::InvalidRequest, e.to_string()),
    };
    let image = node.image();
    let entries = image
        .quotas
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, values)| {
            describe::EntryData::default()
                .with_entity(
                    entity
                        .0
                        .iter()
                        .map(|(t, name)| {
                            describe::EntityData::default()
                                .with_entity_type(text(t.name()))
                                .with_entity_name(name.clone().map(text))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            describe::ValueData::default()
                                .with_key(text(key.clone()))
                                .with_value(value.0)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}
