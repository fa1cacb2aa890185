"""Log compaction (cleanup.policy=compact) against real brokers: what a
consumer reads back after the cleaner ran, tombstones past
delete.retention.ms, records without a key refused, Kafka's own
kafka-dump-log reading the cleaned segments, a kill -9 in the middle of a
cleaning, and a follower catching up from its leader's compacted log."""

import re
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Gregor, GregorCluster, kafka_tool, unique, wait_until

# Cleaner settings that make cleanings happen within a test's patience.
FAST_CLEANER = {"log.cleaner.backoff.ms": "100"}
# A topic compacted at once, in small segments.
COMPACTED = {
    "cleanup.policy": "compact",
    "segment.bytes": "4096",
    "min.cleanable.dirty.ratio": "0.01",
}


def create(bootstrap, topic, configs, partitions=1, replicas=1):
    # The admin client, not kafka-topics: Kafka's tool refuses segments
    # under 1 MiB before asking the broker, and the tests roll small ones.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, replicas, config=configs)])[topic].result(30)


def produce(bootstrap, topic, records, **conf):
    """Writes (key, value) pairs with an idempotent acks=all producer, in
    order; returns each acknowledged record's offset."""
    # Small batches, so small segments roll and records of one key are
    # spread over many batches.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "enable.idempotence": True,
                         "compression.type": "lz4", "batch.num.messages": 25, **conf})
    acked, failed = {}, []

    def report(err, msg):
        if err:
            failed.append(err)
        else:
            acked[msg.offset()] = (msg.key(), msg.value())

    for i, (k, v) in enumerate(records):
        producer.produce(topic, key=k, value=v, on_delivery=report)
        if i % 500 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert not failed, failed
    return acked


def read_all(bootstrap, topic, partition=0):
    """Every record from the log start to the high watermark:
    [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("read"),
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        c.assign([TopicPartition(topic, partition, -2)])
        out = []
        deadline = time.time() + 60
        while time.time() < deadline:
            m = c.poll(1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= high:
                        return out
                    continue
                raise KafkaException(m.error())
            out.append((m.offset(), m.key(), m.value()))
        raise AssertionError(f"read {len(out)} records of {topic} but not up to {high}")
    finally:
        c.close()


def latest(acked):
    """Each key's last acknowledged value (None for a tombstone)."""
    out = {}
    for offset in sorted(acked):
        k, v = acked[offset]
        out[k] = v
    return out


def updates(keys, rounds, prefix=b"v"):
    return [(b"key-%d" % k, b"%s-%d-%d" % (prefix, r, k)) for r in range(rounds) for k in range(keys)]


def partition_dir(broker, topic, partition=0):
    return broker.data / f"{topic}-{partition}"


def test_a_compacted_topic_keeps_each_keys_latest_record_and_drops_old_tombstones(tmp_path):
    broker = Gregor(tmp_path / "gregor", props=FAST_CLEANER, http=True).start()
    try:
        topic = unique("compacted")
        create(broker.bootstrap, topic, {**COMPACTED, "delete.retention.ms": "3000"})
        records = updates(40, 30)
        # Ten keys deleted, then more updates of the others roll the
        # tombstones out of the active segment, where they can be cleaned.
        records += [(b"key-%d" % k, None) for k in range(10)]
        records += [(b"key-%d" % k, b"late-%d-%d" % (r, k)) for r in range(10) for k in range(10, 40)]
        acked = produce(broker.bootstrap, topic, records)
        want = latest(acked)

        seen = []

        def compacted():
            seen[:] = read_all(broker.bootstrap, topic)
            return len(seen) < len(acked) // 3

        wait_until(compacted, 60, "the cleaner to compact the topic")
        offsets = [o for o, _, _ in seen]
        assert offsets == sorted(set(offsets)), "offsets only grow"
        assert offsets[-1] - offsets[0] + 1 > len(offsets), "compaction leaves gaps"
        # Every record read is one that was acknowledged, at its offset,
        # and each key's last one is among them.
        for offset, k, v in seen:
            assert acked[offset] == (k, v)
        last_seen = {}
        for _, k, v in seen:
            last_seen[k] = v
        assert last_seen == want
        metrics = broker.metrics()
        assert metrics["gregor_log_cleaner_cleanings_total"] >= 1
        assert metrics["gregor_log_cleaner_records_removed_total"] >= len(acked) - len(seen)
        # Past delete.retention.ms the tombstones go (those the active
        # segment holds excepted), the deleted keys with them.
        deleted = {k for k, v in want.items() if v is None}

        def tombstones_gone():
            seen[:] = read_all(broker.bootstrap, topic)
            return not {k for _, k, _ in seen} & deleted

        wait_until(tombstones_gone, 60, "tombstones to be removed after delete.retention.ms")
        assert {k: v for _, k, v in seen} == {k: v for k, v in want.items() if v is not None}
        # Kafka's own tool reads the cleaned segments: the same records,
        # offsets and keys.
        segments = sorted(partition_dir(broker, topic).glob("*.log"))
        dump = kafka_tool("kafka-dump-log", "--print-data-log", "--files", ",".join(map(str, segments))).stdout
        dumped = [(int(o), k.encode()) for o, k in re.findall(r"\| offset: (\d+) .*? key: (\S+)", dump)]
        assert dumped == [(o, k) for o, k, _ in seen]
    finally:
        broker.stop()


