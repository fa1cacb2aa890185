"""Kafka's ecosystem on a three-broker Gregor cluster, as its users run it:
Kafka Connect in distributed mode (a worker dies, its task moves on),
Kafka Streams with a state store that is restored from its changelog, a
schema registry that keeps its schemas in a topic (Apicurio Registry, used
through confluent-kafka's Avro serializer), and clients reading a compacted
topic whose offsets have gaps. Connect, Streams and the schema registry
create their own topics, compacted where they want them compacted.

The applications are real processes (tests/ecosystem.py). With
TEST_ECOSYSTEM_ON=kafka the same tests run against the reference Apache
Kafka broker instead (one node, so one replica), to tell a difference of
Gregor's from a fault of the test.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from conftest import ROOT, ApacheKafka, GregorCluster, report_measure, unique, wait_until
from ecosystem import ConnectWorker, SchemaRegistry, StreamsApp


class Target:
    """The cluster the applications run against, and how many replicas
    their topics get there."""

    def __init__(self, cluster, replication):
        self.cluster = cluster
        self.bootstrap = cluster.bootstrap
        self.replication = replication
        self._admin = None

    def admin(self):
        # One client, kept: a future is dropped with the client it came from.
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create_topic(self, name, partitions=1, config=None):
        futures = self.admin().create_topics([NewTopic(name, partitions, self.replication, config=config or {})])
        futures[name].result(timeout=30)

    def topic_config(self, name):
        """{key: value} of a topic's configuration, as DescribeConfigs
        answers it."""
        res = ConfigResource("topic", name)
        return {k: e.value for k, e in self.admin().describe_configs([res])[res].result(timeout=30).items()}

    def topics(self):
        return set(self.admin().list_topics(timeout=30).topics)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """One three-broker Gregor cluster for every test of the module (or the
    reference Apache Kafka broker, see the module's doc)."""
    if os.environ.get("TEST_ECOSYSTEM_ON") == "kafka":
        cluster, replication = ApacheKafka(tmp_path_factory.mktemp("ecosystem-kafka")).start(), 1
    else:
        cluster, replication = GregorCluster(tmp_path_factory.mktemp("ecosystem-cluster")).start(), 3
    yield Target(cluster, replication)
    cluster.stop()


# --- Kafka Connect -----------------------------------------------------------

LINE = "line-{:06d}"


def sink_lines(path):
    """The line numbers in the sink file, in file order. A worker killed
    while writing a line can leave a part of it without its newline: the
    part does not match (the numbers have a fixed width), and the line comes
    again, since its offset was not committed."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [int(n) for n in re.findall(r"line-(\d{6})", text)]


LINE_BYTES = len(LINE.format(0)) + 1


def source_position(worker):
    """The byte offset in the source file that Connect has stored for the
    FileStreamSource connector (0 before it has stored one)."""
    status, body = worker.rest("GET", "/connectors/file-source/offsets")
    if status != 200 or not body.get("offsets"):
        return 0
    return body["offsets"][0]["offset"]["position"]


def connector_task(worker, name):
    """(state, worker_id) of the connector's task 0 as `worker` reports it,
    or None before it has one."""
    status, body = worker.rest("GET", f"/connectors/{name}/status")
    if status != 200 or not body.get("tasks"):
        return None
    task = body["tasks"][0]
    return task["state"], task["worker_id"]


def test_connect_task_of_a_killed_worker_resumes_on_the_other_without_losing_lines(target, tmp_path):
    """Two Connect workers share a group; a FileStreamSource reads a file
    into a topic and a FileStreamSink writes the topic to another file. The
    worker running the source task is killed with -9 as it reads more lines,
    once Connect has stored a source offset: the task resumes
    on the other worker from the offset stored in Connect's offsets topic
    (which Connect created compacted), and the sink file ends up with every
    line, in order, repeated only where a task went back to its last
    committed offset."""
    group = unique("connect")
    topic = unique("connect-lines")
    target.create_topic(topic)
    source, sink = tmp_path / "source.txt", tmp_path / "sink.txt"
    source.touch()
    workers = [ConnectWorker(tmp_path, f"worker-{i}", target.bootstrap, group, target.replication)
               for i in (1, 2)]
    total, first_part = 30000, 10000
    written = 0

    def append(upto):
        nonlocal written
        with open(source, "a") as f:
            f.write("".join(LINE.format(n) + "\n" for n in range(written + 1, upto + 1)))
        written = upto

    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready()
        # Connect created its internal topics itself, compacted.
        for kind, name in workers[0].topics.items():
            assert target.topic_config(name)["cleanup.policy"] == "compact", kind

        # A batch larger than the file: FileStreamSourceTask keeps the lines
        # it has read past a full batch in its buffer until the file grows
        # again, which the last lines of the file never see.
        status, body = workers[0].rest("PUT", "/connectors/file-source/config", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "tasks.max": "1", "file": str(source), "topic": topic, "batch.size": str(2 * total)})
        assert status in (200, 201), body
        status, body = workers[1].rest("PUT", "/connectors/file-sink/config", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": "1", "file": str(sink), "topics": topic})
        assert status in (200, 201), body

        append(first_part)
        wait_until(lambda: (connector_task(workers[0], "file-source") or ("",))[0] == "RUNNING", 120,
                   "the source task to run", failed=workers[0].died)
        _, running_on = connector_task(workers[0], "file-source")
        [victim] = [w for w in workers if w.worker_id == running_on]
        [survivor] = [w for w in workers if w is not victim]
        # Once Connect has stored a source offset, the rest of the lines
        # are written and the worker is killed as they arrive.
        wait_until(lambda: source_position(survivor) >= 1000 * LINE_BYTES, 120,
                   "a source offset to be committed", failed=survivor.died)
        append(total)
        wait_until(lambda: len(sink_lines(sink)) > first_part, 120, "the new lines to reach the sink file",
                   failed=victim.died)
        victim.kill()
        lines_at_kill = len(sink_lines(sink))
        # Where the task will resume (the worker may have stored a later
        # offset than this before it died, never an earlier one).
        committed_lines = source_position(survivor) // LINE_BYTES

        wait_until(lambda: connector_task(survivor, "file-source") == ("RUNNING", survivor.worker_id), 120,
                   "the source task to run on the surviving worker", failed=survivor.died)
        try:
            wait_until(lambda: set(sink_lines(sink)) >= set(range(1, total + 1)), 180,
                       "every line in the sink file", failed=survivor.died, step=1)
        except AssertionError as e:
            # Where the lines stopped: at the source, in the topic or at the sink.
            missing = sorted(set(range(1, total + 1)) - set(sink_lines(sink)))
            sink_status = survivor.rest("GET", "/connectors/file-sink/status")
            raise AssertionError(
                f"{e}: {len(missing)} lines missing, from {missing[0]}; source offset stored: line "
                f"{source_position(survivor) // LINE_BYTES}; records in {topic}: "
                f"{len(Reader(target.bootstrap, topic).to_end())}; sink: {sink_status}") from e
    finally:
        for w in workers:
            w.kill()

    seen = sink_lines(sink)
    assert seen[0] == 1
    assert set(seen) == set(range(1, total + 1))
    # Each line follows the one before it, or starts a replay from a
    # committed offset: never does a line skip ahead.
    skips = [(a, b) for a, b in zip(seen, seen[1:]) if b != a + 1 and b > a]
    assert skips == []
    # The task resumed from the offset Connect had stored, not from the
    # start: the lines before it are in the topic once.
    reader = Reader(target.bootstrap, topic)
    in_topic = [int(v[len("line-"):]) for _, v in reader.to_end()]
    reader.close()
    assert set(in_topic) == set(range(1, total + 1))
    again = sorted(n for n in set(in_topic) if in_topic.count(n) > 1)
    assert not again or again[0] > committed_lines, f"line {again[0]} sent again, {committed_lines} committed"
    report_measure("Connect: lines in the sink file when the source worker was killed", lines_at_kill)
    report_measure("Connect: lines written twice after the kill (at-least-once)", len(seen) - total)


# --- Kafka Streams -----------------------------------------------------------

class Reader:
    """Everything of a one-partition topic, read on and on from the start."""

    def __init__(self, bootstrap, topic):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                                  "enable.auto.commit": False})
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.topic = topic
        self.records = []

    def poll(self):
        while (msg := self.consumer.poll(0.2)) is not None:
            if msg.error():
                raise KafkaException(msg.error())
            self.records.append((msg.key() and msg.key().decode(), msg.value().decode()))
        return self.records

    def to_end(self):
        """The records up to the partition's end (its high watermark now)."""
        tp = TopicPartition(self.topic, 0)
        _, high = self.consumer.get_watermark_offsets(tp, timeout=30)

        def at_end():
            self.poll()
            return self.consumer.position([tp])[0].offset >= high

        wait_until(at_end, 60, f"{self.topic} to be read up to offset {high}")
        return self.records

    def latest(self):
        return dict(self.poll())

    def close(self):
        self.consumer.close()


def produce_lines(bootstrap, topic, lines):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for line in lines:
        producer.produce(topic, value=line)
    assert producer.flush(30) == 0


# The word count's input: "apple banana" lines in bursts, "cherry" once.
BURSTS, BURST = 5, 100


def test_streams_state_store_is_restored_from_its_compacted_changelog_after_a_restart(target, tmp_path):
    """A word count keeps its counts in a persistent state store, backed by
    a changelog topic Kafka Streams creates compacted. Once the cleaner has
    compacted the changelog, the application is stopped, its local state
    directory deleted and started again: it restores the store from what
    the cleaner left, and the counts go on from where they were."""
    app_id = unique("wordcount")
    words, counts = unique("words"), unique("word-counts")
    changelog = f"{app_id}-counts-changelog"
    target.create_topic(words)
    target.create_topic(counts)
    output = Reader(target.bootstrap, counts)

    def word_count(name):
        app = StreamsApp(tmp_path, name, target.bootstrap, app_id, words, counts, target.replication)
        app.state_dir = tmp_path / "state"
        # Its internal topics roll a segment per burst and are cleaned
        # as soon as they can be.
        app.props.update({"state.dir": app.state_dir, "topic.segment.ms": 100,
                          "topic.min.cleanable.dirty.ratio": 0.01})
        return app.start()

    app = word_count("wordcount")
    try:
        produce_lines(target.bootstrap, words, ["cherry"])
        for burst in range(1, BURSTS + 1):
            produce_lines(target.bootstrap, words, ["apple banana"] * BURST)
            expected = {"apple": str(burst * BURST), "banana": str(burst * BURST), "cherry": "1"}
            wait_until(lambda: output.latest() == expected, 180, f"the counts after burst {burst}",
                       failed=app.died)
        assert target.topic_config(changelog)["cleanup.policy"] == "compact"
        updates = 1 + 2 * BURSTS * BURST
        wait_until(lambda: len(read_confluent(target.bootstrap, changelog, decode=False)) < updates, 300,
                   "the cleaner to compact the changelog", failed=app.died, step=2)
        report_measure("Streams: changelog records left of the updates",
                       f"{len(read_confluent(target.bootstrap, changelog, decode=False))} of {updates}")
        app.stop()
        assert app.state_transitions()[-1] == "NOT_RUNNING"

        # The local copy of the store is gone: only the changelog has it.
        shutil.rmtree(app.state_dir)
        app = word_count("wordcount-restarted")
        produce_lines(target.bootstrap, words, ["apple cherry", "date"])
        n = BURSTS * BURST
        wait_until(lambda: output.latest() == {"apple": str(n + 1), "banana": str(n), "cherry": "2", "date": "1"},
                   180, "the counts after the restart", failed=app.died)
        # No count started again from zero, none was counted twice.
        assert [v for k, v in output.poll() if k == "apple"] == [str(i) for i in range(1, n + 2)]
        assert [v for k, v in output.poll() if k == "cherry"] == ["1", "2"]
    finally:
        app.stop()
        output.close()


# --- A schema registry -------------------------------------------------------

USER_V1 = """{"type": "record", "name": "User", "namespace": "dev.gregor.test",
 "fields": [{"name": "name", "type": "string"}]}"""
# Backward compatible: the new field has a default.
USER_V2 = """{"type": "record", "name": "User", "namespace": "dev.gregor.test",
 "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int", "default": -1}]}"""
# Not backward compatible: a field changes its type.
USER_BAD = """{"type": "record", "name": "User", "namespace": "dev.gregor.test",
 "fields": [{"name": "name", "type": "long"}]}"""


def registry_client(url):
    """A registry client whose requests time out (and are retried) rather
    than wait for ever on an answer that never comes."""
    return SchemaRegistryClient({"url": url, "timeout": 10})


# Subjects named by topic, as the test registers them. confluent-kafka's
# default first asks the registry for an association of the topic (an API
# Apicurio does not have), which a 404 answers.
BY_TOPIC = {"auto.register.schemas": False, "subject.name.strategy": topic_subject_name_strategy}


def test_schema_registry_keeps_schemas_in_the_cluster_across_a_restart(target, tmp_path):
    """Apicurio Registry with its Kafka storage, through its
    Confluent-compatible API: a schema is registered and evolved (an
    incompatible change refused), records are produced with
    confluent-kafka's Avro serializer; the registry restarts with nothing
    but its topic, and still has every version, its ids and its
    compatibility rule, and the records deserialize through it."""
    journal = unique("schemas")
    topic = unique("users")
    subject = f"{topic}-value"
    target.create_topic(topic)
    registry = SchemaRegistry(tmp_path, "registry", target.bootstrap, journal)
    try:
        registry.start().wait_ready()
        client = registry_client(registry.ccompat_url)
        id1 = client.register_schema(subject, Schema(USER_V1, "AVRO"))
        client.set_compatibility(subject, "BACKWARD")
        assert client.test_compatibility(subject, Schema(USER_V2, "AVRO"))
        assert not client.test_compatibility(subject, Schema(USER_BAD, "AVRO"))
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema(subject, Schema(USER_BAD, "AVRO"))
        assert refused.value.http_status_code == 409
        id2 = client.register_schema(subject, Schema(USER_V2, "AVRO"))
        assert id2 != id1
        assert client.get_versions(subject) == [1, 2]

        producer = Producer({"bootstrap.servers": target.bootstrap, "acks": "all"})
        ctx = SerializationContext(topic, MessageField.VALUE)
        old = AvroSerializer(client, USER_V1, conf={**BY_TOPIC, "use.latest.version": False})
        new = AvroSerializer(client, USER_V2, conf=BY_TOPIC)
        producer.produce(topic, value=old({"name": "ada"}, ctx))
        producer.produce(topic, value=new({"name": "grace", "age": 85}, ctx))
        assert producer.flush(30) == 0

        # Its schemas are records of its journal topic, kept for ever.
        assert journal in target.topics()
        assert target.topic_config(journal)["retention.ms"] == "-1"
        registry.stop()
        registry = SchemaRegistry(tmp_path, "registry-restarted", target.bootstrap, journal)
        registry.start().wait_ready()

        client = registry_client(registry.ccompat_url)
        assert client.get_subjects() == [subject]
        assert client.get_versions(subject) == [1, 2]
        assert client.get_version(subject, 1).schema_id == id1
        assert client.get_version(subject, 2).schema_id == id2
        assert client.get_compatibility(subject) == "BACKWARD"
        with pytest.raises(SchemaRegistryError):
            client.register_schema(subject, Schema(USER_BAD, "AVRO"))

        # Records written before the restart read through the restarted
        # registry, the old one in the reader's (new) schema.
        deserialize = AvroDeserializer(client, USER_V2)
        consumer = Consumer({"bootstrap.servers": target.bootstrap, "group.id": unique("avro"),
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, 0)])
        users = []
        deadline = time.monotonic() + 60
        while len(users) < 2 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                users.append(deserialize(msg.value(), ctx))
        consumer.close()
        assert users == [{"name": "ada", "age": -1}, {"name": "grace", "age": 85}]
    finally:
        registry.stop()


