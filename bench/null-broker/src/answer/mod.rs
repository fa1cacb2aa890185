//! The answers to the requests served, one module per API.

mod fetch;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod produce;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ResponseKind};

use crate::broker::Broker;
use crate::protocol::{self, decode, ProtocolError};

/// The answer to a request of `api` at `version` with `body`; none for a
/// produce with acks=0.
pub async fn answer(
    broker: &Broker,
    api: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<Option<ResponseKind>, ProtocolError> {
    let answer = match api {
        // The body (client name and version) changes nothing.
        ApiKey::ApiVersions => ResponseKind::ApiVersions(protocol::api_versions()),
        ApiKey::Metadata => ResponseKind::Metadata(metadata::answer(
            broker,
            version,
            decode(api, version, body)?,
        )),
        ApiKey::Produce => match produce::answer(broker, decode(api, version, body)?) {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        ApiKey::Fetch => {
            ResponseKind::Fetch(fetch::answer(broker, version, decode(api, version, body)?).await)
        }
        ApiKey::ListOffsets => {
            ResponseKind::ListOffsets(list_offsets::answer(broker, decode(api, version, body)?))
        }
        ApiKey::InitProducerId => ResponseKind::InitProducerId(init_producer_id::answer(broker)),
        _ => return Err(ProtocolError::NotServed { api, version }),
    };
    Ok(Some(answer))
}