def test_transaction_markers_go_once_their_records_are_compacted_away(tmp_path):
    """A compacted topic written in transactions (librdkafka's
    transactional producer, committing and aborting in turn), then every
    key written again plainly: the cleaner removes the transactions'
    records, then their markers once delete.retention.ms has passed (an
    abort marker must outlive its records, or a read_committed consumer
    told of the aborted transaction would skip its producer's later
    batches), and the aborted transactions' index entries with them. As in
    Kafka, the producer's last batch keeps its (emptied) header, so its
    sequence survives, and so its transaction's marker stays: kafka-dump-log
    finds that one control batch only, and a read_committed consumer reads
    each key's latest value."""
    broker = Gregor(tmp_path / "gregor", props=FAST_CLEANER).start()
    try:
        topic = unique("txn-compacted")
        create(broker.bootstrap, topic, {**COMPACTED, "delete.retention.ms": "2000"})
        txn = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique("txn-compacted"),
                        "linger.ms": 2})
        txn.init_transactions(30)
        # Seven, the last committed; each flushed, so aborted ones are
        # written too.
        for t in range(7):
            txn.begin_transaction()
            for k in range(10):
                txn.produce(topic, key=b"key-%d" % k, value=b"txn-%d-%d" % (t, k))
            txn.flush(30)
            if t % 2:
                txn.abort_transaction(30)
            else:
                txn.commit_transaction(30)
        acked = produce(broker.bootstrap, topic, updates(10, 30))
        want = latest(acked)
        data = partition_dir(broker, topic)

        def controls():
            files = ",".join(map(str, sorted(data.glob("*.log"))))
            return re.findall(r"baseOffset: (\d+) .*isControl: true", kafka_tool("kafka-dump-log", "--files", files).stdout)

        # Left: the last transaction's marker, after its ten records and the
        # six transactions before it, eleven offsets each (a marker per
        # transaction was written: each ended).
        wait_until(lambda: controls() == [str(7 * 11 - 1)], 90, "the cleaner to remove the transactions' markers")
        assert sum(f.stat().st_size for f in data.glob("*.txnindex")) == 0, "aborted entries left"
        assert {k: v for _, k, v in read_all(broker.bootstrap, topic)} == want
    finally:
        broker.stop()


