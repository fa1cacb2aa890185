//! Micro-benchmarks of the broker's hot paths, so a regression shows up
//! without starting a cluster: appending a produced batch to a log, reading
//! batches back, and decoding / encoding a produce request.
//! Run with `cargo bench -p gregor-broker`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gregor_broker::log::{batch, Log, LogConfig};
use gregor_broker::protocol::decode_frame;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ApiKey, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::Compression;

/// Records per batch and bytes per value: what a producer with the default
/// 16 KiB `batch.size` sends for 1 KiB records.
const RECORDS: usize = 16;
const VALUE: usize = 1024;

fn produced_batch() -> BytesMut {
    let value = Bytes::from(vec![b'x'; VALUE]);
    let records = (0..RECORDS).map(|i| {
        (
            Some(Bytes::from(format!("key-{i}"))),
            Some(value.clone()),
            1_700_000_000_000,
        )
    });
    batch::encode(records, Compression::None).expect("encodable")
}

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 30,
        segment_ms: i64::MAX,
        retention_ms: -1,
        retention_bytes: -1,
        index_interval_bytes: 4096,
        max_message_bytes: 1 << 20,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut log = Log::open(dir.path(), log_config()).expect("log");
    let batch = produced_batch().freeze();
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("append 16 x 1 KiB batch", |b| {
        b.iter_batched(
            || batch.clone(),
            |records| log.append(records, 1).expect("append"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut log = Log::open(dir.path(), log_config()).expect("log");
    let batch = produced_batch().freeze();
    let batches = 4096;
    for _ in 0..batches {
        log.append(batch.clone(), 1).expect("append");
    }
    let end = log.log_end_offset();
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Bytes(1 << 20));
    let mut offset = 0;
    group.bench_function("read 1 MiB", |b| {
        b.iter(|| {
            let data = log.read(offset, 1 << 20, true).expect("read");
            offset = (offset + (data.len() / batch.len() * RECORDS) as i64) % end;
            black_box(data)
        })
    });
    group.finish();
}

/// A produce request for 6 partitions, one batch each, and its header.
fn produce_request_parts(version: i16) -> (RequestHeader, ProduceRequest) {
    let batch = produced_batch().freeze();
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("bench"));
    topic.partition_data = (0..6)
        .map(|p| {
            let mut d = PartitionProduceData::default();
            d.index = p;
            d.records = Some(batch.clone());
            d
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![topic];
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Produce as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("bench"));
    (header, req)
}

/// The frame a client sends (without the size prefix).
fn encode(header: &RequestHeader, req: &ProduceRequest, version: i16) -> BytesMut {
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, ProduceRequest::header_version(version))
        .expect("header");
    req.encode(&mut buf, version).expect("request");
    buf
}

fn produce_request(c: &mut Criterion) {
    let version = 9;
    let (header, req) = produce_request_parts(version);
    let frame = encode(&header, &req, version).freeze();
    let mut group = c.benchmark_group("produce request");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode 6 x 16 KiB (v9)", |b| {
        b.iter(|| decode_frame(black_box(frame.clone())).expect("decodes"))
    });
    group.bench_function("encode 6 x 16 KiB (v9)", |b| {
        b.iter(|| encode(black_box(&header), black_box(&req), version))
    });
    group.finish();
}

criterion_group!(hot_paths, append, read, produce_request);
criterion_main!(hot_paths);
