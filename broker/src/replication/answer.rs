//! A leader's answer to a follower's fetch, read as it arrives: each
//! partition is handed over as soon as its bytes are in (decoded by
//! kafka-protocol), so a follower holds one partition's records at a time
//! rather than the whole answer, which may be as big as
//! `replica.fetch.response.max.bytes` (10 MiB by default), per leader.
//! What is read here is only where each part ends: Fetch v12's layout,
//! the version followers send.

use bytes::BytesMut;
use gregor_client::{Body, ClientError};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::protocol::Decodable;

/// The Fetch version whose answers this reads.
pub const VERSION: i16 = 12;

/// Bytes of a v12 partition before its aborted transactions: index, error
/// code, high watermark, last stable offset, log start offset.
const PARTITION_FIXED: usize = 4 + 2 + 8 + 8 + 8;
/// Bytes of an aborted transaction before its tagged fields: producer id
/// and first offset.
const ABORTED_FIXED: usize = 8 + 8;
/// Bytes of the preferred read replica.
const PREFERRED_REPLICA: usize = 4;

/// The answer's own fields, beside its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The fetch's error (a fetch session's, say), 0 if none.
    pub error_code: i16,
    /// The fetch session the leader keeps, 0 if none.
    pub session_id: i32,
}

/// Reads a Fetch v12 answer's `body` to its end, handing each partition
/// to `each` with its topic's name, in the answer's order.
pub async fn read(
    body: &mut Body<'_>,
    mut each: impl FnMut(&str, PartitionData),
) -> Result<Head, ClientError> {
    let _throttle_time_ms = body.read_i32().await?;
    let error_code = body.read_i16().await?;
    let session_id = body.read_i32().await?;
    let topics = compact_len(body.read_uvarint().await?);
    for _ in 0..topics {
        let mut name = BytesMut::new();
        let len = compact_len(body.read_uvarint().await?);
        body.copy_into(&mut name, len).await?;
        let name = std::str::from_utf8(&name)
            .map_err(|_| bad("a topic name that is not UTF-8"))?
            .to_owned();
        let partitions = compact_len(body.read_uvarint().await?);
        for _ in 0..partitions {
            let partition = read_partition(body).await?;
            each(&name, partition);
        }
        body.skip_tagged_fields().await?;
    }
    body.skip_tagged_fields().await?;
    if body.remaining() > 0 {
        return Err(bad(&format!(
            "{} bytes after the answer's end",
            body.remaining()
        )));
    }
    Ok(Head {
        error_code,
        session_id,
    })
}

/// Copies one partition's bytes, then decodes them.
async fn read_partition(body: &mut Body<'_>) -> Result<PartitionData, ClientError> {
    let mut bytes = BytesMut::new();
    body.copy_into(&mut bytes, PARTITION_FIXED).await?;
    let aborted = compact_len(body.copy_uvarint_into(&mut bytes).await?);
    for _ in 0..aborted {
        body.copy_into(&mut bytes, ABORTED_FIXED).await?;
        body.copy_tagged_fields_into(&mut bytes).await?;
    }
    body.copy_into(&mut bytes, PREFERRED_REPLICA).await?;
    let records = compact_len(body.copy_uvarint_into(&mut bytes).await?);
    body.copy_into(&mut bytes, records).await?;
    body.copy_tagged_fields_into(&mut bytes).await?;
    let mut bytes = bytes.freeze();
    PartitionData::decode(&mut bytes, VERSION).map_err(|e| bad(&e.to_string()))
}

/// The length a compact (varint plus one) length says; 0 for null.
fn compact_len(encoded: u32) -> usize {
    encoded.saturating_sub(1) as usize
}

