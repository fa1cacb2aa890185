//! From a request frame to a response frame: header parsing, the
//! ApiVersions fallback, decoding with `kafka-protocol`, dispatch to the
//! handler of each API family, and encoding of the answer.

pub mod versions;

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;

use crate::handlers;
use crate::node::Node;

/// A request that cannot be answered; the connection is closed, as Kafka
/// does, and the reason logged.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Shorter than a request header.
    #[error("request frame of {0} bytes is too short for a header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// A version of a known API that Gregor does not serve.
    #[error("{api:?} version {version} is not supported")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The bytes do not decode as the API and version they claim.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// Decoder message.
        reason: String,
    },
    /// Encoding the response failed (a bug, not a client error).
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// Encoder message.
        reason: String,
    },
}

/// What the client sent besides the body, for handlers that need it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// API version of the request.
    pub api_version: i16,
    /// `client.id` from the header.
    pub client_id: String,
    /// Peer address.
    pub client_host: String,
    /// Name of the listener the request arrived on.
    pub listener: String,
}

/// Where a connection is from and which listener accepted it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Peer address.
    pub peer: String,
    /// Listener name.
    pub listener: String,
}

/// A request frame, decoded.
#[derive(Debug)]
pub enum Decoded {
    /// An ApiVersions request newer than any version served: it gets the v0
    /// fallback answer.
    ApiVersionsFallback {
        /// Correlation id to echo.
        correlation_id: i32,
    },
    /// A request to dispatch.
    Request {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// The header.
        header: RequestHeader,
        /// The body (boxed: request structs are large).
        request: Box<RequestKind>,
    },
}

/// Decodes a request frame (without its size prefix). Pure: this is what the
/// fuzz target drives with arbitrary bytes.
pub fn decode_frame(mut frame: Bytes) -> Result<Decoded, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| ProtocolError::UnknownApi(raw_key))?;
    if !versions::is_supported(api, version) {
        if api == ApiKey::ApiVersions {
            // A client newer than us: answer in v0 so it can pick a version.
            return Ok(Decoded::ApiVersionsFallback { correlation_id });
        }
        return Err(ProtocolError::UnsupportedVersion { api, version });
    }
    let malformed = |e: anyhow::Error| ProtocolError::Malformed {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(malformed)?;
    let request = RequestKind::decode(api, &mut frame, version).map_err(malformed)?;
    if frame.has_remaining() {
        tracing::debug!(
            ?api,
            version,
            extra = frame.remaining(),
            "request has trailing bytes"
        );
    }
    Ok(Decoded::Request {
        api,
        version,
        header,
        request: Box::new(request),
    })
}

/// Handles one request frame (without its size prefix). `None` means no
/// response is sent (Produce with acks=0).
pub async fn handle_frame(
    node: Arc<Node>,
    frame: Bytes,
    conn: ConnectionInfo,
) -> Result<Option<BytesMut>, ProtocolError> {
    let (api, version, header, request) = match decode_frame(frame)? {
        Decoded::ApiVersionsFallback { correlation_id } => {
            return Ok(Some(api_versions_fallback(correlation_id)));
        }
        Decoded::Request {
            api,
            version,
            header,
            request,
        } => (api, version, header, *request),
    };
    node.metrics.request(api);
    let correlation_id = header.correlation_id;
    let ctx = RequestContext {
        api_version: version,
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: conn.peer,
        listener: conn.listener,
    };
    let Some(response) = dispatch(&node, &ctx, request).await else {
        return Ok(None);
    };
    encode_response(api, version, correlation_id, &response).map(Some)
}