# --- Clients reading a compacted topic ---------------------------------------

# Keys written once, first, and keys written over and over after them.
ONCE = [f"once-{k}" for k in range(3)]
KEYS = [f"key-{k}" for k in range(5)]
ROUNDS = 1000
PADDING = "x" * 1000


def read_confluent(bootstrap, topic, start=0, limit=None, decode=True):
    """(offset, key, value) of every record from `start` to the end (or the
    first `limit`), with confluent-kafka (key and value as text, or as
    bytes unless `decode`)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("compacted"),
                         "enable.auto.commit": False})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, start)])
        out = []
        deadline = time.monotonic() + 60
        while (not out or out[-1][0] < high - 1) and (limit is None or len(out) < limit):
            assert time.monotonic() < deadline, f"read {len(out)} records up to {out[-1:]}, end {high}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            if decode:
                out.append((msg.offset(), msg.key().decode(), msg.value().decode()))
            else:
                out.append((msg.offset(), msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


def read_kafka_python(bootstrap, topic, start=0, limit=None):
    """The same with kafka-python."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = KTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        high = consumer.end_offsets([tp])[tp]
        out = []
        deadline = time.monotonic() + 60
        while (not out or out[-1][0] < high - 1) and (limit is None or len(out) < limit):
            assert time.monotonic() < deadline, f"read {len(out)} records up to {out[-1:]}, end {high}"
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.offset, r.key.decode(), r.value.decode()) for r in records)
        return out if limit is None else out[:limit]
    finally:
        consumer.close()