def test_records_without_a_key_are_refused_on_a_compacted_topic(gregor):
    topic = unique("keyless")
    create(gregor.bootstrap, topic, {"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": gregor.bootstrap, "retries": 0})
    errors = []
    producer.produce(topic, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    producer.produce(topic, key=b"k", value=b"keyed", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert [e and e.code() for e in errors] == [KafkaError.INVALID_RECORD, None]
    assert [(k, v) for _, k, v in read_all(gregor.bootstrap, topic)] == [(b"k", b"keyed")]


def test_kill_9_in_the_middle_of_a_cleaning_loses_nothing(tmp_path):
    # A slow cleaner (throttled) so the kill lands while it writes.
    props = {**FAST_CLEANER, "log.cleaner.io.max.bytes.per.second": "300000"}
    broker = Gregor(tmp_path / "gregor", props=props).start()
    try:
        topic = unique("crash")
        create(broker.bootstrap, topic, {**COMPACTED, "segment.bytes": "262144"})
        value = b"x" * 200
        acked = produce(broker.bootstrap, topic, [(b"key-%d" % (i % 500), value + b"%d" % i) for i in range(20000)],
                        **{"compression.type": "none"})
        want = latest(acked)
        d = partition_dir(broker, topic)
        wait_until(lambda: list(d.glob("*.cleaned")), 60, "a cleaning under way")
        broker.kill()
        assert list(d.glob("*.cleaned")), "killed while cleaning"
        # Back without its cleaner: the interrupted cleaning is undone or
        # finished at open, and every acknowledged latest value is there.
        broker.props["log.cleaner.enable"] = "false"
        broker.start()
        assert not list(d.glob("*.cleaned")) and not list(d.glob("*.swap"))
        seen = read_all(broker.bootstrap, topic)
        for offset, k, v in seen:
            assert acked[offset] == (k, v)
        assert {k: v for _, k, v in seen} == want
        # Each offset once: no segment was left twice.
        assert len({o for o, _, _ in seen}) == len(seen)
        # With the cleaner back it cleans to the end.
        broker.stop()
        broker.props["log.cleaner.enable"] = "true"
        broker.start()
        wait_until(lambda: len(read_all(broker.bootstrap, topic)) < len(acked) // 4, 120,
                   "the cleaning to finish after the restart")
    finally:
        broker.stop()


def describe(bootstrap, topic):
    out = kafka_tool("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", topic).stdout
    m = re.search(r"Leader: (\d+)\s+Replicas: ([\d,]+)\s+Isr: ([\d,]+)", out)
    return int(m[1]), [int(x) for x in m[3].split(",")]


def test_a_follower_catches_up_from_its_leaders_compacted_log(tmp_path):
    cluster = GregorCluster(tmp_path / "cluster", props=FAST_CLEANER).start()
    try:
        topic = unique("follow")
        create(cluster.bootstrap, topic, COMPACTED, replicas=3)
        leader, _ = describe(cluster.bootstrap, topic)
        follower = next(b for b in cluster.brokers if b.node_id != leader)
        acked = produce(cluster.bootstrap, topic, updates(30, 5))
        follower.stop()
        # While it is away the leader takes many updates and cleans them.
        acked.update(produce(cluster.bootstrap, topic, updates(30, 60, prefix=b"away")))
        lead = cluster.broker(leader)
        wait_until(lambda: "cleaned a compacted log" in lead.log_text(), 60, "the leader to clean")
        follower.start()
        wait_until(lambda: describe(cluster.bootstrap, topic)[1].count(follower.node_id) == 1, 60,
                   "the follower back in the ISR")
        # What it copied, read from its files by Kafka's own tool.
        follower.stop()
        segments = sorted(partition_dir(follower, topic).glob("*.log"))
        dump = kafka_tool("kafka-dump-log", "--print-data-log", "--files", ",".join(map(str, segments))).stdout
        copied = [(int(o), k.encode(), v.encode())
                  for o, k, v in re.findall(r"\| offset: (\d+) .*? key: (\S+) payload: (\S+)", dump)]
        assert len(copied) < len(acked) // 2, "it copied the compacted log"
        for offset, k, v in copied:
            assert acked[offset] == (k, v)
        assert {k: v for _, k, v in copied} == latest(acked)
        assert "diverged" not in follower.log_text()
    finally:
        cluster.stop()


def offsets_topic_configs(bootstrap):
    out = kafka_tool("kafka-configs", "--bootstrap-server", bootstrap, "--describe", "--entity-type", "topics",
                     "--entity-name", "__consumer_offsets").stdout
    return dict(re.findall(r"\b([a-z.]+)=(\S+?)(?: sensitive|\s*$)", out, re.M))


def test_consumer_offsets_is_compacted_by_the_cleaner(tmp_path):
    props = {**FAST_CLEANER, "offsets.topic.num.partitions": "1", "offsets.topic.segment.bytes": "20000"}
    broker = Gregor(tmp_path / "gregor", props=props).start()
    try:
        assert offsets_topic_configs(broker.bootstrap)["cleanup.policy"] == "compact"
        topic = unique("committed")
        create(broker.bootstrap, topic, {})
        group = unique("busy")
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
        for i in range(3000):
            c.commit(offsets=[TopicPartition(topic, 0, i)], asynchronous=False)
        c.close()
        d = partition_dir(broker, "__consumer_offsets")
        size = lambda: sum(f.stat().st_size for f in d.glob("*.log"))  # noqa: E731
        wait_until(lambda: size() < 3 * 20000, 60, "the cleaner to drop superseded commits")
        broker.restart()

        def committed():
            c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
            try:
                return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
            finally:
                c.close()

        assert committed() == 2999
        # A topic an earlier Gregor made (kept small by rewriting it, with
        # cleanup.policy=delete and retention.ms=-1) is compacted from the
        # next start on.
        kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--alter", "--entity-type", "topics",
                   "--entity-name", "__consumer_offsets", "--add-config", "cleanup.policy=delete,retention.ms=-1")
        assert offsets_topic_configs(broker.bootstrap)["cleanup.policy"] == "delete"
        broker.restart()
        configs = offsets_topic_configs(broker.bootstrap)
        assert configs["cleanup.policy"] == "compact" and "retention.ms" not in configs, configs
        assert committed() == 2999
    finally:
        broker.stop()
