"""Kafka transactions (exactly-once) with real clients on a three-broker
cluster: the Java producer (kafka-clients, tests/txn-app) and
confluent-kafka (librdkafka) committing and aborting, read_committed and
read_uncommitted consumers (librdkafka's and Kafka's console consumer),
consume-transform-produce with offsets committed in the transaction,
zombie fencing, the coordinator's own abort of a transaction that timed
out, a late transactional batch refused by its partition's leader, a
leader asking the coordinator again to add a partition while the
producer's previous transaction completes, a transaction coordinator killed with -9 between the sends and the
commit, Kafka Streams with exactly_once_v2 while a broker is killed, the
kafka-transactions tool (list, by pattern too, describe, describe-producers,
find-hanging, abort), and transactional-id ACLs on a SASL listener.

Every test runs against one three-broker Gregor cluster; with
TEST_TRANSACTIONS_ON=kafka the same tests run against three Apache Kafka
nodes (conftest.KafkaCluster), to tell a difference of Gregor's from a
fault of the test. Both have a plaintext listener whose clients
(User:ANONYMOUS) are super users, and a SASL PLAIN listener (`SECURED`)
where admin is a super user and alice and bob get what ACLs give them
(allow.everyone.if.no.acl.found=false).

What a test ends on is decided by a record, never by a pause: a reader
reads until a known last record (a committed one, or a plain record
written after the transactions); a read_committed reader can only reach
it once every transaction before it is committed or aborted (the last
stable offset has passed them), and by then it has seen whatever of them
it would ever see.
"""

import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse
from kafka.protocol.producer import (AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest,
                                     EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
                                     ProduceResponse)
from kafka.record.memory_records import MemoryRecordsBuilder

import wire
from conftest import GregorCluster, KafkaCluster, free_port, kafka_tool, report_measure, unique, wait_until
from ecosystem import ECOSYSTEM_LIBS, JavaProcess, StreamsApp, compile_java

TXN_APP = Path(__file__).resolve().parent / "txn-app"
CLUSTER_AUTHORIZATION_FAILED = 31
COORDINATOR_LOAD_IN_PROGRESS = 14
NOT_COORDINATOR = 16
INVALID_TXN_STATE = 48
CONCURRENT_TRANSACTIONS = 51
TRANSACTION_ABORTABLE = 120
ON_KAFKA = os.environ.get("TEST_TRANSACTIONS_ON") == "kafka"

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
SECURITY = {
    "listener.name.secured.sasl.enabled.mechanisms": "PLAIN",
    "listener.name.secured.plain.sasl.jaas.config":
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "false",
    # The plaintext listener's clients, and the brokers among themselves.
    "super.users": "User:admin;User:ANONYMOUS",
}


class Target:
    """The cluster under test: three brokers, every topic three replicas."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.bootstrap = cluster.bootstrap
        self._admin = None

    @property
    def brokers(self):
        return self.cluster.brokers

    def broker(self, node_id):
        return self.cluster.broker(node_id)

    @property
    def secured_bootstrap(self):
        return ",".join(f"127.0.0.1:{b.secured_port}" for b in self.brokers)

    def admin(self):
        # One client, kept: a future is dropped with the client it came from.
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create_topic(self, name, partitions=1):
        self.admin().create_topics([NewTopic(name, partitions, 3)])[name].result(timeout=60)
        wait_until(lambda: all(self.leader(name, p) is not None for p in range(partitions)), 60,
                   f"leaders for the partitions of {name}")
        return name

    def leader(self, topic, partition):
        """The leader's node id, or None while there is none."""
        md = self.admin().list_topics(topic, timeout=30)
        p = md.topics[topic].partitions.get(partition) if topic in md.topics else None
        return p.leader if p is not None and p.leader >= 0 else None

    def unreplicated(self):
        """Partitions (of every topic, the internal ones too) without a
        leader or with a replica out of the ISR."""
        md = self.admin().list_topics(timeout=30)
        return [f"{t}-{p}" for t, topic in md.topics.items() for p, part in topic.partitions.items()
                if part.leader < 0 or sorted(part.isrs) != sorted(part.replicas)]

    def heal(self):
        """Restarts any broker that is down and waits until every
        partition has its leader and a full ISR."""
        for b in self.brokers:
            if not b.alive():
                b.start()
        last = []

        def healed():
            try:
                last[:] = self.unreplicated()
            except KafkaException as e:
                last[:] = [str(e)]
            return not last

        try:
            wait_until(healed, 180, "every partition to have a leader and a full ISR")
        except AssertionError as e:
            raise AssertionError(f"{e}; not yet: {last}") from None

    def transaction_coordinator(self, transactional_id):
        """The node id FindCoordinator (key type 1: a transactional id)
        names, asked of the first broker that answers without an error."""
        for b in self.brokers:
            if not b.alive():
                continue
            conn = wire.Client(b.bootstrap)
            try:
                r = conn.call(FindCoordinatorRequest(key=transactional_id, key_type=1),
                              FindCoordinatorResponse, 1)
            finally:
                conn.close()
            if r.error_code == 0:
                return r.node_id
        return None

    def last_stable_offset(self, topic, partition):
        """ListOffsets of the latest offset for a read_committed client."""
        tp = TopicPartition(topic, partition)
        futures = self.admin().list_offsets({tp: OffsetSpec.latest()},
                                            isolation_level=IsolationLevel.READ_COMMITTED)
        return futures[tp].result(timeout=30).offset

    def high_watermark(self, topic, partition):
        tp = TopicPartition(topic, partition)
        futures = self.admin().list_offsets({tp: OffsetSpec.latest()},
                                            isolation_level=IsolationLevel.READ_UNCOMMITTED)
        return futures[tp].result(timeout=30).offset


