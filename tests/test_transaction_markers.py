"""Transactions on the partition side, over the wire: transactional batches
written as a producer sends them (with the leader's verification off, as
Kafka allows, since no coordinator knows them), ended by WriteTxnMarkers
as a transaction coordinator sends it; a read_committed consumer (librdkafka)
skips the aborted records and waits at an open transaction; Kafka's own
kafka-dump-log reads the aborted transaction index and the producer
snapshots a partition reopens from after a restart."""

import re
import struct
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.record.memory_records import MemoryRecordsBuilder

from conftest import kafka_tool, unique, wait_until
import wire
from wire import RECENT_TS, Connection, Reader, frame, header, string


def txn_batch(producer_id, values, base_sequence=0, epoch=0, transactional=True, timestamp=RECENT_TS):
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20, transactional=transactional,
                                   producer_id=producer_id, producer_epoch=epoch,
                                   base_sequence=base_sequence)
    for i, v in enumerate(values):
        builder.append(timestamp=timestamp + i, key=b"k", value=v)
    builder.close()
    return bytes(builder.buffer())


def produce(conn, transactional_id, topic, records):
    """Produce v3 of one batch to partition 0; its error code."""
    return produce_at(conn, transactional_id, topic, records)[0]


def produce_at(conn, transactional_id, topic, records):
    """Produce v3 of one batch to partition 0; its error code and base
    offset."""
    body = string(transactional_id) + struct.pack(">hi", -1, 10000)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">ii", 1, 0) + struct.pack(">i", len(records)) + records
    conn.send(frame(header(0, 3) + body))
    r = Reader(conn.response(), 4)
    r.take(">i")
    r.string()
    r.take(">i")
    r.take(">i")
    return r.take(">h"), r.take(">q")


def write_txn_markers(conn, producer_id, commit, topic, coordinator_epoch=0, epoch=0, version=1,
                      transaction_version=0):
    """WriteTxnMarkers of one marker on partition 0; the partition's error
    code."""
    conn.send(wire.write_txn_markers(producer_id, epoch, commit, topic, coordinator_epoch=coordinator_epoch,
                                     version=version, transaction_version=transaction_version))
    return wire.write_txn_markers_error(conn.response(), producer_id, topic)


