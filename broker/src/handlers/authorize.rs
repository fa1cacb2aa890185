//! The handlers' questions to the authorizer, answered for the request's
//! principal and peer against the ACLs of this broker's metadata image.
//! Without an authorizer (`authorizer.class.name` unset) everything is
//! allowed. A refusal of something the client asked for by name is logged
//! at info with the principal, peer, operation, resource and request, as
//! Kafka's `kafka.authorizer.logger` does; a quiet check (filtering what a
//! listing shows) is not.

use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::{Operation, ResourceType, Subject};

fn subject(ctx: &RequestContext) -> Subject<'_> {
    Subject {
        principal: &ctx.principal,
        host: &ctx.client_host,
    }
}

/// Whether the request may do `operation` on the named resource; a
/// refusal is logged.
pub fn allowed(
    node: &Node,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    check(node, ctx, operation, resource_type, name, true)
}

/// As [`allowed`], for filtering what a response lists: a refusal is not
/// logged (the client did not ask for that resource by name).
pub fn visible(
    node: &Node,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    check(node, ctx, operation, resource_type, name, false)
}

/// Whether the request may do `operation` on the cluster resource.
pub fn on_cluster(node: &Node, ctx: &RequestContext, operation: Operation) -> bool {
    allowed(
        node,
        ctx,
        operation,
        ResourceType::Cluster,
        crate::security::acl::binding::CLUSTER_NAME,
    )
}

/// As [`on_cluster`], without logging a refusal: for a cluster-wide
/// right that only widens what is allowed (the resource's own right may
/// still allow it).
pub fn on_cluster_quietly(node: &Node, ctx: &RequestContext, operation: Operation) -> bool {
    visible(
        node,
        ctx,
        operation,
        ResourceType::Cluster,
        crate::security::acl::binding::CLUSTER_NAME,
    )
}

fn check(
    node: &Node,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
    log: bool,
) -> bool {
    let Some(authorizer) = &node.config.authorizer else {
        return true;
    };
    let image = node.image();
    let decision = authorizer.decide(&image.acls, subject(ctx), operation, resource_type, name);
    if !decision.allowed && log {
        tracing::info!(
            target: "gregor::authorizer",
            principal = %ctx.principal,
            peer = %ctx.client_host,
            "Principal = {} is Denied operation = {operation} from host = {} on resource = {resource_type}:LITERAL:{name} for request = {:?} based on {}",
            ctx.principal,
            ctx.client_host,
            ctx.api,
            decision.rule,
        );
    }
    decision.allowed
}

/// The operations the request may do on the resource, as an
/// `authorized_operations` bit field.
pub fn operations(
    node: &Node,
    ctx: &RequestContext,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    match &node.config.authorizer {
        Some(authorizer) => {
            authorizer.authorized_operations(&node.image().acls, subject(ctx), resource_type, name)
        }
        None => resource_type
            .operations()
            .iter()
            .fold(0, |bits, op| bits | (1 << op.code())),
    }
}

/// Whether the request may do `operation` on at least one resource of
/// this type (an idempotent producer's WRITE on some topic).
pub fn on_any(
    node: &Node,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: ResourceType,
) -> bool {
    let Some(authorizer) = &node.config.authorizer else {
        return true;
    };
    authorizer.allowed_on_any(&node.image().acls, subject(ctx), operation, resource_type)
}