fn bad(what: &str) -> ClientError {
    ClientError::BadResponse(format!("fetch answer: {what}"))
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes};
    use gregor_client::Connection;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch,
    };
    use kafka_protocol::messages::{
        BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn partition(index: i32, records: Option<&[u8]>) -> PartitionData {
        let mut p = PartitionData::default();
        p.partition_index = index;
        p.high_watermark = 100 + i64::from(index);
        p.last_stable_offset = 90;
        p.log_start_offset = 3;
        p.records = records.map(Bytes::copy_from_slice);
        p
    }

    /// An answer with what a follower meets: records of several sizes,
    /// none, aborted transactions, a diverging epoch and a leader (tagged
    /// fields), an error.
    fn answer() -> FetchResponse {
        let mut diverging = partition(1, None);
        diverging.diverging_epoch = EpochEndOffset::default().with_epoch(4).with_end_offset(77);
        diverging.current_leader = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(2))
            .with_leader_epoch(5);
        let mut aborted = partition(2, Some(&[7; 300]));
        aborted.aborted_transactions = Some(vec![
            AbortedTransaction::default()
                .with_producer_id(ProducerId(11))
                .with_first_offset(40),
            AbortedTransaction::default()
                .with_producer_id(ProducerId(12))
                .with_first_offset(41),
        ]);
        let mut refused = partition(3, None);
        refused.error_code = 6;
        let big = vec![1u8; 70_000];
        let mut a = FetchableTopicResponse::default();
        a.topic = TopicName(StrBytes::from_static_str("a"));
        a.partitions = vec![partition(0, Some(&big)), diverging, aborted];
        let mut b = FetchableTopicResponse::default();
        b.topic = TopicName(StrBytes::from_static_str("bé"));
        b.partitions = vec![refused, partition(0, Some(b"x"))];
        let mut empty = FetchableTopicResponse::default();
        empty.topic = TopicName(StrBytes::from_static_str("empty"));
        let mut r = FetchResponse::default();
        r.session_id = 1234;
        r.responses = vec![a, b, empty];
        r
    }

    /// A connection whose peer answers one request with `body` as its
    /// response (header v1), or with `body` cut to `cut` bytes.
    async fn served(body: Bytes, cut: Option<usize>) -> Connection {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let len = theirs.read_i32().await.expect("request length");
            let mut request = vec![0u8; len as usize];
            theirs.read_exact(&mut request).await.expect("request");
            let correlation = i32::from_be_bytes([request[4], request[5], request[6], request[7]]);
            let mut header = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(correlation)
                .encode(&mut header, FetchResponse::header_version(VERSION))
                .expect("header");
            let mut frame = BytesMut::new();
            frame.put_i32((header.len() + body.len()) as i32);
            frame.extend_from_slice(&header);
            frame.extend_from_slice(&body[..cut.unwrap_or(body.len())]);
            // The reader has what was written, then the end of the pipe.
            theirs.write_all(&frame).await.expect("answer");
        });
        Connection::over(ours, "test")
    }

    fn encoded(r: &FetchResponse) -> Bytes {
        let mut body = BytesMut::new();
        r.encode(&mut body, VERSION).expect("encodes");
        body.freeze()
    }

    #[tokio::test]
    async fn every_partition_arrives_as_kafka_protocol_decodes_it() {
        let sent = answer();
        let mut conn = served(encoded(&sent), None).await;
        let mut got: Vec<(String, PartitionData)> = Vec::new();
        let head = {
            let mut body = conn
                .send_streamed(&FetchRequest::default(), VERSION)
                .await
                .expect("sent");
            read(&mut body, |topic, p| got.push((topic.to_string(), p)))
                .await
                .expect("read")
        };
        assert_eq!(
            head,
            Head {
                error_code: 0,
                session_id: 1234
            }
        );
        let want: Vec<(String, PartitionData)> = sent
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.to_string(), p.clone()))
            })
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_cut_answer_is_an_error_and_the_connection_is_not_reused() {
        let body = encoded(&answer());
        for cut in [0, 5, 40, body.len() / 2, body.len() - 1] {
            let mut conn = served(body.clone(), Some(cut)).await;
            {
                let mut body = conn
                    .send_streamed(&FetchRequest::default(), VERSION)
                    .await
                    .expect("sent");
                let read = read(&mut body, |_, _| {}).await;
                assert!(read.is_err(), "cut at {cut}: {read:?}");
            }
            assert!(matches!(
                conn.send(&FetchRequest::default(), VERSION).await,
                Err(ClientError::Abandoned)
            ));
        }
    }
}
