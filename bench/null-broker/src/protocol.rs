//! The wire: the APIs and versions served, a request frame's header, and a
//! response encoded into its frame.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;

use gregor_broker::protocol::versions;

/// The APIs answered, at Gregor's ranges for them
/// (`gregor_broker::protocol::versions`), so a client sends the null
/// broker the requests it sends Gregor.
pub const SERVED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::InitProducerId,
];

/// A request that is not answered; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Shorter than a request header.
    #[error("request frame of {0} bytes is too short for a header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// An API or version the null broker does not serve.
    #[error("{api:?} v{version} is not served")]
    NotServed {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The bytes are not the request they claim to be.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's message.
        reason: String,
    },
    /// A response that does not encode (a bug, not the client's doing).
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The encoder's message.
        reason: String,
    },
}

/// A request frame with its header read.
#[derive(Debug)]
pub enum Request {
    /// An ApiVersions request newer than the versions served: it gets the
    /// v0 answer with UNSUPPORTED_VERSION and the ranges, so the client
    /// asks again with one it shares.
    ApiVersionsTooNew {
        /// To echo.
        correlation_id: i32,
    },
    /// A request to answer.
    Served {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// To echo.
        correlation_id: i32,
        /// The body, after the header.
        body: Bytes,
    },
}

impl Request {
    /// Whether answering may wait (a fetch with nothing to return yet), so
    /// the answers before it should be sent first.
    pub fn may_wait(&self) -> bool {
        matches!(
            self,
            Request::Served {
                api: ApiKey::Fetch,
                ..
            }
        )
    }
}

/// Reads a frame's (without its size) request header.
pub fn read_header(mut frame: Bytes) -> Result<Request, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(key).map_err(|_| ProtocolError::UnknownApi(key))?;
    let newest = versions::range(api).map(|(_, max)| max);
    if api == ApiKey::ApiVersions && newest.is_some_and(|max| version > max) {
        return Ok(Request::ApiVersionsTooNew { correlation_id });
    }
    if !SERVED.contains(&api) || !versions::is_supported(api, version) {
        return Err(ProtocolError::NotServed { api, version });
    }
    RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
        ProtocolError::Malformed {
            api,
            version,
            reason: format!("{e:#}"),
        }
    })?;
    Ok(Request::Served {
        api,
        version,
        correlation_id,
        body: frame,
    })
}

/// Decodes a request body of `api` at `version`.
pub fn decode<T: Decodable>(
    api: ApiKey,
    version: i16,
    mut body: Bytes,
) -> Result<T, ProtocolError> {
    T::decode(&mut body, version).map_err(|e| ProtocolError::Malformed {
        api,
        version,
        reason: format!("{e:#}"),
    })
}

/// The ApiVersions answer: the APIs served and their ranges.
pub fn api_versions() -> ApiVersionsResponse {
    let mut r = versions::advertised();
    r.api_keys
        .retain(|v| SERVED.iter().any(|api| *api as i16 == v.api_key));
    r
}

/// Appends the frame of `response` (size, header, body) to `out`; on
/// failure `out` is left as it was.
pub fn encode_into(
    out: &mut BytesMut,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<(), ProtocolError> {
    let start = out.len();
    let framed = frame(out, start, api, version, correlation_id, response).map_err(|reason| {
        ProtocolError::Encode {
            api,
            version,
            reason,
        }
    });
    if framed.is_err() {
        out.truncate(start);
    }
    framed
}

/// [`encode_into`]'s work, the frame starting at `start`.
fn frame(
    out: &mut BytesMut,
    start: usize,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<(), String> {
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(out, api.response_header_version(version))
        .map_err(|e| format!("{e:#}"))?;
    response
        .encode(out, version)
        .map_err(|e| format!("{e:#}"))?;
    let size = i32::try_from(out.len() - start - 4).map_err(|_| "larger than 2 GiB".to_string())?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// The v0 ApiVersions answer to a client newer than the versions served.
pub fn api_versions_too_new() -> (i16, ResponseKind) {
    let mut r = api_versions();
    r.error_code = ResponseError::UnsupportedVersion.code();
    (0, ResponseKind::ApiVersions(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_served_is_one_the_codec_knows() {
        for key in SERVED {
            let (min, max) = versions::range(*key).expect("an API Gregor serves");
            let codec = key.valid_versions();
            let decoded_min = if *key == ApiKey::Produce { 3 } else { min };
            assert!(codec.min <= decoded_min && max <= codec.max, "{key:?}");
        }
    }
}
