//! Request handlers, one module per API family. Each takes the decoded
//! request and returns the response struct; `protocol` does the framing.

pub mod admin;
pub mod api_versions;
pub mod configs;
pub mod errors;
pub mod fetch;
pub mod group;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod placement;
pub mod produce;
pub mod producer;

use kafka_protocol::protocol::StrBytes;

/// A response string from Rust text.
pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