def consume(bootstrap, topic, isolation, want, timeout=15):
    """The values a consumer of `isolation` reads from offset 0, once it
    has `want` of them or the time is up."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"),
                         "isolation.level": isolation, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    consumer.close()
    return got


def test_markers_of_transaction_version_2_carry_a_bumped_epoch(gregor_factory):
    """WriteTxnMarkers v2 (KIP-1228): a marker of transaction version 2
    carries the epoch its coordinator bumped at the end, so one at the
    producer's epoch is late (refused) while a transaction is open, and a
    retry of one written already when none is."""
    gregor = gregor_factory(props={"transaction.partition.verification.enable": "false"})
    topic = unique("txn-v2")
    admin = AdminClient({"bootstrap.servers": gregor.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    conn = Connection(gregor.bootstrap)

    def marker(epoch, version=2, transaction_version=2):
        return write_txn_markers(conn, 4000, True, topic, epoch=epoch, version=version,
                                 transaction_version=transaction_version)
    assert produce(conn, "t-v2", topic, txn_batch(4000, [b"a"], epoch=3)) == 0
    assert marker(3) == 47  # INVALID_PRODUCER_EPOCH: a late marker of an earlier transaction
    assert marker(2) == 47
    assert consume(gregor.bootstrap, topic, "read_committed", 1, timeout=3) == []
    assert marker(4) == 0
    assert marker(4) == 0, "a retry of the marker written"
    assert marker(3) == 47
    # Before version 2 a marker at the producer's epoch ends its transaction.
    assert produce(conn, "t-v2", topic, txn_batch(4000, [b"b"], epoch=4, base_sequence=0)) == 0
    assert marker(4, version=1, transaction_version=0) == 0
    assert consume(gregor.bootstrap, topic, "read_committed", 2) == [b"a", b"b"]
    conn.close()


def test_read_committed_consumers_skip_aborted_transactions_and_kafka_reads_the_index(gregor_factory):
    # The test plays the transaction coordinator, so the leader must not
    # ask a real one before a transaction opens (KIP-890 verification).
    gregor = gregor_factory(props={"transaction.partition.verification.enable": "false"})
    topic = unique("txn")
    admin = AdminClient({"bootstrap.servers": gregor.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    conn = Connection(gregor.bootstrap)
    # A transactional batch in a request without a transactional id is
    # refused, as Kafka refuses it.
    assert produce(conn, None, topic, txn_batch(1000, [b"x"])) == 53  # TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    # Producer 1000 aborts offsets 0-1 (marker at 2); 1001 commits 3-4
    # (marker at 5).
    assert produce(conn, "t-a", topic, txn_batch(1000, [b"a1", b"a2"])) == 0
    assert write_txn_markers(conn, 1000, False, topic, coordinator_epoch=4) == 0
    assert produce(conn, "t-c", topic, txn_batch(1001, [b"c1", b"c2"])) == 0
    assert write_txn_markers(conn, 1001, True, topic) == 0
    # A coordinator that lost the producer's transactions is fenced.
    assert write_txn_markers(conn, 1000, True, topic, coordinator_epoch=3) == 52  # TRANSACTION_COORDINATOR_FENCED
    assert consume(gregor.bootstrap, topic, "read_committed", 2) == [b"c1", b"c2"]
    assert consume(gregor.bootstrap, topic, "read_uncommitted", 4) == [b"a1", b"a2", b"c1", b"c2"]
    # An open transaction holds read_committed consumers before it.
    assert produce(conn, "t-o", topic, txn_batch(1002, [b"o1"])) == 0
    assert produce(conn, "t-c", topic, txn_batch(1001, [b"c3"], base_sequence=2)) == 0
    assert consume(gregor.bootstrap, topic, "read_committed", 3, timeout=5) == [b"c1", b"c2"]
    assert write_txn_markers(conn, 1001, True, topic) == 0
    assert write_txn_markers(conn, 1002, True, topic) == 0
    assert consume(gregor.bootstrap, topic, "read_committed", 4) == [b"c1", b"c2", b"o1", b"c3"]
    conn.close()
    # Kafka's tool reads the abort from the segment's .txnindex.
    index = gregor.data / f"{topic}-0" / "00000000000000000000.txnindex"
    dump = kafka_tool("kafka-dump-log", "--files", str(index)).stdout
    entries = re.findall(r"producerId: (\d+) firstOffset: (\d+) lastOffset: (\d+) lastStableOffset: (\d+)", dump)
    assert entries == [("1000", "0", "2", "3")], dump


def producers_on(bootstrap, topic):
    """The producer ids kafka-transactions describe-producers lists for
    partition 0."""
    out = kafka_tool("kafka-transactions", "--bootstrap-server", bootstrap, "describe-producers",
                     "--topic", topic, "--partition", "0").stdout
    return sorted(int(line.split()[0]) for line in out.splitlines()[1:] if line.strip())


def test_idle_producers_are_forgotten_unless_their_transaction_is_open(gregor_factory):
    """After `producer.id.expiration.ms` without a write, a partition
    forgets a producer's sequence state (describe-producers no longer
    lists it) and takes its next batch from whatever sequence it has, as
    Kafka does; a producer whose transaction is open there is kept until
    its marker, then forgotten in turn. Both settings the test needs are
    changed at run time with kafka-configs (cluster-wide, as in Kafka):
    the expiration, and verification off, so this test's raw transactional
    batch needs no coordinator (with it on, such a batch is refused)."""
    gregor = gregor_factory(props={"producer.id.expiration.check.interval.ms": "500"})
    topic = unique("expiry")
    admin = AdminClient({"bootstrap.servers": gregor.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    conn = Connection(gregor.bootstrap)
    assert produce(conn, "t-refused", topic, txn_batch(1999, [b"x"])) != 0
    set_default = ("kafka-configs", "--bootstrap-server", gregor.bootstrap, "--alter", "--entity-type", "brokers",
                   "--entity-default", "--add-config")
    kafka_tool(*set_default, "transaction.partition.verification.enable=false")
    # Both producers are listed while the expiration is still a day; it is
    # shortened only then, so a slow describe cannot race it. A producer's
    # idle time counts from its batch's timestamp.
    now = int(time.time() * 1000)
    assert produce(conn, None, topic, txn_batch(2000, [b"i0"], transactional=False, timestamp=now)) == 0
    assert produce(conn, "t-open", topic, txn_batch(2001, [b"t0"], timestamp=now)) == 0
    assert producers_on(gregor.bootstrap, topic) == [2000, 2001]
    kafka_tool(*set_default, "producer.id.expiration.ms=3000")
    described = kafka_tool("kafka-configs", "--bootstrap-server", gregor.bootstrap, "--describe",
                           "--entity-type", "brokers", "--entity-name", "1", "--all").stdout
    assert re.search(r"producer\.id\.expiration\.ms=3000 sensitive=false "
                     r"synonyms=\{DYNAMIC_DEFAULT_BROKER_CONFIG:producer\.id\.expiration\.ms=3000, "
                     r"DEFAULT_CONFIG:producer\.id\.expiration\.ms=86400000\}", described), described
    wait_until(lambda: producers_on(gregor.bootstrap, topic) == [2001], 30, "the idle producer to be forgotten")
    # Its next batch is taken, sequence 1 though it is unknown now.
    assert produce(conn, None, topic, txn_batch(2000, [b"i1"], base_sequence=1, transactional=False)) == 0
    assert write_txn_markers(conn, 2001, True, topic) == 0
    wait_until(lambda: producers_on(gregor.bootstrap, topic) == [], 30, "both producers to be forgotten")
    conn.close()
    assert consume(gregor.bootstrap, topic, "read_committed", 3) == [b"i0", b"t0", b"i1"]


def test_a_restarted_partition_keeps_its_producers_from_kafka_readable_snapshots(gregor_factory):
    """A partition snapshots its producers when a segment rolls and when
    the broker stops, in Kafka's `.snapshot` format (kafka-dump-log reads
    them), with its `leader-epoch-checkpoint`; after a clean restart it
    replays nothing, and an idempotent retry and an open transaction are
    known as before."""
    gregor = gregor_factory(props={"transaction.partition.verification.enable": "false",
                                   "log.segment.bytes": "1024"})
    topic = unique("snap")
    admin = AdminClient({"bootstrap.servers": gregor.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    conn = Connection(gregor.bootstrap)
    # Producer 3000 writes 30 idempotent batches of two records (0-59),
    # over several segments.
    for i in range(30):
        last = txn_batch(3000, [b"i%d" % (2 * i), b"i%d" % (2 * i + 1)], base_sequence=2 * i, transactional=False)
        assert produce_at(conn, None, topic, last) == (0, 2 * i)
    # 3002 aborts 60 (marker at 61); 3001 opens a transaction at 62.
    assert produce_at(conn, "t-abort", topic, txn_batch(3002, [b"a"])) == (0, 60)
    assert write_txn_markers(conn, 3002, False, topic, coordinator_epoch=2) == 0
    assert produce_at(conn, "t-open", topic, txn_batch(3001, [b"o"])) == (0, 62)
    conn.close()
    gregor.stop()

    part = gregor.data / f"{topic}-0"
    snapshots = sorted(part.glob("*.snapshot"))
    assert len(snapshots) == 2, snapshots
    assert snapshots[-1].name == "00000000000000000063.snapshot"
    dump = kafka_tool("kafka-dump-log", "--files", str(snapshots[-1])).stdout
    entries = {int(m[0]): m for m in re.findall(
        r"producerId: (\d+) producerEpoch: (\d+) coordinatorEpoch: (-?\d+) "
        r"currentTxnFirstOffset: (\S+) lastTimestamp: -?\d+ ?"
        r"(?:firstSequence: (\d+) lastSequence: (\d+) lastOffset: (\d+))?", dump)}
    assert sorted(entries) == [3000, 3001, 3002], dump
    assert entries[3000][3:7] == ("OptionalLong.empty", "58", "59", "59"), dump
    assert entries[3001][3] == "OptionalLong[62]", dump
    assert entries[3002][2:4] == ("2", "OptionalLong.empty"), dump
    lines = (part / "leader-epoch-checkpoint").read_text().splitlines()
    assert lines[0] == "0" and int(lines[1]) == len(lines) - 2 >= 1, lines
    assert lines[2].split()[1] == "0", lines

    gregor.start()
    opened = re.findall(rf"opened from a producer snapshot.*topic=\"?{topic}\"? partition=0 snapshot=(\d+) replayed=(\d+)",
                        gregor.log_text())
    assert opened == [("63", "0")], gregor.log_text()
    conn = Connection(gregor.bootstrap)
    # Producer 3000's last batch again, once the broker leads the
    # partition (NOT_LEADER_OR_FOLLOWER until then): a retry, answered
    # with its offset.
    answers = []
    wait_until(lambda: answers.append(produce_at(conn, None, topic, last)) or answers[-1][0] != 6,
               30, "the partition to be led again")
    assert answers[-1] == (0, 58)
    assert produce_at(conn, None, topic, txn_batch(3000, [b"i60"], base_sequence=61, transactional=False))[0] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    assert producers_on(gregor.bootstrap, topic) == [3000, 3001, 3002]
    # 3001's transaction is still open: read_committed consumers wait at 62.
    assert len(consume(gregor.bootstrap, topic, "read_committed", 61, timeout=5)) == 60
    assert write_txn_markers(conn, 3001, True, topic) == 0
    conn.close()
    got = consume(gregor.bootstrap, topic, "read_committed", 61)
    assert got == [b"i%d" % i for i in range(60)] + [b"o"]
