"""What survives a broker that dies: kill -9 in the middle of producing,
a torn tail on disk, a clean restart; and what retention removes."""

import json
import subprocess
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import unique, wait_until

# Produces forever with acks=all and appends every acknowledged
# (partition, offset, value) to a file as soon as the ack arrives.
PRODUCER = r"""
import json, sys
from confluent_kafka import Producer
bootstrap, topic, out = sys.argv[1:4]
acked = open(out, "a", buffering=1)
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
              "enable.idempotence": True, "message.timeout.ms": 5000,
              "reconnect.backoff.max.ms": 200})
def report(err, msg):
    if err is None:
        acked.write(json.dumps([msg.partition(), msg.offset(), msg.value().decode()]) + "\n")
i = 0
while True:
    try:
        p.produce(topic, value=f"record-{i}", partition=i % 2, on_delivery=report)
        i += 1
    except BufferError:
        pass
    p.poll(0.001 if i % 100 else 0.01)
"""


def create(bootstrap, topic, partitions, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(30)


def watermarks(consumer, topic, partition):
    """The partition's watermarks once its leader serves them: a broker
    that just started serves clients before it leads its partitions again
    (NOT_LEADER_OR_FOLLOWER, which clients retry)."""
    got = []

    def ask():
        try:
            got.append(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10))
            return True
        except KafkaException as e:
            if e.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION:
                raise
            return False

    wait_until(ask, 30, f"{topic}-{partition} to be led")
    return got[-1]


def read_all(bootstrap, topic, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("verify"),
                         "enable.auto.commit": False})
    ends = {}
    for p in range(partitions):
        ends[p] = watermarks(consumer, topic, p)[1]
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = {}
    deadline = time.monotonic() + 60
    while sum(len([k for k in got if k[0] == p]) for p in ends) < sum(ends.values()):
        assert time.monotonic() < deadline, "timed out reading back"
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got[(msg.partition(), msg.offset())] = msg.value().decode()
    consumer.close()
    return got, ends


def test_kill_9_during_produce_loses_no_acknowledged_record(gregor_factory, tmp_path):
    # Small segments so the kill lands among several rolled segments.
    broker = gregor_factory(props={"log.segment.bytes": "65536"})
    topic = unique("durable")
    create(broker.bootstrap, topic, 2)
    acked_file = tmp_path / "acked.jsonl"
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, broker.bootstrap, topic, str(acked_file)])
    try:
        deadline = time.monotonic() + 60
        while not acked_file.exists() or sum(1 for _ in acked_file.open()) < 20000:
            assert time.monotonic() < deadline, "producer made no progress"
            assert producer.poll() is None, "producer died"
            time.sleep(0.05)
        broker.kill()
        time.sleep(0.5)
    finally:
        producer.kill()
        producer.wait()

    acked = [json.loads(line) for line in acked_file.read_text().splitlines() if line.endswith("]")]
    assert len(acked) >= 20000
    broker.start()
    got, ends = read_all(broker.bootstrap, topic, 2)
    missing = [(p, o, v) for p, o, v in acked if got.get((p, o)) != v]
    assert missing == [], f"{len(missing)} acknowledged records lost or changed, e.g. {missing[:5]}"
    # Offsets are dense: nothing was skipped or duplicated.
    for p, end in ends.items():
        assert sorted(o for (q, o) in got if q == p) == list(range(end))
    values = list(got.values())
    assert len(values) == len(set(values)), "a record was stored twice"


def segment_files(broker, topic, partition):
    return sorted((broker.data / f"{topic}-{partition}").glob("*.log"))


def produce(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for v in values:
        p.produce(topic, value=v, partition=0)
        p.flush(10)


def test_torn_tail_is_truncated_on_start_up(gregor_factory):
    broker = gregor_factory()
    topic = unique("torn")
    create(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, [f"v{i}" for i in range(10)])
    broker.stop()

    # A crash mid-write: half of a new batch at the end of the active segment.
    [segment] = segment_files(broker, topic, 0)
    whole = segment.read_bytes()
    with segment.open("ab") as f:
        f.write(whole[-40:][:25])
    broker.start()
    assert "recovery truncated a torn or corrupt tail of the log" in broker.log_text()
    assert segment.stat().st_size == len(whole)
    produce(broker.bootstrap, topic, ["after"])
    got, ends = read_all(broker.bootstrap, topic, 1)
    assert ends == {0: 11}
    assert [got[(0, o)] for o in range(11)] == [f"v{i}" for i in range(10)] + ["after"]


def test_corrupt_bytes_in_the_tail_are_cut_and_the_rest_kept(gregor_factory):
    broker = gregor_factory()
    topic = unique("corrupt")
    create(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, [f"v{i}" for i in range(5)])
    broker.stop()
    [segment] = segment_files(broker, topic, 0)
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # the last batch's CRC no longer matches
    segment.write_bytes(bytes(data))
    broker.start()
    assert "recovery truncated a torn or corrupt tail of the log" in broker.log_text()
    got, ends = read_all(broker.bootstrap, topic, 1)
    assert ends == {0: 4}
    assert [got[(0, o)] for o in range(4)] == [f"v{i}" for i in range(4)]


def test_clean_restart_keeps_topics_configs_data_and_deleted_records(gregor_factory):
    broker = gregor_factory(props={"log.segment.bytes": "1024"})
    topic = unique("restart")
    create(broker.bootstrap, topic, 3, config={"retention.ms": "3600000"})
    produce(broker.bootstrap, topic, [f"v{i}" for i in range(100)])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    cut = TopicPartition(topic, 0, 30)
    admin.delete_records([cut])[cut].result(30)
    assert len(segment_files(broker, topic, 0)) > 3
    broker.restart()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("r")})
    assert watermarks(consumer, topic, 0) == (30, 100)
    consumer.close()
    res = ConfigResource("topic", topic)
    configs = admin.describe_configs([res])[res].result(30)
    assert configs["retention.ms"].value == "3600000"
    md = admin.list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3


def test_retention_by_size_and_time_moves_the_log_start(gregor_factory):
    broker = gregor_factory(props={"log.retention.check.interval.ms": "200", "log.segment.bytes": "1024"})
    by_size, by_time = unique("retain-size"), unique("retain-time")
    create(broker.bootstrap, by_size, 1, config={"retention.bytes": "3000"})
    create(broker.bootstrap, by_time, 1, config={"retention.ms": "1000"})
    value = "x" * 200
    produce(broker.bootstrap, by_size, [value] * 60)
    produce(broker.bootstrap, by_time, [value] * 20)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("ret")})

    def start_offsets():
        return [consumer.get_watermark_offsets(TopicPartition(t, 0), timeout=10) for t in (by_size, by_time)]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (size_lo, size_hi), (time_lo, time_hi) = start_offsets()
        if size_lo > 0 and time_lo == 20:
            break
        time.sleep(0.2)
    assert (size_hi, time_hi) == (60, 20)
    # Whole segments go; what stays of the size-limited log fits the limit
    # plus the active segment.
    kept = sum(f.stat().st_size for f in segment_files(broker, by_size, 0))
    assert size_lo > 0 and kept <= 3000 + 1024 + 300
    # Everything is past retention.ms, the active segment too: as on Kafka,
    # it is rolled and deleted, and the log is empty from offset 20 on.
    assert time_lo == 20
    assert all(f.stat().st_size == 0 for f in segment_files(broker, by_time, 0))
    consumer.close()
