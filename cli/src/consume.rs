//! `gregor consume`: records of a topic to standard output, one value per
//! line, like `kafka-console-consumer.sh`: from the end or the beginning,
//! or from a group's committed offsets, stopping after a number of records,
//! after a quiet spell, or when asked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::ResponseError;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::cluster::{Cluster, TopicInfo};
use crate::error::{check, is_retriable, CliError};
use crate::group::{Beat, Membership};

const FETCH_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 7;
/// Kafka's ListOffsets timestamps for the first and the next offset.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
/// Long poll: also how quickly a stop request is noticed.
const MAX_WAIT_MS: i32 = 500;
const COMMIT_EVERY: Duration = Duration::from_secs(5);

/// What `gregor consume` was asked.
pub struct ConsumeOptions {
    /// Topic to read.
    pub topic: String,
    /// Consumer group; without one, every partition is read.
    pub group: Option<String>,
    /// Start at the first offset when there is no committed one.
    pub from_beginning: bool,
    /// Stop after this many records.
    pub max_messages: Option<u64>,
    /// Stop when nothing arrived for this long.
    pub timeout: Option<Duration>,
    /// Print `key<separator>value`.
    pub print_key: bool,
    /// Between key and value.
    pub key_separator: String,
}

/// Reads until a stop condition or `stop` is set; returns the number of
/// records written. A group member commits what it has written and leaves
/// the group at the end.
pub async fn consume(
    cluster: &mut Cluster,
    opts: &ConsumeOptions,
    out: &mut (impl AsyncWrite + Unpin),
    stop: &AtomicBool,
) -> Result<u64, CliError> {
    let mut topic = cluster.topic(&opts.topic).await?;
    let mut member = opts.group.as_deref().map(Membership::new);
    // Assigned partitions → next offset to read.
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    if member.is_none() {
        let all: BTreeSet<i32> = topic.partitions.iter().map(|p| p.index).collect();
        positions = reset(cluster, &topic, &all, opts.from_beginning).await?;
    }
    let mut written = 0u64;
    let mut last_record = Instant::now();
    let mut last_commit = Instant::now();
    let mut committed = positions.clone();
    let outcome = loop {
        if stop.load(Ordering::Relaxed)
            || opts.max_messages.is_some_and(|m| written >= m)
            || opts.timeout.is_some_and(|t| last_record.elapsed() >= t)
        {
            break Ok(());
        }
        if let Some(m) = member.as_mut() {
            if m.due() {
                let owned: BTreeSet<i32> = positions.keys().copied().collect();
                match m.heartbeat(cluster, &topic, &owned).await {
                    Ok(Beat::Fenced) => positions.clear(),
                    Ok(Beat::Assigned(assigned)) => {
                        let revoked: BTreeMap<i32, i64> = positions
                            .iter()
                            .filter(|(p, _)| !assigned.contains(p))
                            .map(|(p, o)| (*p, *o))
                            .collect();
                        m.commit(cluster, &topic.name, &revoked).await?;
                        positions.retain(|p, _| assigned.contains(p));
                        let added: BTreeSet<i32> = assigned
                            .iter()
                            .filter(|p| !positions.contains_key(p))
                            .copied()
                            .collect();
                        if !added.is_empty() {
                            topic = cluster.topic(&opts.topic).await?;
                            let mut start = m.committed(cluster, &topic.name, &added).await?;
                            let missing: BTreeSet<i32> = added
                                .iter()
                                .filter(|p| !start.contains_key(p))
                                .copied()
                                .collect();
                            start.extend(
                                reset(cluster, &topic, &missing, opts.from_beginning).await?,
                            );
                            positions.extend(start);
                        }
                    }
                    Ok(Beat::Unchanged) => {}
                    Err(e) => break Err(e),
                }
            }
        }
        if positions.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let mut round = fetch_round(cluster, &topic, &mut positions, opts, out, written).await;
        if let Ok(Round { records, .. }) = &round {
            if *records > 0 {
                if let Err(e) = out.flush().await {
                    round = Err(e.into());
                }
            }
        }
        match round {
            // Whoever reads the output has gone (`| head`): stop quietly.
            Err(CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => break Ok(()),
            Ok(Round { records, stale }) => {
                if records > 0 {
                    written += records;
                    last_record = Instant::now();
                }
                if stale {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    match cluster.topic(&opts.topic).await {
                        Ok(t) => topic = t,
                        Err(e) => break Err(e),
                    }
                }
            }
            Err(e) => break Err(e),
        }
        if let Some(m) = member.as_mut() {
            if last_commit.elapsed() >= COMMIT_EVERY && committed != positions {
                m.commit(cluster, &topic.name, &positions).await?;
                committed = positions.clone();
                last_commit = Instant::now();
            }
        }
    };
    match out.flush().await {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if let Some(m) = member.as_mut() {
        m.commit(cluster, &topic.name, &positions).await?;
        m.leave(cluster).await?;
    }
    outcome.map(|()| written)
}

/// Start positions for partitions without a committed offset.
async fn reset(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    partitions: &BTreeSet<i32>,
    from_beginning: bool,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let timestamp = if from_beginning { EARLIEST } else { LATEST };
    let mut out = BTreeMap::new();
    for (leader, parts) in by_leader(topic, partitions)? {
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.name.clone()));
        t.partitions = parts
            .iter()
            .map(|p| {
                let mut lp = ListOffsetsPartition::default();
                lp.partition_index = *p;
                lp.current_leader_epoch = -1;
                lp.timestamp = timestamp;
                lp
            })
            .collect();
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        let resp = cluster.send_to(leader, &req, LIST_OFFSETS_VERSION).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                check(
                    p.error_code,
                    None,
                    format!("finding the start of {}-{}", topic.name, p.partition_index),
                )?;
                out.insert(p.partition_index, p.offset);
            }
        }
    }
    Ok(out)
}