FRANZ_READ = ROOT / ".cache" / "franz" / "franz-read"


def read_franz(bootstrap, topic, start=0, limit=None):
    """franz-go's reading (tests/franz): [(offset, key, value)] from
    `start`, `limit` records or up to the high watermark."""
    out = subprocess.run([str(FRANZ_READ), "-brokers", bootstrap, "-topic", topic, "-from", str(start),
                          "-limit", str(limit or 0)], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    return [(r["offset"], r["key"], r["value"]) for r in map(json.loads, out.stdout.splitlines())]


def test_clients_read_a_compacted_topic_with_offset_gaps(target):
    """A few keys written once, then many values for a few other keys, in
    a compacted topic with small segments: once the cleaner has run, the
    consumers of confluent-kafka, kafka-python and franz-go read from the beginning
    the records of the keys written once where they were, every key's
    latest value, the values of a key in the order they were written, and
    offsets that increase with gaps; a consumer placed on an offset the
    cleaner removed gets the next record that is still there."""
    topic = unique("compacted")
    target.create_topic(topic, config={
        "cleanup.policy": "compact", "segment.bytes": "1048576",
        "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"})
    producer = Producer({"bootstrap.servers": target.bootstrap, "acks": "all", "linger.ms": 20})
    for key in ONCE:
        producer.produce(topic, key=key, value=f"0:{PADDING}")
    for r in range(ROUNDS):
        for key in KEYS:
            producer.produce(topic, key=key, value=f"{r}:{PADDING}")
    assert producer.flush(60) == 0
    produced = len(ONCE) + ROUNDS * len(KEYS)

    # The cleaner runs on its own schedule: wait until it has removed
    # records, then until the log stays as it is (a pass is over).
    wait_until(lambda: len(read_confluent(target.bootstrap, topic)) < produced, 300,
               "the cleaner to remove overwritten values", step=2)
    last = [None]

    def settled():
        now = read_confluent(target.bootstrap, topic)
        same, last[0] = now == last[0], now
        return same

    wait_until(settled, 300, "the cleaned log to stay as it is", step=3)
    report_measure("compacted topic: records left of the produced", f"{len(last[0])} of {produced}")

    for read in (read_confluent, read_kafka_python, read_franz):
        records = read(target.bootstrap, topic)
        assert records == last[0], read.__name__
        offsets = [o for o, _, _ in records]
        assert all(a < b for a, b in zip(offsets, offsets[1:])), read.__name__
        # The keys written once keep their records, where they were.
        assert records[:len(ONCE)] == [(i, key, f"0:{PADDING}") for i, key in enumerate(ONCE)], read.__name__
        gaps = sorted(set(range(offsets[-1])) - set(offsets))
        assert gaps and gaps[0] == len(ONCE), read.__name__
        for key in KEYS:
            rounds = [int(v.split(":")[0]) for _, k, v in records if k == key]
            assert rounds == sorted(rounds) and rounds[-1] == ROUNDS - 1, (read.__name__, key)
        # Placed on removed offsets, the first, one in the middle and the
        # last, the consumer gets the next record there is.
        for gap in (gaps[0], gaps[len(gaps) // 2], gaps[-1]):
            [first] = read(target.bootstrap, topic, start=gap, limit=1)
            assert first == next(r for r in records if r[0] > gap), (read.__name__, gap)
