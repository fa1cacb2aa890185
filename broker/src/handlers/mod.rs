//! Request handlers, one module per API family. A handler translates the
//! decoded request into calls on the broker's services (in `node`) and
//! their outcomes into the response struct; the decisions are the
//! services'. [`dispatch`] hands each request decoded by `protocol` to its
//! handler and encodes the answer. Every handler has one shape:
//! `async fn x(node: &Node, ctx: &RequestContext, request: XRequest) ->
//! XResponse`, a plain `fn` when nothing waits (Produce answers `None` for
//! acks=0, which gets no reply).

pub mod acls;
pub mod admin;
pub mod api_versions;
pub mod authorize;
pub mod configs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod dispatch;
pub mod errors;
pub mod features;
pub mod fetch;
pub mod group;
pub mod leader_hint;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod placement;
pub mod produce;
pub mod producer;
pub mod quotas;
pub mod scram;
pub mod txn;
pub mod txn_markers;

use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::metadata::controller::ControllerRequest;
use crate::metadata::records::{Applied, MetadataRecord};
use crate::node::Node;
use crate::protocol::RequestContext;

/// Proposes `record` to the active controller and waits for it to be
/// applied; Kafka's error and a message when it was refused or not decided.
pub(crate) async fn propose(
    node: &Node,
    record: MetadataRecord,
) -> Result<(), (ResponseError, String)> {
    match node
        .topic_changes()
        .apply(ControllerRequest::Propose(record))
        .await
    {
        Ok(Applied::Refused(r)) => Err((errors::refusal_error(&r), r.to_string())),
        Ok(_) => Ok(()),
        Err(e) => Err((ResponseError::RequestTimedOut, e)),
    }
}

/// The name a user quota knows the request's principal by: without its
/// type (`User:`).
pub(crate) fn quota_user(ctx: &RequestContext) -> &str {
    ctx.principal
        .split_once(':')
        .map_or(ctx.principal.as_str(), |(_, name)| name)
}

/// Records `bytes` of the request against its client's quota of `kind`:
/// the throttle time to answer with (0 within the quota), and the rate it
/// was recorded under, to take it back if the bytes are not sent.
pub(crate) fn quota_throttle(
    node: &Node,
    ctx: &RequestContext,
    kind: crate::quota::manager::QuotaKind,
    bytes: usize,
) -> (i32, Option<crate::quota::manager::SensorKey>) {
    let user = quota_user(ctx);
    let throttle = node.quotas.record(
        &node.image().quotas,
        kind,
        user,
        &ctx.client_id,
        bytes as u64,
        node.quotas.now_ms(),
    );
    (i32::try_from(throttle.ms).unwrap_or(i32::MAX), throttle.key)
}

/// The controller mutation quota (KIP-599) a CreateTopics,
/// CreatePartitions or DeleteTopics request is held to; none for a request
/// that only validates, as only mutations made count.
pub(crate) fn mutation_quota<'a>(
    node: &'a Node,
    ctx: &RequestContext,
    validate_only: bool,
) -> crate::quota::mutation::MutationQuota<'a> {
    use crate::quota::mutation::{Mode, MutationQuota};
    if validate_only {
        return MutationQuota::unlimited();
    }
    MutationQuota::new(
        &node.quotas,
        &node.image().quotas,
        quota_user(ctx),
        &ctx.client_id,
        Mode::of(ctx.api, ctx.api_version),
    )
}

/// A response string from Rust text.
pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