fn by_leader(
    topic: &TopicInfo,
    partitions: &BTreeSet<i32>,
) -> Result<BTreeMap<i32, Vec<i32>>, CliError> {
    let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in partitions {
        out.entry(topic.leader(*p, "reading")?)
            .or_default()
            .push(*p);
    }
    Ok(out)
}

struct Round {
    records: u64,
    /// Some leader moved or did not answer: refresh the metadata.
    stale: bool,
}

/// One fetch from each leader of the assigned partitions.
async fn fetch_round(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    positions: &mut BTreeMap<i32, i64>,
    opts: &ConsumeOptions,
    out: &mut (impl AsyncWrite + Unpin),
    already: u64,
) -> Result<Round, CliError> {
    let assigned: BTreeSet<i32> = positions.keys().copied().collect();
    let leaders = match by_leader(topic, &assigned) {
        Ok(l) => l,
        Err(_) => {
            return Ok(Round {
                records: 0,
                stale: true,
            })
        }
    };
    let mut round = Round {
        records: 0,
        stale: false,
    };
    for (leader, parts) in leaders {
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_string(topic.name.clone()));
        t.partitions = parts
            .iter()
            .map(|p| {
                let mut fp = FetchPartition::default();
                fp.partition = *p;
                fp.current_leader_epoch = -1;
                fp.fetch_offset = positions.get(p).copied().unwrap_or(0);
                fp.last_fetched_epoch = -1;
                fp.log_start_offset = -1;
                fp.partition_max_bytes = 1 << 20;
                fp
            })
            .collect();
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = MAX_WAIT_MS;
        req.min_bytes = 1;
        req.max_bytes = 50 << 20;
        req.session_epoch = -1;
        req.topics = vec![t];
        let resp = match cluster.send_to(leader, &req, FETCH_VERSION).await {
            Ok(r) => r,
            Err(_) => {
                round.stale = true;
                continue;
            }
        };
        check(resp.error_code, None, "fetching")?;
        for t in &resp.responses {
            for p in &t.partitions {
                let what = format!("reading {}-{}", topic.name, p.partition_index);
                if p.error_code == ResponseError::OffsetOutOfRange.code() {
                    let one = BTreeSet::from([p.partition_index]);
                    positions.extend(reset(cluster, topic, &one, opts.from_beginning).await?);
                    continue;
                }
                if is_retriable(p.error_code) {
                    round.stale = true;
                    continue;
                }
                check(p.error_code, None, what)?;
                let Some(position) = positions.get_mut(&p.partition_index) else {
                    continue;
                };
                let Some(data) = p.records.clone() else {
                    continue;
                };
                let limit = opts
                    .max_messages
                    .map(|m| m.saturating_sub(already + round.records));
                round.records += write_records(data, position, opts, out, limit).await?;
            }
        }
    }
    Ok(round)
}

/// Writes the records at or past `position`, moving it on; at most `limit`.
async fn write_records(
    mut data: Bytes,
    position: &mut i64,
    opts: &ConsumeOptions,
    out: &mut (impl AsyncWrite + Unpin),
    limit: Option<u64>,
) -> Result<u64, CliError> {
    let mut written = 0;
    while !data.is_empty() {
        // A partial batch at the end of a response is read next time.
        let Ok(set) = RecordBatchDecoder::decode(&mut data) else {
            break;
        };
        for r in set.records {
            if r.offset < *position {
                continue;
            }
            *position = r.offset + 1;
            if r.control {
                continue;
            }
            if limit.is_some_and(|l| written >= l) {
                *position = r.offset;
                return Ok(written);
            }
            let mut line = Vec::new();
            if opts.print_key {
                line.extend_from_slice(r.key.as_deref().unwrap_or(b"null"));
                line.extend_from_slice(opts.key_separator.as_bytes());
            }
            line.extend_from_slice(r.value.as_deref().unwrap_or(b"null"));
            line.push(b'\n');
            out.write_all(&line).await?;
            written += 1;
        }
    }
    Ok(written)
}
