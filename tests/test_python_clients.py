"""confluent-kafka (librdkafka) and kafka-python against one Gregor broker:
keys, headers, timestamps, every codec, every acks level, offsets by time,
consumer groups."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from conftest import unique
from wire import RECENT_TS

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def create_topic(bootstrap, name, partitions=1, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])
    futures[name].result(timeout=30)


def produce_all(bootstrap, topic, messages, **conf):
    """Produces (key, value, headers, timestamp, partition) tuples; returns
    the delivery reports in order of delivery."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})
    delivered = []

    def report(err, msg):
        delivered.append((err, msg))

    for key, value, headers, ts, partition in messages:
        kwargs = {"key": key, "value": value, "headers": headers, "on_delivery": report}
        if ts is not None:
            kwargs["timestamp"] = ts
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
    assert producer.flush(30) == 0
    return delivered


def consume_n(bootstrap, topic, n, partitions=None, timeout=30, **conf):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("reader"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **conf,
    })
    if partitions is None:
        consumer.subscribe([topic])
    else:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        out.append(msg)
    consumer.close()
    assert len(out) == n, f"consumed {len(out)} of {n}"
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_round_trip_with_every_codec(gregor, codec):
    topic = unique(f"ck-{codec}")
    create_topic(gregor.bootstrap, topic, partitions=2)
    base_ts = RECENT_TS
    messages = [
        (f"key-{i}".encode(), f"value-{i}".encode() * (i % 7 + 1), [("h", f"{i}".encode()), ("z", b"")],
         base_ts + i, i % 2)
        for i in range(300)
    ]
    delivered = produce_all(gregor.bootstrap, topic, messages,
                            **{"compression.type": codec, "acks": "all", "enable.idempotence": True})
    assert all(err is None for err, _ in delivered)
    got = consume_n(gregor.bootstrap, topic, 300)
    by_key = {m.key(): m for m in got}
    for key, value, headers, ts, partition in messages:
        m = by_key[key]
        assert m.value() == value
        assert m.headers() == headers
        assert m.timestamp() == (1, ts)  # CreateTime
        assert m.partition() == partition
    for p in (0, 1):
        offsets = [m.offset() for m in got if m.partition() == p]
        assert sorted(offsets) == list(range(150))


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_acks_levels(gregor, acks):
    topic = unique(f"acks{acks}")
    create_topic(gregor.bootstrap, topic)
    messages = [(None, f"m{i}".encode(), None, None, 0) for i in range(100)]
    delivered = produce_all(gregor.bootstrap, topic, messages, acks=acks, **{"enable.idempotence": False})
    assert all(err is None for err, _ in delivered)
    if acks != "0":
        assert [m.offset() for _, m in delivered] == list(range(100))
    got = consume_n(gregor.bootstrap, topic, 100, partitions=[0])
    assert [m.value() for m in got] == [f"m{i}".encode() for i in range(100)]


def test_list_offsets_by_time(gregor):
    topic = unique("bytime")
    create_topic(gregor.bootstrap, topic)
    base = RECENT_TS - 100_000
    # Ten batches, one record each, timestamps 1 s apart.
    for i in range(10):
        produce_all(gregor.bootstrap, topic, [(None, f"t{i}".encode(), None, base + 1000 * i, 0)])
    consumer = Consumer({"bootstrap.servers": gregor.bootstrap, "group.id": unique("t")})
    cases = [(base - 1, 0), (base, 0), (base + 1, 1), (base + 4500, 5), (base + 9000, 9), (base + 9001, -1)]
    for ts, want in cases:
        [tp] = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
        assert tp.error is None
        assert tp.offset == want, (ts, tp.offset, want)
    lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (lo, hi) == (0, 10)
    consumer.close()


def test_message_over_the_limit_is_refused_and_nothing_else_is_lost(gregor):
    topic = unique("big")
    create_topic(gregor.bootstrap, topic, config={"max.message.bytes": "2000"})
    # One request each: a batch over the limit is refused as a whole.
    errors = {}
    for value in [b"small", b"x" * 5000, b"after"]:
        [(err, msg)] = produce_all(gregor.bootstrap, topic, [(None, value, None, None, 0)])
        errors[msg.value()[:5]] = err
    assert errors[b"small"] is None and errors[b"after"] is None
    assert errors[b"xxxxx"].code() == KafkaError.MSG_SIZE_TOO_LARGE
    got = consume_n(gregor.bootstrap, topic, 2, partitions=[0])
    assert [m.value() for m in got] == [b"small", b"after"]


