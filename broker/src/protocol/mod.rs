//! The wire: a request frame decoded with `kafka-protocol` (header, API
//! version check, body), the ApiVersions fallback for clients newer than
//! Gregor, and a response encoded into its frame. Pure; `handlers`
//! dispatches what is decoded here.

pub mod frame;
pub mod versions;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;

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
    /// The request's API.
    pub api: ApiKey,
    /// API version of the request.
    pub api_version: i16,
    /// `client.id` from the header.
    pub client_id: String,
    /// Peer address.
    pub client_host: String,
    /// Name of the listener the request arrived on.
    pub listener: String,
    /// Who sent it: `User:<name>` once authenticated, else `User:ANONYMOUS`.
    pub principal: String,
}

/// Where a connection is from and which listener accepted it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Peer address.
    pub peer: String,
    /// Listener name.
    pub listener: String,
    /// `User:<name>` once the client authenticated, else `User:ANONYMOUS`.
    pub principal: String,
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

/// A v0 ApiVersions response with UNSUPPORTED_VERSION, for clients that ask
/// with a version newer than ours.
pub fn api_versions_fallback(correlation_id: i32) -> BytesMut {
    let mut r = versions::advertised();
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
pub fn encode_response(
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
