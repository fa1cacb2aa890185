//! Fetch: each partition answers copies of its template rebased to follow
//! on from the consumer's position (see [`crate::batch::rebased`]), within
//! the request's byte limits. With nothing to return, the answer waits up
//! to `max_wait_ms` for a produce, as a long poll does. There are no fetch
//! sessions: every answer is a full one (session id 0).

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::topics::{Topic, Topics};

/// The first Fetch version that names topics by id.
const TOPIC_IDS: i16 = 13;

/// The answer for `request` at `version`.
pub async fn answer(broker: &Broker, version: i16, request: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + wait;
    loop {
        // Registered before reading, so a produce in between is not missed.
        let appended = broker.appended();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let response = read(broker, version, &request);
        if request.min_bytes <= 0 || has_news(&response) || Instant::now() >= deadline {
            return response;
        }
        if tokio::time::timeout_at(deadline, appended).await.is_err() {
            // Nothing was appended since: the answer is still current.
            return response;
        }
    }
}

/// Whether the answer has records or errors.
fn has_news(response: &FetchResponse) -> bool {
    response.responses.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| p.error_code != 0 || p.records.as_ref().is_some_and(|r| !r.is_empty()))
    })
}

/// The answer as of now.
fn read(broker: &Broker, version: i16, request: &FetchRequest) -> FetchResponse {
    // The partitions are cloned (cheaply) so the copies are made unlocked.
    let found: Vec<Result<Topic, ResponseError>> = {
        let mut topics = broker.topics();
        request
            .topics
            .iter()
            .map(|asked| find(&mut topics, version, asked))
            .collect()
    };
    let mut room = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut first = true;
    let mut r = FetchResponse::default();
    r.responses = request
        .topics
        .iter()
        .zip(found)
        .map(|(asked, topic)| {
            let mut t = FetchableTopicResponse::default();
            t.topic = asked.topic.clone();
            t.topic_id = asked.topic_id;
            t.partitions = asked
                .partitions
                .iter()
                .map(|p| partition_data(topic.as_ref(), p, &mut room, &mut first))
                .collect();
            t
        })
        .collect();
    r
}

/// The topic asked for: by id from v13, else by name (created if new).
fn find(topics: &mut Topics, version: i16, asked: &FetchTopic) -> Result<Topic, ResponseError> {
    if version >= TOPIC_IDS {
        topics
            .with_id(&asked.topic_id)
            .map(|(_, topic)| topic.clone())
            .ok_or(ResponseError::UnknownTopicId)
    } else {
        Ok(topics.named(&asked.topic).clone())
    }
}

/// One partition's answer, taking its bytes from `room`; the first
/// partition with data gets at least one batch.
fn partition_data(
    topic: Result<&Topic, &ResponseError>,
    asked: &FetchPartition,
    room: &mut usize,
    first: &mut bool,
) -> PartitionData {
    let mut d = PartitionData::default();
    d.partition_index = asked.partition;
    let partition = match topic {
        Ok(topic) => topic.partition(asked.partition),
        Err(e) => {
            d.error_code = e.code();
            return d;
        }
    };
    let Some(partition) = partition else {
        d.error_code = ResponseError::UnknownTopicOrPartition.code();
        return d;
    };
    let end = partition.end();
    d.high_watermark = end;
    d.last_stable_offset = end;
    d.log_start_offset = 0;
    if !(0..=end).contains(&asked.fetch_offset) {
        d.error_code = ResponseError::OffsetOutOfRange.code();
        return d;
    }
    let limit = usize::try_from(asked.partition_max_bytes)
        .unwrap_or(0)
        .min(*room);
    let records = partition.read(asked.fetch_offset, limit, *first);
    if !records.is_empty() {
        *first = false;
        *room = room.saturating_sub(records.len());
    }
    d.records = Some(records);
    d
}