def secured(cluster):
    """Adds a SASL_PLAINTEXT listener SECURED on a free port to every
    broker of a GregorCluster (its `secured_port`), with SECURITY."""
    for b in cluster.brokers:
        b.secured_port = free_port()
        for key in ("listeners", "advertised.listeners"):
            b.props[key] += f",SECURED://127.0.0.1:{b.secured_port}"
        b.props["listener.security.protocol.map"] += ",SECURED:SASL_PLAINTEXT"
        b.props.update(SECURITY)
    return cluster


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """One three-broker cluster for every test of the module: Gregor's, or
    Apache Kafka's with TEST_TRANSACTIONS_ON=kafka (see the module's doc)."""
    if ON_KAFKA:
        cluster = KafkaCluster(tmp_path_factory.mktemp("transactions-kafka"), props=SECURITY)
    else:
        cluster = secured(GregorCluster(tmp_path_factory.mktemp("transactions-cluster")))
    started = time.monotonic()
    cluster.start()
    report_measure("transactions: cluster started in, s", f"{time.monotonic() - started:.1f}")
    t = Target(cluster)
    yield t
    t._admin = None
    cluster.stop()


@pytest.fixture(autouse=True)
def broker_logs_on_failure(request, target):
    """Every test starts on a whole cluster (a test before it may have
    failed with a broker down); a failed test prints what each broker
    logged while it ran."""
    target.heal()
    sizes = {b.node_id: b.log.stat().st_size if b.log.exists() else 0 for b in target.brokers}
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for b in target.brokers:
            with open(b.log, "rb") as f:
                f.seek(sizes[b.node_id])
                text = f.read().decode(errors="replace")
            print(f"----- broker {b.node_id} ({'up' if b.alive() else 'down'}), its log during the test "
                  f"(last 8000 characters) -----\n{text[-8000:]}")


# --- Clients ------------------------------------------------------------------