async fn dispatch(
    node: &Arc<Node>,
    ctx: &RequestContext,
    request: RequestKind,
) -> Option<ResponseKind> {
    use handlers::*;
    use RequestKind as Rq;
    use ResponseKind as Rs;
    Some(match request {
        Rq::ApiVersions(r) => Rs::ApiVersions(api_versions::api_versions(node, ctx, r)),
        Rq::Metadata(r) => Rs::Metadata(metadata::metadata(node, ctx, r).await),
        Rq::DescribeCluster(r) => Rs::DescribeCluster(metadata::describe_cluster(node, ctx, r)),
        Rq::ElectLeaders(r) => Rs::ElectLeaders(placement::elect_leaders(node, ctx, r).await),
        Rq::AlterPartitionReassignments(r) => Rs::AlterPartitionReassignments(
            placement::alter_partition_reassignments(node, ctx, r).await,
        ),
        Rq::ListPartitionReassignments(r) => {
            Rs::ListPartitionReassignments(placement::list_partition_reassignments(node, ctx, r))
        }
        Rq::Produce(r) => return produce::produce(node, ctx, r).await.map(Rs::Produce),
        Rq::Fetch(r) => Rs::Fetch(fetch::fetch(node, ctx, r).await),
        Rq::ListOffsets(r) => Rs::ListOffsets(offsets::list_offsets(node, ctx, r)),
        Rq::OffsetForLeaderEpoch(r) => {
            Rs::OffsetForLeaderEpoch(offsets::offset_for_leader_epoch(node, ctx, r))
        }
        Rq::DeleteRecords(r) => Rs::DeleteRecords(offsets::delete_records(node, ctx, r)),
        Rq::InitProducerId(r) => Rs::InitProducerId(producer::init_producer_id(node, ctx, r).await),
        Rq::CreateTopics(r) => Rs::CreateTopics(admin::create_topics(node, ctx, r).await),
        Rq::DeleteTopics(r) => Rs::DeleteTopics(admin::delete_topics(node, ctx, r).await),
        Rq::CreatePartitions(r) => {
            Rs::CreatePartitions(admin::create_partitions(node, ctx, r).await)
        }
        Rq::DescribeConfigs(r) => Rs::DescribeConfigs(configs::describe_configs(node, ctx, r)),
        Rq::AlterConfigs(r) => Rs::AlterConfigs(configs::alter_configs(node, ctx, r).await),
        Rq::IncrementalAlterConfigs(r) => {
            Rs::IncrementalAlterConfigs(configs::incremental_alter_configs(node, ctx, r).await)
        }
        Rq::FindCoordinator(r) => {
            Rs::FindCoordinator(group::find_coordinator::find_coordinator(node, ctx, r))
        }
        Rq::JoinGroup(r) => Rs::JoinGroup(group::membership::join_group(node, ctx, r).await),
        Rq::SyncGroup(r) => Rs::SyncGroup(group::membership::sync_group(node, ctx, r).await),
        Rq::Heartbeat(r) => Rs::Heartbeat(group::membership::heartbeat(node, ctx, r)),
        Rq::LeaveGroup(r) => Rs::LeaveGroup(group::membership::leave_group(node, ctx, r)),
        Rq::OffsetCommit(r) => {
            Rs::OffsetCommit(group::committed::offset_commit(node, ctx, r).await)
        }
        Rq::OffsetFetch(r) => Rs::OffsetFetch(group::committed::offset_fetch(node, ctx, r)),
        Rq::DescribeGroups(r) => Rs::DescribeGroups(group::admin::describe_groups(node, ctx, r)),
        Rq::ListGroups(r) => Rs::ListGroups(group::admin::list_groups(node, ctx, r)),
        Rq::DeleteGroups(r) => Rs::DeleteGroups(group::admin::delete_groups(node, ctx, r)),
        Rq::DescribeLogDirs(r) => Rs::DescribeLogDirs(log_dirs::describe_log_dirs(node, ctx, r)),
        Rq::ConsumerGroupHeartbeat(r) => Rs::ConsumerGroupHeartbeat(
            group::consumer_heartbeat::consumer_group_heartbeat(node, ctx, r).await,
        ),
        Rq::ConsumerGroupDescribe(r) => {
            Rs::ConsumerGroupDescribe(group::admin::consumer_group_describe(node, ctx, r))
        }
        Rq::OffsetDelete(r) => Rs::OffsetDelete(group::committed::offset_delete(node, ctx, r)),
        // `versions::is_supported` lets only the APIs above through.
        other => {
            tracing::error!(request = ?other, "no handler for an advertised API");
            return None;
        }
    })
}

/// A v0 ApiVersions response with UNSUPPORTED_VERSION, for clients that ask
/// with a version newer than ours.
fn api_versions_fallback(correlation_id: i32) -> BytesMut {
    let mut r = handlers::api_versions::advertised();
    r.error_code = ResponseError::UnsupportedVersion.code();
    // Encoding a default-built v0 response cannot fail.
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(r),
    )
    .unwrap_or_default()
}

/// Size prefix, response header and body.
fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<BytesMut, ProtocolError> {
    let fail = |e: anyhow::Error| ProtocolError::Encode {
        api,
        version,
        reason: format!("{e:#}"),
    };
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut buf, api.response_header_version(version))
        .map_err(fail)?;
    response.encode(&mut buf, version).map_err(fail)?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsResponse;

    #[test]
    fn fallback_is_a_v0_response_with_the_error_and_the_ranges() {
        let mut buf = api_versions_fallback(7).freeze();
        let size = buf.get_i32();
        assert_eq!(size as usize, buf.len());
        assert_eq!(buf.get_i32(), 7);
        let r = ApiVersionsResponse::decode(&mut buf, 0).expect("decodes as v0");
        assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16 && k.min_version == 0));
    }
}
