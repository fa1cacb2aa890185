//! CreateAcls, DescribeAcls and DeleteAcls: what `kafka-acls` sends. ACLs
//! live in the metadata quorum; a change is proposed to the active
//! controller and answered once it is applied. Changing ACLs takes ALTER on
//! the cluster, listing them DESCRIBE, as in Kafka.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::ResponseError;

use super::{authorize, propose, text};
use crate::metadata::records::MetadataRecord;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::binding::RawAcl;
use crate::security::acl::filter::RawFilter;
use crate::security::acl::{AclBinding, AclFilter, Operation};

const NOT_ALLOWED: &str = "the cluster's ACLs are not yours to change or see: this takes ALTER (DESCRIBE to list them) on the cluster";

/// Adds ACLs.
pub async fn create_acls(
    node: &Node,
    ctx: &RequestContext,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let error = |e: ResponseError, message: String| {
        AclCreationResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(text(message)))
    };
    if !authorize::on_cluster(node, ctx, Operation::Alter) {
        let results = request
            .creations
            .iter()
            .map(|_| {
                error(
                    ResponseError::ClusterAuthorizationFailed,
                    NOT_ALLOWED.into(),
                )
            })
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed: Vec<Result<AclBinding, String>> = request
        .creations
        .into_iter()
        .map(|c| {
            AclBinding::parse(RawAcl {
                resource_type: c.resource_type,
                name: c.resource_name.to_string(),
                pattern_type: c.resource_pattern_type,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: c.operation,
                permission: c.permission_type,
            })
            .map_err(|e| e.to_string())
        })
        .collect();
    let acls: Vec<AclBinding> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let outcome = if acls.is_empty() {
        Ok(())
    } else {
        propose(node, MetadataRecord::CreateAcls { acls }).await
    };
    let results = parsed
        .into_iter()
        .map(|p| match (p, &outcome) {
            (Err(why), _) => error(ResponseError::InvalidRequest, why),
            (Ok(_), Err((e, why))) => error(*e, why.clone()),
            (Ok(acl), Ok(())) => {
                tracing::info!(principal = %ctx.principal, peer = %ctx.client_host, "ACL created: {acl}");
                AclCreationResult::default()
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Lists the ACLs a filter selects, grouped by resource pattern.
pub fn describe_acls(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let refuse = |e: ResponseError, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(text(message)))
    };
    if !authorize::on_cluster(node, ctx, Operation::Describe) {
        return refuse(
            ResponseError::ClusterAuthorizationFailed,
            NOT_ALLOWED.into(),
        );
    }
    let filter = match AclFilter::parse(RawFilter {
        resource_type: request.resource_type_filter,
        name: request.resource_name_filter.map(|s| s.to_string()),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.map(|s| s.to_string()),
        host: request.host_filter.map(|s| s.to_string()),
        operation: request.operation,
        permission: request.permission_type,
    }) {
        Ok(f) => f,
        Err(e) => return refuse(ResponseError::InvalidRequest, e.to_string()),
    };
    let image = node.image();
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.matching(&filter) {
        resources
            .entry((
                acl.resource_type.code(),
                acl.name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(text(acl.principal.clone()))
                    .with_host(text(acl.host.clone()))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((resource_type, name, pattern_type), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(text(name))
                    .with_pattern_type(pattern_type)
                    .with_acls(acls)
            })
            .collect(),
    )
}

/// Removes the ACLs each filter selects; each filter's result lists them.
pub async fn delete_acls(
    node: &Node,
    ctx: &RequestContext,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let failed = |e: ResponseError, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(e.code())
            .with_error_message(Some(text(message)))
    };
    if !authorize::on_cluster(node, ctx, Operation::Alter) {
        let results = request
            .filters
            .iter()
            .map(|_| {
                failed(
                    ResponseError::ClusterAuthorizationFailed,
                    NOT_ALLOWED.into(),
                )
            })
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let image = node.image();
    let selected: Vec<Result<Vec<AclBinding>, String>> = request
        .filters
        .into_iter()
        .map(|f| {
            let filter = AclFilter::parse(RawFilter {
                resource_type: f.resource_type_filter,
                name: f.resource_name_filter.map(|s| s.to_string()),
                pattern_type: f.pattern_type_filter,
                principal: f.principal_filter.map(|s| s.to_string()),
                host: f.host_filter.map(|s| s.to_string()),
                operation: f.operation,
                permission: f.permission_type,
            })
            .map_err(|e| e.to_string())?;
            Ok(image.acls.matching(&filter).cloned().collect())
        })
        .collect();
    let mut doomed: Vec<AclBinding> = selected
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    doomed.sort();
    doomed.dedup();
    let outcome = if doomed.is_empty() {
        Ok(())
    } else {
        propose(
            node,
            MetadataRecord::DeleteAcls {
                acls: doomed.clone(),
            },
        )
        .await
    };
    if outcome.is_ok() {
        for acl in &doomed {
            tracing::info!(principal = %ctx.principal, peer = %ctx.client_host, "ACL deleted: {acl}");
        }
    }
    let results = selected
        .into_iter()
        .map(|s| match (s, &outcome) {
            (Err(why), _) => failed(ResponseError::InvalidRequest, why),
            (Ok(_), Err((e, why))) => failed(*e, why.clone()),
            (Ok(acls), Ok(())) => DeleteAclsFilterResult::default().with_matching_acls(
                acls.into_iter()
                    .map(|acl| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.resource_type.code())
                            .with_resource_name(text(acl.name))
                            .with_pattern_type(acl.pattern_type.code())
                            .with_principal(text(acl.principal))
                            .with_host(text(acl.host))
                            .with_operation(acl.operation.code())
                            .with_permission_type(acl.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