class JavaTxnProducer(JavaProcess):
    """tests/txn-app/TxnClient.java: a KafkaProducer with a transactional
    id, doing one command at a time (see its doc) and answering "OK ..."
    or "ERR <exception class> <message>"."""

    def __init__(self, workdir, name, bootstrap, transactional_id, **props):
        super().__init__(workdir, name)
        self.props = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                      # Answers within the tests' patience, failures included.
                      "max.block.ms": 60000, "delivery.timeout.ms": 60000, "request.timeout.ms": 15000,
                      **props}
        self.answers = queue.Queue()

    def start(self):
        config = self.workdir / f"{self.name}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        log4j = self.workdir / f"{self.name}-log4j.properties"
        log4j.write_text("log4j.rootLogger=INFO, stderr\n"
                         "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
                         "log4j.appender.stderr.Target=System.err\n"
                         "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
                         "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
                         "log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN\n"
                         "log4j.logger.org.apache.kafka.clients.producer.ProducerConfig=WARN\n")
        classes = compile_java(TXN_APP, "txn-app")
        log = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{classes}:{ECOSYSTEM_LIBS}/*", "TxnClient",
             str(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=self.workdir)

        def read():
            for line in self.proc.stdout:
                if line.startswith("@@ "):
                    self.answers.put(line[3:].rstrip("\n"))
                log.write(line)
                log.flush()

        threading.Thread(target=read, daemon=True).start()
        assert self._answer("start", 60) == "OK ready"
        return self

    def _answer(self, command, timeout):
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no answer to `{command}` within {timeout}s\n"
                                 f"{self.died() or self.log_tail()}") from None

    def call(self, command, timeout=90):
        """The answer to one command: "OK ..." or "ERR <class> <message>"."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer(command, timeout)

    def ok(self, command, timeout=90):
        answer = self.call(command, timeout)
        assert answer.startswith("OK"), f"{self.name}: `{command}` answered {answer}\n{self.log_tail()}"
        return answer

    def close(self):
        if self.alive():
            try:
                self.call("close", 30)
            except (AssertionError, BrokenPipeError):
                pass
            self.kill()


@pytest.fixture
def java_producers(tmp_path):
    """Starts JavaTxnProducers; kills those still running afterwards."""
    started = []

    def make(bootstrap, transactional_id, name=None, **props):
        p = JavaTxnProducer(tmp_path, name or f"producer-{len(started) + 1}", bootstrap, transactional_id, **props)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.kill()


def txn_producer(bootstrap, transactional_id, **extra):
    """confluent-kafka's transactional producer, its transactions initialized."""
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5, **extra})
    try:
        p.init_transactions(60)
        return p
    except KafkaException as e:
        error = e.args[0]
    # Not kept alive by the traceback (it would go on connecting after the
    # cluster has stopped).
    p = None
    raise KafkaException(error)


def plain_write(bootstrap, topic, records):
    """Writes (partition, value) records outside any transaction, acks=all
    and idempotent, each delivered before this returns."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": 120000})
    errors = []
    for partition, value in records:
        p.produce(topic, value=value, partition=partition, on_delivery=lambda err, m: err and errors.append(err))
    assert p.flush(150) == 0 and not errors, f"plain writes to {topic} failed: {errors}"


def read_until(bootstrap, topic, last, isolation, timeout=120):
    """{partition: [values]} read with librdkafka's consumer at `isolation`
    ("read_committed" or "read_uncommitted") from the start of each
    partition of `last` ({partition: value}) up to its value `last[p]`,
    that one included."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, 0) for p in last])
    got = {p: [] for p in last}
    done = set()
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(last):
            if time.monotonic() > deadline:
                missing = {p: v for p, v in last.items() if p not in done}
                raise AssertionError(f"a {isolation} consumer of {topic} did not get to {missing} within "
                                     f"{timeout}s; it read {got}")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            if m.partition() in done:
                continue
            value = m.value().decode()
            got[m.partition()].append(value)
            if value == last[m.partition()]:
                done.add(m.partition())
        return got
    finally:
        c.close()


def console_read(bootstrap, topic, isolation, count):
    """{partition: [values]} of the first `count` records Kafka's console
    consumer (Java) reads from the start at `isolation`."""
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", bootstrap, "--topic", topic,
                     "--from-beginning", "--isolation-level", isolation, "--max-messages", count,
                     "--timeout-ms", 60000, "--property", "print.partition=true", check=False).stdout
    got = {}
    for line in out.splitlines():
        m = re.match(r"Partition:(\d+)\t(.*)$", line)
        if m:
            got.setdefault(int(m.group(1)), []).append(m.group(2))
    return got


# --- 1. The Java producer, committing and aborting ---------------------------

def test_java_producer_commits_and_aborts_and_read_committed_sees_only_the_committed(target, java_producers):
    """Six transactions of the Java producer over two partitions, three
    records to each, committed or aborted in turn (the last committed): a
    read_committed consumer (librdkafka's and Kafka's console consumer)
    reads exactly the committed records in the order they were written,
    none of the aborted; a read_uncommitted one reads them all."""
    topic = target.create_topic(unique("java-txn"), partitions=2)
    producer = java_producers(target.bootstrap, unique("java-txn"))
    producer.ok("init")
    outcomes = ["commit", "abort", "commit", "commit", "abort", "commit"]
    written = {0: [], 1: []}
    committed = {0: [], 1: []}
    for t, outcome in enumerate(outcomes):
        producer.ok("begin")
        for j in range(3):
            for p in (0, 1):
                value = f"t{t}-{outcome}-p{p}-{j}"
                producer.ok(f"send {topic} {p} {value}")
                written[p].append(value)
                if outcome == "commit":
                    committed[p].append(value)
        producer.ok(outcome)
    last = {p: committed[p][-1] for p in (0, 1)}

    assert read_until(target.bootstrap, topic, last, "read_committed") == committed
    assert read_until(target.bootstrap, topic, last, "read_uncommitted") == written
    count = sum(len(v) for v in committed.values())
    assert console_read(target.bootstrap, topic, "read_committed", count) == committed
    assert console_read(target.bootstrap, topic, "read_uncommitted", sum(len(v) for v in written.values())) \
        == written
    # Every transaction is over: nothing is left unstable.
    for p in (0, 1):
        wait_until(lambda: target.last_stable_offset(topic, p) == target.high_watermark(topic, p), 60,
                   f"the last stable offset of {topic}-{p} to reach its high watermark")
    producer.ok("close")


# --- 2. confluent-kafka (librdkafka) ------------------------------------------

def test_librdkafka_commit_and_abort(target):
    """librdkafka's transactional producer: a committed transaction, an
    aborted one and a committed one: read_committed reads the first and
    the third, read_uncommitted all three."""
    topic = target.create_topic(unique("rdkafka-txn"))
    p = txn_producer(target.bootstrap, unique("rdkafka-txn"))
    batches = {}
    for name, end in [("first", p.commit_transaction), ("second", p.abort_transaction),
                      ("third", p.commit_transaction)]:
        p.begin_transaction()
        batches[name] = [f"{name}-{i}" for i in range(5)]
        for v in batches[name]:
            p.produce(topic, value=v, partition=0)
        # Written before the end: librdkafka's abort drops what it has not
        # sent yet.
        assert p.flush(30) == 0
        end(60)
    last = {0: batches["third"][-1]}
    assert read_until(target.bootstrap, topic, last, "read_committed") == {0: batches["first"] + batches["third"]}
    assert read_until(target.bootstrap, topic, last, "read_uncommitted") == {
        0: batches["first"] + batches["second"] + batches["third"]}


def committed_offset(bootstrap, group, topic, partition):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        [tp] = c.committed([TopicPartition(topic, partition)], timeout=30)
        return tp.offset
    finally:
        c.close()


def test_librdkafka_consume_transform_produce_commits_input_offsets_with_the_output(target):
    """Consume-transform-produce with librdkafka: records of an input topic
    are read in a consumer group, transformed to an output topic, and the
    input offsets committed in the same transaction
    (send_offsets_to_transaction). The group's committed offset moves only
    when a transaction commits; after an abort the application goes back to
    it (a new consumer of the group, as after a restart) and processes the
    records again: read_committed sees every output record exactly once,
    in input order, and read_uncommitted also sees the aborted ones."""
    source = target.create_topic(unique("ctp-in"))
    sink = target.create_topic(unique("ctp-out"))
    group = unique("ctp")
    plain_write(target.bootstrap, source, [(0, f"in-{i:02d}") for i in range(20)])
    producer = txn_producer(target.bootstrap, unique("ctp"))

    def consumer():
        c = Consumer({"bootstrap.servers": target.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        c.subscribe([source])
        return c

    def process(c, count, end):
        """Reads `count` records, writes them transformed, commits their
        offsets in the transaction and ends it with `end`."""
        values = []
        deadline = time.monotonic() + 60
        producer.begin_transaction()
        while len(values) < count:
            assert time.monotonic() < deadline, f"read only {values} of {source} within 60s"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            values.append(m.value().decode())
            producer.produce(sink, value=values[-1].replace("in-", "out-"), partition=0)
        # Written before the end, aborted or not (see the test above).
        assert producer.flush(30) == 0
        producer.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 60)
        end(60)
        return values

    c = consumer()
    assert process(c, 10, producer.commit_transaction) == [f"in-{i:02d}" for i in range(10)]
    assert committed_offset(target.bootstrap, group, source, 0) == 10
    assert process(c, 10, producer.abort_transaction) == [f"in-{i:02d}" for i in range(10, 20)]
    assert committed_offset(target.bootstrap, group, source, 0) == 10, "an aborted transaction committed offsets"
    c.close()
    c = consumer()
    assert process(c, 10, producer.commit_transaction) == [f"in-{i:02d}" for i in range(10, 20)]
    c.close()
    assert committed_offset(target.bootstrap, group, source, 0) == 20

    assert read_until(target.bootstrap, sink, {0: "out-19"}, "read_committed") == {
        0: [f"out-{i:02d}" for i in range(20)]}
    # read_uncommitted also reads the aborted transaction's records, between.
    assert read_all_uncommitted(target.bootstrap, sink, 30) == [f"out-{i:02d}" for i in range(20)] + [
        f"out-{i:02d}" for i in range(10, 20)]


def read_all_uncommitted(bootstrap, topic, count, timeout=60):
    """The first `count` values of partition 0, read_uncommitted."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted"})
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count:
            assert time.monotonic() < deadline, f"read only {values} of {topic}"
            m = c.poll(0.5)
            if m is not None and not m.error():
                values.append(m.value().decode())
        return values
    finally:
        c.close()


# --- 3. Zombie fencing ---------------------------------------------------------

def test_a_fenced_java_producer_fails_and_nothing_it_writes_is_committed(target, java_producers):
    """Two Java producers with the same transactional id: once the second
    has initialized its transactions, the first (a zombie, in the middle of
    a transaction) fails to send and to commit with ProducerFencedException,
    and neither what it wrote before nor after is ever visible to
    read_committed; the second's transaction is."""
    topic = target.create_topic(unique("fenced-java"))
    txn_id = unique("fenced-java")
    zombie = java_producers(target.bootstrap, txn_id, name="zombie")
    zombie.ok("init")
    zombie.ok("begin")
    zombie.ok(f"send {topic} 0 zombie-before")
    successor = java_producers(target.bootstrap, txn_id, name="successor")
    successor.ok("init")

    sent = zombie.call(f"send {topic} 0 zombie-after")
    committed = zombie.call("commit")
    # The send fails with the epoch error the partition leader gives, the
    # commit with the error the transaction is then in (Kafka 4.4: both
    # InvalidProducerEpochException); a producer fenced before it sends
    # anything is told ProducerFencedException by the coordinator.
    fenced = ("ProducerFencedException", "InvalidProducerEpochException")
    assert sent.startswith("ERR") and any(f in sent for f in fenced), sent
    assert committed.startswith("ERR") and any(f in committed for f in fenced), committed

    # A zombie whose next step is the commit.
    quiet = java_producers(target.bootstrap, txn_id, name="quiet-zombie")
    quiet.ok("init")  # fences the successor, which aborts nothing (no transaction)
    quiet.ok("begin")
    quiet.ok(f"send {topic} 0 quiet-zombie-before")
    successor = java_producers(target.bootstrap, txn_id, name="successor-2")
    successor.ok("init")
    quiet_commit = quiet.call("commit")
    assert quiet_commit.startswith("ERR ProducerFencedException"), quiet_commit

    successor.ok("begin")
    successor.ok(f"send {topic} 0 successor")
    successor.ok("commit")
    assert read_until(target.bootstrap, topic, {0: "successor"}, "read_committed") == {0: ["successor"]}
    uncommitted = read_until(target.bootstrap, topic, {0: "successor"}, "read_uncommitted")[0]
    assert "zombie-before" in uncommitted, uncommitted
    report_measure("fenced Java producer: send / commit answered", f"{sent[:80]} / {committed[:80]}")


def test_a_fenced_librdkafka_producer_gets_a_fatal_error(target):
    """The same with librdkafka: the zombie's commit raises a fatal
    (unrecoverable) fencing error, and its records stay invisible to
    read_committed."""
    topic = target.create_topic(unique("fenced-rdkafka"))
    txn_id = unique("fenced-rdkafka")
    fatal = []
    zombie = txn_producer(target.bootstrap, txn_id, error_cb=lambda e: fatal.append(e) if e.fatal() else None)
    zombie.begin_transaction()
    zombie.produce(topic, value="zombie-before", partition=0)
    assert zombie.flush(30) == 0
    successor = txn_producer(target.bootstrap, txn_id)

    with pytest.raises(KafkaException) as failed:
        # The send or, at the latest, the commit fails.
        zombie.produce(topic, value="zombie-after", partition=0)
        zombie.flush(30)
        zombie.commit_transaction(60)
    error = failed.value.args[0]
    assert error.fatal(), f"the zombie's commit failed with {error}, not a fatal error"
    assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH), error

    successor.begin_transaction()
    successor.produce(topic, value="successor", partition=0)
    successor.commit_transaction(60)
    assert read_until(target.bootstrap, topic, {0: "successor"}, "read_committed") == {0: ["successor"]}
    report_measure("fenced librdkafka producer: commit failed with", f"{error.name()} ({error.str()[:80]})")


def transactional_batch(producer_id, epoch, value):
    """One transactional record batch of `producer_id`, sequence 0."""
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20, transactional=True,
                                   producer_id=producer_id, producer_epoch=epoch, base_sequence=0)
    builder.append(timestamp=int(time.time() * 1000), key=None, value=value.encode())
    builder.close()
    return bytes(builder.buffer())


def init_producer_id(target, txn_id):
    """(coordinator node id, producer id, epoch) of InitProducerId for
    `txn_id` at its coordinator, asked again (as a client does) while its
    transaction log partition is still being made."""
    found = []

    def initialized():
        coordinator = target.transaction_coordinator(txn_id)
        if coordinator is None:
            return False
        conn = wire.Client(target.broker(coordinator).bootstrap)
        try:
            init = conn.call(InitProducerIdRequest(transactional_id=txn_id, transaction_timeout_ms=60000),
                             InitProducerIdResponse, 3)
        finally:
            conn.close()
        assert init.error_code in (0, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR), init
        found[:] = [coordinator, init.producer_id, init.producer_epoch]
        return init.error_code == 0

    wait_until(initialized, 60, "a producer id from the transaction coordinator")
    return tuple(found)


def test_a_batch_arriving_after_its_transaction_ended_opens_no_transaction(target):
    """A producer's transactional batch that reaches a partition leader
    after its transaction ended (a retry delayed in the network, a zombie)
    must not open a transaction its coordinator does not know of: nobody
    would end it, and read_committed consumers would stop there. The
    leader asks the coordinator, another broker, first (KIP-890): the
    batch is refused, INVALID_TXN_STATE for an old client and
    TRANSACTION_ABORTABLE for a Produce v11 one, and nothing is written.
    Once the partition is added to the transaction, the same batch is
    written and committed."""
    topic = target.create_topic(unique("late"), partitions=3)
    txn_id = unique("late")
    coordinator, pid, epoch = init_producer_id(target, txn_id)
    remote = [p for p in range(3) if target.leader(topic, p) != coordinator]
    assert remote, "every partition is led by the coordinator"
    partition = remote[0]

    to_coordinator = wire.Client(target.broker(coordinator).bootstrap)
    to_leader = wire.Client(target.broker(target.leader(topic, partition)).bootstrap)
    try:

        def produce(version):
            request = ProduceRequest(transactional_id=txn_id, acks=-1, timeout_ms=10000, topic_data=[
                ProduceRequest.TopicProduceData(name=topic, partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=partition, records=transactional_batch(pid, epoch, "late"))])])
            r = to_leader.call(request, ProduceResponse, version)
            return [(p.index, p.error_code) for t in r.responses for p in t.partition_responses]

        assert produce(3) == [(partition, INVALID_TXN_STATE)]
        assert produce(11) == [(partition, TRANSACTION_ABORTABLE)]
        assert target.high_watermark(topic, partition) == 0
        assert target.last_stable_offset(topic, partition) == 0

        added = to_coordinator.call(AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=txn_id, v3_and_below_producer_id=pid, v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(
                name=topic, partitions=[partition])]), AddPartitionsToTxnResponse, 3)
        assert [p.partition_error_code for t in added.results_by_topic_v3_and_below
                for p in t.results_by_partition] == [0], added
        assert produce(11) == [(partition, 0)]
        ended = to_coordinator.call(EndTxnRequest(transactional_id=txn_id, producer_id=pid, producer_epoch=epoch,
                                                  committed=True), EndTxnResponse, 3)
        assert ended.error_code == 0, ended
    finally:
        to_coordinator.close()
        to_leader.close()
    assert read_until(target.bootstrap, topic, {partition: "late"}, "read_committed") == {partition: ["late"]}


def test_a_leader_asks_again_to_add_while_the_previous_transaction_completes(target):
    """Transaction version 2 (KIP-890 part 2): the first batch of a
    producer's transaction reaches a partition leader (Produce v12), which
    asks the coordinator, another broker, to add the partition
    (AddPartitionsToTxn v5). While the producer's previous transaction is
    still completing, its markers not all written, the coordinator answers
    CONCURRENT_TRANSACTIONS; the leader asks again until
    add.partitions.to.txn.retry.backoff.max.ms (100 ms) and then hands the
    producer CONCURRENT_TRANSACTIONS, which it retries. Here the previous
    transaction cannot complete: its partition has min.insync.replicas=2
    and one of its two replicas is stopped, so its leader refuses the
    marker. Once that replica is back, the transaction completes, the same
    batch is added and written, and read_committed reads both
    transactions."""
    txn_id = unique("busy")
    coordinator, pid, epoch = init_producer_id(target, txn_id)
    # `leader` leads both partitions, `down` is the second replica of the
    # previous transaction's; neither coordinates the transactional id.
    leader, down = [b.node_id for b in target.brokers if b.node_id != coordinator]
    topic = unique("busy")
    target.admin().create_topics([NewTopic(topic, num_partitions=2,
                                           replica_assignment=[[leader, down], [leader, coordinator]],
                                           config={"min.insync.replicas": "2"})])[topic].result(timeout=60)

    answers = []

    def served():
        """Whether each partition's leader answers for it (the last answer
        kept for the failure message)."""
        try:
            answers[:] = [[target.high_watermark(topic, p) for p in range(2)]]
        except KafkaException as e:
            answers[:] = [e]
            return False
        return answers == [[0, 0]]

    try:
        wait_until(served, 60, f"the leaders of {topic} to serve it")
    except AssertionError as e:
        raise AssertionError(f"{e}; the last answer: {answers}") from None

    def produce(partition, producer_epoch, value):
        request = ProduceRequest(transactional_id=txn_id, acks=-1, timeout_ms=10000, topic_data=[
            ProduceRequest.TopicProduceData(name=topic, partition_data=[
                ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=partition, records=transactional_batch(pid, producer_epoch, value))])])
        r = to_leader.call(request, ProduceResponse, 12)
        return [(p.index, p.error_code) for t in r.responses for p in t.partition_responses]

    def commit(producer_epoch):
        """EndTxn v5: (error, the epoch the producer goes on with)."""
        r = to_coordinator.call(EndTxnRequest(transactional_id=txn_id, producer_id=pid,
                                              producer_epoch=producer_epoch, committed=True), EndTxnResponse, 5)
        return r.error_code, r.producer_epoch

    to_coordinator = wire.Client(target.broker(coordinator).bootstrap)
    to_leader = wire.Client(target.broker(leader).bootstrap)
    try:
        assert produce(0, epoch, "first") == [(0, 0)]
        target.broker(down).stop()
        error, next_epoch = commit(epoch)
        assert (error, next_epoch) == (0, epoch + 1)

        assert produce(1, next_epoch, "second") == [(1, CONCURRENT_TRANSACTIONS)]

        target.broker(down).start()
        # A retried EndTxn names the epoch before the bump; it is refused
        # while the markers go out.
        wait_until(lambda: commit(epoch)[0] != CONCURRENT_TRANSACTIONS, 120,
                   "the previous transaction's marker to be written")
        assert commit(epoch) == (0, next_epoch)
        assert produce(1, next_epoch, "second") == [(1, 0)]
        assert commit(next_epoch) == (0, next_epoch + 1)
    finally:
        to_coordinator.close()
        to_leader.close()
    assert read_until(target.bootstrap, topic, {0: "first", 1: "second"}, "read_committed") == {
        0: ["first"], 1: ["second"]}


# --- 4. The coordinator aborts a transaction that timed out ------------------

def test_a_transaction_left_open_is_aborted_by_the_coordinator_after_its_timeout(target, java_producers):
    """A Java producer with transaction.timeout.ms=3000 writes in a
    transaction and never ends it. The coordinator aborts it on its own: a
    read_committed consumer gets past it (the last stable offset moves on)
    to a record written after it, and never sees its records; the stuck
    producer's commit then fails."""
    topic = target.create_topic(unique("timed-out"))
    timeout_s = 5
    stuck = java_producers(target.bootstrap, unique("timed-out"), name="stuck",
                           **{"transaction.timeout.ms": timeout_s * 1000})
    stuck.ok("init")
    stuck.ok("begin")
    started = time.monotonic()
    for i in range(3):
        stuck.ok(f"send {topic} 0 stuck-{i}")
    lso = target.last_stable_offset(topic, 0)
    if time.monotonic() - started < timeout_s:
        assert lso == 0, f"the open transaction did not hold the last stable offset at its start: {lso}"
    plain_write(target.bootstrap, topic, [(0, "after")])

    assert read_until(target.bootstrap, topic, {0: "after"}, "read_committed") == {0: ["after"]}
    report_measure("transaction left open: read_committed got past it after, s",
                   f"{time.monotonic() - started:.1f}")
    assert read_until(target.bootstrap, topic, {0: "after"}, "read_uncommitted") == {
        0: ["stuck-0", "stuck-1", "stuck-2", "after"]}
    answer = stuck.call("commit")
    assert answer.startswith("ERR"), f"the timed-out transaction committed: {answer}"
    report_measure("commit after the coordinator's abort", answer[:120])
    # And its records stay aborted.
    assert read_until(target.bootstrap, topic, {0: "after"}, "read_committed") == {0: ["after"]}


# --- 5. The transaction coordinator is killed between the sends and the end --

@pytest.mark.parametrize("end", ["commit", "abort"])
def test_a_transaction_survives_its_coordinator_killed_before_it_ends(target, java_producers, end):
    """A Java producer writes to three partitions in a transaction; the
    broker that coordinates its transactional id (FindCoordinator, key type
    1) is killed with -9; the producer then commits (or aborts): it
    succeeds through the new coordinator, and read_committed sees all of
    the transaction's records (or none), in order. The broker comes back."""
    topic = target.create_topic(unique(f"coordinator-{end}"), partitions=3)
    txn_id = unique(f"coordinator-{end}")
    producer = java_producers(target.bootstrap, txn_id)
    producer.ok("init")
    coordinator = target.transaction_coordinator(txn_id)
    assert coordinator in {b.node_id for b in target.brokers}, coordinator
    producer.ok("begin")
    written = {p: [f"{end}-p{p}-{j}" for j in range(3)] for p in range(3)}
    for j in range(3):
        for p in range(3):
            producer.ok(f"send {topic} {p} {written[p][j]}")

    target.broker(coordinator).kill()
    started = time.monotonic()
    producer.ok(end, timeout=120)
    report_measure(f"{end} with the coordinator killed, s", f"{time.monotonic() - started:.1f}")
    successor = target.transaction_coordinator(txn_id)
    assert successor not in (None, coordinator), f"coordinator {coordinator}, then {successor}"

    plain_write(target.bootstrap, topic, [(p, f"after-{p}") for p in range(3)])
    last = {p: f"after-{p}" for p in range(3)}
    expected = {p: (written[p] if end == "commit" else []) + [f"after-{p}"] for p in range(3)}
    assert read_until(target.bootstrap, topic, last, "read_committed") == expected
    # The producer goes on with the next transaction.
    producer.ok("begin")
    producer.ok(f"send {topic} 0 next")
    producer.ok("commit")
    assert read_until(target.bootstrap, topic, {0: "next"}, "read_committed")[0][-2:] == ["after-0", "next"]

    target.broker(coordinator).start()
    target.heal()


# --- 6. Kafka Streams, exactly_once_v2, a broker killed -----------------------

def test_streams_exactly_once_counts_stay_exact_when_a_broker_is_killed(target, tmp_path):
    """tests/streams-app's word count with processing.guarantee
    exactly_once_v2: lines arrive in bursts; during the second the leader
    of the output partition is killed with -9, a third burst comes while it
    is down, and it restarts before the fourth. Read with read_committed,
    every count of every word is there exactly once and in order (1, 2, 3,
    ... N): none counted twice, none skipped."""
    app_id = unique("eos-wordcount")
    words, counts = target.create_topic(unique("eos-words")), target.create_topic(unique("eos-counts"))
    app = StreamsApp(tmp_path, "eos-wordcount", target.bootstrap, app_id, words, counts, 3)
    app.props.update({"processing.guarantee": "exactly_once_v2", "commit.interval.ms": 200})
    burst = 100
    seen = []

    def latest():
        return {k: v for k, v in seen}

    reader = Consumer({"bootstrap.servers": target.bootstrap, "group.id": unique("eos-reader"),
                       "enable.auto.commit": False, "isolation.level": "read_committed"})
    reader.assign([TopicPartition(counts, 0, 0)])

    def read():
        while (m := reader.poll(0.2)) is not None:
            if m.error():
                raise KafkaException(m.error())
            seen.append((m.key().decode(), m.value().decode()))
        return latest()

    def counted(n):
        try:
            wait_until(lambda: read() == {"apple": str(n), "banana": str(n)}, 240,
                       f"the counts to reach {n}", failed=app.died, step=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}; the counts read: {latest()}; the application's log ends with:\n"
                                 f"{app.log_tail()}") from None

    victim = None
    try:
        app.start()
        plain_write(target.bootstrap, words, [(0, "apple banana")] * burst)
        counted(burst)
        victim = target.broker(target.leader(counts, 0))
        plain_write(target.bootstrap, words, [(0, "apple banana")] * burst)
        victim.kill()
        plain_write(target.bootstrap, words, [(0, "apple banana")] * burst)
        counted(3 * burst)
        victim.start()
        plain_write(target.bootstrap, words, [(0, "apple banana")] * burst)
        counted(4 * burst)
        assert app.alive(), app.died()
    finally:
        app.stop()
        reader.close()
        if victim is not None and not victim.alive():
            victim.start()
    for word in ("apple", "banana"):
        values = [int(v) for k, v in seen if k == word]
        doubled = sorted({v for v in values if values.count(v) > 1})
        assert values == list(range(1, 4 * burst + 1)), \
            f"{word}: {len(values)} counts, counted twice: {doubled[:10]}, skipped: " \
            f"{sorted(set(range(1, 4 * burst + 1)) - set(values))[:10]}"


# --- 7. The kafka-transactions tool -------------------------------------------

def transactions_tool(target, *args):
    """kafka-transactions' table: a list of rows of {column: value}."""
    out = kafka_tool("kafka-transactions", "--bootstrap-server", target.bootstrap, *args).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, f"kafka-transactions {' '.join(args)} printed nothing"
    # Columns are padded and separated by tabs.
    header = [c.strip() for c in lines[0].split("\t")]
    return [dict(zip(header, [c.strip() for c in line.split("\t")])) for line in lines[1:]]


def test_kafka_transactions_tool_describes_and_aborts_a_transaction_whose_producer_died(
        target, java_producers):
    """A Java producer with a ten-minute transaction timeout writes in a
    transaction and is killed with -9: kafka-transactions lists it Ongoing,
    describes it (its producer id, timeout and partition), describe-producers
    shows the open transaction's start offset on the partition, and
    find-hanging does not call it hanging (its coordinator still knows it).
    It holds back read_committed consumers (the last stable offset stays at
    its start) until `abort --topic --partition --start-offset` aborts it;
    then they read past it and a new producer with the same id starts
    cleanly."""
    topic = target.create_topic(unique("hanging"))
    txn_id = unique("hanging")
    dead = java_producers(target.bootstrap, txn_id, name="dead", **{"transaction.timeout.ms": 600000})
    dead.ok("init")
    dead.ok("begin")
    dead.ok(f"send {topic} 0 open-0")
    dead.ok(f"send {topic} 0 open-1")

    [listed] = [r for r in transactions_tool(target, "list") if r["TransactionalId"] == txn_id]
    assert listed["TransactionState"] == "Ongoing", listed
    # Listed by a pattern (KIP-1152), which must match the whole id.
    assert [r["TransactionalId"] for r in transactions_tool(
        target, "list", "--transactional-id-pattern", txn_id[:-2] + "..")] == [txn_id]
    assert [r["TransactionalId"] for r in transactions_tool(
        target, "list", "--transactional-id-pattern", txn_id[:-2])] == []
    assert int(listed["Coordinator"]) == target.transaction_coordinator(txn_id), listed
    [described] = transactions_tool(target, "describe", "--transactional-id", txn_id)
    assert (described["TransactionalId"], described["TransactionState"], described["TransactionTimeoutMs"],
            described["TopicPartitions"]) == (txn_id, "Ongoing", "600000", f"{topic}-0"), described
    assert described["ProducerId"] == listed["ProducerId"], (described, listed)

    dead.kill()
    plain_write(target.bootstrap, topic, [(0, "after")])
    # The dead producer's and the idempotent one's that wrote "after".
    producers = transactions_tool(target, "describe-producers", "--topic", topic, "--partition", "0")
    [producer] = [r for r in producers if r["ProducerId"] == described["ProducerId"]] or [producers]
    assert producer["CurrentTransactionStartOffset"] == "0", producers
    leader = target.leader(topic, 0)
    hanging = transactions_tool(target, "find-hanging", "--broker-id", str(leader), "--max-transaction-timeout", "0")
    assert [r for r in hanging if r.get("Topic") == topic] == [], hanging
    assert target.last_stable_offset(topic, 0) == 0
    assert target.high_watermark(topic, 0) == 3

    kafka_tool("kafka-transactions", "--bootstrap-server", target.bootstrap, "abort", "--topic", topic,
               "--partition", "0", "--start-offset", "0")
    assert read_until(target.bootstrap, topic, {0: "after"}, "read_committed") == {0: ["after"]}
    producers = transactions_tool(target, "describe-producers", "--topic", topic, "--partition", "0")
    [producer] = [r for r in producers if r["ProducerId"] == described["ProducerId"]] or [producers]
    assert producer["CurrentTransactionStartOffset"] == "None", producers

    successor = java_producers(target.bootstrap, txn_id, name="successor")
    successor.ok("init")
    successor.ok("begin")
    successor.ok(f"send {topic} 0 successor")
    successor.ok("commit")
    assert read_until(target.bootstrap, topic, {0: "successor"}, "read_committed") == {0: ["after", "successor"]}
    [described] = transactions_tool(target, "describe", "--transactional-id", txn_id)
    assert described["TransactionState"] == "CompleteCommit", described


def feature_level(bootstrap, feature):
    """The level `kafka-features describe` shows for `feature` at the
    broker `bootstrap` names ("0" when it is not finalized), and the range
    supported."""
    out = kafka_tool("kafka-features", "--bootstrap-server", bootstrap, "describe").stdout
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+): (\S+)", line))
        if fields.get("Feature") == feature:
            level = fields.get("FinalizedVersionLevel", "-")
            return ("0" if level == "-" else level,
                    (fields.get("SupportedMinVersion"), fields.get("SupportedMaxVersion")))
    raise AssertionError(f"kafka-features describe shows no {feature}:\n{out}")


def epoch_bumps(target, java_producers, topic, transactions, written):
    """How far a new Java producer's epoch moves over `transactions`
    committed transactions (one record each to partition 0 of `topic`,
    appended to `written`), as kafka-transactions describes it."""
    txn_id = unique("tv")
    producer = java_producers(target.bootstrap, txn_id)
    producer.ok("init")
    [before] = transactions_tool(target, "describe", "--transactional-id", txn_id)
    for t in range(transactions):
        producer.ok("begin")
        producer.ok(f"send {topic} 0 {txn_id}-{t}")
        producer.ok("commit")
        written.append(f"{txn_id}-{t}")
    [after] = transactions_tool(target, "describe", "--transactional-id", txn_id)
    producer.ok("close")
    return int(after["ProducerEpoch"]) - int(before["ProducerEpoch"])


def set_transaction_version(target, level, command):
    kafka_tool("kafka-features", "--bootstrap-server", target.bootstrap, command,
               "--feature", f"transaction.version={level}")
    # A new producer may ask any broker: each must show the level.
    wait_until(lambda: all(feature_level(b.bootstrap, "transaction.version")[0] == str(level)
                           for b in target.brokers), 60, f"every broker to show transaction.version {level}")


def test_kafka_features_sets_the_transaction_protocol_of_java_producers(target, java_producers):
    """A new cluster runs transaction.version 2 (KIP-890 part 2), as a new
    Kafka 4 cluster does: kafka-features describe shows it, and the Java
    producer, seeing it in ApiVersions, bumps its epoch with every commit
    (EndTxn v5; the brokers add its partitions, Produce v12). Downgraded to
    0 with kafka-features, a new Java producer speaks the older protocol
    (AddPartitionsToTxn, one epoch for all its transactions) and its
    transactions still commit; upgraded again, the next bumps again."""
    topic = target.create_topic(unique("tv"))
    written = []
    assert feature_level(target.bootstrap, "transaction.version") == ("2", ("0", "2"))
    assert epoch_bumps(target, java_producers, topic, 3, written) == 3
    try:
        set_transaction_version(target, 0, "downgrade")
        assert epoch_bumps(target, java_producers, topic, 3, written) == 0
    finally:
        set_transaction_version(target, 2, "upgrade")
    assert epoch_bumps(target, java_producers, topic, 2, written) == 2
    assert read_until(target.bootstrap, topic, {0: written[-1]}, "read_committed") == {0: written}


# --- 8. Transactional-id ACLs ---------------------------------------------------

def as_user(user):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": USERS[user]}


def acls(target, tmp_path, *args):
    config = tmp_path / "admin.properties"
    config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                      f'username="admin" password="{USERS["admin"]}";\n')
    return kafka_tool("kafka-acls", "--bootstrap-server", target.secured_bootstrap, "--command-config", config,
                      *args)


def test_transactional_id_acls_decide_who_may_write_transactionally(target, java_producers, tmp_path):
    """On the SASL listener with allow.everyone.if.no.acl.found=false:
    alice, allowed to write to a topic, cannot start transactions with a
    transactional id she has no ACL for (TransactionalIdAuthorizationException
    in Java, TRANSACTIONAL_ID_AUTHORIZATION_FAILED in librdkafka); once
    `kafka-acls --transactional-id` grants her Write and Describe on it, her
    transaction commits. bob, with no ACL at all, is refused a producer id
    for idempotent writes (InitProducerId without a transactional id:
    CLUSTER_AUTHORIZATION_FAILED); IdempotentWrite on the cluster gives him
    one, and so does Write on a topic alone (KIP-679)."""
    topic = target.create_topic(unique("acl-txn"))
    txn_id = unique("alice-txn")
    secured = target.secured_bootstrap
    java_sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                 "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
                                     f'username="alice" password="{USERS["alice"]}";'}
    acls(target, tmp_path, "--add", "--allow-principal", "User:alice", "--operation", "Write",
         "--operation", "Describe", "--topic", topic)

    refused = java_producers(secured, txn_id, name="alice-refused", **java_sasl)
    answer = refused.call("init")
    assert "TransactionalIdAuthorizationException" in answer, answer
    refused.close()
    with pytest.raises(KafkaException) as failed:
        txn_producer(secured, txn_id, **as_user("alice"))
    assert failed.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, failed.value

    listed = acls(target, tmp_path, "--add", "--allow-principal", "User:alice", "--operation", "Write",
                  "--operation", "Describe", "--transactional-id", txn_id).stdout
    assert f"resourceType=TRANSACTIONAL_ID, name={txn_id}" in listed, listed
    n = [0]

    def alice_commits():
        n[0] += 1
        p = java_producers(secured, txn_id, name=f"alice-{n[0]}", **java_sasl)
        try:
            if not p.call("init").startswith("OK"):
                return False  # the ACL has not reached every broker yet
            for command in ("begin", f"send {topic} 0 alice", "commit"):
                p.ok(command)
            return True
        finally:
            p.close()

    wait_until(alice_commits, 60, "alice's transaction to be allowed")
    assert read_until(target.bootstrap, topic, {0: "alice"}, "read_committed") == {0: ["alice"]}

    def bob_gets_a_producer_id():
        """The error code of InitProducerId without a transactional id (an
        idempotent producer's) from bob, over the wire."""
        node = target.brokers[0]
        conn = wire.Client(f"127.0.0.1:{node.secured_port}", sasl_plain=("bob", USERS["bob"]))
        try:
            return conn.call(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1),
                             InitProducerIdResponse, 2).error_code
        finally:
            conn.close()

    assert bob_gets_a_producer_id() == CLUSTER_AUTHORIZATION_FAILED
    acls(target, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "IdempotentWrite", "--cluster")
    wait_until(lambda: bob_gets_a_producer_id() == 0, 60, "IdempotentWrite to give bob a producer id")
    acls(target, tmp_path, "--remove", "--force", "--allow-principal", "User:bob", "--operation",
         "IdempotentWrite", "--cluster")
    wait_until(lambda: bob_gets_a_producer_id() == CLUSTER_AUTHORIZATION_FAILED, 60,
               "bob to be refused a producer id again")
    # Write on some topic is enough too (KIP-679), and then librdkafka's
    # idempotent producer delivers.
    acls(target, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Write", "--topic", topic)
    wait_until(lambda: bob_gets_a_producer_id() == 0, 60, "Write on a topic to give bob a producer id")
    delivered = []
    p = Producer({"bootstrap.servers": secured, "enable.idempotence": True, "message.timeout.ms": 30000,
                  **as_user("bob")})
    p.produce(topic, value="bob", partition=0, on_delivery=lambda err, m: delivered.append(err))
    p.flush(40)
    assert delivered == [None], delivered
