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
pub mod dispatch;
pub mod errors;
pub mod fetch;
pub mod group;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod placement;
pub mod produce;
pub mod producer;
pub mod quotas;
pub mod scram;

use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::metadata::controller::ControllerRequest;
use crate::metadata::records::{Applied, MetadataRecord};
use crate::node::Node;

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

/// A response string from Rust text.
pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
