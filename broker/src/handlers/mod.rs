//! Request handlers, one module per API family. A handler translates the
//! decoded request into calls on the broker's services (in `node`) and
//! their outcomes into the response struct; the decisions are the
//! services'. [`dispatch`] hands each request decoded by `protocol` to its
//! handler and encodes the answer. Every handler has one shape:
//! `async fn x(node: &Node, ctx: &RequestContext, request: XRequest) ->
//! XResponse`, a plain `fn` when nothing waits (Produce answers `None` for
//! acks=0, which gets no reply).

pub mod admin;
pub mod api_versions;
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
pub mod scram;

use kafka_protocol::protocol::StrBytes;

/// A response string from Rust text.
pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