def test_consumer_group_shares_partitions_and_commits(gregor):
    topic = unique("share")
    group = unique("grp")
    create_topic(gregor.bootstrap, topic, partitions=4)
    produce_all(gregor.bootstrap, topic, [(f"{i}".encode(), b"v", None, None, i % 4) for i in range(400)])
    conf = {
        "bootstrap.servers": gregor.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
    }
    a, b = Consumer(conf), Consumer(conf)
    a.subscribe([topic])
    b.subscribe([topic])
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < 400 and time.monotonic() < deadline:
        for c in (a, b):
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                seen[msg.key()] = c
                c.commit(message=msg, asynchronous=False)
    assert len(seen) == 400
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    assert {p.partition for p in a.assignment()} | {p.partition for p in b.assignment()} == {0, 1, 2, 3}
    committed = a.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    assert [tp.offset for tp in committed] == [100, 100, 100, 100]
    a.close()
    b.close()

    # The committed offsets survive a broker restart.
    gregor.restart()
    c = Consumer(conf)
    committed = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    assert [tp.offset for tp in committed] == [100, 100, 100, 100]
    c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_round_trip(gregor, codec):
    topic = unique(f"kp-{codec}")
    create_topic(gregor.bootstrap, topic, partitions=2)
    producer = KafkaProducer(
        bootstrap_servers=gregor.bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
    )
    futures = [
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                      headers=[("n", str(i).encode())], timestamp_ms=(RECENT_TS - 50_000) + i, partition=i % 2)
        for i in range(100)
    ]
    metas = [f.get(timeout=30) for f in futures]
    producer.close()
    assert sorted(m.offset for m in metas if m.partition == 0) == list(range(50))

    consumer = KafkaConsumer(
        bootstrap_servers=gregor.bootstrap,
        group_id=unique("kp"),
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
    )
    consumer.subscribe([topic])
    got = []
    for msg in consumer:
        got.append(msg)
        if len(got) == 100:
            break
    consumer.commit()
    tps = [KTopicPartition(topic, p) for p in (0, 1)]
    assert sum(consumer.committed(tp) for tp in tps) == 100
    offsets = consumer.offsets_for_times({tps[0]: (RECENT_TS - 50_000) + 10})
    assert offsets[tps[0]].offset == 5
    consumer.close()
    assert len(got) == 100
    for m in got:
        i = int(m.key[1:])
        assert m.value == f"v{i}".encode()
        assert m.headers == [("n", str(i).encode())]
        assert m.timestamp == (RECENT_TS - 50_000) + i
        assert m.partition == i % 2


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_kafka_python_acks_levels(gregor, acks):
    topic = unique(f"kpacks{acks}")
    create_topic(gregor.bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=gregor.bootstrap, acks=acks, linger_ms=5)
    futures = [producer.send(topic, value=f"m{i}".encode(), partition=0) for i in range(50)]
    metas = [f.get(timeout=30) for f in futures]
    producer.flush()
    producer.close()
    if acks != 0:  # with acks=0 nothing comes back to report an offset
        assert [m.offset for m in metas] == list(range(50))
    got = consume_n(gregor.bootstrap, topic, 50, partitions=[0])
    assert [m.value() for m in got] == [f"m{i}".encode() for i in range(50)]


def test_a_lone_broker_runs_transactions(gregor):
    """A single node keeps its transaction log with one replica, so a
    transactional producer works without extra settings: read_committed
    consumers read the committed transactions and never the aborted one
    between them; read_uncommitted consumers read everything. librdkafka
    and kafka-python both."""
    topic = unique("txn-lone")
    create_topic(gregor.bootstrap, topic)
    producer = Producer({"bootstrap.servers": gregor.bootstrap, "transactional.id": unique("txn")})
    producer.init_transactions(60)
    for prefix, commit in (("c", True), ("a", False), ("d", True)):
        producer.begin_transaction()
        for i in range(5):
            producer.produce(topic, f"{prefix}{i}".encode(), partition=0)
        if commit:
            producer.commit_transaction(60)
        else:
            producer.flush(30)
            producer.abort_transaction(60)
    committed = [f"{p}{i}".encode() for p in "cd" for i in range(5)]
    # The aborted records sit between the two committed transactions: had
    # any been delivered, they would come before d0.
    got = consume_n(gregor.bootstrap, topic, 10, partitions=[0], **{"isolation.level": "read_committed"})
    assert [m.value() for m in got] == committed
    everything = consume_n(gregor.bootstrap, topic, 15, partitions=[0],
                           **{"isolation.level": "read_uncommitted"})
    assert [m.value() for m in everything] == committed[:5] + [f"a{i}".encode() for i in range(5)] + committed[5:]

    producer = KafkaProducer(bootstrap_servers=gregor.bootstrap, transactional_id=unique("txn"),
                             max_block_ms=60000)
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, b"kafka-python", partition=0)
    producer.commit_transaction()
    producer.close(timeout=5)
    got = consume_n(gregor.bootstrap, topic, 11, partitions=[0], **{"isolation.level": "read_committed"})
    assert got[-1].value() == b"kafka-python"
