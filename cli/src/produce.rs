//! `gregor produce`: each line of standard input becomes one record, like
//! `kafka-console-producer.sh`. Lines are sent in batches of what has
//! arrived, so a piped file goes fast and a typed line goes at once.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::cluster::{Cluster, TopicInfo};
use crate::error::{check, is_retriable, CliError};
use crate::partitioner;

/// Produce v9: flexible, topic names.
const PRODUCE_VERSION: i16 = 9;
/// Lines sent in one request at most.
const MAX_BATCH: usize = 1000;
/// Tries per batch while leaders move.
const ATTEMPTS: u32 = 10;

/// What `gregor produce` was asked.
pub struct ProduceOptions {
    /// Topic to write to.
    pub topic: String,
    /// -1 (all in-sync replicas) or 1 (the leader).
    pub acks: i16,
    /// When set, each line is `key<separator>value`.
    pub key_separator: Option<String>,
    /// How long the broker may wait for replication, in milliseconds.
    pub timeout_ms: i32,
}

/// Sends every line of `input`; returns how many records were acknowledged.
/// Stops at the first batch that cannot be written.
pub async fn produce(
    cluster: &mut Cluster,
    opts: &ProduceOptions,
    input: impl AsyncRead + Unpin + Send + 'static,
) -> Result<u64, CliError> {
    let mut topic = cluster.topic(&opts.topic).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4 * MAX_BATCH);
    let reader = tokio::spawn(read_lines(input, tx));
    let mut acked = 0u64;
    let mut lines = Vec::with_capacity(MAX_BATCH);
    // Records without a key stick to one partition per batch, moving on
    // with each batch, as Kafka's default partitioner does.
    let mut sticky = 0usize;
    while rx.recv_many(&mut lines, MAX_BATCH).await > 0 {
        let n = topic.partitions.len();
        let mut by_partition: BTreeMap<i32, Vec<(Option<Bytes>, Bytes)>> = BTreeMap::new();
        for line in lines.drain(..) {
            let (key, value) = split(line, opts.key_separator.as_deref());
            let p = match &key {
                Some(k) => partitioner::for_key(k, n),
                None => (sticky % n.max(1)) as i32,
            };
            by_partition.entry(p).or_default().push((key, value));
        }
        sticky = sticky.wrapping_add(1);
        let count: usize = by_partition.values().map(Vec::len).sum();
        let now = now_ms();
        let mut pending = BTreeMap::new();
        for (p, records) in by_partition {
            pending.insert(p, encode_batch(records, now)?);
        }
        if let Err(e) = send(cluster, &mut topic, opts, pending).await {
            return Err(match e {
                CliError::Kafka {
                    what,
                    code,
                    message,
                } => CliError::Kafka {
                    what: format!("{what} ({acked} records before were acknowledged)"),
                    code,
                    message,
                },
                other => other,
            });
        }
        acked += count as u64;
    }
    match reader.await {
        Ok(result) => result?,
        Err(e) => return Err(CliError::Io(std::io::Error::other(e))),
    }
    Ok(acked)
}

async fn read_lines(
    input: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<(), std::io::Error> {
    let mut input = BufReader::new(input);
    loop {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if tx.send(line).await.is_err() {
            return Ok(());
        }
    }
}

/// Splits a line into key and value at the first separator; a line
/// without one is all value.
fn split(line: Vec<u8>, separator: Option<&str>) -> (Option<Bytes>, Bytes) {
    let Some(sep) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) else {
        return (None, Bytes::from(line));
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => {
            let line = Bytes::from(line);
            (Some(line.slice(..at)), line.slice(at + sep.len()..))
        }
        None => (None, Bytes::from(line)),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn encode_batch(records: Vec<(Option<Bytes>, Bytes)>, now: i64) -> Result<Bytes, CliError> {
    let records = records.into_iter().map(|(k, v)| (k, Some(v), now));
    gregor_client::batch::encode(records, Compression::None)
        .map(BytesMut::freeze)
        .map_err(|e| CliError::Records(e.to_string()))
}

/// Writes one encoded batch per partition, following leaders as they move.
/// A retry after a lost response may write a batch twice: the tool is not
/// an idempotent producer.
async fn send(
    cluster: &mut Cluster,
    topic: &mut TopicInfo,
    opts: &ProduceOptions,
    mut pending: BTreeMap<i32, Bytes>,
) -> Result<(), CliError> {
    let mut attempt = 0;
    loop {
        let mut last: Option<CliError> = None;
        let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes)>> = BTreeMap::new();
        for (p, batch) in &pending {
            match topic.leader(*p, "writing to") {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((*p, batch.clone())),
                Err(e) => last = Some(e),
            }
        }
        for (leader, batches) in by_leader {
            let req = produce_request(&topic.name, opts, &batches);
            let resp = match cluster.send_to(leader, &req, PRODUCE_VERSION).await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            for t in &resp.responses {
                for p in &t.partition_responses {
                    let what = format!("writing to {}-{}", topic.name, p.index);
                    match check(p.error_code, p.error_message.as_deref(), what) {
                        Ok(()) => {
                            pending.remove(&p.index);
                        }
                        Err(e) if is_retriable(p.error_code) => last = Some(e),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        attempt += 1;
        if attempt >= ATTEMPTS {
            return Err(last.unwrap_or_else(|| {
                CliError::Usage(format!("no answer for {} partitions", pending.len()))
            }));
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        if let Ok(fresh) = cluster.topic(&topic.name).await {
            *topic = fresh;
        }
    }
}

fn produce_request(topic: &str, opts: &ProduceOptions, batches: &[(i32, Bytes)]) -> ProduceRequest {
    let mut data = TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_owned()));
    data.partition_data = batches
        .iter()
        .map(|(p, batch)| {
            let mut d = PartitionProduceData::default();
            d.index = *p;
            d.records = Some(batch.clone());
            d
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = opts.acks;
    req.timeout_ms = opts.timeout_ms;
    req.topic_data = vec![data];
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        let cases: [(&str, Option<&str>, Option<&str>, &str); 5] = [
            ("v", None, None, "v"),
            ("k:v", Some(":"), Some("k"), "v"),
            ("k:v:w", Some(":"), Some("k"), "v:w"),
            ("no-sep", Some(":"), None, "no-sep"),
            ("k::v", Some("::"), Some("k"), "v"),
        ];
        for (line, sep, key, value) in cases {
            let (k, v) = split(line.as_bytes().to_vec(), sep);
            assert_eq!(k.as_deref(), key.map(str::as_bytes), "{line}");
            assert_eq!(&v[..], value.as_bytes(), "{line}");
        }
    }
}
